"""The DECT base's handsets as terminals: lines, names, and the registration window's rules."""

from __future__ import annotations

import serial

from board.dect.radio import DectRadio
from firmware.clock import ManualClock
from firmware.config import parse_config
from firmware.dect_base import DectBase

LINES = [{"user": "1001", "registrar": "127.0.0.1:5060"},
         {"user": "1003", "registrar": "127.0.0.1:5060"}]


def base(**dect: object) -> DectBase:
    config = parse_config({"lines": LINES, "dect": dect, "handsets": [
        {"number": 1, "line": 1, "name": "Anna"}, {"number": 2, "line": 1},
        {"number": 5, "line": 2, "name": "Lager"}]})
    radio = DectRadio(serial.serial_for_url("loop://", timeout=0), ManualClock())
    return DectBase(radio, config)


def test_each_handset_gets_its_line_and_name() -> None:
    dect = base()
    assert dect.terminal_lines() == [[0], [0], [], [], [1], []]
    assert [dect.name_of(n) for n in (1, 2, 5)] == ["Anna", "Handset 2", "Lager"]
    assert len(dect.boards) == 6
    assert (dect.boards[0].display.width, dect.boards[0].display.height) == (24, 3)


def test_no_window_with_the_default_pin() -> None:
    problem = base().open_window()
    assert problem is not None and "default 0000" in problem


def test_no_window_while_the_radio_does_not_answer() -> None:
    problem = base(pin="2580").open_window()
    assert problem is not None and "not answering" in problem


def test_deregistering_an_unknown_handset_is_refused_in_words() -> None:
    assert base(pin="2580").deregister(3) == "handset 3 is not registered"
