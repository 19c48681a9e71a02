"""Board profiles: data files that say which parts a board has and how they are wired.

`load_profile(name_or_path)` reads `board/profiles/<name>.toml` (or any path), checks it and
returns a `BoardProfile`; every mistake raises `ProfileError` naming the file and the key.
`build_board(profile, clock, dispatch)` opens the GPIO backend, builds each part on it and wires
them to a `board.parts.Board` whose `on_key`/`on_hook` the controller sets. The format of the
files is in docs/boards.md.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from board.gpio import BACKENDS, open_backend
from board.gpio.base import Dispatch, GpioBackend, call_now
from board.hookswitch import DEBOUNCE_S, Hookswitch
from board.keypad import REPEAT_KEYS, Keypad, KeyTiming
from board.keys import is_key
from board.led import BlinkScheduler, GpioLed
from board.parts import Board, Led, TextDisplay
from firmware.clock import Clock

PROFILES_DIR = Path(__file__).parent / "profiles"
KINDS = ("deskphone", "dect-base")
DISPLAY_KINDS = ("text", "hd44780-i2c", "ssd1306")  # when board.display is not there to ask
DISPLAY_PIN_KEYS = ("rs", "e", "d4", "d5", "d6", "d7", "dc", "rst", "backlight")
LED_COLOURS = ("green", "red", "yellow", "blue", "white")
MAX_BCM_PIN = 27
I2C_PINS = {1: {2: "SDA", 3: "SCL"}}  # bus -> BCM pin -> signal
UART_PINS = {"/dev/ttyAMA0": {14: "TXD", 15: "RXD"}, "/dev/serial0": {14: "TXD", 15: "RXD"}}
SPI_PINS = {0: {9: "MISO", 10: "MOSI", 11: "SCLK"}}  # port -> BCM pin -> signal
SPI_CE_PINS = {(0, 0): 8, (0, 1): 7}  # (port, device) -> chip-enable pin
SPI_DISPLAY_KINDS = ("st7735", "st7789")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

MakeDisplay = Callable[[dict[str, Any], GpioBackend | None], TextDisplay]
MakeFrontPanel = Callable[[dict[str, Any], Board, Clock, Dispatch], Any]


class ProfileError(ValueError):
    """A board profile that cannot be used; the message names the file and the key."""


# -- what a profile says ------------------------------------------------------------------------
@dataclass(frozen=True)
class DisplaySpec:
    kind: str
    options: Mapping[str, Any]  # everything but `kind`, as written (bus, address, cols, rows…)

    def as_dict(self) -> dict[str, Any]:
        """The spec `make_display(spec, gpio)` takes."""
        return {"kind": self.kind, **self.options}


@dataclass(frozen=True)
class KeypadSpec:
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    keymap: tuple[tuple[str, ...], ...]  # "" where a row and column have no key
    direct: Mapping[str, int]
    repeat: frozenset[str]
    timing: KeyTiming


@dataclass(frozen=True)
class HookswitchSpec:
    pin: int
    offhook_level: bool
    pull_up: bool
    debounce: float


@dataclass(frozen=True)
class LedSpec:
    name: str
    pins: Mapping[str, int]  # colour -> pin; empty: the LED only remembers its state
    active_low: bool = False


@dataclass(frozen=True)
class FrontPanelSpec:
    port: str
    baud: int

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "baud": self.baud}


@dataclass(frozen=True)
class ConsoleSpec:
    """The technician's serial console: a UART (e.g. /dev/ttyAMA0), a pyserial URL, or "pty"
    (the simulator: a pseudo-terminal whose name the phone announces), 8N1 at `baud`."""

    port: str
    baud: int = 115200


@dataclass(frozen=True)
class DectSpec:
    port: str


@dataclass(frozen=True)
class BoardProfile:
    name: str
    kind: str
    source: Path
    description: str = ""
    gpio: str | None = None
    gpio_options: Mapping[str, Any] = field(default_factory=dict)
    display: DisplaySpec | None = None
    keypad: KeypadSpec | None = None
    hookswitch: HookswitchSpec | None = None
    leds: tuple[LedSpec, ...] = ()
    frontpanel: FrontPanelSpec | None = None
    dect: DectSpec | None = None
    console: ConsoleSpec | None = None
    terminals: int = 1
    pins: Mapping[int, str] = field(default_factory=dict)  # BCM pin -> the key that uses it
    audio: Mapping[str, Any] = field(default_factory=dict)  # [audio], see docs/audio.md


# -- loading ----------------------------------------------------------------------------------
def display_kinds() -> tuple[str, ...]:
    """The display kinds a profile may name: those `board.display` builds."""
    try:
        from board.display import KINDS
    except ImportError:
        return DISPLAY_KINDS
    return tuple(KINDS)


def shipped_profiles() -> list[str]:
    """Names of the profiles that ship in `board/profiles/`."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> BoardProfile:
    """A shipped profile by name (`"rpi-deskphone"`) or any profile file by path."""
    path = _locate(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    return _Reader(path).profile(data)


def _locate(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        return Path(name_or_path)
    path = PROFILES_DIR / f"{text}.toml"
    if not path.is_file():
        raise ProfileError(f"no board profile {text!r} (shipped: "
                           f"{', '.join(shipped_profiles())}; or give a path to a .toml file)")
    return path


class _Reader:
    """Checks one file's data key by key; every error names the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pins: dict[int, str] = {}

    def error(self, where: str, message: str) -> ProfileError:
        return ProfileError(f"{self.path}: {where}: {message}" if where
                            else f"{self.path}: {message}")

    # -- the whole file ------------------------------------------------------------------------
    def profile(self, data: dict[str, Any]) -> BoardProfile:
        self.known(data, "", ("name", "description", "kind", "gpio", "gpio_options", "display",
                              "keypad", "hookswitch", "leds", "frontpanel", "dect", "terminals",
                              "audio", "console"))
        kind = self.choice(data, "kind", KINDS, required=True)
        parts = self.parts(data)
        profile = BoardProfile(
            name=self.text(data, "name", default=self.path.stem), kind=kind, source=self.path,
            description=self.text(data, "description", default=""),
            gpio=self.backend(data, parts), gpio_options=self.table(data, "gpio_options"),
            terminals=self.count(data, "terminals", default=1), pins=dict(self.pins),
            audio=self.audio(data.get("audio", {})), **parts)
        self.required(profile)
        return profile

    def parts(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "display": self.display(data["display"]) if "display" in data else None,
            "frontpanel": self.frontpanel(data["frontpanel"]) if "frontpanel" in data else None,
            "keypad": self.keypad(data["keypad"]) if "keypad" in data else None,
            "hookswitch": self.hookswitch(data["hookswitch"]) if "hookswitch" in data else None,
            "leds": self.leds(data.get("leds", {})),
            "dect": self.dect(data["dect"]) if "dect" in data else None,
            "console": self.console(data["console"]) if "console" in data else None,
        }

    def audio(self, raw: Any) -> dict[str, Any]:
        """Checked by the audio package itself; ALSA is not opened here."""
        from audio.setup import AudioSpecError, parse_audio

        table = self.as_table(raw, "audio")
        if table:
            try:
                parse_audio(table)
            except AudioSpecError as exc:
                raise self.error(str(exc).split(":", 1)[0], str(exc).split(": ", 1)[-1]
                                 ) from None
        return table

    def backend(self, data: dict[str, Any], parts: dict[str, Any]) -> str | None:
        wired = parts["keypad"] or parts["hookswitch"] or any(led.pins for led in parts["leds"])
        if "gpio" not in data:
            if wired:
                raise self.error("gpio", "missing; a keypad, hookswitch or LED on pins needs "
                                         f"a GPIO backend ({', '.join(sorted(BACKENDS))})")
            return None
        return self.choice(data, "gpio", sorted(BACKENDS), what="backend")

    def required(self, profile: BoardProfile) -> None:
        if profile.kind == "deskphone":
            self.need(profile.display, "display", "a deskphone needs a display")
            if profile.frontpanel is None:
                self.need(profile.hookswitch, "hookswitch",
                          "a deskphone needs a hookswitch (or a frontpanel that reads it)")
                self.need(profile.keypad, "keypad",
                          "a deskphone needs a keypad (or a frontpanel that reads it)")
        else:
            self.need(profile.dect, "dect", "a dect-base needs its DECT radio")

    def need(self, part: object, key: str, message: str) -> None:
        if part is None:
            raise self.error(key, f"missing; {message}")

    # -- parts ------------------------------------------------------------------------------
    def display(self, raw: Any) -> DisplaySpec:
        data = self.as_table(raw, "display")
        kind = self.choice(data, "kind", display_kinds(), where="display", what="display kind",
                           required=True)
        for key, minimum in (("cols", 1), ("rows", 1)):
            if key in data:
                self.count(data, key, where="display", minimum=minimum)
        self.display_pins(data)
        return DisplaySpec(kind, {k: v for k, v in data.items() if k != "kind"})

    def display_pins(self, data: dict[str, Any]) -> None:
        """Claim the pins a display uses: its bus's, and any it names (rs, dc, backlight…).

        Other keys are the display driver's (board.display checks them when it builds one).
        """
        if "bus" in data:
            self.reserve(I2C_PINS.get(data["bus"], {}), f"display (I2C bus {data['bus']} {{}})")
        if "spi_port" in data or data.get("kind") in SPI_DISPLAY_KINDS:
            port, device = data.get("spi_port", 0), data.get("spi_device", 0)
            signals = dict(SPI_PINS.get(port, {}))
            if (port, device) in SPI_CE_PINS:
                signals[SPI_CE_PINS[port, device]] = f"CE{device}"
            self.reserve(signals, f"display (SPI {port} {{}})")
        for key in DISPLAY_PIN_KEYS:
            if isinstance(data.get(key), int) and not isinstance(data[key], bool):
                self.pin(data[key], f"display.{key}")

    def keypad(self, raw: Any) -> KeypadSpec:
        data = self.as_table(raw, "keypad")
        self.known(data, "keypad", ("rows", "cols", "keymap", "direct", "repeat", "debounce_ms",
                                    "long_press_ms", "repeat_delay_ms", "repeat_interval_ms",
                                    "scan_ms", "stuck_after_s"))
        rows = self.pin_list(data, "rows", "keypad")
        cols = self.pin_list(data, "cols", "keypad")
        direct = {name: self.pin(pin, f"keypad.direct.{name}")
                  for name, pin in self.table(data, "direct", "keypad").items()}
        for name in direct:
            self.key_name(name, f"keypad.direct.{name}")
        keymap = self.keymap(data.get("keymap", []), len(rows), len(cols))
        return KeypadSpec(rows, cols, keymap, direct, self.repeat(data), self.timing(data))

    def keymap(self, raw: Any, rows: int, cols: int) -> tuple[tuple[str, ...], ...]:
        if not isinstance(raw, list) or len(raw) != rows or any(
                not isinstance(row, list) or len(row) != cols for row in raw):
            raise self.error("keypad.keymap", f"must be {rows} lists of {cols} key names, one "
                                              "per row and column pin (\"\" for no key)")
        seen: set[str] = set()
        for r, row in enumerate(raw):
            for c, name in enumerate(row):
                self.keymap_entry(name, f"keypad.keymap[{r}][{c}]", seen)
        return tuple(tuple(row) for row in raw)

    def keymap_entry(self, name: Any, where: str, seen: set[str]) -> None:
        if name == "":
            return
        self.key_name(name, where)
        if name in seen:
            raise self.error(where, f"key {name!r} is in the keymap twice")
        seen.add(name)

    def repeat(self, data: dict[str, Any]) -> frozenset[str]:
        names = data.get("repeat", sorted(REPEAT_KEYS))
        if not isinstance(names, list):
            raise self.error("keypad.repeat", "must be a list of key names")
        for i, name in enumerate(names):
            self.key_name(name, f"keypad.repeat[{i}]")
        return frozenset(names)

    def timing(self, data: dict[str, Any]) -> KeyTiming:
        default = KeyTiming()
        ms = {"debounce": "debounce_ms", "long_press": "long_press_ms",
              "repeat_delay": "repeat_delay_ms", "repeat_interval": "repeat_interval_ms",
              "scan_interval": "scan_ms"}
        values = {attr: self.seconds(data, key, getattr(default, attr) * 1000, 1000)
                  for attr, key in ms.items()}
        values["stuck_after"] = self.seconds(data, "stuck_after_s", default.stuck_after, 1)
        return KeyTiming(**values)

    def hookswitch(self, raw: Any) -> HookswitchSpec:
        data = self.as_table(raw, "hookswitch")
        self.known(data, "hookswitch", ("pin", "offhook", "pull", "debounce_ms"))
        if "pin" not in data:
            raise self.error("hookswitch.pin", "missing")
        pin = self.pin(data["pin"], "hookswitch.pin")
        offhook = self.choice(data, "offhook", ("low", "high"), where="hookswitch") or "low"
        pull = self.choice(data, "pull", ("up", "down"), where="hookswitch") or "up"
        debounce = self.seconds(data, "debounce_ms", DEBOUNCE_S * 1000, 1000, "hookswitch")
        return HookswitchSpec(pin, offhook == "high", pull == "up", debounce)

    def leds(self, raw: Any) -> tuple[LedSpec, ...]:
        data = self.as_table(raw, "leds")
        return tuple(self.led(name, value) for name, value in data.items())

    def led(self, name: str, raw: Any) -> LedSpec:
        where = f"leds.{name}"
        if not _NAME.match(name):
            raise self.error(where, "an LED name is lower-case letters, digits and _")
        data = self.as_table(raw, where)
        self.known(data, where, ("pin", "colour", "active_low", *LED_COLOURS))
        active_low = self.flag(data, "active_low", where)
        if "pin" in data:
            return LedSpec(name, self.single_led(data, where), active_low)
        pins = {c: self.pin(data[c], f"{where}.{c}") for c in LED_COLOURS if c in data}
        return LedSpec(name, pins, active_low)

    def single_led(self, data: dict[str, Any], where: str) -> dict[str, int]:
        if any(c in data for c in LED_COLOURS):
            raise self.error(where, "give either pin (and colour) or one pin per colour")
        colour = self.choice(data, "colour", LED_COLOURS, where=where) or "green"
        return {colour: self.pin(data["pin"], f"{where}.pin")}

    def console(self, raw: Any) -> ConsoleSpec:
        data = self.as_table(raw, "console")
        self.known(data, "console", ("port", "baud"))
        port = self.text(data, "port", where="console")
        self.reserve(UART_PINS.get(port, {}), f"console ({port} {{}})")
        return ConsoleSpec(port, self.count(data, "baud", where="console", default=115200))

    def frontpanel(self, raw: Any) -> FrontPanelSpec:
        data = self.as_table(raw, "frontpanel")
        self.known(data, "frontpanel", ("port", "baud"))
        port = self.text(data, "port", where="frontpanel")
        self.reserve(UART_PINS.get(port, {}), f"frontpanel ({port} {{}})")
        return FrontPanelSpec(port, self.count(data, "baud", where="frontpanel", default=115200))

    def dect(self, raw: Any) -> DectSpec:
        data = self.as_table(raw, "dect")
        self.known(data, "dect", ("port",))
        return DectSpec(self.text(data, "port", where="dect"))

    # -- pins ------------------------------------------------------------------------------
    def pin(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not (
                0 <= value <= MAX_BCM_PIN):
            raise self.error(where, f"{value!r} is not a usable BCM GPIO "
                                    f"(0-{MAX_BCM_PIN})")
        self.use(value, where)
        return value

    def pin_list(self, data: dict[str, Any], key: str, where: str) -> tuple[int, ...]:
        raw = data.get(key, [])
        if not isinstance(raw, list):
            raise self.error(f"{where}.{key}", "must be a list of BCM GPIO numbers")
        return tuple(self.pin(v, f"{where}.{key}[{i}]") for i, v in enumerate(raw))

    def use(self, pin: int, where: str) -> None:
        if pin in self.pins:
            raise self.error("", f"pin {pin} is used twice: by {self.pins[pin]} and by {where}")
        self.pins[pin] = where

    def reserve(self, signals: Mapping[int, str], owner: str) -> None:
        """Claim the pins a bus uses; `owner` has a {} for the signal's name."""
        for pin, signal in signals.items():
            self.use(pin, owner.format(signal))

    # -- values ------------------------------------------------------------------------------
    def known(self, data: dict[str, Any], where: str, keys: Sequence[str]) -> None:
        for key in data:
            if key not in keys:
                place = f"{where}.{key}" if where else key
                raise self.error(place, f"unknown key (known: {', '.join(keys)})")

    def as_table(self, raw: Any, where: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.error(where, "must be a table")
        return raw

    def table(self, data: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
        place = f"{where}.{key}" if where else key
        return dict(self.as_table(data.get(key, {}), place))

    def text(self, data: dict[str, Any], key: str, where: str = "",
             default: str | None = None) -> str:
        place = f"{where}.{key}" if where else key
        value = data.get(key, default)
        if value is None:
            raise self.error(place, "missing")
        if not isinstance(value, str) or (not value and default is None):
            raise self.error(place, "must be a non-empty string")
        return value

    def choice(self, data: dict[str, Any], key: str, allowed: Sequence[str], where: str = "",
               what: str = "value", required: bool = False) -> Any:
        place = f"{where}.{key}" if where else key
        if key not in data:
            if required:
                raise self.error(place, f"missing (choose {', '.join(allowed)})")
            return None
        if data[key] not in allowed:
            raise self.error(place, f"unknown {what} {data[key]!r} (choose {', '.join(allowed)})")
        return data[key]

    def count(self, data: dict[str, Any], key: str, where: str = "", default: int | None = None,
              minimum: int = 1) -> int:
        place = f"{where}.{key}" if where else key
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(place, f"must be a whole number, at least {minimum}")
        return value

    def flag(self, data: dict[str, Any], key: str, where: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise self.error(f"{where}.{key}", "must be true or false")
        return value

    def seconds(self, data: dict[str, Any], key: str, default: float, per_second: float,
                where: str = "keypad") -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error(f"{where}.{key}", "must be a number above 0")
        return value / per_second

    def key_name(self, name: Any, where: str) -> None:
        if not isinstance(name, str) or not is_key(name):
            raise self.error(where, f"unknown key {name!r} (see board/keys.py)")


# -- building ---------------------------------------------------------------------------------
@dataclass(eq=False)
class WiredBoard(Board):
    """A `Board` built from a profile, with the parts behind it kept for whoever needs them."""

    profile: BoardProfile | None = None
    gpio: GpioBackend | None = None
    keypad: Keypad | None = None
    hookswitch: Hookswitch | None = None
    blinker: BlinkScheduler | None = None
    frontpanel: Any = None
    on_long_press: Callable[[str], None] | None = None
    on_fault: Callable[[str, str], None] | None = None

    def close(self) -> None:
        """Stop every timer and release the pins."""
        for part in (self.keypad, self.hookswitch, self.blinker, self.frontpanel, self.gpio):
            close = getattr(part, "close", None)
            if close is not None:
                close()

    def key(self, name: str) -> None:
        if self.on_key is not None:
            self.on_key(name)

    def long_press(self, name: str) -> None:
        if self.on_long_press is not None:
            self.on_long_press(name)

    def hook(self, offhook: bool) -> None:
        if self.on_hook is not None:
            self.on_hook(offhook)

    def fault(self, part: str, message: str) -> None:
        if self.on_fault is not None:
            self.on_fault(part, message)


def build_board(profile: BoardProfile, clock: Clock, dispatch: Dispatch = call_now,
                make_display: MakeDisplay | None = None,
                make_frontpanel: MakeFrontPanel | None = None) -> WiredBoard:
    """The one terminal of a desk-phone profile, its parts built and wired to the `Board`.

    `make_display(spec, gpio)` builds displays other than `text` (default:
    `board.display.make_display`); `make_frontpanel(spec, board, clock, dispatch)` attaches and
    starts a front-panel link (default: `board.frontpanel`'s `FrontPanelLink` on the profile's
    port, with `attach_frontpanel`). Both are imported only when needed.
    """
    if profile.terminals != 1:
        raise ProfileError(f"{profile.source}: terminals: this {profile.kind} has "
                           f"{profile.terminals} terminals; use build_boards()")
    gpio = _open_gpio(profile, clock, dispatch)
    try:
        board = WiredBoard(name=profile.name, display=_display(profile, gpio, make_display),
                           profile=profile, gpio=gpio, blinker=BlinkScheduler(clock))
    except BaseException:
        if gpio is not None:
            gpio.close()
        raise
    try:
        _add_parts(board, profile, clock, dispatch, make_frontpanel)
    except BaseException:
        board.close()
        raise
    return board


def build_boards(profile: BoardProfile, clock: Clock, dispatch: Dispatch = call_now,
                 make_display: MakeDisplay | None = None,
                 make_frontpanel: MakeFrontPanel | None = None) -> list[Board]:
    """One `Board` per terminal: the desk phone's, or one per DECT handset (a placeholder
    until the radio driver lands: each handset gets a 20x4 text screen and no LEDs)."""
    if profile.kind != "dect-base":
        return [build_board(profile, clock, dispatch, make_display, make_frontpanel)]
    return [WiredBoard(name=f"{profile.name}/handset{n}", display=TextDisplay(), profile=profile)
            for n in range(1, profile.terminals + 1)]


def _open_gpio(profile: BoardProfile, clock: Clock, dispatch: Dispatch) -> GpioBackend | None:
    if profile.gpio is None:
        return None
    options = dict(profile.gpio_options)
    if profile.gpio == "sim":
        options.setdefault("clock", clock)
    return open_backend(profile.gpio, dispatch, **options)


def _add_parts(board: WiredBoard, profile: BoardProfile, clock: Clock, dispatch: Dispatch,
               make_frontpanel: MakeFrontPanel | None) -> None:
    """Keypad, hookswitch, LEDs and front-panel link, wired to the board's callbacks."""
    gpio, blinker = board.gpio, board.blinker
    if profile.keypad is not None and gpio is not None:
        board.keypad = _keypad(profile.keypad, gpio, clock, board)
    if profile.hookswitch is not None and gpio is not None:
        board.hookswitch = _hookswitch(profile.hookswitch, gpio, clock, board)
    if blinker is not None:
        board.leds = _leds(profile, gpio, blinker)
    if profile.frontpanel is not None:
        factory = make_frontpanel or _default_frontpanel(profile)
        board.frontpanel = factory(profile.frontpanel.as_dict(), board, clock, dispatch)


def _display(profile: BoardProfile, gpio: GpioBackend | None,
             make_display: MakeDisplay | None) -> TextDisplay:
    spec = profile.display
    if spec is None:
        return TextDisplay()
    if spec.kind == "text":
        return TextDisplay(spec.options.get("cols", 20), spec.options.get("rows", 4))
    factory = make_display or _default_display(profile)
    return factory(spec.as_dict(), gpio)


def _default_display(profile: BoardProfile) -> MakeDisplay:
    try:
        from board.display import make_display
    except ImportError:
        raise ProfileError(f"{profile.source}: display.kind: the display drivers "
                           "(board.display) are not available") from None
    return make_display


def _default_frontpanel(profile: BoardProfile) -> MakeFrontPanel:
    try:
        from board.frontpanel import FrontPanelLink, attach_frontpanel
    except ImportError:
        raise ProfileError(f"{profile.source}: frontpanel: the front-panel link "
                           "(board.frontpanel) is not available") from None

    def make(spec: dict[str, Any], board: Board, clock: Clock, dispatch: Dispatch) -> Any:
        link = FrontPanelLink.open(spec["port"], clock, baudrate=spec["baud"],
                                   dispatch=dispatch)
        attach_frontpanel(board, link)
        if isinstance(board, WiredBoard):
            link.on_long_press = board.long_press
        link.start()
        return link
    return make


def _leds(profile: BoardProfile, gpio: GpioBackend | None,
          blinker: BlinkScheduler) -> dict[str, Led]:
    leds: dict[str, Led] = {}
    for spec in profile.leds:
        if spec.pins and gpio is not None:
            leds[spec.name] = GpioLed(spec.name, gpio, spec.pins, blinker, spec.active_low)
        else:
            leds[spec.name] = Led(spec.name)
    return leds


def _keypad(spec: KeypadSpec, gpio: GpioBackend, clock: Clock, board: WiredBoard) -> Keypad:
    keypad = Keypad(gpio, clock, rows=spec.rows, cols=spec.cols, keymap=spec.keymap,
                    direct=spec.direct, repeat_keys=spec.repeat, timing=spec.timing)
    keypad.on_key = board.key
    keypad.on_long_press = board.long_press
    keypad.on_fault = board.fault
    return keypad


def _hookswitch(spec: HookswitchSpec, gpio: GpioBackend, clock: Clock,
                board: WiredBoard) -> Hookswitch:
    hookswitch = Hookswitch(gpio, spec.pin, clock, offhook_level=spec.offhook_level,
                            pull_up=spec.pull_up, debounce=spec.debounce)
    hookswitch.on_hook = board.hook
    return hookswitch
