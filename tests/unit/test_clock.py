from firmware.clock import ManualClock


def test_advance_runs_due_timers_in_order() -> None:
    clock = ManualClock()
    fired: list[str] = []
    clock.call_later(5, lambda: fired.append("b"))
    clock.call_later(1, lambda: fired.append("a"))
    clock.call_later(60, lambda: fired.append("late"))
    assert clock.advance(10) == 2
    assert fired == ["a", "b"]
    assert clock.pending() == 1


def test_cancelled_timer_does_not_fire() -> None:
    clock = ManualClock()
    fired: list[int] = []
    timer = clock.call_later(1, lambda: fired.append(1))
    timer.cancel()
    timer.cancel()
    clock.advance(2)
    assert fired == []


def test_timers_scheduled_by_timers_run_when_due() -> None:
    clock = ManualClock()
    fired: list[float] = []

    def tick() -> None:
        fired.append(clock.now())
        if len(fired) < 3:
            clock.call_later(1, tick)

    clock.call_later(1, tick)
    clock.advance(1)
    clock.advance(1)
    clock.advance(1)
    assert len(fired) == 3


def test_wall_time_moves_with_advance() -> None:
    clock = ManualClock()
    before = clock.wall_time()
    clock.advance(3600)
    assert (clock.wall_time() - before).total_seconds() == 3600


def test_wall_time_is_right_in_local_time_across_a_daylight_saving_change() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    stockholm = ZoneInfo("Europe/Stockholm")
    start = datetime(2026, 3, 29, 1, 30, tzinfo=stockholm)  # CET; clocks go 02:00 -> 03:00
    clock = ManualClock(wall_start=start.timestamp())
    clock.advance(3600)  # one real hour later it is 03:30 CEST, not 02:30
    assert clock.wall_time(stockholm).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)
    assert clock.wall_time(stockholm).utcoffset().total_seconds() == 7200
