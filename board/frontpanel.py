"""The SBC's end of the front-panel link: keys, hook and LEDs through a microcontroller.

The front-panel controller (`board/mcu/`, MicroPython on an RP2040-class board) scans the
keys, reads the hookswitch and drives the LEDs; it talks to the SBC over a UART with the framed,
acknowledged protocol of docs/frontpanel.md. This module opens that UART with pyserial by URL
(`/dev/ttyAMA0`, a pty, `loop://`, `spy://...`), runs the same `board.mcu.link.Link` state
machine as the controller, and turns what arrives into `on_key` / `on_long_press` /
`on_hook` / `on_link_state` callbacks. It keeps the whole LED state and sends it again after
every handshake, so a controller that restarted shows the right LEDs within one round trip.

Threads (`board.serial_line.SerialLine`, shared with the DECT radio's link): a reader thread
only reads bytes and hands them to `dispatch` (the runtime passes the controller loop's
`call_soon_threadsafe`); everything else - decoding, callbacks, `set_led`, the retransmit and
heartbeat timers of the injected `Clock` - runs on that loop.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from board.keys import is_key
from board.mcu import frame as F
from board.mcu.link import Link
from board.parts import Board, Led, LedPattern, LedState
from board.serial_line import Dispatch, OnSerialLine, Port, SerialLine, call_now
from firmware.clock import Clock

log = logging.getLogger(__name__)

HOST_FIRMWARE = (0, 1)
PATTERN_CODES = {
    LedPattern.OFF: F.OFF,
    LedPattern.ON: F.ON,
    LedPattern.SLOW_BLINK: F.SLOW_BLINK,
    LedPattern.FAST_BLINK: F.FAST_BLINK,
}


class FrontPanelLink(OnSerialLine):
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
        self.on_key: Callable[[str], None] | None = None
        self.on_long_press: Callable[[str], None] | None = None
        self.on_key_release: Callable[[str], None] | None = None
        self.on_hook: Callable[[bool], None] | None = None
        self.on_link_state: Callable[[bool, str], None] | None = None
        self.offhook = False
        self.controller_errors: deque[tuple[int, str]] = deque(maxlen=32)  # latest reports
        self._leds: dict[str, LedState] = {}
        if epoch is None:
            epoch = random.getrandbits(32)
        self.line = SerialLine(
            port, clock, lambda write: Link(F.ROLE_HOST, epoch, write, HOST_FIRMWARE, 0,
                                            **link_options),
            dispatch=dispatch, label="front-panel")
        self.link = self.line.link
        self.link.on_frame = self._on_frame
        self.link.on_handshake = self._on_handshake
        self.link.on_state = self._on_state

    # -- state ----------------------------------------------------------------------------

    @property
    def reason(self) -> str:
        """Why the link is in its present state, in words."""
        return self.link.reason

    @property
    def leds(self) -> dict[str, LedState]:
        """The full LED state, as the controller will show it once the link is up."""
        return dict(self._leds)

    # -- output ---------------------------------------------------------------------------

    def set_led(self, name: str, state: LedState) -> None:
        """Show `state` on LED `name`; an update not yet sent for that LED is replaced."""
        self._leds[name] = state
        if self.link.up:
            self.line.send(F.LED, led_payload(name, state), key="led:" + name)

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
        now = self.line.now_ms()
        for payload in F.pack_led_all(entries):
            self.link.send(F.LED_ALL, payload, now)

    def _on_state(self, up: bool, reason: str) -> None:
        log.log(logging.INFO if up else logging.WARNING, "front-panel link %s: %s",
                "up" if up else "down", reason)
        _safely(self.on_link_state, up, reason)


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
