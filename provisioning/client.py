"""The phone side of provisioning: fetch, verify, decrypt, layer, validate, keep.

At start the phone reads its own config file (the *bootstrap*: what the factory or a technician
left there, with `[provisioning]`), then, if a URL is set, fetches up to three files from that
folder: `common.toml`, `<model>.toml` and `<mac>.toml` (a missing one, 404, is simply not
there). Each is checked in this order, and the first problem stops the run:

1. fetched over HTTPS with the configured trust (`provisioning.fetch`);
2. its Ed25519 signature verified against `trusted_keys` (`provisioning.signing`); with
   `require_signature` (the default) an unsigned or tampered file is refused;
3. decrypted with this phone's own X25519 key when it is encrypted for it (the reference server
   encrypts every file carrying SIP passwords); the key is made at first start in
   `<data>/provisioning/device.key` and its public half is shown in the status for enrolment;
4. layered: bootstrap < common < model < mac (`provisioning.layers`);
5. validated against the one config schema: an invalid result is refused with the key path and
   the reason, and the last-known-good files stay in use.

Only a complete, valid set is kept, as the last-known-good: the verified files are written to
`<data>/provisioning/good/` (each write atomic) with a small state file, and used at the next
start whenever the server cannot be reached. The outcome is reported as plain data for the
screen, the control API and the console.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from firmware.config import ConfigError, PhoneConfig, parse_config
from firmware.config.load import parse_table
from firmware.config.schema import ProvisioningConfig
from firmware.storage import atomic_write, atomic_write_json
from provisioning.fetch import Fetcher, FetchError, FetchSettings
from provisioning.layers import LayerError, merge_layers, parse_layer
from provisioning.signing import (
    SignatureError,
    decrypt_for_device,
    generate_device_key,
    is_encrypted,
    is_signed,
    load_device_private_key,
    public_key_from_text,
    verify,
)

log = logging.getLogger("luren.provisioning")

LAYERS = ("common", "model", "mac")
_NOT_FOUND = "answered 404"


@dataclass(frozen=True)
class Outcome:
    """What the last provisioning run did, for the screen, the API and the console."""

    ok: bool
    url: str
    message: str  # "provisioned: common, model, mac (signed by site)" or what went wrong
    files: dict[str, str] = field(default_factory=dict)  # layer -> sha256 of the verified file
    changed: bool = False
    from_cache: bool = False  # the server was not reached: the last-known-good files are used
    at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "url": self.url, "message": self.message, "files": self.files,
                "changed": self.changed, "from_cache": self.from_cache, "at": self.at}


class ProvisioningFailed(Exception):
    """One file could not be used; the message names the file and the reason."""


def normalise_mac(text: str) -> str:
    """12 lowercase hex digits from any usual spelling; ValueError otherwise."""
    mac = re.sub(r"[\s:.-]", "", text).lower()
    if not re.fullmatch(r"[0-9a-f]{12}", mac):
        raise ValueError(f"{text!r} is not a MAC address")
    return mac


def interface_mac(sys_net: Path = Path("/sys/class/net")) -> str:
    """The MAC of the first network interface with one (loopback excluded), or ""."""
    for iface in sorted(sys_net.glob("*")):
        try:
            mac = normalise_mac((iface / "address").read_text().strip())
        except (OSError, ValueError):
            continue
        if iface.name != "lo" and mac != "000000000000":
            return mac
    return ""


class ProvisioningClient:
    """Provisioning for one phone; `run()` at start (and later on resync)."""

    def __init__(self, data_dir: Path, *, model: str, mac: str) -> None:
        self.dir = data_dir / "provisioning"
        self.model = model
        self.mac = mac
        self._good = self.dir / "good"
        self._device_key: X25519PrivateKey | None = None
        self.signed_by: set[str] = set()  # key ids of the files last composed
        self.locked: frozenset[str] = frozenset()  # keys the user may not change (lock lists)
        self.reset: frozenset[str] = frozenset()  # the user's values to drop (reset lists)

    # -- this phone's key ---------------------------------------------------------------
    def device_key(self) -> X25519PrivateKey:
        """The phone's X25519 key for files encrypted to it, made at first use."""
        if self._device_key is None:
            path = self.dir / "device.key"
            if not path.exists():
                generate_device_key(self.dir, "device")
                log.info("made this phone's provisioning key %s", path)
            self._device_key = load_device_private_key(path)
        return self._device_key

    def device_public_key(self) -> str:
        """Base64 of the raw 32-byte public key: what the server's inventory needs."""
        raw = self.device_key().public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    # -- a run ----------------------------------------------------------------------------
    @staticmethod
    def settings(bootstrap: dict[str, Any]) -> ProvisioningConfig:
        """The phone's own `[provisioning]` (ConfigError when invalid)."""
        return parse_table(ProvisioningConfig, bootstrap.get("provisioning", {}),
                           "provisioning")

    def run(self, bootstrap: dict[str, Any]) -> tuple[PhoneConfig, Outcome]:
        """The config to run on, and what happened. Raises ConfigError only when neither the
        provisioned result nor the last-known-good one nor the bootstrap alone is valid."""
        settings = self.settings(bootstrap)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if not settings.url:
            return parse_config(bootstrap), Outcome(True, "", "not provisioned (no URL)", at=now)
        url = settings.url if settings.url.endswith("/") else settings.url + "/"
        try:
            files = self._fetch_all(url, settings)
            config = self._compose(bootstrap, files, settings)
        except (ProvisioningFailed, ConfigError) as exc:
            message = f"provisioning failed: {exc}"
            log.error("%s", message)
            return self._fall_back(bootstrap, url, message, now)
        digests = {layer: _sha256(body) for layer, body in files.items()}
        changed = digests != self._good_digests()
        if changed:
            self._keep(files, url, now)
        keys = sorted(self.signed_by)
        note = f" (signed by {', '.join(keys)})" if keys else " (unsigned)"
        message = f"provisioned from {url}: {', '.join(files) or 'no files'}{note}"
        log.info("%s%s", message, "" if changed else ", unchanged")
        return config, Outcome(True, url, message, digests, changed, at=now)

    def _fetch_all(self, url: str, settings: ProvisioningConfig) -> dict[str, bytes]:
        names = {"common": "common.toml", "model": f"{self.model}.toml",
                 "mac": f"{self.mac}.toml" if self.mac else ""}
        files: dict[str, bytes] = {}
        with Fetcher(fetch_settings(settings), self.dir / "cache") as fetcher:
            for layer in LAYERS:
                if not names[layer]:
                    continue
                try:
                    result = fetcher.fetch(url + names[layer])
                except FetchError as exc:
                    if exc.reason.startswith(_NOT_FOUND):
                        log.info("no %s file (%s)", layer, names[layer])
                        continue
                    raise ProvisioningFailed(str(exc)) from None
                files[layer] = result.body
        if not files:
            wanted = ", ".join(name for name in names.values() if name)
            raise ProvisioningFailed(f"{url} has none of {wanted}")
        return files

    def _compose(self, bootstrap: dict[str, Any], files: Mapping[str, bytes],
                 settings: ProvisioningConfig) -> PhoneConfig:
        trusted = trusted_keys(settings)
        self.signed_by = set()
        layers: list[tuple[str, dict[str, Any]]] = [("bootstrap", bootstrap)]
        for layer, data in files.items():
            key_id, body = self._open(layer, data, trusted, settings.require_signature)
            if key_id:
                self.signed_by.add(key_id)
            try:
                layers.append((layer, parse_layer(layer, body.decode("utf-8"))))
            except (LayerError, UnicodeDecodeError) as exc:
                raise ProvisioningFailed(f"{layer} file: {exc}") from None
        try:
            merged = merge_layers(layers)
        except LayerError as exc:
            raise ProvisioningFailed(str(exc)) from None
        self.locked, self.reset = merged.locked, merged.reset
        return parse_config(merged.config, "the provisioned configuration")

    def _open(self, layer: str, data: bytes, trusted: Mapping[str, Any],
              required: bool) -> tuple[str, bytes]:
        """Verify, then decrypt: (the signing key id or "", the body); ProvisioningFailed
        naming the file otherwise."""
        key_id = ""
        try:
            if required or is_signed(data):
                key_id, body = verify(data, trusted)
            else:
                body = data
            if is_encrypted(body):
                body = decrypt_for_device(body, self.device_key())
        except SignatureError as exc:
            raise ProvisioningFailed(f"{layer} file refused: {exc}") from None
        return key_id, body

    # -- last known good ------------------------------------------------------------------
    def _keep(self, files: Mapping[str, bytes], url: str, now: str) -> None:
        for layer in LAYERS:
            path = self._good / f"{layer}.signed"
            if layer in files:
                atomic_write(path, files[layer])
            else:
                path.unlink(missing_ok=True)
        atomic_write_json(self._good / "state.json", {
            "url": url, "at": now, "files": {k: _sha256(v) for k, v in files.items()}})

    def _good_files(self) -> dict[str, bytes]:
        files = {}
        for layer in LAYERS:
            path = self._good / f"{layer}.signed"
            if path.is_file():
                files[layer] = path.read_bytes()
        return files

    def _good_digests(self) -> dict[str, str]:
        return {layer: _sha256(body) for layer, body in self._good_files().items()}

    def _fall_back(self, bootstrap: dict[str, Any], url: str, message: str,
                   now: str) -> tuple[PhoneConfig, Outcome]:
        files = self._good_files()
        if files:
            settings = self.settings(bootstrap)
            try:
                config = self._compose(bootstrap, files, settings)
            except (ProvisioningFailed, ConfigError) as exc:
                log.error("the last-known-good provisioning files are unusable too: %s", exc)
            else:
                log.warning("running on the last-known-good provisioning files")
                return config, Outcome(False, url, message,
                                       {k: _sha256(v) for k, v in files.items()},
                                       from_cache=True, at=now)
        return parse_config(bootstrap), Outcome(False, url, message, at=now)


def fetch_settings(settings: ProvisioningConfig, **changes: Any) -> FetchSettings:
    """How to reach the provisioning server, from `[provisioning]` (`changes` on top)."""
    return FetchSettings(**{
        "ca_file": Path(settings.ca_file) if settings.ca_file else None,
        "pin_sha256": frozenset(p.replace(":", "").lower() for p in settings.pin_sha256),
        "client_cert": Path(settings.client_cert) if settings.client_cert else None,
        "client_key": Path(settings.client_key) if settings.client_key else None,
        "username": settings.username, "password": settings.password,
        "timeout_s": float(settings.timeout), "allow_http": settings.allow_http, **changes})


def trusted_keys(settings: ProvisioningConfig) -> dict[str, Any]:
    keys = {}
    for entry in settings.trusted_keys:
        key_id, _, text = entry.partition("=")
        try:
            keys[key_id] = public_key_from_text(key_id, text.strip())
        except SignatureError as exc:
            raise ProvisioningFailed(f"provisioning.trusted_keys: {exc}") from None
    return keys


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
