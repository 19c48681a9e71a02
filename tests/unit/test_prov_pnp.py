"""Tests for provisioning.pnp: SIP plug-and-play over real multicast on the loopback interface.

Each test uses its own free high port for the group, so a SIP server on 5060 or a parallel
test run is never in the way. The fake responders here are raw sockets.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from provisioning.pnp import (
    PnpError,
    PnpResponder,
    PnpResult,
    build_subscribe,
    discover,
    parse_header_value,
    parse_message,
    parse_name_addr,
)

MAC = "00:04:13:AA:BB:CC"
USER = "000413aabbcc"
MODEL = "LX100"
VERSION = "1.4.2"
GROUP_IP = "224.0.1.75"


@pytest.fixture
def group() -> tuple[str, int]:
    """The plug-and-play group on a free high UDP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("", 0))
        return GROUP_IP, probe.getsockname()[1]


def test_subscribe_is_well_formed() -> None:
    data = build_subscribe(
        MAC,
        MODEL,
        VERSION,
        ("127.0.0.1", 40123),
        "abc123@127.0.0.1",
        7,
        "z9hG4bKx1",
        "t42",
        (GROUP_IP, 5060),
    )
    head = data.split(b"\r\n\r\n")[0]
    assert data.endswith(b"\r\n\r\n")
    assert b"\n" not in head.replace(b"\r\n", b"")
    msg = parse_message(data)
    assert msg is not None
    assert (msg.method, msg.uri, msg.status) == ("SUBSCRIBE", f"sip:{USER}@{GROUP_IP}", None)
    via, via_params = parse_header_value(msg.header("via") or "")
    assert via == "SIP/2.0/UDP 127.0.0.1:40123"
    assert via_params["branch"] == "z9hG4bKx1"
    assert "rport" in via_params
    assert parse_name_addr(msg.header("from") or "") == (f"sip:{USER}@127.0.0.1", {"tag": "t42"})
    assert parse_name_addr(msg.header("to") or "") == (f"sip:{USER}@{GROUP_IP}", {})
    assert msg.header("call-id") == "abc123@127.0.0.1"
    assert msg.header("cseq") == "7 SUBSCRIBE"
    assert msg.header("max-forwards") == "70"
    event, params = parse_header_value(msg.header("event") or "")
    assert event == "ua-profile"
    assert params == {
        "profile-type": "device",
        "vendor": "Luren",
        "model": MODEL,
        "version": VERSION,
    }
    assert msg.header("accept") == "application/url"
    assert msg.header("expires") == "0"
    assert msg.header("content-length") == "0"
    assert msg.body == b""
    other_port = build_subscribe(
        MAC, MODEL, VERSION, ("127.0.0.1", 1), "c", 1, "z9hG4bKb", "t", (GROUP_IP, 45000)
    )
    assert other_port.startswith(f"SUBSCRIBE sip:{USER}@{GROUP_IP}:45000 SIP/2.0\r\n".encode())


@pytest.mark.parametrize(
    "change",
    [
        {"mac": "00:04:13:AA:BB"},
        {"mac": "zz0413aabbcc"},
        {"model": 'LX"100'},
        {"version": "1.0\r\nX-Evil: 1"},
        {"call_id": "a b"},
        {"branch": ""},
        {"cseq": 0},
    ],
)
def test_subscribe_refuses_what_cannot_go_in_sip(change: dict[str, object]) -> None:
    args: dict[str, object] = {
        "mac": MAC, "model": MODEL, "version": VERSION, "local": ("127.0.0.1", 5060),
        "call_id": "c1", "cseq": 1, "branch": "z9hG4bKa", "tag": "t", "target": (GROUP_IP, 5060),
    }  # fmt: skip
    args.update(change)
    with pytest.raises(PnpError):
        build_subscribe(**args)  # type: ignore[arg-type]


def test_parse_message_is_strict() -> None:
    good = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nl: 3\r\n\r\nabcdef"
    msg = parse_message(good)
    assert msg is not None and msg.status == 200 and msg.body == b"abc"
    assert msg.header("Content-Length") == "3"
    for bad in (
        b"SIP/2.0 200 OK\nCall-ID: x\n\n",  # bare LF
        b"SIP/2.0 200 OK\r\nCall-ID: x\r\n",  # no end of head
        b"HELLO\r\n\r\n",
        b"SIP/2.0 200 OK\r\nContent-Length: 9\r\n\r\nabc",  # body shorter than announced
        b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"SIP/2.0 200 OK\r\nBad Header: x\r\n\r\n",
        b"NOTIFY sip:a@b SIP/2.0\r\nVia: \xff\xfe\r\n\r\n",
    ):
        assert parse_message(bad) is None, bad


def test_discover_gets_the_url_from_a_responder(group: tuple[str, int]) -> None:
    def url_for(mac: str, model: str) -> str:
        return f"https://prov.example.se/{model}/{mac}/"

    with PnpResponder(url_for, group=group) as responder:
        result = discover(MAC, MODEL, VERSION, group=group, timeout_s=5.0)
        assert result == PnpResult(f"https://prov.example.se/{MODEL}/{USER}/", responder.address)
        assert responder.requests == [(USER, MODEL)]
        # The phone's 200 OK to the NOTIFY reached the responder.
        assert responder.wait_until(lambda r: bool(r.acks), 3.0)
        assert [status for _call_id, status in responder.acks] == [200]


def test_http_url_refused_with_https_only_and_accepted_without(group: tuple[str, int]) -> None:
    with PnpResponder(lambda mac, model: "http://prov.example.se/", group=group) as responder:
        started = time.monotonic()
        assert discover(MAC, MODEL, VERSION, group=group, timeout_s=1.0) is None
        assert time.monotonic() - started >= 1.0
        assert responder.wait_until(lambda r: len(r.acks) == 1, 3.0)
        result = discover(MAC, MODEL, VERSION, group=group, timeout_s=3.0, https_only=False)
        assert result is not None and result.url == "http://prov.example.se/"


def test_silent_responder_gives_none_within_the_timeout(group: tuple[str, int]) -> None:
    with PnpResponder(lambda mac, model: None, group=group) as responder:
        started = time.monotonic()
        assert discover(MAC, MODEL, VERSION, group=group, timeout_s=1.0) is None
        elapsed = time.monotonic() - started
        assert 1.0 <= elapsed < 2.5
        # It answered the SUBSCRIBE 200 OK, so the phone did not send it again.
        assert responder.requests == [(USER, MODEL)]
        assert responder.acks == []


class RawFake:
    """A raw-socket plug-and-play server: group socket, unicast socket, received SUBSCRIBEs."""

    def __init__(self, group: tuple[str, int]) -> None:
        self.group = group
        self.mcast = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.mcast.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.mcast.bind(group)
        self.mcast.setsockopt(
            socket.IPPROTO_IP,
            socket.IP_ADD_MEMBERSHIP,
            socket.inet_aton(group[0]) + socket.inet_aton("127.0.0.1"),
        )
        self.uni = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.uni.bind(("127.0.0.1", 0))
        self.address = self.uni.getsockname()
        self.subscribes: queue.Queue[tuple[bytes, tuple[str, int]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        self.mcast.settimeout(0.05)
        while not self._stop.is_set():
            try:
                self.subscribes.put(self.mcast.recvfrom(65535))
            except TimeoutError:
                continue

    def __enter__(self) -> RawFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.mcast.close()
        self.uni.close()


def run_discover(**kwargs: object) -> tuple[threading.Thread, queue.Queue[PnpResult | None]]:
    """discover() in a thread; its result arrives on the queue."""
    results: queue.Queue[PnpResult | None] = queue.Queue()
    thread = threading.Thread(
        target=lambda: results.put(discover(MAC, MODEL, VERSION, **kwargs)),  # type: ignore[arg-type]
        daemon=True,
    )
    thread.start()
    return thread, results


def test_subscribe_retransmitted_with_same_call_id_and_new_cseq(group: tuple[str, int]) -> None:
    with RawFake(group) as fake:
        thread, results = run_discover(group=group, timeout_s=0.9, attempts=3)
        assert results.get(timeout=5) is None
        thread.join(timeout=5)
        seen = []
        while not fake.subscribes.empty():
            data, addr = fake.subscribes.get()
            msg = parse_message(data)
            assert msg is not None and msg.method == "SUBSCRIBE"
            seen.append((msg, addr))
    assert len(seen) == 3
    assert len({m.header("call-id") for m, _ in seen}) == 1
    assert [m.header("cseq") for m, _ in seen] == ["1 SUBSCRIBE", "2 SUBSCRIBE", "3 SUBSCRIBE"]
    branches = {parse_header_value(m.header("via") or "")[1]["branch"] for m, _ in seen}
    assert len(branches) == 3 and all(b.startswith("z9hG4bK") for b in branches)
    assert len({m.header("from") for m, _ in seen}) == 1
    assert {addr for _m, addr in seen} == {seen[0][1]}
    assert seen[0][1][0] == "127.0.0.1"


def notify(
    sub: bytes,
    fake: tuple[str, int],
    url: str,
    cseq: int,
    *,
    call_id: str | None = None,
    to_tag: str | None = None,
    content_type: str = "application/url",
    length: int | None = None,
    via: bool = True,
    eol: str = "\r\n",
) -> bytes:
    """A NOTIFY for the subscription in `sub`, with one thing possibly wrong."""
    msg = parse_message(sub)
    assert msg is not None
    sender = parse_name_addr(msg.header("from") or "")
    assert sender is not None
    tag = to_tag if to_tag is not None else sender[1]["tag"]
    body = url.encode()
    lines = [f"NOTIFY {sender[0]} SIP/2.0"]
    if via:
        lines.append(f"Via: SIP/2.0/UDP {fake[0]}:{fake[1]};branch=z9hG4bKn{cseq}")
    lines += [
        "Max-Forwards: 70",
        f"From: <sip:{USER}@{GROUP_IP}>;tag=srv1",
        f"To: <{sender[0]}>;tag={tag}",
        f"Call-ID: {call_id or msg.header('call-id')}",
        f"CSeq: {cseq} NOTIFY",
        "Event: ua-profile",
        "Subscription-State: terminated;reason=timeout",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if length is None else length}",
    ]
    return (eol.join(lines) + eol + eol).encode() + body


def test_malformed_and_foreign_notifies_are_ignored(group: tuple[str, int]) -> None:
    good_url = "https://prov.example.se/good/"
    with RawFake(group) as fake:
        thread, results = run_discover(group=group, timeout_s=5.0, attempts=1)
        sub, phone = fake.subscribes.get(timeout=5)
        bad: list[Callable[[int], bytes]] = [
            lambda n: b"\x00\xffjunk" * 50,
            lambda n: b"NOTIFY sip:x SIP/2.0\r\n\r\n",
            lambda n: notify(sub, fake.address, "https://evil/", n, call_id="other@1.2.3.4"),
            lambda n: notify(sub, fake.address, "https://evil/", n, to_tag="not-ours"),
            lambda n: notify(sub, fake.address, "https://evil/", n, content_type="text/plain"),
            lambda n: notify(sub, fake.address, "https://evil/", n, length=40),
            lambda n: notify(sub, fake.address, "https://evil/", n, via=False),
            lambda n: notify(sub, fake.address, "https://evil/", n, eol="\n"),
            lambda n: notify(sub, fake.address, "two words", n),
            lambda n: b"SIP/2.0 200 OK\r\nCall-ID: nope\r\nCSeq: 1 SUBSCRIBE\r\n\r\n",
        ]
        for number, make in enumerate(bad, 1):
            fake.uni.sendto(make(number), phone)
        good_cseq = len(bad) + 1
        fake.uni.sendto(notify(sub, fake.address, good_url, good_cseq), phone)
        assert results.get(timeout=5) == PnpResult(good_url, fake.address)
        thread.join(timeout=5)
        # The only answer the fake gets is the 200 OK to the good NOTIFY.
        fake.uni.settimeout(2.0)
        answer, _addr = fake.uni.recvfrom(65535)
        fake.uni.settimeout(0.2)
        with pytest.raises(TimeoutError):
            fake.uni.recvfrom(65535)
    ok = parse_message(answer)
    assert ok is not None and ok.status == 200
    assert ok.header("cseq") == f"{good_cseq} NOTIFY"
    sent = parse_message(notify(sub, fake.address, good_url, good_cseq))
    assert sent is not None
    for name in ("via", "from", "to", "call-id"):
        assert ok.header(name) == sent.header(name)


def test_bad_arguments_raise() -> None:
    with pytest.raises(PnpError):
        discover("not-a-mac", MODEL, VERSION, timeout_s=0.1)
    with pytest.raises(PnpError):
        discover(MAC, MODEL, VERSION, timeout_s=0.1, attempts=0)


@pytest.fixture
def responder(group: tuple[str, int]) -> Iterator[PnpResponder]:
    responder = PnpResponder(lambda mac, model: "https://x.example/", group=group).start()
    yield responder
    responder.stop()


def test_responder_ignores_junk_and_stops(responder: PnpResponder, group: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        s.sendto(b"\x00junk", group)
        s.sendto(b"SUBSCRIBE sip:x@y SIP/2.0\r\nEvent: presence\r\n\r\n", group)
    result = discover(MAC, MODEL, VERSION, group=group, timeout_s=3.0)
    assert result is not None and result.url == "https://x.example/"
    assert responder.requests == [(USER, MODEL)]
    responder.stop()
    responder.stop()  # twice is fine
    assert discover(MAC, MODEL, VERSION, group=group, timeout_s=0.3) is None
