"""Registration against a real Kamailio: No service -> idle, loss, RFC 5626 back-off, 503."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import USERS, PhoneFactory, wait_registered
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port

pytestmark = pytest.mark.e2e


def line_status(phone) -> dict:
    return phone.status()["lines"][0]


def wait_failed(phone, failures: int) -> dict:
    return phone.wait_status(
        lambda s: s["lines"][0] if s["lines"][0]["failures"] == failures
        and s["lines"][0]["next_retry_in"] is not None else None,
        10, f"registration failure number {failures}")


def test_registers_over_udp_and_shows_the_idle_screen(pbx: Kamailio,
                                                      make_phone: PhoneFactory) -> None:
    phone = make_phone("1001", pbx.port)
    wait_registered(phone)
    text = phone.wait_screen(lambda t: "No service" not in t, 5, "the idle screen")
    assert text.splitlines()[1] == "1001 Phone 1001"
    assert pbx.registered_contacts("1001")
    assert phone.leds()["line1"] == {"pattern": "on", "colour": "green"}


def test_no_service_until_the_pbx_answers_then_idle(tmp_path: Path,
                                                   make_phone: PhoneFactory) -> None:
    port = free_port()
    phone = make_phone("1001", port, transport="tcp")
    failed = wait_failed(phone, 1)
    assert "No service" in phone.screen_text()
    assert phone.leds()["line1"] == {"pattern": "on", "colour": "red"}
    assert 30 <= failed["next_retry_in"] <= 60  # 50-100 % of min(1800, 30 * 2**1)
    with Kamailio(tmp_path / "pbx", USERS, port=port):
        phone.advance(failed["next_retry_in"])
        wait_registered(phone)
        phone.wait_screen(lambda t: "No service" not in t, 5, "the idle screen")


def test_pbx_restart_backoff_and_retry_after(tmp_path: Path, make_phone: PhoneFactory) -> None:
    port = free_port()
    pbx = Kamailio(tmp_path / "pbx", USERS, port=port).start()
    try:
        phone = make_phone("1001", port, transport="tcp")
        wait_registered(phone)
        pbx.stop()
        phone.wait_text("No service", 10)
        first = wait_failed(phone, 1)
        assert 30 <= first["next_retry_in"] <= 60

        # still down: the next attempt fails too and the wait doubles (RFC 5626 4.5)
        phone.advance(first["next_retry_in"])
        second = wait_failed(phone, 2)
        assert 60 <= second["next_retry_in"] <= 120

        # back, but in maintenance: 503 with Retry-After 120 sets the wait exactly
        pbx = Kamailio(tmp_path / "pbx2", USERS, port=port, maintenance=True,
                       retry_after=120).start()
        phone.advance(second["next_retry_in"])
        third = wait_failed(phone, 3)
        assert third["code"] == 503
        assert third["next_retry_in"] == pytest.approx(120, abs=1)
        assert "No service" in phone.screen_text()

        pbx.set_maintenance(False)
        phone.advance(third["next_retry_in"])
        wait_registered(phone)
        phone.wait_screen(lambda t: "No service" not in t, 5, "the idle screen")
        assert line_status(phone)["failures"] == 0
    finally:
        pbx.stop()


def test_wrong_password_is_shown_to_the_technician(pbx: Kamailio,
                                                   make_phone: PhoneFactory) -> None:
    phone = make_phone("1001", pbx.port, start=False)
    phone.config_toml = phone.config_toml.replace(USERS["1001"], "wrong")
    phone.start()
    failed = wait_failed(phone, 1)
    assert failed["code"] in (401, 403)
    text = phone.screen_text()
    assert "No service" in text
    assert str(failed["code"]) in text
