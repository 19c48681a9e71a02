"""The hookswitch: handset on the cradle or lifted, debounced into single transitions.

Hookswitches chatter for tens of milliseconds when the handset goes down or comes up. Every edge
restarts one debounce timer; when the level has been still for `debounce` seconds it is read once
and, if it differs from the last reported state, reported through `on_hook(offhook)`. At rest
the part holds no timer and reads nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from board.gpio.base import GpioBackend
from firmware.clock import Clock, Timer

log = logging.getLogger("luren.board.hookswitch")
DEBOUNCE_S = 0.050


class Hookswitch:
    """One hookswitch on one input pin (with pull-up unless told otherwise).

    `offhook_level` is the level the pin shows with the handset lifted. The default, low, suits a
    switch that closes to ground when the handset comes up: a broken or unplugged switch then
    reads on-hook, and the phone still rings and works hands-free.

    The state at start is on-hook; a handset already lifted at start is reported like any other
    transition, once `debounce` has passed, so whoever sets `on_hook` after construction hears it.
    """

    def __init__(self, gpio: GpioBackend, pin: int, clock: Clock, *,
                 offhook_level: bool = False, pull_up: bool = True,
                 debounce: float = DEBOUNCE_S, name: str = "hookswitch") -> None:
        self.gpio = gpio
        self.pin = pin
        self.clock = clock
        self.offhook_level = offhook_level
        self.debounce = debounce
        self.name = name
        self.offhook = False
        self.on_hook: Callable[[bool], None] | None = None
        self._timer: Timer | None = None
        gpio.setup_input(pin, pull_up, owner=name)
        gpio.watch(pin, self._edge)
        if self._read_offhook():
            self._restart()

    def close(self) -> None:
        """Cancel a pending debounce (the backend releases the pin)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _edge(self, pin: int, level: bool) -> None:
        self._restart()

    def _restart(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(self.debounce, self._settled)

    def _settled(self) -> None:
        self._timer = None
        offhook = self._read_offhook()
        if offhook != self.offhook:
            self.offhook = offhook
            log.debug("%s: %s", self.name, "off-hook" if offhook else "on-hook")
            if self.on_hook is not None:
                self.on_hook(offhook)

    def _read_offhook(self) -> bool:
        return self.gpio.read(self.pin) == self.offhook_level
