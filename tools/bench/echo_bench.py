"""Benchmark the echo canceller on a synthetic echo path: ERLE after convergence, µs per frame.

The scene (shared with tests/unit/test_echo.py): far-end speech from espeak-ng (resampled to
16 kHz by sox) plays through a synthetic room, an impulse response of exponentially decaying
noise (60 ms, 60 dB decay, 10 ms bulk delay, -6 dB gain), plus a little near-end noise, into the
microphone. With `--bridge MS`, the frames go through `EchoCancellingEnds` over a fake bridge that
delays the echo by MS (the ALSA bridge: ~60 ms playback ring, ~40 ms card buffer, ~40 ms
capture ring).

ERLE = 10·log10(power(echo in the mic) / power(echo left after cancelling)), over the second
half of the signal (after convergence); the near-end noise, known here, is taken out of the
residual. Usage:

    python -m tools.bench.echo_bench [--tail-ms 128] [--bridge 140] [--reference-delay-ms 80]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

RATE = 16000
FRAME = 320  # samples per 20 ms frame
FAR_TEXT = (
    "Thank you for calling the hotel reception. How may I help you today? We have rooms "
    "available for tonight and tomorrow, with breakfast served from seven until ten. "
    "Please hold while your call is transferred to the front desk.")
NEAR_TEXT = "Hello, I would like to book a double room for two nights, please."


def speech(text: str, voice: str = "en", wpm: int = 160) -> np.ndarray:
    """`text` spoken by espeak-ng as float samples at 16 kHz (raises if the tools are missing)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (Debian packages espeak-ng and sox)")
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text],
                         check=True, capture_output=True).stdout
    raw = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-c", "1",
                          "-b", "16", "-e", "signed", "-"],
                         input=wav, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float64)


def room_impulse_response(seed: int = 1, length_ms: int = 60, bulk_ms: int = 10,
                          gain_db: float = -6.0) -> np.ndarray:
    """Exponentially decaying noise (60 dB over `length_ms`) after `bulk_ms` of silence."""
    rng = np.random.default_rng(seed)
    n = RATE * length_ms // 1000
    tail = rng.standard_normal(n) * 10 ** (-3 * np.arange(n) / n)  # -60 dB at the end
    tail *= 10 ** (gain_db / 20) / np.sqrt(np.sum(tail ** 2))
    return np.concatenate([np.zeros(RATE * bulk_ms // 1000), tail])


@dataclass
class Scene:
    """Signals of one run, as float samples; `mic` = `echo` + `near`, clipped to 16 bits."""

    far: np.ndarray
    echo: np.ndarray
    near: np.ndarray
    mic: np.ndarray


def scene(far: np.ndarray, near: np.ndarray | None = None, *, noise_db: float = -60.0,
          delay_ms: int = 0, seed: int = 2) -> Scene:
    """`far` through the room (plus `delay_ms` of bridge delay), with `near` and noise added.

    `noise_db` is the near-end noise level relative to full scale; `near`, when given, is added
    as it is (put zeros where the near end is silent).
    """
    n = len(far) // FRAME * FRAME
    far = far[:n]
    shift = RATE * delay_ms // 1000
    echo = np.convolve(far, room_impulse_response())[:n]
    echo = np.concatenate([np.zeros(shift), echo])[:n]
    rng = np.random.default_rng(seed)
    local = rng.standard_normal(n) * 32768 * 10 ** (noise_db / 20)
    if near is not None:
        local[:len(near)] += near[:n]
    mic = np.clip(np.round(echo + local), -32768, 32767)
    return Scene(far, echo, local, mic)


def frames(signal: np.ndarray) -> Iterator[bytes]:
    """16-bit little-endian frames of FRAME samples."""
    pcm = np.clip(np.round(signal), -32768, 32767).astype("<i2")
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        yield pcm[i:i + FRAME].tobytes()


def to_float(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float64)


def power(x: np.ndarray) -> float:
    return float(np.mean(x ** 2)) + 1e-9


def erle_db(s: Scene, out: np.ndarray, start: int | None = None) -> float:
    """ERLE over `start`.. (default the second half): echo power / residual echo power."""
    start = len(out) // 2 if start is None else start
    residual = out[start:] - s.near[start:len(out)]
    return 10 * np.log10(power(s.echo[start:len(out)]) / power(residual))


class FakeBridge:
    """Plays back nothing; captures `mic` (then silence). Records what was pushed."""

    def __init__(self, mic: np.ndarray) -> None:
        self._mic = b"".join(frames(mic))
        self._pos = 0
        self.pushed: list[bytes] = []

    def pull_capture(self, n_bytes: int) -> bytes:
        data = self._mic[self._pos:self._pos + n_bytes]
        self._pos += n_bytes
        return data + bytes(n_bytes - len(data))

    def push_playback(self, pcm: bytes) -> None:
        self.pushed.append(pcm)


def run_canceller(s: Scene, tail_ms: int = 128) -> tuple[np.ndarray, float]:
    """`s.mic` through a bare `EchoCanceller` with `s.far` as the reference: (out, µs/frame)."""
    from audio.echo import EchoCanceller

    ec = EchoCanceller(tail_ms=tail_ms)
    pairs = list(zip(frames(s.mic), frames(s.far), strict=True))
    t0 = time.perf_counter()
    out = [ec.process(near, far) for near, far in pairs]
    return to_float(out), (time.perf_counter() - t0) / len(pairs) * 1e6


def run_ends(s: Scene, tail_ms: int = 128, reference_delay_ms: int = 80,
             enabled: bool = True) -> tuple[np.ndarray, float]:
    """One clock tick per frame: push the far frame, pull the mic frame. (out, µs/frame)."""
    from audio.echo import EchoCancellingEnds

    ends = EchoCancellingEnds(FakeBridge(s.mic), tail_ms=tail_ms,
                              reference_delay_ms=reference_delay_ms, enabled=enabled)
    far = list(frames(s.far))
    out: list[bytes] = []
    t0 = time.perf_counter()
    for frame in far:
        ends.push_playback(frame)
        out.append(ends.pull_capture(len(frame)))
    return to_float(out), (time.perf_counter() - t0) / len(far) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tail-ms", type=int, default=128)
    parser.add_argument("--bridge", type=int, default=0, metavar="MS",
                        help="through EchoCancellingEnds, with MS of bridge delay (100-140)")
    parser.add_argument("--reference-delay-ms", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=2, help="times the far speech is played")
    args = parser.parse_args()
    far = np.tile(speech(FAR_TEXT), args.repeat)
    if args.bridge:
        s = scene(far, delay_ms=args.bridge)
        out, us = run_ends(s, args.tail_ms, args.reference_delay_ms)
    else:
        s = scene(far)
        out, us = run_canceller(s, args.tail_ms)
    where = (f"bridge delay {args.bridge} ms, reference delay {args.reference_delay_ms} ms"
             if args.bridge else "no bridge delay")
    print(f"far speech {len(far) / RATE:.1f} s, tail {args.tail_ms} ms, {where}")
    print(f"ERLE after convergence (second half): {erle_db(s, out):.1f} dB")
    print(f"cost: {us:.0f} µs per 20 ms frame ({us / 200:.2f} % of one core)")


if __name__ == "__main__":
    main()
