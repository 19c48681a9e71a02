"""Benchmark the ALSA bridge: buffered latency and CPU per 20 ms frame.

Runs real ALSA through the `file` plugin over a `null` slave (an asoundrc written to a temporary
directory; ALSA_CONFIG_PATH points at it before pyalsaaudio loads), with the card clock and the
media clock simulated as fast as the CPU goes. CPU is process time per 20 ms media frame and
covers both sides (ALSA read + write of one period, pull + push of one frame). Usage:

    python -m tools.bench.alsa_bridge_bench [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from array import array
from pathlib import Path

MEDIA_RATE = 16000
FRAME_BYTES = 640


def write_config(tmp: Path, card_rates: list[int]) -> None:
    text = ""
    for rate in card_rates:
        infile = tmp / f"in{rate}.raw"
        infile.write_bytes(bytes(rate * 2 * 2))
        text += (f'pcm.cap{rate} {{ type file slave {{ pcm {{ type null }} }} file "/dev/null" '
                 f'infile "{infile}" format "raw" }}\n'
                 f'pcm.play{rate} {{ type file slave {{ pcm {{ type null }} }} '
                 f'file "/dev/null" format "raw" }}\n')
    (tmp / "asoundrc").write_text(text)
    os.environ["ALSA_CONFIG_PATH"] = str(tmp / "asoundrc")


def run(seconds: int, card_rate: int, drift: float) -> dict[str, float]:
    from audio.bridge import AlsaBridge
    from audio.pcm import PcmPath

    period = card_rate // 50
    path = PcmPath("bench", f"cap{card_rate}", f"play{card_rate}", card_rate, 1, period)
    bridge = AlsaBridge(path)
    frame = array("h", [1000] * (FRAME_BYTES // 2)).tobytes()
    card_t, media_t, card_period = 0.0, 0.005, 0.02 / (1 + drift)
    frames = seconds * 50
    cap: list[float] = []
    play: list[float] = []
    cpu0 = time.process_time()
    for n in range(frames):
        while card_t <= media_t:
            bridge.step()
            card_t += card_period
        bridge.pull_capture(FRAME_BYTES)
        bridge.push_playback(frame)
        media_t += 0.02
        if n >= 250:
            s = bridge.stats()
            cap.append(s.capture_ms)  # after the media side took a frame
            play.append(s.playback_ms)  # after the media side pushed one
    cpu = time.process_time() - cpu0
    stats = bridge.stats()
    bridge.stop()
    return {"cpu_us_per_frame": cpu / frames * 1e6, "cpu_percent": cpu / seconds * 100,
            "capture_ms_mean": sum(cap) / len(cap), "capture_ms_max": max(cap),
            "playback_ms_mean": sum(play) / len(play), "playback_ms_max": max(play),
            "underruns": stats.capture_underruns + stats.playback_underruns,
            "corrections": stats.drift_corrections}


def media_side_cost(repeats: int = 20000) -> float:
    """Microseconds for one pull_capture + push_playback pair on a primed bridge, no ALSA."""
    from audio.bridge import AlsaBridge

    bridge = AlsaBridge(None)
    frame = bytes(FRAME_BYTES)
    for _ in range(10):
        bridge.push_playback(frame)
    t0 = time.perf_counter()
    for _ in range(repeats):
        bridge.pull_capture(FRAME_BYTES)
        bridge.push_playback(frame)
    return (time.perf_counter() - t0) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="audio seconds per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_config(Path(tmp), [16000, 48000])
        print(f"media side (pull + push, no ALSA): {media_side_cost():.1f} µs per frame")
        print(f"{'card':>6} {'drift':>7} {'cpu µs/frame':>13} {'cpu %':>6} "
              f"{'capture ms mean/max':>20} {'playback ms mean/max':>21} {'underruns':>9} "
              f"{'corrections':>11}")
        for rate in (16000, 48000):
            for drift in (0.0, 0.0001, 0.005, -0.005):
                r = run(args.seconds, rate, drift)
                print(f"{rate:>6} {drift:>+7.2%} {r['cpu_us_per_frame']:>13.0f} "
                      f"{r['cpu_percent']:>6.2f} {r['capture_ms_mean']:>13.1f}"
                      f"{r['capture_ms_max']:>7.1f} {r['playback_ms_mean']:>14.1f}"
                      f"{r['playback_ms_max']:>7.1f} "
                      f"{r['underruns']:>9.0f} {r['corrections']:>11.0f}")


if __name__ == "__main__":
    main()
