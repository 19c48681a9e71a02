"""Call-progress tones as pjmedia plays them into the earpiece, for Sweden and the US.

`tests/unit/test_tones.py` checks the tables and our own synthesis; a call's tones, though, are
played by pjmedia's tone generator from those tables. Here the SIP engine itself plays every
tone of both countries at once (one terminal each, `tests/harness/tone_player.py`) and the
recordings of the earpieces are analysed: each sound's start and end against the cadence, each
sound's frequencies by FFT.
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from audio import synth
from audio.tones import CONTINUOUS_MS, ToneSegment, ToneSet, tone_set
from tests.unit.test_tones import assert_freqs, expected_runs, pcm, sound_runs

pytestmark = pytest.mark.e2e

COUNTRIES = ("se", "us")
TONES = ("dial", "ringback", "busy", "congestion", "call_waiting", "confirmation", "error")
SECONDS = 11.5  # a whole call-waiting period (10 s), the start of the next, and the onset
EDGE_TOLERANCE_MS = 12  # the media clock's 20 ms frames are exact; the ramps are a few ms
EDGE_MARGIN_MS = 60  # a sound cut by the end of the recording is not compared


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tones")
    specs = [f"{country}:{name}" for country in COUNTRIES for name in TONES]
    done = subprocess.run([sys.executable, "-m", "tests.harness.tone_player", str(out),
                           str(SECONDS), *specs], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return {spec: Path(path) for spec, path in json.loads(done.stdout.splitlines()[-1]).items()}


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2), path
        return pcm(w.readframes(w.getnframes())), w.getframerate()


def timeline(segments: list[ToneSegment], loops: bool, total_ms: float
             ) -> list[tuple[float, ToneSegment]]:
    """(start_ms, segment) of every segment played in `total_ms`, once or looping."""
    out: list[tuple[float, ToneSegment]] = []
    t, i = 0.0, 0
    while t < total_ms and (loops or i < len(segments)):
        seg = segments[i % len(segments)]
        out.append((t, seg))
        t += seg.on_ms + seg.off_ms
        i += 1
    return out


@pytest.mark.parametrize("country", COUNTRIES)
@pytest.mark.parametrize("name", TONES)
def test_the_engine_plays_the_tone_with_its_frequencies_and_cadence(
        recordings: dict[str, Path], country: str, name: str) -> None:
    segments = tone_set(country).tone(name)
    loops = ToneSet.loops(name)
    x, rate = read_wav(recordings[f"{country}:{name}"])
    total_ms = len(x) * 1000 / rate
    assert total_ms >= (SECONDS - 0.5) * 1000, f"recorded {total_ms:.0f} ms"
    power = np.convolve(x * x, np.ones(rate // 40) / (rate // 40), mode="same")
    steady = float(np.percentile(power[power > power.max() / 100], 90))
    assert 20 * np.log10(np.sqrt(steady) / 32768) > -30, "the tone is far too quiet"
    got = sound_runs(x, rate, steady)
    assert got, f"{country} {name}: nothing was played"
    onset = got[0][0]
    period = synth.cadence_ms(segments)
    want_total = total_ms - onset if loops else min(total_ms - onset, period)
    want = [(a + onset, b + onset) for a, b in expected_runs(segments, want_total)]
    if not loops:  # played once: nothing after its last sound
        want = [(a, b) for a, b in want if a < onset + period]
    cut = total_ms - EDGE_MARGIN_MS
    got_whole = [(a, b) for a, b in got if b < cut]
    want_whole = [(a, b) for a, b in want if b < cut]
    where = f"{country} {name}"
    assert len(got_whole) == len(want_whole), f"{where}: sounds {got}, want {want}"
    for (ga, gb), (wa, wb) in zip(got_whole, want_whole, strict=True):
        assert abs(ga - wa) <= EDGE_TOLERANCE_MS, f"{where}: starts {ga:.1f}, want {wa:.1f}"
        assert abs(gb - wb) <= EDGE_TOLERANCE_MS, f"{where}: ends {gb:.1f}, want {wb:.1f}"
    if period >= CONTINUOUS_MS:
        assert got_whole == [] and len(got) == 1, f"{where}: a continuous tone broke: {got}"
    checked = 0
    for start, seg in timeline(segments, loops, total_ms - onset):
        a = round((onset + start + 10) * rate / 1000)
        b = min(round((onset + start + seg.on_ms - 10) * rate / 1000), len(x))
        if b - a >= rate // 25:
            assert_freqs(x[a:b], rate, seg.freqs, f"{where} at {start:.0f} ms")
            checked += 1
    assert checked >= 1
