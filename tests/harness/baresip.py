"""baresip as a scripted test phone: registers to the PBX, dials, answers, records.

Each `Baresip` gets its own config directory, SIP port and ctrl_tcp port on
127.0.0.1. It sends a sine tone (`ausine`) and records what it receives as
WAV files (`sndfile` module: recordings/dump-<time>-dec.wav, 8 kHz mono for
G.711). It is driven over ctrl_tcp (JSON in netstrings); every event baresip
pushes is kept, so a test can wait for one that already happened.

Events seen from baresip 1.0.0 (JSON field "type"):
  register:    REGISTERING, REGISTER_OK (param "200 OK"), REGISTER_FAIL
               (param e.g. "503 Service Unavailable", "401 Unauthorized"),
               UNREGISTERING
  call:        CALL_INCOMING (not sent when the account auto-answers),
               CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED (param: the
               reason, e.g. "486 Busy Here", "404 Not Found",
               "Connection reset by peer"/"... by user" after a BYE),
               CALL_RTCP (with "rtcp_stats")
  other:       CALL_LOCAL_SDP / CALL_REMOTE_SDP (param "offer"/"answer"),
               CALL_RTPESTAB
  application: SHUTDOWN, EXIT
Every event has event=true, type, class, accountaor; call events add
direction ("incoming"/"outgoing"), peeruri, id (the Call-ID; missing in the
first CALL_LOCAL_SDP of an outgoing call) and param.

Notes: the account is added with `uanew` after ctrl_tcp is connected (the
accounts file stays empty), so REGISTER events are never missed. The audio
player is `aubridge` (paced by a timer): ALSA's `null` device is not paced and
costs ~90 % of a core per call. After a REGISTER_FAIL baresip 1.0.0 retries
only after its own back-off (> 40 s), ignoring Retry-After.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import socket
import threading
import wave
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tools.pbx.ports import free_port, free_port_range
from tools.pbx.process import ManagedProcess, Peer
from tools.pbx.waiting import wait_until

MODULE_PATH = "/usr/lib/baresip/modules"
# ausine refuses 0 Hz and aufile ends the call at the end of its file, so
# "silence" is a 20 kHz tone: resampling to G.711's 8 kHz filters it out.
SILENT_TONE_HZ = 20000
# Below the ports free_port() hands out (20000-32767) and the ephemeral range.
RTP_PORTS = "10000-20000"


class BaresipError(RuntimeError):
    """baresip failed to start, a command failed, or an awaited event did not come."""


class CtrlTcpClient:
    """A ctrl_tcp connection: sends commands, collects responses and events.

    A background thread reads every netstring; responses are matched to
    commands by token, events are appended to a list that is never trimmed.
    """

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=2.0)
        self._sock.settimeout(None)
        self._cond = threading.Condition()
        self._events: list[dict[str, Any]] = []
        self._taken: set[int] = set()
        self._responses: dict[str, dict[str, Any]] = {}
        self._tokens = itertools.count(1)
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Send a command; return baresip's response {"response", "ok", "data", "token"}."""
        token = f"t{next(self._tokens)}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self._sock.sendall(b"%d:%s," % (len(body), body))
        with self._cond:
            if not self._cond.wait_for(lambda: token in self._responses or self._closed, timeout):
                raise BaresipError(f"no response to {name!r} within {timeout}s")
            if token not in self._responses:
                raise BaresipError(f"ctrl_tcp closed before answering {name!r}")
            return self._responses.pop(token)

    def wait_event(self, types: Collection[str], timeout: float) -> dict[str, Any]:
        """Oldest not-yet-returned event whose type is in `types` (waits for one)."""
        with self._cond:
            found = self._cond.wait_for(lambda: self._find(types) is not None, timeout)
            if not found:
                raise BaresipError(f"no {'/'.join(types)} event within {timeout}s")
            index = self._find(types)
            assert index is not None
            self._taken.add(index)
            return self._events[index]

    def events(self) -> list[dict[str, Any]]:
        """Every event received so far, oldest first."""
        with self._cond:
            return list(self._events)

    def close(self) -> None:
        """Close the connection; the reader thread ends."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(timeout=2.0)

    def _find(self, types: Collection[str]) -> int | None:
        for index, event in enumerate(self._events):
            if index not in self._taken and event.get("type") in types:
                return index
        return None

    def _read_loop(self) -> None:
        buffer = b""
        try:
            while chunk := self._sock.recv(65536):
                buffer += chunk
                messages, buffer = split_netstrings(buffer)
                for message in messages:
                    self._dispatch(json.loads(message))
        except OSError:
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._cond:
            if message.get("event"):
                self._events.append(message)
            elif message.get("response"):
                self._responses[str(message.get("token"))] = message
            self._cond.notify_all()


def split_netstrings(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split complete netstrings ("<len>:<data>,") off `buffer`; return (payloads, rest)."""
    payloads = []
    while b":" in buffer:
        length, rest = buffer.split(b":", 1)
        size = int(length)
        if len(rest) < size + 1:
            break
        if rest[size : size + 1] != b",":
            raise ValueError("malformed netstring from ctrl_tcp")
        payloads.append(rest[:size])
        buffer = rest[size + 1 :]
    return payloads, buffer


class Baresip(Peer):
    """One baresip user agent registered as `user` to the PBX on 127.0.0.1:`pbx_port`.

    `tone_hz` is the sine tone it sends in calls (None: silence). With
    `auto_answer` it accepts incoming calls at once. `transport` is "udp" or
    "tcp" for all signalling to the PBX. Use as a context manager or call
    start()/stop(); stop() leaves no process behind.
    """

    def __init__(
        self,
        workdir: Path,
        user: str,
        password: str,
        pbx_port: int,
        tone_hz: int | None = 1000,
        auto_answer: bool = False,
        transport: str = "udp",
        domain: str = "127.0.0.1",
        codecs: tuple[str, ...] = ("g711",),
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError(f"transport must be 'udp' or 'tcp', not {transport!r}")
        self.workdir = Path(workdir).resolve()
        self.user, self.password = user, password
        self.pbx_port, self.domain = pbx_port, domain
        self.tone_hz, self.auto_answer, self.transport = tone_hz, auto_answer, transport
        self.codecs = codecs  # baresip codec modules, in order of preference
        self.sip_port = free_port_range(2)  # baresip binds TLS on sip_port + 1
        self.ctrl_port = free_port()
        self._process: ManagedProcess | None = None
        self._ctrl: CtrlTcpClient | None = None

    # ----- paths and addresses -----

    @property
    def recordings_dir(self) -> Path:
        """Where the sndfile module writes dump-*-enc.wav / dump-*-dec.wav."""
        return self.workdir / "recordings"

    @property
    def log_path(self) -> Path:
        return self.workdir / "baresip.log"

    @property
    def aor(self) -> str:
        """This phone's address of record, e.g. 'sip:2001@127.0.0.1:5060'."""
        return f"sip:{self.user}@{self.domain}:{self.pbx_port}"

    def uri_of(self, user: str) -> str:
        """SIP URI for calling `user` through the same PBX."""
        return f"sip:{user}@{self.domain}:{self.pbx_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def pids(self) -> list[int]:
        """Live processes of this baresip (empty once stopped)."""
        return self._process.pids() if self._process else []

    # ----- lifecycle -----

    def start(self, timeout: float = 10.0) -> Baresip:
        """Write the config, launch baresip, connect ctrl_tcp and add the account.

        Returns once the account exists (registration is under way: see
        wait_registered). Raises BaresipError with the log tail on failure.
        """
        if self._process is not None:
            raise BaresipError("already started")
        self._write_config()
        self._process = ManagedProcess(self._command(), self.log_path, cwd=self.workdir)
        self._process.start()
        try:
            self._ctrl = self._connect(timeout)
            self._add_account()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close ctrl_tcp and stop baresip by PID (SIGTERM, then SIGKILL). Idempotent."""
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        if self._process is not None:
            # baresip waits for open SIP transactions on SIGTERM and sometimes
            # never finishes (after cancelling a call); a second SIGTERM forces it.
            self._process.stop(grace=5.0, term_interval=1.0)
            self._process = None


    # ----- control -----

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a baresip command (as typed in its UI) over ctrl_tcp; return the response.

        The response is {"response": true, "ok": bool, "data": str, "token": str}.
        """
        return self._client().command(name, params, timeout)

    def dial(self, target_uri: str) -> dict[str, Any]:
        """Start a call to `target_uri` (e.g. self.uri_of("2002"))."""
        return self._checked("dial", target_uri)

    def answer(self) -> dict[str, Any]:
        """Answer the ringing incoming call."""
        return self._checked("accept")

    def hangup(self) -> dict[str, Any]:
        """End (or reject/cancel) the current call."""
        return self._checked("hangup")

    def wait_event(self, event_type: str, timeout: float = 5.0) -> dict[str, Any]:
        """Return the oldest not-yet-returned event of `event_type`, waiting up to `timeout`.

        Events that arrived before the call are kept, so the order of dial()
        and wait_event() does not matter. Raises BaresipError on timeout.
        """
        return self.wait_any_event([event_type], timeout)

    def wait_any_event(self, event_types: Collection[str], timeout: float = 5.0) -> dict[str, Any]:
        """Like wait_event, for the first event whose type is any of `event_types`."""
        try:
            return self._client().wait_event(event_types, timeout)
        except BaresipError as error:
            raise BaresipError(f"{self.user}: {error}; log tail:\n{self._log_tail()}") from None

    def wait_registered(self, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for REGISTER_OK; raise BaresipError on REGISTER_FAIL or timeout."""
        event = self.wait_any_event(["REGISTER_OK", "REGISTER_FAIL"], timeout)
        if event["type"] != "REGISTER_OK":
            raise BaresipError(f"{self.user}: registration failed: {event.get('param')}")
        return event

    def events(self) -> list[dict[str, Any]]:
        """Every ctrl_tcp event received so far, oldest first."""
        return self._client().events()

    def received_audio_files(self) -> list[Path]:
        """WAV files of decoded received audio (dump-*-dec.wav), oldest first.

        One file per call, named by the second the call's audio started (two
        calls starting within the same second share, and overwrite, one file).
        baresip writes the WAV header when the call ends: see wait_audio_files.
        """
        return sorted(self.recordings_dir.glob("dump-*-dec.wav"))

    def wait_audio_files(self, count: int = 1, timeout: float = 5.0) -> list[Path]:
        """Wait until `count` received-audio WAVs exist with finalised headers; return all.

        Use after CALL_CLOSED: the WAV header gets its length when the call ends.
        """

        def finished() -> list[Path] | None:
            files = [f for f in self.received_audio_files() if wav_frames(f) > 0]
            return files if len(files) >= count else None

        return wait_until(finished, timeout, what=f"{count} recording(s) of {self.user}")

    # ----- internals -----

    def _client(self) -> CtrlTcpClient:
        if self._ctrl is None:
            raise BaresipError(f"baresip {self.user} is not running")
        return self._ctrl

    def _checked(self, name: str, params: str = "") -> dict[str, Any]:
        response = self.command(name, params)
        if not response.get("ok"):
            raise BaresipError(f"{self.user}: {name} {params} failed: {response.get('data')}")
        return response

    def _command(self) -> list[str]:
        return [shutil.which("baresip") or "/usr/bin/baresip", "-f", str(self.workdir)]

    def _connect(self, timeout: float) -> CtrlTcpClient:
        what = f"ctrl_tcp of {self.user}"
        return wait_until(self._try_connect, timeout, interval=0.05, what=what)

    def _try_connect(self) -> CtrlTcpClient | None:
        assert self._process is not None
        if not self._process.running():
            raise BaresipError(f"baresip {self.user} exited; log tail:\n{self._log_tail()}")
        try:
            return CtrlTcpClient(self.ctrl_port)
        except OSError:
            return None

    def _add_account(self) -> None:
        self._checked("uanew", self._account_line())

    def _account_line(self) -> str:
        """The baresip account for this phone, as in an accounts file."""
        uri = f"sip:{self.user}@{self.domain}:{self.pbx_port}"
        params = f";auth_pass={self.password};regint=600;ptime=20"
        if self.transport == "tcp":
            uri += ";transport=tcp"
            params += f';outbound="sip:127.0.0.1:{self.pbx_port};transport=tcp"'
        if self.auto_answer:
            params += ";answermode=auto"
        return f"<{uri}>{params}"

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(exist_ok=True)
        (self.workdir / "config").write_text(self._config_text())
        (self.workdir / "accounts").write_text("# added at start with 'uanew'\n")
        (self.workdir / "contacts").write_text("")

    def _config_text(self) -> str:
        """baresip config: loopback only, G.711, sine source, sndfile recorder, ctrl_tcp."""
        return "\n".join([
            "poll_method\t\tepoll",
            f"sip_listen\t\t127.0.0.1:{self.sip_port}",
            "net_interface\t\t127.0.0.1",
            "call_local_timeout\t120",
            "call_max_calls\t\t4",
            f"audio_source\t\t{self._audio_source()}",
            "ausrc_srate\t\t48000",
            "ausrc_channels\t\t2",
            "audio_player\t\taubridge,sink",
            "audio_alert\t\taubridge,alert",
            f"rtp_ports\t\t{RTP_PORTS}",
            "rtcp_mux\t\tno",
            "statmode_default\toff",
            f"module_path\t\t{MODULE_PATH}",
            *(f"module\t\t\t{codec}.so" for codec in self.codecs),
            "module\t\t\tsndfile.so",
            "module\t\t\tausine.so",
            "module\t\t\taubridge.so",
            "module_tmp\t\taccount.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            f"ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}",
            # relative to the working directory baresip runs in: its sndfile module cuts
            # file names at 128 bytes, which a deep test directory would exceed (".wav" lost)
            f"snd_path\t\t{self.recordings_dir.relative_to(self.workdir)}",
            "",
        ])

    def _audio_source(self) -> str:
        """ausine at tone_hz; for silence (None) a 20 kHz tone, see SILENT_TONE_HZ."""
        return f"ausine,{self.tone_hz or SILENT_TONE_HZ}"

    def _log_tail(self, lines: int = 30) -> str:
        return self._process.log_tail(lines) if self._process else ""


def wav_frames(path: Path) -> int:
    """Frames a WAV header declares (0 while libsndfile has not finalised it)."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes()
    except (EOFError, wave.Error, OSError):
        return 0
