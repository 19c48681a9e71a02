"""Internal calls between the handsets of a DECT base, as on Gigaset bases: no SIP, no PBX, no
call slot; and the internal consult and transfer of an external call to another handset.

- `**N` (N = 1..6) rings handset N, showing the caller's handset number and name, for
  `device.no_answer_timeout` seconds at most. Lifting it joins the two in the base's own audio
  (each handset's microphone into the other's earpiece); either one hanging up ends it; the
  called handset's cancel key refuses it (the caller hears busy). A handset that is not
  registered is an unknown number; one that is busy (in a call, ringing or off hook), or the
  caller's own number, is busy.
- During an external call, R (transfer) and `**N` then OK calls handset N while the external
  call waits on hold (the consult). R then hands the external call to N: at once when N has
  answered (the call's audio moves to N's handset and it is taken off hold there), or ringing
  at N when it has not, which is also what R `**N` R does (blind). A handset the call rings at
  takes it by lifting; unanswered within `calls.transfer_timeout` seconds, or refused, it
  rings again at the handset that transferred it (recall).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from firmware.call import Call, CallState, EndReason
from firmware.clock import Timer

if TYPE_CHECKING:
    from firmware.phone import Phone
    from firmware.terminal import Terminal

log = logging.getLogger("luren.intercom")
INTERNAL = re.compile(r"\*\*([1-9])")
UNANSWERED_CODE = 480  # a handed call nobody took: Temporarily Unavailable


def handset_number(dialled: str) -> int | None:
    """N of an internal number `**N`, else None."""
    match = INTERNAL.fullmatch(dialled)
    return int(match.group(1)) if match else None


@dataclass
class _Leg:
    """One side of an internal call: the handset's terminal and its call."""

    terminal: Terminal
    call: Call


@dataclass
class _Offer:
    """An external call handed to a handset that has not taken it yet."""

    source: Terminal  # the handset that transferred it (where it comes back)
    target: Terminal
    timer: Timer | None


class Intercom:
    """The base's internal calls; `name(n)` and `registered(n)` come from the DECT base."""

    def __init__(self, phone: Phone, name: Callable[[int], str],
                 registered: Callable[[int], bool]) -> None:
        self.phone = phone
        self._name, self._registered = name, registered
        self._ids = itertools.count(1)
        self._other: dict[str, _Leg] = {}  # an internal call's id -> the other side
        self._timers: dict[str, Timer] = {}  # a caller's call id -> its no-answer timer
        self._offers: dict[str, _Offer] = {}  # an external call's id -> where it rings

    # -- internal calls -----------------------------------------------------------------------
    def place(self, caller: Terminal, call: Call, number: int) -> EndReason | None:
        """Ring handset `number` for `call` (being dialled at `caller`); None when it rings,
        else the reason it cannot."""
        own = caller.index + 1
        if not 1 <= number <= len(self.phone.terminals) or not self._registered(number):
            return EndReason.UNKNOWN_NUMBER
        callee = self.phone.terminals[number - 1]
        if number == own or not self._free(callee):
            return EndReason.BUSY
        now = self.phone.clock.now()
        serial = next(self._ids)
        call.id, call.intercom, call.remote_name = f"int{serial}-{own}", number, self._name(number)
        if call.state is CallState.OFFHOOK:
            call.to(CallState.DIALING, now)
        call.to(CallState.CALLING, now)
        call.to(CallState.RINGBACK, now)
        ringing = Call(id=f"int{serial}-{number}", direction="incoming", line=callee.line,
                       state=CallState.INCOMING, started_at=now, number=f"**{own}",
                       remote_name=self._name(own), intercom=own)
        self._other[call.id] = _Leg(callee, ringing)
        self._other[ringing.id] = _Leg(caller, call)
        timeout = self.phone.config.device.no_answer_timeout
        self._timers[call.id] = self.phone.clock.call_later(
            timeout, lambda: self._end(caller, call, EndReason.NO_ANSWER, EndReason.MISSED))
        log.info("internal call: handset %d rings handset %d", own, number)
        callee.ring_too(ringing)
        return None

    def answer(self, callee: Terminal, call: Call) -> None:
        """`callee` took the internal call ringing there: the two handsets talk."""
        other = self._other.get(call.id)
        if other is None or call.ended:
            return
        self._cancel(other.call.id)
        now = self.phone.clock.now()
        call.to(CallState.CONNECTED, now)
        other.call.to(CallState.CONNECTED, now)
        self.phone.engine.intercom(other.terminal.index, callee.index, True)
        log.info("internal call: handsets %d and %d talk", other.terminal.index + 1,
                 callee.index + 1)
        other.terminal.refresh()

    def hang_up(self, terminal: Terminal, call: Call) -> None:
        """`terminal` hung up its side of the internal call `call` (or gave up calling)."""
        talking = call.state is CallState.CONNECTED
        reason = EndReason.NORMAL if talking else EndReason.CANCELLED
        self._end(terminal, call, reason, EndReason.NORMAL if talking else EndReason.MISSED)

    def refuse(self, terminal: Terminal, call: Call) -> None:
        """The called handset refused the internal call ringing there: the caller hears busy."""
        self._end(terminal, call, EndReason.MISSED, EndReason.BUSY)

    def _end(self, terminal: Terminal, call: Call, reason: EndReason,
             other_reason: EndReason) -> None:
        other = self._other.pop(call.id, None)
        self._cancel(call.id)
        if other is None:
            call.end(reason, self.phone.clock.now())
            return
        self._other.pop(other.call.id, None)
        self._cancel(other.call.id)
        if call.state is CallState.CONNECTED:
            self.phone.engine.intercom(terminal.index, other.terminal.index, False)
        if call is terminal.alerting:
            terminal.withdraw(call)
        if call is terminal.call:
            terminal.intercom_over(call, reason)
        else:
            call.end(reason, self.phone.clock.now())
        if other.call is other.terminal.alerting:
            other.terminal.withdraw(other.call)
            other.call.end(other_reason, self.phone.clock.now())
        else:
            other.terminal.intercom_over(other.call, other_reason)
        log.info("internal call %s over: %s", call.id, reason.name.lower())

    # -- internal consult and transfer ---------------------------------------------------------
    def transfer(self, source: Terminal, held: Call, draft: Call) -> EndReason | None:
        """Hand the external call `held` (on hold at `source`) to the handset `draft` calls or
        names (`**N`); None when done, else why not (the call stays on hold)."""
        other = self._other.get(draft.id) if draft.intercom else None
        if other is not None and draft.state is CallState.CONNECTED:  # N answered: hand over
            target = other.terminal
            del self._other[draft.id], self._other[other.call.id]
            self.phone.engine.intercom(source.index, target.index, False)
            now = self.phone.clock.now()
            other.call.end(EndReason.TRANSFERRED, now)
            source.let_go(held, draft)
            target.take_over(held)
            self.phone.engine.move_call(held.id, target.index)
            log.info("call %s handed from handset %d to handset %d", held.id,
                     source.index + 1, target.index + 1)
            return None
        number = draft.intercom or handset_number(draft.number)
        if number is None:
            return EndReason.INVALID_NUMBER
        if other is not None:  # still ringing there: the external call rings instead
            self._other.pop(draft.id, None)
            self._other.pop(other.call.id, None)
            self._cancel(draft.id)
            other.terminal.withdraw(other.call)
            other.call.end(EndReason.TRANSFERRED, self.phone.clock.now())
        elif not 1 <= number <= len(self.phone.terminals) or not self._registered(number):
            return EndReason.UNKNOWN_NUMBER
        target = self.phone.terminals[number - 1]
        if target is source or (other is None and not self._free(target)):
            return EndReason.BUSY
        source.let_go(held, draft)
        self._offer(held, source, target)
        return None

    def _offer(self, call: Call, source: Terminal, target: Terminal) -> None:
        timeout = self.phone.config.calls.transfer_timeout
        timer = self.phone.clock.call_later(timeout, lambda: self._recall(call))
        self._offers[call.id] = _Offer(source, target, timer)
        log.info("call %s rings at handset %d (transferred by handset %d)", call.id,
                 target.index + 1, source.index + 1)
        target.ring_too(call)

    def offered(self, call: Call) -> bool:
        """`call` is an external call handed to a handset that has yet to take it."""
        if call.ended:
            self._forget_offer(call)
        return call.id in self._offers

    def take(self, terminal: Terminal, call: Call) -> None:
        """`terminal` lifted for a call handed to it: the call, its audio and all, is its."""
        self._forget_offer(call)
        terminal.take_over(call)
        self.phone.engine.move_call(call.id, terminal.index)
        self.phone.call_taken(call, terminal)

    def decline(self, terminal: Terminal, call: Call) -> bool:
        """The handset the call was handed to refused it: back to the one that sent it (or,
        refused there too, the caller is told nobody answers); False when not offered."""
        return self._recall(call)

    def _recall(self, call: Call) -> bool:
        """Not taken where it rang: ring at the handset that transferred it, once; if that
        handset is gone or busy ringing, or the call already came back, the caller gets 480
        Temporarily Unavailable (no call waits on hold for ever)."""
        offer = self._forget_offer(call)
        if offer is None or call.ended:
            return False
        offer.target.withdraw(call)
        source = offer.source
        if offer.target is source or source.alerting is not None or \
                not self._registered(source.index + 1):
            log.info("call %s taken by no handset: ended", call.id)
            self.phone.engine.hangup(call.id, UNANSWERED_CODE)
            call.end(EndReason.MISSED, self.phone.clock.now())
            return True
        log.info("call %s not taken at handset %d: back to handset %d", call.id,
                 offer.target.index + 1, source.index + 1)
        self._offer(call, source, source)
        return True

    def _forget_offer(self, call: Call) -> _Offer | None:
        offer = self._offers.pop(call.id, None)
        if offer is not None and offer.timer is not None:
            offer.timer.cancel()
        return offer

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _free(terminal: Terminal) -> bool:
        return terminal.alerting is None and not terminal.busy() and not terminal.offhook

    def _cancel(self, call_id: str) -> None:
        timer = self._timers.pop(call_id, None)
        if timer is not None:
            timer.cancel()
