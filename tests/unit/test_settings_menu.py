"""The phone's own menus (Settings, Profile, Info, Help) driven by keys against a fake phone."""

from __future__ import annotations

from collections.abc import Callable, Set
from pathlib import Path
from typing import Any

import pytest

from firmware.config import ConfigError, PhoneConfig
from firmware.config.overrides import OverrideStore
from firmware.settings_menu import (
    MENU_TEXTS,
    LevelView,
    ProfileInfo,
    SettingsContext,
    main_menu,
)
from firmware.views import Item, ListView, Outcome
from tests.unit.test_call_features import keys, make_phone, screen

BASE = {"lines": [{"user": "1001", "registrar": "127.0.0.1:5060", "password": "s3cret"}]}


class FakePhone:
    """Stands for the phone: config changes go to a real `OverrideStore`, levels to a dict;
    every call is recorded. `fail` makes a key's change fail with that text."""

    def __init__(self, tmp_path: Path, controls: Set[str] = frozenset(),
                 fail: dict[str, str] | None = None, base: dict[str, Any] = BASE) -> None:
        self.store = OverrideStore(tmp_path / "state" / "overrides.json", base=base)
        self.config: PhoneConfig = self.store.apply()
        self.display_controls = controls
        self.profile = ProfileInfo("Anna Berg", ("1001", "070-123 45 67"))
        self.levels = {"ringer_volume": 8, "backlight": 10, "contrast": 5}
        self.fail = fail or {}
        self.calls: list[tuple[str, Any]] = []
        self.now = 1000.0
        self.contacts: Callable[[], ListView] | None = None  # no "My contacts" item
        self.logged_in: set[int] = set()  # response groups (config.groups indexes)

    @property
    def language(self) -> str:
        return self.config.device.language

    def set_setting(self, key: str, value: Any) -> str | None:
        self.calls.append((key, value))
        if key in self.fail:
            return self.fail[key]
        if "." not in key:
            self.levels[key] = value
            return None
        try:
            self.config = self.store.set(key, value)
        except ConfigError as exc:
            return exc.problems[0].message
        return None

    def level(self, name: str) -> int:
        return self.levels[name]

    def info_lines(self) -> list[str]:
        return ["IP 192.168.1.20", "Luren 0.9.0", "SIP: registrerad"]

    def set_note(self, text: str) -> str | None:
        self.calls.append(("note", text))
        if "note" in self.fail:
            return self.fail["note"]
        self.profile = ProfileInfo(self.profile.name, self.profile.numbers, text)
        return None

    def clock_now(self) -> float:
        return self.now

    @property
    def contacts_menu(self) -> Callable[[], ListView] | None:
        return self.contacts

    def group_logged_in(self, index: int) -> bool:
        return index in self.logged_in


class Screen:
    """The view stack as the terminal keeps it (`Terminal._view_key`)."""

    def __init__(self, view: ListView) -> None:
        self.views = [view]
        self.unhandled: list[str] = []
        self.actions: list[tuple[str, Any]] = []

    def keys(self, *names: str) -> Screen:
        for name in names:
            self.apply(name, self.views[-1].key(name))
        return self

    def apply(self, name: str, outcome: Outcome) -> None:
        if not outcome.handled:
            self.unhandled.append(name)
            return
        if outcome.close:
            self.views.pop()
        if outcome.push is not None:
            self.views.append(outcome.push)
        if outcome.act is not None:
            self.actions.append(outcome.act)
            if outcome.act[0] == "close_all":
                self.views.clear()

    @property
    def rows(self) -> list[str]:
        return self.views[-1].rows(20, 4)


def open_menu(phone: FakePhone) -> Screen:
    ctx: SettingsContext = phone  # the fake satisfies the protocol
    return Screen(main_menu(ctx))


@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    return FakePhone(tmp_path)


# --- the main menu ------------------------------------------------------------------------------


def test_the_main_menu_shows_each_setting_with_its_value(phone: FakePhone) -> None:
    screen = open_menu(phone)
    assert screen.rows == ["Inställningar", ">Språk       Svenska", " Tidszon   Stockholm",
                           " Ringsignal Klassisk"]
    screen.keys("down", "down", "down", "down")
    assert screen.rows == ["Inställningar", " Ringvolym         8", ">Knappljud        På",
                           " Profil"]
    screen.keys("down", "down", "down", "down")
    assert screen.rows == ["Inställningar", " Profil", " Info", ">Hjälp"]
    assert phone.calls == []


def test_backlight_and_contrast_appear_only_when_the_display_has_them(tmp_path: Path) -> None:
    labels = [item.label for item in main_menu(FakePhone(tmp_path)).items]
    assert "Kontrast" not in labels and "Bakgrundsbelysning" not in labels
    labels = [item.label for item in main_menu(FakePhone(tmp_path, {"contrast"})).items]
    assert labels[4:7] == ["Knappljud", "Kontrast", "Profil"]
    both = main_menu(FakePhone(tmp_path, {"backlight", "contrast"}))
    assert [(i.label, i.detail) for i in both.items[5:7]] == [("Bakgrundsbelysning", "10"),
                                                             ("Kontrast", "5")]


def test_choosing_english_saves_it_and_the_menu_speaks_english_at_once(
        phone: FakePhone) -> None:
    screen = open_menu(phone).keys("ok")
    assert screen.rows == ["Språk", ">* Svenska", "   English"]
    screen.keys("down", "ok")
    assert phone.calls == [("device.language", "en")]
    assert phone.store.get() == {"device": {"language": "en"}}
    assert screen.rows == ["Settings", ">Language    English", " Time zone Stockholm",
                           " Ringtone    Classic"]


def test_the_time_zone_list_marks_the_current_zone_and_starts_on_it(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("down", "right")
    assert screen.rows == ["Tidszon", ">* Stockholm", "   Helsingfors", "   Oslo"]
    screen.keys("down", "down", "down", "ok")
    assert phone.calls == [("device.time_zone", "Europe/Copenhagen")]
    assert screen.rows[2] == ">Tidszon   Köpenhamn"
    screen.keys("right")
    assert screen.rows == ["Tidszon", "   Oslo", ">* Köpenhamn", "   London"]


def test_a_zone_outside_the_short_list_is_offered_too(tmp_path: Path) -> None:
    phone = FakePhone(tmp_path)
    phone.config = phone.store.set("device.time_zone", "America/New_York")
    screen = open_menu(phone).keys("2")
    assert screen.views[-1].items[-1] == Item("* New York", "America/New_York")
    assert screen.views[-1].selected.value == "America/New_York"


def test_digits_pick_items_ringtone_by_number(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("3")
    assert screen.rows == ["Ringsignal", ">* Klassisk", "   Mjuk", "   Pip"]
    screen.keys("3")
    assert phone.calls == [("device.ringtone", "beep")] and phone.config.device.ringtone == "beep"
    assert len(screen.views) == 1 and screen.rows[2] == ">Ringsignal      Pip"


def test_key_click_off(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("5")
    assert screen.rows == ["Knappljud", ">* På", "   Av"]
    screen.keys("down", "ok")
    assert phone.calls == [("device.key_tones", False)]
    assert phone.config.device.key_tones is False and ">Knappljud        Av" in screen.rows


def test_choosing_the_current_value_again_is_harmless(phone: FakePhone) -> None:
    open_menu(phone).keys("1", "ok")
    assert phone.calls == [("device.language", "sv")] and phone.store.get() == {}


# --- levels -------------------------------------------------------------------------------------


def test_ring_volume_steps_at_once_and_ok_keeps_it(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("4")
    assert screen.rows == ["Ringvolym", "[########-------]  8", "</> ändra, OK klar"]
    screen.keys("right", "up", "volume_up")
    assert screen.rows[1] == "[###########----] 11"
    screen.keys("ok")
    assert phone.calls == [("ringer_volume", 9), ("ringer_volume", 10), ("ringer_volume", 11)]
    assert screen.rows[1:3] == [" Ringsignal Klassisk", ">Ringvolym        11"]


def test_a_level_stops_at_its_ends_and_cancel_puts_it_back(phone: FakePhone) -> None:
    phone.levels["ringer_volume"] = 14
    screen = open_menu(phone).keys("4", "right", "right", "right")
    assert phone.calls == [("ringer_volume", 15)] and screen.rows[1].endswith("] 15")
    screen.keys("cancel")
    assert phone.calls[-1] == ("ringer_volume", 14) and len(screen.views) == 1


def test_contrast_is_a_level_of_0_to_10(tmp_path: Path) -> None:
    phone = FakePhone(tmp_path, {"contrast"})
    screen = open_menu(phone).keys("6", "left", "down", "volume_down")
    assert screen.rows[:2] == ["Kontrast", "[###------------]  2"]
    screen.keys("ok")
    assert phone.calls == [("contrast", 4), ("contrast", 3), ("contrast", 2)]


# --- errors -------------------------------------------------------------------------------------


def test_an_error_is_shown_as_a_notice_over_the_list(tmp_path: Path) -> None:
    phone = FakePhone(tmp_path, fail={"device.ringtone": "cannot write the settings"})
    screen = open_menu(phone).keys("3", "down", "ok")
    assert screen.rows == ["Ej sparat", "cannot write the", "settings"]
    assert phone.config.device.ringtone == "classic"
    screen.keys("5")  # keypad keys do nothing under a notice
    assert screen.unhandled == [] and screen.rows[0] == "Ej sparat"
    screen.keys("ok")
    assert screen.rows == ["Ringsignal", " * Klassisk", ">  Mjuk", "   Pip"]


def test_a_level_that_cannot_be_set_says_so_and_keeps_its_value(tmp_path: Path) -> None:
    phone = FakePhone(tmp_path, fail={"ringer_volume": "no ringer"})
    screen = open_menu(phone).keys("4", "right")
    assert screen.rows == ["Ej sparat", "no ringer"]
    screen.keys("cancel")
    assert screen.rows[1].endswith("]  8")


def test_a_schema_error_from_the_override_store_is_shown(phone: FakePhone) -> None:
    assert phone.set_setting("device.time_zone", "Mars/Olympus") == (
        'is not a known IANA time zone (e.g. "Europe/Stockholm" or "UTC")')
    assert phone.set_setting("sip.port", 5070).startswith("cannot be changed on the phone")


# --- profile, info, help ------------------------------------------------------------------------


def test_the_profile_shows_name_numbers_and_note(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("6")
    assert screen.rows == ["Profil", ">Anna Berg", " 1001", " 070-123 45 67"]
    screen.keys("down", "down", "down")
    assert screen.rows[-1] == ">Notering: (ingen)"
    screen.keys("ok")
    assert screen.rows == ["Notering         Abc", "_"]


def test_the_note_is_typed_by_multi_tap_and_saved(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("6", "4")
    for key in ("5", "5", "5", "8", "8", "6", "6", "2", "2", "2", "4", "4"):  # L u n c h
        screen.keys(key)
        phone.now += 0.3
    assert screen.rows == ["Notering         Abc", "Lunch"]  # "h" still cycling: no cursor
    phone.now += 1.0
    assert screen.rows[1] == "Lunch_"
    screen.keys("#", "1", "1", "right", "3", "ok")
    assert phone.calls == [("note", "Lunch ,d")]
    assert screen.rows[-1] == ">Notering: Lunch ,d"


def test_the_same_key_after_the_timeout_is_a_new_letter(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("6", "4", "2")
    phone.now += 1.5
    screen.keys("2")
    assert screen.views[-1].text == "Aa"
    screen.keys("*", "*", "*")  # Abc -> abc -> ABC -> 123
    assert screen.rows[0] == "Notering         123"
    screen.keys("4", "2")
    assert screen.views[-1].text == "Aa42"


def test_cancel_deletes_then_leaves_without_saving(phone: FakePhone) -> None:
    phone.profile = ProfileInfo("Anna Berg", ("1001",), "Ute")
    screen = open_menu(phone).keys("6", "down", "down", "ok")
    assert screen.rows == ["Notering         Abc", "Ute_"]
    screen.keys("cancel", "left", "cancel")
    assert screen.rows[1] == "_"
    screen.keys("cancel")
    assert screen.rows[0] == "Profil" and phone.calls == []


def test_an_emptied_note_can_be_saved(phone: FakePhone) -> None:
    phone.profile = ProfileInfo("Anna Berg", (), "Ute")
    open_menu(phone).keys("6", "2", "cancel", "cancel", "cancel", "ok")
    assert phone.calls == [("note", "")] and phone.profile.note == ""


def test_a_refused_note_is_a_notice_and_the_text_stays(tmp_path: Path) -> None:
    phone = FakePhone(tmp_path, fail={"note": "Texten är för lång"})
    screen = open_menu(phone).keys("6", "4", "2", "ok")
    assert screen.rows == ["Ej sparat", "Texten är för lång"]
    screen.keys("ok")
    assert screen.rows[1] == "A_"


def test_a_long_note_shows_its_end(phone: FakePhone) -> None:
    phone.profile = ProfileInfo("Anna Berg", (), "x" * 70)
    screen = open_menu(phone).keys("6", "2")
    assert screen.rows == ["Notering         Abc", "x" * 20, "x" * 20, "x" * 10 + "_"]


def test_info_shows_the_phones_lines(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("7")
    assert screen.rows == ["Info", ">IP 192.168.1.20", " Luren 0.9.0", " SIP: registrerad"]
    screen.keys("ok", "left")
    assert screen.rows[0] == "Inställningar"


def test_help_says_what_the_keys_do_in_both_languages(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("8")
    assert screen.rows == ["Hjälp", ">Upp/Ner: bläddra", " OK: välj, svara", " Avbryt: tillbaka"]
    phone.config = phone.store.set("device.language", "en")
    screen = open_menu(phone).keys("8")
    assert screen.rows == ["Help", ">Up/Down: move", " OK: choose, answer", " Cancel: back"]


def test_help_lines_fit_the_smallest_screen() -> None:
    for key, texts in MENU_TEXTS.items():
        if key.startswith("help_"):
            assert max(len(texts["sv"]), len(texts["en"])) <= 20, key
        assert set(texts) == {"sv", "en"}, key


# --- keys that leave the menus ------------------------------------------------------------------


def test_menu_closes_every_menu_and_keypad_keys_never_leak(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("9", "0", "*", "#", "3")
    assert screen.unhandled == [] and screen.rows[0] == "Ringsignal"
    screen.keys("speaker", "menu")
    assert screen.unhandled == ["speaker"] and screen.actions == [("close_all", None)]
    assert screen.views == []


def test_cancel_and_left_go_back_one_level(phone: FakePhone) -> None:
    screen = open_menu(phone).keys("1", "left")
    assert screen.rows[0] == "Inställningar"
    screen.keys("cancel")
    assert screen.views == []


def test_extra_items_come_first(phone: FakePhone) -> None:
    other = ListView("Hänvisning", [Item("Lunch")])
    screen = Screen(main_menu(phone, [(lambda language: "Hänvisning", lambda: other)]))
    assert screen.rows[1] == ">Hänvisning"
    assert screen.keys("ok").views[-1] is other


def test_on_the_phone_the_menu_key_opens_it_and_digits_do_not_dial(tmp_path: Path) -> None:
    phone, sip, _ = make_phone()
    fake = FakePhone(tmp_path)
    phone.view_makers["menu"] = lambda terminal: main_menu(fake)
    keys(phone, "menu")
    assert screen(phone).startswith("Inställningar")
    keys(phone, "3", "2")
    assert fake.calls == [("device.ringtone", "soft")]
    keys(phone, "0", "menu")
    assert not any(sent[0] == "make_call" for sent in sip.sent)
    assert not screen(phone).startswith("Inställningar")


# --- response groups ----------------------------------------------------------------------------

GROUPS = {**BASE, "groups": [
    {"name": "Support", "login_code": "*741", "logout_code": "*740", "key": "line2"},
    {"name": "Växel", "login_code": "*751", "logout_code": "*750"}]}


def test_response_groups_are_listed_with_who_is_logged_in(tmp_path: Path) -> None:
    phone = FakePhone(tmp_path, base=GROUPS)
    phone.logged_in = {1}
    screen = open_menu(phone)
    assert screen.rows[1] == ">Svarsgrupper    1/2"
    screen.keys("ok")
    assert screen.rows == ["Svarsgrupper", ">Support    Utloggad", " Växel      Inloggad"]
    screen.keys("down", "ok")
    assert screen.actions == [("toggle_group", 1)]  # the terminal dials the code
    phone.logged_in = set()
    assert screen.rows[2] == ">Växel      Utloggad"  # the mark follows at once
    screen.keys("1", "0", "left")
    assert screen.actions == [("toggle_group", 1), ("toggle_group", 0)]
    assert screen.rows[0] == "Inställningar" and screen.unhandled == []


def test_without_response_groups_there_is_no_such_item(phone: FakePhone) -> None:
    labels = [item.label for item in main_menu(phone).items]
    assert "Svarsgrupper" not in labels and labels[0] == "Språk"


def test_response_groups_from_the_menu_dial_the_codes_and_the_led_follows(
        tmp_path: Path) -> None:
    from firmware.sip import events as ev

    phone, sip, clock = make_phone({"groups": GROUPS["groups"]}, tmp_path)
    led = phone.terminals[0].board.leds["line2"]
    keys(phone, "menu")
    labels = [item.label for item in phone.terminals[0].views[-1].items]
    for _ in range(labels.index("Response groups")):
        keys(phone, "down")
    assert screen(phone).split("\n")[2] == ">Response groups 0/2"
    keys(phone, "ok", "ok")
    assert sip.last("make_call")[3] == "*741"
    assert led.state.pattern.value == "on" and phone.terminals[0].group_logged_in(0)
    phone.on_sip_event(ev.CallStateChanged(sip.last("make_call")[1], "disconnected", 200, "OK"))
    clock.advance(5)
    assert screen(phone) == "Response groups\n>Support   Logged in\n Växel    Logged out\n"
    keys(phone, "ok")
    assert sip.last("make_call")[3] == "*740"
    assert led.state.pattern.value == "off"
    phone.on_sip_event(ev.CallStateChanged(sip.last("make_call")[1], "disconnected", 200, "OK"))
    clock.advance(5)
    keys(phone, "2")  # Växel: no key of its own, the menu only
    assert sip.last("make_call")[3] == "*751"
    again, _, _ = make_phone({"groups": GROUPS["groups"]}, tmp_path)  # kept across a restart
    assert again.terminals[0].group_logged_in(1) and not again.terminals[0].group_logged_in(0)


def test_a_response_group_is_not_toggled_during_a_call(tmp_path: Path) -> None:
    from tests.unit.test_call_features import connected_call

    phone, sip, _ = make_phone({"groups": GROUPS["groups"]}, tmp_path)
    connected_call(phone, sip)
    phone.terminals[0]._view_action("toggle_group", 0)
    assert not phone.terminals[0].group_logged_in(0)
    assert [c[3] for c in sip.sent if c[0] == "make_call"] == ["1002"]


# --- the phone's own settings: ranges, and what settings.json may hold ---------------------------


def real_settings(tmp_path: Path, stored: dict[str, Any] | None = None,
                  **tables: Any) -> Any:
    """`PhoneSettings` of a phone (config `tables`) whose settings.json holds `stored`."""
    import json

    from firmware.phone_settings import PhoneSettings

    if stored is not None:
        (tmp_path / "state").mkdir(parents=True, exist_ok=True)
        (tmp_path / "state" / "settings.json").write_text(json.dumps(stored))
    phone, _, _ = make_phone(tables, data_dir=tmp_path)
    return PhoneSettings(phone)


def test_levels_outside_their_range_are_refused_with_the_range(tmp_path: Path) -> None:
    ctx = real_settings(tmp_path)
    assert ctx.set_setting("ringer_volume", 16) == "Ring volume must be 0-15"
    assert ctx.set_setting("backlight", -1) == "Backlight must be 0-10"
    assert ctx.set_setting("contrast", "loud") == "Contrast must be 0-10"
    assert ctx.set_setting("contrast", True) == "Contrast must be 0-10"
    assert ctx.set_setting("volume", 3) == "unknown setting volume"
    assert "contrast" not in ctx.phone.settings and "backlight" not in ctx.phone.settings
    assert ctx.set_setting("contrast", 10) is None and ctx.level("contrast") == 10
    assert ctx.set_setting("ringer_volume", 0) is None and ctx.level("ringer_volume") == 0


def test_the_range_message_is_swedish_on_a_swedish_phone(tmp_path: Path) -> None:
    ctx = real_settings(tmp_path, device={"language": "sv"})
    assert ctx.set_setting("ringer_volume", 99) == "Ringvolym ska vara 0-15"
    assert ctx.set_note("x" * 61) == "Noteringen får ha högst 60 tecken"


def test_bad_levels_in_settings_json_are_clamped_or_ignored_with_a_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx = real_settings(tmp_path, {"ringer_volume": "loud", "contrast": 99, "backlight": -4,
                                   "note": 42})
    caplog.set_level("WARNING", logger="luren.settings")
    assert (ctx.level("ringer_volume"), ctx.level("contrast"), ctx.level("backlight")) == (
        8, 10, 0)
    assert ctx.profile.note == ""
    warnings = [r.getMessage() for r in caplog.records]
    assert "settings.json: ringer_volume = 'loud' is not a whole number: using 8" in warnings
    assert "settings.json: contrast = 99 is outside 0-10: using 10" in warnings
    assert "settings.json: the note 42 is not text: ignored" in warnings
    caplog.clear()
    menu = main_menu(ctx)  # the menus show the safe values, and log nothing more
    assert [i.detail for i in menu.items if i.label == "Ring volume"] == ["8"]
    assert LevelView(ctx, "contrast", "Contrast").rows(20, 4)[1].endswith("] 10")
    assert caplog.records == []


def test_a_long_note_in_settings_json_is_cut(tmp_path: Path) -> None:
    ctx = real_settings(tmp_path, {"note": "y" * 80})
    assert ctx.profile.note == "y" * 60


def test_a_note_longer_than_60_characters_is_refused(tmp_path: Path) -> None:
    ctx = real_settings(tmp_path)
    assert ctx.set_note("x" * 61) == "The note can have at most 60 characters"
    assert "note" not in ctx.phone.settings
    assert ctx.set_note("x" * 60) is None and ctx.profile.note == "x" * 60


def test_a_refused_long_note_keeps_the_text_in_the_editor(tmp_path: Path) -> None:
    from firmware.phone_settings import PhoneSettings

    phone, _, _ = make_phone(data_dir=tmp_path)
    ctx = PhoneSettings(phone)
    phone.save_setting("note", "z" * 60)
    screen = Screen(main_menu(ctx))
    labels = [item.label for item in screen.views[-1].items]
    screen.keys(*["down"] * labels.index("Profile"), "ok", "down", "down", "ok", "2", "ok")
    assert screen.rows == ["Not saved", "The note can have at", "most 60 characters"]
    screen.keys("ok")
    assert screen.views[-1].text == "z" * 60 + "a"


# --- My contacts ---------------------------------------------------------------------------------


def test_my_contacts_comes_first_where_the_phone_keeps_contacts(phone: FakePhone) -> None:
    mine = ListView("Mina kontakter", [Item("Ny kontakt...")])
    phone.contacts = lambda: mine
    screen = open_menu(phone)
    assert screen.rows[1:3] == [">Mina kontakter", " Språk       Svenska"]
    assert screen.keys("ok").views[-1] is mine


def test_a_phone_starts_with_a_bad_level_in_its_settings_file(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture
                                                              ) -> None:
    from tests.unit.test_call_features import make_phone

    state = tmp_path / "state"
    state.mkdir()
    (state / "settings.json").write_text('{"backlight": "bright", "contrast": 99}')
    phone, _, _ = make_phone(data_dir=tmp_path)  # starts: no ValueError
    assert "backlight = 'bright' is not a whole number" in caplog.text
    assert phone.terminals[0].screen_rows()  # and the phone is there to use


def test_info_shows_the_network_as_well_as_the_version(tmp_path: Path) -> None:
    from firmware.phone_settings import PhoneSettings, _mac
    from tests.unit.test_call_features import make_phone

    phone, _, _ = make_phone(data_dir=tmp_path)
    lines = PhoneSettings(phone).info_lines()
    assert lines[0].startswith("Luren ")
    assert [line.split(" ", 1)[0] for line in lines[1:6]] == ["IP", "MAC", "Gateway", "DNS",
                                                             "SIP"]
    assert "1001: registered" in lines
    (tmp_path / "eth9").mkdir()
    (tmp_path / "eth9" / "address").write_text("80:5e:c0:12:34:56\n")
    assert _mac("eth9", tmp_path) == "805EC0123456"
    assert _mac("eth8", tmp_path) == "" and _mac("", tmp_path) == ""


@pytest.mark.parametrize(("value", "expected"), [
    (7, 7), (7.0, 7), ("7", 7), (" -3 ", -3), (True, None), (7.5, None), ("x", None),
    ("--5", None), ("²", None), ("", None), ([], None)])
def test_a_stored_level_is_a_whole_number_or_nothing(value: object,
                                                      expected: int | None) -> None:
    from firmware.phone_settings import whole_number

    assert whole_number(value) == expected
