"""What a desk phone does with more than one call: hold and swap, call waiting, blind and
attended transfer, a local three-way conference, mute, do not disturb, forwarding, recording,
caller-ID roles and the PBX's feature codes.

`CallFeatures` is the part of `Terminal` (firmware/terminal.py) that owns these; it works on
the terminal's state (`call`, the foreground call; `background`, calls on hold; `alerting`, a
call ringing or waiting) and asks the SIP engine through the same `SipCommands` port. Pure
logic: no pjsua2, no threads; tests drive it with a manual clock and a recording port.

Keys (docs/keys.md has the desk-staff version):
- hold: hold the call, or resume it; with a call on hold as well, swap the two.
- a line key in a call: hold it and get a dial tone for a new call on that line; digits
  while the call is held start a new call too.
- transfer: hold the call and key in where it goes (the dial plan waits); transfer again
  sends it there at once (blind); ok or # calls the number first, and transfer, once it
  answers, joins the two (attended, REFER with Replaces). With three or more calls it asks
  which to join.
- conference: with a call on hold, join it in (three-way, mixed here); alone, hold the call
  and dial the third party, then conference again. cancel asks "end for all, or drop one".
- mute, dnd, record: toggles, shown on the screen (and LEDs where the board has them).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from board.parts import LedPattern, LedState
from firmware.call import Call, CallState, EndReason
from firmware.clock import Timer
from firmware.config import RoleConfig
from firmware.intercom import handset_number
from firmware.sip import events as ev
from firmware.texts import text

if TYPE_CHECKING:
    from firmware.phone import Phone

log = logging.getLogger("luren.calls")
BUSY_CODE = 486
UNAVAILABLE_CODE = 480


class Mode(enum.Enum):
    """What the keys mean right now, beyond plain calling."""

    NONE = "none"
    TRANSFER_DIAL = "transfer_dial"  # dialling where the held call goes
    TRANSFER_PICK = "transfer_pick"  # choosing which call to join the foreground call with
    CONFERENCE_DIAL = "conference_dial"  # dialling the conference's third party
    CONFERENCE_END = "conference_end"  # "end for all, or drop one?"


@dataclass
class PendingTransfer:
    """A REFER we sent: `call` goes to `target` (a number, or `consult`'s far end)."""

    call: Call
    target: str
    consult: Call | None
    timer: Timer


class CallFeatures:
    """Multi-call handling, mixed into `Terminal`; see the module doc."""

    # provided by Terminal
    phone: Phone
    engine: Any  # the SIP engine as this terminal uses it (terminal.TerminalEngine)
    call: Call | None
    alerting: Call | None
    offhook: bool
    hands_free: str | None
    line: int
    _timers: dict[str, Timer]

    def _init_features(self) -> None:
        self.background: list[Call] = []  # calls on hold behind the foreground call
        self.conference: list[Call] = []  # calls mixed together (the foreground is the first)
        self.mode = Mode.NONE
        self.transfer: PendingTransfer | None = None
        self.muted = False
        self.recording: str | None = None  # the .part file being recorded
        settings = self.phone.settings
        self.dnd = bool(settings.get("dnd", False))
        self.role = str(settings.get("role", self.phone.config.calls.default_role))
        self.call_role: str | None = None  # "call once as": the role of the call being dialled

    # -- what other parts ask -----------------------------------------------------------------
    def all_calls(self) -> list[Call]:
        """Every call this terminal holds on SIP (foreground, background, waiting)."""
        calls = [c for c in (self.call, *self.background, self.alerting) if c is not None]
        return [c for c in calls if c.on_sip]

    def _busy(self) -> bool:
        return bool(self.background) or (self.call is not None and not self.call.ended)

    # -- incoming calls ------------------------------------------------------------------------
    def screen_incoming(self, call: Call) -> bool:
        """Forward, refuse or let in as a waiting call; True when the call was dealt with."""
        calls = self.phone.config.calls
        if calls.forward_always:
            self._forward(call, calls.forward_always)
            return True
        away = self.dnd or not self.phone.referral.available  # a referral that does not ring
        if away and call.number not in calls.vip_numbers and \
                not self.phone.directory.is_vip(call.number):
            if not self.dnd and self._answered_for_user(call, "away"):
                return True
            log.info("do not disturb: %s %s", calls.dnd_action, call.number)
            if calls.dnd_action == "forward":
                self._forward(call, calls.dnd_forward_to)
            else:
                self.engine.hangup(call.id, BUSY_CODE)
                call.end(EndReason.MISSED, self._now())
            return True
        if self.alerting is None and not self._busy():
            return False
        full = len(self.all_calls()) >= self.phone.config.device.max_calls
        if self.alerting is not None or not calls.call_waiting or full or self.conference:
            if calls.forward_busy:
                self._forward(call, calls.forward_busy)
            elif self._answered_for_user(call, "busy"):
                pass
            else:
                log.info("refusing call %s from %s: busy", call.id, call.number)
                self.engine.hangup(call.id, BUSY_CODE)
                call.end(EndReason.MISSED, self._now())
            return True
        self.alerting = call  # call waiting: the earpiece beeps, the screen shows it
        self.engine.ring(call.id)
        self._start_no_answer_forward(call)
        return True

    def _start_no_answer_forward(self, call: Call) -> None:
        calls = self.phone.config.calls
        self._timers["ring_timeout"] = self.phone.clock.call_later(
            calls.ring_timeout, lambda: self._ring_timeout(call))
        voicemail = self.phone.config.voicemail
        if calls.forward_no_answer:
            self._timers["forward"] = self.phone.clock.call_later(
                calls.forward_no_answer_after, lambda: self._no_answer_forward(call))
        elif voicemail.enabled and voicemail.answer_after and self.phone.menus is not None:
            self._timers["forward"] = self.phone.clock.call_later(
                voicemail.answer_after, lambda: self._no_answer_voicemail(call))

    def _answered_for_user(self, call: Call, reason: str) -> bool:
        """Let the phone's voicemail answer (docs/voicemail.md); False when it is off."""
        menus, cfg = self.phone.menus, self.phone.config.voicemail
        if menus is None or not cfg.enabled or (reason == "away" and not cfg.answer_when_away) \
                or (reason == "busy" and not cfg.answer_when_busy):
            return False
        return menus.answer(call, reason)

    def _no_answer_voicemail(self, call: Call) -> None:
        self._timers.pop("forward", None)
        if self.alerting is call:
            self.alerting = None
            self._stop_ringer()
            self._cancel("ring_timeout")
            self._answered_for_user(call, "no_answer")
            self.refresh()

    def _ring_timeout(self, call: Call) -> None:
        self._timers.pop("ring_timeout", None)
        if self.alerting is call:
            log.info("call %s from %s rang %d s unanswered: 480", call.id, call.number,
                     self.phone.config.calls.ring_timeout)
            self.alerting = None
            self._stop_ringer()
            self.engine.hangup(call.id, UNAVAILABLE_CODE)
            call.end(EndReason.MISSED, self._now())
            self.refresh()

    def _no_answer_forward(self, call: Call) -> None:
        self._timers.pop("forward", None)
        if self.alerting is call:
            self.alerting = None
            self._stop_ringer()
            self._forward(call, self.phone.config.calls.forward_no_answer)
            self.refresh()

    def _forward(self, call: Call, number: str) -> None:
        log.info("forwarding call %s from %s to %s", call.id, call.number, number)
        self.engine.redirect(call.id, number)
        call.end(EndReason.FORWARDED, self._now())

    def answer_waiting(self) -> None:
        """Answer the waiting call: the foreground call goes on hold behind it."""
        current = self.call
        if current is not None and current.intercom and not current.ended and \
                self.phone.intercom is not None:
            self.call = None  # an internal call gives way (nothing to hold it with)
            self.phone.intercom.hang_up(self, current)
        elif current is not None and current.state is CallState.CONNECTED:
            self._hold(current)
            self.background.insert(0, current)
        elif current is not None and current.on_sip:
            self.engine.hangup(current.id)  # an unanswered outgoing call gives way
            current.end(EndReason.CANCELLED, self._now())
        self.call = None

    # -- hold and swap -----------------------------------------------------------------------
    def _hold(self, call: Call) -> None:
        if not call.held:
            call.held = True
            self.engine.hold(call.id)

    def _resume(self, call: Call) -> None:
        if call.held:
            call.held = False
            self.engine.resume(call.id)

    def hold_key(self) -> None:
        call = self.call
        if self.conference or self.mode is not Mode.NONE or (
                call is not None and call.intercom and not call.ended):
            return  # (an internal call has nothing to hold it with)
        if call is None or call.ended or not call.on_sip:
            if self.background:  # the foreground is gone: pick up the call on hold
                self._bring_forward(self.background.pop(0))
            return
        if call.state is not CallState.CONNECTED:
            return
        if call.held:
            self._resume(call)
            self._ensure_sound()
        elif self.background:  # swap
            self._hold(call)
            other = self.background.pop(0)
            self.background.append(call)
            self._bring_forward(other)
        else:
            self._hold(call)

    def _bring_forward(self, call: Call) -> None:
        if self.call is not None and self.call.ended:
            self._clear_ended()
        self.call = call
        self._resume(call)
        self._ensure_sound()

    def _ensure_sound(self) -> None:
        """A call taken up with the handset down goes hands-free."""
        if not self.offhook and self.hands_free is None:
            self.hands_free = self._hands_free_path()

    def new_call_beside(self, line: int | None = None) -> None:
        """Hold the foreground call and open a new one (dial tone) beside it."""
        call = self.call
        assert call is not None
        self._hold(call)
        self.background.insert(0, call)
        if line is not None:
            self.line = line
        self.call = self._new_call(CallState.OFFHOOK)
        self._ensure_sound()

    def promote_background(self) -> None:
        """The foreground call is over: show the next call on hold (it stays on hold)."""
        if (self.call is None or self.call.ended) and self.background:
            self._clear_ended()
            self.call = self.background.pop(0)

    # -- transfer ----------------------------------------------------------------------------
    def transfer_key(self) -> None:
        if self.transfer is not None or self.conference:
            return
        call = self.call
        if self.mode is Mode.TRANSFER_DIAL or (call is not None and call.intercom
                                                and self.background):
            self._transfer_from_draft()
        elif call is None or not call.on_sip:
            return
        elif call.state is CallState.CONNECTED and not self.background:
            self.new_call_beside()
            self.mode = Mode.TRANSFER_DIAL
        elif len(self.background) == 1:
            self._join(self.background[0], call)
        elif len(self.background) > 1:
            self.mode = Mode.TRANSFER_PICK

    def transfer_to(self, number: str) -> bool:
        """Blind transfer of the foreground call to `number` (feature keys, the API)."""
        call = self.call
        if call is None or call.state is not CallState.CONNECTED or self.transfer is not None \
                or call.intercom:
            return False
        self._hold(call)
        if self.phone.intercom is not None and handset_number(number):
            draft = self._new_call(CallState.DIALING, number)  # to another handset of the base
            if self.phone.intercom.transfer(self, call, draft) is not None:
                self._resume(call)
                return False
            return True
        self._send_transfer(call, number, None)
        return True

    def _transfer_from_draft(self) -> None:
        """Transfer pressed while dialling: the held call goes to the number (blind), or to
        the consult call when it is already placed."""
        draft, held = self.call, self.background[0] if self.background else None
        self.mode = Mode.NONE
        if held is None or draft is None:
            return
        intercom = self.phone.intercom
        if intercom is not None and (draft.intercom or handset_number(draft.number)):
            why = intercom.transfer(self, held, draft)  # to another handset of the base
            if why is not None:
                self._cancel_draft()
                self._show_notice(text(why.value, self.phone.config.device.language))
            return
        if draft.on_sip:
            self._join(held, draft)
            return
        if not draft.number:
            self._cancel_draft()
            return
        self.call = held
        self._send_transfer(held, draft.number, None)
        self.background.remove(held)

    def pick(self, digit: str) -> bool:
        """In the pick list (transfer with three or more calls): join call `digit`."""
        if self.mode is not Mode.TRANSFER_PICK or not digit.isdigit():
            return False
        index = int(digit) - 1
        self.mode = Mode.NONE
        if 0 <= index < len(self.background) and self.call is not None:
            self._join(self.background[index], self.call)
        return True

    def _join(self, held: Call, other: Call) -> None:
        """Attended transfer: `held`'s far end is connected to `other`'s far end (REFER with
        Replaces); an `other` still ringing is transferred to blind and dropped."""
        if other.state is CallState.CONNECTED:
            self._send_transfer(held, other.number, other)
            self.engine.transfer_replaces(held.id, other.id)
            return
        self.engine.hangup(other.id)
        other.end(EndReason.CANCELLED, self._now())
        self.call = held
        self.background.remove(held)
        self._send_transfer(held, other.number, None)

    def _send_transfer(self, call: Call, target: str, consult: Call | None) -> None:
        timeout = self.phone.config.calls.transfer_timeout
        timer = self.phone.clock.call_later(timeout, lambda: self._transfer_failed(
            f"no answer within {timeout} s"))
        self.transfer = PendingTransfer(call, target, consult, timer)
        if consult is None:
            self.engine.transfer(call.id, target)
        log.info("transferring call %s (%s) to %s", call.id, call.number, target)

    def transfer_status(self, event: ev.TransferStatus) -> None:
        pending = self.transfer
        if pending is None or pending.call.id != event.call_id or not event.final:
            return
        if event.code // 100 == 2:
            pending.timer.cancel()
            self.transfer = None
            call = pending.call
            self.engine.hangup(call.id)
            call.end(EndReason.TRANSFERRED, self._now())
            self._forget(call)
            if pending.consult is not None and not pending.consult.ended:
                self.engine.hangup(pending.consult.id)
                pending.consult.end(EndReason.TRANSFERRED, self._now())
            log.info("call %s transferred to %s", call.id, pending.target)
            self._after_transfer(call)
        else:
            self._transfer_failed(f"{event.code} {event.reason}")

    def transfer_command_failed(self, message: str) -> None:
        if self.transfer is not None:
            self._transfer_failed(message)

    def _transfer_failed(self, why: str) -> None:
        pending, self.transfer = self.transfer, None
        if pending is None:
            return
        pending.timer.cancel()
        log.warning("transfer of call %s to %s failed: %s", pending.call.id, pending.target,
                    why)
        self._show_notice(text("transfer_failed", self.phone.config.device.language))
        call = pending.call
        if call.ended:
            return
        if self.call is not call and call not in self.background:
            self.background.insert(0, call)  # back on hold, where the user finds it
        if self.call is None or self.call.ended:
            self.promote_background()
        self.refresh()

    def _after_transfer(self, call: Call) -> None:
        """Show "Transferred" in the foreground until the usual end screen goes."""
        if self.call is None or self.call.ended or self.call is call:
            self.call = call
            self._after_end()
        self.refresh()

    def _forget(self, call: Call) -> None:
        if call in self.background:
            self.background.remove(call)
        if call in self.conference:
            self.conference.remove(call)

    # -- conference --------------------------------------------------------------------------
    def conference_key(self) -> None:
        call = self.call
        if self.conference or call is None or not call.on_sip:
            return
        if self.mode is Mode.CONFERENCE_DIAL:
            if call.state is CallState.CONNECTED:
                self.mode = Mode.NONE
                self._start_conference()
            return
        if call.state is not CallState.CONNECTED:
            return
        if self.background:
            self._start_conference()
        else:
            self.new_call_beside()
            self.mode = Mode.CONFERENCE_DIAL

    def _start_conference(self) -> None:
        assert self.call is not None
        held = [c for c in self.background if c.state is CallState.CONNECTED]
        members = [self.call, *held[:2]]
        for member in members:
            self._resume(member)
            if member in self.background:
                self.background.remove(member)
        self.conference = members
        self.engine.conference([m.id for m in members])
        self._ensure_sound()
        log.info("conference: %s", ", ".join(m.number for m in members))

    def conference_end_prompt(self) -> None:
        """Hanging up in a conference asks first: end it for all, or drop one party."""
        self.mode = Mode.CONFERENCE_END
        if not self.offhook and self.hands_free is None:
            self.hands_free = self._hands_free_path()

    def conference_choice(self, key: str) -> bool:
        """A key while asked: ok ends for all, 1-n drops that party, cancel keeps it going."""
        if self.mode is not Mode.CONFERENCE_END:
            return False
        self.mode = Mode.NONE
        if key == "ok":
            for member in list(self.conference):
                self.engine.hangup(member.id)
                member.end(EndReason.NORMAL, self._now())
            self.conference_left()
            self._after_end()
        elif key.isdigit() and 1 <= int(key) <= len(self.conference):
            member = self.conference[int(key) - 1]
            self.engine.hangup(member.id)
            member.end(EndReason.NORMAL, self._now())
            self.conference_left()
        return True

    def conference_left(self) -> None:
        """A party hung up (or was dropped): with one left, it is a plain call again."""
        alive = [m for m in self.conference if not m.ended]
        if len(alive) >= 2 and len(alive) == len(self.conference):
            return
        if len(alive) >= 2:
            self.conference = alive
            self.engine.conference([m.id for m in alive])
        else:
            self.conference = []
            self.engine.conference([])
        if alive:
            self.call = alive[0]

    # -- mute, do not disturb, recording ------------------------------------------------------
    def mute_key(self) -> None:
        internal = self.call is not None and self.call.intercom and not self.call.ended
        if not self.all_calls() and not self.muted and not internal:
            return
        self.muted = not self.muted
        self.engine.mute(self.muted)

    def dnd_key(self) -> None:
        self.dnd = not self.dnd
        self.phone.save_setting("dnd", self.dnd)
        log.info("do not disturb %s", "on" if self.dnd else "off")

    def record_key(self) -> None:
        if self.recording is not None:
            self.stop_recording()
            return
        call = self.call
        recordings = self.phone.recordings
        if call is None or call.state is not CallState.CONNECTED or recordings is None:
            return
        part = recordings.new_part(call.id, call.number, self.phone.wall_time())
        self.recording = str(part)
        self.engine.start_recording(self.recording)

    def stop_recording(self) -> None:
        if self.recording is not None:
            self.recording = None
            self.engine.stop_recording()

    def calls_over(self) -> None:
        """No call left: mute, recording and modes end with them."""
        if self.all_calls():
            return
        self.stop_recording()
        if self.muted:
            self.muted = False
            self.engine.mute(False)
        if self.mode is not Mode.NONE and (self.call is None or self.call.ended):
            self.mode = Mode.NONE

    # -- caller-ID roles ----------------------------------------------------------------------
    def roles(self) -> list[RoleConfig]:
        return list(self.phone.config.roles)

    def step_role(self, forward: bool, once: bool) -> None:
        """Step the default role (idle), or the role of the call being dialled (`once`)."""
        roles = self.roles()
        if not roles:
            return
        names = [r.name for r in roles]
        current = (self.call_role if once and self.call_role else self.role) or names[0]
        index = names.index(current) if current in names else 0
        chosen = names[(index + (1 if forward else -1)) % len(names)]
        if once:
            self.call_role = chosen
        else:
            self.role = chosen
            self.phone.save_setting("role", chosen)

    def current_role(self) -> RoleConfig | None:
        roles = self.roles()
        name = self.call_role or self.role
        return next((r for r in roles if r.name == name), roles[0] if roles else None)

    def outgoing_identity(self, number: str) -> tuple[str, ev.OutgoingIdentity | None]:
        """The number to dial and the identity to send, from the role in use."""
        role = self.current_role()
        self.call_role = None
        if role is None or (role.kind == "direct" and not role.display_name):
            return (role.prefix + number if role else number), None
        if role.prefix:
            return role.prefix + number, None  # the PBX's scheme: From stays the line's
        line = self.phone.config.lines[self.line]
        return number, ev.OutgoingIdentity(
            display_name=role.display_name or line.display_name,
            user=role.number if role.kind in ("switchboard", "mobile") else "",
            anonymous=role.kind == "anonymous")

    # -- busy lamp field ---------------------------------------------------------------------
    def blf_key(self, name: str) -> bool:
        """A BLF key: call the colleague, or pick up the call ringing at their phone."""
        blf = next((b for b in self.phone.config.blf if b.key == name), None)
        if blf is None:
            return False
        state, caller = self.phone.blf.get(blf.user, ("unknown", ""))
        code = self.phone.config.features.directed_pickup
        pickup = self.phone.pickups.get(blf.user)
        if state == "ringing" and code:
            self.dial(code + blf.user)
        elif state == "ringing" and pickup is not None and caller:
            self.dial(caller, pickup=pickup)  # RFC 3891: the caller takes us instead
        else:
            self.dial(blf.user)
        return True

    def blf_led(self, user: str) -> LedState:
        state = self.phone.blf.get(user, ("unknown", ""))[0]
        return {"idle": LedState(LedPattern.ON, "green"),
                "ringing": LedState(LedPattern.FAST_BLINK, "red"),
                "busy": LedState(LedPattern.ON, "red")}.get(state, LedState(LedPattern.OFF))

    # -- response groups ---------------------------------------------------------------------
    def group_for_key(self, key: str) -> int | None:
        return next((i for i, g in enumerate(self.phone.config.groups) if g.key == key), None)

    def group_logged_in(self, index: int) -> bool:
        return bool(self.phone.settings.get(f"group:{self.phone.config.groups[index].name}"))

    def toggle_group(self, index: int) -> None:
        """Log in to (or out of) a response group: dial the PBX's code, keep the state."""
        group = self.phone.config.groups[index]
        joining = not self.group_logged_in(index)
        if self.dial(group.login_code if joining else group.logout_code):
            self.phone.save_setting(f"group:{group.name}", joining)
            log.info("response group %s: %s", group.name, "logged in" if joining
                     else "logged out")

    # -- feature codes -----------------------------------------------------------------------
    def feature_key(self, action: str) -> None:
        """A programmable key bound to `action` ([keys] in the config)."""
        simple = {"record": self.record_key, "dnd": self.dnd_key, "hold": self.hold_key,
                  "mute": self.mute_key, "transfer": self.transfer_key,
                  "conference": self.conference_key,
                  "referral": lambda: self.open_view("referral")}
        if action in simple:
            simple[action]()
            return
        code = getattr(self.phone.config.features, action, "")
        if not code:
            log.info("feature %s has no code in [features]", action)
            return
        if action == "park":
            self.transfer_to(code)
        elif action in ("directed_pickup", "intrusion"):
            self._feature_draft(code)
        else:
            self.dial(code)

    def _feature_draft(self, code: str) -> None:
        """The code is typed in; the extension follows, then # or the timeout dials."""
        if self._busy() and not (self.call is not None and self.call.state in (
                CallState.OFFHOOK, CallState.DIALING)):
            return
        self._clear_ended()
        self.call = self._new_call(CallState.DIALING, code)
        self.call.feature = True
        self._ensure_sound()

    # -- status and screen -------------------------------------------------------------------
    def flags(self) -> list[str]:
        language = self.phone.config.device.language
        shown = [text("muted", language)] if self.muted else []
        if self.recording is not None:
            shown.append("REC")
        if self.background:
            shown.append(f"{text('held_short', language)}:{len(self.background)}")
        return shown

    def features_status(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value, "muted": self.muted, "dnd": self.dnd,
            "recording": self.recording is not None, "role": self.current_role().name
            if self.current_role() else None,
            "held": [c.id for c in self.background],
            "conference": [c.id for c in self.conference],
            "transferring": self.transfer.call.id if self.transfer else None,
        }

    # provided by Terminal (declared for type checkers)
    def refresh(self) -> None: ...
    def dial(self, number: str, pickup: ev.Pickup | None = None) -> bool: ...
    def _new_call(self, state: CallState, number: str = "") -> Call: ...
    def _clear_ended(self) -> None: ...
    def _after_end(self) -> None: ...
    def _stop_ringer(self) -> None: ...
    def _show_notice(self, words: str) -> None: ...
    def _hands_free_path(self) -> str: ...
    def _cancel_draft(self) -> None: ...
    def open_view(self, name: str) -> None: ...
    def _now(self) -> float: ...
