"""LEDs on GPIO pins: single-colour, and bi-colour (red + green pins: green, red, amber).

Blinking costs no CPU per LED: one `BlinkScheduler` per board keeps one clock timer per blink
rate and toggles every LED blinking at that rate together, so LEDs blink in step; when nothing
blinks it holds no timer at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from board.gpio.base import GpioBackend
from board.parts import Led, LedPattern, LedState
from firmware.clock import Clock, Timer

log = logging.getLogger("luren.board.led")

# Seconds from one toggle to the next (half the blink period).
BLINK_HALF_PERIODS: dict[LedPattern, float] = {
    LedPattern.SLOW_BLINK: 0.5,  # 1 Hz
    LedPattern.FAST_BLINK: 0.125,  # 4 Hz
}
MIXES: dict[str, tuple[str, ...]] = {"amber": ("red", "green"), "yellow": ("red", "green"),
                                     "orange": ("red", "green")}


class Blinker(Protocol):
    def show_phase(self, lit: bool) -> None: ...


class _Group:
    """The LEDs blinking at one rate, their shared phase and the one timer toggling it."""

    def __init__(self) -> None:
        self.members: dict[int, Blinker] = {}
        self.lit = True
        self.timer: Timer | None = None


class BlinkScheduler:
    """One timer per blink rate on the clock; LEDs join and leave the rate they blink at."""

    def __init__(self, clock: Clock,
                 half_periods: Mapping[LedPattern, float] = BLINK_HALF_PERIODS) -> None:
        self.clock = clock
        self.half_periods = dict(half_periods)
        self._groups = {pattern: _Group() for pattern in self.half_periods}

    def add(self, led: Blinker, pattern: LedPattern) -> None:
        """Blink `led` at `pattern`'s rate, in step with the others; shows the phase at once."""
        group = self._groups[pattern]
        if id(led) in group.members:
            led.show_phase(group.lit)
            return
        self.remove(led)
        if not group.members:
            group.lit = True
            group.timer = self.clock.call_later(self.half_periods[pattern],
                                                lambda: self._toggle(pattern))
        group.members[id(led)] = led
        led.show_phase(group.lit)

    def remove(self, led: Blinker) -> None:
        """Stop blinking `led` (it keeps whatever it shows); the last one stops the timer."""
        for group in self._groups.values():
            if group.members.pop(id(led), None) is not None and not group.members:
                self._stop(group)

    def blinking(self, pattern: LedPattern) -> int:
        """How many LEDs blink at `pattern`'s rate."""
        return len(self._groups[pattern].members)

    def close(self) -> None:
        for group in self._groups.values():
            group.members.clear()
            self._stop(group)

    def _toggle(self, pattern: LedPattern) -> None:
        group = self._groups[pattern]
        group.lit = not group.lit
        for led in list(group.members.values()):
            led.show_phase(group.lit)
        group.timer = self.clock.call_later(self.half_periods[pattern],
                                            lambda: self._toggle(pattern))

    @staticmethod
    def _stop(group: _Group) -> None:
        if group.timer is not None:
            group.timer.cancel()
            group.timer = None


class GpioLed(Led):
    """An LED with one pin per colour; a colour the LED lacks falls back to its first one.

    `pins` maps colour to pin: `{"green": 17}` for a single-colour LED, `{"green": 17,
    "red": 27}` for a bi-colour one, which also shows amber (both on). A single-colour LED
    lights for any colour asked. Only pins whose level changes are written.
    """

    def __init__(self, name: str, gpio: GpioBackend, pins: Mapping[str, int],
                 blinker: BlinkScheduler, active_low: bool = False) -> None:
        super().__init__(name)
        if not pins:
            raise ValueError(f"LED {name}: needs at least one pin")
        self.gpio = gpio
        self.pins = dict(pins)
        self.blinker = blinker
        self.active_low = active_low
        self._lit: dict[int, bool] = {}
        self._warned: set[str] = set()
        for pin in self.pins.values():
            gpio.setup_output(pin, self._level(False), owner=f"led {name}")
            self._lit[pin] = False

    def _apply(self, state: LedState) -> None:
        if state.pattern in (LedPattern.SLOW_BLINK, LedPattern.FAST_BLINK):
            self.blinker.add(self, state.pattern)
            return
        self.blinker.remove(self)
        self.show_phase(state.pattern is LedPattern.ON)

    def show_phase(self, lit: bool) -> None:
        """Light the current colour (`lit`) or turn every pin off."""
        wanted = self._colour_pins(self.state.colour) if lit else set()
        for pin in self.pins.values():
            self._drive(pin, pin in wanted)

    def lit_pins(self) -> set[int]:
        """The pins lit now."""
        return {pin for pin, lit in self._lit.items() if lit}

    def _colour_pins(self, colour: str) -> set[int]:
        if colour in self.pins:
            return {self.pins[colour]}
        mix = MIXES.get(colour, ())
        if mix and all(part in self.pins for part in mix):
            return {self.pins[part] for part in mix}
        if len(self.pins) > 1 and colour not in self._warned:
            self._warned.add(colour)
            log.warning("LED %s has no %s; showing %s", self.name, colour, next(iter(self.pins)))
        return {next(iter(self.pins.values()))}

    def _drive(self, pin: int, lit: bool) -> None:
        if self._lit[pin] != lit:
            self._lit[pin] = lit
            self.gpio.write(pin, self._level(lit))

    def _level(self, lit: bool) -> bool:
        return lit != self.active_low
