"""Displays: character LCDs (HD44780) and graphic panels (SSD1306, SH1106, ST7735, ST7789).

A board profile names its display in a ``[display]`` table; `make_display` builds it:

    [display]
    kind = "hd44780-i2c"     # PCF8574 backpack
    bus = 1                  # /dev/i2c-1
    address = 0x27           # 0x3F for a PCF8574A
    cols = 20
    rows = 4

`KINDS` lists every kind with its keys and defaults (docs/displays.md explains the wirings).
Nothing here imports smbus2, luma or spidev until a profile asks for a display that needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from board.gpio.base import GpioBackend
from board.parts import TextDisplay


class DisplayError(RuntimeError):
    """A display cannot be built; the message names the display kind and what is missing."""


_TEXT = {"cols": 20, "rows": 4}
_OLED = {"bus": 1, "address": 0x3C, "width": 128, "height": 64, "rotate": 0, **_TEXT}
_TFT = {"spi_port": 0, "spi_device": 0, "dc": 24, "rst": 25, "backlight": None,
        "speed_hz": 8_000_000, "rotate": 0, **_TEXT}
REQUIRED = object()

KINDS: dict[str, dict[str, Any]] = {
    "text": dict(_TEXT),  # no hardware: the simulated board's display
    "hd44780-i2c": {"bus": 1, "address": 0x27, "backlight": True, **_TEXT},
    "hd44780-gpio": {"rs": REQUIRED, "e": REQUIRED, "d4": REQUIRED, "d5": REQUIRED,
                     "d6": REQUIRED, "d7": REQUIRED, "backlight": None, **_TEXT},
    "ssd1306": dict(_OLED),
    "sh1106": dict(_OLED),
    "st7735": {**_TFT, "width": 160, "height": 128, "bgr": False, "h_offset": 0,
               "v_offset": 0},
    "st7789": {**_TFT, "width": 240, "height": 240},
}
"""Every display kind a profile may name: its keys (besides "kind") and their defaults."""

DEV = Path("/dev")
PACKAGES = {"luma": "luma.core", "smbus2": "smbus2", "spidev": "spidev"}  # module: PyPI name
SPI_SPEEDS = frozenset(int(mhz * 1_000_000) for mhz in (0.5, 1, 2, 4, 8, 16, 20, 24, 28, 32, 36,
                                                        40, 44, 48, 50, 52))  # what luma accepts


def make_display(spec: Mapping[str, Any], gpio: GpioBackend | None) -> TextDisplay:
    """The display a profile's ``[display]`` table describes, initialised and blank.

    `gpio` is the board's GPIO backend (needed by "hd44780-gpio" and the SPI panels).
    Raises DisplayError naming the display and the missing key, library or device.
    """
    kind = str(spec.get("kind", ""))
    options = _options(kind, spec)
    return _BUILDERS[kind](kind, options, gpio)


def _options(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    if kind not in KINDS:
        raise DisplayError(f"display: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    defaults = KINDS[kind]
    unknown = sorted(set(spec) - set(defaults) - {"kind"})
    if unknown:
        raise DisplayError(f"display {kind}: unknown key {unknown[0]!r}; "
                           f"known: {', '.join(defaults)}")
    options = {key: spec.get(key, default) for key, default in defaults.items()}
    for key, value in options.items():
        options[key] = _checked(kind, key, value, defaults[key])
    return options


def _checked(kind: str, key: str, value: Any, default: Any) -> Any:
    if value is REQUIRED:
        raise DisplayError(f"display {kind}: missing key {key!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise DisplayError(f"display {kind}: {key} must be true or false, not {value!r}")
        return value
    if value is None:
        return None
    try:
        number = int(value, 0) if isinstance(value, str) else value
    except ValueError:
        number = None
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise DisplayError(f"display {kind}: {key} must be a whole number >= 0, not {value!r}")
    return number


def _text(kind: str, options: dict[str, Any], gpio: GpioBackend | None) -> TextDisplay:
    return TextDisplay(options["cols"], options["rows"])


def _hd44780_i2c(kind: str, options: dict[str, Any], gpio: GpioBackend | None) -> TextDisplay:
    from board.display import hd44780

    _lcd_geometry(kind, options)
    smbus2 = _require(kind, "smbus2")
    node = _device_node(kind, f"i2c-{options['bus']}", "enable I2C: dtparam=i2c_arm=on")
    try:
        smbus = smbus2.SMBus(options["bus"])
    except OSError as error:
        raise DisplayError(f"display {kind}: cannot open {node} ({error}; is the user in the "
                           "i2c group?)") from error
    bus = hd44780.I2CBackpackBus(smbus, options["address"], backlight=options["backlight"])
    try:
        return hd44780.HD44780Display(bus, options["cols"], options["rows"],
                                      sleep_us=hd44780.busy_sleep_us)
    except OSError as error:
        raise DisplayError(f"display {kind}: no answer at 0x{options['address']:02X} on {node} "
                           f"(a PCF8574A backpack is at 0x3F): {error}") from error


def _hd44780_gpio(kind: str, options: dict[str, Any], gpio: GpioBackend | None) -> TextDisplay:
    from board.display import hd44780

    _lcd_geometry(kind, options)
    pins = {name: options[name] for name in ("rs", "e", "d4", "d5", "d6", "d7")}
    sleep_us = hd44780.busy_sleep_us
    bus = hd44780.GpioBus(_need_gpio(kind, gpio), **pins, backlight=options["backlight"],
                          sleep_us=sleep_us)
    return hd44780.HD44780Display(bus, options["cols"], options["rows"], sleep_us=sleep_us)


def _lcd_geometry(kind: str, options: dict[str, Any]) -> None:
    from board.display.hd44780 import row_offsets

    try:
        row_offsets(options["cols"], options["rows"])
    except ValueError as error:
        raise DisplayError(f"display {kind}: {error}") from error


def _oled(kind: str, options: dict[str, Any], gpio: GpioBackend | None) -> TextDisplay:
    _check_rotate(kind, options)
    _require(kind, "smbus2")
    node = _device_node(kind, f"i2c-{options['bus']}", "enable I2C: dtparam=i2c_arm=on")
    serial_module = _require(kind, "luma.core.interface.serial")

    def build() -> TextDisplay:
        serial = serial_module.i2c(port=options["bus"], address=options["address"])
        return _graphic(kind, serial, options)

    return _luma_errors(kind, f"{node} address 0x{options['address']:02X}", build)


def _tft(kind: str, options: dict[str, Any], gpio: GpioBackend | None) -> TextDisplay:
    from board.display.graphic import LumaGpio

    _check_rotate(kind, options)
    _require(kind, "spidev")
    if options["speed_hz"] not in SPI_SPEEDS:
        raise DisplayError(f"display {kind}: speed_hz must be one of "
                           f"{', '.join(map(str, sorted(SPI_SPEEDS)))}")
    port, device = options["spi_port"], options["spi_device"]
    node = _device_node(kind, f"spidev{port}.{device}", "enable SPI: dtparam=spi=on")
    luma_gpio = LumaGpio(_need_gpio(kind, gpio))
    serial_module = _require(kind, "luma.core.interface.serial")
    extra = {key: options[key] for key in ("bgr", "h_offset", "v_offset") if key in options}
    if options["backlight"] is not None:
        extra.update(gpio=luma_gpio, gpio_LIGHT=options["backlight"])

    def build() -> TextDisplay:
        serial = serial_module.spi(gpio=luma_gpio, port=port, device=device,
                                   bus_speed_hz=options["speed_hz"], gpio_DC=options["dc"],
                                   gpio_RST=options["rst"], reset_hold_time=0.01,
                                   reset_release_time=0.12)
        return _graphic(kind, serial, options, **extra)

    return _luma_errors(kind, str(node), build)


def _graphic(kind: str, serial: Any, options: dict[str, Any], **extra: Any) -> TextDisplay:
    from board.display.graphic import graphic_display

    return graphic_display(kind, serial, options["width"], options["height"], options["rotate"],
                           columns=options["cols"], lines=options["rows"], **extra)


def _check_rotate(kind: str, options: dict[str, Any]) -> None:
    if options["rotate"] > 3:
        raise DisplayError(f"display {kind}: rotate must be 0-3 (quarter turns)")


def _luma_errors(kind: str, where: str, build: Callable[[], TextDisplay]) -> TextDisplay:
    """Run `build`, turning luma's and the OS's errors into a DisplayError."""
    import luma.core.error

    try:
        return build()
    except (luma.core.error.Error, OSError, AssertionError, ValueError) as error:
        detail = str(error) or type(error).__name__
        raise DisplayError(f"display {kind} on {where}: {detail}") from error


def _require(kind: str, module: str) -> Any:
    """Import `module`, or explain which package the display needs."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = PACKAGES.get(module.split(".")[0], module)
        raise DisplayError(f"display {kind}: needs the Python package {package!r}, "
                           f"which is not installed ({error})") from error


def _device_node(kind: str, name: str, hint: str) -> Path:
    node = DEV / name
    if not node.exists():
        raise DisplayError(f"display {kind}: {node} not present ({hint})")
    return node


def _need_gpio(kind: str, gpio: GpioBackend | None) -> GpioBackend:
    if gpio is None:
        raise DisplayError(f"display {kind}: needs GPIO pins, but the board has no GPIO backend")
    return gpio


_BUILDERS: dict[str, Callable[[str, dict[str, Any], GpioBackend | None], TextDisplay]] = {
    "text": _text,
    "hd44780-i2c": _hd44780_i2c,
    "hd44780-gpio": _hd44780_gpio,
    "ssd1306": _oled,
    "sh1106": _oled,
    "st7735": _tft,
    "st7789": _tft,
}

__all__ = ["DEV", "KINDS", "DisplayError", "make_display"]
