"""The SBC's end of the front-panel link: keys, hook and LEDs through a microcontroller.

The front-panel controller (`board/mcu/`, MicroPython on an RP2040-class board) scans the
keys, reads the hookswitch and drives the LEDs; it talks to the SBC over a UART with the framed,
acknowledged protocol of docs/frontpanel.md. This module opens that UART with pyserial by URL
(`/dev/ttyAMA0`, a pty, `loop://`, `spy://...`), runs the same `board.mcu.link.Link` state
machine as the controller, and turns what arrives into `on_key` / `on_long_press` /
`on_hook` / `on_link_state` callbacks. It keeps the whole LED state and sends it again after
every handshake, so a controller that restarted shows the right LEDs within one round trip.

Threads: a reader thread only reads bytes and hands them to `dispatch` (the runtime passes the
controller loop's `call_soon_threadsafe`); everything else - decoding, callbacks, `set_led`,
the retransmit and heartbeat timers of the injected `Clock` - runs on that loop.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import serial

from board.keys import is_key
from board.mcu import frame as F
from board.mcu.link import Link
from board.parts import Board, Led, LedPattern, LedState
from firmware.clock import Clock, Timer

log = logging.getLogger(__name__)

Dispatch = Callable[[Callable[[], None]], None]
HOST_FIRMWARE = (0, 1)
BAUDRATE = 115200
READ_WAIT_S = 0.2  # the reader thread's longest wait, so close() is seen even without cancel_read
PATTERN_CODES = {
    LedPattern.OFF: F.OFF,
    LedPattern.ON: F.ON,
    LedPattern.SLOW_BLINK: F.SLOW_BLINK,
    LedPattern.FAST_BLINK: F.FAST_BLINK,
}


class Port(Protocol):
    """What the link needs of a pyserial port (any `serial_for_url` result will do)."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


def call_now(fn: Callable[[], None]) -> None:
    fn()


class FrontPanelLink:
    """The front-panel controller as the SBC sees it.

    Set the callbacks, then `start()`. `set_led()` may be called at any time: while the link is
    down the state is only remembered, and every handshake sends the full LED state. A
    controller that stays silent for `dead_ms` is reported once through
    `on_link_state(False, reason)`; `on_link_state(True, reason)` follows its next HELLO.
    """

    def __init__(self, port: Port, clock: Clock, *, dispatch: Dispatch = call_now,
                 epoch: int | None = None, **link_options: int) -> None:
        self.port = port
        self.clock = clock
        self.dispatch = dispatch
        self.on_key: Callable[[str], None] | None = None
        self.on_long_press: Callable[[str], None] | None = None
        self.on_key_release: Callable[[str], None] | None = None
        self.on_hook: Callable[[bool], None] | None = None
        self.on_link_state: Callable[[bool, str], None] | None = None
        self.offhook = False
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.controller_errors: deque[tuple[int, str]] = deque(maxlen=32)  # latest reports
        self._leds: dict[str, LedState] = {}
        self._timer: Timer | None = None
        self._reader: threading.Thread | None = None
        self._closed = False
        if epoch is None:
            epoch = random.getrandbits(32)
        self.link = Link(F.ROLE_HOST, epoch, self._write, HOST_FIRMWARE, 0, **link_options)
        self.link.on_frame = self._on_frame
        self.link.on_handshake = self._on_handshake
        self.link.on_state = self._on_state

    @classmethod
    def open(cls, url: str, clock: Clock, *, baudrate: int = BAUDRATE,
             **kwargs: Any) -> FrontPanelLink:
        """Open the UART by pyserial URL (non-blocking) and wrap it."""
        return cls(serial.serial_for_url(url, baudrate=baudrate, timeout=0), clock, **kwargs)

    # -- life cycle -----------------------------------------------------------------------

    def start(self, *, reader: bool = True) -> None:
        """Say HELLO and arm the timers; `reader=False` leaves reading to `poll()`."""
        self.link.start(self._now_ms())
        self._rearm()
        if reader:
            self._start_reader()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        cancel = getattr(self.port, "cancel_read", None)
        if self._reader is not None and cancel is not None:
            cancel()
        if self._reader is not None:
            self._reader.join(timeout=2 * READ_WAIT_S + 1)
        self.port.close()

    # -- state ----------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.link.up

    @property
    def reason(self) -> str:
        """Why the link is in its present state, in words."""
        return self.link.reason

    @property
    def leds(self) -> dict[str, LedState]:
        """The full LED state, as the controller will show it once the link is up."""
        return dict(self._leds)

    def stats(self) -> dict[str, int]:
        errors = {f"rx_{kind}": n for kind, n in self.link.decoder.errors.items()}
        return {**self.link.stats, **errors, "rx_bytes": self.rx_bytes,
                "tx_bytes": self.tx_bytes}

    # -- input from the line (the loop's thread) ------------------------------------------

    def poll(self) -> int:
        """Handle whatever bytes are waiting now, without blocking; returns how many."""
        data = self.port.read(max(1, self.port.in_waiting))
        if data:
            self.feed(data)
        return len(data)

    def feed(self, data: bytes) -> None:
        """Bytes from the controller."""
        self.rx_bytes += len(data)
        self.link.feed(data, self._now_ms())
        self._rearm()

    # -- output ---------------------------------------------------------------------------

    def set_led(self, name: str, state: LedState) -> None:
        """Show `state` on LED `name`; an update not yet sent for that LED is replaced."""
        self._leds[name] = state
        if self.link.up:
            self.link.send(F.LED, led_payload(name, state), self._now_ms(), key="led:" + name)
            self._rearm()

    # -- the link's callbacks -------------------------------------------------------------

    def _on_frame(self, ftype: int, payload: bytes) -> None:
        if ftype == F.KEY:
            self._on_key(*F.unpack_key(payload))
        elif ftype == F.HOOK:
            self._on_hook(F.unpack_hook(payload))
        elif ftype == F.ERROR:
            code, text = F.unpack_error(payload)
            log.warning("front-panel controller reports error %d: %s", code, text)
            self.controller_errors.append((code, text))

    def _on_key(self, name: str, action: int) -> None:
        if not is_key(name):
            log.warning("front-panel controller sent an unknown key %r", name)
            return
        callback = {F.PRESS: self.on_key, F.LONG: self.on_long_press,
                    F.RELEASE: self.on_key_release}[action]
        _safely(callback, name)

    def _on_hook(self, offhook: bool) -> None:
        if offhook != self.offhook:
            self.offhook = offhook
            _safely(self.on_hook, offhook)

    def _on_handshake(self, controller_reset: bool) -> None:
        """Send the full LED state: a restarted controller has none of it, and a restarted SBC
        clears what its predecessor left lit."""
        if controller_reset:
            log.info("front-panel controller (re)started: %s", self.link.reason)
        self.link.discard_pending()
        entries = [(name, PATTERN_CODES[s.pattern], s.colour) for name, s in self._leds.items()]
        now = self._now_ms()
        for payload in F.pack_led_all(entries):
            self.link.send(F.LED_ALL, payload, now)

    def _on_state(self, up: bool, reason: str) -> None:
        log.log(logging.INFO if up else logging.WARNING, "front-panel link %s: %s",
                "up" if up else "down", reason)
        _safely(self.on_link_state, up, reason)

    # -- plumbing -------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            log.warning("front-panel UART write failed: %s", exc)
            return
        self.tx_bytes += len(data)

    def _now_ms(self) -> int:
        return round(self.clock.now() * 1000)

    def _rearm(self) -> None:
        """Keep one clock timer at the link's next deadline (an early one is harmless)."""
        if self._closed:
            return
        due = self.clock.now() + self.link.next_due(self._now_ms()) / 1000
        if self._timer is not None and self._timer.active and self._timer.due <= due + 1e-6:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(due - self.clock.now(), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._closed:
            self.link.poll(self._now_ms())
            self._rearm()

    def _start_reader(self) -> None:
        self.port.timeout = READ_WAIT_S
        self._reader = threading.Thread(target=self._read_forever, name="frontpanel-rx",
                                        daemon=True)
        self._reader.start()

    def _read_forever(self) -> None:
        while not self._closed:
            try:
                data = self.port.read(1)
                waiting = self.port.in_waiting if data else 0
                if waiting:
                    data += self.port.read(waiting)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                if not self._closed:
                    log.warning("front-panel UART read failed, reader stops: %s", exc)
                return
            if data and not self._closed:
                self.dispatch(functools.partial(self.feed, data))


def led_payload(name: str, state: LedState) -> bytes:
    return F.pack_led(name, PATTERN_CODES[state.pattern], state.colour)


def _safely(callback: Callable[..., None] | None, *args: Any) -> None:
    """Run an application callback; its failure must not break the link."""
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        log.exception("front-panel callback %r failed", callback)


class LinkLed(Led):
    """An LED on the front-panel controller: setting it sends the state through the link."""

    def __init__(self, name: str, link: FrontPanelLink,
                 state: LedState | None = None) -> None:
        super().__init__(name)
        self.link = link
        self.state = state or LedState()
        link.set_led(name, self.state)

    def _apply(self, state: LedState) -> None:
        self.link.set_led(self.name, state)


class _LinkLeds(dict[str, Led]):
    """The board's LED table: any LED put in it (even by `Board.led`) becomes a LinkLed."""

    def __init__(self, link: FrontPanelLink, leds: dict[str, Led]) -> None:
        super().__init__()
        self.link = link
        for name, led in leds.items():
            self[name] = led

    def __setitem__(self, name: str, led: Led) -> None:
        if not isinstance(led, LinkLed):
            led = LinkLed(name, self.link, led.state)
        super().__setitem__(name, led)


def attach_frontpanel(board: Board, link: FrontPanelLink) -> None:
    """Route the link's key and hook events to `board` and its LEDs through the link.

    Call it before the phone controller looks up the board's LEDs: the Led objects are
    replaced (each keeps its state). Board callbacks are looked up at each event, so the
    controller may set `board.on_key` / `board.on_hook` later.
    """
    link.on_key = lambda name: _safely(board.on_key, name)
    link.on_hook = lambda offhook: _safely(board.on_hook, offhook)
    board.leds = _LinkLeds(link, board.leds)
