"""check-sync NOTIFYs read from pjsua2's message log: taken only over a registered flow; stray
NOTIFYs and REFERs outside any dialog refused."""

from __future__ import annotations

import pytest

from firmware.sip.check_sync import (
    Flow,
    decide,
    received_request,
    reply_address,
)
from firmware.sip.dialog_watch import parse_message

PBX = Flow("UDP", "127.0.0.1", 5060)


def notify(event: str = "check-sync", *, via: str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
           source: str = "UDP 127.0.0.1:5060", to_tag: str = "", method: str = "NOTIFY") -> str:
    message = (f"{method} sip:1001@127.0.0.1:40000 SIP/2.0\r\nVia: {via}\r\n"
               "Via: SIP/2.0/UDP 10.0.0.9:5070;rport=5070;branch=z9hG4bK2\r\n"
               "From: <sip:provisioning@10.0.0.9>;tag=a1\r\n"
               f"To: <sip:1001@pbx.example.se>{to_tag}\r\nCall-ID: cs-1@10.0.0.9\r\n"
               f"CSeq: 7 {method}\r\n"
               + (f"Event: {event}\r\n" if event else "Refer-To: <sip:1003@10.0.0.9>\r\n")
               + "Content-Length: 0\r\n\r\n")
    return (f"RX {len(message)} bytes Request msg {method}/cseq=7 (rdata0x55d0185970d8) "
            f"from {source}:\n{message}\n--end msg--")


def test_a_check_sync_over_the_registered_flow_is_taken_and_answered() -> None:
    got = received_request(notify())
    assert got is not None and got.flow == PBX
    decision = decide(got, {0: Flow("TCP", "127.0.0.1", 5060), 1: PBX})
    assert decision.line == 1 and not decision.reboot
    answer = parse_message(decision.answer)
    assert answer is not None and answer.status == 200
    assert len(answer.all("via")) == 2  # every Via, in order
    assert answer.header("call-id") == "cs-1@10.0.0.9" and answer.header("cseq") == "7 NOTIFY"
    assert ";tag=" in answer.header("to")
    again = decide(got, {1: PBX})
    assert again.answer == decision.answer  # a retransmission gets the same answer


@pytest.mark.parametrize("event, reboot", [("check-sync;reboot=true", True),
                                           ("check-sync;reboot=false", False),
                                           ('Check-Sync; reboot="TRUE"', True)])
def test_reboot_parameter(event: str, reboot: bool) -> None:
    got = received_request(notify(event))
    assert got is not None
    assert decide(got, {0: PBX}).reboot is reboot


@pytest.mark.parametrize("source", ["UDP 127.0.0.1:5999", "UDP 10.1.1.1:5060",
                                    "TCP 127.0.0.1:5060"])
def test_a_check_sync_from_anywhere_else_is_ignored_unanswered(source: str) -> None:
    got = received_request(notify(source=source))
    assert got is not None
    decision = decide(got, {0: PBX})
    assert decision.line is None and decision.answer == b""
    assert "ignored: not the registrar" in decision.reason


def test_message_summary_and_requests_inside_a_dialog_are_left_to_pjsua2() -> None:
    for text in (notify("message-summary"), notify("dialog", to_tag=";tag=x1"),
                 notify("", method="REFER", to_tag=";tag=x1")):
        got = received_request(text)
        assert got is not None
        decision = decide(got, {0: PBX})
        assert (decision.line, decision.answer, decision.reason) == (None, b"", ""), text


def test_a_check_sync_with_a_to_tag_is_still_taken() -> None:
    got = received_request(notify(to_tag=";tag=x1"))
    assert got is not None and decide(got, {0: PBX}).line == 0


@pytest.mark.parametrize("source, registered", [("UDP 127.0.0.1:5060", True),
                                                ("UDP 10.1.1.1:40123", False),
                                                ("TCP 127.0.0.1:5060", True)])
def test_a_notify_for_no_subscription_outside_a_dialog_gets_481(source: str,
                                                                registered: bool) -> None:
    flows = {0: PBX, 1: Flow("TCP", "127.0.0.1", 5060)}
    got = received_request(notify("dialog", source=source))
    assert got is not None
    decision = decide(got, flows)
    answer = parse_message(decision.answer)
    assert answer is not None and answer.status == 481
    assert answer.first_line == "SIP/2.0 481 Subscription does not exist"
    assert decision.line is None and not decision.reboot
    assert "NOTIFY (dialog) for no subscription" in decision.reason
    # a stranger's answer goes back where the request came from, never where its Via points
    assert decision.reply_to == (None if registered else got.flow)


def test_a_refer_outside_any_call_gets_403() -> None:
    got = received_request(notify("", method="REFER", source="UDP 10.1.1.1:40123"))
    assert got is not None and got.message.method == "REFER"
    decision = decide(got, {0: PBX})
    answer = parse_message(decision.answer)
    assert answer is not None
    assert answer.first_line == "SIP/2.0 403 Out-of-dialog REFER not accepted"
    assert answer.header("cseq") == "7 REFER"
    assert decision.reply_to == got.flow and decision.line is None


def test_a_stray_request_over_someone_elses_tcp_is_not_answered() -> None:
    got = received_request(notify("presence", source="TCP 10.1.1.1:40123"))
    assert got is not None
    decision = decide(got, {0: PBX})
    assert decision.answer == b"" and "ignored" in decision.reason


def test_no_registered_line_means_nothing_is_taken() -> None:
    got = received_request(notify())
    assert got is not None and decide(got, {}).line is None


@pytest.mark.parametrize("text", [
    "RX 12 bytes Response msg 200/REGISTER/cseq=1 (rdata0x1) from UDP 127.0.0.1:5060:\nSIP/2.0",
    "TX 300 bytes Request msg NOTIFY/cseq=1 (tdta0x1) to UDP 127.0.0.1:5060:\nNOTIFY x",
    "RX 10 bytes Request msg NOTIFY/cseq=1 (rdata0x1) from UDP 127.0.0.1:5060:\n\x00\xff garbage",
    "RX 10 bytes Request msg NOTIFY/cseq=1 (rdata0x1) from UDP nowhere:\nNOTIFY",
    "Request msg NOTIFY/cseq=1 was dropped/unhandled by any modules",
    "",
])
def test_other_log_entries_and_garbage_are_not_notifies(text: str) -> None:
    assert received_request(text) is None


def test_ipv6_source() -> None:
    got = received_request(notify(source="UDP6 [::1]:5060"))
    assert got is not None and got.flow == Flow("UDP", "::1", 5060)


@pytest.mark.parametrize("via, expected", [
    ("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1", ("UDP", "127.0.0.1", 5060)),
    ("SIP/2.0/UDP pbx.example.se;branch=z9hG4bK1;received=192.0.2.4;rport=5080",
     ("UDP", "192.0.2.4", 5080)),
    ("SIP/2.0/TCP [::1]:5070;branch=z9hG4bK1", ("TCP", "::1", 5070)),
    ("SIP/2.0/TLS pbx.example.se;branch=z9hG4bK1", ("TLS", "pbx.example.se", 5061)),
    ("SIP/2.0/UDP 127.0.0.1:99999;branch=z9hG4bK1", None),
    ("garbage", None),
])
def test_where_the_answer_goes(via: str, expected: tuple[str, str, int] | None) -> None:
    message = parse_message(notify(via=via).split(":\n", 1)[1].encode())
    assert message is not None
    assert reply_address(message) == expected
