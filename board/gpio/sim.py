"""The simulated GPIO backend: pins in memory, for the tests and the simulator alike.

Inputs rest at their pull level. A test (or the simulator's front panel) moves them with
`drive_low(pin)` / `drive_high(pin)` / `release(pin)`, and closes a key-matrix contact between two
pins with `connect(a, b)` / `disconnect(a, b)`. Contacts join pins electrically, *low wins*
(open-drain wiring): a pin reads low when anything it is joined to, through closed contacts,
drives it low. That is how a matrix without diodes behaves, ghost keys included.

Every write is recorded with the time of the injected clock (`writes`), and every read is
counted (`reads`), so tests can assert sequences ("the two LEDs toggled at the same instant")
and idleness ("no reads while no key is down").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from board.gpio.base import Dispatch, EdgeCallback, GpioBackend, GpioError, call_now
from board.gpio.claims import PinClaims


class TimeSource(Protocol):
    def now(self) -> float: ...


class Write(NamedTuple):
    """One recorded write: clock time, pin, level."""

    at: float
    pin: int
    level: bool


@dataclass
class _Pin:
    output: bool
    pull_up: bool = True
    out_level: bool = False
    seen: bool = False  # last level reported to watchers


class _Monotonic:
    def now(self) -> float:
        return time.monotonic()


class SimGpio(GpioBackend):
    """In-memory pins with edge callbacks; see the module docstring for the electrical model."""

    name = "sim"

    def __init__(self, dispatch: Dispatch = call_now, clock: TimeSource | None = None) -> None:
        super().__init__(dispatch)
        self.clock: TimeSource = clock or _Monotonic()
        self.writes: list[Write] = []
        self.reads = 0
        self._pins: dict[int, _Pin] = {}
        self._contacts: set[frozenset[int]] = set()
        self._external: dict[int, bool] = {}  # driven from outside (a test, the simulator)
        self._watchers: dict[int, list[EdgeCallback]] = {}
        self._claims = PinClaims()

    # -- GpioBackend ----------------------------------------------------------------------
    def setup_input(self, pin: int, pull_up: bool = True, owner: str = "") -> None:
        self._claims.claim(pin, owner)
        self._pins[pin] = _Pin(output=False, pull_up=pull_up)
        self._pins[pin].seen = self.level(pin)
        self._settle_through(pin)

    def setup_output(self, pin: int, level: bool = False, owner: str = "") -> None:
        self._claims.claim(pin, owner)
        self._pins[pin] = _Pin(output=True, out_level=level)
        self._settle_through(pin)

    def read(self, pin: int) -> bool:
        self._pin(pin)
        self.reads += 1
        return self.level(pin)

    def write(self, pin: int, level: bool) -> None:
        state = self._pin(pin)
        if not state.output:
            raise GpioError(f"{self._owner(pin)}: pin {pin} is an input; it cannot be written")
        self.writes.append(Write(self.clock.now(), pin, level))
        changed, state.out_level = state.out_level != level, level
        if changed:
            self._settle_through(pin)

    def watch(self, pin: int, callback: EdgeCallback) -> None:
        if self._pin(pin).output:
            raise GpioError(f"{self._owner(pin)}: pin {pin} is an output; it has no edges")
        self._pins[pin].seen = self._resolve(pin)
        self._watchers.setdefault(pin, []).append(callback)

    def close(self) -> None:
        self._watchers.clear()
        self._pins.clear()
        self._contacts.clear()
        self._external.clear()
        self._claims.clear()

    # -- the outside world ------------------------------------------------------------------
    def drive_high(self, pin: int) -> None:
        """Pull input `pin` high from outside (a switch to the supply, a signal).

        Like every helper here it works before the part sets the pin up (a handset lifted
        while the phone boots) and survives the set-up.
        """
        self._drive(pin, True)

    def drive_low(self, pin: int) -> None:
        """Pull input `pin` low from outside (a switch to ground: a pressed key)."""
        self._drive(pin, False)

    def release(self, pin: int) -> None:
        """Stop driving `pin` from outside: it returns to its pull level."""
        self._drive(pin, None)

    def connect(self, a: int, b: int) -> None:
        """Close a contact between two pins (a key of a matrix, rows x columns)."""
        self._contacts.add(frozenset((a, b)))
        self._settle()

    def disconnect(self, a: int, b: int) -> None:
        """Open the contact between two pins."""
        self._contacts.discard(frozenset((a, b)))
        self._settle()

    # -- looking at it -----------------------------------------------------------------------
    def level(self, pin: int) -> bool:
        """The level `pin` is at now (an output's written level, an input's resolved one)."""
        state = self._pin(pin)
        if state.output:
            return state.out_level
        return self._resolve(pin)

    def is_output(self, pin: int) -> bool:
        return self._pin(pin).output

    def pins(self) -> list[int]:
        """Every pin set up, in order."""
        return sorted(self._pins)

    def owner(self, pin: int) -> str:
        """The part that set `pin` up."""
        return self._claims.owner(pin)

    def writes_to(self, pin: int) -> list[bool]:
        """The levels written to `pin`, in order."""
        return [w.level for w in self.writes if w.pin == pin]

    def clear_log(self) -> None:
        """Forget recorded writes and the read count (after setting up, before the test)."""
        self.writes.clear()
        self.reads = 0

    # -- inside ---------------------------------------------------------------------------
    def _pin(self, pin: int) -> _Pin:
        if pin not in self._pins:
            raise GpioError(f"gpio: pin {pin} is not set up")
        return self._pins[pin]

    def _owner(self, pin: int) -> str:
        return self._claims.owner(pin) or "gpio"

    def _drive(self, pin: int, level: bool | None) -> None:
        if level is None:
            self._external.pop(pin, None)
        else:
            self._external[pin] = level
        self._settle()

    def _resolve(self, pin: int) -> bool:
        joined = self._joined(pin)
        driven = [lvl for p in joined if (lvl := self._driven(p)) is not None]
        if driven:
            return all(driven)
        return all(self._pins[p].pull_up for p in joined if p in self._pins)

    def _driven(self, pin: int) -> bool | None:
        state = self._pins.get(pin)
        if state is not None and state.output:
            return state.out_level
        return self._external.get(pin)

    def _joined(self, pin: int) -> set[int]:
        """`pin` and every pin reached from it through closed contacts."""
        seen, todo = {pin}, [pin]
        while todo:
            here = todo.pop()
            for contact in self._contacts:
                if here in contact:
                    todo.extend(p for p in contact if p not in seen)
                    seen.update(contact)
        return seen

    def _settle_through(self, pin: int) -> None:
        """Settle after `pin` changed: it only reaches other pins through closed contacts."""
        if any(pin in contact for contact in self._contacts):
            self._settle()

    def _settle(self) -> None:
        """Recompute watched inputs and report every edge through `dispatch`."""
        for pin, callbacks in list(self._watchers.items()):
            state = self._pins.get(pin)
            if state is None:
                continue
            now = self._resolve(pin)
            if now != state.seen:
                state.seen = now
                for callback in list(callbacks):
                    self.dispatch(_bind(callback, pin, now))


def _bind(callback: EdgeCallback, pin: int, level: bool) -> Callable[[], None]:
    return lambda: callback(pin, level)
