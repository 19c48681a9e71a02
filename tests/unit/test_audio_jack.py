"""Headset detection backends (audio/jack.py): evdev structs, GPIO, amixer output, simulated."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from audio.jack import (
    EV_SW,
    SW_HEADPHONE_INSERT,
    SW_MICROPHONE_INSERT,
    AlsaJack,
    EvdevJack,
    EventParser,
    GpioJack,
    SimJack,
    jack_from_profile,
    pack_event,
    parse_amixer_cget,
)
from board.gpio.sim import SimGpio
from firmware.clock import ManualClock

EV_SYN, EV_KEY = 0x00, 0x01

AMIXER_ON = """numid=18,iface=CARD,name='Headphone Jack'
  ; type=BOOLEAN,access=r-------,values=1
  : values=on
"""


def recorder(jack: object) -> list[bool]:
    seen: list[bool] = []
    jack.on_change = seen.append  # type: ignore[attr-defined]
    return seen


def test_parser_handles_events_split_across_reads() -> None:
    data = pack_event(EV_SW, SW_HEADPHONE_INSERT, 1, 12, 34) + pack_event(EV_SYN, 0, 0)
    parser = EventParser()
    events = list(parser.feed(data[:5])) + list(parser.feed(data[5:30])) + list(
        parser.feed(data[30:]))
    assert [(e.type, e.code, e.value) for e in events] == [(EV_SW, SW_HEADPHONE_INSERT, 1),
                                                           (EV_SYN, 0, 0)]
    assert (events[0].sec, events[0].usec) == (12, 34)


def test_evdev_jack_reports_only_its_switch_and_only_changes(tmp_path: Path) -> None:
    jack = EvdevJack(str(tmp_path / "unused"))
    seen = recorder(jack)
    jack.feed(pack_event(EV_KEY, 30, 1) + pack_event(EV_SW, SW_MICROPHONE_INSERT, 1))
    jack.feed(pack_event(EV_SW, SW_HEADPHONE_INSERT, 1) + pack_event(EV_SYN, 0, 0))
    jack.feed(pack_event(EV_SW, SW_HEADPHONE_INSERT, 1))
    jack.feed(pack_event(EV_SW, SW_HEADPHONE_INSERT, 0))
    assert seen == [True, False]


def test_evdev_jack_reads_real_structs_from_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    jack = EvdevJack(f"/dev/fd/{read_fd}", switch=SW_MICROPHONE_INSERT)
    changed = threading.Event()
    seen: list[bool] = []
    jack.on_change = lambda plugged: (seen.append(plugged), changed.set())
    jack.start()  # EVIOCGSW fails on a pipe: starts unplugged
    try:
        assert jack.plugged is False
        os.write(write_fd, pack_event(EV_SW, SW_MICROPHONE_INSERT, 1) + pack_event(EV_SYN, 0, 0))
        assert changed.wait(5)
        assert seen == [True]
    finally:
        os.close(write_fd)
        jack.close()
        os.close(read_fd)


def test_evdev_jack_reads_a_file_of_events(tmp_path: Path) -> None:
    events = tmp_path / "events"
    events.write_bytes(pack_event(EV_SW, SW_HEADPHONE_INSERT, 1)
                       + pack_event(EV_SW, SW_HEADPHONE_INSERT, 0)
                       + pack_event(EV_SW, SW_HEADPHONE_INSERT, 1))
    done = threading.Event()
    seen: list[bool] = []

    def changed(plugged: bool) -> None:
        seen.append(plugged)
        if len(seen) == 3:
            done.set()

    jack = EvdevJack(str(events))
    jack.on_change = changed
    jack.start()
    assert done.wait(5)
    jack.close()
    assert seen == [True, False, True]


@pytest.mark.parametrize("plugged_level", [False, True])
def test_gpio_jack_follows_the_pin(plugged_level: bool) -> None:
    gpio = SimGpio()
    jack = GpioJack(gpio, 17, plugged_level=plugged_level)
    seen = recorder(jack)
    jack.start()
    assert jack.plugged is (plugged_level is True)  # the pull-up holds the pin high
    plug, unplug = (gpio.drive_high, gpio.drive_low) if plugged_level else (gpio.drive_low,
                                                                           gpio.drive_high)
    unplug(17)
    plug(17)
    unplug(17)
    expected = [False, True, False] if plugged_level else [True, False]
    assert seen == expected
    assert gpio.owner(17) == "headset-jack"


def test_amixer_output_parses() -> None:
    assert parse_amixer_cget(AMIXER_ON) is True
    assert parse_amixer_cget(AMIXER_ON.replace("=on", "=off")) is False
    assert parse_amixer_cget("amixer: Cannot find the given element") is None


def test_alsa_jack_polls_through_the_clock() -> None:
    clock = ManualClock()
    outputs = [AMIXER_ON.replace("=on", "=off"), AMIXER_ON, AMIXER_ON]
    calls: list[list[str]] = []

    def runner(args: list[str]) -> str:
        calls.append(args)
        return outputs[min(len(calls) - 1, len(outputs) - 1)]

    jack = AlsaJack("1", clock, runner=runner)
    seen = recorder(jack)
    jack.start()
    assert jack.plugged is False
    clock.advance(0.5)
    clock.advance(0.5)
    assert seen == [True]
    assert calls[0] == ["amixer", "-c", "1", "cget", "iface=CARD,name=Headphone Jack"]
    jack.close()


def test_alsa_jack_survives_a_missing_amixer() -> None:
    def runner(args: list[str]) -> str:
        raise FileNotFoundError("amixer")

    jack = AlsaJack("0", ManualClock(), runner=runner)
    jack.start()
    assert jack.plugged is False and jack.failures == 1


def test_sim_jack_and_the_profile_factory() -> None:
    jack = jack_from_profile({"kind": "sim"})
    assert isinstance(jack, SimJack)
    seen = recorder(jack)
    jack.plug()
    jack.plug()
    jack.unplug()
    assert seen == [True, False]
    assert isinstance(jack_from_profile({"kind": "gpio", "pin": 5}, gpio=SimGpio()), GpioJack)
    assert jack_from_profile({"kind": "evdev", "device": "/dev/input/event3",
                              "switch": "microphone"}).switch == SW_MICROPHONE_INSERT
    with pytest.raises(ValueError, match="unknown kind 'usb'"):
        jack_from_profile({"kind": "usb"})
