"""Benchmark: provisioning, phone side and server side.

    .venv/bin/python -m tools.bench.provisioning_bench [--phones 10000] [--runs 20]

Prints:
- the phone's run (fetch 3 files over HTTPS from the lab server + verify Ed25519 + decrypt the
  MAC file + layer + validate), first (cold) and unchanged (ETag 304), p50 of `--runs`;
- the reference server rendering signed files for `--phones` phones (each MAC file encrypted),
  first render and an unchanged re-render;
- the lab HTTPS server answering `--phones` x 3 conditional GETs from 16 concurrent clients
  (requests per second). A fleet serves the tree with nginx or a CDN; this figure is the
  floor that path starts from, not its ceiling.
Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


def raw_b64(pem: Path) -> str:
    key = serialization.load_pem_public_key(pem.read_bytes())
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw,  # type: ignore[union-attr]
                                             serialization.PublicFormat.Raw)).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phones", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
