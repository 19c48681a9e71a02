"""The phone's own voicemail and touch-tone menus, end to end: a far-end phone (pjsua2, driven
through its control API) or baresip calls through Kamailio, the phone answers for its user, and
the far end navigates by DTMF sent as RFC 4733, SIP INFO or in-band tones. Recorded messages
and what the far end heard are checked as audio."""

from __future__ import annotations

import json
import os
import signal
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware.voicemail import Mailbox
from tests.e2e.conftest import USERS, PhoneFactory, wait_registered
from tests.harness.audio_check import dominant_frequency, read_wav, rms
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until
from tools.phoneproc import LineSpec, PhoneProcess, phone_config

pytestmark = pytest.mark.e2e

VOICEMAIL = '\n[voicemail]\nanswer_after = {after}\npin = "4711"\nsilence = {silence}\n' \
    'switchboard = "{switchboard}"\nmenu_timeout = 3\nmin_message = 1\n'


def owner(make_phone: PhoneFactory, pbx: Kamailio, *, after: int = 1, silence: int = 0,
          switchboard: str = "", extra: str = "", **kwargs: Any) -> PhoneProcess:
    """Phone 1001, whose voicemail answers after `after` seconds of ringing (test clock)."""
    config = VOICEMAIL.format(after=after, silence=silence, switchboard=switchboard) + extra
    phone = make_phone("1001", pbx.port, extra=config, voicemail=True, **kwargs)
    wait_registered(phone)
    return phone


def caller(make_phone: PhoneFactory, pbx: Kamailio, mode: str, tone_hz: int = 0,
           user: str = "1002") -> PhoneProcess:
    phone = make_phone(user, pbx.port, dtmf_mode=mode, mic_tone_hz=tone_hz)
    wait_registered(phone)
    return phone


def answered_by_voicemail(owner_phone: PhoneProcess, far: PhoneProcess,
                          number: str = "1001") -> dict[str, Any]:
    """`far` calls `number`; the owner's phone rings, its clock moves past answer_after, and
    the voicemail answers. Returns the owner's menu session."""
    far.dial(number)
    owner_phone.wait_status(lambda s: s["terminals"][0]["ringing"], 10, "the phone to ring")
    owner_phone.advance(2)
    far.wait_text("In call", 10)
    return owner_phone.wait_status(lambda s: s["menus"] and s["menus"][0], 10,
                                   "the voicemail to answer")


def recording(phone: PhoneProcess, seconds: float) -> Path:
    """Wait until the message being recorded holds `seconds` of audio; its part file."""
    folder = phone.data_dir / "voicemail" / "line1"
    part = wait_until(lambda: next(folder.glob("*.part.wav"), None), 20, 0.05,
                      "the recording to start")
    wait_until(lambda: part.stat().st_size >= 44 + int(16000 * 2 * seconds), 20, 0.05,
               f"{seconds} s of message")
    return part


def wait_node(phone: PhoneProcess, name: str, timeout: float = 15.0) -> None:
    phone.wait_status(lambda s: s["menus"] and s["menus"][0]["node"] == name, timeout,
                      f"the menu to reach {name}")


def messages(phone: PhoneProcess) -> list[dict[str, Any]]:
    folder = phone.data_dir / "voicemail" / "line1"
    return [json.loads(p.read_text()) | {"wav": p.with_suffix(".wav")}
            for p in sorted(folder.glob("*.json")) if not p.name.endswith(".part.json")]


@pytest.mark.parametrize("mode", ["rfc4733", "info", "inband"])
def test_caller_leaves_a_message_and_the_owner_sees_it(
        pbx: Kamailio, make_phone: PhoneFactory, mode: str) -> None:
    phone = owner(make_phone, pbx)
    # in-band keys need a quiet microphone: a tone beside them is not a clean DTMF pair
    far = caller(make_phone, pbx, mode, tone_hz=0 if mode == "inband" else 1000)
    session = answered_by_voicemail(phone, far)
    assert session["reason"] == "no_answer" and session["caller"] == "1002"
    far.keys("2")  # leave a message: the greeting, the tone, then recording
    wait_node(phone, "record_message")
    recording(phone, seconds=3.0)
    far.keys("#")
    far.wait_status(lambda s: not s["calls"], 20, "the voicemail to say goodbye and hang up")
    status = phone.wait_status(lambda s: s["lines"][0]["voicemail"]["new"] == 1 and s, 10,
                               "the message to count")
    assert status["missed_calls"] >= 1
    assert phone.leds()["message"]["pattern"] == "slow_blink"
    [message] = messages(phone)
    assert message["caller"] == "1002" and message["new"] is True
    pcm, rate = read_wav(message["wav"])
    assert 2.0 <= len(pcm) / rate <= 30.0
    if mode != "inband":  # (an in-band caller's microphone is quiet; its # ends the message)
        assert abs(dominant_frequency(message["wav"]) - 1000) < 30  # the caller's tone


def write_wav(path: Path, parts: list[tuple[int, float]]) -> None:
    """16 kHz mono WAV of (Hz, seconds) sine parts; 0 Hz is silence."""
    pcm = np.concatenate([8000 * np.sin(2 * np.pi * hz * np.arange(int(16000 * s)) / 16000)
                          for hz, s in parts])
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm.astype("<i2").tobytes())


def seed_messages(phone: PhoneProcess, tones: list[int], seconds: float = 2.0) -> list[str]:
    """Messages already in the owner's mailbox (before the phone starts): `seconds` of each
    tone, from 070-1 and 070-2 ..., written through the mailbox the phone uses."""
    box = Mailbox(phone.data_dir / "voicemail" / "line1", min_seconds=0.5)
    ids = []
    for index, hz in enumerate(tones):
        part = box.start_message(f"070{index + 1}", "", datetime(2026, 11, 17, 9, index,
                                                                 tzinfo=UTC))
        write_wav(part, [(hz, seconds)])
        message = box.finish_message(part)
        assert message is not None
        ids.append(message.id)
    return ids


def remote_login(phone: PhoneProcess, far: PhoneProcess, pin: str = "4711") -> None:
    answered_by_voicemail(phone, far)
    far.keys("*")
    wait_node(phone, "pin")
    far.keys(pin + "#")
    wait_node(phone, "remote")


def heard(phone: PhoneProcess) -> float:
    """RMS (full scale 1.0) of what the phone's earpiece recorded in its last audio session,
    once the recorder has closed the file."""
    path = Path(phone.status()["engine"]["earpiece_file"])

    def closed() -> float | None:
        try:
            return rms(path)
        except (wave.Error, EOFError):
            return None
    return wait_until(closed, 10, 0.05, f"{path.name} to be closed")


@pytest.mark.parametrize("mode", ["rfc4733", "info"])
def test_owner_menu_remotely_with_the_pin(pbx: Kamailio, make_phone: PhoneFactory,
                                          mode: str) -> None:
    config = VOICEMAIL.format(after=1, silence=0, switchboard="")
    phone = make_phone("1001", pbx.port, extra=config, voicemail=True, start=False)
    _, second = seed_messages(phone, [600, 900])
    phone.start()
    wait_registered(phone)
    assert phone.status()["lines"][0]["voicemail"] == {"new": 2, "saved": 0}
    far = caller(make_phone, pbx, mode, tone_hz=1000)
    remote_login(phone, far)
    far.keys("1")
    wait_node(phone, "main")
    far.keys("2")  # the messages: the first, with its envelope, plays to the end
    wait_node(phone, "messages")
    phone.wait_status(lambda s: s["lines"][0]["voicemail"]["saved"] == 1, 40,
                      "the first message, heard to the end, to count as saved")
    far.keys("3")  # next
    far.keys("1")  # previous (the first again)
    far.keys("2")  # repeat
    far.keys("7")  # delete the current (the first)
    phone.wait_status(lambda s: s["lines"][0]["voicemail"] == {"new": 1, "saved": 0}, 10,
                      "the first message to be deleted")
    assert [m["wav"].stem for m in messages(phone)] == [second]
    far.keys("0")  # main menu
    wait_node(phone, "main")
    far.keys("5")  # record a greeting: the caller's 1000 Hz tone
    wait_node(phone, "record_greeting")
    greeting = phone.data_dir / "voicemail" / "line1" / "greeting.part.wav"
    wait_until(greeting.exists, 20, 0.05, "the greeting recording to start")
    recorded_from = far.status()["calls"][0]["duration"]
    far.wait_status(lambda s: s["calls"][0]["duration"] >= recorded_from + 2.5, 10,
                    "two seconds of greeting")
    far.keys("#")
    wait_node(phone, "main")
    final = phone.data_dir / "voicemail" / "line1" / "greeting.wav"
    wait_until(final.exists, 10, 0.05, "the greeting to be saved")
    pcm, rate = read_wav(final)
    assert len(pcm) / rate >= 2.0
    assert abs(dominant_frequency(final, 0.2) - 1000) < 30
    far.keys("4")  # listen to it, then delete it
    far.keys("6")
    wait_until(lambda: not final.exists(), 10, 0.05, "the greeting to be deleted")
    far.keys("*")  # end call
    far.wait_status(lambda s: not s["calls"], 20, "the voicemail to hang up")
    phone.wait_status(lambda s: not s["menus"] and not s["calls"], 10, "no menu left")
    assert heard(far) > 0.02  # the far end heard the prompts and messages


def test_three_wrong_pins_lock_remote_access_across_calls(pbx: Kamailio,
                                                         make_phone: PhoneFactory) -> None:
    phone = owner(make_phone, pbx)
    far = caller(make_phone, pbx, "rfc4733")
    answered_by_voicemail(phone, far)
    far.keys("*")
    wait_node(phone, "pin")
    for pin in ("1111", "2222", "3333"):
        far.keys(pin + "#")
    far.wait_status(lambda s: not s["calls"], 30, "the voicemail to hang up after 3 wrong")
    phone.wait_status(lambda s: not s["menus"], 10, "no menu left")
    # the next call: even the right PIN is refused while locked
    answered_by_voicemail(phone, far)
    far.keys("*")
    wait_node(phone, "pin")
    far.keys("4711#")
    far.wait_status(lambda s: not s["calls"], 30, "the voicemail to refuse and hang up")
    log = (phone.workdir / "phone.log").read_text()
    assert log.count("wrong PIN for remote access") == 3
    assert "remote access refused: locked" in log
    assert "remote access with the right PIN" not in log


def test_referral_by_touch_tone_at_the_desk_then_callers_hear_it(
        pbx: Kamailio, make_phone: PhoneFactory) -> None:
    phone = owner(make_phone, pbx, after=0)
    phone.dial("*21")  # the referral feature code, hands-free
    phone.wait_text("Referral", 10)
    wait_node(phone, "referral")
    phone.keys("2")  # lunch
    wait_node(phone, "referral_minutes")
    phone.keys("45#")
    status = phone.wait_status(lambda s: not s["referral"]["available"] and s, 15,
                               "the referral to be set")
    assert status["referral"]["text"].startswith("Lunch")
    phone.wait_status(lambda s: not s["menus"], 20, "the menu to say goodbye")
    phone.key("speaker")
    assert heard(phone) > 0.02  # the menu was heard in the earpiece
    # a caller now gets the announcement at once, without ringing
    far = caller(make_phone, pbx, "rfc4733")
    far.dial("1001")
    far.wait_text("In call", 10)
    session = phone.wait_status(lambda s: s["menus"] and s["menus"][0], 10, "the voicemail")
    assert session["reason"] == "away"
    assert phone.status()["terminals"][0]["rings"] == 0
    announced = wait_until(lambda: next((line for line in (phone.workdir / "phone.log")
                                         .read_text().splitlines() if "announcing" in line),
                                        None), 10, 0.05, "the announcement")
    assert "say-" in announced and "referral_lunch until" in announced  # name, status, end
    far.wait_status(lambda s: s["calls"][0]["duration"] >= 4, 10, "the announcement")
    far.key("speaker")
    far.wait_status(lambda s: not s["calls"], 10, "hang up")
    assert heard(far) > 0.02


def test_voicemail_key_opens_the_owners_menu_at_the_desk(pbx: Kamailio,
                                                        make_phone: PhoneFactory) -> None:
    config = VOICEMAIL.format(after=1, silence=0, switchboard="")
    phone = make_phone("1001", pbx.port, extra=config, voicemail=True, start=False)
    seed_messages(phone, [700])
    phone.start()
    wait_registered(phone)
    assert phone.leds()["message"]["pattern"] == "slow_blink"
    phone.key("voicemail")
    phone.wait_text("Voicemail", 10)
    wait_node(phone, "main")
    phone.keys("2")
    phone.wait_status(lambda s: s["lines"][0]["voicemail"]["saved"] == 1, 40,
                      "the message to be heard to the end")
    phone.keys("7")
    phone.wait_status(lambda s: s["lines"][0]["voicemail"] == {"new": 0, "saved": 0}, 10,
                      "the message to be deleted")
    phone.key("speaker")  # hang up: the menu ends
    phone.wait_status(lambda s: not s["menus"], 10, "the menu to end")
    assert phone.leds()["message"]["pattern"] == "off"
    assert heard(phone) > 0.02  # the menu and the message, in the earpiece


def test_a_busy_phone_answers_with_voicemail_and_1_transfers_to_the_switchboard(
        pbx: Kamailio, make_phone: PhoneFactory, make_baresip) -> None:
    phone = owner(make_phone, pbx, switchboard="1004",
                  extra="[calls]\ncall_waiting = false\n")
    colleague = make_baresip("1003", auto_answer=True)
    switchboard = make_baresip("1004", auto_answer=True)
    phone.dial("1003")
    phone.wait_text("In call", 10)
    colleague.wait_event("CALL_ESTABLISHED", 10)
    far = caller(make_phone, pbx, "rfc4733")
    far.dial("1001")
    far.wait_text("In call", 10)
    session = phone.wait_status(lambda s: s["menus"] and s["menus"][0], 10, "the voicemail")
    assert session["reason"] == "busy"
    far.keys("1")  # the switchboard: the caller is transferred (REFER) there
    switchboard.wait_event("CALL_ESTABLISHED", 20)
    phone.wait_status(lambda s: not s["menus"] and len(s["calls"]) == 1, 20,
                      "the voicemail call to end, the call with 1003 to go on")
    wire = pbx.wait_message(lambda m: m.method == "REFER", 5, what="the REFER")
    assert "1004" in wire.header("Refer-To")


def test_a_full_mailbox_says_so_and_keeps_every_message(pbx: Kamailio,
                                                       make_phone: PhoneFactory) -> None:
    config = VOICEMAIL.format(after=1, silence=0, switchboard="") + "max_messages = 1\n"
    phone = make_phone("1001", pbx.port, extra=config, voicemail=True, start=False)
    [kept] = seed_messages(phone, [500])
    phone.start()
    wait_registered(phone)
    far = caller(make_phone, pbx, "rfc4733", tone_hz=1000)
    answered_by_voicemail(phone, far)
    far.keys("2")
    wait_node(phone, "mailbox_full")
    far.wait_status(lambda s: not s["calls"], 30, "the voicemail to say so and hang up")
    assert [m["wav"].stem for m in messages(phone)] == [kept]
    assert abs(dominant_frequency(messages(phone)[0]["wav"]) - 500) < 20


def test_kill_9_while_recording_leaves_a_playable_message(pbx: Kamailio,
                                                         make_phone: PhoneFactory) -> None:
    phone = owner(make_phone, pbx)
    far = caller(make_phone, pbx, "rfc4733", tone_hz=1000)
    answered_by_voicemail(phone, far)
    far.keys("2")
    wait_node(phone, "record_message")
    folder = phone.data_dir / "voicemail" / "line1"
    recording(phone, seconds=3.0)
    os.kill(phone.pid, signal.SIGKILL)
    wait_until(lambda: not phone.process.running(), 10, 0.05, "the phone to die")
    far.key("speaker")  # no BYE will come: the caller gives up
    again = PhoneProcess(phone.workdir, phone.config_toml, test_clock=True).start()
    try:
        wait_registered(again)
        [message] = messages(again)
        assert not list(folder.glob("*.part.*"))
        pcm, rate = read_wav(message["wav"])
        assert len(pcm) / rate >= 2.5
        assert abs(dominant_frequency(message["wav"]) - 1000) < 30
        assert again.status()["lines"][0]["voicemail"]["new"] == 1
    finally:
        again.stop()


def test_fast_invalid_and_endless_keys_never_crash_or_leak_a_call(
        pbx: Kamailio, make_phone: PhoneFactory) -> None:
    phone = owner(make_phone, pbx)
    far = caller(make_phone, pbx, "rfc4733")
    ports = phone.status()["engine"]["media_ports"]
    answered_by_voicemail(phone, far)
    far.keys("*" + "9" * 12 + "#" * 6 + "0123456789*#")  # PIN overflow, invalid keys
    far.wait_status(lambda s: not s["calls"], 60, "the menu to give up and hang up")
    phone.wait_status(lambda s: not s["menus"] and not s["calls"], 10, "nothing left over")
    for _ in range(2):  # and it answers the next callers as before
        answered_by_voicemail(phone, far)
        far.keys("#*#*99")
        far.key("speaker")
        far.wait_status(lambda s: not s["calls"], 10, "hang up")
        phone.wait_status(lambda s: not s["menus"] and not s["calls"], 10, "nothing left")
    assert phone.process.running()
    phone.wait_status(lambda s: s["engine"]["media_ports"] <= ports, 10,
                      f"no more than the {ports} media ports of before (players, taps freed)")


def test_referral_remotely_with_the_pin_by_inband_keys(pbx: Kamailio,
                                                       make_phone: PhoneFactory) -> None:
    phone = owner(make_phone, pbx)
    far = caller(make_phone, pbx, "inband")
    remote_login(phone, far)
    far.keys("2")  # the referral menu
    wait_node(phone, "referral")
    far.keys("1")  # meeting, then its length
    wait_node(phone, "referral_minutes")
    far.keys("30#")
    status = phone.wait_status(lambda s: not s["referral"]["available"] and s, 15,
                               "the referral to be set")
    assert status["referral"]["text"].startswith("Meeting")
    far.wait_status(lambda s: not s["calls"], 20, "the menu to say goodbye and hang up")
    assert phone.status()["calls"] == []


def test_silence_ends_a_message(pbx: Kamailio, make_phone: PhoneFactory,
                                tmp_path: Path) -> None:
    phone = owner(make_phone, pbx, silence=3)
    voice = tmp_path / "voice.wav"  # 10 s of a 1 kHz "voice", then 30 s of silence
    write_wav(voice, [(1000, 10.0), (0, 30.0)])
    line = LineSpec("1002", USERS["1002"], f"127.0.0.1:{pbx.port}", "Phone 1002")
    far = PhoneProcess(tmp_path / "caller", phone_config([line], mic_file=str(voice)),
                       test_clock=True)
    far.start()
    try:
        wait_registered(far)
        answered_by_voicemail(phone, far)
        far.keys("2")
        far.wait_status(lambda s: not s["calls"], 40,
                        "the silence to end the message and the voicemail to hang up")
        [message] = messages(phone)
        pcm_in, rate = read_wav(message["wav"])
        assert 3.0 <= len(pcm_in) / rate <= 15.0  # stopped by the silence, not the limit
        assert abs(dominant_frequency(message["wav"], 0.2) - 1000) < 30
        assert "silence ends the message" in (phone.workdir / "phone.log").read_text()
    finally:
        far.stop()
