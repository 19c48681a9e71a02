"""The keypad on simulated pins: debounce, long press, repeat, ghosting, stuck keys, idleness."""

from __future__ import annotations

import pytest

from board.gpio.sim import SimGpio
from board.keypad import Keypad, KeyTiming, ghost_corners
from firmware.clock import ManualClock

ROWS = [5, 6, 12, 13]
COLS = [16, 19, 20, 21]
KEYMAP = [
    ["1", "2", "3", "up"],
    ["4", "5", "6", "down"],
    ["7", "8", "9", "ok"],
    ["*", "0", "#", "cancel"],
]
DIRECT = {"speaker": 22, "mute": 23}
STEP = 0.001


class Rig:
    """A keypad on SimGpio with a ManualClock, recording every event with its time."""

    def __init__(self, timing: KeyTiming | None = None) -> None:
        self.clock = ManualClock()
        self.start = self.clock.now()
        self.gpio = SimGpio(clock=self.clock)
        self.keypad = Keypad(self.gpio, self.clock, rows=ROWS, cols=COLS, keymap=KEYMAP,
                             direct=DIRECT, timing=timing)
        self.events: list[tuple[str, str, float]] = []
        self.faults: list[tuple[str, str]] = []
        self.keypad.on_key = lambda name: self.events.append(("key", name, self.t()))
        self.keypad.on_long_press = lambda name: self.events.append(("long", name, self.t()))
        self.keypad.on_fault = lambda part, message: self.faults.append((part, message))
        self.gpio.clear_log()

    def t(self) -> float:
        """Milliseconds since the rig was made."""
        return round((self.clock.now() - self.start) * 1000, 3)

    def press(self, *names: str) -> None:
        for name in names:
            pins = self.keypad.contacts(name)
            if len(pins) == 2:
                self.gpio.connect(*pins)
            else:
                self.gpio.drive_low(pins[0])

    def release(self, *names: str) -> None:
        for name in names:
            pins = self.keypad.contacts(name)
            if len(pins) == 2:
                self.gpio.disconnect(*pins)
            else:
                self.gpio.release(pins[0])

    def run(self, seconds: float, step: float = STEP) -> None:
        for _ in range(round(seconds / step)):
            self.clock.advance(step)

    def bounce(self, name: str, seconds: float, end_closed: bool) -> None:
        """Chatter `name` every millisecond for `seconds`, ending closed or open."""
        closed = not end_closed
        for _ in range(round(seconds / STEP)):
            (self.press if closed else self.release)(name)
            closed = not closed
            self.run(STEP)
        (self.press if end_closed else self.release)(name)

    def keys(self) -> list[str]:
        return [name for kind, name, _ in self.events if kind == "key"]

    def tap(self, name: str, hold: float = 0.1) -> None:
        self.press(name)
        self.run(hold)
        self.release(name)
        self.run(0.05)


@pytest.fixture
def rig() -> Rig:
    return Rig()


@pytest.fixture
def quick_stuck() -> Rig:
    """Keys count as stuck after 3 s instead of 30 (the default has its own test)."""
    return Rig(KeyTiming(stuck_after=3.0))


# -- idle --------------------------------------------------------------------------------------
def test_idle_keypad_holds_no_timer_and_reads_nothing(rig: Rig) -> None:
    assert rig.clock.pending() == 0
    rig.run(2.0, step=0.01)
    assert rig.clock.pending() == 0
    assert rig.gpio.reads == 0
    assert rig.gpio.writes == []
    assert not rig.keypad.scanning


def test_rows_rest_low_so_any_key_makes_an_edge(rig: Rig) -> None:
    assert [rig.gpio.level(pin) for pin in ROWS] == [False] * 4
    rig.press("9")
    assert rig.clock.pending() == 1  # woken by the column's edge, scan on the loop


def test_at_most_one_row_is_driven_and_only_low(rig: Rig,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Open-drain rows: two keys in one column never short a low row to a high one."""
    gpio, driven = rig.gpio, []
    real_read = gpio.read

    def read(pin: int) -> bool:
        if pin in COLS:
            driven.append([row for row in ROWS if gpio.is_output(row)])
        return real_read(pin)
    monkeypatch.setattr(gpio, "read", read)
    rig.press("1", "4")  # one column, two rows
    rig.run(0.05)
    assert driven and all(len(rows) == 1 for rows in driven)
    assert all(not gpio.level(row) for rows in driven for row in rows)
    assert sorted(rig.keys()) == ["1", "4"]


def test_scanning_stops_once_everything_is_released(rig: Rig) -> None:
    rig.tap("5")
    assert rig.keys() == ["5"]
    assert rig.clock.pending() == 0
    rig.gpio.clear_log()
    rig.run(1.0, step=0.01)
    assert rig.gpio.reads == 0
    assert rig.clock.pending() == 0


def test_scans_fast_while_debouncing_then_slower_while_held(rig: Rig) -> None:
    reads_per_scan = len(ROWS) * len(COLS) + len(DIRECT)
    rig.press("5")
    rig.run(0.02)  # debouncing: a scan every 5 ms
    assert rig.gpio.reads == pytest.approx(reads_per_scan * 0.02 / 0.005, abs=reads_per_scan)
    rig.gpio.clear_log()
    rig.run(0.2)  # held steady: a scan every 20 ms is enough for long press and repeat
    assert rig.gpio.reads == pytest.approx(reads_per_scan * 0.2 / 0.020, abs=reads_per_scan)
    assert rig.clock.pending() == 1


# -- debounce ----------------------------------------------------------------------------------
def test_digit_acts_on_press_once_debounced(rig: Rig) -> None:
    rig.press("5")
    rig.run(0.019)
    assert rig.events == []
    rig.run(0.010)
    assert rig.keys() == ["5"]
    assert 20 <= rig.events[0][2] <= 25  # debounce, rounded up to the next scan
    rig.release("5")
    rig.run(0.1)
    assert rig.keys() == ["5"]  # nothing on release


def test_bouncing_5ms_with_20ms_debounce_gives_one_event(rig: Rig) -> None:
    rig.bounce("8", 0.005, end_closed=True)
    rig.run(0.2)
    rig.bounce("8", 0.005, end_closed=False)
    rig.run(0.1)
    assert rig.events == [("key", "8", rig.events[0][2])]
    assert rig.clock.pending() == 0


def test_a_glitch_shorter_than_debounce_is_no_key(rig: Rig) -> None:
    rig.press("3")
    rig.run(0.010)
    rig.release("3")
    rig.run(0.1)
    assert rig.events == []
    assert rig.clock.pending() == 0


def test_direct_key_wakes_the_keypad_and_is_reported(rig: Rig) -> None:
    rig.tap("speaker")
    rig.tap("mute")
    assert rig.keys() == ["speaker", "mute"]
    assert rig.clock.pending() == 0


# -- several keys ------------------------------------------------------------------------------
def test_two_keys_at_once_are_both_reported(rig: Rig) -> None:
    rig.press("1", "9")
    rig.run(0.05)
    assert sorted(rig.keys()) == ["1", "9"]
    assert rig.keypad.pressed() == {"1", "9"}


@pytest.mark.parametrize("pair", [("1", "2"), ("1", "4"), ("5", "speaker")])
def test_two_keys_sharing_a_row_or_column_are_both_reported(rig: Rig,
                                                             pair: tuple[str, str]) -> None:
    rig.press(*pair)
    rig.run(0.05)
    assert sorted(rig.keys()) == sorted(pair)


def test_ghost_corners_of_a_rectangle() -> None:
    assert ghost_corners({(0, 0), (0, 1), (1, 0)}) == set()
    assert ghost_corners({(0, 0), (0, 1), (1, 0), (1, 1)}) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert ghost_corners({(0, 0), (0, 2), (3, 0), (3, 2), (1, 1)}) == {(0, 0), (0, 2), (3, 0),
                                                                         (3, 2)}
    assert ghost_corners({(0, 0), (1, 1), (2, 2)}) == set()


def test_the_simulated_matrix_really_ghosts(rig: Rig) -> None:
    rig.press("1", "2", "4")  # rows 0, 0, 1; columns 0, 1, 0
    for row in (ROWS[0], ROWS[2], ROWS[3]):
        rig.gpio.setup_input(row, owner="keypad")  # select row 1 only, as a scan does
    assert rig.gpio.level(COLS[1]) is False  # "5" reads pressed: the ghost


def test_third_corner_of_a_rectangle_is_ignored_until_it_breaks(rig: Rig) -> None:
    rig.press("1")
    rig.run(0.05)
    rig.press("2")
    rig.run(0.05)
    rig.press("4")  # ghost on "5": "4" and "5" cannot be told apart
    rig.run(0.5)
    assert rig.keys() == ["1", "2"]
    assert rig.keypad.pressed() == {"1", "2"}  # the held keys stay held
    rig.release("1")  # the rectangle breaks: "4" is real, "5" was the ghost
    rig.run(0.05)
    assert rig.keys() == ["1", "2", "4"]
    assert rig.keypad.pressed() == {"2", "4"}


def test_three_corners_pressed_together_report_nothing_until_one_is_let_go(rig: Rig) -> None:
    rig.press("5", "6", "9")  # rows 1, 1, 2; columns 1, 2, 2: ghost on "8"
    rig.run(0.5)
    assert rig.events == []
    rig.release("6")
    rig.run(0.05)
    assert sorted(rig.keys()) == ["5", "9"]  # "8" never


def test_a_held_key_in_a_rectangle_is_not_released_by_the_ghost(rig: Rig) -> None:
    rig.press("1", "2")
    rig.run(0.05)
    rig.press("4")
    rig.run(0.05)
    rig.release("2")  # rectangle gone: "1" still down, "4" now reported
    rig.run(0.05)
    assert rig.keypad.pressed() == {"1", "4"}


# -- long press and repeat ---------------------------------------------------------------------
def test_long_press_is_a_separate_event_once(rig: Rig) -> None:
    rig.press("0")
    rig.run(2.0)
    assert [kind for kind, *_ in rig.events] == ["key", "long"]
    pressed_at, long_at = rig.events[0][2], rig.events[1][2]
    assert long_at - pressed_at == pytest.approx(800, abs=5)


def test_a_short_press_gives_no_long_press(rig: Rig) -> None:
    rig.tap("0", hold=0.5)
    assert [kind for kind, *_ in rig.events] == ["key"]


def test_repeat_keys_repeat_and_give_no_long_press(rig: Rig) -> None:
    rig.press("up")
    rig.run(1.030)
    times = [t - rig.events[0][2] for kind, _, t in rig.events]
    assert rig.keys() == ["up"] * 7
    assert times == pytest.approx([0, 500, 600, 700, 800, 900, 1000], abs=5)
    rig.release("up")
    rig.run(0.5)
    assert len(rig.events) == 7


def test_timings_come_from_key_timing() -> None:
    rig = Rig(KeyTiming(debounce=0.010, long_press=0.3))
    rig.press("7")
    rig.run(0.5)
    (_, _, pressed), (_, _, long) = rig.events
    assert pressed <= 15
    assert long - pressed == pytest.approx(300, abs=5)


# -- stuck keys --------------------------------------------------------------------------------
def test_stuck_key_is_reported_once_and_then_ignored(rig: Rig) -> None:
    rig.press("7")
    rig.run(31.0, step=0.005)
    assert rig.faults == [("keypad", "key 7 stuck down for 30 s; ignored until released")]
    rig.run(60.0, step=0.05)
    assert len(rig.faults) == 1
    assert rig.keypad.stuck() == {"7"}
    assert [kind for kind, *_ in rig.events] == ["key", "long"]


def test_a_stuck_key_only_costs_a_slow_poll(quick_stuck: Rig) -> None:
    rig = quick_stuck
    rig.press("7")
    rig.run(3.1, step=0.005)
    rig.gpio.clear_log()
    rig.run(1.0, step=0.005)
    reads_per_scan = len(ROWS) * len(COLS) + len(DIRECT)
    assert rig.gpio.reads == pytest.approx(20 * reads_per_scan, abs=reads_per_scan)
    assert rig.clock.pending() == 1


def test_other_keys_work_while_one_is_stuck(quick_stuck: Rig) -> None:
    rig = quick_stuck
    rig.press("7")
    rig.run(3.1, step=0.005)
    rig.tap("1", hold=0.15)  # same column as the stuck key: no edge, found by the poll
    rig.tap("speaker", hold=0.15)
    assert rig.keys() == ["7", "1", "speaker"]


def test_a_stuck_key_works_again_once_released(quick_stuck: Rig) -> None:
    rig = quick_stuck
    rig.press("7")
    rig.run(3.1, step=0.005)
    rig.release("7")
    rig.run(0.2)
    assert rig.keypad.stuck() == set()
    assert rig.clock.pending() == 0
    rig.tap("7")
    assert rig.keys() == ["7", "7"]


# -- robustness --------------------------------------------------------------------------------
def test_a_failing_listener_does_not_stop_the_scanning(rig: Rig,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    def boom(name: str) -> None:
        raise RuntimeError("listener bug")
    rig.keypad.on_key = boom
    rig.tap("2")
    assert "listener for ('2',) failed" in caplog.text
    assert rig.clock.pending() == 0
    assert rig.keypad.pressed() == set()


def test_a_key_held_at_start_is_reported() -> None:
    clock = ManualClock()
    gpio = SimGpio(clock=clock)
    gpio.connect(ROWS[0], COLS[0])  # "1" held while the phone boots
    keys: list[str] = []
    keypad = Keypad(gpio, clock, rows=ROWS, cols=COLS, keymap=KEYMAP)
    keypad.on_key = keys.append
    for _ in range(30):
        clock.advance(0.001)
    assert keys == ["1"]


def test_close_stops_scanning(rig: Rig) -> None:
    rig.press("5")
    rig.run(0.01)
    rig.keypad.close()
    assert rig.clock.pending() == 0
    rig.release("5")
    rig.press("6")
    assert rig.clock.pending() == 0


@pytest.mark.parametrize(("keymap", "message"), [
    ([["1", "2"]], "keypad: the keymap must have 1 rows of 3 keys, one per row and column pin"),
    ([["1", "2", "flash"]], "keypad: unknown key 'flash' (see board/keys.py)"),
    ([["1", "2", "1"]], "keypad: key '1' appears twice"),
])
def test_bad_keymaps_are_refused(keymap: list[list[str]], message: str) -> None:
    clock = ManualClock()
    with pytest.raises(ValueError) as err:
        Keypad(SimGpio(clock=clock), clock, rows=[5], cols=[6, 7, 8], keymap=keymap)
    assert str(err.value) == message


def test_contacts_name_the_pins_of_a_key(rig: Rig) -> None:
    assert rig.keypad.contacts("6") == (ROWS[1], COLS[2])
    assert rig.keypad.contacts("mute") == (23,)
    with pytest.raises(KeyError):
        rig.keypad.contacts("hold")
