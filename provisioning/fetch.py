"""The phone fetching its provisioning files over HTTPS, with pinned trust and a local cache.

    fetcher = Fetcher(FetchSettings(ca_file=Path("/etc/luren/provisioning-ca.pem")), cache_dir)
    try:
        result = fetcher.fetch("https://prov.example.se/cfg/common.toml")
    except FetchError as exc:
        show(str(exc))  # "https://…: the server's certificate is not trusted (pinned CA)"
    finally:
        fetcher.close()

Synchronous (the phone calls it in a worker thread); one `Fetcher` may be shared between threads,
its fetches then run one at a time. Each URL's last good body is cached in `cache_dir` (file
name = SHA-256 of the URL, plus `<name>.json` with its ETag and SHA-256); the cached ETag goes
out as `If-None-Match`, and a 304 or an identical body gives `changed=False`. Cache files are
replaced atomically, and only by a fetch that succeeded.

Every failure is a `FetchError` whose text names the URL and says what went wrong in words a
technician understands; a partial or oversized body is never returned.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

USER_AGENT = "Luren-provisioning/1"
MAX_REDIRECTS = 3

# OpenSSL verify codes (X509_V_ERR_*) that get their own wording
_NOT_YET_VALID = 9
_EXPIRED = 10
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})
_WRONG_HOST = frozenset({62, 64})  # host name, IP address mismatch
# TLS alerts from a server that does not like the device certificate
_CERT_ALERTS = frozenset({
    "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA", "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV1_ALERT_DECRYPT_ERROR",
})
# nginx with `ssl_verify_client on` completes the handshake and says so in a 400 page instead
_NGINX_NO_CERT = "No required SSL certificate was sent"
_NGINX_BAD_CERT = "The SSL certificate error"
_PEEK_BYTES = 4096  # of a 400 page, read to find nginx's words
_NO_DEVICE_CERT = ("the server requires a device certificate (client certificate), and none is "
                   "configured")
_DEVICE_CERT_REJECTED = "the server rejected the device certificate"


class FetchError(Exception):
    """A file could not be fetched; `str()` is "<url>: <reason>" in a technician's words."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url, self.reason))


@dataclass(frozen=True)
class FetchResult:
    """One fetched file: `changed` is False after a 304 or when the body equals the cached one."""

    url: str
    changed: bool
    body: bytes
    sha256: str
    etag: str | None


@dataclass(frozen=True)
class FetchSettings:
    """How to reach the provisioning server; see the field comments."""

    ca_file: Path | None = None  # trust only this CA (pinning); None = the system's trust store
    pin_sha256: frozenset[str] = frozenset()  # hex SHA-256 of the server certificate's DER
    client_cert: Path | None = None  # PEM device certificate for mutual TLS
    client_key: Path | None = None  # its key (None: the key is in client_cert)
    username: str = ""  # digest credentials (basic only over https)
    password: str = ""
    timeout_s: float = 10.0  # connect + each read, and a deadline for the whole body
    max_bytes: int = 1_048_576
    allow_http: bool = False  # plain http:// refused unless set

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, not {self.timeout_s}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {self.max_bytes}")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key is set without client_cert")
        for pin in self.pin_sha256:
            _normalise_pin(pin)


class Fetcher:
    """Fetches provisioning files with `settings`, caching them in `cache_dir`."""

    def __init__(self, settings: FetchSettings, cache_dir: Path) -> None:
        self.settings = settings
        self._cache = _Cache(cache_dir)
        self._pins = frozenset(_normalise_pin(pin) for pin in settings.pin_sha256)
        self._client: httpx.Client | None = None
        self._auth: dict[tuple[str, str, int | None], _PhoneAuth] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, url: str) -> FetchResult:
        """Fetch `url` (GET); raises FetchError, never anything else, on any failure."""
        with self._lock:
            try:
                return self._fetch(url)
            except _Refused as exc:
                raise FetchError(_redact(url), exc.reason) from exc
            except httpx.HTTPError as exc:
                raise FetchError(_redact(url), self._transport_reason(exc)) from exc
            except OSError as exc:
                raise FetchError(_redact(url), f"a local error ({exc})") from exc
            except Exception as exc:
                raise FetchError(_redact(url),
                                 f"an unexpected error ({type(exc).__name__}: {exc})") from exc

    def close(self) -> None:
        """Close the connections; a later fetch opens new ones."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- one fetch ------------------------------------------------------------------------------

    def _fetch(self, url: str) -> FetchResult:
        first = self._check_url(url)
        client = self._get_client()
        cached = self._cache.load(url)
        headers = {"If-None-Match": cached.etag} if cached is not None and cached.etag else {}
        request = client.build_request("GET", first, headers=headers)
        origin = _origin(first)
        redirects = 0
        while True:
            own = _origin(request.url) == origin
            auth = self._auth_for(origin) if own else None
            response = client.send(request, auth=auth, follow_redirects=False, stream=True)
            try:
                target = response.next_request
                if target is None:
                    return self._finish(url, response, cached, authenticated=auth is not None)
            finally:
                response.close()
            if redirects == MAX_REDIRECTS:
                raise _Refused(f"more than {MAX_REDIRECTS} redirects")
            self._check_redirect(request.url, target.url)
            redirects += 1
            request = target

    def _finish(self, url: str, response: httpx.Response, cached: _Entry | None, *,
                authenticated: bool) -> FetchResult:
        status = response.status_code
        etag = response.headers.get("etag")
        if status == 304:
            if cached is None:
                raise _Refused("answered 304 Not Modified, but there is no cached copy")
            etag = etag or cached.etag
            if etag != cached.etag:
                self._cache.store(url, _Entry(cached.body, cached.sha256, etag), body=False)
            return FetchResult(url, False, cached.body, cached.sha256, etag)
        if status == 401:
            raise _Refused(self._unauthorized(response, authenticated))
        if status == 400:
            raise _Refused(self._bad_request(response))
        if status != 200:
            raise _Refused(f"answered {status} {response.reason_phrase}".rstrip())
        body = self._read_body(response)
        sha = hashlib.sha256(body).hexdigest()
        if cached is not None and cached.sha256 == sha:
            if etag != cached.etag:
                self._cache.store(url, _Entry(cached.body, sha, etag), body=False)
            return FetchResult(url, False, cached.body, sha, etag)
        self._cache.store(url, _Entry(body, sha, etag), body=True)
        return FetchResult(url, True, body, sha, etag)

    def _read_body(self, response: httpx.Response) -> bytes:
        limit, timeout = self.settings.max_bytes, self.settings.timeout_s
        announced = _content_length(response)
        if announced is not None and announced > limit:
            raise _Refused(f"the file is too large: more than {limit} bytes "
                           f"({announced} announced)")
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        total = 0

        def progress() -> str:
            got = response.num_bytes_downloaded
            return f"{got} of {announced} bytes" if announced is not None else f"{got} bytes"

        try:
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > limit:
                    raise _Refused(f"the file is too large: more than {limit} bytes")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise _Refused(f"no complete answer within {_secs(timeout)} "
                                   f"({progress()} arrived)")
        except httpx.TimeoutException as exc:
            raise _Refused(f"no complete answer within {_secs(timeout)} "
                           f"({progress()} arrived)") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise _Refused("the connection closed before the whole file arrived "
                           f"({progress()})") from exc
        except httpx.DecodingError as exc:
            raise _Refused(f"the file's compression is damaged ({exc})") from exc
        if announced is not None and response.num_bytes_downloaded < announced:
            raise _Refused(f"the connection closed before the whole file arrived ({progress()})")
        return b"".join(chunks)

    def _bad_request(self, response: httpx.Response) -> str:
        """A 400, in words when it is nginx refusing the device certificate (or its lack)."""
        said = f"answered 400 {response.reason_phrase}".rstrip()
        page = _peek(response, _PEEK_BYTES)
        if _NGINX_NO_CERT in page:
            if self.settings.client_cert is None:
                return f"{_NO_DEVICE_CERT} ({said}: {_NGINX_NO_CERT})"
            return ("the server requires a device certificate (client certificate) and says "
                    f"none was sent, although one is configured ({said}: {_NGINX_NO_CERT})")
        if _NGINX_BAD_CERT in page:
            return f"{_DEVICE_CERT_REJECTED} ({said}: {_NGINX_BAD_CERT})"
        return said

    def _unauthorized(self, response: httpx.Response, authenticated: bool) -> str:
        said = "answered 401 Unauthorized"
        schemes = _auth_schemes(response)
        if not authenticated and self.settings.username:
            return (f"{said}: the password is only sent to the configured server, "
                    f"not to {_origin_text(response.url)}")
        if not self.settings.username:
            return f"{said}: the server wants a user name and password, and none is configured"
        if "digest" in schemes or ("basic" in schemes and response.url.scheme == "https"):
            return f"{said}: the user name or password was not accepted"
        if "basic" in schemes:
            return (f"{said}: the server asks for basic authentication over plain http; "
                    "the password is never sent unencrypted")
        return f"{said}: the server asks for an unsupported kind of authentication"

    # -- checks ---------------------------------------------------------------------------------

    def _check_url(self, url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise _Refused(f"not a valid address ({exc})") from exc
        if parsed.scheme == "http" and not self.settings.allow_http:
            raise _Refused("plain http is not allowed; use https:// (or set allow_http)")
        if parsed.scheme not in ("http", "https"):
            raise _Refused("only https:// addresses can be fetched")
        if not parsed.host:
            raise _Refused("the address has no server name")
        if parsed.userinfo:
            raise _Refused("the address contains a user name or password; "
                           "put them in the settings instead")
        return parsed

    def _check_redirect(self, current: httpx.URL, target: httpx.URL) -> None:
        shown = _redact(str(target))
        if current.scheme == "https" and target.scheme == "http":
            raise _Refused(f"redirected from https to plain http ({shown}); refused")
        if target.scheme not in ("http", "https"):
            raise _Refused(f"redirected to an address that is not https ({shown}); refused")
        if target.scheme == "http" and not self.settings.allow_http:
            raise _Refused(f"redirected to plain http ({shown}), which is not allowed")
        if target.userinfo:
            raise _Refused(f"redirected to an address with a user name or password ({shown})")

    def _check_pin(self, response: httpx.Response) -> None:
        """Response hook: the server certificate must match a pin (before any body is read)."""
        if not self._pins:
            return
        if response.url.scheme != "https":
            raise _Refused("certificate pinning is configured, but the address is plain http")
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        # httpcore hands out the C-level _SSLSocket, whose getpeercert() is positional-only
        der = ssl_object.getpeercert(True) if ssl_object is not None else None
        if not der:
            raise _Refused("the server's certificate could not be read for the pin check")
        got = hashlib.sha256(der).hexdigest()
        if got not in self._pins:
            raise _Refused("the server's certificate does not match the pinned SHA-256 "
                           f"fingerprint (the server has {got})")

    # -- connection set-up and error wording ----------------------------------------------------

    def _get_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                verify=self._ssl_context(),
                timeout=httpx.Timeout(self.settings.timeout_s),
                headers={"User-Agent": USER_AGENT},
                event_hooks={"response": [self._check_pin]},
                follow_redirects=False,
                trust_env=False,  # no proxies, .netrc or SSL_CERT_FILE from the environment
            )
        return self._client

    def _ssl_context(self) -> ssl.SSLContext:
        s = self.settings
        if s.ca_file is not None:
            _must_exist(s.ca_file, "CA file")
        try:
            context = ssl.create_default_context(
                cafile=str(s.ca_file) if s.ca_file is not None else None)
        except (OSError, ValueError) as exc:
            raise _Refused(f"the CA file {s.ca_file} could not be loaded ({_ssl_text(exc)})") \
                from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if s.client_cert is not None:
            _must_exist(s.client_cert, "device certificate")
            if s.client_key is not None:
                _must_exist(s.client_key, "device certificate's key")
            try:
                context.load_cert_chain(s.client_cert,
                                        s.client_key if s.client_key is not None else None)
            except (OSError, ValueError) as exc:
                raise _Refused("the device certificate or its key could not be loaded "
                               f"({_ssl_text(exc)})") from exc
        return context

    def _auth_for(self, origin: tuple[str, str, int | None]) -> _PhoneAuth | None:
        if not self.settings.username:
            return None
        if origin not in self._auth:
            self._auth[origin] = _PhoneAuth(self.settings.username, self.settings.password)
        return self._auth[origin]

    def _transport_reason(self, exc: httpx.HTTPError) -> str:
        timeout = _secs(self.settings.timeout_s)
        if isinstance(exc, httpx.ConnectTimeout):
            return f"could not connect within {timeout}"
        if isinstance(exc, httpx.TimeoutException):
            return f"no answer within {timeout}"
        url = _request_url(exc)
        for cause in _causes(exc):
            if isinstance(cause, ssl.SSLCertVerificationError):
                return self._verify_reason(cause, url)
            if isinstance(cause, ssl.SSLError):
                return self._tls_reason(cause)
            if isinstance(cause, ConnectionRefusedError):
                where = f" on port {url.port}" if url is not None and url.port else ""
                return f"the connection was refused (nothing answers{where})"
            if isinstance(cause, socket.gaierror):
                host = url.host if url is not None else "the server"
                return f"the server name {host} could not be found"
            if isinstance(cause, ConnectionResetError):
                return "the server reset the connection"
            if isinstance(cause, OSError) and cause.strerror:
                return f"the connection failed ({cause.strerror})"
        if isinstance(exc, httpx.RemoteProtocolError):
            if "without sending a response" in str(exc):
                return "the server closed the connection without answering"
            return f"the server's answer is not valid HTTP ({exc})"
        if isinstance(exc, httpx.ProtocolError):
            return f"the server's answer could not be understood ({exc})"
        if isinstance(exc, httpx.ConnectError):
            return f"could not connect ({exc})"
        return f"the request failed ({exc or type(exc).__name__})"

    def _verify_reason(self, err: ssl.SSLCertVerificationError, url: httpx.URL | None) -> str:
        code = err.verify_code
        if code == _EXPIRED:
            return "the server's certificate has expired"
        if code == _NOT_YET_VALID:
            return "the server's certificate is not valid yet (is the phone's clock right?)"
        if code in _WRONG_HOST:
            host = url.host if url is not None else "this address"
            return f"the server's certificate is not issued for {host}"
        if code in _UNTRUSTED:
            store = "pinned CA" if self.settings.ca_file is not None else "system trust store"
            return f"the server's certificate is not trusted ({store})"
        return f"the server's certificate was rejected ({err.verify_message})"

    def _tls_reason(self, err: ssl.SSLError) -> str:
        reason = (err.reason or "").upper()
        text = reason.lower().replace("_", " ") if reason else str(err)
        has_cert = self.settings.client_cert is not None
        if "CERTIFICATE_REQUIRED" in reason and not has_cert:
            return _NO_DEVICE_CERT
        if "CERTIFICATE_REQUIRED" in reason or (reason in _CERT_ALERTS and has_cert):
            return f"{_DEVICE_CERT_REJECTED} ({text})"
        if reason == "WRONG_VERSION_NUMBER":
            return "the server does not speak TLS on this port (is it plain http?)"
        return f"the TLS connection failed ({text})"


# -- digest (and basic over https) --------------------------------------------------------------


class _PhoneAuth(httpx.Auth):
    """Answers a 401: digest on any scheme, basic only over https."""

    def __init__(self, username: str, password: str) -> None:
        self._digest = httpx.DigestAuth(username, password)
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._basic = f"Basic {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        digest = self._digest.auth_flow(request)
        try:
            response = yield next(digest)
            if response.status_code != 401:
                return
            schemes = _auth_schemes(response)
            if "digest" in schemes:
                try:
                    retry = digest.send(response)
                except StopIteration:
                    return
                yield retry
            elif "basic" in schemes and request.url.scheme == "https":
                request.headers["Authorization"] = self._basic
                yield request
        finally:
            digest.close()


# -- the cache ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    body: bytes
    sha256: str
    etag: str | None


class _Cache:
    """Last good body per URL: `<sha256(url)>` and `<sha256(url)>.json`, replaced atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.directory / key, self.directory / f"{key}.json"

    def load(self, url: str) -> _Entry | None:
        """The cached entry, or None when missing, unreadable or not matching its SHA-256."""
        body_path, meta_path = self.paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != url:
            return None
        sha = hashlib.sha256(body).hexdigest()
        if meta.get("sha256") != sha:
            return None
        etag = meta.get("etag")
        return _Entry(body, sha, etag if isinstance(etag, str) else None)

    def store(self, url: str, entry: _Entry, *, body: bool) -> None:
        """Write the metadata (and the body if `body`): temp files first, then os.replace."""
        body_path, meta_path = self.paths(url)
        meta = {"url": url, "sha256": entry.sha256, "etag": entry.etag, "size": len(entry.body)}
        data = json.dumps(meta, indent=1).encode("utf-8") + b"\n"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            pending: list[tuple[str, Path]] = []
            try:
                if body:
                    pending.append((_write_temp(self.directory, entry.body), body_path))
                pending.append((_write_temp(self.directory, data), meta_path))
                for temp, final in pending:
                    os.replace(temp, final)
            finally:
                for temp, _ in pending:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise _Refused(f"the file arrived but could not be saved in {self.directory} "
                           f"({exc.strerror or exc})") from exc


def _write_temp(directory: Path, data: bytes) -> str:
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- small helpers ------------------------------------------------------------------------------


class _Refused(Exception):
    """Internal: a failure already worded for the technician."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _normalise_pin(pin: str) -> str:
    clean = pin.replace(":", "").replace(" ", "").lower()
    if len(clean) != 64 or any(c not in "0123456789abcdef" for c in clean):
        raise ValueError(f"not a hex SHA-256 fingerprint: {pin!r}")
    return clean


def _must_exist(path: Path, what: str) -> None:
    if not path.is_file():
        raise _Refused(f"the {what} {path} does not exist")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _origin_text(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _auth_schemes(response: httpx.Response) -> set[str]:
    return {value.split(None, 1)[0].lower()
            for value in response.headers.get_list("www-authenticate") if value.strip()}


def _content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _peek(response: httpx.Response, limit: int) -> str:
    """Up to about `limit` bytes of an error page as text ("" when it cannot be read)."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= limit:
                break
    except httpx.HTTPError:
        pass
    return data[:limit].decode("utf-8", "replace")


def _secs(seconds: float) -> str:
    return f"{seconds:g} s"


def _ssl_text(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.lower().replace("_", " ")
    return getattr(exc, "strerror", None) or str(exc)


def _request_url(exc: httpx.HTTPError) -> httpx.URL | None:
    try:
        return exc.request.url  # raises RuntimeError when no request is attached
    except RuntimeError:
        return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _redact(url: str) -> str:
    """`url` without a password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url
