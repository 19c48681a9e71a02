"""Render the inventory into a static, signed provisioning tree that nginx or a CDN serves.

``render_tree`` writes, into one directory:

- ``common.toml``: the common template with the site values filled in,
- ``<model>.toml``: each used model's template, with ``${model}`` and the site values filled in,
- ``<mac>.toml``: per device, ``[device] name`` and its ``[[lines]]``,
- ``index.json``: every file of the tree with its sha256 and size, written last;

each config file is ``signer(body)``. Credentials rule: SIP passwords only ever leave in a MAC file
encrypted for that one phone (``encryptor(body, device public key)``, then signed). A device
without a public key (or a render without an encryptor) gets its MAC file *without* passwords
and is listed in ``RenderReport.withheld``: there is no other way to a phone's SIP passwords (no
separate credentials endpoint), so record its device key and publish again. Shared templates may
not carry line passwords.

Placeholders (``string.Template``, ``${name}``): the site values everywhere, ``${model}`` in a
model template. ``${mac}`` and ``${name}`` are per-device values and are refused in the shared
files (every phone of the model fetches the same bytes). A line without a registrar gets the
``registrar`` site value, the site's default PBX.

Before a device's file is written, its whole config (common < model < MAC: tables merged key by
key, arrays replaced whole, ``_provisioning`` dropped, passwords included) goes through the
phone's own ``parse_config``; a device that would be refused is reported in ``errors`` and its
previous file, if any, stays as it was. Files whose bytes would not change are not rewritten, so
mtimes and ETags stay stable; since encryption is randomised, an encrypted file counts as
unchanged when its input (body, device key and signing key) is the same as the last publish,
which the inventory remembers. The signer must be deterministic for that (Ed25519 is). Files of
devices and models no longer in the inventory that the previous ``index.json`` listed are
deleted.

A file that is rewritten always gets a later mtime, in whole seconds, than the one it replaces
(the old mtime + 1 s when the clock has not moved on a second): nginx's ETag is the whole-second
mtime and the size, so new content of the same size written within the same second would keep
the old ETag, and nginx would answer 304 to a phone holding the old file. Publishing more than
once a second can so put a file's mtime a few seconds ahead of the clock.

One publisher per directory at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Any, Final

from firmware.config import ConfigError, parse_config
from firmware.config.load import toml_literal
from firmware.config.schema import tables
from provisioning.server.inventory import Device, Inventory

Signer = Callable[[bytes], bytes]
"""Body bytes -> signed file bytes."""
Encryptor = Callable[[bytes, str], bytes]
"""(body bytes, device public key text) -> body encrypted for that device."""

RESERVED: Final = "_provisioning"
DEVICE_PLACEHOLDERS: Final = ("mac", "model", "name")
INDEX_NAME: Final = "index.json"
WITHHELD_NO_KEY: Final = (
    "no device key: SIP passwords withheld; record the phone's device key in the inventory "
    "(add-device --public-key) and publish again")
WITHHELD_NO_ENCRYPTOR: Final = (
    "no encryptor given: SIP passwords withheld; publish with per-device encryption")

_NO_SITE: Final[Mapping[str, str]] = MappingProxyType({})
_SECOND_NS: Final = 1_000_000_000
_PROBE: Final = b"luren provisioning server: signer fingerprint probe\n"
_PATH_RE: Final = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_TREE_FILE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.toml")


class TemplateError(ValueError):
    """A template cannot be rendered; the message names the template and the problem."""


@dataclasses.dataclass
class RenderReport:
    """What a render did. File names are relative to the output directory."""

    written: list[str] = dataclasses.field(default_factory=list)
    """Files (re)written, ``index.json`` included when it changed."""
    unchanged: list[str] = dataclasses.field(default_factory=list)
    """Files whose content was already there; not touched."""
    removed: list[str] = dataclasses.field(default_factory=list)
    """Files of devices or models no longer in the inventory, deleted."""
    withheld: dict[str, str] = dataclasses.field(default_factory=dict)
    """MAC -> why its SIP passwords are not in its file."""
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    """MAC -> why its file was not written (the ConfigError text, one problem a line)."""
    warnings: list[str] = dataclasses.field(default_factory=list)
    """Things that work but deserve a look, e.g. secrets in shared files."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every device was rendered."""
        return not self.errors


def render_tree(inventory: Inventory, out_dir: str | os.PathLike[str], *, signer: Signer,
                encryptor: Encryptor | None = None, site: Mapping[str, str] = _NO_SITE,
                validate: bool = True) -> RenderReport:
    """Render the inventory into ``out_dir`` (created if missing); see the module docstring.

    Raises TemplateError (nothing written) when the common or a model template cannot be
    rendered, and ValueError for bad ``site`` values.
    """
    started = time.perf_counter()
    site = _check_site(site)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    out_key = str(out.resolve())
    snap = inventory.snapshot()
    report = RenderReport()

    common_text, common_layer = _render_shared("common", snap.common, site, report.warnings)
    base = _strip(common_layer)
    models: dict[str, tuple[str, dict[str, Any]]] = {}
    for model in sorted({device.model for device in snap.devices} & set(snap.models)):
        text, layer = _render_shared(model, snap.models[model], {**site, "model": model},
                                     report.warnings)
        models[model] = (text, _merge(base, _strip(layer)))

    tree = _Tree(out, report, inventory.published_digests(out_key))
    tree.put("common.toml", signer(common_text.encode()))
    for model, (text, _) in models.items():
        tree.put(f"{model}.toml", signer(text.encode()))

    fingerprint = b""  # of the signer (its key), computed at the first encrypted file
    default_registrar = site.get("registrar", "")
    for device in snap.devices:
        name = f"{device.mac}.toml"
        if device.model not in models:
            report.errors[device.mac] = (f"{device.mac}: model {device.model!r} has no template; "
                                         "set one with set-model")
            tree.keep(name)
            continue
        layer = _device_layer(device, default_registrar)
        if validate:
            try:
                parse_config(_merge(models[device.model][1], layer), source=device.mac)
            except ConfigError as exc:
                report.errors[device.mac] = str(exc)
                tree.keep(name)
                continue
        has_password = any(line.password for line in device.lines)
        if not (device.public_key and encryptor is not None):
            if has_password:
                report.withheld[device.mac] = (
                    WITHHELD_NO_KEY if not device.public_key else WITHHELD_NO_ENCRYPTOR)
            tree.put(name, signer(_device_toml(device, layer, passwords=False)))
            continue
        body = _device_toml(device, layer, passwords=True)
        fingerprint = fingerprint or hashlib.sha256(signer(_PROBE)).digest()
        source = hashlib.sha256(b"\0".join(
            [b"luren-render v1", fingerprint, device.public_key.encode(), body])).hexdigest()
        if tree.still_current(name, source):
            continue
        try:
            encrypted = encryptor(body, device.public_key)
        except ValueError as exc:
            report.errors[device.mac] = f"{device.mac}: cannot encrypt for the device key: {exc}"
            tree.keep(name)
            continue
        tree.put(name, signer(encrypted), source=source)

    tree.remove_stale()
    _fsync_dir(out)
    tree.put(INDEX_NAME, tree.index_bytes())
    _fsync_dir(out)
    inventory.record_published(out_key, tree.digests)
    report.seconds = time.perf_counter() - started
    return report


# --- templates and layers ---------------------------------------------------------------------


def _check_site(site: Mapping[str, str]) -> dict[str, str]:
    values = dict(site)
    for key, value in values.items():
        if key in DEVICE_PLACEHOLDERS:
            raise ValueError(f"site value {key!r} clashes with the built-in ${{{key}}} placeholder")
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"site values must be text: {key!r} = {value!r}")
    return values


def _render_shared(name: str, text: str, values: Mapping[str, str],
                   warnings: list[str]) -> tuple[str, dict[str, Any]]:
    """A shared template (``common`` or a model) filled in and parsed: (text, TOML document)."""
    what = "common template" if name == "common" else f"model template {name!r}"
    template = Template(text)
    for identifier in template.get_identifiers():
        if identifier in values:
            continue
        if identifier == "model":
            raise TemplateError(f"{what}: ${{model}} is only known in model templates")
        if identifier in DEVICE_PLACEHOLDERS:
            shared_by = "site" if name == "common" else "model"
            raise TemplateError(
                f"{what}: ${{{identifier}}} is a per-device value; it cannot be used in a file "
                f"every phone of the {shared_by} shares")
        known = ", ".join(f"${{{key}}}" for key in sorted(values)) or "none"
        raise TemplateError(f"{what}: unknown placeholder ${{{identifier}}} (known: {known}; "
                            "give site values with --site KEY=VALUE)")
    try:
        rendered = template.substitute(values)
    except (KeyError, ValueError) as exc:
        raise TemplateError(f"{what}: cannot fill in placeholder {exc}") from None
    try:
        document = tomllib.loads(rendered)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{what}: not valid TOML once filled in: {exc}") from None
    file = f"{name}.toml"
    _check_provisioning(file, document)
    for path in _secret_paths(document):
        if path.startswith("lines["):
            raise TemplateError(
                f"{what} sets {path}: SIP passwords must not be in shared files, which are "
                "served in clear; set them per device with set-line")
        warnings.append(f"{file} sets {path} in clear: every phone, and anyone who can fetch "
                        "the file, can read it")
    return rendered, document


def _check_provisioning(file: str, document: dict[str, Any]) -> None:
    """TemplateError unless ``_provisioning`` is absent or holds lock/reset lists of paths."""
    table = document.get(RESERVED)
    if table is None:
        return
    if not isinstance(table, dict) or set(table) - {"lock", "reset"}:
        raise TemplateError(f"{file}: [{RESERVED}] may only hold 'lock' and 'reset' lists")
    for kind, paths in table.items():
        if not isinstance(paths, list) or not all(
                isinstance(path, str) and _PATH_RE.fullmatch(path) for path in paths):
            raise TemplateError(f"{file}: {RESERVED}.{kind} must be a list of dotted key paths "
                                'such as ["device.language"]')


def _secret_paths(document: dict[str, Any]) -> list[str]:
    """Paths of non-empty secret keys (passwords, PIN, token) in a TOML document."""
    found = []
    for table, cls, is_array in tables():
        secrets = [f.name for f in dataclasses.fields(cls) if f.metadata.get("secret")]
        value = document.get(table)
        items: Iterable[tuple[str, Any]] = (
            ((f"{table}[{i}]", item) for i, item in enumerate(value))
            if is_array and isinstance(value, list) else [(table, value)])
        for where, item in items:
            if isinstance(item, dict):
                found += [f"{where}.{key}" for key in secrets if item.get(key)]
    return found


def _strip(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != RESERVED}


def _merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    """``high`` over ``low``: tables merge key by key, anything else (arrays too) replaces.

    Untouched values are shared with the inputs, not copied; neither input is modified.
    """
    result = dict(low)
    for key, value in high.items():
        below = result.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            result[key] = _merge(below, value)
        else:
            result[key] = value
    return result


def _device_layer(device: Device, default_registrar: str) -> dict[str, Any]:
    """A device's own layer (``[device] name`` and ``[[lines]]``), passwords included."""
    layer: dict[str, Any] = {}
    if device.name:
        layer["device"] = {"name": device.name}
    lines = []
    for line in device.lines:
        entry = {"user": line.user, "password": line.password,
                 "registrar": line.registrar or default_registrar,
                 "display_name": line.display_name, "label": line.label}
        lines.append({key: value for key, value in entry.items() if value or key == "user"})
    if lines:
        layer["lines"] = lines
    return layer


def _device_toml(device: Device, layer: dict[str, Any], *, passwords: bool) -> bytes:
    """The MAC file's TOML text; without ``password`` keys unless ``passwords``."""
    out = [f"# {device.mac} ({device.model}): generated from the inventory; change it there.", ""]
    if "device" in layer:
        out += ["[device]", f"name = {toml_literal(layer['device']['name'])}", ""]
    for line in layer.get("lines", []):
        out.append("[[lines]]")
        out += [f"{key} = {toml_literal(value)}" for key, value in line.items()
                if passwords or key != "password"]
        out.append("")
    return "\n".join(out).encode()


# --- the output tree --------------------------------------------------------------------------


class _Tree:
    """The files of one render: written atomically when changed, indexed, stale ones removed."""

    def __init__(self, out: Path, report: RenderReport,
                 previous: dict[str, tuple[str, str]]) -> None:
        self.out = out
        self.report = report
        self.previous = previous
        self.index: dict[str, tuple[str, int]] = {}
        self.digests: dict[str, tuple[str, str]] = {}
        """Encrypted file -> (input sha256, output sha256), for the next render."""

    def _existing(self, name: str) -> bytes | None:
        try:
            return (self.out / name).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, name: str, data: bytes, *, source: str | None = None) -> None:
        """Write ``data`` as ``name`` unless the file already holds exactly these bytes."""
        digest = hashlib.sha256(data).hexdigest()
        if self._existing(name) == data:
            self.report.unchanged.append(name)
        else:
            _write_atomic(self.out, name, data)
            self.report.written.append(name)
        if name != INDEX_NAME:
            self.index[name] = (digest, len(data))
        if source is not None:
            self.digests[name] = (source, digest)

    def still_current(self, name: str, source: str) -> bool:
        """Whether the encrypted file ``name`` on disk was made from the input ``source``."""
        previous = self.previous.get(name)
        if previous is None or previous[0] != source:
            return False
        data = self._existing(name)
        if data is None or hashlib.sha256(data).hexdigest() != previous[1]:
            return False
        self.report.unchanged.append(name)
        self.index[name] = (previous[1], len(data))
        self.digests[name] = previous
        return True

    def keep(self, name: str) -> None:
        """Leave the previous file of a device that failed (if any) in place and indexed."""
        data = self._existing(name)
        if data is None:
            return
        self.index[name] = (hashlib.sha256(data).hexdigest(), len(data))
        if name in self.previous:
            self.digests[name] = self.previous[name]

    def remove_stale(self) -> None:
        """Delete files the previous index listed that this render no longer produces."""
        try:
            old = json.loads((self.out / INDEX_NAME).read_bytes())
            names = [entry["name"] for entry in old["files"]]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return
        for name in sorted(set(names) - set(self.index)):
            if isinstance(name, str) and _TREE_FILE_RE.fullmatch(name):
                try:
                    (self.out / name).unlink()
                except FileNotFoundError:
                    continue
                self.report.removed.append(name)

    def index_bytes(self) -> bytes:
        """``index.json``: every file of the tree with its sha256 and size, by name."""
        files = ",\n".join(
            "  " + json.dumps({"name": name, "sha256": digest, "size": size})
            for name, (digest, size) in sorted(self.index.items()))
        listing = f"[\n{files}\n]" if files else "[]"
        return f'{{"version": 1, "files": {listing}}}\n'.encode()


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    """Write ``directory/name`` as a whole or not at all: temp file, fsync, rename.

    A file it replaces always gets a later whole-second mtime (see ``_later_mtime``).
    """
    target = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    old_mtime_ns = _mtime_ns(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        try:
            os.fchmod(fd, 0o644)  # world-readable for the web server, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if old_mtime_ns is not None:
                _later_mtime(fd, old_mtime_ns)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise



def _mtime_ns(path: Path) -> int | None:
    """The mtime of ``path`` in nanoseconds, or None when there is no such file."""
    try:
        return os.stat(path, follow_symlinks=False).st_mtime_ns
    except FileNotFoundError:
        return None


def _later_mtime(fd: int, old_mtime_ns: int) -> None:
    """Set the open file's mtime to ``old + 1 s`` unless it is already in a later whole second.

    nginx's ETag is the whole-second mtime and the size: a same-size rewrite within the same
    second (or after the clock stepped back) must not keep the replaced file's ETag.
    """
    stat = os.fstat(fd)
    if stat.st_mtime_ns // _SECOND_NS <= old_mtime_ns // _SECOND_NS:
        os.utime(fd, ns=(stat.st_atime_ns, old_mtime_ns + _SECOND_NS))


def _fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
