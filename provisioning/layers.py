"""Layering provisioning files: common < model < MAC, then the user's local changes.

A phone's config is built from up to three provisioning files, lowest first:

1. ``common`` - the same for every phone of the site,
2. ``model``  - for one phone model,
3. ``mac``    - for one phone (named by its MAC address),

each optional, and then the user's local changes (what was set in the phone's menus) on top.

Merge rule: tables merge key by key, recursively; any other value - a string, a number, a
boolean and also an array such as ``lines`` - is replaced whole by the higher layer. A higher
layer therefore cannot change one entry of ``lines``; it gives the whole list again.

Each file may carry the reserved top-level table ``_provisioning`` (stripped before the config
is validated, since the phone's schema rejects unknown tables) with two optional lists of
dotted key paths. A path names table keys only (``lines`` as a whole, never ``lines.0.user``)
and must look like ``device.language`` (letters, digits, ``_``, joined by dots):

- ``lock``: the user may not change these on the phone; a local value there is ignored. A
  locked path also locks everything below it (``lock = ["calls"]`` locks all of ``calls``).
- ``reset``: discard the user's local value for these, once. The caller runs ``drop_reset``
  when it takes in provisioning files that differ from the ones it used before and saves the
  result; a value the user sets afterwards is kept until the files change again.

The lock and reset lists of all layers add up. Example::

    # common.toml                      # mac.toml
    [device]                           [device]
    language = "en"                    language = "de"
    ringtone = "classic"               [_provisioning]
    [_provisioning]                    reset = ["device.ringtone"]
    lock = ["device.language"]

    # local changes: {"device": {"language": "fr", "ringtone": "soft"}}

``merge_layers`` gives ``{"device": {"language": "de", "ringtone": "classic"}}`` with
``locked = {"device.language"}`` and ``reset = {"device.ringtone"}``. ``drop_reset`` turns the
local changes into ``{"device": {"language": "fr"}}``, and ``apply_local`` then gives
``{"device": {"language": "de", "ringtone": "classic"}}``, reporting ``device.language`` as
ignored because it is locked.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from collections.abc import Iterable, Sequence
from typing import Any, Final

RESERVED: Final = "_provisioning"
"""The top-level table holding a layer's lock and reset lists; never part of the config."""

_LISTS: Final = ("lock", "reset")
_PATH_RE: Final = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


class LayerError(ValueError):
    """A provisioning file cannot be used; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Layered:
    """The merged provisioning layers, before the user's local changes."""

    config: dict[str, Any]
    """Merged config, ``_provisioning`` stripped; a copy that shares nothing with the inputs."""
    locked: frozenset[str]
    """Paths the user may not change (union of all layers' ``lock`` lists)."""
    reset: frozenset[str]
    """Paths whose local value is to be discarded once (union of all ``reset`` lists)."""
    sources: dict[str, str]
    """Dotted path of every leaf value -> name of the layer it came from."""


def _where(name: str) -> str:
    return f"{name} provisioning file"


def _check_provisioning(name: str, layer: dict[str, Any]) -> dict[str, list[str]]:
    """Validate a layer's ``_provisioning`` table; return its lock and reset lists."""
    found: dict[str, list[str]] = {kind: [] for kind in _LISTS}
    if RESERVED not in layer:
        return found
    table = layer[RESERVED]
    if not isinstance(table, dict):
        raise LayerError(f"{_where(name)}: '{RESERVED}' must be a table with 'lock' and 'reset'")
    unknown = sorted(set(table) - set(_LISTS))
    if unknown:
        raise LayerError(
            f"{_where(name)}: unknown key {unknown[0]!r} in [{RESERVED}]; "
            f"only 'lock' and 'reset' are allowed"
        )
    for kind in _LISTS:
        paths = table.get(kind, [])
        if not isinstance(paths, list):
            raise LayerError(
                f"{_where(name)}: {RESERVED}.{kind} must be a list of key paths "
                f'such as ["device.language"], not {type(paths).__name__}'
            )
        for path in paths:
            if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
                raise LayerError(
                    f"{_where(name)}: {RESERVED}.{kind} entry {path!r} is not a key path; "
                    "write names of letters, digits and '_' joined by dots, "
                    "such as 'device.language'"
                )
        found[kind] = list(paths)
    return found


def parse_layer(name: str, text: str) -> dict[str, Any]:
    """Parse one provisioning file (TOML); ``_provisioning`` is checked and kept."""
    try:
        layer = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LayerError(f"{_where(name)} is not valid TOML: {exc}") from None
    _check_provisioning(name, layer)
    return layer


def _leaf_paths(value: Any, path: str) -> list[str]:
    """Dotted paths of the leaves under ``value`` (an empty table counts as one leaf)."""
    if isinstance(value, dict) and value:
        return [leaf for key, sub in value.items() for leaf in _leaf_paths(sub, f"{path}.{key}")]
    return [path]


def _forget(sources: dict[str, str], path: str) -> None:
    below = path + "."
    for known in [p for p in sources if p == path or p.startswith(below)]:
        del sources[known]


def _merge_into(target: dict[str, Any], layer: dict[str, Any], prefix: str, name: str,
                sources: dict[str, str]) -> None:
    for key, value in layer.items():
        path = f"{prefix}{key}"
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge_into(current, value, path + ".", name, sources)
            continue
        _forget(sources, path)
        target[key] = copy.deepcopy(value)
        _record(sources, value, path, name)


def _record(sources: dict[str, str], value: Any, path: str, name: str) -> None:
    """Note ``name`` as the source of every non-table value under ``path``."""
    if isinstance(value, dict):
        for key, sub in value.items():
            _record(sources, sub, f"{path}.{key}", name)
    else:
        sources[path] = name


def _check_path_reaches(config: dict[str, Any], path: str, kind: str, name: str) -> None:
    """Refuse a path that goes inside a value that is not a table (e.g. into ``lines``)."""
    parts = path.split(".")
    node: Any = config
    for depth, part in enumerate(parts[:-1]):
        node = node.get(part)
        if node is None:
            return
        if not isinstance(node, dict):
            outer = ".".join(parts[:depth + 1])
            raise LayerError(
                f"{_where(name)}: {RESERVED}.{kind} path {path!r} goes inside {outer!r}, which "
                f"is not a table; paths name table keys only ({kind} {outer!r} as a whole)"
            )


def merge_layers(layers: Sequence[tuple[str, dict[str, Any]]]) -> Layered:
    """Merge (name, parsed file) layers, lowest first; the inputs are not modified."""
    config: dict[str, Any] = {}
    sources: dict[str, str] = {}
    declared: list[tuple[str, str, str]] = []  # (kind, path, layer name)
    for name, layer in layers:
        if not isinstance(layer, dict):
            raise LayerError(f"{_where(name)}: the top level must be a table")
        lists = _check_provisioning(name, layer)
        declared.extend((kind, path, name) for kind in _LISTS for path in lists[kind])
        body = {key: value for key, value in layer.items() if key != RESERVED}
        _merge_into(config, body, "", name, sources)
    for kind, path, name in declared:
        _check_path_reaches(config, path, kind, name)
    return Layered(
        config=config,
        locked=frozenset(path for kind, path, _ in declared if kind == "lock"),
        reset=frozenset(path for kind, path, _ in declared if kind == "reset"),
        sources=sources,
    )


def _is_locked(path: str, locked: frozenset[str]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:n]) in locked for n in range(1, len(parts) + 1))


def _locks_below(path: str, locked: frozenset[str]) -> bool:
    below = path + "."
    return any(p.startswith(below) for p in locked)


def _overlay(target: dict[str, Any], local: dict[str, Any], prefix: str,
             locked: frozenset[str], ignored: list[str]) -> None:
    for key, value in local.items():
        path = f"{prefix}{key}"
        if _is_locked(path, locked):
            ignored.extend(_leaf_paths(value, path))
            continue
        current = target.get(key)
        if isinstance(value, dict):
            if not isinstance(current, dict):
                if key in target and _locks_below(path, locked):
                    ignored.extend(_leaf_paths(value, path))  # would replace a locked value
                    continue
                current = target[key] = {}
            _overlay(current, value, path + ".", locked, ignored)
        elif _locks_below(path, locked):
            ignored.append(path)  # replacing the table would change locked values inside it
        else:
            target[key] = copy.deepcopy(value)


def apply_local(layered: Layered, local: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Deep-merge the local changes over the layers, except under locked paths.

    Returns (final config, sorted dotted paths of the local values ignored because locked).
    """
    config = copy.deepcopy(layered.config)
    ignored: list[str] = []
    _overlay(config, local, "", layered.locked, ignored)
    return config, sorted(ignored)


def drop_reset(local: dict[str, Any], reset: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """Remove the reset paths from a copy of the local changes.

    Tables left empty by a removal are removed too. Returns (new local changes, sorted dotted
    paths of the values removed).
    """
    result = copy.deepcopy(local)
    removed: list[str] = []
    for path in sorted(set(reset)):
        if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
            raise LayerError(f"reset path {path!r} is not a key path such as 'device.ringtone'")
        parts = path.split(".")
        chain: list[dict[str, Any]] = [result]
        for part in parts[:-1]:
            node = chain[-1].get(part)
            if not isinstance(node, dict):
                break
            chain.append(node)
        else:
            if parts[-1] not in chain[-1]:
                continue
            removed.extend(_leaf_paths(chain[-1].pop(parts[-1]), path))
            for depth in range(len(parts) - 1, 0, -1):
                if chain[depth]:
                    break
                del chain[depth - 1][parts[depth - 1]]
    return result, sorted(removed)
