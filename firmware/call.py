"""One call's state machine: pure logic, no SIP, no hardware.

Outgoing: OFFHOOK (dial tone) -> DIALING -> CALLING -> RINGBACK -> CONNECTED -> ENDED.
Incoming: INCOMING (alerting) -> CONNECTED -> ENDED. Any state may end; ENDED is final and
carries the reason shown to the user.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class CallState(enum.Enum):
    OFFHOOK = "offhook"
    DIALING = "dialing"
    CALLING = "calling"
    RINGBACK = "ringback"
    INCOMING = "incoming"
    CONNECTED = "connected"
    ENDED = "ended"


_ALLOWED: dict[CallState, frozenset[CallState]] = {
    CallState.OFFHOOK: frozenset({CallState.DIALING, CallState.CALLING, CallState.ENDED}),
    CallState.DIALING: frozenset({CallState.CALLING, CallState.ENDED}),
    CallState.CALLING: frozenset({CallState.RINGBACK, CallState.CONNECTED, CallState.ENDED}),
    CallState.RINGBACK: frozenset({CallState.CONNECTED, CallState.ENDED}),
    CallState.INCOMING: frozenset({CallState.CONNECTED, CallState.ENDED}),
    CallState.CONNECTED: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class EndReason(enum.Enum):
    """Why a call ended; the value is the text key shown on the screen."""

    NORMAL = "call_ended"
    BUSY = "busy"
    UNKNOWN_NUMBER = "unknown_number"
    NO_ANSWER = "no_answer"
    NETWORK_ERROR = "network_error"
    DECLINED = "declined"
    NOT_ALLOWED = "not_allowed"
    INVALID_NUMBER = "invalid_number"
    CANCELLED = "call_ended"
    MISSED = "missed_call"
    TRANSFERRED = "transferred"
    FORWARDED = "forwarded"
    ALL_BUSY = "all_busy"  # the phone's (base's) calls are all in use


class InvalidTransition(Exception):
    pass


def reason_for_failure(code: int, was_alerting: bool) -> EndReason:
    """The user-facing reason for an outgoing call that ended before it was answered."""
    if code in (486, 600):
        return EndReason.BUSY
    if code in (404, 410, 484, 604):
        return EndReason.UNKNOWN_NUMBER
    if code in (480, 487) or (code == 408 and was_alerting):
        return EndReason.NO_ANSWER
    if code == 603:
        return EndReason.DECLINED
    if code in (401, 403, 407):
        return EndReason.NOT_ALLOWED
    return EndReason.NETWORK_ERROR


@dataclass
class Call:
    """A call as the controller sees it; `id` is the SIP engine's id once the call exists."""

    id: str
    direction: str  # "outgoing" or "incoming"
    line: int
    state: CallState
    started_at: float
    number: str = ""
    remote_name: str = ""
    connected_at: float | None = None
    ended_at: float | None = None
    end_reason: EndReason | None = None
    end_code: int = 0
    early_media: bool = False
    dtmf: str = ""  # keys the far end pressed in this call
    dtmf_methods: str = ""  # how each of them came: r (RFC 4733), i (SIP INFO), b (in-band)
    held: bool = False  # we hold it
    remote_held: bool = False  # the far end holds us
    feature: bool = False  # a feature code being dialled (no dial plan)
    replaced: bool = False  # another call took its place (transfer)
    pickup: Any = None  # a call ringing elsewhere this one takes over (sip.events.Pickup)
    menu: str = ""  # not a SIP call: the phone's own menu at the desk ("main", "referral")
    intercom: int = 0  # not a SIP call: an internal call with handset N of a DECT base

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def on_sip(self) -> bool:
        """True while a SIP dialog exists (or is being set up) for this call."""
        return not self.intercom and self.state in (
            CallState.CALLING, CallState.RINGBACK, CallState.INCOMING, CallState.CONNECTED)

    def to(self, state: CallState, now: float) -> None:
        if state not in _ALLOWED[self.state]:
            raise InvalidTransition(f"call {self.id}: {self.state.value} -> {state.value}")
        self.state = state
        if state is CallState.CONNECTED:
            self.connected_at = now

    def end(self, reason: EndReason, now: float, code: int = 0) -> None:
        if self.ended:
            return
        self.to(CallState.ENDED, now)
        self.ended_at, self.end_reason, self.end_code = now, reason, code

    def duration(self, now: float) -> float:
        if self.connected_at is None:
            return 0.0
        return max(0.0, (self.ended_at or now) - self.connected_at)
