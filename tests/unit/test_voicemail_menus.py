"""The phone's voicemail and menus as pure logic: when it answers, what callers and the owner
hear (prompt names), the PIN lockout, messages heard and recorded. The engine is the recording
stand-in of the controller tests; the end-to-end tests (tests/e2e/test_voicemail.py) run the
same flows with real audio through Kamailio."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from firmware.phone import Phone
from firmware.referral import make_referral
from firmware.sip import events as ev
from firmware.voicemail import Mailbox
from tests.unit.test_call_features import incoming, keys, make_phone
from tests.unit.test_phone_controller import RecordingSip

VOICEMAIL = {"voicemail": {"switchboard": "100", "pin": "4711"}}


def plays(sip: RecordingSip, session: str) -> list[tuple[str, ...]]:
    """The prompt files (names without .wav) of every ivr_play to `session`, in order."""
    return [c[2] for c in sip.sent if c[0] == "ivr_play" and c[1] == session]


def finish_prompts(phone: Phone, sip: RecordingSip, session: str) -> None:
    """The engine reports the last prompts played to their end."""
    token = [c[3] for c in sip.sent if c[0] == "ivr_play" and c[1] == session][-1]
    phone.on_sip_event(ev.PromptFinished(session, token))


def write_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x10\x00" * int(16000 * seconds))


def test_an_away_caller_hears_name_referral_and_the_options(tmp_path: Path) -> None:
    phone, sip, _ = make_phone(VOICEMAIL, tmp_path)
    now = phone.referral.now_local()
    phone.referral.set(make_referral(now, "lunch", until=time(13, 0)))
    incoming(phone, "in1", "1003")
    assert ("ivr_answer", "in1") in sip.sent and "ring" not in sip.names()
    [first] = plays(sip, "in1")
    spoken_name, *rest = first
    assert spoken_name.startswith("say-")  # "Anna", spoken
    assert rest == ["referral_lunch", "until", "1", "p_m",
                    "press", "1", "for_switchboard", "press", "2", "to_leave_message"]
    assert phone.status()["menus"] == [{"session": "in1", "line": 0, "node": "caller",
                                        "caller": "1003", "reason": "away"}]


def test_unanswered_calls_go_to_voicemail_after_answer_after(tmp_path: Path) -> None:
    phone, sip, clock = make_phone(VOICEMAIL, tmp_path)
    incoming(phone, "in1", "1003")
    assert sip.last("ring") == ("ring", "in1")
    clock.advance(19)
    assert "ivr_answer" not in sip.names()
    clock.advance(1)
    assert sip.last("ivr_answer") == ("ivr_answer", "in1")
    assert phone.status()["terminals"][0]["ringing"] is False
    [announcement] = plays(sip, "in1")
    assert announcement[1:] == ("is_not_available", "press", "1", "for_switchboard", "press",
                                "2", "to_leave_message")


def test_do_not_disturb_still_turns_callers_away(tmp_path: Path) -> None:
    phone, sip, _ = make_phone(VOICEMAIL, tmp_path)
    keys(phone, "dnd")
    incoming(phone, "in1", "1003")
    assert sip.last("hangup") == ("hangup", "in1", 486)
    assert "ivr_answer" not in sip.names()


def test_a_caller_leaves_a_message_and_the_led_blinks(tmp_path: Path) -> None:
    phone, sip, clock = make_phone(VOICEMAIL, tmp_path)
    incoming(phone, "in1", "1003")
    clock.advance(20)
    phone.on_sip_event(ev.DtmfReceived("in1", "2", "rfc4733"))
    assert plays(sip, "in1")[-1] == ("greeting_default",)
    finish_prompts(phone, sip, "in1")
    clock.advance(0)
    assert plays(sip, "in1")[-1] == ("tone",)
    finish_prompts(phone, sip, "in1")
    _, _, part, silence = sip.last("ivr_record")
    assert silence == 5.0 and part.endswith(".part.wav")
    write_wav(Path(part), 4.0)  # what the recorder wrote
    phone.on_sip_event(ev.DtmfReceived("in1", "#", "info"))
    assert sip.last("ivr_stop_recording") == ("ivr_stop_recording", "in1")
    phone.on_sip_event(ev.MenuRecordingStopped("in1", part))
    assert phone.status()["lines"][0]["voicemail"] == {"new": 1, "saved": 0}
    led = phone.terminals[0].board.leds["message"].state
    assert led.pattern.value == "slow_blink"
    assert plays(sip, "in1")[-1] == ("message_saved", "goodbye")
    finish_prompts(phone, sip, "in1")
    assert sip.last("hangup") == ("hangup", "in1", 0)
    phone.on_sip_event(ev.CallStateChanged("in1", "disconnected", 200, "OK"))
    assert phone.status()["menus"] == [] and phone.missed_calls() == 1


def test_a_message_heard_to_its_end_becomes_saved(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "voicemail" / "line1", min_seconds=0.5)
    part = box.start_message("0701", "", datetime(2026, 11, 17, 9, 0, tzinfo=UTC))
    write_wav(part, 2.0)
    message = box.finish_message(part)
    assert message is not None
    phone, sip, _ = make_phone(VOICEMAIL, tmp_path)
    keys(phone, "voicemail")
    assert phone.status()["menus"][0]["node"] == "main"
    assert ("ivr_local", True) in sip.sent
    keys(phone, "2")
    played = plays(sip, "local")[-1]
    assert played[:3] == ("1", "new_message", "received") and message.id in played
    assert phone.status()["lines"][0]["voicemail"] == {"new": 1, "saved": 0}
    keys(phone, "2")  # repeat, cut short: still new
    assert phone.status()["lines"][0]["voicemail"] == {"new": 1, "saved": 0}
    finish_prompts(phone, sip, "local")
    assert phone.status()["lines"][0]["voicemail"] == {"new": 0, "saved": 1}
    keys(phone, "speaker")  # hang up: the menu ends
    assert ("ivr_local", False) in sip.sent and phone.status()["menus"] == []


def test_three_wrong_pins_lock_remote_access_for_a_while(tmp_path: Path) -> None:
    phone, _, clock = make_phone(VOICEMAIL, tmp_path)
    assert phone.menus is not None
    check = phone.menus.check_pin
    assert [check(0, "1111"), check(0, "2222"), check(0, "3333")] == ["wrong", "wrong",
                                                                      "locked"]
    assert check(0, "4711") == "locked"
    clock.advance(15 * 60 - 1)
    assert check(0, "4711") == "locked"
    clock.advance(2)
    assert check(0, "4711") == "ok"
    assert check(0, "1") == "wrong"  # the count starts again


def test_no_pin_means_no_remote_access(tmp_path: Path) -> None:
    phone, sip, clock = make_phone({"voicemail": {"pin": ""}}, tmp_path)
    incoming(phone, "in1", "1003")
    clock.advance(20)
    phone.on_sip_event(ev.DtmfReceived("in1", "*", "rfc4733"))
    assert plays(sip, "in1")[-1][0] == "invalid"
    assert phone.menus is not None and phone.menus.check_pin(0, "") == "wrong"


def test_referral_by_touch_tone_at_the_desk(tmp_path: Path) -> None:
    phone, sip, _ = make_phone(VOICEMAIL, tmp_path)
    phone.terminals[0].dial("*21")
    options = plays(sip, "local")[-1]
    assert options[0] == "referral_menu" and options[1:4] == ("press", "0", "kind_available")
    keys(phone, "3")  # busy: set at once, then its length
    assert not phone.referral.available
    keys(phone, "9", "0", "#")
    assert phone.referral.text().startswith("Busy")
    current = phone.referral.current()
    assert current.type_key == "busy" and current.until is not None
    assert (current.until - phone.referral.now()).total_seconds() == 90 * 60
    published: list[Any] = [c for c in sip.sent if c[0] == "publish_presence"]
    assert published[-1][2] is False


def test_voicemail_off_dials_the_number(tmp_path: Path) -> None:
    phone, sip, _ = make_phone({"voicemail": {"enabled": False}}, tmp_path)
    keys(phone, "voicemail")
    assert sip.last("make_call")[3] == "555"
    assert "ivr_local" not in sip.names()


def test_tones_heard_after_out_of_band_keys_do_not_press_twice(tmp_path: Path) -> None:
    phone, _, clock = make_phone({"voicemail": {"pin": "4711"}}, tmp_path)
    incoming(phone, "in1", "1003")
    clock.advance(20)
    phone.on_sip_event(ev.DtmfReceived("in1", "*", "inband"))  # tones alone count
    assert phone.status()["menus"][0]["node"] == "pin"
    for key in "4711#":  # a phone sending RFC 4733 and leaving the tones in its audio
        phone.on_sip_event(ev.DtmfReceived("in1", key, "rfc4733"))
        phone.on_sip_event(ev.DtmfReceived("in1", key, "inband"))
    assert phone.status()["menus"][0]["node"] == "remote"
