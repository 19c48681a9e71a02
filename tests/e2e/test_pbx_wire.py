"""The test PBX records every SIP message on the wire, and enforces caller-ID rules.

Real peers only: SIPp (a registered busy phone, a caller presenting a
caller-ID role), baresip (a callee showing who calls) and raw UDP requests.
What the PBX received and sent is read back with Kamailio.messages() /
wait_message() (tools/pbx/wire.py).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import USERS
from tests.harness.baresip import Baresip
from tests.harness.sipp import SCENARIOS, SippRegisteredUas, sipp_argv
from tools.pbx.kamailio import Kamailio, KamailioError
from tools.pbx.ports import free_port
from tools.pbx.process import ManagedProcess
from tools.pbx.sipprobe import SipResponse, parse_response, sip_request
from tools.pbx.waiting import wait_until
from tools.pbx.wire import SipMessage, name_addr_uri, uri_user

pytestmark = pytest.mark.e2e

SWITCHBOARD = "0812345678"
SippUasFactory = Callable[[str, str], SippRegisteredUas]
BaresipFactory = Callable[..., Baresip]


# ----- helpers -----


def start_identity_call(
    pbx: Kamailio, workdir: Path, callee: str, *, auth_user: str,
    from_display: str, from_user: str, from_domain: str, ppi: str, privacy: str,
    extra_header: str = "X-Luren-Test: caller-id",
) -> ManagedProcess:
    """Start one SIPp call (scenarios/uac_identity.xml) through the PBX; see finish()."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = sipp_argv(
        free_port(),
        "-sf", str(SCENARIOS / "uac_identity.xml"),
        "-s", callee, "-au", auth_user, "-ap", USERS[auth_user],
        "-key", "from_display", from_display,
        "-key", "from_user", from_user,
        "-key", "from_domain", from_domain,
        "-key", "ppi", ppi,
        "-key", "privacy", privacy,
        "-key", "extra_header", extra_header,
        "-m", "1", "-timeout", "10s", "-timeout_error",
        pbx.address,
    )
    sipp = ManagedProcess(argv, workdir / "sipp-uac.log", cwd=workdir)
    sipp.start()
    return sipp


def finish(sipp: ManagedProcess, what: str = "the SIPp run") -> int | None:
    """Wait for SIPp to exit (stopping it by PID if it overruns); return its exit status."""
    try:
        wait_until(lambda: not sipp.running(), 15, what=f"{what} to end")
    finally:
        sipp.stop(grace=2.0)
    return sipp.returncode()


def call_with_identity(pbx: Kamailio, workdir: Path, callee: str, **identity: str) -> None:
    """One complete SIPp call (challenge, credentials, 486 from the callee)."""
    sipp = start_identity_call(pbx, workdir, callee, **identity)
    assert finish(sipp, "the SIPp call") == 0, f"SIPp call failed:\n{sipp.log_tail()}"


def invite_sent_to(pbx: Kamailio, port: int) -> SipMessage:
    """The INVITE the PBX relayed to the phone on `port`: the bytes the callee received."""
    return pbx.wait_message(
        lambda m: m.method == "INVITE" and m.direction == "out"
        and m.destination == f"127.0.0.1:{port}",
        what=f"an INVITE relayed to port {port}",
    )


def invite_unauthenticated(pbx: Kamailio, from_uri: str, to_user: str = "1002") -> SipResponse:
    return sip_request(pbx.port, "INVITE", f"sip:{to_user}@{pbx.address}", from_uri=from_uri)


# ----- capture -----


def test_register_with_digest_auth_is_captured_with_its_401_and_200(
    pbx: Kamailio, make_sipp_uas: SippUasFactory
) -> None:
    make_sipp_uas("1002", "busy")
    pbx.wait_message(lambda m: m.status == 200 and m.cseq_method == "REGISTER",
                     what="the 200 OK to REGISTER")

    exchange = pbx.messages("REGISTER")
    first, challenge, second, ok = exchange
    assert [(m.direction, m.method or m.status) for m in exchange] == [
        ("in", "REGISTER"), ("out", 401), ("in", "REGISTER"), ("out", 200)]
    assert not first.has_header("Authorization")
    assert (challenge.header("www-authenticate") or "").startswith('Digest realm="127.0.0.1"')
    assert 'username="1002"' in (second.header("Authorization") or "")
    assert name_addr_uri(ok.header("Contact") or "").startswith("sip:1002@127.0.0.1:")
    assert len({m.call_id for m in exchange}) == 1
    assert [m.cseq for m in exchange] == [1, 1, 2, 2]
    assert pbx.messages("REGISTER", requests_only=True) == [first, second]
    assert pbx.messages("REGISTER", direction="out") == [challenge, ok]


def test_invite_with_compact_headers_and_sdp_body_is_parsed_both_ways(
    pbx: Kamailio, make_sipp_uas: SippUasFactory
) -> None:
    callee = make_sipp_uas("1002", "busy")
    call_id = f"{secrets.token_hex(8)}@trunk.example"
    body = "\r\n".join([
        "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
        "m=audio 40000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendonly", "",
    ])

    final = send_raw_invite(pbx, call_id, body)

    assert final.status == 486
    received = pbx.wait_message(lambda m: m.call_id == call_id and m.method == "INVITE",
                                what="the INVITE with compact headers")
    relayed = invite_sent_to(pbx, callee.port)
    for message in (received, relayed):
        assert message.call_id == call_id  # from "i:"
        assert message.header("FROM") == '"Trunk" <sip:0301234567@trunk.example>;tag=abc1'
        assert message.header("t") == "<sip:1002@127.0.0.1>"
        assert message.header("Content-Type") == "application/sdp"
        assert message.header("supported") == "replaces"
        assert message.header("Content-Length") == str(len(body))
        assert message.cseq_method == "INVITE"
        assert message.body == body
        assert message.sdp_direction() == "sendonly"
    assert received.direction == "in"
    assert [name for name, _ in received.header_fields][:3] == ["Via", "max-forwards", "From"]
    assert len(relayed.headers("Via")) == 2  # the PBX's own Via on top
    assert relayed.header("Record-Route")


def send_raw_invite(pbx: Kamailio, call_id: str, body: str) -> SipResponse:
    """Send an INVITE written with compact and odd-case header names; ACK its final reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5.0)
        port = sock.getsockname()[1]
        via = f"v: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{secrets.token_hex(6)}"
        head = [
            f"INVITE sip:1002@{pbx.address} SIP/2.0", via, "max-forwards: 70",
            'f: "Trunk" <sip:0301234567@trunk.example>;tag=abc1', "t: <sip:1002@127.0.0.1>",
            f"i: {call_id}", "cSeq: 1 INVITE", f"m: <sip:0301234567@127.0.0.1:{port}>",
            "k: replaces", "c: application/sdp", f"l: {len(body)}",
        ]
        sock.sendto(("\r\n".join(head) + "\r\n\r\n" + body).encode(), ("127.0.0.1", pbx.port))
        final = wait_until(lambda: _final_reply(sock), 5, what="a final reply to the INVITE")
        ack = [f"ACK sip:1002@{pbx.address} SIP/2.0", via, "max-forwards: 70", head[3],
               f"t: {final.header('to')}", f"i: {call_id}", "cSeq: 1 ACK", "l: 0"]
        sock.sendto(("\r\n".join(ack) + "\r\n\r\n").encode(), ("127.0.0.1", pbx.port))
        return final


def _final_reply(sock: socket.socket) -> SipResponse | None:
    reply = parse_response(sock.recv(65535))
    return reply if reply.status >= 200 else None


def test_capture_goes_on_across_a_restart_and_can_be_switched_off(
    pbx: Kamailio, tmp_path: Path
) -> None:
    def keepalives() -> list[str | None]:
        return [m.call_id for m in pbx.messages("OPTIONS", requests_only=True)]

    pbx.wait_message(lambda m: m.method == "OPTIONS", what="the start-up keepalive")
    before = keepalives()
    pbx.stop()
    pbx.start()
    pbx.wait_message(lambda m: m.method == "OPTIONS" and m.call_id not in before,
                     what="the keepalive after the restart")

    captured = pbx.messages()
    assert [m.seq for m in captured] == list(range(len(captured)))
    assert len(keepalives()) > len(before) >= 1
    assert sorted(p.name[:12] for p in pbx.capture_dir.glob("*.data")) == [
        "capture-001-", "capture-002-"]
    with Kamailio(tmp_path / "quiet", USERS, port=free_port(), capture=False) as quiet:
        assert sip_request(quiet.port, "OPTIONS", f"sip:{quiet.address}").status == 200
        with pytest.raises(KamailioError, match="capture=False"):
            quiet.messages()
    assert list(quiet.capture_dir.iterdir()) == []


# ----- caller-ID roles and authentication -----


def test_switchboard_from_arrives_with_asserted_identity(
    pbx: Kamailio, make_baresip: BaresipFactory, tmp_path: Path
) -> None:
    callee = make_baresip("1002")

    sipp = start_identity_call(
        pbx, tmp_path / "caller", "1002", auth_user="1001",
        from_display='"Switchboard"', from_user=SWITCHBOARD, from_domain="127.0.0.1",
        ppi="sip:1001@127.0.0.1", privacy="none",
    )
    incoming = callee.wait_event("CALL_INCOMING", 10)
    callee.hangup()
    assert finish(sipp, "the SIPp call") == 0, sipp.log_tail()

    assert incoming["peeruri"] == f"sip:{SWITCHBOARD}@127.0.0.1"
    invite = invite_sent_to(pbx, callee.sip_port)
    assert (invite.header("From") or "").startswith(f'"Switchboard" <sip:{SWITCHBOARD}@')
    assert invite.headers("P-Asserted-Identity") == ["<sip:1001@127.0.0.1>"]
    assert not invite.has_header("P-Preferred-Identity")
    assert not invite.has_header("Proxy-Authorization")  # consumed by the PBX
    assert invite.header("Privacy") == "none"


def test_anonymous_call_is_challenged_then_relayed_with_privacy(
    pbx: Kamailio, make_sipp_uas: SippUasFactory, tmp_path: Path
) -> None:
    callee = make_sipp_uas("1002", "busy")

    call_with_identity(
        pbx, tmp_path / "caller", "1002", auth_user="1001",
        from_display='"Anonymous"', from_user="anonymous", from_domain="anonymous.invalid",
        ppi="sip:1001@127.0.0.1", privacy="id",
    )

    invite = invite_sent_to(pbx, callee.port)
    exchange = pbx.messages("INVITE", call_id=invite.call_id)
    challenged, challenge = exchange[0], exchange[1]
    assert (challenged.direction, challenged.cseq, challenge.status) == ("in", 1, 407)
    assert (challenge.header("Proxy-Authenticate") or "").startswith('Digest realm="127.0.0.1"')
    assert not any(m.direction == "out" and m.is_request and m.cseq == 1 for m in exchange)
    authenticated = next(m for m in exchange if m.is_request and m.cseq == 2)
    assert 'username="1001"' in (authenticated.header("Proxy-Authorization") or "")
    assert name_addr_uri(invite.header("From") or "") == "sip:anonymous@anonymous.invalid"
    assert invite.header("Privacy") == "id"
    assert invite.headers("P-Asserted-Identity") == ["<sip:1001@127.0.0.1>"]
    assert not invite.has_header("P-Preferred-Identity")


def test_a_phone_cannot_assert_another_users_identity(
    pbx: Kamailio, make_sipp_uas: SippUasFactory, tmp_path: Path
) -> None:
    callee = make_sipp_uas("1002", "busy")

    call_with_identity(
        pbx, tmp_path / "caller", "1002", auth_user="1001",
        from_display='"Boss"', from_user="1003", from_domain="127.0.0.1",
        ppi="sip:1003@127.0.0.1", privacy="none",
        extra_header="P-Asserted-Identity: <sip:1003@127.0.0.1>",
    )

    invite = invite_sent_to(pbx, callee.port)
    sent_by_phone = pbx.messages("INVITE", call_id=invite.call_id, requests_only=True,
                                 direction="in")
    assert sent_by_phone[-1].headers("P-Asserted-Identity") == ["<sip:1003@127.0.0.1>"]
    assert uri_user(name_addr_uri(invite.header("From") or "")) == "1003"
    assert invite.headers("P-Asserted-Identity") == ["<sip:1001@127.0.0.1>"]


def test_no_call_without_credentials_and_no_open_relay(pbx: Kamailio) -> None:
    for from_uri in ("sip:1001@127.0.0.1", f"sip:{SWITCHBOARD}@127.0.0.1",
                     f"sip:1001@{pbx.address}", "sip:anonymous@anonymous.invalid"):
        reply = invite_unauthenticated(pbx, from_uri)
        assert (reply.status, from_uri) == (407, from_uri)
        assert (reply.header("Proxy-Authenticate") or "").startswith('Digest realm="127.0.0.1"')

    trunk_to_local = invite_unauthenticated(pbx, "sip:0301234567@trunk.example")
    trunk_to_elsewhere = sip_request(pbx.port, "INVITE", "sip:bob@example.com",
                                     from_uri="sip:0301234567@trunk.example")
    assert trunk_to_local.status == 404  # not challenged; 1002 is just not registered
    assert (trunk_to_elsewhere.status, trunk_to_elsewhere.reason) == (403, "Not relaying")
    pbx.wait_message(lambda m: m.status == 403, what="the 403 in the capture")
    assert pbx.messages("INVITE", requests_only=True, direction="out") == []


def test_register_still_needs_the_auth_user_in_to_and_from(
    pbx: Kamailio, tmp_path: Path
) -> None:
    """1001's valid credentials cannot register 1002 (auth_check flag 1 kept for REGISTER)."""
    workdir = tmp_path / "impostor"
    workdir.mkdir()
    argv = sipp_argv(
        free_port(), "-sf", str(SCENARIOS / "register.xml"),
        "-s", "1002", "-au", "1001", "-ap", USERS["1001"],
        "-key", "domain", "127.0.0.1", "-key", "contact_port", str(free_port()),
        "-key", "expires", "60", "-m", "1", "-timeout", "10s", "-timeout_error",
        pbx.address,
    )
    sipp = ManagedProcess(argv, workdir / "sipp-register.log", cwd=workdir)
    sipp.start()

    assert finish(sipp, "the SIPp REGISTER") != 0
    second_challenge = pbx.wait_message(
        lambda m: m.status == 401 and m.cseq == 2, what="the second 401")
    assert second_challenge.cseq_method == "REGISTER"
    assert pbx.registered_contacts("1002") == []
    assert [m.status for m in pbx.messages("REGISTER", direction="out")] == [401, 401]
