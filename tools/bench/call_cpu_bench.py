"""Benchmark: CPU of a G.722 call, the phone beside baresip in the same run.

    .venv/bin/python -m tools.bench.call_cpu_bench [--seconds 10]

A simulated phone (1001) calls baresip (1002) through a local Kamailio with G.722 as the only
codec on both sides; each process's CPU time (user + system, from /proc) is measured while both
are idle and registered, then during the call. Figures only: no thresholds, not a test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tests.harness.baresip import Baresip
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.phoneproc import LineSpec, PhoneProcess, phone_config

USERS = {"1001": "cpu-1001", "1002": "cpu-1002"}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def cpu_share(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Percent of one core each process used over `seconds` of wall time."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    wall = time.monotonic() - t0
    return {name: (cpu_seconds(pid) - before[name]) / wall * 100 for name, pid in pids.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="luren-cpu-") as tmp, \
            Kamailio(Path(tmp) / "pbx", USERS, port=free_port(), capture=False) as pbx:
        far = Baresip(Path(tmp) / "baresip", "1002", USERS["1002"], pbx.port, tone_hz=1000,
                      auto_answer=True, codecs=("g722",)).start()
        line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx.port}")
        phone = PhoneProcess(Path(tmp) / "phone", phone_config(
            [line], mic_tone_hz=700, codecs=("G722",)), log_level="warning").start()
        try:
            far.wait_registered(10)
            phone.wait_status(lambda s: s["lines"][0]["registered"], 10, "registration")
            pids = {"luren": phone.pid, "baresip": far.pid or 0}
            idle = cpu_share(pids, args.seconds)
            phone.dial("1002")
            far.wait_event("CALL_ESTABLISHED", 10)
            call = cpu_share(pids, args.seconds)
            phone.key("speaker")
            far.wait_event("CALL_CLOSED", 10)
        finally:
            phone.stop()
            far.stop()
    print(f"CPU of one G.722 call ({args.seconds:.0f} s windows, % of one core)")
    for name in ("luren", "baresip"):
        print(f"  {name:8s} idle {idle[name]:6.2f} %   in call {call[name]:6.2f} %")
    print(f"  ratio luren/baresip in call {call['luren'] / max(call['baresip'], 0.01):5.2f}")


if __name__ == "__main__":
    main()
