"""Writes that survive a power cut: the old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync it, rename it over `path`, fsync the dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def move_aside(path: Path, tag: str = "corrupt") -> Path:
    """Rename a file the phone cannot use to `<name>.<tag>` (then `.<tag>.1`, `.2` ...) so a
    technician can look at it; returns the new path. Raises OSError when it cannot."""
    aside = path.with_name(f"{path.name}.{tag}")
    number = 0
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.{tag}.{number}")
    os.replace(path, aside)
    return aside
