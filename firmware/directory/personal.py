"""The user's own contacts and groups, and their favourite/VIP marks on company contacts.

Kept in one JSON file (UTF-8), written whole through `firmware.storage.atomic_write_json`, so a
power cut leaves the old file or the new one:

    {
      "version": 1,
      "contacts": [
        {"id": "p-3f2a9c1b0d4e", "name": "Åsa Öberg",
         "numbers": [{"kind": "mobile", "value": "070-123 45 67"}],
         "company": "", "department": "", "note": "", "groups": ["Familj"],
         "favourite": true, "vip": false}
      ],
      "groups": ["Familj", "Jobb"],
      "marks": {"c-1a2b3c4d5e": {"favourite": true, "vip": null}}
    }

`marks` holds what the user set on company contacts (by their id; null = as the company
directory says), because the company directory itself is replaced at every provisioning.

A file that is not readable JSON of this shape is moved aside to `<name>.corrupt` (then
`.corrupt.1`, ...) and the phone starts with no personal contacts; a file with some bad
entries keeps the good ones: the original is moved aside and the good entries written back.
Either way `problems` says what happened, and nothing raises.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from firmware.storage import atomic_write_json, move_aside

from .model import Contact, Number
from .numbers import is_dialable, normalise_number
from .text import clean, clean_note

log = logging.getLogger("luren.directory")

MAX_PERSONAL = 1000
"""Personal contacts the phone keeps."""

_FIELDS = ("name", "numbers", "company", "department", "note", "groups", "favourite", "vip")


@dataclass(frozen=True)
class Mark:
    """The user's favourite/VIP choice on a company contact; None = as the directory says."""

    favourite: bool | None = None
    vip: bool | None = None

    def apply(self, contact: Contact) -> Contact:
        """`contact` with the marks that are set applied."""
        return replace(contact,
                       favourite=contact.favourite if self.favourite is None else self.favourite,
                       vip=contact.vip if self.vip is None else self.vip)


def _new_id() -> str:
    return "p-" + uuid.uuid4().hex[:12]


class PersonalContacts:
    """Personal contacts in `path` (JSON); every change is saved at once, atomically.

    Changes raise ValueError for data the phone cannot keep (no number, a number that is not
    one, too many contacts) and KeyError for an unknown id; a failed save raises OSError and
    leaves the contacts as they were. `revision` grows by one with every saved change.
    """

    def __init__(self, path: Path, *, max_contacts: int = MAX_PERSONAL,
                 new_id: Callable[[], str] = _new_id) -> None:
        self.path = Path(path)
        self.max_contacts = max_contacts
        self.problems: list[str] = []
        self.revision = 0
        self._new_id = new_id
        self._contacts: dict[str, Contact] = {}
        self._groups: list[str] = []
        self._marks: dict[str, Mark] = {}
        self._load()

    # -- reading -------------------------------------------------------------------------

    @property
    def contacts(self) -> tuple[Contact, ...]:
        """The personal contacts, in the order they were added."""
        return tuple(self._contacts.values())

    @property
    def group_names(self) -> tuple[str, ...]:
        """Every personal group, members or not."""
        return tuple(self._groups)

    @property
    def marks(self) -> Mapping[str, Mark]:
        """Favourite/VIP marks on company contacts, by contact id."""
        return dict(self._marks)

    def get(self, contact_id: str) -> Contact | None:
        """The personal contact with this id, or None."""
        return self._contacts.get(contact_id)

    # -- changes -------------------------------------------------------------------------

    def add(self, name: str, numbers: Iterable[Number], *, company: str = "",
            department: str = "", note: str = "", groups: Iterable[str] = (),
            favourite: bool = False, vip: bool = False) -> Contact:
        """Add and save a contact; an empty name becomes its first number. Returns it."""
        if len(self._contacts) >= self.max_contacts:
            raise ValueError(f"the phone keeps at most {self.max_contacts} personal contacts")
        contact = _checked(Contact(id=self._new_id(), name=name, numbers=tuple(numbers),
                                   company=company, department=department, note=note,
                                   groups=tuple(groups), favourite=favourite, vip=vip,
                                   source="personal"))
        self._commit({**self._contacts, contact.id: contact}, _with_groups(self._groups, contact))
        return contact

    def update(self, contact_id: str, **changes: Any) -> Contact:
        """Change some fields (name, numbers, company, department, note, groups, favourite,
        vip) of a personal contact and save it. Returns the new contact."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(f"not a contact field: {', '.join(sorted(unknown))}")
        if "numbers" in changes:
            changes["numbers"] = tuple(changes["numbers"])
        if "groups" in changes:
            changes["groups"] = tuple(changes["groups"])
        contact = _checked(replace(self._existing(contact_id), **changes))
        self._commit({**self._contacts, contact_id: contact}, _with_groups(self._groups, contact))
        return contact

    def delete(self, contact_id: str) -> None:
        """Remove a personal contact and save."""
        self._existing(contact_id)
        self._commit({k: c for k, c in self._contacts.items() if k != contact_id})

    def set_favourite(self, contact_id: str, favourite: bool = True) -> None:
        """Mark a contact, personal or company (by id), as a favourite or not, and save."""
        self._set_flag(contact_id, "favourite", favourite)

    def set_vip(self, contact_id: str, vip: bool = True) -> None:
        """Mark a contact, personal or company (by id), as a VIP (rings through DND), and save."""
        self._set_flag(contact_id, "vip", vip)

    def add_group(self, name: str) -> None:
        """Create an empty personal group (nothing happens if it exists) and save."""
        group = _group_name(name)
        if group not in self._groups:
            self._commit(groups=[*self._groups, group])

    def rename_group(self, old: str, new: str) -> None:
        """Rename a group, in every contact too, and save."""
        if old not in self._groups:
            raise KeyError(f"no group named {old!r}")
        group = _group_name(new)
        contacts = {k: replace(c, groups=_renamed(c.groups, old, group))
                    for k, c in self._contacts.items()}
        groups = list(dict.fromkeys(group if g == old else g for g in self._groups))
        self._commit(contacts, groups)

    def delete_group(self, name: str) -> None:
        """Remove a group from the list and from every contact (the contacts stay), and save."""
        if name not in self._groups:
            raise KeyError(f"no group named {name!r}")
        contacts = {k: replace(c, groups=tuple(g for g in c.groups if g != name))
                    for k, c in self._contacts.items()}
        self._commit(contacts, [g for g in self._groups if g != name])

    def _existing(self, contact_id: str) -> Contact:
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise KeyError(f"no personal contact with id {contact_id!r}")
        return contact

    def _set_flag(self, contact_id: str, flag: str, value: bool) -> None:
        if contact_id in self._contacts:
            self.update(contact_id, **{flag: bool(value)})
            return
        mark = replace(self._marks.get(contact_id, Mark()), **{flag: bool(value)})
        self._commit(marks={**self._marks, contact_id: mark})

    def _commit(self, contacts: dict[str, Contact] | None = None, groups: list[str] | None = None,
                marks: dict[str, Mark] | None = None) -> None:
        """Save the new state; only once it is on disk does it replace the old one."""
        contacts = self._contacts if contacts is None else contacts
        groups = self._groups if groups is None else groups
        marks = self._marks if marks is None else marks
        atomic_write_json(self.path, _document(contacts.values(), groups, marks))
        self._contacts, self._groups, self._marks = contacts, groups, marks
        self.revision += 1

    # -- loading -------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as error:
            self._problem(f"{self.path}: cannot be read ({error.strerror}): starting with no "
                          "personal contacts")
            return
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            self._set_aside(f"is damaged ({_reason(error)})", salvaged=False)
            return
        if not isinstance(document, dict) or document.get("version") != 1:
            self._set_aside("is not a personal contacts file (version 1)", salvaged=False)
            return
        bad = self._read(document)
        if bad:
            self._set_aside(f"had {len(bad)} unusable part(s): {'; '.join(bad[:5])}",
                            salvaged=True)

    def _read(self, document: dict[str, Any]) -> list[str]:
        """Take the usable parts of `document`; return what was not usable."""
        bad: list[str] = []
        items = document.get("contacts", [])
        for index, item in enumerate(items if isinstance(items, list) else [], 1):
            try:
                contact = _checked(_from_json(item))
            except (ValueError, TypeError, KeyError) as error:
                bad.append(f"contact {index}: {error}")
                continue
            if contact.id in self._contacts:
                bad.append(f"contact {index}: id {contact.id} used twice")
                continue
            self._contacts[contact.id] = contact
        if not isinstance(items, list):
            bad.append("“contacts” is not a list")
        self._groups = _json_groups(document.get("groups", []), self._contacts.values(), bad)
        self._marks = _json_marks(document.get("marks", {}), bad)
        return bad

    def _set_aside(self, what: str, *, salvaged: bool) -> None:
        try:
            aside = move_aside(self.path)
        except OSError as error:
            self._problem(f"{self.path} {what}; moving it aside failed ({error.strerror})")
            return
        kept = (f"kept {len(self._contacts)} contact(s)" if salvaged
                else "starting with no personal contacts")
        self._problem(f"{self.path} {what}: moved aside to {aside.name}; {kept}")
        if salvaged:
            try:
                atomic_write_json(self.path, _document(self._contacts.values(), self._groups,
                                                       self._marks))
            except OSError as error:
                self._problem(f"{self.path}: the kept contacts could not be written "
                              f"({error.strerror})")

    def _problem(self, text: str) -> None:
        log.warning("personal contacts: %s", text)
        self.problems.append(text)


def _reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error.msg}, line {error.lineno} column {error.colno}"
    return "not UTF-8 text"




def _group_name(name: str) -> str:
    group = clean(name)
    if not group:
        raise ValueError("a group needs a name")
    return group


def _renamed(groups: tuple[str, ...], old: str, new: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(new if g == old else g for g in groups))


def _with_groups(groups: list[str], contact: Contact) -> list[str]:
    return [*groups, *(g for g in contact.groups if g not in groups)]


def _checked(contact: Contact) -> Contact:
    """The contact cleaned up (NFC, spaces, groups), or ValueError if it cannot be kept."""
    numbers = tuple(Number(n.kind, clean(n.value)) for n in contact.numbers)
    if not numbers:
        raise ValueError("a contact needs at least one number")
    for number in numbers:
        if not is_dialable(normalise_number(number.value)):
            raise ValueError(f"“{number.value}” is not a phone number")
    groups = tuple(dict.fromkeys(_group_name(g) for g in contact.groups))
    return replace(contact, name=clean(contact.name) or numbers[0].value, numbers=numbers,
                   company=clean(contact.company), department=clean(contact.department),
                   note=clean_note(contact.note), groups=groups,
                   favourite=bool(contact.favourite), vip=bool(contact.vip))


def _from_json(item: Any) -> Contact:
    if not isinstance(item, dict):
        raise TypeError("not an object")
    texts = {k: item.get(k, "") for k in ("name", "company", "department", "note")}
    if not isinstance(item.get("id"), str) or not item["id"]:
        raise ValueError("no id")
    if not all(isinstance(v, str) for v in texts.values()):
        raise TypeError("a text field is not text")
    numbers = tuple(Number(str(n["kind"]), str(n["value"])) for n in item.get("numbers", []))
    groups = item.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise TypeError("groups is not a list of names")
    return Contact(id=item["id"], numbers=numbers, groups=tuple(groups),
                   favourite=item.get("favourite") is True, vip=item.get("vip") is True,
                   source="personal", **texts)


def _json_groups(value: Any, contacts: Iterable[Contact], bad: list[str]) -> list[str]:
    groups = [g for g in value if isinstance(g, str) and clean(g)] if isinstance(value, list) \
        else []
    if not isinstance(value, list) or len(groups) != len(value):
        bad.append("“groups” is not a list of names")
    for contact in contacts:
        groups.extend(g for g in contact.groups if g not in groups)
    return list(dict.fromkeys(clean(g) for g in groups))


def _json_marks(value: Any, bad: list[str]) -> dict[str, Mark]:
    if not isinstance(value, dict):
        bad.append("“marks” is not an object")
        return {}
    marks: dict[str, Mark] = {}
    for key, mark in value.items():
        flags = mark if isinstance(mark, dict) else {}
        if not flags or not all(flags.get(f) in (None, True, False) for f in ("favourite", "vip")):
            bad.append(f"mark for {key} is not favourite/vip true, false or null")
            continue
        marks[key] = Mark(flags.get("favourite"), flags.get("vip"))
    return marks


def _document(contacts: Iterable[Contact], groups: list[str], marks: Mapping[str, Mark]
              ) -> dict[str, Any]:
    return {
        "version": 1,
        "contacts": [{"id": c.id, "name": c.name, "company": c.company,
                      "department": c.department, "note": c.note, "groups": list(c.groups),
                      "favourite": c.favourite, "vip": c.vip,
                      "numbers": [{"kind": n.kind, "value": n.value} for n in c.numbers]}
                     for c in contacts],
        "groups": list(groups),
        "marks": {k: {"favourite": m.favourite, "vip": m.vip} for k, m in marks.items()},
    }

