"""The inventory in one SQLite file: WAL mode, foreign keys on, created readable by its owner only.

A write transaction is ``BEGIN IMMEDIATE`` (it takes the file's write lock at once, waiting up
to 10 s for another writer); a read one is ``BEGIN DEFERRED``, a consistent snapshot in WAL mode.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from provisioning.server.backends.base import Backend, Params, Rows

BUSY_TIMEOUT: Final = 10.0
"""Seconds a statement waits for another connection's write lock before failing."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS devices (
    mac TEXT PRIMARY KEY CHECK (length(mac) = 12 AND mac NOT GLOB '*[^0-9a-f]*'),
    model TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    device_public_key TEXT NOT NULL DEFAULT '',
    device_cert_sha256 TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lines (
    mac TEXT NOT NULL REFERENCES devices(mac) ON DELETE CASCADE,
    line_index INTEGER NOT NULL CHECK (line_index BETWEEN 1 AND 16),
    user TEXT NOT NULL,
    password TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    registrar TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mac, line_index)
);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS common (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    template TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS published (
    out_dir TEXT NOT NULL,
    file TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    output_sha256 TEXT NOT NULL,
    PRIMARY KEY (out_dir, file)
);
"""


class SqliteBackend(Backend):
    """One SQLite file (created when missing, mode 0600), its schema created when missing."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
        except BaseException:
            self._db.close()  # also rolls back a half-run schema script
            raise

    def describe(self) -> str:
        """The file's path."""
        return str(self.path)

    def execute(self, sql: str, params: Params = ()) -> Rows:
        """Run one statement (SQLite takes ``?`` placeholders as they are)."""
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per row of parameters."""
        self._db.executemany(sql, rows)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def _begin(self, write: bool) -> None:
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")

    def _rollback(self) -> None:
        self._db.execute("ROLLBACK")
