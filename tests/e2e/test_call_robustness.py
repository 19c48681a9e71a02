"""Bad input around calls: answered correctly, nothing crashes, no call is lost.

The acceptance point of the call-handling issue: a REFER for an unknown call, a re-INVITE with
broken SDP, a NOTIFY for a subscription that never existed. Each test checks the exact SIP
answer, then that the phone is still fine: its process and control API are up, it answers
OPTIONS, its line is registered (on the phone and at the PBX), the call in progress is still
connected with audio flowing (its duration keeps growing, the earpiece hears the far end right
now, the far end heard the phone), and a later normal call works.

Requests that belong to no dialog of the phone are sent from the test's own UDP socket straight
to the phone's SIP port (`ask`), during a call the phone placed through the PBX to a baresip.
Requests inside a real dialog come from SIPp scenarios (tests/harness/scenarios/
uac_reinvite_bad_sdp.xml, uac_notify_in_dialog.xml, uac_refer_in_dialog.xml) that call the
phone directly, echo its RTP (-rtp_echo: the phone hears its own microphone), log each final
answer, and wait for an INFO from the phone (a key press, line DTMF mode "info") before they
hang up, so the test can look at the phone while the dialog is up.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import struct
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PhoneFactory, wait_registered
from tests.harness.audio_check import dominant_frequency
from tests.harness.baresip import Baresip
from tests.harness.sipp import SCENARIOS, run_uac_load, sipp_argv
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.pbx.process import ManagedProcess, log_tail
from tools.pbx.sipprobe import SipResponse, parse_response, sip_request
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneProcess

pytestmark = pytest.mark.e2e

PHONE_TONE, FAR_TONE = 700, 1000
ANSWER_WAIT = 2.0  # s; a UAS answers a non-INVITE request at once, and `ask` resends every 0.5 s
MWI_BODY = "Messages-Waiting: no\r\nVoice-Message: 0/0 (0/0)\r\n"
DIALOG_INFO = ('<?xml version="1.0"?>\r\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"'
               ' version="0" state="full" entity="sip:1009@127.0.0.1"/>\r\n')


# --- one request from the test's own socket -------------------------------------------------

def ask(port: int, method: str, headers: Sequence[str] = (), *, to_tag: str | None = None,
        call_id: str | None = None, body: str = "", content_type: str = "") -> SipResponse | None:
    """Send `method` to the phone at 127.0.0.1:`port` over UDP; its final answer, or None.

    With `to_tag` the request looks like one inside a dialog (To carries a tag); without,
    it is out of dialog. `call_id` defaults to a fresh one. The request is resent every 0.5 s
    (RFC 3261 Timer E) until a final answer comes, at most ANSWER_WAIT seconds.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        lines = [
            f"{method} sip:1001@127.0.0.1:{port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};rport;branch=z9hG4bK{secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"From: <sip:probe@127.0.0.1>;tag={secrets.token_hex(4)}",
            "To: <sip:1001@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id or secrets.token_hex(12) + '@127.0.0.1'}",
            f"CSeq: 5 {method}",
            f"Contact: <sip:probe@127.0.0.1:{local}>",
            *headers,
            *([f"Content-Type: {content_type}"] if content_type else []),
            f"Content-Length: {len(body.encode())}",
        ]
        message = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        deadline = time.monotonic() + ANSWER_WAIT
        resend = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= resend:
                sock.sendto(message, ("127.0.0.1", port))
                resend = now + 0.5
            sock.settimeout(max(0.001, min(resend, deadline) - now))
            try:
                answer = parse_response(sock.recv(65535))
            except (TimeoutError, ConnectionRefusedError):
                continue
            if answer.status >= 200:
                return answer
    return None


def code(answer: SipResponse | None) -> str:
    """'481 Call/Transaction Does Not Exist', or 'no answer' (for assertion messages)."""
    return f"{answer.status} {answer.reason}" if answer else f"no answer within {ANSWER_WAIT} s"


def made_up_tag() -> str:
    return secrets.token_hex(5)


# --- the phone ------------------------------------------------------------------------------

def connected_call(status: dict[str, Any], call_id: str) -> dict[str, Any] | None:
    call = next((c for c in status["calls"] if c["id"] == call_id), None)
    return call if call is not None and call["state"] == "connected" else None


def idle(status: dict[str, Any]) -> bool:
    return not status["calls"] and status["engine"]["calls"] == 0


def heard_now(phone: PhoneProcess, seconds: float = 0.5) -> float:
    """Dominant frequency (Hz) of the next `seconds` the phone's earpiece hears.

    Reads the simulated earpiece's WAV file as the phone writes it (the header's sizes are
    only filled in when it closes; the samples follow the 44-byte header).
    """
    path = Path(phone.status()["engine"]["earpiece_file"])
    header = path.read_bytes()[:44]
    assert header[:4] == b"RIFF" and header[36:40] == b"data", f"{path}: unexpected WAV header"
    channels, rate = struct.unpack("<HI", header[22:28])
    frame = 2 * channels
    start = path.stat().st_size
    start -= (start - 44) % frame
    wanted = int(seconds * rate) * frame
    wait_until(lambda: path.stat().st_size - start >= wanted, seconds + 10,
               what=f"{seconds} s more of the earpiece")
    with path.open("rb") as f:
        f.seek(start)
        pcm = f.read(wanted)
    sample = path.with_name("heard-now.wav")
    with wave.open(str(sample), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return dominant_frequency(sample, skip_seconds=0.0)


def assert_call_goes_on(phone: PhoneProcess, call_id: str, hears_hz: int) -> None:
    """The call is the phone's only call, still connected, its time running, audio coming in."""
    status = phone.status()
    assert [c["id"] for c in status["calls"]] == [call_id], status["calls"]
    call = connected_call(status, call_id)
    assert call is not None, f"the call is no longer connected: {status['calls']}"
    before = call["duration"]
    phone.wait_status(lambda s: (c := connected_call(s, call_id)) and c["duration"] >= before + 0.5,
                      5, "the call's duration to keep growing")
    assert heard_now(phone) == pytest.approx(hears_hz, abs=15)


def assert_phone_fine(phone: PhoneProcess, pbx: Kamailio) -> None:
    """Process up, SIP port answering, control API answering, line registered at both ends."""
    assert phone.process.running(), phone.log_tail()
    options = sip_request(phone.sip_port, "OPTIONS", f"sip:1001@127.0.0.1:{phone.sip_port}")
    assert options.status == 200, options.raw
    assert all(line["registered"] for line in phone.status()["lines"])
    assert any(f":{phone.sip_port}" in contact for contact in pbx.registered_contacts("1001"))


# --- a call from the phone to a baresip, through the PBX ------------------------------------

@dataclass
class BaresipCall:
    phone: PhoneProcess
    far: Baresip
    call_id: str  # the phone's id of the call (status "calls")
    sip_call_id: str  # its SIP Call-ID


def call_baresip(pbx: Kamailio, make_phone: PhoneFactory,
                 make_baresip: Callable[..., Baresip]) -> BaresipCall:
    far = make_baresip("1002", tone_hz=FAR_TONE, auto_answer=True)
    phone = make_phone("1001", pbx.port, mic_tone_hz=PHONE_TONE)
    wait_registered(phone)
    phone.dial("1002")
    established = far.wait_event("CALL_ESTABLISHED", 10)
    status = phone.wait_status(
        lambda s: s if len(s["calls"]) == 1 and s["calls"][0]["state"] == "connected" else None,
        10, "the call to connect")
    return BaresipCall(phone, far, status["calls"][0]["id"], established["id"])


def hang_up_and_call_again(call: BaresipCall) -> None:
    """End the call from the phone; the far end heard the phone to the end; a new call works."""
    phone, far = call.phone, call.far
    phone.key("speaker")
    far.wait_event("CALL_CLOSED", 10)
    phone.wait_status(idle, 10, "the call to end")
    heard = far.wait_audio_files(1, 10)[-1]
    with wave.open(str(heard), "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
    last = max(0.0, seconds - 0.5)  # the end of the call, well after the bad input
    assert dominant_frequency(heard, skip_seconds=last) == pytest.approx(PHONE_TONE, abs=15)
    phone.dial("1002")
    far.wait_event("CALL_ESTABLISHED", 10)
    status = phone.wait_status(
        lambda s: s if s["calls"] and s["calls"][0]["state"] == "connected" else None,
        10, "the next call to connect")
    assert len(status["calls"]) == 1
    phone.key("speaker")
    far.wait_event("CALL_CLOSED", 10)
    phone.wait_status(idle, 10, "the next call to end")


# --- SIPp calling the phone with a scenario ---------------------------------------------------

class SippUac:
    """One run (-m 1) of a UAC scenario from tests/harness/scenarios/ that calls the phone
    directly. The scenario's <log> actions ("answer <step> <code>", "ready") are read back."""

    def __init__(self, workdir: Path, scenario: str, phone_port: int, *extra: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.actions = workdir / "actions.log"
        self.errors = workdir / "errors.log"
        self.messages = workdir / "messages.log"
        argv = sipp_argv(
            free_port(), "-sf", str(SCENARIOS / scenario), "-s", "1001", "-m", "1",
            "-rtp_echo", "-aa",
            "-trace_logs", "-log_file", str(self.actions),
            "-trace_err", "-error_file", str(self.errors),
            "-trace_msg", "-message_file", str(self.messages),
            "-timeout", "30s", "-timeout_error",
            *extra, f"127.0.0.1:{phone_port}",
        )
        self.process = ManagedProcess(argv, workdir / "sipp.log", cwd=workdir)

    def start(self) -> SippUac:
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop(grace=2.0)

    def logged(self) -> list[str]:
        return self.actions.read_text().splitlines() if self.actions.exists() else []

    def answers(self) -> dict[str, int]:
        """{step: final answer code} from the scenario's "answer <step> <code>" log lines."""
        found = (re.fullmatch(r"answer (\S+) (\d{3})", line.strip()) for line in self.logged())
        return {m[1]: int(m[2]) for m in found if m}

    def wait_logged(self, line: str, timeout: float) -> None:
        def there() -> bool:
            if line in (logged.strip() for logged in self.logged()):
                return True
            assert self.process.running(), \
                f"SIPp ended (exit {self.process.returncode()}) before {line!r}:\n" + self.report()
            return False
        wait_until(there, timeout, what=f"SIPp to log {line!r}")

    def wait_exit(self, timeout: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not self.process.running(), timeout, what="SIPp to finish")
        return self.process.returncode()

    def report(self) -> str:
        return (f"answers: {self.logged()}\nerrors:\n{log_tail(self.errors, 30)}\n"
                f"messages:\n{log_tail(self.messages, 60)}")


@pytest.fixture
def make_sipp(tmp_path: Path) -> Iterator[Callable[..., SippUac]]:
    runs: list[SippUac] = []

    def make(scenario: str, phone_port: int, *extra: str) -> SippUac:
        run = SippUac(tmp_path / f"sipp-{len(runs)}", scenario, phone_port, *extra)
        runs.append(run)
        return run.start()

    yield make
    for run in runs:
        run.stop()


def answering_phone(pbx: Kamailio, make_phone: PhoneFactory) -> PhoneProcess:
    """A phone that answers every call at once and sends keys by SIP INFO."""
    phone = make_phone("1001", pbx.port, auto_answer=True, mic_tone_hz=PHONE_TONE,
                       line_dtmf_mode="info")
    wait_registered(phone)
    return phone


def finish_sipp_call(sipp: SippUac, phone: PhoneProcess, pbx: Kamailio, tmp_path: Path) -> None:
    """With SIPp's scenario at "ready": the call goes on, the phone is fine, a key press sends
    an INFO in the dialog (answered 200), SIPp hangs up (BYE answered 200), and the next call
    to the phone works."""
    status = phone.status()
    assert len(status["calls"]) == 1, status["calls"]
    call_id = status["calls"][0]["id"]
    assert_call_goes_on(phone, call_id, PHONE_TONE)  # SIPp echoes the phone's own tone
    assert_phone_fine(phone, pbx)
    phone.keys("5")
    assert sipp.wait_exit(10) == 0, sipp.report()
    assert sipp.answers()["bye"] == 200
    phone.wait_status(idle, 10, "the call to end")
    assert_phone_fine(phone, pbx)
    later = run_uac_load(f"127.0.0.1:{phone.sip_port}", calls=1, rate=1, concurrent_limit=1,
                         call_duration_ms=300, timeout=10, workdir=tmp_path / "later-call")
    assert later.successful == 1, later.log[-2000:]


# --- REFER ----------------------------------------------------------------------------------

def test_refer_for_a_call_that_does_not_exist_gets_481_and_the_call_goes_on(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip: Callable[..., Baresip]) -> None:
    call = call_baresip(pbx, make_phone, make_baresip)
    phone = call.phone
    refer = ["Refer-To: <sip:1003@127.0.0.1>", "Referred-By: <sip:probe@127.0.0.1>"]
    unknown = ask(phone.sip_port, "REFER", refer, to_tag=made_up_tag())
    assert unknown is not None and unknown.status == 481, code(unknown)
    # the Call-ID of the call in progress, but tags of no dialog the phone has
    lookalike = ask(phone.sip_port, "REFER", refer, to_tag=made_up_tag(),
                    call_id=call.sip_call_id)
    assert lookalike is not None and lookalike.status == 481, code(lookalike)

    assert_call_goes_on(phone, call.call_id, FAR_TONE)
    assert_phone_fine(phone, pbx)
    hang_up_and_call_again(call)


def test_out_of_dialog_refer_places_no_call_and_harms_nothing(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip: Callable[..., Baresip]) -> None:
    call = call_baresip(pbx, make_phone, make_baresip)
    phone = call.phone
    answer = ask(phone.sip_port, "REFER",
                 ["Refer-To: <sip:1003@127.0.0.1>", "Referred-By: <sip:probe@127.0.0.1>"])
    # Never accepted. pjsip drops a REFER outside any dialog unanswered; the engine reads it
    # from pjsip's message log and refuses it (firmware/sip/check_sync.py).
    assert answer is not None and answer.status == 403, code(answer)
    assert_phone_fine(phone, pbx)  # an OPTIONS round trip: the REFER has been handled
    assert_call_goes_on(phone, call.call_id, FAR_TONE)  # and no second call exists
    hang_up_and_call_again(call)


def test_refer_with_a_garbage_refer_to_is_refused_and_the_call_goes_on(
        pbx: Kamailio, make_phone: PhoneFactory, make_sipp: Callable[..., SippUac],
        tmp_path: Path) -> None:
    phone = answering_phone(pbx, make_phone)
    sipp = make_sipp("uac_refer_in_dialog.xml", phone.sip_port,
                     "-key", "refer_to", "this is not a URI")
    sipp.wait_logged("ready", 10)
    # a Refer-To that is no URI: 400 Bad Request (RFC 3261 21.4.1, RFC 3515 2.4.2); no transfer
    # is attempted and the call goes on
    assert sipp.answers()["request"] == 400, \
        f"{sipp.report()}\nthe phone's calls now: {phone.status()['calls']}"
    assert sipp.answers()["good"] == 200
    finish_sipp_call(sipp, phone, pbx, tmp_path)


# --- re-INVITE ------------------------------------------------------------------------------

BROKEN_SDP = ("not_sdp", "no_connection", "bad_port", "garbage_media")


def test_reinvite_with_broken_sdp_is_refused_and_the_call_goes_on(
        pbx: Kamailio, make_phone: PhoneFactory, make_sipp: Callable[..., SippUac],
        tmp_path: Path) -> None:
    phone = answering_phone(pbx, make_phone)
    sipp = make_sipp("uac_reinvite_bad_sdp.xml", phone.sip_port)
    sipp.wait_logged("ready", 10)
    answers = sipp.answers()
    # SDP that cannot be parsed is refused: pjsip answers 415 with a Warning naming the SDP
    # error (400 or 488 would do as well: RFC 3261 leaves the refusal's code open); an offer
    # with no codec in common: 488 Not Acceptable Here (the engine's check). Either way the
    # session stays as it was (RFC 3261 14.2), which the rest of the test proves.
    wrong = {step: answers.get(step) for step in BROKEN_SDP
             if answers.get(step) not in (400, 415, 488)}
    if answers.get("no_codec") != 488:
        wrong["no_codec"] = answers.get("no_codec")
    assert not wrong, f"re-INVITEs answered wrongly: {wrong} (all answers: {answers})"
    assert answers["good"] == 200  # a proper re-INVITE afterwards is accepted
    finish_sipp_call(sipp, phone, pbx, tmp_path)


# --- NOTIFY ---------------------------------------------------------------------------------

def test_notify_for_a_subscription_that_never_existed_gets_481(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip: Callable[..., Baresip]) -> None:
    call = call_baresip(pbx, make_phone, make_baresip)
    phone = call.phone
    active = "Subscription-State: active;expires=300"
    mwi = ask(phone.sip_port, "NOTIFY", ["Event: message-summary", active],
              to_tag=made_up_tag(), body=MWI_BODY,
              content_type="application/simple-message-summary")
    assert mwi is not None and mwi.status == 481, code(mwi)
    dialog = ask(phone.sip_port, "NOTIFY", ["Event: dialog", active], to_tag=made_up_tag(),
                 body=DIALOG_INFO, content_type="application/dialog-info+xml")
    assert dialog is not None and dialog.status == 481, code(dialog)
    # transfer progress for the call in progress, which nobody transferred (made-up tags)
    refer = ask(phone.sip_port, "NOTIFY", ["Event: refer", active], to_tag=made_up_tag(),
                call_id=call.sip_call_id, body="SIP/2.0 200 OK\r\n",
                content_type="message/sipfrag;version=2.0")
    assert refer is not None and refer.status == 481, code(refer)
    # unsolicited MWI (no To tag): the phone takes it, as voicemail servers send it unasked
    unsolicited = ask(phone.sip_port, "NOTIFY", ["Event: message-summary", active],
                      body=MWI_BODY, content_type="application/simple-message-summary")
    assert unsolicited is not None and unsolicited.status == 200, code(unsolicited)

    assert_call_goes_on(phone, call.call_id, FAR_TONE)
    assert_phone_fine(phone, pbx)
    hang_up_and_call_again(call)


def test_out_of_dialog_notify_for_a_subscription_that_never_existed_harms_nothing(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip: Callable[..., Baresip]) -> None:
    call = call_baresip(pbx, make_phone, make_baresip)
    phone = call.phone
    answer = ask(phone.sip_port, "NOTIFY",
                 ["Event: dialog", "Subscription-State: active;expires=300"],
                 body=DIALOG_INFO, content_type="application/dialog-info+xml")
    # RFC 6665 4.1.3: 481. pjsip drops a NOTIFY outside any dialog for an event no module
    # takes (only message-summary has one); the engine answers it from pjsip's message log.
    # Never accepted, and nothing changes on the phone.
    assert answer is not None and answer.status == 481, code(answer)
    assert_phone_fine(phone, pbx)
    assert_call_goes_on(phone, call.call_id, FAR_TONE)
    hang_up_and_call_again(call)


def test_notify_inside_a_call_for_a_subscription_that_never_existed_is_refused(
        pbx: Kamailio, make_phone: PhoneFactory, make_sipp: Callable[..., SippUac],
        tmp_path: Path) -> None:
    phone = answering_phone(pbx, make_phone)
    sipp = make_sipp("uac_notify_in_dialog.xml", phone.sip_port)
    sipp.wait_logged("ready", 10)
    # Event: refer in the call's dialog, but the phone never sent a REFER: refused. RFC 6665
    # 4.1.3 wants 481; pjsip's dialog answers 500 "Unhandled by dialog usages" (the known gap
    # of docs/sip-conformance.md). The call goes on, which the rest of the test proves.
    assert sipp.answers()["request"] in (481, 500), sipp.report()
    assert sipp.answers()["good"] == 200
    finish_sipp_call(sipp, phone, pbx, tmp_path)
