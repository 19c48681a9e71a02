"""Names of the phone's keys: the one vocabulary of keypads, the front panel and the API."""

from __future__ import annotations

DIGITS = frozenset("0123456789*#")
FUNCTION_KEYS = frozenset({
    "speaker", "headset", "mute", "hold", "transfer", "conference", "redial", "voicemail",
    "dnd", "record", "volume_up", "volume_down", "up", "down", "left", "right", "ok", "cancel",
    "soft1", "soft2", "soft3", "soft4", "history", "directory", "menu",
})
MAX_LINE_KEYS = 16
LINE_KEYS = frozenset(f"line{n}" for n in range(1, MAX_LINE_KEYS + 1))
ALL_KEYS = DIGITS | FUNCTION_KEYS | LINE_KEYS


def is_key(name: str) -> bool:
    return name in ALL_KEYS
