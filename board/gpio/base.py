"""The one interface every GPIO backend implements; parts and drivers use nothing else.

Pins are numbered as the backend's chip numbers them (BCM numbers on a Raspberry Pi). Edge
callbacks may come on a backend's own thread: a backend hands them to `dispatch`, which the
runtime sets to the controller loop's `call_soon_threadsafe` (tests: call at once).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

EdgeCallback = Callable[[int, bool], None]  # (pin, new level)
Dispatch = Callable[[Callable[[], None]], None]


def call_now(fn: Callable[[], None]) -> None:
    fn()


class GpioError(RuntimeError):
    """A pin or chip cannot be used; the message names the part and the pin."""


class GpioBackend(ABC):
    name = "gpio"

    def __init__(self, dispatch: Dispatch = call_now) -> None:
        self.dispatch = dispatch

    @abstractmethod
    def setup_input(self, pin: int, pull_up: bool = True, owner: str = "") -> None:
        """Make `pin` an input (with pull-up or pull-down); `owner` names the part in errors."""

    @abstractmethod
    def setup_output(self, pin: int, level: bool = False, owner: str = "") -> None:
        """Make `pin` an output driven to `level`."""

    @abstractmethod
    def read(self, pin: int) -> bool: ...

    @abstractmethod
    def write(self, pin: int, level: bool) -> None: ...

    @abstractmethod
    def watch(self, pin: int, callback: EdgeCallback) -> None:
        """Call `callback(pin, level)` (through `dispatch`) on every edge of input `pin`."""

    def close(self) -> None:  # noqa: B027 (optional: a backend without resources keeps it)
        """Release every pin."""
