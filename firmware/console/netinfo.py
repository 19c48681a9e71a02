"""Network diagnostics for the technician console's ``net`` command.

Every function here blocks (the console runs them in a worker thread, never on the phone's
loop) and none raises for a network or input problem: failures come back in words, in the
result's ``error``, for a technician at a dumb terminal. Each result type renders itself with
``lines()``: short plain-text lines (no ANSI, at most 78 columns unless a URL is longer), with
anything the network sent (a Server header, a certificate name, a lease's text) stripped of
control characters.

    for interface in addresses():
        print("\\n".join(interface.lines()))
    sip_options_ping("pbx.example.se", 5060).lines()
    # ['registrar pbx.example.se:5060 udp (192.0.2.10): answered 200 OK in 3 ms (Server: ...)']

* :func:`addresses`: interfaces, their MACs and addresses, from ``ip -j addr show``; without
  ``ip`` (or when it fails), names, MACs and up/down from ``/sys/class/net`` only.
* :func:`dns_servers` from resolv.conf; :func:`default_gateway` from ``/proc/net/route``
  (IPv4 only: the kernel keeps IPv6 routes elsewhere and this does not read them).
* :func:`dhcp_options`: what the newest DHCP lease holds, read as provisioning reads it
  (:mod:`provisioning.dhcp`).
* :func:`sip_options_ping`: a SIP OPTIONS request (RFC 3261 11) over UDP or TCP. Any final
  answer, 404 or 405 included, shows the registrar is reachable and speaks SIP.
* :func:`https_check`: a GET of the provisioning folder's ``common.toml``, with the server
  certificate's name and expiry (read also when it is not trusted, to say whose it is).

No shell is ever started: ``ip`` runs from a fixed argument list, and host names the
technician types go only into socket calls (and, checked to be a host name or address first,
into the SIP request). Time is measured with :func:`time.monotonic`, not the phone's
:class:`~firmware.clock.Clock`: these are deadlines for blocking sockets in a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import http.client
import ipaddress
import json
import logging
import re
import secrets
import socket
import ssl
import struct
import subprocess
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from firmware.sip.dialog_watch import SipMessage, parse_message
from provisioning import dhcp

log = logging.getLogger(__name__)

SYS_NET = Path("/sys/class/net")
RESOLV_CONF = Path("/etc/resolv.conf")
PROC_ROUTE = Path("/proc/net/route")
IP_TIMEOUT = 3.0  # seconds `ip -j addr show` may take
USER_AGENT = "Luren console"
MAX_BODY = 64 * 1024  # https_check reads at most this much of the body, then drops it
MAX_SIP_MESSAGE = 65535
T1, T2 = 0.5, 4.0  # RFC 3261 17.1.2.2: UDP retransmissions after 0.5, 1, 2, 4, 4... s
WIDTH = 78

_IFF_UP, _IFF_LOOPBACK = 0x1, 0x8
_RTF_UP, _RTF_GATEWAY = 0x1, 0x2
_NOT_YET_VALID, _EXPIRED = 9, 10  # OpenSSL X509_V_ERR_* codes
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})
_WRONG_HOST = frozenset({62, 64})  # host name, IP address mismatch
# What OpenSSL (3.0 and later versions) says when the answer to a ClientHello is not TLS
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"})
_NAME_NOT_FOUND = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None)
_HOSTNAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


# ----- interfaces -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    """One network interface as the technician sees it."""

    name: str
    up: bool  # administratively up and with a link (carrier)
    mac: str  # "" when unknown
    addresses: list[str] = field(default_factory=list)  # "addr/prefix", IPv4 and IPv6
    loopback: bool = False
    addresses_known: bool = True  # False when `ip` was missing and only /sys could be read

    def lines(self) -> list[str]:
        """``eth0: up, MAC 02:...`` and one indented line per address."""
        kind = " (loopback)" if self.loopback else ""
        mac = f", MAC {_printable(self.mac, 60)}" if self.mac else ""
        out = [f"{_printable(self.name, 30)}{kind}: {'up' if self.up else 'down'}{mac}"]
        if not self.addresses_known:
            out.append("  addresses unknown (the ip program is missing or failed)")
        elif not self.addresses:
            out.append("  no address")
        return out + [f"  {address}" for address in self.addresses]


def addresses(*, ip: str = "ip", sys_net: Path = SYS_NET) -> list[Interface]:
    """Every interface, loopback included (and marked), in the kernel's order.

    From ``ip -j addr show`` (`ip` is the program to run); if it is missing, fails, takes over
    3 s or prints something else, from `sys_net` and :func:`socket.if_nameindex` instead:
    names, MACs and up/down, with ``addresses_known=False``.
    """
    output = _run_ip(ip)
    found = parse_ip_json(output) if output is not None else None
    if found is not None:
        return found
    log.debug("ip -j addr show unusable; reading %s", sys_net)
    return _from_sys(sys_net)


def parse_ip_json(text: str) -> list[Interface] | None:
    """Interfaces from the output of ``ip -j addr show``; None if it is not that JSON."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, list):
        return None
    return [_ip_interface(item) for item in data
            if isinstance(item, dict) and isinstance(item.get("ifname"), str)]


def _ip_interface(item: Mapping[str, Any]) -> Interface:
    raw_flags = item.get("flags")
    flags = {f for f in raw_flags if isinstance(f, str)} if isinstance(raw_flags, list) else set()
    infos = item.get("addr_info")
    found = [f"{info['local']}/{info['prefixlen']}"
             for info in (infos if isinstance(infos, list) else [])
             if isinstance(info, dict) and info.get("family") in ("inet", "inet6")
             and isinstance(info.get("local"), str) and isinstance(info.get("prefixlen"), int)]
    mac = item.get("address")
    return Interface(
        name=item["ifname"], up={"UP", "LOWER_UP"} <= flags,
        mac=mac if isinstance(mac, str) else "", addresses=found,
        loopback="LOOPBACK" in flags or item.get("link_type") == "loopback")


def _run_ip(ip: str) -> str | None:
    """The output of ``ip -j addr show`` (fixed arguments, no shell); None if it failed."""
    try:
        done = subprocess.run([ip, "-j", "addr", "show"], capture_output=True, check=False,
                              timeout=IP_TIMEOUT, encoding="utf-8", errors="replace")
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s -j addr show: %s", ip, exc)
        return None
    return done.stdout if done.returncode == 0 else None


def _from_sys(sys_net: Path) -> list[Interface]:
    """Names (socket.if_nameindex, then any others in `sys_net`), MACs and up/down."""
    names: list[str] = []
    with contextlib.suppress(OSError):
        names = [name for _index, name in sorted(socket.if_nameindex())]
    with contextlib.suppress(OSError):
        names += sorted(p.name for p in sys_net.iterdir() if p.name not in names)
    return [_sys_interface(sys_net / name) for name in names]


def _sys_interface(directory: Path) -> Interface:
    """One interface from its sysfs directory: `flags` (hex), `carrier` ("1" with a link)."""
    mac, flags = _read_text(directory / "address"), _read_text(directory / "flags")
    try:
        bits = int(flags, 16)
    except ValueError:
        bits = 0
    up = bool(bits & _IFF_UP) and _read_text(directory / "carrier") == "1"
    return Interface(directory.name, up, mac, [], bool(bits & _IFF_LOOPBACK),
                     addresses_known=False)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


# ----- DNS servers and default gateway --------------------------------------------------------


def dns_servers(resolv_conf: Path = RESOLV_CONF) -> list[str]:
    """The ``nameserver`` addresses of `resolv_conf`, in order, without repeats.

    [] when the file cannot be read. 127.0.0.53 is systemd-resolved's local stub: the servers
    it asks are then in /run/systemd/resolve/resolv.conf.
    """
    try:
        text = resolv_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    servers: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and words[1] not in servers:
            with contextlib.suppress(ValueError):
                ipaddress.ip_address(words[1].partition("%")[0])
                servers.append(words[1])
    return servers


def default_gateway(route_file: Path = PROC_ROUTE) -> str | None:
    """The IPv4 default gateway from `route_file` (the kernel's /proc/net/route); None if none.

    IPv4 only. With several default routes, the one with the lowest metric.
    """
    try:
        text = route_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    best: tuple[int, int] | None = None
    for line in text.splitlines()[1:]:
        fields = line.split()
        try:
            destination, gateway, flags = (int(f, 16) for f in fields[1:4])
            metric, mask = int(fields[6]), int(fields[7], 16)
        except (ValueError, IndexError):
            continue
        wanted = _RTF_UP | _RTF_GATEWAY
        default = destination == 0 and mask == 0 and flags & wanted == wanted
        if default and (best is None or metric < best[0]):
            best = (metric, gateway)
    # The kernel prints the address as a host-order number of network-order bytes.
    return None if best is None else socket.inet_ntoa(struct.pack("=I", best[1]))


# ----- DHCP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DhcpSeen:
    """The options of the newest DHCP lease, as provisioning would read them."""

    source: str  # "hook:/run/luren/dhcp.json", "dhclient:/var/lib/dhcp/..." etc.
    options: dict[int, str]  # option code -> value as text (hex when it is not text)
    urls: list[tuple[str, str]]  # (option name, provisioning URL), in the order they are tried
    problems: list[str] = field(default_factory=list)
    next_server: str | None = None  # BOOTP next server, when the lease has one

    def lines(self) -> list[str]:
        """The lease source, one line per option, the provisioning URLs, the problems."""
        out = _wrap(f"dhcp lease: {_printable(self.source, 200)}")
        if not self.options:
            out.append("  no options")
        for code, value in sorted(self.options.items()):
            out += _wrap(f"{dhcp.describe(code)}: {value}", "  ")
        if self.next_server:
            out.append(f"  next server: {self.next_server}")
        for name, url in self.urls:
            out += _wrap(f"provisioning URL from {name}: {_printable(url, 200)}", "  ")
        if not self.urls:
            out.append("  no provisioning URL")
        for problem in self.problems:
            out += _wrap(f"problem: {_printable(problem, 300)}", "  ")
        return out


def dhcp_options(patterns: list[str]) -> DhcpSeen | None:
    """The options of the newest lease file matching the glob `patterns`; None if none.

    Files are found and read as provisioning discovery finds them (each pattern expanded and
    sorted, then :func:`provisioning.dhcp.read_leases` takes the newest readable one).
    """
    paths = [Path(p) for pattern in patterns for p in sorted(glob.glob(pattern))]
    options = dhcp.read_leases(paths)
    if options is None:
        return None
    return DhcpSeen(
        source=options.source,
        options={code: _option_text(code, raw) for code, raw in sorted(options.raw.items())},
        urls=dhcp.provisioning_urls(options),
        problems=list(options.problems),
        next_server=options.next_server)


def _option_text(code: int, payload: bytes) -> str:
    """An option's value for a terminal: text, the servers of option 120, else hex bytes."""
    if code == dhcp.OPT_SIP_SERVERS:
        servers, why = dhcp.decode_sip_servers(payload)
        if why is None:
            return ", ".join(servers)
    if code != dhcp.OPT_VENDOR_SPECIFIC:
        with contextlib.suppress(UnicodeDecodeError):
            text = payload.rstrip(b"\x00").decode("utf-8")
            if text.isprintable():
                return text
    shown = " ".join(":".join(f"{b:02x}" for b in payload[i : i + 8])  # 8 bytes a word
                     for i in range(0, min(len(payload), 48), 8))
    return f"{shown}... ({len(payload)} bytes)" if len(payload) > 48 else shown or "(empty)"


# ----- SIP OPTIONS ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    """What a SIP OPTIONS request to a registrar brought back."""

    host: str
    port: int
    transport: str  # "udp" or "tcp"
    ok: bool = False  # a final answer came: the server is reachable and speaks SIP
    status: int = 0  # its status code (200, 401, 404...)
    reason: str = ""  # its reason phrase
    ms: float | None = None  # round trip, from the first transmission to the answer
    server: str = ""  # its Server header (User-Agent when it has no Server)
    error: str = ""  # why there is no answer, in words
    address: str = ""  # the address `host` resolved to
    sent: int = 0  # transmissions of the request (UDP retransmits it)

    def lines(self) -> list[str]:
        """``registrar 127.0.0.1:5060 udp: answered 200 OK in 3 ms (Server: kamailio)``."""
        where = f"registrar {_host_port(_printable(self.host, 60), self.port)} {self.transport}"
        if self.address and self.address != self.host:
            where += f" ({self.address})"
        if not self.ok:
            return [f"{where}: failed", *_wrap(self.error, "  ")]
        answer = " ".join(filter(None, [str(self.status), self.reason]))
        server = f" (Server: {self.server})" if self.server else ""
        out = _wrap(f"{where}: answered {answer} in {_ms(self.ms)}{server}")
        if not 200 <= self.status < 300:
            out.append("  (a SIP server answered; it need not accept OPTIONS)")
        return out


def sip_options_ping(host: str, port: int, *, transport: str = "udp", timeout: float = 2.0,
                     local_host: str = "") -> PingResult:
    """Send one SIP OPTIONS to `host`:`port` and wait up to `timeout` s for its final answer.

    UDP retransmits the request after 0.5, 1, 2, 4... s (RFC 3261 Timer A) while time is
    left; TCP sends it once on one connection. `local_host` is the address to send from (the
    phone's bind address; "" lets the system choose). Answers are matched by Call-ID and
    CSeq; provisional ones (1xx) are skipped. Never raises: failures come back in `error`.
    """
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    transport = transport.lower()
    result = PingResult(host, port, transport)
    problem = _ping_problem(host, port, transport, local_host)
    if problem:
        return dataclasses.replace(result, error=problem)
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    try:
        family, sockaddr = _resolve(host, port, kind, local_host)
    except _Failed as failed:
        return dataclasses.replace(result, error=str(failed))
    result = dataclasses.replace(result, address=str(sockaddr[0]))
    ping = _udp_ping if transport == "udp" else _tcp_ping
    return ping(result, family, sockaddr, local_host, timeout)


class _Failed(Exception):
    """A check could not go on; the message is in words for the technician."""


def _ping_problem(host: str, port: int, transport: str, local_host: str) -> str | None:
    if transport not in ("udp", "tcp"):
        return f"transport {_printable(transport, 20)!r} is not udp or tcp"
    if not 0 < port < 65536:
        return f"port {port} is not a port number (1-65535)"
    if not _valid_host(host):
        return f"{_printable(host, 60)!r} is not a host name or address"
    if local_host and not _is_address(local_host):
        return f"local address {_printable(local_host, 60)!r} is not an IP address"
    return None


def _valid_host(host: str) -> bool:
    """An IP address, or a DNS name (so it is safe to put into a SIP request line)."""
    return _is_address(host) or bool(_HOSTNAME.fullmatch(host)
                                      and not re.fullmatch(r"[0-9.]+", host))


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int, kind: socket.SocketKind,
             local_host: str) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """(family, socket address) of `host`, of the same family as `local_host` if given."""
    try:
        infos = socket.getaddrinfo(host, port, type=kind)
    except socket.gaierror as exc:
        raise _Failed(_name_error(host, exc)) from exc
    except (UnicodeError, OSError) as exc:
        raise _Failed(f"host name {host} could not be looked up ({exc})") from exc
    if local_host:
        local_family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
        infos = [info for info in infos if info[0] == local_family]
        if not infos:
            raise _Failed(f"{host} has no address of the same kind as {local_host}")
    return infos[0][0], infos[0][4]


def _name_error(host: str, exc: socket.gaierror) -> str:
    if exc.errno in _NAME_NOT_FOUND:
        return f"host name {host} not found"
    if exc.errno == socket.EAI_AGAIN:
        return f"host name {host} could not be looked up (no answer from the DNS servers)"
    return f"host name {host} could not be looked up ({exc.strerror or exc})"


def _udp_ping(result: PingResult, family: socket.AddressFamily, sockaddr: tuple[Any, ...],
              local_host: str, timeout: float) -> PingResult:
    where = f"{_host_port(result.address, result.port)} (udp)"
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            _bind(sock, family, local_host)
            sock.connect(sockaddr)  # so that an ICMP "port unreachable" comes back as an error
            request, call_id = _options_request(result, sock.getsockname())
            return _udp_exchange(result, sock, request, call_id, timeout, where)
        except _Failed as failed:
            return dataclasses.replace(result, error=str(failed))
        except ConnectionRefusedError:
            return dataclasses.replace(
                result, error=f"{where} refused the request (port closed: ICMP unreachable)")
        except OSError as exc:
            return dataclasses.replace(result, error=f"cannot reach {where} ({_strerror(exc)})")


def _udp_exchange(result: PingResult, sock: socket.socket, request: bytes, call_id: str,
                  timeout: float, where: str) -> PingResult:
    """Send, retransmit on Timer A, and wait for the final answer until the deadline."""
    start = time.monotonic()
    deadline, next_send, interval, sent = start + timeout, start, T1, 0
    while (now := time.monotonic()) < deadline:
        if now >= next_send:
            sock.send(request)
            sent += 1
            next_send, interval = next_send + interval, min(interval * 2, T2)
        sock.settimeout(max(0.001, min(next_send, deadline) - now))
        try:
            data = sock.recv(MAX_SIP_MESSAGE)
        except TimeoutError:
            continue
        answer = _final_answer(data, call_id)
        if answer is not None:
            return _answered(dataclasses.replace(result, sent=sent), answer, start)
    return dataclasses.replace(result, sent=sent,
                               error=f"no answer from {where} in {_secs(timeout)}")


def _tcp_ping(result: PingResult, family: socket.AddressFamily, sockaddr: tuple[Any, ...],
              local_host: str, timeout: float) -> PingResult:
    where = f"{_host_port(result.address, result.port)} (tcp)"
    start = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            _bind(sock, family, local_host)
            sock.settimeout(timeout)
            _tcp_connect(sock, sockaddr, where, timeout)
            request, call_id = _options_request(result, sock.getsockname())
            sock.sendall(request)
            answer = _tcp_answer(sock, call_id, start + timeout, where, timeout)
        except _Failed as failed:
            return dataclasses.replace(result, error=str(failed))
        except ConnectionResetError:
            return dataclasses.replace(result, error=f"{where} reset the connection")
        except OSError as exc:
            return dataclasses.replace(result, error=f"cannot reach {where} ({_strerror(exc)})")
    return _answered(dataclasses.replace(result, sent=1), answer, start)


def _tcp_connect(sock: socket.socket, sockaddr: tuple[Any, ...], where: str,
                 timeout: float) -> None:
    try:
        sock.connect(sockaddr)
    except ConnectionRefusedError as exc:
        raise _Failed(f"{where} refused the connection (nothing listens there)") from exc
    except TimeoutError as exc:
        raise _Failed(f"could not connect to {where} in {_secs(timeout)}") from exc


def _tcp_answer(sock: socket.socket, call_id: str, deadline: float, where: str,
                timeout: float) -> SipMessage:
    """Read messages (Content-Length framing) until the final answer with `call_id`."""
    buffer = bytearray()
    while True:
        while (frame := _take_frame(buffer)) is not None:
            answer = _final_answer(frame, call_id)
            if answer is not None:
                return answer
        if len(buffer) > MAX_SIP_MESSAGE:
            raise _Failed(f"{where} sent a message over {MAX_SIP_MESSAGE} bytes")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Failed(f"no answer from {where} in {_secs(timeout)}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            raise _Failed(f"{where} closed the connection without answering")
        buffer += chunk


def _take_frame(buffer: bytearray) -> bytes | None:
    """Cut one whole message off the front of `buffer` (skipping CRLF keep-alives)."""
    while buffer[:2] == b"\r\n":
        del buffer[:2]
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = parse_message(bytes(buffer[: end + 4]))
    length_text = head.header("content-length") if head is not None else ""
    total = end + 4 + (int(length_text) if length_text.isdigit() else 0)
    if len(buffer) < total:
        return None
    frame = bytes(buffer[:total])
    del buffer[:total]
    return frame


def _final_answer(data: bytes, call_id: str) -> SipMessage | None:
    """`data` parsed if it is a final answer to our OPTIONS; None for anything else."""
    message = parse_message(data)
    if (message is None or message.is_request or message.header("call-id") != call_id
            or message.cseq != (1, "OPTIONS")):
        return None
    return message if message.status >= 200 else None


def _answered(result: PingResult, answer: SipMessage, start: float) -> PingResult:
    reason = answer.first_line.split(" ", 2)[2] if answer.first_line.count(" ") >= 2 else ""
    server = answer.header("server") or answer.header("user-agent")
    return dataclasses.replace(
        result, ok=True, status=answer.status, reason=_printable(reason, 60),
        ms=(time.monotonic() - start) * 1000, server=_printable(server, 60))


def _bind(sock: socket.socket, family: socket.AddressFamily, local_host: str) -> None:
    if not local_host and sock.type == socket.SOCK_STREAM:
        return  # connect() picks the source address and port
    anywhere = "::" if family == socket.AF_INET6 else "0.0.0.0"
    try:
        sock.bind((local_host or anywhere, 0))
    except OSError as exc:
        raise _Failed(f"cannot send from {local_host or anywhere} ({_strerror(exc)})") from exc


def _options_request(result: PingResult, local: tuple[Any, ...]) -> tuple[bytes, str]:
    """An OPTIONS request (RFC 3261 11) with a fresh branch, tag and Call-ID; (bytes, Call-ID)."""
    me = _host_port(str(local[0]).partition("%")[0], int(local[1]))
    target = _host_port(result.host, result.port)
    call_id = f"{secrets.token_hex(12)}@luren-console"
    lines = [
        f"OPTIONS sip:{target} SIP/2.0",
        f"Via: SIP/2.0/{result.transport.upper()} {me};rport;branch=z9hG4bK{secrets.token_hex(8)}",
        "Max-Forwards: 70",
        f"From: <sip:console@{_host_port(result.host, None)}>;tag={secrets.token_hex(6)}",
        f"To: <sip:{target}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:console@{me};transport={result.transport}>",
        "Accept: application/sdp",
        f"User-Agent: {USER_AGENT}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"), call_id


# ----- HTTPS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpsResult:
    """What a GET of a provisioning URL brought back, with the server's certificate."""

    url: str
    ok: bool = False  # a 2xx answer over a verified connection
    status: int = 0  # 0 when no HTTP answer came
    reason: str = ""
    ms: float | None = None  # from connecting to the answer's headers (TCP + TLS + request)
    tls_version: str = ""  # "TLSv1.3"; "" for http:// or a failed handshake
    subject_cn: str = ""  # of the certificate the server showed, trusted or not
    issuer_cn: str = ""
    not_after: str = ""  # "2026-01-31 12:00 UTC"
    location: str = ""  # where a redirect points (redirects are not followed)
    body_bytes: int = 0  # body bytes read (at most MAX_BODY) and thrown away
    error: str = ""  # why it failed, in words

    def lines(self) -> list[str]:
        """The URL, the answer, the certificate, and what went wrong."""
        out = _wrap(f"GET {_printable(self.url, 300)}")
        if self.status:
            answer = " ".join(filter(None, [str(self.status), self.reason]))
            tls = f", {self.tls_version}" if self.tls_version else ""
            out += _wrap(f"answered {answer} in {_ms(self.ms)}{tls}", "  ")
        if self.location:
            out += _wrap(f"redirect to {self.location} (not followed)", "  ")
        if self.subject_cn or self.not_after:
            issuer = f", issued by {self.issuer_cn}" if self.issuer_cn else ""
            out += _wrap(f"certificate {self.subject_cn or '(no CN)'}{issuer}, "
                         f"valid until {self.not_after}", "  ")
        if self.error:
            out += _wrap(f"failed: {self.error}", "  ")
        return out


def https_check(url: str, *, ca_file: str = "", timeout: float = 5.0) -> HttpsResult:
    """GET `url`, verifying the server against `ca_file` (or the system trust store).

    At most 64 KiB of the body are read, then thrown away; redirects are not followed.
    `timeout` applies to connecting, the TLS handshake and each read. When the certificate
    is not trusted, a second, unverified handshake reads whose certificate it is. http://
    URLs work too (no TLS). Never raises: failures come back in `error`.
    """
    result = HttpsResult(url)
    try:
        scheme, host, port, path = _split_url(url)
        context = _tls_context(ca_file) if scheme == "https" else None
        where = _host_port(host, port)
        start = time.monotonic()
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(_connect(host, port, where, timeout))
            if context is not None:
                sock = stack.enter_context(
                    _handshake(sock, context, host, port, where, ca_file, timeout))
                der = sock.getpeercert(binary_form=True)
                result = dataclasses.replace(result, tls_version=sock.version() or "",
                                             **(_certificate_fields(der) if der else {}))
            return _get(result, sock, host, port, path, where, timeout, start)
    except _CertificateFailed as failed:
        return dataclasses.replace(result, error=str(failed), **failed.fields)
    except _Failed as failed:
        return dataclasses.replace(result, error=str(failed))


class _CertificateFailed(_Failed):
    """The certificate was refused; `fields` say whose it is, when it could be read."""

    def __init__(self, words: str, fields: Mapping[str, str]) -> None:
        super().__init__(words)
        self.fields = dict(fields)


def _split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of an http(s) URL."""
    shown = _printable(url, 80)
    if not url or any(not 0x21 <= ord(c) < 0x7F for c in url):
        raise _Failed(f"{shown!r} is not a valid address (spaces, control characters or "
                      "characters that must be %-encoded)")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise _Failed(f"{shown!r} is not a valid address") from exc
    if parts.scheme not in ("https", "http"):
        raise _Failed(f"{shown!r} is not an https:// address")
    if not host or not _valid_host(host):
        raise _Failed(f"{shown!r} names no valid server")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def _tls_context(ca_file: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except FileNotFoundError as exc:
        raise _Failed(f"the CA file {ca_file} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise _Failed(f"the CA file {ca_file} cannot be loaded ({_strerror(exc)})") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # as the phone's own fetches
    return context


@contextlib.contextmanager
def _connect(host: str, port: int, where: str, timeout: float) -> Iterator[socket.socket]:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise _Failed(_name_error(host, exc)) from exc
    except ConnectionRefusedError as exc:
        raise _Failed(f"{where} refused the connection (nothing listens there)") from exc
    except TimeoutError as exc:
        raise _Failed(f"could not connect to {where} in {_secs(timeout)}") from exc
    except (OSError, UnicodeError) as exc:
        raise _Failed(f"cannot reach {where} ({_strerror(exc)})") from exc
    with sock:
        yield sock


@contextlib.contextmanager
def _handshake(sock: socket.socket, context: ssl.SSLContext, host: str, port: int, where: str,
               ca_file: str, timeout: float) -> Iterator[ssl.SSLSocket]:
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        fields = _presented_certificate(host, port, timeout)
        raise _CertificateFailed(_verify_words(exc, host, ca_file, fields), fields) from exc
    except TimeoutError as exc:
        raise _Failed(f"no TLS answer from {where} in {_secs(timeout)}") from exc
    except ssl.SSLError as exc:
        raise _Failed(_tls_words(exc)) from exc
    except OSError as exc:
        raise _Failed(f"the TLS handshake with {where} failed ({_strerror(exc)})") from exc
    with tls:
        yield tls


def _verify_words(exc: ssl.SSLCertVerificationError, host: str, ca_file: str,
                  fields: Mapping[str, str]) -> str:
    code = exc.verify_code
    if code == _EXPIRED:
        return f"certificate expired ({fields.get('not_after') or 'date unknown'})"
    if code == _NOT_YET_VALID:
        return "certificate not valid yet (is the phone's clock right?)"
    if code in _WRONG_HOST:
        return f"certificate not issued for {host}"
    if code in _UNTRUSTED:
        store = f"the CA file {ca_file}" if ca_file else "the system trust store"
        return f"certificate not trusted (not issued by a CA in {store})"
    return f"certificate refused ({_printable(exc.verify_message or str(exc), 80)})"


def _tls_words(exc: ssl.SSLError) -> str:
    reason = exc.reason or ""
    if reason in _NOT_TLS:
        return "the server does not speak TLS on this port (plain http?)"
    if "CERTIFICATE_REQUIRED" in reason:
        return "the server requires a device certificate (client certificate)"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "the server closed the connection during the TLS handshake"
    return f"the TLS handshake failed ({reason.lower().replace('_', ' ') or exc})"


def _presented_certificate(host: str, port: int, timeout: float) -> dict[str, str]:
    """The fields of the certificate the server shows, read without verifying it ({} if not)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (socket.create_connection((host, port), timeout=timeout) as sock,
              context.wrap_socket(sock, server_hostname=host) as tls):
            der = tls.getpeercert(binary_form=True)
    except (OSError, UnicodeError):
        return {}
    return _certificate_fields(der) if der else {}


def _certificate_fields(der: bytes) -> dict[str, str]:
    """subject_cn, issuer_cn and not_after of a DER certificate ({} if it cannot be read)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        not_after = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return {}
    return {"subject_cn": _common_name(cert.subject), "issuer_cn": _common_name(cert.issuer),
            "not_after": not_after}


def _common_name(name: x509.Name) -> str:
    names = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else name.rfc4514_string()
    return _printable(value if isinstance(value, str) else value.decode("utf-8", "replace"), 60)


def _get(result: HttpsResult, sock: socket.socket, host: str, port: int, path: str, where: str,
         timeout: float, start: float) -> HttpsResult:
    """Send the GET on `sock`, read the answer's head and at most MAX_BODY of its body."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.sock = sock  # already connected (and TLS-wrapped): http.client only speaks HTTP here
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
        response = conn.getresponse()
    except TimeoutError as exc:
        raise _Failed(f"no HTTP answer from {where} in {_secs(timeout)}") from exc
    except http.client.RemoteDisconnected as exc:
        raise _Failed(f"{where} closed the connection without answering") from exc
    except http.client.HTTPException as exc:
        raise _Failed(f"the answer from {where} is not HTTP ({type(exc).__name__})") from exc
    except ssl.SSLError as exc:
        raise _Failed(_tls_words(exc)) from exc
    except OSError as exc:
        raise _Failed(f"the connection to {where} failed ({_strerror(exc)})") from exc
    result = dataclasses.replace(
        result, status=response.status, reason=_printable(response.reason, 60),
        ms=(time.monotonic() - start) * 1000,
        location=_printable(response.getheader("Location", ""), 200))
    try:
        body = response.read(MAX_BODY)
    except (OSError, http.client.HTTPException) as exc:
        return dataclasses.replace(result, error=f"the body was cut short ({_strerror(exc)})")
    finally:
        conn.close()
    return dataclasses.replace(result, ok=200 <= response.status < 300, body_bytes=len(body))


# ----- text helpers ---------------------------------------------------------------------------


def _host_port(host: str, port: int | None) -> str:
    """`host:port`, an IPv6 address in brackets; just the host when `port` is None."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _printable(text: str, limit: int) -> str:
    """`text` without control characters (a terminal must not obey a server), cut at `limit`."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _secs(seconds: float) -> str:
    return f"{seconds:g} s"


def _ms(ms: float | None) -> str:
    if ms is None:
        return "? ms"
    return "<1 ms" if ms < 1 else f"{ms:.0f} ms"


def _strerror(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.lower().replace("_", " ")
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _wrap(text: str, indent: str = "") -> list[str]:
    """`text` as lines of at most WIDTH columns (a long URL stays whole), continued indented."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]
