"""In-process PCM synthesis of tones, ringtones, key clicks and DTMF feedback.

Pure Python (`array('h')` and `math.sin`, no numpy, no external players): every function
returns 16-bit signed little-endian mono PCM (ALSA S16_LE) at 8, 16 or 48 kHz.

`render()` plays a list of `ToneSegment`s the way pjmedia's tone generator does (freq1 +
freq2 for on_ms, silence for off_ms, the whole list looped), so the earpiece, the ringer and
the simulator can play what the media bridge would. Tones start and stop with short
raised-cosine ramps (no clicks); back-to-back segments with no silence between them carry
their oscillator phase across, so a change of frequency is click-free too.

Levels are in dBm0 per frequency component, on the G.711 A-law scale where a full-scale
sine is +3.14 dBm0.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from audio.tones import ToneSegment

RATES = (8000, 16000, 48000)
FULL_SCALE_DBM0 = 3.14  # G.711 A-law: a sine with 16-bit peak 32767 is +3.14 dBm0
TONE_LEVEL_DBM0 = -13.0  # call-progress tones, per frequency (US precise tone plan dial)
RAMP_MS = 4.0  # rise and fall of every tone burst
KEY_CLICK_MS = 5
KEY_CLICK_HZ = 2000
KEY_CLICK_LEVEL_DBM0 = -16.0
DTMF_FEEDBACK_MS = 60
DTMF_FEEDBACK_LEVEL_DBM0 = -24.0

# ITU-T Q.23: (low group, high group) Hz for each key.
DTMF_FREQS: dict[str, tuple[int, int]] = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}


def amplitude(level_dbm0: float) -> float:
    """Peak 16-bit sample value of a sine at `level_dbm0`."""
    return 32767 * 10 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20)


def samples(ms: float, rate: int) -> int:
    """Number of samples in `ms` milliseconds at `rate` (exact for the supported rates)."""
    return round(ms * rate / 1000)


def cadence_ms(segments: Sequence[ToneSegment]) -> int:
    """Length of one pass through `segments`, silences included."""
    return sum(seg.on_ms + seg.off_ms for seg in segments)


def render(segments: Sequence[ToneSegment], rate: int, seconds: float | None = None,
           level_dbm0: float = TONE_LEVEL_DBM0) -> bytes:
    """PCM of `segments` looped for `seconds` (None: exactly one pass through them).

    `level_dbm0` is the level of each frequency component. The sound fades in at the start
    and out at the end, so a one-shot tone (confirmation) is `render(segments, rate)`.
    """
    _check_rate(rate)
    segs = list(segments)
    period = sum(samples(s.on_ms, rate) + samples(s.off_ms, rate) for s in segs)
    if period == 0:
        raise ValueError("a tone needs at least one segment with a duration")
    total = period if seconds is None else samples(seconds * 1000, rate)
    osc = _Oscillators(rate, amplitude(level_dbm0))
    out = array("h")
    index = 0
    while len(out) < total:
        seg, nxt = segs[index % len(segs)], segs[(index + 1) % len(segs)]
        prev = segs[(index - 1) % len(segs)] if index else None
        out.extend(osc.segment(seg, prev, nxt, total - len(out)))
        index += 1
    return _le_bytes(out)


def silence(ms: float, rate: int) -> bytes:
    """`ms` milliseconds of silence."""
    _check_rate(rate)
    return bytes(2 * samples(ms, rate))


# -- ringtones ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Ringtone:
    """A ring sound: `burst` repeats to fill each ringing part of the country's cadence."""

    name: str
    burst: tuple[ToneSegment, ...]
    level_dbm0: float = -6.0


RINGTONES: dict[str, Ringtone] = {
    # A two-tone trill at 20 Hz, like the ringer chips of electronic phones.
    "classic": Ringtone("classic", (ToneSegment(1000, 0, 25, 0), ToneSegment(1250, 0, 25, 0))),
    # A rising A major arpeggio (A5, C#6, E6), quieter.
    "soft": Ringtone("soft", (ToneSegment(880, 0, 120, 40), ToneSegment(1109, 0, 120, 40),
                              ToneSegment(1319, 0, 240, 80)), level_dbm0=-12.0),
    # Plain 1400 Hz beeps, 5 per second.
    "beep": Ringtone("beep", (ToneSegment(1400, 0, 100, 100),)),
}


def ringtone_segments(name: str, cadence_ms: Sequence[int]) -> list[ToneSegment]:
    """Segments of ringtone `name` fitted into a ring cadence (on, off[, on, off ...] ms)."""
    tone = _ringtone(name)
    if len(cadence_ms) < 2 or len(cadence_ms) % 2:
        raise ValueError(f"a ring cadence is on/off pairs in ms, got {tuple(cadence_ms)}")
    segs: list[ToneSegment] = []
    for on, off in zip(cadence_ms[::2], cadence_ms[1::2], strict=True):
        burst = _fill(tone.burst, on)
        last = burst[-1]
        segs += [*burst[:-1], ToneSegment(last.freq1, last.freq2, last.on_ms,
                                          last.off_ms + off)]
    return segs


def ringtone(name: str, rate: int, cadence_ms: Sequence[int] = (1000, 5000),
             seconds: float | None = None) -> bytes:
    """PCM of ringtone `name` in `cadence_ms` (default Sweden); None: one cadence period."""
    return render(ringtone_segments(name, cadence_ms), rate, seconds,
                  _ringtone(name).level_dbm0)


# -- key feedback -------------------------------------------------------------------------
def key_click(rate: int, level_dbm0: float = KEY_CLICK_LEVEL_DBM0) -> bytes:
    """A 5 ms click: one Hann-shaped burst of 2 kHz, played on every key press."""
    _check_rate(rate)
    n = samples(KEY_CLICK_MS, rate)
    peak, w = amplitude(level_dbm0), 2 * math.pi * KEY_CLICK_HZ / rate
    shape = (0.5 - 0.5 * math.cos(2 * math.pi * (i + 0.5) / n) for i in range(n))
    return _le_bytes(array("h", (round(peak * g * math.sin(w * i))
                                 for i, g in enumerate(shape))))


def dtmf_feedback(digit: str, rate: int, ms: int = DTMF_FEEDBACK_MS,
                  level_dbm0: float = DTMF_FEEDBACK_LEVEL_DBM0) -> bytes:
    """The local sound of pressing `digit`: its DTMF pair at a low level for `ms` ms."""
    low, high = dtmf_pair(digit)
    return render([ToneSegment(low, high, ms, 0)], rate, level_dbm0=level_dbm0)


def key_feedback(key: str) -> tuple[list[ToneSegment], int]:
    """What pressing `key` sounds like, as tone segments and a peak sample value for a tone
    generator elsewhere (the SIP media): the key's DTMF pair for 0-9, * and #, else a click."""
    if key in DTMF_FREQS:
        low, high = DTMF_FREQS[key]
        return ([ToneSegment(low, high, DTMF_FEEDBACK_MS, 0)],
                round(amplitude(DTMF_FEEDBACK_LEVEL_DBM0)))
    return [ToneSegment(KEY_CLICK_HZ, 0, KEY_CLICK_MS, 0)], round(amplitude(KEY_CLICK_LEVEL_DBM0))


def dtmf_pair(digit: str) -> tuple[int, int]:
    """(low, high) Hz of a keypad key: 0-9, *, #, A-D (either case)."""
    try:
        return DTMF_FREQS[digit.upper()]
    except KeyError:
        raise ValueError(f"not a DTMF key: {digit!r}") from None


# -- internals ----------------------------------------------------------------------------
class _Oscillators:
    """Two sine oscillators (freq1, freq2) whose phase survives back-to-back segments."""

    def __init__(self, rate: int, peak: float) -> None:
        self.rate, self.peak = rate, peak
        self.phase = [0.0, 0.0]
        self.ramp = samples(RAMP_MS, rate)

    def segment(self, seg: ToneSegment, prev: ToneSegment | None, nxt: ToneSegment,
                limit: int) -> array:
        """Samples of `seg` (at most `limit`); `prev` is None at the very start.

        A frequency fades in after silence and out before silence or the end of the render.
        """
        on = min(samples(seg.on_ms, self.rate), limit)
        mix = [0.0] * on
        for slot, freq in enumerate((seg.freq1, seg.freq2)):
            if freq:
                fade_in = prev is None or prev.off_ms > 0 or not _freq(prev, slot)
                fade_out = seg.off_ms > 0 or not _freq(nxt, slot) or on == limit
                mix = list(map(float.__add__, mix, self._sine(slot, freq, on, fade_in,
                                                              fade_out)))
        pcm = array("h", (max(-32768, min(32767, round(x))) for x in mix))
        pcm.frombytes(bytes(2 * min(samples(seg.off_ms, self.rate), limit - on)))
        return pcm

    def _sine(self, slot: int, freq: int, n: int, fade_in: bool, fade_out: bool) -> list[float]:
        """n samples of `freq` on oscillator `slot`, faded in and/or out."""
        w, p, peak = 2 * math.pi * freq / self.rate, self.phase[slot], self.peak
        wave = [peak * math.sin(p + w * i) for i in range(n)]
        self.phase[slot] = (p + w * n) % (2 * math.pi)
        ramp = min(self.ramp, n // 2)
        for i in range(ramp):
            gain = 0.5 - 0.5 * math.cos(math.pi * (i + 0.5) / ramp)
            if fade_in:
                wave[i] *= gain
            if fade_out:
                wave[n - 1 - i] *= gain
        return wave


def _freq(seg: ToneSegment, slot: int) -> int:
    return seg.freq2 if slot else seg.freq1


def _fill(burst: Sequence[ToneSegment], span_ms: int) -> list[ToneSegment]:
    """`burst` repeated and cut to last exactly `span_ms`, silences included."""
    if min((seg.on_ms for seg in burst), default=0) <= 0:
        raise ValueError("every segment of a ringtone burst needs an on time")
    out: list[ToneSegment] = []
    left = span_ms
    while left > 0:
        for seg in burst:
            on = min(seg.on_ms, left)
            off = min(seg.off_ms, left - on)
            out.append(ToneSegment(seg.freq1, seg.freq2, on, off))
            left -= on + off
            if left <= 0:
                break
    return out


def _ringtone(name: str) -> Ringtone:
    try:
        return RINGTONES[name]
    except KeyError:
        raise KeyError(f"unknown ringtone {name!r}; known: {', '.join(RINGTONES)}") from None


def _check_rate(rate: int) -> None:
    if rate not in RATES:
        raise ValueError(f"sample rate {rate} not supported; use one of {RATES}")


def _le_bytes(pcm: array) -> bytes:
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes()
