"""The phone side of provisioning without a server: MAC names, the file itself when no URL is
set, and what is left when nothing can be fetched. With servers: tests/e2e/test_provisioning.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.config import ConfigError
from provisioning.client import ProvisioningClient, interface_mac, normalise_mac

LINE = {"user": "1001", "password": "pw", "registrar": "127.0.0.1:5060"}


@pytest.mark.parametrize("text", ["02:00:00:00:10:01", "02-00-00-00-10-01", "0200.0000.1001",
                                  "020000001001", " 02:00:00:00:10:01\n"])
def test_mac_spellings(text: str) -> None:
    assert normalise_mac(text) == "020000001001"


@pytest.mark.parametrize("text", ["", "02:00:00:00:10", "zz0000001001", "02:00:00:00:10:01:02"])
def test_not_a_mac(text: str) -> None:
    with pytest.raises(ValueError):
        normalise_mac(text)


def test_interface_mac_skips_loopback_and_zero(tmp_path: Path) -> None:
    for name, address in (("lo", "00:00:00:00:00:00"), ("dummy0", "00:00:00:00:00:00"),
                          ("eth0", "DC:A6:32:01:02:03"), ("wlan0", "dc:a6:32:09:09:09")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "address").write_text(address + "\n")
    assert interface_mac(tmp_path) == "dca632010203"
    assert interface_mac(tmp_path / "none") == ""


def test_no_url_is_the_file_itself(tmp_path: Path) -> None:
    client = ProvisioningClient(tmp_path, model="sim", mac="020000001001")
    config, outcome = client.run({"lines": [LINE]})
    assert config.lines[0].user == "1001"
    assert outcome.ok and outcome.message == "not provisioned (no URL)"


def test_unreachable_server_falls_back_to_the_file(tmp_path: Path) -> None:
    client = ProvisioningClient(tmp_path, model="sim", mac="020000001001")
    bootstrap = {"lines": [LINE], "provisioning": {
        "url": "https://127.0.0.1:9/", "trusted_keys": [], "timeout": 1}}
    config, outcome = client.run(bootstrap)
    assert config.lines[0].user == "1001"
    assert not outcome.ok and not outcome.from_cache
    assert "refused" in outcome.message


def test_no_server_and_nothing_kept_starts_without_lines(tmp_path: Path) -> None:
    client = ProvisioningClient(tmp_path, model="sim", mac="020000001001")
    config, outcome = client.run({"provisioning": {"url": "https://127.0.0.1:9/",
                                                   "timeout": 1}})
    assert config.lines == [] and not outcome.ok  # waits for its lines, says why
    assert "refused" in outcome.message
    with pytest.raises(ConfigError, match="lines"):  # a broken own file still is an error
        client.run({"provisioning": {"url": "https://127.0.0.1:9/", "timeout": 1},
                    "lines": [{"user": "1001"}]})


def test_the_device_key_is_made_once(tmp_path: Path) -> None:
    first = ProvisioningClient(tmp_path, model="sim", mac="").device_public_key()
    assert first == ProvisioningClient(tmp_path, model="sim", mac="").device_public_key()
    key_file = tmp_path / "provisioning" / "device.key"
    assert len(first) == 44 and key_file.stat().st_mode & 0o077 == 0  # readable by us only
