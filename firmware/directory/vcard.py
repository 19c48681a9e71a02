"""vCard 2.1, 3.0 and 4.0 company directories: one BEGIN:VCARD ... END:VCARD block per person.

Read: FN (the name; N "Family;Given;Additional" when FN is missing, then ORG), TEL with its
TYPE (cell -> mobile, home, work, x-extension -> extension, fax and pager left out, no type ->
work), ORG ("Company;Department"), NOTE, CATEGORIES (groups, comma separated) and UID (a
stable id). Other properties (EMAIL, ADR, PHOTO, ...) are ignored without a word.

Folded lines (a line starting with a space or tab continues the previous one) are unfolded;
vCard 2.1 QUOTED-PRINTABLE values, soft line breaks and CHARSET included, are decoded;
backslash escapes (\\n \\, \\; \\\\) are undone. A 4.0 `tel:` URI value is shown without "tel:".
"""

from __future__ import annotations

import codecs
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .draft import Draft, kind_of
from .text import clean

_LINES = re.compile(r"\r\n|\r|\n")
_ESCAPES = {"n": "\n", "N": "\n", ",": ",", ";": ";", "\\": "\\", ":": ":"}
_SKIPPED_TYPES = {"fax": "fax", "pager": "pager", "modem": "modem"}
_VERSIONS = {"2.1", "3.0", "4.0"}


@dataclass
class _Card:
    draft: Draft
    n_name: str = ""
    problems: list[str] = field(default_factory=list)


def _qp_continues(line: str) -> bool:
    return line.endswith("=") and "QUOTED-PRINTABLE" in line.partition(":")[0].upper()


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first physical line number, unfolded line)."""
    current: str | None = None
    start = 0
    for number, raw in enumerate(_LINES.split(text), 1):
        if current is not None and _qp_continues(current):
            current = current[:-1] + raw
        elif current is not None and raw[:1] in (" ", "\t"):
            current += raw[1:]
        else:
            if current is not None:
                yield start, current
            current, start = raw, number
    if current is not None:
        yield start, current


def _split_quoted(text: str, separator: str) -> list[str]:
    """Split at `separator` outside double quotes."""
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _split_escaped(value: str, separator: str) -> list[str]:
    """Split at `separator` not escaped by a backslash, and undo the escapes in each part."""
    parts, current, chars = [], [], iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            current.append(_ESCAPES.get(nxt, nxt))
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return _split_escaped(value, "\0")[0]


def _property(line: str) -> tuple[str, dict[str, list[str]], str] | None:
    """(NAME, {PARAM: [values]}, raw value), or None when the line has no ':'."""
    head, *rest = _split_quoted(line, ":")
    if not rest:
        return None
    name, *param_texts = _split_quoted(head, ";")
    params: dict[str, list[str]] = {}
    for text in param_texts:
        key, sep, value = text.partition("=")
        if not sep:  # vCard 2.1: a bare TYPE, or a bare encoding
            key, value = ("ENCODING", key) if key.upper() == "QUOTED-PRINTABLE" else ("TYPE", key)
        values = [v.strip().lower() for v in value.strip().strip('"').split(",")]
        params.setdefault(key.strip().upper(), []).extend(values)
    return name.rpartition(".")[2].strip().upper(), params, ":".join(rest)


def _decoded(value: str, params: dict[str, list[str]], where: str, card: _Card) -> str:
    if "quoted-printable" not in params.get("ENCODING", []):
        return value
    raw = quopri.decodestring(value.encode("ascii", "replace"))
    charset = (params.get("CHARSET") or [""])[0]
    if not charset:  # none given: UTF-8 if it is, else what Windows wrote
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("cp1252", "replace")
    try:
        codecs.lookup(charset)
    except LookupError:
        card.problems.append(f"{where}: unknown CHARSET “{charset}”: read as UTF-8")
        charset = "utf-8"
    return raw.decode(charset, "replace")


def _tel_kind(types: list[str]) -> str | None:
    """The kind for TEL's TYPE values; None for fax/pager (not callable)."""
    kinds = {kind_of(t) for t in types}
    for kind in ("mobile", "extension", "home", "work", "other"):
        if kind in kinds:
            return kind
    if any(t in _SKIPPED_TYPES for t in types):
        return None
    return "work"


def _apply(card: _Card, name: str, params: dict[str, list[str]], value: str, where: str) -> None:
    draft = card.draft
    if name == "FN":
        draft.name = _unescape(value)
    elif name == "N":
        family, given, additional = ([*_split_escaped(value, ";"), "", ""])[:3]
        card.n_name = " ".join(p for p in (given, additional, family) if p.strip())
    elif name == "TEL":
        _tel(card, params, _unescape(value), where)
    elif name == "ORG":
        company, department = ([*_split_escaped(value, ";"), ""])[:2]
        draft.company, draft.department = company, department
    elif name == "NOTE":
        draft.note = _unescape(value)
    elif name == "CATEGORIES":
        draft.groups.extend(g for g in _split_escaped(value, ",") if g.strip())
    elif name == "UID":
        draft.uid = _unescape(value)
    elif name == "VERSION" and value.strip() not in _VERSIONS:
        card.problems.append(f"{where}: VERSION {value.strip()} is not 2.1, 3.0 or 4.0: "
                             "read as 4.0")


def _tel(card: _Card, params: dict[str, list[str]], value: str, where: str) -> None:
    number = re.sub(r"^tel:", "", value.strip(), flags=re.IGNORECASE).split(";ext=")[0]
    kind = _tel_kind(params.get("TYPE", []))
    if kind is None:
        card.problems.append(f"{where}: fax or pager number {number} left out")
    else:
        card.draft.numbers.append((kind, number))


def _finish(card: _Card, problems: list[str]) -> Draft:
    problems.extend(card.problems)
    draft = card.draft
    if not clean(draft.name):
        draft.name = card.n_name
    if not clean(draft.name) and clean(draft.company):
        draft.name = draft.company
        problems.append(f"{draft.where}: no name: named after its organisation "
                        f"{clean(draft.company)}")
    return draft


def parse_vcard(text: str, problems: list[str]) -> Iterator[Draft]:
    """Yield one draft per card, in file order."""
    card: _Card | None = None
    count, outside = 0, False
    for number, line in _logical_lines(text):
        parsed = _property(line)
        if parsed is None:
            if line.strip():
                problems.append(f"line {number}: not a vCard line (no “:”): ignored")
            continue
        name, params, raw = parsed
        if name == "BEGIN" and raw.strip().upper() == "VCARD":
            if card is not None:
                problems.append(f"{card.draft.where}: no END:VCARD before line {number}: "
                                "used anyway")
                yield _finish(card, problems)
            count += 1
            card = _Card(Draft(where=f"card {count} (line {number})"))
        elif name == "END" and raw.strip().upper() == "VCARD" and card is not None:
            yield _finish(card, problems)
            card = None
        elif card is None:
            if not outside:
                problems.append(f"line {number}: text outside BEGIN:VCARD … END:VCARD: ignored")
                outside = True
        else:
            _apply(card, name, params, _decoded(raw, params, f"line {number}", card),
                   f"line {number}")
    if card is not None:
        problems.append(f"{card.draft.where}: no END:VCARD at the end of the file: used anyway")
        yield _finish(card, problems)
