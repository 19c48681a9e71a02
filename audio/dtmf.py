"""In-band DTMF: a detector meeting ITU-T Q.24 and a tone generator (ITU-T Q.23), pure Python.

    detector = DtmfDetector(rate=8000)
    for event in detector.feed(pcm):        # 16-bit little-endian mono, any chunk size
        menu.digit(event.digit)             # one event per key press, when the key is let go
    detector.flush()                        # end of the call: a digit still sounding ends here

    pcm = dtmf_pcm("555#", rate=8000)       # 70 ms tones, 70 ms pauses, -10 dBm0

The detector runs on the phone's audio path, so it uses no numpy: each sub-block of 35 samples
(4.375 ms; 70 at 16 kHz) is correlated with cosine and sine tables of the eight DTMF frequencies
(a DFT at eight frequencies, which is what Goertzel computes, done with `sum(map(mul, ...))` so
the inner loop runs in C). Three sub-blocks make a 105-sample (13.1 ms) analysis window, and a
new window is analysed every sub-block, so the tone's duration is measured to 4.4 ms while the
frequency resolution stays that of 105 samples. The phase advance of each tone from window to
window gives its actual frequency, which is what tells a 1.5 % error from a 3.5 % one. The
design, the thresholds and the measured Q.24 figures: docs/dtmf.md.

Twist is the level of the high-group tone minus the level of the low-group tone, in dB: +4 dB
means the high tone is 4 dB louder. Levels are in dBm0 with a full-scale 16-bit sine at
+3.14 dBm0 (ITU-T G.711, A-law).
"""

from __future__ import annotations

import cmath
import math
import sys
from array import array
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from operator import add, mul
from operator import sub as subtract

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "0123456789*#ABCD"

FULL_SCALE_DBM0 = 3.14  # a sine of peak 32768 (ITU-T G.711, A-law)
ZERO_DBM0_PEAK = 32768.0 * 10 ** (-FULL_SCALE_DBM0 / 20)  # peak of a 0 dBm0 sine: 22 695

# Timing, in sub-blocks of 35 samples at 8 kHz (4.375 ms).
SUB_SAMPLES_8K = 35
WINDOW_SUBS = 3  # analysis window: 105 samples, 13.1 ms, 76 Hz frequency resolution
CONFIRM_WINDOWS = 5  # a key needs 5 windows in a row: 30.6 ms of steady tone
END_WINDOWS = 8  # 8 windows without it end the key: bridges 20 ms breaks, sees 28 ms pauses

# Per-window tests (loose: the key's averages over its windows are tested again, below).
MIN_TONE_DBM0 = -38.0  # each tone
RELATIVE_PEAK_DB = 8.0  # the other tones of each group at least this far below the strongest
MIN_TONE_RATIO = 0.6  # the two tones' share of the window's energy
STEADY_RATIO = 0.5  # quietest sub-block's energy / loudest: the window lies inside the tone
WINDOW_FREQ_ERROR = 0.045  # frequency error from one window's phase advance
WINDOW_TWIST_DB = (-12.0, 8.0)
HARMONIC_DB = 10.0  # second harmonic of the high tone, third of the low tone: this far below

# Tests on the averages over a key's windows, before it is reported.
FREQ_ERROR = 0.025  # Q.24: accept 1.5 %, reject 3.5 %
TWIST_DB = (-9.0, 5.0)  # Q.24: accept -8 to +4 dB, reject -10 and +6 dB
TONE_RATIO = 0.8  # the two tones' share of the energy, corrected for frequency error


@dataclass(frozen=True)
class DtmfEvent:
    """One key press: `start` and `end` count samples (at the detector's rate) from the first
    sample fed; the tone was heard from `start` up to, not including, `end`."""

    digit: str
    start: int
    end: int


@dataclass(frozen=True)
class _Tables:
    """Everything that depends only on the sample rate."""

    rate: int
    sub: int  # samples per sub-block
    window: int  # samples per analysis window
    folded: tuple[tuple[tuple[float, ...], tuple[float, ...], complex], ...]  # see _sub_dft
    rotations: tuple[complex, ...]  # e^{-jwH}: moves a sub-block's DFT one sub-block later
    omegas: tuple[float, ...]  # radians per sample
    advances: tuple[float, ...]  # the nominal phase advance per sub-block, per frequency
    harmonics: tuple[tuple[tuple[float, ...], tuple[float, ...], complex], ...]  # window-long
    leak_phases: tuple[tuple[complex, ...], ...]  # [source][target]: see _unleak
    quiet: float  # a sub-block below this energy cannot be inside a key
    floor: float  # |DFT|^2 over a window of a tone at MIN_TONE_DBM0


def _folded(omega: float, length: int) -> tuple[tuple[float, ...], tuple[float, ...], complex]:
    """cos and sin of omega * m for the offsets m of one half of a sub-block from its centre,
    and e^{-j omega centre}, which moves the origin back to the sub-block's first sample."""
    centre = (length - 1) / 2
    offsets = [length - length // 2 + i - centre for i in range(length // 2)]
    return (tuple(math.cos(omega * m) for m in offsets),
            tuple(math.sin(omega * m) for m in offsets), cmath.exp(-1j * omega * centre))


@lru_cache(maxsize=8)
def _tables(rate: int) -> _Tables:
    if rate % 8000 or not 8000 <= rate <= 48000:
        raise ValueError(f"DTMF detection needs 8000, 16000, ... 48000 samples/s, not {rate}")
    sub = SUB_SAMPLES_8K * rate // 8000
    window = WINDOW_SUBS * sub
    omegas = tuple(2 * math.pi * f / rate for f in ROW_HZ + COL_HZ)
    harmonic_freqs = [3 * f for f in ROW_HZ] + [2 * f for f in COL_HZ]
    min_peak = ZERO_DBM0_PEAK * 10 ** (MIN_TONE_DBM0 / 20)
    return _Tables(
        rate, sub, window,
        tuple(_folded(w, sub) for w in omegas),
        tuple(cmath.exp(-1j * w * sub) for w in omegas),
        omegas,
        tuple(w * sub for w in omegas),
        tuple(_folded(2 * math.pi * f / rate, window) for f in harmonic_freqs),
        tuple(tuple(cmath.exp(1j * (a - b) * (window - 1) / 2) for b in omegas) for a in omegas),
        quiet=min_peak**2 * sub / 4,  # 6 dB below two tones at the minimum level
        floor=(min_peak * window / 2) ** 2)


def _fold(x: list[int]) -> tuple[list[int], list[int], int]:
    """Samples folded about their centre: sums and differences of the pairs at equal distances
    (for the cosine and the sine terms of a DFT), and the middle sample (0 if there is none).

    A DFT at one frequency then costs two dot products of half the length, which
    sum(map(mul, ...)) runs in C."""
    n = len(x)
    half = n // 2
    upper, lower = x[n - half:], x[half - 1::-1]
    return (list(map(add, upper, lower)), list(map(subtract, upper, lower)),
            x[half] if n % 2 else 0)


def _wrap(angle: float) -> float:
    """The angle in [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _power(z: complex) -> float:
    return z.real * z.real + z.imag * z.imag


def _db(ratio: float) -> float:
    return 10 * math.log10(ratio) if ratio > 0 else -math.inf


def _dirichlet_gain(theta: float, length: int) -> float:
    """How a DFT over `length` samples sees a tone theta radians per sample away, but for the
    phase e^{j theta (length-1)/2}: sin(theta length/2) / sin(theta/2), `length` at 0."""
    half = theta / 2
    s = math.sin(half)
    return math.sin(half * length) / s if abs(s) > 1e-12 else float(length)


def _scallop(offset_hz: float, rate: int, window: int) -> float:
    """Power gain of a window-long DFT at f for a tone at f + offset_hz (1 at no offset)."""
    return (_dirichlet_gain(2 * math.pi * offset_hz / rate, window) / window) ** 2


class _Sub:
    """One sub-block: its samples, energy (without its mean: a DC offset is no signal) and
    DFT (computed when a window needs it)."""

    __slots__ = ("dft", "energy", "samples")

    def __init__(self, samples: list[int]) -> None:
        self.samples = samples
        self.energy: float = sum(map(mul, samples, samples)) - sum(samples) ** 2 / len(samples)
        self.dft: list[complex] | None = None


@dataclass(frozen=True)
class _Hit:
    """A window that looks like a key: the two tones' powers and phase advances."""

    digit: str
    row: int
    col: int
    p_row: float
    p_col: float
    theta_row: float  # phase advance since the previous window minus the nominal one
    theta_col: float
    energy: float  # the window's energy


@dataclass
class _Run:
    """Consecutive windows that look like the same key, with running sums of their figures."""

    hit: _Hit
    start: int
    count: int = 1
    p_row: float = 0.0
    p_col: float = 0.0
    theta_row: float = 0.0
    theta_col: float = 0.0
    energy: float = 0.0
    accepted: bool = False

    def __post_init__(self) -> None:
        self.p_row, self.p_col, self.energy = self.hit.p_row, self.hit.p_col, self.hit.energy

    def add(self, hit: _Hit) -> None:
        self.count += 1
        self.p_row += hit.p_row
        self.p_col += hit.p_col
        self.energy += hit.energy
        self.theta_row += hit.theta_row
        self.theta_col += hit.theta_col


@dataclass
class _Key:
    """The key being held: its digit, when it started, the end of its last window."""

    digit: str
    start: int
    end: int
    misses: int = 0


@dataclass(frozen=True)
class KeyFigures:
    """What the detector measured over one key's windows (for tests, tuning and logs)."""

    digit: str
    freq_error: tuple[float, float]  # (low, high), relative: 0.015 is +1.5 %
    twist_db: float  # high minus low
    tone_ratio: float  # share of the energy in the two tones, 1.0 for a clean key
    windows: int


class DtmfDetector:
    """Finds DTMF keys in a stream of 16-bit little-endian mono PCM at 8 or 16 kHz (or any
    multiple of 8 kHz up to 48 kHz).

    Feed it audio in chunks of any size; it keeps its state between calls, so a key that spans
    chunks is reported once. `feed` returns the keys that ended in that chunk; `held` is the
    key sounding now (for barge-in: stop a prompt as soon as a key goes down);
    `last_figures` is what was measured over the last key judged, recognised or not.
    """

    def __init__(self, rate: int = 8000) -> None:
        self.rate = rate
        self._t = _tables(rate)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample fed is sample 0."""
        self._odd = b""
        self._buf = array("h")
        self._pos = 0  # samples analysed so far
        self._subs: deque[_Sub] = deque(maxlen=WINDOW_SUBS + 1)  # two windows, one sub apart
        self._windows: dict[int, list[complex]] = {}  # DFTs of the last windows, by end
        self._run: _Run | None = None
        self._key: _Key | None = None
        self.last_figures: KeyFigures | None = None

    @property
    def held(self) -> str | None:
        """The key sounding now (recognised, not yet ended), or None."""
        return self._key.digit if self._key else None

    def feed(self, pcm: bytes) -> list[DtmfEvent]:
        """Analyse more audio; return the keys that ended in it, oldest first."""
        data = self._odd + pcm
        whole = len(data) & ~1
        self._odd = data[whole:]
        samples = array("h", data[:whole])
        if sys.byteorder == "big":
            samples.byteswap()
        self._buf.extend(samples)
        return self._drain()

    def flush(self) -> list[DtmfEvent]:
        """End of the stream: report a key still sounding, and start afresh for the next one."""
        key, self._key, self._run = self._key, None, None
        return [DtmfEvent(key.digit, key.start, key.end)] if key else []

    def _drain(self) -> list[DtmfEvent]:
        sub, buf, events = self._t.sub, self._buf, []
        used = 0
        while len(buf) - used >= sub:
            self._subs.append(_Sub(buf[used:used + sub].tolist()))
            used += sub
            self._pos += sub
            event = self._step(self._analyse(), self._pos - self._t.window, self._pos)
            if event:
                events.append(event)
        del buf[:used]
        return events

    def _analyse(self) -> _Hit | None:
        """Look at the window of the last three sub-blocks, against the one a sub-block before.

        The cheap tests come first: most windows of speech and all of silence stop before
        any DFT is needed."""
        subs = list(self._subs)
        if len(subs) <= WINDOW_SUBS:
            return None
        current = subs[1:]
        energies = [s.energy for s in current]
        low = min(energies)
        if low < self._t.quiet or low < STEADY_RATIO * max(energies):
            return None
        x = self._window_dft(current, self._pos)
        tones = self._strongest(x, sum(energies))
        if tones is None:
            return None
        prev = self._window_dft(subs[:-1], self._pos - self._t.sub)
        return self._classify(x, prev, current, *tones)

    def _window_dft(self, subs: list[_Sub], end: int) -> list[complex]:
        """The DFT of three consecutive sub-blocks at the eight frequencies, from theirs."""
        known = self._windows.get(end)
        if known is not None:
            return known
        a, b, c = (self._sub_dft(s) for s in subs)
        x = [p + r * (q + r * s) for p, q, s, r in zip(a, b, c, self._t.rotations, strict=True)]
        for old in [e for e in self._windows if e < end - self._t.sub]:
            del self._windows[old]
        self._windows[end] = x
        return x

    def _sub_dft(self, sub: _Sub) -> list[complex]:
        """The sub-block's DFT at the eight frequencies, origin at its first sample."""
        if sub.dft is None:
            evens, odds, mid = _fold(sub.samples)
            sub.dft = [complex(mid + sum(map(mul, evens, c)), -sum(map(mul, odds, s))) * k
                       for c, s, k in self._t.folded]
        return sub.dft

    def _strongest(self, x: list[complex], energy: float) -> tuple[int, int] | None:
        """The strongest row and column, if both are loud enough and hold most of the energy."""
        t = self._t
        p = [_power(z) for z in x]
        row = max(range(4), key=p.__getitem__)
        col = max(range(4, 8), key=p.__getitem__)
        if (p[row] < t.floor or p[col] < t.floor
                or 2 * (p[row] + p[col]) < MIN_TONE_RATIO * energy * t.window):
            return None
        return row, col

    def _classify(self, x: list[complex], prev: list[complex], subs: list[_Sub], row: int,
                  col: int) -> _Hit | None:
        """The key this window holds, if it passes the remaining per-window tests."""
        t = self._t
        theta_row = _wrap(cmath.phase(x[row] * prev[row].conjugate()) - t.advances[row])
        theta_col = _wrap(cmath.phase(x[col] * prev[col].conjugate()) - t.advances[col])
        if not (self._steady_freq(row, theta_row) and self._steady_freq(col, theta_col)):
            return None
        x = self._unleak(x, row, col, theta_row, theta_col)
        p = [_power(z) for z in x]
        if not (_twist_ok(p[row], p[col]) and _peaks_ok(p, row, col)):
            return None
        digit = KEYPAD[row][col - 4]
        held = self._key is not None and self._key.digit == digit  # checked when it began
        if not (held or self._harmonics_ok(subs, row, col, p[row], p[col])):
            return None
        energy = sum(s.energy for s in subs)
        return _Hit(digit, row, col, p[row], p[col], theta_row, theta_col, energy)

    def _steady_freq(self, k: int, theta: float) -> bool:
        """The phase advance over one sub-block says the tone is within WINDOW_FREQ_ERROR."""
        return abs(theta) <= WINDOW_FREQ_ERROR * self._t.advances[k]

    def _unleak(self, x: list[complex], row: int, col: int, theta_row: float,
                theta_col: float) -> list[complex]:
        """Remove from each group's filters what the other group's tone leaks into them.

        A 105-sample window leaks a tone into filters 268 Hz and more away at up to -21 dB:
        with the low tone 8 dB louder, that is -13 dB in the high group, enough to upset the
        relative-peak and twist tests. The tone's frequency comes from its phase advance."""
        t = self._t
        out = list(x)
        for src, theta, targets in ((row, theta_row, range(4, 8)), (col, theta_col, range(4))):
            w = t.omegas[src] + theta / t.sub
            amplitude = x[src] / _dirichlet_gain(w - t.omegas[src], t.window)
            phases = t.leak_phases[src]
            for k in targets:
                out[k] -= amplitude * phases[k] * _dirichlet_gain(w - t.omegas[k], t.window)
        return out

    def _harmonics_ok(self, subs: list[_Sub], row: int, col: int, p_row: float,
                      p_col: float) -> bool:
        """Speech has harmonics, a DTMF key none: the low tone's third and the high tone's
        second harmonic must be HARMONIC_DB below them. (The low tone's second harmonic lies
        within 71 Hz of a high-group frequency for 697, 770 and 852 Hz: not usable here.)"""
        evens, odds, mid = _fold([v for s in subs for v in s.samples])
        limit = 10 ** (-HARMONIC_DB / 10)
        for k, p in ((row, p_row), (col, p_col)):
            c, s, _ = self._t.harmonics[k]
            if _power(complex(mid + sum(map(mul, evens, c)), sum(map(mul, odds, s)))) > limit * p:
                return False
        return True

    def _step(self, hit: _Hit | None, start: int, end: int) -> DtmfEvent | None:
        """The duration state machine, one window at a time."""
        event = self._end_key(hit)
        self._extend_run(hit, start)
        run = self._run
        if run and not run.accepted and run.count >= CONFIRM_WINDOWS:
            run.accepted = self._accept(run)
        if self._key is None and run and run.accepted:
            self._key = _Key(run.hit.digit, run.start, end)
        elif self._key and hit and hit.digit == self._key.digit:
            self._key.end = end
        return event

    def _end_key(self, hit: _Hit | None) -> DtmfEvent | None:
        """Count windows without the held key; after END_WINDOWS of them the key is over."""
        key = self._key
        if key is None:
            return None
        if hit and hit.digit == key.digit:
            key.misses = 0
            return None
        key.misses += 1
        if key.misses < END_WINDOWS:
            return None
        self._key = None
        return DtmfEvent(key.digit, key.start, key.end)

    def _extend_run(self, hit: _Hit | None, start: int) -> None:
        run = self._run
        if hit is None:
            self._run = None
        elif run and run.hit.digit == hit.digit:
            run.add(hit)
        else:
            self._run = _Run(hit, start)

    def _accept(self, run: _Run) -> bool:
        """The Q.24 tests on the averages over the run's windows."""
        figures = self._figures(run)
        self.last_figures = figures
        low, high = figures.freq_error
        return (abs(low) <= FREQ_ERROR and abs(high) <= FREQ_ERROR
                and TWIST_DB[0] <= figures.twist_db <= TWIST_DB[1]
                and figures.tone_ratio >= TONE_RATIO)

    def _figures(self, run: _Run) -> KeyFigures:
        t, hit, lags = self._t, run.hit, run.count - 1
        f_row, f_col = ROW_HZ[hit.row], COL_HZ[hit.col - 4]
        off_row = run.theta_row / lags * t.rate / (2 * math.pi * t.sub)
        off_col = run.theta_col / lags * t.rate / (2 * math.pi * t.sub)
        p_row = run.p_row / _scallop(off_row, t.rate, t.window)
        p_col = run.p_col / _scallop(off_col, t.rate, t.window)
        ratio = 2 * (p_row + p_col) / (run.energy * t.window)
        return KeyFigures(hit.digit, (off_row / f_row, off_col / f_col), _db(p_col / p_row),
                          ratio, run.count)


def _twist_ok(p_row: float, p_col: float) -> bool:
    twist = p_col / p_row
    return 10 ** (WINDOW_TWIST_DB[0] / 10) <= twist <= 10 ** (WINDOW_TWIST_DB[1] / 10)


def _peaks_ok(p: list[float], row: int, col: int) -> bool:
    """Every other tone of each group RELATIVE_PEAK_DB below that group's strongest."""
    limit = 10 ** (-RELATIVE_PEAK_DB / 10)
    return all(p[k] <= limit * p[row] for k in range(4) if k != row) and all(
        p[k] <= limit * p[col] for k in range(4, 8) if k != col)


def _digit_freqs(digit: str) -> tuple[float, float]:
    for r, keys in enumerate(KEYPAD):
        c = keys.find(digit.upper())
        if c >= 0:
            return ROW_HZ[r], COL_HZ[c]
    raise ValueError(f"not a DTMF digit: {digit!r} (use {DIGITS})")


def dtmf_pcm(digits: str, rate: int = 8000, on_ms: float = 70, off_ms: float = 70,
             level_dbm0: float = -10.0, twist_db: float = 0.0,
             freq_error: tuple[float, float] = (0.0, 0.0)) -> bytes:
    """16-bit little-endian mono PCM: each digit as `on_ms` of tone then `off_ms` of silence.

    `level_dbm0` is the power of both tones together (0 dBm0 is the loudest that stays within
    16 bits at any twist); `twist_db` is the high tone's level minus the low tone's;
    `freq_error` offsets the (low, high) frequencies, relatively (0.015 is +1.5 %), for tests.
    """
    pairs = [_digit_freqs(d) for d in digits]
    a_low = ZERO_DBM0_PEAK * math.sqrt(10 ** (level_dbm0 / 10) / (1 + 10 ** (twist_db / 10)))
    a_high = a_low * 10 ** (twist_db / 20)
    on, off = round(on_ms * rate / 1000), round(off_ms * rate / 1000)
    out = array("h")
    for low, high in pairs:
        w_low = 2 * math.pi * low * (1 + freq_error[0]) / rate
        w_high = 2 * math.pi * high * (1 + freq_error[1]) / rate
        out.extend(_clip(a_low * math.sin(w_low * n) + a_high * math.sin(w_high * n))
                   for n in range(on))
        out.extend(array("h", bytes(2 * off)))
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def _clip(value: float) -> int:
    return max(-32768, min(32767, round(value)))
