"""Lists on the screen: navigation, rendering, and the terminal handing them the keys."""

from __future__ import annotations

from firmware.sip import events as ev
from firmware.views import Item, ListView, Outcome
from tests.unit.test_call_features import connected_call, keys, make_phone, screen


def numbers_view() -> ListView:
    view = ListView("Contacts", on_select=lambda item: Outcome(act=("dial", item.value)))
    view.set_items([Item(f"Person {n}", f"10{n:02d}", detail=f"{n}:00") for n in range(2, 9)])
    return view


def test_cursor_moves_within_the_list_and_rows_follow_it() -> None:
    view = numbers_view()
    assert view.rows(20, 4) == ["Contacts", ">Person 2       2:00", " Person 3       3:00",
                                " Person 4       4:00"]
    for _ in range(10):
        view.key("down")
    assert view.selected.value == "1008"
    assert view.rows(20, 4)[-1] == ">Person 8       8:00"
    view.key("up")
    assert view.selected.value == "1007"
    assert view.key("cancel").close and not view.key("5").handled


def test_an_empty_list_says_so() -> None:
    view = ListView("History", empty_text="No calls")
    assert view.rows(20, 4) == ["History", "No calls"] and view.key("ok").act is None


def test_the_terminal_shows_a_list_and_dials_from_it() -> None:
    phone, sip, _ = make_phone()
    phone.view_makers["directory"] = lambda terminal: numbers_view()
    keys(phone, "directory", "down", "ok")
    assert sip.last("make_call")[3] == "1003"
    assert phone.terminals[0].views == []


def test_a_list_picks_the_transfer_target() -> None:
    phone, sip, _ = make_phone()
    phone.view_makers["directory"] = lambda terminal: numbers_view()
    cid = connected_call(phone, sip)
    keys(phone, "transfer", "directory")
    assert screen(phone).startswith("Contacts")
    keys(phone, "down", "down", "ok", "transfer")
    assert sip.last("transfer") == ("transfer", cid, "1004")


def test_a_call_takes_the_screen_from_a_list_and_gives_it_back() -> None:
    phone, _, _ = make_phone()
    phone.view_makers["directory"] = lambda terminal: numbers_view()
    keys(phone, "directory")
    phone.on_sip_event(ev.IncomingCall("in1", 0, "sip:1005@pbx", "", "1005"))
    assert screen(phone).startswith("Incoming call")
    phone.on_sip_event(ev.CallStateChanged("in1", "disconnected", 487, "Cancelled"))
    assert screen(phone).startswith("Contacts")
