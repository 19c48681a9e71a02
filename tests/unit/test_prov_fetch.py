"""Tests for provisioning.fetch against real TLS servers on 127.0.0.1 (server/https.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from provisioning.fetch import (
    USER_AGENT,
    Fetcher,
    FetchError,
    FetchResult,
    FetchSettings,
)
from provisioning.server.https import (
    CertAuthority,
    Handler,
    HttpsServer,
    cert_sha256,
    make_ca,
    respond,
)
from tools.pbx.ports import free_port

BODY = b'[sip]\nregistrar = "pbx.example.se"\n'
PATH = "/cfg/common.toml"


@dataclass(frozen=True)
class Pki:
    ca: CertAuthority
    other: CertAuthority  # a CA the phone does not trust
    server: tuple[Path, Path]
    phone: tuple[Path, Path]  # device certificate from `ca`
    rogue: tuple[Path, Path]  # device certificate from `other`


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, other = make_ca(d), make_ca(d, name="other")
    return Pki(ca, other, ca.issue(d, "server"), ca.issue(d, "phone-0001", server=False),
               other.issue(d, "phone-rogue", server=False))


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "cfg").mkdir(parents=True)
    (root / "cfg" / "common.toml").write_bytes(BODY)
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def fetcher(pki: Pki, cache: Path) -> Iterator[Callable[..., Fetcher]]:
    """fetcher(**settings) -> a Fetcher trusting the test CA, closed after the test."""
    made: list[Fetcher] = []

    def make(**overrides: object) -> Fetcher:
        fields: dict[str, object] = {"ca_file": pki.ca.cert_path, "timeout_s": 5.0}
        fields.update(overrides)
        made.append(Fetcher(FetchSettings(**fields), cache))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for f in made:
        f.close()


def server(www: Path | None, pki: Pki, **kwargs: object) -> HttpsServer:
    return HttpsServer(www, *pki.server, **kwargs)  # type: ignore[arg-type]


def routes(table: Mapping[str, Handler]) -> Handler:
    """A harness handler dispatching on the exact path."""
    return lambda request: table[request.path](request) if request.path in table else False


def fails(f: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        f.fetch(url)
    assert info.value.url == url
    return info.value


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    if not directory.exists():
        return {}
    return {p.name: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns)
            for p in directory.iterdir()}


def cache_names(url: str) -> set[str]:
    key = hashlib.sha256(url.encode()).hexdigest()
    return {key, f"{key}.json"}


# -- misbehaving servers ------------------------------------------------------------------------


def truncated(request: BaseHTTPRequestHandler) -> bool:
    request.send_response(200)
    request.send_header("Content-Length", "900")
    request.end_headers()
    request.wfile.write(b"x" * 412)
    request.close_connection = True
    return True


def huge_announced(request: BaseHTTPRequestHandler) -> bool:
    request.send_response(200)
    request.send_header("Content-Length", "5000000")
    request.end_headers()
    request.wfile.write(b"x" * 1000)
    request.close_connection = True
    return True


def huge_chunked(request: BaseHTTPRequestHandler) -> bool:
    request.send_response(200)
    request.send_header("Transfer-Encoding", "chunked")
    request.end_headers()
    for _ in range(20):
        request.wfile.write(b"2000\r\n" + b"y" * 0x2000 + b"\r\n")
    request.wfile.write(b"0\r\n\r\n")
    return True


def slow_drip(request: BaseHTTPRequestHandler) -> bool:
    request.send_response(200)
    request.send_header("Content-Length", "400")
    request.end_headers()
    for _ in range(400):  # 8 s for the whole body, if nobody hangs up
        request.wfile.write(b"z")
        time.sleep(0.02)
    return True


def redirect(location: str | Callable[[], str]) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> bool:
        respond(request, 302, headers={
            "Location": location() if callable(location) else location})
        return True
    return handle


# -- trust --------------------------------------------------------------------------------------


def test_fetch_with_pinned_ca(pki: Pki, www: Path, fetcher: Callable[..., Fetcher]) -> None:
    with server(www, pki) as srv:
        result = fetcher().fetch(srv.url(PATH))
    sha = hashlib.sha256(BODY).hexdigest()
    assert result == FetchResult(srv.url(PATH), True, BODY, sha, f'"{sha}"')
    [(path, headers)] = srv.requests
    assert path == PATH
    assert headers["user-agent"] == USER_AGENT == "Luren-provisioning/1"
    assert "if-none-match" not in headers


def test_unknown_ca_refused(pki: Pki, www: Path, fetcher: Callable[..., Fetcher],
                            cache: Path) -> None:
    with server(www, pki) as srv:
        error = fails(fetcher(ca_file=pki.other.cert_path), srv.url(PATH))
        assert str(error) == f"{srv.url(PATH)}: the server's certificate is not trusted (pinned CA)"
        error = fails(fetcher(ca_file=None), srv.url(PATH))
        assert error.reason == "the server's certificate is not trusted (system trust store)"
    assert srv.requests == []
    assert snapshot(cache) == {}


def test_certificate_for_another_address_refused(pki: Pki, www: Path, tmp_path: Path,
                                                 fetcher: Callable[..., Fetcher]) -> None:
    cert, key = pki.ca.issue(tmp_path, "elsewhere", san_ip="127.0.0.2")
    with HttpsServer(www, cert, key) as srv:
        error = fails(fetcher(), srv.url(PATH))
    assert error.reason == "the server's certificate is not issued for 127.0.0.1"


def test_pin_match_and_mismatch(pki: Pki, www: Path, fetcher: Callable[..., Fetcher],
                                cache: Path) -> None:
    pin = cert_sha256(pki.server[0])
    wrong = hashlib.sha256(b"another certificate").hexdigest()
    with server(www, pki) as srv:
        loud = ":".join(pin[i:i + 2] for i in range(0, 64, 2)).upper()  # as openssl prints it
        assert fetcher(pin_sha256=frozenset({wrong, loud})).fetch(srv.url(PATH)).body == BODY
        before = snapshot(cache)
        error = fails(fetcher(pin_sha256=frozenset({wrong})), srv.url(PATH))
    assert error.reason == ("the server's certificate does not match the pinned SHA-256 "
                            f"fingerprint (the server has {pin})")
    assert snapshot(cache) == before


# -- device certificate (mutual TLS) ------------------------------------------------------------


def test_client_certificate_given(pki: Pki, www: Path, fetcher: Callable[..., Fetcher]) -> None:
    cert, key = pki.phone
    with server(www, pki, client_ca=pki.ca.cert_path) as srv:
        assert fetcher(client_cert=cert, client_key=key).fetch(srv.url(PATH)).body == BODY
    assert [path for path, _ in srv.requests] == [PATH]


def test_client_certificate_missing_or_rejected(pki: Pki, www: Path,
                                                fetcher: Callable[..., Fetcher]) -> None:
    cert, key = pki.rogue
    with server(www, pki, client_ca=pki.ca.cert_path) as srv:
        missing = fails(fetcher(), srv.url(PATH))
        rejected = fails(fetcher(client_cert=cert, client_key=key), srv.url(PATH))
    assert missing.reason == ("the server requires a device certificate (client certificate), "
                              "and none is configured")
    assert rejected.reason.startswith("the server rejected the device certificate")
    assert srv.requests == []


NGINX_NO_CERT_PAGE = (b"<html>\r\n<head><title>400 No required SSL certificate was sent</title>"
                      b"</head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
                      b"<center>No required SSL certificate was sent</center>\r\n"
                      b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
NGINX_BAD_CERT_PAGE = NGINX_NO_CERT_PAGE.replace(b"No required SSL certificate was sent",
                                                 b"The SSL certificate error")


def answer_400(page: bytes) -> Handler:
    """A handler answering as nginx with `ssl_verify_client on` does: 400 and a page."""
    def handle(request: BaseHTTPRequestHandler) -> bool:
        respond(request, 400, page, {"Content-Type": "text/html"})
        return True
    return handle


def test_400_for_a_device_certificate_is_said_in_words(pki: Pki,
                                                       fetcher: Callable[..., Fetcher]) -> None:
    """The wording of nginx's 400s, without nginx (tests/e2e/test_provisioning_nginx.py has it
    from nginx itself)."""
    handler = routes({"/none": answer_400(NGINX_NO_CERT_PAGE),
                      "/bad": answer_400(NGINX_BAD_CERT_PAGE),
                      "/other": answer_400(b"<html>bad request</html>")})
    cert, key = pki.phone
    with server(None, pki, handler=handler) as srv:
        without = fails(fetcher(), srv.url("/none"))
        with_cert = fails(fetcher(client_cert=cert, client_key=key), srv.url("/none"))
        rejected = fails(fetcher(client_cert=cert, client_key=key), srv.url("/bad"))
        other = fails(fetcher(), srv.url("/other"))
    assert without.reason == ("the server requires a device certificate (client certificate), "
                              "and none is configured (answered 400 Bad Request: No required "
                              "SSL certificate was sent)")
    assert with_cert.reason.startswith("the server requires a device certificate (client "
                                       "certificate) and says none was sent, although one is "
                                       "configured")
    assert rejected.reason == ("the server rejected the device certificate (answered 400 Bad "
                               "Request: The SSL certificate error)")
    assert other.reason == "answered 400 Bad Request"


def test_unreadable_trust_files_are_fetch_errors(pki: Pki, tmp_path: Path,
                                                 fetcher: Callable[..., Fetcher]) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    url = "https://127.0.0.1:9/cfg/common.toml"
    assert fails(fetcher(ca_file=tmp_path / "gone.pem"), url).reason == \
        f"the CA file {tmp_path / 'gone.pem'} does not exist"
    assert fails(fetcher(ca_file=not_pem), url).reason.startswith(
        f"the CA file {not_pem} could not be loaded")
    assert fails(fetcher(client_cert=not_pem), url).reason.startswith(
        "the device certificate or its key could not be loaded")


# -- passwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_digest_right_password(pki: Pki, www: Path, fetcher: Callable[..., Fetcher],
                               tls: bool) -> None:
    with server(www, pki, digest=("phone-0001", "s3cret"), tls=tls) as srv:
        f = fetcher(username="phone-0001", password="s3cret", allow_http=not tls)
        assert f.fetch(srv.url(PATH)).body == BODY
        assert f.fetch(srv.url(PATH)).changed is False
    challenge, answer = srv.requests[0][1], srv.requests[1][1]
    assert "authorization" not in challenge
    assert answer["authorization"].startswith("Digest ")
    assert 'username="phone-0001"' in answer["authorization"]
    assert all("s3cret" not in h.get("authorization", "") for _, h in srv.requests)
    assert srv.statuses[:2] == [(PATH, 401), (PATH, 200)]
    assert srv.statuses[-1] == (PATH, 304)


def test_digest_wrong_or_no_password(pki: Pki, www: Path, fetcher: Callable[..., Fetcher],
                                     cache: Path) -> None:
    with server(www, pki, digest=("phone-0001", "s3cret")) as srv:
        wrong = fails(fetcher(username="phone-0001", password="guess"), srv.url(PATH))
        none = fails(fetcher(), srv.url(PATH))
    assert wrong.reason == "answered 401 Unauthorized: the user name or password was not accepted"
    assert none.reason == ("answered 401 Unauthorized: the server wants a user name and "
                           "password, and none is configured")
    assert snapshot(cache) == {}


def basic_only(request: BaseHTTPRequestHandler) -> bool:
    token = base64.b64encode(b"phone-0001:s3cret").decode()
    if request.headers.get("Authorization") == f"Basic {token}":
        respond(request, 200, BODY)
    else:
        respond(request, 401, headers={"WWW-Authenticate": 'Basic realm="prov"'})
    return True


def test_basic_only_over_https(pki: Pki, fetcher: Callable[..., Fetcher]) -> None:
    creds = {"username": "phone-0001", "password": "s3cret", "allow_http": True}
    with server(None, pki, handler=basic_only) as srv:
        assert fetcher(**creds).fetch(srv.url("/basic")).body == BODY
    with server(None, pki, handler=basic_only, tls=False) as plain:
        error = fails(fetcher(**creds), plain.url("/basic"))
    assert "basic authentication over plain http" in error.reason
    assert all("authorization" not in headers for _, headers in plain.requests)


# -- plain http ---------------------------------------------------------------------------------


def test_plain_http_refused_unless_allowed(pki: Pki, www: Path,
                                           fetcher: Callable[..., Fetcher]) -> None:
    with server(www, pki, tls=False) as srv:
        url = srv.url(PATH)
        assert url.startswith("http://")
        error = fails(fetcher(), url)
        assert error.reason == "plain http is not allowed; use https:// (or set allow_http)"
        assert srv.requests == []
        assert fetcher(allow_http=True).fetch(url).body == BODY
        pinned = fails(fetcher(allow_http=True, pin_sha256=frozenset({"a" * 64})), url)
    assert pinned.reason == "certificate pinning is configured, but the address is plain http"


# -- answers ------------------------------------------------------------------------------------


def test_404(pki: Pki, www: Path, fetcher: Callable[..., Fetcher], cache: Path) -> None:
    with server(www, pki) as srv:
        error = fails(fetcher(), srv.url("/cfg/missing.toml"))
    assert str(error) == f"{srv.url('/cfg/missing.toml')}: answered 404 Not Found"
    assert snapshot(cache) == {}


def test_etag_304(pki: Pki, www: Path, fetcher: Callable[..., Fetcher]) -> None:
    with server(www, pki) as srv:
        f = fetcher()
        first = f.fetch(srv.url(PATH))
        second = f.fetch(srv.url(PATH))
        (www / "cfg" / "common.toml").write_bytes(BODY + b"# edited\n")
        third = f.fetch(srv.url(PATH))
    assert first.changed and not second.changed and third.changed
    assert second.body == BODY and second.etag == first.etag and second.sha256 == first.sha256
    assert srv.requests[1][1]["if-none-match"] == first.etag
    assert [status for _, status in srv.statuses] == [200, 304, 200]
    assert third.body == BODY + b"# edited\n"


def test_same_body_new_etag_is_unchanged(pki: Pki, fetcher: Callable[..., Fetcher]) -> None:
    served = iter(range(1, 10))

    def versioned(request: BaseHTTPRequestHandler) -> bool:
        respond(request, 200, BODY, {"ETag": f'"v{next(served)}"'})  # never answers 304
        return True

    with server(None, pki, handler=versioned) as srv:
        f = fetcher()
        results = [f.fetch(srv.url("/v")) for _ in range(3)]
    assert [r.changed for r in results] == [True, False, False]
    assert [r.etag for r in results] == ['"v1"', '"v2"', '"v3"']
    assert {r.sha256 for r in results} == {hashlib.sha256(BODY).hexdigest()}
    assert [h.get("if-none-match") for _, h in srv.requests] == [None, '"v1"', '"v2"']


# -- misbehaving servers ------------------------------------------------------------------------


def test_body_over_max_bytes(pki: Pki, fetcher: Callable[..., Fetcher], cache: Path) -> None:
    handler = routes({"/announced": huge_announced, "/chunked": huge_chunked})
    with server(None, pki, handler=handler) as srv:
        announced = fails(fetcher(), srv.url("/announced"))
        chunked = fails(fetcher(max_bytes=50_000), srv.url("/chunked"))
    assert announced.reason == "the file is too large: more than 1048576 bytes (5000000 announced)"
    assert chunked.reason == "the file is too large: more than 50000 bytes"
    assert snapshot(cache) == {}


def test_slow_drip_beyond_timeout(pki: Pki, fetcher: Callable[..., Fetcher]) -> None:
    with server(None, pki, handler=routes({"/slow": slow_drip})) as srv:
        started = time.monotonic()
        error = fails(fetcher(timeout_s=1.0), srv.url("/slow"))
        elapsed = time.monotonic() - started
    assert error.reason.startswith("no complete answer within 1 s (")
    assert error.reason.endswith(" of 400 bytes arrived)")
    assert 1.0 <= elapsed < 3.0


def test_no_answer_within_timeout(pki: Pki, fetcher: Callable[..., Fetcher]) -> None:
    release = threading.Event()

    def silent(request: BaseHTTPRequestHandler) -> bool:
        release.wait(10)  # says nothing until the client has given up
        respond(request, 200, BODY)
        return True

    with server(None, pki, handler=routes({"/silent": silent})) as srv:
        try:
            started = time.monotonic()
            error = fails(fetcher(timeout_s=0.5), srv.url("/silent"))
            elapsed = time.monotonic() - started
        finally:
            release.set()
    assert error.reason == "no answer within 0.5 s"
    assert 0.5 <= elapsed < 2.5


def test_truncated_body(pki: Pki, fetcher: Callable[..., Fetcher], cache: Path) -> None:
    with server(None, pki, handler=routes({"/short": truncated})) as srv:
        error = fails(fetcher(), srv.url("/short"))
    assert error.reason == ("the connection closed before the whole file arrived "
                            "(412 of 900 bytes)")
    assert snapshot(cache) == {}


def test_connection_refused(fetcher: Callable[..., Fetcher]) -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        error = fails(fetcher(), f"https://127.0.0.1:{port}{PATH}")
    assert error.reason == f"the connection was refused (nothing answers on port {port})"


# -- redirects ----------------------------------------------------------------------------------


def test_redirects(pki: Pki, www: Path, fetcher: Callable[..., Fetcher]) -> None:
    with server(www, pki, tls=False) as plain:
        handler = routes({"/old": redirect(PATH), "/loop": redirect("/loop"),
                          "/to-http": redirect(plain.url(PATH))})
        with server(www, pki, handler=handler) as srv:
            f = fetcher(allow_http=True)
            moved = f.fetch(srv.url("/old"))
            to_http = fails(f, srv.url("/to-http"))
            loop = fails(f, srv.url("/loop"))
    assert moved.url == srv.url("/old") and moved.body == BODY
    assert to_http.reason == f"redirected from https to plain http ({plain.url(PATH)}); refused"
    assert plain.requests == []
    assert loop.reason == "more than 3 redirects"
    assert [p for p, _ in srv.requests].count("/loop") == 4


# -- the cache ----------------------------------------------------------------------------------


def test_cache_untouched_after_failure(pki: Pki, www: Path, fetcher: Callable[..., Fetcher],
                                       cache: Path) -> None:
    mode = {"now": "file"}
    misbehave: dict[str, Handler] = {
        "truncated": truncated, "huge": huge_announced, "slow": slow_drip,
        "redirect": redirect("http://127.0.0.1:9/"),
        "gone": lambda request: respond(request, 404) or True,
    }

    def handler(request: BaseHTTPRequestHandler) -> bool:
        return mode["now"] != "file" and misbehave[mode["now"]](request)

    with server(www, pki, handler=handler) as srv:
        f = fetcher(timeout_s=0.5)
        good = f.fetch(srv.url(PATH))
        (www / "cfg" / "common.toml").write_bytes(b"a new body that never arrives\n")
        before = snapshot(cache)
        assert set(before) == cache_names(srv.url(PATH))
        for failure in misbehave:
            mode["now"] = failure
            fails(f, srv.url(PATH))
            assert snapshot(cache) == before, failure
        mode["now"] = "file"
        assert f.fetch(srv.url(PATH)).changed
        fails(f, srv.url("/cfg/never.toml"))
    assert good.changed
    assert set(snapshot(cache)) == cache_names(srv.url(PATH))


def test_cache_written_atomically(pki: Pki, www: Path, fetcher: Callable[..., Fetcher],
                                  cache: Path) -> None:
    config = www / "cfg" / "common.toml"
    with server(www, pki) as srv:
        f = fetcher()
        url = srv.url(PATH)
        first = f.fetch(url)
        key = hashlib.sha256(url.encode()).hexdigest()
        inode = (cache / key).stat().st_ino
        config.write_bytes(b"second = true\n")
        second = f.fetch(url)
    assert {p.name for p in cache.iterdir()} == {key, f"{key}.json"}  # no temp files left
    assert (cache / key).read_bytes() == b"second = true\n"
    assert (cache / key).stat().st_ino != inode  # replaced, not rewritten in place
    meta = json.loads((cache / f"{key}.json").read_text())
    assert meta == {"url": url, "sha256": second.sha256, "etag": second.etag, "size": 14}
    assert first.sha256 != second.sha256


def test_damaged_cache_is_ignored(pki: Pki, www: Path, fetcher: Callable[..., Fetcher],
                                  cache: Path) -> None:
    with server(www, pki) as srv:
        f = fetcher()
        url = srv.url(PATH)
        f.fetch(url)
        (cache / hashlib.sha256(url.encode()).hexdigest()).write_bytes(b"half a fi")
        again = f.fetch(url)
    assert again.changed and again.body == BODY
    assert "if-none-match" not in srv.requests[-1][1]
    assert (cache / hashlib.sha256(url.encode()).hexdigest()).read_bytes() == BODY


# -- addresses, errors, settings ----------------------------------------------------------------


def test_bad_addresses(fetcher: Callable[..., Fetcher]) -> None:
    f = fetcher()
    assert fails(f, "ftp://127.0.0.1/cfg").reason == "only https:// addresses can be fetched"
    with pytest.raises(FetchError) as info:
        f.fetch("https://phone:s3cret@127.0.0.1:9/cfg")
    assert "s3cret" not in str(info.value)
    assert info.value.reason == ("the address contains a user name or password; "
                                 "put them in the settings instead")


def test_fetch_error_text_and_pickling() -> None:
    error = FetchError("https://127.0.0.1:8443/cfg/common.toml", "answered 404 Not Found")
    assert str(error) == "https://127.0.0.1:8443/cfg/common.toml: answered 404 Not Found"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.url, copy.reason, str(copy)) == (error.url, error.reason, str(error))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        FetchSettings(pin_sha256=frozenset({"abc"}))
    with pytest.raises(ValueError, match="timeout_s"):
        FetchSettings(timeout_s=0)
    with pytest.raises(ValueError, match="client_key"):
        FetchSettings(client_key=Path("/k.pem"))


# -- the test server itself (server/https.py) ----------------------------------------------------


def nodelay(request: BaseHTTPRequestHandler) -> bool:
    """Answers whether the connection's socket has TCP_NODELAY set ("1") or not ("0")."""
    on = request.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    respond(request, 200, b"1" if on else b"0")
    return True


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_server_answers_without_nagle(pki: Pki, fetcher: Callable[..., Fetcher],
                                      tls: bool) -> None:
    """Headers and body are separate writes: with Nagle's algorithm on, the body waits for the
    client's delayed ACK (~40 ms per request on a keep-alive connection)."""
    with server(None, pki, handler=routes({"/nodelay": nodelay}), tls=tls) as srv:
        assert fetcher(allow_http=True).fetch(srv.url("/nodelay")).body == b"1"


def test_server_listens_on_the_host_and_port_given(pki: Pki, www: Path,
                                                   fetcher: Callable[..., Fetcher]) -> None:
    port = free_port()
    with server(www, pki, host="127.0.0.1", port=port) as srv:
        assert (srv.port, srv.url(PATH)) == (port, f"https://127.0.0.1:{port}{PATH}")
        assert fetcher().fetch(srv.url(PATH)).body == BODY


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_server_on_ipv6_loopback(pki: Pki, www: Path, tmp_path: Path,
                                 fetcher: Callable[..., Fetcher]) -> None:
    cert, key = pki.ca.issue(tmp_path, "ipv6", san_ip="::1")
    with HttpsServer(www, cert, key, host="::1") as srv:
        assert srv.url(PATH) == f"https://[::1]:{srv.port}{PATH}"
        assert fetcher().fetch(srv.url(PATH)).body == BODY


def test_server_ends_tls_with_close_notify(pki: Pki, www: Path) -> None:
    """A strict client (ragged EOFs not forgiven) reads the answer to the end without an
    UNEXPECTED_EOF: the server sends close_notify before it closes the connection."""
    context = ssl.create_default_context(cafile=str(pki.ca.cert_path))
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with server(www, pki) as srv, \
            socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw_sock, \
            context.wrap_socket(raw_sock, server_hostname="127.0.0.1",
                                suppress_ragged_eofs=False) as tls:
        tls.sendall(request.encode())
        answer = b""
        while chunk := tls.recv(65536):  # SSLEOFError here without close_notify
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(BODY)


def broken(request: BaseHTTPRequestHandler) -> bool:
    raise RuntimeError("handler bug")


def test_server_without_record_keeps_nothing_and_calls_back(
        pki: Pki, www: Path, fetcher: Callable[..., Fetcher]) -> None:
    answered: list[tuple[str, int]] = []
    errors: list[str] = []
    srv = server(www, pki, client_ca=pki.ca.cert_path, handler=routes({"/broken": broken}),
                 record=False, on_request=lambda path, status: answered.append((path, status)),
                 on_error=errors.append)
    cert, key = pki.phone
    with srv:
        phone = fetcher(client_cert=cert, client_key=key)
        assert phone.fetch(srv.url(PATH)).body == BODY
        fails(phone, srv.url("/missing.toml"))
        fails(phone, srv.url("/broken"))
        fails(fetcher(), srv.url(PATH))  # no device certificate: refused at the handshake
    # stop() has joined every connection thread: all callbacks have run
    assert answered == [(PATH, 200), ("/missing.toml", 404)]
    assert len(errors) == 2
    assert any("RuntimeError: handler bug" in error for error in errors)
    assert any(error.startswith("TLS handshake failed: ") for error in errors)
    assert (srv.requests, srv.statuses, srv.errors) == ([], [], [])


def test_server_with_record_keeps_the_lists_and_calls_back(
        pki: Pki, www: Path, fetcher: Callable[..., Fetcher]) -> None:
    answered: list[tuple[str, int]] = []
    with server(www, pki, on_request=lambda path, status: answered.append(
            (path, status))) as srv:
        fetcher().fetch(srv.url(PATH))
    assert srv.statuses == answered == [(PATH, 200)]
    assert [path for path, _ in srv.requests] == [PATH]
