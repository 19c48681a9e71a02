"""Provisioning from nginx, as a fleet serves it: the reference server renders a signed tree for
a few phones (one MAC file encrypted for the phone under test), a private nginx serves it over
HTTPS with a certificate from a lab CA the test makes, and the phone side
(`ProvisioningClient`) fetches, verifies, decrypts and keeps it. nginx answers with its own
ETags and 304s; a tampered file and a server with a certificate from another CA are refused
and the last-known-good configuration stays in use. No PBX or phone process is needed.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from provisioning.client import ProvisioningClient
from provisioning.fetch import Fetcher, FetchError, FetchSettings
from provisioning.server.https import make_ca
from provisioning.server.inventory import Inventory
from provisioning.server.render import RenderReport, render_tree
from provisioning.signing import (
    device_public_key_from_text,
    encrypt_for_device,
    generate_device_key,
    generate_key,
    load_private_key,
    sign,
)
from tests.harness.nginx import Nginx
from tools.pbx.waiting import wait_until

pytestmark = pytest.mark.e2e

MODEL = "sim"
PHONE_MAC = "020000002001"
FILES = ("/common.toml", f"/{MODEL}.toml", f"/{PHONE_MAC}.toml")
LOG_TIMEOUT = 5.0  # nginx writes the access log line just after the answer


class Site:
    """A provisioning site: Ed25519 signing key, lab CA with a server certificate, an inventory
    of three phones and the tree rendered from it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tree = root / "tree"
        _, public = generate_key(root / "keys", "site")
        self.key_id, self.key = load_private_key(root / "keys" / "site.key")
        self.public_b64 = _raw_b64(public)
        self.ca = make_ca(root / "ca")
        self.cert, self.cert_key = self.ca.issue(root / "ca", "prov")
        self.inventory = Inventory(root / "inventory.db")
        self.inventory.set_common('[device]\nlanguage = "en"\n')
        self.inventory.set_model_template(MODEL, '[device]\ntone_country = "de"\n')

    def enrol(self, mac: str, user: str, name: str, device_key: str = "") -> None:
        """Add a phone with one line; without `device_key` its password is withheld."""
        self.inventory.add_device(mac, MODEL, name=name, public_key=device_key)
        self.inventory.set_line(mac, 1, user, f"pw-{user}", display_name=name,
                                registrar="127.0.0.1:5060")

    def publish(self) -> RenderReport:
        report = render_tree(
            self.inventory, self.tree, signer=lambda body: sign(body, self.key_id, self.key),
            encryptor=lambda body, key: encrypt_for_device(body,
                                                           device_public_key_from_text(key)))
        assert report.ok, report.errors
        return report

    def bootstrap(self, url: str) -> dict[str, Any]:
        """The phone's own config: only where and how to get the rest."""
        return {"sip": {"port": 0, "bind_address": "127.0.0.1"}, "provisioning": {
            "url": url, "ca_file": str(self.ca.cert_path), "require_signature": True,
            "trusted_keys": [f"site={self.public_b64}"], "model": MODEL, "mac": PHONE_MAC,
            "timeout": 3}}


def _raw_b64(public_pem: Path) -> str:
    """A PEM public key as base64 of its raw bytes, the form `trusted_keys` and the inventory
    take."""
    key = serialization.load_pem_public_key(public_pem.read_bytes())
    raw = key.public_bytes(serialization.Encoding.Raw,  # type: ignore[union-attr]
                           serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def phone(tmp_path: Path) -> ProvisioningClient:
    return ProvisioningClient(tmp_path / "phone", model=MODEL, mac=PHONE_MAC)


@pytest.fixture
def site(tmp_path: Path, phone: ProvisioningClient) -> Iterator[Site]:
    """The site with the phone under test, a second keyed phone and one without a key."""
    site = Site(tmp_path / "site")
    _, other_key = generate_device_key(tmp_path / "other-phone", "device")
    site.enrol(PHONE_MAC, "2001", "Anna Berg", phone.device_public_key())
    site.enrol("020000002002", "2002", "Bo Ek", _raw_b64(other_key))
    site.enrol("020000002003", "2003", "Cia Lund")
    report = site.publish()
    assert list(report.withheld) == ["020000002003"]
    assert b"pw-2001" not in (site.tree / f"{PHONE_MAC}.toml").read_bytes()
    yield site
    site.inventory.close()


@pytest.fixture
def nginx(site: Site, tmp_path: Path) -> Iterator[Nginx]:
    with Nginx(site.tree, site.cert, site.cert_key, tmp_path / "nginx",
               access_log=True) as server:
        yield server


def logged(server: Nginx, count: int) -> list[tuple[str, int]]:
    """The first `count` access log entries, once there are that many."""
    return wait_until(lambda: server.statuses()[:count] if len(server.statuses()) >= count
                      else [], LOG_TIMEOUT, what=f"{count} nginx access log lines")


def same_requests(got: list[tuple[str, int]], want: list[tuple[str, int]]) -> bool:
    """The same requests, in any order: nginx writes a request's log line once its answer is
    out, and on a busy machine the worker of the next request (another connection) can write
    first."""
    return sorted(got) == sorted(want)


def tamper(path: Path) -> None:
    """Change one byte of the signed body in place, size unchanged, and move the mtime on.

    nginx's ETag is the mtime in whole seconds and the size: a same-size change within the
    second of the last write would keep the ETag, and the phone would get a 304 for it.
    """
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    before = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, (before.st_atime, before.st_mtime + 60))


def test_a_phone_gets_its_line_from_nginx(site: Site, phone: ProvisioningClient,
                                          nginx: Nginx) -> None:
    config, outcome = phone.run(site.bootstrap(nginx.url("/")))
    assert outcome.ok and outcome.changed, outcome.message
    assert "signed by site" in outcome.message
    assert sorted(outcome.files) == ["common", "mac", "model"]
    line = config.lines[0]
    assert (line.user, line.password, line.display_name) == ("2001", "pw-2001", "Anna Berg")
    assert (config.device.language, config.device.tone_country) == ("en", "de")
    assert same_requests(logged(nginx, 3), [(path, 200) for path in FILES])


def test_a_second_run_gets_304s_and_the_same_config(site: Site, phone: ProvisioningClient,
                                                    nginx: Nginx) -> None:
    bootstrap = site.bootstrap(nginx.url("/"))
    first_config, first = phone.run(bootstrap)
    assert first.ok and first.changed, first.message
    config, outcome = phone.run(bootstrap)
    assert outcome.ok and not outcome.changed, outcome.message
    assert outcome.files == first.files
    assert config == first_config
    assert same_requests(logged(nginx, 6), [(path, code) for code in (200, 304)
                                            for path in FILES])


def test_a_tampered_file_is_refused_and_the_last_good_config_kept(
        site: Site, phone: ProvisioningClient, nginx: Nginx) -> None:
    bootstrap = site.bootstrap(nginx.url("/"))
    _, first = phone.run(bootstrap)
    assert first.ok, first.message
    tamper(site.tree / f"{MODEL}.toml")
    config, outcome = phone.run(bootstrap)
    assert not outcome.ok and outcome.from_cache
    assert "model file refused: bad signature" in outcome.message, outcome.message
    assert outcome.files == first.files  # the last-known-good files, still in use
    assert (config.lines[0].user, config.lines[0].password) == ("2001", "pw-2001")
    assert same_requests(logged(nginx, 5), [(path, 200) for path in FILES]
                         + [("/common.toml", 304), (f"/{MODEL}.toml", 200)])


def test_a_server_with_a_certificate_from_another_ca_is_refused(
        site: Site, phone: ProvisioningClient, nginx: Nginx, tmp_path: Path) -> None:
    _, first = phone.run(site.bootstrap(nginx.url("/")))
    assert first.ok, first.message
    other = make_ca(tmp_path / "other-ca", name="other")
    cert, key = other.issue(tmp_path / "other-ca", "impostor")
    with Nginx(site.tree, cert, key, tmp_path / "impostor", access_log=True) as impostor:
        config, outcome = phone.run(site.bootstrap(impostor.url("/")))
        assert impostor.statuses() == []  # refused at the handshake: no request was sent
    assert not outcome.ok and outcome.from_cache
    assert "the server's certificate is not trusted (pinned CA)" in outcome.message, \
        outcome.message
    assert config.lines[0].user == "2001"


def test_nginx_demanding_a_device_certificate_is_explained_in_words(
        site: Site, tmp_path: Path) -> None:
    """nginx with `ssl_verify_client on` completes the handshake without a device certificate
    (or with one it does not trust) and answers 400: the phone says what that means."""
    device_ca, other_ca = make_ca(tmp_path / "pki", name="device"), make_ca(tmp_path / "pki",
                                                                             name="other")
    phone_cert = device_ca.issue(tmp_path / "pki", "phone", server=False)
    rogue_cert = other_ca.issue(tmp_path / "pki", "rogue", server=False)

    def fetch(url: str, cert: tuple[Path, Path] | None, cache: str) -> bytes | str:
        """The body, or the reason it was refused."""
        client = {"client_cert": cert[0], "client_key": cert[1]} if cert else {}
        settings = FetchSettings(ca_file=site.ca.cert_path, timeout_s=5.0,
                                 **client)  # type: ignore[arg-type]
        try:
            with Fetcher(settings, tmp_path / cache) as fetcher:
                return fetcher.fetch(url).body
        except FetchError as exc:
            return exc.reason

    with Nginx(site.tree, site.cert, site.cert_key, tmp_path / "mtls",
               client_ca=device_ca.cert_path, access_log=True) as mtls:
        url = mtls.url("/common.toml")
        without = fetch(url, None, "c1")
        rogue = fetch(url, rogue_cert, "c2")
        good = fetch(url, phone_cert, "c3")
        assert logged(mtls, 3) == [("/common.toml", 400), ("/common.toml", 400),
                                   ("/common.toml", 200)]
    assert without == ("the server requires a device certificate (client certificate), and none "
                       "is configured (answered 400 Bad Request: No required SSL certificate was "
                       "sent)")
    assert rogue == ("the server rejected the device certificate (answered 400 Bad Request: The "
                     "SSL certificate error)")
    assert good == (site.tree / "common.toml").read_bytes()
