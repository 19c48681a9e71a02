"""GPIO backends: one file each (RPi.GPIO, libgpiod, simulated) behind `GpioBackend`.

`open_backend(name, dispatch, **options)` picks one by the name a board profile gives
(`gpio = "libgpiod"`); the backend's module is imported only then, and the backend itself imports
its hardware library only when a part sets up its first pin.
"""

from __future__ import annotations

import importlib
from typing import Any

from board.gpio.base import Dispatch, GpioBackend, GpioError, call_now

BACKENDS: dict[str, str] = {
    "sim": "board.gpio.sim:SimGpio",
    "rpigpio": "board.gpio.rpigpio:RpiGpio",
    "libgpiod": "board.gpio.libgpiod:LibGpiod",
}

__all__ = ["BACKENDS", "GpioBackend", "GpioError", "open_backend"]


def open_backend(name: str, dispatch: Dispatch = call_now, **options: Any) -> GpioBackend:
    """A new backend by name (`sim`, `rpigpio`, `libgpiod`); options go to its constructor.

    Options: `sim` takes `clock` (timestamps of recorded writes); `libgpiod` takes `chip`
    (default `/dev/gpiochip0`) and `consumer`; `rpigpio` takes none.
    """
    if name not in BACKENDS:
        raise GpioError(f"unknown GPIO backend {name!r} (choose {', '.join(sorted(BACKENDS))})")
    module_name, class_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(dispatch, **options)
    except TypeError as exc:
        raise GpioError(f"GPIO backend {name!r}: bad options {sorted(options)}: {exc}") from None
