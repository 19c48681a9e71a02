"""A user's referrals: the one set by hand plus the schedules, and what is in effect when.

Precedence at a moment `now`: the manual referral while it lasts (one with no end lasts until it
is changed); else the schedule occurrence covering `now` (the one that started last when several
overlap, the earlier schedule in the list on a tie); else Available. A manual referral whose end
has passed counts as absent (`expire()` drops it so it is not saved again).

`next_change(now)` is the one moment the phone must look again: the manual referral's end while
one is in effect (what the schedules do before then is hidden by it), else the earliest end of a
covering occurrence or start of a coming one. `ReferralWatch` keeps the single timer for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from firmware.clock import Clock, Timer
from firmware.referral.kinds import (
    AVAILABLE,
    BUILTIN_TYPES,
    Referral,
    ReferralError,
    ReferralType,
    aware,
    referral_type,
)
from firmware.referral.schedule import ScheduledReferral, zone

Effective = tuple[Referral, datetime | None]


class ReferralBook:
    """The manual referral and the schedules of one user, validated against `types`."""

    def __init__(self, types: Mapping[str, ReferralType] | None = None,
                 manual: Referral | None = None,
                 schedules: Iterable[ScheduledReferral] = ()) -> None:
        self.types: dict[str, ReferralType] = dict(BUILTIN_TYPES if types is None else types)
        self.manual: Referral | None = None
        self.schedules: list[ScheduledReferral] = []
        if manual is not None:
            self.set(manual)
        for schedule in schedules:
            self.add_schedule(schedule)

    # -- editing ------------------------------------------------------------------------------
    def set(self, referral: Referral) -> None:
        """Make `referral` the manual one (its type must be known)."""
        referral_type(referral.type_key, self.types)
        self.manual = referral

    def clear(self) -> None:
        """Drop the manual referral: the schedules (or Available) apply again."""
        self.manual = None

    def set_available(self, now: datetime) -> None:
        """Back at the phone: drop the manual referral and skip the scheduled one now running."""
        self.manual = None
        found = self._scheduled(now)
        if found is not None:
            self.manual = Referral(AVAILABLE, found[1], "", now)

    def add_schedule(self, schedule: ScheduledReferral) -> ScheduledReferral:
        """Add `schedule`, giving it an id ("s1", "s2", ...) when it has none; returns it."""
        referral_type(schedule.type_key, self.types)
        ids = {s.id for s in self.schedules}
        if schedule.id in ids:
            raise ReferralError("duplicate", schedule.id)
        if not schedule.id:
            number = len(self.schedules) + 1
            while f"s{number}" in ids:
                number += 1
            schedule = replace(schedule, id=f"s{number}")
        self.schedules.append(schedule)
        return schedule

    def remove_schedule(self, schedule_id: str) -> bool:
        before = len(self.schedules)
        self.schedules = [s for s in self.schedules if s.id != schedule_id]
        return len(self.schedules) != before

    def expire(self, now: datetime) -> bool:
        """Drop a manual referral whose end has passed; True when one was dropped."""
        if self.manual is not None and not self.manual.active(now):
            self.manual = None
            return True
        return False

    # -- questions ----------------------------------------------------------------------------
    def current(self, now: datetime) -> Effective:
        """The referral in effect at `now` (any aware datetime) and its end (None: no end)."""
        aware(now, "now")
        if self.manual is not None and self.manual.active(now):
            return self.manual, self.manual.until
        found = self._scheduled(now)
        if found is None:
            return Referral(AVAILABLE, None, "", now), None
        schedule, end, start = found
        local = end.astimezone(zone(schedule.tz))
        return Referral(schedule.type_key, local, schedule.note, start), local

    def is_available(self, now: datetime) -> bool:
        """Whether the phone should ring at `now`."""
        referral, _ = self.current(now)
        kind = self.types.get(referral.type_key)
        return kind is None or kind.available

    def next_change(self, now: datetime) -> datetime | None:
        """When to look again (UTC), strictly after `now`; None when nothing will change."""
        aware(now, "now")
        if self.manual is not None and self.manual.active(now):
            return None if self.manual.until is None else self.manual.until.astimezone(UTC)
        moments = []
        for schedule in self.schedules:
            covering = schedule.covering(now)
            if covering is not None:
                moments.append(covering[1])
            start = schedule.next_start(now)
            if start is not None:
                moments.append(start)
        return min(moments, default=None)

    def upcoming(self, now: datetime, limit: int = 10,
                 ) -> list[tuple[ScheduledReferral, datetime, datetime]]:
        """The next `limit` occurrences (schedule, start, end in UTC) not yet ended at `now`."""
        found: list[tuple[ScheduledReferral, datetime, datetime]] = []
        for schedule in self.schedules:
            for count, (start, end) in enumerate(schedule.occurrences(now)):
                if count >= limit:
                    break
                found.append((schedule, start, end))
        found.sort(key=lambda item: item[1])
        return found[:limit]

    def _scheduled(self, now: datetime) -> tuple[ScheduledReferral, datetime, datetime] | None:
        best: tuple[ScheduledReferral, datetime, datetime] | None = None
        for schedule in self.schedules:
            covering = schedule.covering(now)
            if covering is not None and (best is None or covering[0] > best[2]):
                best = (schedule, covering[1], covering[0])
        return best


class ReferralWatch:
    """Keeps ONE timer on `clock` for the book's next change and reports every change.

    `on_change(referral, end)` runs at `start()` and whenever what is in effect changes. Call
    `rearm()` after editing the book or setting the wall clock. The timer waits at most
    `max_wait_s`, so a wall clock corrected later (NTP) is noticed within that time.
    """

    def __init__(self, book: ReferralBook, clock: Clock,
                 on_change: Callable[[Referral, datetime | None], None],
                 max_wait_s: float = 3600.0) -> None:
        self.book = book
        self.clock = clock
        self.on_change = on_change
        self.max_wait_s = max_wait_s
        self.timer: Timer | None = None
        self._last: tuple[object, ...] | None = None

    def start(self) -> None:
        self.rearm()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def rearm(self) -> None:
        """Report a change if there is one and set the timer for the next."""
        self.stop()
        now = self.clock.wall_time(UTC)
        self.book.expire(now)
        referral, end = self.book.current(now)
        seen = (referral.type_key, referral.until, referral.note, end)
        if seen != self._last:
            self._last = seen
            self.on_change(referral, end)
        change = self.book.next_change(now)
        if change is not None:
            delay = min(self.max_wait_s, (change - now).total_seconds())
            self.timer = self.clock.call_later(delay, self.rearm)
