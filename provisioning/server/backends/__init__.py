"""Where the inventory lives: a SQLite file (the default) or a PostgreSQL database.

``open_backend(target)`` picks the backend: a ``postgresql://`` or ``postgres://`` URL opens
PostgreSQL (psycopg 3, imported only then), anything else is a SQLite file path. A file whose
name starts like a URL is reached with a ``Path`` or a ``./`` in front.

``database_errors()`` lists the exception classes a database can raise, for callers that turn
them into a message; it imports nothing that is not loaded already.
"""

from __future__ import annotations

import os
import sqlite3
import sys

from provisioning.server.backends.base import Backend
from provisioning.server.backends.urls import is_postgres_url, mask_url

__all__ = ["Backend", "database_errors", "is_postgres_url", "mask_url", "open_backend"]


def open_backend(target: str | os.PathLike[str]) -> Backend:
    """Connect to the inventory at ``target`` (a SQLite path or a PostgreSQL URL)."""
    if not is_postgres_url(target):
        from provisioning.server.backends.sqlite import SqliteBackend

        return SqliteBackend(target)
    try:
        from provisioning.server.backends.postgres import PostgresBackend
    except ImportError as exc:
        raise ValueError(f"a PostgreSQL inventory needs psycopg 3 ({exc}); install it with "
                         "pip install 'psycopg[binary]'") from None
    return PostgresBackend(str(target))


def database_errors() -> tuple[type[Exception], ...]:
    """``sqlite3.Error``, and ``psycopg.Error`` when psycopg has been imported."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)
