"""The ringer: ringtones and one-shot sounds (key clicks, DTMF feedback, confirmation) on the
ringer's playback-only ALSA path.

    ring(name, cadence) / play_once(pcm)  -->  ringer thread: mix, volume, channels  -->  ALSA

The device is open only while there is something to play, so the speaker path can open the
same hardware once the ringing stops. `ring()` loops `synth.ringtone(name, rate, cadence)`
(one cadence period rendered at the path's rate); `play_once()` sounds are mixed on top.
The thread writes one period at a time: paced by the card's blocking writes, or, with
`pace=True` (the `null`/`file` plugins keep no time), by the clock.

Volume 0..15 (routing's scale) is a software gain: 15 plays at 0 dB, each step down is 3 dB
less, 0 is silence. It applies to everything the ringer plays, from the next period on.

A device that cannot be opened or written to is closed and logged (`AudioDeviceError` names
path, device and reason), kept in `last_error`, and passed to `on_error(error)` on the ringer
thread; ringing stops, nothing is raised into the caller, and the next `ring()` opens again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from audio import synth
from audio.bridge import LinearResampler, from_mono
from audio.pcm import SAMPLE_BYTES, AudioDeviceError, PathConfig, PcmPath
from audio.routing import VOLUME_DEFAULT, VOLUME_MAX

log = logging.getLogger("luren.audio.ringer")

MEDIA_RATE = 16000  # play_once's default rate: what the SIP side's sounds are rendered at
STEP_DB = 3.0  # one volume step
STOP_TIMEOUT_S = 2.0  # stop() waits at most this long for the device to close

ErrorCallback = Callable[[AudioDeviceError], None]
Key = tuple[str, tuple[int, ...]]  # (ringtone name, cadence ms)


def gain(volume: int) -> float:
    """Linear gain of a ringer volume: 15 is 1.0 (0 dB), each step 3 dB less, 0 is 0.0."""
    volume = _clamp(volume)
    return 0.0 if volume == 0 else 10 ** (-STEP_DB * (VOLUME_MAX - volume) / 20)


@dataclasses.dataclass
class _Shot:
    samples: array  # mono S16 at the path's rate
    pos: int = 0


class Ringer:
    """Plays ringtones and one-shot sounds on one playback-only path; see the module doc.

    Every method may be called from any thread and returns at once, except `stop()` and
    `close()`, which wait (about one period) until the device is closed. `on_error` runs on
    the ringer thread.
    """

    def __init__(self, path: PcmPath | PathConfig, *, volume: int = VOLUME_DEFAULT,
                 pace: bool = False, on_error: ErrorCallback | None = None) -> None:
        if isinstance(path, PathConfig):
            path = PcmPath.from_config(dataclasses.replace(path, capture_device=None))
        if path.has_capture or not path.has_playback:
            raise ValueError(f"{path.name}: a ringer path has a playback device and no capture")
        if path.rate not in synth.RATES:
            raise ValueError(f"{path.name}: rate {path.rate} not supported; use one of "
                             f"{synth.RATES}")
        self.path = path
        self.pace = pace
        self.on_error = on_error
        self.last_error: AudioDeviceError | None = None
        self._volume = _clamp(volume)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a session ended (device closed)
        self._wake = threading.Event()  # something to play, or quit
        self._halt = threading.Event()  # cuts the pacing wait short (stop, close)
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._want: Key | None = None  # the ringtone asked for; None: not ringing
        self._tone: tuple[Key, array] | None = None  # last rendered (kept for the next ring)
        self._tone_pos = 0
        self._shots: list[_Shot] = []
        self._open = False  # a session is on: the device is open (or being opened)
        self._drop = False  # end the session without playing out what ALSA holds

    # -- control -------------------------------------------------------------------------------
    def ring(self, name: str, cadence_ms: Sequence[int]) -> None:
        """Loop ringtone `name` in `cadence_ms` (on, off[, on, off ...] ms), e.g. (1000, 5000).

        Switches at the next period if another ringtone rings; the same one again does nothing.
        An unknown name (KeyError) or a bad cadence (ValueError) raises here.
        """
        key: Key = (name, tuple(int(ms) for ms in cadence_ms))
        synth.ringtone_segments(*key)  # cheap; raises for a bad name or cadence
        with self._lock:
            if self._want == key:
                return
            self._want = key
            self._tone_pos = 0
            self._wake_thread()

    def stop(self) -> None:
        """Stop ringing and any one-shot sound; return once the device is closed.

        Within about one period: the pacing wait is cut short, what ALSA still holds is dropped,
        not played out. Safe to call when nothing plays.
        """
        with self._lock:
            self._want = None
            self._shots.clear()
            if not self._open:
                return
            self._drop = True
            self._halt.set()
            if threading.current_thread() is self._thread:
                return  # the ringer thread itself: its session ends next
            closed = self._changed.wait_for(lambda: not self._open or self._busy(),
                                            STOP_TIMEOUT_S)
        if not closed:
            log.warning("ringer: device '%s' still open %.0f s after stop",
                        self.path.playback_device, STOP_TIMEOUT_S)

    def play_once(self, pcm: bytes, rate: int = MEDIA_RATE) -> None:
        """Play mono S16_LE `pcm` at `rate` once, mixed on top of the ringtone if ringing.

        Opens the device if it is closed and closes it again when done (played out) unless
        something else plays by then.
        """
        if len(pcm) % SAMPLE_BYTES or rate <= 0:
            raise ValueError("play_once takes whole 16-bit samples at a positive rate")
        samples = array("h", pcm)
        if rate != self.path.rate:
            samples = LinearResampler(rate, self.path.rate).process(samples)
        if not samples:
            return
        with self._lock:
            self._shots.append(_Shot(samples))
            self._wake_thread()

    @property
    def volume(self) -> int:
        """0..15; 15 is 0 dB, each step 3 dB less, 0 mutes (see `gain`)."""
        return self._volume

    @volume.setter
    def volume(self, level: int) -> None:
        self._volume = _clamp(level)  # clamped, like the router's volumes

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing plays and the device is closed; False on timeout.

        Not from `on_error` (the ringer thread).
        """
        with self._lock:
            return self._changed.wait_for(lambda: not self._busy() and not self._open, timeout)

    def close(self) -> None:
        """Stop, close the device and end the thread (a later ring() starts a new one)."""
        self.stop()
        with self._lock:
            thread, self._thread = self._thread, None
            self._quit.set()
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=STOP_TIMEOUT_S)

    def status(self) -> dict[str, Any]:
        """ringing, ringtone, cadence_ms, volume, device, open, last_error (text or None)."""
        with self._lock:
            want = self._want
            return {"ringing": want is not None,
                    "ringtone": want[0] if want else None,
                    "cadence_ms": list(want[1]) if want else None,
                    "volume": self._volume,
                    "device": self.path.playback_device,
                    "open": self._open,
                    "last_error": str(self.last_error) if self.last_error else None}

    # -- the ringer thread ---------------------------------------------------------------------
    def _busy(self) -> bool:
        return self._want is not None or bool(self._shots)

    def _wake_thread(self) -> None:
        """Under the lock: make sure the thread runs and looks at what there is to play."""
        if self._thread is None:
            self._quit = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._quit,),
                                            name="ringer", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self, quit_: threading.Event) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                if quit_.is_set():
                    return
                self._wake.clear()
                if not self._busy():
                    continue
                self._open, self._drop = True, False
            self._session()

    def _session(self) -> None:
        """Open the device, play until nothing is left (or stop), close it."""
        error: AudioDeviceError | None = None
        failed = False
        try:
            self.path.open()
            self._play()
        except AudioDeviceError as exc:
            error, failed = exc, True
        except Exception:  # a bug: do not let it take the thread down, nor retry it forever
            log.exception("ringer: playing failed")
            failed = True
        if failed or self._drop:
            self._drop_pending()
        self.path.close()  # pyalsaaudio drains first: a one-shot plays to its end
        with self._lock:
            self._open = False
            if failed:
                self.last_error = error or self.last_error
                self._want = None
                self._shots.clear()
            self._changed.notify_all()
        if error is not None:
            self._report(error)

    def _play(self) -> None:
        period_s = self.path.period_frames / self.path.rate
        deadline = time.monotonic()
        while True:
            tone = self._rendered()
            with self._lock:
                if not self._busy() or self._drop:
                    return
                self._halt.clear()
                data = self._next_period(tone)
            self._write(data, period_s)
            if self.pace:
                deadline = max(deadline + period_s, time.monotonic() - 0.1)
                self._halt.wait(max(0.0, deadline - time.monotonic()))

    def _rendered(self) -> tuple[Key, array] | None:
        """The ringtone asked for, rendered at the path's rate (outside the lock: it is slow)."""
        with self._lock:
            want, tone = self._want, self._tone
        if want is None or (tone is not None and tone[0] == want):
            return tone
        tone = (want, array("h", synth.ringtone(want[0], self.path.rate, want[1])))
        with self._lock:
            self._tone = tone
        return tone

    def _next_period(self, tone: tuple[Key, array] | None) -> bytes:
        """Under the lock: one period of ringtone + one-shots, at the volume, every channel."""
        n = self.path.period_frames
        mix: list[int] | array
        if tone is not None and tone[0] == self._want:
            mix, self._tone_pos = _loop_slice(tone[1], self._tone_pos, n)
        else:
            mix = array("h", bytes(n * SAMPLE_BYTES))
        if self._shots:
            mix = list(mix)
            for shot in self._shots:
                piece = shot.samples[shot.pos:shot.pos + n]
                shot.pos += len(piece)
                for i, s in enumerate(piece):
                    mix[i] += s
            self._shots = [s for s in self._shots if s.pos < len(s.samples)]
        g = gain(self._volume)
        if g != 1.0 or isinstance(mix, list):
            mix = array("h", (max(-32768, min(32767, round(x * g))) for x in mix))
        return from_mono(mix, self.path.channels)

    def _write(self, data: bytes, period_s: float) -> None:
        frame = self.path.channels * SAMPLE_BYTES
        while data and not self._drop:
            frames = self.path.write(data)  # 0: a non-blocking buffer full, or an xrun
            data = data[frames * frame:]
            if frames == 0 and self.path.nonblock:
                self._halt.wait(period_s / 4)

    def _drop_pending(self) -> None:
        """Throw away what ALSA still holds (up to `periods` periods more of ringtone)."""
        self.path.drop()

    def _report(self, error: AudioDeviceError) -> None:
        log.error("ringer stopped: %s", error)
        if self.on_error is None:
            return
        try:
            self.on_error(error)
        except Exception:
            log.exception("ringer: on_error failed")


def _clamp(volume: int) -> int:
    return max(0, min(VOLUME_MAX, int(volume)))


def _loop_slice(samples: array, pos: int, n: int) -> tuple[array, int]:
    """`n` samples of `samples` played as a loop from `pos`, and the position after them."""
    out = array("h")
    while len(out) < n:
        piece = samples[pos:pos + n - len(out)]
        out.extend(piece)
        pos = (pos + len(piece)) % len(samples)
    return out, pos
