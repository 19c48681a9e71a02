"""Calls through a real Kamailio with baresip and SIPp at the far end."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from tests.e2e.conftest import PhoneFactory, wait_registered
from tests.harness.audio_check import dominant_frequency
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneProcess

pytestmark = pytest.mark.e2e
PHONE_TONE, FAR_TONE = 700, 1000


def wav_seconds(path: Path) -> float:
    """Seconds in a WAV whose header is written; 0 while the recorder still holds it."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError):
        return 0.0


def connected_call(phone: PhoneProcess) -> dict | None:
    calls = phone.status()["calls"]
    return calls[0] if calls and calls[0]["state"] == "connected" else None


def earpiece_bytes(phone: PhoneProcess) -> int:
    path = phone.status()["engine"]["earpiece_file"]
    return Path(path).stat().st_size if path and Path(path).exists() else 0


def test_phone_dials_baresip_and_audio_flows_both_ways(pbx: Kamailio, make_phone: PhoneFactory,
                                                       make_baresip) -> None:
    far = make_baresip("1002", tone_hz=FAR_TONE, auto_answer=True)
    phone = make_phone("1001", pbx.port, mic_tone_hz=PHONE_TONE)
    wait_registered(phone)
    phone.hook(True)
    assert phone.status()["terminals"][0]["tone"] == "dial"
    phone.keys("1002")
    phone.wait_text("In call", 10)
    far.wait_event("CALL_ESTABLISHED", 10)
    start = earpiece_bytes(phone)
    # two seconds of conversation (16 kHz, 16-bit mono earpiece recording)
    wait_until(lambda: earpiece_bytes(phone) - start > 2 * 32000, 15, what="2 s of audio")
    earpiece = Path(phone.status()["engine"]["earpiece_file"])
    phone.hook(False)
    far.wait_event("CALL_CLOSED", 10)
    phone.wait_status(lambda s: not s["calls"], 5, "the call to end")
    phone.wait_screen(lambda t: t.splitlines()[1:2] == ["1001 Phone 1001"], 5, "idle")

    heard_far = far.wait_audio_files(1, 10)[0]
    assert dominant_frequency(heard_far, skip_seconds=0.5) == pytest.approx(PHONE_TONE, abs=15)
    wait_until(lambda: wav_seconds(earpiece) > 2, 5, what="the earpiece file to be closed")
    tail = wav_seconds(earpiece) - 1.5  # the conversation, after dial tone and ringback
    assert dominant_frequency(earpiece, skip_seconds=tail) == pytest.approx(FAR_TONE, abs=15)


def test_baresip_calls_the_phone_which_rings_and_answers_on_lifting(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    far = make_baresip("1002")
    far.dial(far.uri_of("1001"))
    text = phone.wait_text("Incoming call", 10)
    assert "Phone 1002" in text or "1002" in text
    assert phone.leds()["line1"]["pattern"] == "fast_blink"
    assert phone.status()["terminals"][0]["ringing"] is True
    phone.hook(True)
    phone.wait_text("In call", 10)
    far.wait_event("CALL_ESTABLISHED", 10)
    assert connected_call(phone)["direction"] == "incoming"

    far.hangup()
    phone.wait_text("Call ended", 10)
    assert phone.status()["terminals"][0]["tone"] == "busy"
    phone.hook(False)
    phone.wait_status(lambda s: not s["calls"], 5, "no calls")
    phone.wait_screen(lambda t: t.splitlines()[1:2] == ["1001 Phone 1001"], 5, "idle")

    # second round: the phone ends the call
    far.dial(far.uri_of("1001"))
    phone.wait_text("Incoming call", 10)
    phone.key("speaker")
    far.wait_event("CALL_ESTABLISHED", 10)
    phone.key("speaker")
    far.wait_event("CALL_CLOSED", 10)
    phone.wait_status(lambda s: not s["calls"], 5, "no calls")
    phone.wait_screen(lambda t: t.splitlines()[1:2] == ["1001 Phone 1001"], 5, "idle")


def test_busy_unknown_number_and_no_answer_in_words(pbx: Kamailio, make_phone: PhoneFactory,
                                                    make_sipp_uas) -> None:
    make_sipp_uas("1003", "busy")
    make_sipp_uas("1004", "ringing")
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)

    phone.dial("1003")
    phone.wait_text("Busy", 10)
    phone.wait_screen(lambda t: "Busy" not in t, 10, "the end screen to clear")

    phone.dial("1009")  # a known user who is not registered
    phone.wait_text("Unknown number", 10)
    phone.wait_screen(lambda t: "Unknown" not in t, 10, "the end screen to clear")

    phone.hook(True)
    phone.keys("1004")
    phone.wait_text("Ringing", 10)
    assert phone.status()["terminals"][0]["tone"] == "ringback"
    phone.advance(60)  # the phone's no-answer timeout
    phone.wait_text("No answer", 10)
    phone.wait_status(lambda s: not s["calls"], 10, "the call to be cancelled")
    phone.hook(False)


def test_rejecting_an_incoming_call(pbx: Kamailio, make_phone: PhoneFactory,
                                    make_baresip) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    far = make_baresip("1002")
    far.dial(far.uri_of("1001"))
    phone.wait_text("Incoming call", 10)
    phone.key("cancel")
    closed = far.wait_event("CALL_CLOSED", 10)
    assert "486" in str(closed) or "Busy" in str(closed)
    phone.wait_status(lambda s: not s["calls"], 5, "no calls")
