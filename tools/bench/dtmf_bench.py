"""Benchmark the in-band DTMF detector (audio/dtmf.py): CPU per 20 ms frame, and its Q.24 edges.

    .venv/bin/python -m tools.bench.dtmf_bench [--seconds 6] [--passes 5] [--q24]

Cost: the time `DtmfDetector.feed()` takes per 20 ms frame at 8 and 16 kHz, as mean, p99 and
max, over a few seconds of mixed audio: espeak-ng speech (Swedish and English, resampled by
sox), bursts of DTMF digits between the sentences, and digits under speech 20 dB down; then
over steady white noise, the worst case (no window stops before its DFT). Each frame's time is
the best of `--passes` passes over the same audio, which keeps other processes on the machine
out of the figures.

`--q24` also measures where the detector's decisions flip (the figures in docs/dtmf.md): each
value is tried on all 16 digits at 12 positions against the detector's sub-blocks; a value is
"accepted" when every one of them is detected (for a break: bridged, one key) and "rejected"
when none is (for a break: two keys). About two and a half minutes.

Figures only: no thresholds, not a test. Needs espeak-ng and sox (tools/setup.sh installs them).
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from audio.dtmf import DIGITS, ZERO_DBM0_PEAK, DtmfDetector, dtmf_pcm

RATES = (8000, 16000)
TEXTS = {
    "sv": "Ett två tre fyra. Du har tre nya meddelanden. Tryck ett för att lyssna.",
    "en": "The quick brown fox jumps over the lazy dog. Press one to listen, two to delete.",
}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def speech(rate: int, folder: Path) -> array:
    """Both TEXTS spoken by espeak-ng, as samples at rate, peak at -3 dBFS."""
    out = array("h")
    for lang, text in TEXTS.items():
        wav = folder / f"{lang}.wav"
        subprocess.run(["espeak-ng", "-v", lang, "-w", str(wav), text], check=True)
        raw = subprocess.run(["sox", str(wav), "-t", "raw", "-r", str(rate), "-e",
                              "signed-integer", "-b", "16", "-c", "1", "-L", "-", "gain", "-n",
                              "-3"], check=True, capture_output=True).stdout
        out.frombytes(raw)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def mixed_audio(rate: int, seconds: float, folder: Path) -> tuple[bytes, str]:
    """Speech, digit bursts between sentences and digits under quieter speech; the digits."""
    voice, rng = speech(rate, folder), random.Random(5)
    out, sent, pos = array("h"), [], 0
    while len(out) < seconds * rate:
        part = voice[pos:pos + rate]  # a second of speech
        pos = (pos + rate) % max(1, len(voice) - rate)
        burst = "".join(rng.choice(DIGITS) for _ in range(3))
        under = rng.choice(DIGITS)
        out.extend(part)
        out.frombytes(dtmf_pcm(burst, rate))
        out.extend(_mix(array("h", dtmf_pcm(under, rate, level_dbm0=-8)), part, 0.1))
        out.extend(array("h", bytes(rate // 5)))
        sent.append(burst + under)
    return out.tobytes(), "".join(sent)


def _mix(tone: array, voice: array, gain: float) -> array:
    """tone + gain * voice, as long as the tone (the voice cut or padded with silence)."""
    voice = voice[:len(tone)] + array("h", bytes(2 * max(0, len(tone) - len(voice))))
    return array("h", (max(-32768, min(32767, t + round(gain * v)))
                       for t, v in zip(tone, voice, strict=True)))


def frame_costs(pcm: bytes, rate: int, passes: int) -> tuple[list[float], str]:
    """Microseconds per 20 ms frame (best of `passes`), and the digits found."""
    size = rate // 50 * 2
    frames = [pcm[i:i + size] for i in range(0, len(pcm) - size + 1, size)]
    best = [math.inf] * len(frames)
    found = ""
    for _ in range(passes):
        detector, events = DtmfDetector(rate), []
        for n, frame in enumerate(frames):
            start = time.perf_counter()
            events += detector.feed(frame)
            best[n] = min(best[n], time.perf_counter() - start)
        found = "".join(e.digit for e in events + detector.flush())
    return [1e6 * t for t in best], found


def white_noise(rate: int, seconds: float) -> bytes:
    """Steady white noise at -15 dBm0: the worst case, every window needs its DFT."""
    rng, sigma = random.Random(9), ZERO_DBM0_PEAK / math.sqrt(2) * 10 ** (-15 / 20)
    return array("h", (round(rng.gauss(0, sigma)) for _ in range(round(rate * seconds)))).tobytes()


def report(what: str, rate: int, costs: list[float]) -> str:
    mean = sum(costs) / len(costs)
    return (f"{rate} Hz, {what}, {len(costs)} frames of 20 ms: mean {mean:.0f} us, "
            f"p99 {percentile(costs, 99):.0f} us, max {max(costs):.0f} us per frame "
            f"= {mean / 200:.2f} % of one core")


def bench(seconds: float, passes: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for rate in RATES:
            pcm, sent = mixed_audio(rate, seconds, Path(folder))
            costs, found = frame_costs(pcm, rate, passes)
            print(report("speech and digits", rate, costs) + f"; digits sent {len(sent)}, "
                  f"found {'all' if found == sent else repr(found)}")
    for rate in RATES:
        costs, found = frame_costs(white_noise(rate, seconds / 3), rate, passes)
        print(report("white noise", rate, costs) + f"; digits found {found!r}")


# --- Q.24 edges --------------------------------------------------------------------------------

def share_detected(rate: int, leads: Iterable[int] = range(0, 35, 3), noise: float | None = None,
                   **tone: Any) -> float:
    """The share of the 16 digits x lead positions detected exactly once (a digit sequence per
    lead; leads are in 8 kHz samples)."""
    total = found = 0
    for lead in leads:
        pcm = bytes(2 * (lead + 160) * rate // 8000) + dtmf_pcm(DIGITS, rate, **tone)
        if noise is not None:
            pcm = _noisy(pcm, noise, tone.get("level_dbm0", -10.0), lead)
        detector = DtmfDetector(rate)
        got = "".join(e.digit for e in detector.feed(pcm) + detector.flush())
        total += len(DIGITS)
        found += sum(1 for d in DIGITS if got.count(d) == 1) if len(got) <= len(DIGITS) else 0
    return found / total


def share_bridged(rate: int, gap_ms: float, leads: Iterable[int] = range(0, 35, 3)) -> float:
    """The share of the 16 digits x lead positions where a 100 ms tone, a break of gap_ms and
    another 100 ms tone of the same digit give one key (and not two)."""
    total = one = 0
    for lead in leads:
        pcm = bytearray(2 * (lead + 160) * rate // 8000)
        for digit in DIGITS:
            pcm += dtmf_pcm(digit, rate, on_ms=100, off_ms=gap_ms)
            pcm += dtmf_pcm(digit, rate, on_ms=100, off_ms=100)
        detector = DtmfDetector(rate)
        got = "".join(e.digit for e in detector.feed(bytes(pcm)) + detector.flush())
        total += len(DIGITS)
        one += sum(1 for d in DIGITS if got.count(d) == 1)
    return one / total


def _noisy(pcm: bytes, snr_db: float, level_dbm0: float, seed: int) -> bytes:
    rng = random.Random(seed)
    sigma = math.sqrt(ZERO_DBM0_PEAK**2 / 2 * 10 ** ((level_dbm0 - snr_db) / 10))
    return array("h", (max(-32768, min(32767, round(v + rng.gauss(0, sigma))))
                       for v in array("h", pcm))).tobytes()


def edges(values: list[float], share: Callable[[float], float]) -> tuple[str, str]:
    """(last value accepted fully, first value rejected fully), walking `values` in order."""
    accepted = rejected = "-"
    for value in values:
        s = share(value)
        if s == 1.0 and rejected == "-":
            accepted = f"{value:g}"
        if s == 0.0:
            rejected = f"{value:g}"
            break
    return accepted, rejected


def q24(rate: int) -> list[tuple[str, str, str, str]]:
    """Rows of (figure, Q.24 requirement, last accepted, first rejected)."""
    steps = [i / 10 for i in range(15, 41)]  # percent
    rows = []
    for group, index in (("low", 0), ("high", 1)):
        for sign, name in ((1, "+"), (-1, "-")):
            def share(pct: float, index: int = index, sign: int = sign) -> float:
                error = [0.0, 0.0]
                error[index] = sign * pct / 100
                return share_detected(rate, freq_error=tuple(error))
            rows.append((f"{group} tone {name}error %", "accept 1.5, reject 3.5",
                         *edges(steps, share)))
    rows.append(("twist + dB (high louder)", "accept 4, reject 6",
                 *edges([4 + i / 4 for i in range(13)],
                        lambda v: share_detected(rate, twist_db=v))))
    rows.append(("twist - dB (low louder)", "accept 8, reject 10",
                 *edges([8 + i / 4 for i in range(13)],
                        lambda v: share_detected(rate, twist_db=-v))))
    rows.append(("tone ms (pause 60 ms)", "accept 40, reject 23",
                 *edges([float(v) for v in range(40, 19, -1)],
                        lambda v: share_detected(rate, on_ms=v, off_ms=60))))
    rows.append(("level dBm0, both tones", "accept -25 to 0",
                 *edges([float(v) for v in range(-25, -46, -1)],
                        lambda v: share_detected(rate, level_dbm0=v))))
    rows.append(("white noise SNR dB (40 ms tones)", "accept 15",
                 *edges([float(v) for v in range(15, 0, -1)],
                        lambda v: share_detected(rate, noise=v, on_ms=40, off_ms=40))))
    rows.append(("break in a tone, ms (one key)", "bridge 10",
                 *edges([float(v) for v in range(0, 41, 2)],
                        lambda v: share_bridged(rate, v))))
    return rows


def print_q24() -> None:
    print("| figure | Q.24 | 8 kHz accepted | 8 kHz rejected | 16 kHz accepted | "
          "16 kHz rejected |")
    print("| --- | --- | --- | --- | --- | --- |")
    tables = [q24(rate) for rate in RATES]
    for row8, row16 in zip(*tables, strict=True):
        print(f"| {row8[0]} | {row8[1]} | {row8[2]} | {row8[3]} | {row16[2]} | {row16[3]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="audio per rate")
    parser.add_argument("--passes", type=int, default=5, help="passes; each frame's best counts")
    parser.add_argument("--q24", action="store_true", help="also measure the Q.24 edges")
    args = parser.parse_args()
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"dtmf_bench needs {' and '.join(missing)} (sh tools/setup.sh installs them)")
    bench(args.seconds, args.passes)
    if args.q24:
        print_q24()


if __name__ == "__main__":
    main()
