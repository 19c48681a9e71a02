"""Small, pure helpers for the SIP strings the engine hands on (no pjsua2 here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>')
_URI_PARTS = re.compile(r"^(?:sips?|tel):(?:([^@;?]+)@)?([^;?>]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Party:
    """Who is at the other end, as shown on a screen."""

    name: str
    number: str
    host: str

    @property
    def label(self) -> str:
        return self.name or self.number or self.host


def is_dialable_uri(text: str) -> bool:
    """Whether `text` (a Refer-To or Contact value) names a sip:, sips: or tel: address with
    a host (or, for tel:, a number)."""
    m = _NAME_ADDR.match(text)
    uri = (m.group(3) if m else text.strip().strip("<>")).strip()
    if uri.lower().startswith("tel:"):
        return bool(re.fullmatch(r"tel:\+?[0-9*#\-.()]+(;.*)?", uri, re.IGNORECASE))
    if not uri.lower().startswith(("sip:", "sips:")):
        return False
    parts = _URI_PARTS.match(uri)
    return bool(parts and parts.group(2) and "@" not in parts.group(2)
                and re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", parts.group(2)))


def parse_party(name_addr: str) -> Party:
    """`"Anna" <sip:1002@pbx;transport=tcp>` -> Party("Anna", "1002", "pbx"); never raises."""
    name, uri = "", name_addr.strip()
    m = _NAME_ADDR.match(name_addr)
    if m:
        name = (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()
        name = re.sub(r"\\(.)", r"\1", name)
        uri = m.group(3)
    parts = _URI_PARTS.match(uri.strip())
    if not parts:
        return Party(name, "", "")
    user = parts.group(1) or ""
    return Party(name, user.split(":", 1)[0], parts.group(2))


def header_value(message: str, name: str) -> str | None:
    """The first value of header `name` in a raw SIP message, or None."""
    head = message.split("\r\n\r\n", 1)[0]
    for line in head.splitlines()[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def retry_after_seconds(message: str) -> int | None:
    """Retry-After of a response as whole seconds (RFC 3261 20.33), or None if absent/bad."""
    value = header_value(message, "Retry-After")
    if value is None:
        return None
    m = re.match(r"\d{1,9}", value)
    return int(m.group(0)) if m else None


def host_port(registrar: str) -> str:
    """`sip:pbx.example.se:5060;transport=tcp` -> `pbx.example.se:5060`."""
    rest = re.sub(r"^sips?:", "", registrar.strip(), flags=re.IGNORECASE)
    return re.split(r"[;?>]", rest, maxsplit=1)[0]
