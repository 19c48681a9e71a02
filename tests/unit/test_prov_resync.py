"""When a running phone asks its provisioning server again."""

from __future__ import annotations

import random
from pathlib import Path

from firmware.clock import Clock
from provisioning.client import ProvisioningClient
from provisioning.resync import RETRY_FIRST_S, RETRY_MAX_S, ProvisioningSync


def sync(tmp_path: Path, minutes: int = 1440, spread: int = 60) -> ProvisioningSync:
    return ProvisioningSync(ProvisioningClient(tmp_path, model="sim", mac=""), {},
                            clock=Clock(), apply=lambda config, outcome: None, minutes=minutes,
                            spread_minutes=spread, rng=random.Random(7))


def test_the_regular_interval_has_a_random_spread(tmp_path: Path) -> None:
    delays = [sync(tmp_path).next_delay() for _ in range(3)]
    assert all(1440 * 60 <= d <= 1500 * 60 for d in delays)


def test_failed_runs_are_retried_sooner_backing_off_to_15_minutes(tmp_path: Path) -> None:
    s = sync(tmp_path)
    seen = []
    for failures in range(1, 8):
        s.failures = failures
        seen.append(s.next_delay())
    assert RETRY_FIRST_S <= seen[0] <= RETRY_FIRST_S * 1.25
    assert RETRY_FIRST_S * 2 <= seen[1] <= RETRY_FIRST_S * 2.5
    assert all(RETRY_MAX_S <= d <= RETRY_MAX_S * 1.25 for d in seen[4:])
    short = sync(tmp_path, minutes=5, spread=0)
    short.failures = 6
    assert short.next_delay() == 300  # never later than the regular interval
