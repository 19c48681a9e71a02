"""Tests for firmware.console.netinfo: real sockets and a real TLS server, on 127.0.0.1 only."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import select
import shutil
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware.console import netinfo
from firmware.console.netinfo import (
    DhcpSeen,
    HttpsResult,
    Interface,
    PingResult,
    addresses,
    default_gateway,
    dhcp_options,
    dns_servers,
    https_check,
    parse_ip_json,
    sip_options_ping,
)
from firmware.sip.dialog_watch import SipMessage, parse_message
from provisioning import dhcp
from provisioning.server.https import CertAuthority, HttpsServer, make_ca
from tools.pbx.ports import free_port

LOOPBACK = "127.0.0.1"
BODY = b'[sip]\nregistrar = "pbx.example.se"\n'

Reply = Callable[[SipMessage], list[bytes]]


def assert_terminal_lines(lines: list[str]) -> None:
    """Plain text for a dumb terminal: no escapes, nothing wider than 78 columns but a line
    that is one long word (a URL or a path, which is not cut)."""
    assert lines
    for line in lines:
        assert line.isprintable(), line
        assert len(line) <= netinfo.WIDTH or len(line.split()) == 1, line


def one_line(lines: list[str]) -> str:
    """Wrapped lines joined back into one."""
    return " ".join(line.strip() for line in lines)


# ----- a SIP responder on loopback -------------------------------------------------------------


def response(request: SipMessage, status: int = 200, reason: str = "OK", *,
             server: str = "test-responder", call_id: str | None = None,
             body: bytes = b"") -> bytes:
    """A response to `request` (its Via, From, To, Call-ID and CSeq copied)."""
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {via}" for via in request.all("via")]
    lines += [f"From: {request.header('from')}", f"To: {request.header('to')};tag=srv1",
              f"Call-ID: {call_id or request.header('call-id')}",
              f"CSeq: {request.header('cseq')}"]
    lines += [f"Server: {server}"] if server else []
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answer_200(request: SipMessage) -> list[bytes]:
    return [response(request)]


class SipResponder:
    """A SIP server thread on 127.0.0.1 (UDP or TCP) answering each request with `reply`.

    UDP: `drop` first requests are recorded but not answered. TCP: one connection, closed
    after the replies. Every request received is kept, as bytes, in `received`.
    """

    def __init__(self, transport: str, reply: Reply = answer_200, *, drop: int = 0) -> None:
        self.transport, self.reply, self.drop = transport, reply, drop
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind((LOOPBACK, 0))
        if transport == "tcp":
            self.sock.listen(1)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="sip-responder", daemon=True)

    def __enter__(self) -> SipResponder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._wake_w.send(b"x")
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()
        for sock in (self.sock, self._wake_r, self._wake_w):
            sock.close()

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self.sock, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            if self.transport == "udp":
                self._one_datagram()
            else:
                self._one_connection()

    def _one_datagram(self) -> None:
        data, peer = self.sock.recvfrom(65535)
        self.received.append(data)
        request = parse_message(data)
        if request is not None and len(self.received) > self.drop:
            for answer in self.reply(request):
                self.sock.sendto(answer, peer)

    def _one_connection(self) -> None:
        conn, _peer = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.received.append(data)
            request = parse_message(data)
            for answer in self.reply(request) if request is not None else []:
                conn.sendall(answer)


@pytest.fixture
def silent_udp() -> Iterator[socket.socket]:
    """A bound UDP socket that never answers (what it got stays queued)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock


@pytest.fixture
def silent_tcp() -> Iterator[int]:
    """A listening TCP port that never accepts: connecting works, nothing is ever answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(4)
        yield sock.getsockname()[1]


# ----- SIP OPTIONS over UDP --------------------------------------------------------------------


def test_udp_ping_answered_200() -> None:
    with SipResponder("udp") as responder:
        result = sip_options_ping(LOOPBACK, responder.port)
    assert (result.ok, result.status, result.reason) == (True, 200, "OK")
    assert result.server == "test-responder"
    assert result.error == "" and result.sent == 1
    assert result.ms is not None and 0 <= result.ms < 2000
    assert re.fullmatch(rf"registrar 127\.0\.0\.1:{responder.port} udp: answered 200 OK in "
                        r"(<1|\d+) ms \(Server: test-responder\)", one_line(result.lines()))
    assert_terminal_lines(result.lines())


def test_udp_request_is_a_proper_options() -> None:
    with SipResponder("udp") as responder:
        sip_options_ping(LOOPBACK, responder.port)
        sip_options_ping(LOOPBACK, responder.port, local_host=LOOPBACK)
    first, second = (parse_message(data) for data in responder.received)
    assert first is not None and second is not None
    assert first.first_line == f"OPTIONS sip:127.0.0.1:{responder.port} SIP/2.0"
    via = first.header("via")
    assert re.fullmatch(r"SIP/2\.0/UDP 127\.0\.0\.1:\d+;rport;branch=z9hG4bK\w+", via)
    assert first.header("max-forwards") == "70"
    assert first.header("cseq") == "1 OPTIONS"
    assert first.header("accept") == "application/sdp"
    assert first.header("user-agent") == "Luren console"
    assert first.header("content-length") == "0"
    assert first.header("contact").startswith("<sip:console@127.0.0.1:")
    assert ";tag=" in first.header("from") and ";tag=" not in first.header("to")
    for name in ("call-id", "via", "from"):  # fresh Call-ID, branch and tag every time
        assert first.header(name) != second.header(name)


def test_udp_retransmits_until_answered() -> None:
    with SipResponder("udp", drop=1) as responder:
        result = sip_options_ping(LOOPBACK, responder.port, timeout=3.0)
    assert result.ok and result.status == 200
    assert result.sent == 2
    assert responder.received[0] == responder.received[1]  # the same request, resent
    assert result.ms is not None and result.ms >= 400  # answered after the 0.5 s retransmit


def test_udp_skips_provisional_and_foreign_answers() -> None:
    def reply(request: SipMessage) -> list[bytes]:
        return [response(request, 100, "Trying"),
                response(request, 500, "Not ours", call_id="someone-else"),
                b"\r\n\r\n",
                response(request, 404, "Not Found", server="")]

    with SipResponder("udp", reply) as responder:
        result = sip_options_ping(LOOPBACK, responder.port)
    assert (result.ok, result.status, result.reason, result.server) == (
        True, 404, "Not Found", "")
    lines = result.lines()
    assert re.search(r": answered 404 Not Found in (<1|\d+) ms$", one_line(lines[:-1]))
    assert lines[-1] == "  (a SIP server answered; it need not accept OPTIONS)"
    assert_terminal_lines(lines)


def test_udp_server_header_cannot_drive_the_terminal() -> None:
    def reply(request: SipMessage) -> list[bytes]:
        return [response(request, 401, "Unauthorized", server="evil\x1b[2J\x07box")]

    with SipResponder("udp", reply) as responder:
        result = sip_options_ping(LOOPBACK, responder.port)
    assert result.ok and result.status == 401
    assert "\x1b" not in result.server and result.server.startswith("evil")
    assert_terminal_lines(result.lines())


def test_udp_no_answer_times_out(silent_udp: socket.socket) -> None:
    port = silent_udp.getsockname()[1]
    result = sip_options_ping(LOOPBACK, port, timeout=1.2)
    assert not result.ok and result.status == 0
    assert result.error == f"no answer from 127.0.0.1:{port} (udp) in 1.2 s"
    silent_udp.setblocking(False)
    got = []
    while True:
        try:
            got.append(silent_udp.recv(65535))
        except BlockingIOError:
            break
    assert result.sent >= 2 and len(got) == result.sent  # sent at 0 and 0.5 s
    assert len(set(got)) == 1
    assert result.lines() == [f"registrar 127.0.0.1:{port} udp: failed", f"  {result.error}"]


def test_udp_closed_port_is_refused() -> None:
    port = free_port()
    result = sip_options_ping(LOOPBACK, port, timeout=2.0)
    assert not result.ok
    assert result.error == f"127.0.0.1:{port} (udp) refused the request (port closed: ICMP " \
                           "unreachable)"


def test_unresolvable_name() -> None:
    result = sip_options_ping("pbx.invalid", 5060)
    assert not result.ok and result.address == ""
    # "not found", or "could not be looked up" where no DNS server answers at all
    assert result.error.startswith("host name pbx.invalid ")
    assert result.lines()[0] == "registrar pbx.invalid:5060 udp: failed"


@pytest.mark.parametrize(("host", "port", "transport", "words"), [
    ("pbx example.se", 5060, "udp", "is not a host name or address"),
    ("pbx.example.se\r\nVia: x", 5060, "udp", "is not a host name or address"),
    ("127.0.0.1", 0, "udp", "port 0 is not a port number"),
    ("127.0.0.1", 70000, "tcp", "port 70000 is not a port number"),
    ("127.0.0.1", 5060, "sctp", "transport 'sctp' is not udp or tcp"),
])
def test_bad_input_is_refused_in_words(host: str, port: int, transport: str,
                                       words: str) -> None:
    result = sip_options_ping(host, port, transport=transport)
    assert not result.ok and words in result.error
    assert_terminal_lines(result.lines())


def test_bad_local_address() -> None:
    result = sip_options_ping(LOOPBACK, 5060, local_host="not-an-address")
    assert result.error == "local address 'not-an-address' is not an IP address"


# ----- SIP OPTIONS over TCP --------------------------------------------------------------------


def test_tcp_ping_with_content_length_framing() -> None:
    def reply(request: SipMessage) -> list[bytes]:
        final = response(request, 200, "OK", body=b"v=0\r\n")
        stray = (b"SIP/2.0 200 OK\r\ni: someone-else\r\nCSeq: 1 OPTIONS\r\nl: 9\r\n\r\n"
                 b"\r\n\r\nabcde")  # a body that looks like an end of headers
        return [b"\r\n\r\n", stray, final[:30], final[30:]]

    with SipResponder("tcp", reply) as responder:
        result = sip_options_ping(LOOPBACK, responder.port, transport="tcp")
    assert (result.ok, result.status, result.server, result.sent) == (
        True, 200, "test-responder", 1)
    request = parse_message(responder.received[0])
    assert request is not None and request.header("via").startswith("SIP/2.0/TCP 127.0.0.1:")
    assert "transport=tcp" in request.header("contact")
    assert one_line(result.lines()).startswith(
        f"registrar 127.0.0.1:{responder.port} tcp: answered 200 OK in ")


def test_tcp_closed_without_answer() -> None:
    with SipResponder("tcp", lambda request: []) as responder:
        result = sip_options_ping(LOOPBACK, responder.port, transport="tcp")
    assert not result.ok
    assert result.error == f"127.0.0.1:{responder.port} (tcp) closed the connection without " \
                           "answering"


def test_tcp_no_answer_times_out(silent_tcp: int) -> None:
    result = sip_options_ping(LOOPBACK, silent_tcp, transport="tcp", timeout=0.5)
    assert result.error == f"no answer from 127.0.0.1:{silent_tcp} (tcp) in 0.5 s"


def test_tcp_closed_port_is_refused() -> None:
    port = free_port()
    result = sip_options_ping(LOOPBACK, port, transport="TCP")
    assert result.transport == "tcp"
    assert result.error == f"127.0.0.1:{port} (tcp) refused the connection (nothing listens there)"


# ----- HTTPS -----------------------------------------------------------------------------------


def _expired_pair(ca: CertAuthority, directory: Path) -> tuple[Path, Path]:
    """A server certificate from `ca` for 127.0.0.1 that expired yesterday."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3))
        .not_valid_after(now - timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "expired.pem", directory / "expired.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Pki:
    """A lab CA with a server certificate, a CA the phone does not trust, an expired pair."""

    def __init__(self, directory: Path) -> None:
        self.ca, self.other = make_ca(directory), make_ca(directory, name="other")
        self.server = self.ca.issue(directory, "server")
        self.expired = _expired_pair(self.ca, directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "cfg").mkdir(parents=True)
    (root / "cfg" / "common.toml").write_bytes(BODY)
    return root


def test_https_ok_with_certificate_details(pki: Pki, www: Path) -> None:
    with HttpsServer(www, *pki.server) as server:
        result = https_check(server.url("/cfg/common.toml"), ca_file=str(pki.ca.cert_path))
    assert (result.ok, result.status, result.reason, result.error) == (True, 200, "OK", "")
    assert result.tls_version in ("TLSv1.2", "TLSv1.3")
    assert (result.subject_cn, result.issuer_cn) == ("server", "Luren CA ca")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", result.not_after)
    assert result.body_bytes == len(BODY)
    assert result.ms is not None and result.ms >= 0
    path, headers = server.requests[0]
    assert path == "/cfg/common.toml" and headers["user-agent"] == "Luren console"
    lines = result.lines()
    assert lines[0] == f"GET {server.url('/cfg/common.toml')}"
    assert re.fullmatch(r"  answered 200 OK in (<1|\d+) ms, TLSv1\.[23]", lines[1])
    assert lines[2] == f"  certificate server, issued by Luren CA ca, valid until " \
                       f"{result.not_after}"
    assert_terminal_lines(lines)


def test_https_reads_at_most_64_kib(pki: Pki, www: Path) -> None:
    (www / "big.toml").write_bytes(b"#" * (200 * 1024))
    with HttpsServer(www, *pki.server) as server:
        result = https_check(server.url("/big.toml"), ca_file=str(pki.ca.cert_path))
    assert result.ok and result.body_bytes == netinfo.MAX_BODY == 64 * 1024


def test_https_missing_file_is_answered_but_not_ok(pki: Pki, www: Path) -> None:
    with HttpsServer(www, *pki.server) as server:
        result = https_check(server.url("/cfg/missing.toml"), ca_file=str(pki.ca.cert_path))
    assert (result.ok, result.status, result.error) == (False, 404, "")
    assert result.subject_cn == "server"
    assert any(line.startswith("  answered 404 Not Found") for line in result.lines())


def test_https_wrong_ca_says_not_trusted_and_whose(pki: Pki, www: Path) -> None:
    with HttpsServer(www, *pki.server) as server:
        result = https_check(server.url("/cfg/common.toml"), ca_file=str(pki.other.cert_path))
    assert not result.ok and result.status == 0
    assert result.error == ("certificate not trusted (not issued by a CA in the CA file "
                            f"{pki.other.cert_path})")
    assert (result.subject_cn, result.issuer_cn) == ("server", "Luren CA ca")
    assert any(line.startswith("  failed: certificate not trusted") for line in result.lines())
    assert all(not path.endswith("common.toml") for path, _ in server.requests)


def test_https_expired_certificate(pki: Pki, www: Path) -> None:
    with HttpsServer(www, *pki.expired) as server:
        result = https_check(server.url("/cfg/common.toml"), ca_file=str(pki.ca.cert_path))
    assert not result.ok and result.subject_cn == "expired"
    assert result.error == f"certificate expired ({result.not_after})"
    expired = datetime.strptime(result.not_after, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    assert expired < datetime.now(UTC)


def test_https_url_on_a_plain_http_port() -> None:
    """The server answers the TLS ClientHello with an HTTP error, as a plain server does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)

        def answer_in_http() -> None:
            conn, _peer = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")

        thread = threading.Thread(target=answer_in_http, daemon=True)
        thread.start()
        result = https_check(f"https://127.0.0.1:{listener.getsockname()[1]}/common.toml")
        thread.join(timeout=10)
    assert result.error == "the server does not speak TLS on this port (plain http?)"


def test_plain_http_url(www: Path) -> None:
    with HttpsServer(www, None, None, tls=False) as server:
        result = https_check(server.url("/cfg/common.toml"))
    assert result.ok and result.status == 200 and result.body_bytes == len(BODY)
    assert (result.tls_version, result.subject_cn) == ("", "")


def test_https_refused_port() -> None:
    port = free_port()
    result = https_check(f"https://127.0.0.1:{port}/common.toml")
    assert not result.ok
    assert result.error == f"127.0.0.1:{port} refused the connection (nothing listens there)"
    assert result.lines() == [f"GET https://127.0.0.1:{port}/common.toml",
                              f"  failed: {result.error}"]


def test_https_handshake_timeout(silent_tcp: int) -> None:
    result = https_check(f"https://127.0.0.1:{silent_tcp}/common.toml", timeout=0.5)
    assert result.error == f"no TLS answer from 127.0.0.1:{silent_tcp} in 0.5 s"


def test_https_unresolvable_name() -> None:
    result = https_check("https://prov.invalid/luren/common.toml", timeout=2.0)
    assert not result.ok and result.error.startswith("host name prov.invalid ")


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://127.0.0.1/common.toml", "is not an https:// address"),
    ("https:///common.toml", "names no valid server"),
    ("https://127.0.0.1:99999/", "is not a valid address"),
    ("https://127.0.0.1/a b", "spaces, control characters"),
    ("https://127.0.0.1/rälsbuss.toml", "must be %-encoded"),
    ("", "is not a valid address"),
])
def test_https_bad_urls(url: str, words: str) -> None:
    result = https_check(url)
    assert not result.ok and words in result.error


def test_https_missing_ca_file(tmp_path: Path) -> None:
    result = https_check("https://127.0.0.1/common.toml", ca_file=str(tmp_path / "none.pem"))
    assert result.error == f"the CA file {tmp_path / 'none.pem'} does not exist"


# ----- interfaces ------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed")
def test_addresses_include_loopback() -> None:
    found = {interface.name: interface for interface in addresses()}
    lo = found["lo"]
    assert lo.loopback and lo.up and lo.addresses_known
    assert "127.0.0.1/8" in lo.addresses
    assert lo.lines()[0].startswith("lo (loopback): up")
    assert "  127.0.0.1/8" in lo.lines()


@pytest.mark.parametrize("program", ["/nonexistent/ip", "false", "echo"])
def test_addresses_fall_back_to_sys(program: str) -> None:
    """Missing, failing (exit 1) or printing something else (not JSON): names from /sys."""
    found = {interface.name: interface for interface in addresses(ip=program)}
    lo = found["lo"]
    assert lo.loopback and not lo.addresses_known and lo.addresses == []
    assert lo.mac == "00:00:00:00:00:00"
    assert lo.lines()[1] == "  addresses unknown (the ip program is missing or failed)"


def test_parse_ip_json() -> None:
    text = json.dumps([
        {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"],
         "link_type": "loopback", "address": "00:00:00:00:00:00",
         "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8},
                       {"family": "inet6", "local": "::1", "prefixlen": 128}]},
        {"ifindex": 2, "ifname": "eth0", "flags": ["BROADCAST", "MULTICAST", "UP", "NO-CARRIER"],
         "link_type": "ether", "address": "02:00:5e:10:00:01",
         "addr_info": [{"family": "inet", "local": "192.0.2.7", "prefixlen": 24},
                       {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]},
        {"ifindex": 3, "ifname": "wg0", "flags": ["POINTOPOINT", "UP", "LOWER_UP"]},
        {"not": "an interface"},
    ])
    lo, eth0, wg0 = parse_ip_json(text) or []
    assert lo == Interface("lo", True, "00:00:00:00:00:00", ["127.0.0.1/8", "::1/128"],
                           loopback=True)
    assert eth0 == Interface("eth0", False, "02:00:5e:10:00:01", ["192.0.2.7/24", "fe80::1/64"])
    assert wg0 == Interface("wg0", True, "", [])
    assert eth0.lines() == ["eth0: down, MAC 02:00:5e:10:00:01", "  192.0.2.7/24",
                            "  fe80::1/64"]
    assert wg0.lines() == ["wg0: up", "  no address"]
    assert parse_ip_json("not json") is None
    assert parse_ip_json('{"ifname": "lo"}') is None


# ----- DNS servers and default gateway ----------------------------------------------------------


def test_dns_servers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# Generated\n"
                    "search example.se\n"
                    "nameserver 192.0.2.53\n"
                    "  nameserver   2001:db8::53   # inline comment\n"
                    ";nameserver 192.0.2.99\n"
                    "#nameserver 192.0.2.98\n"
                    "nameserver 192.0.2.53\n"
                    "nameserver fe80::1%eth0\n"
                    "nameserver not-an-address\n"
                    "options edns0 trust-ad\n")
    assert dns_servers(conf) == ["192.0.2.53", "2001:db8::53", "fe80::1%eth0"]
    assert dns_servers(tmp_path / "missing") == []


def _route_hex(address: str) -> str:
    """An address as /proc/net/route prints it (network bytes read as a host number)."""
    return f"{struct.unpack('=I', socket.inet_aton(address))[0]:08X}"


def test_default_gateway(tmp_path: Path) -> None:
    header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
    rows = [
        ("eth0", "0.0.0.0", "192.0.2.1", "0003", "600", "0.0.0.0"),  # default, metric 600
        ("wlan0", "0.0.0.0", "198.51.100.1", "0003", "100", "0.0.0.0"),  # default, metric 100
        ("eth1", "0.0.0.0", "203.0.113.1", "0002", "0", "0.0.0.0"),  # not up
        ("eth0", "192.0.2.0", "0.0.0.0", "0001", "0", "255.255.255.0"),  # on-link
    ]
    lines = [header] + [
        f"{iface}\t{_route_hex(dest)}\t{_route_hex(gw)}\t{flags}\t0\t0\t{metric}\t"
        f"{_route_hex(mask)}\t0\t0\t0" for iface, dest, gw, flags, metric, mask in rows]
    route = tmp_path / "route"
    route.write_text("\n".join(lines) + "\n")
    assert default_gateway(route) == "198.51.100.1"
    route.write_text(header + "\n" + "\n".join(lines[3:]) + "\ngarbage line\n")
    assert default_gateway(route) is None
    assert default_gateway(tmp_path / "missing") is None


# ----- DHCP ------------------------------------------------------------------------------------


def _vendor_43(url: str) -> str:
    data = url.encode()
    return (bytes([dhcp.VENDOR_SUBOPT_URL, len(data)]) + data).hex()


def test_dhcp_options_from_hook_file(tmp_path: Path) -> None:
    sip = dhcp.encode_sip_servers(["pbx.example.se"])
    assert sip is not None
    hook = {"160": "https://prov.example.se/luren/", "66": "tftp.example.se",
            "60": "luren", "43": _vendor_43("https://vendor.example.se/"), "120": sip.hex(),
            "next-server": "192.0.2.9"}
    lease = tmp_path / "leases" / "eth0.json"
    lease.parent.mkdir()
    lease.write_text(json.dumps(hook))
    seen = dhcp_options([str(tmp_path / "none" / "*"), str(tmp_path / "leases" / "*.json")])
    assert isinstance(seen, DhcpSeen)
    assert seen.source == f"hook:{lease}"
    assert seen.options[160] == "https://prov.example.se/luren/"
    assert seen.options[66] == "tftp.example.se"
    assert seen.options[60] == "luren"
    assert seen.options[120] == "pbx.example.se"
    # hex, 8 bytes a word: sub-option 1, 26 bytes, "https://vendor.example.se/"
    assert seen.options[43].startswith("01:1a:68:74:74:70:73:3a 2f:2f:76:65:")
    assert seen.urls == [("option 160", "https://prov.example.se/luren/"),
                         ("option 66", "https://tftp.example.se/"),
                         ("option 43", "https://vendor.example.se/")]
    assert seen.problems == [] and seen.next_server == "192.0.2.9"
    lines = seen.lines()
    assert "  option 160 (provisioning URL): https://prov.example.se/luren/" in lines
    assert "  provisioning URL from option 66: https://tftp.example.se/" in lines
    assert "  next server: 192.0.2.9" in lines
    assert_terminal_lines(lines)


def test_dhcp_options_newest_file_and_problems(tmp_path: Path) -> None:
    old, new = tmp_path / "a.json", tmp_path / "b.json"
    old.write_text(json.dumps({"160": "https://old.example.se/"}))
    new.write_text(json.dumps({"114": "not a url at all", "43": "zz", "252": "x\x01y"}))
    os.utime(old, (1_000_000_000, 1_000_000_000))
    seen = dhcp_options([str(tmp_path / "*.json")])
    assert seen is not None and seen.source == f"hook:{new}"
    assert seen.urls == []
    assert seen.options[252] == "78:01:79"  # not printable text: shown as hex
    assert seen.problems and any("option 43" in p for p in seen.problems)
    lines = seen.lines()
    assert "  no provisioning URL" in lines
    assert any(line.startswith("  problem: ") for line in lines)
    assert_terminal_lines(lines)


def test_dhcp_options_without_lease(tmp_path: Path) -> None:
    assert dhcp_options([str(tmp_path / "*.leases")]) is None
    assert dhcp_options([]) is None


# ----- rendering -------------------------------------------------------------------------------


def test_lines_wrap_long_errors() -> None:
    long = PingResult("pbx.example.se", 5060, "udp", error="word " * 40)
    https = HttpsResult("https://prov.example.se/common.toml", error="reason " * 30)
    for result in (long, https):
        lines = result.lines()
        assert len(lines) > 2
        assert_terminal_lines(lines)
