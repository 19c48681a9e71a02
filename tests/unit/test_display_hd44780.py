"""HD44780 driver: exact bytes and pin sequences on both wirings, CGRAM glyphs, minimal rewrites.

Buses here record instead of touching hardware, and sleeps are recorded instead of slept.
Golden text grids (what DDRAM holds per screen kind) are in tests/reference/hd44780-*.txt;
LUREN_UPDATE_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import board.display
from board.display import DisplayError, make_display
from board.display import hd44780 as hd
from board.display.hd44780 import (
    A00_ROM,
    CGRAM_GLYPHS,
    GpioBus,
    HD44780Display,
    I2CBackpackBus,
    allocate_slots,
    changed_runs,
)
from board.display.hd44780_sim import HD44780Model, SimulatedBackpack
from board.gpio.base import GpioBackend
from tools.screenshots import lcd_picture, sample_screens

REFERENCE = Path(__file__).parent.parent / "reference"
UPDATE = os.environ.get("LUREN_UPDATE_GOLDEN") == "1"

RS, E, D4, D5, D6, D7 = 25, 24, 23, 17, 18, 22
ADDR = 0x27


# --- recording buses ----------------------------------------------------------------------

class RecordingGpio(GpioBackend):
    """Records every pin operation in `events`; decodes E's falling edges into an LCD model."""

    name = "recording"

    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events
        self.levels: dict[int, bool] = {}
        self.lcd = HD44780Model()

    def setup_input(self, pin: int, pull_up: bool = True, owner: str = "") -> None:
        self.events.append(("input", pin))

    def setup_output(self, pin: int, level: bool = False, owner: str = "") -> None:
        self.events.append(("output", pin, level))
        self.levels[pin] = level

    def read(self, pin: int) -> bool:
        return self.levels.get(pin, False)

    def write(self, pin: int, level: bool) -> None:
        self.events.append(("write", pin, level))
        if pin == E and self.levels.get(E) and not level:
            nibble = sum(self.levels[d] << i for i, d in enumerate((D4, D5, D6, D7)))
            self.lcd.nibble(nibble, self.levels[RS])
        self.levels[pin] = level

    def watch(self, pin, callback) -> None:
        raise NotImplementedError


class RecordingSMBus:
    """smbus2.SMBus as far as the backpack uses it: write_byte, recorded."""

    def __init__(self, events: list) -> None:
        self.events = events

    def write_byte(self, i2c_addr: int, value: int) -> None:
        self.events.append(("byte", i2c_addr, value))


def recorder(events: list):
    def sleep_us(us: float) -> None:
        events.append(("sleep", us))
    return sleep_us


def i2c_display(width: int = 20, height: int = 4) -> tuple[HD44780Display, list]:
    events: list = []
    bus = I2CBackpackBus(RecordingSMBus(events), ADDR)
    return HD44780Display(bus, width, height, sleep_us=recorder(events)), events


def gpio_display(width: int = 20, height: int = 4) -> tuple[HD44780Display, RecordingGpio]:
    events: list = []
    gpio = RecordingGpio(events)
    sleep_us = recorder(events)
    bus = GpioBus(gpio, RS, E, D4, D5, D6, D7, sleep_us=sleep_us)
    return HD44780Display(bus, width, height, sleep_us=sleep_us), gpio


def decode_i2c(events: list) -> list[tuple[str, int]]:
    """The ("cmd"|"data", byte) writes in an I2C event list (4-bit mode, from a byte boundary)."""
    nibbles, port = [], 0
    for event in events:
        if event[0] == "byte":
            value = event[2]
            if port & 0x04 and not value & 0x04:
                nibbles.append((value >> 4, bool(value & 0x01)))
            port = value
    pairs = zip(nibbles[::2], nibbles[1::2], strict=True)
    return [("data" if rs else "cmd", high << 4 | low) for (high, rs), (low, _) in pairs]


# --- the init sequence --------------------------------------------------------------------

def test_i2c_init_is_the_datasheet_sequence_byte_for_byte():
    _, events = i2c_display()

    def nibble(*values: int) -> list:
        return [("byte", ADDR, v) for v in values]

    expected = [
        *nibble(0x08), ("sleep", 50_000),         # backlight on, all else low; > 40 ms
        *nibble(0x38, 0x3C, 0x38), ("sleep", 4_500),   # 0x3, E high, E low; > 4.1 ms
        *nibble(0x38, 0x3C, 0x38), ("sleep", 150),     # 0x3; > 100 us
        *nibble(0x38, 0x3C, 0x38), ("sleep", 150),     # 0x3
        *nibble(0x28, 0x2C, 0x28), ("sleep", 150),     # 0x2: 4-bit from here on
        *nibble(0x28, 0x2C, 0x28, 0x88, 0x8C, 0x88), ("sleep", 50),     # 0x28 function set
        *nibble(0x08, 0x0C, 0x08, 0x88, 0x8C, 0x88), ("sleep", 50),     # 0x08 display off
        *nibble(0x08, 0x0C, 0x08, 0x18, 0x1C, 0x18), ("sleep", 2_000),  # 0x01 clear
        *nibble(0x08, 0x0C, 0x08, 0x68, 0x6C, 0x68), ("sleep", 50),     # 0x06 entry mode
        *nibble(0x08, 0x0C, 0x08, 0xC8, 0xCC, 0xC8), ("sleep", 50),     # 0x0C display on
    ]
    assert events == expected


def gpio_nibble(value: int, rs: bool) -> list:
    """The documented GpioBus sequence: RS, D4..D7, E high, 1 us, E low."""
    return [("write", RS, rs), *[("write", pin, bool(value >> i & 1))
                                 for i, pin in enumerate((D4, D5, D6, D7))],
            ("write", E, True), ("sleep", 1), ("write", E, False)]


def test_gpio_nibble_is_rs_data_then_a_pulse_on_e():
    assert gpio_nibble(0x3, False) == [
        ("write", RS, False), ("write", D4, True), ("write", D5, True), ("write", D6, False),
        ("write", D7, False), ("write", E, True), ("sleep", 1), ("write", E, False)]


def test_gpio_init_is_the_datasheet_sequence_pin_for_pin():
    _, gpio = gpio_display()
    expected = [("output", pin, False) for pin in (RS, E, D4, D5, D6, D7)]
    expected.append(("sleep", 50_000))
    for value, wait in ((0x3, 4_500), (0x3, 150), (0x3, 150), (0x2, 150)):
        expected += [*gpio_nibble(value, False), ("sleep", wait)]
    for instruction, wait in ((0x28, 50), (0x08, 50), (0x01, 2_000), (0x06, 50), (0x0C, 50)):
        expected += [*gpio_nibble(instruction >> 4, False), *gpio_nibble(instruction & 15, False),
                     ("sleep", wait)]
    assert gpio.events == expected
    assert gpio.lcd.instructions == [0x30, 0x30, 0x30, 0x20, 0x28, 0x08, 0x01, 0x06, 0x0C]
    assert gpio.lcd.four_bit and gpio.lcd.display_on


def test_gpio_backlight_pin_is_switched_on_at_open_and_by_set_backlight():
    events: list = []
    gpio = RecordingGpio(events)
    bus = GpioBus(gpio, RS, E, D4, D5, D6, D7, backlight=27, sleep_us=recorder(events))
    display = HD44780Display(bus, sleep_us=recorder(events))
    assert ("output", 27, True) in events
    display.set_backlight(False)
    assert events[-1] == ("write", 27, False)


# --- writing text -------------------------------------------------------------------------

def test_i2c_write_sends_only_data_when_the_address_counter_is_already_there():
    display, events = i2c_display()
    events.clear()
    display.show(["Hi"])
    assert events == [
        ("byte", ADDR, 0x49), ("byte", ADDR, 0x4D), ("byte", ADDR, 0x49),  # 'H' = 0x48: 4, RS
        ("byte", ADDR, 0x89), ("byte", ADDR, 0x8D), ("byte", ADDR, 0x89),  # 8, RS
        ("sleep", 50),
        ("byte", ADDR, 0x69), ("byte", ADDR, 0x6D), ("byte", ADDR, 0x69),  # 'i' = 0x69
        ("byte", ADDR, 0x99), ("byte", ADDR, 0x9D), ("byte", ADDR, 0x99),
        ("sleep", 50),
    ]


def test_i2c_second_row_starts_with_set_ddram_address_0x40():
    display, events = i2c_display()
    display.show(["Hi"])
    events.clear()
    display.show(["Hi", "Yo"])
    assert events[:7] == [
        ("byte", ADDR, 0xC8), ("byte", ADDR, 0xCC), ("byte", ADDR, 0xC8),  # 0xC0 = 0x80|0x40
        ("byte", ADDR, 0x08), ("byte", ADDR, 0x0C), ("byte", ADDR, 0x08),
        ("sleep", 50)]
    assert decode_i2c(events) == [("cmd", 0xC0), ("data", ord("Y")), ("data", ord("o"))]


def test_gpio_write_puts_the_text_in_ddram():
    display, gpio = gpio_display()
    gpio.events.clear()
    display.show(["Hej", "", "rad tre", "rad fyra"])
    assert gpio.events[:8] == gpio_nibble(0x4, True)  # 'H' = 0x48, high nibble first
    assert gpio.lcd.text(20, 4) == ["Hej".ljust(20), " " * 20, "rad tre".ljust(20),
                                    "rad fyra".ljust(20)]


def test_rows_are_at_ddram_0x00_0x40_0x14_0x54():
    display, events = i2c_display()
    events.clear()
    display.show(["a" * 20, "b", "c", "d"])
    commands = [value for kind, value in decode_i2c(events) if kind == "cmd"]
    # row 1 at 0x40; row 2 at 0x14 (not where row 1 left the counter); row 3 at 0x54
    assert commands == [0xC0, 0x80 | 0x14, 0x80 | 0x54]


def test_a_row_that_continues_where_the_counter_is_needs_no_address():
    display, events = i2c_display()
    display.show(["a" * 20])
    events.clear()
    display.show(["a" * 19 + "b", "", "c"])  # 0x13 then 0x14: row 0 runs on into row 2
    assert decode_i2c(events) == [("cmd", 0x93), ("data", ord("b")), ("data", ord("c"))]


def test_16x2_geometry():
    display, events = i2c_display(16, 2)
    display.show(["0123456789abcdefXYZ", "second"])
    assert display.rows == ["0123456789abcdef", "second"]
    backpack_view = decode_i2c(events[events.index(("sleep", 2_000)) + 1:])
    assert ("cmd", 0xC0) in backpack_view


def test_unsupported_geometry_is_refused():
    with pytest.raises(ValueError, match="24x4"):
        i2c_display(24, 4)


def test_only_changed_cells_are_rewritten():
    display, events = i2c_display()
    display.show(["09:41     sön 22 nov", "1001 Växeln"])
    events.clear()
    display.show(["09:42     sön 22 nov", "1001 Växeln"])
    assert decode_i2c(events) == [("cmd", 0x84), ("data", ord("2"))]
    events.clear()
    display.show(["09:42     sön 22 nov", "1001 Växeln"])
    assert events == []  # TextDisplay.show skips identical screens


def test_changed_runs_groups_neighbouring_cells():
    assert changed_runs([1, 2, 3, 4, 5], [1, 9, 9, 4, 9]) == [(1, 3), (4, 5)]
    assert changed_runs([1, 2], [1, 2]) == []


def test_shorter_rows_clear_what_was_there():
    backpack = SimulatedBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), sleep_us=recorder([]))
    display.show(["Inkommande samtal", "Björn Ängström"])
    display.show(["Upptaget"])
    assert backpack.lcd.text(20, 4) == ["Upptaget".ljust(20)] + [" " * 20] * 3


class FlakyBackpack(SimulatedBackpack):
    """A backpack whose cable comes loose for the writes counted in `fail_at`."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_at: set[int] = set()

    def write_byte(self, i2c_addr: int, value: int) -> None:
        if self.writes + 1 in self.fail_at:
            self.writes += 1
            raise OSError(121, "Remote I/O error")
        super().write_byte(i2c_addr, value)


def test_a_bus_error_is_logged_and_the_next_screen_starts_with_a_fresh_init(caplog):
    backpack = FlakyBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), sleep_us=recorder([]))
    backpack.fail_at = {backpack.writes + 4}  # after the high nibble of the first character
    display.show(["Hej"])  # does not raise
    assert display.errors == 1 and "bus error" in caplog.text
    inits = backpack.lcd.instructions.count(0x28)
    display.show(["Hej då", "rad 2"])
    assert backpack.lcd.instructions.count(0x28) == inits + 1
    assert backpack.lcd.text(20, 4)[:2] == ["Hej då".ljust(20), "rad 2".ljust(20)]


# --- Swedish characters -------------------------------------------------------------------

def test_rom_a00_has_lower_case_a_and_o_umlaut():
    display, events = i2c_display()
    events.clear()
    display.show(["Växjö"])
    assert decode_i2c(events) == [("data", code) for code in (0x56, 0xE1, 0x78, 0x6A, 0xEF)]


def test_a_ring_is_programmed_into_cgram_then_shown_by_its_slot_code():
    display, events = i2c_display()
    events.clear()
    display.show(["Åsa"])
    pattern = CGRAM_GLYPHS["Å"]
    assert decode_i2c(events) == [
        ("cmd", 0x40 | 0 * 8), *[("data", row) for row in pattern],  # CGRAM slot 0
        ("cmd", 0x80),                                                 # back to DDRAM 0x00
        ("data", 0x00), ("data", ord("s")), ("data", ord("a"))]
    assert display.slots[0] == "Å"


def test_each_new_glyph_gets_the_next_slot_and_loaded_glyphs_stay():
    backpack = SimulatedBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), sleep_us=recorder([]))
    display.show(["Åsa"])
    before = backpack.lcd.instructions[:]
    display.show(["Åke Öst", "Märta Ärlig"])
    new = backpack.lcd.instructions[len(before):]
    assert display.slots[:3] == ["Å", "Ö", "Ä"]
    assert new[0] == 0x40 | 1 * 8  # Å stays in slot 0; Ö and Ä go to 1 and 2 in one run
    assert 0x40 not in new
    assert backpack.lcd.text(20, 4)[:2] == ["Åke Öst".ljust(20), "Märta Ärlig".ljust(20)]
    assert backpack.lcd.codes(20, 4)[1][:2] == [ord("M"), 0xE1]  # ä from the ROM


def test_a_slot_no_longer_shown_is_reused_after_the_empty_ones():
    assert allocate_slots(["é"], ["Å", None, None, None, None, None, None, None]) == [
        "Å", "é", None, None, None, None, None, None]
    full = ["Å", "Ä", "Ö", "å", "é", "É", "Ü", "æ"]
    assert allocate_slots(["Ø", "Ä"], full) == ["Ø", "Ä", "Ö", "å", "é", "É", "Ü", "æ"]


def test_beyond_eight_special_characters_the_rest_lose_their_accent():
    backpack = SimulatedBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), sleep_us=recorder([]))
    display.show(["ÅÄÖåéÉÜæÆøØ"])
    assert display.slots == ["Å", "Ä", "Ö", "å", "é", "É", "Ü", "æ"]
    assert backpack.lcd.text(20, 4)[0] == "ÅÄÖåéÉÜæAoO".ljust(20)


def test_other_characters_fall_back_to_plain_letters_or_a_question_mark():
    backpack = SimulatedBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), sleep_us=recorder([]))
    display.show(["Łódź ç ß°", "€ \\ ~ \t"])
    assert backpack.lcd.text(20, 4)[:2] == ["Lodz c ß°".ljust(20), "? ? ? ?".ljust(20)]


def test_decomposed_input_is_composed_first():
    backpack = SimulatedBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), sleep_us=recorder([]))
    display.show(["A\u030asa O\u0308berg"])  # Å and Ö as a letter plus a combining mark
    assert backpack.lcd.text(20, 4)[0] == "Åsa Öberg".ljust(20)


def test_our_rom_map_agrees_with_luma_a00_font_table():
    from luma.lcd.const import hd44780

    luma_map = hd44780.FONTDATA["mappings"][0]
    for ch, code in A00_ROM.items():
        if ord(ch) in luma_map:
            assert luma_map[ord(ch)] == code, ch
    assert {ch for ch in "äöü" if A00_ROM[ch] == luma_map[ord(ch)]} == set("äöü")


def test_every_cgram_glyph_is_5x8_and_leaves_the_cursor_row_empty():
    for ch, pattern in CGRAM_GLYPHS.items():
        assert len(pattern) == 8 and all(0 <= row < 32 for row in pattern), ch
        assert pattern[7] == 0, ch


# --- golden DDRAM grids -------------------------------------------------------------------

def ddram_report(lcd: HD44780Model, width: int, height: int) -> str:
    border = "+" + "-" * width + "+"
    lines = [f"# HD44780 {width}x{height}, ROM A00: the text as read, DDRAM codes, CGRAM slots",
             border, *[f"|{row}|" for row in lcd.text(width, height)], border]
    lines += [" ".join(f"{code:02X}" for code in row) for row in lcd.codes(width, height)]
    for slot in range(8):
        if any(lcd.glyph(slot)):
            pattern = " ".join(f"{row:02X}" for row in lcd.glyph(slot))
            lines.append(f"CGRAM {slot}: {lcd.char(slot)}  {pattern}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", list(sample_screens()))
def test_ddram_golden(name: str):
    backpack = SimulatedBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), sleep_us=recorder([]))
    display.show(sample_screens()[name])
    report = ddram_report(backpack.lcd, 20, 4)
    path = REFERENCE / f"hd44780-20x4-{name}.txt"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote missing golden file {path}; check it and commit it")
    assert report == path.read_text(encoding="utf-8")


def test_lcd_picture_shows_the_same_text_as_the_driver():
    text, picture = lcd_picture(sample_screens()["incoming"])
    assert text[:2] == ["Inkommande samtal".ljust(20), "Björn Ängström".ljust(20)]
    assert picture.mode == "RGB" and picture.size == (508, 184)


# --- make_display -------------------------------------------------------------------------

def test_make_display_text_kind_is_the_plain_text_display():
    display = make_display({"kind": "text", "cols": 16, "rows": 2}, None)
    assert (display.width, display.height) == (16, 2)


def test_make_display_builds_a_gpio_hd44780(monkeypatch):
    monkeypatch.setattr(hd, "busy_sleep_us", recorder([]))
    gpio = RecordingGpio([])
    spec = {"kind": "hd44780-gpio", "rs": RS, "e": E, "d4": D4, "d5": D5, "d6": D6, "d7": D7,
            "cols": 16, "rows": 2}
    display = make_display(spec, gpio)
    assert isinstance(display, HD44780Display) and display.offsets == (0x00, 0x40)
    display.show(["Hallå"])
    assert gpio.lcd.text(16, 2)[0] == "Hallå".ljust(16)


def test_make_display_builds_an_i2c_hd44780(monkeypatch, tmp_path):
    monkeypatch.setattr(hd, "busy_sleep_us", recorder([]))
    monkeypatch.setattr(board.display, "DEV", tmp_path)
    (tmp_path / "i2c-1").touch()
    backpack = SimulatedBackpack(0x3F)
    monkeypatch.setattr("smbus2.SMBus", lambda bus: backpack)
    display = make_display({"kind": "hd44780-i2c", "address": "0x3F"}, None)
    display.show(["Hej då"])
    assert backpack.lcd.text(20, 4)[0] == "Hej då".ljust(20) and backpack.backlight


def test_make_display_names_the_address_nobody_answers(monkeypatch, tmp_path):
    monkeypatch.setattr(hd, "busy_sleep_us", recorder([]))
    monkeypatch.setattr(board.display, "DEV", tmp_path)
    (tmp_path / "i2c-1").touch()
    monkeypatch.setattr("smbus2.SMBus", lambda bus: SimulatedBackpack(0x3F))
    with pytest.raises(DisplayError, match=r"hd44780-i2c: no answer at 0x27 on .*i2c-1"):
        make_display({"kind": "hd44780-i2c"}, None)


@pytest.mark.parametrize(("spec", "gpio", "message"), [
    ({"kind": "vfd"}, None, "unknown kind 'vfd'; known: text, hd44780-i2c"),
    ({"kind": "hd44780-i2c", "adress": 0x27}, None, "hd44780-i2c: unknown key 'adress'"),
    ({"kind": "hd44780-gpio", "rs": 1, "e": 2, "d4": 3, "d5": 4, "d6": 5}, None,
     "hd44780-gpio: missing key 'd7'"),
    ({"kind": "hd44780-gpio", "rs": 1, "e": 2, "d4": 3, "d5": 4, "d6": 5, "d7": 6}, None,
     "hd44780-gpio: needs GPIO pins"),
    ({"kind": "hd44780-i2c", "address": "zz"}, None, "address must be a whole number"),
    ({"kind": "hd44780-i2c", "backlight": "yes"}, None, "backlight must be true or false"),
    ({"kind": "hd44780-i2c", "bus": 7}, None, "hd44780-i2c: /dev/i2c-7 not present"),
    ({"kind": "hd44780-i2c", "cols": 24}, None, "hd44780-i2c: .*unsupported geometry 24x4"),
])
def test_make_display_errors_name_the_display_and_the_problem(spec, gpio, message):
    with pytest.raises(DisplayError, match=message.replace("(", r"\(")):
        make_display(spec, gpio)


def test_make_display_says_when_the_i2c_device_cannot_be_opened(monkeypatch, tmp_path):
    monkeypatch.setattr(board.display, "DEV", tmp_path)
    (tmp_path / "i2c-1").touch()

    def denied(bus: int):
        raise PermissionError(13, "Permission denied", "/dev/i2c-1")

    monkeypatch.setattr("smbus2.SMBus", denied)
    with pytest.raises(DisplayError, match=r"cannot open .*i2c-1.*i2c group"):
        make_display({"kind": "hd44780-i2c"}, None)


def test_make_display_names_a_missing_library(monkeypatch):
    monkeypatch.setitem(sys.modules, "smbus2", None)
    with pytest.raises(DisplayError, match="hd44780-i2c: needs the Python package 'smbus2'"):
        make_display({"kind": "hd44780-i2c"}, None)


def test_importing_board_display_imports_no_hardware_library():
    code = ("import sys, board.display, board.display.hd44780, board.display.graphic; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('smbus2', 'luma', 'spidev', 'RPi', 'gpiod')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"


def test_the_backpack_backlight_is_a_control_level_zero_switches_it_off() -> None:
    display, events = i2c_display()
    assert display.controls == frozenset({"backlight"})
    events.clear()
    assert display.set_level("backlight", 0)
    assert events == [("byte", ADDR, 0)]  # P3 (the backlight) low, nothing else
    assert not display.set_level("contrast", 5)  # an HD44780 has no contrast to set


def test_gpio_wiring_without_a_backlight_pin_offers_no_control() -> None:
    display, _ = gpio_display()
    assert display.controls == frozenset()
