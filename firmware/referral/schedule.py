"""Future and recurring referrals ("Framtida hänvisning") and when they occur.

A `ScheduledReferral` is defined on the wall clock of its own IANA zone (`tz`), not the
phone's: "every weekday 12:00-13:00 Europe/Stockholm" starts at 12:00 Stockholm time in winter
and in summer, and keeps doing so when the phone is moved to another zone (only the times the
phone shows change). Rules:

- Dates: an occurrence starts on `first_date` and, by `recurrence`, on every later day
  (`daily`), on every day whose weekday is in `weekdays` (`weekly`, 0 = Monday; `first_date`
  need not be one of them), on the day of month of `first_date` (`monthly`; in months without
  that day, the last day of the month: the 31st becomes 30 April and 28/29 February), or on the
  same day and month every year (`yearly`; 29 February becomes 28 February in other years).
  `until_date` is the last date on which an occurrence may start (inclusive).
- Start: `start` on that date in `tz`. A time that does not exist (the spring-forward gap, e.g.
  02:30 on 2026-03-29 in Stockholm) moves forward by the length of the gap (to 03:30); a time
  that happens twice (fall-back, 02:30 on 2026-10-25) means the first of the two (fold=0).
- End: either `end`, a time of day on the same date after `start` (resolved by the same rule;
  an occurrence lying wholly inside a spring-forward gap has no length and is skipped that
  day), or `duration_min`, real elapsed minutes from the start (may pass midnight).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from firmware.referral.kinds import NOTE_MAX, ReferralError, aware, check_minutes

MAX_DATES = 5000  # dates one scan looks at: a bound against a schedule that never occurs


class Recurrence(StrEnum):
    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    YEARLY = "yearly"


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or `ReferralError("bad_time_zone")`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ReferralError("bad_time_zone", name) from None


@dataclass(frozen=True)
class ScheduledReferral:
    """A referral that starts at `start` local time on its dates (see the module rules)."""

    type_key: str
    first_date: date
    start: time
    end: time | None = None
    duration_min: int | None = None
    recurrence: Recurrence = Recurrence.NONE
    weekdays: frozenset[int] = field(default_factory=frozenset)
    tz: str = "Europe/Stockholm"
    until_date: date | None = None
    note: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "recurrence", Recurrence(self.recurrence))
        except ValueError:
            raise ReferralError("bad_recurrence", self.recurrence) from None
        zone(self.tz)
        if len(self.note) > NOTE_MAX:
            raise ReferralError("note_too_long")
        object.__setattr__(self, "start", self.start.replace(tzinfo=None, fold=0))
        self._check_end()
        self._check_dates()

    def _check_end(self) -> None:
        if self.end is not None and self.duration_min is not None:
            raise ReferralError("end_and_duration")
        if self.end is None and self.duration_min is None:
            raise ReferralError("no_end")
        if self.duration_min is not None:
            check_minutes(self.duration_min)
        elif self.end is not None:
            object.__setattr__(self, "end", self.end.replace(tzinfo=None, fold=0))
            if self.end <= self.start:
                raise ReferralError("end_before_start")

    def _check_dates(self) -> None:
        days = frozenset(self.weekdays) if self.recurrence is Recurrence.WEEKLY else frozenset()
        if self.recurrence is Recurrence.WEEKLY and not days:
            raise ReferralError("no_weekdays")
        for day in days:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise ReferralError("bad_weekday", day)
        object.__setattr__(self, "weekdays", days)
        if self.until_date is not None and self.until_date < self.first_date:
            raise ReferralError("until_before_first")

    # -- dates and spans ----------------------------------------------------------------------
    def dates_from(self, first: date) -> Iterator[date]:
        """Dates on or after `first` on which an occurrence starts, in order."""
        first = max(first, self.first_date)
        for count, day in enumerate(self._candidates(first)):
            if count >= MAX_DATES or (self.until_date is not None and day > self.until_date):
                return
            yield day

    def _candidates(self, first: date) -> Iterator[date]:
        rule = self.recurrence
        if rule is Recurrence.NONE:
            yield from [self.first_date] if self.first_date >= first else []
        elif rule in (Recurrence.DAILY, Recurrence.WEEKLY):
            day = first
            while True:
                if rule is Recurrence.DAILY or day.weekday() in self.weekdays:
                    yield day
                day += timedelta(days=1)
        else:
            yield from self._month_days(first)

    def _month_days(self, first: date) -> Iterator[date]:
        year, month = first.year, first.month
        if self.recurrence is Recurrence.YEARLY:
            month = self.first_date.month
        step = 12 if self.recurrence is Recurrence.YEARLY else 1
        while year <= 9999:
            day = _clamped(year, month, self.first_date.day)
            if day >= first:
                yield day
            year, month = year + (month - 1 + step) // 12, (month - 1 + step) % 12 + 1

    def span(self, day: date) -> tuple[datetime, datetime] | None:
        """(start, end) in UTC of the occurrence on `day`, or None when it has no length."""
        tz = zone(self.tz)
        start = datetime.combine(day, self.start, tzinfo=tz).astimezone(UTC)
        if self.duration_min is not None:
            end = start + timedelta(minutes=self.duration_min)
        else:
            end = datetime.combine(day, self.end or self.start, tzinfo=tz).astimezone(UTC)
        return (start, end) if end > start else None

    def occurrences(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Occurrences (start, end) in UTC that end after `after`, in order of start."""
        local = aware(after).astimezone(zone(self.tz)).date()
        days_back = (self.duration_min or 0) // (24 * 60) + 2
        for day in self.dates_from(local - timedelta(days=days_back)):
            span = self.span(day)
            if span is not None and span[1] > after:
                yield span

    def covering(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence in effect at `now` (the latest-starting one if several overlap)."""
        found = None
        for start, end in self.occurrences(now):
            if start > now:
                break
            found = (start, end)
        return found

    def next_start(self, now: datetime) -> datetime | None:
        """The first start strictly after `now`."""
        return next((start for start, _ in self.occurrences(now) if start > now), None)


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))
