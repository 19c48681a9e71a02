"""Fixtures that start real peers on free loopback ports and stop them by PID."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.baresip import Baresip
from tests.harness.sipp import SippRegisteredUas
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.phoneproc import LineSpec, PhoneProcess, phone_config

USERS = {f"10{n:02d}": f"pw-10{n:02d}" for n in range(1, 10)}


@pytest.fixture
def pbx(tmp_path: Path) -> Iterator[Kamailio]:
    """A running Kamailio with users 1001..1009 (password pw-<user>)."""
    with Kamailio(tmp_path / "pbx", USERS, port=free_port(), fr_inv_timeout_ms=60000) as k:
        yield k


PhoneFactory = Callable[..., PhoneProcess]


@pytest.fixture
def make_phone(tmp_path: Path) -> Iterator[PhoneFactory]:
    """Start a simulated phone registered as `user` to the PBX on `pbx_port`."""
    phones: list[PhoneProcess] = []

    def make(user: str, pbx_port: int, *, transport: str = "udp", mic_tone_hz: int = 700,
             auto_answer: bool = False, test_clock: bool = True, language: str = "en",
             extra: str = "", start: bool = True, log_level: str = "info",
             dtmf_mode: str = "rfc4733", detect_inband_dtmf: bool = False,
             line_dtmf_mode: str = "", voicemail: bool = False) -> PhoneProcess:
        line = LineSpec(user, USERS[user], f"127.0.0.1:{pbx_port}", f"Phone {user}",
                        transport, auto_answer, line_dtmf_mode)
        toml = phone_config([line], language=language, mic_tone_hz=mic_tone_hz, extra=extra,
                            dtmf_mode=dtmf_mode, detect_inband_dtmf=detect_inband_dtmf,
                            voicemail=voicemail)
        phone = PhoneProcess(tmp_path / f"phone-{user}-{len(phones)}", toml,
                             test_clock=test_clock, log_level=log_level)
        phones.append(phone)
        return phone.start() if start else phone

    yield make
    for phone in phones:
        phone.stop()


@pytest.fixture
def make_baresip(tmp_path: Path, pbx: Kamailio) -> Iterator[Callable[..., Baresip]]:
    agents: list[Baresip] = []

    def make(user: str, tone_hz: int = 1000, auto_answer: bool = False) -> Baresip:
        agent = Baresip(tmp_path / f"baresip-{user}", user, USERS[user], pbx.port,
                        tone_hz=tone_hz, auto_answer=auto_answer)
        agents.append(agent)
        agent.start()
        agent.wait_registered(10)
        return agent

    yield make
    for agent in agents:
        agent.stop()


@pytest.fixture
def make_sipp_uas(tmp_path: Path, pbx: Kamailio) -> Iterator[Callable[[str, str], object]]:
    peers: list[SippRegisteredUas] = []

    def make(user: str, mode: str) -> SippRegisteredUas:
        peer = SippRegisteredUas(user, USERS[user], pbx.port, mode,
                                 workdir=tmp_path / f"sipp-{user}")
        peers.append(peer)
        peer.start()
        peer.wait_registered(10)
        return peer

    yield make
    for peer in peers:
        with contextlib.suppress(Exception):
            peer.stop()


def registered(phone: PhoneProcess) -> bool:
    return all(line["registered"] for line in phone.status()["lines"])


def wait_registered(phone: PhoneProcess, timeout: float = 10.0) -> None:
    phone.wait_status(lambda s: all(line["registered"] for line in s["lines"]), timeout,
                      "the phone to register")
