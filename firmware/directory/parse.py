"""Reading a company directory file: size limit, character set, format, then the entries.

`load_directory(path)` for a file on disk (the size is checked before anything is read);
`read_limited(stream)` for a download, which stops as soon as the limit is passed;
`parse_directory(data, filename)` for bytes already in hand.

Character set: UTF-8 with or without BOM, or UTF-16 with BOM (Excel's "Unicode text"). A
file that is not valid UTF-8 is read as Windows-1252 (cp1252), or failing that ISO-8859-1,
and a problem says so. An XML file's declared encoding (`<?xml ... encoding="...">`) is used.

Format: by content when it is plain (starts with "<" -> XML, "BEGIN:VCARD" -> vCard), else by
the name's extension (.xml, .csv/.txt/.tsv, .vcf/.vcard), else CSV if the first line has a
`;`, `,` or tab in it.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .csvfile import parse_csv
from .draft import Draft, build_contacts
from .model import MAX_ENTRIES, MAX_FILE_BYTES, DirectoryError, ParseResult
from .vcard import parse_vcard
from .xmlfile import XmlReader

MAX_PROBLEMS = 200
"""Problems listed for one file; more are counted in a last line."""

_MB = 1024 * 1024
_EXTENSIONS = {".xml": "xml", ".csv": "csv", ".txt": "csv", ".tsv": "csv", ".vcf": "vcard",
               ".vcard": "vcard"}
_NAMES = {"xml": "XML", "csv": "CSV", "vcard": "vCard"}
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_FALLBACKS = (("cp1252", "Windows-1252 (cp1252)"), ("latin-1", "ISO-8859-1 (Latin-1)"))
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _size(count: int) -> str:
    if count >= _MB:
        return f"{count / _MB:.1f} MB"
    return f"{count / 1024:.1f} KB" if count >= 1024 else f"{count} bytes"


def _limit(count: int) -> str:
    return f"{count / _MB:g} MB" if count >= _MB else f"{count / 1024:g} KB"


def _too_big(name: str, size: int | None, max_bytes: int) -> DirectoryError:
    what = _size(size) if size is not None else f"more than {_limit(max_bytes)}"
    return DirectoryError(f"{name}: the file is {what}; the phone takes directory files of up "
                          f"to {_limit(max_bytes)}: nothing was read")


def read_limited(stream: BinaryIO, max_bytes: int = MAX_FILE_BYTES, name: str = "directory"
                 ) -> bytes:
    """Read `stream` to its end, but raise DirectoryError as soon as it passes `max_bytes`."""
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(min(1 << 16, max_bytes + 1 - total)):
        total += len(chunk)
        if total > max_bytes:
            raise _too_big(name, None, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def load_directory(path: Path, *, max_bytes: int = MAX_FILE_BYTES,
                   max_entries: int = MAX_ENTRIES) -> ParseResult:
    """Read and parse a directory file; a file over `max_bytes` is refused unread."""
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > max_bytes:
                raise _too_big(path.name, size, max_bytes)
            data = read_limited(stream, max_bytes, path.name)
    except FileNotFoundError:
        raise DirectoryError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DirectoryError(f"{path}: is a folder, not a file") from None
    except PermissionError:
        raise DirectoryError(f"{path}: the phone may not read it (permission denied)") from None
    return parse_directory(data, path.name, max_bytes=max_bytes, max_entries=max_entries)


def parse_directory(data: bytes, filename: str, *, max_bytes: int = MAX_FILE_BYTES,
                    max_entries: int = MAX_ENTRIES) -> ParseResult:
    """The company contacts in `data` (a file's bytes) and every problem found, in words.

    `filename` (or a URL) names the file in messages and hints at its format. Raises
    DirectoryError only for a file that cannot be used at all: over `max_bytes`, empty, binary,
    of unknown format, or XML broken before its first entry.
    """
    if len(data) > max_bytes:
        raise _too_big(filename, len(data), max_bytes)
    try:
        return _parse(data, filename, max_entries)
    except DirectoryError as error:
        raise DirectoryError(f"{filename}: {error}") from None


def _parse(data: bytes, filename: str, max_entries: int) -> ParseResult:
    if not data.strip():
        raise DirectoryError("the file is empty")
    if data.startswith(b"PK\x03\x04"):
        raise DirectoryError("this is a zip file (an Excel workbook?): save it as “CSV UTF-8”")
    text, encoding, problems = _by_declaration(data) or decode(data)
    if "\0" in text[:4096]:
        raise DirectoryError("it holds binary data, not text")
    fmt = _format(text, filename, problems)
    if fmt == "xml":
        reader = XmlReader(text, problems)
        contacts = build_contacts(reader.drafts(), problems, max_entries)
        fmt = reader.dialect or fmt
    else:
        drafts: Iterator[Draft] = (parse_csv if fmt == "csv" else parse_vcard)(text, problems)
        contacts = build_contacts(drafts, problems, max_entries)
    if not contacts:
        problems.append("the file holds no usable entries")
    return ParseResult(contacts, _capped(problems), fmt, encoding)


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"… and {len(problems) - MAX_PROBLEMS} more problems"]


def decode(data: bytes) -> tuple[str, str, list[str]]:
    """(text, encoding, problems): UTF-8 (BOM or not) or UTF-16/32 with BOM, else cp1252/latin-1."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec, []
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as error:
        return _fallback(data, error)


def _fallback(data: bytes, error: UnicodeDecodeError) -> tuple[str, str, list[str]]:
    line = data.count(b"\n", 0, error.start) + 1
    for codec, label in _FALLBACKS:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return text, codec, [f"line {line}: the file is not UTF-8 (byte 0x{data[error.start]:02X} "
                             f"here): read it as {label}; save it as UTF-8 so that å, ä and ö "
                             "always come out right"]
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _by_declaration(data: bytes) -> tuple[str, str, list[str]] | None:
    """Text, encoding and problems by an XML declaration naming an encoding other than UTF-8."""
    declared = _XML_ENCODING.match(data[:400])
    if declared is None or any(data.startswith(bom) for bom, _codec in _BOMS):
        return None
    name = declared.group(1).decode("ascii")
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        text, encoding, problems = decode(data)
        return text, encoding, [f"line 1: the XML declares encoding “{name}”, which the phone "
                                f"does not know: read as {encoding}", *problems]
    if codec == "utf-8":
        return None
    try:
        return data.decode(codec), codec, []
    except UnicodeDecodeError:
        text, encoding, problems = decode(data)
        return text, encoding, [f"line 1: the XML declares encoding “{name}” but is not in "
                                f"it: read as {encoding}", *problems]


def _format(text: str, filename: str, problems: list[str]) -> str:
    head = text.lstrip("\ufeff \t\r\n")[:200]
    content = "xml" if head.startswith("<") else (
        "vcard" if head[:11].upper() == "BEGIN:VCARD" else None)
    suffix = PurePosixPath(filename.split("?", 1)[0]).suffix.lower()
    named = _EXTENSIONS.get(suffix)
    if content is not None:
        if named is not None and named != content:
            problems.append(f"the file is named {suffix} but holds {_NAMES[content]}: read as "
                            f"{_NAMES[content]}")
        return content
    first = head.split("\n", 1)[0]
    if named == "csv" or (named is None and any(c in first for c in ";,\t")):
        return "csv"
    if named is not None:
        raise DirectoryError(f"it is named {suffix} but does not hold {_NAMES[named]}")
    raise DirectoryError("cannot tell its format: the phone reads XML, CSV (with a header "
                         "line) and vCard files")
