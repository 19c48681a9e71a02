"""Reading the key matrix and the hookswitch into raw bitmaps.

Pins are injected: anything with `value()` / `value(level)` (a `machine.Pin` on the
controller, a fake in tests). Rows are open-drain outputs (1 = released, 0 = pulled low), columns
are inputs with pull-ups; a pressed key pulls its column low while its row is selected. One
diode per key (cathode towards the row) keeps several held keys from ghosting.
"""


class MatrixScanner:
    """Scans `rows` x `cols`; bit (row * len(cols) + col) of `scan()` is set while pressed."""

    def __init__(self, rows: list, cols: list, settle=None) -> None:
        self.rows = rows
        self.cols = cols
        self._settle = settle  # called after selecting a row, e.g. lambda: time.sleep_us(5)
        for row in rows:
            row.value(1)

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)

    def scan(self) -> int:
        bitmap = 0
        index = 0
        for row in self.rows:
            row.value(0)
            if self._settle is not None:
                self._settle()
            for col in self.cols:
                if not col.value():
                    bitmap |= 1 << index
                index += 1
            row.value(1)
        return bitmap


class HookInput:
    """The hookswitch contact: `read()` is 1 while the handset is off-hook."""

    def __init__(self, pin, active_low: bool = True) -> None:
        self.pin = pin
        self.active_low = active_low

    def read(self) -> int:
        level = self.pin.value()
        return int(not level) if self.active_low else int(bool(level))
