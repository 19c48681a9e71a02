"""Tone tables checked against the cited values, and synthesised PCM checked by analysis.

Every tone of every country is rendered with `audio.synth` and measured with numpy: the
cadence from a moving-power envelope (each sound and each silence within 10 ms of the
table), the frequencies of each burst from an FFT (each peak within 5 Hz). The synthesiser
plays segments the way pjmedia's tone generator does, so this checks what the media bridge
is given as well as what the phone plays in-process.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from audio import synth
from audio.tones import (
    CONTINUOUS_MS,
    COUNTRIES,
    DEFAULT_COUNTRY,
    MAX_MS,
    ONE_SHOT_TONES,
    TONE_NAMES,
    TONE_SETS,
    ToneSegment,
    ToneSet,
    tone_set,
)

TIME_TOLERANCE_MS = 10
FREQ_TOLERANCE_HZ = 5
WINDOW_MS = 25  # moving-power window: one beat period of 440+480 Hz, the slowest beat here

# Published values (docs/tones.md has the sources): frequencies, then the cadence as
# on/off ms pairs; () is a continuous tone.
#   se, no, dk, fi, de: ITU-T E.180 Supplement 2 (ITU OB 781 annex, 2003)
#   gb: BT SIN 350;  us: ANSI T1.401 / Telcordia GR-506
E180: dict[str, dict[str, tuple[tuple[int, ...], tuple[int, ...]]]] = {
    "se": {"dial": ((425,), ()), "ringback": ((425,), (1000, 5000)),
           "busy": ((425,), (250, 250)), "congestion": ((425,), (250, 750))},
    "no": {"dial": ((425,), ()), "ringback": ((425,), (1000, 4000)),
           "busy": ((425,), (500, 500)), "congestion": ((425,), (200, 200))},
    "dk": {"dial": ((425,), ()), "ringback": ((425,), (1000, 4000)),
           "busy": ((425,), (500, 500)), "congestion": ((425,), (200, 200))},
    "fi": {"dial": ((425,), ()), "ringback": ((425,), (1000, 4000)),
           "busy": ((425,), (300, 300)), "congestion": ((425,), (200, 200))},
    "de": {"dial": ((425,), ()), "ringback": ((425,), (1000, 4000)),
           "busy": ((425,), (480, 480)), "congestion": ((425,), (240, 240))},
    "gb": {"dial": ((350, 440), ()), "ringback": ((400, 450), (400, 200, 400, 2000)),
           "busy": ((400,), (375, 375)), "congestion": ((400,), (400, 350, 225, 525))},
    "us": {"dial": ((350, 440), ()), "ringback": ((440, 480), (2000, 4000)),
           "busy": ((480, 620), (500, 500)), "congestion": ((480, 620), (250, 250))},
}
RING_CADENCES_MS = {"se": (1000, 5000), "no": (1000, 4000), "dk": (1000, 4000),
                    "fi": (1000, 4000), "de": (1000, 4000), "gb": (400, 200, 400, 2000),
                    "us": (2000, 4000)}
ALL_TONES = [(c, t) for c in COUNTRIES for t in TONE_NAMES]


# -- analysis helpers ---------------------------------------------------------------------
def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def sound_runs(x: np.ndarray, rate: int, steady_power: float) -> list[tuple[float, float]]:
    """(start_ms, end_ms) of each stretch whose moving power is above half `steady_power`."""
    n = round(WINDOW_MS * rate / 1000)
    power = np.convolve(x * x, np.ones(n) / n, mode="same")
    on = np.concatenate(([False], power > steady_power / 2, [False]))
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return [(a * 1000 / rate, b * 1000 / rate) for a, b in zip(edges[::2], edges[1::2],
                                                                strict=True)]


def expected_runs(segments: list[ToneSegment], total_ms: float) -> list[tuple[float, float]]:
    """The same runs from the table: back-to-back segments (off_ms 0) make one sound."""
    runs: list[list[float]] = []
    t, i = 0.0, 0
    while t < total_ms:
        seg = segments[i % len(segments)]
        if runs and runs[-1][1] == t:
            runs[-1][1] = min(t + seg.on_ms, total_ms)
        else:
            runs.append([t, min(t + seg.on_ms, total_ms)])
        t += seg.on_ms + seg.off_ms
        i += 1
    return [(a, b) for a, b in runs]


def peaks(x: np.ndarray, rate: int) -> list[float]:
    """Frequencies of the spectral peaks above a fifth of the largest (1 Hz resolution)."""
    size = max(len(x), rate)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), size))
    top = mag.max()
    idx = [k for k in range(1, len(mag) - 1)
           if mag[k] > top / 5 and mag[k] >= mag[k - 1] and mag[k] > mag[k + 1]]
    return [k * rate / size for k in idx]


def assert_freqs(x: np.ndarray, rate: int, want: tuple[int, ...], where: str) -> None:
    got = peaks(x, rate)
    assert len(got) == len(want), f"{where}: peaks {got}, want {want}"
    for g, w in zip(sorted(got), sorted(want), strict=True):
        assert abs(g - w) <= FREQ_TOLERANCE_HZ, f"{where}: peak {g:.1f} Hz, want {w} Hz"


def assert_runs(got: list[tuple[float, float]], want: list[tuple[float, float]],
                where: str) -> None:
    assert len(got) == len(want), f"{where}: {len(got)} sounds {got}, want {want}"
    for (ga, gb), (wa, wb) in zip(got, want, strict=True):
        assert abs(ga - wa) <= TIME_TOLERANCE_MS, f"{where}: starts {ga:.1f}, want {wa}"
        assert abs(gb - wb) <= TIME_TOLERANCE_MS, f"{where}: ends {gb:.1f}, want {wb}"


def steady_power(segments: list[ToneSegment], level_dbm0: float) -> float:
    return len(segments[0].freqs) * synth.amplitude(level_dbm0) ** 2 / 2


def render_seconds(segments: list[ToneSegment]) -> float:
    """One full pass and the start of the next; a few seconds of a continuous tone."""
    period = synth.cadence_ms(segments)
    return 3.0 if period >= CONTINUOUS_MS else period / 1000 + 1.0


def check_tone(segments: list[ToneSegment], rate: int, where: str) -> None:
    seconds = render_seconds(segments)
    x = pcm(synth.render(segments, rate, seconds))
    assert len(x) == round(seconds * rate)
    runs = sound_runs(x, rate, steady_power(segments, synth.TONE_LEVEL_DBM0))
    assert_runs(runs, expected_runs(segments, seconds * 1000), where)
    start = 0
    for k, seg in enumerate(segments):
        a = start + round(8 * rate / 1000)  # skip the ramps
        b = start + min(round(seg.on_ms * rate / 1000), round(seconds * rate) - start)
        b -= round(8 * rate / 1000)
        if b - a >= round(0.04 * rate):
            assert_freqs(x[a:b], rate, seg.freqs, f"{where} segment {k}")
        start += round((seg.on_ms + seg.off_ms) * rate / 1000)


def max_step(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x)).max())


# -- the data -----------------------------------------------------------------------------
def test_countries_cover_the_nordics_germany_uk_and_us_with_sweden_first() -> None:
    assert set(COUNTRIES) >= {"se", "no", "dk", "fi", "de", "gb", "us"}
    assert COUNTRIES[0] == DEFAULT_COUNTRY == "se"
    assert all(TONE_SETS[c].country == c for c in COUNTRIES)


def test_tone_names_keep_the_old_ones_and_add_confirmation_and_error() -> None:
    assert TONE_NAMES[:5] == ("dial", "ringback", "busy", "congestion", "call_waiting")
    assert {"confirmation", "error"} <= set(TONE_NAMES)
    assert {"confirmation"} == ONE_SHOT_TONES
    assert not ToneSet.loops("confirmation") and ToneSet.loops("busy")


@pytest.mark.parametrize(("country", "name"), ALL_TONES)
def test_every_segment_is_playable_by_pjmedia(country: str, name: str) -> None:
    segments = tone_set(country).tone(name)
    assert segments
    for seg in segments:
        assert 300 <= seg.freq1 <= 3400, seg
        assert seg.freq2 == 0 or 300 <= seg.freq2 <= 3400, seg
        assert 1 <= seg.on_ms <= MAX_MS and 0 <= seg.off_ms <= MAX_MS == 32767, seg


@pytest.mark.parametrize("country", sorted(E180))
def test_tables_match_the_published_values(country: str) -> None:
    tones = tone_set(country)
    for name, (freqs, cadence) in E180[country].items():
        segments = tones.tone(name)
        assert {seg.freqs for seg in segments} == {freqs}, (country, name)
        if cadence:
            assert tuple(v for s in segments for v in (s.on_ms, s.off_ms)) == cadence
        else:
            assert [(s.on_ms, s.off_ms) for s in segments] == [(CONTINUOUS_MS, 0)]


@pytest.mark.parametrize("country", COUNTRIES)
def test_error_is_a_special_information_tone(country: str) -> None:
    segments = tone_set(country).tone("error")
    freqs = [seg.freq1 for seg in segments]
    assert freqs == sorted(freqs) and 900 <= freqs[0] <= 1000 and freqs[-1] >= 1370
    assert segments[-1].off_ms >= 1000


@pytest.mark.parametrize("country", COUNTRIES)
def test_confirmation_is_three_short_bursts_of_the_dial_tone(country: str) -> None:
    tones = tone_set(country)
    segments = tones.tone("confirmation")
    assert [(s.on_ms, s.off_ms) for s in segments] == [(100, 100)] * 3
    assert {s.freqs for s in segments} == {tones.dial[0].freqs}


@pytest.mark.parametrize("country", COUNTRIES)
def test_ring_cadence(country: str) -> None:
    tones = tone_set(country)
    assert tones.ring_cadence_ms == RING_CADENCES_MS[country]
    on, off = tones.ring_cadence_s
    assert on + off == pytest.approx(sum(tones.ring_cadence_ms) / 1000)
    assert off == tones.ring_cadence_ms[-1] / 1000


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match="confirmation"):
        tone_set("se").tone("howler")
    with pytest.raises(KeyError, match="dk, fi"):
        tone_set("xx")


# -- synthesis, checked by analysis ---------------------------------------------------------
@pytest.mark.parametrize(("country", "name"), ALL_TONES)
def test_rendered_tone_has_the_table_frequencies_and_cadence(country: str, name: str) -> None:
    check_tone(tone_set(country).tone(name), 8000, f"{country} {name}")


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize(("country", "name"),
                         [(c, t) for c in ("se", "us") for t in TONE_NAMES if t != "dial"])
def test_rendered_tone_at_wideband_rates(country: str, name: str, rate: int) -> None:
    check_tone(tone_set(country).tone(name), rate, f"{country} {name} @{rate}")


@pytest.mark.parametrize("country", ["se", "us"])
def test_continuous_dial_tone_does_not_dip_where_it_loops(country: str) -> None:
    segments = tone_set(country).tone("dial")
    x = pcm(synth.render(segments, 8000, 31.0))
    runs = sound_runs(x, 8000, steady_power(segments, synth.TONE_LEVEL_DBM0))
    assert_runs(runs, [(0, 31000)], f"{country} dial")
    assert_freqs(x[8000 * 29:8000 * 31], 8000, segments[0].freqs, f"{country} dial")


@pytest.mark.parametrize(("country", "name"),
                         [(c, t) for c in ("se", "us", "gb", "fi") for t in TONE_NAMES])
def test_no_clicks(country: str, name: str) -> None:
    """No sample step larger than the steepest slope of the tone itself: ramps, no jumps.

    At 48 kHz a sine moves at most 0.23 of its peak per sample at 1800 Hz, so a restart of
    the phase or a missing ramp shows as a larger step.
    """
    segments = tone_set(country).tone(name)
    rate = 48000
    x = pcm(synth.render(segments, rate, min(render_seconds(segments), 4.0)))
    top = max(f for s in segments for f in s.freqs)
    limit = len(segments[0].freqs) * synth.amplitude(synth.TONE_LEVEL_DBM0)
    assert max_step(x) <= limit * 2 * math.pi * top / rate * 1.05
    assert abs(x[0]) < 0.05 * limit


def test_level_is_per_frequency_in_dbm0() -> None:
    x = pcm(synth.render([ToneSegment(1000, 0, 1000, 0)], 8000, level_dbm0=-10.0))
    rms_dbm0 = 20 * math.log10(np.sqrt(np.mean(x[800:-800] ** 2)) * math.sqrt(2) / 32767)
    assert rms_dbm0 + synth.FULL_SCALE_DBM0 == pytest.approx(-10.0, abs=0.05)


def test_one_pass_when_no_length_is_given() -> None:
    segments = tone_set("se").tone("confirmation")
    assert len(synth.render(segments, 16000)) == 2 * 16 * 600


def test_render_refuses_unsupported_rates_and_empty_cadences() -> None:
    with pytest.raises(ValueError, match="44100"):
        synth.render(tone_set("se").busy, 44100, 1.0)
    with pytest.raises(ValueError):
        synth.render([], 8000, 1.0)


# -- ringtones ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(synth.RINGTONES))
@pytest.mark.parametrize("country", ["se", "gb", "us"])
def test_ringtone_sounds_only_while_the_country_cadence_rings(name: str, country: str) -> None:
    cadence = tone_set(country).ring_cadence_ms
    rate = 8000
    x = pcm(synth.ringtone(name, rate, cadence))
    assert len(x) == sum(cadence) * rate // 1000
    rings, t = [], 0
    for on, off in zip(cadence[::2], cadence[1::2], strict=True):
        rings.append((t, t + on))
        t += on + off
    level = synth.RINGTONES[name].level_dbm0
    runs = sound_runs(x, rate, synth.amplitude(level) ** 2 / 2)
    for a, b in runs:
        assert any(ra - TIME_TOLERANCE_MS <= a and b <= rb + TIME_TOLERANCE_MS
                   for ra, rb in rings), f"{name}: sound at {a:.0f}-{b:.0f} ms outside {rings}"
    for ra, _ in rings:
        assert any(abs(a - ra) <= TIME_TOLERANCE_MS for a, _ in runs), f"{name}: no ring at {ra}"


@pytest.mark.parametrize("name", ["soft", "beep"])
def test_ringtone_notes_have_their_frequencies(name: str) -> None:
    rate = 16000
    segments = synth.ringtone_segments(name, (1000, 5000))
    x = pcm(synth.ringtone(name, rate, (1000, 5000)))
    start = 0
    for seg in segments:
        if seg.on_ms >= 60:
            a, b = start + 8 * 16, start + (seg.on_ms - 8) * 16
            assert_freqs(x[a:b], rate, seg.freqs, f"{name} at {start // 16} ms")
        start += (seg.on_ms + seg.off_ms) * 16


def test_classic_ringtone_trills_between_its_two_tones() -> None:
    rate = 8000
    x = pcm(synth.ringtone("classic", rate, (1000, 5000)))
    slot = 25 * rate // 1000
    t = np.arange(slot) / rate
    for k in range(1, 39):
        chunk = x[k * slot:(k + 1) * slot]
        low, high = (abs(np.dot(chunk, np.exp(-2j * np.pi * f * t))) for f in (1000, 1250))
        assert (low > 3 * high) if k % 2 == 0 else (high > 3 * low), f"slot {k}"


def test_ringtone_segments_fill_each_ring_exactly() -> None:
    for name in synth.RINGTONES:
        for cadence in RING_CADENCES_MS.values():
            segments = synth.ringtone_segments(name, cadence)
            assert synth.cadence_ms(segments) == sum(cadence)
            assert all(1 <= s.on_ms <= 32767 and 0 <= s.off_ms <= 32767 for s in segments)


def test_unknown_ringtone_and_bad_cadence_are_refused() -> None:
    with pytest.raises(KeyError, match="classic"):
        synth.ringtone("bells", 8000)
    with pytest.raises(ValueError):
        synth.ringtone_segments("beep", (1000, 2000, 500))


# -- key feedback -------------------------------------------------------------------------
@pytest.mark.parametrize("rate", synth.RATES)
def test_key_click_is_5_ms_and_starts_and_ends_quietly(rate: int) -> None:
    x = pcm(synth.key_click(rate))
    assert len(x) == 5 * rate // 1000
    peak = np.abs(x).max()
    assert 0.5 * synth.amplitude(synth.KEY_CLICK_LEVEL_DBM0) < peak < 32767
    assert abs(x[0]) < 0.1 * peak and abs(x[-1]) < 0.1 * peak


@pytest.mark.parametrize("rate", synth.RATES)
@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_dtmf_feedback_is_the_digit_pair_for_60_ms(digit: str, rate: int) -> None:
    x = pcm(synth.dtmf_feedback(digit, rate))
    assert len(x) == 60 * rate // 1000
    ms = rate // 1000
    assert_freqs(x[5 * ms:55 * ms], rate, synth.DTMF_FREQS[digit], f"key {digit}")
    rms_each = np.sqrt(np.mean(x[5 * ms:55 * ms] ** 2) / 2)
    level = 20 * math.log10(rms_each * math.sqrt(2) / 32767) + synth.FULL_SCALE_DBM0
    assert level == pytest.approx(synth.DTMF_FEEDBACK_LEVEL_DBM0, abs=0.5)
    peak = np.abs(x).max()
    assert abs(x[0]) < 0.05 * peak and abs(x[-1]) < 0.05 * peak  # ramps: no click


def test_dtmf_table_is_q23() -> None:
    rows, cols = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    for r, keys in enumerate(("123A", "456B", "789C", "*0#D")):
        for c, key in enumerate(keys):
            assert synth.dtmf_pair(key) == (rows[r], cols[c])
    assert synth.dtmf_pair("a") == (697, 1633)
    with pytest.raises(ValueError, match="not a DTMF key"):
        synth.dtmf_pair("X")
