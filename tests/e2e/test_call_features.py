"""Handling several calls against a real PBX: hold and resume, call waiting and swap, blind and
attended transfer (also failing), the local three-way conference, do not disturb and
forwarding, recording and caller-ID roles. Far ends are baresip and other phones (pjsua2);
Kamailio's capture (tools/pbx/wire.py) shows what went over the wire."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import PhoneFactory, wait_registered
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneProcess

pytestmark = pytest.mark.e2e


def earpiece_seconds(phone: PhoneProcess) -> float:
    """How much the phone's earpiece has recorded so far: the test's clock for audio."""
    path = phone.status()["engine"]["earpiece_file"]
    return Path(path).stat().st_size / 32000 if path and Path(path).exists() else 0.0


def let_audio_run(phone: PhoneProcess, seconds: float) -> None:
    start = earpiece_seconds(phone)
    wait_until(lambda: earpiece_seconds(phone) - start >= seconds, seconds + 10,
               what=f"{seconds} s of call audio")


def loudness(path: Path, window_s: float = 0.1) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    pcm = pcm.reshape(-1, channels).mean(axis=1)
    n = int(rate * window_s)
    frames = pcm[: len(pcm) // n * n].reshape(-1, n)
    return np.sqrt((frames ** 2).mean(axis=1))


def runs_of(flags: np.ndarray) -> list[tuple[bool, int]]:
    """(value, length) of each run in a boolean sequence."""
    out: list[tuple[bool, int]] = []
    for flag in flags.tolist():
        if out and out[-1][0] == flag:
            out[-1] = (flag, out[-1][1] + 1)
        else:
            out.append((flag, 1))
    return out


def connected(phone: PhoneProcess, number: str) -> dict:
    return phone.wait_status(lambda s: next((c for c in s["calls"] if c["remote"] == number
                                             and c["state"] == "connected"), None), 10,
                             f"a connected call with {number}")


def test_hold_stops_the_audio_and_resume_brings_it_back(pbx: Kamailio,
                                                       make_phone: PhoneFactory) -> None:
    # the far end is another phone: baresip 1.0 does not take audio up again after a hold
    far = make_phone("1002", pbx.port, auto_answer=True, mic_tone_hz=1000)
    phone = make_phone("1001", pbx.port)  # its microphone is a 700 Hz tone
    wait_registered(far)
    wait_registered(phone)
    phone.hook(True)
    phone.keys("1002")
    phone.wait_text("In call", 10)
    let_audio_run(far, 1.5)
    phone.key("hold")
    phone.wait_status(lambda s: s["calls"][0]["held"], 5, "the call to be held")
    phone.wait_text("On hold", 5)
    far.wait_status(lambda s: s["calls"] and s["calls"][0]["remote_held"], 5,
                    "the far end to see it is held")
    let_audio_run(far, 2.0)
    phone.key("hold")
    phone.wait_status(lambda s: not s["calls"][0]["held"], 5, "the call to be resumed")
    let_audio_run(far, 1.5)
    earpiece = Path(far.status()["engine"]["earpiece_file"])
    phone.hook(False)
    far.wait_status(lambda s: not s["calls"], 10, "the call to end")
    wait_until(lambda: _wav_frames(earpiece) > 0, 5, what="the far end's earpiece file")
    heard = loudness(earpiece)
    loud = heard > 0.3 * np.percentile(heard, 90)
    pattern = [(flag, n) for flag, n in runs_of(loud) if n >= 5]
    while pattern and not pattern[-1][0]:
        pattern.pop()  # the earpiece stays open a moment after the call
    assert [flag for flag, _ in pattern] == [True, False, True], pattern
    assert 15 <= pattern[1][1] <= 30, pattern  # about 2 s held (0.1 s windows)
    held = pbx.wait_message(lambda m: m.method == "INVITE" and "a=sendonly" in m.body, 5)
    assert "1001" in held.header("From")
    resumed = pbx.messages("INVITE")[-1]
    assert "a=sendrecv" in resumed.body or "a=send" not in resumed.body


def test_blind_transfer_sends_the_far_end_on(pbx: Kamailio, make_phone: PhoneFactory,
                                             make_baresip) -> None:
    far = make_baresip("1002", tone_hz=1000, auto_answer=True)
    target = make_phone("1003", pbx.port, auto_answer=True)
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    wait_registered(target)
    phone.dial("1002")
    far.wait_event("CALL_ESTABLISHED", 10)
    phone.wait_text("In call", 10)
    phone.key("transfer")
    phone.wait_text("Transfer to:", 5)
    phone.keys("1003")
    phone.key("transfer")
    call = connected(target, "1002")  # baresip followed the REFER and called 1003
    assert call["direction"] == "incoming"
    phone.wait_text("Transferred", 10)
    phone.wait_status(lambda s: not s["calls"], 10, "the phone to be out of the call")
    refer = pbx.wait_message(lambda m: m.method == "REFER", 5)
    assert "sip:1003@" in refer.header("Refer-To")
    assert "Replaces" not in refer.header("Refer-To")


def test_a_transfer_to_nobody_fails_and_the_call_comes_back(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip) -> None:
    far = make_baresip("1002", tone_hz=1000, auto_answer=True)
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    phone.dial("1002")
    far.wait_event("CALL_ESTABLISHED", 10)
    phone.wait_text("In call", 10)
    phone.key("transfer")
    phone.keys("1009")  # nobody is registered as 1009: the PBX answers 404
    phone.key("transfer")
    phone.wait_text("Transfer failed", 20)
    status = phone.wait_status(lambda s: s["calls"] and s["calls"][0]["held"] and s, 5,
                               "the call back on hold")
    assert status["calls"][0]["remote"] == "1002"
    phone.key("hold")
    phone.wait_status(lambda s: s["calls"] and not s["calls"][0]["held"], 5, "resumed")
    # baresip's own attempt to reach 1009 closed with 404; its call with 1001 is still up
    assert not [e for e in far.events() if e.get("type") == "CALL_CLOSED"
                and "1001" in e.get("peeruri", "")], "the failed transfer ended the call"


def test_an_attended_transfer_to_nobody_fails_and_the_call_comes_back(
        pbx: Kamailio, make_phone: PhoneFactory) -> None:
    # the far end is a phone: its status tells whether it is held and still in the call
    far = make_phone("1002", pbx.port, auto_answer=True)
    phone = make_phone("1001", pbx.port)
    wait_registered(far)
    wait_registered(phone)
    phone.dial("1002")
    connected(far, "1001")
    phone.wait_text("In call", 10)
    phone.key("transfer")
    phone.wait_text("Transfer to:", 5)
    phone.keys("1009")  # a user of the PBX, but not registered: the PBX answers 404
    phone.key("ok")  # call the target first (attended)
    pbx.wait_message(lambda m: m.status == 404 and m.cseq_method == "INVITE"
                     and "sip:1009@" in (m.header("To") or ""), 10,
                     what="the PBX's 404 to the consult call")
    phone.wait_text("Unknown number", 10)
    status = phone.wait_status(lambda s: len(s["calls"]) == 1 and s["calls"][0]["held"]
                               and s["terminals"][0]["mode"] == "none" and s, 10,
                               "the consult call gone and the first call back on hold")
    held = status["calls"][0]
    assert held["remote"] == "1002" and held["state"] == "connected"
    assert status["terminals"][0]["call"] == held["id"] and status["terminals"][0]["held"] == []
    assert "On hold" in phone.screen_text()
    far.wait_status(lambda s: s["calls"] and s["calls"][0]["remote_held"], 5,
                    "1002 to see it is held")
    phone.key("hold")
    phone.wait_status(lambda s: s["calls"] and not s["calls"][0]["held"], 5, "resumed")
    far.wait_status(lambda s: s["calls"] and not s["calls"][0]["remote_held"], 5,
                    "1002 to see it is resumed")
    connected(far, "1001")  # the far end's call with 1001 is still up
    assert not pbx.messages("REFER"), "a REFER went out for a consult call that failed"


def test_attended_transfer_joins_the_two_far_ends(pbx: Kamailio,
                                                  make_phone: PhoneFactory) -> None:
    first = make_phone("1002", pbx.port, auto_answer=True)
    target = make_phone("1003", pbx.port, auto_answer=True)
    phone = make_phone("1001", pbx.port)
    for p in (first, target, phone):
        wait_registered(p)
    phone.dial("1002")
    connected(first, "1001")
    phone.key("transfer")
    phone.keys("1003")
    phone.key("ok")  # call the target first
    connected(target, "1001")
    phone.wait_text("Held", 5)
    phone.key("transfer")  # join them
    connected(target, "1002")
    connected(first, "1003")
    phone.wait_text("Transferred", 10)
    phone.wait_status(lambda s: not s["calls"], 10, "the phone to be out of both calls")
    refer = pbx.wait_message(lambda m: m.method == "REFER", 5)
    assert "Replaces" in refer.header("Refer-To")


def test_a_waiting_call_is_answered_and_the_two_calls_swap(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip) -> None:
    first = make_baresip("1002", tone_hz=1000, auto_answer=True)
    second = make_baresip("1003", tone_hz=1500)
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    phone.hook(True)
    phone.keys("1002")
    phone.wait_text("In call", 10)
    second.dial(second.uri_of("1001"))
    phone.wait_text("Call waiting", 10)
    assert phone.status()["terminals"][0]["tone"] == "call_waiting"
    phone.key("ok")  # answer: 1002 goes on hold
    second.wait_event("CALL_ESTABLISHED", 10)
    status = phone.wait_status(lambda s: len(s["calls"]) == 2 and all(
        c["state"] == "connected" for c in s["calls"]) and s, 10, "two calls")
    held = {c["remote"]: c["held"] for c in status["calls"]}
    assert held == {"1002": True, "1003": False}
    phone.key("hold")  # swap
    status = phone.wait_status(lambda s: {c["remote"]: c["held"] for c in s["calls"]} == {
        "1002": False, "1003": True} and s, 10, "the calls to swap")
    assert status["terminals"][0]["held"] == [c["id"] for c in status["calls"]
                                              if c["remote"] == "1003"]
    invites = [m for m in pbx.messages("INVITE") if "a=sendonly" in m.body]
    assert len(invites) >= 2  # each hold was a re-INVITE with a=sendonly
    phone.hook(False)  # ends 1002; 1003 stays on hold, shown
    first.wait_event("CALL_CLOSED", 10)
    phone.wait_status(lambda s: [c["remote"] for c in s["calls"]] == ["1003"], 10,
                      "only the held call left")
    phone.key("hold")  # take it back, hands-free
    phone.wait_status(lambda s: s["calls"] and not s["calls"][0]["held"], 10, "resumed")
    phone.key("speaker")
    second.wait_event("CALL_CLOSED", 10)


def peaks(path: Path, skip_s: float = 0.5) -> set[int]:
    """Frequencies (rounded to 50 Hz) whose level is within 12 dB of the strongest."""
    with wave.open(str(path), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    pcm = pcm.reshape(-1, channels).mean(axis=1)[int(skip_s * rate):]
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    strong = freqs[spectrum > spectrum.max() / 4]
    return {int(round(f / 50) * 50) for f in strong if f > 100}


def test_three_way_conference_each_hears_the_two_others(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip) -> None:
    # the first party is held while the third is called: a phone, not baresip (see above)
    b = make_phone("1002", pbx.port, auto_answer=True, mic_tone_hz=1000)
    c = make_baresip("1003", tone_hz=1500, auto_answer=True)
    phone = make_phone("1001", pbx.port)  # 700 Hz
    wait_registered(b)
    wait_registered(phone)
    phone.hook(True)
    phone.keys("1002")
    phone.wait_text("In call", 10)
    phone.key("conference")
    phone.wait_text("Add:", 5)
    phone.keys("1003")
    connected(phone, "1003")
    phone.key("conference")
    phone.wait_text("Conference", 5)
    wait_until(lambda: len(phone.status()["terminals"][0]["conference"]) == 2, 5,
               what="the conference")
    conference_start = earpiece_seconds(phone)
    let_audio_run(phone, 3.0)
    earpiece = Path(phone.status()["engine"]["earpiece_file"])
    heard_by_b = Path(b.status()["engine"]["earpiece_file"])
    phone.key("cancel")
    phone.wait_text("End conference?", 5)
    phone.key("ok")
    b.wait_status(lambda s: not s["calls"], 10, "1002 out of the conference")
    c.wait_event("CALL_CLOSED", 10)
    phone.hook(False)
    b.advance(5)  # the hands-free end screen goes, and 1002's earpiece recording closes
    for path in (earpiece, heard_by_b):
        wait_until(lambda p=path: _wav_frames(p) > 0, 5, what=f"{path.name} closed")
    heard_by_c = c.wait_audio_files(1, 10)[0]
    # the last 2.5 s of each recording are conference
    assert {700, 1500} <= peaks(heard_by_b, skip_s=_seconds(heard_by_b) - 2.5)
    assert {700, 1000} <= peaks(heard_by_c, skip_s=_seconds(heard_by_c) - 2.5)
    assert {1000, 1500} <= peaks(earpiece, skip_s=conference_start + 0.5)


def _seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def _wav_frames(path: Path) -> int:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes()
    except (wave.Error, EOFError):
        return 0


def test_do_not_disturb_answers_busy(pbx: Kamailio, make_phone: PhoneFactory,
                                     make_baresip) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    phone.key("dnd")
    phone.wait_text("Do not disturb", 5)
    caller = make_baresip("1002")
    caller.dial(caller.uri_of("1001"))
    closed = caller.wait_event("CALL_CLOSED", 10)
    assert "486" in closed["param"]
    assert phone.status()["terminals"][0]["ringing"] is False


@pytest.mark.parametrize("kind", ["always", "busy", "no_answer", "dnd"])
def test_forwarding_answers_302_with_the_target(pbx: Kamailio, make_phone: PhoneFactory,
                                                 kind: str) -> None:
    """The caller (a phone: pjsua follows the redirect) ends up at 1003."""
    extra = {"always": '[calls]\nforward_always = "1003"\n',
             "busy": '[calls]\nforward_busy = "1003"\ncall_waiting = false\n',
             "no_answer": '[calls]\nforward_no_answer = "1003"\n'
                          "forward_no_answer_after = 5\n",
             "dnd": '[calls]\ndnd_action = "forward"\ndnd_forward_to = "1003"\n'}[kind]
    phone = make_phone("1001", pbx.port, extra=extra)
    target = make_phone("1003", pbx.port, auto_answer=True)
    caller = make_phone("1002", pbx.port)
    for p in (phone, target, caller):
        wait_registered(p)
    if kind == "busy":
        phone.hook(True)  # busy dialling
        phone.keys("55")
    if kind == "dnd":
        phone.key("dnd")
        phone.wait_text("Do not disturb", 5)
    caller.dial("1001")
    if kind == "no_answer":
        phone.wait_text("Incoming call", 10)
        phone.advance(6)  # the test clock: no answer for 5 s
    connected(target, "1002")
    redirect = pbx.wait_message(lambda m: m.status == 302, 5)
    assert "sip:1003@" in redirect.header("Contact")
    assert not [c for c in phone.status()["calls"] if c["remote"] == "1002"]


def test_a_recording_is_a_valid_wav_of_the_call_length(pbx: Kamailio, make_phone: PhoneFactory,
                                                       make_baresip) -> None:
    far = make_baresip("1002", tone_hz=1000, auto_answer=True)
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    phone.hook(True)
    phone.keys("1002")
    phone.wait_text("In call", 10)
    far.wait_event("CALL_ESTABLISHED", 10)
    phone.key("record")
    phone.wait_text("REC", 5)
    start = earpiece_seconds(phone)
    let_audio_run(phone, 3.0)
    recorded = earpiece_seconds(phone) - start
    phone.hook(False)  # hanging up stops the recording
    folder = phone.workdir / "data" / "recordings"
    done = wait_until(lambda: sorted(folder.glob("*[0-9].wav")) or None, 10,
                      what="the finished recording")
    assert not list(folder.glob("*.part.wav"))
    seconds = _seconds(done[0])
    assert abs(seconds - recorded) < 0.5, (seconds, recorded)
    assert {700, 1000} <= peaks(done[0], skip_s=0.3)
    assert "1002" in done[0].name


ROLES = '''
[[roles]]
name = "Direkt"

[[roles]]
name = "Vaxel"
kind = "switchboard"
number = "0812345600"
display_name = "Foretaget"

[[roles]]
name = "Anonym"
kind = "anonymous"
'''


def test_caller_id_roles_arrive_as_chosen(pbx: Kamailio, make_phone: PhoneFactory,
                                          make_baresip) -> None:
    far = make_baresip("1002", tone_hz=1000)
    phone = make_phone("1001", pbx.port, extra=ROLES)
    wait_registered(phone)
    phone.key("right")  # the default role: Vaxel
    phone.wait_text("As: Vaxel", 5)
    phone.dial("1002")
    incoming = far.wait_event("CALL_INCOMING", 10)
    assert "0812345600" in incoming["peeruri"]
    invite = pbx.wait_message(lambda m: m.method == "INVITE" and m.direction == "out"
                              and "0812345600" in (m.header("From") or ""), 5)
    assert "Foretaget" in invite.header("From")
    assert "sip:1001@" in invite.header("P-Asserted-Identity")
    assert invite.header("P-Preferred-Identity") is None
    far.hangup()
    phone.wait_status(lambda s: not s["calls"], 10, "the call to end")
    phone.advance(5)
    phone.hook(True)
    phone.key("down")  # this call only: Anonym
    phone.wait_text("As: Anonym", 5)
    phone.keys("1002")
    incoming = far.wait_event("CALL_INCOMING", 10)
    assert "anonymous" in incoming["peeruri"].lower()
    invite = pbx.wait_message(lambda m: m.method == "INVITE" and m.direction == "out"
                              and "anonymous.invalid" in (m.header("From") or ""), 5)
    assert invite.header("Privacy") == "id"
    assert "1001" not in invite.header("From")
    far.hangup()
    phone.hook(False)
