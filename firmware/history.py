"""The phone's call history: missed, received and dialled calls in one SQLite file.

    store = HistoryStore(data_dir / "history.db", now=phone.wall_time)
    store.add("missed", "+4681234567", "Reception", 0, started, 0.0)
    store.list(kind="missed", limit=10, name_for=directory.name_for)
    store.unseen_missed()  # the count on the idle screen, the LED blinks while it is > 0
    store.mark_seen()      # the user opened the list

Pure Python and the standard library's `sqlite3`; no threads. Every method runs one short
statement or one transaction and returns.

Power cuts. The database runs in WAL mode (`PRAGMA journal_mode=WAL`) with
`PRAGMA synchronous=NORMAL`. A commit appends the changed pages to the write-ahead log, each
frame carrying a checksum and the log's salt, and the commit frame marks the end of a
transaction; SQLite fsyncs the log only before a checkpoint copies it into the database file,
and the database file before the log is reset. After a power cut, opening the database replays
the log up to the last commit frame whose checksums hold and ignores the rest. So the database
is always consistent: a power cut loses at most the last transactions, those committed since
the last checkpoint that the operating system had not yet written out; it never tears an entry
and never breaks the file. (`synchronous=FULL` would fsync
on every commit to keep those last calls too, at the price of a flash write per call; for a
call list that trade is not worth it.) A crashed or killed process loses nothing committed at
all: the log was written to the operating system before `add()` returned. This holds as long as
the storage honours fsync; a card that acknowledges writes it has not done can break any file.

Damaged files. A history file SQLite cannot read ("file is not a database", "database disk
image is malformed", a failing `PRAGMA quick_check` at open, a foreign SQLite file, or a
schema from newer firmware) is renamed aside to `<name>.corrupt-<UTC time>` (`<name>.newer-...`
for the last case), together with its `-wal` log and any rollback `-journal` so that the pair
can still be opened for inspection, and a fresh empty history is created; the log says so in
plain words. This happens at open and, should the file go bad while the phone runs, at the
first operation that notices. The phone never stops over its call list. Other errors (the
directory is not writable, the disk is full) are raised as `sqlite3.Error`.

Schema. One table, `calls`; `PRAGMA user_version` holds the schema version, which is
`len(MIGRATIONS)`. `MIGRATIONS[n]` takes a database from version n to n + 1; at open every
missing step runs, all in one transaction with the version update, so an upgrade interrupted
by a power cut is simply done again. To change the schema, append a step; never edit one.

Times. `started` is stored as whole microseconds since 1970-01-01 UTC (column `started_us`;
in the sqlite3 shell: `datetime(started_us / 1000000, 'unixepoch')`) and returned as an aware
datetime in UTC; the screen converts it to local time. Ordering is by that instant, so a list
spanning a daylight-saving change is in true order. Naive datetimes are refused.

Size. At most `max_entries` entries are kept: every `add()` deletes the oldest (by `started`,
then by id) beyond the bound in the same transaction, and opening a store trims a file written
with a larger bound. Ids are never reused (`AUTOINCREMENT`), so a screen holding an id can
never delete or mark a different call. The WAL log is folded into the file every
`WAL_CHECKPOINT_PAGES` pages (about 1 MiB) rather than SQLite's default 1000 (4 MiB), and cut
back to `WAL_LIMIT_BYTES` after a checkpoint: 1,000 entries take about 150 KiB of file (see
`tools/bench/history_bench.py`), and the default would leave a 4 MiB log beside it.

Hostile text. Numbers and names come from the network. Before they are stored they are cut to
`NUMBER_MAX` (128: an E.164 number has at most 15 digits, a SIP user part or `user@host`
address fits comfortably) and `NAME_MAX` (64: two lines of the widest screen) characters;
control and format characters (C0/C1 controls, escape sequences' ESC, NUL, bidi overrides,
lone surrogates, private-use characters) are removed; tabs, newlines and other white space
become single spaces. Values only ever reach SQLite as statement parameters.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import logging
import math
import os
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from firmware.call import Call

log = logging.getLogger("luren.history")

KINDS = ("missed", "received", "dialed")
NUMBER_MAX = 128  # characters kept of a number (see the module docstring)
NAME_MAX = 64  # characters kept of a name
LINE_MAX = 255  # lines are 0-based indexes into the line configuration
DEFAULT_MAX_ENTRIES = 1000
BUSY_TIMEOUT_S = 2.0  # only the phone process writes; a lock held longer is a fault
WAL_CHECKPOINT_PAGES = 256  # fold the log into the file every ~1 MiB of log (4 KiB pages)
WAL_LIMIT_BYTES = 1 << 20  # and cut a log that grew beyond that back to 1 MiB

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_SELECT_ALL = ("SELECT id, kind, number, name, line, started_us, duration_s, seen FROM calls "
               "ORDER BY started_us DESC, id DESC LIMIT ? OFFSET ?")
_SELECT_KIND = ("SELECT id, kind, number, name, line, started_us, duration_s, seen FROM calls "
                "WHERE kind = ? ORDER BY started_us DESC, id DESC LIMIT ? OFFSET ?")
_SELECT_ONE = ("SELECT id, kind, number, name, line, started_us, duration_s, seen FROM calls "
               "WHERE id = ?")
_INSERT = ("INSERT INTO calls (kind, number, name, line, started_us, duration_s, seen) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
# Delete every entry older than the max_entries-th newest; nothing while there are fewer.
_TRIM = ("DELETE FROM calls WHERE (started_us, id) < (SELECT started_us, id FROM calls "
         "ORDER BY started_us DESC, id DESC LIMIT 1 OFFSET ?)")

T = TypeVar("T")


@dataclass(frozen=True)
class HistoryEntry:
    """One call in the list. `seen` is False only for a missed call nobody has looked at."""

    id: int
    kind: str  # "missed", "received" or "dialed"
    number: str
    name: str
    line: int
    started: datetime  # aware, UTC
    duration_s: float
    seen: bool


class _Unusable(Exception):
    """The file at the history path cannot serve as this firmware's call history."""

    def __init__(self, reason: str, tag: str = "corrupt") -> None:
        super().__init__(reason)
        self.reason, self.tag = reason, tag


def clean_text(text: str, limit: int) -> str:
    """`text` without control or format characters, white space collapsed, at most `limit` long.

    Only the first `4 * limit` characters are looked at, so a megabyte of junk costs nothing.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected text, got {type(text).__name__}")
    kept = "".join(" " if ch.isspace() else ch for ch in text[:limit * 4]
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())[:limit].rstrip()


def kind_of(call: Call) -> str | None:
    """The history kind for an ended call; None for calls that do not belong in the list.

    Outgoing calls are "dialed" (unless nothing was dialled, or a feature code was), incoming
    calls that were answered are "received", the other incoming ones are "missed".
    """
    if call.feature:
        return None
    if call.direction == "outgoing":
        return "dialed" if call.number else None
    return "received" if call.connected_at is not None else "missed"


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"history kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


def _check_line(line: int) -> int:
    if isinstance(line, bool) or not isinstance(line, int) or not 0 <= line <= LINE_MAX:
        raise ValueError(f"line must be an index 0..{LINE_MAX}, not {line!r}")
    return line


def _clean_duration(seconds: float) -> float:
    seconds = float(seconds)
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _to_us(started: datetime) -> int:
    if started.tzinfo is None or started.utcoffset() is None:
        raise ValueError("started must be timezone-aware")
    return (started - _EPOCH) // _MICROSECOND


def _from_us(us: int) -> datetime:
    return _EPOCH + us * _MICROSECOND


def _entry(row: tuple) -> HistoryEntry:
    id_, kind, number, name, line, started_us, duration_s, seen = row
    return HistoryEntry(id_, kind, number, name, line, _from_us(started_us), duration_s,
                        bool(seen))


def _is_damage(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _DAMAGE_CODES


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (if SQLite has not already)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _create_v1(db: sqlite3.Connection) -> None:
    if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise _Unusable("it is an SQLite database, but not a call history")
    db.execute("""CREATE TABLE calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('missed', 'received', 'dialed')),
        number TEXT NOT NULL,
        name TEXT NOT NULL,
        line INTEGER NOT NULL,
        started_us INTEGER NOT NULL,
        duration_s REAL NOT NULL,
        seen INTEGER NOT NULL)""")
    db.execute("CREATE INDEX calls_by_time ON calls (started_us)")
    db.execute("CREATE INDEX calls_by_kind ON calls (kind, started_us)")
    db.execute("CREATE INDEX calls_unseen ON calls (kind) WHERE seen = 0")


# MIGRATIONS[n] upgrades a database from schema version n to n + 1; append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HistoryStore:
    """The call list in one SQLite file at `path`, at most `max_entries` entries long.

    `now` gives wall-clock time (the phone's clock); it only names files moved aside. Opening
    never fails over a damaged file (see the module docstring); it raises `sqlite3.Error` only
    when no database can be created at `path` at all.
    """

    def __init__(self, path: Path, *, max_entries: int = DEFAULT_MAX_ENTRIES,
                 now: Callable[[], datetime]) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.path = Path(path)
        self.max_entries = max_entries
        self._now = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open()

    # -- the list -------------------------------------------------------------------------

    def add(self, kind: str, number: str, name: str | None, line: int, started: datetime,
            duration_s: float) -> HistoryEntry:
        """Store one call, trimming the list to `max_entries` in the same transaction.

        Returns the entry as stored (text cleaned, `started` in UTC). Missed calls start
        unseen. Raises ValueError for an unknown kind, a bad line or a naive `started`.
        """
        entry = HistoryEntry(0, _check_kind(kind), clean_text(number, NUMBER_MAX),
                             clean_text(name or "", NAME_MAX), _check_line(line),
                             _from_us(_to_us(started)), _clean_duration(duration_s),
                             kind != "missed")
        return dataclasses.replace(entry, id=self._guarded(lambda db: self._insert(db, entry)))

    def add_call(self, call: Call, started: datetime, now: float) -> HistoryEntry | None:
        """Store an ended `Call` (see `kind_of`); `now` is on the call's clock scale."""
        kind = kind_of(call)
        if kind is None:
            return None
        return self.add(kind, call.number, call.remote_name, call.line, started,
                        call.duration(now))

    def list(self, kind: str | None = None, limit: int = 100, offset: int = 0,
             name_for: Callable[[str], str | None] | None = None) -> builtins.list[HistoryEntry]:
        """Entries newest first, all kinds or only `kind`; a page of `limit` from `offset`.

        `name_for(number)` (the directory) names each entry; where it has no name (or fails)
        the name stored with the call is kept.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        if kind is None:
            sql, args = _SELECT_ALL, (limit, offset)
        else:
            sql, args = _SELECT_KIND, (_check_kind(kind), limit, offset)
        rows = self._guarded(lambda db: db.execute(sql, args).fetchall())
        return self._named([_entry(row) for row in rows], name_for)

    def get(self, entry_id: int,
            name_for: Callable[[str], str | None] | None = None) -> HistoryEntry | None:
        """One entry by id, or None if there is no such entry (any more)."""
        row = self._guarded(lambda db: db.execute(_SELECT_ONE, (entry_id,)).fetchone())
        return None if row is None else self._named([_entry(row)], name_for)[0]

    def delete(self, entry_id: int) -> bool:
        """Remove one entry; False if it did not exist."""
        sql = "DELETE FROM calls WHERE id = ?"
        return self._guarded(lambda db: db.execute(sql, (entry_id,)).rowcount) > 0

    def clear(self, kind: str | None = None) -> int:
        """Remove every entry, or every entry of `kind`; returns how many went."""
        if kind is None:
            return self._guarded(lambda db: db.execute("DELETE FROM calls").rowcount)
        args = (_check_kind(kind),)
        return self._guarded(lambda db: db.execute("DELETE FROM calls WHERE kind = ?",
                                                   args).rowcount)

    def unseen_missed(self) -> int:
        """How many missed calls nobody has looked at yet (the idle screen's count)."""
        sql = "SELECT count(*) FROM calls WHERE kind = 'missed' AND seen = 0"
        return self._guarded(lambda db: db.execute(sql).fetchone()[0])

    def mark_seen(self, up_to: int | None = None) -> int:
        """The user looked at the list: missed calls count as seen; returns how many changed.

        Pass the newest id the screen showed as `up_to` so that a call missed while the list
        was open still counts as unseen.
        """
        sql = "UPDATE calls SET seen = 1 WHERE kind = 'missed' AND seen = 0 AND id <= ?"
        limit = (1 << 63) - 1 if up_to is None else up_to
        return self._guarded(lambda db: db.execute(sql, (limit,)).rowcount)

    def close(self) -> None:
        """Close the database (SQLite folds the log into the file); safe to call twice."""
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------------

    def _insert(self, db: sqlite3.Connection, entry: HistoryEntry) -> int:
        with _transaction(db):
            cursor = db.execute(_INSERT, (entry.kind, entry.number, entry.name, entry.line,
                                          _to_us(entry.started), entry.duration_s,
                                          int(entry.seen)))
            db.execute(_TRIM, (self.max_entries - 1,))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _named(self, entries: builtins.list[HistoryEntry],
               name_for: Callable[[str], str | None] | None) -> builtins.list[HistoryEntry]:
        if name_for is None:
            return entries
        names: dict[str, str] = {}
        for number in {entry.number for entry in entries}:
            names[number] = self._lookup(name_for, number)
        return [dataclasses.replace(e, name=names[e.number] or e.name) for e in entries]

    @staticmethod
    def _lookup(name_for: Callable[[str], str | None], number: str) -> str:
        try:
            name = name_for(number)
        except Exception:
            log.warning("directory lookup for %r failed; showing the name the call brought",
                        number, exc_info=True)
            return ""
        return clean_text(name, NAME_MAX) if isinstance(name, str) else ""

    def _guarded(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run `operation`; if the file turns out damaged, replace it and run it again."""
        try:
            return operation(self._db)
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            self._db = self._replace(self._db, exc)
        return operation(self._db)

    def _open(self) -> sqlite3.Connection:
        """Connect and prepare the database; a damaged file is moved aside for a fresh one."""
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._prepare(db)
        except (_Unusable, sqlite3.DatabaseError) as exc:
            if isinstance(exc, _Unusable) or _is_damage(exc):
                return self._replace(db, exc)
            db.close()
            raise
        except BaseException:
            db.close()
            raise
        return db

    def _open_fresh(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._prepare(db)
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """WAL mode, a consistency check, the schema, the bound; raises if the file is bad."""
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            log.warning("call history %s: the file system does not allow WAL mode (%s "
                        "instead); a power cut during a write may cost the whole list",
                        self.path, mode)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES:d}")  # ints, no input
        db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES:d}")
        problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            found = "; ".join(" ".join(problems).splitlines()[:6])
            raise _Unusable(f"the file is damaged (consistency check: {found})")
        self._migrate(db)
        with _transaction(db):
            db.execute(_TRIM, (self.max_entries - 1,))

    def _migrate(self, db: sqlite3.Connection) -> None:
        target = len(MIGRATIONS)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > target:
            raise _Unusable(f"it was written by newer firmware (history format {version}, "
                            f"this firmware knows up to {target})", tag="newer")
        if version == target:
            return
        with _transaction(db):
            for step in MIGRATIONS[version:]:
                step(db)
            db.execute(f"PRAGMA user_version = {target:d}")  # a pragma takes no parameters
        log.info("call history %s: format %d -> %d", self.path, version, target)

    def _replace(self, db: sqlite3.Connection, exc: Exception) -> sqlite3.Connection:
        """Move the unusable file aside, log it, and open a fresh, empty history.

        The files are renamed while `db` is still open: closing it first would let SQLite
        delete the file's log, which belongs with it.
        """
        reason = (exc.reason if isinstance(exc, _Unusable)
                  else f"the file is damaged or not a database (SQLite: {exc})")
        tag = exc.tag if isinstance(exc, _Unusable) else "corrupt"
        moved = self._move_aside(tag)
        with contextlib.suppress(sqlite3.Error):
            db.close()
        log.error("Call history file %s could not be used: %s. Moved it aside to %s and "
                  "started a new, empty call history. The phone works normally; the old call "
                  "list is only in the moved file.", self.path, reason, moved)
        return self._open_fresh()

    def _move_aside(self, tag: str) -> Path:
        stamp = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.{tag}-{stamp}")
        for n in range(1, 1000):
            if not any(Path(f"{target}{s}").exists() for s in ("", "-wal", "-journal")):
                break
            target = self.path.with_name(f"{self.path.name}.{tag}-{stamp}.{n}")
        for suffix in ("", "-wal", "-journal"):  # a log goes along: it belongs to that file
            with contextlib.suppress(FileNotFoundError):
                if suffix and os.path.getsize(f"{self.path}{suffix}") == 0:
                    os.unlink(f"{self.path}{suffix}")
                else:
                    os.replace(f"{self.path}{suffix}", f"{target}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{self.path}-shm")  # only an index of the log; SQLite rebuilds it
        _fsync_dir(self.path.parent)
        return target
