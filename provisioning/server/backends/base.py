"""What the inventory needs from a database: one connection, its dialect and its transactions.

The inventory writes its data statements once, with ``?`` placeholders and the column ``"user"``
quoted (a reserved word in PostgreSQL); a backend runs them on its engine. Everything else that
differs between engines lives in the backend's own file: the schema (table layout, CHECK
constraints, collations), how a placeholder is written, and how a transaction starts. Both
engines take the same upsert (``INSERT ... ON CONFLICT (...) DO UPDATE SET x = excluded.x``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

Params = Sequence[object]


class Rows(Protocol):
    """The result of one statement: iterate it for rows (tuples), or take ``fetchone()``."""

    @property
    def rowcount(self) -> int:
        """How many rows an INSERT, UPDATE or DELETE touched."""

    def fetchone(self) -> Any:
        """The next row as a tuple, or None."""

    def __iter__(self) -> Iterator[Any]:
        """The remaining rows, as tuples."""


class Backend(ABC):
    """One open connection to an inventory database, with the schema already in place.

    Used by one thread at a time. Statements outside ``transaction()`` commit on their own.
    """

    path: Path | None = None
    """The SQLite file; None for a server database."""

    @abstractmethod
    def describe(self) -> str:
        """Where the database is, safe to show: never a password."""

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> Rows:
        """Run one statement written with ``?`` placeholders."""

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per row of parameters."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""

    @abstractmethod
    def _begin(self, write: bool) -> None:
        """Start a transaction.

        A write one excludes every other writer of this database until it ends, so a check
        followed by a change sees no other writer in between; a read-only one sees one
        consistent state throughout.
        """

    @abstractmethod
    def _rollback(self) -> None:
        """Roll back the open transaction (after an error: never raise a second one)."""

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Backend]:
        """Run the block in one transaction: committed at the end, rolled back on an error."""
        self._begin(write)
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        self.execute("COMMIT")
