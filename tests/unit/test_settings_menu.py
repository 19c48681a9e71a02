"""The phone's own menus (Settings, Profile, Info, Help) driven by keys against a fake phone."""

from __future__ import annotations

from collections.abc import Set
from pathlib import Path
from typing import Any

import pytest

from firmware.config import ConfigError, PhoneConfig
from firmware.config.overrides import OverrideStore
from firmware.settings_menu import (
    MENU_TEXTS,
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
                 fail: dict[str, str] | None = None) -> None:
        self.store = OverrideStore(tmp_path / "state" / "overrides.json", base=BASE)
        self.config: PhoneConfig = self.store.apply()
        self.display_controls = controls
        self.profile = ProfileInfo("Anna Berg", ("1001", "070-123 45 67"))
        self.levels = {"ringer_volume": 8, "backlight": 10, "contrast": 5}
        self.fail = fail or {}
        self.calls: list[tuple[str, Any]] = []
        self.now = 1000.0

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
