"""The SIP engine: the only owner of pjsua2's Endpoint, accounts and calls.

One thread (the engine thread) creates the library, pumps `libHandleEvents()` and runs every
command; nothing else ever calls pjsua2. Commands are queued and return at once, so the
controller's loop never blocks. pjsua2 callbacks only turn what happened into a plain event
(`firmware.sip.events`) and hand it to the sink, which the controller makes thread-safe.

Limits this engine guards (pjsua2 2.15.1 wheel): at most 4 calls per process; a burst of
instantly-ended calls can exhaust pjsip's handle pool, so new incoming calls are admitted at a
bounded rate and answered 486/503 beyond it instead of risking an abort.
"""

from __future__ import annotations

import collections
import concurrent.futures
import gc
import itertools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pjsua2 as pj

from audio.tones import ToneSegment
from firmware.config import LineConfig, PhoneConfig
from firmware.mwi import parse_message_summary
from firmware.sip import events as ev
from firmware.sip.check_sync import AnswerSender, Flow, decide, received_request
from firmware.sip.ivr_media import IvrLeg
from firmware.sip.media import AudioEnds, Graveyard, TerminalMedia
from firmware.sip.uri import host_port, is_dialable_uri, parse_party, retry_after_seconds

log = logging.getLogger("luren.sip")
EventSink = Callable[[ev.SipEvent], None]
PUMP_MS = 10
FLOOD_HOLD_S = 1.0  # how long a call refused for arriving in a flood holds its call slot
TRANSPORT_ATTEMPTS = 5  # free ports tried for UDP + TCP together when the port is 0
UNBORN_S = 3.0  # how long pjsua may take to place the call a REFER asked for
TRACE_MESSAGES = 200  # SIP messages kept for the console's `sip trace`

_INV_STATES = {
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}


_HOLD = {pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local", pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote"}


def _flow(source: str, response: str) -> Flow | None:
    """Where a registration runs: the address its answer came from ("127.0.0.1:5060",
    "[::1]:5060") and the transport of our Via in it."""
    host, _, port = source.rpartition(":")
    via = re.search(r"^(?:Via|v)\s*:\s*SIP/2\.0/(\w+)", response, re.MULTILINE | re.IGNORECASE)
    if not host or not port.isdigit() or via is None:
        return None
    return Flow(via.group(1).upper(), host.strip("[]"), int(port))


def _add_header(tx: pj.SipTxOption, name: str, value: str) -> None:
    header = pj.SipHeader()
    header.hName, header.hValue = name, value
    tx.headers.append(header)


class _LogWriter(pj.LogWriter):
    """pjsip's log into ours (errors and warnings as warnings, the rest as debug), and the
    requests it receives to the engine (`_on_rx_log`: check-sync NOTIFYs pjsua2 drops)."""

    def __init__(self, engine: SipEngine) -> None:
        super().__init__()
        self.engine = engine

    def write(self, entry: pj.LogEntry) -> None:
        text = entry.msg
        if text.startswith(("RX ", "TX ")):
            self.engine._trace_message(text)
            if text.startswith("RX "):
                self.engine._on_rx_log(text)
        level = logging.WARNING if entry.level <= 2 else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(level, "%s", text.rstrip())


class _Endpoint(pj.Endpoint):
    def __init__(self, engine: SipEngine) -> None:
        super().__init__()
        self.engine = engine

    def onTransportState(self, prm: pj.OnTransportStateParam) -> None:
        if prm.state == pj.PJSIP_TP_STATE_DISCONNECTED:
            self.engine._on_connection_lost()


class _Account(pj.Account):
    def __init__(self, engine: SipEngine, line: int) -> None:
        super().__init__()
        self.engine, self.line = engine, line

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.engine._on_reg_state(self, prm)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.engine._on_incoming(self, prm)

    def onMwiInfo(self, prm: pj.OnMwiInfoParam) -> None:
        self.engine._on_mwi(self, prm.rdata.wholeMsg or "")


class _Buddy(pj.Buddy):
    """A colleague whose presence (PIDF note, open/closed) this line subscribes to."""

    def __init__(self, engine: SipEngine, user: str) -> None:
        super().__init__()
        self.engine, self.user = engine, user

    def onBuddyState(self) -> None:
        try:
            info = self.getInfo()
        except pj.Error:
            return
        status = info.presStatus
        self.engine._emit(ev.PresenceChanged(
            self.user, status.status == pj.PJSUA_BUDDY_STATUS_ONLINE, status.note or ""))


class _Call(pj.Call):
    def __init__(self, engine: SipEngine, account: _Account, call_id: str,
                 pj_call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, pj_call_id)
        self.engine, self.call_id, self.line = engine, call_id, account.line
        self.info_digits: collections.deque[str] = collections.deque()  # keys not sent yet
        self.info_pending = False  # an INFO of ours awaits its final answer

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        self.engine._on_call_state(self)

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        if prm.e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = prm.e.body.tsxState.tsx
        if (tsx.role == pj.PJSIP_ROLE_UAC and tsx.method == "INFO"
                and tsx.state >= pj.PJSIP_TSX_STATE_COMPLETED and self.info_pending):
            self.info_pending = False
            if tsx.statusCode // 100 != 2:
                log.warning("call %s: SIP INFO key answered %d %s", self.call_id,
                            tsx.statusCode, tsx.statusText)
            self.engine._send_next_info(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        self.engine._on_call_media(self)

    def onCallRedirected(self, prm: pj.OnCallRedirectedParam) -> int:
        """A 3xx answer: follow it, like every desk phone (the far end forwards the call)."""
        log.info("call %s: redirected to %s", self.call_id, prm.targetUri)
        return pj.PJSIP_REDIRECT_ACCEPT_REPLACE

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        self.engine._emit(ev.TransferStatus(self.call_id, prm.statusCode, prm.reason,
                                            bool(prm.finalNotify)))

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        if not is_dialable_uri(prm.dstUri):
            log.warning("call %s: REFER to %r refused: not a SIP address", self.call_id,
                        prm.dstUri[:80])
            prm.statusCode = 400
            return
        prm.newCall = self.engine._transferred(self, prm.dstUri)

    def onCallRxOffer(self, prm: pj.OnCallRxOfferParam) -> None:
        if prm.statusCode == 200 and not self.engine._codec_in_common(prm.offer.wholeSdp):
            log.warning("call %s: offer without any codec of ours: 488", self.call_id)
            prm.statusCode = 488

    def onCallReplaced(self, prm: pj.OnCallReplacedParam) -> None:
        prm.newCall = self.engine._replaced(self, prm.newCallId)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        method = {pj.PJSUA_DTMF_METHOD_RFC2833: "rfc4733",
                  pj.PJSUA_DTMF_METHOD_SIP_INFO: "info"}.get(prm.method, str(prm.method))
        self.engine._emit(ev.DtmfReceived(self.call_id, prm.digit, method))


class SipEngine:
    """Owns pjsua2 on its own thread. Public methods are safe from any thread and never block,
    except `start()` (waits for the library to come up) and `stop()`."""

    def __init__(self, config: PhoneConfig, sink: EventSink, data_dir: Path,
                 audio_ends: AudioEnds | Sequence[AudioEnds] | None = None,
                 terminals: int = 1) -> None:
        """`audio_ends`: the sound hardware of terminal 0 (a desk phone's), or one per
        terminal (a DECT base's voice channels); None: the simulator's WAV files."""
        self._cfg = config
        self._audio_ends: list[AudioEnds | None] = (
            list(audio_ends) if isinstance(audio_ends, Sequence) else [audio_ends])
        self._sink = sink
        self._data_dir = data_dir
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._started = threading.Event()
        self._start_error: str | None = None
        self._ids = itertools.count(1)
        self._accounts: list[_Account] = []
        self._registered: set[int] = set()
        self._calls: dict[str, _Call] = {}
        self._ended: list[_Call] = []
        self._recent_incoming: collections.deque[float] = collections.deque()
        self._tarpit: dict[str, tuple[_Call, float, int]] = {}
        self._unborn: dict[str, float] = {}  # transfer calls pjsua has yet to place
        self._buddies: dict[str, _Buddy] = {}  # colleagues whose presence we watch
        self._ivr: dict[str, IvrLeg] = {}  # menu sessions: call id (or "local") -> audio
        self._graveyard = Graveyard()  # Python bridge ports let go, destroyed a bit later
        self._ep: pj.Endpoint | None = None
        self._media: TerminalMedia | None = None  # terminal 0's (the desk phone's)
        self._medias: list[TerminalMedia] = []  # every terminal's, [0] is self._media
        self._owners: dict[str, int] = {}  # call id -> the terminal whose audio it is
        self._terminals = terminals
        self._log_writer = _LogWriter(self)
        self._replaced_registration: set[int] = set()  # lines reconfigured while registered
        self._flows: dict[int, Flow] = {}  # line -> where its registration runs (check-sync)
        self._check_sync_seen: collections.deque[tuple[str, str]] = collections.deque(
            maxlen=32)  # (Call-ID, CSeq) of NOTIFYs taken: retransmissions are answered only
        self._answers = AnswerSender(config.sip.bind_address)
        self._trace: collections.deque[str] = collections.deque(maxlen=TRACE_MESSAGES)
        self._trace_lock = threading.Lock()
        self.sip_port = 0

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Bring the library up on the engine thread; raises RuntimeError when it cannot."""
        self._thread = threading.Thread(target=self._run, name="sip-engine", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the SIP engine did not start in time")
        if self._start_error:
            raise RuntimeError(self._start_error)

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up every call, unregister and destroy the library; returns when done."""
        if self._thread is None:
            return
        self._running.clear()
        self._thread.join(timeout)
        self._thread = None

    def new_call_id(self) -> str:
        return f"c{next(self._ids)}"

    # -- commands (any thread) ----------------------------------------------------------
    def register(self, line: int) -> None:
        self._submit("register", lambda: self._accounts[line].setRegistration(True))

    def make_call(self, call_id: str, line: int, number: str,
                  identity: ev.OutgoingIdentity | None = None,
                  pickup: ev.Pickup | None = None, terminal: int = 0) -> None:
        """`terminal`: whose audio the call is (a DECT base's handset; 0 on a desk phone)."""
        self._owners[call_id] = terminal
        self._submit("make_call",
                     lambda: self._make_call(call_id, line, number, identity, pickup), call_id)

    def ring(self, call_id: str) -> None:
        self._submit("ring", lambda: self._answer(call_id, 180), call_id)

    def answer(self, call_id: str, terminal: int = 0) -> None:
        """Answer; the call's audio goes to `terminal` (the handset that took it)."""
        self._owners[call_id] = terminal
        self._submit("answer", lambda: self._answer(call_id, 200), call_id)

    def hangup(self, call_id: str, code: int = 0) -> None:
        self._submit("hangup", lambda: self._hangup(call_id, code), call_id)

    def send_dtmf(self, call_id: str, digits: str) -> None:
        self._submit("send_dtmf", lambda: self._send_dtmf(call_id, digits), call_id)

    def hold(self, call_id: str) -> None:
        """Put the far end on hold (re-INVITE with a=sendonly, or inactive if it holds us)."""
        self._submit("hold", lambda: self._calls[call_id].setHold(pj.CallOpParam()), call_id)

    def resume(self, call_id: str) -> None:
        self._submit("resume", lambda: self._resume(call_id), call_id)

    def transfer(self, call_id: str, number: str) -> None:
        """Blind transfer: REFER the far end to `number` on the call's line."""
        self._submit("transfer", lambda: self._transfer(call_id, number), call_id)

    def transfer_replaces(self, call_id: str, other_call_id: str) -> None:
        """Attended transfer: REFER the far end of `call_id` to the far end of `other_call_id`
        with Replaces, so the two talk to each other."""
        self._submit("transfer", lambda: self._calls[call_id].xferReplaces(
            self._calls[other_call_id], pj.CallOpParam()), call_id)

    def redirect(self, call_id: str, number: str) -> None:
        """Answer an incoming call 302 Moved Temporarily with `number` as the Contact."""
        self._submit("redirect", lambda: self._redirect(call_id, number), call_id)

    def conference(self, call_ids: list[str], terminal: int = 0) -> None:
        """Mix these calls with each other (and, as always, with microphone and earpiece);
        an empty list ends the mixing."""
        self._submit("conference", lambda: self._terminal(terminal).set_conference(call_ids))

    def mute(self, muted: bool, terminal: int = 0) -> None:
        self._submit("mute", lambda: self._terminal(terminal).set_mute(muted))

    def intercom(self, first: int, second: int, on: bool) -> None:
        """An internal call between two terminals (a DECT base's handsets): each one's
        microphone into the other's earpiece; no SIP."""
        self._submit("intercom", lambda: self._terminal(first).link(self._terminal(second), on))

    def move_call(self, call_id: str, terminal: int) -> None:
        """The call's audio becomes terminal `terminal`'s (an internal transfer)."""
        self._submit("move_call", lambda: self._move_call(call_id, terminal))

    def start_recording(self, path: str, terminal: int = 0) -> None:
        """Record the terminal's microphone and every call's audio, mixed, into the WAV
        file `path`."""
        self._submit("start_recording",
                     lambda: self._terminal(terminal).start_recording(path))

    def stop_recording(self, terminal: int = 0) -> None:
        """Stop recording; `RecordingStopped` follows once the WAV header is written."""
        self._submit("stop_recording", lambda: self._stop_recording(terminal))

    def publish_presence(self, line: int, available: bool, note: str, activity: str) -> None:
        """Publish the user's status (PIDF with a note, RPID activity) for `line`."""
        self._submit("publish_presence",
                     lambda: self._publish(line, available, note, activity))

    def watch_presence(self, line: int, user: str) -> None:
        """Subscribe to a colleague's presence; `PresenceChanged` reports it."""
        self._submit("watch_presence", lambda: self._watch(line, user))

    def open_audio_path(self, terminal: int = 0) -> None:
        self._submit("open_audio_path", lambda: self._terminal(terminal).open_path())

    def close_audio_path(self, terminal: int = 0) -> None:
        self._submit("close_audio_path", lambda: self._terminal(terminal).close_path())

    def play_tone(self, name: str, segments: list[ToneSegment], loop: bool = True,
                  terminal: int = 0) -> None:
        self._submit("play_tone",
                     lambda: self._terminal(terminal).play_tone(name, segments, loop))

    def play_feedback(self, segments: list[ToneSegment], volume: int,
                      terminal: int = 0) -> None:
        self._submit("play_feedback",
                     lambda: self._terminal(terminal).play_feedback(segments, volume))

    def stop_tone(self, terminal: int = 0) -> None:
        self._submit("stop_tone", lambda: self._terminal(terminal).stop_tone())

    # -- touch-tone menu sessions (firmware.ivr): a call the phone answers itself, or the
    # owner at the desk ("local"). The session id is the call id, or ev.LOCAL_SESSION.
    def ivr_answer(self, call_id: str) -> None:
        """Answer an incoming call for a menu: its audio goes to the menu, not the terminal."""
        self._submit("ivr_answer", lambda: self._ivr_answer(call_id), call_id)

    def ivr_local(self, start: bool, terminal: int = 0) -> None:
        """Start (or end) the owner's session at the desk (at `terminal`: a DECT base's
        handset): prompts in its earpiece, its microphone recorded. The terminal keeps its
        audio path open meanwhile."""
        self._submit("ivr_local", lambda: self._ivr_local(start, terminal))

    def ivr_play(self, session: str, paths: list[str], token: int) -> None:
        """Play prompt files in order; `PromptFinished(session, token)` after the last."""
        self._submit("ivr_play", lambda: self._leg(session).play(paths, token), session)

    def ivr_stop_prompts(self, session: str) -> None:
        self._submit("ivr_stop_prompts", lambda: self._leg(session).stop_prompts(), session)

    def ivr_record(self, session: str, path: str, silence_s: float) -> None:
        """Record what the session hears into the WAV `path`; `SilenceHeard` after
        `silence_s` seconds of quiet (0 = never); `MenuRecordingStopped` once it is closed."""
        self._submit("ivr_record", lambda: self._leg(session).record(path, silence_s), session)

    def ivr_stop_recording(self, session: str) -> None:
        self._submit("ivr_stop_recording", lambda: self._leg(session).stop_recording(),
                     session)

    def loopback(self, on: bool, terminal: int = 0) -> None:
        """The technician's audio test: microphone to earpiece (`set_loopback`)."""
        self._submit("loopback", lambda: self._terminal(terminal).set_loopback(on))

    def sip_trace(self, count: int) -> list[str]:
        """The last `count` SIP messages sent and received, oldest first (any thread)."""
        with self._trace_lock:
            return list(self._trace)[-count:] if count > 0 else []

    def _trace_message(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._trace_lock:
            self._trace.append(f"{stamp} {text.split(chr(10) + '--end msg--', 1)[0]}")

    def stats(self) -> concurrent.futures.Future[dict[str, Any]]:
        """Engine counters, read on the engine thread: calls, media ports, earpiece file."""
        return self._query(self._stats)

    def _submit(self, name: str, fn: Callable[[], None], call_id: str = "") -> None:
        def run() -> None:
            try:
                fn()
            except pj.Error as exc:
                self._emit(ev.CommandFailed(name, exc.info(), call_id))
            except (KeyError, IndexError) as exc:
                self._emit(ev.CommandFailed(name, f"no such call or line: {exc}", call_id))
        self._commands.put(run)

    def _query(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:  # handed to the caller, not lost
                future.set_exception(exc)
        self._commands.put(run)
        return future

    def _emit(self, event: ev.SipEvent) -> None:
        try:
            self._sink(event)
        except Exception:  # a sink must never take the engine thread down
            log.exception("event sink failed for %r", event)

    # -- the engine thread --------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._create()
        except pj.Error as exc:
            self._start_error = f"SIP engine failed to start: {exc.info()}"
            self._started.set()
            self._destroy()
            return
        self._running.set()
        self._started.set()
        self._emit(ev.EngineStarted(self.sip_port, ("udp", "tcp")))
        while self._running.is_set():
            self._pump()
        self._shutdown()

    def _pump(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            command()
        assert self._ep is not None
        self._ep.libHandleEvents(PUMP_MS)
        if self._tarpit:
            self._release_tarpit()
        if self._unborn:
            self._drop_unborn()
        if self._ended:
            self._ended.clear()  # dropped only after their last callback returned
        self._graveyard.sweep()

    def _create(self) -> None:
        ep = self._ep = _Endpoint(self)
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = self._cfg.device.max_calls
        cfg.uaConfig.userAgent = self._cfg.sip.user_agent
        cfg.uaConfig.mwiUnsolicitedEnabled = True  # voicemail servers that NOTIFY unasked
        cfg.logConfig.writer = self._log_writer
        # Level 4 carries the messages received (check-sync); pjsua hands the writer only
        # what is at or below consoleLevel.
        cfg.logConfig.level = cfg.logConfig.consoleLevel = (
            5 if log.isEnabledFor(logging.DEBUG) else 4)
        cfg.logConfig.decor = 0
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.sndAutoCloseTime = -1  # the media clock runs on, also with calls held
        cfg.medConfig.clockRate = 16000
        cfg.medConfig.sndClockRate = 16000
        ep.libInit(cfg)
        self._create_transports(ep)
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._set_codecs(ep)
        sim = self._cfg.sim
        record_dir = self._data_dir / "audio" if sim.record_earpiece else None
        listen = self._inband_digit if self._cfg.sip.detect_inband_dtmf else None
        ends = self._audio_ends + [None] * self._terminals
        self._media = TerminalMedia(record_dir, sim.mic_tone_hz, sim.mic_file,
                                    ends=ends[0], dtmf_report=listen,
                                    graveyard=self._graveyard)
        self._medias = [self._media] + [  # a DECT base's other handsets, each its own audio
            TerminalMedia(record_dir / f"handset{n}" if record_dir else None, sim.mic_tone_hz,
                          sim.mic_file, ends=ends[n - 1], dtmf_report=listen,
                          graveyard=self._graveyard)
            for n in range(2, self._terminals + 1)]
        for index, line in enumerate(self._cfg.lines):
            self._add_account(index, line)

    def _create_transports(self, ep: pj.Endpoint) -> None:
        """UDP and TCP on one port, like every desk phone. With port 0 the system picks the
        UDP port; should that number be taken for TCP, another is tried."""
        attempts = 1 if self._cfg.sip.port else TRANSPORT_ATTEMPTS
        for attempt in range(attempts):
            tcfg = pj.TransportConfig()
            tcfg.port = self._cfg.sip.port
            tcfg.boundAddress = self._cfg.sip.bind_address
            if self._cfg.sip.public_address:
                tcfg.publicAddress = self._cfg.sip.public_address
            udp = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
            self.sip_port = int(ep.transportGetInfo(udp).localName.rsplit(":", 1)[1])
            tcfg.port = self.sip_port
            try:
                ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tcfg)
                return
            except pj.Error:
                if attempt == attempts - 1:
                    raise
                log.info("TCP port %d is taken: another port for both", self.sip_port)
                ep.transportClose(udp)

    def _set_codecs(self, ep: pj.Endpoint) -> None:
        wanted = [c.lower() for c in self._cfg.sip.codecs]
        for info in ep.codecEnum2():
            name = info.codecId.split("/", 1)[0].lower()
            prio = 200 - wanted.index(name) if name in wanted else 0
            ep.codecSetPriority(info.codecId, prio)

    def _add_account(self, index: int, line: LineConfig) -> None:
        account = _Account(self, index)
        account.create(self._account_config(line))
        self._accounts.append(account)

    def _account_config(self, line: LineConfig) -> pj.AccountConfig:
        domain = host_port(line.registrar_uri).rsplit(":", 1)[0]
        acfg = pj.AccountConfig()
        name = f'"{line.display_name}" ' if line.display_name else ""
        acfg.idUri = f"{name}<sip:{line.user}@{domain}>"
        acfg.regConfig.registrarUri = line.registrar_uri
        acfg.regConfig.registerOnAdd = line.register
        acfg.regConfig.timeoutSec = line.register_expires
        acfg.regConfig.retryIntervalSec = 0  # the controller's back-off re-registers (RFC 5626)
        acfg.regConfig.dropCallsOnFail = False
        acfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", line.auth_name, 0, line.password))
        acfg.sipConfig.proxies.append(self._proxy_uri(line))
        acfg.natConfig.sipOutboundUse = 0
        acfg.mwiConfig.enabled = line.mwi_subscribe and line.register
        acfg.presConfig.publishEnabled = line.publish_presence and line.register
        acfg.mwiConfig.expirationSec = 3600
        acfg.mediaConfig.lockCodecEnabled = False
        if self._cfg.sip.bind_address not in ("0.0.0.0", "::"):
            acfg.mediaConfig.transportConfig.boundAddress = self._cfg.sip.bind_address
        return acfg

    def reconfigure_line(self, index: int, line: LineConfig) -> None:
        """Take a changed line on live (provisioning): its registration ends and a new one
        starts with the new user, credentials, registrar or proxy; calls on it go on."""
        self._submit("reconfigure_line", lambda: self._reconfigure(index, line))

    def _reconfigure(self, index: int, line: LineConfig) -> None:
        account = self._accounts[index]
        if index in self._registered:
            self._replaced_registration.add(index)
        self._registered.discard(index)
        self._flows.pop(index, None)
        # pjsua unregisters the old contact (a new identity or registrar) and registers anew;
        # the old one's ending is not the line's (`_on_reg_state`)
        account.modify(self._account_config(line))
        log.info("line %d reconfigured%s", index + 1,
                 ", registering again" if line.register else ", not registering")

    @staticmethod
    def _proxy_uri(line: LineConfig) -> str:
        """Requests go through the outbound proxy, or else the registrar (hosted PBX)."""
        return line.outbound_proxy_uri or line.registrar_uri + ";lr"

    def _shutdown(self) -> None:
        ep = self._ep
        if ep is None:
            return
        try:
            ep.hangupAllCalls()
            deadline = time.monotonic() + 3.0
            while (self._calls or self._tarpit) and time.monotonic() < deadline:
                ep.libHandleEvents(PUMP_MS)
                self._ended.clear()
            for account in self._accounts:
                if account.isValid() and account.getInfo().regIsActive:
                    account.setRegistration(False)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and any(
                    a.getInfo().regIsActive for a in self._accounts if a.isValid()):
                ep.libHandleEvents(PUMP_MS)
        except pj.Error as exc:
            log.warning("shutdown: %s", exc.info())
        self._destroy()

    def _destroy(self) -> None:
        for leg in self._ivr.values():
            leg.close(stale=True)
        self._ivr.clear()
        self._graveyard.clear()
        for media in self._medias:
            media.close()
        self._medias = []
        self._media = None
        self._calls.clear()
        self._tarpit.clear()
        self._ended.clear()
        self._buddies.clear()
        self._accounts.clear()
        self._answers.close()
        gc.collect()  # every pjsua2 Call/Account must be gone before libDestroy
        if self._ep is not None:
            self._ep.libDestroy()
            self._ep = None

    # -- commands (engine thread) -------------------------------------------------------
    def _terminal(self, index: int = 0) -> TerminalMedia:
        """The audio of terminal `index` (0: the desk phone, or a DECT base's handset 1)."""
        if not 0 <= index < len(self._medias):
            raise IndexError(f"terminal {index}")
        return self._medias[index]

    def _move_call(self, call_id: str, terminal: int) -> None:
        old, new = self._media_of(call_id), self._terminal(terminal)
        self._owners[call_id] = terminal
        if old is new:
            return
        media = old.take_call(call_id)
        if media is not None:
            new.connect_call(call_id, media)
        log.info("call %s moved to terminal %d", call_id, terminal + 1)

    def _media_of(self, call_id: str) -> TerminalMedia:
        """The terminal whose audio a call is."""
        index = self._owners.get(call_id, 0)
        return self._medias[index] if 0 <= index < len(self._medias) else self._medias[0]

    def _target_uri(self, line: int, number: str) -> str:
        cfg = self._cfg.lines[line]
        uri = f"sip:{number}@{host_port(cfg.registrar_uri)}"
        return uri + ";transport=tcp" if cfg.transport == "tcp" else uri

    def _make_call(self, call_id: str, line: int, number: str,
                   identity: ev.OutgoingIdentity | None, pickup: ev.Pickup | None) -> None:
        account = self._accounts[line]
        uri = self._target_uri(line, number)
        call = _Call(self, account, call_id)
        self._calls[call_id] = call
        prm = pj.CallOpParam(True)
        if identity is not None:
            self._set_identity(prm.txOption, line, identity)
        if pickup is not None:  # the caller replaces its early dialog with this call
            # RFC 3891: to-tag is the recipient's (the caller's) own tag, from-tag its peer's
            _add_header(prm.txOption, "Replaces",
                        f"{pickup.call_id};to-tag={pickup.caller_tag};"
                        f"from-tag={pickup.callee_tag};early-only")
        try:
            call.makeCall(uri, prm)
        except pj.Error as exc:
            self._calls.pop(call_id, None)
            self._ended.append(call)
            self._emit(ev.CallStateChanged(call_id, "disconnected", 0, exc.reason or "error"))

    def _set_identity(self, tx: pj.SipTxOption, line: int,
                      identity: ev.OutgoingIdentity) -> None:
        """From (display, user) of a caller-ID role; P-Preferred-Identity names the line, and
        an anonymous role asks for privacy (RFC 3323, RFC 3325)."""
        cfg = self._cfg.lines[line]
        domain = host_port(cfg.registrar_uri).rsplit(":", 1)[0]
        if identity.anonymous:
            tx.localUri = '"Anonymous" <sip:anonymous@anonymous.invalid>'
            _add_header(tx, "Privacy", "id")
        else:
            name = identity.display_name.replace('"', "")
            user = identity.user or cfg.user
            tx.localUri = (f'"{name}" ' if name else "") + f"<sip:{user}@{domain}>"
        _add_header(tx, "P-Preferred-Identity", f"<sip:{cfg.user}@{domain}>")

    def _publish(self, line: int, available: bool, note: str, activity: str) -> None:
        if not self._cfg.lines[line].publish_presence:
            return
        status = pj.PresenceStatus()
        status.status = pj.PJSUA_BUDDY_STATUS_ONLINE if available \
            else pj.PJSUA_BUDDY_STATUS_OFFLINE
        status.activity = {"away": pj.PJRPID_ACTIVITY_AWAY,
                           "busy": pj.PJRPID_ACTIVITY_BUSY}.get(activity,
                                                               pj.PJRPID_ACTIVITY_UNKNOWN)
        status.note = note
        self._accounts[line].setOnlineStatus(status)

    def _watch(self, line: int, user: str) -> None:
        if user in self._buddies:
            return
        cfg = self._cfg.lines[line]
        buddy = _Buddy(self, user)
        bcfg = pj.BuddyConfig()
        bcfg.uri = f"sip:{user}@{host_port(cfg.registrar_uri).rsplit(':', 1)[0]}"
        bcfg.subscribe = True
        buddy.create(self._accounts[line], bcfg)
        self._buddies[user] = buddy

    def _resume(self, call_id: str) -> None:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self._calls[call_id].reinvite(prm)

    def _transfer(self, call_id: str, number: str) -> None:
        call = self._calls[call_id]
        call.xfer(self._target_uri(call.line, number), pj.CallOpParam())

    def _redirect(self, call_id: str, number: str) -> None:
        call = self._calls[call_id]
        prm = pj.CallOpParam()
        prm.statusCode = 302
        _add_header(prm.txOption, "Contact", f"<{self._target_uri(call.line, number)}>")
        call.hangup(prm)

    def _stop_recording(self, terminal: int) -> None:
        path = self._terminal(terminal).stop_recording()
        if path is not None:
            self._emit(ev.RecordingStopped(str(path)))

    def _transferred(self, call: _Call, target: str) -> _Call:
        """The far end REFERs us to `target`: pjsua accepts and calls it on a new call. Should
        pjsua fail to place it, the new call never gets an id: `_drop_unborn` ends it."""
        new = _Call(self, self._accounts[call.line], self.new_call_id())
        self._calls[new.call_id] = new
        self._owners[new.call_id] = self._owners.get(call.call_id, 0)
        self._unborn[new.call_id] = time.monotonic() + UNBORN_S
        party = parse_party(target)
        log.info("call %s: the far end transfers us to %s (call %s)", call.call_id, target,
                 new.call_id)
        self._emit(ev.CallReplaced(call.call_id, new.call_id, True, target, party.name,
                                   party.number))
        return new

    def _replaced(self, call: _Call, pj_call_id: int) -> _Call:
        """An INVITE with Replaces took the place of `call` (we are the transfer target)."""
        new = _Call(self, self._accounts[call.line], self.new_call_id(), pj_call_id)
        self._calls[new.call_id] = new
        self._owners[new.call_id] = self._owners.get(call.call_id, 0)
        info = new.getInfo()
        party = parse_party(info.remoteUri)
        log.info("call %s replaced by call %s from %s", call.call_id, new.call_id,
                 info.remoteUri)
        self._emit(ev.CallReplaced(call.call_id, new.call_id, False, info.remoteUri,
                                   party.name, party.number))
        return new

    def _answer(self, call_id: str, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        self._calls[call_id].answer(prm)

    def _hangup(self, call_id: str, code: int) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return  # already gone: hanging up twice is harmless
        if call.getId() == pj.PJSUA_INVALID_ID:  # never placed by pjsua: nothing to end
            self._drop_call(call, "not placed")
            return
        prm = pj.CallOpParam()
        prm.statusCode = code
        call.hangup(prm)

    def _send_dtmf(self, call_id: str, digits: str) -> None:
        call = self._calls[call_id]
        method = self._cfg.lines[call.line].dtmf_method(self._cfg.sip.dtmf_mode)
        if method == "inband":
            self._media_of(call_id).play_dtmf(call_id, digits)
            return
        if method == "info":
            call.info_digits.extend(digits)
            if not call.info_pending:
                self._send_next_info(call)
            return
        self._send_dtmf_request(call, digits, pj.PJSUA_DTMF_METHOD_RFC2833)

    def _send_next_info(self, call: _Call) -> None:
        """SIP INFO carries one key per request, and the next goes only once the previous one
        is answered: a proxy may reorder requests sent together, and a far end answers a
        request with a CSeq lower than one it has seen with 500, losing that key."""
        if not call.info_digits or call.call_id not in self._calls:
            call.info_digits.clear()
            return
        call.info_pending = True
        try:
            self._send_dtmf_request(call, call.info_digits.popleft(),
                                    pj.PJSUA_DTMF_METHOD_SIP_INFO)
        except pj.Error as exc:
            call.info_pending = False
            call.info_digits.clear()
            log.warning("call %s: cannot send a key by SIP INFO: %s", call.call_id, exc.info())

    @staticmethod
    def _send_dtmf_request(call: _Call, digits: str, method: int) -> None:
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = method
        call.sendDtmf(prm)

    def _new_leg(self, session: str, listen_for_dtmf: bool) -> IvrLeg:
        leg = self._ivr.get(session)
        if leg is not None:
            return leg
        leg = IvrLeg(
            session, 16000,
            digit=lambda key: self._emit(ev.DtmfReceived(session, key, "inband")),
            silence=lambda: self._emit(ev.SilenceHeard(session)),
            prompt_end=lambda: self._submit("ivr_advance", lambda: self._advance(session)),
            finished=lambda token: self._emit(ev.PromptFinished(session, token)),
            recorded=lambda path: self._emit(ev.MenuRecordingStopped(session, path)),
            graveyard=self._graveyard, listen_for_dtmf=listen_for_dtmf)
        self._ivr[session] = leg
        return leg

    def _leg(self, session: str) -> IvrLeg:
        return self._ivr[session]

    def _advance(self, session: str) -> None:
        leg = self._ivr.get(session)
        if leg is not None:
            leg.advance()

    def _ivr_answer(self, call_id: str) -> None:
        if call_id not in self._calls:  # the caller gave up already: no leg to leak
            raise KeyError(call_id)
        self._new_leg(call_id, True)
        self._answer(call_id, 200)

    def _ivr_local(self, start: bool, index: int) -> None:
        terminal = self._terminal(index)
        if start:
            self._new_leg(ev.LOCAL_SESSION, False).attach(terminal.mic, terminal.earpiece)
            return
        leg = self._ivr.pop(ev.LOCAL_SESSION, None)
        if leg is not None:
            leg.close(stale=False)

    def _stats(self) -> dict[str, Any]:
        assert self._ep is not None and self._media is not None
        return {
            "calls": len(self._calls),
            "media_ports": self._ep.mediaActivePorts(),
            "earpiece_file": str(self._media.earpiece_file or ""),
            "tone": self._media.tone,
            "tone_started_at": self._media.tone_started_at,
            "sip_port": self.sip_port,
        }

    # -- callbacks (engine thread) ------------------------------------------------------
    def _on_reg_state(self, account: _Account, prm: pj.OnRegStateParam) -> None:
        if (account.line in self._replaced_registration and prm.code // 100 == 2
                and prm.expiration == 0):
            self._replaced_registration.discard(account.line)
            log.info("line %d: the registration it had before the change has ended",
                     account.line + 1)
            return
        retry_after = None
        if prm.code in (503, 500, 480):
            retry_after = retry_after_seconds(prm.rdata.wholeMsg or "")
        registered = prm.code // 100 == 2 and prm.expiration > 0
        if registered:
            self._registered.add(account.line)
            flow = _flow(prm.rdata.srcAddress, prm.rdata.wholeMsg or "")
            if flow is not None:
                self._flows[account.line] = flow
        else:
            self._registered.discard(account.line)
            self._flows.pop(account.line, None)
        self._emit(ev.RegistrationChanged(account.line, registered, prm.code, prm.reason,
                                          prm.expiration, retry_after))

    def _on_rx_log(self, text: str) -> None:
        """A request pjsip received, from its log: a check-sync NOTIFY is answered here and
        reported, stray NOTIFYs and REFERs outside any dialog are refused
        (`firmware.sip.check_sync`); everything else is pjsua2's business."""
        notify = received_request(text)
        if notify is None:
            return
        decision = decide(notify, self._flows)
        if decision.answer:
            self._answers.send(decision.answer, notify.message, decision.reply_to)
        if decision.line is None:
            if decision.reason:
                log.warning("%s", decision.reason)
            return
        key = (notify.message.header("call-id"), notify.message.header("cseq"))
        if key in self._check_sync_seen:
            return  # a retransmission: answered again, acted on once
        self._check_sync_seen.append(key)
        log.info("%s", decision.reason)
        self._emit(ev.CheckSyncRequested(decision.line, decision.reboot, str(notify.flow)))

    def _on_mwi(self, account: _Account, message: str) -> None:
        body = message.partition("\r\n\r\n")[2] or message.partition("\n\n")[2]
        summary = parse_message_summary(body)
        if summary is None and not body.strip():
            log.debug("line %d: an empty message-summary (nothing published yet)",
                      account.line + 1)
            return
        if summary is None:
            log.warning("line %d: a message-summary without Messages-Waiting: ignored",
                        account.line + 1)
            return
        self._emit(ev.MessageWaiting(account.line, summary.waiting, summary.new, summary.old))

    def _inband_digit(self, call_id: str, digit: str) -> None:
        self._emit(ev.DtmfReceived(call_id, digit, "inband"))

    def _on_connection_lost(self) -> None:
        """A TCP connection closed: lines registered over TCP register again at once (a flow
        failure, RFC 5626 4.4), so a lost registrar shows as "No service" within moments."""
        for index, line in enumerate(self._cfg.lines):
            if line.transport == "tcp" and index in self._registered:
                self._registered.discard(index)  # only once: a failed attempt must not loop
                self._submit("register", lambda i=index: self._accounts[i].setRegistration(True))

    def _on_incoming(self, account: _Account, prm: pj.OnIncomingCallParam) -> None:
        call_id = self.new_call_id()
        call = _Call(self, account, call_id, prm.callId)
        code, hold = self._admission()
        if code and hold:
            # Flood: keep the call (and so one of pjsua's call slots) unanswered for a while
            # before refusing it. With every slot held, pjsua answers further INVITEs 486
            # itself, before it opens RTP sockets: the socket pool cannot run dry.
            self._tarpit[call_id] = (call, time.monotonic() + hold, code)
            return
        if code:
            self._refuse(call, code)
            return
        self._calls[call_id] = call
        info = call.getInfo()
        party = parse_party(info.remoteUri)
        self._emit(ev.IncomingCall(call_id, account.line, info.remoteUri, party.name,
                                   party.number))

    def _refuse(self, call: _Call, code: int) -> None:
        self._ended.append(call)
        op = pj.CallOpParam()
        op.statusCode = code
        try:
            call.hangup(op)
        except pj.Error as exc:  # the caller may have given up already
            log.debug("refusing %s: %s", call.call_id, exc.info())

    def _admission(self) -> tuple[int, float]:
        """(0, 0) admits a new incoming call; else (status code, seconds to hold it first)."""
        now = time.monotonic()
        recent = self._recent_incoming
        while recent and now - recent[0] > 1.0:
            recent.popleft()
        recent.append(now)
        limit = self._cfg.sip.max_incoming_calls_per_second
        if len(recent) > limit:
            if len(recent) == limit + 1:
                log.warning("incoming calls arrive faster than %d/s: refusing with 503", limit)
            return 503, FLOOD_HOLD_S
        if len(self._calls) >= self._cfg.device.max_calls:
            return 486, 0.0
        return 0, 0.0

    def _drop_unborn(self) -> None:
        """Calls pjsua was to place for a transfer but never did: end them here."""
        now = time.monotonic()
        for call_id, due in list(self._unborn.items()):
            call = self._calls.get(call_id)
            if call is None or call.getId() != pj.PJSUA_INVALID_ID:
                del self._unborn[call_id]
            elif due <= now:
                del self._unborn[call_id]
                self._drop_call(call, "the transfer target could not be called")

    def _drop_call(self, call: _Call, reason: str) -> None:
        self._calls.pop(call.call_id, None)
        self._unborn.pop(call.call_id, None)
        self._ended.append(call)
        self._emit(ev.CallStateChanged(call.call_id, "disconnected", 0, reason))

    def _codec_in_common(self, sdp: str) -> bool:
        """Whether an SDP offer's audio lists a codec we accept (telephone-event alone is
        not a codec). Unreadable SDP counts as yes: pjsip judges it itself."""
        offered = {name.lower() for name in re.findall(r"^a=rtpmap:\d+\s+([^/\s]+)/", sdp,
                                                       re.MULTILINE)}
        static = {"0": "pcmu", "8": "pcma", "9": "g722", "3": "gsm"}
        for line in re.findall(r"^m=audio\s+\d+\s+\S+\s+(.*)$", sdp, re.MULTILINE):
            offered |= {static[pt] for pt in line.split() if pt in static}
        if not offered:
            return True
        ours = {codec.lower() for codec in self._cfg.sip.codecs}
        return bool(offered & ours)

    def _release_tarpit(self) -> None:
        now = time.monotonic()
        for call_id, (call, due, code) in list(self._tarpit.items()):
            # refusing one call can end another of the list from inside pjsua (its callback
            # already took it out): skip what is gone
            if due <= now and self._tarpit.pop(call_id, None) is not None:
                self._refuse(call, code)

    def _on_call_state(self, call: _Call) -> None:
        info = call.getInfo()
        state = _INV_STATES.get(info.state, "unknown")
        if state == "disconnected":
            if self._tarpit.pop(call.call_id, None) is not None:
                self._ended.append(call)
            self._media_of(call.call_id).forget_call(call.call_id)
            self._owners.pop(call.call_id, None)
            leg = self._ivr.pop(call.call_id, None)
            if leg is not None:
                leg.close(stale=True)
            if self._calls.pop(call.call_id, None) is not None:
                self._ended.append(call)
        if state in ("incoming", "unknown"):
            return
        name = parse_party(info.remoteContact).name or parse_party(info.remoteUri).name
        self._emit(ev.CallStateChanged(call.call_id, state, info.lastStatusCode,
                                       info.lastReason, info.remoteUri, name))

    def _on_call_media(self, call: _Call) -> None:
        info = call.getInfo()
        hold = ""
        live = {m.audioConfSlot for m in info.media if m.type == pj.PJMEDIA_TYPE_AUDIO}
        leg = self._ivr.get(call.call_id)
        if leg is not None:
            self._menu_media(call, info, leg, live)
            return
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                # held by the far end: its music on hold is still heard
                self._media_of(call.call_id).connect_call(call.call_id,
                                                          call.getAudioMedia(index))
                self._emit(ev.CallMediaChanged(call.call_id, True, _HOLD.get(media.status, "")))
                return
            hold = _HOLD.get(media.status, hold)
        terminal = self._media_of(call.call_id)
        terminal.disconnect_call(call.call_id, stale=not terminal.is_current(call.call_id, live))
        self._emit(ev.CallMediaChanged(call.call_id, False, hold))

    def _menu_media(self, call: _Call, info: pj.CallInfo, leg: IvrLeg, live: set[int]) -> None:
        """A menu session's call: its stream is the session's source and sink."""
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status in (
                    pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                stream = call.getAudioMedia(index)
                if leg.slot != stream.getPortId():
                    leg.attach(stream, stream, stale=leg.slot not in live)
                return
        leg.detach(stale=leg.slot not in live)
