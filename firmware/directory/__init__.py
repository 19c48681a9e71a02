"""The phone's directory: the company directory from provisioning, personal contacts, search.

    result = load_directory(Path("/data/directory.xml"))   # or parse_directory(bytes, name)
    for problem in result.problems: log.warning(problem)    # in words, with line numbers
    personal = PersonalContacts(data_dir / "contacts.json")
    directory = Directory(result.contacts, personal)
    directory.search_t9("2662")           # Anna Berg, Anneli ..., numbers containing 2662
    directory.lookup_number("+46 8 123 45 67")               # the caller's name, or None

Modules: `model` (Contact, Number, limits), `parse` with `xmlfile`, `csvfile` and `vcard`
(the file formats, documented for admins in docs/directory.md), `draft` (checks and merging
common to the formats), `personal` (the user's contacts, JSON), `search` (Directory),
`numbers` (normalisation), `text` (folding, T9, Swedish order) and `multitap` (text entry).
Standard library only; nothing is read or written at import time.
"""

from .model import (
    MAX_ENTRIES,
    MAX_FILE_BYTES,
    NUMBER_KINDS,
    Contact,
    DirectoryError,
    Number,
    ParseResult,
)
from .multitap import MULTITAP_KEYS, MultiTap
from .numbers import normalise_number
from .parse import load_directory, parse_directory, read_limited
from .personal import MAX_PERSONAL, Mark, PersonalContacts
from .search import Directory
from .text import T9_KEYS, fold, sort_key, t9

__all__ = [
    "MAX_ENTRIES", "MAX_FILE_BYTES", "MAX_PERSONAL", "MULTITAP_KEYS", "NUMBER_KINDS", "T9_KEYS",
    "Contact", "Directory", "DirectoryError", "Mark", "MultiTap", "Number", "ParseResult",
    "PersonalContacts", "fold", "load_directory", "normalise_number", "parse_directory",
    "read_limited", "sort_key", "t9",
]
