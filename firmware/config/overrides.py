"""Local overrides: the settings the user changes on the phone, layered over the config file.

The provisioned config file stays as provisioning wrote it; what the user picks in the phone's
menus (language, time zone, ringtone, key clicks, call waiting, forwarding) is kept beside it in
``<data>/state/overrides.json``, shaped like the config itself::

    {"device": {"language": "en", "ringtone": "soft"}, "calls": {"call_waiting": false}}

The phone runs on ``merged(base)``: the base config with the overrides deep-merged on top
(tables merge key by key; a list or a value replaces the base's). Provisioning's "local changes"
use the same layer.

Rules:

- Only the keys in ``LOCAL_KEYS`` may be overridden; any other key is refused with a
  ``ConfigError`` that says why (unknown key, provisioned only, or a secret: passwords and tokens
  are never set on the phone).
- ``set()`` validates by building the whole merged config with ``parse_config``; on any problem
  it raises ``ConfigError`` with the schema's message and stores nothing. A value equal to the
  provisioned one is not kept as an override, so the phone follows provisioning again.
- The file is written atomically (``firmware.storage``). A file that is not JSON of this shape is
  moved aside to ``overrides.json.corrupt`` (then ``.corrupt.1``, ...) and the phone starts with
  no overrides; entries for keys that may not be overridden are dropped (the original is moved
  aside and the rest written back). An override that no longer validates against a new base
  config (provisioning changed something) is dropped when ``apply()`` meets it. Each of these is
  logged and listed in ``problems``; nothing raises.

Live or restart (``needs_restart``): a changed key is *live* when it is in ``LIVE_KEYS``: the
phone reads it from its current config each time it is used, or re-derives it in
``Phone.apply_config`` (tone country, time zone, dial plan), or re-applies it there: a changed
line registers again with its new account, the directory file and LDAP are read again, the BLF
keys watch anew. Every other key, including any key added to the schema later, needs a restart:
the SIP stack, lines added or removed, the control API, the simulated board,
``device.max_calls`` (pjsua's call limit),
``calls.recordings_max_mb`` (the recording store is sized at start) and ``calls.default_role``
(a terminal takes its role once, at start) are only read at start.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from firmware.config.load import ConfigError, ConfigProblem, config_to_dict, parse_config
from firmware.config.schema import PhoneConfig
from firmware.storage import atomic_write_json, move_aside

log = logging.getLogger("luren.config.overrides")

OVERRIDES_FILE: Final = "state/overrides.json"
"""Where the overrides live, relative to the data directory."""

SOURCE: Final = "local settings"
"""How ``ConfigError`` messages from this module name the overrides."""

LOCAL_KEYS: Final[frozenset[str]] = frozenset({
    "device.language", "device.time_zone", "device.ringtone", "device.key_tones",
    "calls.call_waiting", "calls.dnd_action", "calls.dnd_forward_to",
    "calls.forward_always", "calls.forward_busy", "calls.forward_no_answer",
    "calls.forward_no_answer_after",
})
"""The keys the user may change on the phone: personal choices, never the phone's wiring to the
PBX (lines, SIP, API), site-wide choices (tone country, dial plan) or secrets."""

LIVE_KEYS: Final[frozenset[str]] = frozenset({
    "device.language", "device.tone_country", "device.time_zone", "device.dial_plan",
    "device.interdigit_timeout", "device.no_answer_timeout", "device.voicemail_number",
    "device.ringtone", "device.key_tones", "device.name",
    "calls.call_waiting", "calls.dnd_action", "calls.dnd_forward_to", "calls.vip_numbers",
    "calls.forward_always", "calls.forward_busy", "calls.forward_no_answer",
    "calls.forward_no_answer_after", "calls.ring_timeout", "calls.transfer_timeout",
    "features.*", "keys.*", "roles", "roles[*].*", "firmware.*",
    "lines[*].*", "directory.*", "blf", "blf[*].*",
})
"""Changed keys the running phone takes on without a restart. ``[*]`` stands for any index,
a final ``.*`` for every key of the table."""

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[\d+\])?")


# --- which keys ---------------------------------------------------------------------------------


def local_key_problem(key_path: str) -> str | None:
    """Why ``key_path`` (e.g. ``"device.language"``) may not be changed on the phone, or None."""
    if key_path in LOCAL_KEYS:
        return None
    found = _schema_field(key_path)
    if found is not None and found.metadata.get("secret"):
        return "is a secret (password or token) and is never changed on the phone"
    if found is not None:
        return "cannot be changed on the phone; the provisioned config file sets it"
    return "unknown key; the phone can change: " + ", ".join(sorted(LOCAL_KEYS))


def _stored_key_problem(key_path: str) -> str | None:
    """Why a key found in the overrides file cannot be kept (None: it can)."""
    return None if local_key_problem(key_path) is None else technician_key_problem(key_path)


def technician_key_problem(key_path: str) -> str | None:
    """Why a technician may not set ``key_path`` locally (the console's ``config set``), or
    None: any single setting of the schema, but no secret and nothing inside a list (lines,
    BLF keys ...), which provisioning sends whole."""
    if "[" in key_path:
        return "is inside a list, which comes whole from provisioning (prov url, prov run)"
    found = _schema_field(key_path)
    if found is None:
        return "unknown key (config shows them all)"
    if found.metadata.get("secret") or not found.repr:
        return "is a secret (password, token or hash) and is never set on the phone"
    kind: Any = found.type
    if isinstance(kind, str):
        kind = typing.get_type_hints(_owner(key_path)).get(found.name)
    inner = typing.get_args(kind)[0] if typing.get_origin(kind) is list else kind
    if dataclasses.is_dataclass(inner):
        return "is a table or a list of tables: set one of its keys"
    return None


def _owner(key_path: str) -> Any:
    """The schema class holding the last part of a dotted path (the path exists)."""
    cls: Any = PhoneConfig
    for part in key_path.split(".")[:-1]:
        cls = typing.get_type_hints(cls)[part]
    return cls


def _schema_field(key_path: str) -> dataclasses.Field[Any] | None:
    """The schema field a dotted path (``lines[0].password`` too) names, or None."""
    cls: Any = PhoneConfig
    found = None
    for part in key_path.split("."):
        match = _PART.fullmatch(part)
        if match is None or not dataclasses.is_dataclass(cls):
            return None
        found = {f.name: f for f in dataclasses.fields(cls)}.get(match[1])
        if found is None:
            return None
        cls = typing.get_type_hints(cls)[match[1]]
        if typing.get_origin(cls) is list:
            cls = typing.get_args(cls)[0]
    return found


# --- merging ------------------------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``overrides`` on top: tables merge by key, anything else replaces
    (a list is replaced whole, never merged item by item)."""
    result = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"device.language": "en"}`` -> ``{"device": {"language": "en"}}``."""
    nested: dict[str, Any] = {}
    for key_path, value in sorted(flat.items()):
        *tables, name = key_path.split(".")
        table = nested
        for part in tables:
            table = table.setdefault(part, {})
        table[name] = copy.deepcopy(value)
    return nested


def _flatten(nested: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"device": {"language": "en"}}`` -> ``("device.language", "en")``."""
    for key, value in nested.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _flatten(value, path)
        else:
            yield path, value


def _as_dict(base: Mapping[str, Any] | PhoneConfig) -> dict[str, Any]:
    if isinstance(base, PhoneConfig):
        return config_to_dict(base, include_secrets=True)
    return copy.deepcopy(dict(base))


def _value_at(document: Mapping[str, Any], key_path: str) -> Any:
    value: Any = document
    for part in key_path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


# --- the store ----------------------------------------------------------------------------------


class OverrideStore:
    """The user's local overrides, kept in one JSON file.

    ``base`` is the provisioned config (a parsed-TOML dict or a ``PhoneConfig``); ``set()`` and
    ``reset()`` need it to validate, and ``apply()`` can give it (again, after provisioning).
    """

    def __init__(self, path: Path,
                 base: Mapping[str, Any] | PhoneConfig | None = None) -> None:
        self.path = Path(path)
        self.problems: list[str] = []
        self.locked: frozenset[str] = frozenset()  # provisioning's lock list: local values ignored
        self._base: dict[str, Any] | None = None if base is None else _as_dict(base)
        self._values: dict[str, Any] = {}
        self._load()

    # -- reading -----------------------------------------------------------------------------

    def get(self, key_path: str | None = None) -> Any:
        """All overrides as nested tables (a copy), or the one at ``key_path`` (None if unset)."""
        if key_path is None:
            return _nest(self._values)
        return copy.deepcopy(self._values.get(key_path))

    def merged(self, base: Mapping[str, Any] | PhoneConfig) -> dict[str, Any]:
        """``base`` (a config dict or ``PhoneConfig``) with the overrides deep-merged on top."""
        return deep_merge(_as_dict(base), _nest(self._values))

    def apply(self, base: Mapping[str, Any] | PhoneConfig | None = None) -> PhoneConfig:
        """The config the phone runs on: the base (``base`` if given, from now on) with the
        overrides. Overrides the base no longer accepts are dropped (logged, in ``problems``).
        Raises ConfigError only when the base itself is invalid."""
        if base is not None:
            self._base = _as_dict(base)
        base_dict = self._need_base()
        values = {k: v for k, v in self._values.items() if not self.is_locked(k)}
        while values:
            try:
                config = parse_config(deep_merge(base_dict, _nest(values)), SOURCE)
            except ConfigError as exc:
                values = self._without_culprits(values, exc)
            else:
                self._keep({**values, **self._locked_values()})
                return config
        self._keep(self._locked_values())
        return parse_config(base_dict)

    def is_locked(self, key_path: str) -> bool:
        """Whether provisioning locks ``key_path`` (itself or a table above it)."""
        return any(key_path == lock or key_path.startswith(lock + ".") for lock in self.locked)

    def _locked_values(self) -> dict[str, Any]:
        """Overrides kept but not used while locked (they apply again once unlocked)."""
        return {k: v for k, v in self._values.items() if self.is_locked(k)}

    # -- changing ----------------------------------------------------------------------------

    def set(self, key_path: str, value: Any, *, technician: bool = False) -> PhoneConfig:
        """Override ``key_path`` (e.g. ``"device.language"``) with ``value``; the new config.
        ``technician``: the console's wider choice of keys (``technician_key_problem``).

        Raises ConfigError (nothing stored) when the key may not be changed on the phone or the
        merged config is invalid; OSError when the file cannot be written (nothing changed).
        """
        check = technician_key_problem if technician else local_key_problem
        problem = check(key_path) or (
            "is locked by provisioning: the administrator sets it" if self.is_locked(key_path)
            else None)
        if problem is not None:
            raise ConfigError([ConfigProblem(key_path, problem)], SOURCE)
        self.apply()
        values = {**self._values, key_path: copy.deepcopy(value)}
        config = parse_config(deep_merge(self._need_base(), _nest(values)), SOURCE)
        if _value_at(config_to_dict(parse_config(self._need_base())), key_path) == value:
            del values[key_path]  # the provisioned value: follow provisioning again
        self._save(values)
        return config

    def reset(self, key_path: str) -> PhoneConfig:
        """Drop the override of ``key_path`` (nothing when there is none); the new config.
        Raises ConfigError when the config without it is invalid (nothing stored)."""
        self.apply()
        values = {k: v for k, v in self._values.items() if k != key_path}
        config = parse_config(deep_merge(self._need_base(), _nest(values)), SOURCE)
        self._save(values)
        return config

    def drop(self, key_paths: Iterable[str]) -> list[str]:
        """Provisioning's reset list: forget the user's values at these paths (and below);
        returns the keys dropped. OSError when the file cannot be written."""
        gone = sorted(k for k in self._values
                      if any(k == path or k.startswith(path + ".") for path in key_paths))
        if gone:
            self._save({k: v for k, v in self._values.items() if k not in gone})
            log.info("local settings reset by provisioning: %s", ", ".join(gone))
        return gone

    def clear(self) -> PhoneConfig:
        """Drop every override: the provisioned config again."""
        config = parse_config(self._need_base())
        self._save({})
        return config

    # -- internals ---------------------------------------------------------------------------

    def _need_base(self) -> dict[str, Any]:
        if self._base is None:
            raise ValueError("OverrideStore has no base config: pass base= or call apply(base)")
        return self._base

    def _without_culprits(self, values: dict[str, Any], exc: ConfigError) -> dict[str, Any]:
        """``values`` less the overrides ``exc`` blames (same key, else same table, else all)."""
        paths = {problem.path for problem in exc.problems}
        tables = {path.split(".")[0] for path in paths}
        bad = (set(values) & paths or {k for k in values if k.split(".")[0] in tables}
               or set(values))
        for key in sorted(bad):
            self._problem(f"{key} = {json.dumps(values[key])} no longer fits the provisioned "
                          f"config ({'; '.join(p.message for p in exc.problems)}): dropped")
        return {k: v for k, v in values.items() if k not in bad}

    def _keep(self, values: dict[str, Any]) -> None:
        """Store ``values`` if they differ (dropped overrides); a failed write is a problem."""
        if values == self._values:
            return
        try:
            self._save(values)
        except OSError as exc:
            self._values = values
            self._problem(f"{self.path} could not be written ({exc.strerror or exc})")

    def _save(self, values: dict[str, Any]) -> None:
        atomic_write_json(self.path, _nest(values))
        self._values = values

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._problem(f"{self.path} cannot be read ({exc.strerror}): no local settings")
            return
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._set_aside(f"is damaged ({exc.__class__.__name__}: {exc})", {})
            return
        if not isinstance(document, dict):
            self._set_aside("is not a JSON object of tables", {})
            return
        values = dict(_flatten(document))
        # the user's keys, and the wider set a technician may set at the console
        refused = {k: why for k in values if (why := _stored_key_problem(k)) is not None}
        kept = {k: v for k, v in values.items() if k not in refused}
        if refused:
            self._set_aside("had keys that cannot be set locally ("
                            + "; ".join(f"{k} {why}" for k, why in refused.items()) + ")", kept)
        self._values = kept

    def _set_aside(self, what: str, kept: dict[str, Any]) -> None:
        try:
            aside = move_aside(self.path)
        except OSError as exc:
            self._problem(f"{self.path} {what}; moving it aside failed ({exc.strerror})")
            return
        self._problem(f"{self.path} {what}: moved aside to {aside.name}; "
                      f"kept {len(kept)} local setting(s)")
        if kept:
            try:
                atomic_write_json(self.path, _nest(kept))
            except OSError as exc:
                self._problem(f"{self.path}: the kept settings could not be written "
                              f"({exc.strerror})")

    def _problem(self, text: str) -> None:
        log.warning("local settings: %s", text)
        self.problems.append(text)




# --- live or restart ----------------------------------------------------------------------------


def changed_keys(old: PhoneConfig, new: PhoneConfig) -> list[str]:
    """The dotted keys whose values differ, e.g. ``["device.language", "lines[0].registrar"]``.

    Tables compare key by key, and so do lists of tables of the same length; any other list
    (``sip.codecs``, or ``lines`` when lines were added or removed) is one key.
    """
    return list(_diff(config_to_dict(old, include_secrets=True),
                      config_to_dict(new, include_secrets=True), ""))


def _diff(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            yield from _diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)
    elif (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
          and all(isinstance(item, dict) for item in [*old, *new])):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            yield from _diff(before, after, f"{path}[{index}]")
    elif old != new:
        yield path


def is_live(key: str) -> bool:
    """Whether a change of ``key`` (as ``changed_keys`` names it) applies without a restart."""
    pattern = re.sub(r"\[\d+\]", "[*]", key)
    return pattern in LIVE_KEYS or any(
        live.endswith(".*") and pattern.startswith(live[:-1]) for live in LIVE_KEYS)


def needs_restart(old: PhoneConfig, new: PhoneConfig) -> list[str]:
    """The changed keys (``changed_keys``) that take effect only after a restart: every key not
    in ``LIVE_KEYS``."""
    return [key for key in changed_keys(old, new) if not is_live(key)]
