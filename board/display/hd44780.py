"""HD44780 character LCDs (20x4, 16x2) on two wirings: 4-bit GPIO and an I2C PCF8574 backpack.

Layers, each small enough to test alone:

- a *bus* (`GpioBus`, `I2CBackpackBus`) latches one 4-bit nibble into the controller;
- `HD44780` speaks the controller's protocol over a bus: the power-on init sequence, commands,
  data, and the datasheet's execution delays (through an injected `sleep_us`);
- `HD44780Display` is the `TextDisplay` the phone draws on: it maps text to ROM codes and
  custom CGRAM glyphs (å, Å, Ä, Ö, é, ...) and writes only the cells that changed.

Character policy (ROM A00, the "Japanese" ROM nearly every module ships with):

1. A character the ROM has is sent as its ROM code: ASCII (but ``\\`` and ``~``, which A00 draws
   as ¥ and →), and ä ö ü ß ° µ ñ and a few Greek letters from the A00 upper half.
2. A character with a glyph in `CGRAM_GLYPHS` (å Å Ä Ö é É Ü æ Æ ø Ø) is loaded into one of the
   eight CGRAM slots when a screen needs it; slots are chosen per screen, keeping glyphs that
   are already loaded, so a screen change reprograms only the glyphs that are new.
3. If a screen needs more than eight different CGRAM characters, the first eight in reading
   order (left to right, top to bottom) get slots; the rest fall back to their letter without
   the accent (Å → A, é → e, ø → o), as does any other accented Latin letter (č → c).
4. Anything else is shown as ``?``.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol

from board.gpio.base import GpioBackend
from board.parts import TextDisplay

SleepUs = Callable[[float], None]
log = logging.getLogger("luren.display")

# Delays from the HD44780U datasheet (fosc 270 kHz), with margin for slower oscillators.
POWER_ON_US = 50_000  # > 40 ms after Vcc reaches 2.7 V
INIT_FIRST_US = 4_500  # > 4.1 ms after the first 0x3 nibble
INIT_NEXT_US = 150  # > 100 us after the second and third 0x3 nibble and the 0x2 nibble
EXEC_US = 50  # > 37 us for every instruction and data write
CLEAR_US = 2_000  # > 1.52 ms for clear display and return home
PULSE_US = 1  # E high >= 450 ns

# Instructions.
CLEAR = 0x01
HOME = 0x02
ENTRY_MODE = 0x06  # increment address, no display shift
DISPLAY_OFF = 0x08
DISPLAY_ON = 0x0C  # display on, cursor off, blink off
FUNCTION_SET = 0x28  # 4-bit bus, 2 (or 4) lines, 5x8 dots
SET_CGRAM = 0x40
SET_DDRAM = 0x80

CGRAM_SLOTS = 8


def busy_sleep_us(us: float) -> None:
    """Wait `us` microseconds: spin below 200 us (the kernel oversleeps), sleep above."""
    if us >= 200:
        time.sleep(us / 1e6)
        return
    end = time.perf_counter_ns() + int(us * 1000)
    while time.perf_counter_ns() < end:
        pass


# --- character maps -----------------------------------------------------------------------

def _a00_rom() -> dict[str, int]:
    rom = {chr(code): code for code in range(0x20, 0x7E) if code != 0x5C}
    rom.update({"¥": 0x5C, "→": 0x7E, "←": 0x7F, "°": 0xDF, "α": 0xE0, "ä": 0xE1, "ß": 0xE2,
                "β": 0xE2, "ε": 0xE3, "µ": 0xE4, "μ": 0xE4, "σ": 0xE5, "ρ": 0xE6, "√": 0xE8,
                "¢": 0xEC, "ñ": 0xEE, "ö": 0xEF, "∞": 0xF3, "Ω": 0xF4, "ü": 0xF5, "Σ": 0xF6,
                "π": 0xF7, "÷": 0xFD, "█": 0xFF})
    return rom


A00_ROM: dict[str, int] = _a00_rom()
"""Unicode character -> code in HD44780 ROM A00 (° and ß are the look-alikes ゜ and β)."""

CGRAM_GLYPHS: dict[str, tuple[int, ...]] = {
    # 5x8 patterns, top row first, bit 4 is the leftmost dot. Letters sit on row 7 like the
    # ROM's; row 8 (the cursor row) stays empty. Ö has its dots on the corners to differ from
    # the ROM's ö.
    "å": (0x04, 0x0A, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00),
    "Å": (0x04, 0x0A, 0x0E, 0x11, 0x1F, 0x11, 0x11, 0x00),
    "Ä": (0x0A, 0x00, 0x0E, 0x11, 0x1F, 0x11, 0x11, 0x00),
    "Ö": (0x11, 0x0E, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00),
    "é": (0x02, 0x04, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00),
    "É": (0x02, 0x04, 0x1F, 0x10, 0x1E, 0x10, 0x1F, 0x00),
    "Ü": (0x0A, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00),
    "æ": (0x00, 0x00, 0x1A, 0x05, 0x0F, 0x14, 0x0B, 0x00),
    "Æ": (0x0F, 0x14, 0x14, 0x1F, 0x14, 0x14, 0x17, 0x00),
    "ø": (0x00, 0x00, 0x0E, 0x13, 0x15, 0x19, 0x0E, 0x00),
    "Ø": (0x0E, 0x13, 0x13, 0x15, 0x19, 0x19, 0x0E, 0x00),
}
"""Characters the ROM lacks, drawn in CGRAM when a screen shows them."""

_PLAIN = {"æ": "a", "Æ": "A", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D"}


def plain_letter(ch: str) -> str:
    """`ch` without its accent if that is in the ROM (Å -> A, č -> c), else ``?``."""
    base = _PLAIN.get(ch) or unicodedata.normalize("NFD", ch)[:1]
    return base if base in A00_ROM and base.isascii() else "?"


def special_chars(rows: Sequence[str]) -> list[str]:
    """The distinct characters in `rows` that need a CGRAM slot, in reading order."""
    seen: dict[str, None] = {}
    for row in rows:
        for ch in row:
            if ch not in A00_ROM and ch in CGRAM_GLYPHS:
                seen.setdefault(ch)
    return list(seen)


def allocate_slots(needed: Sequence[str], loaded: Sequence[str | None]) -> list[str | None]:
    """The CGRAM contents for a screen needing `needed`, given what `loaded` holds now.

    The first eight of `needed` get a slot; a glyph already loaded keeps its slot, new ones go
    to empty slots first, then to slots whose glyph this screen does not use.
    """
    chosen = list(needed[:CGRAM_SLOTS])
    slots = list(loaded)
    free = [i for i, ch in enumerate(slots) if ch is None]
    free += [i for i, ch in enumerate(slots) if ch is not None and ch not in chosen]
    for ch in chosen:
        if ch not in slots:
            slots[free.pop(0)] = ch
    return slots


def encode(ch: str, slots: Sequence[str | None]) -> int:
    """The character code that shows `ch`, with `slots` loaded in CGRAM."""
    if ch in A00_ROM:
        return A00_ROM[ch]
    if ch in slots:
        return slots.index(ch)
    return A00_ROM[plain_letter(ch)]


def fit_row(row: str, width: int) -> str:
    """`row` in NFC (so å is one cell however it arrived), cut and space-padded to `width`."""
    return unicodedata.normalize("NFC", row)[:width].ljust(width)


def row_offsets(width: int, height: int) -> tuple[int, ...]:
    """DDRAM address of the first cell of each row: 0x00, 0x40, 0x14, 0x54 on a 20x4."""
    if height not in (2, 4) or not 1 <= width <= (20 if height == 4 else 40):
        raise ValueError(f"HD44780: unsupported geometry {width}x{height} (2 or 4 rows, "
                         "up to 40 columns on 2 rows and 20 on 4)")
    return (0x00, 0x40, width, 0x40 + width)[:height]


# --- buses --------------------------------------------------------------------------------

class HD44780Bus(ABC):
    """How nibbles reach the controller: D4-D7 set, RS set, then a pulse on E (RW tied low)."""

    @abstractmethod
    def open(self) -> None:
        """Drive every line to its idle level (E low); called once before the init sequence."""

    @abstractmethod
    def write4(self, nibble: int, rs: bool) -> None:
        """Put `nibble` on D4-D7 and RS (False: instruction, True: data), and latch it."""

    def set_backlight(self, on: bool) -> None:
        """Switch the backlight, if this wiring controls it (this one does not)."""
        return None

    def close(self) -> None:
        """Release the bus (GPIO pins belong to the board's backend, which releases them)."""
        return None


class GpioBus(HD44780Bus):
    """4-bit parallel wiring on GPIO pins: RS, E, D4-D7 (and optionally a backlight switch).

    Each nibble: RS, D4, D5, D6, D7 written, E high, `PULSE_US`, E low (the controller latches
    on the falling edge). Python's GPIO writes take microseconds, so the address set-up (40 ns)
    and E cycle (1 us) times need no extra waits.
    """

    def __init__(self, gpio: GpioBackend, rs: int, e: int, d4: int, d5: int, d6: int, d7: int,
                 *, backlight: int | None = None, sleep_us: SleepUs = busy_sleep_us) -> None:
        self.gpio, self.rs, self.e = gpio, rs, e
        self.data = (d4, d5, d6, d7)
        self.backlight = backlight
        self.sleep_us = sleep_us

    def open(self) -> None:
        for pin in (self.rs, self.e, *self.data):
            self.gpio.setup_output(pin, False, owner="display")
        if self.backlight is not None:
            self.gpio.setup_output(self.backlight, True, owner="display backlight")

    def write4(self, nibble: int, rs: bool) -> None:
        self.gpio.write(self.rs, rs)
        for bit, pin in enumerate(self.data):
            self.gpio.write(pin, bool(nibble >> bit & 1))
        self.gpio.write(self.e, True)
        self.sleep_us(PULSE_US)
        self.gpio.write(self.e, False)

    def set_backlight(self, on: bool) -> None:
        if self.backlight is not None:
            self.gpio.write(self.backlight, on)


class SMBusLike(Protocol):
    """The one smbus2.SMBus method the backpack needs."""

    def write_byte(self, i2c_addr: int, value: int) -> None: ...


# PCF8574 port bits on the common backpack: P0=RS, P1=RW, P2=E, P3=backlight, P4-P7=D4-D7.
PCF_RS, PCF_RW, PCF_E, PCF_BACKLIGHT = 0x01, 0x02, 0x04, 0x08


class I2CBackpackBus(HD44780Bus):
    """A PCF8574 "I2C backpack" (address 0x27, or 0x3F for the PCF8574A).

    Each nibble is three port writes, as Arduino's LiquidCrystal_I2C does: the data with E low
    (set-up), the same with E high, the same with E low again (the controller latches on this
    falling edge). RW stays low; the backlight bit rides along in every byte. One write_byte
    is a whole I2C transaction (>= 20 us even at 400 kHz), longer than any pulse the LCD needs.
    """

    def __init__(self, smbus: SMBusLike, address: int = 0x27, *, backlight: bool = True) -> None:
        self.smbus, self.address = smbus, address
        self.backlight = PCF_BACKLIGHT if backlight else 0

    def open(self) -> None:
        self.smbus.write_byte(self.address, self.backlight)

    def write4(self, nibble: int, rs: bool) -> None:
        byte = (nibble & 0x0F) << 4 | self.backlight | (PCF_RS if rs else 0)
        for value in (byte, byte | PCF_E, byte):
            self.smbus.write_byte(self.address, value)

    def set_backlight(self, on: bool) -> None:
        self.backlight = PCF_BACKLIGHT if on else 0
        self.smbus.write_byte(self.address, self.backlight)

    def close(self) -> None:
        close = getattr(self.smbus, "close", None)
        if close is not None:
            close()


# --- the controller -----------------------------------------------------------------------

class HD44780:
    """The controller's protocol over a 4-bit bus: init, instructions, data, delays."""

    def __init__(self, bus: HD44780Bus, *, sleep_us: SleepUs = busy_sleep_us) -> None:
        self.bus, self.sleep_us = bus, sleep_us

    def init(self) -> None:
        """The datasheet's "initializing by instruction" sequence for a 4-bit interface."""
        self.bus.open()
        self.sleep_us(POWER_ON_US)
        for nibble, wait in ((0x3, INIT_FIRST_US), (0x3, INIT_NEXT_US), (0x3, INIT_NEXT_US),
                             (0x2, INIT_NEXT_US)):
            self.bus.write4(nibble, False)
            self.sleep_us(wait)
        for instruction in (FUNCTION_SET, DISPLAY_OFF, CLEAR, ENTRY_MODE, DISPLAY_ON):
            self.command(instruction)

    def command(self, instruction: int) -> None:
        self._write(instruction, False)
        self.sleep_us(CLEAR_US if instruction in (CLEAR, HOME, HOME | 1) else EXEC_US)

    def data(self, values: Sequence[int]) -> None:
        """Write bytes to DDRAM or CGRAM at the address counter (which then moves on)."""
        for value in values:
            self._write(value, True)
            self.sleep_us(EXEC_US)

    def _write(self, value: int, rs: bool) -> None:
        self.bus.write4(value >> 4, rs)
        self.bus.write4(value & 0x0F, rs)


# --- the display --------------------------------------------------------------------------

Grid = list[list[int]]


class HD44780Display(TextDisplay):
    """A character LCD: `show(rows)` rewrites only the cells whose character code changed.

    Construction runs the init sequence (about 60 ms of waits). `codes` holds what DDRAM shows,
    `slots` what CGRAM holds (None: not loaded). A bus error (a loose I2C cable) is logged,
    not raised: the phone goes on, and the next screen starts with a fresh init, which also
    brings a controller that lost a nibble back in step.
    """

    def __init__(self, bus: HD44780Bus, width: int = 20, height: int = 4, *,
                 sleep_us: SleepUs = busy_sleep_us) -> None:
        self.offsets = row_offsets(width, height)
        super().__init__(width, height)
        self.lcd = HD44780(bus, sleep_us=sleep_us)
        self.errors = 0
        self._stale = False
        self.reset()

    @property
    def controls(self) -> frozenset[str]:
        """The backlight, where the wiring switches it (on or off: level 0 is off)."""
        bus = self.lcd.bus
        switched = isinstance(bus, I2CBackpackBus) or getattr(bus, "backlight", None) is not None
        return frozenset({"backlight"}) if switched else frozenset()

    def _apply_level(self, name: str, level: int) -> None:
        try:
            self.lcd.bus.set_backlight(level > 0)
        except OSError as error:
            log.warning("HD44780: backlight not switched: %s", error)

    def reset(self) -> None:
        """Initialise the controller and forget what it showed (the LCD is blank after)."""
        self._address: tuple[str, int] | None = None  # ("dd"|"cg", address counter) if known
        self.codes: Grid = [[0x20] * self.width for _ in range(self.height)]
        self.slots: list[str | None] = [None] * CGRAM_SLOTS
        self.lcd.init()
        self._address = ("dd", 0)
        self._stale = False

    def _push(self, rows: list[str]) -> None:
        try:
            if self._stale:
                self.reset()
            self._draw([fit_row(row, self.width) for row in rows])
        except OSError as error:
            self.errors += 1
            self._stale = True
            log.warning("HD44780: bus error, the next screen re-initialises: %s", error)

    def _draw(self, text: list[str]) -> None:
        slots = allocate_slots(special_chars(text), self.slots)
        self._load_glyphs(slots)
        for r, row in enumerate(text):
            self._write_row(r, [encode(ch, slots) for ch in row])

    def set_backlight(self, on: bool) -> None:
        self.lcd.bus.set_backlight(on)

    def close(self) -> None:
        self.lcd.bus.close()

    def _load_glyphs(self, slots: list[str | None]) -> None:
        for slot, ch in enumerate(slots):
            if ch is not None and ch != self.slots[slot]:
                self._seek("cg", slot * 8)
                self._send(CGRAM_GLYPHS[ch])
                self.slots[slot] = ch

    def _write_row(self, r: int, codes: list[int]) -> None:
        shown = self.codes[r]
        for start, end in changed_runs(shown, codes):
            self._seek("dd", self.offsets[r] + start)
            self._send(codes[start:end])
            shown[start:end] = codes[start:end]

    def _seek(self, ram: str, address: int) -> None:
        if self._address != (ram, address):
            self.lcd.command((SET_CGRAM if ram == "cg" else SET_DDRAM) | address)
            self._address = (ram, address)

    def _send(self, values: Sequence[int]) -> None:
        self.lcd.data(values)
        ram, address = self._address or ("dd", 0)
        self._address = (ram, address + len(values))


def changed_runs(old: Sequence[int], new: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) spans of consecutive cells where `new` differs from `old`."""
    runs: list[tuple[int, int]] = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        if a == b:
            continue
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs
