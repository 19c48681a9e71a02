"""The radio module's registration table: up to 6 handsets, kept across resets.

A real module keeps it in EEPROM; the simulated one in a JSON file (when given a path),
written atomically so a crash leaves the old table or the new one:

    {"version": 1, "handsets": [{"number": 1, "ipui": "0a1b2c3d4e", "name": "Kitchen"}]}

A file that cannot be read, or entries that break the rules (number 1-6, IPUI 10 hex digits,
name as `messages.check_name` allows, no number or IPUI twice), are reported in words in
`problems` and left out; an unreadable file is moved aside (`<name>.corrupt`) so the next
write does not destroy what a technician may want to look at.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from board.dect import messages as M
from firmware.storage import atomic_write_json, move_aside

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
Entry = tuple[int, str, str]  # (number, ipui, name)


class Registrations:
    """Handset number -> (IPUI, name); saved after every change if it has a path."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.problems: list[str] = []
        self._entries: dict[int, tuple[str, str]] = {}
        if path is not None:
            self._load(path)

    def entries(self) -> list[Entry]:
        """Every registration, in number order."""
        return [(n, ipui, name) for n, (ipui, name) in sorted(self._entries.items())]

    def number_of(self, ipui: str) -> int | None:
        for number, (known, _name) in self._entries.items():
            if known == ipui:
                return number
        return None

    def free_number(self) -> int | None:
        """The lowest free handset number, or None when all 6 are taken."""
        for number in range(1, M.MAX_HANDSETS + 1):
            if number not in self._entries:
                return number
        return None

    def get(self, number: int) -> Entry | None:
        if number not in self._entries:
            return None
        return (number, *self._entries[number])

    def add(self, number: int, ipui: str, name: str) -> None:
        M.check_number(number)
        M.check_ipui(ipui)
        M.check_name(name)
        self._entries[number] = (ipui.lower(), name)
        self._save()

    def remove(self, number: int) -> bool:
        if self._entries.pop(number, None) is None:
            return False
        self._save()
        return True

    def rename(self, number: int, name: str) -> bool:
        if number not in self._entries:
            return False
        M.check_name(name)
        self._entries[number] = (self._entries[number][0], name)
        self._save()
        return True

    # -- the file -------------------------------------------------------------------------

    def _save(self) -> None:
        if self.path is None:
            return
        handsets = [{"number": n, "ipui": ipui, "name": name} for n, ipui, name in self.entries()]
        try:
            atomic_write_json(self.path, {"version": FORMAT_VERSION, "handsets": handsets})
        except OSError as exc:
            self._problem(f"cannot save the registrations to {self.path}: {exc}")

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, UnicodeError, ValueError) as exc:
            self._problem(f"cannot read the registrations in {path}: {exc}")
            self._move_aside(path)
            return
        if not isinstance(data, dict) or not isinstance(data.get("handsets"), list):
            self._problem(f"{path} is not a registration table (no \"handsets\" list)")
            self._move_aside(path)
            return
        for index, raw in enumerate(data["handsets"]):
            self._load_entry(index, raw)

    def _load_entry(self, index: int, raw: Any) -> None:
        where = f"{self.path}: handset entry {index + 1}"
        if not isinstance(raw, dict):
            self._problem(f"{where} is not a table")
            return
        number, ipui, name = raw.get("number"), raw.get("ipui"), raw.get("name", "")
        try:
            M.check_number(number)
            M.check_ipui(ipui)
            M.check_name(name)
        except ValueError as exc:
            self._problem(f"{where}: {exc}")
            return
        if number in self._entries or self.number_of(ipui.lower()) is not None:
            self._problem(f"{where}: handset {number} ({ipui}) is there twice")
            return
        self._entries[number] = (ipui.lower(), name)

    def _move_aside(self, path: Path) -> None:
        try:
            aside = move_aside(path)
        except OSError as exc:
            self._problem(f"cannot move {path} aside: {exc}")
            return
        self._problem(f"moved it aside to {aside}")

    def _problem(self, text: str) -> None:
        log.warning("DECT module registrations: %s", text)
        self.problems.append(text)
