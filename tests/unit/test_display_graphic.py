"""Graphic panels: exact luma init bytes on a recording serial interface, golden screen images.

Golden PNGs are tests/reference/<panel>-<screen>.png; LUREN_UPDATE_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
from PIL import Image, ImageChops

import board.display
from board.display import DisplayError, make_display
from board.display.graphic import GraphicDisplay, LumaGpio, graphic_display
from board.display.render import Layout, fit_rows, fit_scale, render_screen, text_font
from board.gpio.base import GpioBackend
from tools.screenshots import sample_screens

REFERENCE = Path(__file__).parent.parent / "reference"
UPDATE = os.environ.get("LUREN_UPDATE_GOLDEN") == "1"

PANELS = {"ssd1306-128x64": ((128, 64), "1"), "st7735-160x128": ((160, 128), "RGB"),
          "st7789-240x240": ((240, 240), "RGB")}


class RecordingSerial:
    """A luma serial interface (like luma.core.interface.serial.i2c) that only records."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[int, ...] | bytes]] = []

    def command(self, *cmd: int) -> None:
        self.events.append(("command", cmd))

    def data(self, data) -> None:
        self.events.append(("data", bytes(data)))

    def cleanup(self) -> None:
        pass


class RecordingGpio(GpioBackend):
    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    def setup_input(self, pin: int, pull_up: bool = True, owner: str = "") -> None:
        self.events.append(("input", pin))

    def setup_output(self, pin: int, level: bool = False, owner: str = "") -> None:
        self.events.append(("output", pin, level))

    def read(self, pin: int) -> bool:
        return False

    def write(self, pin: int, level: bool) -> None:
        self.events.append(("write", pin, level))

    def watch(self, pin, callback) -> None:
        raise NotImplementedError


def ssd1306_pages(image: Image.Image) -> bytes:
    """The SSD1306's GDDRAM for `image`: 8 pages of 128 columns, bit 0 the top pixel."""
    pixels = image.load()
    return bytes(sum(1 << bit for bit in range(8) if pixels[x, page * 8 + bit])
                 for page in range(image.height // 8) for x in range(image.width))


# --- luma devices on a recording interface ------------------------------------------------

SSD1306_INIT = [
    ("command", (0xAE,              # display off
                 0xD5, 0x80,        # clock divide
                 0xA8, 0x3F,        # multiplex 1/64
                 0xD3, 0x00,        # display offset
                 0x40,              # start line 0
                 0x8D, 0x14,        # charge pump on
                 0x20, 0x00,        # horizontal addressing
                 0xA1, 0xC8,        # segment remap, COM scan descending
                 0xDA, 0x12,        # COM pins
                 0xD9, 0xF1,        # pre-charge
                 0xDB, 0x40,        # VCOMH
                 0xA4, 0xA6)),      # follow RAM, not inverted
    ("command", (0x81, 0xCF)),      # contrast
    ("command", (0x21, 0, 127, 0x22, 0, 7)),  # clear: whole window...
    ("data", bytes(1024)),                     # ...all dark
    ("command", (0xAF,)),           # display on
]


def test_ssd1306_init_bytes():
    serial = RecordingSerial()
    display = graphic_display("ssd1306", serial, 128, 64)
    assert serial.events == SSD1306_INIT
    assert display.layout == Layout((128, 64), "1", 20, 4)


def test_ssd1306_push_is_the_rendered_image_page_by_page():
    serial = RecordingSerial()
    display = graphic_display("ssd1306", serial, 128, 64)
    serial.events.clear()
    rows = sample_screens()["incoming"]
    display.show(rows)
    expected = render_screen(rows, Layout((128, 64), "1"))
    assert serial.events == [("command", (0x21, 0, 127, 0x22, 0, 7)),
                             ("data", ssd1306_pages(expected))]
    assert display.image is not None and display.image.tobytes() == expected.tobytes()


def test_sh1106_writes_eight_pages_with_its_column_offset():
    serial = RecordingSerial()
    display = graphic_display("sh1106", serial, 128, 64)
    assert serial.events[0] == ("command", (0xAE, 0x20, 0x10, 0xB0, 0xC8, 0x00, 0x10, 0x40, 0xA1,
                                            0xA6, 0xA8, 0x3F, 0xA4, 0xD3, 0x00, 0xD5, 0xF0, 0xD9,
                                            0x22, 0xDA, 0x12, 0xDB, 0x20, 0x8D, 0x14))
    serial.events.clear()
    display.show(["Hallå"])
    commands = [event[1] for event in serial.events if event[0] == "command"]
    assert commands == [(0xB0 + page, 0x02, 0x10) for page in range(8)]


def test_st7789_init_and_a_frame_as_rgb_bytes():
    serial = RecordingSerial()
    display = graphic_display("st7789", serial, 240, 240)
    assert serial.events[:4] == [("command", (0x36,)), ("data", b"\x70"),
                                 ("command", (0x3A,)), ("data", b"\x06")]
    serial.events.clear()
    rows = sample_screens()["connected"]
    display.show(rows)
    assert serial.events[:5] == [("command", (0x2A,)), ("data", bytes([0, 0, 0, 239])),
                                 ("command", (0x2B,)), ("data", bytes([0, 0, 0, 239])),
                                 ("command", (0x2C,))]
    assert serial.events[5] == ("data", render_screen(rows, Layout((240, 240), "RGB")).tobytes())


def test_st7735_rotated_draws_a_portrait_layout():
    display = graphic_display("st7735", RecordingSerial(), 160, 128, rotate=1)
    assert display.layout.size == (128, 160) and display.layout.mode == "RGB"


def test_unknown_graphic_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind 'ili9341'"):
        graphic_display("ili9341", RecordingSerial(), 320, 240)


def test_luma_gpio_drives_dc_and_reset_through_our_backend():
    from luma.core.interface.serial import spi

    class FakeSpiDev:
        def __init__(self) -> None:
            self.written: list[list[int]] = []

        def open(self, port: int, device: int) -> None:
            self.opened = (port, device)

        def writebytes(self, data) -> None:
            self.written.append(list(data))

    gpio, spidev = RecordingGpio(), FakeSpiDev()
    serial = spi(spi=spidev, gpio=LumaGpio(gpio), port=0, device=1, gpio_DC=24, gpio_RST=25)
    serial.command(0x2A)
    serial.data([1, 2])
    assert gpio.events == [("output", 24, False), ("output", 25, False),
                           ("write", 25, False), ("write", 25, True),  # reset pulse
                           ("write", 24, False), ("write", 24, True)]  # DC: command, data
    assert spidev.opened == (0, 1) and spidev.written == [[0x2A], [1, 2]]


# --- rendering ----------------------------------------------------------------------------

def test_the_font_has_swedish_letters_distinct_from_plain_ones():
    font = text_font()
    shapes = {ch: font.glyph(font.code(ch)).tobytes() for ch in "aåäoöAÅÄOÖeé?"}
    assert len(set(shapes.values())) == len(shapes)
    assert font.code("å") == 0xE5 and font.code("Ö") == 0xD6
    assert font.code("č") == ord("c") and font.code("€") == ord("?")


def test_fit_rows_composes_cuts_and_pads():
    assert fit_rows(["A\u030asa", "x" * 30], 5, 3) == ["Åsa  ", "xxxxx", "     "]


def test_row_one_is_large_when_it_fits():
    assert fit_scale("0701234567", 2, 1, 120) == 2
    assert fit_scale("Björn Ängström", 2, 1, 120) == 1
    assert fit_scale("Åsa Öberg", 4, 2, 240) == 4


def test_layout_needs_two_lines():
    with pytest.raises(ValueError):
        Layout((128, 64), "1", 20, 1)


def test_graphic_display_keeps_the_text_grid_semantics():
    display = GraphicDisplay(graphic_display("ssd1306", RecordingSerial(), 128, 64).device)
    display.show(["Ring upp:", "123", "x" * 40])
    assert display.rows == ["Ring upp:", "123", "x" * 20, ""]


def test_a_panel_that_fails_is_logged_not_raised(caplog):
    from luma.core.error import DeviceNotFoundError

    class Gone:
        size, mode = (128, 64), "1"

        def display(self, image: Image.Image) -> None:
            raise DeviceNotFoundError("I2C device not found on address: 0x3C")

    display = GraphicDisplay(Gone())
    display.show(["Det ringer"])
    assert display.errors == 1 and "0x3C" in caplog.text


@pytest.mark.parametrize("panel", list(PANELS))
@pytest.mark.parametrize("name", list(sample_screens()))
def test_screen_golden(panel: str, name: str):
    size, mode = PANELS[panel]
    image = render_screen(sample_screens()[name], Layout(size, mode))
    path = REFERENCE / f"{panel}-{name}.png"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        if not UPDATE:
            pytest.fail(f"wrote missing golden file {path}; look at it and commit it")
    with Image.open(path) as reference:
        assert reference.mode == image.mode and reference.size == image.size
        assert ImageChops.difference(reference.convert("RGB"), image.convert("RGB")).getbbox() \
            is None, f"{path.name} differs; LUREN_UPDATE_GOLDEN=1 to accept the new picture"


# --- make_display for graphic panels ------------------------------------------------------

def test_make_display_builds_an_ssd1306(monkeypatch, tmp_path):
    serial = RecordingSerial()
    monkeypatch.setattr(board.display, "DEV", tmp_path)
    (tmp_path / "i2c-1").touch()
    monkeypatch.setattr("luma.core.interface.serial.i2c",
                        lambda port, address: serial if (port, address) == (1, 0x3C) else None)
    display = make_display({"kind": "ssd1306", "rows": 4}, None)
    assert isinstance(display, GraphicDisplay) and serial.events == SSD1306_INIT


def test_make_display_builds_an_st7789_on_our_gpio(monkeypatch, tmp_path):
    written: list = []

    class SpiDev:
        def open(self, port: int, device: int) -> None:
            written.append(("open", port, device))

        def writebytes(self, data) -> None:
            written.append(len(data))

    monkeypatch.setitem(sys.modules, "spidev", types.SimpleNamespace(SpiDev=SpiDev))
    monkeypatch.setattr("luma.core.interface.serial.sleep", lambda seconds: None)
    monkeypatch.setattr(board.display, "DEV", tmp_path)
    (tmp_path / "spidev0.0").touch()
    gpio = RecordingGpio()
    spec = {"kind": "st7789", "dc": 24, "rst": 25, "backlight": 18, "width": 240, "height": 240}
    display = make_display(spec, gpio)
    assert isinstance(display, GraphicDisplay) and display.layout.size == (240, 240)
    assert ("output", 18, False) in gpio.events and ("write", 18, True) in gpio.events
    assert written[0] == ("open", 0, 0)
    written.clear()
    display.show(["Det ringer", "Åsa Öberg"])
    assert sum(written) == 1 + 4 + 1 + 4 + 1 + 240 * 240 * 3  # CASET, RASET, RAMWR, pixels


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "ssd1306", "bus": 9}, "ssd1306: .*i2c-9 not present"),
    ({"kind": "sh1106", "rotate": 4}, "rotate must be 0-3"),
    ({"kind": "st7789", "speed_hz": 12345}, "st7789: speed_hz must be one of"),
])
def test_make_display_graphic_errors(monkeypatch, tmp_path, spec, message):
    monkeypatch.setattr(board.display, "DEV", tmp_path)
    if spec.get("bus") != 9:
        (tmp_path / "i2c-1").touch()
    monkeypatch.setitem(sys.modules, "spidev", types.SimpleNamespace())
    monkeypatch.setattr("luma.core.interface.serial.i2c", lambda port, address: RecordingSerial())
    with pytest.raises(DisplayError, match=message):
        make_display(spec, None)


def test_make_display_names_spidev_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "spidev", None)
    with pytest.raises(DisplayError, match="st7789: needs the Python package 'spidev'"):
        make_display({"kind": "st7789"}, RecordingGpio())


def test_make_display_tft_needs_gpio_for_dc_and_reset(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "spidev", types.SimpleNamespace())
    monkeypatch.setattr(board.display, "DEV", tmp_path)
    (tmp_path / "spidev0.0").touch()
    with pytest.raises(DisplayError, match="st7735: needs GPIO pins"):
        make_display({"kind": "st7735"}, None)


def test_an_oled_offers_contrast_and_sets_it() -> None:
    serial = RecordingSerial()
    display = graphic_display("ssd1306", serial, 128, 64)
    assert "contrast" in display.controls
    serial.events.clear()
    assert display.set_level("contrast", 10)
    assert ("command", (0x81, 255)) in serial.events  # SSD1306: set contrast 255
