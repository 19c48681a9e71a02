"""Referral types and the referral a user sets by hand, with its shortcuts.

Every datetime here is timezone-aware (a naive one is a `ReferralError`). The shortcuts take the
*local* time of the phone as `now` (`clock.wall_time(tz)`), because their rules ("until 13:00",
"until 07:00 on the next working day") are read on the wall clock of that zone; `now` comes
first in all of them because every referral records when it was set (`set_at`).

Rules of the shortcuts:

- `lunch(now)`: 60 minutes from now (`minutes=`). With `ends_at=time(13, 0)` lunch ends at 13:00
  today instead, unless that is not after now (a late lunch), when the 60 minutes apply.
- `busy(now, minutes)`: until now + minutes; the display shows it as minutes ("Upptagen 120 min").
- `meeting(now, end)`: `end` is an aware datetime, a local time of day today (it must be later
  than now: it is never moved to tomorrow) or an int of minutes (shown as minutes, like busy).
- `gone_for_today(now)`: until the first 07:00 (`morning=`) after now that falls on a working
  day: Monday-Friday (`workdays=`, 0 = Monday) and not in `holidays`. Set on Friday evening it
  lasts until Monday 07:00; set at 01:00 on a Tuesday it lasts until Tuesday 07:00.
- `make_referral(now, type_key)` for any type, custom ones included: with neither `until` nor
  `minutes` it lasts the type's `default_duration_min`, or has no end when that is None.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType

AVAILABLE = "available"
MEETING = "meeting"
LUNCH = "lunch"
BUSY = "busy"
GONE = "gone"
VACATION = "vacation"
SICK = "sick"

NOTE_MAX = 200  # characters of a user's note
DURATION_MAX_MIN = 366 * 24 * 60
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

_ERRORS: dict[str, tuple[str, str]] = {
    "unknown_type": ("Okänd hänvisning: {detail}", "Unknown referral type: {detail}"),
    "end_before_start": ("Sluttiden måste vara efter starttiden",
                         "The end must be after the start"),
    "no_weekdays": ("Välj minst en veckodag", "Choose at least one weekday"),
    "bad_weekday": ("Ogiltig veckodag: {detail}", "Invalid weekday: {detail}"),
    "bad_time_zone": ("Okänd tidszon: {detail}", "Unknown time zone: {detail}"),
    "naive_time": ("Tid utan tidszon: {detail}", "Time without a time zone: {detail}"),
    "bad_duration": ("Ogiltig längd: {detail}", "Invalid duration: {detail}"),
    "bad_recurrence": ("Ogiltig upprepning: {detail}", "Invalid recurrence: {detail}"),
    "until_before_first": ("Slutdatum före första datum", "The last date is before the first"),
    "end_and_duration": ("Ange sluttid eller längd, inte båda",
                         "Give an end or a duration, not both"),
    "no_end": ("Ange sluttid eller längd", "Give an end time or a duration"),
    "bad_type": ("Ogiltig hänvisningstyp: {detail}", "Invalid referral type: {detail}"),
    "duplicate": ("Finns redan: {detail}", "Already exists: {detail}"),
    "note_too_long": ("Texten är för lång", "The note is too long"),
    "no_workdays": ("Inga arbetsdagar", "No working days"),
}


class ReferralError(ValueError):
    """User input no referral can be made from. `code` is stable; `text(language)` is for UIs."""

    def __init__(self, code: str, detail: object = "") -> None:
        self.code = code
        self.detail = str(detail)
        super().__init__(self.text("en"))

    def text(self, language: str) -> str:
        sv, en = _ERRORS.get(self.code, ("{detail}", "{detail}"))
        return (sv if language == "sv" else en).format(detail=self.detail)


@dataclass(frozen=True)
class ReferralType:
    """A status a user can be in; `available` says whether the phone rings."""

    key: str
    name_sv: str
    name_en: str
    available: bool
    default_duration_min: int | None = None

    def name(self, language: str) -> str:
        return self.name_sv if language == "sv" else self.name_en


BUILTIN_TYPES: Mapping[str, ReferralType] = MappingProxyType({t.key: t for t in (
    ReferralType(AVAILABLE, "Tillgänglig", "Available", True),
    ReferralType(MEETING, "Möte", "Meeting", False, 60),
    ReferralType(LUNCH, "Lunch", "Lunch", False, 60),
    ReferralType(BUSY, "Upptagen", "Busy", False),
    ReferralType(GONE, "Gått för dagen", "Gone for the day", False),
    ReferralType(VACATION, "Semester", "Vacation", False),
    ReferralType(SICK, "Sjuk", "Sick", False),
)})


def referral_types(custom: Iterable[ReferralType] = ()) -> dict[str, ReferralType]:
    """The built-in types plus `custom` ones (from config); a custom key may not reuse another."""
    types = dict(BUILTIN_TYPES)
    for kind in custom:
        _check_type(kind)
        if kind.key in types:
            raise ReferralError("duplicate", kind.key)
        types[kind.key] = kind
    return types


def _check_type(kind: ReferralType) -> None:
    if not isinstance(kind.key, str) or not _KEY.match(kind.key):
        raise ReferralError("bad_type", f"key {kind.key!r} (a-z, 0-9, _ and -)")
    if not str(kind.name_sv).strip() or not str(kind.name_en).strip():
        raise ReferralError("bad_type", f"{kind.key}: empty name")
    if kind.default_duration_min is not None:
        check_minutes(kind.default_duration_min)


def referral_type(key: str, types: Mapping[str, ReferralType] = BUILTIN_TYPES) -> ReferralType:
    """The type called `key`, or `ReferralError("unknown_type")`."""
    try:
        return types[key]
    except (KeyError, TypeError):
        raise ReferralError("unknown_type", key) from None


def aware(value: datetime, what: str = "time") -> datetime:
    """`value` if it carries a time zone, else `ReferralError("naive_time")`."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ReferralError("naive_time", f"{what} {value!r}")
    return value


def check_minutes(minutes: object) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
            0 < minutes <= DURATION_MAX_MIN):
        raise ReferralError("bad_duration", f"{minutes!r} min")
    return minutes


@dataclass(frozen=True)
class Referral:
    """A referral in effect from `set_at` until `until` (None: until changed by hand).

    `duration_min` is set when the user gave a number of minutes; the display then counts the
    minutes left ("Upptagen 87 min") instead of showing the end time.
    """

    type_key: str
    until: datetime | None
    note: str
    set_at: datetime
    duration_min: int | None = None

    def __post_init__(self) -> None:
        aware(self.set_at, "set_at")
        if self.until is not None and aware(self.until, "until") <= self.set_at:
            raise ReferralError("end_before_start")
        if len(self.note) > NOTE_MAX:
            raise ReferralError("note_too_long")
        if self.duration_min is not None:
            check_minutes(self.duration_min)

    def active(self, now: datetime) -> bool:
        """Whether it is still in effect at `now` (its end has not passed)."""
        return self.until is None or aware(now) < self.until


def available(now: datetime) -> Referral:
    """The referral of someone who is simply at their phone."""
    return Referral(AVAILABLE, None, "", aware(now))


def make_referral(now: datetime, type_key: str, *, until: datetime | time | None = None,
                  minutes: int | None = None, note: str = "",
                  types: Mapping[str, ReferralType] = BUILTIN_TYPES) -> Referral:
    """A referral of any type from `now` (local time); see the module rules for the end."""
    kind = referral_type(type_key, types)
    aware(now, "now")
    if until is not None and minutes is not None:
        raise ReferralError("end_and_duration")
    if minutes is not None:
        until = now + timedelta(minutes=check_minutes(minutes))
    elif isinstance(until, time):
        until = datetime.combine(now.date(), until.replace(tzinfo=None), tzinfo=now.tzinfo)
    elif until is None and kind.default_duration_min is not None:
        until = now + timedelta(minutes=kind.default_duration_min)
    return Referral(kind.key, until, note, now, minutes)


def lunch(now: datetime, *, minutes: int = 60, ends_at: time | None = None,
          note: str = "") -> Referral:
    """Lunch for `minutes`, or until `ends_at` today when that is still ahead."""
    if ends_at is not None:
        end = datetime.combine(aware(now).date(), ends_at.replace(tzinfo=None),
                               tzinfo=now.tzinfo)
        if end > now:
            return make_referral(now, LUNCH, until=end, note=note)
    return make_referral(now, LUNCH, until=now + timedelta(minutes=check_minutes(minutes)),
                         note=note)


def busy(now: datetime, minutes: int, note: str = "") -> Referral:
    """Busy for `minutes`, shown as minutes left."""
    return make_referral(now, BUSY, minutes=minutes, note=note)


def meeting(now: datetime, end: datetime | time | int, note: str = "") -> Referral:
    """In a meeting until `end`: a datetime, a time of day today, or minutes from now."""
    if isinstance(end, int):
        return make_referral(now, MEETING, minutes=end, note=note)
    return make_referral(now, MEETING, until=end, note=note)


def gone_for_today(now: datetime, *, morning: time = time(7, 0),
                   workdays: Collection[int] = frozenset(range(5)),
                   holidays: Collection[date] = (), note: str = "") -> Referral:
    """Gone until `morning` on the next working day (see the module rules)."""
    return make_referral(now, GONE, note=note,
                         until=next_working_morning(now, morning, workdays, holidays))


def next_working_morning(now: datetime, morning: time = time(7, 0),
                         workdays: Collection[int] = frozenset(range(5)),
                         holidays: Collection[date] = ()) -> datetime:
    """The first `morning` after `now`, in now's zone, on a working day that is no holiday."""
    aware(now, "now")
    if not any(0 <= d <= 6 for d in workdays):
        raise ReferralError("no_workdays")
    day = now.date()
    while True:
        start = datetime.combine(day, morning.replace(tzinfo=None), tzinfo=now.tzinfo)
        if start > now and day.weekday() in workdays and day not in holidays:
            return start
        day += timedelta(days=1)
