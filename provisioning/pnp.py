"""SIP plug-and-play: the phone asks the LAN for its provisioning URL, and a small responder.

The phone multicasts a SUBSCRIBE for the ``ua-profile`` event (RFC 6080's user agent profile
framework, as desk phones use it) to 224.0.1.75:5060 over UDP::

    SUBSCRIBE sip:<mac>@224.0.1.75 SIP/2.0
    From: <sip:<mac>@<phone ip>>;tag=...
    Event: ua-profile;profile-type="device";vendor="Luren";model="<model>";version="<version>"
    Accept: application/url
    Expires: 0

(`<mac>` is the 12 lower-case hex digits of the phone's MAC address.) A provisioning server
on the LAN answers 200 OK, then sends a NOTIFY unicast to the address and port the SUBSCRIBE
came from; its body (``Content-Type: application/url``) is the provisioning URL. The phone
answers the NOTIFY 200 OK. :func:`discover` is the phone's side; :class:`PnpResponder` is a
small responder for the reference server and the tests.

The phone sends from an ephemeral UDP port bound to its interface address, with multicast
TTL 1 (the group never leaves the LAN), retransmits the SUBSCRIBE (same Call-ID, next CSeq,
new branch) until a 2xx answers it or its attempts are used up, and checks every NOTIFY
strictly: a message that is malformed, or belongs to another subscription, is ignored.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

log = logging.getLogger("luren.provisioning.pnp")

PNP_GROUP = ("224.0.1.75", 5060)
EVENT_PACKAGE = "ua-profile"
VENDOR = "Luren"
CONTENT_TYPE = "application/url"
MAX_DATAGRAM = 65535
# Linux's IP_MULTICAST_ALL (not exported by Python's socket module): 0 = deliver only the
# groups this socket joined, not every group any socket on the host joined.
_IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)

_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "o": "event",
    "k": "supported",
    "s": "subject",
}
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_REQUEST_LINE = re.compile(r"([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ?(.*)")
_SAFE_VALUE = re.compile(r"[\x20-\x7e]+")


@dataclass(frozen=True)
class PnpResult:
    """The provisioning URL a plug-and-play server gave, and who gave it."""

    url: str
    server: tuple[str, int]


class PnpError(Exception):
    """Plug-and-play cannot run: a bad argument, or the socket cannot be set up."""


# --------------------------------------------------------------------------------------------
# SIP messages


@dataclass(frozen=True)
class SipMessage:
    """One parsed SIP message: a request (`method` set) or a response (`status` set)."""

    method: str | None
    uri: str | None
    status: int | None
    reason: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, value)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (full name, any case), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def all(self, name: str) -> list[str]:
        """Every value of header `name`, in order."""
        name = name.lower()
        return [v for k, v in self.headers if k == name]


def parse_message(data: bytes) -> SipMessage | None:
    """A SIP message from one UDP datagram, or None if it is not a well-formed one.

    Lines must end in CRLF, the head must be UTF-8, header names must be tokens (compact
    forms are expanded), and a Content-Length must be a number no larger than the body
    present (the body is cut to it, as RFC 3261 says for datagrams).
    """
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    if any("\n" in line or "\r" in line for line in lines):
        return None
    start = lines[0]
    method = uri = reason = None
    status = None
    if m := _STATUS_LINE.fullmatch(start):
        status, reason = int(m.group(1)), m.group(2)
    elif m := _REQUEST_LINE.fullmatch(start):
        method, uri = m.group(1).upper(), m.group(2)
    else:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not headers:
                return None
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.fullmatch(name):
            return None
        name = name.lower()
        headers.append((_COMPACT.get(name, name), value.strip()))
    lengths = {v for k, v in headers if k == "content-length"}
    body = rest
    if lengths:
        if len(lengths) != 1:
            return None
        value = lengths.pop()
        if not value.isdigit() or int(value) > len(rest):
            return None
        body = rest[: int(value)]
    return SipMessage(method, uri, status, reason, headers, body)


def _split_params(text: str) -> list[str]:
    """Split at ``;`` outside double quotes."""
    parts, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _params(parts: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        key, _eq, value = part.strip().partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if key.strip():
            out[key.strip().lower()] = value
    return out


def parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """``first;a=b;c="d"`` -> ("first", {"a": "b", "c": "d"}) (Event, Content-Type...)."""
    parts = _split_params(value)
    return parts[0].strip(), _params(parts[1:])


def parse_name_addr(value: str) -> tuple[str, dict[str, str]] | None:
    """From/To/Contact ``"Name" <uri>;tag=x`` -> (uri, {"tag": "x"}); None if malformed."""
    if "<" in value:
        start, end = value.find("<"), value.find(">")
        if end < start:
            return None
        uri, rest = value[start + 1 : end].strip(), value[end + 1 :]
        params = _params(_split_params(rest)[1:]) if rest.strip() else {}
        if rest.strip() and not rest.strip().startswith(";"):
            return None
    else:
        parts = _split_params(value)
        uri, params = parts[0].strip(), _params(parts[1:])
    if not re.match(r"sips?:", uri, re.IGNORECASE):
        return None
    return uri, params


def _uri_user(uri: str) -> str | None:
    m = re.match(r"sips?:([^@;>]+)@", uri, re.IGNORECASE)
    return m.group(1) if m else None


def _cseq(value: str | None) -> tuple[int, str] | None:
    m = re.fullmatch(r"(\d{1,10}) +([A-Za-z]+)", value or "")
    return (int(m.group(1)), m.group(2).upper()) if m else None


def normalise_mac(mac: str) -> str:
    """12 lower-case hex digits from ``00:04:13:AA:BB:CC``, ``0004.13aa.bbcc`` etc."""
    digits = re.sub(r"[:.\-\s]", "", mac).lower()
    if not re.fullmatch(r"[0-9a-f]{12}", digits):
        raise PnpError(f"{mac!r} is not a MAC address")
    return digits


def _check_value(what: str, value: str) -> None:
    if not _SAFE_VALUE.fullmatch(value) or '"' in value or "\\" in value:
        raise PnpError(f"{what} {value!r} cannot go in a SIP header")


def _check_token(what: str, value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9.!%*_+`'~@:-]+", value):
        raise PnpError(f"{what} {value!r} is not a SIP token")


def _crlf(lines: list[str], body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


# --------------------------------------------------------------------------------------------
# The phone's side


def build_subscribe(
    mac: str,
    model: str,
    version: str,
    local: tuple[str, int],
    call_id: str,
    cseq: int,
    branch: str,
    tag: str,
    target: tuple[str, int],
) -> bytes:
    """The plug-and-play SUBSCRIBE datagram, sent from `local` to `target` (the group)."""
    user = normalise_mac(mac)
    _check_value("model", model)
    _check_value("version", version)
    for what, value in (("Call-ID", call_id), ("branch", branch), ("tag", tag)):
        _check_token(what, value)
    if not 0 < cseq < 2**31:
        raise PnpError(f"CSeq {cseq} is out of range")
    lhost, lport = local
    host, port = target
    ruri = f"sip:{user}@{host}" + ("" if port == 5060 else f":{port}")
    return _crlf(
        [
            f"SUBSCRIBE {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {lhost}:{lport};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{lhost}>;tag={tag}",
            f"To: <sip:{user}@{host}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} SUBSCRIBE",
            f"Contact: <sip:{user}@{lhost}:{lport}>",
            f'Event: {EVENT_PACKAGE};profile-type="device";vendor="{VENDOR}";'
            f'model="{model}";version="{version}"',
            "Expires: 0",
            f"Accept: {CONTENT_TYPE}",
            f"User-Agent: {VENDOR} {model} {version}",
            "Content-Length: 0",
        ]
    )


def _response(
    request: SipMessage, status: int, reason: str, extra: list[str], to_tag: str | None = None
) -> bytes:
    """A response copying Via, From, To (adding `to_tag` if it has none), Call-ID and CSeq."""
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in request.all("via")]
    to_value = request.header("to") or ""
    to = parse_name_addr(to_value)
    if to_tag and to is not None and "tag" not in to[1]:
        to_value = f"{to_value};tag={to_tag}"
    lines += [f"From: {request.header('from')}", f"To: {to_value}"]
    lines += [f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}"]
    return _crlf([*lines, *extra, "Content-Length: 0"])


def _notify_url(msg: SipMessage, call_id: str, tag: str) -> str | None:
    """The body of a NOTIFY for our subscription, or None (and why, logged) if it is not one."""

    def bad(why: str) -> None:
        log.info("plug-and-play: NOTIFY ignored: %s", why)

    if not (msg.uri and re.match(r"sips?:", msg.uri, re.IGNORECASE)):
        return bad("its request URI is not a SIP URI")
    vias = msg.all("via")
    if not vias or not re.match(r"SIP/2\.0/UDP\s+\S", vias[0], re.IGNORECASE):
        return bad("it has no UDP Via")
    if "branch" not in parse_header_value(vias[0])[1]:
        return bad("its Via has no branch")
    if msg.header("call-id") != call_id:
        return bad("it is for another Call-ID")
    to = parse_name_addr(msg.header("to") or "")
    sender = parse_name_addr(msg.header("from") or "")
    if to is None or sender is None:
        return bad("its From or To is missing or malformed")
    if to[1].get("tag") != tag:
        return bad("its To tag is not this subscription's")
    if not sender[1].get("tag"):
        return bad("its From has no tag")
    cseq = _cseq(msg.header("cseq"))
    if cseq is None or cseq[1] != "NOTIFY":
        return bad("its CSeq is missing or not a NOTIFY")
    event = parse_header_value(msg.header("event") or "")[0]
    if event.lower() != EVENT_PACKAGE:
        return bad(f"its Event is {event!r}, not {EVENT_PACKAGE}")
    if msg.header("content-length") is None:
        return bad("it has no Content-Length")
    ctype = parse_header_value(msg.header("content-type") or "")[0]
    if ctype.lower() != CONTENT_TYPE:
        return bad(f"its body is {ctype or 'untyped'}, not {CONTENT_TYPE}")
    try:
        url = msg.body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return bad("its body is not text")
    if not url or any(c.isspace() or ord(c) < 0x20 for c in url):
        return bad("its body is not one URL")
    return url


def _acceptable(url: str, https_only: bool) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        log.warning("plug-and-play: %r is not a URL; ignored", url)
        return False
    schemes = ("https",) if https_only else ("https", "http")
    if parts.scheme.lower() not in schemes or not parts.hostname:
        log.warning(
            "plug-and-play: server offered %r; only %s URLs are accepted; ignored",
            url,
            " or ".join(schemes),
        )
        return False
    return True


def discover(
    mac: str,
    model: str,
    version: str,
    *,
    group: tuple[str, int] = PNP_GROUP,
    interface_ip: str = "127.0.0.1",
    timeout_s: float = 5.0,
    https_only: bool = True,
    attempts: int = 3,
) -> PnpResult | None:
    """Ask the LAN for this phone's provisioning URL; None if no usable answer in `timeout_s`.

    The SUBSCRIBE goes to `group` from an ephemeral port on `interface_ip`, every
    ``timeout_s / attempts`` seconds until a 2xx answers it or `attempts` are sent. Raises
    PnpError only for bad arguments or when the socket cannot be set up.
    """
    user = normalise_mac(mac)
    _check_value("model", model)
    _check_value("version", version)
    if attempts < 1 or timeout_s <= 0:
        raise PnpError("attempts and timeout_s must be positive")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            sock.bind((interface_ip, 0))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface_ip)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        except OSError as exc:
            raise PnpError(
                f"cannot send plug-and-play requests from {interface_ip}: {exc}"
            ) from exc
        return _discover(sock, user, model, version, group, timeout_s, https_only, attempts)
    finally:
        sock.close()


def _discover(
    sock: socket.socket,
    user: str,
    model: str,
    version: str,
    group: tuple[str, int],
    timeout_s: float,
    https_only: bool,
    attempts: int,
) -> PnpResult | None:
    local = sock.getsockname()
    call_id = f"{secrets.token_hex(12)}@{local[0]}"
    tag = secrets.token_hex(6)
    started = time.monotonic()
    deadline = started + timeout_s
    interval = timeout_s / attempts
    sent_cseqs: set[int] = set()
    accepted = False
    while True:
        now = time.monotonic()
        if now >= deadline:
            log.info("plug-and-play: no usable answer in %.1f s", timeout_s)
            return None
        sending = not accepted and len(sent_cseqs) < attempts
        if sending and now >= started + len(sent_cseqs) * interval:
            cseq = len(sent_cseqs) + 1
            branch = f"z9hG4bK{secrets.token_hex(8)}"
            data = build_subscribe(user, model, version, local, call_id, cseq, branch, tag, group)
            try:
                sock.sendto(data, group)
            except OSError as exc:
                log.warning("plug-and-play: cannot send to %s:%d: %s", *group, exc)
            sent_cseqs.add(cseq)
            continue
        wake = started + len(sent_cseqs) * interval if sending else deadline
        sock.settimeout(max(min(wake, deadline) - now, 0.001))
        try:
            data, addr = sock.recvfrom(MAX_DATAGRAM)
        except TimeoutError:
            continue
        except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
            log.debug("plug-and-play: receive error: %s", exc)
            continue
        msg = parse_message(data)
        if msg is None:
            log.info("plug-and-play: malformed message from %s:%d ignored", *addr)
            continue
        if msg.status is not None:
            cseq_of = _cseq(msg.header("cseq")) or (0, "")
            ours = msg.header("call-id") == call_id and cseq_of[1] == "SUBSCRIBE"
            if ours and cseq_of[0] in sent_cseqs:
                if 200 <= msg.status < 300:
                    accepted = True
                    log.info("plug-and-play: %s:%d accepted the subscription", *addr)
                elif msg.status >= 300:
                    log.info("plug-and-play: %s:%d answered %d", *addr, msg.status)
            continue
        if msg.method != "NOTIFY":
            continue
        url = _notify_url(msg, call_id, tag)
        if url is None:
            continue
        with contextlib.suppress(OSError):
            sock.sendto(_response(msg, 200, "OK", []), addr)
        if _acceptable(url, https_only):
            log.info("plug-and-play: %s:%d gave %s", *addr, url)
            return PnpResult(url, (addr[0], addr[1]))


# --------------------------------------------------------------------------------------------
# The responder


@dataclass
class _Pending:
    data: bytes
    addr: tuple[str, int]
    call_id: str
    cseq: int
    due: float
    sends: int = 1


class PnpResponder:
    """A small plug-and-play responder for the reference server and tests.

    It joins the group on `interface_ip`, answers each SUBSCRIBE 200 OK and sends a NOTIFY
    with ``url_for(mac, model)`` (None = stay silent) unicast to the sender, from its own
    unicast socket on `interface_ip` (port `port`, or an ephemeral one when None). The NOTIFY
    is retransmitted (0.5 s, doubling, 4 sends at most) until it is answered.
    ``requests`` lists the (mac, model) of every SUBSCRIBE seen, ``acks`` the (Call-ID,
    status) of every answer to a NOTIFY; ``address`` is the unicast address once started.
    """

    RETRANSMIT_S = 0.5
    MAX_SENDS = 4
    MAX_DIALOGS = 1024

    def __init__(
        self,
        url_for: Callable[[str, str], str | None],
        *,
        group: tuple[str, int] = PNP_GROUP,
        interface_ip: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.url_for = url_for
        self.group = group
        self.interface_ip = interface_ip
        self.port = port
        self.requests: list[tuple[str, str]] = []
        self.acks: list[tuple[str, int]] = []
        self.address: tuple[str, int] | None = None
        self._changed = threading.Condition()
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._tags: dict[str, str] = {}
        self._notify_cseq: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._wake: socket.socket | None = None

    def start(self) -> PnpResponder:
        """Join the group and start answering; returns self."""
        if self._thread is not None:
            return self
        group_ip, group_port = self.group
        mcast = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        uni = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        wake_r, wake_w = socket.socketpair()
        self._sockets = [mcast, uni, wake_r, wake_w]
        try:
            mcast.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                mcast.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                mcast.bind((group_ip, group_port))  # Linux: only datagrams sent to the group
            except OSError:
                mcast.bind(("", group_port))
            with contextlib.suppress(OSError):
                mcast.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
            mcast.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton(group_ip) + socket.inet_aton(self.interface_ip),
            )
            uni.bind((self.interface_ip, self.port or 0))
        except OSError as exc:
            self._close()
            raise PnpError(
                f"cannot listen for plug-and-play on {group_ip}:{group_port} "
                f"via {self.interface_ip}: {exc}"
            ) from exc
        host, port = uni.getsockname()[:2]
        self.address = (host, port)
        self._wake = wake_w
        self._thread = threading.Thread(
            target=self._run, args=(mcast, uni, wake_r), name="pnp-responder", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the sockets (safe to call twice)."""
        if self._thread is not None and self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake.send(b"x")
            self._thread.join(timeout=5)
        self._thread = None
        self._close()

    def _close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        self._wake = None

    def __enter__(self) -> PnpResponder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_until(self, predicate: Callable[[PnpResponder], bool], timeout: float) -> bool:
        """Wait until `predicate(self)` holds (checked at each change); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    # -- the loop ----------------------------------------------------------------------------

    def _run(self, mcast: socket.socket, uni: socket.socket, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as sel:
            for sock in (mcast, uni, wake):
                sel.register(sock, selectors.EVENT_READ)
            while True:
                due = min((p.due for p in self._pending.values()), default=None)
                timeout = None if due is None else max(due - time.monotonic(), 0)
                for key, _mask in sel.select(timeout):
                    sock = key.fileobj
                    if sock is wake:
                        return
                    assert isinstance(sock, socket.socket)
                    try:
                        data, addr = sock.recvfrom(MAX_DATAGRAM)
                    except OSError:
                        continue
                    try:
                        self._handle(data, (addr[0], addr[1]), uni)
                    except Exception:  # one bad datagram must not stop the responder
                        log.exception("plug-and-play responder: datagram from %s failed", addr)
                self._retransmit(uni)

    def _send(self, uni: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
        try:
            uni.sendto(data, addr)
        except OSError as exc:
            log.warning("plug-and-play responder: cannot send to %s:%d: %s", *addr, exc)

    def _retransmit(self, uni: socket.socket) -> None:
        now = time.monotonic()
        for key, pending in list(self._pending.items()):
            if pending.due > now:
                continue
            if pending.sends >= self.MAX_SENDS:
                del self._pending[key]
                log.info("plug-and-play responder: NOTIFY to %s:%d unanswered", *pending.addr)
                continue
            self._send(uni, pending.data, pending.addr)
            pending.sends += 1
            pending.due = now + self.RETRANSMIT_S * 2 ** (pending.sends - 1)

    def _handle(self, data: bytes, addr: tuple[str, int], uni: socket.socket) -> None:
        msg = parse_message(data)
        if msg is None:
            return
        if msg.status is not None:
            self._answer_to_notify(msg)
        elif msg.method == "SUBSCRIBE":
            self._subscribe(msg, addr, uni)

    def _answer_to_notify(self, msg: SipMessage) -> None:
        call_id = msg.header("call-id") or ""
        cseq = _cseq(msg.header("cseq"))
        if cseq is None or cseq[1] != "NOTIFY" or msg.status is None or msg.status < 200:
            return
        if self._pending.pop((call_id, cseq[0]), None) is None:
            return
        with self._changed:
            self.acks.append((call_id, msg.status))
            self._changed.notify_all()

    def _subscribe(self, msg: SipMessage, addr: tuple[str, int], uni: socket.socket) -> None:
        event, params = parse_header_value(msg.header("event") or "")
        sender = parse_name_addr(msg.header("from") or "")
        call_id = msg.header("call-id")
        cseq = _cseq(msg.header("cseq"))
        if event.lower() != EVENT_PACKAGE or sender is None or not call_id or cseq is None:
            return
        user = (_uri_user(sender[0]) or "").lower()
        user = re.sub(r"^mac(%3a|:)", "", user)
        if not re.fullmatch(r"[0-9a-f]{12}", user) or not msg.all("via"):
            return
        model = params.get("model", "")
        with self._changed:
            self.requests.append((user, model))
            self._changed.notify_all()
        assert self.address is not None
        host, port = self.address
        if len(self._tags) >= self.MAX_DIALOGS:  # forget the oldest subscriptions
            for old in list(self._tags)[: self.MAX_DIALOGS // 2]:
                self._tags.pop(old, None)
                self._notify_cseq.pop(old, None)
        tag = self._tags.setdefault(call_id, secrets.token_hex(6))
        to_value = msg.header("to") or ""
        ok = _response(msg, 200, "OK", [f"Contact: <sip:{host}:{port}>", "Expires: 0"], tag)
        self._send(uni, ok, addr)
        try:
            url = self.url_for(user, model)
        except Exception:
            log.exception("plug-and-play responder: url_for(%s, %s) failed", user, model)
            url = None
        if url is None:
            return
        number = self._notify_cseq.get(call_id, 0) + 1
        self._notify_cseq[call_id] = number
        body = url.encode("utf-8")
        contact = parse_name_addr(msg.header("contact") or "")
        target = contact[0] if contact else f"sip:{addr[0]}:{addr[1]}"
        to_uri = parse_name_addr(to_value)
        notify = _crlf(
            [
                f"NOTIFY {target} SIP/2.0",
                f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(8)}",
                "Max-Forwards: 70",
                f"From: <{to_uri[0] if to_uri else f'sip:{user}@{self.group[0]}'}>;tag={tag}",
                f"To: {msg.header('from')}",
                f"Call-ID: {call_id}",
                f"CSeq: {number} NOTIFY",
                f"Contact: <sip:{host}:{port}>",
                f"Event: {EVENT_PACKAGE}",
                "Subscription-State: terminated;reason=timeout",
                f"Content-Type: {CONTENT_TYPE}",
                f"Content-Length: {len(body)}",
            ],
            body,
        )
        self._pending[(call_id, number)] = _Pending(
            notify, addr, call_id, number, time.monotonic() + self.RETRANSMIT_S
        )
        self._send(uni, notify, addr)
