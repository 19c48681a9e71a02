"""Pure rendering shared by the display drivers: no device, no bus, only text and PIL images.

- `fit_rows`: the text grid every display shows (NFC, cut and padded to columns x lines).
- `render_screen`: the phone's rows drawn as a desk-phone screen for a graphic panel: row 0 as
  an inverted status/title bar, row 1 large, the middle rows plain, the last row as a footer
  under a rule. The same rows a 20x4 character LCD shows, so every screen works on both.
- `render_lcd`: a picture of an HD44780 showing given DDRAM codes and CGRAM glyphs (docs,
  screenshots).

Text is drawn with the 5x8 dot-matrix glyphs of the HD44780's European ROM (A02), whose bitmaps
luma.lcd ships, in 5x10 cells so g j p q y get real descenders: all of Latin-1 (å ä ö é ü ...),
no system font needed (Pillow's own default font has no å ä ö: it draws boxes), crisp on 1-bit
panels at any integer scale, and the same on every machine (stable golden images).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

GLYPH_W = 5  # dots across a character
LCD_ROWS = 8  # dots down a character on an HD44780 (5x8 font)
TEXT_ROWS = 10  # dots down a character on a graphic panel: the 5x8 glyph and two for descenders
CELL_W = GLYPH_W + 1  # one blank column between characters

Colour = int | tuple[int, int, int]


def fit_rows(rows: Sequence[str], columns: int, lines: int) -> list[str]:
    """Exactly `lines` rows of exactly `columns` characters (NFC, cut, space-padded)."""
    padded = [*rows, *[""] * lines][:lines]
    return [unicodedata.normalize("NFC", row)[:columns].ljust(columns) for row in padded]


# --- the dot-matrix font ------------------------------------------------------------------

DESCENDERS: dict[str, tuple[int, ...]] = {
    # A02 squeezes g j p q y above the baseline (g reads as 9); on a panel they get 10 rows.
    "g": (0x00, 0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E),
    "j": (0x00, 0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "p": (0x00, 0x00, 0x00, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10),
    "q": (0x00, 0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01),
    "y": (0x00, 0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E),
}
"""Glyphs (rows of 5 dots, bit 4 leftmost) that replace the ROM's on graphic panels."""


def pattern_image(pattern: Sequence[int]) -> Image.Image:
    """A mode "1" image of a 5-dot-wide pattern, one int per row, bit 4 the leftmost dot."""
    image = Image.new("1", (GLYPH_W, len(pattern)))
    image.putdata([row >> (GLYPH_W - 1 - x) & 1 for row in pattern for x in range(GLYPH_W)])
    return image


class RomFont:
    """Dot-matrix glyphs from a character-LCD ROM ("A00" Japanese, "A02" European).

    The bitmaps are luma.lcd's copies of the ROMs. Glyphs are 5 dots wide and `rows` high
    (the ROM's 8, then blank rows); `overrides` replace the ROM glyph of some characters.
    """

    def __init__(self, name: str = "A02", rows: int = LCD_ROWS,
                 overrides: dict[str, tuple[int, ...]] | None = None) -> None:
        from luma.lcd.const import hd44780  # pure data; imported only when drawing

        data = hd44780.FONTDATA
        index = [m["name"] for m in data["metrics"]].index(name)
        metrics = data["metrics"][index]
        self.name, self.rows = name, rows
        self._table = Image.frombytes("1", metrics["table_size"], data["fonts"][index])
        self._cell = metrics["cell_size"]
        self._slots = {code: i for i, code in enumerate(metrics["index"])}
        self._mapping: dict[int, int] = dict(data["mappings"][index])
        self._overrides = {ord(ch): pattern for ch, pattern in (overrides or {}).items()}
        self._scaled: dict[tuple[int, int], Image.Image] = {}

    def has(self, code: int) -> bool:
        return code in self._slots

    def glyph(self, code: int, scale: int = 1) -> Image.Image:
        """The glyph for ROM `code`: a mode "1" mask of 5 x `rows` dots, `scale` pixels each."""
        key = (code, scale)
        if key not in self._scaled:
            self._scaled[key] = self._cut(code).resize((GLYPH_W * scale, self.rows * scale),
                                                       Image.Resampling.NEAREST)
        return self._scaled[key]

    def _cut(self, code: int) -> Image.Image:
        if code in self._overrides:
            return pattern_image(self._overrides[code])
        slot = self._slots[code]
        columns = self._table.width // self._cell[0]
        x, y = slot % columns * self._cell[0], slot // columns * self._cell[1]
        image = Image.new("1", (GLYPH_W, self.rows))
        image.paste(self._table.crop((x, y, x + GLYPH_W, y + LCD_ROWS)), (0, 0))
        return image

    def code(self, ch: str) -> int:
        """The code that draws `ch` (Latin-1 maps to itself in A02); else its plain letter, ?."""
        for candidate in (ch, unicodedata.normalize("NFD", ch)[:1]):
            code = self._lookup(candidate)
            if code is not None:
                return code
        return ord("?")

    def _lookup(self, ch: str) -> int | None:
        point = ord(ch) if len(ch) == 1 else -1
        code = self._mapping.get(point)
        if code is None and (0x20 <= point < 0x7F or 0xA0 <= point <= 0xFF):
            code = point
        return code if code is not None and self.has(code) else None

    def draw(self, image: Image.Image, xy: tuple[int, int], text: str, scale: int,
             fill: Colour) -> None:
        """Draw `text` at `xy` (top left), one 6-dot-wide cell per character at `scale`."""
        x, y = xy
        for ch in text:
            if ch != " ":
                mask = self.glyph(self.code(ch), scale)
                image.paste(fill, (x, y, x + mask.width, y + mask.height), mask)
            x += CELL_W * scale


@functools.cache
def text_font() -> RomFont:
    """The font of graphic panels: ROM A02 (Latin-1) in 5x10 cells with real descenders."""
    return RomFont("A02", TEXT_ROWS, DESCENDERS)


@functools.cache
def lcd_font() -> RomFont:
    """ROM A00, the one HD44780 modules ship with (what `render_lcd` draws)."""
    return RomFont("A00")


# --- the graphic screen -------------------------------------------------------------------

@dataclass(frozen=True)
class Theme:
    background: Colour
    bar: Colour  # the status/title bar behind row 0
    bar_text: Colour
    text: Colour
    big_text: Colour  # row 1
    rule: Colour  # the line above the footer
    footer_text: Colour


MONO = Theme(background=0, bar=1, bar_text=0, text=1, big_text=1, rule=1, footer_text=1)
COLOUR = Theme(background=(12, 16, 24), bar=(0, 82, 147), bar_text=(255, 255, 255),
               text=(232, 236, 240), big_text=(254, 204, 2), rule=(70, 84, 100),
               footer_text=(176, 190, 204))


@dataclass(frozen=True)
class Layout:
    """Where each text row goes on a `size` pixel panel of `mode` ("1" or "RGB").

    Row 0 sits in a bar across the top; row 1 is drawn up to twice as large; the last row (of
    three or more) is a footer at the bottom, under a rule when it has text; the rows between
    are spread evenly over the space left.
    """

    size: tuple[int, int]
    mode: str = "1"
    columns: int = 20
    lines: int = 4

    def __post_init__(self) -> None:
        if self.lines < 2 or self.columns < 1:
            raise ValueError(f"layout: needs at least 2 lines, got {self.columns}x{self.lines}")

    @property
    def scale(self) -> int:
        """Pixels per font dot for ordinary rows: the most that fits `columns` across."""
        return max(1, self.size[0] // (self.columns * CELL_W))

    @property
    def left(self) -> int:
        """Left edge of the text grid (centred)."""
        return max(0, (self.size[0] - self.columns * CELL_W * self.scale) // 2)

    @property
    def bar_height(self) -> int:
        return (TEXT_ROWS + 1) * self.scale

    @property
    def has_footer(self) -> bool:
        return self.lines >= 3

    @property
    def footer_top(self) -> int:
        return self.size[1] - TEXT_ROWS * self.scale

    def body_slots(self) -> list[tuple[int, int, int]]:
        """(top, height, largest scale) of each body row, spread over the space left."""
        count = self.lines - 2 if self.has_footer else self.lines - 1
        scales = [2 * self.scale] + [self.scale] * (count - 1)
        heights = [(TEXT_ROWS * s + self.scale) for s in scales]
        bottom = self.footer_top - 2 * self.scale if self.has_footer else self.size[1]
        gap = max(0, (bottom - self.bar_height - sum(heights)) // (count + 1))
        slots, top = [], self.bar_height + gap
        for height, s in zip(heights, scales, strict=True):
            slots.append((top, height, s))
            top += height + gap
        return slots


def fit_scale(text: str, largest: int, smallest: int, width: int) -> int:
    """The largest scale from `largest` down to `smallest` at which `text` fits `width`."""
    for scale in range(largest, smallest, -1):
        if len(text) * CELL_W * scale - scale <= width:
            return scale
    return smallest


def render_screen(rows: Sequence[str], layout: Layout, theme: Theme | None = None) -> Image.Image:
    """The phone's text rows as a desk-phone screen on a graphic panel."""
    theme = theme or (MONO if layout.mode == "1" else COLOUR)
    image = Image.new(layout.mode, layout.size, theme.background)
    text = fit_rows(rows, layout.columns, layout.lines)
    _draw_bar(image, layout, theme, text[0])
    body = text[1:-1] if layout.has_footer else text[1:]
    for i, (row, slot) in enumerate(zip(body, layout.body_slots(), strict=True)):
        _draw_body_row(image, layout, theme, row, slot, big=i == 0)
    if layout.has_footer:
        _draw_footer(image, layout, theme, text[-1])
    return image


def _draw_bar(image: Image.Image, layout: Layout, theme: Theme, row: str) -> None:
    image.paste(theme.bar, (0, 0, layout.size[0], layout.bar_height))
    text_font().draw(image, (layout.left, 0), row, layout.scale, theme.bar_text)


def _draw_body_row(image: Image.Image, layout: Layout, theme: Theme, row: str,
                   slot: tuple[int, int, int], big: bool) -> None:
    top, height, largest = slot
    s, width = layout.scale, layout.size[0]
    text = row.rstrip()
    scale = fit_scale(text, largest, s, width - 2 * s) if big else s
    text_width = len(text) * CELL_W * scale - scale
    x = layout.left if layout.left + text_width <= width - s else max(s, (width - text_width) // 2)
    y = top + (height - TEXT_ROWS * scale) // 2
    text_font().draw(image, (x, y), text, scale, theme.big_text if big else theme.text)


def _draw_footer(image: Image.Image, layout: Layout, theme: Theme, row: str) -> None:
    s, top = layout.scale, layout.footer_top
    if row.strip():
        image.paste(theme.rule, (0, top - 2 * s, layout.size[0], top - s))
    text_font().draw(image, (layout.left, top), row, s, theme.footer_text)


# --- a picture of a character LCD ---------------------------------------------------------

@dataclass(frozen=True)
class LcdLook:
    """A blue-and-white 5V module, as sold with the PCF8574 backpack."""

    glass: tuple[int, int, int] = (22, 52, 190)
    dot_off: tuple[int, int, int] = (34, 70, 212)
    dot_on: tuple[int, int, int] = (236, 242, 255)
    dot: int = 3  # pixels per dot
    pitch: int = 4  # pixels from one dot to the next
    char_gap: int = 4
    line_gap: int = 8
    margin: int = 16


def render_lcd(codes: Sequence[Sequence[int]], cgram: Sequence[Sequence[int]],
               look: LcdLook = LcdLook()) -> Image.Image:
    """An HD44780 (ROM A00) showing DDRAM `codes`; codes 0-7 (and 8-15) draw `cgram` slots."""
    columns, lines = len(codes[0]), len(codes)
    cw, ch = GLYPH_W * look.pitch + look.char_gap, LCD_ROWS * look.pitch + look.line_gap
    size = (2 * look.margin + columns * cw - look.char_gap,
            2 * look.margin + lines * ch - look.line_gap)
    image = Image.new("RGB", size, look.glass)
    for r, row in enumerate(codes):
        for c, code in enumerate(row):
            dots = _lcd_dots(code, cgram)
            _draw_cell(image, (look.margin + c * cw, look.margin + r * ch), dots, look)
    return image


def _lcd_dots(code: int, cgram: Sequence[Sequence[int]]) -> list[list[bool]]:
    if code < 0x10:
        pattern = cgram[code & 0x07]
        return [[bool(pattern[y] >> (4 - x) & 1) for x in range(GLYPH_W)] for y in range(LCD_ROWS)]
    glyph = lcd_font().glyph(code)
    return [[bool(glyph.getpixel((x, y))) for x in range(GLYPH_W)] for y in range(LCD_ROWS)]


def _draw_cell(image: Image.Image, origin: tuple[int, int], dots: list[list[bool]],
               look: LcdLook) -> None:
    for y, line in enumerate(dots):
        for x, on in enumerate(line):
            left, top = origin[0] + x * look.pitch, origin[1] + y * look.pitch
            colour = look.dot_on if on else look.dot_off
            image.paste(colour, (left, top, left + look.dot, top + look.dot))
