"""The console's serial line: bytes in and out, delivered on the event loop.

Two transports behind one interface:

- `SerialPort`: a UART (``/dev/ttyAMA0``, a USB-serial adapter) or any pyserial URL
  (``loop://``, ``socket://``), opened with pyserial at the given speed, 8N1, no flow control.
  A reader thread hands received bytes to the loop; a writer thread sends, so a slow line never
  holds the loop up.
- `PtyPort` ("pty"): the simulator's console, a pseudo-terminal. The phone keeps the master
  side (and the slave open, so a technician coming and going does not hang it up); a technician
  opens the slave (its name: `PtyPort.name`, announced in ``run/ready.json``) with screen,
  picocom or pyserial, exactly as a USB-serial adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import termios
import threading
import tty
from collections.abc import Callable

import serial

log = logging.getLogger("luren.console")

OnData = Callable[[bytes], None]
READ_CHUNK = 4096
MAX_PENDING_WRITE = 256 * 1024  # beyond this the console drops output (nobody is reading)
REOPEN_S = 2.0  # how often a serial port that went away is tried again


class ConsoleTransport:
    name: str

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


def open_port(port: str, baud: int, loop: asyncio.AbstractEventLoop,
              on_data: OnData) -> ConsoleTransport:
    """Open the console's line ("pty" or a device / pyserial URL); OSError or
    serial.SerialException in words when it cannot be opened."""
    if port == "pty":
        return PtyPort(loop, on_data)
    return SerialPort(port, baud, loop, on_data)


class PtyPort(ConsoleTransport):
    def __init__(self, loop: asyncio.AbstractEventLoop, on_data: OnData) -> None:
        self._loop, self._on_data = loop, on_data
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)  # no echo, no line discipline of its own
        os.set_blocking(self._master, False)
        self.name = os.ttyname(self._slave)
        self._pending = bytearray()
        self._closed = False
        loop.add_reader(self._master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: no slave side open (cannot happen while we hold it)
            log.debug("console pty read: %s", exc)
            return
        if data:
            self._on_data(data)

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        if len(self._pending) + len(data) > MAX_PENDING_WRITE:
            return  # nobody is reading: drop rather than grow
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        while self._pending and not self._closed:
            try:
                sent = os.write(self._master, self._pending)
            except BlockingIOError:
                self._loop.add_writer(self._master, self._writable)
                return
            except OSError as exc:
                log.debug("console pty write: %s", exc)
                self._pending.clear()
                return
            del self._pending[:sent]
        with contextlib.suppress(Exception):
            self._loop.remove_writer(self._master)

    def _writable(self) -> None:
        self._flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._master)
            self._loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class SerialPort(ConsoleTransport):
    def __init__(self, url: str, baud: int, loop: asyncio.AbstractEventLoop,
                 on_data: OnData) -> None:
        self.name = url
        self._loop, self._on_data = loop, on_data
        self._serial = serial.serial_for_url(url, baudrate=baud, bytesize=8, parity="N",
                                             stopbits=1, timeout=0.2, write_timeout=2)
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._running = True
        self._stopped = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="console-read",
                                        daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="console-write",
                                        daemon=True)
        self._reader.start()
        self._writer.start()

    def _read_loop(self) -> None:
        while self._running:
            try:
                data = self._serial.read(1)  # returns at the first byte (or the timeout) ...
                if data:
                    waiting = self._serial.in_waiting
                    data += self._serial.read(min(waiting, READ_CHUNK)) if waiting else b""
            except (serial.SerialException, OSError, TypeError) as exc:
                if not self._running:
                    return
                log.error("console %s: read failed: %s; opening it again", self.name, exc)
                if not self._reopen():
                    return
                continue
            if data and self._running:
                self._loop.call_soon_threadsafe(self._on_data, data)

    def _reopen(self) -> bool:
        """A USB-serial adapter pulled out and put back: try every REOPEN_S until it is there
        again or the port is closed; False when closed."""
        with contextlib.suppress(Exception):
            self._serial.close()
        while self._running:
            if self._stopped.wait(REOPEN_S):
                return False
            try:
                self._serial.open()
            except (serial.SerialException, OSError):
                continue
            log.info("console %s: open again", self.name)
            return True
        return False

    def _write_loop(self) -> None:
        while True:
            data = self._out.get()
            if data is None:
                return
            with self._queued_lock:
                self._queued -= len(data)
            try:
                self._serial.write(data)
            except serial.SerialTimeoutException:
                pass  # flow stopped by the far end: this output is lost, the console lives on
            except (serial.SerialException, OSError) as exc:
                log.error("console %s: write failed: %s", self.name, exc)

    def write(self, data: bytes) -> None:
        with self._queued_lock:
            if not self._running or self._queued + len(data) > MAX_PENDING_WRITE:
                return
            self._queued += len(data)
        self._out.put(data)

    def close(self) -> None:
        if not self._running:
            return
        self._running = False
        self._stopped.set()
        self._out.put(None)
        self._writer.join(3)
        with contextlib.suppress(Exception):
            self._serial.cancel_read()
        self._reader.join(3)
        with contextlib.suppress(Exception):
            self._serial.close()
