"""Discovery takes only URLs a phone may be sent to, and keeps the one it found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.config.schema import ProvisioningConfig
from provisioning.discovery import discover


def settings(lease: Path, **more: object) -> ProvisioningConfig:
    return ProvisioningConfig(discovery=["dhcp"], dhcp_leases=[str(lease)], **more)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["https://admin:secret@prov.example.se/",
                                 "http://prov.example.se/", "https://prov.example.se/?x=1",
                                 "https:///nohost", "ftp://prov.example.se/"])
def test_a_url_a_phone_may_not_be_sent_to_is_passed_over(
        tmp_path: Path, bad: str, caplog: pytest.LogCaptureFixture) -> None:
    lease = tmp_path / "dhcp.json"
    lease.write_text(json.dumps({"160": bad, "114": "https://prov.example.se/luren/"}))
    found = discover(settings(lease), tmp_path, mac="020000001001", model="sim")
    assert found is not None and found.url == "https://prov.example.se/luren/"
    assert "ignored" in caplog.text and "secret" not in caplog.text
    kept = json.loads((tmp_path / "provisioning" / "found.json").read_text())
    assert kept["url"] == found.url


def test_plain_http_with_allow_http(tmp_path: Path) -> None:
    lease = tmp_path / "dhcp.json"
    lease.write_text(json.dumps({"114": "http://lab.example.se/"}))
    assert discover(settings(lease), tmp_path, mac="", model="sim") is None
    found = discover(settings(lease, allow_http=True), tmp_path, mac="", model="sim")
    assert found is not None and found.url == "http://lab.example.se/"


def test_nothing_found(tmp_path: Path) -> None:
    assert discover(settings(tmp_path / "none.json"), tmp_path, mac="", model="sim") is None
    assert not (tmp_path / "provisioning" / "found.json").exists()
