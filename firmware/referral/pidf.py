"""Referrals as presence documents: PIDF (RFC 3863) with RPID (RFC 4480) activities.

The phone does not put these documents on the wire: pjsua2 builds the PIDF it PUBLISHes (basic
status, an RPID activity, one note: `firmware.my_referral`) and parses what colleagues' phones
send. This module is the reference the tests read and write documents with, and the reader for
other vendors' documents.

`to_pidf` writes one tuple whose basic status is `open` when the referral's type lets the phone
ring and `closed` otherwise, a `<note xml:lang="sv">` with `published_note()`'s text (end time,
never minutes left, since a published note cannot count down, then " – " and the referral's
note and the profile `note=` when there are any), the same in English, and a `<dm:person>`
(RFC 4479) carrying `<rpid:activities>` whose
`until` attribute is the referral's end in UTC (`from` is when it was set). Activities: meal
(lunch), meeting, busy, away (gone for the day, sick, custom types), vacation; none for
Available. A custom type also gets `<rpid:other>` with its name.

`from_pidf` reads any vendor's document by local element names, ignoring namespaces and
elements it does not know: available = some tuple's basic status is "open" (with no basic
status at all: no activity other than "unknown"); note = the first note in the wanted language,
else the first note; until = the first `until` attribute on an activities element that parses
as an RFC 3339 time (taken as UTC without an offset). Anything that is not a presence document
(bad XML, a DOCTYPE, over `MAX_BYTES`) gives None; it never raises.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from firmware.referral.kinds import (
    AVAILABLE,
    BUILTIN_TYPES,
    BUSY,
    GONE,
    LUNCH,
    MEETING,
    SICK,
    VACATION,
    Referral,
    ReferralType,
    aware,
)
from firmware.referral.wording import published_note, type_of

PIDF = "urn:ietf:params:xml:ns:pidf"
RPID = "urn:ietf:params:xml:ns:pidf:rpid"
DM = "urn:ietf:params:xml:ns:pidf:data-model"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_BYTES = 64 * 1024

ACTIVITIES = {LUNCH: "meal", MEETING: "meeting", BUSY: "busy", GONE: "away",
              VACATION: "vacation", SICK: "away"}


PidfStatus = tuple[bool, str, datetime | None]


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_pidf(entity_uri: str, referral: Referral, now: datetime, *, note: str = "",
            types: Mapping[str, ReferralType] = BUILTIN_TYPES) -> str:
    """The PIDF document publishing `referral` as of `now` (local time, for the note's text);
    `note` is the user's profile note."""
    aware(now, "now")
    if not referral.active(now):
        referral = Referral(AVAILABLE, None, "", now)
    kind = type_of(referral, types)
    basic = "open" if kind.available else "closed"
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<presence xmlns="{PIDF}" xmlns:rpid="{RPID}" xmlns:dm="{DM}"'
             f" entity={quoteattr(_xml_chars(entity_uri))}>",
             f'  <tuple id="t1"><status><basic>{basic}</basic></status>'
             f"<timestamp>{_rfc3339(now)}</timestamp></tuple>"]
    for lang in ("sv", "en"):
        text = escape(_xml_chars(published_note(referral, lang, now, note=note, types=types)))
        lines.append(f'  <note xml:lang="{lang}">{text}</note>')
    if kind.key != AVAILABLE:
        lines += ['  <dm:person id="p1">', f"    {_activities(referral, kind)}",
                  "  </dm:person>"]
    return "\n".join([*lines, "</presence>", ""])


def _xml_chars(text: str) -> str:
    """`text` without the control characters XML 1.0 cannot carry."""
    return "".join(c for c in text if c >= " " or c in "\t\n")


def _activities(referral: Referral, kind: ReferralType) -> str:
    times = f'from="{_rfc3339(referral.set_at)}"'
    if referral.until is not None:
        times += f' until="{_rfc3339(referral.until)}"'
    if kind.key in ACTIVITIES:
        inner = f"<rpid:{ACTIVITIES[kind.key]}/>"
    else:
        inner = "" if kind.available else "<rpid:away/>"
        inner += f'<rpid:other xml:lang="sv">{escape(kind.name_sv)}</rpid:other>'
    return f"<rpid:activities {times}>{inner}</rpid:activities>"


def from_pidf(xml: str | bytes, language: str = "sv") -> PidfStatus | None:
    """(available, note, until) from any vendor's PIDF, or None when it is not one."""
    try:
        root = _parse(xml)
        if root is None or _local(root.tag) != "presence":
            return None
        return _available(root), _note(root, language), _until(root)
    except (ET.ParseError, ValueError, TypeError, AttributeError, RecursionError):
        return None


def _parse(xml: str | bytes) -> ET.Element | None:
    data = xml if isinstance(xml, str) else bytes(xml)
    probe = data.upper() if isinstance(data, str) else data.upper().decode("latin-1")
    if not probe.strip() or len(data) > MAX_BYTES or "<!DOCTYPE" in probe:
        return None
    return ET.fromstring(data)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def _available(root: ET.Element) -> bool:
    basics = [(e.text or "").strip().lower() for e in _all(root, "basic")]
    if basics:
        return "open" in basics
    activities = [_local(child.tag) for a in _all(root, "activities") for child in a]
    return all(name == "unknown" for name in activities)


def _note(root: ET.Element, language: str) -> str:
    notes = [e for e in _all(root, "note") if (e.text or "").strip()]
    for note in notes:
        if (note.get(XML_LANG) or "").lower().startswith(language.lower()):
            return note.text.strip()
    return notes[0].text.strip() if notes else ""


def _until(root: ET.Element) -> datetime | None:
    for element in _all(root, "activities"):
        value = (element.get("until") or "").strip()
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            continue
        return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
    return None
