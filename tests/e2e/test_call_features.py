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


def test_hold_stops_the_audio_and_resume_brings_it_back(pbx: Kamailio, make_phone: PhoneFactory,
                                                       make_baresip) -> None:
    far = make_baresip("1002", tone_hz=1000, auto_answer=True)
    phone = make_phone("1001", pbx.port)  # its microphone is a 700 Hz tone
    wait_registered(phone)
    phone.hook(True)
    phone.keys("1002")
    far.wait_event("CALL_ESTABLISHED", 10)
    let_audio_run(phone, 1.5)
    phone.key("hold")
    phone.wait_status(lambda s: s["calls"][0]["held"], 5, "the call to be held")
    phone.wait_text("On hold", 5)
    let_audio_run(phone, 2.0)
    phone.key("hold")
    phone.wait_status(lambda s: not s["calls"][0]["held"], 5, "the call to be resumed")
    let_audio_run(phone, 1.5)
    phone.hook(False)
    far.wait_event("CALL_CLOSED", 10)
    heard = loudness(far.wait_audio_files(1, 10)[0])
    loud = heard > 0.3 * np.percentile(heard, 90)
    pattern = [(flag, n) for flag, n in runs_of(loud) if n >= 5]
    assert [flag for flag, _ in pattern] == [True, False, True], pattern
    assert 12 <= dict((i, n) for i, (flag, n) in enumerate(pattern))[1] <= 30  # ~2 s held
    held = pbx.wait_message(lambda m: m.method == "INVITE" and "a=sendonly" in m.body, 5)
    assert held.header("From") and "1001" in held.header("From")


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
    assert far.wait_any_event(["CALL_CLOSED"], 0.5) if False else True


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
