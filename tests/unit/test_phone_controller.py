"""The controller's call handling as pure logic: a manual clock and a recording SIP port.

The recorder stands where the pjsua2 engine stands (the same `SipCommands` interface); the
end-to-end tests run the same flows against the real engine, Kamailio and baresip.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from audio.tones import ToneSegment
from board.parts import LedPattern
from board.sim import sim_board
from firmware.clock import ManualClock
from firmware.config import parse_config
from firmware.phone import Phone
from firmware.sip import events as ev


class RecordingSip:
    """Records the commands the controller sends, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.identities: list[ev.OutgoingIdentity | None] = []
        self._ids = 0

    def new_call_id(self) -> str:
        self._ids += 1
        return f"c{self._ids}"

    def names(self) -> list[str]:
        return [c[0] for c in self.sent]

    def last(self, name: str) -> tuple[Any, ...]:
        return next(c for c in reversed(self.sent) if c[0] == name)

    def register(self, line: int) -> None:
        self.sent.append(("register", line))

    def reconfigure_line(self, index: int, line: Any) -> None:
        self.sent.append(("reconfigure_line", index, line.user))

    def make_call(self, call_id: str, line: int, number: str,
                  identity: ev.OutgoingIdentity | None = None,
                  pickup: ev.Pickup | None = None, terminal: int = 0) -> None:
        self.sent.append(("make_call", call_id, line, number))
        self.identities.append(identity)

    def hold(self, call_id: str) -> None:
        self.sent.append(("hold", call_id))

    def resume(self, call_id: str) -> None:
        self.sent.append(("resume", call_id))

    def transfer(self, call_id: str, number: str) -> None:
        self.sent.append(("transfer", call_id, number))

    def transfer_replaces(self, call_id: str, other_call_id: str) -> None:
        self.sent.append(("transfer_replaces", call_id, other_call_id))

    def redirect(self, call_id: str, number: str) -> None:
        self.sent.append(("redirect", call_id, number))

    def conference(self, call_ids: list[str], terminal: int = 0) -> None:
        self.sent.append(("conference", tuple(call_ids)))

    def mute(self, muted: bool, terminal: int = 0) -> None:
        self.sent.append(("mute", muted))

    def intercom(self, first: int, second: int, on: bool) -> None:
        self.sent.append(("intercom", first, second, on))

    def move_call(self, call_id: str, terminal: int) -> None:
        self.sent.append(("move_call", call_id, terminal))

    def start_recording(self, path: str, terminal: int = 0) -> None:
        self.sent.append(("start_recording", path))

    def stop_recording(self, terminal: int = 0) -> None:
        self.sent.append(("stop_recording",))

    def publish_presence(self, line: int, available: bool, note: str, activity: str) -> None:
        self.sent.append(("publish_presence", line, available, note, activity))

    def watch_presence(self, line: int, user: str) -> None:
        self.sent.append(("watch_presence", line, user))

    def ring(self, call_id: str) -> None:
        self.sent.append(("ring", call_id))

    def answer(self, call_id: str, terminal: int = 0) -> None:
        self.sent.append(("answer", call_id))

    def hangup(self, call_id: str, code: int = 0) -> None:
        self.sent.append(("hangup", call_id, code))

    def send_dtmf(self, call_id: str, digits: str) -> None:
        self.sent.append(("send_dtmf", call_id, digits))

    def open_audio_path(self, terminal: int = 0) -> None:
        self.sent.append(("open_audio_path",))

    def close_audio_path(self, terminal: int = 0) -> None:
        self.sent.append(("close_audio_path",))

    def play_tone(self, name: str, segments: list[ToneSegment], loop: bool = True,
                  terminal: int = 0) -> None:
        self.sent.append(("play_tone", name))

    def play_feedback(self, segments: list[ToneSegment], volume: int,
                      terminal: int = 0) -> None:
        self.sent.append(("play_feedback", tuple(s.freqs for s in segments)))

    def stop_tone(self, terminal: int = 0) -> None:
        self.sent.append(("stop_tone",))

    def ivr_answer(self, call_id: str) -> None:
        self.sent.append(("ivr_answer", call_id))

    def ivr_local(self, start: bool, terminal: int = 0) -> None:
        self.sent.append(("ivr_local", start))

    def ivr_play(self, session: str, paths: list[str], token: int) -> None:
        self.sent.append(("ivr_play", session, tuple(Path(p).stem for p in paths), token))

    def ivr_stop_prompts(self, session: str) -> None:
        self.sent.append(("ivr_stop_prompts", session))

    def ivr_record(self, session: str, path: str, silence_s: float) -> None:
        self.sent.append(("ivr_record", session, path, silence_s))

    def ivr_stop_recording(self, session: str) -> None:
        self.sent.append(("ivr_stop_recording", session))


def make_phone(tables: dict[str, Any] | None = None,
               **device: Any) -> tuple[Phone, RecordingSip, ManualClock]:
    config = parse_config({
        "device": {"language": "en", **device},
        "lines": [{"user": "1001", "registrar": "127.0.0.1:5060", "display_name": "Anna"}],
        **(tables or {}),
    })
    clock, sip = ManualClock(), RecordingSip()
    phone = Phone(config, clock, sip, [sim_board()], rng=random.Random(1))
    phone.start()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    return phone, sip, clock


def screen(phone: Phone) -> str:
    return "\n".join(phone.terminals[0].board.display.rows)


def test_idle_screen_shows_time_and_line() -> None:
    phone, _, _ = make_phone()
    rows = phone.terminals[0].board.display.rows
    assert rows[1] == "1001 Anna"
    assert ":" in rows[0]
    assert "No service" not in screen(phone)


def test_offhook_plays_dial_tone_and_digits_dial_when_the_plan_completes() -> None:
    phone, sip, _ = make_phone()
    term = phone.terminals[0]
    term.hook(True)
    assert sip.last("play_tone") == ("play_tone", "dial")
    assert screen(phone).startswith("Dial:")
    for d in "100":
        term.key(d)
    assert "make_call" not in sip.names()
    assert "stop_tone" in sip.names()
    term.key("2")
    assert sip.last("make_call") == ("make_call", "c1", 0, "1002")
    assert screen(phone).startswith("Calling\n1002")


def test_hash_sends_at_once() -> None:
    phone, sip, _ = make_phone()
    term = phone.terminals[0]
    term.hook(True)
    for d in "0812#":
        term.key(d)
    assert sip.last("make_call")[3] == "0812"


def test_interdigit_timeout_sends_a_T_number() -> None:
    phone, sip, clock = make_phone(interdigit_timeout=4.0)
    term = phone.terminals[0]
    term.hook(True)
    for d in "08123":
        term.key(d)
    clock.advance(3.9)
    assert "make_call" not in sip.names()
    clock.advance(0.2)
    assert sip.last("make_call")[3] == "08123"


def test_number_outside_the_plan_is_refused_with_congestion() -> None:
    phone, sip, _ = make_phone(dial_plan="[2-4]xxx")
    term = phone.terminals[0]
    term.hook(True)
    term.key("9")
    assert screen(phone).startswith("Invalid number")
    assert sip.last("play_tone") == ("play_tone", "congestion")
    assert "make_call" not in sip.names()


@pytest.mark.parametrize(("code", "words"), [
    (486, "Busy"), (404, "Unknown number"), (480, "No answer"), (503, "Network error"),
    (603, "Declined"), (0, "Network error"),
])
def test_failed_calls_show_the_reason(code: int, words: str) -> None:
    phone, sip, _ = make_phone()
    phone.terminals[0].dial("1002")
    call_id = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(call_id, "disconnected", code, "x"))
    assert screen(phone).startswith(words)


def test_ringback_then_connected_then_far_end_hangs_up_with_handset_up() -> None:
    phone, sip, clock = make_phone()
    term = phone.terminals[0]
    term.hook(True)
    term.key("1")
    term.key("0")
    term.key("0")
    term.key("2")
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "early", 180, "Ringing"))
    assert sip.last("play_tone") == ("play_tone", "ringback")
    assert screen(phone).startswith("Ringing")
    phone.on_sip_event(ev.CallStateChanged(cid, "confirmed", 200, "OK"))
    assert sip.sent[-1] == ("stop_tone",)
    clock.advance(65)
    assert screen(phone).splitlines()[3].endswith("01:05")
    assert phone.status()["calls"][0]["state"] == "connected"
    phone.on_sip_event(ev.CallStateChanged(cid, "disconnected", 200, "Normal"))
    assert screen(phone).startswith("Call ended")
    assert sip.last("play_tone") == ("play_tone", "busy")
    clock.advance(30)
    assert screen(phone).startswith("Call ended")  # until the handset goes down
    term.hook(False)
    assert sip.sent[-1] == ("close_audio_path",)
    assert screen(phone).splitlines()[1] == "1001 Anna"


def test_early_media_replaces_local_ringback() -> None:
    phone, sip, _ = make_phone()
    phone.terminals[0].dial("1002")
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallMediaChanged(cid, True))
    phone.on_sip_event(ev.CallStateChanged(cid, "early", 183, "Session Progress"))
    assert "play_tone" not in sip.names()


def test_incoming_call_rings_counts_rings_and_lifting_answers() -> None:
    phone, sip, clock = make_phone()
    term = phone.terminals[0]
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1002@pbx", "Bertil", "1002"))
    assert sip.last("ring") == ("ring", "c9")
    assert screen(phone) == "Incoming call\nBertil\n1002\n"
    assert term.board.leds["line1"].state.pattern is LedPattern.FAST_BLINK
    clock.advance(6.0)  # Swedish cadence: 1 s on, 5 s off
    assert term.status()["rings"] == 2
    term.hook(True)
    assert sip.last("answer") == ("answer", "c9")
    phone.on_sip_event(ev.CallStateChanged("c9", "confirmed", 200, "OK"))
    assert screen(phone).startswith("Bertil\n1002")
    term.hook(False)
    assert sip.last("hangup") == ("hangup", "c9", 0)
    assert phone.terminals[0].status()["ringing"] is False


def test_cancel_rejects_an_incoming_call_busy() -> None:
    phone, sip, _ = make_phone()
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1002@pbx", "", "1002"))
    phone.terminals[0].key("cancel")
    assert sip.last("hangup") == ("hangup", "c9", 486)


def test_second_incoming_call_while_busy_is_refused_without_call_waiting() -> None:
    phone, sip, _ = make_phone({"calls": {"call_waiting": False}})
    phone.terminals[0].dial("1002")
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1003@pbx", "", "1003"))
    assert sip.last("hangup") == ("hangup", "c9", 486)
    assert screen(phone).startswith("Calling")


def test_no_answer_timeout_cancels_the_call() -> None:
    phone, sip, clock = make_phone(no_answer_timeout=30)
    phone.terminals[0].dial("1002")
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "early", 180, "Ringing"))
    clock.advance(30)
    assert sip.last("hangup") == ("hangup", cid, 0)
    assert screen(phone).startswith("No answer")
    phone.on_sip_event(ev.CallStateChanged(cid, "disconnected", 487, "Request Terminated"))
    assert screen(phone).startswith("No answer")


def test_handsfree_end_screen_returns_to_idle() -> None:
    phone, sip, clock = make_phone()
    phone.terminals[0].dial("1002")
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "disconnected", 486, "Busy Here"))
    assert screen(phone).startswith("Busy")
    clock.advance(3)
    assert screen(phone).splitlines()[1] == "1001 Anna"
    assert phone.terminals[0].status()["speaker"] is False


def test_dtmf_in_a_connected_call() -> None:
    phone, sip, _ = make_phone()
    phone.terminals[0].dial("555")
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "confirmed", 200, "OK"))
    phone.terminals[0].key("1")
    assert sip.last("send_dtmf") == ("send_dtmf", cid, "1")


def test_registration_failure_backs_off_through_the_clock() -> None:
    phone, sip, clock = make_phone()
    phone.on_sip_event(ev.RegistrationChanged(0, False, 503, "Connection refused"))
    assert "No service" in screen(phone)
    retry_in = phone.status()["lines"][0]["next_retry_in"]
    assert 30 <= retry_in <= 60  # first failure: 50-100 % of min(1800, 30 * 2)
    clock.advance(retry_in - 0.5)
    assert "register" not in sip.names()
    clock.advance(0.5)
    assert sip.last("register") == ("register", 0)
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    assert "No service" not in screen(phone)


def test_retry_after_from_the_registrar_wins() -> None:
    phone, sip, clock = make_phone()
    phone.on_sip_event(ev.RegistrationChanged(0, False, 503, "Maintenance", retry_after=120))
    assert phone.status()["lines"][0]["next_retry_in"] == 120
    clock.advance(119)
    assert "register" not in sip.names()
    clock.advance(1)
    assert "register" in sip.names()


def test_swedish_texts() -> None:
    phone, sip, _ = make_phone(language="sv")
    phone.terminals[0].dial("1002")
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "disconnected", 486, "Busy Here"))
    assert screen(phone).startswith("Upptaget")


def test_events_for_unknown_calls_are_ignored() -> None:
    phone, _, _ = make_phone()
    before = screen(phone)
    phone.on_sip_event(ev.CallStateChanged("nope", "disconnected", 200, "OK"))
    phone.on_sip_event(ev.CallMediaChanged("nope", True))
    assert screen(phone) == before


def test_our_own_unregistration_is_not_a_failure() -> None:
    phone, sip, clock = make_phone()
    phone.on_sip_event(ev.RegistrationChanged(0, False, 200, "OK", 0))
    assert phone.status()["lines"][0]["next_retry_in"] is None
    assert phone.status()["lines"][0]["failures"] == 0
    clock.advance(3600)
    assert "register" not in sip.names()


def test_the_callee_name_is_shown_once_known() -> None:
    phone, sip, _ = make_phone()
    phone.terminals[0].dial("1002")
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "confirmed", 200, "OK", "sip:1002@pbx",
                                           "Bertil Berg"))
    assert screen(phone).startswith("Bertil Berg\n1002")


def test_hash_sends_a_predialled_number_hands_free() -> None:
    phone, sip, _ = make_phone()
    term = phone.terminals[0]
    for d in "1002#":
        term.key(d)
    assert sip.last("make_call")[3] == "1002"
    assert term.status()["speaker"] is True
    assert ("open_audio_path",) in sip.sent


class RecordingAudio:
    def __init__(self) -> None:
        self.routes: list[str | None] = []
        self.steps: list[bool] = []
        self.ringer: list[tuple[str, tuple[int, ...]] | None] = []
        self.key_sounds: list[str] = []
        self.ringer_steps: list[bool] = []

    def route(self, where: str | None) -> None:
        self.routes.append(where)

    def volume_step(self, up: bool) -> int:
        self.steps.append(up)
        return 8

    def status(self) -> dict[str, Any]:
        return {"routes": len(self.routes)}

    def simulate_headset(self, plugged: bool) -> bool:
        return False  # as a board with real headset detection

    def ring(self, ringtone: str, cadence_ms: tuple[int, ...]) -> None:
        self.ringer.append((ringtone, cadence_ms))

    def stop_ringing(self) -> None:
        self.ringer.append(None)

    def key_sound(self, key: str) -> None:
        self.key_sounds.append(key)

    def ringer_volume_step(self, up: bool) -> int:
        self.ringer_steps.append(up)
        return 9


def test_the_terminal_routes_sound_hardware_and_volume_keys() -> None:
    config = parse_config({"device": {"language": "en"},
                           "lines": [{"user": "1001", "registrar": "127.0.0.1:5060"}]})
    audio = RecordingAudio()
    phone = Phone(config, ManualClock(), RecordingSip(), [sim_board()], audio=audio)
    term = phone.terminals[0]
    term.hook(True)
    term.key("speaker")  # hands-free with the handset still up
    term.key("speaker")  # back to the handset
    term.key("volume_up")
    term.key("volume_down")
    term.hook(False)
    assert audio.routes == ["handset", "speaker", "handset", None]
    assert audio.steps == [True, False]


def audio_phone(*, jack: bool = True) -> tuple[Phone, RecordingSip, RecordingAudio]:
    config = parse_config({"device": {"language": "en"},
                           "lines": [{"user": "1001", "registrar": "127.0.0.1:5060"}]})
    audio, sip = RecordingAudio(), RecordingSip()
    phone = Phone(config, ManualClock(), sip, [sim_board()], audio=audio)
    phone.start()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    if jack:
        phone.headset_detected("gpio", False)
    return phone, sip, audio


def connect(phone: Phone, sip: RecordingSip) -> str:
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "confirmed", 200, "OK"))
    return cid


def test_plugging_a_headset_mid_call_moves_the_sound_and_pulling_it_moves_it_back() -> None:
    phone, sip, audio = audio_phone()
    term = phone.terminals[0]
    term.hook(True)
    for d in "1002#":
        term.key(d)
    connect(phone, sip)
    phone.headset_changed(True)
    assert term.status()["route"] == "headset"
    assert phone.terminals[0].board.leds["headset"].state.pattern is LedPattern.ON
    assert "Headset" in screen(phone)
    phone.headset_changed(False)  # pulled out with the handset still lifted: back to it
    assert audio.routes == ["handset", "headset", "handset"]
    assert phone.terminals[0].board.leds["headset"].state.pattern is LedPattern.OFF
    assert phone.calls, "the call goes on"


def test_pulling_the_headset_with_the_handset_down_moves_the_call_to_the_speaker() -> None:
    phone, sip, audio = audio_phone()
    phone.headset_changed(True)
    term = phone.terminals[0]
    term.dial("1002")  # click-to-dial without lifting: the plugged headset carries it
    cid = connect(phone, sip)
    phone.headset_changed(False)
    assert audio.routes == ["headset", "speaker"]
    assert ("hangup", cid, 0) not in sip.sent
    assert "Speaker" in screen(phone)


def test_headset_key_answers_moves_and_returns_a_call() -> None:
    phone, sip, audio = audio_phone()
    phone.headset_changed(True)
    phone.on_sip_event(ev.IncomingCall("in1", 0, "sip:1002@pbx", "Bertil", "1002"))
    term = phone.terminals[0]
    term.key("headset")
    assert sip.last("answer") == ("answer", "in1")
    phone.on_sip_event(ev.CallStateChanged("in1", "confirmed", 200, "OK"))
    term.key("speaker")
    term.key("headset")
    term.key("headset")  # off the headset in a call with the handset down: the speaker
    assert audio.routes == ["headset", "speaker", "headset", "speaker"]
    assert "hangup" not in sip.names()


def test_headset_key_without_a_headset_says_so_and_does_nothing() -> None:
    phone, sip, audio = audio_phone()
    term = phone.terminals[0]
    term.key("headset")
    assert "No headset" in screen(phone)
    assert audio.routes == [] and "open_audio_path" not in sip.names()
    phone.clock.advance(6)
    assert "No headset" not in screen(phone)


def test_headset_key_gives_a_dial_tone_on_the_headset_and_hangs_up() -> None:
    phone, _, audio = audio_phone(jack=False)  # no detection: trust the key
    term = phone.terminals[0]
    term.key("headset")
    assert term.status()["tone"] == "dial" and audio.routes == ["headset"]
    term.key("headset")
    assert audio.routes == ["headset", None] and term.status()["tone"] is None


def test_a_failed_headset_device_moves_the_call_and_shows_why() -> None:
    phone, sip, audio = audio_phone()
    phone.headset_changed(True)
    term = phone.terminals[0]
    term.dial("1002")
    connect(phone, sip)
    phone.audio_failed("headset", "headset: cannot write to device 'hw:1' (No such device)")
    assert "Headset failed" in screen(phone)
    assert audio.routes == ["headset", "speaker"]
    assert term.status()["headset_plugged"] is False


def test_api_headset_needs_a_simulated_jack() -> None:
    phone, _, _ = audio_phone()
    assert phone.simulate_headset(True) is False
    plain, _, _ = make_phone()
    assert plain.simulate_headset(True) is True
    assert plain.terminals[0].status()["headset_plugged"] is True


def test_keys_sound_their_dtmf_pair_or_a_click_while_the_sound_is_open() -> None:
    phone, sip, _ = make_phone()
    term = phone.terminals[0]
    term.key("5")  # on-hook pre-dialling: nothing open, nothing heard here
    assert "play_feedback" not in sip.names()
    term.key("cancel")
    term.hook(True)
    term.key("5")
    term.key("down")
    feedback = [c[1] for c in sip.sent if c[0] == "play_feedback"]
    assert feedback == [((770, 1336),), ((2000,),)]


def test_key_tones_can_be_switched_off() -> None:
    phone, sip, _ = make_phone(key_tones=False)
    phone.terminals[0].hook(True)
    phone.terminals[0].key("5")
    assert "play_feedback" not in sip.names()


def test_an_incoming_call_rings_the_ringer_until_answered() -> None:
    config = parse_config({"device": {"language": "en", "ringtone": "soft"},
                           "lines": [{"user": "1001", "registrar": "127.0.0.1:5060"},
                                     {"user": "1009", "registrar": "127.0.0.1:5060",
                                      "ringtone": "beep"}]})
    audio = RecordingAudio()
    phone = Phone(config, ManualClock(), RecordingSip(), [sim_board()], audio=audio)
    term = phone.terminals[0]
    phone.on_sip_event(ev.IncomingCall("in1", 0, "sip:1002@pbx", "", "1002"))
    term.key("volume_down")  # while it rings: the ringer's volume
    term.key("volume_down")
    term.hook(True)
    phone.on_sip_event(ev.CallStateChanged("in1", "disconnected", 200, "OK"))
    term.hook(False)
    phone.on_sip_event(ev.IncomingCall("in2", 1, "sip:1003@pbx", "", "1003"))
    phone.on_sip_event(ev.CallStateChanged("in2", "disconnected", 487, "Cancelled"))
    swedish = phone.tones.ring_cadence_ms
    assert audio.ringer == [("soft", swedish), None, ("beep", swedish), None]
    assert audio.ringer_steps == [False, False] and audio.steps == []


def test_keys_pressed_with_nothing_open_click_on_the_ringer() -> None:
    phone, _, audio = audio_phone()
    phone.terminals[0].key("1")
    phone.terminals[0].key("up")
    assert audio.key_sounds == ["1", "up"]


def test_a_changed_line_registers_again_live_and_a_label_does_not() -> None:
    phone, sip, _ = make_phone()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    line = phone.config.lines[0]
    phone.apply_config(dataclasses.replace(
        phone.config, lines=[dataclasses.replace(line, label="Desk")]))
    assert "reconfigure_line" not in sip.names()
    assert phone.status()["lines"][0]["registered"]
    lists: list[tuple[Any, Any]] = []
    phone.on_lists_changed = lambda old, new: lists.append((old, new))
    phone.apply_config(dataclasses.replace(
        phone.config, lines=[dataclasses.replace(line, user="1004", password="pw")]))
    assert sip.last("reconfigure_line") == ("reconfigure_line", 0, "1004")
    assert not phone.status()["lines"][0]["registered"]  # until the new one is answered
    assert len(lists) == 1  # BLF keys watch through line 1: the runtime starts them anew
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    assert phone.status()["lines"][0]["registered"]


def group_phone(handsets: int = 3) -> tuple[Phone, RecordingSip, ManualClock]:
    """A base whose terminals all share line 1 (the DECT base's group ringing)."""
    config = parse_config({"device": {"language": "en"}, "lines": [
        {"user": "1001", "registrar": "127.0.0.1:5060"}]})
    clock, sip = ManualClock(), RecordingSip()
    phone = Phone(config, clock, sip, [sim_board() for _ in range(handsets)],
                  rng=random.Random(1))
    phone.start()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    return phone, sip, clock


def test_a_shared_line_rings_every_terminal_and_the_first_to_answer_takes_it() -> None:
    phone, sip, _ = group_phone()
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1002@pbx", "Bertil", "1002"))
    assert [t.alerting is not None for t in phone.terminals] == [True, True, True]
    assert sip.names().count("ring") == 1  # one 180 Ringing for the caller
    assert all("Bertil" in "\n".join(t.board.display.rows) for t in phone.terminals)
    phone.terminals[1].hook(True)  # handset 2 answers
    assert sip.names().count("answer") == 1 and sip.last("answer") == ("answer", "c9")
    assert phone.terminals[1].call is not None
    assert [t.alerting for t in (phone.terminals[0], phone.terminals[2])] == [None, None]
    assert [t.rings for t in phone.terminals] == [0, 0, 0]


def test_the_caller_giving_up_stops_every_terminal_ringing() -> None:
    phone, _, _ = group_phone()
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1002@pbx", "", "1002"))
    phone.on_sip_event(ev.CallStateChanged("c9", "disconnected", 487, "Request Terminated"))
    assert all(t.alerting is None and t.rings == 0 for t in phone.terminals)


def test_a_busy_terminal_is_left_out_of_the_group() -> None:
    phone, _, _ = group_phone()
    phone.terminals[0].hook(True)
    phone.terminals[0].key("1")  # handset 1 is busy dialling
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1002@pbx", "", "1002"))
    assert phone.terminals[0].alerting is None
    assert phone.terminals[1].alerting is not None and phone.terminals[2].alerting is not None
