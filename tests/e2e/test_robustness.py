"""Hostile input and load on the phone's SIP port: it stays up, registered and usable."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from tests.e2e.conftest import PhoneFactory, wait_registered
from tests.harness.sipp import run_uac_load
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneProcess

pytestmark = pytest.mark.e2e


def options_request(port: int, branch: str, body_pad: int = 0) -> bytes:
    pad = "X-Pad: " + "a" * body_pad + "\r\n" if body_pad else ""
    return (f"OPTIONS sip:1001@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\n"
            f"To: <sip:1001@127.0.0.1>\r\nCall-ID: {branch}@127.0.0.1\r\n"
            f"CSeq: 1 OPTIONS\r\n{pad}Content-Length: 0\r\n\r\n").encode()


def ask_options(port: int) -> bytes:
    """Send an OPTIONS from our own socket and return the phone's answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        own = sock.getsockname()[1]
        request = options_request(port, f"probe{own}").replace(
            b"127.0.0.1:9;", f"127.0.0.1:{own};".encode())
        sock.sendto(request, ("127.0.0.1", port))
        return sock.recv(65535)


def assert_alive_and_registered(phone: PhoneProcess) -> None:
    assert phone.process.running(), phone.log_tail()
    assert ask_options(phone.sip_port).startswith(b"SIP/2.0 200")
    assert all(line["registered"] for line in phone.status()["lines"])


def test_garbage_on_the_sip_port(pbx: Kamailio, make_phone: PhoneFactory) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    rng = random.Random(4475)
    target = ("127.0.0.1", phone.sip_port)
    valid = options_request(phone.sip_port, "valid")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(300):  # random bytes
            udp.sendto(rng.randbytes(rng.randint(1, 1400)), target)
        for n in range(200):  # truncated messages
            udp.sendto(options_request(phone.sip_port, f"t{n}")[: rng.randint(1, len(valid))],
                       target)
        udp.sendto(options_request(phone.sip_port, "big", body_pad=60000), target)  # oversized
        udp.sendto(b"\r\n" * 30000, target)
        udp.sendto(b"INVITE sip:x SIP/2.0\r\nContent-Length: 999999\r\n\r\n", target)
        udp.sendto(b"\x00" * 65000, target)
    for _ in range(20):  # and over TCP: garbage, a header that never ends, a cut message
        with socket.create_connection(target, timeout=5) as tcp:
            tcp.sendall(rng.randbytes(rng.randint(1, 4000)))
    with socket.create_connection(target, timeout=5) as tcp:
        tcp.sendall(b"OPTIONS sip:1001@127.0.0.1 SIP/2.0\r\nX-Long: " + b"a" * 200_000)
    with socket.create_connection(target, timeout=5) as tcp:
        tcp.sendall(valid[:-10])
    assert_alive_and_registered(phone)
    phone.dial("1009")  # and it still places calls
    phone.wait_text("Unknown number", 10)


def idle(status: dict) -> dict | None:
    """The status once no call is left and the audio path is closed (the end screen of an
    auto-answered call keeps the speaker open for a few seconds), else None."""
    quiet = not status["calls"] and status["engine"]["calls"] == 0 \
        and not status["terminals"][0]["audio_path"]
    return status if quiet else None


def test_sipp_load_then_normal_calls(pbx: Kamailio, make_phone: PhoneFactory,
                                     make_baresip, tmp_path: Path) -> None:
    # call waiting off: calls beyond the one in progress are refused at once, not kept ringing
    phone = make_phone("1001", pbx.port, auto_answer=True,
                       extra="[calls]\ncall_waiting = false\n")
    wait_registered(phone)
    far = make_baresip("1002", auto_answer=True)
    # one ordinary call first, so the baseline includes everything a call allocates once
    far.dial(far.uri_of("1001"))
    far.wait_event("CALL_ESTABLISHED", 10)
    far.hangup()
    phone.wait_status(idle, 10, "idle")
    # A first batch brings memory to its working size: pjsip keeps each finished
    # transaction for Timer J (32 s) and reuses freed pools, so RSS grows during the first
    # 32 s of steady load and then stays flat. The baseline is taken after it.
    warm = run_uac_load(f"127.0.0.1:{phone.sip_port}", calls=300, rate=9, concurrent_limit=1,
                        call_duration_ms=50, timeout=90, workdir=tmp_path / "sipp-warm")
    assert warm.successful == 300, warm.log[-2000:]
    before = phone.wait_status(
        idle, 10, "idle")

    # a few hundred calls more, one at a time, under the admission limit (10 new calls/s)
    result = run_uac_load(f"127.0.0.1:{phone.sip_port}", calls=300, rate=9,
                          concurrent_limit=1, call_duration_ms=50, timeout=90,
                          workdir=tmp_path / "sipp-load")
    assert result.successful == 300, result.log[-2000:]
    assert result.failed == 0

    # conference ports are freed on the media clock's next tick: wait for the count to settle
    ports = before["engine"]["media_ports"]
    after = phone.wait_status(
        lambda s: idle(s) and s["engine"]["media_ports"] <= ports and s, 10,
        f"every call to be gone and no more than {ports} media ports")
    growth_kb = after["process"]["rss_kb"] - before["process"]["rss_kb"]
    assert growth_kb < 1024, f"RSS grew by {growth_kb} kB over 300 calls"

    # then a flood far beyond the limit: refused (486/503), never an abort of the SIP stack
    flood = run_uac_load(f"127.0.0.1:{phone.sip_port}", calls=200, rate=100,
                         concurrent_limit=20, call_duration_ms=0, timeout=60,
                         workdir=tmp_path / "sipp-flood")
    assert flood.created == 200
    assert flood.failed > 0 and flood.successful > 0, flood.log[-2000:]
    phone.wait_status(lambda s: idle(s) and s["engine"]["media_ports"] <= ports and s, 10,
                      f"every call to be gone and no more than {ports} media ports")
    assert_alive_and_registered(phone)

    # and the next calls, both ways, work
    phone.wait_screen(lambda t: t.splitlines()[1:2] == ["1001 Phone 1001"], 10, "idle")
    phone.dial("1002")
    phone.wait_text("In call", 10)
    far.wait_event("CALL_ESTABLISHED", 10)
    phone.key("speaker")
    far.wait_event("CALL_CLOSED", 10)
    phone.wait_status(lambda s: not s["calls"], 10, "no calls")
    far.dial(far.uri_of("1001"))
    phone.wait_text("In call", 10)
    far.hangup()
    wait_until(lambda: not phone.status()["calls"], 10, what="the call to end")
