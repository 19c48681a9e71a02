"""One class per physical part, backend behind it: what the controller talks to.

The controller only sees these interfaces. A board (simulated, GPIO, front-panel controller)
provides the parts; drivers turn the physical world into calls of `on_key`/`on_hook`
callbacks, and the controller drives the outputs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class LedPattern(enum.Enum):
    OFF = "off"
    ON = "on"
    SLOW_BLINK = "slow_blink"  # 1 Hz: held call, message waiting
    FAST_BLINK = "fast_blink"  # 4 Hz: alerting


@dataclass(frozen=True)
class LedState:
    pattern: LedPattern = LedPattern.OFF
    colour: str = "green"


class Led:
    """An indicator; the backend does the blinking (no CPU per LED on the controller)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = LedState()

    def set(self, state: LedState) -> None:
        if state != self.state:
            self.state = state
            self._apply(state)

    def _apply(self, state: LedState) -> None:
        """Push to the hardware; the simulated LED only remembers."""


class TextDisplay:
    """A character display of `width` x `height`; rows are padded/cut to fit."""

    def __init__(self, width: int = 20, height: int = 4) -> None:
        self.width, self.height = width, height
        self.rows: list[str] = [""] * height
        self.version = 0
        self.listeners: list[Callable[[int], None]] = []

    def show(self, rows: list[str]) -> None:
        fitted = [(rows[i] if i < len(rows) else "")[: self.width] for i in range(self.height)]
        if fitted == self.rows:
            return
        self.rows = fitted
        self.version += 1
        self._push(fitted)
        for listener in list(self.listeners):
            listener(self.version)

    def _push(self, rows: list[str]) -> None:
        """Send to the hardware; the simulated display only remembers."""

    # -- what the panel can set: "backlight" and/or "contrast", levels 0-10 ----------------
    @property
    def controls(self) -> frozenset[str]:
        """The settings this panel has (none on a plain text display)."""
        return frozenset()

    def set_level(self, name: str, level: int) -> bool:
        """Set a control to 0-10; False when the panel has no such control."""
        if name not in self.controls:
            return False
        self._apply_level(name, max(0, min(10, level)))
        return True

    def _apply_level(self, name: str, level: int) -> None:
        """Push a control's level to the hardware."""


@dataclass
class Board:
    """The parts of one terminal's front panel, as a board profile assembles them."""

    name: str
    display: TextDisplay
    leds: dict[str, Led] = field(default_factory=dict)
    on_key: Callable[[str], None] | None = None
    on_hook: Callable[[bool], None] | None = None

    def led(self, name: str) -> Led:
        if name not in self.leds:
            self.leds[name] = Led(name)
        return self.leds[name]
