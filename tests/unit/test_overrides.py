"""Local overrides: the user's settings over the provisioned config, and live/restart changes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from firmware.config import ConfigError, PhoneConfig, parse_config
from firmware.config import overrides as overrides_module
from firmware.config.overrides import (
    LOCAL_KEYS,
    OverrideStore,
    changed_keys,
    deep_merge,
    is_live,
    local_key_problem,
    needs_restart,
)
from firmware.config.schema import DeviceConfig


def base(**tables: Any) -> dict[str, Any]:
    """A provisioned config document: one line with a password, plus `tables`."""
    return {"lines": [{"user": "1001", "registrar": "127.0.0.1:5060", "password": "s3cret"}],
            **tables}


def store_at(tmp_path: Path, document: dict[str, Any] | None = None) -> OverrideStore:
    return OverrideStore(tmp_path / "state" / "overrides.json", base=document or base())


def file_of(store: OverrideStore) -> Any:
    return json.loads(store.path.read_text())


# --- set, reset, merge ------------------------------------------------------------------------


def test_a_set_value_is_validated_applied_and_kept_atomically(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    config = store.set("device.language", "en")
    assert config.device.language == "en" and config.lines[0].password == "s3cret"
    assert file_of(store) == {"device": {"language": "en"}}
    assert [p.name for p in store.path.parent.iterdir()] == ["overrides.json"]  # no temp files
    again = OverrideStore(store.path)
    assert again.get() == {"device": {"language": "en"}} and again.problems == []
    assert again.apply(base()).device.language == "en"


def test_several_overrides_merge_over_the_base_table_by_table(tmp_path: Path) -> None:
    store = store_at(tmp_path, base(device={"ringtone": "beep", "voicemail_number": "444"}))
    store.set("device.key_tones", False)
    store.set("calls.call_waiting", False)
    config = store.apply()
    assert (config.device.key_tones, config.device.ringtone, config.device.voicemail_number,
            config.calls.call_waiting) == (False, "beep", "444", False)
    assert store.get() == {"device": {"key_tones": False}, "calls": {"call_waiting": False}}
    assert store.get("device.key_tones") is False and store.get("device.ringtone") is None
    merged = store.merged(base(device={"ringtone": "beep"}))
    assert merged["device"] == {"ringtone": "beep", "key_tones": False}


def test_deep_merge_merges_tables_and_replaces_lists_without_touching_the_base() -> None:
    original = {"a": {"x": 1, "y": [1, 2]}, "b": 2, "lines": [{"user": "1"}, {"user": "2"}]}
    merged = deep_merge(original, {"a": {"y": [3]}, "lines": [{"user": "9"}], "c": {"z": 0}})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 2, "lines": [{"user": "9"}], "c": {"z": 0}}
    assert original == {"a": {"x": 1, "y": [1, 2]}, "b": 2,
                        "lines": [{"user": "1"}, {"user": "2"}]}


def test_apply_takes_a_phone_config_as_the_base_too(tmp_path: Path) -> None:
    store = OverrideStore(tmp_path / "overrides.json")
    config = store.apply(parse_config(base()))
    assert config == parse_config(base())
    assert store.set("device.time_zone", "Europe/Helsinki").lines[0].password == "s3cret"


def test_reset_goes_back_to_the_provisioned_value(tmp_path: Path) -> None:
    store = store_at(tmp_path, base(device={"ringtone": "soft"}))
    store.set("device.ringtone", "beep")
    store.set("device.language", "en")
    config = store.reset("device.ringtone")
    assert config.device.ringtone == "soft" and config.device.language == "en"
    assert file_of(store) == {"device": {"language": "en"}}
    assert store.reset("device.ringtone").device.ringtone == "soft"  # nothing to reset
    assert store.clear() == parse_config(base(device={"ringtone": "soft"}))
    assert file_of(store) == {} and store.get() == {}


def test_the_provisioned_value_itself_is_not_kept_as_an_override(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.set("device.language", "en")
    assert store.set("device.language", "sv").device.language == "sv"
    assert store.get() == {} and file_of(store) == {}


def test_without_a_base_config_nothing_can_be_validated(tmp_path: Path) -> None:
    store = OverrideStore(tmp_path / "overrides.json")
    with pytest.raises(ValueError, match="no base config"):
        store.set("device.language", "en")


# --- refused values and keys -------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "message"), [
    ("device.language", "fr", 'must be one of sv, en (got "fr")'),
    ("device.time_zone", "Mars/Olympus", "is not a known IANA time zone"),
    ("device.ringtone", "bells", "must be one of classic"),
    ("device.key_tones", "yes", "must be a boolean"),
    ("calls.forward_no_answer_after", 2, "must be between 5 and 120"),
    ("calls.forward_always", "07O-123", "may contain only digits"),
])
def test_an_invalid_value_raises_the_schemas_message_and_stores_nothing(
        tmp_path: Path, key: str, value: Any, message: str) -> None:
    store = store_at(tmp_path)
    with pytest.raises(ConfigError) as caught:
        store.set(key, value)
    assert [p.path for p in caught.value.problems] == [key]
    assert message in caught.value.problems[0].message
    assert str(caught.value).startswith("local settings: " + key)
    assert store.get() == {} and not store.path.exists()


def test_a_rule_across_keys_is_checked_on_the_merged_config(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    with pytest.raises(ConfigError, match='dnd_forward_to: required when dnd_action = "forward"'):
        store.set("calls.dnd_action", "forward")
    store.set("calls.dnd_forward_to", "1009")
    assert store.set("calls.dnd_action", "forward").calls.dnd_action == "forward"
    with pytest.raises(ConfigError, match="required when"):
        store.reset("calls.dnd_forward_to")
    assert store.get("calls.dnd_forward_to") == "1009"


@pytest.mark.parametrize(("key", "reason"), [
    ("sip.port", "cannot be changed on the phone"),
    ("device.dial_plan", "cannot be changed on the phone"),
    ("device.tone_country", "cannot be changed on the phone"),
    ("lines[0].registrar", "cannot be changed on the phone"),
    ("api.listen", "cannot be changed on the phone"),
    ("api.token", "is a secret"),
    ("lines[0].password", "is a secret"),
    ("device.colour", "unknown key"),
    ("nonsense", "unknown key"),
])
def test_keys_outside_the_whitelist_and_secrets_are_refused(
        tmp_path: Path, key: str, reason: str) -> None:
    store = store_at(tmp_path)
    with pytest.raises(ConfigError) as caught:
        store.set(key, 1)
    assert caught.value.problems[0].path == key
    assert caught.value.problems[0].message.startswith(reason)
    assert not store.path.exists()


def test_the_whitelist_names_real_keys_none_secret_all_applied_live() -> None:
    for key in LOCAL_KEYS:
        table, name = key.split(".")
        assert local_key_problem(key) is None and is_live(key)
        assert name in {f.name for f in dataclasses.fields(get_type_hints(PhoneConfig)[table])}
    assert {"device.language", "device.time_zone", "device.ringtone",
            "device.key_tones"} <= LOCAL_KEYS


def test_a_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_at(tmp_path)
    store.set("device.language", "en")

    def full_disk(path: Path, value: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(overrides_module, "atomic_write_json", full_disk)
    with pytest.raises(OSError):
        store.set("device.ringtone", "soft")
    assert store.get() == {"device": {"language": "en"}}
    assert file_of(store) == {"device": {"language": "en"}}


# --- damaged and stale files -------------------------------------------------------------------


def test_a_damaged_file_is_moved_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('{"device": {"language": ')
    store = OverrideStore(path, base=base())
    assert store.get() == {} and not path.exists()
    assert (tmp_path / "overrides.json.corrupt").read_text() == '{"device": {"language": '
    assert "is damaged" in store.problems[0] and "overrides.json.corrupt" in store.problems[0]
    assert store.set("device.language", "en").device.language == "en"
    path.write_bytes(b"\xff\xfe[]")
    assert OverrideStore(path).problems and (tmp_path / "overrides.json.corrupt.1").exists()


def test_a_file_that_is_not_an_object_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text('["device.language", "en"]')
    store = OverrideStore(path)
    assert store.get() == {} and "not a JSON object" in store.problems[0]
    assert (tmp_path / "overrides.json.corrupt").exists()


def test_an_unreadable_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.mkdir()
    store = OverrideStore(path, base=base())
    assert store.get() == {} and "cannot be read" in store.problems[0] and path.is_dir()
    assert store.apply() == parse_config(base())


def test_keys_that_may_not_be_overridden_are_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({"device": {"language": "en"}, "sip": {"port": 5070},
                                "api": {"token": "x"}}))
    store = OverrideStore(path, base=base())
    # sip.port is a technician's setting (the console's config set) and stays; a secret never
    assert store.get() == {"device": {"language": "en"}, "sip": {"port": 5070}}
    assert "api.token" in store.problems[0] and "sip.port" not in store.problems[0]
    assert json.loads(path.read_text()) == {"device": {"language": "en"}, "sip": {"port": 5070}}
    assert "api" in json.loads((tmp_path / "overrides.json.corrupt").read_text())
    assert store.apply().sip.port == 5070


def test_an_override_the_base_no_longer_accepts_is_dropped_on_apply(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({"device": {"ringtone": "bells", "language": "en"}}))
    store = OverrideStore(path)
    config = store.apply(base())
    assert (config.device.ringtone, config.device.language) == ("classic", "en")
    assert "device.ringtone" in store.problems[0] and "dropped" in store.problems[0]
    assert json.loads(path.read_text()) == {"device": {"language": "en"}}
    assert store.set("device.key_tones", False).device.language == "en"


def test_an_invalid_base_is_an_error_of_its_own(tmp_path: Path) -> None:
    store = OverrideStore(tmp_path / "overrides.json")
    with pytest.raises(ConfigError) as caught:
        store.apply({"lines": []})
    assert caught.value.problems[0].path == "lines"


# --- live or restart ---------------------------------------------------------------------------


def config(**tables: Any) -> PhoneConfig:
    return parse_config(base(**tables))


def test_nothing_changed_needs_nothing() -> None:
    assert changed_keys(config(), config()) == [] and needs_restart(config(), config()) == []


def test_user_settings_apply_live() -> None:
    old = config()
    new = config(device={"language": "en", "time_zone": "UTC", "ringtone": "soft",
                         "key_tones": False, "tone_country": "no", "dial_plan": "1xxx"},
                 calls={"call_waiting": False, "forward_always": "1002"},
                 features={"park": "*85"}, keys={"soft1": "dnd"},
                 roles=[{"name": "Växel", "kind": "switchboard", "number": "0101"}])
    assert set(changed_keys(old, new)) == {
        "device.language", "device.time_zone", "device.ringtone", "device.key_tones",
        "device.tone_country", "device.dial_plan", "calls.call_waiting", "calls.forward_always",
        "features.park", "keys.soft1", "roles"}
    assert needs_restart(old, new) == []


def test_the_sip_stack_and_api_need_a_restart_changed_lines_do_not() -> None:
    old = config(device={"language": "sv"})
    lines = [{"user": "1001", "registrar": "pbx.example.se", "password": "new",
              "transport": "tcp", "ringtone": "beep", "label": "Växel"}]
    new = parse_config({"lines": lines, "device": {"language": "en", "max_calls": 2},
                        "sip": {"port": 5070, "codecs": ["PCMU"]},
                        "api": {"listen": "127.0.0.1:9090"},
                        "calls": {"recordings_max_mb": 50}, "directory": {"file": "x.csv"}})
    assert needs_restart(old, new) == [
        "device.max_calls", "sip.port", "sip.codecs", "calls.recordings_max_mb", "api.listen"]
    assert {"device.language", "lines[0].ringtone", "lines[0].label", "lines[0].registrar",
            "lines[0].password", "lines[0].transport", "directory.file"} <= set(
        changed_keys(old, new))  # a line registers again with its new account, live


def test_adding_a_line_is_a_restart_and_new_schema_keys_default_to_restart() -> None:
    two = base()["lines"] + [{"user": "1002", "registrar": "127.0.0.1:5060"}]
    assert needs_restart(config(), parse_config({"lines": two})) == ["lines"]
    assert not is_live("device.some_future_key") and not is_live("sim.mic_file")
    assert is_live("lines[3].auto_answer") and is_live("roles[1].number")
    assert is_live("features.group_login") and is_live("lines[0].user")
    assert not is_live("calls.default_role")  # a terminal takes its role once, at start


def test_every_device_key_is_classified_on_purpose() -> None:
    restart = {f.name for f in dataclasses.fields(DeviceConfig)
               if not is_live(f"device.{f.name}")}
    assert restart == {"max_calls"}


# --- provisioning's lock and reset lists ------------------------------------------------------


def test_a_locked_key_cannot_be_set_and_its_old_value_is_not_used(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.set("device.language", "en")
    store.set("calls.call_waiting", False)
    store.locked = frozenset({"device"})  # a table locks every key below it
    config = store.apply()
    assert config.device.language == "sv" and config.calls.call_waiting is False
    with pytest.raises(ConfigError, match="locked by provisioning"):
        store.set("device.language", "en")
    assert file_of(store)["device"] == {"language": "en"}  # kept, for when it is unlocked
    store.locked = frozenset()
    assert store.apply().device.language == "en"


def test_reset_drops_the_users_values_once(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.set("device.ringtone", "soft")
    store.set("device.language", "en")
    assert store.drop(["device.ringtone", "calls"]) == ["device.ringtone"]
    assert file_of(store) == {"device": {"language": "en"}}
    assert store.drop(["device.ringtone"]) == []
    assert store.set("device.ringtone", "beep").device.ringtone == "beep"  # may be set again
