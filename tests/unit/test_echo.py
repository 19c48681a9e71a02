"""The echo canceller on a synthetic echo path (the scene is built by tools/bench/echo_bench.py).

Far-end speech (espeak-ng, resampled by sox: both must be installed, the tests fail otherwise)
goes through a synthetic room (decaying noise, 60 ms, 10 ms bulk delay, -6 dB) into the
microphone with a little near-end noise. ERLE is measured over the second half, after the
adaptive filter has converged.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from audio.echo import EchoCanceller, EchoCancellerMissing, EchoCancellingEnds
from tools.bench.echo_bench import (
    FAR_TEXT,
    FRAME,
    NEAR_TEXT,
    RATE,
    FakeBridge,
    erle_db,
    frames,
    power,
    run_canceller,
    run_ends,
    scene,
    speech,
    to_float,
)

MIN_ERLE_DB = 15.0
BRIDGE_DELAY_MS = 100  # the playback ring (~60 ms) and the capture ring (~40 ms)


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    return speech(FAR_TEXT)


@pytest.fixture(scope="module")
def near() -> np.ndarray:
    return speech(NEAR_TEXT, voice="en+f3", wpm=150)


def test_erle_on_a_synthetic_room(far: np.ndarray) -> None:
    s = scene(far)
    out, us = run_canceller(s)
    erle = erle_db(s, out)
    print(f"ERLE {erle:.1f} dB, {us:.0f} µs per frame")
    assert erle >= MIN_ERLE_DB
    assert us < 2000  # a tenth of the frame's 20 ms, even on a slow machine


@pytest.mark.parametrize("bridge_ms", [BRIDGE_DELAY_MS, BRIDGE_DELAY_MS + 40])
def test_erle_through_the_bridge_delays(far: np.ndarray, bridge_ms: int) -> None:
    """The rings alone, and the rings + the playback card's buffer: default settings."""
    s = scene(far, delay_ms=bridge_ms)
    out, _ = run_ends(s)
    erle = erle_db(s, out)
    print(f"ERLE through a {bridge_ms} ms bridge {erle:.1f} dB")
    assert erle >= MIN_ERLE_DB


def test_a_reference_later_than_the_echo_cancels_nothing(far: np.ndarray) -> None:
    """Why the reference delay must stay below the bridge's delay (docs/echo.md)."""
    s = scene(far, delay_ms=BRIDGE_DELAY_MS)
    out, _ = run_ends(s, reference_delay_ms=BRIDGE_DELAY_MS + 20)
    assert erle_db(s, out) < 3


def test_double_talk_keeps_the_near_end(far: np.ndarray, near: np.ndarray) -> None:
    """The near end talks over the far end, as loud as the echo, once the filter converged."""
    start = 8 * RATE
    talk = np.zeros(len(far))
    talk[start:start + len(near)] = 0.35 * near[:len(far) - start]
    s = scene(far, talk, delay_ms=BRIDGE_DELAY_MS)
    out, _ = run_ends(s)
    span = slice(start, min(start + len(near), len(out)))

    def db(x: np.ndarray) -> float:
        return 10 * np.log10(power(x[span]))

    assert abs(db(talk) - db(s.echo)) < 3  # it really is double talk
    kept, error = db(out) - db(talk), db(out - s.near) - db(talk)
    print(f"double talk: near end kept {kept:+.1f} dB, echo and distortion {error:.1f} dB")
    assert abs(kept) < 3
    assert error < -6
    assert erle_db(s, out, start + len(near)) >= MIN_ERLE_DB  # the filter did not diverge


def test_disabled_passes_the_capture_untouched(far: np.ndarray) -> None:
    s = scene(far[:RATE * 2], delay_ms=BRIDGE_DELAY_MS)
    out, _ = run_ends(s, enabled=False)
    assert np.array_equal(out, s.mic[:len(out)])


def test_frames_keep_their_length_and_reach_the_bridge() -> None:
    rng = np.random.default_rng(3)
    mic = rng.standard_normal(RATE) * 1000
    bridge = FakeBridge(mic)
    ends = EchoCancellingEnds(bridge, enabled=True)
    pushed = []
    for i in range(10):
        frame = (rng.standard_normal(FRAME) * 1000).astype("<i2").tobytes()
        pushed.append(frame)
        ends.push_playback(frame)
        assert len(ends.pull_capture(FRAME * 2)) == FRAME * 2
        assert len(ends.pull_capture(FRAME * 4)) == FRAME * 4  # two frames at once
        if i == 5:
            assert len(ends.pull_capture(100)) == 100  # not a whole frame: passed untouched
    assert bridge.pushed == pushed
    assert ends.bypassed == 1
    assert ends.frames == 30


def test_switching_on_starts_a_fresh_canceller() -> None:
    ends = EchoCancellingEnds(FakeBridge(np.zeros(RATE)))
    first = ends.canceller._state
    ends.enabled = True
    ends.push_playback(bytes(FRAME * 2))
    ends.pull_capture(FRAME * 2)
    assert ends.canceller._state is not first
    assert len(ends._ref) == ends.delay_bytes  # the push before it counted as silence


def test_ticks_without_a_push_keep_the_reference_delay(far: np.ndarray) -> None:
    """pjmedia may hand no frame while the far end sends nothing: that is silence played."""
    gap = np.zeros(RATE)
    s = scene(np.concatenate([far, gap, far]), delay_ms=BRIDGE_DELAY_MS + 40)
    ends = EchoCancellingEnds(FakeBridge(s.mic), enabled=True)
    out = []
    for i, frame in enumerate(frames(s.far)):
        if not len(far) <= i * FRAME < len(far) + len(gap):
            ends.push_playback(frame)
        out.append(ends.pull_capture(len(frame)))
        assert len(ends._ref) == ends.delay_bytes
    assert erle_db(s, to_float(out)) >= MIN_ERLE_DB


def test_the_reference_delay_can_follow_the_bridge(far: np.ndarray) -> None:
    s = scene(far, delay_ms=BRIDGE_DELAY_MS + 100)  # a bridge holding more than planned
    ends = EchoCancellingEnds(FakeBridge(s.mic), enabled=True)
    ends.set_reference_delay(BRIDGE_DELAY_MS + 100 - 20)
    out = []
    for frame in frames(s.far):
        ends.push_playback(frame)
        out.append(ends.pull_capture(len(frame)))
    assert erle_db(s, to_float(out)) >= MIN_ERLE_DB


def test_frames_of_the_wrong_size_are_refused() -> None:
    ec = EchoCanceller()
    with pytest.raises(ValueError, match="640 bytes"):
        ec.process(bytes(640), bytes(320))


def test_a_missing_library_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "speexdsp", None)
    with pytest.raises(EchoCancellerMissing, match="speexdsp"):
        EchoCanceller()
