"""The device inventory: phones, their SIP lines, model templates and the common layer.

One database holds everything the publisher needs: by default one SQLite file (WAL mode, foreign
keys on), or, for a large fleet, a PostgreSQL database given by its URL
(``postgresql://user@host/dbname``; see ``provisioning.server.backends``). It contains SIP
passwords and per-device secrets in clear: a SQLite file is created readable by its owner only
(mode 0600), keep it off the web server's document root; give a PostgreSQL inventory a database
and role of its own. Every change runs in one transaction, with one writer at a time.

MAC addresses are accepted as ``00:1A:2B:3C:4D:5E``, ``00-1a-2b-3c-4d-5e``, ``001a.2b3c.4d5e``
or ``001A2B3C4D5E`` (mixed separators too) and stored as 12 lowercase hex digits, the form the
phone asks for (``<mac>.toml``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Final

from provisioning.server.backends import Backend, open_backend

MAX_LINES: Final = 16
"""Line indexes run from 1 to this (the schema allows 1 to 16 lines)."""

_SEPARATORS: Final = re.compile(r"[:\-.]")
_HEX12: Final = re.compile(r"[0-9a-f]{12}")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_MODEL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED_MODELS: Final = frozenset({"common", "index"})


def normalize_mac(text: str) -> str:
    """``text`` as 12 lowercase hex digits; ValueError in words when it is not a device MAC.

    ``:``, ``-`` and ``.`` separators are dropped; the address must be a unicast, non-zero one.
    """
    if not isinstance(text, str):
        raise ValueError(f"MAC address must be text, not {type(text).__name__}")
    mac = _SEPARATORS.sub("", text.strip()).lower()
    if not _HEX12.fullmatch(mac):
        raise ValueError(
            f"{text!r} is not a MAC address: expected 12 hex digits, e.g. 00:1a:2b:3c:4d:5e "
            "or 001a2b3c4d5e")
    if mac == "0" * 12:
        raise ValueError(f"{text!r} is the all-zero MAC address, which no device has")
    if int(mac[:2], 16) & 1:
        raise ValueError(f"{text!r} is a multicast/broadcast MAC address, not a device's")
    return mac


def check_model_name(model: str) -> str:
    """``model`` if it can name a ``<model>.toml`` file; ValueError in words otherwise."""
    if not isinstance(model, str) or not _MODEL_RE.fullmatch(model):
        raise ValueError(
            f"model name {model!r} is not allowed: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit")
    if model.lower() in _RESERVED_MODELS:
        raise ValueError(f"model name {model!r} is reserved (it would clash with {model}.toml)")
    if _HEX12.fullmatch(model.lower()):
        raise ValueError(f"model name {model!r} looks like a MAC address; its file would clash "
                         "with a device's")
    return model


def _check_cert_sha256(text: str) -> str:
    """A certificate fingerprint as 64 lowercase hex digits ("" stays empty)."""
    digest = _SEPARATORS.sub("", text.strip()).lower()
    if digest and not _HEX64.fullmatch(digest):
        raise ValueError(f"certificate SHA-256 {text!r} is not 64 hex digits")
    return digest


def check_template(what: str, text: str) -> None:
    """ValueError naming ``what`` when ``text`` has a malformed ``$`` placeholder."""
    if not isinstance(text, str):
        raise ValueError(f"{what}: the template must be text")
    if not Template(text).is_valid():
        raise ValueError(f"{what}: malformed placeholder; write ${{name}} (or $$ for a "
                         "literal $)")


def _is_line_index(index: object) -> bool:
    """Whether ``index`` is a line number from 1 to MAX_LINES (an int, not a bool)."""
    return isinstance(index, int) and not isinstance(index, bool) and 1 <= index <= MAX_LINES


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Line:
    """One SIP line of a device. The password is in its own field and never in ``repr()``."""

    index: int
    user: str
    password: str = field(repr=False)
    display_name: str = ""
    registrar: str = ""
    """Empty: the site default (the ``registrar`` site value at publish time)."""
    label: str = ""


@dataclass(frozen=True)
class Device:
    """One phone in the inventory. ``secret`` and line passwords are never in ``repr()``."""

    mac: str
    model: str
    name: str
    public_key: str
    """The device's X25519 public key (text) for per-device encryption; "" = none."""
    cert_sha256: str
    """SHA-256 of the device certificate, 64 hex digits; "" = none."""
    secret: str = field(repr=False)
    created: str
    updated: str
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Everything a publish reads, taken in one read transaction."""

    devices: list[Device]
    models: dict[str, str]
    """Model name -> template text."""
    common: str
    """The common layer's template text ("" when never set)."""


class Inventory:
    """The device inventory, its tables created when missing.

    ``target`` is a SQLite file path (the file is created when missing, mode 0600) or a
    PostgreSQL URL, ``postgresql://`` or ``postgres://`` (the database must exist). A password
    in the URL is never shown: ``repr()`` and ``target`` mask it. One thread at a time.
    """

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self._db: Backend = open_backend(target)
        self.path: Path | None = self._db.path
        """The SQLite file; None for a PostgreSQL inventory."""
        self.target = self._db.describe()
        """Where the inventory is, safe to show (a URL's password masked)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"

    # --- plumbing -------------------------------------------------------------------------------

    def _transaction(self, *, write: bool = True) -> AbstractContextManager[Backend]:
        """Run the block in one transaction: committed at the end, rolled back on an error.

        A write transaction admits no other writer until it ends.
        """
        return self._db.transaction(write=write)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_device(self, db: Backend, mac: str) -> None:
        if db.execute("SELECT 1 FROM devices WHERE mac = ?", (mac,)).fetchone() is None:
            raise ValueError(f"no device {mac} in the inventory")

    # --- devices ----------------------------------------------------------------------------

    def add_device(self, mac: str, model: str, name: str = "", *, public_key: str = "",
                   cert_sha256: str = "", secret: str = "") -> str:
        """Add a phone; returns its normalised MAC. ValueError for a bad or known MAC."""
        mac = normalize_mac(mac)
        check_model_name(model)
        cert = _check_cert_sha256(cert_sha256)
        now = _now()
        with self._transaction() as db:
            row = db.execute("SELECT model FROM devices WHERE mac = ?", (mac,)).fetchone()
            if row is not None:
                raise ValueError(f"device {mac} is already in the inventory (model {row[0]}); "
                                 "remove it first to add it again")
            db.execute(
                "INSERT INTO devices (mac, model, name, device_public_key, device_cert_sha256, "
                "secret, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (mac, model, name, public_key.strip(), cert, secret, now, now))
        return mac

    def update_device(self, mac: str, *, model: str | None = None, name: str | None = None,
                      public_key: str | None = None, cert_sha256: str | None = None,
                      secret: str | None = None) -> None:
        """Change the given fields of a known device (None = leave as is)."""
        mac = normalize_mac(mac)
        changes: dict[str, str] = {}
        if model is not None:
            changes["model"] = check_model_name(model)
        if name is not None:
            changes["name"] = name
        if public_key is not None:
            changes["device_public_key"] = public_key.strip()
        if cert_sha256 is not None:
            changes["device_cert_sha256"] = _check_cert_sha256(cert_sha256)
        if secret is not None:
            changes["secret"] = secret
        changes["updated"] = _now()
        columns = ", ".join(f"{column} = ?" for column in changes)  # fixed names, not input
        with self._transaction() as db:
            self._require_device(db, mac)
            db.execute(f"UPDATE devices SET {columns} WHERE mac = ?", (*changes.values(), mac))

    def remove_device(self, mac: str) -> None:
        """Remove a phone and its lines; ValueError when it is not in the inventory."""
        mac = normalize_mac(mac)
        with self._transaction() as db:
            self._require_device(db, mac)
            db.execute("DELETE FROM devices WHERE mac = ?", (mac,))

    def set_line(self, mac: str, index: int, user: str, password: str, display_name: str = "",
                 registrar: str = "", label: str = "") -> None:
        """Add or replace line ``index`` (1 to 16) of a known device.

        The values are checked against the phone's schema at publish time, not here.
        """
        mac = normalize_mac(mac)
        if not _is_line_index(index):
            raise ValueError(f"line index must be a number from 1 to {MAX_LINES}, not {index!r}")
        values = {"user": user, "password": password, "display_name": display_name,
                  "registrar": registrar, "label": label}
        for key, value in values.items():
            if not isinstance(value, str):
                raise ValueError(f"line {key} must be text, not {type(value).__name__}")
        with self._transaction() as db:
            self._require_device(db, mac)
            db.execute(
                'INSERT INTO lines (mac, line_index, "user", password, display_name, registrar, '
                "label) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mac, line_index) DO UPDATE SET "
                '"user" = excluded."user", password = excluded.password, '
                "display_name = excluded.display_name, registrar = excluded.registrar, "
                "label = excluded.label",
                (mac, index, *values.values()))
            db.execute("UPDATE devices SET updated = ? WHERE mac = ?", (_now(), mac))

    def remove_line(self, mac: str, index: int) -> None:
        """Remove line ``index`` of a device; ValueError when there is no such line."""
        mac = normalize_mac(mac)
        with self._transaction() as db:
            self._require_device(db, mac)
            gone = _is_line_index(index) and db.execute(
                "DELETE FROM lines WHERE mac = ? AND line_index = ?", (mac, index)).rowcount > 0
            if not gone:  # an index that cannot exist is not sent: no engine-specific error
                raise ValueError(f"device {mac} has no line {index}")
            db.execute("UPDATE devices SET updated = ? WHERE mac = ?", (_now(), mac))

    def device(self, mac: str) -> Device | None:
        """The device with this MAC (any accepted form), or None."""
        found = self._read_devices(self._db, normalize_mac(mac))
        return found[0] if found else None

    def devices(self) -> list[Device]:
        """Every device with its lines, ordered by MAC (one query)."""
        return self._read_devices(self._db, None)

    @staticmethod
    def _read_devices(db: Backend, mac: str | None) -> list[Device]:
        where = "WHERE d.mac = ?" if mac is not None else ""
        rows = db.execute(
            "SELECT d.mac, d.model, d.name, d.device_public_key, d.device_cert_sha256, d.secret, "
            'd.created, d.updated, l.line_index, l."user", l.password, l.display_name, '
            "l.registrar, l.label FROM devices d LEFT JOIN lines l ON l.mac = d.mac "
            f"{where} ORDER BY d.mac, l.line_index",
            (mac,) if mac is not None else ())
        result: list[Device] = []
        current: list[object] | None = None
        lines: list[Line] = []

        def finish() -> None:
            if current is not None:
                result.append(Device(*current, lines=tuple(lines)))  # type: ignore[arg-type]

        for row in rows:
            if current is None or row[0] != current[0]:
                finish()
                current, lines = list(row[:8]), []
            if row[8] is not None:
                lines.append(Line(*row[8:]))
        finish()
        return result

    # --- templates ------------------------------------------------------------------------------

    def set_model_template(self, model: str, text: str) -> None:
        """Set the TOML template of ``<model>.toml`` (``${var}`` placeholders allowed)."""
        check_model_name(model)
        check_template(f"model template {model!r}", text)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO models (name, template, updated) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET template = excluded.template, updated = excluded.updated",
                (model, text, _now()))

    def model_templates(self) -> dict[str, str]:
        """Model name -> template text."""
        return dict(self._db.execute("SELECT name, template FROM models ORDER BY name"))

    def set_common(self, text: str) -> None:
        """Set the common layer's TOML (``${var}`` placeholders for site values allowed)."""
        check_template("common template", text)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO common (id, template, updated) VALUES (1, ?, ?) ON CONFLICT (id) "
                "DO UPDATE SET template = excluded.template, updated = excluded.updated",
                (text, _now()))

    def common(self) -> str:
        """The common layer's template text ("" when never set)."""
        row = self._db.execute("SELECT template FROM common WHERE id = 1").fetchone()
        return row[0] if row else ""

    def snapshot(self) -> Snapshot:
        """Devices, model templates and the common layer, read consistently together."""
        with self._transaction(write=False) as db:
            return Snapshot(self._read_devices(db, None),
                            dict(db.execute("SELECT name, template FROM models")),
                            self.common())

    # --- publish bookkeeping ------------------------------------------------------------------

    def published_digests(self, out_dir: str) -> dict[str, tuple[str, str]]:
        """File -> (input sha256, output sha256) of what was last published to ``out_dir``.

        Used to leave encrypted files alone when their input did not change (encryption is
        randomised, so the output bytes differ every time). Stored here, not in the public tree,
        because the input digest covers passwords.
        """
        rows = self._db.execute(
            "SELECT file, input_sha256, output_sha256 FROM published WHERE out_dir = ?",
            (out_dir,))
        return {file: (source, output) for file, source, output in rows}

    def record_published(self, out_dir: str, digests: Mapping[str, tuple[str, str]]) -> None:
        """Replace the publish bookkeeping of ``out_dir`` with ``digests``."""
        with self._transaction() as db:
            db.execute("DELETE FROM published WHERE out_dir = ?", (out_dir,))
            db.executemany(
                "INSERT INTO published (out_dir, file, input_sha256, output_sha256) "
                "VALUES (?, ?, ?, ?)",
                [(out_dir, file, source, output) for file, (source, output) in digests.items()])
