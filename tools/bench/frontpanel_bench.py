"""Benchmark: key press at the front-panel controller -> screen updated on the SBC, over a pty.

    .venv/bin/python -m tools.bench.frontpanel_bench [--presses 300] [--hold-ms 25] [--gap-ms 25]

The controller program (`board/mcu`, run in CPython by `SimPanel`) polls every millisecond on
its own thread, like the real loop, and writes to the master side of a pty; the SBC side is set
up as the runtime does it: `FrontPanelLink.open()` on the slave path, its reader thread handing
bytes to an asyncio loop with `call_soon_threadsafe`, a real `Clock`, and `attach_frontpanel()`
onto a simulated board. Prints p50/p99/max of:

- contact -> screen: from the raw contact closing (includes the 20 ms debounce, by design) to
  the controller having handled the key and pushed the new screen;
- frame -> screen: from the KEY frame being written to the line (the link: pty, reader thread,
  hand-over to the loop, decoding, acknowledgement bookkeeping; then the controller and screen).

Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import statistics
import threading
import time
from collections.abc import Sequence

from board.frontpanel import FrontPanelLink, attach_frontpanel
from board.mcu import frame as F
from board.mcu.sim import SimPanel
from board.sim import sim_board
from firmware.clock import Clock
from firmware.config import parse_config
from firmware.phone import Phone
from tests.unit.test_phone_controller import RecordingSip

KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


class ControllerThread(threading.Thread):
    """The controller program on the master side of the pty, polled every millisecond."""

    def __init__(self, master: int, presses: int, hold_ms: int, gap_ms: int) -> None:
        super().__init__(name="controller", daemon=True)
        self.master = master
        self.presses, self.hold_ms, self.gap_ms = presses, hold_ms, gap_ms
        self.t0 = time.monotonic()
        self.contact: list[float] = []  # perf_counter when each contact closed
        self.sent: list[float] = []  # perf_counter when each KEY press frame was written
        self.start_pressing = threading.Event()
        self.stop = threading.Event()
        self.panel = SimPanel(self._write, 0xBE0C0001, self._now())

    def _now(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)

    def _write(self, data: bytes) -> None:
        for ftype, _, payload in F.Decoder().feed(data):
            if ftype == F.KEY and payload[0] == F.PRESS:
                self.sent.append(time.perf_counter())
        os.write(self.master, data)

    def run(self) -> None:
        next_press = None
        pressed: str | None = None
        count = 0
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.001)
            if ready:
                self.panel.receive(os.read(self.master, 4096))
            now = self._now()
            if next_press is None and self.start_pressing.is_set():
                next_press = now
            if next_press is not None and pressed is None and now >= next_press \
                    and count < self.presses:
                pressed = KEYS[count % len(KEYS)]
                self.panel.press(pressed)
                self.contact.append(time.perf_counter())
                count += 1
            elif pressed is not None and now >= next_press + self.hold_ms \
                    and self.panel.controller.keys.state:  # a late poll must not lose it
                self.panel.release(pressed)
                pressed = None
                next_press = now + self.gap_ms
            self.panel.poll(now)


async def measure(presses: int, hold_ms: int, gap_ms: int) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    master, slave = os.openpty()
    link = FrontPanelLink.open(os.ttyname(slave), Clock(loop),
                               dispatch=loop.call_soon_threadsafe)  # raw mode before any byte
    controller = ControllerThread(master, presses, hold_ms, gap_ms)
    board = sim_board()
    attach_frontpanel(board, link)
    config = parse_config({"device": {"language": "en"},
                           "lines": [{"user": "1001", "registrar": "127.0.0.1"}]})
    phone = Phone(config, Clock(loop), RecordingSip(), [board])
    terminal = phone.terminals[0]
    received: list[tuple[str, float]] = []
    done = asyncio.Event()

    def on_key(name: str) -> None:
        terminal.key(name)  # the controller handles it and pushes the new screen
        received.append((name, time.perf_counter()))
        if name == "#":
            terminal.key("cancel")  # '#' dialled the digits: back to idle for the next ones
        if len(received) == presses:
            done.set()

    board.on_key = on_key
    try:
        controller.start()
        link.start()
        while not (link.up and controller.panel.link.up):
            await asyncio.sleep(0.01)
        controller.start_pressing.set()
        await asyncio.wait_for(done.wait(), timeout=presses * (hold_ms + gap_ms + 50) / 1000 + 10)
    finally:
        controller.stop.set()
        controller.join(timeout=2)
        link.close()
        os.close(master)
        os.close(slave)
    names = [name for name, _ in received]
    assert names == [KEYS[i % len(KEYS)] for i in range(presses)], "keys lost or out of order"
    times = [t for _, t in received]
    return {
        "contact": [(r - c) * 1000 for r, c in zip(times, controller.contact, strict=True)],
        "frame": [(r - s) * 1000 for r, s in zip(times, controller.sent, strict=True)],
        "stats": link.stats(),
    }


def report(name: str, values: list[float]) -> str:
    return (f"{name:<22} p50 {percentile(values, 50):7.2f} ms   p99 {percentile(values, 99):7.2f}"
            f" ms   max {max(values):7.2f} ms   mean {statistics.fmean(values):7.2f} ms")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--hold-ms", type=int, default=25)
    parser.add_argument("--gap-ms", type=int, default=25)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.presses, args.hold_ms, args.gap_ms))
    stats = result["stats"]
    assert isinstance(stats, dict)
    print(f"front-panel link over a pty, {args.presses} presses, none lost or doubled")
    print(report("contact -> screen", result["contact"]))  # type: ignore[arg-type]
    print(report("frame -> screen", result["frame"]))  # type: ignore[arg-type]
    bad = sum(stats[f"rx_{kind}"] for kind in ("short", "length", "crc", "cobs", "oversize"))
    print(f"SBC frames received {stats['rx_frames']}, sent {stats['tx_frames']}, "
          f"retransmits {stats['retransmits']}, bad frames {bad}")
    key_frame = len(F.encode(F.KEY, 1, F.pack_key("5", F.PRESS)))
    print(f"a real UART adds {key_frame * 10 / 115200 * 1000:.2f} ms of wire time per KEY frame "
          f"({key_frame} bytes at 115200 baud) that a pty does not show")


if __name__ == "__main__":
    main()
