"""LEDs on simulated pins: patterns and colours as pin writes, one shared blink timer per rate."""

from __future__ import annotations

import pytest

from board.gpio.sim import SimGpio, Write
from board.led import BlinkScheduler, GpioLed
from board.parts import Led, LedPattern, LedState
from firmware.clock import ManualClock

GREEN, RED, MSG, SPK = 17, 27, 26, 18
OFF = LedState(LedPattern.OFF)
ON = LedState(LedPattern.ON)
SLOW = LedState(LedPattern.SLOW_BLINK)
FAST = LedState(LedPattern.FAST_BLINK)


class Rig:
    def __init__(self) -> None:
        self.clock = ManualClock(start=0.0)
        self.gpio = SimGpio(clock=self.clock)
        self.blinker = BlinkScheduler(self.clock)
        self.line = GpioLed("line1", self.gpio, {"green": GREEN, "red": RED}, self.blinker)
        self.message = GpioLed("message", self.gpio, {"red": MSG}, self.blinker)
        self.speaker = GpioLed("speaker", self.gpio, {"green": SPK}, self.blinker)
        self.gpio.clear_log()

    def run(self, seconds: float, step: float = 0.0625) -> None:
        for _ in range(round(seconds / step)):
            self.clock.advance(step)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_led_pins_start_as_outputs_off(rig: Rig) -> None:
    for pin in (GREEN, RED, MSG, SPK):
        assert rig.gpio.is_output(pin)
        assert rig.gpio.level(pin) is False
    assert rig.gpio.owner(GREEN) == "led line1"


def test_gpio_leds_are_board_leds(rig: Rig) -> None:
    assert isinstance(rig.line, Led)
    assert rig.line.state == OFF


def test_single_colour_on_and_off(rig: Rig) -> None:
    rig.speaker.set(ON)
    rig.speaker.set(OFF)
    assert rig.gpio.writes == [Write(0.0, SPK, True), Write(0.0, SPK, False)]


def test_single_colour_led_lights_for_any_colour(rig: Rig) -> None:
    rig.message.set(LedState(LedPattern.ON, "green"))
    assert rig.gpio.writes_to(MSG) == [True]


def test_same_state_twice_writes_once(rig: Rig) -> None:
    rig.speaker.set(ON)
    rig.speaker.set(ON)
    assert len(rig.gpio.writes) == 1


def test_bicolour_green_red_amber(rig: Rig) -> None:
    rig.line.set(LedState(LedPattern.ON, "green"))
    assert rig.line.lit_pins() == {GREEN}
    rig.line.set(LedState(LedPattern.ON, "red"))
    assert rig.line.lit_pins() == {RED}
    rig.line.set(LedState(LedPattern.ON, "amber"))
    assert rig.line.lit_pins() == {GREEN, RED}
    rig.line.set(LedState(LedPattern.OFF, "amber"))
    assert rig.line.lit_pins() == set()
    assert [(w.pin, w.level) for w in rig.gpio.writes] == [
        (GREEN, True), (GREEN, False), (RED, True), (GREEN, True), (GREEN, False), (RED, False)]


def test_unknown_colour_falls_back_to_the_first_with_one_warning(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.line.set(LedState(LedPattern.ON, "blue"))
    rig.line.set(LedState(LedPattern.OFF, "blue"))
    rig.line.set(LedState(LedPattern.ON, "blue"))
    assert rig.line.lit_pins() == {GREEN}
    assert caplog.text.count("LED line1 has no blue; showing green") == 1


def test_active_low_led_inverts_levels() -> None:
    clock = ManualClock()
    gpio = SimGpio(clock=clock)
    led = GpioLed("mute", gpio, {"red": 5}, BlinkScheduler(clock), active_low=True)
    assert gpio.level(5) is True  # off
    led.set(ON)
    assert gpio.level(5) is False


def test_steady_leds_schedule_no_timer(rig: Rig) -> None:
    rig.line.set(ON)
    rig.speaker.set(ON)
    rig.message.set(OFF)
    assert rig.clock.pending() == 0


def test_fast_blink_toggles_every_125ms(rig: Rig) -> None:
    rig.speaker.set(FAST)
    rig.run(0.5)
    assert rig.gpio.writes == [Write(t, SPK, lvl) for t, lvl in
                               [(0.0, True), (0.125, False), (0.25, True), (0.375, False),
                                (0.5, True)]]


def test_slow_blink_toggles_every_half_second(rig: Rig) -> None:
    rig.message.set(SLOW)
    rig.run(2.0)
    assert [(w.at, w.level) for w in rig.gpio.writes] == [
        (0.0, True), (0.5, False), (1.0, True), (1.5, False), (2.0, True)]


def test_leds_blinking_at_one_rate_share_one_timer_and_toggle_together(rig: Rig) -> None:
    rig.line.set(FAST)
    rig.speaker.set(FAST)
    rig.message.set(FAST)
    assert rig.clock.pending() == 1
    rig.run(1.0)
    by_time: dict[float, set[int]] = {}
    for write in rig.gpio.writes:
        by_time.setdefault(write.at, set()).add(write.pin)
    assert all(pins == {GREEN, SPK, MSG} for pins in by_time.values())
    assert len(by_time) == 9  # lit at 0, then a toggle every 125 ms


def test_an_led_joining_later_blinks_in_step(rig: Rig) -> None:
    rig.speaker.set(SLOW)
    rig.run(0.5)  # the group is now dark
    rig.message.set(SLOW)
    assert rig.gpio.level(MSG) is False  # joins the dark phase, not lit out of step
    rig.run(0.5)
    assert rig.gpio.level(MSG) is True
    assert rig.gpio.level(SPK) is True


def test_one_timer_per_rate_and_none_once_nothing_blinks(rig: Rig) -> None:
    rig.line.set(FAST)
    rig.message.set(SLOW)
    rig.speaker.set(SLOW)
    assert rig.clock.pending() == 2
    rig.line.set(ON)
    assert rig.clock.pending() == 1
    rig.message.set(OFF)
    assert rig.clock.pending() == 1
    rig.speaker.set(ON)
    assert rig.clock.pending() == 0
    assert rig.blinker.blinking(LedPattern.SLOW_BLINK) == 0


def test_an_led_left_blinking_stops_where_it_is_told(rig: Rig) -> None:
    rig.speaker.set(FAST)
    rig.run(0.125)
    rig.speaker.set(ON)
    rig.run(1.0)
    assert rig.gpio.level(SPK) is True
    assert rig.gpio.writes_to(SPK) == [True, False, True]


def test_colour_change_while_blinking_keeps_the_rhythm(rig: Rig) -> None:
    rig.line.set(LedState(LedPattern.FAST_BLINK, "green"))
    rig.run(0.25)
    timer_count = rig.clock.pending()
    rig.line.set(LedState(LedPattern.FAST_BLINK, "red"))
    assert rig.line.lit_pins() == {RED}
    assert rig.clock.pending() == timer_count == 1
    rig.run(0.125)
    assert rig.line.lit_pins() == set()


def test_moving_between_rates(rig: Rig) -> None:
    rig.speaker.set(FAST)
    rig.speaker.set(SLOW)
    assert rig.blinker.blinking(LedPattern.FAST_BLINK) == 0
    assert rig.blinker.blinking(LedPattern.SLOW_BLINK) == 1
    assert rig.clock.pending() == 1


def test_close_stops_every_timer(rig: Rig) -> None:
    rig.speaker.set(FAST)
    rig.message.set(SLOW)
    rig.blinker.close()
    assert rig.clock.pending() == 0


def test_an_led_needs_a_pin() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="LED x: needs at least one pin"):
        GpioLed("x", SimGpio(clock=clock), {}, BlinkScheduler(clock))
