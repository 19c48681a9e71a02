"""A terminal: one place a person uses the phone (handset, speaker, keys, screen, LEDs).

A desk phone has one; a DECT base has one per handset. Inputs (keys, hook, click-to-dial) and
SIP events change the terminal's state; `refresh()` then reconciles the outputs — audio path,
call-progress tone, screen, LEDs — with that state, sending only what changed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from audio.synth import key_feedback
from board.keys import DIGITS, LINE_KEYS
from board.parts import Board, LedPattern, LedState
from firmware.call import Call, CallState, EndReason, reason_for_failure
from firmware.clock import Timer
from firmware.dialplan import DialPlan, Match
from firmware.screens import LineView, call_screen, idle_screen
from firmware.texts import text

if TYPE_CHECKING:
    from firmware.phone import Phone

log = logging.getLogger("luren.terminal")
ENDED_SCREEN_S = 3.0  # how long a hands-free call's end reason stays on screen
NOTICE_S = 5.0  # how long a notice ("Headset failed") stays on screen
SPEAKER, HEADSET = "speaker", "headset"  # the hands-free paths (the handset is the other one)
REJECT_CODE = 486

_CONGESTION_REASONS = {EndReason.NETWORK_ERROR, EndReason.UNKNOWN_NUMBER,
                       EndReason.INVALID_NUMBER, EndReason.NOT_ALLOWED}


class Terminal:
    """Keys, hook and screen of one user position, and the calls shown on it."""

    def __init__(self, phone: Phone, board: Board, lines: list[int]) -> None:
        self.phone = phone
        self.board = board
        self.lines = lines
        self.line = lines[0]  # the line outgoing calls use
        self.offhook = False
        self.hands_free: str | None = None  # SPEAKER or HEADSET carries the sound, else handset
        self.headset_jack = False  # the board can tell whether a headset is plugged in
        self.headset_plugged = False
        self.notice = ""  # a short message over the screen's third row
        self.call: Call | None = None  # the foreground call, from off-hook to its end
        self.alerting: Call | None = None  # an incoming call ringing here
        self.rings = 0
        self.last_number = ""
        self._plan = DialPlan(phone.config.device.dial_plan)
        self._timers: dict[str, Timer] = {}
        self._path_open = False
        self._route: str | None = None  # the sound hardware carrying the call
        self._tone: str | None = None
        board.on_key = self.key
        board.on_hook = self.hook

    # -- inputs ------------------------------------------------------------------------
    def hook(self, offhook: bool) -> None:
        if offhook == self.offhook:
            return
        self.offhook = offhook
        if offhook:
            self._lifted()
        elif self.hands_free is None:
            self._drop_foreground()
        self.refresh()

    def headset(self, plugged: bool) -> None:
        """Headset detection: plugging in moves the sound there, pulling out moves it back."""
        if plugged == self.headset_plugged:
            return
        self.headset_plugged = plugged
        if plugged and self._audio_wanted():
            self.hands_free = HEADSET
        elif not plugged and self.hands_free == HEADSET:
            self._leave_headset()
        self.refresh()

    def audio_failed(self, path: str, message: str) -> None:
        """A sound device stopped working (a USB headset pulled out): say so, and move on."""
        log.warning("audio path %s failed: %s", path, message)
        self._show_notice(text(f"{path}_failed", self.phone.config.device.language))
        if path == HEADSET:
            self.headset_plugged = False
            if self.hands_free == HEADSET:
                self._leave_headset()
        elif path == SPEAKER and self.hands_free == SPEAKER and self.headset_plugged:
            self.hands_free = HEADSET
        self.refresh()

    def key(self, name: str) -> None:
        audio = self.phone.audio
        if self.phone.config.device.key_tones:
            if self._path_open:
                self.phone.engine.play_feedback(*key_feedback(name))
            elif audio is not None:
                audio.key_sound(name)  # on the ringer while nothing else is open
        if name in DIGITS:
            self._digit(name)
        elif name == "speaker":
            self._speaker_key()
        elif name == "headset":
            self._headset_key()
        elif name == "ok":
            self._ok_key()
        elif name == "cancel":
            self._cancel_key()
        elif name == "redial" and self.last_number:
            self.dial(self.last_number)
        elif name == "voicemail":
            self.dial(self.phone.config.device.voicemail_number)
        elif name in LINE_KEYS:
            self._select_line(int(name[4:]) - 1)
        elif name in ("volume_up", "volume_down") and audio is not None:
            if self.alerting is not None and not self._path_open:
                audio.ringer_volume_step(name == "volume_up")  # while it rings: the ringer
            else:
                audio.volume_step(name == "volume_up")
        else:
            log.debug("key %s does nothing in this state", name)
        self.refresh()

    def dial(self, number: str) -> bool:
        """Click-to-dial: dial `number` hands-free; False when the terminal is busy."""
        if self.alerting is not None or (self.call and not self.call.ended
                                          and self.call.state is not CallState.OFFHOOK):
            return False
        self._clear_ended()
        self.call = self._new_call(CallState.DIALING, number)
        if not self.offhook and self.hands_free is None:
            self.hands_free = self._hands_free_path()
        self._send()
        self.refresh()
        return True

    # -- SIP events ----------------------------------------------------------------------
    def incoming(self, call: Call) -> None:
        if self.alerting is not None or (self.call is not None and not self.call.ended):
            log.info("refusing call %s from %s: busy with %s", call.id, call.number,
                     (self.alerting or self.call).state.value)
            self.phone.engine.hangup(call.id, REJECT_CODE)  # no call waiting yet: busy
            call.end(EndReason.MISSED, self.now())
            return
        self._clear_ended()
        self.alerting = call
        if self.phone.config.lines[call.line].auto_answer:
            self.hands_free = None if self.offhook else self._hands_free_path()
            self._answer()
        else:
            self.phone.engine.ring(call.id)
            self._start_ringer()
        self.refresh()

    def call_state(self, call: Call, state: str, code: int) -> None:
        if state == "early" and call.state is CallState.CALLING:
            call.to(CallState.RINGBACK, self.now())
        elif state == "confirmed" and call.state in (CallState.CALLING, CallState.RINGBACK,
                                                     CallState.INCOMING):
            call.to(CallState.CONNECTED, self.now())
            self._cancel("no_answer")
        elif state == "disconnected":
            self._disconnected(call, code)
        self.refresh()

    def media(self, call: Call, active: bool) -> None:
        if active and call.state in (CallState.CALLING, CallState.RINGBACK):
            call.early_media = True
            self.refresh()

    # -- the parts of the inputs -----------------------------------------------------------
    def _lifted(self) -> None:
        if self.alerting is not None:
            self.hands_free = None
            self._answer()
        elif self.call is not None and not self.call.ended:
            if self.call.state is CallState.DIALING and not self._path_open:
                self._send()  # pre-dialled number: lifting the handset dials it
            self.hands_free = None
        else:
            self._clear_ended()
            self.call = self._new_call(CallState.OFFHOOK)

    def _speaker_key(self) -> None:
        if self.hands_free == SPEAKER and self.alerting is None:
            self.hands_free = None
            if not self.offhook:
                self._drop_foreground()
        else:
            self._hands_free_on(SPEAKER)

    def _headset_key(self) -> None:
        if self.hands_free == HEADSET and self.alerting is None:
            self._leave_headset()
        elif self.headset_jack and not self.headset_plugged:
            self._show_notice(text("no_headset", self.phone.config.device.language))
        else:
            self._hands_free_on(HEADSET)

    def _hands_free_on(self, path: str) -> None:
        """The speaker or headset key: answer there, move the call there, or get a dial tone."""
        self.hands_free = path
        if self.alerting is not None:
            self._answer()
        elif self.call is not None and not self.call.ended:
            if self.call.state is CallState.DIALING and not self._path_open:
                self._send()
        else:
            self._clear_ended()
            self.call = self._new_call(CallState.OFFHOOK)

    def _leave_headset(self) -> None:
        """Off the headset: to the handset if lifted, the speaker in a call, else hang up."""
        if self.offhook:
            self.hands_free = None
        elif self.call is not None and self.call.on_sip and not self.call.ended:
            self.hands_free = SPEAKER
        else:
            self._drop_foreground()

    def _hands_free_path(self) -> str:
        """Where a call answered or dialled without lifting the handset goes."""
        return HEADSET if self.headset_jack and self.headset_plugged else SPEAKER

    def _ok_key(self) -> None:
        if self.alerting is not None:
            if not self.offhook:
                self.hands_free = self.hands_free or self._hands_free_path()
            self._answer()
        elif self.call is not None and self.call.state is CallState.DIALING:
            if not self.offhook and self.hands_free is None:
                self.hands_free = self._hands_free_path()
            self._send()

    def _cancel_key(self) -> None:
        if self.alerting is not None:
            self.phone.engine.hangup(self.alerting.id, REJECT_CODE)
        elif self.call is not None:
            self._drop_foreground()
            if self.offhook:
                self.call = self._new_call(CallState.OFFHOOK)

    def _digit(self, digit: str) -> None:
        call = self.call
        if self.alerting is not None:
            return
        if call is not None and call.state is CallState.CONNECTED:
            self.phone.engine.send_dtmf(call.id, digit)
            return
        if call is None or call.ended:
            self._clear_ended()
            call = self.call = self._new_call(CallState.OFFHOOK if self._audio_wanted()
                                              else CallState.DIALING)
        if call.state not in (CallState.OFFHOOK, CallState.DIALING):
            return
        if digit == "#" and call.number:
            if not self._audio_wanted():  # a pre-dialled number sent with # goes hands-free
                self.hands_free = self._hands_free_path()
            self._send()
            return
        call.number += digit
        if call.state is CallState.OFFHOOK:
            call.to(CallState.DIALING, self.now())
        if self._audio_wanted():
            self._check_plan()

    def _check_plan(self) -> None:
        assert self.call is not None
        verdict = self._plan.check(self.call.number)
        self._cancel("interdigit")
        if verdict.match is Match.COMPLETE:
            self._send()
        elif verdict.match is Match.NONE:
            self.call.end(EndReason.INVALID_NUMBER, self.now())
            self._after_end()
        else:
            timeout = self.phone.config.device.interdigit_timeout
            self._timers["interdigit"] = self.phone.clock.call_later(timeout,
                                                                     self._interdigit_expired)

    def _interdigit_expired(self) -> None:
        call = self.call
        if call is None or call.state is not CallState.DIALING:
            return
        if self._plan.check(call.number).on_timeout:
            self._send()
        else:
            call.end(EndReason.INVALID_NUMBER, self.now())
            self._after_end()
        self.refresh()

    def _select_line(self, index: int) -> None:
        if index in self.lines:
            self.line = index

    # -- call actions ----------------------------------------------------------------------
    def _new_call(self, state: CallState, number: str = "") -> Call:
        return Call(id="", direction="outgoing", line=self.line, state=state,
                    started_at=self.now(), number=number)

    def _send(self) -> None:
        call = self.call
        if call is None or not call.number:
            return
        self._cancel("interdigit")
        if call.state is CallState.OFFHOOK:
            call.to(CallState.DIALING, self.now())
        call.id = self.phone.engine.new_call_id()
        self.phone.calls[call.id] = call
        call.to(CallState.CALLING, self.now())
        self.last_number = call.number
        self.phone.engine.make_call(call.id, call.line, call.number)
        timeout = self.phone.config.device.no_answer_timeout
        self._timers["no_answer"] = self.phone.clock.call_later(timeout, self._no_answer)

    def _no_answer(self) -> None:
        call = self.call
        if call is not None and call.state in (CallState.CALLING, CallState.RINGBACK):
            self.phone.engine.hangup(call.id)
            call.end(EndReason.NO_ANSWER, self.now(), 0)
            self._after_end()
            self.refresh()

    def _answer(self) -> None:
        call = self.alerting
        assert call is not None
        self.alerting = None
        self._stop_ringer()
        self.call = call
        self.phone.engine.answer(call.id)

    def _drop_foreground(self) -> None:
        """The user hung up: end the call (no end screen) and return to idle."""
        call, self.call = self.call, None
        self.hands_free = None
        self._cancel_all()
        if call is not None and call.on_sip:
            self.phone.engine.hangup(call.id)
            call.end(EndReason.CANCELLED if call.state is not CallState.CONNECTED
                     else EndReason.NORMAL, self.now())

    def _disconnected(self, call: Call, code: int) -> None:
        if call is self.alerting:
            self.alerting = None
            self._stop_ringer()
            call.end(EndReason.MISSED, self.now(), code)
            return
        if call is not self.call or call.ended:
            return
        if call.state is CallState.CONNECTED:
            reason = EndReason.NORMAL
        elif call.direction == "incoming":
            reason = EndReason.MISSED
        else:
            reason = reason_for_failure(code, call.state is CallState.RINGBACK)
        call.end(reason, self.now(), code)
        self._after_end()

    def _after_end(self) -> None:
        """Show the end reason: until on-hook with the handset up, a few seconds hands-free."""
        self._cancel_all()
        if not self.offhook:
            self._timers["ended"] = self.phone.clock.call_later(ENDED_SCREEN_S,
                                                                self._ended_shown)

    def _ended_shown(self) -> None:
        if self.call is not None and self.call.ended and not self.offhook:
            self.call = None
            self.hands_free = None
            self.refresh()

    def _clear_ended(self) -> None:
        if self.call is not None and self.call.ended:
            self.call = None
            self._cancel("ended")

    # -- ringer ------------------------------------------------------------------------------
    def _start_ringer(self) -> None:
        self.rings = 1
        on, off = self.phone.tones.ring_cadence_s
        self._timers["ring"] = self.phone.clock.call_later(on + off, self._next_ring)
        if self.phone.audio is not None and self.alerting is not None:
            device = self.phone.config.device
            ringtone = self.phone.config.lines[self.alerting.line].ringtone_name(device.ringtone)
            self.phone.audio.ring(ringtone, self.phone.tones.ring_cadence_ms)

    def _next_ring(self) -> None:
        if self.alerting is None:
            return
        self.rings += 1
        on, off = self.phone.tones.ring_cadence_s
        self._timers["ring"] = self.phone.clock.call_later(on + off, self._next_ring)

    def _stop_ringer(self) -> None:
        self._cancel("ring")
        self.rings = 0
        if self.phone.audio is not None:
            self.phone.audio.stop_ringing()

    def _show_notice(self, words: str) -> None:
        self.notice = words
        self._cancel("notice")
        self._timers["notice"] = self.phone.clock.call_later(NOTICE_S, self._notice_shown)

    def _notice_shown(self) -> None:
        self.notice = ""
        self._timers.pop("notice", None)
        self.refresh()

    # -- timers ------------------------------------------------------------------------------
    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _cancel_all(self) -> None:
        for name in ("interdigit", "no_answer", "ended"):
            self._cancel(name)

    def now(self) -> float:
        return self.phone.clock.now()

    # -- outputs -----------------------------------------------------------------------------
    def _audio_wanted(self) -> bool:
        return self.offhook or self.hands_free is not None

    @property
    def route(self) -> str | None:
        """The sound hardware the terminal wants now: handset, speaker, headset or none."""
        if not self._audio_wanted():
            return None
        return self.hands_free or "handset"

    def _wanted_tone(self) -> str | None:
        call = self.call
        if call is None or not self._audio_wanted():
            return None
        if call.state is CallState.OFFHOOK:
            return "dial"
        if call.state is CallState.RINGBACK and not call.early_media:
            return "ringback"
        if call.state is CallState.ENDED and self.offhook:
            return "congestion" if call.end_reason in _CONGESTION_REASONS else "busy"
        return None

    def refresh(self) -> None:
        """Bring audio path, tone, screen and LEDs in line with the state."""
        self._refresh_audio()
        self.board.display.show(self.screen_rows())
        self._refresh_leds()

    def _refresh_audio(self) -> None:
        engine = self.phone.engine
        wanted_path = self._audio_wanted()
        if wanted_path and not self._path_open:
            engine.open_audio_path()
        tone = self._wanted_tone()
        if tone != self._tone:
            if tone is None:
                engine.stop_tone()
            else:
                engine.play_tone(tone, self.phone.tones.tone(tone), self.phone.tones.loops(tone))
            self._tone = tone
        if not wanted_path and self._path_open:
            engine.close_audio_path()
        self._path_open = wanted_path
        route = self.route
        if route != self._route and self.phone.audio is not None:
            self.phone.audio.route(route)
        self._route = route

    def screen_rows(self) -> list[str]:
        language = self.phone.config.device.language
        width = self.board.display.width
        shown = self.alerting or self.call
        if shown is not None:
            rows = call_screen(shown, self.now(), language, width)
            if shown is self.call and self.hands_free and shown.state is CallState.CONNECTED:
                rows[2] = text(f"on_{self.hands_free}", language)
        else:
            rows = idle_screen(self.phone.wall_time(), self._line_view(self.line), language,
                               width)
        if self.notice:
            rows += [""] * (3 - len(rows))
            rows[2] = self.notice
        return rows

    def _line_view(self, index: int) -> LineView:
        cfg = self.phone.config.lines[index]
        reg = self.phone.registrations[index]
        label = cfg.label or f"{cfg.user} {cfg.display_name}".strip()
        status = f"{reg.code} {reg.reason}".strip() if reg.code else ""
        return LineView(label, reg.in_service, status)

    def _refresh_leds(self) -> None:
        board = self.board
        for index in self.lines:
            name = f"line{index + 1}"
            if name in board.leds:
                board.leds[name].set(self._line_led(index))
        for path in (SPEAKER, HEADSET):
            if path in board.leds:
                on = self.hands_free == path
                board.leds[path].set(LedState(LedPattern.ON if on else LedPattern.OFF))

    def _line_led(self, index: int) -> LedState:
        if self.alerting is not None and self.alerting.line == index:
            return LedState(LedPattern.FAST_BLINK, "green")
        if self.call is not None and self.call.on_sip and self.call.line == index:
            return LedState(LedPattern.ON, "green")
        reg = self.phone.registrations[index]
        if reg.in_service:
            return LedState(LedPattern.ON, "green")
        if reg.failures:
            return LedState(LedPattern.ON, "red")
        return LedState(LedPattern.OFF)

    def status(self) -> dict[str, Any]:
        return {
            "hook": "offhook" if self.offhook else "onhook",
            "speaker": self.hands_free == SPEAKER,
            "headset": self.hands_free == HEADSET,
            "headset_plugged": self.headset_plugged if self.headset_jack else None,
            "route": self.route,
            "line": self.line,
            "tone": self._tone,
            "audio_path": self._path_open,
            "ringing": self.alerting is not None,
            "rings": self.rings,
            "dialing": self.call.number if self.call and self.call.state in (
                CallState.OFFHOOK, CallState.DIALING) else None,
        }
