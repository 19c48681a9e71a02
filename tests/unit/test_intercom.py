"""A DECT base's internal calls (**N) and the internal consult and transfer, as pure logic:
the base's terminals, its handset registry and the SIP commands recorded (no radio, no SIP).
The end-to-end test (tests/e2e/test_dect.py) runs a call between two handsets for real."""

from __future__ import annotations

import random
from pathlib import Path

import serial

from board.dect.radio import DectRadio, HandsetInfo
from board.sim import sim_board
from firmware.call import CallState, EndReason
from firmware.clock import ManualClock
from firmware.config import parse_config
from firmware.dect_base import DectBase
from firmware.phone import Phone
from firmware.sip import events as ev
from firmware.terminal import Terminal
from tests.unit.test_phone_controller import RecordingSip


def base_phone(registered: tuple[int, ...] = (1, 2, 3)) -> tuple[Phone, RecordingSip,
                                                                ManualClock]:
    """Handsets 1-3 on line 1 (1001), handset 4 on line 2 (1003); `registered` at the base."""
    phone, sip, clock, _ = base_and_phone(registered)
    return phone, sip, clock


def base_and_phone(registered: tuple[int, ...] = (1, 2, 3)
                   ) -> tuple[Phone, RecordingSip, ManualClock, DectBase]:
    config = parse_config({"device": {"language": "en"}, "lines": [
        {"user": "1001", "registrar": "127.0.0.1:5060"},
        {"user": "1003", "registrar": "127.0.0.1:5060"}], "handsets": [
        {"number": 1, "line": 1, "name": "Anna"}, {"number": 2, "line": 1, "name": "Bo"},
        {"number": 3, "line": 1, "name": "Cecilia"}, {"number": 4, "line": 2}]})
    clock, sip = ManualClock(), RecordingSip()
    radio = DectRadio(serial.serial_for_url("loop://", timeout=0), clock)
    dect = DectBase(radio, config)
    for n in registered:
        dect.registered[n] = HandsetInfo(n, f"00c0ffee0{n}", "")
    phone = Phone(config, clock, sip, dect.boards, rng=random.Random(1),
                  terminal_lines=dect.terminal_lines())
    dect.attach(phone)
    phone.start()
    for line in (0, 1):
        phone.on_sip_event(ev.RegistrationChanged(line, True, 200, "OK", 300))
    return phone, sip, clock, dect


def handset(phone: Phone, n: int) -> Terminal:
    return phone.terminals[n - 1]


def dial(term: Terminal, number: str) -> None:
    term.hook(True)
    for key in number:
        term.key(key)


def press(term: Terminal, *names: str) -> None:
    """Keys by name; a run of digits, * and # is each of its keys."""
    for name in names:
        for key in (list(name) if set(name) <= set("0123456789*#") else [name]):
            term.key(key)


def screen(term: Terminal) -> str:
    return "\n".join(term.board.display.rows)


def test_an_internal_call_rings_the_handset_and_the_two_talk_without_sip() -> None:
    phone, sip, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    dial(anna, "**2")
    assert anna.call is not None and anna.call.state is CallState.RINGBACK
    assert "Bo" in screen(anna) and anna._tone == "ringback"
    assert bo.alerting is not None and bo.alerting.intercom == 1
    assert screen(bo).splitlines()[:2] == ["Internal call", "Anna"]
    assert handset(phone, 3).alerting is None  # only the handset called rings
    bo.hook(True)
    assert anna.call.state is CallState.CONNECTED and bo.call is not None
    assert bo.call.state is CallState.CONNECTED
    assert sip.last("intercom") == ("intercom", 0, 1, True)
    assert not [c for c in sip.names() if c in ("make_call", "answer", "ring")]
    assert phone.calls == {}  # no SIP call, no call slot
    assert anna.status()["intercom"] == 2 and bo.status()["intercom"] == 1
    anna.key("5")  # no far end to send keys to
    assert "send_dtmf" not in sip.names()
    bo.hook(False)
    assert sip.last("intercom") == ("intercom", 1, 0, False)
    assert anna.call.ended and anna.call.end_reason is EndReason.NORMAL
    assert "Call ended" in screen(anna)
    assert bo.call is None


def test_the_caller_giving_up_stops_the_ringing() -> None:
    phone, sip, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    dial(anna, "**2")
    anna.hook(False)
    assert bo.alerting is None and bo.rings == 0
    assert "intercom" not in sip.names()  # they never talked


def test_unanswered_the_internal_call_ends_as_no_answer() -> None:
    phone, _, clock = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    dial(anna, "**2")
    clock.advance(phone.config.device.no_answer_timeout + 1)
    assert anna.call is not None and anna.call.end_reason is EndReason.NO_ANSWER
    assert bo.alerting is None


def test_a_refused_internal_call_is_busy_for_the_caller() -> None:
    phone, _, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    dial(anna, "**2")
    bo.key("cancel")
    assert anna.call is not None and anna.call.end_reason is EndReason.BUSY
    assert anna._tone == "busy" and bo.alerting is None


def test_busy_unknown_and_own_numbers() -> None:
    phone, sip, _ = base_phone(registered=(1, 2, 3))
    anna, bo = handset(phone, 1), handset(phone, 2)
    bo.hook(True)  # off hook: busy
    dial(anna, "**2")
    assert anna.call is not None and anna.call.end_reason is EndReason.BUSY
    anna.hook(False)
    dial(anna, "**5")  # not registered at this base
    assert anna.call.end_reason is EndReason.UNKNOWN_NUMBER
    anna.hook(False)
    dial(anna, "**1")  # itself
    assert anna.call.end_reason is EndReason.BUSY
    assert "make_call" not in sip.names()


def test_a_handset_without_a_line_can_still_call_internally() -> None:
    phone, _, _ = base_phone(registered=(1, 5))
    lineless = handset(phone, 5)  # registered, but no [[handsets]] entry: no line
    dial(lineless, "**1")
    assert handset(phone, 1).alerting is not None


def test_an_external_call_during_an_internal_one_waits_and_taking_it_ends_the_internal() -> None:
    phone, sip, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    dial(anna, "**2")
    bo.hook(True)
    handset(phone, 3).hook(True)  # Cecilia is busy too
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1002@pbx", "Bertil", "1002"))
    assert anna.alerting is not None  # call waiting, heard in the internal call
    anna.key("ok")  # take the waiting call: the internal call gives way
    assert sip.last("answer") == ("answer", "c9")
    assert sip.last("intercom") == ("intercom", 0, 1, False)
    assert bo.call is not None and bo.call.ended
    assert "hold" not in sip.names()


def external_call_at(phone: Phone, sip: RecordingSip, n: int) -> str:
    phone.on_sip_event(ev.IncomingCall("c9", 0, "sip:1002@pbx", "Bertil", "1002"))
    handset(phone, n).hook(True)
    phone.on_sip_event(ev.CallStateChanged("c9", "confirmed", 200, "OK"))
    return "c9"


def test_consult_then_transfer_hands_the_call_to_the_other_handset() -> None:
    phone, sip, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    cid = external_call_at(phone, sip, 1)
    press(anna, "transfer", "**2", "ok")  # call Bo first; Bertil waits on hold
    assert sip.last("hold") == ("hold", cid)
    assert bo.alerting is not None and bo.alerting.intercom == 1
    bo.hook(True)
    assert sip.last("intercom") == ("intercom", 0, 1, True)
    anna.key("transfer")  # Bertil to Bo
    assert sip.last("intercom") == ("intercom", 0, 1, False)
    assert sip.last("move_call") == ("move_call", cid, 1)
    assert sip.last("resume") == ("resume", cid)
    assert bo.call is not None and bo.call.id == cid and not bo.call.held
    assert anna.call is not None and anna.call.end_reason is EndReason.TRANSFERRED
    assert anna.background == [] and "transfer" not in sip.names()  # no REFER: local
    assert "Bertil" in screen(bo)
    phone.on_sip_event(ev.CallStateChanged(cid, "disconnected", 200, "OK"))  # Bertil leaves
    assert bo.call.ended  # Bo's now, events and all


def test_blind_internal_transfer_rings_there_and_comes_back_unanswered() -> None:
    phone, sip, clock = base_phone()
    anna, cecilia = handset(phone, 1), handset(phone, 3)
    cid = external_call_at(phone, sip, 1)
    press(anna, "transfer", "**3", "transfer")  # blind: Bertil rings at Cecilia
    assert cecilia.alerting is not None and cecilia.alerting.id == cid
    assert "Bertil" in screen(cecilia)
    assert anna.call is not None and anna.call.end_reason is EndReason.TRANSFERRED
    anna.hook(False)
    clock.advance(phone.config.calls.transfer_timeout + 1)  # Cecilia does not answer
    assert cecilia.alerting is None
    assert anna.alerting is not None and anna.alerting.id == cid  # recall
    anna.hook(True)
    assert sip.last("move_call") == ("move_call", cid, 0)
    assert sip.last("resume") == ("resume", cid)
    assert anna.call is not None and anna.call.id == cid


def test_a_handed_call_is_taken_by_lifting_and_a_refused_one_goes_back() -> None:
    phone, sip, _ = base_phone()
    anna, bo, cecilia = handset(phone, 1), handset(phone, 2), handset(phone, 3)
    cid = external_call_at(phone, sip, 1)
    press(anna, "transfer", "**2", "transfer")
    bo.key("cancel")  # Bo refuses: back to Anna, nobody hung up on Bertil
    assert bo.alerting is None and anna.alerting is not None
    assert ("hangup", cid, 486) not in sip.sent
    anna.hook(False)
    anna.hook(True)
    assert anna.call is not None and anna.call.id == cid
    assert cecilia.alerting is None


def test_a_transfer_to_a_busy_or_unknown_handset_keeps_the_call() -> None:
    phone, sip, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    bo.hook(True)
    cid = external_call_at(phone, sip, 1)
    press(anna, "transfer", "**2", "transfer")
    assert anna.call is not None and anna.call.id == cid and not anna.call.held
    assert "Busy" in screen(anna)
    assert sip.last("resume") == ("resume", cid)


def test_transfer_to_an_internal_number_from_the_api_is_local() -> None:
    phone, sip, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    cid = external_call_at(phone, sip, 1)
    assert anna.transfer_to("**2")
    assert bo.alerting is not None and bo.alerting.id == cid
    assert "transfer" not in sip.names()


class TerminalsSip(RecordingSip):
    """Also records which terminal's audio a recording or a desk menu uses."""

    def start_recording(self, path: str, terminal: int = 0) -> None:
        self.sent.append(("start_recording", terminal))

    def stop_recording(self, terminal: int = 0) -> None:
        self.sent.append(("stop_recording", terminal))

    def ivr_local(self, start: bool, terminal: int = 0) -> None:
        self.sent.append(("ivr_local", start, terminal))


def test_recording_and_the_voicemail_menu_use_the_audio_of_the_handset_they_run_at(
        tmp_path: Path) -> None:
    config = parse_config({"device": {"language": "en"}, "voicemail": {"enabled": True},
                           "lines": [{"user": "1001", "registrar": "127.0.0.1:5060"}]})
    sip = TerminalsSip()
    phone = Phone(config, ManualClock(), sip, [sim_board() for _ in range(3)],
                  rng=random.Random(1), data_dir=tmp_path)
    phone.start()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    bo = phone.terminals[1]
    external_call_at(phone, sip, 2)
    bo.key("record")
    bo.key("record")
    assert ("start_recording", 1) in sip.sent and ("stop_recording", 1) in sip.sent
    bo.hook(False)
    dial(bo, "555")  # the owner's voicemail menu, in handset 2's earpiece
    assert ("ivr_local", True, 1) in sip.sent
    bo.hook(False)
    assert ("ivr_local", False, 1) in sip.sent


def test_a_recalled_call_nobody_takes_ends_with_480_instead_of_waiting_for_ever() -> None:
    phone, sip, clock = base_phone()
    anna, cecilia = handset(phone, 1), handset(phone, 3)
    cid = external_call_at(phone, sip, 1)
    press(anna, "transfer", "**3", "transfer")
    anna.hook(False)
    timeout = phone.config.calls.transfer_timeout + 1
    clock.advance(timeout)  # not taken at Cecilia: back to Anna
    assert anna.alerting is not None and cecilia.alerting is None
    clock.advance(timeout)  # not taken at Anna either
    assert ("hangup", cid, 480) in sip.sent
    assert anna.alerting is None and anna.call is None


def test_a_call_comes_back_to_a_handset_already_ringing_for_another_it_ends_instead() -> None:
    phone, sip, clock = base_phone()
    anna, cecilia = handset(phone, 1), handset(phone, 3)
    cid = external_call_at(phone, sip, 1)
    press(anna, "transfer", "**3", "transfer")
    anna.hook(False)
    clock.advance(5)  # Anna's end screen goes
    phone.on_sip_event(ev.IncomingCall("c10", 0, "sip:1004@pbx", "Doris", "1004"))
    assert anna.alerting is not None and anna.alerting.id == "c10"
    clock.advance(phone.config.calls.transfer_timeout + 1)
    assert ("hangup", cid, 480) in sip.sent
    assert anna.alerting is not None and anna.alerting.id == "c10"  # Doris still rings
    assert cecilia.alerting is None or cecilia.alerting.id == "c10"


def test_a_lost_handset_ends_its_internal_call_and_sends_a_handed_call_back() -> None:
    phone, sip, _ = base_phone()
    anna, bo, cecilia = handset(phone, 1), handset(phone, 2), handset(phone, 3)
    dial(anna, "**2")
    bo.key("speaker")  # Bo answers hands-free
    assert anna.call is not None and anna.call.state is CallState.CONNECTED
    bo.lost()  # de-registered, or the radio went away
    assert anna.call.ended and bo.call is None
    assert sip.last("intercom") == ("intercom", 1, 0, False)
    anna.hook(False)
    cid = external_call_at(phone, sip, 1)
    press(anna, "transfer", "**3", "transfer")
    cecilia.lost()
    assert anna.alerting is not None and anna.alerting.id == cid  # back where it came from


def test_hold_transfer_and_mute_in_an_internal_call() -> None:
    phone, sip, _ = base_phone()
    anna, bo = handset(phone, 1), handset(phone, 2)
    dial(anna, "**2")
    bo.hook(True)
    anna.key("hold")  # nothing to hold it with
    assert anna.call is not None and anna.call.state is CallState.CONNECTED
    assert "hold" not in sip.names()
    assert not anna.transfer_to("**3")
    anna.key("mute")
    assert sip.last("mute") == ("mute", True)


def test_voice_channels_are_given_least_recently_used_first() -> None:
    phone, _, _, dect = base_and_phone()
    anna, bo, cecilia = handset(phone, 1), handset(phone, 2), handset(phone, 3)
    dial(anna, "**2")
    bo.hook(True)
    assert (dect._channels[1], dect._channels[2]) == (0, 1)
    bo.hook(False)
    anna.hook(False)  # 0 and 1 let go: the next calls get 2 and 3, whose devices are closed
    dial(cecilia, "**1")
    anna.hook(True)
    assert (dect._channels[3], dect._channels[1]) == (2, 3)
