"""A terminal: one place a person uses the phone (handset, speaker, keys, screen, LEDs).

A desk phone has one; a DECT base has one per handset. Inputs (keys, hook, click-to-dial) and
SIP events change the terminal's state; `refresh()` then reconciles the outputs — audio path,
call-progress tone, screen, LEDs — with that state, sending only what changed.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Final

from audio.synth import key_feedback
from board.keys import DIGITS, LINE_KEYS
from board.parts import Board, LedPattern, LedState
from firmware.call import Call, CallState, EndReason, reason_for_failure
from firmware.callfeatures import CallFeatures, Mode
from firmware.clock import Timer
from firmware.dialplan import DialPlan, Match
from firmware.intercom import handset_number
from firmware.screens import LineView, call_screen, conference_screen, idle_screen, two_sides
from firmware.sip import events as ev
from firmware.texts import text
from firmware.views import ListView

if TYPE_CHECKING:
    from firmware.phone import Phone

log = logging.getLogger("luren.terminal")
ENDED_SCREEN_S = 3.0  # how long a hands-free call's end reason stays on screen
NOTICE_S = 5.0  # how long a notice ("Headset failed") stays on screen
SPEAKER, HEADSET = "speaker", "headset"  # the hands-free paths (the handset is the other one)
REJECT_CODE = 486
_NOT_IN_MENUS = frozenset({"hold", "transfer", "conference", "mute", "record"})  # no SIP call

_CONGESTION_REASONS = {EndReason.NETWORK_ERROR, EndReason.UNKNOWN_NUMBER,
                       EndReason.INVALID_NUMBER, EndReason.NOT_ALLOWED, EndReason.ALL_BUSY}


class TerminalEngine:
    """The SIP engine as one terminal uses it: the calls it places or answers, its tones and
    its audio path are its own (terminal `index`'s audio: a DECT base's handsets each have
    theirs). Everything else passes straight through."""

    OWN: Final = frozenset({"open_audio_path", "close_audio_path", "play_tone",
                            "play_feedback", "stop_tone", "mute", "conference", "make_call",
                            "answer", "start_recording", "stop_recording"})

    def __init__(self, engine: Any, index: int) -> None:
        self._engine, self._index = engine, index

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._engine, name)
        if self._index and name in self.OWN:
            return functools.partial(attr, terminal=self._index)
        return attr


class Terminal(CallFeatures):
    """Keys, hook and screen of one user position, and the calls shown on it (the handling
    of several calls at once is `CallFeatures`)."""

    def __init__(self, phone: Phone, board: Board, lines: list[int], index: int = 0) -> None:
        self.phone = phone
        self.index = index  # 0 on a desk phone; a DECT base's handset number - 1
        self.engine = TerminalEngine(phone.engine, index)
        self.board = board
        self.lines = lines
        self.line = lines[0] if lines else -1  # the line outgoing calls use (-1: none yet)
        self.under_test = False  # screen and LEDs left to the console's test (firmware.console)
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
        self._init_features()
        self.views: list[ListView] = []  # lists on the screen (history, directory, menus)
        self._missed = 0  # unseen missed calls, read from the history at each refresh
        board.on_key = self.key
        board.on_hook = self.hook

    # -- inputs ------------------------------------------------------------------------
    def hook(self, offhook: bool) -> None:
        if offhook == self.offhook:
            return
        self.offhook = offhook
        if offhook:
            self._lifted()
        elif self.hands_free is None and self.conference:
            self.conference_end_prompt()
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
                self.engine.play_feedback(*key_feedback(name))
            elif audio is not None:
                audio.key_sound(name)  # on the ringer while nothing else is open
        if self.conference_choice(name) or self.pick(name) or self._view_took(name):
            pass
        elif name in _NOT_IN_MENUS and self.call is not None and self.call.menu:
            log.info("key %s does nothing in the phone's own menu", name)
        elif name in ("history", "directory", "menu"):
            self.open_view(name)
        elif self._group_key(name) or self.blf_key(name):
            pass
        elif name in DIGITS:
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
            self._line_key(int(name[4:]) - 1)
        elif name == "hold":
            self.hold_key()
        elif name == "transfer":
            self.transfer_key()
        elif name == "conference":
            self.conference_key()
        elif name == "mute":
            self.mute_key()
        elif name == "dnd":
            self.dnd_key()
        elif name == "record":
            self.record_key()
        elif name in ("up", "down", "left", "right"):
            self._arrow_key(name)
        elif name.startswith("soft") and getattr(self.phone.config.keys, name, ""):
            self.feature_key(getattr(self.phone.config.keys, name))
        elif name in ("volume_up", "volume_down") and audio is not None:
            if self.alerting is not None and not self._path_open:
                audio.ringer_volume_step(name == "volume_up")  # while it rings: the ringer
            else:
                audio.volume_step(name == "volume_up")
        else:
            log.debug("key %s does nothing in this state", name)
        self.refresh()

    def dial(self, number: str, pickup: ev.Pickup | None = None) -> bool:
        """Click-to-dial: dial `number` hands-free; False when the terminal is busy. A call
        in progress is put on hold first. `pickup`: take over a call ringing elsewhere."""
        call = self.call
        if self.alerting is not None or self.conference or len(self.all_calls()) >= \
                self.phone.config.device.max_calls or (call is not None and call.intercom
                                                        and not call.ended):
            return False
        if call is not None and call.state is CallState.CONNECTED:
            self.new_call_beside()
        elif call is not None and not call.ended and call.state is not CallState.OFFHOOK:
            return False
        self._clear_ended()
        self.call = self._new_call(CallState.DIALING, number)
        self.call.pickup = pickup
        if not self.offhook and self.hands_free is None:
            self.hands_free = self._hands_free_path()
        self._send()
        self.refresh()
        return True

    # -- SIP events ----------------------------------------------------------------------
    def incoming(self, call: Call) -> None:
        if self.screen_incoming(call):  # forwarded, refused, or waiting behind a call
            self.refresh()
            return
        self._clear_ended()
        self.alerting = call
        if self.phone.config.lines[call.line].auto_answer:
            self.hands_free = None if self.offhook else self._hands_free_path()
            self._answer()
        else:
            self.engine.ring(call.id)
            self._start_ringer()
            self._start_no_answer_forward(call)
        self.refresh()

    def ring_too(self, call: Call) -> None:
        """Ring for a call another terminal on the same line was given first (group ringing):
        the ringer and the screen only; answering takes it from the others."""
        self._clear_ended()
        self.alerting = call
        self._start_ringer()
        self.refresh()

    def withdraw(self, call: Call) -> None:
        """Another terminal answered `call`, or it ended: stop ringing for it."""
        if self.alerting is not call:
            return
        self.alerting = None
        self._stop_ringer()
        self._cancel("ring_timeout")
        self._cancel("forward")
        self.refresh()

    def busy(self) -> bool:
        """In a call, or calls on hold."""
        return self._busy()

    def replaced(self, old: Call, new: Call, outgoing: bool) -> None:
        """`new` takes the place of `old`. `outgoing`: the far end transferred us (REFER) and
        we now call the target; the old call stays behind until the far end ends it, and comes
        back should the new one fail. Else an attended transfer to us replaced it."""
        if outgoing:
            if self.call is old:
                self.call = new
                self.background.insert(0, old)
            self.refresh()
            return
        old.replaced = True
        for calls in (self.background, self.conference):
            if old in calls:
                calls[calls.index(old)] = new
        if self.call is old:
            self.call = new
        old.end(EndReason.TRANSFERRED, self.now())
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

    def media(self, call: Call, active: bool, hold: str = "") -> None:
        if active and call.state in (CallState.CALLING, CallState.RINGBACK):
            call.early_media = True
        call.remote_held = hold == "remote"
        self.refresh()

    # -- the parts of the inputs -----------------------------------------------------------
    def _lifted(self) -> None:
        if self.mode is Mode.CONFERENCE_END:
            self.mode = Mode.NONE  # lifted again: the conference goes on at the handset
            self.hands_free = None
        elif self.alerting is not None and self.call is None:
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
            if self.conference and not self.offhook:
                self.conference_end_prompt()
                return
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
        if self.alerting is not None and (self.call is None or self.call.ended):
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
        if self.mode is Mode.TRANSFER_DIAL and self.call is not None and \
                self.call.state is CallState.DIALING:
            self._send()
        elif self.alerting is not None:
            if not self.offhook:
                self.hands_free = self.hands_free or self._hands_free_path()
            self._answer()
        elif self.call is not None and self.call.state is CallState.DIALING:
            if not self.offhook and self.hands_free is None:
                self.hands_free = self._hands_free_path()
            self._send()

    def _cancel_key(self) -> None:
        intercom, alerting = self.phone.intercom, self.alerting
        if alerting is not None and intercom is not None and alerting.intercom:
            intercom.refuse(self, alerting)
        elif alerting is not None and intercom is not None and intercom.offered(alerting) and \
                intercom.decline(self, alerting):
            pass
        elif alerting is not None:
            self.engine.hangup(alerting.id, REJECT_CODE)
        elif self.mode is Mode.TRANSFER_PICK:
            self.mode = Mode.NONE
        elif self.conference:
            self.conference_end_prompt()
        elif self.mode in (Mode.TRANSFER_DIAL, Mode.CONFERENCE_DIAL) or (
                self.background and self.call is not None and not self.call.held):
            self._cancel_draft()
        elif self.call is not None:
            self._drop_foreground()
            if self.offhook:
                self.call = self._new_call(CallState.OFFHOOK)

    def _digit(self, digit: str) -> None:
        call = self.call
        if call is not None and call.menu and not call.ended and self.phone.menus is not None:
            self.phone.menus.local_digit(digit)
            return
        if self.alerting is not None and (call is None or call.ended):
            return
        if call is not None and call.state is CallState.CONNECTED and call.intercom:
            return  # an internal call: no far end to send keys to
        if call is not None and call.state is CallState.CONNECTED and not call.held:
            self.engine.send_dtmf(call.id, digit)
            return
        if call is not None and call.state is CallState.CONNECTED:
            self.new_call_beside()  # keys while a call is held: a new call beside it
            call = self.call
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
        self._cancel("interdigit")
        if self.mode is Mode.TRANSFER_DIAL:
            return  # transfer sends it there now; ok or # calls the number first
        if self.call.feature:  # a feature code and an extension: # or the timeout sends it
            timeout = self.phone.config.device.interdigit_timeout
            self._timers["interdigit"] = self.phone.clock.call_later(timeout, self._send)
            return
        number = self.call.number
        if self.phone.intercom is not None and len(number) <= 3 and \
                "**".startswith(number[:2]):  # a handset's internal number (a DECT base)
            if len(number) < 3:
                return
            if handset_number(number) is not None:
                self._send()
                return
        verdict = self._plan.check(self.call.number)
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
        if call.feature or self._plan.check(call.number).on_timeout:
            self._send()
        else:
            call.end(EndReason.INVALID_NUMBER, self.now())
            self._after_end()
        self.refresh()

    def _line_key(self, index: int) -> None:
        """Choose the line for the next call; in a call, hold it and open a new one there."""
        if index not in self.lines:
            return
        call = self.call
        if self.alerting is not None and self.alerting.line == index:
            self._ok_key()  # the line key of a waiting or ringing call answers it
        elif call is not None and call.state is CallState.CONNECTED and not self.conference \
                and not call.intercom:
            self.new_call_beside(index)
        elif call is None or call.state in (CallState.OFFHOOK, CallState.DIALING) \
                or call.ended:
            self.line = index
            if call is not None and not call.ended:
                call.line = index

    # -- lists on the screen --------------------------------------------------------------
    def _view_shown(self) -> bool:
        """A list has the screen while no call needs it (or while picking a transfer target)."""
        if not self.views or self.alerting is not None or self.conference:
            return False
        call = self.call
        return call is None or call.ended or self.mode is Mode.TRANSFER_DIAL

    def open_view(self, name: str) -> None:
        view = self.phone.make_view(name, self)
        if view is not None:
            self.views.append(view)

    def config_changed(self) -> None:
        """The config changed on the phone (settings menu): take up what depends on it."""
        self._plan = DialPlan(self.phone.config.device.dial_plan)

    def _group_key(self, name: str) -> bool:
        """A key bound to a response group logs in or out (when no call is going on)."""
        index = self.group_for_key(name)
        if index is None or not self._free_for_groups():
            return False
        self.toggle_group(index)
        return True

    def _free_for_groups(self) -> bool:
        """No call going on: a response group's feature code can be dialled."""
        return self.alerting is None and not self.background and (
            self.call is None or self.call.ended)

    def _view_took(self, name: str) -> bool:
        return self._view_shown() and self._view_key(name)

    def _view_key(self, name: str) -> bool:
        outcome = self.views[-1].key(name)
        if not outcome.handled:
            return False
        if outcome.close:
            self.views.pop()
        if outcome.push is not None:
            self.views.append(outcome.push)
        if outcome.act is not None:
            self._view_action(*outcome.act)
        return True

    def _view_action(self, action: str, value: Any) -> None:
        if action == "dial":
            self.views.clear()
            call = self.call
            if self.mode is Mode.TRANSFER_DIAL and call is not None and \
                    call.state in (CallState.OFFHOOK, CallState.DIALING):
                call.number = str(value)  # the transfer target from a list
                if call.state is CallState.OFFHOOK:
                    call.to(CallState.DIALING, self.now())
            else:
                self.dial(str(value))
        elif action == "close_all":
            self.views.clear()
        elif action == "toggle_group" and self._free_for_groups() and \
                0 <= value < len(self.phone.config.groups):  # the response-group menu
            self.toggle_group(value)

    def _arrow_key(self, name: str) -> None:
        """left/right when idle: the default caller-ID role; up/down while dialling: the
        role of this call only."""
        call = self.call
        if call is not None and call.state in (CallState.OFFHOOK, CallState.DIALING):
            self.step_role(name in ("down", "right"), once=True)
        elif (call is None or call.ended) and name in ("left", "right"):
            self.step_role(name == "right", once=False)

    def _cancel_draft(self) -> None:
        """Give up the call being dialled beside a held one: back to the held call."""
        call = self.call
        self.mode = Mode.NONE
        self._cancel("interdigit")
        if call is not None and call.on_sip:
            self.engine.hangup(call.id)
            call.end(EndReason.CANCELLED, self.now())
        self.call = None
        if call is not None and call.intercom and not call.ended and \
                self.phone.intercom is not None:
            self.phone.intercom.hang_up(self, call)
        if self.background:
            self._bring_forward(self.background.pop(0))

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
        menu = self.phone.menus.local_menu(call.number) if self.phone.menus else None
        if menu is not None:
            self._open_local_menu(call, menu)
            return
        handset = handset_number(call.number) if self.phone.intercom is not None else None
        if handset is not None and self.phone.intercom is not None:  # an internal call
            self._cancel_all()
            why = self.phone.intercom.place(self, call, handset)
            self.last_number = call.number
            if why is not None:
                call.end(why, self.now())
                self._after_end()
            return
        if not 0 <= call.line < len(self.phone.config.lines):  # not provisioned yet
            call.end(EndReason.NETWORK_ERROR, self.now())
            self._after_end()
            return
        if len(self.phone.calls) >= self.phone.config.device.max_calls:
            log.info("no call to %s: all %d calls in use", call.number,
                     self.phone.config.device.max_calls)
            call.end(EndReason.ALL_BUSY, self.now())
            self._after_end()
            return
        call.id = self.engine.new_call_id()
        self.phone.calls[call.id] = call
        call.to(CallState.CALLING, self.now())
        self.last_number = call.number
        number, identity = (call.number, None) if call.feature or call.pickup else \
            self.outgoing_identity(call.number)
        self.engine.make_call(call.id, call.line, number, identity, call.pickup)
        timeout = self.phone.config.device.no_answer_timeout
        self._timers["no_answer"] = self.phone.clock.call_later(timeout, self._no_answer)

    def _open_local_menu(self, call: Call, menu: str) -> None:
        """Voicemail (or referral) dialled on the phone itself: the phone's own menu, heard
        in the earpiece, driven by the keypad; hanging up ends it."""
        assert self.phone.menus is not None
        call.id, call.menu, call.feature = f"menu-{menu}", menu, True
        call.remote_name = text(f"menu_{menu}", self.phone.config.device.language)
        call.to(CallState.CALLING, self.now())
        call.to(CallState.CONNECTED, self.now())
        self.last_number = call.number
        self._refresh_audio()  # the earpiece opens before the menu plays into it
        self.phone.menus.start_local(self, menu)

    def local_menu_over(self) -> None:
        """The menu said goodbye: the call ends as if the far end hung up."""
        call = self.call
        if call is None or not call.menu or call.ended:
            return
        assert self.phone.menus is not None
        self.phone.menus.stop_local()
        call.end(EndReason.NORMAL, self.now())
        self._after_end()
        self.refresh()

    def _no_answer(self) -> None:
        call = self.call
        if call is not None and call.state in (CallState.CALLING, CallState.RINGBACK):
            self.engine.hangup(call.id)
            call.end(EndReason.NO_ANSWER, self.now(), 0)
            self._after_end()
            self.refresh()

    def _answer(self) -> None:
        call = self.alerting
        assert call is not None
        self._cancel("forward")
        self._cancel("ring_timeout")
        if self.call is not None and not self.call.ended:
            self.answer_waiting()  # the call in progress goes on hold
        self.alerting = None
        self._stop_ringer()
        self._clear_ended()
        intercom = self.phone.intercom
        if intercom is not None and call.intercom:
            self.call = call
            intercom.answer(self, call)
            return
        if intercom is not None and intercom.offered(call):
            intercom.take(self, call)  # a call another handset transferred here
            return
        self.call = call
        self.engine.answer(call.id)
        self.phone.call_taken(call, self)

    def _drop_foreground(self) -> None:
        """The user hung up: end the call (no end screen) and return to idle, or to the
        calls still on hold; a waiting call now rings."""
        call, self.call = self.call, None
        self.hands_free = None
        self.mode = Mode.NONE
        self._cancel_all()
        if call is not None and call.intercom and not call.ended and \
                self.phone.intercom is not None:
            self.phone.intercom.hang_up(self, call)
        if call is not None and call.menu and self.phone.menus is not None:
            self.phone.menus.stop_local()
        for ending in [call, *self.conference]:
            if ending is not None and ending.on_sip:
                if not ending.menu:  # (the phone's own menu has no SIP dialog)
                    self.engine.hangup(ending.id)
                ending.end(EndReason.CANCELLED if ending.state is not CallState.CONNECTED
                           else EndReason.NORMAL, self.now())
        if self.conference:
            self.conference_left()
            self.call = None
        self.promote_background()
        if self.alerting is not None and "ring" not in self._timers:
            self._start_ringer()
        self.calls_over()

    def _disconnected(self, call: Call, code: int) -> None:
        if call is self.alerting:
            self.alerting = None
            self._stop_ringer()
            self._cancel("forward")
            self._cancel("ring_timeout")
            call.end(EndReason.MISSED, self.now(), code)
            return
        if self.transfer is not None and call is self.transfer.call:
            self.transfer.timer.cancel()  # the far end left on its own: transferred
            self.transfer = None
            call.end(EndReason.TRANSFERRED, self.now(), code)
            self._forget(call)
            self._after_transfer(call)
            return
        if call in self.background:
            self.background.remove(call)
            call.end(EndReason.NORMAL, self.now(), code)
            self.calls_over()
            return
        if call in self.conference:
            call.end(EndReason.NORMAL, self.now(), code)
            self.conference_left()
            self.calls_over()
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
        self._foreground_over(reason)
        self.calls_over()

    def _foreground_over(self, reason: EndReason) -> None:
        """The foreground call has ended: a call on hold comes forward at once (the reason
        shown over it), else the end screen."""
        self.mode = Mode.NONE
        if self.background:
            self._show_notice(text(reason.value, self.phone.config.device.language))
            self.call = None
            self.promote_background()
        else:
            self._after_end()

    # -- a DECT base's internal calls (firmware.intercom) ------------------------------------
    def intercom_over(self, call: Call, reason: EndReason) -> None:
        """The other handset ended the internal call `call` (or it went unanswered)."""
        if call.ended:
            return
        call.end(reason, self.now())
        if call is self.call:
            self._foreground_over(reason)  # a consult call: back to the call on hold
            self.calls_over()
            self.refresh()

    def let_go(self, call: Call, draft: Call) -> None:
        """`call`, on hold here, went to another handset: `draft` (the consult call, or the
        number dialled) shows *Kopplat* until the end screen goes."""
        if call in self.background:
            self.background.remove(call)
        self.mode = Mode.NONE
        draft.end(EndReason.TRANSFERRED, self.now())
        self.call = draft
        self._after_end()
        self.calls_over()
        self.refresh()

    def lost(self) -> None:
        """The handset is gone (de-registered, or its radio lost): whatever rings there is
        refused (or sent back to the handset that transferred it), its calls end."""
        intercom, alerting = self.phone.intercom, self.alerting
        if alerting is not None and intercom is not None and alerting.intercom:
            intercom.refuse(self, alerting)
        elif alerting is not None and intercom is not None and intercom.offered(alerting):
            intercom.decline(self, alerting)
        elif alerting is not None:
            self.withdraw(alerting)  # rings on at the other handsets of its line
        for call in self.background:
            if call.on_sip:
                self.engine.hangup(call.id)
            call.end(EndReason.NORMAL, self.now())
        self.background.clear()
        self.offhook = False
        self._drop_foreground()
        self.refresh()

    def take_over(self, call: Call) -> None:
        """An external call handed to this handset: in the foreground, off hold."""
        self._clear_ended()
        self.call = call
        self._resume(call)
        self._ensure_sound()
        self.refresh()

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
            self.promote_background()
            self.refresh()

    def _clear_ended(self) -> None:
        if self.call is not None and self.call.ended:
            self.call = None
            self._cancel("ended")

    def _now(self) -> float:
        return self.now()

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
        if self.alerting is not None and call.state is CallState.CONNECTED:
            return "call_waiting"
        if call.state is CallState.OFFHOOK:
            return "dial"
        if call.state is CallState.RINGBACK and not call.early_media:
            return "ringback"
        if call.state is CallState.ENDED and self.offhook:
            return "congestion" if call.end_reason in _CONGESTION_REASONS else "busy"
        return None

    def refresh(self) -> None:
        """Bring audio path, tone, screen and LEDs in line with the state."""
        self._missed = self.phone.missed_calls()  # one history query for screen and LED
        self._refresh_audio()
        if self.under_test:
            return  # the technician's display and LED tests own them meanwhile
        self.board.display.show(self.screen_rows())
        self._refresh_leds()

    def forget_audio_path(self) -> None:
        """Something else (the technician's audio test) closed the audio path and stopped the
        tone: the next refresh opens and plays what this terminal needs again."""
        self._path_open = False
        self._tone = None

    def _refresh_audio(self) -> None:
        engine = self.engine
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
        rows = self._mode_rows(language) if not self._view_shown() else \
            self.views[-1].rows(width, self.board.display.height)
        if rows:
            pass
        elif self.conference:
            rows = conference_screen(self.conference, self.now(), language, width)
        elif shown is not None:
            rows = call_screen(shown, self.now(), language, width)
            if shown is self.alerting and self.call is not None and not self.call.ended:
                rows[0] = text("waiting", language)
            elif shown.state is CallState.CONNECTED:
                if shown.held or shown.remote_held:
                    rows[3] = two_sides(text("on_hold" if shown.held else "held_by_remote",
                                              language), rows[3].split()[-1], width)
                flags = ([text(f"on_{self.hands_free}", language)] if self.hands_free
                         else []) + self.flags()
                rows[2] = " ".join(flags)
            elif shown.state in (CallState.OFFHOOK, CallState.DIALING) and self.roles():
                role = self.current_role()
                rows += [""] * (3 - len(rows))
                rows[2] = f"{text('as_role', language)}: {role.name}" if role else ""
        else:
            rows = idle_screen(self.phone.wall_time(), self._line_view(self.line), language,
                               width)
            role = self.current_role()
            referral = self.phone.referral
            status = [] if referral.available and referral.current().type_key == "available" \
                else [referral.text()]
            messages = self.phone.new_messages(self.lines)
            missed = self._missed
            failed = self.phone.provisioning and not self.phone.provisioning.get("ok", True)
            status = ([text("provisioning_failed", language)] if failed else []) + status
            extra = status + ([text("missed_count", language).format(n=missed)] if missed
                              else []) + (
                [text("dnd", language)] if self.dnd else []) + (
                [f"{text('as_role', language)}: {role.name}"] if role else []) + (
                [text("new_messages", language).format(n=messages)] if messages else [])
            if len(rows) <= 2:
                rows += [""] * (2 - len(rows))
                rows += [item[:width] for item in extra][:self.board.display.height - 2]
        if self.notice:
            rows += [""] * (3 - len(rows))
            rows[2] = self.notice
        return rows

    def _mode_rows(self, language: str) -> list[str]:
        """The screen of a transfer or conference step, or [] outside them."""
        call = self.call
        if self.transfer is not None:
            return [text("transferring", language), self.transfer.call.number,
                    self.transfer.target]
        if self.mode in (Mode.TRANSFER_DIAL, Mode.CONFERENCE_DIAL) and call is not None and \
                call.state in (CallState.OFFHOOK, CallState.DIALING):
            title = "transfer_to" if self.mode is Mode.TRANSFER_DIAL else "conference_add"
            held = self.background[0].number if self.background else ""
            return [text(title, language), call.number, "", f"{text('held_short', language)}: "
                    f"{held}"]
        if self.mode is Mode.TRANSFER_PICK:
            return [text("pick_call", language)] + [
                f"{i} {c.remote_name or c.number}" for i, c in enumerate(self.background[:3], 1)]
        if self.mode is Mode.CONFERENCE_END:
            choices = text("end_choices", language).replace("{n}", str(len(self.conference)))
            return [text("end_conference", language), choices] + [
                f"{i} {c.remote_name or c.number}" for i, c in
                enumerate(self.conference[:2], 1)]
        return []

    def _line_view(self, index: int) -> LineView:
        if not 0 <= index < len(self.phone.config.lines):  # waiting to be provisioned
            language = self.phone.config.device.language
            return LineView(text("no_line", language), False,
                             text("awaiting_provisioning", language))
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
        if "message" in board.leds:
            waiting = self.phone.new_messages(self.lines) > 0 or self._missed > 0
            board.leds["message"].set(LedState(LedPattern.SLOW_BLINK, "red") if waiting
                                      else LedState(LedPattern.OFF))
        for blf in self.phone.config.blf:
            if blf.key in board.leds:
                board.leds[blf.key].set(self.blf_led(blf.user))
        for index, group in enumerate(self.phone.config.groups):
            if group.key in board.leds:
                board.leds[group.key].set(LedState(LedPattern.ON, "green")
                                          if self.group_logged_in(index)
                                          else LedState(LedPattern.OFF))
        for name, on in (("mute", self.muted), ("dnd", self.dnd)):
            if name in board.leds:
                board.leds[name].set(LedState(LedPattern.ON if on else LedPattern.OFF))

    def _line_led(self, index: int) -> LedState:
        if self.alerting is not None and self.alerting.line == index:
            return LedState(LedPattern.FAST_BLINK, "green")
        if self.call is not None and self.call.on_sip and self.call.line == index:
            if self.call.held:
                return LedState(LedPattern.SLOW_BLINK, "green")
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
            "call": self.call.id if self.call and self.call.on_sip else None,
            "intercom": self.call.intercom if self.call and self.call.intercom and
            not self.call.ended else None,
            **self.features_status(),
        }
