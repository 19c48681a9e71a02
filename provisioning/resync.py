"""Provisioning while the phone runs: periodic resync, and "run now" (API, console).

Every `resync_minutes` plus a random part of `resync_spread_minutes` (so a fleet restarted
together does not ask the server at the same moment) the client runs again in a worker thread;
after a failed run sooner (1 min, doubling to 15 min), so a phone that could not reach its
server at start, or has no lines yet, does not wait a day.
A changed, valid set is handed to the phone (`apply`), which takes on what it can at once and
reports the keys that need a restart; a failed run leaves everything as it is and only updates
the reported outcome.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.clock import Clock, Timer
from firmware.config import ConfigError, PhoneConfig
from provisioning.client import Outcome, ProvisioningClient

log = logging.getLogger("luren.provisioning")

RETRY_FIRST_S, RETRY_MAX_S = 60.0, 900.0

Apply = Callable[[PhoneConfig | None, Outcome], None]
"""Takes a changed, valid config (None: nothing new to take on) and the run's outcome."""


@dataclass
class Provisioned:
    """What the start-up run left for the running phone."""

    client: ProvisioningClient
    document: dict[str, Any]  # the phone's own file, as read
    outcome: Outcome

    def status(self) -> dict[str, Any]:
        return {**self.outcome.as_dict(), "model": self.client.model, "mac": self.client.mac,
                "device_key": self.client.device_public_key(),
                "locked": sorted(self.client.locked)}


class ProvisioningSync:
    """Runs `client` again on a timer and on demand, one run at a time."""

    def __init__(self, client: ProvisioningClient, document: dict[str, Any], *, clock: Clock,
                 apply: Apply, minutes: int, spread_minutes: int,
                 rng: random.Random | None = None) -> None:
        self.client, self.document = client, document
        self._clock, self._apply = clock, apply
        self._minutes, self._spread = minutes, spread_minutes
        self._rng = rng or random.Random()
        self._timer: Timer | None = None
        self._running: asyncio.Task[Outcome] | None = None
        self.failures = 0  # runs failed in a row: they are retried sooner (RETRY_FIRST_S ...)

    def start(self, failed: bool = False) -> None:
        """Arm the timer; `failed`: the start-up run failed, so the first retry comes soon."""
        self.failures = int(failed)
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def next_delay(self) -> float:
        """Seconds until the next run: the interval plus a random spread; after failed runs
        1 min, doubling up to 15 min (never later than the interval), plus up to 25 %."""
        regular = 60.0 * (self._minutes + self._rng.uniform(0, self._spread))
        if not self.failures:
            return regular
        retry = min(RETRY_FIRST_S * 2 ** (self.failures - 1), RETRY_MAX_S)
        return min(regular, retry * self._rng.uniform(1.0, 1.25))

    def _arm(self) -> None:
        self.stop()
        if self._minutes > 0:
            delay = self.next_delay()
            log.info("next provisioning check in %.0f minutes", delay / 60)
            self._timer = self._clock.call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        asyncio.get_running_loop().create_task(self.run_now())

    async def run_now(self) -> Outcome:
        """Run once (joining a run already going); the outcome."""
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self._run())
        return await asyncio.shield(self._running)

    async def _run(self) -> Outcome:
        loop = asyncio.get_running_loop()
        try:
            config, outcome = await loop.run_in_executor(None, self.client.run, self.document)
        except ConfigError as exc:  # nothing valid at all: keep running as we are
            config, outcome = None, Outcome(False, "", f"provisioning failed: {exc}")
        self._apply(config if outcome.ok and outcome.changed else None, outcome)
        self.failures = 0 if outcome.ok else self.failures + 1
        self._arm()
        return outcome
