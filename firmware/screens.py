"""Screens as text grids: pure functions from what the phone knows to the rows it shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from firmware.call import Call, CallState
from firmware.texts import MONTHS, WEEKDAYS, text


@dataclass(frozen=True)
class LineView:
    label: str
    in_service: bool
    status: str  # short technician-friendly status, e.g. "403 Forbidden"


def two_sides(left: str, right: str, width: int) -> str:
    gap = max(1, width - len(left) - len(right))
    return (left + " " * gap + right)[:width]


def format_duration(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def idle_screen(wall: datetime, line: LineView, language: str, width: int) -> list[str]:
    date = f"{WEEKDAYS[language][wall.weekday()]} {wall.day} {MONTHS[language][wall.month - 1]}"
    rows = [two_sides(wall.strftime("%H:%M"), date, width), line.label]
    if not line.in_service:
        rows += [text("no_service", language), line.status]
    return rows


def conference_screen(members: list[Call], now: float, language: str,
                      width: int) -> list[str]:
    """The three-way conference: who is in it and how long it has been going."""
    rows = [two_sides(text("conference", language), format_duration(
        min(m.duration(now) for m in members)), width)]
    rows += [(m.remote_name or m.number)[:width] for m in members[:3]]
    return rows


def call_screen(call: Call, now: float, language: str, width: int) -> list[str]:
    """Rows for the foreground call in any state."""
    who = call.remote_name or call.number
    state = call.state
    if state in (CallState.OFFHOOK, CallState.DIALING):
        return [text("dial", language), call.number]
    if state is CallState.CALLING:
        return [text("calling", language), who]
    if state is CallState.RINGBACK:
        return [text("ringing_remote", language), who]
    if state is CallState.INCOMING:
        return [text("internal_call" if call.intercom else "incoming", language), who,
                call.number if call.remote_name else ""]
    if state is CallState.CONNECTED:
        second = call.number if call.remote_name else ""
        return [who, second, "", two_sides(text("connected", language),
                                            format_duration(call.duration(now)), width)]
    reason = call.end_reason.value if call.end_reason else "call_ended"
    return [text(reason, language), who]
