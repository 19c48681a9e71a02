"""Future and recurring referrals added from the desk phone's keys (*Framtida hänvisning*):
weekly on chosen days, monthly, yearly, first and last dates, the refusals, both languages.
The manual clock starts on Wednesday 18 Nov 2026 at 12:06:40 in Stockholm."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

from firmware.phone import Phone
from firmware.referral import BUSY, LUNCH, MEETING, VACATION, Recurrence, ScheduledReferral
from tests.unit.test_call_features import keys, make_phone, screen
from tests.unit.test_referral_clock import choose


def new_schedule(phone: Phone, kind: str, repeat: str) -> None:
    """Referral menu -> Future referrals -> New... -> `kind` -> `repeat` (by their labels)."""
    keys(phone, "soft4")
    choose(phone, "Future referrals" if phone.config.device.language == "en"
           else "Framtida hänvisning")
    keys(phone, "ok")  # New...
    choose(phone, kind)
    choose(phone, repeat)


def only_schedule(phone: Phone) -> ScheduledReferral:
    schedules = phone.referral.book.schedules
    assert len(schedules) == 1
    return schedules[0]


def labels(phone: Phone) -> list[str]:
    """The items of the list on top, in full (the screen cuts them at 20 columns)."""
    return [item.label for item in phone.terminals[0].views[-1].items]


def shown(phone: Phone) -> str:
    """The screen without the empty rows below the text."""
    return screen(phone).rstrip("\n")


def desk_phone(tmp_path: Path, language: str = "en") -> Phone:
    phone, _, _ = make_phone({"device": {"language": language},
                              "keys": {"soft4": "referral"}}, tmp_path)
    return phone


def test_every_week_on_the_days_ticked(tmp_path: Path) -> None:
    phone, _, clock = make_phone({"keys": {"soft4": "referral"}}, tmp_path)
    new_schedule(phone, "Lunch", "Every week")
    assert screen(phone) == "Which days?\n>[ ] Mon\n [ ] Tue\n [x] Wed"  # today is ticked
    keys(phone, "1", "5", "3")  # Monday and Friday on, Wednesday off (1 = Monday)
    keys(phone, "down", "ok")  # ok on a day ticks it too: Tuesday
    keys(phone, "2")  # and its digit unticks it
    assert labels(phone) == [
        "[x] Mon", "[ ] Tue", "[ ] Wed", "[ ] Thu", "[x] Fri", "[ ] Sat", "[ ] Sun", "Next"]
    choose(phone, "Next")
    assert screen(phone).startswith("Start (hhmm)\n")
    keys(phone, "1200", "1300", "ok")
    schedule = only_schedule(phone)
    assert (schedule.type_key, schedule.recurrence, schedule.weekdays) == (
        LUNCH, Recurrence.WEEKLY, frozenset({0, 4}))
    assert (schedule.first_date, schedule.until_date, schedule.tz) == (
        date(2026, 11, 18), None, "Europe/Stockholm")
    assert labels(phone)[1] == "Lunch 1200-1300 Mon,Fri"
    keys(phone, "cancel", "cancel")
    clock.advance(24 * 3600)  # Thursday 12:06: no lunch
    assert "Lunch" not in screen(phone)
    clock.advance(24 * 3600)  # Friday 12:06
    assert "Lunch until 13:00" in screen(phone)


def test_no_day_ticked_is_refused_with_a_notice(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path)
    new_schedule(phone, "Lunch", "Every week")
    keys(phone, "3")  # Wednesday off: no day left
    choose(phone, "Next")
    assert shown(phone) == "Not saved\nChoose at least one\nweekday"
    keys(phone, "ok")  # the notice closes: back to the days
    assert screen(phone).startswith("Which days?")


def test_every_month_from_a_first_date(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path)
    new_schedule(phone, "Meeting", "Every month")
    keys(phone, "0900", "1000")
    assert screen(phone) == "From (yymmdd)\n0900-1000\nFrom: today\nLast day: none"
    keys(phone, "2611")
    assert screen(phone) == "From (yymmdd)\n0900-1000\nFrom: 2611\nLast day: none"
    keys(phone, "25")  # full: on to the last day
    assert screen(phone) == "Last day (yymmdd)\n0900-1000\nFrom: 2026-11-25\nLast day: none"
    keys(phone, "ok")
    schedule = only_schedule(phone)
    assert (schedule.type_key, schedule.recurrence, schedule.first_date, schedule.until_date,
            schedule.start, schedule.end) == (MEETING, Recurrence.MONTHLY, date(2026, 11, 25),
                                              None, time(9), time(10))
    assert labels(phone)[1] == "Meeting 0900-1000 Every month"
    keys(phone, "down", "ok")  # the schedule in full
    assert phone.terminals[0].views[-1].title == "Meeting"
    assert labels(phone) == [
        "09:00-10:00", "Every month: 25", "From: 2026-11-25", "Last day: none",
        "Europe/Stockholm"]


def test_every_year_with_a_last_day_and_the_first_date_left_out(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path)
    new_schedule(phone, "Vacation", "Every year")
    keys(phone, "0800", "1700", "#")  # no first date: from today
    assert screen(phone) == "Last day (yymmdd)\n0800-1700\nFrom: today\nLast day: none"
    keys(phone, "281118", "ok")
    schedule = only_schedule(phone)
    assert (schedule.type_key, schedule.recurrence, schedule.first_date,
            schedule.until_date) == (VACATION, Recurrence.YEARLY, date(2026, 11, 18),
                                     date(2028, 11, 18))
    keys(phone, "down", "ok")
    assert labels(phone)[1:4] == [
        "Every year: 18 Nov", "From: 2026-11-18", "Last day: 2028-11-18"]


def test_every_day_until_a_last_day_stops_after_it(tmp_path: Path) -> None:
    phone, _, clock = make_phone({"keys": {"soft4": "referral"}}, tmp_path)
    new_schedule(phone, "Busy", "Every day")
    keys(phone, "1300", "1400", "down", "261119", "ok")  # down skips the first date too
    schedule = only_schedule(phone)
    assert (schedule.type_key, schedule.recurrence, schedule.until_date) == (
        BUSY, Recurrence.DAILY, date(2026, 11, 19))
    keys(phone, "cancel", "cancel")
    clock.advance(3600)  # today 13:06
    assert "Busy until 14:00" in screen(phone)
    clock.advance(24 * 3600)  # the last day
    assert "Busy until 14:00" in screen(phone)
    clock.advance(24 * 3600)  # the day after: over
    assert "Busy" not in screen(phone)
    assert phone.referral.book.next_change(phone.referral.now()) is None


def test_once_on_a_date_has_no_last_day(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path)
    new_schedule(phone, "Lunch", "Once")
    keys(phone, "1130", "1230", "261224")
    assert shown(phone) == "From (yymmdd)\n1130-1230\nFrom: 2026-12-24"
    keys(phone, "9", "#", "ok")  # the date is full: nothing more to type or skip to
    schedule = only_schedule(phone)
    assert (schedule.recurrence, schedule.first_date, schedule.until_date) == (
        Recurrence.NONE, date(2026, 12, 24), None)
    assert labels(phone)[1] == "Lunch 1130-1230 24 Dec"  # a one-off shows its date
    keys(phone, "down", "ok")
    assert labels(phone)[1:] == [
        "Once", "From: 2026-12-24", "Europe/Stockholm"]


def test_mistakes_are_refused_with_a_notice_and_the_digits_stay(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path)
    new_schedule(phone, "Lunch", "Every day")
    keys(phone, "1300", "1200", "ok")
    assert shown(phone) == "Not saved\nThe end must be\nafter the start"
    keys(phone, "ok", *["cancel"] * 8)  # the notice closes; cancel deletes digit by digit
    assert shown(phone) == "Start (hhmm)\n\nFrom: today\nLast day: none"
    keys(phone, "2500", "2600", "ok")
    assert shown(phone) == "Not saved\nInvalid time"
    keys(phone, "cancel", *["cancel"] * 5)  # the notice, then back into the start time
    assert screen(phone).startswith("Start (hhmm)\n250\n")
    keys(phone, "cancel", "cancel", "cancel", "1200", "1300", "261332", "ok")
    assert shown(phone) == "Not saved\nInvalid date"
    keys(phone, "ok", *["cancel"] * 6, "261201", "261130", "ok")  # last day before the first
    assert shown(phone) == "Not saved\nThe last date is\nbefore the first"
    assert phone.referral.book.schedules == []
    keys(phone, "ok", *["cancel"] * 6, "261231", "ok")  # corrected: saved
    assert only_schedule(phone).until_date == date(2026, 12, 31)
    assert labels(phone)[1] == "Lunch 1200-1300 Every day"


def test_a_one_off_already_over_is_refused(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path)
    new_schedule(phone, "Lunch", "Once")
    keys(phone, "0900", "1000", "ok")  # today, but it is 12:06
    assert shown(phone) == "Not saved\nThat is in the past"
    assert phone.referral.book.schedules == []


def test_cancel_with_nothing_typed_goes_back_and_saves_nothing(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path)
    new_schedule(phone, "Lunch", "Every day")
    keys(phone, "12", "cancel", "cancel", "cancel")
    assert screen(phone).startswith("Future referrals\n>New...")
    assert phone.referral.book.schedules == []


def test_in_swedish(tmp_path: Path) -> None:
    phone = desk_phone(tmp_path, "sv")
    new_schedule(phone, "Gått för dagen", "Varje vecka")
    assert screen(phone) == "Vilka dagar?\n>[ ] mån\n [ ] tis\n [x] ons"
    keys(phone, "1", "2", "4", "5")  # and Monday, Tuesday, Thursday, Friday
    choose(phone, "Nästa")
    assert screen(phone).startswith("Start (ttmm)\n")
    keys(phone, "1600", "1700")
    assert screen(phone) == "Från (ååmmdd)\n1600-1700\nFrån: i dag\nSista dag: ingen"
    keys(phone, "#")
    assert screen(phone).startswith("Sista dag (ååmmdd)\n")
    keys(phone, "ok")
    assert labels(phone)[1] == "Gått för dagen 1600-1700 Vardagar"
    keys(phone, "down", "ok")
    assert labels(phone)[1:4] == [
        "Vardagar", "Från: 2026-11-18", "Sista dag: ingen"]
    keys(phone, "cancel", "cancel")
    new_schedule(phone, "Möte", "Varje månad")
    keys(phone, "0800", "0900", "261131", "ok")
    assert shown(phone) == "Ej sparat\nOgiltigt datum"


def test_the_company_types_can_be_scheduled_too(tmp_path: Path) -> None:
    phone, _, _ = make_phone({"keys": {"soft4": "referral"}, "referral_types": [
        {"key": "course", "name_sv": "Kurs", "name_en": "Course", "minutes": 90}]}, tmp_path)
    new_schedule(phone, "Course", "Every day")
    keys(phone, "0800", "1600", "ok")
    assert only_schedule(phone).type_key == "course"
    assert labels(phone)[1] == "Course 0800-1600 Every day"
