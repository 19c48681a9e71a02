"""The controller's LED driver: patterns computed from the clock, no timer per LED.

`update(now)` works out every LED's level from its pattern and the time and writes a pin only
when its level changes, so all blinking LEDs stay in phase. Common subset of CPython 3.11 and
MicroPython 1.27.
"""

try:
    from board.mcu.frame import FAST_BLINK, OFF, ON, SLOW_BLINK
except ImportError:  # on the controller the modules sit at the top level
    from frame import FAST_BLINK, OFF, ON, SLOW_BLINK

SLOW_HALF_MS = 500  # 1 Hz
FAST_HALF_MS = 125  # 4 Hz
MIXES = {"amber": ("red", "green"), "yellow": ("red", "green"), "orange": ("red", "green")}


def lit(pattern: int, now: int) -> bool:
    """Whether an LED with `pattern` is lit at `now` (ms)."""
    if pattern == ON:
        return True
    if pattern == SLOW_BLINK:
        return (now // SLOW_HALF_MS) % 2 == 0
    if pattern == FAST_BLINK:
        return (now // FAST_HALF_MS) % 2 == 0
    return False


def colour_pins(pins: dict, colour: str) -> list:
    """The pins that show `colour` on an LED with `pins` ({colour: pin}).

    A bi-colour red/green LED mixes amber; an LED without the colour shows its only colour.
    """
    if colour in pins:
        return [pins[colour]]
    mix = MIXES.get(colour)
    if mix and mix[0] in pins and mix[1] in pins:
        return [pins[mix[0]], pins[mix[1]]]
    return [pins[sorted(pins)[0]]]


class LedDriver:
    """LEDs by name: `outputs` is {name: {colour: pin}}, pins with `value(level)`."""

    def __init__(self, outputs: dict) -> None:
        self.outputs = outputs
        self._state = {}  # name -> (pattern, colour)
        self._levels = {}  # pin id -> last written level
        for pins in outputs.values():
            for pin in pins.values():
                self._write(pin, 0)

    def set(self, name: str, pattern: int, colour: str) -> bool:
        """Remember the LED's new state; False for an LED this board does not have."""
        if name not in self.outputs:
            return False
        self._state[name] = (pattern, colour)
        return True

    def state(self, name: str) -> tuple:
        """(pattern, colour) last set for `name`; (OFF, "") if never set."""
        return self._state.get(name, (OFF, ""))

    def clear(self) -> None:
        self._state = {}

    def update(self, now: int) -> None:
        for name, pins in self.outputs.items():
            pattern, colour = self._state.get(name, (OFF, ""))
            on = colour_pins(pins, colour) if lit(pattern, now) else []
            for pin in pins.values():
                self._write(pin, 1 if pin in on else 0)

    def _write(self, pin, level: int) -> None:
        key = id(pin)
        if self._levels.get(key) != level:
            self._levels[key] = level
            pin.value(level)
