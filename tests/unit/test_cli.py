"""The `luren` command line: help, config checks, and refusing a bad config."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.cli import main


def test_help_explains_run_and_office(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "run one phone" in out and "run the simulated office" in out


def test_invalid_config_exits_non_zero_names_the_key_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "phone.toml"
    config.write_text('[[lines]]\nuser = "1001"\nregistrar = "pbx"\ntransport = "tls"\n')
    before = (config.read_bytes(), config.stat().st_mtime_ns)
    data_dir = tmp_path / "data"
    code = main(["run", "--config", str(config), "--data-dir", str(data_dir)])
    assert code == 2
    err = capsys.readouterr().err
    assert "lines[0].transport" in err and "udp, tcp" in err
    assert (config.read_bytes(), config.stat().st_mtime_ns) == before
    assert not data_dir.exists()


def test_missing_config_is_a_clear_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["config", "check", str(tmp_path / "nope.toml")])
    assert code == 2
    assert "nope.toml" in capsys.readouterr().err


def test_open_api_beyond_loopback_needs_a_token(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "phone.toml"
    config.write_text('[[lines]]\nuser = "1001"\nregistrar = "pbx"\n')
    code = main(["run", "--config", str(config), "--data-dir", str(tmp_path / "d"),
                 "--api", "0.0.0.0:8080"])
    assert code == 2
    assert "api.token" in capsys.readouterr().err


def test_default_config_checks_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "default"]) == 0
    config = tmp_path / "default.toml"
    config.write_text(capsys.readouterr().out)
    assert main(["config", "check", str(config)]) == 0


def test_unknown_board_profile_is_refused(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "phone.toml"
    config.write_text('[[lines]]\nuser = "1001"\nregistrar = "pbx"\n')
    code = main(["run", "--config", str(config), "--data-dir", str(tmp_path / "d"),
                 "--board", "no-such-board"])
    assert code == 2
    assert "no-such-board" in capsys.readouterr().err


def test_a_board_whose_hardware_is_missing_names_the_part(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "phone.toml"
    config.write_text('[[lines]]\nuser = "1001"\nregistrar = "pbx"\n')
    code = main(["run", "--config", str(config), "--data-dir", str(tmp_path / "d"),
                 "--board", "rpi-deskphone", "--api", "127.0.0.1:0"])
    assert code == 1
    message = caplog.text
    assert "the board cannot start" in message
    assert "RPi.GPIO" in message or "/dev/i2c" in message
