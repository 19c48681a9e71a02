"""The DECT base's end of the radio module's UART: handsets as callbacks and commands.

A DECT base has no keypad or display of its own: a DECT radio module on a UART carries every
handset's events (registration, hook, digits, keys) to the base, and the base's commands
(registration window, display text, ringing, audio channel) to the handsets, over the front
panel's framed, acknowledged link (docs/frontpanel.md) with the DECT message set of
`board.dect.messages` (docs/dect.md).

`DectRadio` is shaped like `board.frontpanel.FrontPanelLink`: pyserial by URL, a reader thread
handing bytes to `dispatch`, timers on the injected `Clock`. It keeps what it last told each
handset (display, ring, audio, tone) and sends it again after every handshake, so a module that
reset shows the right things one round trip after its HELLO. A module reset (a new epoch) is
reported as `on_link(False, "module restarted")` - with `on_onhook` for each handset that was
off-hook, since the module lost its calls - then `on_link(True, ...)`, then the module's
HANDSET_LIST arrives through `on_handset_list`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from board.dect import messages as M
from board.dect.link import DectLink
from board.serial_line import Dispatch, OnSerialLine, Port, SerialLine, Write, call_now
from firmware.clock import Clock

log = logging.getLogger(__name__)

BASE_FIRMWARE = (0, 1)
DEFAULT_PIN = "0000"
RESTARTED = "module restarted"


@dataclass(frozen=True)
class HandsetInfo:
    """A registered handset: its number (1-6), IPUI (10 hex digits) and name."""

    number: int
    ipui: str
    name: str


@dataclass(frozen=True)
class HandsetState:
    """What the base last told one handset; None: nothing said (nothing to resend)."""

    display: tuple[str, ...] | None = None
    ring: tuple[bool, int, str] | None = None  # (on, cadence, caller)
    audio: int | None = None
    tone: int | None = None


class DectRadio(OnSerialLine):
    """The DECT radio module as the base sees it.

    Set the callbacks, then `start()`. Commands may be given at any time: display, ring, audio
    and tone are remembered and sent whenever the link is up; window, de-registration and name
    commands are queued on the link and delivered once the module answers. Arguments that
    cannot be sent raise ValueError in words; text is fitted to the handset (cut to 24
    characters, control characters replaced). A failing callback is logged and does not break
    the link.
    """

    def __init__(self, port: Port, clock: Clock, *, dispatch: Dispatch = call_now,
                 epoch: int | None = None, **link_options: int) -> None:
        if epoch is None:
            epoch = random.getrandbits(32)

        def make_link(write: Write) -> DectLink:
            return DectLink(M.ROLE_DECT_BASE, epoch, write, BASE_FIRMWARE, **link_options)

        self.line = SerialLine(port, clock, make_link, dispatch=dispatch, label="DECT radio")
        self.link = self.line.link
        self.link.on_frame = self._on_frame
        self.link.on_handshake = self._on_handshake
        self.link.on_state = self._on_state
        self.on_handset_list: Callable[[list[HandsetInfo]], None] | None = None
        self.on_registered: Callable[[HandsetInfo], None] | None = None
        self.on_deregistered: Callable[[int, str], None] | None = None
        self.on_registration_failed: Callable[[str], None] | None = None
        self.on_offhook: Callable[[int], None] | None = None
        self.on_onhook: Callable[[int], None] | None = None
        self.on_digits: Callable[[int, str], None] | None = None
        self.on_key: Callable[[int, str], None] | None = None
        self.on_window: Callable[[bool, int], None] | None = None
        self.on_link: Callable[[bool, str], None] | None = None
        self.handsets: dict[int, HandsetInfo] = {}
        self.window_open = False
        self.window_seconds_left = 0
        self.module_reset_reason: tuple[str, str] | None = None  # (reason, detail)
        self._told: dict[int, HandsetState] = {}
        self._offhook: set[int] = set()
        self._reported_up = False
        self._seen_module = False
        self._restart_reported = False
        self._counts = {"bad_message": 0, "unknown_type": 0}
        self._handlers = self._handler_table()

    # -- state ----------------------------------------------------------------------------

    @property
    def reason(self) -> str:
        """Why the link is in its present state, in words."""
        reason = self.link.reason
        return RESTARTED if reason.startswith("peer restarted") else reason

    def offhook(self, number: int) -> bool:
        """Whether handset `number` is off-hook as far as the base knows."""
        return number in self._offhook

    def told(self, number: int) -> HandsetState:
        """What the base last told handset `number`."""
        return self._told.get(M.check_number(number), HandsetState())

    def stats(self) -> dict[str, int]:
        return {**self.line.stats(), **self._counts}

    # -- commands -------------------------------------------------------------------------

    def open_window(self, pin: str, seconds: int = 120) -> None:
        """Let one handset register within `seconds` if it offers `pin` (4 digits, not the
        default "0000": the system PIN must be changed before any window opens)."""
        if pin == DEFAULT_PIN:
            raise ValueError("the system PIN is still the default 0000: change it before "
                             "opening a registration window")
        self.line.send(M.OPEN_WINDOW, M.pack_open_window(pin, seconds), key="window")

    def close_window(self) -> None:
        self.line.send(M.CLOSE_WINDOW, M.pack_close_window(), key="window")

    def deregister(self, number: int) -> None:
        """Ask the module to forget handset `number`; DEREGISTERED confirms it."""
        self.line.send(M.DEREGISTER, M.pack_number(number), key=f"deregister:{number}")

    def name(self, number: int, text: str) -> None:
        """Name handset `number` (kept by the module, cut to 16 characters)."""
        name = M.fit_text(text, M.MAX_NAME_CHARS, M.MAX_NAME_BYTES)
        self.line.send(M.NAME, M.pack_name(number, name), key=f"name:{number}")
        if number in self.handsets:
            self.handsets[number] = replace(self.handsets[number], name=name)

    def display(self, number: int, lines: list[str] | tuple[str, ...]) -> None:
        """Show up to 3 lines on handset `number` (the rest of its screen is cleared)."""
        if not isinstance(lines, (list, tuple)) or len(lines) > M.MAX_LINES:
            raise ValueError(f"a handset shows a list of at most {M.MAX_LINES} lines")
        fitted = tuple(M.fit_text(line) for line in lines)
        self._tell(number, M.DISPLAY, M.pack_display(number, list(fitted)), display=fitted)

    def ring(self, number: int, on: bool, caller: str = "", *, cadence: int = 0) -> None:
        """Ring handset `number` (or stop), showing `caller`; cadence is an id of
        `messages.CADENCES`."""
        caller = M.fit_text(caller)
        payload = M.pack_ring(number, on, cadence, caller)
        self._tell(number, M.RING, payload, ring=(bool(on), cadence, caller))

    def audio(self, number: int, channel: int | None) -> None:
        """Connect handset `number` to ALSA channel 0-3, or disconnect it (None)."""
        self._tell(number, M.AUDIO, M.pack_audio(number, channel), audio=channel)

    def tone(self, number: int, tone: int | None) -> None:
        """Play a tone (an id of `messages.TONES`) in handset `number`, or stop (None)."""
        self._tell(number, M.TONE, M.pack_tone(number, tone), tone=tone)

    def _tell(self, number: int, ftype: int, payload: bytes, **change: Any) -> None:
        self._told[number] = replace(self._told.get(number, HandsetState()), **change)
        if self.link.up:
            self.line.send(ftype, payload, key=f"{ftype}:{number}")

    def _resend(self, number: int) -> None:
        """Send again everything the base has told handset `number`."""
        state = self._told.get(number)
        if state is None:
            return
        if state.display is not None:
            self.line.send(M.DISPLAY, M.pack_display(number, list(state.display)),
                           key=f"{M.DISPLAY}:{number}")
        if state.ring is not None:
            self.line.send(M.RING, M.pack_ring(number, *state.ring), key=f"{M.RING}:{number}")
        if state.audio is not None:
            self.line.send(M.AUDIO, M.pack_audio(number, state.audio),
                           key=f"{M.AUDIO}:{number}")
        if state.tone is not None:
            self.line.send(M.TONE, M.pack_tone(number, state.tone), key=f"{M.TONE}:{number}")

    # -- the link's callbacks -------------------------------------------------------------

    def _on_state(self, up: bool, reason: str) -> None:
        """Down is reported at once; up only after the handshake (see `_on_handshake`)."""
        if not up:
            self._report_down(RESTARTED if reason.startswith("peer restarted") else reason)

    def _on_handshake(self, module_reset: bool) -> None:
        if module_reset and self._seen_module and not self._restart_reported:
            self._report_down(RESTARTED)  # it restarted while the link was already down
        self._seen_module = True
        self._restart_reported = False
        if not self._reported_up:
            self._reported_up = True
            log.info("DECT radio link up: %s", self.link.reason)
            _safely(self.on_link, True, self.link.reason)
        for number in sorted(self._told):
            self._resend(number)

    def _report_down(self, reason: str) -> None:
        restarted = reason == RESTARTED
        if not (self._reported_up or restarted):
            return
        self._reported_up = False
        self._restart_reported = restarted
        log.warning("DECT radio link down: %s", reason)
        _safely(self.on_link, False, reason)
        if restarted:
            self._drop_calls()

    def _drop_calls(self) -> None:
        """The module lost its calls: every off-hook handset is on-hook now."""
        for number in sorted(self._offhook):
            self._offhook.discard(number)
            _safely(self.on_onhook, number)

    def _on_frame(self, ftype: int, payload: bytes) -> None:
        handler = self._handlers.get(ftype)
        if handler is None:
            self._counts["unknown_type"] += 1
            return
        try:
            fields = M.unpack(ftype, payload)
        except ValueError as exc:
            self._counts["bad_message"] += 1
            log.warning("DECT module sent a bad %s: %s", M.NAMES.get(ftype, ftype), exc)
            return
        handler(fields)

    def _handler_table(self) -> dict[int, Callable[[Any], None]]:
        return {
            M.HANDSET_LIST: self._on_handset_list, M.REGISTERED: self._on_registered,
            M.DEREGISTERED: self._on_deregistered, M.REG_FAILED: self._on_reg_failed,
            M.OFFHOOK: self._on_offhook, M.ONHOOK: self._on_onhook,
            M.DIGITS: lambda f: _safely(self.on_digits, *f),
            M.KEY: lambda f: _safely(self.on_key, *f),
            M.WINDOW_STATE: self._on_window_state, M.RESET_REASON: self._on_reset_reason,
        }

    def _on_handset_list(self, entries: list[tuple[int, str, str]]) -> None:
        self.handsets = {n: HandsetInfo(n, ipui, name) for n, ipui, name in entries}
        self._offhook &= set(self.handsets)
        _safely(self.on_handset_list, list(self.handsets.values()))

    def _on_registered(self, entry: tuple[int, str, str]) -> None:
        info = HandsetInfo(*entry)
        self.handsets[info.number] = info
        self._resend(info.number)
        _safely(self.on_registered, info)

    def _on_deregistered(self, fields: tuple[int, str]) -> None:
        number, why = fields
        self.handsets.pop(number, None)
        self._told.pop(number, None)
        self._offhook.discard(number)
        _safely(self.on_deregistered, number, why)

    def _on_reg_failed(self, why: str) -> None:
        log.info("DECT handset registration refused: %s", why)
        _safely(self.on_registration_failed, why)

    def _on_offhook(self, number: int) -> None:
        if number not in self._offhook:
            self._offhook.add(number)
            _safely(self.on_offhook, number)

    def _on_onhook(self, number: int) -> None:
        if number in self._offhook:
            self._offhook.discard(number)
            _safely(self.on_onhook, number)

    def _on_window_state(self, fields: tuple[bool, int]) -> None:
        self.window_open, self.window_seconds_left = fields
        _safely(self.on_window, *fields)

    def _on_reset_reason(self, fields: tuple[str, str]) -> None:
        if fields != self.module_reset_reason:
            log.info("DECT module's last reset: %s %s", *fields)
        self.module_reset_reason = fields


def _safely(callback: Callable[..., None] | None, *args: Any) -> None:
    """Run an application callback; its failure must not break the link."""
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        log.exception("DECT radio callback %r failed", callback)
