"""Benchmark the board: key press -> screen updated, and the keypad's CPU at idle.

    .venv/bin/python -m tools.bench.board_bench [--presses 200] [--idle 5]

Runs the `sim` board profile on a real asyncio loop and clock: a key contact closes on the
simulated pins, the keypad debounces it (20 ms), the controller handles the key and the screen
changes; the time from contact to screen is reported as p50/p99. Then the process's CPU time
is measured with the keypad idle (nothing pressed) and with a key held (scanning every 5 ms).
The same path through the front-panel microcontroller link over a pty is measured by
tools/bench/frontpanel_bench.py. Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from board.profile import load_profile
from board.sim import sim_board
from firmware.clock import Clock
from firmware.config import parse_config
from firmware.phone import Phone
from tests.unit.test_phone_controller import RecordingSip

DIGITS = "1234567890"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


async def key_to_screen(phone: Phone, presses: int) -> list[float]:
    board = phone.terminals[0].board
    keypad, gpio = board.keypad, board.gpio
    assert keypad is not None and gpio is not None
    rng = random.Random(3)
    samples = []
    for n in range(presses):
        if n % 10 == 0:
            phone.terminals[0].key("cancel")
        changed = asyncio.get_running_loop().create_future()

        def listener(version: int, done: asyncio.Future[float] = changed) -> None:
            if not done.done():
                done.set_result(time.perf_counter())

        board.display.listeners.append(listener)
        pins = keypad.contacts(rng.choice(DIGITS))
        t0 = time.perf_counter()
        gpio.connect(*pins)
        samples.append(await asyncio.wait_for(changed, 2) - t0)
        board.display.listeners.remove(listener)
        gpio.disconnect(*pins)
        while keypad.scanning:  # until the keypad has seen the release
            await asyncio.sleep(0.005)
    return samples


async def cpu_share(seconds: float) -> float:
    """CPU time this process used per wall second while the loop ran for `seconds`."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


async def run(presses: int, idle_s: float) -> None:
    loop = asyncio.get_running_loop()
    clock = Clock(loop)
    config = parse_config({"device": {"language": "en"},
                           "lines": [{"user": "1001", "registrar": "127.0.0.1"}]})
    board = sim_board(clock)
    phone = Phone(config, clock, RecordingSip(), [board])
    phone.start()
    samples = await key_to_screen(phone, presses)
    phone.stop()  # no screen tick: only the keypad's own work is left
    idle = await cpu_share(idle_s)
    assert board.keypad is not None and board.gpio is not None
    held = board.keypad.contacts("5")
    board.gpio.connect(*held)
    scanning = await cpu_share(idle_s)
    board.gpio.disconnect(*held)
    board.close()
    profile = load_profile("sim")
    assert profile.keypad is not None
    print(f"Board benchmark (profile sim, {presses} presses, {idle_s:.0f} s per CPU figure)")
    print(f"  key contact -> screen updated  p50 {percentile(samples, 50) * 1000:7.2f} ms"
          f"   p99 {percentile(samples, 99) * 1000:7.2f} ms   (debounce 20 ms included)")
    print(f"  keypad CPU, idle               {idle * 100:7.3f} %")
    print(f"  keypad CPU, one key held       {scanning * 100:7.3f} %   (20 ms scans once steady)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(run(args.presses, args.idle))


if __name__ == "__main__":
    main()
