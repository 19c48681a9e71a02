"""IVR speech (firmware/ivr_speech.py): numbers, digits, times, dates, envelopes and referral
statuses as prompt names, in Swedish and English; every name has a text in both languages.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from firmware.ivr_speech import (
    LANGUAGES,
    PROMPT_TEXTS,
    REFERRAL_PHRASES,
    say_date,
    say_digits,
    say_envelope,
    say_number,
    say_referral,
    say_time,
    spoken_text,
)

TUESDAY = date(2023, 11, 14)

NUMBERS = {
    0: ("noll", "zero"),
    7: ("sju", "seven"),
    13: ("tretton", "thirteen"),
    20: ("tjugo", "twenty"),
    21: ("tjugo ett", "twenty one"),
    100: ("ett hundra", "one hundred"),
    101: ("ett hundra ett", "one hundred one"),
    1000: ("ett tusen", "one thousand"),
    1305: ("ett tusen tre hundra fem", "one thousand three hundred five"),
    9999: ("nio tusen nio hundra nittio nio", "nine thousand nine hundred ninety nine"),
}


@pytest.mark.parametrize("n", NUMBERS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_numbers(n: int, language: str) -> None:
    expected = NUMBERS[n][LANGUAGES.index(language)]
    assert spoken_text(say_number(n, language), language) == expected


def test_number_names_are_shared_between_languages() -> None:
    assert say_number(1305, "sv") == say_number(1305, "en") == [
        "1", "thousand", "3", "hundred", "5"]


def test_common_gender_one() -> None:
    assert spoken_text(say_number(21, "sv", common=True), "sv") == "tjugo en"
    assert spoken_text(say_number(1, "sv", common=True), "sv") == "en"
    assert spoken_text(say_number(11, "sv", common=True), "sv") == "elva"
    assert spoken_text(say_number(21, "en", common=True), "en") == "twenty one"


@pytest.mark.parametrize("bad", [-1, 10000])
def test_numbers_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        say_number(bad, "sv")


def test_unknown_language() -> None:
    with pytest.raises(ValueError):
        say_number(1, "de")


def test_digits() -> None:
    assert say_digits("+46 70-123", "sv") == ["plus", "4", "6", "7", "0", "1", "2", "3"]
    assert spoken_text(say_digits("+070", "sv"), "sv") == "plus noll sju noll"
    assert spoken_text(say_digits("*9#", "en"), "en") == "star nine hash"
    with pytest.raises(ValueError):
        say_digits("07a", "en")


TIMES = {
    (0, 0): ("noll noll noll", "twelve a.m."),
    (9, 5): ("nio noll fem", "nine oh five a.m."),
    (12, 0): ("tolv noll noll", "twelve p.m."),
    (13, 0): ("tretton noll noll", "one p.m."),
    (13, 5): ("tretton noll fem", "one oh five p.m."),
    (23, 59): ("tjugo tre femtio nio", "eleven fifty nine p.m."),
}


@pytest.mark.parametrize("hm", TIMES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_times(hm: tuple[int, int], language: str) -> None:
    expected = TIMES[hm][LANGUAGES.index(language)]
    assert spoken_text(say_time(*hm, language), language) == expected


def test_time_names() -> None:
    assert say_time(13, 0, "en") == ["1", "p_m"]
    assert say_time(13, 5, "en") == ["1", "oh", "5", "p_m"]
    assert say_time(0, 0, "en") == ["12", "a_m"]
    assert say_time(13, 0, "sv") == ["13", "0", "0"]
    with pytest.raises(ValueError):
        say_time(24, 0, "sv")


def test_dates() -> None:
    assert spoken_text(say_date(TUESDAY, "sv"), "sv") == "tisdag den fjortonde november"
    assert spoken_text(say_date(TUESDAY, "en"), "en") == "Tuesday November fourteenth"
    assert spoken_text(say_date(date(2024, 1, 1), "sv"), "sv") == "måndag den första januari"
    assert spoken_text(say_date(date(2023, 12, 31), "en"), "en") == (
        "Sunday December thirty-first")
    assert spoken_text(say_date(date(2023, 10, 22), "sv"), "sv") == (
        "söndag den tjugoandra oktober")


def test_today_and_yesterday() -> None:
    assert say_date(TUESDAY, "sv", today=TUESDAY) == ["today"]
    assert spoken_text(say_date(TUESDAY, "sv", today=date(2023, 11, 15)), "sv") == "igår"
    assert spoken_text(say_date(TUESDAY, "en", today=date(2023, 11, 15)), "en") == "yesterday"
    assert say_date(TUESDAY, "en", today=date(2023, 11, 16))[0] == "tuesday"
    assert say_date(datetime(2023, 11, 14, 13, 5), "en", today=TUESDAY) == ["today"]


def test_envelope() -> None:
    received = datetime(2023, 11, 14, 13, 5)
    assert spoken_text(say_envelope(received, "070", "sv"), "sv") == (
        "ett nytt meddelande mottaget tisdag den fjortonde november klockan tretton noll fem "
        "från noll sju noll")
    assert spoken_text(say_envelope(received, "", "en", new=False, today=TUESDAY), "en") == (
        "one saved message received today at one oh five p.m. from unknown caller")


def test_referral() -> None:
    assert spoken_text(say_referral("lunch", "sv", time(13, 0)), "sv") == (
        "är på lunch till tretton noll noll")
    assert spoken_text(say_referral("lunch", "en", time(13, 0)), "en") == (
        "is at lunch until one p.m.")
    assert say_referral("gone", "sv", time(17, 0)) == ["referral_gone"]
    with pytest.raises(KeyError):
        say_referral("nap", "sv")


def _everything(language: str) -> set[str]:
    names: set[str] = set()
    for n in range(10000):
        names.update(say_number(n, language), say_number(n, language, common=True))
    for hour in range(24):
        for minute in range(60):
            names.update(say_time(hour, minute, language))
    for ordinal in range(366):
        day = date.fromordinal(date(2024, 1, 1).toordinal() + ordinal)
        names.update(say_date(day, language), say_date(day, language, today=day))
        names.update(say_date(day, language, today=date.fromordinal(day.toordinal() + 1)))
    names.update(say_digits("+0123456789*#", language))
    names.update(say_envelope(datetime(2024, 1, 1), "", language, new=False))
    names.update(say_envelope(datetime(2024, 1, 1), "1", language))
    for kind in REFERRAL_PHRASES:
        names.update(say_referral(kind, language, time(13, 0)))
    return names


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_produced_name_has_a_text_in_both_languages(language: str) -> None:
    for name in _everything(language):
        assert name in PROMPT_TEXTS, name
        assert PROMPT_TEXTS[name]["sv"] and PROMPT_TEXTS[name]["en"], name


FIXED = ["owner_main_menu", "message_menu", "invalid", "no_input", "goodbye",
         "record_greeting_after_tone", "enter_pin", "pin_wrong", "locked", "no_messages",
         "new_message", "saved_message", "received", "from", "at", "greeting_default",
         "remote_menu", "enter_minutes", "mailbox_full", "message_deleted", "greeting_saved",
         "greeting_deleted", "until", "message_saved", "press", "kind_lunch"]


def test_fixed_prompts_exist_in_both_languages() -> None:
    for name in FIXED:
        assert set(PROMPT_TEXTS[name]) == set(LANGUAGES), name
    assert "stjärna för att avsluta" in PROMPT_TEXTS["owner_main_menu"]["sv"]
    assert PROMPT_TEXTS["at"]["sv"] == "klockan"


def test_prompt_names_are_safe_file_names() -> None:
    for name in PROMPT_TEXTS:
        assert name.replace("_", "").isalnum() and name.isascii(), name
