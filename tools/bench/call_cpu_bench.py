"""Benchmark: CPU of a G.722 call, the phone beside baresip in the same run.

    .venv/bin/python -m tools.bench.call_cpu_bench [--seconds 10]

The phone (1001) calls baresip (1002: auto-answer, a 1 kHz tone, `aubridge` player) through a
local Kamailio with G.722 as the only codec on both sides; each process's CPU time (user +
system, from /proc) is measured while both are idle and registered, then during the call.
One baresip serves every row; each row is a phone process of its own:

- sim: the simulated board, no `[audio]` table: a 700 Hz tone generator as the microphone and
  a WAV recorder as the earpiece, both inside pjmedia (no Python per frame).
- handset, speaker + echo canceller, headset 48 kHz: the sim board plus the `[audio]` table
  of tools/bench/latency_bench.py: ALSA's `file` plugin over a `null` slave, `pace = true`
  (the card thread sleeps to each period), capture reading a 700 Hz tone. This adds the Python
  per-frame work a real phone does: the card thread (`AlsaBridge.step`, pyalsaaudio reads and
  writes, the rings, drift control), the pjmedia port (`AudioMediaPort` callbacks), and on the
  speaker path the speex echo canceller (on while the speaker carries the call). handset and
  speaker cards run at 16 kHz mono like the media, so the resampler is idle there; the headset
  row opens its card at 48 kHz stereo (a USB headset), which runs `LinearResampler` both ways.
  handset: lift, dial; speaker: click-to-dial; headset: click-to-dial, then the headset key.

The `null` plugin does no I/O of its own, so a real card's driver time is not in the figures
(a real card blocks in the kernel instead of the paced sleep). baresip's `aubridge` player runs
no thread without a bridged source: nothing pulls its playout buffer, so baresip's figure
leaves out its playout copies and any card. Figures only: no thresholds, not a test; other load
on the machine shows in them (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.harness.baresip import Baresip
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.phoneproc import REPO_ROOT, LineSpec, PhoneProcess, phone_config

USERS = {"1001": "cpu-1001", "1002": "cpu-1002"}
TICKS = os.sysconf("SC_CLK_TCK")
MIC_HZ = 700
# The ALSA paths: (rate, channels, period_frames), 20 ms periods.
PATHS = {"handset": (16000, 1, 320), "speaker": (16000, 1, 320), "headset": (48000, 2, 960)}


@dataclass(frozen=True)
class Row:
    label: str
    path: str | None  # None: the sim board without [audio]


ROWS = (Row("sim (no [audio])", None), Row("handset", "handset"),
        Row("speaker + echo canceller", "speaker"), Row("headset 48 kHz stereo", "headset"))


@dataclass
class Figures:
    label: str
    idle: dict[str, float]
    call: dict[str, float]
    audio: str  # what the phone's status said about its audio in the call


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


# ----- the ALSA setup (file over null, as in latency_bench) ------------------------------------

def tone(rate: int, channels: int, seconds: float) -> bytes:
    """A MIC_HZ tone at -12 dBFS, interleaved S16_LE on every channel."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * MIC_HZ * t) * 0.25 * 32767).astype("<i2")
    return np.repeat(mono, channels).tobytes()


def write_alsa(workdir: Path, seconds: float) -> tuple[Path, Path]:
    """(asoundrc, board profile): every path a `<name>_cap` / `<name>_play` file-over-null
    PCM pair; capture files hold `seconds` of tone (the call reads only what it needs)."""
    conf_text, profile_text = "", "\n[audio]\npace = true  # the null plugin keeps no time\n"
    for name, (rate, channels, period) in PATHS.items():
        infile, outfile = workdir / f"{name}.in.raw", workdir / f"{name}.out.wav"
        infile.write_bytes(tone(rate, channels, seconds))
        conf_text += (f'pcm.{name}_cap {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
                      f'  file "/dev/null"\n  infile "{infile}"\n  format "raw"\n}}\n'
                      f'pcm.{name}_play {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
                      f'  file "{outfile}"\n  format "wav"\n}}\n')
        profile_text += (f'[audio.paths.{name}]\ncapture = "{name}_cap"\n'
                         f'playback = "{name}_play"\nrate = {rate}\nchannels = {channels}\n'
                         f"period_frames = {period}\nperiods = 4\n")
    conf, profile = workdir / "asoundrc", workdir / "cpu-bench.toml"
    conf.write_text(conf_text)
    sim = (REPO_ROOT / "board" / "profiles" / "sim.toml").read_text()
    profile.write_text(sim.replace('name = "sim"', 'name = "cpu-bench"') + profile_text)
    return conf, profile


# ----- one row ---------------------------------------------------------------------------------

def audio_summary(status: dict[str, Any]) -> str:
    audio = status.get("audio")
    if not isinstance(audio, dict):
        return "no [audio]"
    return (f"path {audio.get('path')}, echo canceller "
            f"{'on' if audio.get('echo_cancelling') else 'off'}")


def start_call(phone: PhoneProcess, far: Baresip, path: str | None) -> None:
    if path == "handset":
        phone.hook(True)
    phone.dial("1002")  # without the handset: hands-free (the speaker path)
    far.wait_event("CALL_ESTABLISHED", 10)
    if path == "headset":
        phone.key("headset")
    if path is not None:
        phone.wait_status(lambda s: s.get("audio", {}).get("path") == path, 5, f"the {path}")


def end_call(phone: PhoneProcess, far: Baresip, path: str | None) -> None:
    if path == "handset":
        phone.hook(False)
    else:
        phone.key("cancel")
    far.wait_event("CALL_CLOSED", 10)


def measure_row(row: Row, far: Baresip, pbx: Kamailio, workdir: Path, seconds: float,
                alsa: tuple[Path, Path]) -> Figures:
    line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx.port}")
    config = phone_config([line], mic_tone_hz=MIC_HZ, codecs=("G722",))
    extra: dict[str, Any] = {}
    if row.path is not None:
        extra = {"board": str(alsa[1]), "env": {"ALSA_CONFIG_PATH": str(alsa[0])}}
    with PhoneProcess(workdir / f"phone-{row.path or 'sim'}", config, log_level="warning",
                      **extra) as phone:
        phone.wait_status(lambda s: s["lines"][0]["registered"], 10, "registration")
        pids = {"luren": phone.pid, "baresip": far.pid or 0}
        idle = cpu_share(pids, seconds)
        start_call(phone, far, row.path)
        audio = audio_summary(phone.status())
        call = cpu_share(pids, seconds)
        end_call(phone, far, row.path)
    return Figures(row.label, idle, call, audio)


# ----- main ------------------------------------------------------------------------------------

def report(seconds: float, figures: list[Figures], load: tuple[float, float]) -> None:
    print(f"CPU of one G.722 call ({seconds:.0f} s windows, % of one core; load average "
          f"{load[0]:.2f} at start, {load[1]:.2f} at end, {os.cpu_count()} cores)")
    print("  row                       luren idle  in call   baresip idle  in call   "
          "luren/baresip")
    for f in figures:
        ratio = f.call["luren"] / max(f.call["baresip"], 0.01)
        print(f"  {f.label:24s} {f.idle['luren']:8.2f} {f.call['luren']:8.2f}   "
              f"{f.idle['baresip']:10.2f} {f.call['baresip']:8.2f}   {ratio:8.2f}   "
              f"({f.audio})")
    print("  sim: codec, RTP, conference bridge only. ALSA rows add the Python card thread and")
    print("  pjmedia port callbacks (file/null plugin, paced; no driver time), the echo canceller")
    print("  on the speaker, and the resampler (48 kHz stereo <-> 16 kHz) on the headset.")
    print("  baresip: G.722 with an ausine source, the same process in every row; its aubridge")
    print("  player has no bridged source, so aubridge runs no thread and nothing pulls the")
    print("  playout buffer (it overruns): baresip's playout copies and any card are left out.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    figures = []
    with tempfile.TemporaryDirectory(prefix="luren-cpu-") as tmp, \
            Kamailio(Path(tmp) / "pbx", USERS, port=free_port(), capture=False) as pbx:
        alsa = write_alsa(Path(tmp), 2 * args.seconds + 10)
        with Baresip(Path(tmp) / "baresip", "1002", USERS["1002"], pbx.port, tone_hz=1000,
                     auto_answer=True, codecs=("g722",)) as far:
            far.wait_registered(10)
            for row in ROWS:
                figures.append(measure_row(row, far, pbx, Path(tmp), args.seconds, alsa))
    report(args.seconds, figures, (load_start, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
