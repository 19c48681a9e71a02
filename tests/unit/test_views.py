"""Lists on the screen: navigation, rendering, and the terminal handing them the keys."""

from __future__ import annotations

from firmware.sip import events as ev
from firmware.views import Item, ListView, NoticeView, Outcome, TextEntry, fit_right
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


def test_a_text_entry_types_by_multi_tap_and_hands_over_the_text() -> None:
    now = [0.0]
    saved: list[str] = []

    def save(text: str) -> Outcome:
        saved.append(text)
        return Outcome(close=True)

    entry = TextEntry("Group", lambda: now[0], save)
    assert entry.rows(20, 4) == ["Group            Abc", "_"]
    for key in ("5", "6", "6", "6"):  # J, then o (the same key three times)
        entry.key(key)
    assert entry.rows(20, 4) == ["Group            Abc", "Jo"]  # o still cycling
    now[0] += 1.5
    assert entry.rows(20, 4)[1] == "Jo_"
    entry.key("#")
    assert entry.key("speaker").handled is False and entry.key("9").handled
    assert entry.key("ok").close and saved == ["Jo W"]  # Abc: a capital after a space


def test_a_text_entry_deletes_then_goes_back_without_saving() -> None:
    entry = TextEntry("Group", lambda: 0.0, lambda text: Outcome(close=True), "Ab")
    assert not entry.key("cancel").close and not entry.key("left").close
    assert entry.text == "" and entry.key("cancel").close
    assert entry.key("menu").act == ("close_all", None)


def test_a_notice_wraps_swallows_keypad_keys_and_closes_on_ok() -> None:
    view = NoticeView("Not saved", "Type at least one number")
    assert view.rows(20, 4) == ["Not saved", "Type at least one", "number"]
    assert view.key("5").handled and not view.key("5").close
    assert not view.key("speaker").handled
    assert view.key("ok").close and view.key("left").close


def test_fit_right_keeps_the_mark_and_cuts_the_name() -> None:
    assert fit_right("Anna Berg", "* VIP", 20) == "Anna Berg      * VIP"
    assert fit_right("Anna-Karin Öberg-Lindqvist", "VIP", 20) == "Anna-Karin Öberg VIP"
    assert fit_right("Anna Berg", "", 5) == "Anna "
