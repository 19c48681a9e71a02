"""Benchmark: provisioning, phone side and server side.

    .venv/bin/python -m tools.bench.provisioning_bench [--phones 10000] [--runs 20] \
        [--starts 5] [--skip-start]

Prints:
- the phone's run (fetch 3 files over HTTPS from the lab server + verify Ed25519 + decrypt the
  MAC file + layer + validate), first (cold) and unchanged (ETag 304), p50 of `--runs`;
- the reference server rendering signed files for `--phones` phones (each MAC file encrypted),
  first render and an unchanged re-render;
- the lab HTTPS server answering `--phones` x 3 conditional GETs from 16 concurrent clients
  (requests per second). A fleet serves the tree with nginx or a CDN; this figure is the
  floor that path starts from, not its ceiling;
- start to registered, beside baresip in the same run at the same local Kamailio: a `luren run`
  process whose own config holds only `[provisioning]` (zero touch: 3 signed files over HTTPS,
  its MAC file decrypted, validated, then pjsua2 started and the line registered), from process
  start until its status shows line 1 registered, over `--starts` fresh processes on one data
  dir: the first (cold, empty cache) apart, the median of the others (ETag 304s); and baresip
  with its static config, from process start to REGISTER_OK, median of `--starts`. Leave this
  section out with `--skip-start`.
Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization

from provisioning.client import ProvisioningClient
from provisioning.server.https import HttpsServer, make_ca
from provisioning.server.inventory import Inventory
from provisioning.server.render import render_tree
from provisioning.signing import (
    device_public_key_from_text,
    encrypt_for_device,
    generate_device_key,
    generate_key,
    load_private_key,
    sign,
)
from tests.harness.baresip import Baresip
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.phoneproc import PhoneProcess

START_USERS = {"1001": "start-1001", "1002": "start-1002"}  # luren, baresip
START_MAC = "02:00:00:00:10:01"


def raw_b64(pem: Path) -> str:
    key = serialization.load_pem_public_key(pem.read_bytes())
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw,  # type: ignore[union-attr]
                                             serialization.PublicFormat.Raw)).decode()


@dataclass(frozen=True)
class StartSite:
    """A one-phone provisioning site for the start section: its signed tree and TLS files."""

    tree: Path
    ca_file: Path
    cert: Path
    cert_key: Path
    trusted_key: str  # "site=<raw Ed25519 public key, base64>"

    def bootstrap(self, url: str) -> str:
        """The phone's own config file: nothing but where and how to get the rest."""
        return (f'[sip]\nport = 0\nbind_address = "127.0.0.1"\n'
                f"[provisioning]\nurl = {json.dumps(url)}\n"
                f"trusted_keys = {json.dumps([self.trusted_key])}\n"
                f"ca_file = {json.dumps(str(self.ca_file))}\n"
                f'mac = "{START_MAC}"\nmodel = "sim"\ntimeout = 3\n')


def publish_start_site(root: Path, device_key: str, registrar: str) -> StartSite:
    """Keys, CA, server certificate and a signed tree giving the phone line 1 = user 1001."""
    _, public = generate_key(root / "keys", "site")
    key_id, key = load_private_key(root / "keys" / "site.key")
    ca = make_ca(root / "ca")
    cert, cert_key = ca.issue(root / "ca", "prov")
    inventory = Inventory(root / "inventory.db")
    inventory.set_common('[device]\nlanguage = "en"\n[voicemail]\nenabled = false\n')
    inventory.set_model_template("sim", '[device]\ntone_country = "se"\n')
    inventory.add_device(START_MAC, "sim", name="Bench", public_key=device_key)
    inventory.set_line(START_MAC, 1, "1001", START_USERS["1001"], display_name="Bench",
                       registrar=registrar)
    report = render_tree(
        inventory, root / "tree", signer=lambda body: sign(body, key_id, key),
        encryptor=lambda body, text: encrypt_for_device(body, device_public_key_from_text(text)))
    inventory.close()
    assert report.ok, report.errors
    return StartSite(root / "tree", ca.cert_path, cert, cert_key, f"site={raw_b64(public)}")


def time_luren_start(workdir: Path, config: str) -> float:
    """Seconds from launching a fresh `luren run` until its line 1 shows registered; stopped."""
    phone = PhoneProcess(workdir, config, test_clock=True)
    begin = time.perf_counter()
    try:
        phone.start(timeout=40)
        phone.wait_status(lambda s: s["lines"] and s["lines"][0]["registered"], 20,
                          "line 1 to register")
        return time.perf_counter() - begin
    finally:
        phone.stop()


def luren_starts(root: Path, registrar: str, starts: int) -> list[float]:
    """`starts` timed starts of one zero-touch phone on one data dir: the first cold (3 x 200),
    the others on the ETag cache (3 x 304)."""
    workdir = root / "phone"
    _, device_pub = generate_device_key(workdir / "data" / "provisioning", "device")
    site = publish_start_site(root / "site", raw_b64(device_pub), registrar)
    seconds = []
    with HttpsServer(site.tree, site.cert, site.cert_key) as server:
        config = site.bootstrap(server.url("/"))
        for n in range(starts):
            answered = len(server.statuses)
            seconds.append(time_luren_start(workdir, config))
            codes = sorted(code for _, code in server.statuses[answered:])
            assert codes == [304 if n else 200] * 3, f"start {n + 1}: answers {codes}"
    return seconds


def time_baresip_start(workdir: Path, pbx_port: int) -> float:
    """Seconds from launching a fresh baresip (user 1002) until REGISTER_OK; stopped."""
    agent = Baresip(workdir, "1002", START_USERS["1002"], pbx_port)
    begin = time.perf_counter()
    try:
        agent.start()
        agent.wait_registered(10)
        return time.perf_counter() - begin
    finally:
        agent.stop()


def start_to_registered(root: Path, starts: int) -> str:
    """The start section's line: luren provisioned and baresip, at one Kamailio."""
    with Kamailio(root / "pbx", START_USERS, port=free_port(), capture=False) as pbx:
        luren = luren_starts(root / "luren", f"127.0.0.1:{pbx.port}", starts)
        peer = [time_baresip_start(root / "baresip", pbx.port) for _ in range(starts)]
    return (f"start to registered: luren (provisioned, cold) {luren[0]:.2f} s, "
            f"luren (provisioned, cached) {statistics.median(luren[1:]):.2f} s median of "
            f"{starts - 1}; baresip (static config) {statistics.median(peer):.2f} s median of "
            f"{starts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phones", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--starts", type=int, default=5,
                        help="process starts per side in the start section (at least 2)")
    parser.add_argument("--skip-start", action="store_true",
                        help="leave out the start-to-registered section")
    args = parser.parse_args()
    if args.starts < 2:
        parser.error("--starts must be at least 2: one cold start and one cached")
    with tempfile.TemporaryDirectory(prefix="luren-prov-bench-") as tmp:
        root = Path(tmp)
        _, site_pub = generate_key(root / "keys", "site")
        key_id, key = load_private_key(root / "keys" / "site.key")
        ca = make_ca(root / "ca")
        cert, cert_key = ca.issue(root / "ca", "prov")
        phone_dir = root / "phone"
        _, device_pub = generate_device_key(phone_dir / "provisioning", "device")
        inventory = Inventory(root / "inventory.db")
        inventory.set_common('[device]\nlanguage = "sv"\n')
        inventory.set_model_template("sim", '[device]\ntone_country = "se"\n')
        device_key = raw_b64(device_pub)
        start = time.perf_counter()
        for n in range(args.phones):
            mac = f"02{n:010x}"
            inventory.add_device(mac, "sim", name=f"Phone {n}", public_key=device_key)
            inventory.set_line(mac, 1, f"{10000 + n}", f"pw-{n}", display_name=f"Phone {n}",
                               registrar="pbx.example.se")
        print(f"inventory: {args.phones} phones added in {time.perf_counter() - start:.1f} s")

        def render() -> float:
            begin = time.perf_counter()
            report = render_tree(
                inventory, root / "tree", signer=lambda body: sign(body, key_id, key),
                encryptor=lambda body, text: encrypt_for_device(
                    body, device_public_key_from_text(text)))
            assert report.ok, report.errors
            return time.perf_counter() - begin

        print(f"render {args.phones} phones, signed, MAC files encrypted: first "
              f"{render():.1f} s, unchanged {render():.1f} s")
        with HttpsServer(root / "tree", cert, cert_key) as server:
            bootstrap = {"sip": {"port": 0}, "provisioning": {
                "url": server.url("/"), "trusted_keys": [f"site={raw_b64(site_pub)}"],
                "ca_file": str(ca.cert_path), "mac": "020000000000", "model": "sim"}}
            client = ProvisioningClient(phone_dir, model="sim", mac="020000000000")
            begin = time.perf_counter()
            client.run(bootstrap)
            cold = time.perf_counter() - begin
            warm = []
            for _ in range(args.runs):
                begin = time.perf_counter()
                _, outcome = client.run(bootstrap)
                warm.append(time.perf_counter() - begin)
                assert outcome.ok
            print(f"phone: fetch + verify + decrypt + layer + validate: first "
                  f"{cold * 1000:.0f} ms, unchanged (304) p50 "
                  f"{statistics.median(warm) * 1000:.0f} ms over {args.runs} runs")
            names = ["common.toml", "sim.toml"]
            urls = [server.url(f"/{names[i % 2]}") if i % 3 != 2 else
                    server.url(f"/02{i // 3:010x}.toml") for i in range(args.phones * 3)]

            def get(chunk: list[str]) -> int:
                with httpx.Client(verify=str(ca.cert_path)) as http:
                    return sum(http.get(url).status_code == 200 for url in chunk)

            chunks = [urls[i::16] for i in range(16)]
            begin = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                ok = sum(pool.map(get, chunks))
            seconds = time.perf_counter() - begin
            print(f"lab HTTPS server: {len(urls)} GETs ({args.phones} phones x 3 files, 16 "
                  f"clients, keep-alive): {seconds:.1f} s, {len(urls) / seconds:.0f} requests/s, "
                  f"{ok} answered 200")
        inventory.close()
        if not args.skip_start:
            print(start_to_registered(root / "start", args.starts))


if __name__ == "__main__":
    main()
