"""Several calls at once, as pure logic: hold and swap, call waiting, transfer, conference,
do not disturb, forwarding, mute, recording, caller-ID roles and feature keys. The end-to-end
tests (tests/e2e/test_call_features.py) run the same flows against Kamailio and baresip."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from board.parts import LedPattern
from board.sim import sim_board
from firmware.clock import ManualClock
from firmware.config import parse_config
from firmware.phone import Phone
from firmware.sip import events as ev
from firmware.texts import text
from tests.unit.test_phone_controller import RecordingSip


def make_phone(tables: dict[str, Any] | None = None, data_dir: Path | None = None
               ) -> tuple[Phone, RecordingSip, ManualClock]:
    config = parse_config({"device": {"language": "en"},
                           "lines": [{"user": "1001", "registrar": "127.0.0.1:5060",
                                      "display_name": "Anna"}], **(tables or {})})
    clock, sip = ManualClock(), RecordingSip()
    phone = Phone(config, clock, sip, [sim_board()], rng=random.Random(1), data_dir=data_dir)
    phone.start()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    return phone, sip, clock


def screen(phone: Phone) -> str:
    return "\n".join(phone.terminals[0].board.display.rows)


def keys(phone: Phone, *names: str) -> None:
    for name in names:
        for key in (list(name) if set(name) <= set("0123456789*#") else [name]):
            phone.terminals[0].key(key)


def connected_call(phone: Phone, sip: RecordingSip, number: str = "1002") -> str:
    """Lift the handset, dial `number` and have the far end answer; returns the call id."""
    term = phone.terminals[0]
    if not term.offhook:
        term.hook(True)
    keys(phone, number)
    cid = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(cid, "confirmed", 200, "OK"))
    return cid


def incoming(phone: Phone, cid: str, number: str) -> None:
    phone.on_sip_event(ev.IncomingCall(cid, 0, f"sip:{number}@pbx", "", number))


def test_hold_key_holds_and_resumes() -> None:
    phone, sip, _ = make_phone()
    cid = connected_call(phone, sip)
    keys(phone, "hold")
    assert sip.sent[-1] == ("hold", cid) or ("hold", cid) in sip.sent
    assert "On hold" in screen(phone)
    assert phone.terminals[0].board.leds["line1"].state.pattern is LedPattern.SLOW_BLINK
    keys(phone, "hold")
    assert ("resume", cid) in sip.sent and "On hold" not in screen(phone)


def test_a_waiting_call_beeps_is_answered_on_top_and_the_two_swap() -> None:
    phone, sip, _ = make_phone()
    first = connected_call(phone, sip)
    incoming(phone, "in2", "1003")
    term = phone.terminals[0]
    assert sip.last("ring") == ("ring", "in2")
    assert term.status()["tone"] == "call_waiting"
    assert screen(phone).startswith("Call waiting\n1003")
    keys(phone, "ok")
    assert sip.sent.index(("hold", first)) < sip.sent.index(("answer", "in2"))
    phone.on_sip_event(ev.CallStateChanged("in2", "confirmed", 200, "OK"))
    assert term.status()["held"] == [first] and "Held:1" in screen(phone)
    keys(phone, "hold")  # swap
    assert sip.sent.index(("hold", "in2")) < sip.sent.index(("resume", first))
    assert term.status()["call"] == first and term.status()["held"] == ["in2"]


def test_hanging_up_with_a_call_waiting_rings_it() -> None:
    phone, sip, _ = make_phone()
    connected_call(phone, sip)
    incoming(phone, "in2", "1003")
    phone.terminals[0].hook(False)
    status = phone.terminals[0].status()
    assert status["ringing"] and status["rings"] == 1 and status["tone"] is None


def test_without_call_waiting_a_second_call_is_busy_or_forwarded() -> None:
    phone, sip, _ = make_phone({"calls": {"call_waiting": False, "forward_busy": "1009"}})
    connected_call(phone, sip)
    incoming(phone, "in2", "1003")
    assert sip.last("redirect") == ("redirect", "in2", "1009")


def test_a_line_key_in_a_call_holds_it_and_opens_a_new_call_on_that_line() -> None:
    phone, sip, _ = make_phone({"lines": [
        {"user": "1001", "registrar": "127.0.0.1:5060"},
        {"user": "2001", "registrar": "127.0.0.1:5060"}]})
    phone.on_sip_event(ev.RegistrationChanged(1, True, 200, "OK", 300))
    term = phone.terminals[0]
    first = connected_call(phone, sip)
    keys(phone, "line2")
    assert sip.last("hold") == ("hold", first) and phone.calls[first].held
    assert term.status()["held"] == [first] and term.status()["tone"] == "dial"
    assert term.status()["line"] == 1 and screen(phone).startswith("Dial:")
    keys(phone, "1003")
    assert sip.last("make_call")[2:] == (1, "1003")  # on the second line
    assert term.status()["held"] == [first] and "resume" not in sip.names()


def test_digits_while_the_call_is_held_start_a_new_call_beside_it() -> None:
    phone, sip, _ = make_phone()
    term = phone.terminals[0]
    first = connected_call(phone, sip)
    keys(phone, "hold")
    sent = len(sip.sent)
    keys(phone, "1003")
    assert not [c for c in sip.sent[sent:] if c[0] == "send_dtmf"]  # not DTMF to the held call
    second = sip.last("make_call")
    assert second[1] != first and second[2:] == (0, "1003")
    assert term.status()["held"] == [first] and phone.calls[first].held
    assert "resume" not in sip.names()


def test_blind_transfer_by_number() -> None:
    phone, sip, _ = make_phone()
    cid = connected_call(phone, sip)
    keys(phone, "transfer")
    assert ("hold", cid) in sip.sent and screen(phone).startswith("Transfer to:")
    keys(phone, "1003", "transfer")  # the plan waits in transfer: blind, no consult call
    assert sip.last("transfer") == ("transfer", cid, "1003")
    assert [c for c in sip.sent if c[0] == "make_call"] == [("make_call", cid, 0, "1002")]
    assert screen(phone).startswith("Transferring...")
    phone.on_sip_event(ev.TransferStatus(cid, 100, "Trying", False))
    phone.on_sip_event(ev.TransferStatus(cid, 200, "OK", True))
    assert sip.last("hangup") == ("hangup", cid, 0)
    assert screen(phone).startswith("Transferred")


def test_a_failed_transfer_gives_the_call_back_on_hold() -> None:
    phone, sip, clock = make_phone({"calls": {"transfer_timeout": 10}})
    cid = connected_call(phone, sip)
    keys(phone, "transfer", "1009", "transfer")
    phone.on_sip_event(ev.TransferStatus(cid, 404, "Not Found", True))
    term = phone.terminals[0]
    assert term.status()["call"] == cid and "Transfer failed" in screen(phone)
    assert phone.calls[cid].held and "hangup" not in sip.names()
    keys(phone, "hold")
    assert sip.last("resume") == ("resume", cid)
    # and when the far end never says: the timeout
    keys(phone, "transfer", "1009", "transfer")
    clock.advance(11)
    assert term.transfer is None and "Transfer failed" in screen(phone)


def test_attended_transfer_joins_the_held_call_with_the_consult_call() -> None:
    phone, sip, _ = make_phone()
    first = connected_call(phone, sip)
    keys(phone, "transfer", "1003", "ok")  # ok: call the target first
    consult = sip.last("make_call")[1]
    assert consult != first
    phone.on_sip_event(ev.CallStateChanged(consult, "confirmed", 200, "OK"))
    keys(phone, "transfer")
    assert sip.last("transfer_replaces") == ("transfer_replaces", first, consult)
    phone.on_sip_event(ev.TransferStatus(first, 200, "OK", True))
    assert ("hangup", first, 0) in sip.sent and ("hangup", consult, 0) in sip.sent


def test_an_attended_transfer_to_nobody_gives_the_call_back_on_hold() -> None:
    phone, sip, _ = make_phone()
    first = connected_call(phone, sip)
    keys(phone, "transfer", "1009", "ok")  # call the target first: nobody is there
    consult = sip.last("make_call")[1]
    assert consult != first and phone.calls[first].held
    phone.on_sip_event(ev.CallStateChanged(consult, "disconnected", 404, "Not Found"))
    term = phone.terminals[0]
    assert term.status()["call"] == first and term.status()["held"] == []
    assert term.mode.value == "none" and term.transfer is None
    assert phone.calls[first].held and "On hold" in screen(phone)
    assert text("unknown_number", "en") in screen(phone)
    assert "transfer" not in sip.names() and "transfer_replaces" not in sip.names()
    assert ("hangup", first, 0) not in sip.sent
    keys(phone, "hold")
    assert sip.last("resume") == ("resume", first) and "On hold" not in screen(phone)


def test_transfer_with_three_calls_asks_which_to_join() -> None:
    phone, sip, _ = make_phone()
    a = connected_call(phone, sip)
    incoming(phone, "in2", "1003")
    keys(phone, "ok")
    phone.on_sip_event(ev.CallStateChanged("in2", "confirmed", 200, "OK"))
    incoming(phone, "in3", "1004")
    keys(phone, "ok")
    phone.on_sip_event(ev.CallStateChanged("in3", "confirmed", 200, "OK"))
    keys(phone, "transfer")
    assert screen(phone).startswith("Join with:\n1 1003\n2 1002")
    keys(phone, "2")
    assert sip.last("transfer_replaces") == ("transfer_replaces", a, "in3")


def test_conference_of_three_then_drop_one_party() -> None:
    phone, sip, _ = make_phone()
    first = connected_call(phone, sip)
    keys(phone, "conference")
    assert screen(phone).startswith("Add:")
    keys(phone, "1003")
    second = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(second, "confirmed", 200, "OK"))
    keys(phone, "conference")
    assert sip.last("conference") == ("conference", (second, first))
    assert ("resume", first) in sip.sent
    assert screen(phone).startswith("Conference")
    keys(phone, "cancel")
    assert screen(phone).startswith("End conference?\nOK=all 1-2=one")
    keys(phone, "2")
    assert sip.last("hangup") == ("hangup", first, 0)
    assert sip.last("conference") == ("conference", ())
    assert phone.terminals[0].status()["call"] == second


def test_hanging_up_a_conference_asks_first_and_ok_ends_it_for_all() -> None:
    phone, sip, _ = make_phone()
    first = connected_call(phone, sip)
    keys(phone, "conference", "1003")
    second = sip.last("make_call")[1]
    phone.on_sip_event(ev.CallStateChanged(second, "confirmed", 200, "OK"))
    keys(phone, "conference")
    phone.terminals[0].hook(False)  # handset down: the conference goes on hands-free, asking
    assert phone.terminals[0].status()["speaker"] and "hangup" not in sip.names()
    keys(phone, "ok")
    assert {("hangup", first, 0), ("hangup", second, 0)} <= set(sip.sent)


def test_do_not_disturb_rejects_but_lets_vips_through(tmp_path: Path) -> None:
    phone, sip, _ = make_phone({"calls": {"vip_numbers": ["1005"]}}, tmp_path)
    keys(phone, "dnd")
    assert "Do not disturb" in screen(phone)
    incoming(phone, "in1", "1003")
    assert sip.last("hangup") == ("hangup", "in1", 486)
    incoming(phone, "in2", "1005")
    assert sip.last("ring") == ("ring", "in2")
    again, _, _ = make_phone(data_dir=tmp_path)  # kept across a restart
    assert again.terminals[0].dnd


def test_do_not_disturb_forwards_when_configured_to() -> None:
    phone, sip, _ = make_phone({"calls": {"dnd_action": "forward", "dnd_forward_to": "1009",
                                          "vip_numbers": ["1005"]}})
    keys(phone, "dnd")
    incoming(phone, "in1", "1003")
    assert sip.last("redirect") == ("redirect", "in1", "1009")
    assert "ring" not in sip.names() and "hangup" not in sip.names()
    assert phone.calls["in1"].ended and not phone.terminals[0].status()["ringing"]
    incoming(phone, "in2", "1005")  # a VIP still rings
    assert sip.last("ring") == ("ring", "in2")
    assert [c for c in sip.sent if c[0] == "redirect"] == [("redirect", "in1", "1009")]


def test_forwarding_always_and_after_no_answer() -> None:
    phone, sip, _ = make_phone({"calls": {"forward_always": "0701234567"}})
    incoming(phone, "in1", "1003")
    assert sip.last("redirect") == ("redirect", "in1", "0701234567")
    phone, sip, clock = make_phone({"calls": {"forward_no_answer": "1009",
                                              "forward_no_answer_after": 15}})
    incoming(phone, "in1", "1003")
    clock.advance(14)
    assert "redirect" not in sip.names()
    clock.advance(2)
    assert sip.last("redirect") == ("redirect", "in1", "1009")
    assert not phone.terminals[0].status()["ringing"]


def test_mute_while_in_calls_with_its_led() -> None:
    phone, sip, _ = make_phone()
    connected_call(phone, sip)
    keys(phone, "mute")
    assert sip.last("mute") == ("mute", True) and "Muted" in screen(phone)
    assert phone.terminals[0].board.leds["mute"].state.pattern is LedPattern.ON
    phone.terminals[0].hook(False)
    assert sip.last("mute") == ("mute", False)


def test_recording_to_the_data_directory_stops_at_hang_up(tmp_path: Path) -> None:
    phone, sip, _ = make_phone(data_dir=tmp_path)
    connected_call(phone, sip)
    keys(phone, "record")
    path = Path(sip.last("start_recording")[1])
    assert path.parent == tmp_path / "recordings" and "REC" in screen(phone)
    phone.terminals[0].hook(False)
    assert sip.sent[-1] == ("stop_recording",) or ("stop_recording",) in sip.sent


def test_the_record_key_again_stops_the_recording(tmp_path: Path) -> None:
    phone, sip, _ = make_phone(data_dir=tmp_path)
    cid = connected_call(phone, sip)
    keys(phone, "record")
    assert "start_recording" in sip.names() and "REC" in screen(phone).split("\n")[2]
    assert "stop_recording" not in sip.names()
    keys(phone, "record")
    assert sip.names().count("stop_recording") == 1
    assert "REC" not in screen(phone) and not phone.terminals[0].status()["recording"]
    assert phone.terminals[0].status()["call"] == cid  # the call goes on
    phone.terminals[0].hook(False)
    assert sip.names().count("stop_recording") == 1  # nothing left to stop at hang-up


ROLES = {"roles": [{"name": "Direct"},
                   {"name": "Switchboard", "kind": "switchboard", "number": "0812345600",
                    "display_name": "Company"},
                   {"name": "Anonymous", "kind": "anonymous"},
                   {"name": "Mobile", "kind": "mobile", "prefix": "*31#"}]}


def test_caller_id_roles_default_and_once(tmp_path: Path) -> None:
    phone, sip, _ = make_phone(ROLES, tmp_path)
    keys(phone, "right")  # idle: the default role steps to Switchboard
    assert "As: Switchboard" in screen(phone)
    phone.terminals[0].dial("1002")
    assert sip.identities[-1] == ev.OutgoingIdentity("Company", "0812345600", False)
    phone.terminals[0].hook(False)
    keys(phone, "cancel")
    phone.terminals[0].hook(True)
    keys(phone, "down")  # this call only: Anonymous
    assert "As: Anonymous" in screen(phone)
    keys(phone, "1003")
    assert sip.identities[-1] == ev.OutgoingIdentity("Anna", "", True)
    phone.terminals[0].hook(False)
    phone.terminals[0].dial("1004")  # back to the default
    assert sip.identities[-1] == ev.OutgoingIdentity("Company", "0812345600", False)
    again, _, _ = make_phone(ROLES, tmp_path)
    assert again.terminals[0].current_role().name == "Switchboard"


def test_a_role_with_a_prefix_dials_the_pbx_scheme() -> None:
    phone, sip, _ = make_phone({**ROLES, "calls": {"default_role": "Mobile"}})
    phone.terminals[0].dial("1002")
    assert sip.last("make_call")[3] == "*31#1002" and sip.identities[-1] is None


def test_feature_keys_park_and_directed_pickup() -> None:
    phone, sip, _ = make_phone({"features": {"park": "*85", "directed_pickup": "**",
                                             "group_login": "*74"},
                                "keys": {"soft1": "park", "soft2": "directed_pickup",
                                         "soft3": "group_login"}})
    cid = connected_call(phone, sip)
    keys(phone, "soft1")
    assert sip.last("transfer") == ("transfer", cid, "*85")
    phone.on_sip_event(ev.TransferStatus(cid, 200, "OK", True))
    phone.terminals[0].hook(False)
    keys(phone, "soft2", "1002", "#")
    assert sip.last("make_call")[3] == "**1002"
    phone.on_sip_event(ev.CallStateChanged(sip.last("make_call")[1], "disconnected", 404, "NF"))
    phone.clock.advance(5)
    keys(phone, "soft3")
    assert sip.last("make_call")[3] == "*74"


def test_the_far_end_transferring_us_replaces_the_call() -> None:
    phone, sip, _ = make_phone()
    cid = connected_call(phone, sip)
    phone.on_sip_event(ev.CallReplaced(cid, "c9", True, "sip:1004@pbx", "", "1004"))
    phone.on_sip_event(ev.CallStateChanged("c9", "confirmed", 200, "OK"))
    phone.on_sip_event(ev.CallStateChanged(cid, "disconnected", 200, "OK"))
    assert phone.terminals[0].status()["call"] == "c9"
    assert screen(phone).startswith("1004")


def test_message_waiting_blinks_the_led_and_shows_the_count() -> None:
    phone, _, _ = make_phone()
    phone.on_sip_event(ev.MessageWaiting(0, True, 3, 1))
    led = phone.terminals[0].board.leds["message"].state
    assert led.pattern is LedPattern.SLOW_BLINK and "3 new messages" in screen(phone)
    assert phone.status()["lines"][0]["messages"] == {"new": 3, "old": 1}
    phone.on_sip_event(ev.MessageWaiting(0, False, 0, 4))
    assert phone.terminals[0].board.leds["message"].state.pattern is LedPattern.OFF
    assert "new messages" not in screen(phone)


def test_missed_calls_are_counted_until_the_history_is_opened(tmp_path: Path) -> None:
    phone, sip, clock = make_phone(data_dir=tmp_path)
    incoming(phone, "in1", "1003")
    clock.advance(7)
    phone.on_sip_event(ev.CallStateChanged("in1", "disconnected", 487, "Cancelled"))
    assert "1 missed" in screen(phone)
    assert phone.terminals[0].board.leds["message"].state.pattern is LedPattern.SLOW_BLINK
    connected_call(phone, sip, "1004")
    phone.terminals[0].hook(False)
    phone.on_sip_event(ev.CallStateChanged(sip.last("make_call")[1], "disconnected", 200, "OK"))
    keys(phone, "history")
    assert screen(phone).startswith("Call history\n>>1004")
    assert "!1003" in screen(phone)
    assert phone.missed_calls() == 0
    keys(phone, "right")  # the details of the newest: the call to 1004
    assert screen(phone).startswith("1004\n>1004\n Dialled line 1\n")
    keys(phone, "cancel", "left")  # missed only
    assert screen(phone).startswith("Missed calls\n>!1003")
    keys(phone, "ok")  # call back
    assert sip.last("make_call")[3] == "1003"
    again, _, _ = make_phone(data_dir=tmp_path)  # kept across a restart
    assert [e.number for e in again.history.list()] == ["1004", "1003"]


def test_history_entries_are_deleted_one_or_all(tmp_path: Path) -> None:
    phone, _, _ = make_phone(data_dir=tmp_path)
    for n, number in enumerate(("1002", "1003", "1004")):
        incoming(phone, f"in{n}", number)
        phone.on_sip_event(ev.CallStateChanged(f"in{n}", "disconnected", 487, "Cancelled"))
    keys(phone, "history", "#")
    assert [e.number for e in phone.history.list()] == ["1003", "1002"]
    keys(phone, "*", "ok")
    assert phone.history.list() == [] and "No calls" in screen(phone)


def test_a_call_ringing_forever_is_answered_unavailable() -> None:
    phone, sip, clock = make_phone({"calls": {"ring_timeout": 30}})
    connected_call(phone, sip)
    incoming(phone, "in2", "1003")  # waiting; its caller's side never gives up
    clock.advance(31)
    assert sip.last("hangup") == ("hangup", "in2", 480)
    assert not phone.terminals[0].status()["ringing"]


DIRECTORY_CSV = """name;work;mobile;company;department
Anna Berg;1002;0701234567;Exempel AB;Ekonomi
Bertil Ek;1003;;Exempel AB;IT
"""


def directory_phone(tmp_path: Path, **tables: Any) -> tuple[Phone, RecordingSip, ManualClock]:
    (tmp_path / "company.csv").write_text(DIRECTORY_CSV)
    return make_phone({"directory": {"file": "company.csv"}, **tables}, tmp_path)


def test_callers_are_named_from_the_directory_and_the_history_too(tmp_path: Path) -> None:
    phone, _, _ = directory_phone(tmp_path)
    incoming(phone, "in1", "1003")
    assert screen(phone).startswith("Incoming call\nBertil Ek")
    phone.on_sip_event(ev.CallStateChanged("in1", "disconnected", 487, "Cancelled"))
    keys(phone, "history")
    assert "!Bertil Ek" in screen(phone)


def test_directory_search_card_and_call(tmp_path: Path) -> None:
    phone, sip, _ = directory_phone(tmp_path)
    keys(phone, "directory")
    assert screen(phone).startswith("Favourites")
    keys(phone, "2662")  # A-N-N-A
    assert screen(phone).startswith("Search: 2662\n>Anna Berg")
    keys(phone, "ok")
    assert screen(phone).startswith("Anna Berg\n>Work 1002\n Mob 0701234567")
    keys(phone, "down", "ok")
    assert sip.last("make_call")[3] == "0701234567"


def test_transfer_to_a_directory_entry(tmp_path: Path) -> None:
    phone, sip, _ = directory_phone(tmp_path)
    cid = connected_call(phone, sip, "1005")
    keys(phone, "transfer", "directory", "2378", "ok", "ok", "transfer")  # B-E-R-T: Bertil
    assert sip.last("transfer") == ("transfer", cid, "1003")


def test_a_starred_contact_is_a_favourite_and_vips_pass_dnd(tmp_path: Path) -> None:
    phone, sip, _ = directory_phone(tmp_path)
    keys(phone, "directory", "2662", "ok", "*", "cancel")
    keys(phone, "cancel", "cancel", "cancel", "cancel", "cancel")
    keys(phone, "directory")
    assert screen(phone).startswith("Favourites\n>*Anna Berg")
    assert phone.personal is not None
    contact = phone.directory.lookup_number("1002")
    assert contact is not None
    phone.personal.set_vip(contact.id, True)
    keys(phone, "cancel", "dnd")
    incoming(phone, "in1", "1002")
    assert sip.last("ring") == ("ring", "in1")


def test_referral_from_the_menu_shows_publishes_stops_ringing_and_ends(tmp_path: Path) -> None:
    phone, sip, clock = make_phone({"keys": {"soft4": "referral"}}, tmp_path)
    keys(phone, "soft4")
    assert screen(phone).startswith("Referral: Available\n>Available\n Lunch")
    keys(phone, "down", "ok")  # Lunch (60 min)
    assert "Lunch until" in screen(phone)
    published = [c for c in sip.sent if c[0] == "publish_presence"][-1]
    assert published[2] is False and published[3].startswith("Lunch until")
    assert published[4] == "away"
    incoming(phone, "in1", "1003")  # out to lunch: the voicemail answers with the referral
    assert sip.last("ivr_answer") == ("ivr_answer", "in1") and "ring" not in sip.names()
    again, _, _ = make_phone(data_dir=tmp_path)  # kept across a restart
    assert "Lunch until" in screen(again)
    clock.advance(61 * 60)  # the hour is over: available again, and published
    assert "Lunch" not in screen(phone)
    assert [c for c in sip.sent if c[0] == "publish_presence"][-1][2] is True
    incoming(phone, "in2", "1003")
    assert sip.last("ring") == ("ring", "in2")


def test_a_colleagues_referral_shows_on_their_card(tmp_path: Path) -> None:
    phone, _, _ = directory_phone(tmp_path)
    phone.on_sip_event(ev.PresenceChanged("1002", False, "Möte till 15:00"))
    keys(phone, "directory", "2662", "ok")
    assert screen(phone) == "Anna Berg\n>Work 1002\n Mob 0701234567\n Möte till 15:00"


def test_response_group_key_logs_in_and_out_with_its_led(tmp_path: Path) -> None:
    phone, sip, clock = make_phone({"groups": [{"name": "Support", "login_code": "*741",
                                                "logout_code": "*740", "key": "soft2"}]},
                                   tmp_path)
    keys(phone, "soft2")
    assert sip.last("make_call")[3] == "*741"
    assert phone.terminals[0].group_logged_in(0)
    phone.on_sip_event(ev.CallStateChanged(sip.last("make_call")[1], "disconnected", 200, "OK"))
    clock.advance(5)
    keys(phone, "soft2")
    assert sip.last("make_call")[3] == "*740"
    assert not phone.terminals[0].group_logged_in(0)


def test_blf_key_shows_the_colleagues_line_and_calls_or_picks_up() -> None:
    phone, sip, clock = make_phone({"blf": [{"key": "line2", "user": "1003"}],
                                    "features": {"directed_pickup": "**"}})
    led = phone.terminals[0].board.leds
    assert led["line2"].state.pattern is LedPattern.OFF  # nothing known yet
    phone.blf_changed("1003", "idle")
    assert (led["line2"].state.pattern, led["line2"].state.colour) == (LedPattern.ON, "green")
    phone.blf_changed("1003", "ringing", "1002")
    assert led["line2"].state.pattern is LedPattern.FAST_BLINK
    keys(phone, "line2")  # ringing there: pick it up
    assert sip.last("make_call")[3] == "**1003"
    phone.on_sip_event(ev.CallStateChanged(sip.last("make_call")[1], "disconnected", 404, "NF"))
    clock.advance(5)
    phone.blf_changed("1003", "busy")
    assert (led["line2"].state.pattern, led["line2"].state.colour) == (LedPattern.ON, "red")
    keys(phone, "line2")  # busy: call them (call waiting at their end)
    assert sip.last("make_call")[3] == "1003"


def test_directory_search_by_letters_with_multi_tap(tmp_path: Path) -> None:
    phone, _, clock = directory_phone(tmp_path)
    keys(phone, "directory", "right")
    assert screen(phone).startswith("Favourites (abc)")
    keys(phone, "22")  # b
    clock.advance(1.5)
    keys(phone, "33")  # e
    assert screen(phone).startswith("Search (abc): Be\n>Anna Berg\n Bertil Ek")  # Berg, Bertil
    keys(phone, "cancel")  # back to "B"
    assert screen(phone).startswith("Search (abc): B\n")


def test_the_menu_changes_the_language_at_once_and_keeps_it(tmp_path: Path) -> None:
    from firmware.config.overrides import OVERRIDES_FILE, OverrideStore

    base = parse_config({"device": {"language": "en"},
                         "lines": [{"user": "1001", "registrar": "127.0.0.1:5060"}]})
    store = OverrideStore(tmp_path / OVERRIDES_FILE, base=base)
    phone = Phone(store.apply(), ManualClock(), RecordingSip(), [sim_board()],
                  data_dir=tmp_path, overrides=store)
    phone.start()
    keys(phone, "menu")
    assert screen(phone).startswith("Settings\n>Referral\n Call history\n Contacts")
    rows = phone.terminals[0].views[-1].items
    language = next(i for i, item in enumerate(rows) if item.label.startswith("Language"))
    for _ in range(language):
        keys(phone, "down")
    keys(phone, "ok")
    assert "English" in screen(phone) and "Svenska" in screen(phone)
    keys(phone, "up", "up", "ok")  # Svenska
    keys(phone, "menu")
    assert phone.config.device.language == "sv"
    assert OverrideStore(tmp_path / OVERRIDES_FILE, base=base).apply().device.language == "sv"


def test_blf_pickup_without_a_pbx_code_calls_the_caller_with_replaces() -> None:
    phone, sip, _ = make_phone({"blf": [{"key": "line2", "user": "1003"}]})
    phone.blf_changed("1003", "ringing", "1002", ev.Pickup("abc@pbx", "t-1003", "t-1002"))
    keys(phone, "line2")
    assert sip.last("make_call")[3] == "1002"
    assert phone.terminals[0].call is not None
    assert phone.terminals[0].call.pickup == ev.Pickup("abc@pbx", "t-1003", "t-1002")


def test_a_daily_referral_set_from_the_keypad_starts_and_ends_by_itself(tmp_path: Path) -> None:
    phone, sip, clock = make_phone({"keys": {"soft4": "referral"}}, tmp_path)
    # the manual clock starts on Wednesday 18 Nov 2026, 12:06 in Stockholm
    keys(phone, "soft4")
    menu = phone.terminals[0].views[-1]
    for _ in range(len(menu.items) - 1):
        keys(phone, "down")
    keys(phone, "ok")  # Future referrals
    assert screen(phone).startswith("Future referrals\n>New...")
    keys(phone, "ok", "ok")  # New..., Lunch
    keys(phone, "down", "ok")  # Every day
    keys(phone, "1230", "1330", "ok")
    assert "Lunch 1230-1330 Eve" in screen(phone)  # Every day, cut at 20 columns
    keys(phone, "cancel", "cancel")
    assert "Lunch" not in screen(phone)
    clock.advance(25 * 60)  # 12:31
    assert "Lunch until 13:30" in screen(phone)
    assert [c for c in sip.sent if c[0] == "publish_presence"][-1][2] is False
    clock.advance(60 * 60)  # 13:31: over
    assert "Lunch" not in screen(phone)
    again, _, _ = make_phone(data_dir=tmp_path)  # kept across a restart
    assert len(again.referral.book.schedules) == 1


def test_a_custom_referral_status_from_config(tmp_path: Path) -> None:
    phone, sip, _ = make_phone({
        "keys": {"soft4": "referral"},
        "referral_types": [{"key": "course", "name_sv": "Kurs", "name_en": "Course",
                            "minutes": 90}],
        "voicemail": {"enabled": False}}, tmp_path)
    keys(phone, "soft4")
    items = [item.label for item in phone.terminals[0].views[-1].items]
    assert "Course" in items
    for _ in range(items.index("Course")):
        keys(phone, "down")
    keys(phone, "ok")
    assert "Course 90 min" in screen(phone)
    incoming(phone, "in1", "1003")  # a custom status rings only when configured to
    assert sip.last("hangup") == ("hangup", "in1", 486)  # (no voicemail: turned away busy)


def test_a_colleagues_line_state_shows_on_their_card(tmp_path: Path) -> None:
    phone, _, _ = directory_phone(tmp_path, blf=[{"key": "line2", "user": "1002"}])
    phone.blf_changed("1002", "busy")
    phone.on_sip_event(ev.PresenceChanged("1002", True, "Tillgänglig"))
    keys(phone, "directory", "2662", "ok")
    assert screen(phone).endswith(" In a call")
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    assert labels[2:4] == ["In a call", "Tillgänglig"]  # a row each, not cut at 20 columns


def test_a_colleagues_referral_and_note_show_on_rows_of_their_own(tmp_path: Path) -> None:
    phone, _, _ = directory_phone(tmp_path)
    phone.on_sip_event(ev.PresenceChanged("1002", False, "Lunch till 13:00 – Hämtar barn"))
    keys(phone, "directory", "2662", "ok", "down", "down")  # the card scrolls to them
    assert screen(phone).splitlines()[-2:] == [">Lunch till 13:00", " Hämtar barn"]


def test_the_menu_offers_the_backlight_of_a_panel_that_has_one(tmp_path: Path) -> None:
    from tests.unit.test_display_hd44780 import i2c_display

    phone, _, _ = make_phone(data_dir=tmp_path)
    display, events = i2c_display()
    phone.terminals[0].board.display = display
    keys(phone, "menu")
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    assert any(label.startswith("Backlight") for label in labels)
    for _ in range(next(i for i, label in enumerate(labels) if label.startswith("Backlight"))):
        keys(phone, "down")
    keys(phone, "ok")
    events.clear()
    for _ in range(10):
        keys(phone, "left")  # down to 0: the backlight goes off
    assert ("byte", 0x27, 0) in events
    keys(phone, "ok")
    assert phone.settings["backlight"] == 0


