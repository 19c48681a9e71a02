"""The referral book on disk: one JSON file, written atomically (`firmware.storage`).

Loading never raises. A missing file is an empty book (Available, no schedules). A file that is
not the JSON this module writes (torn by hand, wrong shapes, impossible values) is logged,
renamed to `<name>.corrupt` (`.corrupt.1`, ... when that exists) so it can be looked at, and
the book starts empty. One entry whose type is no longer configured (a custom type removed
from the config) or whose time zone this system does not know is dropped alone, with a
warning; the rest of the file is kept. Custom types are not stored here: they come from config.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from firmware.referral.book import ReferralBook
from firmware.referral.kinds import Referral, ReferralError, ReferralType
from firmware.referral.schedule import ScheduledReferral
from firmware.storage import atomic_write_json, move_aside

log = logging.getLogger("luren.referral")

FORMAT = 1
DROPPABLE = frozenset({"unknown_type", "bad_time_zone"})  # entries dropped alone, see above


class CorruptBook(ValueError):
    """The stored JSON is not a referral book."""


def referral_to_json(referral: Referral) -> dict[str, Any]:
    return {"type": referral.type_key, "note": referral.note,
            "until": referral.until.isoformat() if referral.until else None,
            "set_at": referral.set_at.isoformat(), "duration_min": referral.duration_min}


def referral_from_json(data: Mapping[str, Any]) -> Referral:
    until = data["until"]
    return Referral(_str(data["type"]), None if until is None else _datetime(until),
                    _str(data.get("note", "")), _datetime(data["set_at"]),
                    data.get("duration_min"))


def schedule_to_json(schedule: ScheduledReferral) -> dict[str, Any]:
    return {"id": schedule.id, "type": schedule.type_key, "note": schedule.note,
            "first_date": schedule.first_date.isoformat(),
            "start": schedule.start.isoformat("minutes"),
            "end": schedule.end.isoformat("minutes") if schedule.end else None,
            "duration_min": schedule.duration_min, "recurrence": str(schedule.recurrence),
            "weekdays": sorted(schedule.weekdays), "tz": schedule.tz,
            "until_date": schedule.until_date.isoformat() if schedule.until_date else None}


def schedule_from_json(data: Mapping[str, Any]) -> ScheduledReferral:
    end, until_date = data.get("end"), data.get("until_date")
    return ScheduledReferral(
        _str(data["type"]), date.fromisoformat(data["first_date"]),
        time.fromisoformat(data["start"]), None if end is None else time.fromisoformat(end),
        data.get("duration_min"), data.get("recurrence", "none"),
        frozenset(data.get("weekdays", ())), _str(data.get("tz", "Europe/Stockholm")),
        None if until_date is None else date.fromisoformat(until_date),
        _str(data.get("note", "")), _str(data.get("id", "")))


def book_to_json(book: ReferralBook) -> dict[str, Any]:
    return {"format": FORMAT,
            "manual": referral_to_json(book.manual) if book.manual else None,
            "schedules": [schedule_to_json(s) for s in book.schedules]}


def book_from_json(data: Any, types: Mapping[str, ReferralType] | None = None) -> ReferralBook:
    """The book in `data`; `CorruptBook` when it is not one (droppable entries are dropped)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorruptBook("not a referral book (format 1)")
    if not isinstance(data.get("schedules", []), list):
        raise CorruptBook("schedules is not a list")
    book = ReferralBook(types)
    if data.get("manual") is not None:
        _keep(lambda: book.set(referral_from_json(data["manual"])), "manual referral")
    for entry in data.get("schedules", []):
        _keep(lambda entry=entry: book.add_schedule(schedule_from_json(entry)), "schedule")
    return book


def _keep(add: Any, what: str) -> None:
    try:
        add()
    except ReferralError as exc:
        if exc.code not in DROPPABLE:
            raise CorruptBook(f"{what}: {exc}") from exc
        log.warning("dropped a stored %s: %s", what, exc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptBook(f"{what}: {exc!r}") from exc


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise CorruptBook(f"{value!r} is not a string")
    return value


def _datetime(value: Any) -> datetime:
    return datetime.fromisoformat(_str(value))


class ReferralStore:
    """Loads and saves one user's `ReferralBook` at `path`."""

    def __init__(self, path: Path, types: Mapping[str, ReferralType] | None = None) -> None:
        self.path = Path(path)
        self.types = types

    def load(self) -> ReferralBook:
        """The stored book; an empty one when missing, unreadable or corrupt (never raises)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return ReferralBook(self.types)
        except OSError as exc:
            log.error("referrals %s unreadable (%s): starting as Available", self.path, exc)
            return ReferralBook(self.types)
        try:
            return book_from_json(json.loads(raw), self.types)
        except (CorruptBook, ValueError, RecursionError) as exc:
            aside = self._move_aside()
            log.error("referrals %s corrupt (%s): starting as Available with no schedules; "
                      "the file is kept as %s", self.path, exc, aside)
            return ReferralBook(self.types)

    def save(self, book: ReferralBook) -> bool:
        """Write `book` atomically; False (and a log line) when the disk refuses."""
        try:
            atomic_write_json(self.path, book_to_json(book))
        except OSError as exc:
            log.error("referrals %s not saved: %s", self.path, exc)
            return False
        return True

    def _move_aside(self) -> Path | None:
        try:
            aside = move_aside(self.path)
        except OSError as exc:
            log.error("could not move %s aside: %s", self.path, exc)
            return None
        return aside
