"""Message waiting (RFC 3842): the message-summary body a voicemail server sends in NOTIFYs.

    Messages-Waiting: yes
    Message-Account: sip:555@pbx.example.se
    Voice-Message: 2/8 (1/0)

Pure parsing: the SIP engine hands over the body, the controller lights the message LED and
shows the count. Bodies from other vendors vary (header case, missing counts, extra lines);
anything unreadable counts as "no information", never as an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COUNTS = re.compile(r"^\s*(\d+)\s*/\s*(\d+)(?:\s*\(\s*(\d+)\s*/\s*(\d+)\s*\))?")
MAX_COUNT = 9999  # what a screen can show; bigger claims are clamped


@dataclass(frozen=True)
class MessageSummary:
    waiting: bool
    new: int = 0  # new voice messages (urgent ones included)
    old: int = 0
    account: str = ""


def parse_message_summary(body: str) -> MessageSummary | None:
    """The summary in `body`, or None when it has no Messages-Waiting line."""
    waiting: bool | None = None
    new = old = 0
    account = ""
    for raw in body.splitlines():
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key, value = name.strip().lower(), value.strip()
        if key == "messages-waiting":
            waiting = value.lower() == "yes"
        elif key == "message-account":
            account = value[:200]
        elif key == "voice-message":
            match = _COUNTS.match(value)
            if match:
                new, old = (min(int(match.group(i)), MAX_COUNT) for i in (1, 2))
    if waiting is None:
        return None
    return MessageSummary(waiting, new if waiting or new else 0, old, account)
