"""Load and validate the phone configuration; generate the commented default file.

Validation is driven by the schema: every dataclass field is checked for its type (bool and int
are never confused), list element types, ``choices``, ``min``/``max`` and ``min_items``/
``max_items`` from its metadata, and whether it is required. On top of that, validators
registered here per field (``@field_check``) or per table (``@record_check``) check syntax that
needs code. All problems are collected and raised together as one ``ConfigError``. Nothing here
ever writes a file.
"""

import dataclasses
import difflib
import ipaddress
import json
import re
import textwrap
import tomllib
import typing
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, get_origin

from firmware.config.schema import (
    ApiConfig,
    BlfConfig,
    CallsConfig,
    ConsoleConfig,
    DectConfig,
    DeviceConfig,
    FeaturesConfig,
    GroupConfig,
    LineConfig,
    PhoneConfig,
    ProvisioningConfig,
    RoleConfig,
    SipConfig,
    VoicemailConfig,
    default_of,
    field_rules,
    host_error,
    is_loopback_host,
    is_required,
    join_host_port,
    parse_sip_address,
    split_host_port,
    tables,
)
from firmware.dialplan import dial_plan_error

MAX_CONFIG_BYTES: Final = 1024 * 1024
"""Larger files are refused unread: a phone's config is a few kilobytes."""

REDACTED: Final = "********"
"""What ``config_to_dict()`` shows instead of a non-empty secret."""

SAMPLE_LINE: Final = {"user": "1001", "registrar": "127.0.0.1:5060"}
"""Placeholder values for the required line keys in the generated default config."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config: where (``lines[1].transport``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """A config that cannot be used, with every problem found in it."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str = "<config>") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        """One problem per line, e.g. ``config.toml: lines[1].transport: must be one of ...``."""
        return "\n".join(f"{self.source}: {problem}" for problem in self.problems)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems, self.source))


# --- registered validators ----------------------------------------------------------------------

FieldCheck = Callable[[Any], str | None]
"""Takes a field's value (already of the right type) and returns why it is invalid, or None."""

RecordCheck = Callable[[dict[str, Any]], Iterator[tuple[str, str]]]
"""Takes a table's valid values by key and yields (path relative to the table, message)."""

FIELD_CHECKS: dict[tuple[type, str], FieldCheck] = {}
RECORD_CHECKS: dict[type, list[RecordCheck]] = {}


def field_check(cls: type, name: str) -> Callable[[FieldCheck], FieldCheck]:
    """Register a validator for the field ``name`` of the table class ``cls``."""
    def register(check: FieldCheck) -> FieldCheck:
        FIELD_CHECKS[(cls, name)] = check
        return check
    return register


def record_check(cls: type) -> Callable[[RecordCheck], RecordCheck]:
    """Register a validator that looks at several fields of the table class ``cls``."""
    def register(check: RecordCheck) -> RecordCheck:
        RECORD_CHECKS.setdefault(cls, []).append(check)
        return check
    return register


_SIP_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
_SIP_ADDRESS_HINT = "expected host[:port] or sip:host[:port]"
_SIP_ADDRESS_EXAMPLE = 'e.g. "127.0.0.1:5060" or "sip:pbx.example.se"'


@field_check(LineConfig, "user")
def _check_sip_user(user: str) -> str | None:
    if _SIP_USER.fullmatch(user):
        return None
    return "must be a SIP user part: letters, digits and -_.!~*'()&=+$,;?/% (e.g. \"1001\")"


def _sip_address_error(address: str) -> str | None:
    try:
        parse_sip_address(address)
    except ValueError as exc:
        return f"{exc}; {_SIP_ADDRESS_HINT}"
    return None


@field_check(LineConfig, "registrar")
def _check_registrar(registrar: str) -> str | None:
    if not registrar:
        return f"must not be empty; {_SIP_ADDRESS_HINT}, {_SIP_ADDRESS_EXAMPLE}"
    return _sip_address_error(registrar)


@field_check(LineConfig, "outbound_proxy")
def _check_outbound_proxy(proxy: str) -> str | None:
    return _sip_address_error(proxy) if proxy else None


@field_check(DeviceConfig, "time_zone")
def _check_time_zone(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return 'is not a known IANA time zone (e.g. "Europe/Stockholm" or "UTC")'
    return None


@field_check(DeviceConfig, "dial_plan")
def _check_dial_plan(plan: str) -> str | None:
    return dial_plan_error(plan)


@field_check(DeviceConfig, "voicemail_number")
def _check_voicemail_number(number: str) -> str | None:
    return None if re.fullmatch(r"[0-9*#]*", number) else "may contain only digits, * and #"


@field_check(ProvisioningConfig, "url")
def _check_provisioning_url(url: str) -> str | None:
    if not url or re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        return None
    return "must be an http:// or https:// folder URL, e.g. https://prov.example.se/luren/"


@field_check(ProvisioningConfig, "trusted_keys")
def _check_trusted_keys(keys: list[str]) -> str | None:
    for entry in keys:
        key_id, sep, key = entry.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key_id) or not key.strip():
            return f'{entry[:40]!r} is not "key-id=base64 public key"'
    return None


@field_check(ProvisioningConfig, "pin_sha256")
def _check_pins(pins: list[str]) -> str | None:
    for pin in pins:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", pin.replace(":", "")):
            return f"{pin[:20]!r}... is not a SHA-256 fingerprint (64 hex digits)"
    return None


@field_check(VoicemailConfig, "pin")
def _check_pin(pin: str) -> str | None:
    return None if re.fullmatch(r"(\d{4,8})?", pin) else "must be 4 to 8 digits, or empty"


def _check_dial_string(number: str) -> str | None:
    return None if re.fullmatch(r"[0-9*#]*", number) else "may contain only digits, * and #"


for _cls, _names in ((CallsConfig, ("dnd_forward_to", "forward_always", "forward_busy",
                                    "forward_no_answer")),
                     (RoleConfig, ("number", "prefix")),
                     (VoicemailConfig, ("switchboard", "referral_code")),
                     (GroupConfig, ("login_code", "logout_code")),
                     (FeaturesConfig, ("park", "pickup", "directed_pickup", "intrusion",
                                       "group_login", "group_logout"))):
    for _name in _names:
        field_check(_cls, _name)(_check_dial_string)


@field_check(BlfConfig, "key")
@field_check(GroupConfig, "key")
def _check_group_key(key: str) -> str | None:
    if key == "" or re.fullmatch(r"soft[1-4]|line([1-9]|1[0-6])", key):
        return None
    return "must be soft1-soft4, line1-line16 or empty"


@field_check(CallsConfig, "vip_numbers")
def _check_vip_numbers(numbers: list[str]) -> str | None:
    bad = [n for n in numbers if not n or _check_dial_string(n)]
    return f"{toml_literal(bad[0])} is not a number (digits, * and #)" if bad else None


@record_check(CallsConfig)
def _check_dnd_forward(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if values.get("dnd_action") == "forward" and values.get("dnd_forward_to") == "":
        yield "dnd_forward_to", 'required when dnd_action = "forward"'


@record_check(PhoneConfig)
def _check_roles(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    names = [role.name for role in values.get("roles", [])]
    for index, name in enumerate(names):
        if not name:
            yield f"roles[{index}].name", "must not be empty"
        elif names.index(name) != index:
            yield f"roles[{index}].name", f"roles[{names.index(name)}] has that name already"
    calls = values.get("calls")
    if calls is not None and calls.default_role and calls.default_role not in names:
        known = ", ".join(names) or "none defined"
        yield "calls.default_role", f"{toml_literal(calls.default_role)} is not a role ({known})"


@field_check(SipConfig, "bind_address")
def _check_bind_address(address: str) -> str | None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return 'must be an IP address, e.g. "0.0.0.0" or "192.168.1.20"'
    return None


@field_check(SipConfig, "public_address")
def _check_public_address(address: str) -> str | None:
    problem = host_error(address) if address else None
    return f"{problem}; expected an IP address or host name without a port" if problem else None


@field_check(SipConfig, "codecs")
def _check_codecs_unique(codecs: list[str]) -> str | None:
    twice = sorted({codec for codec in codecs if codecs.count(codec) > 1})
    return f"lists {', '.join(twice)} more than once" if twice else None


@field_check(ConsoleConfig, "password_hash")
def _check_console_hash(value: str) -> str | None:
    from firmware.console.auth import check_hash_format

    return check_hash_format(value) if value else None


@field_check(DectConfig, "pin")
def _check_dect_pin(pin: str) -> str | None:
    return None if len(pin) == 4 and pin.isdigit() and pin.isascii() else "must be 4 digits"


@record_check(PhoneConfig)
def _check_handsets(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    lines = values.get("lines", [])
    seen: set[int] = set()
    for index, handset in enumerate(values.get("handsets", [])):
        if handset.number in seen:
            yield (f"handsets[{index}].number", f"handset {handset.number} is listed twice")
        seen.add(handset.number)
        if handset.line > len(lines) and (lines or not _provisioned_values(values)):
            yield (f"handsets[{index}].line",
                   f"there is no line {handset.line} (the config has {len(lines)})")


def _provisioned_values(values: dict[str, Any]) -> bool:
    prov = values.get("provisioning")
    return prov is not None and bool(prov.url or prov.discovery)


@field_check(ApiConfig, "listen")
def _check_listen(listen: str) -> str | None:
    try:
        _, port = split_host_port(listen)
    except ValueError as exc:
        return f'{exc}; expected host:port, e.g. "127.0.0.1:8080"'
    return None if port is not None else 'needs a port: host:port, e.g. "127.0.0.1:8080"'


@record_check(ApiConfig)
def _check_api_token(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    listen, token = values.get("listen"), values.get("token")
    if listen is None or token is None or token:
        return
    if not is_loopback_host(split_host_port(listen)[0]):
        yield "token", (
            f"required when listen is not a loopback address (listen = {toml_literal(listen)})")


@record_check(PhoneConfig)
def _check_unique_line_users(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    seen: dict[tuple[str, tuple[str, int]], int] = {}
    for index, line in enumerate(values.get("lines", [])):
        key = (line.user, parse_sip_address(line.registrar))
        if key in seen:
            where = join_host_port(*key[1])
            yield (f"lines[{index}].user", f"lines[{seen[key]}] already has user "
                   f"{toml_literal(line.user)} at registrar {where}")
        seen.setdefault(key, index)


# --- dial plan syntax -----------------------------------------------------------------------

# --- generic schema-driven parsing --------------------------------------------------------------

_INVALID: Final = object()
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Parser:
    """Walks a parsed TOML document along the schema, collecting problems."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def report(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path, message))

    def table(self, cls: type, data: Any, path: str) -> Any:
        """An instance of ``cls`` from ``data``, or _INVALID after reporting why not."""
        if not isinstance(data, dict):
            self.report(path, f"must be a table (got {_describe(data)})")
            return _INVALID
        before = len(self.problems)
        values = {}
        for f in dataclasses.fields(cls):
            value = self.key(cls, f, data, _join(path, f.name))
            if value is not _INVALID:
                values[f.name] = value
        self.unknown_keys(cls, data, path)
        for check in RECORD_CHECKS.get(cls, []):
            for relative, message in check(values):
                self.report(_join(path, relative), message)
        return cls(**values) if len(self.problems) == before else _INVALID

    def key(self, cls: type, f: dataclasses.Field[Any], data: dict[str, Any], path: str) -> Any:
        """The valid value of one key (its default when absent), or _INVALID."""
        if cls is PhoneConfig and f.name == "lines" and not data.get("lines") \
                and not _provisioned(data):
            # Lines may come from a provisioning server; otherwise a phone needs one.
            self.report(path, "must have at least 1 entry (got 0)" if "lines" in data else
                        "missing required key; add a [[lines]] table (or set [provisioning] "
                        "url or discovery, to get the lines from a provisioning server)")
            return _INVALID
        if f.name not in data:
            if not is_required(f):
                return default_of(f)
            hint = f"; add a [[{f.name}]] table" if get_origin(f.type) is list else ""
            self.report(path, "missing required key" + hint)
            return _INVALID
        value = self.value(f.type, data[f.name], path)
        if value is _INVALID or not self.constraints(cls, f, value, path):
            return _INVALID
        return value

    def value(self, kind: Any, value: Any, path: str) -> Any:
        """``value`` converted to the type ``kind``, or _INVALID after reporting why not."""
        if get_origin(kind) is list:
            return self.array(kind.__args__[0], value, path)
        if dataclasses.is_dataclass(kind):
            return self.table(kind, value, path)
        return self.scalar(kind, value, path)

    def array(self, item_kind: Any, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            self.report(path, f"must be an array (got {_describe(value)})")
            return _INVALID
        items = [self.value(item_kind, item, f"{path}[{i}]") for i, item in enumerate(value)]
        return _INVALID if any(item is _INVALID for item in items) else items

    def scalar(self, kind: type, value: Any, path: str) -> Any:
        name, accepts = _SCALARS[kind]
        if not accepts(value):
            self.report(path, f"must be {name} (got {_describe(value)})")
            return _INVALID
        if isinstance(value, str) and _CONTROL_CHARS.search(value):
            self.report(path, "must not contain control characters such as newlines")
            return _INVALID
        return float(value) if kind is float else value

    def constraints(self, cls: type, f: dataclasses.Field[Any], value: Any, path: str) -> bool:
        """Check metadata constraints and the registered field check; False if any failed."""
        before = len(self.problems)
        meta = f.metadata
        if "choices" in meta:
            self.choices(meta["choices"], value, path)
        if "min" in meta or "max" in meta:
            self.number_range(meta.get("min"), meta.get("max"), value, path)
        if "min_items" in meta or "max_items" in meta:
            self.length(meta.get("min_items"), meta.get("max_items"), value, path)
        check = FIELD_CHECKS.get((cls, f.name))
        if len(self.problems) == before and check is not None:
            problem = check(value)
            if problem:
                self.report(path, problem)
        return len(self.problems) == before

    def choices(self, allowed: tuple[str, ...], value: Any, path: str) -> None:
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if item not in allowed:
                where = path if index is None else f"{path}[{index}]"
                got = toml_literal(item)
                names = ", ".join(toml_literal(a) if a == "" else a for a in allowed)
                self.report(where, f"must be one of {names} (got {got})")

    def number_range(self, low: float | None, high: float | None, value: Any, path: str) -> None:
        in_range = (low is None or value >= low) and (high is None or value <= high)
        if not in_range:  # also catches nan, which compares False with everything
            bounds = f"between {low} and {high}" if None not in (low, high) else (
                f"at least {low}" if high is None else f"at most {high}")
            self.report(path, f"must be {bounds} (got {toml_literal(value)})")

    def length(self, low: int | None, high: int | None, value: list[Any], path: str) -> None:
        if low is not None and len(value) < low:
            self.report(path, f"must have at least {low} {_entries(low)} (got {len(value)})")
        if high is not None and len(value) > high:
            self.report(path, f"must have at most {high} {_entries(high)} (got {len(value)})")

    def unknown_keys(self, cls: type, data: dict[str, Any], path: str) -> None:
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key in names:
                continue
            close = difflib.get_close_matches(key, names, n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close else f"expected one of: {', '.join(names)}"
            )
            self.report(_join(path, _key_text(key)), f"unknown key; {hint}")


_SCALARS: Final[dict[type, tuple[str, Callable[[Any], bool]]]] = {
    str: ("a string", lambda v: isinstance(v, str)),
    bool: ("a boolean (true or false)", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _entries(count: int) -> str:
    return "entry" if count == 1 else "entries"


def _key_text(key: str) -> str:
    """A key as it would be written in TOML: bare when possible, else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_literal(key)


def _describe(value: Any) -> str:
    """A value's TOML type and text for messages, e.g. ``integer 5`` or ``a table``."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    kinds = {bool: "boolean", int: "integer", float: "float", str: "string"}
    kind = kinds.get(type(value), "date/time")
    return f"{kind} {toml_literal(value)}"


def toml_literal(value: Any) -> str:
    """``value`` written as a TOML value: ``"sv"``, ``true``, ``4.0``, ``["PCMA", "PCMU"]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_key_text(k)} = {toml_literal(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return repr(value)


# --- public entry points --------------------------------------------------------------------


def _provisioned(data: dict[str, Any]) -> bool:
    """Whether a config document sets [provisioning] url or discovery."""
    prov = data.get("provisioning")
    return isinstance(prov, dict) and bool(prov.get("url") or prov.get("discovery"))


def parse_config(data: dict[str, Any], source: str = "<config>") -> PhoneConfig:
    """Validate a parsed TOML document (or any dict of the same shape) into a PhoneConfig.

    Raises ConfigError listing every problem; ``source`` names the document in its messages.
    """
    parser = _Parser()
    config = parser.table(PhoneConfig, data, "")
    if parser.problems:
        raise ConfigError(parser.problems, source)
    return config


T = TypeVar("T")


def parse_table(cls: type[T], data: Any, path: str, source: str = "<config>") -> T:
    """Validate one table of a config (e.g. ``[provisioning]`` before the rest is known)."""
    parser = _Parser()
    value = parser.table(cls, data, path)
    if parser.problems:
        raise ConfigError(parser.problems, source)
    return typing.cast(T, value)


def load_document(path: Path) -> dict[str, Any]:
    """Read and parse the TOML file at ``path`` without validating it against the schema.

    Raises ConfigError when the file is missing, unreadable, too large, not UTF-8 or not TOML
    (naming the line and column).
    """
    source = str(path)
    text = _read_text(Path(path), source)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem("", f"invalid TOML: {exc}")], source) from None


def load_config(path: Path) -> PhoneConfig:
    """Read, parse and validate the TOML config file at ``path``; never writes anything.

    Raises ConfigError when the file is missing, unreadable, too large, not UTF-8, not TOML
    (naming the line and column) or not a valid config (listing every problem).
    """
    return parse_config(load_document(path), str(path))


def _read_text(path: Path, source: str) -> str:
    """The file's text, or ConfigError. A leading UTF-8 byte order mark is ignored."""
    def fail(message: str) -> ConfigError:
        return ConfigError([ConfigProblem("", message)], source)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise fail(f"the file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text (bad byte at offset {exc.start})") from None


def config_to_dict(cfg: Any, *, include_secrets: bool = False) -> dict[str, Any]:
    """A config (or one of its tables) as plain dicts and lists, in file order.

    Non-empty secrets (passwords, the API token) are replaced by REDACTED unless
    ``include_secrets`` is true; with it, ``parse_config(config_to_dict(cfg, ...))`` gives ``cfg``
    back.
    """
    result = {}
    for f in dataclasses.fields(cfg):
        value = _plain(getattr(cfg, f.name), include_secrets)
        if f.metadata.get("secret") and value and not include_secrets:
            value = REDACTED
        result[f.name] = value
    return result


def _plain(value: Any, include_secrets: bool) -> Any:
    if dataclasses.is_dataclass(value):
        return config_to_dict(value, include_secrets=include_secrets)
    if isinstance(value, list):
        return [_plain(item, include_secrets) for item in value]
    return value


# --- the generated default config -----------------------------------------------------------

_DUMP_HEADER: Final = """\
# Luren phone configuration.
#
# Generated from the schema (firmware/config/schema.py) by dump_default_config(): every key
# is listed with its documentation and its default value. A key left out takes its default;
# an unknown key is an error. Reference: docs/config.md.
"""


def dump_default_config(sample_lines: int = 1) -> str:
    """A commented TOML config with every key at its default, one key per line.

    ``sample_lines`` placeholder ``[[lines]]`` tables (users 1001, 1002, ... at registrar
    127.0.0.1:5060) fill in the required line keys, so the text loads as a valid config.
    """
    lines_field = next(f for f in dataclasses.fields(PhoneConfig) if f.name == "lines")
    max_lines = lines_field.metadata["max_items"]
    if not 1 <= sample_lines <= max_lines:
        raise ValueError(f"sample_lines must be 1 to {max_lines}, got {sample_lines}")
    parts = [_DUMP_HEADER]
    for name, cls, is_array in tables():
        if not is_array:
            parts.append(_dump_table(f"[{name}]", cls, {}))
            continue
        if name != "lines":  # optional arrays: described, none given
            parts.append(_comment(f"[[{name}]] tables: {cls.__doc__ or ''} (none by default; "
                                  "see docs/config.md)"))
            continue
        for index in range(sample_lines):
            sample = dict(SAMPLE_LINE, user=str(int(SAMPLE_LINE["user"]) + index))
            parts.append(_dump_table(f"[[{name}]]", cls, sample))
    return "\n".join(parts)


def _dump_table(header: str, cls: type, values: dict[str, Any]) -> str:
    """One table: its description, header and every key with its comments."""
    lines = [_comment(cls.__doc__ or ""), header, ""]
    for f in dataclasses.fields(cls):
        lines.append(_comment(f.metadata["doc"]))
        if field_rules(f):
            lines.append(_comment("[" + "; ".join(field_rules(f)) + "]"))
        value = values[f.name] if f.name in values else default_of(f)
        lines += [f"{f.name} = {toml_literal(value)}", ""]
    return "\n".join(lines)


def _comment(text: str) -> str:
    """``text`` as ``#`` comment lines wrapped at 96 columns."""
    return textwrap.fill(text, 96, initial_indent="# ", subsequent_indent="# ")
