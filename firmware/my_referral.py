"""The user's own referral on this phone: set from a menu, shown on the idle screen, kept in
the data directory, returned to Available when it ends, and published to the PBX so
colleagues see it (docs/people.md).

`MyReferral` ties the pure `firmware.referral` package to the phone: the book on disk, the one
timer on the phone's clock (`ReferralWatch`), the publish hook, and the menu (`ReferralMenu`)
with the shortcuts desk staff use most ("Lunch", "Möte 60 min", "Upptagen 120 min",
"Gått för dagen"), and the future and recurring referrals set from the keys (`ScheduleList`).

The idle screen shows `text()` ("Upptagen 87 min"); colleagues get `published_text()`, the
end time and the user's profile note ("Lunch until 13:00 – Hämtar barn"), as the note of the
presence pjsua2 publishes (it builds the PIDF: basic open/closed, an RPID activity, one note in
the phone's language).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from pathlib import Path

from board.keys import DIGITS
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
from firmware.referral.wording import describe, published_note
from firmware.settings_menu import notice
from firmware.texts import MONTHS, text
from firmware.texts import WEEKDAYS as DAY_NAMES
from firmware.views import NOTHING, UNHANDLED, Item, ListView, Outcome

log = logging.getLogger("luren.referral")
WORKDAYS = frozenset(range(5))  # Monday-Friday: "Vardagar"

Publisher = Callable[[bool, str, str], None]  # (available, note, activity)
ACTIVITY = {LUNCH: "away", MEETING: "busy", BUSY: "busy", GONE: "away", VACATION: "away",
            SICK: "away"}


class MyReferral:
    """The referral in effect now, its changes, and where they go."""

    def __init__(self, clock: Clock, language: Callable[[], str], tz: Callable[[], object],
                 path: Path | None, publish: Publisher | None = None,
                 changed: Callable[[], None] | None = None,
                 custom: Iterable[ReferralType] = (),
                 note: Callable[[], str] | None = None) -> None:
        """`note` gives the user's profile note, published with the referral."""
        self.clock, self._language, self._tz = clock, language, tz
        self._note = note or (lambda: "")
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
        """The referral as the idle screen shows it ("Lunch till 13:00", "Upptagen 87 min")."""
        return describe(self.current(), self._language(), self.now_local(), types=self.types)

    def published_text(self) -> str:
        """The referral as colleagues read it: with its end time (never minutes left, which a
        published note cannot count down) and the notes ("Lunch till 13:00 – Hämtar barn")."""
        return published_note(self.current(), self._language(), self.now_local(),
                              note=self._note(), types=self.types)

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
        """Publish again (the language, the time zone or the profile note changed): same
        referral, new words."""
        self._on_change(self.current(), None)

    def _on_change(self, referral: Referral, end: datetime | None) -> None:
        available = self.book.is_available(self.now())
        if self.publish is not None:
            self.publish(available, self.published_text(),
                         ACTIVITY.get(referral.type_key, ""))
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
                       + custom + [Item(text("schedule_future", language), "future")])

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

SCHEDULE_TYPES = (LUNCH, MEETING, BUSY, GONE, VACATION, SICK)  # then the company's own
REPEATS = ("once", "daily", "weekdays", "weekly", "monthly", "yearly")
RECURRENCE = {"once": Recurrence.NONE, "daily": Recurrence.DAILY,
              "weekdays": Recurrence.WEEKLY, "weekly": Recurrence.WEEKLY,
              "monthly": Recurrence.MONTHLY, "yearly": Recurrence.YEARLY}
FIELDS = {"start": 4, "end": 4, "first": 6, "last": 6}  # digits: hhmm, hhmm, yymmdd, yymmdd
OPTIONAL = ("first", "last")
PROMPTS = {"start": "schedule_start", "end": "schedule_end", "first": "schedule_first",
           "last": "schedule_last"}


@dataclass(frozen=True)
class ScheduleDraft:
    """A future referral being added from the keys, filled in one step after the other."""

    type_key: str = ""
    repeat: str = ""  # one of REPEATS
    weekdays: frozenset[int] = frozenset()  # "weekly" only: the days ticked (0 = Monday)


class ScheduleList(ListView):
    """The future and recurring referrals. ok on "New..." adds one: the type; the repetition;
    for "Every week" the days; then start and end (hhmm) and, optionally, the first and last
    date (yymmdd). ok on one shows it in full; # deletes the selected one."""

    def __init__(self, mine: MyReferral, language: str) -> None:
        super().__init__(text("schedule_future", language),
                         empty_text=text("schedule_none", language))
        self.mine, self.language = mine, language
        self.on_select = self._select
        self.reload()

    def reload(self) -> None:
        items = [Item(text("schedule_new", self.language), None)]
        for schedule in self.mine.book.schedules:
            items.append(Item(self._describe(schedule), schedule.id))
        self.set_items(items)

    def type_keys(self) -> list[str]:
        """The types a schedule can have: the built-in away ones, then the company's own."""
        return [*SCHEDULE_TYPES, *(kind.key for kind in self.mine.custom)]

    def type_name(self, key: str) -> str:
        kind = self.mine.types.get(key)
        return kind.name(self.language) if kind is not None else key

    def _describe(self, schedule: ScheduledReferral) -> str:
        """One row: "Lunch 1200-1300 Vardagar" (the row is cut at the screen's width)."""
        end = schedule.end.strftime("%H%M") if schedule.end else f"+{schedule.duration_min}"
        return (f"{self.type_name(schedule.type_key)} {schedule.start:%H%M}-{end} "
                f"{_repeat_text(schedule, self.language, short=True)}")

    def _select(self, item: Item) -> Outcome:
        if item.value is None:
            return Outcome(push=_ChoiceStep(self, "type", ScheduleDraft()))
        found = [s for s in self.mine.book.schedules if s.id == item.value]
        return Outcome(push=_ScheduleCard(self, found[0])) if found else NOTHING

    def other_key(self, name: str) -> Outcome:
        if name == "#" and self.selected is not None and self.selected.value is not None:
            self.mine.remove_schedule(self.selected.value)
            self.reload()
            return NOTHING
        return UNHANDLED

    def add(self, draft: ScheduleDraft, start: time, end: time, first: date | None = None,
            last: date | None = None) -> str | None:
        """Add the schedule (`first` None: from today, in the phone's time zone); the reason
        in the menu's language when it cannot be, else None."""
        days = WORKDAYS if draft.repeat == "weekdays" else draft.weekdays
        try:
            schedule = ScheduledReferral(
                draft.type_key, first or self.mine.now_local().date(), start, end=end,
                recurrence=RECURRENCE[draft.repeat], weekdays=days, tz=self.mine.tz_name(),
                until_date=last)
        except ReferralError as exc:
            return exc.text(self.language)
        if next(schedule.occurrences(self.mine.now()), None) is None:
            return text("schedule_past", self.language)
        self.mine.add_schedule(schedule)
        self.reload()
        return None


def _repeat_text(schedule: ScheduledReferral, language: str, short: bool = False) -> str:
    """How a schedule repeats: "Varje dag", "Vardagar", "mån,ons", "Varje månad: 25"; a
    one-off one gives its date ("24 dec"), or with `short=False` "En gång"."""
    rule, first = schedule.recurrence, schedule.first_date
    if rule is Recurrence.WEEKLY:
        if schedule.weekdays == WORKDAYS:
            return text("repeat_weekdays", language)
        return ",".join(DAY_NAMES[language][day] for day in sorted(schedule.weekdays))
    if rule is Recurrence.NONE:
        return _day_month(first, language) if short else text("repeat_once", language)
    words = text(f"repeat_{rule.value}", language)
    if short or rule is Recurrence.DAILY:
        return words
    return f"{words}: {first.day if rule is Recurrence.MONTHLY else _day_month(first, language)}"


def _day_month(day: date, language: str) -> str:
    return f"{day.day} {MONTHS[language][day.month - 1]}"


class _ScheduleCard(ListView):
    """One future referral in full: times, repetition, first and last date, time zone."""

    def __init__(self, owner: ScheduleList, schedule: ScheduledReferral) -> None:
        super().__init__(owner.type_name(schedule.type_key))
        language = owner.language
        end = f"{schedule.end:%H:%M}" if schedule.end else f"+{schedule.duration_min} min"
        last = f"{schedule.until_date:%Y-%m-%d}" if schedule.until_date else text(
            "schedule_no_last", language)
        lines = [f"{schedule.start:%H:%M}-{end}", _repeat_text(schedule, language),
                 f"{text('schedule_from', language)}: {schedule.first_date:%Y-%m-%d}"]
        if schedule.recurrence is not Recurrence.NONE:
            lines.append(f"{text('schedule_until', language)}: {last}")
        self.set_items([Item(line) for line in [*lines, schedule.tz]])

    def other_key(self, name: str) -> Outcome:
        return NOTHING if name in DIGITS else UNHANDLED  # never dial from under a menu


class _ChoiceStep(ListView):
    """One step of adding a schedule: the type, then the repetition (digits 1-9 pick)."""

    def __init__(self, owner: ScheduleList, step: str, draft: ScheduleDraft) -> None:
        language = owner.language
        super().__init__(text("schedule_future", language))
        self.owner, self.step, self.draft = owner, step, draft
        self.on_select = self._next
        if step == "type":
            self.set_items([Item(owner.type_name(key), key) for key in owner.type_keys()])
        else:
            self.set_items([Item(text(f"repeat_{key}", language), key) for key in REPEATS])

    def _next(self, item: Item) -> Outcome:
        if self.step == "type":
            chosen = replace(self.draft, type_key=item.value)
            return Outcome(close=True, push=_ChoiceStep(self.owner, "repeat", chosen))
        draft = replace(self.draft, repeat=item.value)
        if item.value == "weekly":  # today's weekday ticked to start with
            today = self.owner.mine.now_local().weekday()
            draft = replace(draft, weekdays=frozenset({today}))
            return Outcome(close=True, push=_DaysStep(self.owner, draft))
        return Outcome(close=True, push=_TimeStep(self.owner, draft))

    def other_key(self, name: str) -> Outcome:
        if name.isdigit() and 1 <= int(name) <= len(self.items):
            self.cursor = int(name) - 1
            return self._next(self.items[self.cursor])
        return NOTHING if name in DIGITS else UNHANDLED


class _DaysStep(ListView):
    """Every week: on which days. ok on a day (or its digit, 1 = Monday ... 7 = Sunday) ticks
    or unticks it; ok on "Next" goes on to the times."""

    def __init__(self, owner: ScheduleList, draft: ScheduleDraft) -> None:
        super().__init__(text("schedule_days", owner.language))
        self.owner, self.draft = owner, draft
        self.on_select = self._select
        self._show()

    def _show(self) -> None:
        names, days = DAY_NAMES[self.owner.language], self.draft.weekdays
        self.set_items([Item(f"[{'x' if day in days else ' '}] {names[day]}", day)
                        for day in range(7)]
                       + [Item(text("schedule_next", self.owner.language), None)])

    def _toggle(self, day: int) -> None:
        self.draft = replace(self.draft, weekdays=self.draft.weekdays ^ {day})
        self._show()

    def _select(self, item: Item) -> Outcome:
        if item.value is not None:
            self._toggle(item.value)
            return NOTHING
        if not self.draft.weekdays:
            language = self.owner.language
            return notice(language, ReferralError("no_weekdays").text(language))
        return Outcome(close=True, push=_TimeStep(self.owner, self.draft))

    def other_key(self, name: str) -> Outcome:
        if name in "1234567" and len(name) == 1:
            self._toggle(int(name) - 1)
        return NOTHING if name in DIGITS else UNHANDLED


class _TimeStep(ListView):
    """Start and end as hhmm, then the first date and (when it repeats) the last date as
    yymmdd. Each field moves on to the next when full; the dates may be left out (# or down
    skips one): the first is then today, and it repeats with no last date. cancel deletes the
    last digit (with none, it leaves); ok saves once start and end are complete."""

    def __init__(self, owner: ScheduleList, draft: ScheduleDraft) -> None:
        super().__init__(text("schedule_start", owner.language))
        self.owner, self.draft = owner, draft
        self.fields = ["start", "end", "first"] + ([] if draft.repeat == "once" else ["last"])
        self.typed = dict.fromkeys(self.fields, "")
        self.at = 0  # the field being typed

    @property
    def field(self) -> str:
        return self.fields[self.at]

    def header(self, width: int) -> str:
        return text(PROMPTS[self.field], self.owner.language)[:width]

    def rows(self, width: int, height: int) -> list[str]:
        language, start, end = self.owner.language, self.typed["start"], self.typed["end"]
        body = [start + ("-" + end if len(start) == 4 else ""),
                f"{text('schedule_from', language)}: {self._date('first', 'schedule_today')}"]
        if "last" in self.fields:
            body.append(f"{text('schedule_until', language)}: "
                        f"{self._date('last', 'schedule_no_last')}")
        room = max(1, height - 1)
        row = max(0, self.at - 1)  # start and end share the first row
        top = max(0, row - room + 1)  # the field being typed stays in view
        return [self.header(width), *(line[:width] for line in body[top:top + room])]

    def _date(self, field: str, empty: str) -> str:
        digits = self.typed[field]
        if not digits:
            return text(empty, self.owner.language)
        return f"20{digits[:2]}-{digits[2:4]}-{digits[4:]}" if len(digits) == 6 else digits

    def key(self, name: str) -> Outcome:
        if name.isdigit() and len(name) == 1:
            self._digit(name)
        elif name in ("#", "down") and self.field in OPTIONAL and self._complete(self.field):
            self.at = min(self.at + 1, len(self.fields) - 1)
        elif name == "cancel":
            return self._delete()
        elif name == "ok":
            return self._save()
        return NOTHING

    def _complete(self, field: str) -> bool:
        """Typed in full, or (a date) not typed at all."""
        typed = len(self.typed[field])
        return typed == FIELDS[field] or (typed == 0 and field in OPTIONAL)

    def _digit(self, digit: str) -> None:
        if len(self.typed[self.field]) < FIELDS[self.field]:
            self.typed[self.field] += digit
        if len(self.typed[self.field]) == FIELDS[self.field] and self.at + 1 < len(self.fields):
            self.at += 1

    def _delete(self) -> Outcome:
        while self.at > 0 and not self.typed[self.field]:
            self.at -= 1
        if not self.typed[self.field]:
            return Outcome(close=True)
        self.typed[self.field] = self.typed[self.field][:-1]
        return NOTHING

    def _save(self) -> Outcome:
        if not all(self._complete(field) for field in self.fields):
            return NOTHING
        language = self.owner.language
        try:
            start, end = (time(int(self.typed[f][:2]), int(self.typed[f][2:]))
                          for f in ("start", "end"))
        except ValueError:
            return notice(language, text("schedule_bad_time", language))
        try:
            first, last = (_yymmdd(self.typed.get(f, "")) for f in ("first", "last"))
        except ValueError:
            return notice(language, text("schedule_bad_date", language))
        problem = self.owner.add(self.draft, start, end, first, last)
        return notice(language, problem) if problem is not None else Outcome(close=True)


def _yymmdd(digits: str) -> date | None:
    """A date typed as yymmdd ("261224" is 24 December 2026); None when none was typed."""
    return date(2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:])) if digits else None
