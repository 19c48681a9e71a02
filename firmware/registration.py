"""Registration state of one line and its re-registration back-off (RFC 5626 section 4.5).

After a failed REGISTER the line waits a random 50-100 % of
`W = min(max_time, base_time * 2 ** consecutive_failures)` (30 s base, 1800 s cap), or exactly
the server's Retry-After when it sent one, then tries again. The waiting goes through the
phone's clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

BASE_TIME_S = 30.0
MAX_TIME_S = 1800.0


class RegState(enum.Enum):
    DISABLED = "disabled"  # the line is configured not to register
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


def backoff_upper_bound(consecutive_failures: int, base: float = BASE_TIME_S,
                        cap: float = MAX_TIME_S) -> float:
    """W of RFC 5626 4.5 (e.g. 3 failures, 30 s base: 240 s)."""
    return min(cap, base * 2.0 ** min(consecutive_failures, 32))


@dataclass
class LineRegistration:
    """What the phone knows about one line's registration; pure bookkeeping."""

    enabled: bool = True
    state: RegState = RegState.REGISTERING
    failures: int = 0
    code: int = 0
    reason: str = ""
    retry_at: float | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if not self.enabled:
            self.state = RegState.DISABLED

    @property
    def in_service(self) -> bool:
        return self.state is RegState.REGISTERED

    def succeeded(self, code: int, reason: str) -> None:
        self.state, self.failures, self.code, self.reason = RegState.REGISTERED, 0, code, reason
        self.retry_at = None

    def failed(self, code: int, reason: str, now: float,
               retry_after: int | None = None) -> float:
        """Record a failure; returns the delay (s) before the next attempt."""
        self.state, self.code, self.reason = RegState.FAILED, code, reason
        self.failures += 1
        if retry_after is not None and retry_after > 0:
            delay = float(retry_after)
        else:
            upper = backoff_upper_bound(self.failures)
            delay = self.rng.uniform(0.5 * upper, upper)
        self.retry_at = now + delay
        return delay

    def retrying(self) -> None:
        self.state = RegState.REGISTERING
        self.retry_at = None
