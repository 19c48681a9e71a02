"""The one clock every timer in the phone goes through.

Interdigit timeouts, ring cadences, registration back-off, call durations: all of them read
`now()` and schedule with `call_later()` on a `Clock`, never on asyncio or `time` directly. Tests
and the control API's test mode move time forward with `advance()` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timer:
    """A scheduled callback; `cancel()` is safe to call more than once."""

    def __init__(self, entry: _Entry, clock: Clock) -> None:
        self._entry = entry
        self._clock = clock

    @property
    def due(self) -> float:
        """Clock time (seconds, `Clock.now()` scale) at which the callback runs."""
        return self._entry.due

    @property
    def active(self) -> bool:
        return not self._entry.cancelled

    def cancel(self) -> None:
        self._entry.cancelled = True

    def remaining(self) -> float:
        return max(0.0, self._entry.due - self._clock.now())


class Clock:
    """Monotonic time plus an offset that `advance()` moves forward.

    Timers live in one heap; the clock arms a single asyncio handle for the earliest one, so
    moving time forward fires every timer that became due, in order, at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._loop = loop
        self._monotonic = monotonic
        self._wall = wall
        self._offset = 0.0
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the loop that runs the controller (timers fire on it)."""
        self._loop = loop
        self._rearm()

    def now(self) -> float:
        """Seconds on a monotonic scale (not wall time)."""
        return self._monotonic() + self._offset

    def wall_time(self, tz: tzinfo | None = None) -> datetime:
        """Wall-clock time, moved by `advance()` like `now()`."""
        return datetime.fromtimestamp(self._wall() + self._offset, tz)  # right across DST

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        entry = _Entry(self.now() + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._rearm()
        return Timer(entry, self)

    def advance(self, seconds: float) -> int:
        """Move time forward and run every timer now due; returns how many ran."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds
        return self.run_due()

    def run_due(self) -> int:
        ran = 0
        while self._heap and self._heap[0].due <= self.now():
            entry = heapq.heappop(self._heap)
            if not entry.cancelled:
                entry.cancelled = True
                entry.callback()
                ran += 1
        self._rearm()
        return ran

    def pending(self) -> int:
        return sum(1 for e in self._heap if not e.cancelled)

    def _rearm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        if self._loop is None or not self._heap:
            return
        delay = max(0.0, self._heap[0].due - self.now())
        self._handle = self._loop.call_later(delay, self.run_due)


class ManualClock(Clock):
    """A clock that only moves when told to: for pure-logic tests with no event loop."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_795_000_000.0) -> None:
        self._t = start
        self._wall_t = wall_start
        super().__init__(None, monotonic=lambda: self._t, wall=lambda: self._wall_t)
