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
from collections.abc import Callable
from datetime import UTC, datetime
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
    ReferralWatch,
    available,
    busy,
    gone_for_today,
    lunch,
    make_referral,
    meeting,
)
from firmware.referral.wording import describe
from firmware.views import Item, ListView, Outcome

log = logging.getLogger("luren.referral")

Publisher = Callable[[bool, str, str], None]  # (available, note, activity)
ACTIVITY = {LUNCH: "away", MEETING: "busy", BUSY: "busy", GONE: "away", VACATION: "away",
            SICK: "away"}


class MyReferral:
    """The referral in effect now, its changes, and where they go."""

    def __init__(self, clock: Clock, language: Callable[[], str], tz: Callable[[], object],
                 path: Path | None, publish: Publisher | None = None,
                 changed: Callable[[], None] | None = None) -> None:
        self.clock, self._language, self._tz = clock, language, tz
        self.store = ReferralStore(path) if path is not None else None
        self.book = self.store.load() if self.store is not None else ReferralBook()
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
        return describe(self.current(), self._language(), self.now_local())

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
        self.set_items([Item(LABELS[key][language], make)
                        for key, make in shortcuts(mine.now_local())])

    def header(self, width: int) -> str:
        return f"{self.title}: {self.mine.text()}"[:width]

    def _choose(self, item: Item) -> Outcome:
        try:
            self.mine.set(item.value())
        except ReferralError as exc:
            log.warning("referral refused: %s", exc)
            return Outcome()
        return Outcome(close=True)
