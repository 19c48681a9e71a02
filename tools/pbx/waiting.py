"""Polling helper: tests wait on conditions with a deadline instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, interval: float = 0.02, what: str = ""
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy.

    Returns that truthy value. Raises TimeoutError("timed out after {timeout}s
    waiting for {what}") if it has not happened within `timeout` seconds;
    `what` defaults to the predicate's name. The predicate is always called at
    least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            what = what or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
