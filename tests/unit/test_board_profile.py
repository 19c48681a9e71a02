"""Board profiles: the shipped ones load, mistakes are named exactly, boards are wired right.

Also the GPIO backends a profile names: the registry, RPi.GPIO's missing-library error (and its
calls, on a stand-in module), and libgpiod's chip errors and edge thread (on a stand-in `gpiod`).
"""

from __future__ import annotations

import enum
import os
import queue
import subprocess
import sys
import tomllib
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from board.gpio import open_backend
from board.gpio.base import GpioBackend, GpioError
from board.gpio.libgpiod import LibGpiod
from board.gpio.rpigpio import RpiGpio
from board.gpio.sim import SimGpio
from board.keypad import REPEAT_KEYS
from board.led import GpioLed
from board.parts import Board, Led, LedPattern, LedState, TextDisplay
from board.profile import (
    PROFILES_DIR,
    BoardProfile,
    ProfileError,
    WiredBoard,
    build_board,
    build_boards,
    display_kinds,
    load_profile,
    shipped_profiles,
)
from board.sim import SIM_LEDS, sim_board
from firmware.clock import ManualClock

SHIPPED = ["dect-base", "rpi-deskphone", "rpi-deskphone-mcu", "rpi-deskphone-oled", "sim",
           "sim-dect-base"]
BUS_PINS = {2, 3, 7, 8, 9, 10, 11, 14, 15}  # I2C, SPI, UART
MISSING_RPI = ('keypad: RPi.GPIO is not installed (pip install luren[rpi]) — '
               'use gpio = "libgpiod" on a Raspberry Pi 5')

BASE = """\
kind = "deskphone"
gpio = "sim"

[display]
kind = "text"

[keypad]
rows = [5, 6]
cols = [16, 19]
keymap = [["1", "2"], ["3", "4"]]

[hookswitch]
pin = 4

[leds]
line1 = { green = 17, red = 27 }
"""


def write(tmp_path: Path, text: str, name: str = "board.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    return path, str(err.value)


def no_rpi(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make RPi.GPIO unimportable even where it is installed."""
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)


class FakeDisplays:
    """A `make_display` that records what it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], GpioBackend | None]] = []

    def __call__(self, spec: dict[str, Any], gpio: GpioBackend | None) -> TextDisplay:
        self.calls.append((spec, gpio))
        return TextDisplay(spec.get("cols", 21), spec.get("rows", 8))


# -- the shipped profiles ----------------------------------------------------------------------
def test_the_shipped_profiles() -> None:
    assert shipped_profiles() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, BoardProfile)
    assert profile.name == name
    assert profile.source == PROFILES_DIR / f"{name}.toml"
    assert profile.description


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_parts_keep_off_the_bus_pins(name: str) -> None:
    profile = load_profile(name)
    for pin, user in profile.pins.items():
        if pin in BUS_PINS:
            assert user.startswith(("display (I2C", "frontpanel (", "console (")), (pin, user)


def test_rpi_deskphone() -> None:
    profile = load_profile("rpi-deskphone")
    assert profile.gpio == "rpigpio"
    assert profile.display is not None
    assert profile.display.as_dict() == {"kind": "hd44780-i2c", "bus": 1, "address": 0x27,
                                         "cols": 20, "rows": 4}
    assert profile.keypad is not None and len(profile.keypad.rows) == 4
    assert profile.keypad.direct == {"speaker": 22, "mute": 23}
    assert profile.keypad.timing.debounce == pytest.approx(0.020)
    assert profile.keypad.timing.long_press == pytest.approx(0.800)
    assert profile.hookswitch is not None and profile.hookswitch.debounce == pytest.approx(0.05)
    assert {led.name: dict(led.pins) for led in profile.leds} == {
        "line1": {"green": 17, "red": 27}, "line2": {"green": 24, "red": 25},
        "message": {"red": 26}, "speaker": {"green": 18}, "mute": {"red": 1},
        "headset": {"green": 0}}


@pytest.mark.parametrize("name", ["rpi-deskphone", "rpi-deskphone-oled", "rpi-deskphone-mcu"])
def test_rpi_deskphones_carry_their_sound_paths(name: str) -> None:
    from audio.routing import Path as AudioPath
    from audio.setup import parse_audio

    spec = parse_audio(load_profile(name).audio)
    devices = {path.value: (config.capture_device, config.playback_device, config.rate,
                            config.channels, config.period_frames)
               for path, config in spec.paths.items()}
    assert devices == {
        "handset": ("plughw:CARD=Handset", "plughw:CARD=Handset", 16000, 1, 320),
        "headset": ("plughw:CARD=Headset", "plughw:CARD=Headset", 16000, 1, 320),
        "speaker": ("plughw:CARD=Speaker", "plughw:CARD=Speaker", 16000, 1, 320)}
    assert spec.ringer is not None and spec.ringer.playback_device == "plughw:CARD=Speaker"
    assert spec.pace is False  # real cards keep time themselves
    assert dict(spec.jack) == {"kind": "alsa", "card": "Headset", "control": "Headphone Jack"}
    assert AudioPath.HANDSET in spec.paths


def test_rpi_deskphone_oled_differs_only_in_its_display() -> None:
    lcd, oled = load_profile("rpi-deskphone"), load_profile("rpi-deskphone-oled")
    assert oled.display is not None
    assert oled.display.as_dict() == {"kind": "ssd1306", "bus": 1, "address": 0x3C}
    assert (oled.keypad, oled.hookswitch, oled.leds, oled.pins) == (
        lcd.keypad, lcd.hookswitch, lcd.leds, lcd.pins)


def test_rpi_deskphone_mcu_reads_its_front_panel_over_the_uart() -> None:
    profile = load_profile("rpi-deskphone-mcu")
    assert profile.frontpanel is not None
    assert profile.frontpanel.as_dict() == {"port": "/dev/ttyAMA0", "baud": 115200}
    assert (profile.keypad, profile.hookswitch, profile.gpio) == (None, None, None)
    assert profile.pins == {2: "display (I2C bus 1 SDA)", 3: "display (I2C bus 1 SCL)",
                            14: "frontpanel (/dev/ttyAMA0 TXD)",
                            15: "frontpanel (/dev/ttyAMA0 RXD)"}


def test_dect_base() -> None:
    profile = load_profile("dect-base")
    assert (profile.kind, profile.terminals) == ("dect-base", 6)
    assert profile.dect is not None and profile.dect.port == "/dev/ttyUSB0"
    assert (profile.keypad, profile.display) == (None, None)
    from audio.setup import parse_audio

    spec = parse_audio(profile.audio)
    assert spec.paths == {} and spec.ringer is None  # no sound of its own: the handsets'
    assert {n: (c.capture_device, c.playback_device, c.rate) for n, c in spec.channels.items()
            } == {n: (f"plughw:CARD=Dect,DEV={n}", f"plughw:CARD=Dect,DEV={n}", 16000)
                  for n in range(4)}


def test_sim_dect_base_records_its_handsets_instead() -> None:
    profile = load_profile("sim-dect-base")
    assert (profile.kind, profile.terminals, profile.audio) == ("dect-base", 6, {})
    assert profile.console is not None and profile.console.port == "pty"


# -- mistakes, named exactly -------------------------------------------------------------------
def test_a_pin_used_twice_names_both_parts(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace("pin = 4", "pin = 17"))
    assert message == f"{path}: pin 17 is used twice: by hookswitch.pin and by leds.line1.green"


def test_a_pin_clashing_with_the_displays_bus(tmp_path: Path) -> None:
    text = BASE.replace('kind = "text"', 'kind = "ssd1306"\nbus = 1\naddress = 0x3C')
    path, message = refused(tmp_path, text.replace("rows = [5, 6]", "rows = [3, 6]"))
    assert message == (f"{path}: pin 3 is used twice: by display (I2C bus 1 SCL) and by "
                       "keypad.rows[0]")


@pytest.mark.parametrize(("value", "shown"), [("28", "28"), ("-1", "-1"), ('"GPIO4"', "'GPIO4'"),
                                              ("true", "True"), ("4.0", "4.0")])
def test_an_unknown_pin(tmp_path: Path, value: str, shown: str) -> None:
    path, message = refused(tmp_path, BASE.replace("pin = 4", f"pin = {value}"))
    assert message == f"{path}: hookswitch.pin: {shown} is not a usable BCM GPIO (0-27)"


def test_an_unknown_pin_in_a_list(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace("cols = [16, 19]", "cols = [16, 40]"))
    assert message == f"{path}: keypad.cols[1]: 40 is not a usable BCM GPIO (0-27)"


def test_a_deskphone_without_hookswitch(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace("[hookswitch]\npin = 4\n", ""))
    assert message == (f"{path}: hookswitch: missing; a deskphone needs a hookswitch (or a "
                       "frontpanel that reads it)")


def test_a_deskphone_without_keypad(tmp_path: Path) -> None:
    start, end = BASE.index("[keypad]"), BASE.index("[hookswitch]")
    path, message = refused(tmp_path, BASE[:start] + BASE[end:])
    assert message == (f"{path}: keypad: missing; a deskphone needs a keypad (or a frontpanel "
                       "that reads it)")


def test_a_deskphone_without_display(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('[display]\nkind = "text"\n', ""))
    assert message == f"{path}: display: missing; a deskphone needs a display"


def test_a_dect_base_without_radio(tmp_path: Path) -> None:
    path, message = refused(tmp_path, 'kind = "dect-base"\nterminals = 4\n')
    assert message == f"{path}: dect: missing; a dect-base needs its DECT radio"


def test_an_unknown_key_in_the_keymap(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('["3", "4"]', '["flash", "4"]'))
    assert message == f"{path}: keypad.keymap[1][0]: unknown key 'flash' (see board/keys.py)"


def test_an_unknown_direct_key(tmp_path: Path) -> None:
    text = BASE.replace('keymap = [', 'direct = { hookflash = 22 }\nkeymap = [')
    path, message = refused(tmp_path, text)
    assert message == (f"{path}: keypad.direct.hookflash: unknown key 'hookflash' "
                       "(see board/keys.py)")


def test_a_key_twice_in_the_keymap(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('["3", "4"]', '["3", "1"]'))
    assert message == f"{path}: keypad.keymap[1][1]: key '1' is in the keymap twice"


def test_a_keymap_of_the_wrong_shape(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('["3", "4"]', '["3"]'))
    assert message == (f'{path}: keypad.keymap: must be 2 lists of 2 key names, one per row and '
                       'column pin ("" for no key)')


def test_bad_toml(tmp_path: Path) -> None:
    text = BASE.replace('kind = "deskphone"', "kind = ")
    path, message = refused(tmp_path, text)
    with pytest.raises(tomllib.TOMLDecodeError) as toml_error:
        tomllib.loads(text)
    assert message == f"{path}: not valid TOML: {toml_error.value}"
    assert message == f"{path}: not valid TOML: Invalid value (at line 1, column 8)"


def test_an_unknown_backend(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('gpio = "sim"', 'gpio = "wiringpi"'))
    assert message == f"{path}: gpio: unknown backend 'wiringpi' (choose libgpiod, rpigpio, sim)"


def test_pins_without_a_backend(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('gpio = "sim"\n', ""))
    assert message == (f"{path}: gpio: missing; a keypad, hookswitch or LED on pins needs a GPIO "
                       "backend (libgpiod, rpigpio, sim)")


def test_an_unknown_display_kind(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('kind = "text"', 'kind = "st7920"'))
    assert message == (f"{path}: display.kind: unknown display kind 'st7920' (choose "
                       f"{', '.join(display_kinds())})")
    assert {"text", "hd44780-i2c", "ssd1306"} <= set(display_kinds())


def test_a_display_pin_clashing_with_a_key_row(tmp_path: Path) -> None:
    text = BASE.replace('kind = "text"', 'kind = "hd44780-gpio"\nrs = 6\ne = 22\nd4 = 23\n'
                                         'd5 = 24\nd6 = 25\nd7 = 26')
    path, message = refused(tmp_path, text)
    assert message == f"{path}: pin 6 is used twice: by display.rs and by keypad.rows[1]"


def test_an_spi_display_takes_the_spi_pins(tmp_path: Path) -> None:
    text = BASE.replace('kind = "text"', 'kind = "st7789"\ndc = 24\nrst = 25')
    profile = load_profile(write(tmp_path, text))
    assert {p: profile.pins[p] for p in (8, 9, 10, 11, 24, 25)} == {
        8: "display (SPI 0 CE0)", 9: "display (SPI 0 MISO)", 10: "display (SPI 0 MOSI)",
        11: "display (SPI 0 SCLK)", 24: "display.dc", 25: "display.rst"}


def test_an_unknown_kind_of_board(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace('kind = "deskphone"', 'kind = "pager"'))
    assert message == f"{path}: kind: unknown value 'pager' (choose deskphone, dect-base)"


def test_a_misspelt_key(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace("pin = 4", "pin = 4\ndebounce = 50"))
    assert message == (f"{path}: hookswitch.debounce: unknown key (known: pin, offhook, pull, "
                       "debounce_ms)")


def test_a_bad_offhook_level(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace("pin = 4", 'pin = 4\noffhook = "lifted"'))
    assert message == f"{path}: hookswitch.offhook: unknown value 'lifted' (choose low, high)"


def test_a_bad_time(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace("cols = [16, 19]",
                                                   "cols = [16, 19]\ndebounce_ms = 0"))
    assert message == f"{path}: keypad.debounce_ms: must be a number above 0"


def test_an_led_with_pin_and_colour_pins(tmp_path: Path) -> None:
    path, message = refused(tmp_path, BASE.replace("{ green = 17, red = 27 }",
                                                   "{ pin = 17, red = 27 }"))
    assert message == f"{path}: leds.line1: give either pin (and colour) or one pin per colour"


def test_an_unknown_profile_name() -> None:
    with pytest.raises(ProfileError) as err:
        load_profile("nope")
    assert str(err.value) == ("no board profile 'nope' (shipped: dect-base, rpi-deskphone, "
                              "rpi-deskphone-mcu, rpi-deskphone-oled, sim, sim-dect-base; or give "
                              "a path to a "
                              ".toml file)")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(tmp_path / "gone.toml")
    assert str(err.value) == f"{tmp_path / 'gone.toml'}: cannot read: No such file or directory"


def test_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, BASE, "my-board.toml"))
    assert profile.name == "my-board"
    assert profile.keypad is not None and profile.keypad.repeat == REPEAT_KEYS
    assert profile.keypad.timing.scan_interval == pytest.approx(0.005)
    assert profile.keypad.timing.stuck_after == pytest.approx(30.0)
    assert profile.hookswitch is not None
    assert (profile.hookswitch.offhook_level, profile.hookswitch.pull_up) == (False, True)


# -- building boards ---------------------------------------------------------------------------
def test_sim_board_is_the_sim_profile() -> None:
    board = sim_board()
    assert isinstance(board, Board)
    assert board.name == "sim"
    assert (board.display.width, board.display.height) == (20, 4)
    assert tuple(board.leds) == SIM_LEDS
    assert all(type(led) is Led for led in board.leds.values())
    assert isinstance(board.gpio, SimGpio)


def test_building_the_sim_board_costs_no_timer() -> None:
    clock = ManualClock()
    build_board(load_profile("sim"), clock)
    clock.advance(5.0)
    assert clock.pending() == 0


def test_keys_and_hook_flow_to_the_boards_callbacks() -> None:
    clock = ManualClock()
    board = sim_board(clock)
    assert board.keypad is not None and board.hookswitch is not None and board.gpio is not None
    gpio = board.gpio
    assert isinstance(gpio, SimGpio)
    events: list[Any] = []
    board.on_key = lambda name: events.append(("key", name))
    board.on_hook = lambda offhook: events.append(("hook", offhook))
    board.on_long_press = lambda name: events.append(("long", name))
    gpio.drive_low(board.hookswitch.pin)  # lift the handset
    gpio.connect(*board.keypad.contacts("5"))
    for _ in range(1000):
        clock.advance(0.001)
    gpio.disconnect(*board.keypad.contacts("5"))
    gpio.drive_low(board.keypad.contacts("speaker")[0])
    for _ in range(100):
        clock.advance(0.001)
    assert events == [("key", "5"), ("hook", True), ("long", "5"), ("key", "speaker")]


def test_keys_before_the_controller_listens_are_dropped() -> None:
    clock = ManualClock()
    board = sim_board(clock)
    assert board.keypad is not None and isinstance(board.gpio, SimGpio)
    board.gpio.connect(*board.keypad.contacts("1"))
    for _ in range(50):
        clock.advance(0.001)
    assert board.keypad.pressed() == {"1"}


def test_stuck_key_faults_reach_the_board() -> None:
    clock = ManualClock()
    board = sim_board(clock)
    assert board.keypad is not None and isinstance(board.gpio, SimGpio)
    faults: list[tuple[str, str]] = []
    board.on_fault = lambda part, message: faults.append((part, message))
    board.gpio.connect(*board.keypad.contacts("#"))
    for _ in range(3100):
        clock.advance(0.01)
    assert faults == [("keypad", "key # stuck down for 30 s; ignored until released")]


def test_leds_on_pins_become_gpio_leds_sharing_one_blinker(tmp_path: Path) -> None:
    clock = ManualClock()
    text = BASE.replace("line1 = { green = 17, red = 27 }",
                        'line1 = { green = 17, red = 27 }\nmessage = { pin = 26, colour = "red" }')
    board = build_board(load_profile(write(tmp_path, text)), clock)
    line1, message = board.leds["line1"], board.leds["message"]
    assert isinstance(line1, GpioLed) and isinstance(message, GpioLed)
    assert line1.blinker is message.blinker is board.blinker
    line1.set(LedState(LedPattern.FAST_BLINK, "amber"))
    message.set(LedState(LedPattern.FAST_BLINK, "red"))
    assert clock.pending() == 1
    assert isinstance(board.gpio, SimGpio)
    assert {p: board.gpio.level(p) for p in (17, 27, 26)} == {17: True, 27: True, 26: True}
    board.close()
    assert clock.pending() == 0


def test_rpi_deskphone_here_says_rpigpio_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    no_rpi(monkeypatch)
    displays = FakeDisplays()
    with pytest.raises(GpioError) as err:
        build_board(load_profile("rpi-deskphone"), ManualClock(), make_display=displays)
    assert str(err.value) == MISSING_RPI
    (spec, gpio), = displays.calls
    assert spec == {"kind": "hd44780-i2c", "bus": 1, "address": 0x27, "cols": 20, "rows": 4}
    assert isinstance(gpio, RpiGpio)


def test_displays_come_from_the_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    displays = FakeDisplays()
    board = build_board(load_profile("rpi-deskphone-mcu"), ManualClock(),
                        make_display=displays, make_frontpanel=lambda *args: None)
    assert displays.calls == [({"kind": "hd44780-i2c", "bus": 1, "address": 0x27, "cols": 20,
                                "rows": 4}, None)]
    assert (board.display.width, board.display.height) == (20, 4)


def test_a_front_panel_board_hands_its_link_the_board() -> None:
    clock = ManualClock()
    calls: list[Any] = []

    def frontpanel(spec: dict[str, Any], board: Board, clk: Any, dispatch: Any) -> str:
        calls.append((spec, board, clk))
        return "link"

    board = build_board(load_profile("rpi-deskphone-mcu"), clock, make_display=FakeDisplays(),
                        make_frontpanel=frontpanel)
    assert calls == [({"port": "/dev/ttyAMA0", "baud": 115200}, board, clock)]
    assert board.frontpanel == "link"
    assert tuple(board.leds) == ("line1", "line2", "message", "speaker", "mute", "headset")
    assert all(type(led) is Led for led in board.leds.values())
    assert (board.keypad, board.hookswitch, board.gpio) == (None, None, None)


def test_the_default_front_panel_link_takes_over_the_leds(tmp_path: Path) -> None:
    from board import frontpanel
    text = (PROFILES_DIR / "rpi-deskphone-mcu.toml").read_text(encoding="utf-8")
    path = write(tmp_path, text.replace("/dev/ttyAMA0", "loop://"))
    board = build_board(load_profile(path), ManualClock(), make_display=FakeDisplays())
    try:
        assert isinstance(board.frontpanel, frontpanel.FrontPanelLink)
        assert all(isinstance(led, frontpanel.LinkLed) for led in board.leds.values())
        board.leds["line1"].set(LedState(LedPattern.FAST_BLINK, "red"))
        assert board.frontpanel.leds["line1"] == LedState(LedPattern.FAST_BLINK, "red")
    finally:
        board.close()


def test_a_dect_base_has_one_board_per_handset() -> None:
    profile = load_profile("dect-base")
    boards = build_boards(profile, ManualClock())
    assert [b.name for b in boards] == [f"dect-base/handset{n}" for n in range(1, 7)]
    with pytest.raises(ProfileError) as err:
        build_board(profile, ManualClock())
    assert str(err.value) == (f"{profile.source}: terminals: this dect-base has 6 terminals; "
                              "use build_boards()")


def test_a_desk_phone_has_one_board() -> None:
    boards = build_boards(load_profile("sim"), ManualClock())
    assert len(boards) == 1 and isinstance(boards[0], WiredBoard)


def test_libgpiod_profile_names_the_missing_chip(tmp_path: Path) -> None:
    text = BASE.replace('gpio = "sim"', 'gpio = "libgpiod"\ngpio_options = { chip = '
                                        '"/dev/gpiochip-nope" }')
    with pytest.raises(GpioError) as err:
        build_board(load_profile(write(tmp_path, text)), ManualClock())
    assert str(err.value) == ("keypad: GPIO chip /dev/gpiochip-nope does not exist — is this the "
                              "right board? (set gpio_options.chip in the board profile)")


# -- the backends ------------------------------------------------------------------------------
def test_open_backend_by_name() -> None:
    clock = ManualClock()
    sim = open_backend("sim", clock=clock)
    assert isinstance(sim, SimGpio) and sim.clock is clock
    assert isinstance(open_backend("rpigpio"), RpiGpio)
    assert isinstance(open_backend("libgpiod", chip="/dev/gpiochip4"), LibGpiod)


def test_open_backend_refuses_unknown_names_and_options() -> None:
    with pytest.raises(GpioError, match=r"unknown GPIO backend 'pigpio' \(choose libgpiod, "
                                        r"rpigpio, sim\)"):
        open_backend("pigpio")
    with pytest.raises(GpioError, match="GPIO backend 'rpigpio': bad options"):
        open_backend("rpigpio", chip="/dev/gpiochip0")


def test_no_gpio_library_is_imported_with_the_board_modules() -> None:
    code = ("import sys, board.profile, board.sim, board.gpio.rpigpio, board.gpio.libgpiod; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gpiod', 'RPi')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], check=True)
    assert done.stdout.strip() == "[]"


def test_sim_refuses_one_pin_for_two_parts() -> None:
    gpio = SimGpio()
    gpio.setup_output(17, owner="led line1")
    with pytest.raises(GpioError) as err:
        gpio.setup_input(17, owner="keypad")
    assert str(err.value) == "keypad: pin 17 is already used by led line1"


def test_sim_edges_go_through_dispatch() -> None:
    later: list[Callable[[], None]] = []
    gpio = SimGpio(dispatch=later.append)
    edges: list[tuple[int, bool]] = []
    gpio.setup_input(4)
    gpio.watch(4, lambda pin, level: edges.append((pin, level)))
    gpio.drive_low(4)
    gpio.drive_low(4)  # no change, no edge
    gpio.release(4)
    assert edges == []
    for call in later:
        call()
    assert edges == [(4, False), (4, True)]


def test_rpigpio_says_it_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    no_rpi(monkeypatch)
    with pytest.raises(GpioError) as err:
        RpiGpio().setup_input(5, owner="keypad")
    assert str(err.value) == MISSING_RPI


def test_rpigpio_not_on_a_pi(monkeypatch: pytest.MonkeyPatch) -> None:
    def import_module(name: str) -> Any:
        raise RuntimeError("This module can only be run on a Raspberry Pi!")
    monkeypatch.setattr("board.gpio.rpigpio.importlib.import_module", import_module)
    with pytest.raises(GpioError) as err:
        RpiGpio().setup_output(17, owner="led line1")
    assert str(err.value) == ("led line1: RPi.GPIO cannot run here (This module can only be run "
                              'on a Raspberry Pi!) — use gpio = "libgpiod" on a Raspberry Pi 5')


class FakeRPiGPIO(types.ModuleType):
    """Just enough of RPi.GPIO to see what the backend asks of it."""

    BCM, IN, OUT, PUD_UP, PUD_DOWN, HIGH, LOW, BOTH = "BCM", "IN", "OUT", "UP", "DOWN", 1, 0, "BOTH"

    def __init__(self) -> None:
        super().__init__("RPi.GPIO")
        self.calls: list[tuple[Any, ...]] = []
        self.levels: dict[int, int] = {}
        self.edge_callbacks: dict[int, Callable[[int], None]] = {}

    def setwarnings(self, flag: bool) -> None:
        self.calls.append(("setwarnings", flag))

    def setmode(self, mode: str) -> None:
        self.calls.append(("setmode", mode))

    def setup(self, pin: int, direction: str, **kwargs: Any) -> None:
        self.calls.append(("setup", pin, direction, kwargs))

    def input(self, pin: int) -> int:
        return self.levels.get(pin, 1)

    def output(self, pin: int, level: int) -> None:
        self.calls.append(("output", pin, level))

    def add_event_detect(self, pin: int, edge: str, callback: Callable[[int], None]) -> None:
        self.calls.append(("add_event_detect", pin, edge))
        self.edge_callbacks[pin] = callback

    def cleanup(self, pins: list[int]) -> None:
        self.calls.append(("cleanup", pins))


def test_rpigpio_uses_bcm_numbers_and_event_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRPiGPIO()
    monkeypatch.setitem(sys.modules, "RPi", types.SimpleNamespace(GPIO=fake))
    monkeypatch.setitem(sys.modules, "RPi.GPIO", fake)
    later: list[Callable[[], None]] = []
    gpio = RpiGpio(dispatch=later.append)
    gpio.setup_input(16, pull_up=True, owner="keypad")
    gpio.setup_output(5, level=False, owner="keypad")
    edges: list[tuple[int, bool]] = []
    gpio.watch(16, lambda pin, level: edges.append((pin, level)))
    gpio.write(5, True)
    fake.levels[16] = 0
    fake.edge_callbacks[16](16)  # RPi.GPIO's own thread
    assert edges == []  # only through dispatch
    later[0]()
    assert edges == [(16, False)]
    assert gpio.read(16) is False
    gpio.close()
    assert fake.calls == [
        ("setwarnings", False), ("setmode", "BCM"),
        ("setup", 16, "IN", {"pull_up_down": "UP"}), ("setup", 5, "OUT", {"initial": 0}),
        ("add_event_detect", 16, "BOTH"), ("output", 5, 1), ("cleanup", [5, 16])]


def test_libgpiod_says_which_chip_is_missing() -> None:
    with pytest.raises(GpioError) as err:
        LibGpiod(chip="/dev/gpiochip-nope").setup_input(16, owner="keypad")
    assert str(err.value) == ("keypad: GPIO chip /dev/gpiochip-nope does not exist — is this the "
                              "right board? (set gpio_options.chip in the board profile)")


def test_libgpiod_says_a_file_is_not_a_chip() -> None:
    with pytest.raises(GpioError) as err:
        LibGpiod(chip="/dev/null").setup_output(17, owner="led line1")
    assert str(err.value) == "led line1: /dev/null is not a GPIO chip"


def test_libgpiod_says_when_gpiod_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)
    with pytest.raises(GpioError) as err:
        LibGpiod().setup_input(4, owner="hookswitch")
    assert str(err.value) == ("hookswitch: the gpiod package (libgpiod v2) is not installed "
                              "(pip install gpiod)")


class _Enum(enum.Enum):
    pass


class FakeRequest:
    """A line request whose edge events the test feeds through a pipe, as the kernel would."""

    def __init__(self, config: dict[int, Any]) -> None:
        self.config = dict(config)
        self.values: dict[int, Any] = {}
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.fd, self._w = os.pipe()
        self.released = False

    def get_value(self, pin: int) -> Any:
        return self.values.get(pin, FakeGpiod.line.Value.INACTIVE)

    def set_value(self, pin: int, value: Any) -> None:
        self.values[pin] = value

    def reconfigure_lines(self, config: dict[int, Any]) -> None:
        self.config.update(config)

    def read_edge_events(self) -> list[Any]:
        os.read(self.fd, 64)
        events = []
        while not self.events.empty():
            events.append(self.events.get())
        return events

    def release(self) -> None:
        self.released = True

    def edge(self, pin: int, rising: bool) -> None:
        kind = FakeGpiod.EdgeEvent.Type
        self.events.put(types.SimpleNamespace(
            line_offset=pin, event_type=kind.RISING_EDGE if rising else kind.FALLING_EDGE))
        os.write(self._w, b"e")


class FakeGpiod(types.ModuleType):
    line = types.SimpleNamespace(
        Direction=enum.Enum("Direction", "AS_IS INPUT OUTPUT"),
        Bias=enum.Enum("Bias", "AS_IS PULL_UP PULL_DOWN"),
        Edge=enum.Enum("Edge", "NONE RISING FALLING BOTH"),
        Value=enum.Enum("Value", "INACTIVE ACTIVE"))
    EdgeEvent = types.SimpleNamespace(Type=enum.Enum("Type", "RISING_EDGE FALLING_EDGE"))

    def __init__(self) -> None:
        super().__init__("gpiod")
        self.requests: dict[int, FakeRequest] = {}
        self.consumers: list[str] = []

    @staticmethod
    def LineSettings(**kwargs: Any) -> types.SimpleNamespace:  # gpiod's name
        return types.SimpleNamespace(**kwargs)

    def request_lines(self, path: str, consumer: str, config: dict[int, Any]) -> FakeRequest:
        request = FakeRequest(config)
        self.consumers.append(consumer)
        for pin in config:
            self.requests[pin] = request
        return request


def test_libgpiod_requests_lines_and_hands_edges_to_dispatch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGpiod()
    monkeypatch.setitem(sys.modules, "gpiod", fake)
    delivered: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
    gpio = LibGpiod(dispatch=delivered.put, chip="/dev/gpiochip0")
    gpio.setup_input(16, pull_up=True, owner="keypad")
    gpio.setup_output(5, level=True, owner="keypad")
    assert fake.consumers == ["luren:keypad", "luren:keypad"]
    assert fake.requests[5].config[5].output_value is fake.line.Value.ACTIVE
    edges: list[tuple[int, bool]] = []
    gpio.watch(16, lambda pin, level: edges.append((pin, level)))
    settings = fake.requests[16].config[16]
    assert (settings.edge_detection, settings.bias) == (fake.line.Edge.BOTH,
                                                        fake.line.Bias.PULL_UP)
    fake.requests[16].edge(16, rising=False)
    fake.requests[16].edge(16, rising=True)
    for _ in range(2):
        delivered.get(timeout=5)()  # on the test's thread, as the loop would run it
    assert edges == [(16, False), (16, True)]
    gpio.write(5, False)
    assert fake.requests[5].values[5] is fake.line.Value.INACTIVE
    assert gpio.read(16) is False
    gpio.setup_input(5, owner="keypad")  # a keypad row let go: reconfigured, not re-requested
    assert fake.requests[5].config[5].direction is fake.line.Direction.INPUT
    assert len(fake.consumers) == 2
    with pytest.raises(GpioError, match="keypad: pin 16 is watched; it cannot be set up again"):
        gpio.setup_output(16, owner="keypad")
    gpio.close()
    assert fake.requests[16].released and fake.requests[5].released
