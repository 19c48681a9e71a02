"""Zero-touch provisioning at start, end to end: the reference server's inventory renders a
signed tree (the MAC file encrypted for the phone), a real HTTPS server on loopback serves it
with a CA the test makes, and a phone whose own config file holds only `[provisioning]` comes up
registered on the line the server gave it. Tampered, unsigned, invalid and unreachable files
leave the last-known-good configuration in use, with the reason on the screen and in the status.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from provisioning.firmware import build_image
from provisioning.pnp import PnpResponder
from provisioning.server.checksync import send_check_sync
from provisioning.server.https import HttpsServer, cert_sha256, make_ca
from provisioning.server.inventory import Inventory
from provisioning.server.redirect import Destinations, RedirectService
from provisioning.server.render import render_tree
from provisioning.signing import (
    device_public_key_from_text,
    encrypt_for_device,
    generate_device_key,
    generate_key,
    load_private_key,
    sign,
)
from tests.e2e.conftest import USERS, wait_registered
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.pbx.sipprobe import sip_request
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneProcess

pytestmark = pytest.mark.e2e

MAC = "02:00:00:00:10:01"
MAC_FILE = "020000001001.toml"


class Site:
    """A provisioning site: signing key, CA, server certificate, inventory and its tree."""

    def __init__(self, root: Path, pbx: Kamailio) -> None:
        self.root = root
        self.tree = root / "tree"
        _, public = generate_key(root / "keys", "site")
        self.key_id, self.key = load_private_key(root / "keys" / "site.key")
        self.public_b64 = _raw_b64(public)
        self.ca = make_ca(root / "ca")
        self.cert, self.cert_key = self.ca.issue(root / "ca", "prov")
        self.inventory = Inventory(root / "inventory.db")
        self.inventory.set_common('[device]\nlanguage = "en"\n[voicemail]\nenabled = false\n')
        self.inventory.set_model_template("sim", '[device]\ntone_country = "se"\n')
        self.registrar = f"127.0.0.1:{pbx.port}"

    def enrol(self, device_key_pub: str, user: str = "1001", name: str = "Anna Berg") -> None:
        self.inventory.add_device(MAC, "sim", name=name, public_key=device_key_pub)
        self.inventory.set_line(MAC, 1, user, USERS[user], display_name=name,
                                registrar=self.registrar)

    def publish(self) -> Any:
        report = render_tree(
            self.inventory, self.tree, signer=lambda body: sign(body, self.key_id, self.key),
            encryptor=lambda body, key: encrypt_for_device(body,
                                                           device_public_key_from_text(key)))
        assert report.ok, report.errors
        return report

    def bootstrap(self, url: str) -> str:
        """The phone's own config file: nothing but where and how to get the rest."""
        return (f'[sip]\nport = 0\nbind_address = "127.0.0.1"\n'
                f"[provisioning]\nurl = {json.dumps(url)}\n"
                f'trusted_keys = ["site={self.public_b64}"]\n'
                f"ca_file = {json.dumps(str(self.ca.cert_path))}\n"
                f'mac = "{MAC}"\nmodel = "sim"\ntimeout = 3\n')


def _raw_b64(public_pem: Path) -> str:
    import base64

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem.read_bytes())
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def device_with_key(workdir: Path) -> str:
    """The phone's provisioning key, made as the factory would; returns its public key."""
    _, public = generate_device_key(workdir / "data" / "provisioning", "device")
    return _raw_b64(public)


@pytest.fixture
def site(tmp_path: Path, pbx: Kamailio) -> Site:
    return Site(tmp_path / "site", pbx)


def start_phone(workdir: Path, config: str, phones: list[PhoneProcess]) -> PhoneProcess:
    phone = PhoneProcess(workdir, config, test_clock=True)
    phones.append(phone)
    return phone.start(timeout=40)


@pytest.fixture
def phones() -> Any:
    started: list[PhoneProcess] = []
    yield started
    for phone in started:
        phone.stop()


def test_a_phone_with_only_a_provisioning_url_comes_up_registered(
        site: Site, tmp_path: Path, phones: list[PhoneProcess]) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    assert b"pw-1001" not in (site.tree / MAC_FILE).read_bytes()  # encrypted for the phone
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        phone = start_phone(workdir, site.bootstrap(server.url("/")), phones)
        wait_registered(phone)
        status = phone.status()
        prov = status["provisioning"]
        assert prov["ok"] and "signed by site" in prov["message"]
        assert sorted(prov["files"]) == ["common", "mac", "model"]
        assert status["lines"][0]["user"] == "1001"
        assert "1001 Anna Berg" in phone.screen_text()
        assert {path for path, _ in server.requests} == {"/common.toml", "/sim.toml",
                                                        f"/{MAC_FILE}"}


@pytest.mark.parametrize("damage", ["tampered", "unsigned", "invalid", "server down"])
def test_bad_files_keep_the_last_known_good_config(
        site: Site, tmp_path: Path, phones: list[PhoneProcess], damage: str) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        url = server.url("/")
        first = start_phone(workdir, site.bootstrap(url), phones)
        wait_registered(first)
        first.stop()
        model_file = site.tree / "sim.toml"
        if damage == "tampered":  # one byte of the signed body changed
            data = bytearray(model_file.read_bytes())
            data[-2] ^= 0x01
            model_file.write_bytes(bytes(data))
        elif damage == "unsigned":
            model_file.write_text('[device]\ntone_country = "de"\n')
        elif damage == "invalid":  # signed, but no valid config
            site.inventory.set_model_template("sim", '[device]\ntone_country = "xx"\n')
            report = render_tree(site.inventory, site.tree,
                                 signer=lambda body: sign(body, site.key_id, site.key),
                                 validate=False)
            assert report.written
        if damage == "server down":
            server.stop()
        again = start_phone(workdir, site.bootstrap(url), phones)
        wait_registered(again)  # on the last-known-good files
        prov = again.status()["provisioning"]
        assert not prov["ok"] and prov["from_cache"]
        expected = {"tampered": "bad signature", "unsigned": "not signed",
                    "invalid": "tone_country", "server down": "refused"}[damage]
        assert expected in prov["message"], prov["message"]
        assert "Provisioning failed" in again.screen_text()
        assert again.status()["lines"][0]["user"] == "1001"


def test_new_files_are_taken_on_live_and_restart_keys_reported(
        site: Site, tmp_path: Path, phones: list[PhoneProcess], pbx: Kamailio) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        bootstrap = site.bootstrap(server.url("/")) + "resync_minutes = 60\n" \
            "resync_spread_minutes = 0\n"
        phone = start_phone(workdir, bootstrap, phones)
        wait_registered(phone)
        assert phone.status()["device"]["language"] == "en"
        # The site turns Swedish, adds a BLF key (live), moves the line to another user
        # (registers again, live) and lowers the call limit (a restart).
        site.inventory.set_common('[device]\nlanguage = "sv"\nmax_calls = 3\n'
                                  '[voicemail]\nenabled = false\n'
                                  '[[blf]]\nkey = "line2"\nuser = "1003"\n')
        site.inventory.set_line(MAC, 1, "1004", USERS["1004"], display_name="Anna B",
                                registrar=site.registrar)
        site.publish()
        answer = phone.request("POST", "/api/v1/provision")["provisioning"]
        assert answer["ok"] and answer["changed"]
        assert answer["restart_needed"] == ["device.max_calls"]
        assert phone.status()["device"]["language"] == "sv"
        phone.wait_status(lambda s: s["lines"][0]["user"] == "1004"
                          and s["lines"][0]["registered"], 10, "the line to register as 1004")
        wait_until(lambda: pbx.registered_contacts("1004") and not pbx.registered_contacts(
            "1001"), 10, 0.1, "the PBX to have 1004 and no longer 1001")
        assert phone.status()["lines"][0]["registered"]  # the old one's end is not the line's
        phone.wait_status(lambda s: s["blf"].get("1003", {}).get("state") == "idle", 10,
                          "the new BLF key to watch 1003")
        phone.wait_screen(lambda t: re.search(r"(mån|tis|ons|tor|fre|lör|sön) \d+ [a-zä]{3}",
                                              t) is not None, 5, "the date in Swedish")
        # and by itself, on the resync timer: a changed tone country
        site.inventory.set_model_template("sim", '[device]\ntone_country = "de"\n')
        site.publish()
        seen = len(server.requests)
        phone.advance(61 * 60)
        phone.wait_status(lambda s: s["provisioning"]["files"]["model"] != answer["files"]
                          ["model"], 20, "the resync to take the new model file")
        assert len(server.requests) > seen


def test_plug_and_play_finds_the_server_and_the_url_is_kept(
        site: Site, tmp_path: Path, phones: list[PhoneProcess]) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    group = ("224.0.1.75", free_port())
    with HttpsServer(site.tree, site.cert, site.cert_key) as server, \
            PnpResponder(lambda mac, model: server.url("/"), group=group) as responder:
        bootstrap = _discovering(site, f'discovery = ["dhcp", "pnp"]\n'
                                       f'dhcp_leases = ["{tmp_path}/no-lease-*"]\n'
                                       f'pnp_group = "{group[0]}:{group[1]}"\n'
                                       f'pnp_interface = "127.0.0.1"\npnp_timeout = 3\n')
        phone = start_phone(workdir, bootstrap, phones)
        wait_registered(phone)
        assert phone.status()["provisioning"]["url"] == server.url("/")
        assert responder.requests == [("020000001001", "sim")]
        phone.stop()
        responder.stop()  # the next start needs no plug-and-play: the URL was kept
        again = start_phone(workdir, bootstrap, phones)
        wait_registered(again)
        prov = again.status()["provisioning"]
        assert prov["ok"] and prov["url"] == server.url("/") and not prov["from_cache"]
        assert responder.requests == [("020000001001", "sim")]


def test_dhcp_option_114_finds_the_server(site: Site, tmp_path: Path,
                                          phones: list[PhoneProcess]) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        lease = tmp_path / "dhcp.json"  # what a DHCP client hook writes
        lease.write_text(json.dumps({"114": server.url("/"), "60": "luren"}))
        bootstrap = _discovering(site, f'discovery = ["dhcp"]\ndhcp_leases = ["{lease}"]\n')
        phone = start_phone(workdir, bootstrap, phones)
        wait_registered(phone)
        assert phone.status()["provisioning"]["url"] == server.url("/")
        found = json.loads((workdir / "data" / "provisioning" / "found.json").read_text())
        assert found["url"] == server.url("/") and "114" in found["source"]


def _discovering(site: Site, discovery: str) -> str:
    """The phone's own file without a URL: it must find the server."""
    return (f'[sip]\nport = 0\nbind_address = "127.0.0.1"\n'
            f'[provisioning]\ntrusted_keys = ["site={site.public_b64}"]\n'
            f"ca_file = {json.dumps(str(site.ca.cert_path))}\n"
            f'mac = "{MAC}"\nmodel = "sim"\ntimeout = 3\n' + discovery)


def test_check_sync_from_the_registrar_fetches_now_and_a_stranger_is_ignored(
        site: Site, tmp_path: Path, phones: list[PhoneProcess], pbx: Kamailio) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        phone = start_phone(workdir, site.bootstrap(server.url("/")), phones)
        wait_registered(phone)
        site.inventory.set_common('[device]\nlanguage = "sv"\n[voicemail]\nenabled = false\n')
        site.publish()
        fetched = len(server.requests)
        # A stranger straight at the phone's SIP port: no answer, nothing fetched.
        with pytest.raises(TimeoutError):
            sip_request(phone.sip_port, "NOTIFY", f"sip:1001@127.0.0.1:{phone.sip_port}",
                        extra_headers={"Event": "check-sync"}, timeout=1.5)
        # Through the PBX, over the phone's registration: answered by the phone, and fetched.
        result = send_check_sync(("127.0.0.1", pbx.port), "1001", pbx.address)
        assert result.status == 200, result
        phone.wait_status(lambda s: s["device"]["language"] == "sv", 15,
                          "the check-sync to take the new common file")
        prov = phone.status()["provisioning"]
        assert prov["check_sync"]["from"] == f"UDP 127.0.0.1:{pbx.port}"
        assert not prov["check_sync"]["reboot"]
        assert len(server.requests) == fetched + 3  # the stranger fetched nothing
        assert "ignored: not the registrar or outbound proxy" in phone.log_tail(400)
        # Nobody registered as 1002: the PBX says so.
        assert send_check_sync(("127.0.0.1", pbx.port), "1002", pbx.address).status == 404


def test_check_sync_reboot_only_when_allowed(
        site: Site, tmp_path: Path, phones: list[PhoneProcess], pbx: Kamailio) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        phone = start_phone(workdir, site.bootstrap(server.url("/")), phones)
        wait_registered(phone)
        assert send_check_sync(("127.0.0.1", pbx.port), "1001", pbx.address,
                               reboot=True).ok
        phone.wait_status(lambda s: "check_sync" in s["provisioning"], 15, "the check-sync")
        assert "not allowed (provisioning.check_sync_reboot is off)" in phone.log_tail(400)
        assert phone.boot_id == json.loads(
            (workdir / "data" / "run" / "ready.json").read_text())["boot_id"]
        phone.stop()
        allowed = start_phone(workdir, site.bootstrap(server.url("/"))
                              + "check_sync_reboot = true\n", phones)
        wait_registered(allowed)
        pid = allowed.pid
        assert send_check_sync(("127.0.0.1", pbx.port), "1001", pbx.address,
                               reboot=True).ok
        allowed.wait_restarted(40)
        assert allowed.pid == pid and allowed.process.running()
        wait_registered(allowed)
        assert "restarting: check-sync from UDP" in allowed.log_tail(400)


def test_the_redirect_service_sends_a_new_phone_to_its_server(
        site: Site, tmp_path: Path, phones: list[PhoneProcess]) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    factory = make_ca(tmp_path / "factory", name="factory")  # the device certificates' CA
    cert, key = factory.issue(tmp_path / "factory", "phone", server=False)
    site.inventory.update_device(MAC, cert_sha256=cert_sha256(cert))
    site.publish()
    with HttpsServer(site.tree, site.cert, site.cert_key) as server, \
            RedirectService(site.inventory.path, Destinations(server.url("/")),
                            cert=site.cert, key=site.cert_key,
                            device_ca=factory.cert_path) as redirect:
        bootstrap = _discovering(site, f'discovery = ["dhcp", "redirect"]\n'
                                       f'dhcp_leases = ["{tmp_path}/no-lease-*"]\n'
                                       f'redirect_url = "{redirect.url("/")}"\n'
                                       f'redirect_ca_file = "{site.ca.cert_path}"\n'
                                       f'client_cert = "{cert}"\nclient_key = "{key}"\n')
        phone = start_phone(workdir, bootstrap, phones)
        wait_registered(phone)
        prov = phone.status()["provisioning"]
        assert prov["ok"] and prov["url"] == server.url("/")
        found = json.loads((workdir / "data" / "provisioning" / "found.json").read_text())
        assert found["source"] == f"redirect service {redirect.url('/')}"
        assert [path for path, _ in redirect.server.requests] == [
            "/redirect/v1/020000001001"]


def _publish_firmware(site: Site, tmp_path: Path, version: str) -> None:
    """A signed image of `version` in the tree, and the common layer asking for it."""
    source = tmp_path / f"fw-{version}"
    (source / "lib").mkdir(parents=True)
    (source / "lib" / "phone.py").write_text(f"VERSION = {version!r}\n")
    (site.tree / "firmware").mkdir(parents=True, exist_ok=True)
    (site.tree / "firmware" / f"luren-{version}.img").write_bytes(
        build_image(source, version, site.key_id, site.key))
    site.inventory.set_common('[device]\nlanguage = "en"\n[voicemail]\nenabled = false\n'
                              f'[firmware]\nversion = "{version}"\n'
                              f'url = "firmware/luren-{version}.img"\n')
    site.publish()


def test_firmware_update_from_provisioning_is_confirmed_or_rolled_back(
        site: Site, tmp_path: Path, phones: list[PhoneProcess], pbx: Kamailio) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    _publish_firmware(site, tmp_path, "1.1.0")
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        phone = start_phone(workdir, site.bootstrap(server.url("/")), phones)
        phone.wait_restarted(40)  # installed into slot b, then restarted into it
        wait_registered(phone)
        firmware = phone.wait_status(lambda s: s["firmware"]["confirmed"] and s["firmware"], 10,
                                     "the new firmware to be confirmed")
        assert (firmware["running"], firmware["slot"]) == ("1.1.0", "b")
        assert firmware["slots"]["a"]["version"] == "0.0.0-factory"
        assert (workdir / "data" / "firmware" / "slots" / "b" / "lib" / "phone.py").is_file()
        # 1.2.0 never gets its line registered: after 3 boots the phone goes back to 1.1.0.
        _publish_firmware(site, tmp_path, "1.2.0")
        pbx.stop()
        phone.request("POST", "/api/v1/provision")
        phone.wait_restarted(40)
        assert phone.status()["firmware"]["running"] == "1.2.0"
        for _ in range(2):  # two more power cuts before it ever registers
            phone.stop()
            phone = start_phone(workdir, site.bootstrap(server.url("/")), phones)
            assert phone.status()["firmware"]["running"] == "1.2.0"
        phone.stop()
        phone = start_phone(workdir, site.bootstrap(server.url("/")), phones)
        firmware = phone.wait_status(lambda s: s["firmware"].get("update") and s["firmware"],
                                     15, "the update check after the rollback")
        assert (firmware["running"], firmware["slot"]) == ("1.1.0", "b")
        assert firmware["slots"]["a"] == {"version": "1.2.0", "state": "bad"}
        assert firmware["update"]["action"] == "refused"
        assert "did not come up in 3 boots" in phone.log_tail(400)


def test_a_factory_phone_waits_for_its_server_and_then_comes_up(
        site: Site, tmp_path: Path, phones: list[PhoneProcess]) -> None:
    workdir = tmp_path / "phone"
    site.enrol(device_with_key(workdir))
    site.publish()
    lease = tmp_path / "dhcp.json"  # no DHCP answer with a provisioning option yet
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        phone = start_phone(workdir, _discovering(
            site, f'discovery = ["dhcp"]\ndhcp_leases = ["{lease}"]\n'), phones)
        phone.wait_screen(lambda t: "Ingen linje" in t and "Väntar på konfig" in t, 5,
                          "the phone to say it waits for its config")
        status = phone.status()
        assert status["lines"] == [] and not status["provisioning"]["ok"]
        assert "no provisioning server found" in status["provisioning"]["message"]
        lease.write_text(json.dumps({"114": server.url("/"), "60": "luren"}))
        phone.advance(61)  # the next look
        phone.wait_restarted(30)
        wait_registered(phone)
        prov = phone.status()["provisioning"]
        assert prov["ok"] and prov["url"] == server.url("/")
        assert phone.status()["lines"][0]["user"] == "1001"
