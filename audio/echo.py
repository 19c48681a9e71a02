"""Acoustic echo cancellation for hands-free calls: speex's adaptive filter (libspeexdsp) between
the ALSA bridge and the SIP media (docs/echo.md).

On the speaker path the far end's voice leaves the loudspeaker, comes back into the microphone
and would be sent back to the far end as an echo. `EchoCanceller` learns that echo path from the
audio played (the reference) and subtracts its estimate from each captured frame.
`EchoCancellingEnds` wraps an `AlsaBridge` with the same `pull_capture` / `push_playback`
interface, so the SIP media side uses it in place of the bridge:

    push_playback(far) --> [reference FIFO, reference_delay_ms] --+
             |                                                    | far (reference)
             v                                                    v
        AlsaBridge --> loudspeaker ~~ room ~~> mic --> AlsaBridge --> EchoCanceller --> pull_capture

Alignment: a far-end frame pushed now reaches the loudspeaker only after the playback ring
(~60 ms) and the card's own buffer (two periods prefilled: ~40 ms), and its echo reaches
`pull_capture` only after the capture ring (~40 ms): 100-140 ms of bulk delay before the room's
own path even starts (docs/audio.md measures the rings). The adaptive filter covers `tail_ms` of
delay after the reference it is given, so the reference is first held back by
`reference_delay_ms` (a FIFO primed with that much silence): the filter then has to cover only
the rest of the bridge delay plus the room. Keep the reference delay *below* the smallest bulk
delay the bridge shows (an echo arriving before its reference cannot be cancelled at all: 0 dB
measured) and let the tail absorb the rest. With the defaults, 80 ms held back + 128 ms of tail,
a bridge delay of 80-160 ms with a 70 ms room keeps ~30 dB of ERLE (tools/bench/echo_bench.py).

Threads: `pull_capture` and `push_playback` run on pjmedia's clock thread and never block (a few
byte copies, and one call into the C library per 20 ms frame: ~0.1 ms on a PC). `enabled` may be
flipped from any thread; the clock thread resets the canceller at its next frame.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Protocol

from audio.pcm import SAMPLE_BYTES

log = logging.getLogger("luren.audio.echo")

MEDIA_RATE = 16000
FRAME_MS = 20
DEFAULT_TAIL_MS = 128
DEFAULT_REFERENCE_DELAY_MS = 80


class EchoCancellerMissing(ImportError):
    """The `speexdsp` package (the binding of libspeexdsp) is not installed."""


class MediaEnds(Protocol):
    """What the SIP media side calls on its clock thread (`AlsaBridge` is one)."""

    def pull_capture(self, n_bytes: int) -> bytes: ...
    def push_playback(self, pcm: bytes) -> None: ...


def _load_speexdsp() -> Any:
    try:
        with warnings.catch_warnings():  # its SWIG loader imports `imp` (gone in Python 3.12)
            warnings.simplefilter("ignore", DeprecationWarning)
            import speexdsp
    except ImportError as exc:
        raise EchoCancellerMissing(
            "echo cancellation needs the Python package 'speexdsp' (pip install "
            "speexdsp==0.1.1; it builds against Debian's libspeexdsp-dev with swig)") from exc
    return speexdsp


class EchoCanceller:
    """speex's echo canceller on mono S16_LE frames of `frame_ms` at `sample_rate`.

    `process(near, far)` returns `near` (the microphone's frame) minus the echo of `far` (the
    frame played at the same moment, or the reference delayed to line up with it). Both must be
    exactly `frame_bytes` long: the C library reads a whole frame whatever it is given.
    """

    def __init__(self, *, sample_rate: int = MEDIA_RATE, frame_ms: int = FRAME_MS,
                 tail_ms: int = DEFAULT_TAIL_MS) -> None:
        if tail_ms < frame_ms:
            raise ValueError(f"tail_ms ({tail_ms}) must be at least a frame ({frame_ms} ms)")
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        self.frame_bytes = self.frame_samples * SAMPLE_BYTES
        self.tail_samples = sample_rate * tail_ms // 1000
        self._speexdsp = _load_speexdsp()
        self._state = self._create()

    def _create(self) -> Any:
        return self._speexdsp.EchoCanceller.create(
            self.frame_samples, self.tail_samples, self.sample_rate)

    def process(self, near: bytes, far: bytes) -> bytes:
        """`near` with the echo of `far` removed; same length."""
        if len(near) != self.frame_bytes or len(far) != self.frame_bytes:
            raise ValueError(f"frames must be {self.frame_bytes} bytes, got near={len(near)} "
                             f"far={len(far)}")
        return self._state.process(near, far)

    def reset(self) -> None:
        """Forget the learned echo path (a new room, a new loudspeaker)."""
        self._state = self._create()


class EchoCancellingEnds:
    """An `AlsaBridge` seen through an echo canceller; the same `pull_capture`/`push_playback`.

    Every frame given to `push_playback` goes to the bridge and, `reference_delay_ms` later, to
    the canceller as the reference for the frame `pull_capture` returns then. `enabled` (False
    by default) turns cancellation on for the speaker (hands-free) path only: the lead wires
    `AudioRouter` path changes to it (`ends.enabled = new is Path.SPEAKER` in a router listener).
    Disabled, frames pass untouched. Switching it on starts a fresh canceller (the speaker's echo
    path has nothing to do with what was learned before); capture chunks that are not whole
    frames pass untouched (counted in `bypassed`). A tick with no (or a short) push counts as
    silence played, so the reference keeps its delay across gaps in the far end's audio.
    """

    def __init__(self, bridge: MediaEnds, *, canceller: EchoCanceller | None = None,
                 tail_ms: int = DEFAULT_TAIL_MS,
                 reference_delay_ms: int = DEFAULT_REFERENCE_DELAY_MS,
                 enabled: bool = False) -> None:
        self.bridge = bridge
        self.canceller = canceller or EchoCanceller(tail_ms=tail_ms)
        self.set_reference_delay(reference_delay_ms)
        self._ref = bytearray(self.delay_bytes)
        self._enabled = enabled
        self._fresh = False  # set from any thread, acted on by the clock thread
        self._since_pull = 0  # reference bytes pushed since the last pull
        self.frames = self.bypassed = self.reference_underruns = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        if on and not self._enabled:
            self._fresh = True
        if on != self._enabled:
            log.info("echo cancellation %s", "on" if on else "off")
        self._enabled = on

    def set_reference_delay(self, reference_delay_ms: int) -> None:
        """Hold the reference back `reference_delay_ms` from the next frame on (a fresh start).

        For a measured bridge: `stats.capture_ms + stats.playback_ms` plus the playback device's
        own buffer, minus a 20 ms margin (docs/echo.md).
        """
        rate = self.canceller.sample_rate
        self.delay_bytes = rate * reference_delay_ms // 1000 * SAMPLE_BYTES
        self._max_ref = self.delay_bytes + 4 * self.canceller.frame_bytes
        self._fresh = True

    # -- the media clock's side ---------------------------------------------------------------
    def push_playback(self, pcm: bytes) -> None:
        """Queue `pcm` for the loudspeaker; keep it as the reference while enabled."""
        self.bridge.push_playback(pcm)
        if self._enabled:
            self._ref += pcm
            self._since_pull += len(pcm)
            if len(self._ref) > self._max_ref:  # pushes outran pulls: keep the newest
                del self._ref[:len(self._ref) - self._max_ref]

    def pull_capture(self, n_bytes: int) -> bytes:
        """`n_bytes` of captured audio, the loudspeaker's echo removed while enabled."""
        near = self.bridge.pull_capture(n_bytes)
        if not self._enabled:
            return near
        if self._fresh:
            self._restart()
        if self._since_pull < n_bytes:  # no (or a short) push this tick: it played silence
            self._ref += bytes(n_bytes - self._since_pull)
        self._since_pull = 0
        step = self.canceller.frame_bytes
        if len(near) % step:
            self.bypassed += 1
            return near
        return b"".join(self._cancel(near[i:i + step]) for i in range(0, len(near), step))

    # -- internals ----------------------------------------------------------------------------
    def _cancel(self, near: bytes) -> bytes:
        n = len(near)
        far = bytes(self._ref[:n])
        del self._ref[:n]
        if len(far) < n:
            self.reference_underruns += 1
            far += bytes(n - len(far))
        self.frames += 1
        return self.canceller.process(near, far)

    def _restart(self) -> None:
        self._fresh = False
        self.canceller.reset()
        self._ref = bytearray(self.delay_bytes)
        self._since_pull = 0
