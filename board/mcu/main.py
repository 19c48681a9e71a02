"""The front-panel controller: MicroPython for an RP2040-class board.

Scans the key matrix, reads the hookswitch, drives the LEDs and talks to the SBC over a UART
with the framed link of `link.py`. Flash: copy frame.py, link.py, debounce.py, scan.py, leds.py
and main.py to the board's root (docs/frontpanel.md); MicroPython runs main.py at boot.

`Controller` is the whole program's logic with its I/O injected (a UART with `read()` and
`write()`, a scanner with `scan()`, a hook input with `read()`, an `LedDriver`), driven by
`poll(now_ms)`: the tests run it in CPython and under MicroPython with fakes. Only `run()` touches
`machine`. No micropython-lib: a one-task cooperative loop needs no asyncio, and every module
used here (struct, binascii, time, os, machine) is built into the rp2 firmware.
"""

try:
    from board.mcu import frame as F
    from board.mcu.debounce import Debouncer, LongPress
    from board.mcu.leds import LedDriver
    from board.mcu.link import Link
    from board.mcu.scan import HookInput, MatrixScanner
except ImportError:  # on the controller the modules sit at the top level
    import frame as F
    from debounce import Debouncer, LongPress
    from leds import LedDriver
    from link import Link
    from scan import HookInput, MatrixScanner

FIRMWARE = (1, 0)
CAPS = F.CAP_KEYS | F.CAP_HOOK | F.CAP_LEDS | F.CAP_LONG_PRESS

# Pin map (Raspberry Pi Pico numbering; docs/frontpanel.md has the wiring).
UART_ID = 0
UART_TX = 0
UART_RX = 1
BAUDRATE = 115200
ROW_PINS = (2, 3, 4, 5, 6, 7)  # open-drain outputs
COL_PINS = (8, 9, 10, 11, 12, 13, 14)  # inputs with pull-ups
HOOK_PIN = 15  # contact to GND while off-hook
HOOK_ACTIVE_LOW = True
LED_PINS = {  # LED name -> {colour: GPIO}, active high
    "message": {"red": 16},
    "speaker": {"green": 17},
    "mute": {"red": 18},
    "headset": {"green": 19},
    "line1": {"green": 20, "red": 21},
    "line2": {"green": 22, "red": 26},
}
STATUS_PIN = 25  # the Pico's own LED: lit while the link is up, blinking while down
KEYMAP = (  # rows x columns of board.keys names; None where no key is fitted
    ("1", "2", "3", "soft1", "line1", "speaker", "volume_up"),
    ("4", "5", "6", "soft2", "line2", "headset", "volume_down"),
    ("7", "8", "9", "soft3", "line3", "mute", "up"),
    ("*", "0", "#", "soft4", "line4", "hold", "down"),
    ("left", "ok", "right", "cancel", "line5", "transfer", "conference"),
    ("redial", "voicemail", "dnd", None, "line6", None, None),
)

DEBOUNCE_MS = 20
HOOK_DEBOUNCE_MS = 50
LONG_PRESS_MS = 800
LOOP_MS = 1
WATCHDOG_MS = 4000  # 0: no watchdog
WATCHDOG_CTRL = 0x40058000  # RP2040 WATCHDOG CTRL; bit 30 enables it


class Controller:
    """Keys, hook and LEDs of one front panel, and the link to the SBC."""

    def __init__(self, uart, scanner, hook, leds, keymap, epoch: int, now: int,
                 debounce_ms: int = DEBOUNCE_MS, hook_debounce_ms: int = HOOK_DEBOUNCE_MS,
                 long_press_ms: int = LONG_PRESS_MS, link_options=None) -> None:
        self.uart = uart
        self.scanner = scanner
        self.hook = hook
        self.leds = leds
        self.names = [name for row in keymap for name in row]
        self.keys = Debouncer(len(self.names), debounce_ms, now)
        self.hook_contact = Debouncer(1, hook_debounce_ms, now, hook.read())
        self.long = LongPress(long_press_ms)
        self.unknown_leds = []
        self.dropped = 0  # events pushed out of a full queue since the last report
        self.now = now
        self.link = Link(F.ROLE_CONTROLLER, epoch, uart.write, FIRMWARE, CAPS,
                         **(link_options or {}))
        self.link.on_frame = self._on_frame
        self.link.on_handshake = self._on_handshake
        self.link.start(now)

    @property
    def offhook(self) -> bool:
        return bool(self.hook_contact.state)

    def poll(self, now: int) -> None:
        """One turn of the loop: line in, keys, hook, LEDs, link timers."""
        self.now = now
        data = self.uart.read()
        if data:
            self.link.feed(data, now)
        self._scan_keys(now)
        self._read_hook(now)
        self.leds.update(now)
        self._report_drops(now)
        self.link.poll(now)

    def _scan_keys(self, now: int) -> None:
        for index, closed in self.keys.update(self.scanner.scan(), now):
            name = self.names[index]
            if name is None:
                continue
            if closed:
                self.long.press(index, now)
                self._send_key(name, F.PRESS, now)
            else:
                self.long.release(index)
                self._send_key(name, F.RELEASE, now)
        for index in self.long.poll(now):
            self._send_key(self.names[index], F.LONG, now)

    def _read_hook(self, now: int) -> None:
        for _, closed in self.hook_contact.update(self.hook.read(), now):
            self._send(F.HOOK, F.pack_hook(closed), now)

    def _send_key(self, name: str, action: int, now: int) -> None:
        self._send(F.KEY, F.pack_key(name, action), now)

    def _send(self, ftype: int, payload: bytes, now: int) -> None:
        if not self.link.send(ftype, payload, now):
            self.dropped += 1

    def _report_drops(self, now: int) -> None:
        """Once the backlog has drained, tell the SBC how many events a full queue lost."""
        if self.dropped and self.link.up and self.link.pending() < 4:
            text = f"{self.dropped} events dropped from a full queue"
            self.link.send(F.ERROR, F.pack_error(F.ERR_QUEUE_OVERFLOW, text), now)
            self.dropped = 0

    def _on_handshake(self, peer_reset: bool) -> None:
        """After every handshake the SBC learns the hook state (it drops repeats)."""
        self.link.send(F.HOOK, F.pack_hook(self.offhook), self.now)

    def _on_frame(self, ftype: int, payload: bytes) -> None:
        if ftype == F.LED:
            self._set_led(F.unpack_led(payload))
        elif ftype == F.LED_ALL:
            flags, entries = F.unpack_led_all(payload)
            if flags & F.LED_ALL_FIRST:
                self.leds.clear()  # a full snapshot: what it does not name is off
            for entry in entries:
                self._set_led(entry)

    def _set_led(self, entry: tuple) -> None:
        name, pattern, colour = entry
        if not self.leds.set(name, pattern, colour) and name not in self.unknown_leds:
            self.unknown_leds.append(name)
            self.link.send(F.ERROR, F.pack_error(F.ERR_UNKNOWN_LED, name), self.now)


def _epoch() -> int:
    try:
        import os
        return int.from_bytes(os.urandom(4), "little")
    except (ImportError, AttributeError, OSError):
        import time
        return time.ticks_us()


def _stop_watchdog(machine) -> None:
    """Let the REPL (and mpremote) take over after Ctrl-C: the rp2 WDT cannot be deinit()ed."""
    machine.mem32[WATCHDOG_CTRL] &= ~(1 << 30)


class _StatusLed:
    def __init__(self, pin) -> None:
        self.pin = pin

    def show(self, up: bool, now: int) -> None:
        self.pin.value(1 if up or (now // 250) % 2 else 0)


def build(machine, now: int) -> Controller:
    """The controller wired to this board's pins."""
    pin = machine.Pin
    uart = machine.UART(UART_ID, baudrate=BAUDRATE, tx=pin(UART_TX), rx=pin(UART_RX),
                        timeout=0, rxbuf=1024)
    rows = [pin(p, pin.OPEN_DRAIN, value=1) for p in ROW_PINS]
    cols = [pin(p, pin.IN, pin.PULL_UP) for p in COL_PINS]
    hook = HookInput(pin(HOOK_PIN, pin.IN, pin.PULL_UP), HOOK_ACTIVE_LOW)
    outputs = {}
    for name, colours in LED_PINS.items():
        outputs[name] = {c: pin(g, pin.OUT, value=0) for c, g in colours.items()}
    import time
    scanner = MatrixScanner(rows, cols, lambda: time.sleep_us(5))
    return Controller(uart, scanner, hook, LedDriver(outputs), KEYMAP, _epoch(), now)


def run() -> None:
    """The main loop on the real board."""
    import time

    import machine
    controller = build(machine, time.ticks_ms())
    status = _StatusLed(machine.Pin(STATUS_PIN, machine.Pin.OUT))
    wdt = machine.WDT(timeout=WATCHDOG_MS) if WATCHDOG_MS else None
    try:
        while True:
            now = time.ticks_ms()
            controller.poll(now)
            status.show(controller.link.up, now)
            if wdt is not None:
                wdt.feed()
            time.sleep_ms(LOOP_MS)
    except KeyboardInterrupt:
        if wdt is not None:
            _stop_watchdog(machine)


if __name__ == "__main__":
    run()
