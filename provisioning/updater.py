"""Firmware updates driven by provisioning, on top of the A/B slots of ``provisioning.firmware``.

At power-on (``FirmwareUpdater.power_on``) the phone repairs what a power cut left, and the
"bootloader" (``Slots.boot``) picks the slot to run: the pending one while it has tries left,
otherwise the active one (a rollback). Once every line is registered the runtime calls
``confirm()``: the new slot becomes the active, good one.

When the provisioned ``[firmware] version`` differs from the running version, ``update()``
downloads the image (``[firmware] url``, relative to the provisioning URL) with the
provisioning server's TLS settings, checks its Ed25519 signature against
``provisioning.trusted_keys``, writes it into the inactive slot and switches to it on the next
boot; the runtime then restarts the phone once no call is going on. A version the phone has
already found bad (it rolled back from it) is not installed again until the site names another.

In the simulator the slots are directories under ``<data-dir>/firmware`` and the running process
keeps running the checked-out code: the slot, its version and the boot counting are real, the
code switch is not. On a device ``Slots`` is the boot-control of U-Boot + RAUC or the
Raspberry Pi's tryboot (``provisioning.firmware``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from firmware.config.schema import FirmwareConfig, ProvisioningConfig
from provisioning.client import ProvisioningFailed, fetch_settings, trusted_keys
from provisioning.fetch import Fetcher, FetchError
from provisioning.firmware import FirmwareError, Slots

log = logging.getLogger("luren.firmware")

SLOTS_DIR = "firmware"
"""The slots' root, relative to the data directory (the simulator's stand-in for partitions)."""


@dataclass(frozen=True)
class UpdateResult:
    """What ``update()`` did: "installed" (restart to run it), "current", "pending",
    "refused" (a version that failed before) or "failed", and the words for it."""

    action: str
    message: str

    @property
    def restart(self) -> bool:
        return self.action == "installed"


class FirmwareUpdater:
    """The phone's two slots: what runs, confirming it, and installing what the site wants."""

    def __init__(self, slots: Slots, running: str, repaired: list[str]) -> None:
        self.slots = slots
        self.running = running  # the slot this boot runs
        self.repaired = repaired
        self.last: UpdateResult | None = None
        self._confirmed = False

    @classmethod
    def power_on(cls, data_dir: Path, max_tries: int = 3) -> FirmwareUpdater:
        """Repair, then boot: the slot to run (counting one try of a pending slot)."""
        slots = Slots(data_dir / SLOTS_DIR, max_tries=max_tries)
        repaired = slots.repair()
        for line in repaired:
            log.warning("firmware: %s", line)
        before = slots.state()
        running = slots.boot()
        after = slots.state()
        if before.pending is not None and after.pending is None:
            log.error("firmware %s did not come up in %d boots: back on %s",
                      before.slots[before.pending].version, max_tries,
                      after.slots[running].version)
        elif after.pending == running:
            log.warning("firmware %s on trial: %d more boots before going back",
                        after.slots[running].version, after.tries_left)
        return cls(slots, running, repaired)

    @property
    def version(self) -> str:
        return self.slots.state().slots[self.running].version

    def confirm(self) -> None:
        """The lines are registered: this firmware is good (once per boot)."""
        if self._confirmed:
            return
        self._confirmed = True
        state = self.slots.state()
        try:
            self.slots.mark_healthy(self.running)
        except FirmwareError as exc:
            log.error("firmware: cannot confirm slot %s: %s", self.running, exc)
            return
        if state.pending == self.running:
            log.info("firmware %s confirmed: lines registered", self.version)

    def status(self) -> dict[str, Any]:
        state = self.slots.state()
        return {
            "running": self.version, "slot": self.running,
            "confirmed": state.pending != self.running,
            "pending": state.pending, "tries_left": state.tries_left,
            "slots": {name: {"version": info.version, "state": info.state}
                      for name, info in state.slots.items()},
            **({"update": {"action": self.last.action, "message": self.last.message}}
               if self.last is not None else {}),
        }

    def update(self, wanted: FirmwareConfig, settings: ProvisioningConfig,
               cache_dir: Path) -> UpdateResult:
        """Bring the slots to `wanted.version` (blocking: run it off the event loop)."""
        self.last = result = self._update(wanted, settings, cache_dir)
        level = logging.ERROR if result.action == "failed" else logging.INFO
        log.log(level, "firmware: %s", result.message)
        return result

    def _update(self, wanted: FirmwareConfig, settings: ProvisioningConfig,
                cache_dir: Path) -> UpdateResult:
        state = self.slots.state()
        version = wanted.version
        if not version or version == self.version:
            return UpdateResult("current", f"running {self.version}")
        if state.pending is not None:
            return UpdateResult("pending", f"{state.slots[state.pending].version} is on trial")
        other = state.slots["b" if state.active == "a" else "a"]
        if other.version == version and other.state == "bad":
            return UpdateResult("refused", f"{version} failed to come up before; waiting for "
                                "the site to name another version")
        if other.version == version and other.state in ("installed", "good"):
            return self._switch(version)
        if not wanted.url:
            return UpdateResult("failed", f"{version} wanted but firmware.url is empty")
        base = settings.url if settings.url.endswith("/") else settings.url + "/"
        url = urljoin(base, wanted.url)
        limit = wanted.max_image_mb * 2**20
        try:
            keys = trusted_keys(settings)
            with Fetcher(fetch_settings(settings, max_bytes=limit,
                                        timeout_s=max(60.0, float(settings.timeout))),
                         cache_dir) as fetcher:
                image = fetcher.fetch(url).body
            info = self.slots.install(image, keys, max_bytes=limit)
        except (FetchError, FirmwareError, ProvisioningFailed, ValueError) as exc:
            return UpdateResult("failed", f"update to {version} failed: {exc}")
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)  # images are not kept twice
        if info.version != version:
            return UpdateResult("failed", f"{url} holds version {info.version}, not {version}; "
                                "it stays in the spare slot, unused")
        return self._switch(version)

    def _switch(self, version: str) -> UpdateResult:
        try:
            self.slots.switch_on_reboot()
        except FirmwareError as exc:
            return UpdateResult("failed", f"update to {version} failed: {exc}")
        return UpdateResult("installed", f"{version} installed; it runs after a restart")
