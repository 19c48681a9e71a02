"""The user's own referral on this phone: set from a menu, shown on the idle screen, kept in
the data directory, returned to Available when it ends, and published to the PBX so
colleagues see it (docs/people.md).

`MyReferral` ties the pure `firmware.referral` package to the phone: the book on disk, the one
timer on the phone's clock (`ReferralWatch`), the publish hook, and the menu (`ReferralMenu`)
with the shortcuts desk staff use most ("Lunch", "Möte 60 min", "Upptagen 120 min",
"Gått för dagen").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, time
from pathlib import Path

from firmware.clock import Clock
from firmware.referral import (
    AVAILABLE,
    BUSY,
    GONE,
    LUNCH,
    MEETING,
    SICK,
    VACATION,
    Referral,
    ReferralBook,
    ReferralError,
    ReferralStore,
    ReferralType,
    ReferralWatch,
    ScheduledReferral,
    available,
    busy,
    gone_for_today,
    lunch,
    make_referral,
    meeting,
    referral_types,
)
from firmware.referral.schedule import Recurrence
from firmware.referral.wording import describe
from firmware.views import Item, ListView, Outcome

log = logging.getLogger("luren.referral")
WEEKDAYS = frozenset(range(5))

Publisher = Callable[[bool, str, str], None]  # (available, note, activity)
ACTIVITY = {LUNCH: "away", MEETING: "busy", BUSY: "busy", GONE: "away", VACATION: "away",
            SICK: "away"}


class MyReferral:
    """The referral in effect now, its changes, and where they go."""

    def __init__(self, clock: Clock, language: Callable[[], str], tz: Callable[[], object],
                 path: Path | None, publish: Publisher | None = None,
                 changed: Callable[[], None] | None = None,
                 custom: Iterable[ReferralType] = ()) -> None:
        self.clock, self._language, self._tz = clock, language, tz
        self.custom = list(custom)
        try:
            self.types = referral_types(self.custom)
        except ReferralError as exc:
            log.error("custom referral statuses not used: %s", exc)
            self.custom, self.types = [], referral_types()
        self.store = ReferralStore(path, self.types) if path is not None else None
        self.book = self.store.load() if self.store is not None else ReferralBook(self.types)
        self.publish, self.changed = publish, changed
        self.watch = ReferralWatch(self.book, clock, self._on_change)

    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop()

    def now(self) -> datetime:
        return self.clock.wall_time(UTC)

    def now_local(self) -> datetime:
        return self.now().astimezone(self._tz())  # type: ignore[arg-type]

    def current(self) -> Referral:
        return self.book.current(self.now())[0]

    @property
    def available(self) -> bool:
        """Whether calls ring (the referral's availability)."""
        return self.book.is_available(self.now())

    def text(self) -> str:
        """The referral as the idle screen shows it ("Lunch till 13:00")."""
        return describe(self.current(), self._language(), self.now_local(), types=self.types)

    def set(self, referral: Referral) -> None:
        """Set a manual referral (Available clears it), keep it and publish it."""
        if referral.type_key == AVAILABLE:
            self.book.set_available(self.now())
        else:
            self.book.set(referral)
        if self.store is not None:
            self.store.save(self.book)
        log.info("referral set: %s", self.text())
        self.watch.rearm()

    def tz_name(self) -> str:
        return str(self._tz())

    def add_schedule(self, schedule: ScheduledReferral) -> None:
        self.book.add_schedule(schedule)
        self._save_and_rearm()

    def remove_schedule(self, schedule_id: str) -> None:
        self.book.remove_schedule(schedule_id)
        self._save_and_rearm()

    def _save_and_rearm(self) -> None:
        if self.store is not None:
            self.store.save(self.book)
        self.watch.rearm()

    def rearm_publish(self) -> None:
        """Publish again (the language or the note changed): same referral, new words."""
        self._on_change(self.current(), None)

    def _on_change(self, referral: Referral, end: datetime | None) -> None:
        available = self.book.is_available(self.now())
        if self.publish is not None:
            self.publish(available, self.text(), ACTIVITY.get(referral.type_key, ""))
        if self.changed is not None:
            self.changed()


def shortcuts(now: datetime) -> list[tuple[str, Callable[[], Referral]]]:
    """The menu's entries: (label key, make the referral)."""
    return [
        ("available", lambda: available(now)),
        ("lunch", lambda: lunch(now)),
        ("meeting_30", lambda: meeting(now, 30)),
        ("meeting_60", lambda: meeting(now, 60)),
        ("busy_60", lambda: busy(now, 60)),
        ("busy_120", lambda: busy(now, 120)),
        ("gone", lambda: gone_for_today(now)),
        ("vacation", lambda: make_referral(now, VACATION)),
        ("sick", lambda: make_referral(now, SICK)),
    ]


LABELS = {
    "available": {"sv": "Tillgänglig", "en": "Available"},
    "lunch": {"sv": "Lunch", "en": "Lunch"},
    "meeting_30": {"sv": "Möte 30 min", "en": "Meeting 30 min"},
    "meeting_60": {"sv": "Möte 60 min", "en": "Meeting 60 min"},
    "busy_60": {"sv": "Upptagen 60 min", "en": "Busy 60 min"},
    "busy_120": {"sv": "Upptagen 120 min", "en": "Busy 120 min"},
    "gone": {"sv": "Gått för dagen", "en": "Gone for the day"},
    "vacation": {"sv": "Semester", "en": "Vacation"},
    "sick": {"sv": "Sjuk", "en": "Sick"},
    "title": {"sv": "Hänvisning", "en": "Referral"},
}


class ReferralMenu(ListView):
    """Choose a referral; the one in effect now is the title's second half."""

    def __init__(self, mine: MyReferral, language: str) -> None:
        super().__init__(LABELS["title"][language])
        self.mine, self.language = mine, language
        self.on_select = self._choose
        now = mine.now_local()
        custom = [Item(kind.name(language), self._custom(kind, now)) for kind in mine.custom]
        self.set_items([Item(LABELS[key][language], make) for key, make in shortcuts(now)]
                       + custom + [Item(MORE_LABELS["future"][language], "future")])

    def _custom(self, kind: ReferralType, now: datetime) -> Callable[[], Referral]:
        minutes = kind.default_duration_min
        return lambda: make_referral(now, kind.key, minutes=minutes, types=self.mine.types)

    def header(self, width: int) -> str:
        return f"{self.title}: {self.mine.text()}"[:width]

    def _choose(self, item: Item) -> Outcome:
        if item.value == "future":
            return Outcome(push=ScheduleList(self.mine, self.language))
        try:
            self.mine.set(item.value())
        except ReferralError as exc:
            log.warning("referral refused: %s", exc)
            return Outcome()
        return Outcome(close=True)


# -- future and recurring referrals ("Framtida hänvisning") ----------------------------------

SCHEDULE_TYPES = (LUNCH, MEETING, BUSY, GONE, VACATION, SICK)
REPEATS = ("once", "daily", "weekdays", "weekly")
MORE_LABELS = {
    "future": {"sv": "Framtida hänvisning", "en": "Future referrals"},
    "new": {"sv": "Ny...", "en": "New..."},
    "once": {"sv": "En gång", "en": "Once"},
    "daily": {"sv": "Varje dag", "en": "Every day"},
    "weekdays": {"sv": "Vardagar", "en": "Weekdays"},
    "weekly": {"sv": "Varje vecka", "en": "Every week"},
    "start": {"sv": "Start (ttmm)", "en": "Start (hhmm)"},
    "end": {"sv": "Slut (ttmm)", "en": "End (hhmm)"},
    "none": {"sv": "Inga", "en": "None"},
}
TYPE_LABELS = {LUNCH: "lunch", MEETING: "meeting_60", BUSY: "busy_60", GONE: "gone",
               VACATION: "vacation", SICK: "sick"}


class ScheduleList(ListView):
    """The future and recurring referrals: ok on "New..." adds one (type, repetition, start,
    end: four steps), # deletes the selected one."""

    def __init__(self, mine: MyReferral, language: str) -> None:
        super().__init__(MORE_LABELS["future"][language],
                         empty_text=MORE_LABELS["none"][language])
        self.mine, self.language = mine, language
        self.on_select = self._select
        self.reload()

    def reload(self) -> None:
        items = [Item(MORE_LABELS["new"][self.language], None)]
        for schedule in self.mine.book.schedules:
            items.append(Item(self._describe(schedule), schedule.id))
        self.set_items(items)

    def _describe(self, schedule: ScheduledReferral) -> str:
        name = LABELS[TYPE_LABELS.get(schedule.type_key, "busy_60")][self.language].split()[0]
        repeat = schedule.recurrence.value if schedule.recurrence is not Recurrence.WEEKLY \
            else ("weekdays" if schedule.weekdays == WEEKDAYS else "weekly")
        label = MORE_LABELS.get("once" if repeat == "none" else repeat, {}).get(
            self.language, repeat)
        end = schedule.end.strftime("%H%M") if schedule.end else ""
        return f"{name} {schedule.start.strftime('%H%M')}-{end} {label}"

    def _select(self, item: Item) -> Outcome:
        if item.value is None:
            return Outcome(push=_ChoiceStep(self, "type"))
        return Outcome()

    def other_key(self, name: str) -> Outcome:
        if name == "#" and self.selected is not None and self.selected.value is not None:
            self.mine.remove_schedule(self.selected.value)
            self.reload()
            return Outcome()
        return Outcome(handled=False)

    def add(self, type_key: str, repeat: str, start: time, end: time) -> str | None:
        today = self.mine.now_local().date()
        weekday = today.weekday()
        recurrence = {"once": Recurrence.NONE, "daily": Recurrence.DAILY,
                      "weekdays": Recurrence.WEEKLY, "weekly": Recurrence.WEEKLY}[repeat]
        days = WEEKDAYS if repeat == "weekdays" else (
            frozenset({weekday}) if repeat == "weekly" else frozenset())
        try:
            schedule = ScheduledReferral(type_key, today, start, end=end, recurrence=recurrence,
                                         weekdays=days, tz=self.mine.tz_name())
        except ReferralError as exc:
            return exc.text(self.language)
        self.mine.add_schedule(schedule)
        self.reload()
        return None


class _ChoiceStep(ListView):
    """One step of adding a schedule: the type, then the repetition."""

    def __init__(self, owner: ScheduleList, step: str, chosen: tuple[str, ...] = ()) -> None:
        language = owner.language
        super().__init__(MORE_LABELS["future"][language])
        self.owner, self.step, self.chosen = owner, step, chosen
        self.on_select = self._next
        if step == "type":
            self.set_items([Item(LABELS[TYPE_LABELS[key]][language].split(" ")[0], key)
                            for key in SCHEDULE_TYPES])
        else:
            self.set_items([Item(MORE_LABELS[key][language], key) for key in REPEATS])

    def _next(self, item: Item) -> Outcome:
        chosen = (*self.chosen, item.value)
        if self.step == "type":
            return Outcome(close=True, push=_ChoiceStep(self.owner, "repeat", chosen))
        return Outcome(close=True, push=_TimeStep(self.owner, chosen))


class _TimeStep(ListView):
    """Start and end as four digits each (hhmm); ok saves."""

    def __init__(self, owner: ScheduleList, chosen: tuple[str, ...]) -> None:
        super().__init__(MORE_LABELS["start"][owner.language])
        self.owner, self.chosen, self.digits = owner, chosen, ""
        self.set_items([Item("")])

    def header(self, width: int) -> str:
        key = "start" if len(self.digits) < 4 else "end"
        return MORE_LABELS[key][self.owner.language][:width]

    def rows(self, width: int, height: int) -> list[str]:
        shown = self.digits[:4] + ("-" + self.digits[4:] if len(self.digits) >= 4 else "")
        return [self.header(width), shown[:width]]

    def key(self, name: str) -> Outcome:
        if name.isdigit() and len(name) == 1 and len(self.digits) < 8:
            self.digits += name
        elif name == "cancel":
            if not self.digits:
                return Outcome(close=True)
            self.digits = self.digits[:-1]
        elif name == "ok" and len(self.digits) == 8:
            try:
                start, end = (time(int(d[:2]), int(d[2:])) for d in
                              (self.digits[:4], self.digits[4:]))
            except ValueError:
                self.digits = ""
                return Outcome()
            problem = self.owner.add(self.chosen[0], self.chosen[1], start, end)
            if problem is None:
                return Outcome(close=True)
            self.digits = ""
        return Outcome()
