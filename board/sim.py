"""The simulated board: a 20x4 text display, LEDs, and keys/hook driven through the control API.

It is the `sim` board profile (board/profiles/sim.toml) built like any other: the keypad and
hookswitch sit on simulated pins (`board.gpio` is a `SimGpio`), so the simulator can also press
keys and lift the handset electrically, debounce and all.
"""

from __future__ import annotations

from functools import lru_cache

from board.profile import BoardProfile, WiredBoard, build_board, load_profile
from firmware.clock import Clock

SIM_LEDS = ("message", "speaker", "mute", "headset", "line1", "line2")


@lru_cache(maxsize=1)
def sim_profile() -> BoardProfile:
    """The `sim` board profile (read once)."""
    return load_profile("sim")


def sim_board(clock: Clock | None = None) -> WiredBoard:
    """A desk phone front panel with no hardware behind it.

    `clock` times the simulated keypad and hookswitch (debounce, long press); without one they
    get a clock of their own that is never run, which is all the control API needs.
    """
    return build_board(sim_profile(), clock or Clock())
