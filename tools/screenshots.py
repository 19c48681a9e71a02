"""Pictures of every kind of screen on each kind of display, for docs/screens/.

    python -m tools.screenshots [--out docs/screens]

The screens come from firmware.screens with sample calls (`sample_screens`, also what the
golden tests render). Each display gets them through its real driver:

- HD44780 20x4: `HD44780Display` over the I2C backpack bus into a simulated backpack and LCD;
  the picture is what that LCD's DDRAM and CGRAM hold (`render.render_lcd`).
- SSD1306 128x64 and ST7789 240x240: `GraphicDisplay` on a luma.emulator `capture` device,
  which writes the pushed frame as a PNG (pygame runs with SDL_VIDEODRIVER=dummy).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from board.display.hd44780 import HD44780Display, I2CBackpackBus
from board.display.hd44780_sim import SimulatedBackpack
from board.display.render import render_lcd
from firmware.call import Call, CallState, EndReason
from firmware.screens import LineView, call_screen, idle_screen

WALL = datetime(2026, 11, 22, 9, 41)  # a Sunday: "sön 22 nov"
LINE = "1001 Växeln"


def _call(state: CallState, number: str, name: str = "", **fields: Any) -> Call:
    return Call(id="c1", direction="outgoing", line=0, state=state, started_at=0.0,
                number=number, remote_name=name, **fields)


def sample_screens(width: int = 20, language: str = "sv") -> dict[str, list[str]]:
    """One screen of each kind, by name, as firmware.screens draws it `width` wide."""
    now = 167.0
    calls = {
        "dialing": _call(CallState.DIALING, "0701234567"),
        "calling": _call(CallState.CALLING, "1002"),
        "ringing": _call(CallState.RINGBACK, "1002", "Åsa Öberg"),
        "incoming": _call(CallState.INCOMING, "0701234567", "Björn Ängström"),
        "connected": _call(CallState.CONNECTED, "1002", "Åsa Öberg", connected_at=100.0),
        "ended_busy": _call(CallState.ENDED, "1002", end_reason=EndReason.BUSY, ended_at=160.0),
    }
    screens = {
        "idle": idle_screen(WALL, LineView(LINE, True, ""), language, width),
        "idle_no_service": idle_screen(WALL, LineView(LINE, False, "403 Forbidden"), language,
                                       width),
    }
    screens.update({name: call_screen(call, now, language, width) for name, call in calls.items()})
    return screens


def lcd_picture(rows: list[str], width: int = 20,
                height: int = 4) -> tuple[list[str], Image.Image]:
    """(what the LCD shows, its picture) after HD44780Display.show(rows) on a fresh LCD."""
    backpack = SimulatedBackpack()
    display = HD44780Display(I2CBackpackBus(backpack), width, height, sleep_us=_no_wait)
    display.show(rows)
    lcd = backpack.lcd
    picture = render_lcd(lcd.codes(width, height), [lcd.glyph(slot) for slot in range(8)])
    return lcd.text(width, height), picture


def _no_wait(us: float) -> None:
    """The simulated LCD is never busy."""


def _capture_writer(width: int, height: int, mode: str,
                    scale: int) -> Callable[[list[str], Path], None]:
    """A function that shows rows on a fresh luma.emulator capture device saving to a path."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from luma.emulator.device import capture

    from board.display.graphic import GraphicDisplay

    def write(rows: list[str], path: Path) -> None:
        device = capture(width=width, height=height, mode=mode, transform="identity",
                         scale=scale, file_template=str(path))
        GraphicDisplay(device).show(rows)

    return write


LCD_GLYPHS = ["Åå Ää Öö Éé Üü", "Räksmörgås på BLÅÖGA", "Æ æ Ø ø: slot 8, 9+", "9th on: no accent"]
"""Every Swedish letter on the LCD: ä ö ü from ROM A00, the rest from CGRAM (8 slots)."""

PANELS = {  # file prefix: (width, height, mode, scale of the picture)
    "ssd1306-128x64": (128, 64, "1", 3),
    "st7789-240x240": (240, 240, "RGB", 2),
}


def write_all(out: Path) -> list[Path]:
    """Write every picture into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    screens = sample_screens()
    for name, rows in screens.items():
        path = out / f"hd44780-20x4-{name}.png"
        lcd_picture(rows)[1].save(path)
        written.append(path)
    path = out / "hd44780-20x4-glyphs.png"
    lcd_picture(LCD_GLYPHS)[1].save(path)
    written.append(path)
    for prefix, (width, height, mode, scale) in PANELS.items():
        write = _capture_writer(width, height, mode, scale)
        for name, rows in screens.items():
            path = out / f"{prefix}-{name}.png"
            write(rows, path)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screens"))
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(path)


if __name__ == "__main__":
    main()
