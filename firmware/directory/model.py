"""The directory's data: `Number`, `Contact`, `ParseResult`, `DirectoryError` and the limits."""

from __future__ import annotations

from dataclasses import dataclass, field

NUMBER_KINDS = ("work", "mobile", "home", "other", "extension")
"""What a number is, in the order a contact's numbers are shown."""

SOURCES = ("company", "personal")

MAX_FILE_BYTES = 10 * 1024 * 1024
"""A company directory file larger than this (10 MB) is refused before it is read."""

MAX_ENTRIES = 20_000
"""Entries read from one company directory file; the rest are skipped with a problem."""


class DirectoryError(Exception):
    """A directory file that cannot be used at all (empty, too big, unknown format, ...).

    The message names the file and says what is wrong in words an admin understands.
    """


@dataclass(frozen=True)
class Number:
    """One phone number of a contact, as written in the source (`value`) and what it is (`kind`).

    `kind` is one of NUMBER_KINDS; `value` keeps the spaces and dashes the admin wrote
    ("08-123 45 67"); `firmware.directory.normalise_number(value)` gives the form to dial.
    """

    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in NUMBER_KINDS:
            raise ValueError(f"number kind must be one of {', '.join(NUMBER_KINDS)}, "
                             f"not {self.kind!r}")


@dataclass(frozen=True)
class Contact:
    """A person or place in the directory.

    `id` is stable: a personal contact keeps the id it was given when added; a company contact
    gets `c:<id>` when the file gives one (XML `id`, CSV `id` column, vCard `UID`), otherwise
    `c-<hash of name, company and department>`, so the same person keeps the same id when the
    provisioning server sends the directory again with changed numbers.
    """

    id: str
    name: str
    numbers: tuple[Number, ...]
    company: str = ""
    department: str = ""
    note: str = ""
    groups: tuple[str, ...] = ()
    favourite: bool = False
    vip: bool = False
    source: str = "company"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be 'company' or 'personal', not {self.source!r}")


@dataclass
class ParseResult:
    """What `parse_directory()` made of a file: the contacts, and every problem in words.

    `problems` are not fatal: each says what was skipped, merged or guessed and where
    ("line 12: no name and no number: skipped"). `format` is "xml", "yealink-xml",
    "yealink-phonebook-xml", "csv" or "vcard"; `encoding` the character set the text was read as.
    """

    contacts: list[Contact]
    problems: list[str] = field(default_factory=list)
    format: str = ""
    encoding: str = ""
