"""Tests for the redirect service (provisioning.server.redirect) and the phone asking it
(provisioning.redirect), over real TLS on 127.0.0.1 with lab certificates and a real inventory."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from provisioning.fetch import FetchSettings
from provisioning.redirect import (
    MAX_ANSWER_BYTES,
    RedirectError,
    ask_redirect,
    check_provisioning_url,
    redirect_request_url,
)
from provisioning.server.https import CertAuthority, HttpsServer, cert_sha256, make_ca, respond
from provisioning.server.inventory import Inventory
from provisioning.server.redirect import (
    Destinations,
    RedirectService,
    check_inventory,
    load_destinations,
)
from tools.pbx.ports import free_port

MAC_A = "001a2b3c4d5e"  # enrolled with phone_a's certificate, sent to the site default
MAC_B = "001a2b3c4d5f"  # enrolled with phone_b's certificate, has its own URL
MAC_C = "001a2b3c4d60"  # in the inventory, no certificate enrolled
MAC_UNKNOWN = "001a2b3c4d61"
SITE_URL = "https://prov.example.se/luren/"
B_URL = "https://prov.other.se/luren/b/"
SECRET = "device-secret-do-not-leak"
LINE_PASSWORD = "sip-password-do-not-leak"


@dataclass(frozen=True)
class Pki:
    device_ca: CertAuthority  # issues the factory device certificates
    server_ca: CertAuthority  # issues the redirect server's certificate; the phone trusts it
    other_ca: CertAuthority  # trusted by nobody
    server: tuple[Path, Path]
    wrong_server: tuple[Path, Path]  # from other_ca
    phone_a: tuple[Path, Path]
    phone_b: tuple[Path, Path]
    rogue: tuple[Path, Path]  # a client certificate from other_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    device_ca, server_ca = make_ca(d, name="device-ca"), make_ca(d, name="server-ca")
    other_ca = make_ca(d, name="other-ca")
    return Pki(device_ca, server_ca, other_ca, server_ca.issue(d, "server"),
               other_ca.issue(d, "wrong-server"), device_ca.issue(d, "phone-a", server=False),
               device_ca.issue(d, "phone-b", server=False),
               other_ca.issue(d, "rogue", server=False))


@pytest.fixture
def inventory(tmp_path: Path, pki: Pki) -> Path:
    path = tmp_path / "inventory.db"
    with Inventory(path) as inv:
        inv.add_device("00:1A:2B:3C:4D:5E", "desk", cert_sha256=cert_sha256(pki.phone_a[0]),
                       secret=SECRET)
        inv.set_line(MAC_A, 1, "1001", LINE_PASSWORD)
        inv.add_device(MAC_B, "desk", cert_sha256=cert_sha256(pki.phone_b[0]))
        inv.add_device(MAC_C, "desk")
    return path


@pytest.fixture
def service(inventory: Path, pki: Pki) -> Iterator[RedirectService]:
    destinations = Destinations(SITE_URL, {"00-1A-2B-3C-4D-5F": B_URL})
    with RedirectService(inventory, destinations, cert=pki.server[0], key=pki.server[1],
                         device_ca=pki.device_ca.cert_path) as running:
        yield running


@pytest.fixture
def settings(pki: Pki) -> Callable[..., FetchSettings]:
    """settings(**overrides): the phone trusting the server CA, presenting phone_a's cert."""

    def make(**overrides: object) -> FetchSettings:
        fields: dict[str, object] = {"ca_file": pki.server_ca.cert_path,
                                     "client_cert": pki.phone_a[0],
                                     "client_key": pki.phone_a[1], "timeout_s": 2.0}
        fields.update(overrides)
        return FetchSettings(**fields)  # type: ignore[arg-type]

    return make


def raw(service_url: str, path: str, pki: Pki, *, cert: tuple[Path, Path] | None = None,
        method: str = "GET") -> httpx.Response:
    """One request with an ordinary client presenting `cert` (phone_a's by default)."""
    context = ssl.create_default_context(cafile=str(pki.server_ca.cert_path))
    client_cert = cert or pki.phone_a
    context.load_cert_chain(client_cert[0], client_cert[1])
    with httpx.Client(verify=context, timeout=2.0, trust_env=False) as client:
        return client.request(method, service_url.rstrip("/") + path)


# -- the right device gets its URL ---------------------------------------------------------------


def test_a_device_gets_the_site_default(service: RedirectService, settings: Callable[
        ..., FetchSettings], tmp_path: Path) -> None:
    url = ask_redirect(service.url(), "00:1A:2B:3C:4D:5E", settings(), tmp_path / "cache")
    assert url == SITE_URL
    assert service.server.statuses == [(f"/redirect/v1/{MAC_A}", 200)]


def test_a_device_with_its_own_url_gets_that(service: RedirectService, settings: Callable[
        ..., FetchSettings], pki: Pki, tmp_path: Path) -> None:
    phone_b = settings(client_cert=pki.phone_b[0], client_key=pki.phone_b[1])
    assert ask_redirect(service.url(), MAC_B, phone_b, tmp_path / "cache") == B_URL


def test_the_answer_is_only_the_url(service: RedirectService, pki: Pki) -> None:
    response = raw(service.url(), f"/redirect/v1/{MAC_A}", pki)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"url": SITE_URL}
    assert SECRET not in response.text and LINE_PASSWORD not in response.text


@pytest.mark.parametrize("spelling", ["00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e", "001A2B3C4D5E",
                                      "00%3A1a%3A2b%3A3c%3A4d%3A5e", "00:1a:2b:3c:4d:5e"])
def test_any_mac_spelling_in_the_path(service: RedirectService, pki: Pki, spelling: str) -> None:
    response = raw(service.url(), f"/redirect/v1/{spelling}", pki)
    assert (response.status_code, response.json()) == (200, {"url": SITE_URL})


def test_an_enrolment_is_seen_without_a_restart(service: RedirectService, inventory: Path,
                                                 pki: Pki) -> None:
    assert raw(service.url(), f"/redirect/v1/{MAC_C}", pki).status_code == 403
    with Inventory(inventory) as inv:
        inv.update_device(MAC_C, cert_sha256=cert_sha256(pki.phone_a[0]))
    assert raw(service.url(), f"/redirect/v1/{MAC_C}", pki).json() == {"url": SITE_URL}


# -- refusals ------------------------------------------------------------------------------------


def test_another_devices_certificate_is_refused(service: RedirectService, settings: Callable[
        ..., FetchSettings], pki: Pki, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    phone_b = settings(client_cert=pki.phone_b[0], client_key=pki.phone_b[1])
    with caplog.at_level(logging.INFO, logger="luren.provisioning.redirect"), \
            pytest.raises(RedirectError) as caught:
        ask_redirect(service.url(), MAC_A, phone_b, tmp_path / "cache")
    assert "refused this phone" in caught.value.reason
    assert f"not the one registered for MAC {MAC_A}" in caught.value.reason
    assert "403" in caught.value.reason
    assert f"redirect for {MAC_A} from 127.0.0.1: 403" in caplog.text
    assert cert_sha256(pki.phone_b[0]) in caplog.text  # the technician sees which cert came


def test_a_device_without_an_enrolled_certificate_is_refused(service: RedirectService,
                                                              pki: Pki) -> None:
    response = raw(service.url(), f"/redirect/v1/{MAC_C}", pki)
    assert response.status_code == 403
    assert "no device certificate is enrolled" in response.json()["error"]


def test_no_client_certificate_is_refused_in_the_handshake(
        service: RedirectService, settings: Callable[..., FetchSettings],
        tmp_path: Path) -> None:
    with pytest.raises(RedirectError) as caught:
        ask_redirect(service.url(), MAC_A, settings(client_cert=None, client_key=None),
                     tmp_path / "cache")
    assert "requires a device certificate (client certificate), and none is configured" in str(
        caught.value)
    service.stop()  # joins the server's threads, so the failed handshake is recorded
    assert service.server.statuses == []
    assert any("TLS handshake failed" in error for error in service.server.errors)


def test_a_certificate_from_another_ca_is_refused_in_the_handshake(
        service: RedirectService, settings: Callable[..., FetchSettings], pki: Pki,
        tmp_path: Path) -> None:
    rogue = settings(client_cert=pki.rogue[0], client_key=pki.rogue[1])
    with pytest.raises(RedirectError, match="rejected the device certificate"):
        ask_redirect(service.url(), MAC_A, rogue, tmp_path / "cache")
    service.stop()
    assert service.server.statuses == []


def test_an_unknown_mac_is_not_found(service: RedirectService, settings: Callable[
        ..., FetchSettings], tmp_path: Path) -> None:
    with pytest.raises(RedirectError) as caught:
        ask_redirect(service.url(), MAC_UNKNOWN, settings(), tmp_path / "cache")
    assert f"does not know this phone (MAC {MAC_UNKNOWN})" in caught.value.reason
    assert "404" in caught.value.reason


def test_a_known_mac_without_a_url_is_not_found(inventory: Path, pki: Pki) -> None:
    with RedirectService(inventory, Destinations(devices={MAC_B: B_URL}), cert=pki.server[0],
                         key=pki.server[1], device_ca=pki.device_ca.cert_path) as service:
        response = raw(service.url(), f"/redirect/v1/{MAC_A}", pki)
    assert response.status_code == 404
    assert response.json() == {"error": "no provisioning URL is configured for this device"}


@pytest.mark.parametrize("path", [
    "/redirect/v1/nonsense", "/redirect/v1/", "/redirect/v1/ff:ff:ff:ff:ff:ff",
    "/redirect/v1/000000000000", f"/redirect/v1/{MAC_A}/x", f"/redirect/v1/{MAC_A}?x=1",
    "/redirect/v2/" + MAC_A, "/", "/redirect/v1/..%2F..%2Finventory.db",
])
def test_a_malformed_path_is_a_bad_request(service: RedirectService, pki: Pki,
                                           path: str) -> None:
    response = raw(service.url(), path, pki)
    assert response.status_code == 400
    assert response.json()["error"]


def test_head_is_not_allowed(service: RedirectService, pki: Pki) -> None:
    response = raw(service.url(), f"/redirect/v1/{MAC_A}", pki, method="HEAD")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_decisions_are_logged_without_secrets_or_the_url_path(
        service: RedirectService, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="luren.provisioning.redirect"):
        raw(service.url(), f"/redirect/v1/{MAC_A}", pki)
        raw(service.url(), f"/redirect/v1/{MAC_UNKNOWN}", pki)
    assert f"redirect for {MAC_A} from 127.0.0.1: 200, sent to its site default at " \
           "prov.example.se" in caplog.text
    assert f"redirect for {MAC_UNKNOWN} from 127.0.0.1: 404, this MAC address is not in the " \
           "inventory" in caplog.text
    assert "/luren/" not in caplog.text and SECRET not in caplog.text


# -- the phone against a misbehaving or wrong server ---------------------------------------------


def answering(status: int, body: bytes) -> Callable[[BaseHTTPRequestHandler], bool]:
    def handler(request: BaseHTTPRequestHandler) -> bool:
        respond(request, status, body, {"Content-Type": "application/json"})
        return True
    return handler


@pytest.mark.parametrize(("body", "words"), [
    (b"<html>hello</html>", "its answer is not JSON"),
    (b"\xff\xfe", "its answer is not JSON"),
    (b'["https://prov.example.se/"]', 'its answer has no "url"'),
    (b'{"where": "https://prov.example.se/"}', 'its answer has no "url"'),
    (b'{"url": 42}', "unusable address: the provisioning URL is missing or not text"),
    (b'{"url": "http://prov.example.se/luren/"}', "the provisioning URL is plain http"),
    (b'{"url": "ftp://prov.example.se/luren/"}', "not an https:// address"),
    (b'{"url": "https://admin:pw@prov.example.se/"}', "contains a user name or password"),
    (b'{"url": "https://prov.example.se/' + b"a" * 5000 + b'"}', "too large"),
    (json.dumps({"url": "https://p.se/" + "a" * 2100}).encode(), "longer than 2048"),
    (b" " * (MAX_ANSWER_BYTES + 1), f"the file is too large: more than {MAX_ANSWER_BYTES}"),
])
def test_a_bad_answer_is_refused_in_words(pki: Pki, settings: Callable[..., FetchSettings],
                                          tmp_path: Path, body: bytes, words: str) -> None:
    with HttpsServer(None, *pki.server, client_ca=pki.device_ca.cert_path,
                     handler=answering(200, body)) as server, \
            pytest.raises(RedirectError) as caught:
        ask_redirect(server.url(), MAC_A, settings(), tmp_path / "cache")
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"redirect service {server.url()}: ")


def test_http_url_is_accepted_only_with_allow_http(pki: Pki, settings: Callable[
        ..., FetchSettings], tmp_path: Path) -> None:
    body = b'{"url": "http://prov.lab/luren/"}'
    with HttpsServer(None, *pki.server, handler=answering(200, body)) as server:
        url = ask_redirect(server.url(), MAC_A, settings(allow_http=True), tmp_path / "cache")
    assert url == "http://prov.lab/luren/"


def test_a_slow_server_times_out(pki: Pki, settings: Callable[..., FetchSettings],
                                 tmp_path: Path) -> None:
    release = threading.Event()

    def stalling(request: BaseHTTPRequestHandler) -> bool:
        release.wait(10)
        return answering(200, b'{"url": "https://prov.example.se/"}')(request)

    server = HttpsServer(None, *pki.server, handler=stalling).start()
    try:
        with pytest.raises(RedirectError, match=r"no answer within 0\.3 s"):
            ask_redirect(server.url(), MAC_A, settings(timeout_s=0.3), tmp_path / "cache")
    finally:
        release.set()
        server.stop()


def test_a_server_certificate_from_the_wrong_ca_is_refused(
        inventory: Path, pki: Pki, settings: Callable[..., FetchSettings],
        tmp_path: Path) -> None:
    with RedirectService(inventory, Destinations(SITE_URL), cert=pki.wrong_server[0],
                         key=pki.wrong_server[1], device_ca=pki.device_ca.cert_path) as service, \
            pytest.raises(RedirectError, match=r"certificate is not trusted \(pinned CA\)"):
        ask_redirect(service.url(), MAC_A, settings(), tmp_path / "cache")


def test_no_password_is_sent_to_the_redirect_service(pki: Pki, settings: Callable[
        ..., FetchSettings], tmp_path: Path) -> None:
    challenge = {"WWW-Authenticate": 'Basic realm="x"'}

    def wants_password(request: BaseHTTPRequestHandler) -> bool:
        respond(request, 401, b"", challenge)
        return True

    with HttpsServer(None, *pki.server, handler=wants_password) as server, \
            pytest.raises(RedirectError, match="none is configured"):
        ask_redirect(server.url(), MAC_A, settings(username="phone", password="pw"),
                     tmp_path / "cache")
    assert [headers.get("authorization") for _, headers in server.requests] == [None]


def test_a_bad_mac_or_service_address_is_refused_before_asking(
        settings: Callable[..., FetchSettings], tmp_path: Path) -> None:
    with pytest.raises(RedirectError, match="is not a MAC address"):
        ask_redirect("https://redirect.example/", "nonsense", settings(), tmp_path / "cache")
    with pytest.raises(RedirectError) as caught:
        ask_redirect("https://user:pw@redirect.example/", MAC_A, settings(), tmp_path / "c")
    assert "user name or password" in str(caught.value) and "pw" not in caught.value.service


# -- URLs and destinations -----------------------------------------------------------------------


def test_the_request_url() -> None:
    assert redirect_request_url("https://r.example/zt/", "00:1A:2B:3C:4D:5E") == \
        f"https://r.example/zt/redirect/v1/{MAC_A}"


@pytest.mark.parametrize(("url", "words"), [
    ("", "missing"), ("prov.example.se/luren/", "not an https:// address"),
    ("https:///luren/", "no server name"), ("https://prov.example.se/a b/", "spaces"),
    ("https://prov.example.se/?token=1", "without ?query"),
    ("https://prov.example.se/#x", "#fragment"),
    ("https://prov.example.se:99999/", "Port out of range"),
])
def test_unusable_urls_are_refused_in_words(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        check_provisioning_url(url)


def test_destinations_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "redirects.json"
    path.write_text(json.dumps({"default": SITE_URL,
                                "devices": {"00:1A:2B:3C:4D:5F": B_URL}}))
    destinations = load_destinations(path)
    assert destinations.url_for(MAC_B) == (B_URL, "per-device URL")
    assert destinations.url_for(MAC_A) == (SITE_URL, "site default")
    assert Destinations().url_for(MAC_A) is None


@pytest.mark.parametrize(("data", "words"), [
    ({"default": "http://prov.example.se/"}, "the default URL: .*plain http"),
    ({"devices": {MAC_A: "https://u:p@prov.example.se/"}}, f"device {MAC_A}: .*user name"),
    ({"devices": {"nonsense": SITE_URL}}, "is not a MAC address"),
    ({"devices": {MAC_A: SITE_URL, "00:1a:2b:3c:4d:5e": B_URL}}, "has two URLs"),
    ({"devices": [MAC_A]}, '"devices" must map MAC to URL'),
    ({"defualt": SITE_URL}, 'only "default" and "devices"'),
])
def test_bad_destination_files_are_refused_in_words(tmp_path: Path, data: object,
                                                     words: str) -> None:
    path = tmp_path / "redirects.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=words):
        load_destinations(path)


def test_a_missing_inventory_is_refused_in_words(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ValueError, match=r"the device inventory .* does not exist"):
        RedirectService(tmp_path / "none.db", Destinations(SITE_URL), cert=pki.server[0],
                        key=pki.server[1], device_ca=pki.device_ca.cert_path)


def test_a_sqlite_file_that_is_not_an_inventory_is_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(ValueError, match=r"is not a readable device inventory"):
        check_inventory(other)
    with sqlite3.connect(other) as db:  # not given the inventory's tables
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
    assert tables == ["notes"]


def test_an_inventory_gone_while_serving_is_not_created_again(
        service: RedirectService, inventory: Path, pki: Pki,
        caplog: pytest.LogCaptureFixture) -> None:
    for leftover in inventory.parent.glob(inventory.name + "*"):  # the file, its -wal, -shm
        leftover.unlink()
    with caplog.at_level(logging.ERROR, logger="luren.provisioning.redirect"):
        response = raw(service.url(), f"/redirect/v1/{MAC_A}", pki)
    assert response.status_code == 503
    assert response.json() == {"error": "the device inventory could not be read; try again later"}
    assert f"the inventory {inventory} could not be read: the file no longer exists" in caplog.text
    assert not inventory.exists()


def test_a_service_on_a_given_port_keeping_no_record(inventory: Path, pki: Pki, settings: Callable[
        ..., FetchSettings], tmp_path: Path) -> None:
    port = free_port()
    answered: list[tuple[str, int]] = []
    with RedirectService(inventory, Destinations(SITE_URL), cert=pki.server[0], key=pki.server[1],
                         device_ca=pki.device_ca.cert_path, host="127.0.0.1", port=port,
                         record=False, on_request=lambda *answer: answered.append(answer)) \
            as service:
        assert service.url() == f"https://127.0.0.1:{port}/"
        assert ask_redirect(service.url(), MAC_A, settings(), tmp_path / "cache") == SITE_URL
    assert answered == [(f"/redirect/v1/{MAC_A}", 200)]
    assert (service.server.requests, service.server.statuses) == ([], [])
