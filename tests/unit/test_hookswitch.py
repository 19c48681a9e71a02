"""The hookswitch on a simulated pin: chatter gives one transition, rest costs nothing."""

from __future__ import annotations

import pytest

from board.gpio.sim import SimGpio
from board.hookswitch import Hookswitch
from firmware.clock import ManualClock

PIN = 4
STEP = 0.001


class Rig:
    """A hookswitch whose contact closes to ground when the handset is lifted (the default)."""

    def __init__(self, offhook_level: bool = False, lifted_at_start: bool = False) -> None:
        self.clock = ManualClock()
        self.start = self.clock.now()
        self.gpio = SimGpio(clock=self.clock)
        self.offhook_level = offhook_level
        if lifted_at_start:
            self.lift()
        self.hook = Hookswitch(self.gpio, PIN, self.clock, offhook_level=offhook_level)
        self.changes: list[tuple[bool, float]] = []
        self.hook.on_hook = lambda offhook: self.changes.append((offhook, self.t()))
        self.gpio.clear_log()

    def t(self) -> float:
        return round((self.clock.now() - self.start) * 1000, 3)

    def lift(self) -> None:
        self._level(self.offhook_level)

    def put_down(self) -> None:
        self._level(not self.offhook_level)

    def _level(self, level: bool) -> None:
        (self.gpio.drive_high if level else self.gpio.drive_low)(PIN)

    def chatter(self, seconds: float, end_offhook: bool) -> None:
        """Bounce every 2 ms for `seconds`, ending in the given state."""
        offhook = not end_offhook
        for _ in range(round(seconds / 0.002)):
            (self.lift if offhook else self.put_down)()
            offhook = not offhook
            self.run(0.002)
        (self.lift if end_offhook else self.put_down)()

    def run(self, seconds: float, step: float = STEP) -> None:
        for _ in range(round(seconds / step)):
            self.clock.advance(step)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_at_rest_no_timer_and_no_reads(rig: Rig) -> None:
    rig.run(2.0, step=0.01)
    assert rig.clock.pending() == 0
    assert rig.gpio.reads == 0
    assert rig.hook.offhook is False
    assert rig.changes == []


def test_lifting_is_reported_after_the_debounce(rig: Rig) -> None:
    rig.lift()
    rig.run(0.049)
    assert rig.changes == []
    rig.run(0.002)
    assert rig.changes == [(True, 50.0)]
    assert rig.hook.offhook is True
    assert rig.clock.pending() == 0


def test_chatter_when_lifting_gives_one_transition(rig: Rig) -> None:
    rig.chatter(0.030, end_offhook=True)
    rig.run(0.2)
    assert [offhook for offhook, _ in rig.changes] == [True]
    assert rig.changes[0][1] == pytest.approx(30 + 50, abs=1)  # 50 ms after the last bounce


def test_chatter_when_hanging_up_gives_one_transition(rig: Rig) -> None:
    rig.lift()
    rig.run(0.1)
    rig.chatter(0.040, end_offhook=False)
    rig.run(0.2)
    assert [offhook for offhook, _ in rig.changes] == [True, False]


def test_chatter_that_settles_where_it_began_is_no_transition(rig: Rig) -> None:
    rig.chatter(0.020, end_offhook=False)
    rig.run(0.2)
    assert rig.changes == []
    assert rig.clock.pending() == 0


def test_one_read_per_settled_transition(rig: Rig) -> None:
    rig.chatter(0.030, end_offhook=True)
    rig.run(0.2)
    assert rig.gpio.reads == 1


def test_a_handset_lifted_at_start_is_reported_once_listeners_are_set() -> None:
    rig = Rig(lifted_at_start=True)
    assert rig.clock.pending() == 1
    rig.run(0.1)
    assert [offhook for offhook, _ in rig.changes] == [True]


def test_offhook_level_high() -> None:
    rig = Rig(offhook_level=True)
    rig.gpio.drive_low(PIN)  # handset on the cradle; the pull-up alone would read off-hook
    rig.run(0.1)
    assert rig.changes == []
    rig.lift()
    rig.run(0.1)
    assert [offhook for offhook, _ in rig.changes] == [True]


def test_close_cancels_a_pending_debounce(rig: Rig) -> None:
    rig.lift()
    rig.hook.close()
    assert rig.clock.pending() == 0
