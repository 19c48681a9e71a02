"""SIP messages as the test PBX saw them on the wire, parsed from its capture.

Kamailio's `sipdump` module (see kamailio.cfg.tmpl) writes every SIP message
the PBX receives or sends to text files, byte for byte as on the wire. One
record per message::

    ====================
    tag: rcv                      (rcv = received, snd = sent)
    pid: 4474
    process: 1
    time: 1795325651.688533
    date: Sun Nov 22 05:34:11 2026
    proto: udp ipv4
    srcip: 127.0.0.1
    srcport: 53656
    dstip: 127.0.0.1
    dstport: 39135
    ~~~~~~~~~~~~~~~~~~~~
    OPTIONS sip:127.0.0.1:39135 SIP/2.0      (the message, CRLFs kept)
    ...
    ||||||||||||||||||||

What is recorded, and so what `SipMessage.direction` means:
  - "in": every message Kamailio received: requests from phones (initial and
    in-dialog, ACK, CANCEL, retransmissions) and replies from the phones it
    relayed requests to.
  - "out": every message Kamailio sent: relayed copies of those requests and
    replies (with its Via / Record-Route added or removed), and the replies
    it generates itself (401/407 challenges, 403, 404, 484, 503, keepalive
    200), plus its own retransmissions and hop-by-hop ACK/CANCEL.
So a relayed request appears twice (in from the caller, out to the callee),
and so does a relayed reply. direction="in" shows each message a peer sent
once, exactly as sent (the PBX's own replies are only "out");
direction="out" shows exactly what peers received from the PBX. A
retransmission is a record of its own (same Call-ID, CSeq and branch).

Messages are numbered (`seq`) in the order the capture holds them. Kamailio
writes a record a few ms after the message went over the wire; a record still
being written (the last of a file) is left out until it is complete.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

RECORD_START = b"====================\n"
META_END = b"~~~~~~~~~~~~~~~~~~~~\n"
RECORD_END = b"||||||||||||||||||||\n"
CAPTURE_GLOB = "*.data"

DIRECTIONS = {"rcv": "in", "snd": "out"}

# RFC 3261 7.3.3 and RFC 3515 / 3892 / 6665: compact form -> full name.
COMPACT_FORMS = {
    "i": "Call-ID",
    "f": "From",
    "t": "To",
    "m": "Contact",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "r": "Refer-To",
    "b": "Referred-By",
    "e": "Content-Encoding",
    "s": "Subject",
    "o": "Event",
    "u": "Allow-Events",
}

SDP_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_LINE_BREAK = re.compile(r"\r?\n")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.IGNORECASE | re.M)


@dataclass(frozen=True)
class SipMessage:
    """One SIP request or reply as captured.

    `header_fields` keeps every header line in order as (name, value); compact
    names are expanded (i -> Call-ID ...), other names keep their spelling,
    folded lines are joined. Values are not split at commas: a
    "Via: a, b" line is one value. `header()` / `headers()` look names up
    case-insensitively and accept compact forms too.
    """

    seq: int
    direction: str
    first_line: str
    header_fields: tuple[tuple[str, str], ...]
    body: str
    timestamp: float | None = None
    transport: str = ""
    source: str = ""
    destination: str = ""
    raw: str = ""

    # ----- first line -----

    @property
    def is_reply(self) -> bool:
        return self.first_line.startswith("SIP/")

    @property
    def is_request(self) -> bool:
        return not self.is_reply

    @property
    def method(self) -> str | None:
        """The request method ('INVITE'); None for a reply."""
        return (self.first_line.split(" ", 1)[0] or None) if self.is_request else None

    @property
    def request_uri(self) -> str | None:
        """The Request-URI of a request; None for a reply."""
        parts = self.first_line.split(" ")
        return parts[1] if self.is_request and len(parts) > 1 else None

    @property
    def status(self) -> int | None:
        """The status code of a reply (e.g. 407); None for a request."""
        parts = self.first_line.split(" ", 2)
        if self.is_reply and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def reason(self) -> str | None:
        """The reason phrase of a reply ('Proxy Authentication Required')."""
        parts = self.first_line.split(" ", 2)
        return parts[2] if self.is_reply and len(parts) > 2 else None

    # ----- headers -----

    def headers(self, name: str) -> list[str]:
        """Values of every `name` header line, in order (case-insensitive, compact ok)."""
        wanted = canonical_name(name).lower()
        return [value for field, value in self.header_fields if field.lower() == wanted]

    def header(self, name: str) -> str | None:
        """Value of the first `name` header line, None if there is none."""
        values = self.headers(name)
        return values[0] if values else None

    def has_header(self, name: str) -> bool:
        return bool(self.headers(name))

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID")

    @property
    def cseq(self) -> int | None:
        """The CSeq sequence number."""
        number = (self.header("CSeq") or "").split(" ", 1)[0]
        return int(number) if number.isdigit() else None

    @property
    def cseq_method(self) -> str | None:
        """The CSeq method: the request's method, or the one a reply answers."""
        parts = (self.header("CSeq") or "").split()
        return parts[1] if len(parts) > 1 else None

    # ----- body -----

    @property
    def has_sdp(self) -> bool:
        """True if the body is an SDP (Content-Type application/sdp, or it starts with v=0)."""
        content_type = (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        return content_type == "application/sdp" or self.body.lstrip().startswith("v=0")

    def sdp_direction(self) -> str | None:
        """The media direction an SDP body offers or answers; None without SDP.

        The first direction attribute of the first m= section, else the
        session-level one, else "sendrecv" (the SDP default). A held call shows
        "sendonly" or "inactive".
        """
        if not self.has_sdp:
            return None
        session, media = _sdp_attribute_sections(self.body)
        for attributes in (media, session):
            for attribute in attributes:
                if attribute in SDP_DIRECTIONS:
                    return attribute
        return "sendrecv"

    @property
    def summary(self) -> str:
        """One line for assertion messages: '#12 in INVITE sip:... (Call-ID x)'."""
        return f"#{self.seq} {self.direction} {self.first_line} (Call-ID {self.call_id})"


# ----- header values -----


def canonical_name(name: str) -> str:
    """'i' -> 'Call-ID' (any case); any other name is returned stripped, as is."""
    name = name.strip()
    return COMPACT_FORMS.get(name.lower(), name) if len(name) == 1 else name


def name_addr_uri(value: str) -> str:
    """The URI of a name-addr/addr-spec header value.

    '"Anon" <sip:anonymous@anonymous.invalid>;tag=1' -> 'sip:anonymous@anonymous.invalid';
    'sip:1001@host;tag=1' -> 'sip:1001@host' (parameters after ';' belong to the header).
    """
    inside = re.search(r"<([^>]*)>", value)
    if inside:
        return inside.group(1).strip()
    return value.strip().split(";", 1)[0].strip()


def uri_user(uri: str) -> str | None:
    """The user part of a SIP URI ('sip:1001@host;x=y' -> '1001'); None without one."""
    match = re.match(r"^\s*(?:sips?|tel):([^@;?>]+)@", uri, re.IGNORECASE)
    return match.group(1) if match else None


# ----- parsing one message -----


def parse_sip(
    raw: str,
    *,
    seq: int = 0,
    direction: str = "",
    timestamp: float | None = None,
    transport: str = "",
    source: str = "",
    destination: str = "",
) -> SipMessage:
    """Parse the text of one SIP message (CRLF or LF line ends). Never raises on bad input."""
    head, body = _split_head(raw)
    first_line, *lines = _LINE_BREAK.split(head)
    return SipMessage(
        seq=seq,
        direction=direction,
        first_line=first_line.strip(),
        header_fields=tuple(parse_header_lines(lines)),
        body=body,
        timestamp=timestamp,
        transport=transport,
        source=source,
        destination=destination,
        raw=raw,
    )


def parse_header_lines(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(name, value) per header; folded continuation lines are joined with a space."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        if colon and name.strip():
            fields.append((canonical_name(name), value.strip()))
    return fields


def _split_head(raw: str) -> tuple[str, str]:
    """(start line + headers, body) at the first empty line."""
    match = re.search(r"\r?\n\r?\n", raw)
    if match is None:
        return raw.rstrip("\r\n"), ""
    return raw[: match.start()], raw[match.end() :]


def _sdp_attribute_sections(body: str) -> tuple[list[str], list[str]]:
    """a= attribute names of the session part and of the first m= section."""
    session: list[str] = []
    media: list[str] = []
    current, media_seen = session, 0
    for line in _LINE_BREAK.split(body):
        if line.startswith("m="):
            media_seen += 1
            current = media if media_seen == 1 else []
        elif line.startswith("a="):
            current.append(line[2:].split(":", 1)[0].strip())
    return session, media


# ----- parsing capture files -----


def parse_capture(data: bytes, first_seq: int = 0) -> tuple[list[SipMessage], int]:
    """Parse the complete records in sipdump text `data`.

    Returns (messages numbered from `first_seq`, bytes consumed); records
    holding only whitespace (CRLF keepalives) are skipped. Consumed
    bytes end after the last complete record, so an incomplete trailing one
    (still being written) is parsed on a later call with more data.
    """
    messages: list[SipMessage] = []
    consumed = 0
    for meta, message, end in _records(data):
        if message.strip():  # a CRLF keepalive is not a SIP message
            messages.append(_message(meta, message, first_seq + len(messages)))
        consumed = end
    return messages, consumed


def _records(data: bytes) -> Iterator[tuple[dict[str, str], bytes, int]]:
    """(metadata, message bytes, offset after the record) for each complete record."""
    pos = 0
    while (start := _record_start(data, pos)) is not None:
        meta_end = data.find(META_END, start)
        if meta_end < 0:
            return
        message_start = meta_end + len(META_END)
        message_end = _message_end(data, message_start)
        if message_end is None:
            return
        meta = _meta(data[start + len(RECORD_START) : meta_end])
        pos = message_end + len(RECORD_END)
        yield meta, data[message_start:message_end], pos


def _record_start(data: bytes, pos: int) -> int | None:
    """Offset of the next record start marker at a line start, from `pos`."""
    while (found := data.find(RECORD_START, pos)) >= 0:
        if found == 0 or data[found - 1 : found] == b"\n":
            return found
        pos = found + 1
    return None


def _message_end(data: bytes, start: int) -> int | None:
    """Offset where the message starting at `start` ends (its end marker), None if incomplete.

    Content-Length says exactly where the body ends, so a body containing the
    markers is no problem. Without a usable Content-Length: the first end
    marker followed by the next record, or by the end of the data.
    """
    declared = _declared_end(data, start)
    if declared is not None and data.startswith(RECORD_END, declared):
        return declared
    found = data.find(RECORD_END + RECORD_START, start)
    if found >= 0:
        return found
    if data.endswith(RECORD_END) and len(data) - len(RECORD_END) >= start:
        return len(data) - len(RECORD_END)
    return None


def _declared_end(data: bytes, start: int) -> int | None:
    """start of body + Content-Length, if the head is complete and declares one."""
    limit = data.find(RECORD_END, start)
    head_end = _HEAD_END.search(data, start, limit if limit >= 0 else len(data))
    if head_end is None:
        return None
    length = _CONTENT_LENGTH.search(data, start, head_end.start())
    return head_end.end() + int(length.group(1)) if length else None


def _meta(block: bytes) -> dict[str, str]:
    meta = {}
    for line in block.decode("utf-8", errors="replace").splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip()
    return meta


def _message(meta: dict[str, str], message: bytes, seq: int) -> SipMessage:
    tag = meta.get("tag", "")
    return parse_sip(
        message.decode("utf-8", errors="replace"),
        seq=seq,
        direction=DIRECTIONS.get(tag, tag),
        timestamp=_float(meta.get("time")),
        transport=meta.get("proto", "").split(" ", 1)[0],
        source=_hostport(meta.get("srcip"), meta.get("srcport")),
        destination=_hostport(meta.get("dstip"), meta.get("dstport")),
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _hostport(host: str | None, port: str | None) -> str:
    if not host:
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


# ----- a capture folder, read as it grows -----


class CaptureReader:
    """Messages in a folder of sipdump .data files, read incrementally.

    Files are read in name order (kamailio.py names them so that this is the
    order they were written in); each call reads only what was appended
    since the last one. Thread-safe.
    """

    def __init__(self, folder: Path, pattern: str = CAPTURE_GLOB) -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        self._offsets: dict[Path, int] = {}
        self._messages: list[SipMessage] = []
        self._lock = threading.Lock()

    def read(self) -> list[SipMessage]:
        """Every complete message captured so far, oldest first."""
        with self._lock:
            for path in sorted(self.folder.glob(self.pattern)):
                self._read_file(path)
            return list(self._messages)

    def _read_file(self, path: Path) -> None:
        offset = self._offsets.get(path, 0)
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        if not data:
            return
        messages, consumed = parse_capture(data, first_seq=len(self._messages))
        self._messages.extend(messages)
        self._offsets[path] = offset + consumed


# ----- choosing messages -----


def select(
    messages: Iterable[SipMessage],
    method: str | None = None,
    *,
    requests_only: bool = False,
    replies_only: bool = False,
    direction: str | None = None,
    call_id: str | None = None,
    after: int | None = None,
) -> list[SipMessage]:
    """The messages matching every given criterion, in capture order.

    `method` matches the CSeq method (case-insensitive), so it picks requests
    of that method and the replies to them: select(m, "REGISTER") gives the
    REGISTERs with their 401 and 200. `direction` is "in" or "out"; `after`
    keeps messages with seq > after.
    """
    checks: list[Callable[[SipMessage], bool]] = []
    if method is not None:
        checks.append(lambda m: (m.cseq_method or m.method or "").upper() == method.upper())
    if requests_only:
        checks.append(lambda m: m.is_request)
    if replies_only:
        checks.append(lambda m: m.is_reply)
    if direction is not None:
        checks.append(lambda m: m.direction == direction)
    if call_id is not None:
        checks.append(lambda m: m.call_id == call_id)
    if after is not None:
        checks.append(lambda m: m.seq > after)
    return [m for m in messages if all(check(m) for check in checks)]
