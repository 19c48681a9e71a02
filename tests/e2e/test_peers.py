"""The real SIP peers the simulated office and the e2e tests rely on actually work.

Kamailio (tools/pbx), baresip, SIPp and the audio checks (tests/harness) are
exercised against each other on 127.0.0.1 with free ports only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.audio_check import dominant_frequency, rms
from tests.harness.baresip import Baresip
from tests.harness.sipp import SippRegisteredUas, run_uac_load
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.pbx.process import process_alive
from tools.pbx.sipprobe import SipResponse, sip_request
from tools.pbx.waiting import wait_until

pytestmark = pytest.mark.e2e

USERS = {"2001": "pw-2001", "2002": "pw-2002", "2003": "pw-2003", "2004": "pw-2004"}
CALL_AUDIO_SECONDS = 1.5
# G.711 decoded by baresip: 8000 samples/s, mono, 16 bit; WAV header 44 bytes.
WAV_BYTES_PER_SECOND = 16000

PhoneFactory = Callable[..., Baresip]


@pytest.fixture
def pbx(tmp_path: Path) -> Iterator[Kamailio]:
    with Kamailio(tmp_path / "pbx", USERS, free_port()) as running:
        yield running


@pytest.fixture
def phone(tmp_path: Path, pbx: Kamailio) -> Iterator[PhoneFactory]:
    """Factory: phone("2001", tone_hz=440, auto_answer=False) -> a registered Baresip."""
    started: list[Baresip] = []

    def make(user: str, **options: Any) -> Baresip:
        ua = Baresip(tmp_path / f"ua-{user}", user, USERS[user], pbx.port, **options)
        started.append(ua)
        ua.start().wait_registered()
        return ua

    yield make
    for ua in started:
        ua.stop()


def register_raw(pbx: Kamailio, user: str) -> SipResponse:
    """A fresh REGISTER for `user`, sent by hand over UDP, without credentials."""
    return sip_request(
        pbx.port, "REGISTER", f"sip:{pbx.address}",
        from_uri=pbx.aor(user), extra_headers={"Expires": "60"},
    )


def received_seconds(ua: Baresip) -> float:
    """Seconds of audio recorded so far in the phone's newest received-audio file."""
    files = ua.received_audio_files()
    return (files[-1].stat().st_size - 44) / WAV_BYTES_PER_SECOND if files else 0.0


def test_call_carries_each_phones_tone_to_the_other(pbx: Kamailio, phone: PhoneFactory) -> None:
    caller = phone("2001", tone_hz=440)
    callee = phone("2002", tone_hz=1000, auto_answer=True)

    caller.dial(caller.uri_of("2002"))
    caller.wait_event("CALL_ESTABLISHED")
    callee.wait_event("CALL_ESTABLISHED")
    for ua in (caller, callee):
        wait_until(lambda ua=ua: received_seconds(ua) >= CALL_AUDIO_SECONDS, 10,
                   what=f"{CALL_AUDIO_SECONDS}s of audio at {ua.user}")
    caller.hangup()
    callee.wait_event("CALL_CLOSED")
    caller.wait_event("CALL_CLOSED")

    (heard_by_caller,) = caller.wait_audio_files()
    (heard_by_callee,) = callee.wait_audio_files()
    assert dominant_frequency(heard_by_caller) == pytest.approx(1000, abs=15)
    assert dominant_frequency(heard_by_callee) == pytest.approx(440, abs=15)
    assert rms(heard_by_caller, skip_seconds=0.5) > 0.05


def test_calling_an_unregistered_user_gets_404(pbx: Kamailio, phone: PhoneFactory) -> None:
    caller = phone("2001")
    assert pbx.registered_contacts("2004") == []

    caller.dial(caller.uri_of("2004"))

    assert caller.wait_event("CALL_CLOSED")["param"] == "404 Not Found"


def test_maintenance_answers_register_with_503_and_retry_after(pbx: Kamailio) -> None:
    assert register_raw(pbx, "2001").status == 401  # normal: digest challenge

    pbx.set_maintenance(True, retry_after=42)
    refused = register_raw(pbx, "2001")
    pbx.set_maintenance(False)

    assert (refused.status, refused.reason) == (503, "Service Unavailable")
    assert refused.header("Retry-After") == "42"
    assert register_raw(pbx, "2001").status == 401


def test_pbx_can_start_in_maintenance(tmp_path: Path) -> None:
    with Kamailio(tmp_path / "pbx", USERS, free_port(), maintenance=True, retry_after=7) as pbx:
        refused = register_raw(pbx, "2002")
    assert refused.status == 503
    assert refused.header("Retry-After") == "7"


def test_busy_sipp_phone_rejects_calls_with_486(pbx: Kamailio, phone: PhoneFactory) -> None:
    caller = phone("2001")
    with SippRegisteredUas("2003", USERS["2003"], pbx.port, "busy") as busy:
        busy.wait_registered()
        assert pbx.registered_contacts("2003") == [f"sip:2003@127.0.0.1:{busy.port}"]
        for _ in range(2):
            caller.dial(caller.uri_of("2003"))
            assert caller.wait_event("CALL_CLOSED")["param"] == "486 Busy Here"


def test_ringing_sipp_phone_rings_until_cancelled(pbx: Kamailio, phone: PhoneFactory) -> None:
    caller = phone("2001")
    with SippRegisteredUas("2003", USERS["2003"], pbx.port, "ringing") as ringing:
        ringing.wait_registered()
        for _ in range(2):
            caller.dial(caller.uri_of("2003"))
            caller.wait_event("CALL_RINGING")
            caller.hangup()
            caller.wait_event("CALL_CLOSED")


def test_uac_load_through_the_pbx(pbx: Kamailio, phone: PhoneFactory) -> None:
    callee = phone("2002", auto_answer=True)

    result = run_uac_load(
        f"sip:2002@{pbx.address}", calls=4, rate=10, concurrent_limit=2,
        call_duration_ms=200, timeout=15,
    )

    assert (result.successful, result.failed, result.returncode) == (4, 0, 0), result.log
    for _ in range(4):
        callee.wait_event("CALL_ESTABLISHED")
        callee.wait_event("CALL_CLOSED")


def test_stopping_leaves_no_process_behind(tmp_path: Path) -> None:
    pbx = Kamailio(tmp_path / "pbx", USERS, free_port()).start()
    ua = Baresip(tmp_path / "ua", "2001", USERS["2001"], pbx.port).start()
    uas = SippRegisteredUas("2003", USERS["2003"], pbx.port, "busy").start()
    ua.wait_registered()
    uas.wait_registered()
    pids = pbx.pids() + ua.pids() + uas.pids()
    assert len(pids) >= 4 and all(process_alive(pid) for pid in pids)

    for peer in (uas, ua, pbx):
        peer.stop()
        peer.stop()  # idempotent

    assert [pid for pid in pids if process_alive(pid)] == []
