"""The console's command table (firmware/console/commands.py) on a real `Phone`: a recording SIP
engine, a manual clock and a real data directory with its `OverrideStore`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from board.parts import LedPattern, LedState
from firmware.config.overrides import OverrideStore
from firmware.console import netinfo
from firmware.console.commands import (
    COMMANDS,
    CONFIRM_FACTORY_RESET,
    FACTORY_RESET_MARK,
    MAX_TAIL,
    Command,
    Reply,
    Services,
    completions,
    execute,
    find,
    parse,
    wipe_for_factory_reset,
)
from firmware.console.masking import MASK
from tests.unit.console_support import (
    API_TOKEN,
    LDAP_PASSWORD,
    LINE_PASSWORD,
    PROV_PASSWORD,
    Rig,
    base_config,
    make_rig,
)

SECRETS = (LINE_PASSWORD, API_TOKEN, PROV_PASSWORD, LDAP_PASSWORD)
STREAMS = ("log follow", "test keys", "test leds", "test display", "test audio")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = make_rig(tmp_path / "data")
    yield made
    made.close()


@pytest.fixture
def services(rig: Rig) -> Services:
    return rig.services()


@pytest.fixture
def restore_levels() -> Iterator[None]:
    """Put the phone's logger levels back after a test that sets them."""
    loggers = [logging.getLogger(name) for name in ("luren", "luren.sip")]
    levels = [log.level for log in loggers]
    yield
    for log, level in zip(loggers, levels, strict=True):
        log.setLevel(level)


def run(services: Services, line: str, *, via_api: bool = False) -> Reply:
    """One command line, the way the console and the control API run it."""
    return asyncio.run(execute(services, line, via_api=via_api))


def shown(reply: Reply) -> str:
    """Everything a reply shows: its lines and its data."""
    return "\n".join(reply.lines) + "\n" + json.dumps(reply.data)


def assert_no_secret(reply: Reply) -> None:
    """None of the config's secrets anywhere in the reply."""
    text = shown(reply)
    assert not [secret for secret in SECRETS if secret in text], text


# --- parsing, finding, help ---------------------------------------------------------------------


def test_parse_splits_words_and_keeps_quoted_text_together() -> None:
    assert parse("config set device.name 'Anna Berg'") == ["config", "set", "device.name",
                                                            "Anna Berg"]


@pytest.mark.parametrize("line", ["config set device.name 'Anna", 'sip "register'])
def test_unbalanced_quotes_come_back_as_a_reply_in_words(services: Services, line: str) -> None:
    with pytest.raises(ValueError, match="close the quotes"):
        parse(line)
    reply = run(services, line)
    assert not reply.ok
    assert reply.lines == [reply.lines[0]] and "close the quotes" in reply.lines[0]


def test_an_empty_line_is_ok_and_says_nothing(services: Services) -> None:
    reply = run(services, "   ")
    assert reply.ok and reply.lines == []


def test_an_unknown_command_says_so_with_a_hint(services: Services) -> None:
    reply = run(services, "stat")
    assert not reply.ok
    assert "unknown command 'stat'" in reply.lines[0]
    assert "did you mean status?" in reply.lines[0] and "(type help)" in reply.lines[0]


def test_an_unknown_command_without_a_near_one_has_no_hint(services: Services) -> None:
    reply = run(services, "frobnicate now")
    assert not reply.ok
    assert reply.lines == ["unknown command 'frobnicate' (type help)"]


def test_find_prefers_the_two_word_command() -> None:
    found, rest = find(["sip", "register", "1"])
    assert found is COMMANDS["sip register"] and rest == ["1"]
    found, rest = find(["sip", "7"])
    assert found is COMMANDS["sip"] and rest == ["7"]
    assert find(["nothing", "here"]) == (None, ["nothing", "here"])
    assert find([]) == (None, [])


def test_completions_continue_whole_command_names() -> None:
    assert completions("sip re") == ["sip register"]
    assert completions("  sip re") == ["sip register"]
    assert completions("con") == ["config", "config get", "config reset", "config set"]
    assert completions("help s") == ["help sip", "help status"]
    assert completions("sip register") == []
    assert completions("zz") == []


def test_help_lists_every_command(services: Services) -> None:
    reply = run(services, "help")
    assert reply.ok
    text = "\n".join(reply.lines)
    for cmd in COMMANDS.values():
        assert f"  {cmd.usage}" in reply.lines, cmd.name
    assert "Tab completes" in text
    assert all(len(line) <= 80 for line in reply.lines)


def test_help_for_one_command_and_its_subcommands(services: Services) -> None:
    reply = run(services, "help sip")
    assert reply.ok
    assert [text.split("\n")[0] for text in reply.lines] == [
        "sip", "sip log LEVEL", "sip register [LINE]", "sip trace [N]"]
    assert run(services, "help sip trace").lines == [
        f"sip trace [N]\n    {COMMANDS['sip trace'].summary}"]


def test_help_for_an_unknown_command_fails(services: Services) -> None:
    reply = run(services, "help frob")
    assert not reply.ok and "no command 'frob'" in reply.lines[0]


# --- status and sip -------------------------------------------------------------------------


def test_status_shows_version_lines_calls_and_addresses(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    interfaces = [netinfo.Interface("lo", True, "", ["127.0.0.1/8"], loopback=True),
                  netinfo.Interface("eth0", True, "02:00:00:00:10:01", ["192.0.2.10/24"])]
    monkeypatch.setattr(netinfo, "addresses", lambda: interfaces)
    reply = run(services, "status")
    assert reply.ok
    assert reply.lines[0].startswith("Luren test, up 00:00:")
    assert "firmware: slots not in use" in reply.lines
    assert "addresses: eth0 192.0.2.10/24" in reply.lines  # loopback left out
    assert "  line 1 1001: registered" in reply.lines
    assert "calls: 0" in reply.lines
    assert any(line.startswith("referral: ") for line in reply.lines)
    assert reply.data["lines"][0]["user"] == "1001"
    assert [i["name"] for i in reply.data["addresses"]] == ["lo", "eth0"]
    assert_no_secret(reply)


def test_sip_shows_each_line(services: Services) -> None:
    reply = run(services, "sip")
    assert reply.ok and reply.lines == ["  line 1 1001: registered"]
    assert reply.data["lines"][0]["registered"] is True
    assert not run(services, "sip bogus").ok


@pytest.mark.parametrize("line", ["sip register", "sip register 1"])
def test_sip_register_asks_the_engine_to_register(rig: Rig, services: Services,
                                                  line: str) -> None:
    before = len(rig.sip.sent)
    reply = run(services, line)
    assert reply.ok and reply.lines == ["line 1: registering"]
    assert rig.sip.sent[before:] == [("register", 0)]
    assert run(services, "sip").lines[0].startswith("  line 1 1001: registering")


@pytest.mark.parametrize("arg", ["0", "2", "x", "1 1", "-1"])
def test_sip_register_with_a_bad_line_registers_nothing(rig: Rig, services: Services,
                                                        arg: str) -> None:
    before = len(rig.sip.sent)
    reply = run(services, f"sip register {arg}")
    assert not reply.ok
    assert reply.lines == ["sip register: LINE must be a number from 1 to 1"]
    assert rig.sip.sent[before:] == []


def test_sip_trace_shows_messages_masked(rig: Rig) -> None:
    asked: list[int] = []
    message = (f"REGISTER sip:pbx SIP/2.0\r\nAuthorization: Digest username=\"1001\", "
               f"response=\"9f8e7d\"\r\nX-Debug: {LINE_PASSWORD}\r\n\r\n")

    def trace(count: int) -> list[str]:
        asked.append(count)
        return [message]

    services = rig.services(sip_trace=trace)
    reply = run(services, "sip trace 3")
    assert reply.ok
    assert reply.lines == ["REGISTER sip:pbx SIP/2.0", f"Authorization: {MASK}",
                           f"X-Debug: {MASK}", "--"]
    assert "9f8e7d" not in shown(reply)
    assert_no_secret(reply)
    run(services, "sip trace 100000")
    run(services, "sip trace")
    assert asked == [3, 200, 10]
    assert not run(services, "sip trace many").ok


def test_sip_trace_without_messages(services: Services) -> None:
    assert run(services, "sip trace").lines == ["no SIP messages yet"]


@pytest.mark.usefixtures("restore_levels")
def test_sip_log_sets_the_sip_engine_level(services: Services) -> None:
    reply = run(services, "sip log DEBUG")
    assert reply.ok and reply.lines == ["SIP log level: debug"]
    assert logging.getLogger("luren.sip").level == logging.DEBUG
    bad = run(services, "sip log loud")
    assert not bad.ok and "unknown level 'loud'" in bad.lines[0]
    assert not run(services, "sip log").ok


# --- config -----------------------------------------------------------------------------------


def test_config_shows_everything_with_secrets_masked(services: Services) -> None:
    reply = run(services, "config")
    assert reply.ok
    assert "[[lines]]" in reply.lines and 'user = "1001"' in reply.lines
    assert f"password = {MASK}" in reply.lines
    assert reply.data["config"]["lines"][0]["password"] == MASK
    assert reply.data["config"]["api"]["token"] == MASK
    assert_no_secret(reply)


def test_config_shows_one_table(services: Services) -> None:
    reply = run(services, "config sip")
    assert reply.ok and reply.lines[0] == "[sip]" and "port = 5060" in reply.lines
    assert list(reply.data["config"]) == ["sip"]
    bad = run(services, "config nosuch")
    assert not bad.ok and "no table 'nosuch'" in bad.lines[0]


def test_config_get_one_key(services: Services) -> None:
    reply = run(services, "config get sip.port")
    assert reply.ok and reply.lines == ["sip.port = 5060"]
    assert reply.data == {"key": "sip.port", "value": 5060}
    assert run(services, 'config get device.language').lines == ['device.language = "sv"']


@pytest.mark.parametrize("key", ["api.token", "provisioning.password", "directory.ldap_password"])
def test_config_get_of_a_secret_shows_no_secret(services: Services, key: str) -> None:
    reply = run(services, f"config get {key}")
    assert reply.ok and reply.lines == [f"{key} = {MASK}"]
    assert_no_secret(reply)


@pytest.mark.parametrize("line", ["config get", "config get a b", "config get sip.nope",
                                  "config get nope"])
def test_config_get_refuses_what_is_not_one_key(services: Services, line: str) -> None:
    assert not run(services, line).ok


def test_config_set_language_is_stored_and_applied(rig: Rig, services: Services) -> None:
    reply = run(services, "config set device.language en")
    assert reply.ok and reply.lines[0].startswith("device.language set")
    assert rig.phone.config.device.language == "en"
    assert json.loads(rig.store.path.read_text()) == {"device": {"language": "en"}}
    weekday = rig.phone.wall_time().strftime("%a")  # English in the C locale
    assert weekday in rig.phone.terminals[0].board.display.rows[0]
    assert run(services, "config get device.language").lines == ['device.language = "en"']


def test_config_reset_drops_the_local_setting(rig: Rig, services: Services) -> None:
    run(services, "config set device.language en")
    reply = run(services, "config reset device.language")
    assert reply.ok and reply.lines == ["device.language: local setting dropped"]
    assert rig.phone.config.device.language == "sv"
    assert json.loads(rig.store.path.read_text()) == {}
    assert not run(services, "config reset").ok


@pytest.mark.parametrize(("line", "words"), [
    ("config set api.token x", "is a secret"),
    ("config set console.password_hash x", "is a secret"),
    ("config set lines[0].password x", "is inside a list"),
    ("config set device.language xx", "must be one of"),
    ("config set sip.port many", "sip.port"),
    ("config set no.such 1", "unknown key"),
    ("config set sip 1", "is a table"),
    ("config set device.language", "give a key and a value"),
])
def test_config_set_refuses_with_words_and_stores_nothing(rig: Rig, services: Services,
                                                          line: str, words: str) -> None:
    before = rig.phone.config
    reply = run(services, line)
    assert not reply.ok
    assert words in reply.lines[0]
    assert rig.phone.config is before
    assert not rig.store.path.exists()


def test_a_technician_may_set_sip_port(rig: Rig, services: Services) -> None:
    reply = run(services, "config set sip.port 5070")
    assert reply.ok
    assert rig.phone.config.sip.port == 5070
    assert rig.store.get("sip.port") == 5070
    assert run(services, "config get sip.port").lines == ["sip.port = 5070"]


def test_a_technician_setting_survives_a_restart(rig: Rig, services: Services) -> None:
    assert "kept across restarts" in run(services, "config set sip.port 5070").lines[0]
    after_restart = OverrideStore(rig.store.path, base=base_config())
    assert after_restart.problems == []
    assert after_restart.apply().sip.port == 5070


def test_config_set_on_a_phone_without_local_settings(
        rig: Rig, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rig.phone, "overrides", None)
    assert "keeps no local settings" in run(services, "config set device.language en").lines[0]
    assert "keeps no local settings" in run(services, "config reset device.language").lines[0]


# --- prov ----------------------------------------------------------------------------------


def test_prov_on_a_phone_never_provisioned(services: Services) -> None:
    reply = run(services, "prov")
    assert reply.ok
    assert reply.lines == ["URL: none", "source: none", "not provisioned"]
    assert not run(services, "prov extra").ok


def test_prov_shows_the_last_run(rig: Rig, services: Services) -> None:
    rig.phone.provisioning = {"url": "https://prov.example.se/l/", "at": "12:00", "ok": False,
                              "message": "HTTP 503", "from_cache": True,
                              "restart_needed": ["sip.port"]}
    reply = run(services, "prov")
    assert reply.lines[0] == "URL: https://prov.example.se/l/"
    assert "last run: 12:00: FAILED" in reply.lines and "  HTTP 503" in reply.lines
    assert "  running on the last-known-good files" in reply.lines
    assert "  restart needed for: sip.port" in reply.lines


def test_prov_url_writes_found_json(rig: Rig, services: Services) -> None:
    reply = run(services, "prov url https://prov.example.se/luren/")
    assert reply.ok and reply.lines[0] == "provisioning URL set: https://prov.example.se/luren/"
    found = rig.data_dir / "provisioning" / "found.json"
    assert json.loads(found.read_text()) == {"url": "https://prov.example.se/luren/",
                                             "source": "set on the console"}
    assert sorted(p.name for p in found.parent.iterdir()) == ["found.json"]  # no temp file
    prov = run(services, "prov")
    assert prov.lines[:2] == ["URL: https://prov.example.se/luren/",
                              "source: set on the console"]


def test_prov_url_replaces_found_json_whole_or_not_at_all(
        rig: Rig, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    run(services, "prov url https://first.example.se/")
    found = rig.data_dir / "provisioning" / "found.json"
    old = found.read_bytes()

    def power_cut(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("firmware.storage.os.fsync", power_cut)
    reply = run(services, "prov url https://second.example.se/")
    monkeypatch.undo()
    assert not reply.ok and "Input/output error" in reply.lines[0]
    assert found.read_bytes() == old
    assert sorted(p.name for p in found.parent.iterdir()) == ["found.json"]


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://prov.example.se/", "not an https:// address"),
    ("https://admin:Pa55-w0rd@prov.example.se/", "user name or password"),
    ("http://prov.example.se/", "plain http"),
    ("https://prov.example.se/?x=1", "without ?query"),
])
def test_prov_url_refuses_unsafe_urls(rig: Rig, services: Services, url: str,
                                      words: str) -> None:
    reply = run(services, f"prov url {url}")
    assert not reply.ok and words in reply.lines[0]
    assert "Pa55-w0rd" not in shown(reply)
    assert not (rig.data_dir / "provisioning" / "found.json").exists()


def test_prov_url_needs_one_url(services: Services) -> None:
    assert not run(services, "prov url").ok
    assert not run(services, "prov url https://a.example.se/ https://b.example.se/").ok


def test_prov_run_without_a_way_to_provision(services: Services) -> None:
    reply = run(services, "prov run")
    assert not reply.ok and "not provisioned" in reply.lines[0]


def test_prov_run_fetches_now_and_reports(rig: Rig) -> None:
    runs: list[int] = []

    async def provision_now() -> None:
        runs.append(1)
        rig.phone.provisioning = {"ok": True, "message": "3 files, nothing changed"}

    reply = run(rig.services(provision_now=provision_now), "prov run")
    assert runs == [1]
    assert reply.ok and reply.lines == ["ok: 3 files, nothing changed"]


# --- log -----------------------------------------------------------------------------------------


def log_into(services: Services, *messages: str) -> None:
    """Log `messages` through a phone logger into the services' buffer."""
    logger = logging.getLogger("luren.test.console.commands")
    logger.addHandler(services.log)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        for message in messages:
            logger.info("%s", message)
    finally:
        logger.setLevel(level)
        logger.removeHandler(services.log)


def test_log_shows_the_last_lines(services: Services) -> None:
    assert run(services, "log").lines == ["(nothing logged yet)"]
    log_into(services, *(f"event {n}" for n in range(30)), f"with {LINE_PASSWORD}")
    reply = run(services, "log 3")
    assert reply.ok
    assert [line.rsplit(": ", 1)[-1] for line in reply.lines] == ["event 28", "event 29",
                                                                  f"with {MASK}"]
    assert len(run(services, "log").lines) == 20
    assert_no_secret(run(services, "log 50"))
    assert not run(services, "log many").ok


def test_log_shows_at_most_max_tail_lines(services: Services) -> None:
    log_into(services, *(f"n{n}" for n in range(MAX_TAIL + 20)))
    assert len(run(services, "log 100000").lines) == MAX_TAIL


@pytest.mark.usefixtures("restore_levels")
def test_log_level_for_the_phone_and_for_one_part(services: Services) -> None:
    reply = run(services, "log level WARNING")
    assert reply.ok and reply.lines == ["log level of luren: warning"]
    assert logging.getLogger("luren").level == logging.WARNING
    assert run(services, "log level luren.sip debug").lines == ["log level of luren.sip: debug"]
    assert logging.getLogger("luren.sip").level == logging.DEBUG


@pytest.mark.usefixtures("restore_levels")
@pytest.mark.parametrize(("line", "words"), [
    ("log level root debug", "the phone's loggers are luren"),
    ("log level lurenx debug", "the phone's loggers are luren"),
    ("log level loud", "unknown level 'loud'"),
    ("log level", "give a level"),
    ("log level luren debug extra", "give a level"),
])
def test_log_level_refuses_with_words(services: Services, line: str, words: str) -> None:
    before = logging.getLogger("luren").level
    reply = run(services, line)
    assert not reply.ok and words in reply.lines[0]
    assert logging.getLogger("luren").level == before


def test_log_follow_streams_new_lines_until_stopped(services: Services) -> None:
    async def main() -> tuple[Reply, list[str]]:
        reply = await execute(services, "log follow")
        assert reply.stream is not None
        seen: list[str] = []
        arrived = asyncio.Event()

        def emit(text: str) -> None:
            seen.append(text)
            arrived.set()

        reply.stream.start(emit)
        log_into(services, f"first {LINE_PASSWORD}")
        await asyncio.wait_for(arrived.wait(), 5)
        reply.stream.stop()
        log_into(services, "after stop")
        await asyncio.sleep(0)  # let any (wrongly) scheduled emit run before looking
        return reply, seen

    reply, seen = asyncio.run(main())
    assert reply.ok and "press any key to stop" in reply.lines[0]
    assert len(seen) == 1 and seen[0].endswith(f"first {MASK}")


# --- firmware, reboot, factory reset -------------------------------------------------------------


@pytest.mark.parametrize("line", ["fw", "fw rollback"])
def test_fw_without_firmware_slots(services: Services, line: str) -> None:
    reply = run(services, line)
    assert not reply.ok and reply.lines == ["firmware slots are not in use on this phone"]


def test_reboot_restarts_on_the_clock(rig: Rig, services: Services) -> None:
    reply = run(services, "reboot")
    assert reply.ok and reply.lines == ["restarting"]
    rig.clock.advance(0.4)
    assert rig.restarts == []
    rig.clock.advance(0.1)
    assert rig.restarts == ["reboot from the console"]


@pytest.mark.parametrize("line", ["factory-reset", "factory-reset yes",
                                  "factory-reset 'erase everything now'"])
def test_factory_reset_needs_the_exact_words(rig: Rig, services: Services, line: str) -> None:
    reply = run(services, line)
    assert not reply.ok
    assert f"factory-reset {CONFIRM_FACTORY_RESET}" in reply.lines[0]
    assert not (rig.data_dir / FACTORY_RESET_MARK).exists()
    rig.clock.advance(5)
    assert rig.restarts == []


@pytest.mark.parametrize("line", [f'factory-reset "{CONFIRM_FACTORY_RESET}"',
                                  f"factory-reset {CONFIRM_FACTORY_RESET}"])
def test_factory_reset_marks_the_data_and_restarts(rig: Rig, services: Services,
                                                   line: str) -> None:
    reply = run(services, line)
    assert reply.ok and reply.lines[-1] == "restarting"
    mark = rig.data_dir / FACTORY_RESET_MARK
    assert isinstance(json.loads(mark.read_text())["at"], float)
    assert rig.restarts == []
    rig.clock.advance(0.5)
    assert rig.restarts == ["factory reset from the console"]


def fill(data_dir: Path) -> None:
    """A data directory as a used phone has it."""
    for name, text in {"provisioning/device.key": "KEY", "provisioning/found.json": "{}",
                       "provisioning/cache/common.toml": "x = 1",
                       "firmware/slot-a/VERSION": "1.0", "firmware/state.json": "{}",
                       "state/overrides.json": "{}", "state/history.db": "db",
                       "recordings/2025/call.wav": "RIFF", "contacts.json": "[]"}.items():
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def files(data_dir: Path) -> list[str]:
    """Every file under `data_dir`, relative, sorted."""
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())


def test_wipe_keeps_only_the_device_key_and_the_firmware(tmp_path: Path) -> None:
    fill(tmp_path)
    (tmp_path / FACTORY_RESET_MARK).write_text("{}")
    removed = wipe_for_factory_reset(tmp_path)
    assert files(tmp_path) == ["firmware/slot-a/VERSION", "firmware/state.json",
                               "provisioning/device.key"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["firmware", "provisioning"]
    assert {"state", "recordings", "contacts.json", "provisioning/found.json",
            "provisioning/cache"} <= set(removed)
    assert not any(name.startswith("firmware") or name == "provisioning/device.key"
                   for name in removed)


def test_wipe_without_the_mark_does_nothing(tmp_path: Path) -> None:
    fill(tmp_path)
    before = files(tmp_path)
    assert wipe_for_factory_reset(tmp_path) == []
    assert files(tmp_path) == before


def test_wipe_removes_the_mark_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(tmp_path)
    mark = tmp_path / FACTORY_RESET_MARK
    mark.write_text("{}")
    mark_there_at_each_removal: list[bool] = []
    real_unlink = Path.unlink

    def watching_unlink(path: Path, missing_ok: bool = False) -> None:
        if path != mark:
            mark_there_at_each_removal.append(mark.exists())
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", watching_unlink)
    wipe_for_factory_reset(tmp_path)
    assert mark_there_at_each_removal and all(mark_there_at_each_removal)
    assert not mark.exists()


def test_factory_reset_then_wipe_at_the_next_start(rig: Rig, services: Services) -> None:
    key = rig.data_dir / "provisioning" / "device.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("KEY")
    run(services, "config set device.language en")
    run(services, f"factory-reset {CONFIRM_FACTORY_RESET}")
    rig.close()  # the phone stops for the restart
    wipe_for_factory_reset(rig.data_dir)
    assert files(rig.data_dir) == ["provisioning/device.key"]


# --- the control API, failures ----------------------------------------------------------------


@pytest.mark.parametrize("line", STREAMS)
def test_stream_commands_are_refused_through_the_api(services: Services, line: str) -> None:
    reply = run(services, line, via_api=True)
    assert not reply.ok and "runs on the console only" in reply.lines[0]
    assert reply.stream is None


def test_other_commands_run_through_the_api(rig: Rig, services: Services) -> None:
    before = len(rig.sip.sent)
    reply = run(services, "sip register", via_api=True)
    assert reply.ok and rig.sip.sent[before:] == [("register", 0)]
    assert reply.as_api() == {"ok": True, "text": "line 1: registering", "data": {"lines": [0]}}


def test_a_command_that_raises_comes_back_failed_and_masked(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(s: Services, args: list[str]) -> Reply:
        raise RuntimeError(f"could not log in with password={args[0]} or {LINE_PASSWORD}")

    monkeypatch.setitem(COMMANDS, "boom", Command("boom", "boom X", "always fails", broken))
    reply = run(services, "boom typed-secret")
    assert not reply.ok
    assert reply.lines == [f"boom failed: could not log in with password={MASK} or {MASK}"]
    assert run(services, "sip").ok  # the table still works


def test_every_reply_is_masked_even_if_a_command_forgets(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    async def leaky(s: Services, args: list[str]) -> Reply:
        return Reply(True, [f"api token {API_TOKEN}"], {"nested": [{"token": "t-1"}],
                                                        "note": LDAP_PASSWORD})

    monkeypatch.setitem(COMMANDS, "leaky", Command("leaky", "leaky", "shows secrets", leaky))
    reply = run(services, "leaky")
    assert reply.lines == [f"api token {MASK}"]
    assert reply.data == {"nested": [{"token": MASK}], "note": MASK}


# --- streams --------------------------------------------------------------------------------


def start_stream(services: Services, line: str) -> tuple[Reply, list[str]]:
    """Run a stream command and start its stream; the list collects what it emits."""
    reply = run(services, line)
    assert reply.ok and reply.stream is not None
    seen: list[str] = []
    reply.stream.start(seen.append)
    return reply, seen


def test_test_keys_echoes_keys_and_hook_without_acting(rig: Rig, services: Services) -> None:
    terminal = rig.phone.terminals[0]
    board = terminal.board
    rows_before = list(board.display.rows)
    sent_before = len(rig.sip.sent)
    reply, seen = start_stream(services, "test keys")
    board.key("5")
    board.hook(True)
    board.hook(False)
    assert seen == ["key 5", "hook off (lifted)", "hook on (down)"]
    assert rig.sip.sent[sent_before:] == [] and board.display.rows == rows_before
    assert reply.stream is not None
    reply.stream.stop()
    assert board.on_key == terminal.key and board.on_hook == terminal.hook
    board.hook(True)  # the phone acts on it again: dial tone
    assert ("play_tone", "dial") in rig.sip.sent[sent_before:]
    assert len(seen) == 3


def led_states(rig: Rig) -> dict[str, LedState]:
    """Each LED's state by name."""
    return {name: led.state for name, led in rig.phone.terminals[0].board.leds.items()}


def lit(rig: Rig) -> list[str]:
    """The LEDs that are on, by name."""
    return sorted(name for name, state in led_states(rig).items()
                  if state.pattern is LedPattern.ON)


def test_test_leds_lights_each_led_in_turn_then_all(rig: Rig, services: Services) -> None:
    before = led_states(rig)
    names = sorted(before)
    reply, seen = start_stream(services, "test leds")
    assert seen == [f"LED {names[0]} on"] and lit(rig) == [names[0]]
    for name in names[1:]:
        rig.clock.advance(0.5)
        assert seen[-1] == f"LED {name} on" and lit(rig) == [name]
    rig.clock.advance(0.5)
    assert seen[-1] == "all on" and lit(rig) == names
    assert reply.stream is not None
    reply.stream.stop()
    count = len(seen)
    rig.clock.advance(5)
    assert len(seen) == count
    # The LEDs the phone drives are its own again (line2, which a one-line phone never sets,
    # is not: see test_test_leds_leaves_every_led_as_it_found_it).
    after = led_states(rig)
    assert after["line1"] == before["line1"] and after["line1"].pattern is LedPattern.ON
    assert {n: after[n] for n in names if n != "line2"} == {
        n: before[n] for n in names if n != "line2"}


def test_test_leds_leaves_every_led_as_it_found_it(rig: Rig, services: Services) -> None:
    before = led_states(rig)
    reply, seen = start_stream(services, "test leds")
    while seen[-1] != "all on":
        rig.clock.advance(0.5)
    assert reply.stream is not None
    reply.stream.stop()
    assert led_states(rig) == before


def test_test_leds_keeps_each_step_lit_for_its_whole_period(rig: Rig,
                                                            services: Services) -> None:
    names = sorted(led_states(rig))
    rig.clock.advance(0.25)  # the technician starts it at any moment, not on a tick
    _, seen = start_stream(services, "test leds")
    for _ in range(40):
        rig.clock.advance(0.1)
        step = seen[-1]
        assert lit(rig) == (names if step == "all on" else [step.split()[1]]), step


def watch_display(rig: Rig) -> list[list[str]]:
    """Every picture the display shows from now on."""
    display = rig.phone.terminals[0].board.display
    pictures: list[list[str]] = []
    display.listeners.append(lambda version: pictures.append(list(display.rows)))
    return pictures


def test_test_display_shows_each_pattern_then_the_screen_again(rig: Rig,
                                                               services: Services) -> None:
    display = rig.phone.terminals[0].board.display
    idle = list(display.rows)
    width, height = display.width, display.height
    pictures = watch_display(rig)
    reply, seen = start_stream(services, "test display")
    assert display.rows == ["#" * width] * height
    for _ in range(4):
        rig.clock.advance(2.0)  # one period at a time: advance() runs what is due then
    assert seen == ["display: all blocks", "display: checkerboard", "display: frame",
                    "display: characters", "display: all blocks"]
    assert [".#" * (width // 2), "#." * (width // 2)] * (height // 2) in pictures
    frame = ["+" + "-" * (width - 2) + "+"] + ["|" + " " * (width - 2) + "|"] * (height - 2) \
        + ["+" + "-" * (width - 2) + "+"]
    assert frame in pictures
    assert any(rows[0].startswith("!\"#$%") for rows in pictures)
    assert reply.stream is not None
    reply.stream.stop()
    assert display.rows == idle


def test_test_display_keeps_each_pattern_for_its_whole_period(rig: Rig,
                                                              services: Services) -> None:
    display = rig.phone.terminals[0].board.display
    _, seen = start_stream(services, "test display")
    for _ in range(10):
        rig.clock.advance(0.5)
        if seen[-1] == "display: all blocks":
            assert display.rows == ["#" * display.width] * display.height, display.rows
        else:
            assert "Anna" not in "".join(display.rows), (seen[-1], display.rows)


def test_test_audio_plays_a_tone_and_stops_it(rig: Rig, services: Services) -> None:
    before = len(rig.sip.sent)
    reply, seen = start_stream(services, "test audio")
    assert seen == ["1 kHz tone on the earpiece"]
    assert rig.sip.sent[before:] == [("open_audio_path",), ("play_tone", "test")]
    assert reply.stream is not None
    reply.stream.stop()
    assert ("stop_tone",) in rig.sip.sent[before + 2:]


def test_test_audio_of_a_bases_second_handset(tmp_path: Path) -> None:
    base = make_rig(tmp_path / "data", terminals=3)
    looped: list[tuple[bool, int]] = []
    services = base.services(loopback=lambda on, terminal=0: looped.append((on, terminal)))
    try:
        reply, seen = start_stream(services, "test audio 2")
        assert seen == ["1 kHz tone on the earpiece of handset 2"]
        assert looped == [(False, 1)]
        assert reply.stream is not None
        reply.stream.stop()
        assert looped[-1] == (False, 1)
        for bad in ("test audio 4", "test audio 0", "test audio x", "test audio 1 2"):
            answer = run(services, bad)
            assert not answer.ok and "give a handset number 1-3" in answer.lines[0], bad
    finally:
        base.close()


def test_test_audio_of_a_desk_phone_takes_no_argument(services: Services) -> None:
    answer = run(services, "test audio 2")
    assert not answer.ok and "takes no argument" in answer.lines[0]


def test_test_headset_without_sound_hardware(services: Services) -> None:
    reply = run(services, "test headset")
    assert reply.ok and reply.data == {"detection": "none"}


def test_every_command_answers_odd_words_with_a_reply(services: Services,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netinfo, "addresses", list)
    skip = {"net", *STREAMS, "reboot", "factory-reset"}  # net probes the network
    for name in sorted(set(COMMANDS) - skip):
        reply = run(services, f"{name} '' \"x y\" 99999999999999999999 -1 \u00e4")
        assert isinstance(reply, Reply) and reply.lines, name
        assert not any(line.startswith(f"{name} failed:") for line in reply.lines), reply.lines
