"""Tests for the configuration schema, loader, generated default file and reference docs."""

import dataclasses
import pickle
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from firmware.config import (
    REDACTED,
    ApiConfig,
    CallsConfig,
    ConfigError,
    ConfigProblem,
    DeviceConfig,
    DirectoryConfig,
    FeaturesConfig,
    KeysConfig,
    LineConfig,
    PhoneConfig,
    SipConfig,
    VoicemailConfig,
    config_to_dict,
    dial_plan_error,
    dump_default_config,
    load_config,
    parse_config,
)
from firmware.config.docs import render_markdown
from firmware.config.load import FIELD_CHECKS, MAX_CONFIG_BYTES, RECORD_CHECKS
from firmware.config.schema import (
    ConsoleConfig,
    DectConfig,
    FirmwareConfig,
    ProvisioningConfig,
)

REPO = Path(__file__).resolve().parents[2]
LINE = {"user": "1001", "registrar": "127.0.0.1:5060"}


def minimal(**tables: Any) -> dict[str, Any]:
    """A valid config document with one line, plus the given tables."""
    return {"lines": [dict(LINE)], **tables}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The (path, message) pairs parse_config reports for ``data``; fails if it is valid."""
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return [(p.path, p.message) for p in caught.value.problems]


def only_problem(data: dict[str, Any]) -> tuple[str, str]:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.toml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


# --- valid configs and defaults -------------------------------------------------------------


def test_minimal_config_takes_every_default() -> None:
    cfg = parse_config(minimal())
    assert cfg == PhoneConfig(lines=[LineConfig(user="1001", registrar="127.0.0.1:5060")])
    assert cfg.device.language == "sv"
    assert cfg.device.time_zone == "Europe/Stockholm"
    assert cfg.device.interdigit_timeout == 4.0
    assert cfg.sip.codecs == ["PCMA", "PCMU", "G722"]
    assert cfg.sip.port == 5060
    assert cfg.api.listen == "127.0.0.1:8080"
    assert cfg.sim.record_earpiece is True
    assert cfg.lines[0].register_expires == 300


def test_load_config_reads_toml_tables(tmp_path: Path) -> None:
    path = write(tmp_path, """
[device]
language = "en"
interdigit_timeout = 3

[sip]
codecs = ["G722"]

[[lines]]
user = "1001"
registrar = "sip:pbx.example.se"
transport = "tcp"

[[lines]]
user = "1002"
registrar = "pbx.example.se:5070"

[api]
listen = "0.0.0.0:8080"
token = "secret-token"
""")
    cfg = load_config(path)
    assert cfg.device.language == "en"
    assert cfg.device.interdigit_timeout == 3.0
    assert isinstance(cfg.device.interdigit_timeout, float)
    assert cfg.sip.codecs == ["G722"]
    assert [line.user for line in cfg.lines] == ["1001", "1002"]
    assert cfg.lines[0].registrar_uri == "sip:pbx.example.se:5060;transport=tcp"
    assert cfg.api.token == "secret-token"


def test_config_is_frozen() -> None:
    cfg = parse_config(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.device.language = "en"  # type: ignore[misc]


def test_every_field_is_documented() -> None:
    for cls in (PhoneConfig, DeviceConfig, SipConfig, LineConfig, ApiConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"


def test_registered_checks_name_real_fields() -> None:
    for cls, name in FIELD_CHECKS:
        assert name in {f.name for f in dataclasses.fields(cls)}, (cls, name)
    assert all(dataclasses.is_dataclass(cls) for cls in RECORD_CHECKS)


# --- line helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(("registrar", "transport", "uri"), [
    ("127.0.0.1:5060", "udp", "sip:127.0.0.1:5060"),
    ("127.0.0.1", "udp", "sip:127.0.0.1:5060"),
    ("sip:pbx.example.se", "udp", "sip:pbx.example.se:5060"),
    ("SIP:PBX.Example.se:5070", "tcp", "sip:pbx.example.se:5070;transport=tcp"),
    ("[::1]:5062", "udp", "sip:[::1]:5062"),
    ("sip:[2001:db8::1]", "tcp", "sip:[2001:db8::1]:5060;transport=tcp"),
])
def test_registrar_uri_is_normalised(registrar: str, transport: str, uri: str) -> None:
    line = LineConfig(user="1001", registrar=registrar, transport=transport)
    assert line.registrar_uri == uri


def test_line_derived_names() -> None:
    line = LineConfig(user="1001", registrar="pbx")
    assert (line.auth_name, line.key_label, line.outbound_proxy_uri) == ("1001", "1001", "")
    line = LineConfig(user="1001", registrar="pbx", auth_user="a1001", label="Reception",
                      outbound_proxy="proxy:5080", transport="tcp")
    assert (line.auth_name, line.key_label) == ("a1001", "Reception")
    assert line.outbound_proxy_uri == "sip:proxy:5080;transport=tcp;lr"
    assert (line.dtmf_method("info"), LineConfig(user="1", registrar="pbx", dtmf_mode="inband")
            .dtmf_method("info")) == ("info", "inband")


def test_secrets_stay_out_of_repr() -> None:
    cfg = parse_config({"lines": [dict(LINE, password="hunter2")],
                        "api": {"token": "tok3n-value"}})
    assert "hunter2" not in repr(cfg)
    assert "tok3n-value" not in repr(cfg)


# --- generic validation ---------------------------------------------------------------------


@pytest.mark.parametrize(("data", "path", "message"), [
    ({"lines": [dict(LINE, transport="tls")]},
     "lines[0].transport", 'must be one of udp, tcp (got "tls")'),
    ({"lines": [dict(LINE, dtmf_mode="2833")]},
     "lines[0].dtmf_mode", 'must be one of "", rfc4733, info, inband (got "2833")'),
    (minimal(device={"language": "de"}), "device.language", 'must be one of sv, en (got "de")'),
    (minimal(device={"max_calls": 5}), "device.max_calls", "must be between 1 and 4 (got 5)"),
    (minimal(device={"interdigit_timeout": 0.5}),
     "device.interdigit_timeout", "must be between 1 and 30 (got 0.5)"),
    (minimal(device={"interdigit_timeout": float("nan")}),
     "device.interdigit_timeout", "must be between 1 and 30 (got nan)"),
    (minimal(device={"interdigit_timeout": "4"}),
     "device.interdigit_timeout", 'must be a number (got string "4")'),
    (minimal(device={"interdigit_timeout": True}),
     "device.interdigit_timeout", "must be a number (got boolean true)"),
    ({"lines": [dict(LINE, register_expires=True)]},
     "lines[0].register_expires", "must be an integer (got boolean true)"),
    ({"lines": [dict(LINE, register_expires=30.0)]},
     "lines[0].register_expires", "must be an integer (got float 30.0)"),
    ({"lines": [dict(LINE, register_expires=30)]},
     "lines[0].register_expires", "must be between 60 and 86400 (got 30)"),
    ({"lines": [dict(LINE, register=1)]},
     "lines[0].register", "must be a boolean (true or false) (got integer 1)"),
    ({"lines": [dict(LINE, user=1001)]}, "lines[0].user", "must be a string (got integer 1001)"),
    (minimal(sip={"port": 70000}), "sip.port", "must be between 0 and 65535 (got 70000)"),
    (minimal(sip={"codecs": "PCMA"}), "sip.codecs", 'must be an array (got string "PCMA")'),
    (minimal(sip={"codecs": ["PCMA", 8]}), "sip.codecs[1]", "must be a string (got integer 8)"),
    (minimal(sip={"codecs": ["PCMA", "opus"]}),
     "sip.codecs[1]", 'must be one of PCMA, PCMU, G722, speex, iLBC, GSM, L16 (got "opus")'),
    (minimal(sip={"codecs": []}), "sip.codecs", "must have at least 1 entry (got 0)"),
    (minimal(sip={"codecs": ["PCMA", "PCMA"]}), "sip.codecs", "lists PCMA more than once"),
    (minimal(sip={"dtmf_mode": "sipinfo"}),
     "sip.dtmf_mode", 'must be one of rfc4733, info, inband (got "sipinfo")'),
    (minimal(sim={"mic_tone_hz": 5000}),
     "sim.mic_tone_hz", "must be between 0 and 4000 (got 5000)"),
    (minimal(device="sv"), "device", 'must be a table (got string "sv")'),
    ({"lines": {"user": "1001"}}, "lines", "must be an array (got a table)"),
    ({"lines": ["1001"]}, "lines[0]", 'must be a table (got string "1001")'),
    ({"lines": []}, "lines", "must have at least 1 entry (got 0)"),
    ({}, "lines", "missing required key; add a [[lines]] table (or set [provisioning] url or "
     "discovery, to get the lines from a provisioning server)"),
    ({"lines": [{"user": "1001"}]}, "lines[0].registrar", "missing required key"),
    ({"lines": [dict(LINE, display_name="Bob\r\nVia: evil")]},
     "lines[0].display_name", "must not contain control characters such as newlines"),
])
def test_invalid_value_is_reported_at_its_path(data: dict[str, Any], path: str,
                                                message: str) -> None:
    assert only_problem(data) == (path, message)


def test_too_many_lines() -> None:
    lines = [dict(LINE, user=str(1000 + i)) for i in range(17)]
    assert only_problem({"lines": lines}) == ("lines", "must have at most 16 entries (got 17)")


def test_all_problems_are_collected() -> None:
    data = {
        "device": {"language": "fi", "time_zone": "Mars/Olympus", "max_calls": 0},
        "sip": {"port": "5060"},
        "lines": [dict(LINE), dict(LINE, user="1002", transport="tls", regstrar="x")],
        "api": {"listen": "0.0.0.0:8080"},
    }
    assert [path for path, _ in problems(data)] == [
        "device.language", "device.time_zone", "device.max_calls", "sip.port",
        "lines[1].transport", "lines[1].regstrar", "api.token",
    ]


def test_error_text_has_one_problem_per_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"lines": [dict(LINE), dict(LINE, user="1002", transport="tls")],
                      "device": {"language": "fi"}}, source="config.toml")
    assert str(caught.value).splitlines() == [
        'config.toml: device.language: must be one of sv, en (got "fi")',
        'config.toml: lines[1].transport: must be one of udp, tcp (got "tls")',
    ]


def test_config_error_survives_pickling() -> None:
    error = ConfigError([ConfigProblem("device.language", "bad")], "x.toml")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.problems, copy.source, str(copy)) == (error.problems, "x.toml", str(error))


# --- unknown keys ---------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest_name() -> None:
    data = {"lines": [{"user": "1001", "regstrar": "127.0.0.1"}]}
    assert problems(data) == [
        ("lines[0].registrar", "missing required key"),
        ("lines[0].regstrar", "unknown key; did you mean 'registrar'?"),
    ]


def test_misspelt_table_is_an_unknown_key() -> None:
    assert only_problem(minimal(devcie={})) == ("devcie", "unknown key; did you mean 'device'?")


def test_unknown_key_without_a_close_match_lists_the_keys() -> None:
    assert only_problem(minimal(api={"zzz": 1})) == (
        "api.zzz", "unknown key; expected one of: listen, token")


def test_odd_unknown_key_is_quoted() -> None:
    path, _ = only_problem(minimal(sim={"a b\n": 1}))
    assert path == 'sim."a b\\n"'


# --- field-specific validators --------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "../etc/passwd", "/etc/localtime",
                                  ""])
def test_invalid_time_zone(zone: str) -> None:
    path, message = only_problem(minimal(device={"time_zone": zone}))
    assert path == "device.time_zone"
    assert message.startswith("is not a known IANA time zone")


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Europe/London"])
def test_valid_time_zone(zone: str) -> None:
    assert parse_config(minimal(device={"time_zone": zone})).device.time_zone == zone


@pytest.mark.parametrize("plan", [
    "112", "[1-9]xxx", "0[1-9]x.T", "*x.T|#x.T", "[135]xxT", "X.T", "[*#0-2]x", "x.x.",
])
def test_valid_dial_plan(plan: str) -> None:
    assert dial_plan_error(plan) is None


@pytest.mark.parametrize(("plan", "message"), [
    ("", "must not be empty"),
    ("12a", 'character "a" is not allowed; use only 0-9 * # x X [ ] - . T |'),
    ("112 ", 'character " " is not allowed; use only 0-9 * # x X [ ] - . T |'),
    ("1||2", 'alternative 2 (""): is empty'),
    ("112|", 'alternative 2 (""): is empty'),
    (".1", "alternative 1 (\".1\"): '.' must follow a digit, x or [...]"),
    ("12|1..", "alternative 2 (\"1..\"): '.' must follow a digit, x or [...]"),
    ("1T2", "alternative 1 (\"1T2\"): 'T' may only end an alternative"),
    ("T", "alternative 1 (\"T\"): 'T' must follow at least one digit, x or [...]"),
    ("0[1-9x.T", "alternative 1 (\"0[1-9x.T\"): '[' without ']'"),
    ("01]", "alternative 1 (\"01]\"): ']' without '['"),
    ("[[1]]", "alternative 1 (\"[[1]]\"): '[' inside [...]"),
    ("[]", "alternative 1 (\"[]\"): '[]' is empty"),
    ("1-2", "alternative 1 (\"1-2\"): '-' is only allowed inside [...]"),
    ("[5-1]", 'alternative 1 ("[5-1]"): range "5-1" in [...] '
              "must be two digits in order, e.g. 1-5"),
    ("[1x]", 'alternative 1 ("[1x]"): "x" is not allowed inside [...]; '
             "use digits, * # and ranges like 1-5"),
])
def test_dial_plan_syntax_errors(plan: str, message: str) -> None:
    assert dial_plan_error(plan) == message
    assert only_problem(minimal(device={"dial_plan": plan})) == ("device.dial_plan", message)


@pytest.mark.parametrize(("registrar", "reason"), [
    ("", "must not be empty"),
    ("sip:1001@pbx", "must not contain a user part"),
    ("sips:pbx", "sips: is not supported"),
    ("pbx;transport=tcp", "URI parameters are not supported"),
    ("::1", "write an IPv6 address in brackets"),
    ("[::g]:5060", "is not a valid IPv6 address"),
    ("pbx:99999", 'port "99999" is not a number from 0 to 65535'),
    ("pbx:0", "port 0 is not a SIP port"),
    ("pbx:", 'port "" is not a number'),
    ("300.1.1.1", '"300.1.1.1" is not a valid IPv4 address'),
    ("pbx_1.example", "is not a valid host name"),
    ("-pbx", "is not a valid host name"),
])
def test_invalid_registrar(registrar: str, reason: str) -> None:
    path, message = only_problem({"lines": [dict(LINE, registrar=registrar)]})
    assert path == "lines[0].registrar"
    assert reason in message


def test_invalid_outbound_proxy() -> None:
    path, message = only_problem({"lines": [dict(LINE, outbound_proxy="sip:a@b")]})
    assert (path, "user part" in message) == ("lines[0].outbound_proxy", True)


@pytest.mark.parametrize("user", ["10 01", "", "a@b", "1001:x", "<1001>"])
def test_invalid_line_user(user: str) -> None:
    path, message = only_problem({"lines": [dict(LINE, user=user)]})
    assert (path, message.startswith("must be a SIP user part")) == ("lines[0].user", True)


@pytest.mark.parametrize(("table", "path", "reason"), [
    ({"bind_address": "localhost"}, "sip.bind_address", "must be an IP address"),
    ({"bind_address": "192.168.1.300"}, "sip.bind_address", "must be an IP address"),
    ({"public_address": "a..b"}, "sip.public_address", "is not a valid host name"),
    ({"public_address": "1.2.3.4:5060"}, "sip.public_address", "is neither an IPv6 address"),
])
def test_invalid_sip_addresses(table: dict[str, str], path: str, reason: str) -> None:
    found_path, message = only_problem(minimal(sip=table))
    assert (found_path, reason in message) == (path, True)


def test_valid_sip_addresses() -> None:
    cfg = parse_config(minimal(sip={"bind_address": "::", "public_address": "phone.example.se"}))
    assert cfg.sip.bind_address == "::"


def test_invalid_voicemail_number() -> None:
    assert only_problem(minimal(device={"voicemail_number": "5a5"})) == (
        "device.voicemail_number", "may contain only digits, * and #")


def test_duplicate_line_user_at_the_same_registrar() -> None:
    lines = [dict(LINE), dict(LINE, user="1002"), dict(LINE, registrar="sip:127.0.0.1")]
    assert only_problem({"lines": lines}) == (
        "lines[2].user", 'lines[0] already has user "1001" at registrar 127.0.0.1:5060')


def test_same_user_at_different_registrars_is_fine() -> None:
    lines = [dict(LINE), dict(LINE, registrar="127.0.0.1:5070")]
    assert len(parse_config({"lines": lines}).lines) == 2


# --- the control API --------------------------------------------------------------------------


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "192.168.1.20:80", "[::]:8080",
                                    "phone.example.se:8080"])
def test_non_loopback_api_needs_a_token(listen: str) -> None:
    path, message = only_problem(minimal(api={"listen": listen}))
    assert path == "api.token"
    assert message == f'required when listen is not a loopback address (listen = "{listen}")'
    cfg = parse_config(minimal(api={"listen": listen, "token": "t0ken"}))
    assert not cfg.api.is_loopback


@pytest.mark.parametrize(("listen", "host", "port"), [
    ("127.0.0.1:8080", "127.0.0.1", 8080), ("127.0.0.2:0", "127.0.0.2", 0),
    ("localhost:9000", "localhost", 9000), ("[::1]:8080", "::1", 8080),
])
def test_loopback_api_needs_no_token(listen: str, host: str, port: int) -> None:
    api = parse_config(minimal(api={"listen": listen})).api
    assert (api.host, api.port, api.is_loopback) == (host, port, True)


@pytest.mark.parametrize(("listen", "reason"), [
    ("127.0.0.1", "needs a port"),
    ("[::1]", "needs a port"),
    ("::1:8080", "write an IPv6 address in brackets"),
    ("127.0.0.1:http", 'port "http" is not a number'),
])
def test_invalid_api_listen(listen: str, reason: str) -> None:
    path, message = only_problem(minimal(api={"listen": listen}))
    assert (path, reason in message) == ("api.listen", True)


# --- files ----------------------------------------------------------------------------------


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[device]\nlanguage = "sv"\ntime_zone "UTC"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.path == ""
    assert problem.message.startswith("invalid TOML: ")
    assert "line 3, column" in problem.message
    assert str(caught.value).startswith(f"{path}: invalid TOML: ")


def test_duplicate_toml_key_is_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[device]\nlanguage = "sv"\nlanguage = "en"\n')
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file: No such file or directory"):
        load_config(tmp_path / "absent.toml")
    assert not (tmp_path / "absent.toml").exists()


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(write(tmp_path, b'[device]\nname = "V\xe4xel"\n'))


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    text = dump_default_config().encode("utf-8")
    assert load_config(write(tmp_path, b"\xef\xbb\xbf" + text)).lines[0].user == "1001"


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


@pytest.mark.parametrize("text", [
    '[[lines]]\nuser = "1001"\nregistrar = "127.0.0.1"\ntransport = "tls"\n',
    "[device\n",
])
def test_invalid_file_is_not_modified(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with pytest.raises(ConfigError):
        load_config(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


# --- generated default config -----------------------------------------------------------------


def test_default_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, dump_default_config()))
    assert cfg == PhoneConfig(lines=[LineConfig(user="1001", registrar="127.0.0.1:5060")])


def test_default_config_with_several_lines() -> None:
    cfg = parse_config(tomllib.loads(dump_default_config(sample_lines=3)))
    assert [line.user for line in cfg.lines] == ["1001", "1002", "1003"]


@pytest.mark.parametrize("count", [0, 17])
def test_default_config_line_count_is_checked(count: int) -> None:
    with pytest.raises(ValueError, match="sample_lines"):
        dump_default_config(sample_lines=count)


def test_default_config_lists_every_key_once_per_table() -> None:
    text = dump_default_config()
    keys = re.findall(r"^(\w+) = ", text, flags=re.MULTILINE)
    expected = [f.name for cls in (DeviceConfig, SipConfig, LineConfig, CallsConfig,
                                   VoicemailConfig, FeaturesConfig, KeysConfig,
                                   DirectoryConfig, ProvisioningConfig, FirmwareConfig,
                                   ConsoleConfig, DectConfig) for f in
                dataclasses.fields(cls)] + ["mic_tone_hz", "mic_file", "record_earpiece",
                                            "listen", "token"]
    assert keys == expected
    assert "# SIP digest password." in text
    assert "# [one of: udp, tcp]" in text


# --- config_to_dict -------------------------------------------------------------------------


def test_config_to_dict_redacts_secrets_by_default() -> None:
    cfg = parse_config({"lines": [dict(LINE, password="hunter2"), dict(LINE, user="1002")],
                        "api": {"token": "t0ken"}})
    plain = config_to_dict(cfg)
    assert plain["lines"][0]["password"] == REDACTED
    assert plain["lines"][1]["password"] == ""
    assert plain["api"]["token"] == REDACTED
    assert plain["device"]["language"] == "sv"
    assert list(plain) == ["device", "sip", "lines", "calls", "voicemail", "features", "keys",
                           "directory", "blf", "referral_types", "groups", "roles",
                           "provisioning", "firmware", "console", "dect", "handsets", "sim",
                           "api"]


def test_config_to_dict_with_secrets_round_trips() -> None:
    cfg = parse_config({"lines": [dict(LINE, password="hunter2")], "api": {"token": "t0ken"}})
    assert parse_config(config_to_dict(cfg, include_secrets=True)) == cfg


# --- docs -------------------------------------------------------------------------------------


def test_docs_config_md_is_up_to_date() -> None:
    committed = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), (
        "docs/config.md is stale: run .venv/bin/python -m firmware.config.docs > docs/config.md")


def test_docs_mention_every_key() -> None:
    text = render_markdown()
    for cls in (DeviceConfig, SipConfig, LineConfig, ApiConfig):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in text


def test_docs_example_is_a_valid_config() -> None:
    example = re.search(r"## Example\n\n```toml\n(.*?)```", render_markdown(), re.DOTALL)
    assert example is not None
    cfg = parse_config(tomllib.loads(example.group(1)))
    assert len(cfg.lines) == 2


# --- calls, roles, features --------------------------------------------------------------------


@pytest.mark.parametrize(("data", "path", "message"), [
    (minimal(calls={"dnd_action": "forward"}), "calls.dnd_forward_to",
     'required when dnd_action = "forward"'),
    (minimal(calls={"forward_busy": "10a2"}), "calls.forward_busy",
     "may contain only digits, * and #"),
    (minimal(calls={"vip_numbers": ["1002", ""]}), "calls.vip_numbers",
     '"" is not a number (digits, * and #)'),
    (minimal(calls={"default_role": "Boss"}, roles=[{"name": "Vaxel"}]), "calls.default_role",
     '"Boss" is not a role (Vaxel)'),
    (minimal(roles=[{"name": "A"}, {"name": "A"}]), "roles[1].name",
     "roles[0] has that name already"),
    (minimal(roles=[{"name": "A", "kind": "secret"}]), "roles[0].kind",
     'must be one of direct, switchboard, mobile, anonymous (got "secret")'),
    (minimal(features={"park": "*8 5"}), "features.park", "may contain only digits, * and #"),
    (minimal(keys={"soft1": "reboot"}), "keys.soft1", "must be one of"),
])
def test_call_handling_settings_are_checked(data: dict[str, Any], path: str,
                                            message: str) -> None:
    found = problems(data)
    assert any(p == path and message in m for p, m in found), found


def test_roles_and_features_parse() -> None:
    cfg = parse_config(minimal(
        roles=[{"name": "Direkt"}, {"name": "Växel", "kind": "switchboard",
                                    "number": "0812345600", "display_name": "Företaget"},
               {"name": "Anonym", "kind": "anonymous"}],
        calls={"default_role": "Växel", "forward_no_answer": "1003"},
        features={"park": "*85", "directed_pickup": "**"}, keys={"soft1": "park"}))
    assert [r.name for r in cfg.roles] == ["Direkt", "Växel", "Anonym"]
    assert cfg.calls.default_role == "Växel" and cfg.features.park == "*85"
    assert cfg.keys.soft1 == "park"


def test_lines_may_be_left_to_provisioning_only() -> None:
    with pytest.raises(ConfigError, match="to get the lines from a provisioning server"):
        parse_config({})
    factory = parse_config({"provisioning": {"discovery": ["dhcp", "pnp", "redirect"]}})
    assert factory.lines == []
    assert parse_config({"provisioning": {"url": "https://prov.example.se/"}}).lines == []
