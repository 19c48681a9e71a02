"""Graphic panels through luma: SSD1306/SH1106 OLEDs (I2C), ST7735/ST7789 TFTs (SPI).

`GraphicDisplay` draws the phone's text rows to a PIL image (`render.render_screen`) and hands
it to a luma device, which only pushes bytes through its serial interface. Devices, serial
interfaces and GPIO are all passed in, so tests use a recording interface and the screenshot
tool a luma.emulator `capture` device.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

from PIL import Image

from board.display.render import Layout, render_screen
from board.gpio.base import GpioBackend
from board.parts import TextDisplay

log = logging.getLogger("luren.display")


class LumaDevice(Protocol):
    """What GraphicDisplay needs of a luma device (luma.core.device.device)."""

    size: tuple[int, int]
    mode: str

    def display(self, image: Image.Image) -> None: ...


class GraphicDisplay(TextDisplay):
    """A `columns` x `lines` text display drawn on a pixel panel; `image` is the last frame.

    A device that fails to take a frame (luma raises its own errors or OSError) is logged and
    counted in `errors`, not raised: the phone goes on, and the next screen is a full frame.
    """

    def __init__(self, device: LumaDevice, columns: int = 20, lines: int = 4) -> None:
        if lines < 2:
            raise ValueError("GraphicDisplay: needs at least 2 text lines")
        super().__init__(columns, lines)
        self.device = device
        self.layout = Layout((device.size[0], device.size[1]), device.mode, columns, lines)
        self.image: Image.Image | None = None
        self.errors = 0

    @property
    def controls(self) -> frozenset[str]:
        """Contrast where the panel takes it (the OLEDs), the backlight where luma switches
        one (TFTs with a backlight pin)."""
        found = set()
        if callable(getattr(self.device, "contrast", None)):
            found.add("contrast")
        if callable(getattr(self.device, "backlight", None)):
            found.add("backlight")
        return frozenset(found)

    def _apply_level(self, name: str, level: int) -> None:
        try:
            if name == "contrast":
                self.device.contrast(round(level * 255 / 10))  # type: ignore[attr-defined]
            else:
                self.device.backlight(level > 0)  # type: ignore[attr-defined]
        except Exception as error:  # luma.core.error.* or OSError: a panel gone missing
            log.warning("%s: %s not set: %s", type(self.device).__name__, name, error)

    def _push(self, rows: list[str]) -> None:
        self.image = render_screen(rows, self.layout)
        try:
            self.device.display(self.image)
        except Exception as error:  # luma.core.error.* or OSError: a panel gone missing
            self.errors += 1
            log.warning("%s: could not send a frame: %s", type(self.device).__name__, error)


OLEDS = {"ssd1306": "luma.oled.device", "sh1106": "luma.oled.device"}
TFTS = {"st7735": "luma.lcd.device", "st7789": "luma.lcd.device"}


def graphic_display(kind: str, serial: Any, width: int, height: int, rotate: int = 0, *,
                    columns: int = 20, lines: int = 4, **device_options: Any) -> GraphicDisplay:
    """A GraphicDisplay on a luma `kind` device ("ssd1306", "sh1106", "st7735", "st7789").

    `serial` is a luma serial interface (`luma.core.interface.serial.i2c`/`spi`, or anything
    with `command(*bytes)` and `data(bytes)`); `width` x `height` are the panel's pixels before
    `rotate` (0-3, quarter turns clockwise). `device_options` go to the luma device (for the
    TFTs: `gpio`, `gpio_LIGHT`, `backlight`, `bgr`, `h_offset`, `v_offset`, ...). A TFT given
    neither `gpio` nor `backlight` gets no backlight control (luma would import RPi.GPIO).
    """
    module_name = OLEDS.get(kind) or TFTS.get(kind)
    if module_name is None:
        raise ValueError(f"graphic display: unknown kind {kind!r}; known: "
                         f"{', '.join([*OLEDS, *TFTS])}")
    device_class = getattr(importlib.import_module(module_name), kind)
    if kind in TFTS and "gpio" not in device_options:
        device_options.setdefault("backlight", _no_backlight)
    device = device_class(serial, width=width, height=height, rotate=rotate, **device_options)
    return GraphicDisplay(device, columns, lines)


def _no_backlight(on: bool) -> None:
    """A backlight wired to 3V3: nothing to switch."""


class LumaGpio:
    """Our `GpioBackend` dressed as the RPi.GPIO module luma expects (DC, RST, backlight pins).

    So a TFT works on any backend (libgpiod on a Pi 5, where RPi.GPIO does not), and pins stay
    owned by the board: `cleanup` leaves them to the backend's own `close`.
    """

    BCM, OUT, IN, LOW, HIGH, PUD_OFF = 11, 0, 1, 0, 1, 20

    def __init__(self, gpio: GpioBackend, owner: str = "display") -> None:
        self.gpio, self.owner = gpio, owner

    def setmode(self, mode: int) -> None:
        """Pins are always the backend's (BCM) numbers."""

    def setwarnings(self, enabled: bool) -> None:
        """Nothing to warn about."""

    def setup(self, pin: int, direction: int, pull_up_down: int = 20,
              initial: int | None = None) -> None:
        if direction == self.OUT:
            self.gpio.setup_output(pin, bool(initial), owner=self.owner)
        else:
            self.gpio.setup_input(pin, owner=self.owner)

    def output(self, pin: int, value: int | bool) -> None:
        self.gpio.write(pin, bool(value))

    def input(self, pin: int) -> bool:
        return self.gpio.read(pin)

    def cleanup(self, pins: object = None) -> None:
        """The backend owns the pins; it releases them on close."""
