"""The phone's recent log, kept in memory for the console's `log tail` and `log follow`.

A logging handler keeps the last `capacity` formatted records (secrets masked as they are
stored, so nothing unmasked is ever held for display) and tells followers about each new one.
Records arrive from any thread (the SIP engine's too); followers are called on the thread that
logged, so they must only hand the line on (e.g. `loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Final

from firmware.console.masking import Masker

LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
                 "error": logging.ERROR}
FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Follower = Callable[[str], None]


class LogBuffer(logging.Handler):
    """The last `capacity` log lines, masked; followers get each new one."""

    def __init__(self, masker: Masker, capacity: int = 2000) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(FORMAT))
        self._masker = masker
        self._lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self._followers: list[Follower] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self._masker.text(self.format(record))
        except Exception:  # a broken record must not break logging
            self.handleError(record)
            return
        with self._guard:
            self._lines.append(line)
            followers = list(self._followers)
        for follower in followers:
            try:
                follower(line)
            except Exception:  # a follower gone wrong is dropped, never the logger
                self.unfollow(follower)

    def tail(self, count: int) -> list[str]:
        with self._guard:
            return list(self._lines)[-count:] if count > 0 else []

    def follow(self, follower: Follower) -> None:
        with self._guard:
            self._followers.append(follower)

    def unfollow(self, follower: Follower) -> None:
        with self._guard:
            if follower in self._followers:
                self._followers.remove(follower)


def set_level(name: str, level: str) -> str | None:
    """Set logger `name` ("" = the phone's root logger "luren", or e.g. "luren.sip") to
    `level`; None when done, else the reason in words."""
    wanted = LEVELS.get(level.lower())
    if wanted is None:
        return f"unknown level {level!r}; use one of {', '.join(LEVELS)}"
    logging.getLogger(name or "luren").setLevel(wanted)  # handlers on the root see it all
    return None
