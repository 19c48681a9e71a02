"""tools/pbx/wire.py: parsing the PBX's sipdump capture, on hand-written samples."""

from __future__ import annotations

from pathlib import Path

from tools.pbx.wire import (
    CaptureReader,
    canonical_name,
    name_addr_uri,
    parse_capture,
    parse_sip,
    select,
    uri_user,
)


def record(tag: str, message: str, *, time: str = "1795325651.688533",
           src: tuple[str, int] = ("127.0.0.1", 5062),
           dst: tuple[str, int] = ("127.0.0.1", 5060)) -> bytes:
    """One sipdump text record, as Kamailio 5.6 writes it."""
    head = (
        "====================\n"
        f"tag: {tag}\npid: 4474\nprocess: 1\ntime: {time}\n"
        "date: Sun Nov 22 05:34:11 2026\nproto: udp ipv4\n"
        f"srcip: {src[0]}\nsrcport: {src[1]}\ndstip: {dst[0]}\ndstport: {dst[1]}\n"
        "~~~~~~~~~~~~~~~~~~~~\n"
    )
    return (head + message + "||||||||||||||||||||\n").encode()


def crlf(*lines: str, body: str = "") -> str:
    return "\r\n".join(lines) + "\r\n\r\n" + body


SDP = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
    "a=sendrecv", "m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=inactive", "",
])
HOLD_INVITE = crlf(
    "INVITE sip:1002@127.0.0.1:5060 SIP/2.0",
    "v: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1",
    'f: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=a',
    "t: <sip:1002@127.0.0.1>",
    "i: call-1@host",
    "CSEQ: 2 INVITE",
    "m: <sip:1001@127.0.0.1:5062>",
    "Privacy: id",
    "P-Preferred-Identity: <sip:1001@127.0.0.1>",
    "Subject: folded",
    "  across lines",
    "k: replaces",
    "c: application/sdp",
    f"l: {len(SDP)}",
    body=SDP,
)
# A sipfrag body has its own blank line, and one that even contains the markers.
SIPFRAG = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n||||||||||||||||||||\n====================\n"
NOTIFY = crlf(
    "NOTIFY sip:1001@127.0.0.1:5062 SIP/2.0",
    "Via: SIP/2.0/UDP 127.0.0.1:5064;branch=z9hG4bK2",
    "From: <sip:1003@127.0.0.1>;tag=b",
    "To: <sip:1001@127.0.0.1>;tag=c",
    "Call-ID: call-2@host",
    "CSeq: 7 NOTIFY",
    "o: refer",
    "Subscription-State: terminated;reason=noresource",
    "Content-Type: message/sipfrag;version=2.0",
    f"Content-Length: {len(SIPFRAG)}",
    body=SIPFRAG,
)
REPLY = crlf(
    "SIP/2.0 407 Proxy Authentication Required",
    "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1",
    "i: call-1@host",
    "CSeq: 2 INVITE",
    'Proxy-Authenticate: Digest realm="127.0.0.1", nonce="x"',
    "Content-Length: 0",
)
REFER = crlf(
    "REFER sip:1002@127.0.0.1:5060 SIP/2.0",
    "i: call-3@host",
    "CSeq: 3 REFER",
    "r: <sip:1003@127.0.0.1?Replaces=call-9%40host%3Bto-tag%3Dx%3Bfrom-tag%3Dy>",
    "b: <sip:1001@127.0.0.1>",
    "l: 0",
)
SAMPLE = (
    record("rcv", HOLD_INVITE)
    + record("snd", REPLY, src=("127.0.0.1", 5060), dst=("127.0.0.1", 5062))
    + record("rcv", NOTIFY)
    + record("rcv", REFER)
)
TRUNCATED = record("rcv", HOLD_INVITE)[:-60]


def test_complete_records_are_parsed_and_a_truncated_last_one_is_left_for_later() -> None:
    messages, consumed = parse_capture(SAMPLE + TRUNCATED)

    assert [m.first_line.split(" ")[0] for m in messages] == ["INVITE", "SIP/2.0", "NOTIFY",
                                                               "REFER"]
    assert [m.seq for m in messages] == [0, 1, 2, 3]
    assert consumed == len(SAMPLE)


def test_first_line_metadata_and_compact_headers_are_normalised() -> None:
    invite, reply, _, refer = parse_capture(SAMPLE)[0]

    assert (invite.direction, invite.method, invite.request_uri) == (
        "in", "INVITE", "sip:1002@127.0.0.1:5060")
    assert (invite.timestamp, invite.transport) == (1795325651.688533, "udp")
    assert (invite.source, invite.destination) == ("127.0.0.1:5062", "127.0.0.1:5060")
    assert [name for name, _ in invite.header_fields][:6] == [
        "Via", "From", "To", "Call-ID", "CSEQ", "Contact"]
    assert (invite.call_id, invite.cseq, invite.cseq_method) == ("call-1@host", 2, "INVITE")
    assert invite.header("from") == invite.header("F") == invite.header("FROM")
    assert invite.header("Subject") == "folded across lines"
    assert invite.header("Supported") == "replaces"
    assert invite.header("privacy") == "id"
    assert invite.header("P-Asserted-Identity") is None
    assert (reply.direction, reply.status, reply.reason, reply.method) == (
        "out", 407, "Proxy Authentication Required", None)
    assert reply.cseq_method == "INVITE"
    assert (refer.header("Refer-To") or "").startswith("<sip:1003@127.0.0.1?Replaces=call-9")
    assert refer.header("Referred-By") == "<sip:1001@127.0.0.1>"


def test_bodies_keep_their_blank_lines_and_sdp_direction_is_read() -> None:
    invite, reply, notify, _ = parse_capture(SAMPLE)[0]

    assert invite.body == SDP
    assert invite.sdp_direction() == "inactive"  # media level wins over session level
    assert notify.body == SIPFRAG  # its blank line and even the record markers
    assert notify.header("Event") == "refer"
    assert notify.sdp_direction() is None
    assert reply.body == ""
    sendonly = parse_sip(crlf("INVITE sip:x SIP/2.0", "l: 5", body="v=0\r\n"))
    assert sendonly.sdp_direction() == "sendrecv"


def test_a_record_without_content_length_ends_at_the_next_record() -> None:
    lf_only = "OPTIONS sip:x SIP/2.0\nCall-ID: lf@host\nCSeq: 1 OPTIONS\n\n"
    data = record("rcv", lf_only) + record("snd", REPLY)

    first, second = parse_capture(data)[0]

    assert (first.method, first.call_id, first.body) == ("OPTIONS", "lf@host", "")
    assert second.status == 407
    alone, consumed = parse_capture(record("rcv", lf_only))
    assert [m.call_id for m in alone] == ["lf@host"]
    assert consumed == len(record("rcv", lf_only))


def test_reader_picks_up_a_record_once_it_is_complete(tmp_path: Path) -> None:
    capture = tmp_path / "capture-001-2026-11-22--05-34-11.data"
    capture.write_bytes(SAMPLE + TRUNCATED)
    reader = CaptureReader(tmp_path)

    assert len(reader.read()) == 4
    with open(capture, "ab") as f:
        f.write(record("rcv", HOLD_INVITE)[len(TRUNCATED):])
    (tmp_path / "capture-002-2026-11-22--05-34-12.data").write_bytes(record("snd", REPLY))

    messages = reader.read()
    assert [m.seq for m in messages] == [0, 1, 2, 3, 4, 5]
    assert messages[4].method == "INVITE" and messages[4].body == SDP
    assert messages[5].status == 407
    assert reader.read() == messages


def test_select_by_cseq_method_direction_and_position() -> None:
    messages = parse_capture(SAMPLE)[0]

    assert [m.seq for m in select(messages, "invite")] == [0, 1]
    assert [m.seq for m in select(messages, "INVITE", requests_only=True)] == [0]
    assert [m.seq for m in select(messages, direction="out")] == [1]
    assert [m.seq for m in select(messages, replies_only=True)] == [1]
    assert [m.seq for m in select(messages, call_id="call-2@host")] == [2]
    assert [m.seq for m in select(messages, after=1)] == [2, 3]


def test_garbage_and_odd_messages_do_not_raise() -> None:
    data = (b"noise\n" + record("rcv", "\x00not sip at all") + record("rcv", "\r\n\r\n")
            + record("xyz", REFER))

    odd, other = parse_capture(data)[0]

    assert odd.first_line == "\x00not sip at all"
    assert (odd.method, odd.status, odd.call_id, odd.cseq) == ("\x00not", None, None, None)
    assert other.direction == "xyz"
    assert parse_capture(b"")[0] == []


def test_header_value_helpers() -> None:
    assert canonical_name("I") == "Call-ID"
    assert canonical_name(" Via ") == "Via"
    assert canonical_name("x-custom") == "x-custom"
    assert name_addr_uri('"Anon" <sip:anonymous@anonymous.invalid>;tag=1') == (
        "sip:anonymous@anonymous.invalid")
    assert name_addr_uri("sip:1001@host;tag=1") == "sip:1001@host"
    assert uri_user("sip:0812345678@127.0.0.1;user=phone") == "0812345678"
    assert uri_user("sip:127.0.0.1:5060") is None
