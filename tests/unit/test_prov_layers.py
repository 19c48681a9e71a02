"""Tests for layering provisioning files: common < model < MAC, then local changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from provisioning.layers import (
    Layered,
    LayerError,
    apply_local,
    drop_reset,
    merge_layers,
    parse_layer,
)

COMMON = """
[device]
language = "en"
ringtone = "classic"
tone_country = "de"

[calls]
call_waiting = true
vip_numbers = ["100", "101"]

[[lines]]
user = "100"
label = "Reception"

[[lines]]
user = "200"
label = "Sales"

[_provisioning]
lock = ["device.tone_country"]
"""

MODEL = """
[device]
ringtone = "soft"

[keys]
line_keys = 4

[_provisioning]
reset = ["device.ringtone"]
"""

MAC = """
[device]
language = "de"

[calls]
vip_numbers = ["999"]

[[lines]]
user = "4711"
password = "s3cret"

[_provisioning]
lock = ["device.language", "calls"]
reset = ["device.ringtone", "calls.forward_always"]
"""


def _three() -> list[tuple[str, dict[str, Any]]]:
    return [(name, parse_layer(name, text))
            for name, text in (("common", COMMON), ("model", MODEL), ("mac", MAC))]


def test_three_layer_merge() -> None:
    layered = merge_layers(_three())
    assert layered.config == {
        "device": {"language": "de", "ringtone": "soft", "tone_country": "de"},
        "calls": {"call_waiting": True, "vip_numbers": ["999"]},
        "lines": [{"user": "4711", "password": "s3cret"}],  # replaced whole, not merged by index
        "keys": {"line_keys": 4},
    }
    assert "_provisioning" not in layered.config
    assert layered.locked == {"device.tone_country", "device.language", "calls"}
    assert layered.reset == {"device.ringtone", "calls.forward_always"}


def test_sources_map() -> None:
    assert merge_layers(_three()).sources == {
        "device.language": "mac",
        "device.ringtone": "model",
        "device.tone_country": "common",
        "calls.call_waiting": "common",
        "calls.vip_numbers": "mac",
        "lines": "mac",
        "keys.line_keys": "model",
    }


def test_table_and_value_replace_each_other() -> None:
    layered = merge_layers([
        ("common", {"a": {"b": 1, "c": {"d": 2}}, "x": 5}),
        ("model", {"a": {"c": "flat"}, "x": {"y": 6, "z": {}}}),
    ])
    assert layered.config == {"a": {"b": 1, "c": "flat"}, "x": {"y": 6, "z": {}}}
    assert layered.sources == {"a.b": "common", "a.c": "model", "x.y": "model"}


def test_inputs_not_mutated_and_not_shared() -> None:
    layers = _three()
    before = copy.deepcopy(layers)
    layered = merge_layers(layers)
    assert layers == before
    layered.config["calls"]["vip_numbers"].append("x")
    layered.config["device"]["language"] = "fr"
    assert layers == before

    local = {"device": {"ringtone": "bells"}, "lines": [{"user": "1"}]}
    local_before = copy.deepcopy(local)
    config_before = copy.deepcopy(layered.config)
    config, _ = apply_local(layered, local)
    config["lines"][0]["user"] = "changed"
    config["device"]["ringtone"] = "changed"
    assert local == local_before
    assert layered.config == config_before

    new_local, _ = drop_reset(local, ["device.ringtone"])
    assert local == local_before
    new_local["lines"][0]["user"] = "changed"
    assert local == local_before


def test_no_layers() -> None:
    layered = merge_layers([])
    assert layered == Layered(config={}, locked=frozenset(), reset=frozenset(), sources={})
    assert apply_local(layered, {"device": {"language": "fr"}}) == (
        {"device": {"language": "fr"}}, []
    )


def test_missing_layers_and_empty_file() -> None:
    layered = merge_layers([("mac", parse_layer("mac", MAC)), ("empty", parse_layer("empty", ""))])
    assert layered.config["device"] == {"language": "de"}
    assert layered.sources["device.language"] == "mac"


def test_apply_local_merges_and_lock_beats_local() -> None:
    layered = merge_layers(_three())
    local = {
        "device": {"language": "fr", "ringtone": "bells", "tone_country": "us", "key_tones": False},
        "calls": {"call_waiting": False, "forward_always": "555"},  # all of calls is locked
        "lines": [{"user": "local"}],
    }
    config, ignored = apply_local(layered, local)
    assert config == {
        "device": {"language": "de", "ringtone": "bells", "tone_country": "de",
                   "key_tones": False},
        "calls": {"call_waiting": True, "vip_numbers": ["999"]},
        "lines": [{"user": "local"}],  # a local list replaces whole too
        "keys": {"line_keys": 4},
    }
    assert ignored == [
        "calls.call_waiting", "calls.forward_always", "device.language", "device.tone_country",
    ]


def test_parent_lock_covers_whole_table_value() -> None:
    layered = merge_layers([
        ("common", parse_layer("common", COMMON)),
        ("mac", {"_provisioning": {"lock": ["calls"]}}),
    ])
    config, ignored = apply_local(layered, {"calls": {"dnd_action": "reject"}})
    assert config["calls"] == {"call_waiting": True, "vip_numbers": ["100", "101"]}
    assert ignored == ["calls.dnd_action"]
    config, ignored = apply_local(layered, {"calls": "nonsense"})
    assert config["calls"] == {"call_waiting": True, "vip_numbers": ["100", "101"]}
    assert ignored == ["calls"]


def test_local_cannot_bypass_child_lock_by_replacing_parent() -> None:
    layered = merge_layers([("common", parse_layer("common", COMMON))])
    # "device.tone_country" is locked: replacing the whole device table would change it.
    config, ignored = apply_local(layered, {"device": "flat"})
    assert config["device"]["tone_country"] == "de"
    assert ignored == ["device"]
    # A table with a locked key not set by provisioning: the locked key stays unset.
    layered = merge_layers([("common", {"_provisioning": {"lock": ["device.language"]}})])
    config, ignored = apply_local(layered, {"device": {"language": "fr", "ringtone": "x"}})
    assert config == {"device": {"ringtone": "x"}}
    assert ignored == ["device.language"]


def test_lock_is_by_path_segment_not_prefix() -> None:
    layered = merge_layers([("common", {"_provisioning": {"lock": ["device.lang"]}})])
    config, ignored = apply_local(layered, {"device": {"language": "fr", "lang": "x"}})
    assert config == {"device": {"language": "fr"}}
    assert ignored == ["device.lang"]


def test_locked_local_table_reports_its_leaves() -> None:
    layered = merge_layers([("common", {"_provisioning": {"lock": ["calls"]}})])
    _, ignored = apply_local(layered, {"calls": {"b": 1, "a": {"c": 2}, "e": {}}})
    assert ignored == ["calls.a.c", "calls.b", "calls.e"]


def test_drop_reset_removes_values_and_empty_tables() -> None:
    layered = merge_layers(_three())
    local = {
        "device": {"ringtone": "bells"},
        "calls": {"forward_always": "555", "call_waiting": False},
        "keys": {},  # was already empty: not touched
    }
    new_local, removed = drop_reset(local, layered.reset)
    assert new_local == {"calls": {"call_waiting": False}, "keys": {}}
    assert removed == ["calls.forward_always", "device.ringtone"]
    # Once reset, the provisioned value shows again.
    config, _ = apply_local(layered, new_local)
    assert config["device"]["ringtone"] == "soft"


def test_drop_reset_deep_cleanup_and_whole_tables() -> None:
    local = {"a": {"b": {"c": {"d": 1}}, "keep": 2}, "t": {"x": 1, "y": {"z": 2}}}
    new_local, removed = drop_reset(local, ["a.b.c.d", "t", "t.x", "nothing.here", "a.keep.x"])
    assert new_local == {"a": {"keep": 2}}
    assert removed == ["a.b.c.d", "t.x", "t.y.z"]
    assert drop_reset({}, ["device.ringtone"]) == ({}, [])
    assert drop_reset({"a": 1}, []) == ({"a": 1}, [])


def test_drop_reset_refuses_invalid_path() -> None:
    with pytest.raises(LayerError, match=r"'lines\.0\.user ' is not a key path"):
        drop_reset({}, ["lines.0.user "])


def test_invalid_toml_names_the_layer() -> None:
    with pytest.raises(LayerError, match=r"^mac provisioning file is not valid TOML: .*"
                                         r"\(at line 3, column \d+\)"):
        parse_layer("mac", '[device]\nlanguage = "de"\nringtone = \n')
    with pytest.raises(LayerError, match="model provisioning file is not valid TOML"):
        parse_layer("model", "[device]\nlanguage = 'a'\n[device]\n")


@pytest.mark.parametrize("path", [
    "", ".", "device.", ".device", "device..language", "device language", "device-name",
    "lines[0].user", "gerät.sprache", "device.*",
])
def test_invalid_paths(path: str) -> None:
    text = f'[_provisioning]\nlock = ["ok.path", {path!r}]\n'.replace("'", '"')
    with pytest.raises(LayerError, match=r"common provisioning file: _provisioning\.lock entry"):
        parse_layer("common", text)
    with pytest.raises(LayerError, match=r"mac provisioning file: _provisioning\.reset entry"):
        merge_layers([("mac", {"_provisioning": {"reset": [path]}})])


def test_valid_paths() -> None:
    layer = parse_layer("common", '[_provisioning]\nlock = ["device", "a_b.C9.x", "lines"]\n'
                                  'reset = []\n')
    assert merge_layers([("common", layer)]).locked == {"device", "a_b.C9.x", "lines"}


def test_path_into_array_is_refused() -> None:
    layers = [*_three(), ("user", {"_provisioning": {"lock": ["lines.0.user"]}})]
    with pytest.raises(LayerError, match=r"user provisioning file: _provisioning\.lock path "
                                         r"'lines\.0\.user' goes inside 'lines', which is not a "
                                         r"table.*lock 'lines' as a whole"):
        merge_layers(layers)
    with pytest.raises(LayerError, match=r"reset path 'device\.language\.x' goes inside"):
        merge_layers([*_three(), ("x", {"_provisioning": {"reset": ["device.language.x"]}})])


@pytest.mark.parametrize("text, message", [
    ('_provisioning = ["device.language"]\n', "'_provisioning' must be a table"),
    ('_provisioning = "lock"\n', "'_provisioning' must be a table"),
    ('[_provisioning]\nlock = "device.language"\n', r"_provisioning\.lock must be a list.*str"),
    ("[_provisioning]\nreset = {device = 1}\n", r"_provisioning\.reset must be a list.*dict"),
    ("[_provisioning]\nlock = [1, 2]\n", r"_provisioning\.lock entry 1 is not a key path"),
    ("[_provisioning]\nlock = [['a']]\n", r"_provisioning\.lock entry \['a'\]"),
    ('[_provisioning]\nlocks = ["a"]\n', "unknown key 'locks' in \\[_provisioning\\]"),
])
def test_provisioning_table_of_wrong_types(text: str, message: str) -> None:
    with pytest.raises(LayerError, match=message):
        parse_layer("model", text)
    with pytest.raises(LayerError, match=r"^model provisioning file"):
        parse_layer("model", text)


def test_top_level_must_be_a_table() -> None:
    with pytest.raises(LayerError, match="mac provisioning file: the top level must be a table"):
        merge_layers([("common", {}), ("mac", ["not", "a", "table"])])  # type: ignore[list-item]
