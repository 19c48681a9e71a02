"""A small certificate authority and a threaded HTTPS (or plain HTTP) file server.

The reference server's own way to serve a rendered tree where no nginx runs: the simulated
office, a lab, the tests (a fleet puts the tree behind nginx or a CDN). Certificates are valid
from 5 minutes ago for a day: enough for a session, never for production.

    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue(tmp_path / "pki", "server")            # IP SAN 127.0.0.1
    with HttpsServer(www_root, cert, key, digest=("phone", "secret")) as server:
        httpx.get(server.url("/cfg/common.toml"), verify=str(ca.cert_path))
        server.requests   # [(path, {lower-case header: value}), ...]

The server serves files under `root` with a strong ETag (the body's SHA-256) and answers 304
to a matching `If-None-Match`. `client_ca` makes it demand a client certificate issued by that
CA; `digest` makes it demand RFC 7616 digest authentication (MD5, qop=auth, checked here by
hand). `handler(request_handler) -> bool` sees every request first (after authentication) and
may take it over by answering itself and returning True: huge, slow, truncated or redirecting
answers; `respond()` is a helper for simple ones. A handler may set
`request_handler.close_connection = True` to have the connection closed after it returns.

It listens on `host` (default 127.0.0.1; an IPv6 address or a host name work too) and `port`
(default 0: one the system picks), bound before `start()` returns. Answers go out without
waiting (TCP_NODELAY: headers and body are separate writes, which Nagle's algorithm and the
client's delayed ACK would otherwise hold back ~40 ms), and a TLS connection ends with a
close_notify alert, so a strict client does not take the close for a truncation. `stop()` (also
on leaving the `with`) stops accepting, cuts open connections, and joins every thread.

`requests`, `statuses` and `errors` keep a record of everything for tests; a long-running
service gives `record=False` (they then stay empty) and, to log instead, `on_request(path,
status)` (every answer sent) and `on_error(text)` (a failed TLS handshake, "TLS handshake
failed: ...", or a handler's traceback). The callbacks run in the connection's thread, also with
`record=True`, and must return quickly. (`digest` keeps every nonce it issues whatever `record`
says: it is for tests and labs, not for a long-running service.)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import socket
import socketserver
import ssl
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import parse_http_list, parse_keqv_list

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Handler = Callable[[BaseHTTPRequestHandler], bool]
ErrorCallback = Callable[[str], None]
RequestCallback = Callable[[str, int], None]

HOST = "127.0.0.1"
REALM = "luren"
HANDSHAKE_TIMEOUT = 5.0
IDLE_TIMEOUT = 10.0  # a connection nobody uses is closed after this long
LINGER_TIMEOUT = 2.0  # after a failed handshake: wait this long for the client to close


# -- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertAuthority:
    """A CA key and self-signed certificate (PEM files) that issues leaf certificates."""

    cert_path: Path
    key_path: Path
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def issue(self, directory: Path, name: str, *, server: bool = True,
              san_ip: str = "127.0.0.1") -> tuple[Path, Path]:
        """Write `<name>.pem` and `<name>.key` to `directory`: a server certificate (serverAuth,
        IP SAN `san_ip`) or a client one (clientAuth, CN=name); valid from 5 min ago for a day."""
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(_name(name), self.certificate.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.private_key.public_key()), critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
        cert = builder.sign(self.private_key, hashes.SHA256())
        return _write_pair(directory, name, cert, key)


def make_ca(directory: Path, *, name: str = "ca") -> CertAuthority:
    """A new CA (EC P-256, CN "Luren CA <name>") in `directory`/<name>.pem and .key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"Luren CA {name}")
    cert = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = _write_pair(directory, name, cert, key)
    return CertAuthority(cert_path, key_path, cert, key)


def cert_sha256(cert_path: Path) -> str:
    """Hex SHA-256 of the DER of the (first) certificate in a PEM file: a pin."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name,
             key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False)


def _write_pair(directory: Path, name: str, cert: x509.Certificate,
                key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


# -- the server ---------------------------------------------------------------------------------


def respond(request: BaseHTTPRequestHandler, status: int, body: bytes = b"",
            headers: Mapping[str, str] | None = None) -> None:
    """Send a whole answer with Content-Length (for a handler)."""
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if body and request.command != "HEAD":
        request.wfile.write(body)


class HttpsServer:
    """A threaded HTTP/1.1 server over TLS (or plain, `tls=False`) on `host`:`port`
    (127.0.0.1 and a port the system picks unless given)."""

    def __init__(self, root: Path | None, cert: Path | None, key: Path | None, *,
                 client_ca: Path | None = None, digest: tuple[str, str] | None = None,
                 handler: Handler | None = None, tls: bool = True, host: str = HOST,
                 port: int = 0, record: bool = True, on_error: ErrorCallback | None = None,
                 on_request: RequestCallback | None = None) -> None:
        if tls and (cert is None or key is None):
            raise ValueError("a TLS server needs cert and key")
        self.root = root
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.digest = digest
        self.handler = handler
        self.tls = tls
        self.host, self.record = host, record
        self.on_error, self.on_request = on_error, on_request
        self.requests: list[tuple[str, dict[str, str]]] = []  # kept only with record=True
        self.statuses: list[tuple[str, int]] = []  # (path, status) of every answer sent
        self.errors: list[str] = []  # failed handshakes and handler exceptions
        self._wanted_port = port
        self._server: _Server | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._nonces: dict[str, int] = {}  # issued nonce -> highest nonce count seen
        self._opaque = secrets.token_hex(8)

    @property
    def port(self) -> int:
        """The port the server listens (or, once stopped, listened) on."""
        if self._port is None:
            raise RuntimeError("the server was never started")
        return self._port

    def url(self, path: str = "/") -> str:
        """`https://<host>:<port><path>` (http:// when tls=False; an IPv6 host in brackets)."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> HttpsServer:
        """Bind, listen and serve in a thread."""
        if self._server is not None:
            return self
        if self.tls:
            assert self.cert is not None and self.key is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, self.key)
            if self.client_ca is not None:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cafile=str(self.client_ca))
            self._context = context
        self._server = _Server(self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"https-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open connections, close, and join all threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        with self._lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        server.server_close()  # joins the connection threads
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- connections (in the server's threads) ---------------------------------------------------

    def _serve_connection(self, sock: socket.socket, client_address: tuple[str, int],
                          server: _Server) -> None:
        with self._lock:
            self._open.add(sock)
        try:
            with contextlib.suppress(OSError):  # answers go out at once (see the module doc)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                with self._lock:
                    self._open.discard(sock)
                    sock = self._context.wrap_socket(sock, server_side=True,
                                                     do_handshake_on_connect=False)
                    self._open.add(sock)
                sock.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    sock.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    self._error(f"TLS handshake failed: {exc}")
                    _linger_close(sock)
                    return
                sock.settimeout(None)
            _RequestHandler(sock, client_address, server)
            _close_notify(sock)
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def _error(self, text: str) -> None:
        """A failed handshake or a handler's traceback: recorded and/or handed to on_error."""
        if self.record:
            self.errors.append(text)
        if self.on_error is not None:
            self.on_error(text)

    def _answered(self, path: str, status: int) -> None:
        """An answer was sent: recorded and/or handed to on_request."""
        if self.record:
            self.statuses.append((path, status))
        if self.on_request is not None:
            self.on_request(path, status)

    def _handle(self, request: _RequestHandler) -> None:
        path = request.path
        if self.record:
            self.requests.append((path, {k.lower(): v for k, v in request.headers.items()}))
        if self.digest is not None and not self._authorised(request):
            return
        if self.handler is not None and self.handler(request):
            return
        self._serve_file(request)

    def _serve_file(self, request: _RequestHandler) -> None:
        file = self._file_for(request.path)
        if file is None:
            respond(request, 404, b"not found\n", {"Content-Type": "text/plain"})
            return
        body = file.read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        wanted = [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]
        if etag in wanted or "*" in wanted:
            respond(request, 304, headers={"ETag": etag})
            return
        respond(request, 200, body, {"ETag": etag, "Content-Type": "application/octet-stream"})

    def _file_for(self, path: str) -> Path | None:
        if self.root is None:
            return None
        root = self.root.resolve()
        file = (root / unquote(urlsplit(path).path).lstrip("/")).resolve()
        return file if file.is_relative_to(root) and file.is_file() else None

    # -- digest authentication (RFC 7616, MD5, qop=auth) -----------------------------------------

    def _authorised(self, request: _RequestHandler) -> bool:
        """True if the request carries a valid digest answer; otherwise send a 401 challenge."""
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "digest" and self._digest_ok(request, parse_keqv_list(
                [item.strip() for item in parse_http_list(rest) if "=" in item])):
            return True
        nonce = secrets.token_hex(16)
        with self._lock:
            self._nonces[nonce] = 0
        challenge = (f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}", '
                     f'opaque="{self._opaque}"')
        respond(request, 401, b"authentication required\n",
                {"WWW-Authenticate": challenge, "Content-Type": "text/plain"})
        return False

    def _digest_ok(self, request: _RequestHandler, fields: dict[str, str]) -> bool:
        assert self.digest is not None
        user, password = self.digest
        nonce, uri = fields.get("nonce", ""), fields.get("uri", "")
        nc, cnonce = fields.get("nc", ""), fields.get("cnonce", "")
        if (fields.get("username") != user or fields.get("realm") != REALM
                or fields.get("qop") != "auth" or fields.get("opaque") != self._opaque
                or fields.get("algorithm", "MD5").upper() != "MD5"
                or uri != request.path or not cnonce):
            return False
        try:
            count = int(nc, 16)
        except ValueError:
            return False
        with self._lock:
            if nonce not in self._nonces or count <= self._nonces[nonce]:
                return False  # unknown nonce or a replayed nonce count
            self._nonces[nonce] = count
        ha1 = _md5(f"{user}:{REALM}:{password}")
        ha2 = _md5(f"{request.command}:{uri}")
        expected = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        return hmac.compare_digest(expected, fields.get("response", ""))


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads

    def __init__(self, owner: HttpsServer) -> None:
        self.owner = owner
        self.address_family = _family(owner.host)
        super().__init__((owner.host, owner._wanted_port), _RequestHandler)

    def finish_request(self, request: socket.socket,  # type: ignore[override]
                       client_address: tuple[str, int]) -> None:
        self.owner._serve_connection(request, client_address, self)

    def server_bind(self) -> None:
        """Bind, without HTTPServer's reverse DNS look-up of the address (slow where DNS is)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.owner.host, self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        self.owner._error(traceback.format_exc())


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: _Server

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def do_HEAD(self) -> None:
        self.server.owner._handle(self)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A request too garbled to parse (TLS on the plain port ...) has no path.
        self.server.owner._answered(getattr(self, "path", "(unreadable request)"), int(code))

    def log_message(self, format: str, *args: object) -> None:
        pass


def _family(host: str) -> socket.AddressFamily:
    """The address family to listen with on `host` (an IPv6 address, or what a name resolves
    to first; IPv4 when it cannot be resolved, so that bind() says why)."""
    if ":" in host:
        return socket.AF_INET6
    try:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]
    except (OSError, IndexError):
        return socket.AF_INET


def _close_notify(sock: socket.socket) -> None:
    """End a TLS connection with a close_notify alert, without waiting for the client's.

    Non-blocking: the alert goes out if the send buffer has room; waiting for the client's own
    close_notify (which many never send) would hold the thread. Plain sockets are left alone.
    """
    if not isinstance(sock, ssl.SSLSocket):
        return
    with contextlib.suppress(OSError, ValueError):  # SSLWantReadError: no reply awaited
        sock.setblocking(False)
        sock.unwrap()


def _linger_close(sock: socket.socket) -> None:
    """Half-close and drain, so the client reads the TLS alert instead of a reset."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)
        sock.settimeout(LINGER_TIMEOUT)
        while socket.socket.recv(sock, 4096):
            pass


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
