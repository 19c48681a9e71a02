"""The DECT base: each cordless handset is a terminal of the phone, through the radio module.

The radio (`board.dect.radio.DectRadio`) reports what the handsets do - off hook, digits, keys,
on hook, registrations - and carries what they show: three lines of text, ringing with the
caller, the audio channel of their call. Here each handset number 1..6 gets a `Board` whose
display sends DISPLAY and whose keys and hook come from the radio, so the same `Terminal` that
runs a desk phone runs a handset; after every screen update the handset's ringing and audio
channel are brought in line with its terminal. Handsets sharing a line ring together
(`Phone` group ringing). `[[handsets]]` gives each its line and name; `[dect]` the radio
port, the system PIN and the registration window (docs/dect.md).

A module that restarts drops every call its handsets were in: the radio reports those
handsets on hook, their terminals hang up, and the screens, ringing and audio are sent again
once the link is back, so no call is left dangling on either side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from board.dect.radio import DectRadio, HandsetInfo
from board.parts import Board, TextDisplay
from firmware.config import PhoneConfig
from firmware.intercom import Intercom

if TYPE_CHECKING:
    from firmware.phone import Phone
    from firmware.terminal import Terminal

log = logging.getLogger("luren.dect")

HANDSETS: Final = 6


class VoiceSwitch(Protocol):
    """The radio's voice channels as sound devices (`audio.voice_channels.VoiceChannels`)."""

    on_failure: Callable[[int, str], None] | None

    def connect(self, terminal: int, channel: int | None) -> None: ...
    def status(self) -> dict[str, Any]: ...


DEFAULT_PIN: Final = "0000"
DISPLAY_COLS, DISPLAY_ROWS = 24, 3
CADENCE_INTERNAL: Final = 1  # the RING cadence of an internal call (messages.CADENCES)
AUDIO_CHANNELS: Final = 4  # the module's voice channels (the pjsua2 call limit is 4 too)
KEYS: Final = {  # the handset's key names -> the phone's (board.keys)
    "R": "transfer", "int": "conference", "menu": "menu", "up": "up", "down": "down",
    "ok": "ok", "cancel": "cancel", "left": "left", "right": "right", "vol+": "volume_up",
    "vol-": "volume_down", "mute": "mute", "speaker": "speaker",
}


class HandsetDisplay(TextDisplay):
    """A handset's screen: what the terminal shows goes over the radio."""

    def __init__(self, base: DectBase, number: int) -> None:
        super().__init__(DISPLAY_COLS, DISPLAY_ROWS)
        self._base, self._number = base, number

    def _push(self, rows: list[str]) -> None:
        self._base.show(self._number, rows)


class DectBase:
    """Handset boards over one radio; `attach(phone)` once the phone has its terminals."""

    def __init__(self, radio: DectRadio, config: PhoneConfig) -> None:
        self.radio = radio
        self.config = config
        self.boards = [Board(f"handset{n}", HandsetDisplay(self, n)) for n in
                       range(1, HANDSETS + 1)]
        self.phone: Phone | None = None
        self.registered: dict[int, HandsetInfo] = {}
        self.last_registration: str = ""
        self._channels: dict[int, int] = {}  # handset -> voice channel of its call
        self._channel_order = list(range(AUDIO_CHANNELS))  # least recently given first
        self.voice: VoiceSwitch | None = None
        self.voice_error = ""  # the last voice channel device failure, in words
        self._ringing: dict[int, str] = {}  # handset -> caller shown while it rings
        self._window_done = False  # the config's open_window has been acted on
        radio.on_handset_list = self._handset_list
        radio.on_registered = self._registered
        radio.on_deregistered = self._deregistered
        radio.on_registration_failed = self._registration_failed
        radio.on_offhook = lambda n: self._hook(n, True)
        radio.on_onhook = lambda n: self._hook(n, False)
        radio.on_digits = self._digits
        radio.on_key = self._key
        radio.on_link = self._link

    def terminal_lines(self) -> list[list[int]]:
        """Each handset's lines (0-based) for `Phone(terminal_lines=...)`."""
        lines: list[list[int]] = [[] for _ in range(HANDSETS)]
        for handset in self.config.handsets:
            if handset.line:
                lines[handset.number - 1] = [handset.line - 1]
        return lines

    def attach(self, phone: Phone, voice: VoiceSwitch | None = None) -> None:
        """`voice`: the radio's voice channels as sound devices (`audio.voice_channels`);
        None where the profile maps none (the simulator records each handset's audio)."""
        self.phone = phone
        self.voice = voice
        if voice is not None:
            voice.on_failure = self._voice_failed
        phone.intercom = Intercom(phone, self.name_of, lambda n: n in self.registered)
        self.config_changed(phone.config)

    def config_changed(self, config: PhoneConfig) -> None:
        self.config = config
        for number in range(1, HANDSETS + 1):
            self.radio.name(number, self.name_of(number))
        self._window_asked()

    def _window_asked(self) -> None:
        """`dect.open_window` in a config taken on: open one window for it (once)."""
        wanted = self.config.dect.open_window
        if wanted and not self._window_done and self.radio.up:
            self._window_done = True
            problem = self.open_window()
            if problem:
                log.warning("DECT registration window asked for by the config: %s", problem)
        elif not wanted:
            self._window_done = False

    def name_of(self, number: int) -> str:
        for handset in self.config.handsets:
            if handset.number == number and handset.name:
                return handset.name
        return f"Handset {number}"

    # -- from the radio ---------------------------------------------------------------------
    def _board(self, number: int) -> Board | None:
        return self.boards[number - 1] if 1 <= number <= HANDSETS else None

    def _hook(self, number: int, offhook: bool) -> None:
        board = self._board(number)
        if board is not None and board.on_hook is not None:
            board.on_hook(offhook)

    def _digits(self, number: int, digits: str) -> None:
        board = self._board(number)
        if board is not None and board.on_key is not None:
            for digit in digits:
                board.on_key(digit)

    def _key(self, number: int, name: str) -> None:
        board = self._board(number)
        key = KEYS.get(name)
        if board is None or board.on_key is None:
            return
        if key is None:
            log.info("handset %d: key %r has no use here", number, name)
            return
        board.on_key(key)

    def _handset_list(self, handsets: list[HandsetInfo]) -> None:
        self.registered = {h.number: h for h in handsets}
        log.info("DECT handsets registered: %s", ", ".join(
            f"{h.number} {self.name_of(h.number)}" for h in handsets) or "none")
        self.config_changed(self.config)

    def _registered(self, handset: HandsetInfo) -> None:
        self.registered[handset.number] = handset
        self.last_registration = f"handset {handset.number} registered ({handset.ipui})"
        log.info("DECT %s", self.last_registration)
        self.radio.name(handset.number, self.name_of(handset.number))
        self._refresh(handset.number)

    def _deregistered(self, number: int, why: str) -> None:
        self.registered.pop(number, None)
        self.last_registration = f"handset {number} de-registered ({why})"
        log.info("DECT %s", self.last_registration)
        terminal = self._terminal(number)
        if terminal is not None:
            terminal.lost()  # its calls end, what rings there goes elsewhere

    def _registration_failed(self, why: str) -> None:
        self.last_registration = f"a handset could not register: {why.replace('_', ' ')}"
        log.warning("DECT %s", self.last_registration)

    def _link(self, up: bool, reason: str) -> None:
        (log.info if up else log.warning)("DECT radio link %s: %s", "up" if up else "down",
                                          reason)
        if not up:  # calls on the handsets are lost: nothing to carry or ring for
            for number in list(self._channels):
                self.radio.audio(number, None)
                self._connect(number, None)
            for number in list(self._ringing):
                self.radio.ring(number, False)
            self._channels.clear()
            self._ringing.clear()
            if self.phone is not None:
                for terminal in self.phone.terminals:
                    terminal.lost()
        else:
            self._window_asked()

    # -- to the radio -----------------------------------------------------------------------
    def show(self, number: int, rows: list[str]) -> None:
        """A handset's screen changed: send it, and its ringing and audio with it."""
        self.radio.display(number, rows[:DISPLAY_ROWS])
        self._sync(number)

    def _refresh(self, number: int) -> None:
        terminal = self._terminal(number)
        if terminal is not None:
            terminal.refresh()

    def _terminal(self, number: int) -> Terminal | None:
        if self.phone is None or not 1 <= number <= len(self.phone.terminals):
            return None
        return self.phone.terminals[number - 1]

    def _sync(self, number: int) -> None:
        terminal = self._terminal(number)
        if terminal is None:
            return
        alerting = terminal.alerting if terminal.call is None else None
        caller = (alerting.remote_name or alerting.number) if alerting is not None else None
        if caller != self._ringing.get(number):
            if caller is None:
                self._ringing.pop(number, None)
                self.radio.ring(number, False)
            else:
                self._ringing[number] = caller
                internal = alerting is not None and alerting.intercom != 0
                self.radio.ring(number, True, caller, cadence=CADENCE_INTERNAL if internal else 0)
        call = terminal.call
        talking = call is not None and (call.on_sip or call.intercom != 0) and not call.ended
        if talking and number not in self._channels:
            used = set(self._channels.values())
            free = [c for c in self._channel_order if c not in used]
            if free:  # the one let go longest ago: its devices are surely closed by now
                self._channel_order.remove(free[0])
                self._channel_order.append(free[0])
                self._channels[number] = free[0]
                self.radio.audio(number, free[0])
                self._connect(number, free[0])
        elif not talking and number in self._channels:
            del self._channels[number]
            self.radio.audio(number, None)
            self._connect(number, None)

    def _connect(self, number: int, channel: int | None) -> None:
        """Handset `number`'s call audio onto the sound devices of voice `channel`."""
        if self.voice is not None:
            self.voice.connect(number - 1, channel)

    def _voice_failed(self, channel: int, message: str) -> None:
        self.voice_error = f"voice channel {channel}: {message}"
        log.warning("DECT %s", self.voice_error)

    # -- what the console and the API do ----------------------------------------------------
    def open_window(self) -> str | None:
        """Open a registration window with the system PIN; the reason in words when not."""
        pin = self.config.dect.pin
        if pin == DEFAULT_PIN:
            return ("the system PIN is still the default 0000: set dect.pin (4 digits) "
                    "before handsets may register")
        if not self.radio.up:
            return f"the DECT radio is not answering ({self.radio.reason})"
        self.radio.open_window(pin, self.config.dect.window_seconds)
        log.info("DECT registration window open for %d s", self.config.dect.window_seconds)
        return None

    def close_window(self) -> None:
        self.radio.close_window()

    def deregister(self, number: int) -> str | None:
        if number not in self.registered:
            return f"handset {number} is not registered"
        self.radio.deregister(number)
        return None

    def status(self) -> dict[str, Any]:
        lines = {h.number: h.line for h in self.config.handsets}
        return {
            "link": {"up": self.radio.up, "reason": self.radio.reason},
            "window": {"open": self.radio.window_open,
                       "seconds_left": self.radio.window_seconds_left},
            "last_registration": self.last_registration,
            "voice": (dict(self.voice.status(), last_error=self.voice_error)
                      if self.voice is not None else None),
            "handsets": [{"number": n, "name": self.name_of(n), "ipui": h.ipui,
                          "line": lines.get(n, 0), "offhook": self.radio.offhook(n),
                          "audio_channel": self._channels.get(n)}
                         for n, h in sorted(self.registered.items())],
        }
