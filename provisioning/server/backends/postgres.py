"""The inventory in a PostgreSQL database, for a large fleet (psycopg 3).

The database must exist; the tables are created in it when missing. The connection runs in
autocommit mode and opens its transactions itself, as the SQLite backend does:

- a write transaction is ``BEGIN`` (READ COMMITTED) followed by a transaction-level advisory
  lock on this database (``pg_advisory_xact_lock(LOCK_KEY)``). Like SQLite's ``BEGIN
  IMMEDIATE`` it admits one inventory writer at a time, and every statement after the lock sees
  what earlier writers committed, so "no such device yet, insert it" cannot race another
  writer. Readers are never blocked. Waiting for the lock (or any lock) fails after
  ``LOCK_TIMEOUT``, as SQLite's busy timeout does;
- a read transaction is ``BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY``: one snapshot.

Keys and ordered columns are ``COLLATE "C"`` so that rows come back in the same order as from
SQLite (byte order), whatever the database's locale. PostgreSQL text cannot hold a NUL
character; such a value is refused with a ValueError before it is sent.

The URL may carry a password: it never appears in ``describe()`` nor in an error message.
Errors keep their psycopg class but lose the server's DETAIL, which can quote a whole row
(passwords included).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Final, NoReturn

import psycopg

from provisioning.server.backends.base import Backend, Params, Rows
from provisioning.server.backends.urls import mask_url, scrub

LOCK_KEY: Final = 0x4C7572656E  # b"Luren": the inventory's writer lock, one per database
LOCK_TIMEOUT: Final = "10s"

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS devices (
    mac TEXT COLLATE "C" PRIMARY KEY CHECK (mac ~ '^[0-9a-f]{12}$'),
    model TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    device_public_key TEXT NOT NULL DEFAULT '',
    device_cert_sha256 TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
    mac TEXT COLLATE "C" NOT NULL REFERENCES devices(mac) ON DELETE CASCADE,
    line_index INTEGER NOT NULL CHECK (line_index BETWEEN 1 AND 16),
    "user" TEXT NOT NULL,
    password TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    registrar TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mac, line_index)
);
CREATE TABLE IF NOT EXISTS models (
    name TEXT COLLATE "C" PRIMARY KEY,
    template TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS common (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    template TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS published (
    out_dir TEXT COLLATE "C" NOT NULL,
    file TEXT COLLATE "C" NOT NULL,
    input_sha256 TEXT NOT NULL,
    output_sha256 TEXT NOT NULL,
    PRIMARY KEY (out_dir, file)
);
"""

_BEGIN_WRITE: Final = "BEGIN"
_LOCK_WRITERS: Final = f"SELECT pg_advisory_xact_lock({LOCK_KEY})"
_BEGIN_READ: Final = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


@lru_cache(maxsize=256)
def placeholders(sql: str) -> str:
    """``sql`` with psycopg's ``%s`` for each ``?`` (and a literal ``%`` doubled).

    The inventory's statements have no ``?`` inside a string literal.
    """
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresBackend(Backend):
    """One connection to the database at ``url``, its tables created when missing."""

    def __init__(self, url: str) -> None:
        self._url = url
        with self._errors_scrubbed(connecting=True):
            self._db = psycopg.connect(url, autocommit=True)
        try:
            with self._errors_scrubbed():
                self._db.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            with self.transaction(), self._errors_scrubbed():
                self._db.execute(SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def describe(self) -> str:
        """The URL with its password masked."""
        return mask_url(self._url)

    def execute(self, sql: str, params: Params = ()) -> Rows:
        """Run one statement written with ``?`` placeholders."""
        _refuse_nul(params)
        with self._errors_scrubbed():
            return self._db.execute(placeholders(sql), params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per row of parameters (pipelined)."""
        rows = list(rows)
        for row in rows:
            _refuse_nul(row)
        with self._errors_scrubbed(), self._db.cursor() as cursor:
            cursor.executemany(placeholders(sql), rows)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def _begin(self, write: bool) -> None:
        with self._errors_scrubbed():
            if not write:
                self._db.execute(_BEGIN_READ)
                return
            self._db.execute(_BEGIN_WRITE)
            try:
                self._db.execute(_LOCK_WRITERS)
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if not self._db.closed:
            with contextlib.suppress(psycopg.Error):
                self._db.execute("ROLLBACK")

    @contextlib.contextmanager
    def _errors_scrubbed(self, *, connecting: bool = False) -> Iterator[None]:
        """Re-raise a psycopg error without DETAIL and without the URL's password."""
        try:
            yield
        except psycopg.Error as exc:
            self._raise_scrubbed(exc, connecting)

    def _raise_scrubbed(self, exc: psycopg.Error, connecting: bool) -> NoReturn:
        if connecting:  # no server row to leak here; libpq may quote the URL, though
            message = f"cannot connect to {self.describe()}: {exc}"
        else:
            message = exc.diag.message_primary or str(exc).split("\n", 1)[0]
        raise type(exc)(scrub(message, self._url).strip()) from None


def _refuse_nul(params: Params) -> None:
    """ValueError, in words, for a text parameter PostgreSQL cannot store."""
    for value in params:
        if isinstance(value, str) and "\0" in value:
            raise ValueError("text with a NUL character (\\0) cannot be stored in a "
                             "PostgreSQL inventory")
