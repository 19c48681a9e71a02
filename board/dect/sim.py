"""A simulated DECT radio module with simulated handsets: for the tests and the simulator.

`SimDectModule` is the module's firmware, in CPython: the DECT end of the link
(`board.dect.link.DectLink`, role "DECT radio module"), the registration table
(`board.dect.eeprom.Registrations`, in a JSON file if given a path), the registration window
and its PIN check, and one `SimHandset` per registered handset. It never reads a clock or a
port: bytes it sends go to `write(bytes)`, bytes from the base come in through `feed()`, time
is `now_ms()`, and the owner calls `poll()` when `next_due()` says. A test drives it directly;
`board.dect.simserver` runs it on a pty with a JSON-lines control socket
(`python -m board.dect.sim`, see `main()` there and docs/dect.md).

The PIN check happens here, on the module: the base sends the system PIN with OPEN_WINDOW,
and a handset registers only while the window is open and only with that PIN. The window
closes after its seconds or after one registration. `reset()` is a module reset: a new
epoch, a new handshake, registrations kept (EEPROM), everything else (calls, what the
handsets show, the window, unacknowledged events) lost.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from board.dect import messages as M
from board.dect.eeprom import Registrations
from board.dect.link import DectLink

log = logging.getLogger(__name__)

MODULE_FIRMWARE = (1, 0)
REGISTERED = "registered"  # SimHandset.register() results: this or a REG_FAILURES word


class SimHandset:
    """One DECT handset: what its user does, and what the base made it show and play."""

    def __init__(self, module: SimDectModule, ipui: str) -> None:
        M.check_ipui(ipui)
        self.module = module
        self.ipui = ipui.lower()
        self.number: int | None = None
        self.name = ""
        self.is_offhook = False
        self.clear()

    def clear(self) -> None:
        """Forget what the base told it (the module lost it)."""
        self.display_lines: list[str] = []
        self.ringing = False
        self.cadence = 0
        self.caller = ""
        self.audio_channel: int | None = None
        self.tone: int | None = None

    @property
    def registered(self) -> bool:
        return self.number is not None

    # -- the user -------------------------------------------------------------------------

    def register(self, pin: str) -> str:
        """Try to register with `pin`: "registered", "wrong_pin", "window_closed" or
        "full"."""
        return self.module.register(self, pin)

    def deregister(self) -> bool:
        """Leave the base; False if it was not registered."""
        return self.module.handset_leaves(self)

    def offhook(self) -> None:
        self._need_registration()
        if not self.is_offhook:
            self.is_offhook = True
            self.module.send(M.OFFHOOK, M.pack_number(self._num()))

    def onhook(self) -> None:
        self._need_registration()
        if self.is_offhook:
            self.is_offhook = False
            self.module.send(M.ONHOOK, M.pack_number(self._num()))

    def dial(self, digits: str) -> None:
        """Dial one digit or a block of them (0-9 * #)."""
        self._need_registration()
        self.module.send(M.DIGITS, M.pack_digits(self._num(), digits))

    def key(self, name: str) -> None:
        """Press a key of `messages.HANDSET_KEYS` ("R", "int", "menu", "vol+", ...)."""
        self._need_registration()
        self.module.send(M.KEY, M.pack_key(self._num(), name))

    def state(self) -> dict[str, Any]:
        """Everything about it, as the control socket answers it."""
        return {"number": self.number, "ipui": self.ipui, "name": self.name,
                "registered": self.registered, "offhook": self.is_offhook,
                "display": list(self.display_lines), "ringing": self.ringing,
                "cadence": self.cadence, "caller": self.caller,
                "audio_channel": self.audio_channel, "tone": self.tone}

    def _need_registration(self) -> None:
        if self.number is None:
            raise ValueError(f"handset {self.ipui} is not registered")

    def _num(self) -> int:
        assert self.number is not None
        return self.number


class SimDectModule:
    """The DECT radio module; see the module docstring."""

    def __init__(self, write: Callable[[bytes], Any], now_ms: Callable[[], int], *,
                 epoch: int | None = None, state_path: Path | None = None,
                 rng: random.Random | None = None, **link_options: int) -> None:
        self._out = write
        self.now_ms = now_ms
        self.rng = rng or random.Random()
        self.link_options = link_options
        self.registrations = Registrations(state_path)
        self.handsets: dict[int, SimHandset] = {}
        for number, ipui, name in self.registrations.entries():
            self._attach(SimHandset(self, ipui), number, name)
        self.stats = {"tx_dropped": 0, "tx_corrupted": 0, "rx_corrupted": 0,  # frames, bytes
                      "bad_command": 0, "no_such_handset": 0}
        self._drop_frames = 0
        self._corrupt_out = 0
        self._corrupt_in = 0
        self._reset_reason = "power-on"
        self._window_pin: str | None = None
        self._window_until = 0
        self._commands = self._command_table()
        self.link = self._new_link(epoch)

    # -- the owner's calls ----------------------------------------------------------------

    def start(self) -> None:
        """Say HELLO; the link comes up when the base answers."""
        self.link.start(self.now_ms())

    def feed(self, data: bytes) -> None:
        """Bytes from the base."""
        if self._corrupt_in:
            data, self._corrupt_in = self._corrupt(data, self._corrupt_in, "rx_corrupted")
        self.link.feed(data, self.now_ms())

    def poll(self) -> None:
        """Run what is due: the link's timers, the window's end."""
        now = self.now_ms()
        if self._window_pin is not None and now >= self._window_until:
            self._close_window()
        self.link.poll(now)

    def next_due(self) -> int:
        """Milliseconds until `poll()` has something to do (at least 1)."""
        now = self.now_ms()
        due = self.link.next_due(now)
        if self._window_pin is not None:
            due = min(due, self._window_until - now)
        return max(1, due)

    def reset(self, *, epoch: int | None = None, reason: str = "watchdog") -> None:
        """The module restarts: registrations stay, calls and everything else are lost."""
        M.pack_reset_reason(reason)  # a word of messages.RESET_REASONS
        self._reset_reason = reason
        self._window_pin = None
        for handset in self.handsets.values():
            handset.clear()
            handset.is_offhook = False
        self.link = self._new_link(epoch)
        self.start()

    # -- faults ---------------------------------------------------------------------------

    def corrupt_next(self, n_bytes: int, *, incoming: bool = False) -> None:
        """Flip every bit of the next `n_bytes` the module sends (or, `incoming`, receives)."""
        if incoming:
            self._corrupt_in += n_bytes
        else:
            self._corrupt_out += n_bytes

    def drop_next(self, frames: int = 1) -> None:
        """Lose the next `frames` frames the module sends."""
        self._drop_frames += frames

    # -- handsets -------------------------------------------------------------------------

    @property
    def window_open(self) -> bool:
        return self._window_pin is not None

    def window_seconds_left(self) -> int:
        if self._window_pin is None:
            return 0
        return max(0, -(-(self._window_until - self.now_ms()) // 1000))

    def new_handset(self, ipui: str | None = None) -> SimHandset:
        """A handset not yet registered (a random IPUI unless given)."""
        if ipui is None:
            ipui = f"{self.rng.getrandbits(40):010x}"
        return SimHandset(self, ipui)

    def handset(self, number: int) -> SimHandset:
        """The registered handset `number`; ValueError in words if there is none."""
        M.check_number(number)
        if number not in self.handsets:
            raise ValueError(f"no handset {number} is registered")
        return self.handsets[number]

    def register(self, handset: SimHandset, pin: str) -> str:
        """A handset asks to register with `pin` (see `SimHandset.register`)."""
        result = self._registration_result(handset, pin)
        if result != REGISTERED:
            self.send(M.REG_FAILED, M.pack_reg_failed(result))
            return result
        number = self.registrations.number_of(handset.ipui) or self.registrations.free_number()
        assert number is not None
        known = self.registrations.get(number)
        name = known[2] if known is not None else handset.name or f"Handset {number}"
        self.registrations.add(number, handset.ipui, name)
        self._attach(handset, number, name)
        self.send(M.REGISTERED, M.pack_registered(number, handset.ipui, name))
        self._close_window()
        return REGISTERED

    def handset_leaves(self, handset: SimHandset) -> bool:
        number = handset.number
        if number is None or self.handsets.get(number) is not handset:
            return False
        self._forget(number, "handset")
        return True

    def send(self, ftype: int, payload: bytes, key: str | None = None) -> None:
        """Queue an event for the base."""
        self.link.send(ftype, payload, self.now_ms(), key=key)

    def _registration_result(self, handset: SimHandset, pin: Any) -> str:
        if self._window_pin is None:
            return "window_closed"
        if pin != self._window_pin:
            return "wrong_pin"
        if (self.registrations.number_of(handset.ipui) is None
                and self.registrations.free_number() is None):
            return "full"
        return REGISTERED

    def _attach(self, handset: SimHandset, number: int, name: str) -> None:
        old = self.handsets.get(number)
        if old is not None and old is not handset:
            old.number = None
        handset.number, handset.name = number, name
        self.handsets[number] = handset

    def _forget(self, number: int, why: str) -> None:
        handset = self.handsets.pop(number)
        handset.number = None
        handset.is_offhook = False
        handset.clear()
        self.registrations.remove(number)
        self.send(M.DEREGISTERED, M.pack_deregistered(number, why))

    # -- the window -----------------------------------------------------------------------

    def _open_window(self, pin: str, seconds: int) -> None:
        self._window_pin = pin
        self._window_until = self.now_ms() + 1000 * seconds
        self.send(M.WINDOW_STATE, M.pack_window_state(True, seconds), key="window")

    def _close_window(self) -> None:
        if self._window_pin is None:
            return
        self._window_pin = None
        self.send(M.WINDOW_STATE, M.pack_window_state(False, 0), key="window")

    # -- the base's commands --------------------------------------------------------------

    def _on_frame(self, ftype: int, payload: bytes) -> None:
        command = self._commands.get(ftype)
        if command is None:
            return  # not a command: ignored, for forward compatibility
        try:
            command(M.unpack(ftype, payload))
        except ValueError as exc:
            self.stats["bad_command"] += 1
            log.warning("simulated DECT module: bad %s from the base: %s",
                        M.NAMES.get(ftype, ftype), exc)

    def _command_table(self) -> dict[int, Callable[[Any], None]]:
        return {
            M.OPEN_WINDOW: lambda f: self._open_window(*f),
            M.CLOSE_WINDOW: lambda f: self._close_window(),
            M.DEREGISTER: self._on_deregister, M.NAME: self._on_name,
            M.DISPLAY: self._on_display, M.RING: self._on_ring,
            M.AUDIO: self._on_audio, M.TONE: self._on_tone,
        }

    def _target(self, number: int) -> SimHandset | None:
        handset = self.handsets.get(number)
        if handset is None:
            self.stats["no_such_handset"] += 1
        return handset

    def _on_deregister(self, number: int) -> None:
        if self._target(number) is not None:
            self._forget(number, "base")

    def _on_name(self, fields: tuple[int, str]) -> None:
        number, name = fields
        handset = self._target(number)
        if handset is not None:
            handset.name = name
            self.registrations.rename(number, name)

    def _on_display(self, fields: tuple[int, list[str]]) -> None:
        handset = self._target(fields[0])
        if handset is not None:
            handset.display_lines = list(fields[1])

    def _on_ring(self, fields: tuple[int, bool, int, str]) -> None:
        handset = self._target(fields[0])
        if handset is not None:
            handset.ringing, handset.cadence, handset.caller = fields[1:]

    def _on_audio(self, fields: tuple[int, int | None]) -> None:
        handset = self._target(fields[0])
        if handset is not None:
            handset.audio_channel = fields[1]

    def _on_tone(self, fields: tuple[int, int | None]) -> None:
        handset = self._target(fields[0])
        if handset is not None:
            handset.tone = fields[1]

    # -- the link -------------------------------------------------------------------------

    def _new_link(self, epoch: int | None) -> DectLink:
        if epoch is None:
            epoch = self.rng.getrandbits(32)
        link = DectLink(M.ROLE_DECT_MODULE, epoch, self._write, MODULE_FIRMWARE,
                        **self.link_options)
        link.on_frame = self._on_frame
        link.on_handshake = self._on_handshake
        return link

    def _on_handshake(self, base_reset: bool) -> None:
        """Tell the base everything it needs after any handshake."""
        self.send(M.RESET_REASON, M.pack_reset_reason(self._reset_reason), key="reset")
        self.send(M.HANDSET_LIST, M.pack_handset_list(self.registrations.entries()),
                  key="list")
        self.send(M.WINDOW_STATE, M.pack_window_state(self.window_open,
                                                      self.window_seconds_left()),
                  key="window")
        for number, handset in sorted(self.handsets.items()):
            if handset.is_offhook:
                self.send(M.OFFHOOK, M.pack_number(number))

    def _write(self, data: bytes) -> None:
        if self._drop_frames:
            self._drop_frames -= 1
            self.stats["tx_dropped"] += 1
            return
        if self._corrupt_out:
            data, self._corrupt_out = self._corrupt(data, self._corrupt_out, "tx_corrupted")
        self._out(data)

    def _corrupt(self, data: bytes, n_bytes: int, counter: str) -> tuple[bytes, int]:
        """`data` with up to `n_bytes` of it bit-flipped, and how many are still to flip."""
        count = min(n_bytes, len(data))
        self.stats[counter] += count
        return bytes(b ^ 0xFF for b in data[:count]) + data[count:], n_bytes - count


if __name__ == "__main__":  # python -m board.dect.sim: the module on a pty (board.dect.simserver)
    from board.dect.simserver import main

    raise SystemExit(main())
