"""The simulated office's provisioning site: its phones get their lines zero touch.

At start the office makes a signing key, a CA and a server certificate, fills a fresh
inventory of the reference server (`provisioning.server`) with its phones, renders the signed
tree (each phone's MAC file encrypted for that phone's own key) and serves it over HTTPS on
127.0.0.1. Each phone starts from a config file holding only where to fetch the rest and which
key and CA to trust (docs/provisioning.md, docs/office.md).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

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

log = logging.getLogger("luren.office")

MODEL = "sim"
MODELS = ("sim", "dect-base")  # the desk phones' and the DECT base's
COMMON = '[device]\nlanguage = "sv"\ntime_zone = "Europe/Stockholm"\n'
MODEL_TEMPLATE = '[device]\ntone_country = "se"\n'


def raw_public_key(pem: bytes) -> str:
    """Base64 of a PEM public key's raw 32 bytes (Ed25519 or X25519)."""
    key = serialization.load_pem_public_key(pem)
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw,  # type: ignore[union-attr]
                                             serialization.PublicFormat.Raw)).decode()


class OfficeSite:
    """Keys, CA, inventory, the rendered tree and its HTTPS server, under `root`."""

    def __init__(self, root: Path, registrar: str) -> None:
        self.root = root
        self.tree = root / "tree"
        self.registrar = registrar
        self.server: HttpsServer | None = None
        self._keys = root / "keys"
        if not (self._keys / "site.key").exists():
            generate_key(self._keys, "site")
        self.key_id, self._key = load_private_key(self._keys / "site.key")
        self.public_key = raw_public_key((self._keys / "site.pub").read_bytes())
        self.ca = make_ca(root / "ca")  # a day's certificates: new ones each start
        self._cert, self._cert_key = self.ca.issue(root / "ca", "prov")
        (root / "inventory.db").unlink(missing_ok=True)  # the office's passwords are new too
        self.inventory = Inventory(root / "inventory.db")
        self.inventory.set_common(COMMON)
        for model in MODELS:
            self.inventory.set_model_template(model, MODEL_TEMPLATE)
        self._models: dict[str, str] = {}  # MAC -> model

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url("/")

    def enrol(self, mac: str, name: str, user: str, password: str, data_dir: Path,
              model: str = MODEL) -> None:
        """Add a phone, its key made in its data dir as a factory would (kept across runs)."""
        keys = data_dir / "provisioning"
        if not (keys / "device.pub").exists():
            generate_device_key(keys, "device")
        public = raw_public_key((keys / "device.pub").read_bytes())
        self.inventory.add_device(mac, model, name=name, public_key=public)
        self._models[mac] = model
        self.inventory.set_line(mac, 1, user, password, display_name=name,
                                registrar=self.registrar)

    def start(self) -> OfficeSite:
        """Render the tree and serve it."""
        report = render_tree(
            self.inventory, self.tree, signer=lambda body: sign(body, self.key_id, self._key),
            encryptor=lambda body, key: encrypt_for_device(body,
                                                           device_public_key_from_text(key)))
        if not report.ok:
            raise RuntimeError(f"the office's provisioning files did not render: {report.errors}")
        self.server = HttpsServer(self.tree, self._cert, self._cert_key).start()
        log.info("provisioning files for %d phones served on %s", len(self.inventory.devices()),
                 self.url)
        return self

    def bootstrap(self, mac: str) -> str:
        """A phone's own config: where its files are, and what to trust."""
        return (f"[provisioning]\nurl = {json.dumps(self.url)}\n"
                f'trusted_keys = ["{self.key_id}={self.public_key}"]\n'
                f"ca_file = {json.dumps(str(self.ca.cert_path))}\n"
                f'mac = "{mac}"\nmodel = "{self._models.get(mac, MODEL)}"\n')

    def describe(self) -> dict[str, Any]:
        return {"url": self.url if self.server else "", "tree": str(self.tree),
                "inventory": str(self.root / "inventory.db"), "ca": str(self.ca.cert_path)}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.inventory.close()
