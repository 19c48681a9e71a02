"""A simulated HD44780 behind a simulated PCF8574 backpack: what tests and screenshots drive.

`SimulatedBackpack` has smbus2's `write_byte`, so it plugs into `I2CBackpackBus` in place of
`SMBus(1)`; it latches a nibble on every falling edge of E, exactly as the LCD does, and feeds
an `HD44780Model` that keeps DDRAM, CGRAM and the address counter. So what the model shows is
what the real byte stream would have put on the glass.
"""

from __future__ import annotations

from board.display.hd44780 import A00_ROM, CGRAM_GLYPHS, PCF_E, PCF_RS, row_offsets

_ROM_CHAR = {code: ch for ch, code in reversed(list(A00_ROM.items()))}
_GLYPH_CHAR = {pattern: ch for ch, pattern in CGRAM_GLYPHS.items()}


class HD44780Model:
    """The controller's state machine: 8-bit mode after power-on until function set says 4."""

    def __init__(self) -> None:
        self.ddram = bytearray(b" " * 0x80)
        self.cgram = bytearray(64)
        self.address = 0
        self.in_cgram = False
        self.four_bit = False
        self.display_on = False
        self.entry_mode = 0
        self.instructions: list[int] = []
        self._high: int | None = None

    def nibble(self, value: int, rs: bool) -> None:
        """One latch of D4-D7 (on the falling edge of E)."""
        if not self.four_bit:
            self._byte(value << 4, rs)
        elif self._high is None:
            self._high = value
        else:
            byte, self._high = self._high << 4 | value, None
            self._byte(byte, rs)

    def _byte(self, value: int, rs: bool) -> None:
        if rs:
            self._data(value)
        elif value == 0:
            return  # no instruction: E falling as the backpack's port leaves its power-up state
        else:
            self.instructions.append(value)
            self._instruction(value)

    def _data(self, value: int) -> None:
        if self.in_cgram:
            self.cgram[self.address & 0x3F] = value & 0x1F
            self.address = (self.address + 1) & 0x3F
        else:
            self.ddram[self.address & 0x7F] = value
            self.address = (self.address + 1) & 0x7F

    def _instruction(self, value: int) -> None:
        if value & 0x80:  # set DDRAM address
            self.address, self.in_cgram = value & 0x7F, False
        elif value & 0x40:  # set CGRAM address
            self.address, self.in_cgram = value & 0x3F, True
        elif value & 0x20:  # function set
            self.four_bit = not value & 0x10
        elif value & 0x10:  # cursor/display shift: not used by the driver
            pass
        elif value & 0x08:  # display on/off control
            self.display_on = bool(value & 0x04)
        elif value & 0x04:  # entry mode: the driver always increments without shift
            self.entry_mode = value
        elif value & 0x02:  # return home
            self.address, self.in_cgram = 0, False
        elif value & 0x01:  # clear display
            self.ddram[:] = b" " * 0x80
            self.address, self.in_cgram = 0, False

    def codes(self, width: int, height: int) -> list[list[int]]:
        """The character codes of the visible cells, row by row."""
        return [list(self.ddram[start:start + width]) for start in row_offsets(width, height)]

    def glyph(self, slot: int) -> tuple[int, ...]:
        return tuple(self.cgram[slot * 8:slot * 8 + 8])

    def char(self, code: int) -> str:
        """What a person reads in a cell holding `code` (CGRAM glyphs we did not draw: �)."""
        if code < 0x10:
            return _GLYPH_CHAR.get(self.glyph(code & 0x07), "\ufffd")
        return _ROM_CHAR.get(code, "\ufffd")

    def text(self, width: int, height: int) -> list[str]:
        return ["".join(self.char(code) for code in row) for row in self.codes(width, height)]


class SimulatedBackpack:
    """A PCF8574 at `address` with an HD44780 on its pins (the common wiring)."""

    def __init__(self, address: int = 0x27) -> None:
        self.address = address
        self.lcd = HD44780Model()
        self.port = 0xFF  # a PCF8574 powers up with every pin high
        self.writes = 0

    def write_byte(self, i2c_addr: int, value: int) -> None:
        if i2c_addr != self.address:
            raise OSError(121, f"no I2C device at 0x{i2c_addr:02X}")  # EREMOTEIO, like smbus2
        self.writes += 1
        if self.port & PCF_E and not value & PCF_E:
            self.lcd.nibble(value >> 4, bool(value & PCF_RS))
        self.port = value

    @property
    def backlight(self) -> bool:
        return bool(self.port & 0x08)
