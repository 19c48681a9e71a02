"""In-band DTMF: digits the phone mixes into a call's audio are found in what the far end
heard by the phone's own detector (audio/dtmf.py)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from audio.dtmf import DtmfDetector
from tests.e2e.conftest import PhoneFactory, wait_registered
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_inband_digits_reach_the_far_end(pbx: Kamailio, make_phone: PhoneFactory,
                                         make_baresip) -> None:
    far = make_baresip("1002", tone_hz=None, auto_answer=True)
    phone = make_phone("1001", pbx.port, mic_tone_hz=0, dtmf_mode="inband")
    wait_registered(phone)
    phone.dial("1002")
    phone.wait_text("In call", 10)
    far.wait_event("CALL_ESTABLISHED", 10)
    phone.keys("159*#0")
    # each digit is 100 ms on and 100 ms off: wait until all six have been sent
    phone.wait_status(lambda s: s["calls"] and s["calls"][0]["duration"] >= 2.5, 10,
                      "the digits to be played")
    phone.key("speaker")  # hang up (hands-free call)
    far.wait_event("CALL_CLOSED", 10)

    recording = far.wait_audio_files(1, 10)[0]
    with wave.open(str(recording), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    mono = pcm.reshape(-1, channels).mean(axis=1).astype("<i2").tobytes()
    detector = DtmfDetector(rate)
    digits = "".join(e.digit for e in detector.feed(mono) + detector.flush())
    assert digits == "159*#0"


@pytest.mark.parametrize("mode", ["inband", "rfc4733"])
def test_keys_pressed_on_one_phone_are_heard_by_another(pbx: Kamailio, make_phone: PhoneFactory,
                                                       mode: str) -> None:
    callee = make_phone("1002", pbx.port, auto_answer=True, detect_inband_dtmf=True)
    # a quiet microphone: the default 700 Hz test tone sits on DTMF's 697 Hz row
    caller = make_phone("1001", pbx.port, dtmf_mode=mode, mic_tone_hz=0)
    wait_registered(callee)
    wait_registered(caller)
    caller.dial("1002")
    caller.wait_text("In call", 10)
    callee.wait_status(lambda s: s["calls"] and s["calls"][0]["state"] == "connected", 10,
                       "the callee to answer")
    caller.keys("159#")
    heard = callee.wait_status(lambda s: s["calls"] and s["calls"][0]["dtmf"] == "159#" and s,
                               10, "the callee to hear 159#")
    assert heard["calls"][0]["dtmf"] == "159#"
    caller.key("speaker")
    callee.wait_status(lambda s: not s["calls"], 10, "the call to end")


@pytest.mark.parametrize(("phone_mode", "line_mode", "methods"),
                         [("rfc4733", "info", "iiii"), ("info", "rfc4733", "rrrr"),
                          ("info", "", "iiii")])
def test_each_line_sends_keys_its_own_way(pbx: Kamailio, make_phone: PhoneFactory,
                                          phone_mode: str, line_mode: str, methods: str) -> None:
    """The line's dtmf_mode wins over the phone's; SIP INFO carries one key per request."""
    callee = make_phone("1002", pbx.port, auto_answer=True)
    caller = make_phone("1001", pbx.port, dtmf_mode=phone_mode, line_dtmf_mode=line_mode)
    wait_registered(callee)
    wait_registered(caller)
    caller.dial("1002")
    caller.wait_text("In call", 10)
    callee.wait_status(lambda s: s["calls"] and s["calls"][0]["state"] == "connected", 10,
                       "the callee to answer")
    caller.keys("*7#0")
    heard = callee.wait_status(lambda s: s["calls"] and len(s["calls"][0]["dtmf"]) == 4 and s,
                               10, "the callee to hear four keys")
    assert heard["calls"][0]["dtmf"] == "*7#0"
    assert heard["calls"][0]["dtmf_methods"] == methods
    caller.key("speaker")
    callee.wait_status(lambda s: not s["calls"], 10, "the call to end")


def test_keys_pressed_off_hook_are_heard_in_the_earpiece(pbx: Kamailio,
                                                         make_phone: PhoneFactory) -> None:
    """Key tones: each digit pressed with the handset up sounds its own DTMF pair locally."""
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    phone.hook(True)
    phone.wait_status(lambda s: s["engine"]["earpiece_file"], 5, "the earpiece to open")

    def earpiece_bytes() -> int:
        path = Path(phone.status()["engine"]["earpiece_file"])
        return path.stat().st_size if path.exists() else 0

    for key in "159":  # the plan wants four digits: nothing is dialled
        start = earpiece_bytes()
        phone.keys(key)
        wait_until(lambda s=start: earpiece_bytes() - s > 0.2 * 32000, 5,
                   what=f"the tone of {key} to be played")
    earpiece = Path(phone.status()["engine"]["earpiece_file"])
    phone.hook(False)
    wait_until(lambda: wav_frames(earpiece) > 0, 5, what="the earpiece file to be closed")
    with wave.open(str(earpiece), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
        detector = DtmfDetector(wav.getframerate())
    assert "".join(e.digit for e in detector.feed(pcm) + detector.flush()) == "159"


def wav_frames(path: Path) -> int:
    """Frames in a WAV whose header has been written (0 while it is still being recorded)."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes()
    except (wave.Error, EOFError):
        return 0
