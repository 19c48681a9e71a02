"""People and presence against real peers: message waiting (MWI)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PhoneFactory, wait_registered
from tools.pbx.kamailio import Kamailio
from tools.pbx.sipprobe import sip_request

pytestmark = pytest.mark.e2e


def summary(waiting: bool, new: int, old: int) -> str:
    return (f"Messages-Waiting: {'yes' if waiting else 'no'}\r\n"
            f"Message-Account: sip:555@127.0.0.1\r\nVoice-Message: {new}/{old} (0/0)\r\n")


def test_unsolicited_message_waiting_lights_and_clears_the_led(
        pbx: Kamailio, make_phone: PhoneFactory) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    port = phone.status()["engine"]["sip_port"]
    answer = sip_request(port, "NOTIFY", f"sip:1001@127.0.0.1:{port}",
                         to_uri="sip:1001@127.0.0.1", from_uri="sip:555@127.0.0.1",
                         extra_headers={"Event": "message-summary",
                                        "Subscription-State": "active"},
                         body=summary(True, 2, 5),
                         content_type="application/simple-message-summary")
    assert answer.status == 200
    phone.wait_status(lambda s: s["lines"][0]["messages"] == {"new": 2, "old": 5}, 5,
                      "the message count")
    assert phone.leds()["message"]["pattern"] == "slow_blink"
    phone.wait_text("2 new messages", 5)
    answer = sip_request(port, "NOTIFY", f"sip:1001@127.0.0.1:{port}",
                         to_uri="sip:1001@127.0.0.1", from_uri="sip:555@127.0.0.1",
                         extra_headers={"Event": "message-summary",
                                        "Subscription-State": "active"},
                         body=summary(False, 0, 7),
                         content_type="application/simple-message-summary")
    assert answer.status == 200
    phone.wait_status(lambda s: s["lines"][0]["messages"] == {"new": 0, "old": 7}, 5,
                      "the cleared count")
    assert phone.leds()["message"]["pattern"] == "off"
