"""GPIO through libgpiod v2 (the `gpiod` package): any Linux board, the Raspberry Pi 5 included.

Each pin is its own line request on the chip (`/dev/gpiochip0` unless told), asked for with
`gpiod.request_lines(chip, consumer=..., config={pin: gpiod.LineSettings(...)})`. A watched
input is reconfigured for both edges; one thread waits on every watched request's file
descriptor and hands each edge to `dispatch`. `gpiod` is imported on first use, never at import.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import selectors
import threading
from typing import Any

from board.gpio.base import Dispatch, EdgeCallback, GpioBackend, GpioError, call_now
from board.gpio.claims import PinClaims, label

log = logging.getLogger("luren.gpio.libgpiod")
DEFAULT_CHIP = "/dev/gpiochip0"
CONSUMER = "luren"

_NO_PERMISSION = "{owner}: no permission to open GPIO chip {chip} (add the user to the gpio group)"
_OPEN_ERRORS = {
    errno.ENOENT: "{owner}: GPIO chip {chip} does not exist — is this the right board? "
                  "(set gpio_options.chip in the board profile)",
    errno.EACCES: _NO_PERMISSION,
    errno.EPERM: _NO_PERMISSION,
    errno.ENOTTY: "{owner}: {chip} is not a GPIO chip",
    errno.ENODEV: "{owner}: {chip} is not a GPIO chip",
    errno.EBUSY: "{owner}: pin {pin} on {chip} is busy (another program holds it)",
    errno.EINVAL: "{owner}: pin {pin} does not exist on {chip}",
}


class LibGpiod(GpioBackend):
    """Pins of one GPIO chip through the kernel's character device (libgpiod v2)."""

    name = "libgpiod"

    def __init__(self, dispatch: Dispatch = call_now, chip: str = DEFAULT_CHIP,
                 consumer: str = CONSUMER) -> None:
        super().__init__(dispatch)
        self.chip = chip
        self.consumer = consumer
        self._gpiod: Any = None
        self._claims = PinClaims()
        self._requests: dict[int, Any] = {}
        self._biases: dict[int, Any] = {}
        self._callbacks: dict[int, list[EdgeCallback]] = {}
        self._watcher: _EdgeThread | None = None

    def setup_input(self, pin: int, pull_up: bool = True, owner: str = "") -> None:
        gpiod = self._lib(owner)
        bias = gpiod.line.Bias.PULL_UP if pull_up else gpiod.line.Bias.PULL_DOWN
        self._request(pin, owner, gpiod.LineSettings(direction=gpiod.line.Direction.INPUT,
                                                     bias=bias))
        self._biases[pin] = bias  # kept when `watch` adds edge detection

    def setup_output(self, pin: int, level: bool = False, owner: str = "") -> None:
        gpiod = self._lib(owner)
        self._request(pin, owner, gpiod.LineSettings(direction=gpiod.line.Direction.OUTPUT,
                                                     output_value=self._value(level)))

    def read(self, pin: int) -> bool:
        return self._line(pin).get_value(pin) == self._gpiod.line.Value.ACTIVE

    def write(self, pin: int, level: bool) -> None:
        self._line(pin).set_value(pin, self._value(level))

    def watch(self, pin: int, callback: EdgeCallback) -> None:
        request = self._line(pin)
        if pin in self._callbacks:
            self._callbacks[pin].append(callback)
            return
        gpiod = self._gpiod
        request.reconfigure_lines({pin: gpiod.LineSettings(
            direction=gpiod.line.Direction.INPUT, edge_detection=gpiod.line.Edge.BOTH,
            bias=self._biases.get(pin, gpiod.line.Bias.AS_IS))})
        self._callbacks[pin] = [callback]
        self._thread().add(pin, request, self._edge)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for request in self._requests.values():
            request.release()
        self._requests.clear()
        self._callbacks.clear()
        self._claims.clear()

    # -- inside ---------------------------------------------------------------------------
    def _lib(self, owner: str) -> Any:
        if self._gpiod is None:
            try:
                self._gpiod = importlib.import_module("gpiod")
            except ImportError:
                raise GpioError(f"{label(owner)}: the gpiod package (libgpiod v2) is not "
                                "installed (pip install gpiod)") from None
        return self._gpiod

    def _request(self, pin: int, owner: str, settings: Any) -> None:
        """Request `pin` with `settings`; a pin already held is only reconfigured (one ioctl:
        the keypad turns its rows from outputs to inputs on every scan)."""
        self._claims.claim(pin, owner)
        if pin in self._callbacks:
            raise GpioError(f"{label(owner)}: pin {pin} is watched; it cannot be set up again")
        held = self._requests.get(pin)
        if held is not None:
            held.reconfigure_lines({pin: settings})
            return
        try:
            self._requests[pin] = self._gpiod.request_lines(
                self.chip, consumer=f"{self.consumer}:{label(owner)}", config={pin: settings})
        except OSError as exc:
            raise self._open_error(exc, owner, pin) from None

    def _edge(self, pin: int, level: bool) -> None:
        """On the loop (through `dispatch`): every callback watching `pin`."""
        for callback in list(self._callbacks.get(pin, ())):
            callback(pin, level)

    def _open_error(self, exc: OSError, owner: str, pin: int) -> GpioError:
        text = _OPEN_ERRORS.get(exc.errno or 0, "{owner}: pin {pin} on {chip}: {error}")
        return GpioError(text.format(owner=label(owner), chip=self.chip, pin=pin,
                                     error=exc.strerror or exc))

    def _line(self, pin: int) -> Any:
        request = self._requests.get(pin)
        if request is None:
            raise GpioError(f"gpio: pin {pin} is not set up")
        return request

    def _value(self, level: bool) -> Any:
        value = self._gpiod.line.Value
        return value.ACTIVE if level else value.INACTIVE

    def _thread(self) -> _EdgeThread:
        if self._watcher is None:
            self._watcher = _EdgeThread(self._gpiod, self.dispatch)
        return self._watcher


class _EdgeThread:
    """One daemon thread waiting on every watched line request; edges go to `dispatch`."""

    def __init__(self, gpiod: Any, dispatch: Dispatch) -> None:
        self._rising = gpiod.EdgeEvent.Type.RISING_EDGE
        self._dispatch = dispatch
        self._lock = threading.Lock()
        self._added: list[tuple[int, Any, EdgeCallback]] = []
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="luren-gpiod", daemon=True)
        self._thread.start()

    def add(self, pin: int, request: Any, callback: EdgeCallback) -> None:
        """Start watching `request` (owned by `pin`); takes effect on the thread."""
        with self._lock:
            self._added.append((pin, request, callback))
        os.write(self._wake_w, b"+")

    def stop(self) -> None:
        self._stopping = True
        os.write(self._wake_w, b".")
        self._thread.join(timeout=2.0)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    self._ready(selector, key)

    def _ready(self, selector: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
        if key.fd == self._wake_r:
            os.read(self._wake_r, 64)
            self._register_added(selector)
            return
        pin, request, callback = key.data
        try:
            events = request.read_edge_events()
        except OSError as exc:
            log.error("pin %d: reading edge events failed: %s; no longer watched", pin, exc)
            selector.unregister(key.fd)
            return
        for event in events:
            self._deliver(callback, event.line_offset, event.event_type == self._rising)

    def _register_added(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            added, self._added = self._added, []
        for pin, request, callback in added:
            selector.register(request.fd, selectors.EVENT_READ, (pin, request, callback))

    def _deliver(self, callback: EdgeCallback, pin: int, level: bool) -> None:
        self._dispatch(lambda: callback(pin, level))
