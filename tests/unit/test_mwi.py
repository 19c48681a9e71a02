"""Message-summary bodies (RFC 3842) as voicemail servers send them."""

from __future__ import annotations

import pytest

from firmware.mwi import MessageSummary, parse_message_summary


@pytest.mark.parametrize(("body", "summary"), [
    ("Messages-Waiting: yes\r\nMessage-Account: sip:555@pbx\r\nVoice-Message: 2/8 (1/0)\r\n",
     MessageSummary(True, 2, 8, "sip:555@pbx")),
    ("messages-waiting: no\nvoice-message: 0/3\n", MessageSummary(False, 0, 3)),
    ("Messages-Waiting: yes\r\n", MessageSummary(True, 0, 0)),
    ("Messages-Waiting:yes\r\nVoice-Message:  99999999/1\r\n", MessageSummary(True, 9999, 1)),
    ("Messages-Waiting: yes\r\nVoice-Message: lots\r\nFax-Message: 1/0\r\n",
     MessageSummary(True, 0, 0)),
])
def test_summaries(body: str, summary: MessageSummary) -> None:
    assert parse_message_summary(body) == summary


@pytest.mark.parametrize("body", ["", "garbage", "\x00\xff", "Voice-Message: 1/2"])
def test_no_summary(body: str) -> None:
    assert parse_message_summary(body) is None
