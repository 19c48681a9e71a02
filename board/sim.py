"""The simulated board: a 20x4 text display, LEDs, and keys/hook driven through the control API."""

from __future__ import annotations

from board.parts import Board, Led, TextDisplay

SIM_LEDS = ("message", "speaker", "mute", "headset", "line1", "line2")


def sim_board() -> Board:
    """A desk phone front panel with no hardware behind it."""
    return Board(name="sim", display=TextDisplay(20, 4),
                 leds={name: Led(name) for name in SIM_LEDS})
