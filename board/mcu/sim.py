"""The controller program with simulated contacts, LEDs and UART: for tests and benchmarks.

`SimPanel` runs the real `main.Controller` with fake pins, so tests drive the very code that is
flashed, in CPython or under MicroPython. Not needed on the controller (do not flash it).
Common subset of CPython 3.11 and MicroPython 1.27.
"""

try:
    from board.mcu.leds import LedDriver
    from board.mcu.main import KEYMAP, LED_PINS, Controller
    from board.mcu.scan import HookInput
except ImportError:  # under MicroPython the modules sit at the top level
    from leds import LedDriver
    from main import KEYMAP, LED_PINS, Controller
    from scan import HookInput


class FakePin:
    """A GPIO pin that remembers its level."""

    def __init__(self, level: int = 0) -> None:
        self.level = level

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level
        return None


class FakeKeys:
    """A matrix scanner whose raw bitmap the test sets."""

    def __init__(self) -> None:
        self.bitmap = 0

    def scan(self) -> int:
        return self.bitmap


class FakeUart:
    """`machine.UART` as the controller uses it: `read()` gives None when nothing came."""

    def __init__(self, write) -> None:
        self._rx = bytearray()
        self._write = write

    def receive(self, data: bytes) -> None:
        """Bytes arriving on the controller's RX pin."""
        self._rx.extend(data)

    def read(self):
        if not self._rx:
            return None
        data = bytes(self._rx)
        self._rx = bytearray()
        return data

    def write(self, data: bytes) -> int:
        self._write(data)
        return len(data)


class SimPanel:
    """A front panel with its controller; what the controller sends goes to `write(bytes)`."""

    def __init__(self, write, epoch: int, now: int, keymap=KEYMAP, led_pins=LED_PINS,
                 **options) -> None:
        self.uart = FakeUart(write)
        self.keys = FakeKeys()
        self.hook_pin = FakePin(1)  # active low: 1 while on-hook
        self.outputs = {}
        for name, colours in led_pins.items():
            self.outputs[name] = {c: FakePin() for c in colours}
        self.controller = Controller(self.uart, self.keys, HookInput(self.hook_pin),
                                     LedDriver(self.outputs), keymap, epoch, now, **options)
        self._index = {}
        for i, name in enumerate(self.controller.names):
            if name is not None:
                self._index[name] = i

    @property
    def link(self):
        return self.controller.link

    def receive(self, data: bytes) -> None:
        self.uart.receive(data)

    def poll(self, now: int) -> None:
        self.controller.poll(now)

    def press(self, name: str) -> None:
        self.keys.bitmap |= 1 << self._index[name]

    def release(self, name: str) -> None:
        self.keys.bitmap &= ~(1 << self._index[name])

    def set_hook(self, offhook: bool) -> None:
        self.hook_pin.level = 0 if offhook else 1

    def led(self, name: str) -> tuple:
        """(pattern, colour) the controller holds for LED `name`."""
        return self.controller.leds.state(name)

    def lit_colours(self, name: str) -> list:
        """Colours whose pins are driven high right now on LED `name`."""
        return sorted(c for c, pin in self.outputs[name].items() if pin.level)

