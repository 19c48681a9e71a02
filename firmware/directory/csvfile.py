"""The CSV company directory: a header row naming the columns, then one person per line.

Columns are found by their header (case, accents, spaces, "-" and "_" ignored), in English
or Swedish; their order does not matter and unknown columns are reported once and ignored:

    name        name, namn, full name, display name    (or first name + last name:)
    first name  first name, förnamn, given name
    last name   last name, efternamn, surname
    work        number, work, phone, telephone, telefon, nummer, arbete, office, direkt
    mobile      mobile, mobil, cell, mobiltelefon
    home        home, hem
    other       other, annat, övrigt
    extension   extension, ext, anknytning, ankn, intern
    company     company, företag, organisation, org
    department  department, avdelning
    note        note, notes, anteckning, kommentar
    groups      groups, group, grupp, grupper, categories, kategori   (separated by | , or ;)
    id          id, uid   (keeps a person's id stable across directory updates)

The delimiter is the one of `;`, `,` and tab that the header line uses most (Excel in Swedish
saves with `;`). Fields may be quoted with `"`, and a quoted field may hold the delimiter or
a line break.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from .draft import Draft
from .model import DirectoryError
from .text import fold

_COLUMNS = {
    "name": ("name", "namn", "fullname", "displayname", "visningsnamn", "fulltnamn"),
    "first": ("firstname", "fornamn", "givenname"),
    "last": ("lastname", "efternamn", "surname", "familyname"),
    "work": ("number", "work", "phone", "telephone", "telefon", "nummer", "arbete", "office",
             "kontor", "direkt", "direct", "worknumber", "officenumber", "telefonnummer"),
    "mobile": ("mobile", "mobil", "cell", "mobiltelefon", "mobilnummer", "cellphone",
               "mobilenumber"),
    "home": ("home", "hem", "homenumber", "hemnummer", "bostad"),
    "other": ("other", "annat", "ovrigt", "othernumber"),
    "extension": ("extension", "ext", "anknytning", "ankn", "intern", "internal"),
    "company": ("company", "foretag", "organisation", "organization", "org", "bolag"),
    "department": ("department", "avdelning", "dept"),
    "note": ("note", "notes", "anteckning", "kommentar", "comment"),
    "groups": ("groups", "group", "grupp", "grupper", "categories", "category", "kategori"),
    "id": ("id", "uid"),
}
_BY_HEADER = {alias: field for field, aliases in _COLUMNS.items() for alias in aliases}
_NUMBER_FIELDS = ("work", "mobile", "home", "other", "extension")
_GROUP_SPLIT = re.compile(r"[|,;]")


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return max((";", ",", "\t"), key=first.count)


def _columns(header: list[str], line: int, problems: list[str]) -> list[str | None]:
    columns: list[str | None] = []
    for position, title in enumerate(header, 1):
        field = _BY_HEADER.get(re.sub(r"[\W_]+", "", fold(title)))
        if field is None and title.strip():
            problems.append(f"line {line}: column {position} “{title.strip()}” is not a directory "
                            "field: ignored")
        if field is not None and field in columns:
            problems.append(f"line {line}: column {position} “{title.strip()}” repeats an earlier "
                            "column: ignored")
            field = None
        columns.append(field)
    found = set(columns)
    if not found & {"name", "first", "last", *_NUMBER_FIELDS}:
        raise DirectoryError("the first line must name the columns (for example "
                             f"name;work;mobile), but it reads “{', '.join(header)[:80]}”")
    return columns


def _draft(row: list[str], columns: list[str | None], where: str) -> Draft:
    values = {field: cell.strip() for field, cell in zip(columns, row, strict=False) if field}
    name = values.get("name") or " ".join(
        v for v in (values.get("first", ""), values.get("last", "")) if v)
    return Draft(where=where, name=name,
                 numbers=[(f, values[f]) for f in _NUMBER_FIELDS if values.get(f)],
                 company=values.get("company", ""), department=values.get("department", ""),
                 note=values.get("note", ""), uid=values.get("id", ""),
                 groups=[g for g in _GROUP_SPLIT.split(values.get("groups", "")) if g.strip()])


def parse_csv(text: str, problems: list[str]) -> Iterator[Draft]:
    """Yield one draft per data row; blank rows are skipped silently."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    columns: list[str | None] | None = None
    line = reader.line_num + 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                if columns is None:
                    columns = _columns(row, line, problems)
                else:
                    yield _row(row, columns, line, problems)
            line = reader.line_num + 1
    except csv.Error as error:
        problems.append(f"line {line}: cannot be read ({error}): the rest of the file is skipped")
    if columns is None:
        raise DirectoryError("it holds no header line and no entries")


def _row(row: list[str], columns: list[str | None], line: int, problems: list[str]) -> Draft:
    if len(row) > len(columns) and any(cell.strip() for cell in row[len(columns):]):
        problems.append(f"line {line}: {len(row)} fields where the header has {len(columns)}: "
                        "the extra ones are ignored")
    return _draft(row, columns, f"line {line}")
