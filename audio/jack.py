"""Headset detection: one interface, a backend per way a board can tell (chosen by the profile).

- `AlsaJack`: the codec's jack control ("Headphone Jack", iface CARD). pyalsaaudio 0.11 only
  reaches simple mixer elements (`alsaaudio.Mixer`), not CARD-interface jack kcontrols, so this
  backend polls `amixer -c CARD cget iface=CARD,name='...'` and parses it (`parse_amixer_cget`).
- `EvdevJack`: Linux input switch events (EV_SW, SW_HEADPHONE_INSERT / SW_MICROPHONE_INSERT)
  from `/dev/input/eventN`, parsed from `struct input_event` with `struct`; no extra dependency.
- `GpioJack`: a jack switch on a GPIO, through `board.gpio` (any backend, `SimGpio` in tests).
- `SimJack`: plugged and unplugged by hand (tests, the simulator).

Every backend reports through `on_change(plugged)`, once per real change. Callbacks from a
backend's own thread go through `dispatch` (the runtime: the loop's `call_soon_threadsafe`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

from board.gpio.base import GpioBackend

log = logging.getLogger("luren.audio.jack")

Dispatch = Callable[[Callable[[], None]], None]

EV_SW = 0x05
SW_HEADPHONE_INSERT = 0x02
SW_MICROPHONE_INSERT = 0x04
SW_JACK_PHYSICAL_INSERT = 0x07
SW_MAX = 0x10
INPUT_EVENT = struct.Struct("@llHHi")  # struct timeval (native longs), type, code, value


def call_now(fn: Callable[[], None]) -> None:
    fn()


class HeadsetJack:
    """The interface: `plugged`, `on_change(plugged)`, `start()`, `close()`."""

    name = "jack"

    def __init__(self, dispatch: Dispatch = call_now) -> None:
        self.dispatch = dispatch
        self.plugged = False
        self.on_change: Callable[[bool], None] | None = None

    def start(self) -> None:
        """Begin watching (the current state is in `plugged` afterwards)."""

    def close(self) -> None:
        """Stop watching and release the device."""

    def _report(self, plugged: bool) -> None:
        if plugged == self.plugged:
            return
        self.plugged = plugged
        log.info("%s: headset %s", self.name, "plugged in" if plugged else "unplugged")
        if self.on_change is not None:
            self.on_change(plugged)


class SimJack(HeadsetJack):
    """A jack moved by hand."""

    name = "sim"

    def plug(self) -> None:
        self._report(True)

    def unplug(self) -> None:
        self._report(False)


class GpioJack(HeadsetJack):
    """A jack switch on `pin`; `plugged_level` is the level it shows with a plug inside."""

    name = "gpio"

    def __init__(self, gpio: GpioBackend, pin: int, *, plugged_level: bool = False,
                 pull_up: bool = True) -> None:
        super().__init__()
        self.gpio, self.pin, self.plugged_level, self.pull_up = gpio, pin, plugged_level, pull_up

    def start(self) -> None:
        self.gpio.setup_input(self.pin, self.pull_up, owner="headset-jack")
        self.plugged = self.gpio.read(self.pin) == self.plugged_level
        self.gpio.watch(self.pin, self._edge)

    def _edge(self, pin: int, level: bool) -> None:
        self._report(level == self.plugged_level)


# -- Linux input events ---------------------------------------------------------------------------
class InputEvent(NamedTuple):
    sec: int
    usec: int
    type: int
    code: int
    value: int


def pack_event(type_: int, code: int, value: int, sec: int = 0, usec: int = 0) -> bytes:
    """One `struct input_event` as the kernel writes it (tests feed these)."""
    return INPUT_EVENT.pack(sec, usec, type_, code, value)


class EventParser:
    """Turns a byte stream (reads of any size) into `InputEvent`s."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> Iterator[InputEvent]:
        data = self._rest + data
        whole = len(data) - len(data) % INPUT_EVENT.size
        self._rest = data[whole:]
        for fields in INPUT_EVENT.iter_unpack(data[:whole]):
            yield InputEvent(*fields)


def eviocgsw(length: int) -> int:
    """The EVIOCGSW(len) ioctl number: read the switch state bitmap."""
    ioc_read, nr, kind = 2, 0x1B, ord("E")
    return (ioc_read << 30) | (length << 16) | (kind << 8) | nr


class EvdevJack(HeadsetJack):
    """EV_SW events of one switch from an input device (or any file or pipe of events)."""

    name = "evdev"

    def __init__(self, device: str, *, switch: int = SW_HEADPHONE_INSERT,
                 dispatch: Dispatch = call_now) -> None:
        super().__init__(dispatch)
        self.device, self.switch = device, switch
        self._parser = EventParser()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._fd = os.open(self.device, os.O_RDONLY)
        self.plugged = self._initial_state(self._fd)
        self._thread = threading.Thread(target=self._read_loop, name="evdev-jack", daemon=True)
        self._thread.start()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def feed(self, data: bytes) -> None:
        """Handle raw `input_event` bytes (the reader thread calls this; so can a test)."""
        for event in self._parser.feed(data):
            if event.type == EV_SW and event.code == self.switch:
                plugged = bool(event.value)
                self.dispatch(lambda p=plugged: self._report(p))

    def _initial_state(self, fd: int) -> bool:
        """The switch's state now, through EVIOCGSW; False where that ioctl does not apply."""
        bitmap = bytearray(SW_MAX // 8 + 1)
        try:
            fcntl.ioctl(fd, eviocgsw(len(bitmap)), bitmap)
        except OSError:
            return False
        return bool(bitmap[self.switch // 8] >> (self.switch % 8) & 1)

    def _read_loop(self) -> None:
        while self._fd is not None:
            try:
                data = os.read(self._fd, INPUT_EVENT.size * 16)
            except OSError as exc:
                if self._fd is not None:
                    log.error("%s: %s: %s", self.name, self.device, exc)
                return
            if not data:
                return
            self.feed(data)


# -- ALSA jack kcontrols --------------------------------------------------------------------------
class Clock(Protocol):
    def call_later(self, delay: float, callback: Callable[[], None]) -> Any: ...


Runner = Callable[[list[str]], str]

_VALUES = re.compile(r"^\s*:\s*values=(\w+)", re.MULTILINE)


def parse_amixer_cget(text: str) -> bool | None:
    """The boolean of `amixer cget` output (": values=on"); None when there is none."""
    match = _VALUES.search(text)
    if match is None:
        return None
    return match.group(1).lower() in ("on", "1", "true")


def run_amixer(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, text=True, timeout=2, check=True).stdout


class AlsaJack(HeadsetJack):
    """Polls the card's jack control every `interval` seconds through the injected clock."""

    name = "alsa"

    def __init__(self, card: str, clock: Clock, *, control: str = "Headphone Jack",
                 interval: float = 0.5, runner: Runner = run_amixer) -> None:
        super().__init__()
        self.card, self.clock, self.control = card, clock, control
        self.interval, self.runner = interval, runner
        self._timer: Any = None
        self.failures = 0

    def start(self) -> None:
        self.plugged = bool(self.read())
        self._timer = self.clock.call_later(self.interval, self._poll)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def read(self) -> bool | None:
        """The control's value now; None (logged once) when it cannot be read."""
        args = ["amixer", "-c", self.card, "cget", f"iface=CARD,name={self.control}"]
        try:
            value = parse_amixer_cget(self.runner(args))
        except (OSError, subprocess.SubprocessError) as exc:
            value = None
            if not self.failures:
                log.error("alsa jack: card %s, control %r: %s", self.card, self.control, exc)
        self.failures = self.failures + 1 if value is None else 0
        return value

    def _poll(self) -> None:
        value = self.read()
        if value is not None:
            self._report(value)
        self._timer = self.clock.call_later(self.interval, self._poll)


def jack_from_profile(config: dict[str, Any], *, gpio: GpioBackend | None = None,
                      clock: Clock | None = None, dispatch: Dispatch = call_now) -> HeadsetJack:
    """The backend a profile's `[audio.jack]` table names (docs/audio.md)."""
    kind = config.get("kind", "none")
    if kind == "gpio" and gpio is not None:
        return GpioJack(gpio, int(config["pin"]), plugged_level=config.get("plugged") == "high")
    if kind == "evdev":
        switch = SW_MICROPHONE_INSERT if config.get("switch") == "microphone" \
            else SW_HEADPHONE_INSERT
        return EvdevJack(str(config["device"]), switch=switch, dispatch=dispatch)
    if kind == "alsa" and clock is not None:
        return AlsaJack(str(config.get("card", "0")), clock,
                        control=str(config.get("control", "Headphone Jack")))
    if kind in ("sim", "none"):
        return SimJack(dispatch)
    raise ValueError(f"audio.jack: unknown kind {kind!r} (or its gpio/clock is missing)")
