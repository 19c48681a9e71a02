"""GPIO through RPi.GPIO (Raspberry Pi 1-4), BCM pin numbers.

RPi.GPIO is imported on the first pin a part sets up, never at import time, so this module loads
on any machine; where the library is missing (or is not on a Pi it knows) the part gets a
`GpioError` naming itself. RPi.GPIO does not drive the Raspberry Pi 5's RP1 chip: use
`gpio = "libgpiod"` there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from board.gpio.base import Dispatch, EdgeCallback, GpioBackend, GpioError, call_now
from board.gpio.claims import PinClaims, label

MODULE = "RPi.GPIO"
MISSING = ('{owner}: RPi.GPIO is not installed (pip install luren[rpi]) — '
           'use gpio = "libgpiod" on a Raspberry Pi 5')
UNUSABLE = '{owner}: RPi.GPIO cannot run here ({error}) — use gpio = "libgpiod" on a Raspberry Pi 5'


class RpiGpio(GpioBackend):
    """Pins of the Raspberry Pi's own GPIO block via RPi.GPIO; edges via `add_event_detect`."""

    name = "rpigpio"

    def __init__(self, dispatch: Dispatch = call_now) -> None:
        super().__init__(dispatch)
        self._gpio: Any = None
        self._claims = PinClaims()

    def setup_input(self, pin: int, pull_up: bool = True, owner: str = "") -> None:
        gpio = self._lib(owner)
        self._claims.claim(pin, owner)
        pull = gpio.PUD_UP if pull_up else gpio.PUD_DOWN
        self._call(owner, pin, gpio.setup, pin, gpio.IN, pull_up_down=pull)

    def setup_output(self, pin: int, level: bool = False, owner: str = "") -> None:
        gpio = self._lib(owner)
        self._claims.claim(pin, owner)
        initial = gpio.HIGH if level else gpio.LOW
        self._call(owner, pin, gpio.setup, pin, gpio.OUT, initial=initial)

    def read(self, pin: int) -> bool:
        return bool(self._lib(self._claims.owner(pin)).input(pin))

    def write(self, pin: int, level: bool) -> None:
        gpio = self._lib(self._claims.owner(pin))
        gpio.output(pin, gpio.HIGH if level else gpio.LOW)

    def watch(self, pin: int, callback: EdgeCallback) -> None:
        owner = self._claims.owner(pin)
        gpio = self._lib(owner)
        self._call(owner, pin, gpio.add_event_detect, pin, gpio.BOTH,
                   callback=self._on_edge(callback))

    def close(self) -> None:
        if self._gpio is not None and self._claims.pins():
            self._gpio.cleanup(self._claims.pins())
        self._claims.clear()

    # -- inside ---------------------------------------------------------------------------
    def _lib(self, owner: str) -> Any:
        """RPi.GPIO, imported and put in BCM mode on first use."""
        if self._gpio is None:
            module = self._import(owner)
            module.setwarnings(False)
            module.setmode(module.BCM)
            self._gpio = module
        return self._gpio

    def _import(self, owner: str) -> ModuleType:
        try:
            return importlib.import_module(MODULE)
        except ImportError:
            raise GpioError(MISSING.format(owner=label(owner))) from None
        except RuntimeError as exc:  # "This module can only be run on a Raspberry Pi!"
            raise GpioError(UNUSABLE.format(owner=label(owner), error=exc)) from None

    def _on_edge(self, callback: EdgeCallback) -> Callable[[int], None]:
        """RPi.GPIO's thread calls this: read the level there, hand the edge to the loop."""
        def edge(channel: int) -> None:
            level = bool(self._gpio.input(channel))
            self.dispatch(lambda: callback(channel, level))
        return edge

    @staticmethod
    def _call(owner: str, pin: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except (RuntimeError, ValueError) as exc:
            raise GpioError(f"{label(owner)}: pin {pin}: {exc}") from None
