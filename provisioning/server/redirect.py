"""The redirect service: a phone's first contact, answered with its provisioning URL.

A new phone knows only the redirect service's address and carries a factory device certificate.
It asks, with that certificate as TLS client certificate:

    GET /redirect/v1/<mac>      (any spelling `normalize_mac` accepts; URL-escaped or not)

and gets one of (always `application/json`, never anything secret):

    200 {"url": "https://prov.example.se/luren/"}   its provisioning folder
    400 {"error": "..."}   the path is not /redirect/v1/<mac>, or the MAC is malformed
    403 {"error": "..."}   the certificate is not the one enrolled for that MAC (or none is)
    404 {"error": "..."}   the MAC is not in the inventory, or no URL is configured for it
    405 {"error": "..."}   HEAD (HttpsServer hands only GET and HEAD to a handler; other
                           methods get 501 from the HTTP library before the handler runs)
    503 {"error": "..."}   the inventory could not be read

TLS already demands a client certificate chained to the device CA (`client_ca`); the handler
then requires the SHA-256 of that certificate's DER (as `cert_sha256` computes it) to equal the
inventory's `device_cert_sha256` for the MAC, so a phone cannot ask for another's URL.

Where each phone is sent (`Destinations`): a per-device URL when one is set, else the site
default; both checked by `provisioning.redirect.check_provisioning_url`. From a JSON file:

    {"default": "https://prov.example.se/luren/",
     "devices": {"00:1a:2b:3c:4d:5e": "https://prov.other.se/luren/"}}

The inventory is a SQLite file or a PostgreSQL URL, as `Inventory` takes it. It is read
through `Inventory.device(mac)` on a connection opened for each request and closed after it:
an `Inventory` belongs to the thread that opened it, and the server runs each phone's
connection in a thread of its own, so one per request costs no more than one per thread. An
enrolment is seen at once. The SQLite file must exist when the service starts, and is never
created by it (opening a missing one would make an empty inventory); the service needs write
access to it, because opening an inventory makes sure of its tables. Every decision is logged
(`luren.provisioning.redirect`) with the MAC, the status and the reason; the URL handed out is
logged by its server only.

    with RedirectService(inventory_path_or_url, Destinations("https://prov.example.se/luren/"),
                         cert=server_pem, key=server_key, device_ca=device_ca_pem) as service:
        service.url()   # https://127.0.0.1:<port>/ - the phone's redirect_url
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote, urlsplit

from provisioning.redirect import PATH_PREFIX, check_provisioning_url
from provisioning.server.backends import database_errors, is_postgres_url, mask_url
from provisioning.server.https import HOST, ErrorCallback, HttpsServer, RequestCallback, respond
from provisioning.server.inventory import Inventory, normalize_mac

log = logging.getLogger("luren.provisioning.redirect")

_MAC_SEGMENT = re.compile(r"[0-9A-Fa-f:.\-]{12,17}")
_PROBE_MAC = "020000000000"  # any valid MAC: check_inventory needs the read to work, not a row

Target = str | os.PathLike[str]
"""An inventory as `Inventory` takes it: a SQLite file path or a postgresql:// URL."""


@dataclass(frozen=True)
class Destinations:
    """Where phones are sent: `devices` (MAC -> URL) first, else `default` ("" = nowhere)."""

    default: str = ""
    devices: Mapping[str, str] = field(default_factory=dict)
    allow_http: bool = False  # accept http:// URLs (a lab without TLS)

    def __post_init__(self) -> None:
        if self.default:
            _checked_url("the default URL", self.default, self.allow_http)
        devices: dict[str, str] = {}
        for mac, url in self.devices.items():
            key = normalize_mac(mac)
            if key in devices:
                raise ValueError(f"device {key} has two URLs (as {mac!r} and another spelling)")
            devices[key] = _checked_url(f"the URL of device {key}", url, self.allow_http)
        object.__setattr__(self, "devices", MappingProxyType(devices))

    def url_for(self, mac: str) -> tuple[str, str] | None:
        """(URL, "per-device URL" or "site default") for a normalised MAC, or None."""
        if mac in self.devices:
            return self.devices[mac], "per-device URL"
        return (self.default, "site default") if self.default else None


def _checked_url(what: str, url: object, allow_http: bool) -> str:
    try:
        return check_provisioning_url(url, allow_http=allow_http)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from exc


def load_destinations(path: Path, *, allow_http: bool = False) -> Destinations:
    """Destinations from a JSON file `{"default": URL, "devices": {MAC: URL}}` (both optional)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"the redirect URL file {path} could not be read "
                         f"({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ValueError(f"the redirect URL file {path} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or set(data) - {"default", "devices"}:
        raise ValueError(f"the redirect URL file {path} must be an object with only "
                         '"default" and "devices"')
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise ValueError(f'the redirect URL file {path}: "devices" must map MAC to URL')
    try:
        return Destinations(data.get("default", ""), devices, allow_http)
    except ValueError as exc:
        raise ValueError(f"the redirect URL file {path}: {exc}") from exc


@dataclass(frozen=True)
class Decision:
    """One answer: the status, the MAC asked for ("" if unreadable) and why."""

    status: int
    mac: str
    reason: str
    url: str = ""


class RedirectHandler:
    """An HttpsServer `handler=` answering every request as the redirect service."""

    def __init__(self, inventory: Target, destinations: Destinations) -> None:
        check_inventory(inventory)
        self.inventory = inventory
        self.destinations = destinations

    def __call__(self, request: BaseHTTPRequestHandler) -> bool:
        """Answer `request` (always: it never falls through to file serving)."""
        decision = self.decide(request.command, request.path, _peer_certificate(request))
        _log(decision, request.client_address[0])
        body = {"url": decision.url} if decision.status == 200 else {"error": decision.reason}
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        if decision.status == 405:
            headers["Allow"] = "GET"
        respond(request, decision.status, json.dumps(body).encode("utf-8") + b"\n", headers)
        return True

    def decide(self, method: str, path: str, peer_der: bytes | None) -> Decision:
        """The answer to `method path` from a client with certificate `peer_der` (DER)."""
        if method != "GET":
            return Decision(405, "", f"method {method} is not allowed; use GET")
        mac = _mac_from_path(path)
        if isinstance(mac, Decision):
            return mac
        try:
            enrolled = _enrolled_fingerprint(self.inventory, mac)
        except (OSError, ValueError, *database_errors()) as exc:
            log.error("redirect: the inventory %s could not be read: %s", _shown(self.inventory),
                      exc)
            return Decision(503, mac, "the device inventory could not be read; try again later")
        refused = _check_certificate(mac, enrolled, peer_der)
        if refused is not None:
            return refused
        found = self.destinations.url_for(mac)
        if found is None:
            return Decision(404, mac, "no provisioning URL is configured for this device")
        return Decision(200, mac, f"sent to its {found[1]}", found[0])


def _mac_from_path(path: str) -> str | Decision:
    """The normalised MAC of `/redirect/v1/<mac>`, or the 400 decision."""
    parts = urlsplit(path)
    if parts.query or parts.fragment or not parts.path.startswith(PATH_PREFIX):
        return Decision(400, "", f"expected GET {PATH_PREFIX}<mac> and nothing else")
    segment = unquote(parts.path[len(PATH_PREFIX):])
    if not _MAC_SEGMENT.fullmatch(segment):
        return Decision(400, "", f"expected GET {PATH_PREFIX}<mac>, e.g. "
                                 f"{PATH_PREFIX}001a2b3c4d5e")
    try:
        return normalize_mac(segment)
    except ValueError as exc:
        return Decision(400, "", str(exc))


def _check_certificate(mac: str, enrolled: str | None, peer_der: bytes | None) -> Decision | None:
    """The 404/403 decision when the device is unknown or the certificate is not its own."""
    if enrolled is None:
        return Decision(404, mac, "this MAC address is not in the inventory")
    if not enrolled:
        return Decision(403, mac, "no device certificate is enrolled for this MAC address")
    if peer_der is None:
        return Decision(403, mac, "no device certificate was presented")
    presented = hashlib.sha256(peer_der).hexdigest()
    if not hmac.compare_digest(presented, enrolled):
        return Decision(403, mac, "the device certificate presented is not the one enrolled "
                                  f"for this MAC address (presented SHA-256 {presented})")
    return None


def _peer_certificate(request: BaseHTTPRequestHandler) -> bytes | None:
    """The client certificate's DER, or None (plain HTTP, or no certificate)."""
    getpeercert = getattr(request.connection, "getpeercert", None)
    der = getpeercert(True) if getpeercert is not None else None
    return der or None


def _log(decision: Decision, client: str) -> None:
    mac = decision.mac or "(no valid MAC)"
    where = f" at {urlsplit(decision.url).hostname}" if decision.url else ""
    level = logging.INFO if decision.status in (200, 404) else logging.WARNING
    log.log(level, "redirect for %s from %s: %d, %s%s", mac, client, decision.status,
            decision.reason, where)


# -- the inventory --------------------------------------------------------------------------------


def _shown(target: Target) -> str:
    """The inventory's place for a message: a URL's password masked."""
    return mask_url(target) if is_postgres_url(target) else str(target)


def _open(target: Target) -> Inventory:
    """The inventory, opened; a SQLite file that has gone is not created again (ValueError)."""
    if not is_postgres_url(target) and not Path(target).is_file():
        raise ValueError("the file no longer exists")
    return Inventory(target)


def _enrolled_fingerprint(inventory: Target, mac: str) -> str | None:
    """The device's enrolled certificate SHA-256 ("" = none), or None for an unknown MAC."""
    with _open(inventory) as opened:
        device = opened.device(mac)
    return None if device is None else device.cert_sha256


def check_inventory(target: Target) -> None:
    """ValueError in words unless `target` (a SQLite file or a PostgreSQL URL) is a device
    inventory that can be opened and read.

    A SQLite file must exist, and is first read without writing to it: a file that is not an
    inventory is refused as it is, not given the inventory's tables.
    """
    shown = _shown(target)
    if not is_postgres_url(target):
        _check_sqlite_file(Path(target))
    try:
        _enrolled_fingerprint(target, _PROBE_MAC)
    except (OSError, ValueError, *database_errors()) as exc:  # psycopg's once loaded
        raise ValueError(f"the device inventory {shown} could not be read ({exc})") from exc


def _check_sqlite_file(path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"the device inventory {path} does not exist")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            db.execute("SELECT mac, device_cert_sha256 FROM devices LIMIT 1").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise ValueError(f"{path} is not a readable device inventory ({exc})") from exc


# -- the service ---------------------------------------------------------------------------------


class RedirectService:
    """The redirect endpoint on its own HTTPS server, demanding a device certificate issued by
    `device_ca`.

    It listens on `host`:`port` (127.0.0.1 and a port the system picks unless given).
    `record`, `on_error` and `on_request` are the HttpsServer's: a long-running service gives
    `record=False` and logs through the callbacks.
    """

    def __init__(self, inventory: Target, destinations: Destinations, *, cert: Path, key: Path,
                 device_ca: Path, host: str = HOST, port: int = 0, record: bool = True,
                 on_error: ErrorCallback | None = None,
                 on_request: RequestCallback | None = None) -> None:
        self.handler = RedirectHandler(inventory, destinations)
        self.server = HttpsServer(None, cert, key, client_ca=device_ca, handler=self.handler,
                                  host=host, port=port, record=record, on_error=on_error,
                                  on_request=on_request)

    def start(self) -> RedirectService:
        """Listen and serve in threads."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the threads."""
        self.server.stop()

    def url(self, path: str = "/") -> str:
        """`https://<host>:<port><path>`; the bare one is a phone's `redirect_url` (when the
        host is one the phones can reach)."""
        return self.server.url(path)

    def __enter__(self) -> RedirectService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
