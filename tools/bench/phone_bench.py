"""Benchmark: how fast a simulated phone comes up and reacts, beside baresip in the same run.

    .venv/bin/python -m tools.bench.phone_bench [--runs 5] [--keys 300]

Prints: process start -> all lines registered; key press -> screen updated (p50/p99, through
the control API and inside the controller alone); off-hook -> dial tone started; idle RSS; and
baresip's start -> registered and RSS against the same Kamailio, with ratios. Figures only: no
thresholds, not a test.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tests.harness.baresip import Baresip
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.phoneproc import LineSpec, PhoneClient, PhoneProcess, phone_config

USERS = {"1001": "bench-1001", "1002": "bench-1002"}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def phone_start_to_registered(workdir: Path, pbx_port: int) -> tuple[float, PhoneProcess]:
    line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx_port}", "Bench")
    phone = PhoneProcess(workdir, phone_config([line]), test_clock=True, log_level="warning")
    t0 = time.monotonic()
    phone.start()
    while not phone.status()["lines"][0]["registered"]:
        time.sleep(0.002)
    return time.monotonic() - t0, phone


def baresip_start_to_registered(workdir: Path, pbx_port: int) -> tuple[float, Baresip]:
    agent = Baresip(workdir, "1002", USERS["1002"], pbx_port, tone_hz=None)
    t0 = time.monotonic()
    agent.start()
    agent.wait_registered(10)
    return time.monotonic() - t0, agent


def _watch_screen(phone: PhoneClient, after: int, done_at: list[float]) -> None:
    phone.request("GET", f"/api/v1/screen?after={after}&timeout=5")
    done_at.append(time.monotonic())


def key_to_screen_api(phone: PhoneClient, presses: int) -> list[float]:
    """Time from sending a key to a second client seeing the new screen (long poll)."""
    samples: list[float] = []
    rng = random.Random(7)
    for n in range(presses):
        if n % 10 == 0:
            phone.key("cancel")  # keep the pre-dial number short
        version = phone.request("GET", "/api/v1/screen")["version"]
        done_at: list[float] = []
        watcher = threading.Thread(target=_watch_screen, args=(phone, version, done_at))
        watcher.start()
        time.sleep(0.002)  # let the long poll reach the phone before the key is sent
        t0 = time.monotonic()
        phone.keys(str(rng.randrange(10)))
        watcher.join(5)
        samples.append(done_at[0] - t0)
    phone.key("cancel")
    return samples


def key_to_screen_controller(presses: int) -> list[float]:
    """The same, inside the controller alone: Terminal.key() until the display holds it."""
    from tests.unit.test_phone_controller import make_phone

    phone, _, _ = make_phone()
    terminal = phone.terminals[0]
    samples = []
    for n in range(presses):
        if n % 10 == 0:
            terminal.key("cancel")
        t0 = time.perf_counter()
        terminal.key(str(n % 10))
        samples.append(time.perf_counter() - t0)
    return samples


def offhook_to_dial_tone(phone: PhoneClient, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.monotonic()
        phone.hook(True)
        while (stats := phone.status()["engine"])["tone"] != "dial":
            time.sleep(0.001)
        samples.append(stats["tone_started_at"] - t0)
        phone.hook(False)
    return samples


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="start-ups to time (median)")
    parser.add_argument("--keys", type=int, default=300, help="key presses to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="luren-bench-") as tmp:
        root = Path(tmp)
        with Kamailio(root / "pbx", USERS, port=free_port(), capture=False) as pbx:
            luren_up, bare_up, luren_rss, bare_rss = [], [], [], []
            phone: PhoneProcess | None = None
            for run in range(args.runs):
                seconds, candidate = phone_start_to_registered(root / f"phone{run}", pbx.port)
                luren_up.append(seconds)
                seconds, agent = baresip_start_to_registered(root / f"baresip{run}", pbx.port)
                bare_up.append(seconds)
                time.sleep(1.0)  # let both settle before reading idle memory
                luren_rss.append(rss_kb(candidate.pid))
                bare_rss.append(rss_kb(agent.pid or 0))
                agent.stop()
                if phone is None:
                    phone = candidate
                else:
                    candidate.stop()
            assert phone is not None
            try:
                api_keys = key_to_screen_api(phone, args.keys)
                dial_tone = offhook_to_dial_tone(phone, 50)
            finally:
                phone.stop()
        ctl_keys = key_to_screen_controller(args.keys)

    lu, ba = statistics.median(luren_up), statistics.median(bare_up)
    lr, br = statistics.median(luren_rss), statistics.median(bare_rss)
    print(f"Luren phone benchmark ({args.runs} start-ups, {args.keys} key presses)")
    print(f"  start -> registered   luren   {ms(lu)}   baresip {ms(ba)}   ratio {lu / ba:5.2f}")
    print(f"  idle RSS              luren   {lr / 1024:8.1f} MB   baresip {br / 1024:8.1f} MB"
          f"   ratio {lr / br:5.2f}")
    print(f"  key -> screen (API)   p50 {ms(percentile(api_keys, 50))}"
          f"   p99 {ms(percentile(api_keys, 99))}")
    print(f"  key -> screen (ctrl)  p50 {ms(percentile(ctl_keys, 50))}"
          f"   p99 {ms(percentile(ctl_keys, 99))}")
    print(f"  off-hook -> dial tone p50 {ms(percentile(dial_tone, 50))}"
          f"   p99 {ms(percentile(dial_tone, 99))}")


if __name__ == "__main__":
    main()
