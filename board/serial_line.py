"""A `Link` on a pyserial port, its timers on the injected `Clock`: the SBC's end of a UART.

Used by the front-panel controller's link (`board.frontpanel.FrontPanelLink`) and the DECT
radio module's (`board.dect.radio.DectRadio`). A reader thread only reads bytes and hands them
to `dispatch` (the runtime passes its loop's `call_soon_threadsafe`); decoding, the link's
callbacks, sending and the retransmit / heartbeat / dead-peer timers all run on the thread
`dispatch` hands work to. Tests pass a `ManualClock` and drive the timers with `advance()`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, Self

import serial

from board.mcu.link import Link
from firmware.clock import Clock, Timer

log = logging.getLogger(__name__)

Dispatch = Callable[[Callable[[], None]], None]
BAUDRATE = 115200  # the front-panel controller's and the DECT radio's UART
READ_WAIT_S = 0.2  # the reader thread's longest wait, so close() is seen even without cancel_read
Write = Callable[[bytes], None]


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


class SerialLine:
    """Bytes between `port` and the `Link` that `make_link(write)` builds."""

    def __init__(self, port: Port, clock: Clock, make_link: Callable[[Write], Link], *,
                 dispatch: Dispatch = call_now, label: str = "serial link") -> None:
        self.port = port
        self.clock = clock
        self.dispatch = dispatch
        self.label = label
        self.rx_bytes = 0
        self.tx_bytes = 0
        self._timer: Timer | None = None
        self._reader: threading.Thread | None = None
        self._closed = False
        self.link = make_link(self.write)

    # -- life cycle -----------------------------------------------------------------------

    def start(self, *, reader: bool = True) -> None:
        """Say HELLO and arm the timer; `reader=False` leaves reading to `poll()`/`feed()`."""
        self.link.start(self.now_ms())
        self.rearm()
        if reader:
            self._start_reader()

    def close(self) -> None:
        """Stop the timer and the reader thread, close the port; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        cancel = getattr(self.port, "cancel_read", None)
        if self._reader is not None and cancel is not None:
            cancel()
        if self._reader is not None:
            self._reader.join(timeout=2 * READ_WAIT_S + 1)
        self.port.close()

    # -- bytes in and out -----------------------------------------------------------------

    def poll(self) -> int:
        """Handle whatever bytes are waiting now, without blocking; returns how many."""
        data = self.port.read(max(1, self.port.in_waiting))
        if data:
            self.feed(data)
        return len(data)

    def feed(self, data: bytes) -> None:
        """Bytes from the peer."""
        if self._closed:
            return
        self.rx_bytes += len(data)
        self.link.feed(data, self.now_ms())
        self.rearm()

    def send(self, ftype: int, payload: bytes, key: str | None = None) -> bool:
        """Queue a reliable frame (see `Link.send`); False if the queue overflowed."""
        queued = self.link.send(ftype, payload, self.now_ms(), key=key)
        self.rearm()
        return queued

    def write(self, data: bytes) -> None:
        """The link's output: a failed write is logged and lost (the link retransmits)."""
        if self._closed:
            return
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            log.warning("%s: UART write failed: %s", self.label, exc)
            return
        self.tx_bytes += len(data)

    def stats(self) -> dict[str, int]:
        errors = {f"rx_{kind}": n for kind, n in self.link.decoder.errors.items()}
        return {**self.link.stats, **errors, "rx_bytes": self.rx_bytes,
                "tx_bytes": self.tx_bytes}

    # -- timers ---------------------------------------------------------------------------

    def now_ms(self) -> int:
        return round(self.clock.now() * 1000)

    def rearm(self) -> None:
        """Keep one clock timer at the link's next deadline (an early one is harmless)."""
        if self._closed:
            return
        due = self.clock.now() + self.link.next_due(self.now_ms()) / 1000
        if self._timer is not None and self._timer.active and self._timer.due <= due + 1e-6:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(due - self.clock.now(), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._closed:
            self.link.poll(self.now_ms())
            self.rearm()

    # -- the reader thread ----------------------------------------------------------------

    def _start_reader(self) -> None:
        self.port.timeout = READ_WAIT_S
        self._reader = threading.Thread(target=self._read_forever, name=f"{self.label}-rx",
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
                    log.warning("%s: UART read failed, reader stops: %s", self.label, exc)
                return
            if data and not self._closed:
                self.dispatch(functools.partial(self.feed, data))


class OnSerialLine:
    """A peer the SBC reaches through a `SerialLine` (the front-panel controller, the DECT
    radio): opening its UART, starting and closing the line, bytes in, counters. Subclasses
    build `self.line` and `self.link` in their constructor."""

    line: SerialLine
    link: Link

    @classmethod
    def open(cls, url: str, clock: Clock, *, baudrate: int = BAUDRATE, **kwargs: Any) -> Self:
        """Open the UART by pyserial URL (non-blocking) and wrap it."""
        return cls(serial.serial_for_url(url, baudrate=baudrate, timeout=0), clock, **kwargs)

    def start(self, *, reader: bool = True) -> None:
        """Say HELLO and arm the timers; `reader=False` leaves reading to `poll()`."""
        self.line.start(reader=reader)

    def close(self) -> None:
        self.line.close()

    def poll(self) -> int:
        """Handle whatever bytes are waiting now, without blocking; returns how many."""
        return self.line.poll()

    def feed(self, data: bytes) -> None:
        """Bytes from the peer."""
        self.line.feed(data)

    @property
    def up(self) -> bool:
        return self.link.up

    @property
    def rx_bytes(self) -> int:
        return self.line.rx_bytes

    @property
    def tx_bytes(self) -> int:
        return self.line.tx_bytes

    def stats(self) -> dict[str, int]:
        return self.line.stats()
