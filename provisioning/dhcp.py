"""Provisioning URLs from DHCP options, read from the DHCP client's lease.

Commercial phones find their provisioning server in DHCP options, and so does this one:

=====  ===================================================  ==================================
code   meaning                                              how it is used here
=====  ===================================================  ==================================
160    provisioning URL (Polycom's private option)          a URL (or a bare server name)
114    "default URL" (RFC 3679; RFC 8910 reuses it for      a URL (or a bare server name)
       captive portals)
66     TFTP server name                                     a URL or a bare server name
43     vendor-specific information, sub-options (RFC 2132)  sub-option 1 = provisioning URL;
                                                            used only when option 60 is absent
                                                            or names this phone's vendor class
60     vendor class identifier                              compared with ``vendor_class``
120    SIP servers (RFC 3361)                               :func:`sip_servers`, not a URL
=====  ===================================================  ==================================

Option 43 is a list of sub-options (one byte code, one byte length, the data; 0 is padding and
255 ends the list). Only sub-option 1, the provisioning URL, is defined for this phone; every
other sub-option code is reserved and ignored. A repeated sub-option is concatenated (RFC 3396).

URLs are normalised the same way whatever option they came from: NULs and white space around
them are trimmed; an explicit ``scheme://`` URL (``https``, ``http``, ``tftp``...) is kept as
given, the caller decides which schemes it accepts; a bare server name or address (with an
optional ``:port`` and path) becomes ``https://host/``, since this phone does not speak TFTP.
A URL found twice is listed once, under the first option that carried it.

The options are read from whatever the DHCP client left behind:

* **dhclient** (ISC) lease files, ``/var/lib/dhcp/dhclient*.leases``: the last complete
  ``lease { ... }`` block. Values are quoted strings (``\\\\``, ``\\"`` and octal ``\\NNN``
  escapes), colon-separated hex bytes (``1:1a:68`` -- dhclient drops leading zeros) or plain
  words. Options dhclient has no name for appear as ``unknown-<code>``.
* **systemd-networkd** lease files, ``/run/systemd/netif/leases/<ifindex>``: ``KEY=VALUE``
  lines. networkd keeps option 43 as ``VENDOR_SPECIFIC=<hex>``, option 120 (addresses only) as
  ``SIP=``, the BOOTP next server as ``NEXT_SERVER=`` and private options 224-254 as
  ``OPTION_<code>=<hex>``. It keeps neither option 66, 114 nor 160: with networkd, use option 43.
* **dhcpcd**: the output of ``dhcpcd -U <interface>`` (``key=value`` lines in dhcpcd 9 and
  later, ``key='value'`` in older ones, with or without a ``new_`` prefix). dhcpcd prints only
  the options its definitions name: ``vendor_encapsulated_options`` (43, hex),
  ``vendor_class_identifier`` (60), ``tftp_server_name`` (66) and ``sip_server`` (120, decoded
  as names or addresses). It has no name for 114 and 160, and its stock definition of 66 keeps
  only plain server names (a URL there comes out empty). For those, define them in
  ``/etc/dhcpcd.conf``::

      define 66 string tftp_server_name
      define 114 string option_114
      define 160 string option_160
      option tftp_server_name, vendor_encapsulated_options, sip_server, option_114, option_160

  ``option_<code>`` values are taken as text, ``unknown_<code>`` values (the name some hook
  scripts use) as hex. dhcpcd's own ``/var/lib/dhcpcd/<interface>.lease`` file is the raw DHCP
  answer: :func:`parse_dhcp_packet` reads it, and :func:`read_leases` recognises it.
* a **hook** file: JSON written by any DHCP client hook, ``{"66": "...", "43": "<hex>",
  "60": "...", "114": "...", "160": "...", "120": "<hex>"}`` (43 and 120 in hex, the others as
  text; ``"next-server"`` may give the BOOTP next server).

Nothing here raises on bad input: a malformed option is skipped and the reason is added to
:attr:`DhcpOptions.problems`, worded for the technician reading the phone's status.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("luren.provisioning.dhcp")

OPT_VENDOR_SPECIFIC = 43
OPT_VENDOR_CLASS = 60
OPT_TFTP_SERVER = 66
OPT_DEFAULT_URL = 114
OPT_SIP_SERVERS = 120
OPT_PROVISIONING_URL = 160
# Option 43 sub-option carrying the provisioning URL; every other code is reserved.
VENDOR_SUBOPT_URL = 1
DEFAULT_VENDOR_CLASS = "luren"

# Larger lease text is cut: a dhclient file keeps its tail (the last lease), others are refused.
MAX_LEASE_BYTES = 1 << 20

_URL_OPTIONS = (OPT_PROVISIONING_URL, OPT_DEFAULT_URL, OPT_TFTP_SERVER)
_HEX_CODES = frozenset({OPT_VENDOR_SPECIFIC, OPT_SIP_SERVERS})
_DHCP_COOKIE = b"\x63\x82\x53\x63"

_DESCRIPTIONS = {
    OPT_VENDOR_SPECIFIC: "option 43 (vendor-specific information)",
    OPT_VENDOR_CLASS: "option 60 (vendor class)",
    OPT_TFTP_SERVER: "option 66 (TFTP server name)",
    OPT_DEFAULT_URL: "option 114 (default URL)",
    OPT_SIP_SERVERS: "option 120 (SIP servers)",
    OPT_PROVISIONING_URL: "option 160 (provisioning URL)",
}

_DHCLIENT_NAMES = {
    "vendor-encapsulated-options": OPT_VENDOR_SPECIFIC,
    "vendor-class-identifier": OPT_VENDOR_CLASS,
    "tftp-server-name": OPT_TFTP_SERVER,
    "default-url": OPT_DEFAULT_URL,
    "sip-servers": OPT_SIP_SERVERS,
    "sip-server": OPT_SIP_SERVERS,
}

_DHCPCD_NAMES = {
    "vendor_encapsulated_options": OPT_VENDOR_SPECIFIC,
    "vendor_class_identifier": OPT_VENDOR_CLASS,
    "tftp_server_name": OPT_TFTP_SERVER,
    "sip_server": OPT_SIP_SERVERS,
}

_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HEX_COLON = re.compile(r"[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2})+")
_MAX_PROBLEMS = 20
_NOT_IN_URLS = frozenset('"<>\\^`{|}')


@dataclass(frozen=True)
class DhcpOptions:
    """The DHCP options of one lease, with what was wrong in it."""

    raw: dict[int, bytes]  # option code -> payload bytes, as the lease had them
    source: str  # "dhclient:/var/lib/dhcp/dhclient.eth0.leases" etc.
    problems: list[str] = field(default_factory=list)  # for a technician, one line each
    next_server: str | None = None  # BOOTP "next server" (siaddr), when the lease has one


def describe(code: int) -> str:
    """A technician's name for DHCP option `code`."""
    return _DESCRIPTIONS.get(code, f"option {code}")


# --------------------------------------------------------------------------------------------
# Decoding helpers (none raises)


def _hex_bytes(text: str) -> bytes | None:
    """Hex bytes as ``1a:2b``, ``1a 2b`` or ``1a2b``; None if it is not hex."""
    text = text.strip()
    if not text:
        return b""
    if ":" in text or " " in text:
        parts = re.split(r"[:\s]+", text)
        if all(re.fullmatch(r"[0-9A-Fa-f]{1,2}", p) for p in parts):
            return bytes(int(p, 16) for p in parts)
        return None
    if len(text) % 2 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", text):
        return bytes.fromhex(text)
    return None


def _unescape(text: str) -> bytes:
    """Undo C-style escapes (``\\\\``, ``\\"``, ``\\t``, octal ``\\NNN``, ``\\xHH``) into bytes."""
    out = bytearray()
    i = 0
    simple = {"t": 9, "n": 10, "r": 13, "b": 8}
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 >= len(text):
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = text[i + 1]
        octal = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4])
        hexa = re.match(r"x([0-9A-Fa-f]{1,2})", text[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            i += 1 + len(octal.group())
        elif hexa:
            out.append(int(hexa.group(1), 16))
            i += 1 + len(hexa.group())
        else:
            out += bytes([simple[nxt]]) if nxt in simple else nxt.encode("utf-8")
            i += 2
    return bytes(out)


def _text(payload: bytes) -> tuple[str | None, str | None]:
    """Option payload as text without NULs and white space around it; (text, problem)."""
    stripped = payload.strip(b"\x00 \t\r\n")
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        return None, "is not readable text"
    if "\x00" in text:
        return None, "has a NUL byte in the middle"
    return text, None


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return True
    if re.fullmatch(r"[0-9.]+", host):
        return False  # looks like an address but is not one: 10.0.0.300
    return bool(_HOSTNAME.fullmatch(host))


def normalise_url(value: str) -> tuple[str | None, str | None]:
    """A URL from an option value: (url, None) or (None, why it is not one)."""
    text = value.strip(" \t\r\n\x00")
    if not text:
        return None, "is empty"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        return None, f"{text!r} contains spaces or control characters"
    if any(c in _NOT_IN_URLS for c in text):
        return None, f"{text!r} contains characters a URL cannot have"
    if _SCHEME.match(text):
        try:
            parts = urlsplit(text)
            host = parts.hostname
            _ = parts.port
        except ValueError:
            return None, f"{text!r} is not a valid URL"
        if not host:
            return None, f"{text!r} names no server"
        return text, None
    hostport, _slash, path = text.partition("/")
    host, port = hostport, ""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, port = hostport[: end + 1], hostport[end + 1 :]
        port = port[1:] if port.startswith(":") else ("x" if port else "")
    elif ":" in hostport:
        host, _, port = hostport.partition(":")
    if not _valid_host(host) or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        return None, f"{text!r} is neither a URL nor a server name"
    return f"https://{hostport}/{path}", None


def parse_vendor_suboptions(payload: bytes) -> tuple[dict[int, bytes], str | None]:
    """Option 43 as sub-options: ({code: data}, None), or with why the list is broken."""
    subs: dict[int, bytes] = {}
    i, size = 0, len(payload)
    while i < size:
        code = payload[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            break
        if i + 1 >= size:
            return subs, f"is cut short: sub-option {code} has no length"
        length = payload[i + 1]
        if i + 2 + length > size:
            return subs, (
                f"is cut short: sub-option {code} announces {length} bytes "
                f"but only {size - i - 2} follow"
            )
        subs[code] = subs.get(code, b"") + payload[i + 2 : i + 2 + length]
        i += 2 + length
    return subs, None


def decode_sip_servers(payload: bytes) -> tuple[list[str], str | None]:
    """Option 120 (RFC 3361): (servers, None) or ([], why it cannot be read)."""
    if not payload:
        return [], "is empty"
    encoding, data = payload[0], payload[1:]
    if encoding == 1:
        if not data or len(data) % 4:
            return [], f"holds {len(data)} address bytes, not a whole number of IPv4 addresses"
        return [str(ipaddress.IPv4Address(data[i : i + 4])) for i in range(0, len(data), 4)], None
    if encoding != 0:
        return [], f"uses encoding {encoding}; only 0 (names) and 1 (IPv4 addresses) exist"
    names: list[str] = []
    labels: list[str] = []
    i = 0
    while i < len(data):
        length = data[i]
        i += 1
        if length == 0:
            if not labels:
                return [], "holds an empty server name"
            names.append(".".join(labels))
            labels = []
            continue
        if length > 63:
            return [], "uses DNS name compression or a label over 63 characters (not allowed)"
        label = data[i : i + length]
        if len(label) < length:
            return [], "is cut short in the middle of a server name"
        if not re.fullmatch(rb"[A-Za-z0-9_-]+", label):
            return [], f"has a server name with unusable characters: {label!r}"
        labels.append(label.decode("ascii"))
        i += length
    if labels:
        return [], "is cut short: the last server name is not terminated"
    if not names:
        return [], "names no server"
    return names, None


def encode_sip_servers(servers: Iterable[str]) -> bytes | None:
    """Option 120 payload for addresses (encoding 1) or names (encoding 0); None if mixed/bad."""
    items = [s.strip().rstrip(".") for s in servers if s.strip()]
    if not items:
        return None
    try:
        addrs = [ipaddress.IPv4Address(s) for s in items]
    except ValueError:
        pass
    else:
        return b"\x01" + b"".join(a.packed for a in addrs)
    out = bytearray(b"\x00")
    for name in items:
        if not _HOSTNAME.fullmatch(name) or re.fullmatch(r"[0-9.]+", name):
            return None
        for label in name.split("."):
            out.append(len(label))
            out += label.encode("ascii")
        out.append(0)
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Building the result


class _Collector:
    """Raw options and problems while one lease is read."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.raw: dict[int, bytes] = {}
        self.problems: list[str] = []
        self.next_server: str | None = None

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)
        elif len(self.problems) == _MAX_PROBLEMS:
            self.problems.append("more problems were found and not listed")
        log.debug("%s: %s", self.source, text)

    def add(self, code: int, payload: bytes) -> None:
        if not 1 <= code <= 254:
            self.problem(f"option code {code} does not exist (1-254); ignored")
            return
        self.raw[code] = payload

    def set_next_server(self, value: str, where: str) -> None:
        try:
            addr = ipaddress.IPv4Address(value.strip())
        except ValueError:
            self.problem(f"{where}: next server {value.strip()!r} is not an IPv4 address")
            return
        if not addr.is_unspecified:
            self.next_server = str(addr)

    def finish(self) -> DhcpOptions:
        self._check()
        return DhcpOptions(dict(self.raw), self.source, self.problems, self.next_server)

    def _check(self) -> None:
        """Record what is wrong with the options this phone would use (raw stays as read)."""
        for code in _URL_OPTIONS:
            if code in self.raw:
                text, why = _text(self.raw[code])
                if text is not None:
                    _url, why = normalise_url(text)
                if why:
                    self.problem(f"{describe(code)} {why}; ignored")
        vendor = self.raw.get(OPT_VENDOR_CLASS)
        vendor_text = _text(vendor)[0] if vendor is not None else None
        if vendor is not None and vendor_text is None:
            self.problem(f"{describe(OPT_VENDOR_CLASS)} is not readable text")
        ours = vendor is None or (vendor_text or "").lower() == DEFAULT_VENDOR_CLASS
        if OPT_VENDOR_SPECIFIC in self.raw and ours:
            subs, why = parse_vendor_suboptions(self.raw[OPT_VENDOR_SPECIFIC])
            if why:
                self.problem(f"{describe(OPT_VENDOR_SPECIFIC)} {why}; ignored")
            elif VENDOR_SUBOPT_URL not in subs:
                self.problem(
                    f"{describe(OPT_VENDOR_SPECIFIC)} has no sub-option {VENDOR_SUBOPT_URL} "
                    "(provisioning URL)"
                )
            else:
                text, why = _text(subs[VENDOR_SUBOPT_URL])
                if text is not None:
                    _url, why = normalise_url(text)
                if why:
                    self.problem(f"{describe(OPT_VENDOR_SPECIFIC)} sub-option 1 {why}; ignored")
        if OPT_SIP_SERVERS in self.raw:
            _servers, why = decode_sip_servers(self.raw[OPT_SIP_SERVERS])
            if why:
                self.problem(f"{describe(OPT_SIP_SERVERS)} {why}; ignored")


def _too_big(text: str, collector: _Collector) -> bool:
    if len(text) > MAX_LEASE_BYTES:
        collector.problem(
            f"the lease is {len(text)} characters long, far more than a lease can be; ignored"
        )
        return True
    return False


# --------------------------------------------------------------------------------------------
# dhclient

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<open>"(?:[^"\\]|\\.)*\\?\Z)
  | (?P<punct>[{};,])
  | (?P<word>[^\s{};,"\#]+)
    """,
    re.VERBOSE | re.DOTALL,
)


def _dhclient_tokens(text: str, c: _Collector) -> list[tuple[str, str, int]]:
    """(kind, value, line) tokens: kind is "string", "word" or the punctuation itself."""
    tokens: list[tuple[str, str, int]] = []
    line = 1
    for m in _TOKEN.finditer(text):
        kind, value = m.lastgroup or "", m.group()
        if kind == "open":
            c.problem(f"line {line}: a quoted text is not closed; the rest of the file is ignored")
            break
        if kind == "string":
            tokens.append(("string", value[1:-1], line))
        elif kind == "punct":
            tokens.append((value, value, line))
        elif kind == "word":
            tokens.append(("word", value, line))
        line += value.count("\n")
    return tokens


def _dhclient_blocks(
    tokens: list[tuple[str, str, int]],
) -> tuple[list[list[tuple[str, str, int]]], bool]:
    """The token lists inside each complete ``lease { }`` block; and whether one was left open."""
    blocks: list[list[tuple[str, str, int]]] = []
    i, n = 0, len(tokens)
    open_left = False
    while i < n:
        if tokens[i][:2] == ("word", "lease") and i + 1 < n and tokens[i + 1][0] == "{":
            depth, j = 1, i + 2
            while j < n and depth:
                depth += {"{": 1, "}": -1}.get(tokens[j][0], 0)
                j += 1
            if depth:
                open_left = True
                break
            blocks.append(tokens[i + 2 : j - 1])
            i = j
        else:
            i += 1
    return blocks, open_left


def _dhclient_value(name: str, code: int, values: list[tuple[str, str, int]]) -> bytes | None:
    """Payload of one ``option`` statement from its value tokens; None if unreadable."""
    items = [v for v in values if v[0] != ","]
    if not items:
        return None
    if code == OPT_SIP_SERVERS and all(v[0] == "word" for v in items):
        words = [v[1] for v in items]
        hexed = _hex_bytes(words[0]) if len(words) == 1 and ":" in words[0] else None
        return hexed if hexed is not None else encode_sip_servers(words)
    if len(items) != 1:
        return None
    kind, value, _line = items[0]
    if kind == "string":
        return _unescape(value)
    if _HEX_COLON.fullmatch(value):
        return _hex_bytes(value)
    if name.startswith("unknown-") and re.fullmatch(r"[0-9A-Fa-f]{1,2}", value):
        return bytes([int(value, 16)])
    return value.encode("utf-8", "surrogateescape")


def parse_dhclient(text: str, source: str = "dhclient") -> DhcpOptions:
    """Options of the last complete ``lease { }`` block of an ISC dhclient lease file."""
    c = _Collector(source)
    if len(text) > MAX_LEASE_BYTES:
        c.problem(
            f"the lease file is {len(text)} characters long; only its last "
            f"{MAX_LEASE_BYTES} were read"
        )
        text = text[-MAX_LEASE_BYTES:]
        text = text[text.find("\n") + 1 :]  # start on a whole line, never inside a quote
    blocks, open_left = _dhclient_blocks(_dhclient_tokens(text, c))
    if not blocks:
        c.problem("no complete 'lease { ... }' block was found in the dhclient lease file")
        return c.finish()
    if open_left:
        c.problem("the last lease block is incomplete (file cut short?); the one before it is used")
    statement: list[tuple[str, str, int]] = []
    for token in blocks[-1]:
        if token[0] != ";":
            statement.append(token)
            continue
        _dhclient_statement(statement, c)
        statement = []
    if statement:
        _dhclient_statement(statement, c)
    return c.finish()


def _dhclient_statement(statement: list[tuple[str, str, int]], c: _Collector) -> None:
    if len(statement) < 2 or statement[0][:2] != ("word", "option"):
        return
    kind, name, line = statement[1]
    if kind != "word":
        c.problem(f"line {line}: an option statement has no option name")
        return
    name = name.lower()
    code = _DHCLIENT_NAMES.get(name)
    unknown = re.fullmatch(r"unknown-(\d{1,3})", name)
    if unknown:
        code = int(unknown.group(1))
    if code is None:
        return  # an option this phone does not use (routers, domain-name...)
    payload = _dhclient_value(name, code, statement[2:])
    if payload is None:
        c.problem(f"line {line}: the value of option {name} cannot be read; ignored")
        return
    c.add(code, payload)


# --------------------------------------------------------------------------------------------
# systemd-networkd


def parse_networkd(text: str, source: str = "networkd") -> DhcpOptions:
    """Options of a systemd-networkd lease file (``KEY=VALUE`` lines)."""
    c = _Collector(source)
    if _too_big(text, c):
        return c.finish()
    known = bad = 0
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not eq or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
            bad += 1
            continue
        known += 1
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        option = re.fullmatch(r"OPTION_(\d{1,3})", key)
        if key == "VENDOR_SPECIFIC" or option:
            code = int(option.group(1)) if option else OPT_VENDOR_SPECIFIC
            payload = _hex_bytes(value)
            if payload is None:
                c.problem(f"line {number}: {key} is not hex; {describe(code)} ignored")
            else:
                c.add(code, payload)
        elif key == "SIP":
            payload = encode_sip_servers(value.split())
            if payload is None:
                c.problem(f"line {number}: SIP={value!r} is not a list of addresses; ignored")
            else:
                c.add(OPT_SIP_SERVERS, payload)
        elif key == "NEXT_SERVER":
            c.set_next_server(value, f"line {number}")
    if bad:
        c.problem(f"{bad} line(s) are not KEY=VALUE and were ignored")
    if not known and text.strip():
        c.problem("this does not look like a systemd-networkd lease file")
    return c.finish()


# --------------------------------------------------------------------------------------------
# dhcpcd


def parse_dhcpcd(
    text: str, source: str = "dhcpcd", *, names: Mapping[str, int] | None = None
) -> DhcpOptions:
    """Options from the output of ``dhcpcd -U <interface>``.

    `names` maps extra variable names (from ``define`` lines in dhcpcd.conf) to option codes;
    their values are taken as text.
    """
    c = _Collector(source)
    if _too_big(text, c):
        return c.finish()
    extra = {k.lower(): v for k, v in (names or {}).items()}
    known = bad = 0
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            bad += 1
            continue
        known += 1
        key = key.lower().removeprefix("new_")
        value = value.strip()
        if value[:1] in ("'", '"'):
            try:
                value = " ".join(shlex.split(value))
            except ValueError:
                c.problem(f"line {number}: the quoted value of {key} is not closed; ignored")
                continue
        _dhcpcd_variable(key, value, number, extra, c)
    if bad:
        c.problem(f"{bad} line(s) are not key=value and were ignored")
    if not known and text.strip():
        c.problem("this does not look like the output of 'dhcpcd -U'")
    return c.finish()


def _dhcpcd_variable(
    key: str, value: str, number: int, extra: Mapping[str, int], c: _Collector
) -> None:
    unknown = re.fullmatch(r"unknown_(\d{1,3})", key)
    named = re.fullmatch(r"option_(\d{1,3})", key)
    if unknown:
        code = int(unknown.group(1))
        payload = _hex_bytes(value)
        c.add(code, payload if payload is not None else _unescape(value))
    elif named or key in extra:
        c.add(int(named.group(1)) if named else extra[key], _unescape(value))
    elif key in _DHCPCD_NAMES:
        code = _DHCPCD_NAMES[key]
        if code == OPT_VENDOR_SPECIFIC:
            payload = _hex_bytes(value)
            if payload is None:
                c.problem(f"line {number}: {key} is not hex; {describe(code)} ignored")
            else:
                c.add(code, payload)
        elif code == OPT_SIP_SERVERS:
            payload = encode_sip_servers(value.split())
            if payload is None:
                c.problem(f"line {number}: sip_server={value!r} cannot be read; ignored")
            else:
                c.add(code, payload)
        elif code == OPT_TFTP_SERVER and not value:
            c.problem(
                "dhcpcd shows option 66 empty: its stock definition keeps only plain server "
                "names; add 'define 66 string tftp_server_name' to /etc/dhcpcd.conf"
            )
        else:
            c.add(code, _unescape(value))
    elif key == "next_server":
        c.set_next_server(value, f"line {number}")


# --------------------------------------------------------------------------------------------
# Hook JSON and raw DHCP packets


def parse_hook(text: str, source: str = "hook") -> DhcpOptions:
    """Options from the JSON a DHCP client hook wrote: ``{"<code>": "<value>", ...}``."""
    c = _Collector(source)
    if _too_big(text, c):
        return c.finish()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        c.problem("the hook file is not valid JSON")
        return c.finish()
    if not isinstance(data, dict):
        c.problem("the hook file is JSON but not an object of option codes")
        return c.finish()
    for key, value in data.items():
        if str(key).lower() in ("next-server", "next_server"):
            if isinstance(value, str):
                c.set_next_server(value, "hook")
            continue
        if not re.fullmatch(r"\d{1,3}", str(key)):
            c.problem(f"hook key {str(key)[:40]!r} is not an option code; ignored")
            continue
        code = int(key)
        if not isinstance(value, str):
            c.problem(f"{describe(code)} in the hook file is not a text value; ignored")
            continue
        if code in _HEX_CODES:
            payload = _hex_bytes(value)
            if payload is None:
                c.problem(f"{describe(code)} in the hook file is not hex; ignored")
                continue
        else:
            payload = value.encode("utf-8", "surrogateescape")
        c.add(code, payload)
    return c.finish()


def parse_dhcp_packet(data: bytes, source: str = "packet") -> DhcpOptions:
    """Options of a raw DHCP message (BOOTP header, cookie, options), as dhcpcd stores leases."""
    c = _Collector(source)
    if len(data) < 240 or data[236:240] != _DHCP_COOKIE:
        c.problem("this is not a DHCP message (too short or no DHCP magic cookie)")
        return c.finish()
    if data[20:24] != b"\x00\x00\x00\x00":
        c.next_server = str(ipaddress.IPv4Address(data[20:24]))
    areas = [data[240:]]
    found: dict[int, bytearray] = {}
    overload = 0
    index = 0
    while index < len(areas):
        area = areas[index]
        i = 0
        while i < len(area):
            code = area[i]
            if code == 0:
                i += 1
                continue
            if code == 255:
                break
            if i + 1 >= len(area) or i + 2 + area[i + 1] > len(area):
                c.problem(f"{describe(code)} is cut short in the DHCP message; ignored")
                break
            payload = area[i + 2 : i + 2 + area[i + 1]]
            found.setdefault(code, bytearray()).extend(payload)  # RFC 3396: concatenate
            if code == 52 and payload and index == 0:
                overload = payload[0]
            i += 2 + area[i + 1]
        if index == 0:
            if overload & 1:
                areas.append(data[108:236])  # "file" field
            if overload & 2:
                areas.append(data[44:108])  # "sname" field
        index += 1
    for code, payload in found.items():
        c.add(code, bytes(payload))
    return c.finish()


# --------------------------------------------------------------------------------------------
# Finding and reading lease files


def _guess_and_parse(data: bytes, path: Path) -> DhcpOptions:
    if len(data) >= 240 and data[236:240] == _DHCP_COOKIE:
        return parse_dhcp_packet(data, f"dhcp-packet:{path}")
    text = data.decode("utf-8", "replace")
    head = text.lstrip()
    if path.suffix == ".json" or head.startswith("{"):
        return parse_hook(text, f"hook:{path}")
    if re.search(r"(?m)^\s*lease\s*\{", text) or "dhclient" in path.name:
        return parse_dhclient(text, f"dhclient:{path}")
    if re.search(r"(?m)^(ADDRESS|SERVER_ADDRESS|VENDOR_SPECIFIC|OPTION_\d+|NEXT_SERVER)=", text):
        return parse_networkd(text, f"networkd:{path}")
    if path.name.isdigit() and path.parent.name == "leases":
        return parse_networkd(text, f"networkd:{path}")
    if re.search(r"(?m)^(new_)?[a-z][a-z0-9_]*=", text):
        return parse_dhcpcd(text, f"dhcpcd:{path}")
    return DhcpOptions(
        {},
        f"unknown:{path}",
        [
            f"{path} is not a lease file this phone knows "
            "(dhclient, systemd-networkd, dhcpcd, raw DHCP message or hook JSON)"
        ],
    )


def _read_tail(path: Path) -> tuple[bytes, int]:
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - MAX_LEASE_BYTES))
        data = f.read(MAX_LEASE_BYTES)
    if size > MAX_LEASE_BYTES:
        data = data[data.find(b"\n") + 1 :]  # start on a whole line, never inside a quote
    return data, size


def read_leases(paths: Iterable[Path]) -> DhcpOptions | None:
    """Options from the newest readable lease file among `paths`; None if none can be read.

    The kind of file is guessed from its content, then its name. Only the last
    ``MAX_LEASE_BYTES`` of a larger file are read (a dhclient file keeps its newest lease last).
    """
    found: list[tuple[int, Path]] = []
    for path in paths:
        try:
            st = Path(path).stat()
        except OSError:
            continue
        if st.st_mode & 0o170000 == 0o100000:  # a regular file
            found.append((st.st_mtime_ns, Path(path)))
    for _mtime, path in sorted(found, key=lambda item: item[0], reverse=True):
        try:
            data, size = _read_tail(path)
        except OSError as exc:
            log.debug("cannot read %s: %s", path, exc)
            continue
        result = _guess_and_parse(data, path)
        if size > MAX_LEASE_BYTES:
            result.problems.insert(
                0, f"{path} is {size} bytes long; only its last {MAX_LEASE_BYTES} were read"
            )
        return result
    return None


# --------------------------------------------------------------------------------------------
# What the phone uses


def provisioning_urls(
    options: DhcpOptions, *, vendor_class: str = DEFAULT_VENDOR_CLASS, use_next_server: bool = False
) -> list[tuple[str, str]]:
    """[(option name, url)] from options 160, 114, 66 and 43, in that order, without repeats.

    Option 43 counts only when option 60 is absent or equals `vendor_class` (case does not
    matter); its sub-option 1 is the URL. With `use_next_server`, the BOOTP next server comes
    last as ``https://<address>/`` (off by default: many DHCP servers set it to themselves).
    Malformed options are skipped (:attr:`DhcpOptions.problems` says why).
    """
    urls: list[tuple[str, str]] = []

    def add(name: str, payload: bytes) -> None:
        text, _why = _text(payload)
        url = normalise_url(text)[0] if text is not None else None
        if url is None:
            log.debug("%s: %s skipped", options.source, name)
        elif all(url != seen for _name, seen in urls):
            urls.append((name, url))

    for code in _URL_OPTIONS:
        if code in options.raw:
            add(f"option {code}", options.raw[code])
    if OPT_VENDOR_SPECIFIC in options.raw:
        vendor = options.raw.get(OPT_VENDOR_CLASS)
        text = _text(vendor)[0] if vendor is not None else None
        if vendor is None or (text is not None and text.lower() == vendor_class.lower()):
            subs, why = parse_vendor_suboptions(options.raw[OPT_VENDOR_SPECIFIC])
            if why is None and VENDOR_SUBOPT_URL in subs:
                add(f"option {OPT_VENDOR_SPECIFIC}", subs[VENDOR_SUBOPT_URL])
        else:
            log.debug("%s: option 43 is for vendor class %r; ignored", options.source, text)
    if use_next_server and options.next_server:
        add("next-server", options.next_server.encode())
    return urls


def sip_servers(options: DhcpOptions) -> list[str]:
    """The SIP servers of option 120 (RFC 3361): names or IPv4 addresses; [] if none/bad."""
    payload = options.raw.get(OPT_SIP_SERVERS)
    if payload is None:
        return []
    servers, why = decode_sip_servers(payload)
    if why:
        log.debug("%s: option 120 %s", options.source, why)
    return servers
