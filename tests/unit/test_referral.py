"""Referrals (firmware/referral/): shortcuts, schedules across DST, the book's precedence and
next change, texts, persistence and PIDF. Time is driven by explicit datetimes or ManualClock.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware.clock import ManualClock
from firmware.referral import (
    AVAILABLE,
    BUILTIN_TYPES,
    BUSY,
    GONE,
    LUNCH,
    MEETING,
    SICK,
    VACATION,
    Recurrence,
    Referral,
    ReferralBook,
    ReferralError,
    ReferralStore,
    ReferralType,
    ReferralWatch,
    ScheduledReferral,
    announcement,
    available,
    busy,
    describe,
    from_pidf,
    gone_for_today,
    lunch,
    make_referral,
    meeting,
    published_note,
    referral_types,
    to_pidf,
)

STO = ZoneInfo("Europe/Stockholm")
LON = ZoneInfo("Europe/London")
HEL = ZoneInfo("Europe/Helsinki")
COURSE = ReferralType("course", "Kurs", "Course", False, 480)
TYPES = referral_types([COURSE])


def sto(*args: int) -> datetime:
    return datetime(*args, tzinfo=STO)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def weekdays_lunch(**kw: object) -> ScheduledReferral:
    fields = {"type_key": LUNCH, "first_date": date(2026, 1, 5), "start": time(12, 0),
              "end": time(13, 0), "recurrence": Recurrence.WEEKLY,
              "weekdays": frozenset(range(5)), "tz": "Europe/Stockholm"} | kw
    return ScheduledReferral(**fields)  # type: ignore[arg-type]


# -- shortcuts ------------------------------------------------------------------------------
def test_lunch_lasts_60_minutes_by_default() -> None:
    now = sto(2026, 3, 2, 12, 0)
    referral = lunch(now)
    assert (referral.type_key, referral.until, referral.set_at) == (LUNCH, sto(2026, 3, 2, 13),
                                                                    now)
    assert describe(referral, "sv", now) == "Lunch till 13:00"
    assert describe(referral, "en", now) == "Lunch until 13:00"


def test_lunch_with_a_fixed_end_uses_it_while_it_is_ahead() -> None:
    assert lunch(sto(2026, 3, 2, 11, 40), ends_at=time(13)).until == sto(2026, 3, 2, 13)
    late = sto(2026, 3, 2, 13, 10)
    assert lunch(late, ends_at=time(13)).until == late + timedelta(minutes=60)
    assert lunch(late, minutes=30).until == late + timedelta(minutes=30)


def test_busy_is_shown_as_minutes_left() -> None:
    now = sto(2026, 3, 2, 12, 0)
    referral = busy(now, 120)
    assert referral.until == sto(2026, 3, 2, 14) and referral.duration_min == 120
    assert describe(referral, "sv", now) == "Upptagen 120 min"
    later = now + timedelta(minutes=33, seconds=10)
    assert describe(referral, "sv", later) == "Upptagen 87 min"
    assert describe(referral, "en", later) == "Busy 87 min"
    assert describe(referral, "sv", later, minutes_left=False) == "Upptagen till 14:00"


def test_meeting_until_a_datetime_a_time_of_day_or_minutes() -> None:
    now = sto(2026, 3, 2, 9, 0)
    assert meeting(now, sto(2026, 3, 3, 15, 30)).until == sto(2026, 3, 3, 15, 30)
    assert meeting(now, time(15, 30)).until == sto(2026, 3, 2, 15, 30)
    by_minutes = meeting(now, 45)
    assert by_minutes.until == sto(2026, 3, 2, 9, 45)
    assert describe(by_minutes, "sv", now) == "Möte 45 min"
    with pytest.raises(ReferralError) as err:
        meeting(now, time(8, 0))
    assert err.value.code == "end_before_start"


def test_gone_for_today_ends_next_working_morning() -> None:
    friday = sto(2026, 3, 6, 17, 5)
    assert gone_for_today(friday).until == sto(2026, 3, 9, 7, 0)  # Monday
    assert gone_for_today(sto(2026, 3, 3, 16, 0)).until == sto(2026, 3, 4, 7, 0)
    assert gone_for_today(sto(2026, 3, 3, 1, 0)).until == sto(2026, 3, 3, 7, 0)
    saturday = sto(2026, 3, 7, 10, 0)
    assert gone_for_today(saturday).until == sto(2026, 3, 9, 7, 0)
    ascension = date(2026, 5, 14)
    assert gone_for_today(sto(2026, 5, 13, 17), holidays={ascension}).until == \
        sto(2026, 5, 15, 7)
    assert gone_for_today(friday, morning=time(8, 30)).until == sto(2026, 3, 9, 8, 30)
    assert describe(gone_for_today(friday), "sv", friday) == "Gått för dagen"
    assert describe(gone_for_today(friday), "en", friday) == "Gone for the day"


def test_make_referral_uses_the_type_default_duration() -> None:
    now = sto(2026, 3, 2, 8, 0)
    course = make_referral(now, "course", types=TYPES)
    assert course.until == sto(2026, 3, 2, 16, 0) and course.duration_min is None
    vacation = make_referral(now, VACATION)
    assert vacation.until is None
    assert describe(vacation, "sv", now) == "Semester"


# -- the manual referral and the book ---------------------------------------------------------
def test_manual_referral_expires_to_available() -> None:
    book = ReferralBook()
    book.set(lunch(sto(2026, 3, 2, 12, 0)))
    referral, end = book.current(sto(2026, 3, 2, 12, 59))
    assert referral.type_key == LUNCH and end == sto(2026, 3, 2, 13)
    assert not book.is_available(sto(2026, 3, 2, 12, 59))
    assert book.next_change(sto(2026, 3, 2, 12, 59)) == utc(2026, 3, 2, 12)
    referral, end = book.current(sto(2026, 3, 2, 13, 0))
    assert (referral.type_key, end) == (AVAILABLE, None)
    assert book.is_available(sto(2026, 3, 2, 13, 0))
    assert book.next_change(sto(2026, 3, 2, 13, 0)) is None
    assert book.expire(sto(2026, 3, 2, 13, 0)) and book.manual is None
    assert not book.expire(sto(2026, 3, 2, 13, 0))


def test_watch_keeps_one_timer_and_reports_changes_on_manual_clock() -> None:
    clock = ManualClock(wall_start=utc(2026, 3, 2, 11, 0).timestamp())  # 12:00 in Stockholm
    book = ReferralBook(schedules=[weekdays_lunch(start=time(14), end=time(14, 30))])
    book.set(lunch(clock.wall_time(STO)))
    seen: list[tuple[str, datetime | None]] = []
    watch = ReferralWatch(book, clock, lambda r, end: seen.append((r.type_key, end)))
    watch.start()
    assert seen == [(LUNCH, sto(2026, 3, 2, 13))] and clock.pending() == 1
    clock.advance(3599)
    assert len(seen) == 1
    clock.advance(1)
    assert seen[-1] == (AVAILABLE, None) and book.manual is None and clock.pending() == 1
    clock.advance(3600)
    assert seen[-1] == (LUNCH, sto(2026, 3, 2, 14, 30))
    clock.advance(1800)
    assert seen[-1] == (AVAILABLE, None)
    book.set(busy(clock.wall_time(STO), 10))
    watch.rearm()
    assert seen[-1][0] == BUSY and clock.pending() == 1
    watch.stop()
    assert clock.pending() == 0


def test_watch_waits_at_most_max_wait() -> None:
    clock = ManualClock(wall_start=utc(2026, 3, 2, 11, 0).timestamp())
    book = ReferralBook()
    book.set(gone_for_today(clock.wall_time(STO)))
    seen: list[str] = []
    watch = ReferralWatch(book, clock, lambda r, _: seen.append(r.type_key), max_wait_s=600)
    watch.start()
    assert watch.timer is not None and watch.timer.remaining() == 600
    clock.advance(600)
    assert seen == [GONE] and clock.pending() == 1


def test_manual_referral_wins_over_a_schedule_until_its_end() -> None:
    book = ReferralBook(schedules=[weekdays_lunch()])
    book.set(meeting(sto(2026, 3, 2, 11, 0), time(12, 30)))
    assert book.current(sto(2026, 3, 2, 12, 10))[0].type_key == MEETING
    assert book.next_change(sto(2026, 3, 2, 12, 10)) == utc(2026, 3, 2, 11, 30)
    referral, end = book.current(sto(2026, 3, 2, 12, 30))
    assert referral.type_key == LUNCH and end == sto(2026, 3, 2, 13)
    assert book.next_change(sto(2026, 3, 2, 12, 30)) == utc(2026, 3, 2, 12)


def test_set_available_skips_only_the_running_occurrence() -> None:
    book = ReferralBook(schedules=[weekdays_lunch()])
    book.set_available(sto(2026, 3, 2, 12, 20))
    assert book.current(sto(2026, 3, 2, 12, 30))[0].type_key == AVAILABLE
    assert book.current(sto(2026, 3, 3, 12, 30))[0].type_key == LUNCH
    book.set_available(sto(2026, 3, 3, 14, 0))
    assert book.manual is None


def test_overlapping_schedules_latest_start_wins() -> None:
    book = ReferralBook(schedules=[
        ScheduledReferral(VACATION, date(2026, 7, 6), time(0, 0), duration_min=21 * 24 * 60),
        ScheduledReferral(MEETING, date(2026, 7, 8), time(10, 0), time(11, 0)),
    ])
    assert book.current(sto(2026, 7, 8, 10, 30))[0].type_key == MEETING
    referral, end = book.current(sto(2026, 7, 8, 11, 0))
    assert referral.type_key == VACATION and end == sto(2026, 7, 27, 0, 0)
    assert book.next_change(sto(2026, 7, 8, 11, 0)) == sto(2026, 7, 27)


# -- schedules ------------------------------------------------------------------------------
def test_one_off_schedule() -> None:
    book = ReferralBook(schedules=[ScheduledReferral(MEETING, date(2026, 3, 4), time(9),
                                                     time(10, 30), note="Styrelse")])
    assert book.next_change(sto(2026, 3, 2, 8)) == sto(2026, 3, 4, 9)
    referral, _ = book.current(sto(2026, 3, 4, 9, 0))
    assert (referral.type_key, referral.note, referral.set_at) == (MEETING, "Styrelse",
                                                                    sto(2026, 3, 4, 9))
    assert book.next_change(sto(2026, 3, 4, 9, 0)) == sto(2026, 3, 4, 10, 30)
    assert book.current(sto(2026, 3, 4, 10, 30))[0].type_key == AVAILABLE
    assert book.next_change(sto(2026, 3, 4, 10, 30)) is None


def test_daily_schedule_stops_after_until_date() -> None:
    schedule = ScheduledReferral(BUSY, date(2026, 3, 2), time(8), duration_min=30,
                                 recurrence=Recurrence.DAILY, until_date=date(2026, 3, 4))
    book = ReferralBook(schedules=[schedule])
    assert [d.day for d in schedule.dates_from(date(2026, 3, 1))] == [2, 3, 4]
    assert book.current(sto(2026, 3, 4, 8, 15))[0].type_key == BUSY
    assert book.current(sto(2026, 3, 5, 8, 15))[0].type_key == AVAILABLE
    assert book.next_change(sto(2026, 3, 4, 8, 15)) == sto(2026, 3, 4, 8, 30)
    assert book.next_change(sto(2026, 3, 4, 8, 30)) is None


def test_weekly_schedule_skips_weekends() -> None:
    book = ReferralBook(schedules=[weekdays_lunch()])
    assert book.current(sto(2026, 3, 6, 12, 30))[0].type_key == LUNCH  # Friday
    assert book.current(sto(2026, 3, 7, 12, 30))[0].type_key == AVAILABLE  # Saturday
    assert book.next_change(sto(2026, 3, 6, 13, 0)) == sto(2026, 3, 9, 12, 0)
    tue_thu = weekdays_lunch(weekdays=frozenset({1, 3}))
    assert [d.isoformat() for d in tue_thu.dates_from(date(2026, 3, 2))][:3] == [
        "2026-03-03", "2026-03-05", "2026-03-10"]


def test_next_change_walks_through_a_day() -> None:
    book = ReferralBook(schedules=[
        weekdays_lunch(),
        ScheduledReferral(MEETING, date(2026, 3, 2), time(9), time(10),
                          recurrence=Recurrence.WEEKLY, weekdays=frozenset({0})),
    ])
    moment, seen = sto(2026, 3, 2, 0, 0), []
    while (change := book.next_change(moment)) is not None and change < sto(2026, 3, 3):
        moment = change
        seen.append((f"{moment.astimezone(STO):%H:%M}", book.current(moment)[0].type_key))
    assert seen == [("09:00", MEETING), ("10:00", AVAILABLE), ("12:00", LUNCH),
                    ("13:00", AVAILABLE)]


def test_monthly_on_the_31st_falls_on_the_last_day_of_short_months() -> None:
    schedule = ScheduledReferral(MEETING, date(2026, 1, 31), time(15), time(16),
                                 recurrence=Recurrence.MONTHLY, until_date=date(2026, 6, 30))
    assert [d.isoformat() for d in schedule.dates_from(date(2026, 1, 1))] == [
        "2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30"]
    leap = ScheduledReferral(MEETING, date(2028, 1, 30), time(15), time(16),
                             recurrence=Recurrence.MONTHLY)
    assert next(leap.dates_from(date(2028, 2, 1))) == date(2028, 2, 29)
    book = ReferralBook(schedules=[schedule])
    assert book.current(sto(2026, 4, 30, 15, 30))[0].type_key == MEETING
    assert book.next_change(sto(2026, 6, 30, 16)) is None


def test_yearly_schedule_with_until_date_and_29_february() -> None:
    vacation = ScheduledReferral(VACATION, date(2026, 7, 6), time(0), duration_min=28 * 24 * 60,
                                 recurrence=Recurrence.YEARLY, until_date=date(2027, 12, 31))
    book = ReferralBook(schedules=[vacation])
    assert book.current(sto(2027, 7, 20, 12))[0].type_key == VACATION
    assert book.next_change(sto(2026, 8, 10)) == sto(2027, 7, 6)
    assert book.next_change(sto(2027, 8, 3)) is None
    leap = ScheduledReferral(SICK, date(2028, 2, 29), time(8), time(9),
                             recurrence=Recurrence.YEARLY)
    assert [d.isoformat() for d in leap.dates_from(date(2028, 1, 1))][:3] == [
        "2028-02-29", "2029-02-28", "2030-02-28"]


# -- daylight saving time (Europe/Stockholm: 2026-03-29 02:00 -> 03:00, 10-25 03:00 -> 02:00) --
def test_noon_schedule_stays_at_noon_local_across_dst() -> None:
    daily = ScheduledReferral(LUNCH, date(2026, 1, 1), time(12), time(13),
                              recurrence=Recurrence.DAILY)
    assert daily.span(date(2026, 3, 28)) == (utc(2026, 3, 28, 11), utc(2026, 3, 28, 12))
    assert daily.span(date(2026, 3, 29)) == (utc(2026, 3, 29, 10), utc(2026, 3, 29, 11))
    assert daily.span(date(2026, 10, 24)) == (utc(2026, 10, 24, 10), utc(2026, 10, 24, 11))
    assert daily.span(date(2026, 10, 25)) == (utc(2026, 10, 25, 11), utc(2026, 10, 25, 12))
    book = ReferralBook(schedules=[daily])
    assert book.next_change(sto(2026, 3, 29, 0)) == sto(2026, 3, 29, 12)
    assert book.next_change(sto(2026, 10, 25, 0)) == sto(2026, 10, 25, 12)


def test_0230_on_spring_forward_moves_forward_by_the_gap() -> None:
    daily = ScheduledReferral(BUSY, date(2026, 3, 1), time(2, 30), duration_min=30,
                              recurrence=Recurrence.DAILY)
    start, end = daily.span(date(2026, 3, 29)) or (None, None)
    assert start == utc(2026, 3, 29, 1, 30) and start.astimezone(STO).hour == 3
    assert end == utc(2026, 3, 29, 2, 0)
    book = ReferralBook(schedules=[daily])
    assert book.next_change(sto(2026, 3, 29, 0)) == start
    assert book.current(utc(2026, 3, 29, 1, 45))[0].type_key == BUSY
    assert daily.span(date(2026, 3, 30)) == (utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1))


def test_an_occurrence_inside_the_spring_forward_gap_is_skipped() -> None:
    daily = ScheduledReferral(BUSY, date(2026, 3, 1), time(2, 30), time(3, 0),
                              recurrence=Recurrence.DAILY)
    assert daily.span(date(2026, 3, 29)) is None
    book = ReferralBook(schedules=[daily])
    assert book.next_change(sto(2026, 3, 29, 0)) == sto(2026, 3, 30, 2, 30)
    stretched = ScheduledReferral(BUSY, date(2026, 3, 1), time(2, 30), time(4, 0))
    assert stretched.span(date(2026, 3, 29)) == (utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2))


def test_0230_on_fall_back_is_the_first_0230_only() -> None:
    daily = ScheduledReferral(BUSY, date(2026, 10, 1), time(2, 30), duration_min=20,
                              recurrence=Recurrence.DAILY)
    assert daily.span(date(2026, 10, 25)) == (utc(2026, 10, 25, 0, 30),
                                              utc(2026, 10, 25, 0, 50))
    book = ReferralBook(schedules=[daily])
    assert book.current(utc(2026, 10, 25, 0, 40))[0].type_key == BUSY
    second_0240 = utc(2026, 10, 25, 1, 40)
    assert second_0240.astimezone(STO).strftime("%H:%M") == "02:40"
    assert book.current(second_0240)[0].type_key == AVAILABLE
    assert book.next_change(utc(2026, 10, 25, 0, 50)) == sto(2026, 10, 26, 2, 30)
    with_end = ScheduledReferral(BUSY, date(2026, 10, 25), time(2, 30), time(3, 0))
    assert with_end.span(date(2026, 10, 25)) == (utc(2026, 10, 25, 0, 30),
                                                 utc(2026, 10, 25, 2, 0))


def test_phone_time_zone_change_keeps_schedule_and_moves_shown_times() -> None:
    book = ReferralBook(schedules=[weekdays_lunch()])
    in_london = datetime(2026, 3, 2, 11, 30, tzinfo=LON)  # 12:30 in Stockholm
    referral, end = book.current(in_london)
    assert referral.type_key == LUNCH and end == sto(2026, 3, 2, 13)
    assert describe(referral, "sv", in_london) == "Lunch till 12:00"
    assert describe(referral, "sv", in_london.astimezone(STO)) == "Lunch till 13:00"
    assert book.next_change(datetime(2026, 3, 2, 10, 0, tzinfo=LON)) == sto(2026, 3, 2, 12)
    manual = lunch(sto(2026, 3, 3, 12, 0))
    assert describe(manual, "en", datetime(2026, 3, 3, 13, 5, tzinfo=HEL)) == \
        "Lunch until 14:00"


# -- texts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "sv", "en"), [
    (MEETING, "Möte till 15:30", "Meeting until 15:30"),
    (LUNCH, "Lunch till 15:30", "Lunch until 15:30"),
    (BUSY, "Upptagen till 15:30", "Busy until 15:30"),
    (GONE, "Gått för dagen", "Gone for the day"),
    (VACATION, "Semester till 15:30", "Vacation until 15:30"),
    (SICK, "Sjuk till 15:30", "Sick until 15:30"),
    (AVAILABLE, "Tillgänglig", "Available"),
    ("course", "Kurs till 15:30", "Course until 15:30"),
])
def test_describe_every_type(key: str, sv: str, en: str) -> None:
    now = sto(2026, 3, 2, 9, 0)
    referral = make_referral(now, key, until=time(15, 30), types=TYPES)
    assert describe(referral, "sv", now, types=TYPES) == sv
    assert describe(referral, "en", now, types=TYPES) == en


def test_describe_shows_weekday_or_date_when_the_end_is_another_day() -> None:
    now = sto(2026, 3, 2, 9, 0)  # Monday
    assert describe(meeting(now, sto(2026, 3, 3, 15, 30)), "sv", now) == "Möte till tis 15:30"
    assert describe(meeting(now, sto(2026, 3, 3, 15, 30)), "en", now) == \
        "Meeting until Tue 15:30"
    vacation = make_referral(now, VACATION, until=sto(2026, 8, 3, 7, 0))
    assert describe(vacation, "sv", now) == "Semester till 3 aug 07:00"
    assert describe(vacation, "en", now) == "Vacation until 3 Aug 07:00"
    sick = make_referral(sto(2026, 12, 20), SICK, until=sto(2027, 1, 8, 7))
    assert describe(sick, "sv", sto(2026, 12, 20)) == "Sjuk till 8 jan 2027 07:00"


def test_describe_leaves_out_the_note_and_expired_is_available() -> None:
    now = sto(2026, 3, 2, 12, 0)
    referral = lunch(now, note="Hämtar barn")
    assert describe(referral, "sv", now) == "Lunch till 13:00"
    assert describe(referral, "sv", sto(2026, 3, 2, 13, 0)) == "Tillgänglig"


def test_the_published_note_has_the_end_time_and_the_notes() -> None:
    now = sto(2026, 3, 2, 12, 0)
    assert published_note(lunch(now), "en", now, note="Hämtar barn") == \
        "Lunch until 13:00 – Hämtar barn"
    assert published_note(lunch(now), "sv", now) == "Lunch till 13:00"
    later = sto(2026, 3, 2, 12, 33)  # minutes were given: colleagues still get the end time
    assert published_note(busy(now, 120), "sv", later, note=" Rum 4 ") == \
        "Upptagen till 14:00 – Rum 4"
    own = meeting(now, 30, note="Kund")  # the referral's own note, then the profile note
    assert published_note(own, "sv", now, note="Rum 4") == "Möte till 12:30 – Kund – Rum 4"
    ended = sto(2026, 3, 2, 12, 30)  # its note ends with it; the profile note stays
    assert published_note(own, "sv", ended, note="Rum 4") == "Tillgänglig – Rum 4"
    assert published_note(available(now), "en", now) == "Available"


@pytest.mark.parametrize(("key", "sv", "en"), [
    (LUNCH, "Anna Berg är på lunch till 13:00", "Anna Berg is at lunch until 13:00"),
    (MEETING, "Anna Berg är på möte till 13:00", "Anna Berg is in a meeting until 13:00"),
    (BUSY, "Anna Berg är upptagen till 13:00", "Anna Berg is busy until 13:00"),
    (GONE, "Anna Berg har gått för dagen", "Anna Berg has gone for the day"),
    (VACATION, "Anna Berg har semester till 13:00", "Anna Berg is on vacation until 13:00"),
    (SICK, "Anna Berg är sjuk till 13:00", "Anna Berg is off sick until 13:00"),
    (AVAILABLE, "Anna Berg är tillgänglig", "Anna Berg is available"),
    ("course", "Anna Berg: Kurs till 13:00", "Anna Berg: Course until 13:00"),
])
def test_announcement_sentences(key: str, sv: str, en: str) -> None:
    referral = make_referral(sto(2026, 3, 2, 12), key, until=time(13), types=TYPES)
    assert announcement("Anna Berg", referral, "sv", types=TYPES) == sv
    assert announcement("Anna Berg", referral, "en", types=TYPES) == en


def test_announcement_tells_end_time_weekday_and_expiry() -> None:
    now = sto(2026, 3, 2, 12, 0)
    assert announcement("Anna Berg", busy(now, 120), "sv") == "Anna Berg är upptagen till 14:00"
    tomorrow = meeting(now, sto(2026, 3, 3, 9, 0))
    assert announcement("Anna Berg", tomorrow, "sv", now_local=now) == \
        "Anna Berg är på möte till tis 09:00"
    assert announcement("Anna Berg", lunch(now), "en", now_local=sto(2026, 3, 2, 14)) == \
        "Anna Berg is available"


# -- persistence -------------------------------------------------------------------------------
def full_book() -> ReferralBook:
    book = ReferralBook(TYPES)
    book.set(busy(sto(2026, 3, 2, 12, 0), 120))
    book.add_schedule(weekdays_lunch(note="Lunch"))
    book.add_schedule(ScheduledReferral("course", date(2026, 4, 1), time(8), duration_min=480,
                                        recurrence=Recurrence.MONTHLY, tz="Europe/Helsinki",
                                        until_date=date(2026, 12, 31)))
    book.add_schedule(ScheduledReferral(VACATION, date(2026, 7, 6), time(0),
                                        duration_min=20160, recurrence=Recurrence.YEARLY))
    book.add_schedule(ScheduledReferral(MEETING, date(2026, 3, 4), time(9), time(10)))
    return book


def test_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "referrals.json"
    store = ReferralStore(path, TYPES)
    book = full_book()
    assert [s.id for s in book.schedules] == ["s1", "s2", "s3", "s4"]
    assert store.save(book)
    assert json.loads(path.read_text())["format"] == 1
    loaded = store.load()
    assert loaded.manual == book.manual
    assert loaded.schedules == book.schedules
    assert describe(loaded.manual, "sv", sto(2026, 3, 2, 13)) == "Upptagen 60 min"  # type: ignore[arg-type]
    assert sorted(p.name for p in path.parent.iterdir()) == ["referrals.json"]
    assert ReferralStore(tmp_path / "missing.json").load().schedules == []


@pytest.mark.parametrize("content", [
    b"{not json", b"\xff\xfe", b"[]", b'{"format": 1, "schedules": {}}',
    b'{"format": 1, "manual": {"type": "lunch", "until": "2026-03-02T11:00:00+01:00",'
    b' "set_at": "2026-03-02T12:00:00+01:00", "note": ""}, "schedules": []}',
    b'{"format": 1, "manual": null, "schedules": [{"type": "lunch", "first_date": "2026-01-05",'
    b' "start": "12:00", "end": "13:00", "recurrence": "weekly", "weekdays": []}]}',
])
def test_corrupt_file_starts_available_and_is_moved_aside(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "referrals.json"
    path.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="luren.referral"):
        book = ReferralStore(path).load()
    assert book.manual is None and book.schedules == []
    assert book.current(sto(2026, 3, 2, 12))[0].type_key == AVAILABLE
    assert "corrupt" in caplog.text
    assert not path.exists()
    assert (tmp_path / "referrals.json.corrupt").read_bytes() == content


def test_second_corrupt_file_does_not_overwrite_the_first(tmp_path: Path) -> None:
    path = tmp_path / "referrals.json"
    for content in (b"one", b"two"):
        path.write_bytes(content)
        ReferralStore(path).load()
    assert (tmp_path / "referrals.json.corrupt").read_bytes() == b"one"
    assert (tmp_path / "referrals.json.corrupt.1").read_bytes() == b"two"


def test_entry_of_a_removed_custom_type_is_dropped_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "referrals.json"
    ReferralStore(path, TYPES).save(full_book())
    with caplog.at_level(logging.WARNING, logger="luren.referral"):
        book = ReferralStore(path).load()  # built-in types only: "course" is gone
    assert [s.id for s in book.schedules] == ["s1", "s3", "s4"]
    assert book.manual is not None and "course" in caplog.text
    assert path.exists()


def test_unreadable_store_does_not_crash(tmp_path: Path) -> None:
    (tmp_path / "referrals.json").mkdir()
    assert ReferralStore(tmp_path / "referrals.json").load().manual is None
    assert not ReferralStore(tmp_path / "referrals.json").save(ReferralBook())


# -- PIDF ----------------------------------------------------------------------------------
NS = {"p": "urn:ietf:params:xml:ns:pidf", "rpid": "urn:ietf:params:xml:ns:pidf:rpid",
      "dm": "urn:ietf:params:xml:ns:pidf:data-model"}


def test_pidf_round_trip_lunch() -> None:
    now = sto(2026, 3, 2, 12, 0)
    document = to_pidf("sip:anna@example.se", lunch(now, note="Kund & <möte>"), now)
    root = ET.fromstring(document)
    assert root.get("entity") == "sip:anna@example.se"
    assert root.findtext("p:tuple/p:status/p:basic", namespaces=NS) == "closed"
    activities = root.find("dm:person/rpid:activities", NS)
    assert activities is not None and activities.find("rpid:meal", NS) is not None
    assert activities.get("until") == "2026-03-02T12:00:00Z"
    assert from_pidf(document) == (False, "Lunch till 13:00 – Kund & <möte>",
                                   utc(2026, 3, 2, 12))
    assert from_pidf(document, "en")[1] == "Lunch until 13:00 – Kund & <möte>"  # type: ignore[index]
    with_profile = to_pidf("sip:anna@example.se", lunch(now), now, note="Hämtar barn")
    assert from_pidf(with_profile, "en")[1] == "Lunch until 13:00 – Hämtar barn"  # type: ignore[index]


@pytest.mark.parametrize(("referral", "activity"), [
    (meeting(sto(2026, 3, 2, 9), 30), "meeting"), (busy(sto(2026, 3, 2, 9), 120), "busy"),
    (gone_for_today(sto(2026, 3, 2, 9)), "away"),
    (make_referral(sto(2026, 3, 2, 9), VACATION), "vacation"),
    (make_referral(sto(2026, 3, 2, 9), SICK), "away"),
])
def test_pidf_activities(referral: Referral, activity: str) -> None:
    root = ET.fromstring(to_pidf("sip:anna@example.se", referral, sto(2026, 3, 2, 9)))
    assert root.find(f"dm:person/rpid:activities/rpid:{activity}", NS) is not None


def test_pidf_busy_publishes_end_time_not_minutes_and_available_is_open() -> None:
    now = sto(2026, 3, 2, 12, 0)
    assert from_pidf(to_pidf("sip:a@x", busy(now, 120), now)) == (
        False, "Upptagen till 14:00", utc(2026, 3, 2, 13))
    assert from_pidf(to_pidf("sip:a@x", available(now), now)) == (True, "Tillgänglig", None)
    expired = to_pidf("sip:a@x", lunch(now), sto(2026, 3, 2, 13, 0))
    assert from_pidf(expired) == (True, "Tillgänglig", None)
    custom = to_pidf("sip:a@x", make_referral(now, "course", types=TYPES), now, types=TYPES)
    assert ET.fromstring(custom).findtext("dm:person/rpid:activities/rpid:other",
                                          namespaces=NS) == "Kurs"


ASTERISK = """<?xml version="1.0" encoding="UTF-8"?>
<presence entity="sip:1000@10.0.0.1" xmlns="urn:ietf:params:xml:ns:pidf"
 xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid">
 <note>On the phone</note>
 <tuple id="1000"><status><basic>open</basic></status>
  <contact priority="1">sip:1000@10.0.0.1</contact></tuple>
 <dm:person><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>
</presence>"""

PREFIXED = """<pr:presence xmlns:pr="urn:ietf:params:xml:ns:pidf"
 xmlns:rp="urn:ietf:params:xml:ns:pidf:rpid" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:c="urn:ietf:params:xml:ns:pidf:cipid" entity="sip:bob@example.com">
 <pr:tuple id="a"><pr:status><pr:basic> CLOSED </pr:basic></pr:status>
  <c:display-name>Bob</c:display-name></pr:tuple>
 <dm:person id="p"><rp:activities until="2026-07-01T08:00:00+02:00"><rp:vacation/>
 </rp:activities><dm:note xml:lang="en">Away</dm:note><dm:note xml:lang="sv">Semester</dm:note>
 </dm:person></pr:presence>"""


def test_from_pidf_reads_foreign_documents() -> None:
    assert from_pidf(ASTERISK) == (True, "On the phone", None)
    assert from_pidf(PREFIXED) == (False, "Semester", datetime(2026, 7, 1, 6, tzinfo=UTC))
    assert from_pidf(PREFIXED, "en")[1] == "Away"  # type: ignore[index]
    no_basic = ('<presence xmlns="urn:ietf:params:xml:ns:pidf"><person><activities '
                'until="2026-07-01T08:00:00"><busy/></activities></person></presence>')
    assert from_pidf(no_basic) == (False, "", utc(2026, 7, 1, 8))
    latin1 = ('<?xml version="1.0" encoding="ISO-8859-1"?><presence><tuple><status><basic>'
              'closed</basic></status></tuple><note>Möte</note></presence>').encode("latin-1")
    assert from_pidf(latin1) == (False, "Möte", None)
    bad_until = '<presence><tuple/><activities until="soon"/></presence>'
    assert from_pidf(bad_until) == (True, "", None)


@pytest.mark.parametrize("document", [
    "", "<presence", "not xml at all", "<other/>", b"\xff\xfe\x00", None, 42,
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><presence>&lol;</presence>',
    "<presence>" + "<x>" * 100_000,
])
def test_from_pidf_gives_none_for_garbage(document: object) -> None:
    assert from_pidf(document) is None  # type: ignore[arg-type]


# -- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "code"), [
    (lambda: weekdays_lunch(end=time(11, 0)), "end_before_start"),
    (lambda: weekdays_lunch(end=time(12, 0)), "end_before_start"),
    (lambda: Referral(LUNCH, sto(2026, 3, 2, 11), "", sto(2026, 3, 2, 12)), "end_before_start"),
    (lambda: weekdays_lunch(weekdays=frozenset()), "no_weekdays"),
    (lambda: weekdays_lunch(weekdays=frozenset({7})), "bad_weekday"),
    (lambda: weekdays_lunch(tz="Europe/Stockhlom"), "bad_time_zone"),
    (lambda: weekdays_lunch(tz="../../etc/passwd"), "bad_time_zone"),
    (lambda: weekdays_lunch(duration_min=30), "end_and_duration"),
    (lambda: weekdays_lunch(end=None), "no_end"),
    (lambda: weekdays_lunch(end=None, duration_min=0), "bad_duration"),
    (lambda: weekdays_lunch(recurrence="fortnightly"), "bad_recurrence"),
    (lambda: weekdays_lunch(until_date=date(2025, 1, 1)), "until_before_first"),
    (lambda: make_referral(sto(2026, 3, 2), "pizza"), "unknown_type"),
    (lambda: ReferralBook().add_schedule(weekdays_lunch(type_key="pizza")), "unknown_type"),
    (lambda: ReferralBook().set(Referral("course", None, "", sto(2026, 3, 2))), "unknown_type"),
    (lambda: busy(datetime(2026, 3, 2, 12), 30), "naive_time"),
    (lambda: busy(sto(2026, 3, 2, 12), -5), "bad_duration"),
    (lambda: lunch(sto(2026, 3, 2, 12), note="x" * 201), "note_too_long"),
    (lambda: referral_types([ReferralType("lunch", "L", "L", False)]), "duplicate"),
    (lambda: referral_types([ReferralType("Bad Key", "B", "B", False)]), "bad_type"),
    (lambda: ReferralBook().current(datetime(2026, 3, 2, 12)), "naive_time"),
])
def test_validation_errors(make: object, code: str) -> None:
    with pytest.raises(ReferralError) as err:
        make()  # type: ignore[operator]
    assert err.value.code == code


def test_validation_errors_have_clear_texts() -> None:
    with pytest.raises(ReferralError) as err:
        weekdays_lunch(tz="Mars/Olympus")
    assert str(err.value) == "Unknown time zone: Mars/Olympus"
    assert err.value.text("sv") == "Okänd tidszon: Mars/Olympus"
    with pytest.raises(ReferralError, match="The end must be after the start"):
        weekdays_lunch(end=time(11))
    assert BUILTIN_TYPES[AVAILABLE].available
    assert not any(t.available for k, t in BUILTIN_TYPES.items() if k != AVAILABLE)


def test_upcoming_lists_and_schedules_are_removed_by_id() -> None:
    book = ReferralBook(schedules=[weekdays_lunch(),
                                   ScheduledReferral(MEETING, date(2026, 3, 3), time(9), time(10))])
    coming = book.upcoming(sto(2026, 3, 2, 12, 30), limit=3)
    assert [(s.id, f"{start.astimezone(STO):%d %H:%M}") for s, start, _ in coming] == [
        ("s1", "02 12:00"), ("s2", "03 09:00"), ("s1", "03 12:00")]
    with pytest.raises(ReferralError) as err:
        book.add_schedule(weekdays_lunch(id="s2"))
    assert err.value.code == "duplicate"
    assert book.remove_schedule("s1") and not book.remove_schedule("s1")
    assert book.add_schedule(weekdays_lunch()).id == "s3"
