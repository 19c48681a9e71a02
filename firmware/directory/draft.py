"""From what a file says to `Contact`s: numbers checked, names filled in, duplicates merged, ids.

Every format parser (XML, CSV, vCard) yields `Draft`s, one per entry in the file, each saying
where it came from ("line 12", "entry 3 (line 40)"); `build_contacts()` does the rest the same
way for every format, and words each problem for the admin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .model import Contact, Number
from .numbers import is_dialable, normalise_number
from .text import clean, clean_note, fold

KIND_ALIASES = {
    "work": "work", "office": "work", "business": "work", "arbete": "work", "kontor": "work",
    "jobb": "work", "direct": "work", "direkt": "work", "main": "work", "voice": "work",
    "mobile": "mobile", "cell": "mobile", "mobil": "mobile", "iphone": "mobile",
    "home": "home", "hem": "home", "bostad": "home", "privat": "home", "private": "home",
    "other": "other", "annat": "other", "ovrigt": "other",
    "extension": "extension", "ext": "extension", "x-extension": "extension",
    "anknytning": "extension", "ankn": "extension", "internal": "extension", "intern": "extension",
}
"""Words (folded) an admin may use for a number's kind, in English and Swedish."""

_YES = {"yes", "true", "1", "ja", "on"}


def kind_of(word: str) -> str | None:
    """The NUMBER_KINDS entry a kind word means ("Mobil" -> "mobile"), None if unknown."""
    return KIND_ALIASES.get(fold(word).strip())


def is_yes(word: str | None) -> bool:
    """True for yes/true/1/ja/on, any case."""
    return word is not None and word.strip().lower() in _YES


@dataclass
class Draft:
    """One entry as read from a file, before checking; `where` names it for problem messages."""

    where: str
    name: str = ""
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (kind, as written)
    company: str = ""
    department: str = ""
    note: str = ""
    groups: list[str] = field(default_factory=list)
    uid: str = ""
    favourite: bool = False
    vip: bool = False


@dataclass
class _Entry:
    """A contact being assembled; duplicates merge into the first one."""

    where: str
    name: str
    numbers: list[Number]
    norms: set[str]
    draft: Draft
    groups: list[str]


def _numbers(draft: Draft, problems: list[str]) -> tuple[list[Number], set[str]]:
    numbers: list[Number] = []
    seen: set[str] = set()
    for kind, raw in draft.numbers:
        value = clean(raw)
        norm = normalise_number(value)
        if not value or norm in seen:
            continue
        if not is_dialable(norm):
            problems.append(f"{draft.where}: “{value}” is not a phone number: left out")
            continue
        seen.add(norm)
        numbers.append(Number(kind, value))
    return numbers, seen


def _merge(into: _Entry, draft: Draft, numbers: list[Number], norms: set[str]) -> None:
    for number in numbers:
        norm = normalise_number(number.value)
        if norm not in into.norms:
            into.norms.add(norm)
            into.numbers.append(number)
    first = into.draft
    first.company = first.company or draft.company
    first.department = first.department or draft.department
    first.note = first.note or draft.note
    first.favourite = first.favourite or draft.favourite
    first.vip = first.vip or draft.vip
    first.uid = first.uid or draft.uid
    into.groups.extend(g for g in draft.groups if g not in into.groups)


def _accept(draft: Draft, problems: list[str]) -> tuple[str, list[Number], set[str]] | None:
    """The entry's name and numbers, or None (with a problem) when it has no number."""
    name = clean(draft.name)
    numbers, norms = _numbers(draft, problems)
    if not numbers:
        what = f"{name}: no number" if name else "no name and no number"
        problems.append(f"{draft.where}: {what}: skipped")
        return None
    if not name:
        name = numbers[0].value
        problems.append(f"{draft.where}: no name: shown as its number {name}")
    return name, numbers, norms


def build_contacts(drafts: Iterable[Draft], problems: list[str], max_entries: int) -> list[Contact]:
    """Check, complete and merge the drafts into company contacts, in file order.

    Two entries with the same name (ignoring case and accents) that share a number are one
    person: the second is merged into the first (numbers and groups added, empty fields
    filled in). Reads at most `max_entries` drafts; more is reported and skipped.
    """
    entries: list[_Entry] = []
    by_name: dict[str, list[_Entry]] = {}
    for count, draft in enumerate(drafts, 1):
        if count > max_entries:
            problems.append(f"{draft.where} and after: skipped: the phone keeps at most "
                            f"{max_entries} entries from one directory file")
            break
        accepted = _accept(draft, problems)
        if accepted is None:
            continue
        name, numbers, norms = accepted
        same = by_name.setdefault(fold(name), [])
        twin = next((e for e in same if e.norms & norms), None)
        if twin is not None:
            problems.append(f"{draft.where}: same as {twin.where} ({name}): merged")
            _merge(twin, draft, numbers, norms)
            continue
        groups = list(dict.fromkeys(g for g in (clean(g) for g in draft.groups) if g))
        entry = _Entry(draft.where, name, numbers, norms, draft, groups)
        same.append(entry)
        entries.append(entry)
    return _with_ids(entries, problems)


def _hash_id(entry: _Entry) -> str:
    key = "\0".join(fold(s) for s in (entry.name, entry.draft.company, entry.draft.department))
    return "c-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def _with_ids(entries: list[_Entry], problems: list[str]) -> list[Contact]:
    contacts: list[Contact] = []
    used: dict[str, str] = {}  # id -> where
    for entry in entries:
        uid = clean(entry.draft.uid)
        cid = f"c:{uid}" if uid else _hash_id(entry)
        if uid and cid in used:
            problems.append(f"{entry.where}: id “{uid}” is also used by {used[cid]}: "
                            "given another id")
            cid = _hash_id(entry)
        base, n = cid, 1
        while cid in used:
            n += 1
            cid = f"{base}-{n}"
        used[cid] = entry.where
        contacts.append(_contact(entry, cid))
    return contacts


def _contact(entry: _Entry, cid: str) -> Contact:
    draft = entry.draft
    return Contact(id=cid, name=entry.name, numbers=tuple(entry.numbers),
                   company=clean(draft.company), department=clean(draft.department),
                   note=clean_note(draft.note), groups=tuple(entry.groups),
                   favourite=draft.favourite, vip=draft.vip, source="company")
