"""PCM paths: one capture and one playback ALSA device per place audio goes (handset, headset,
speaker, ringer), opened through pyalsaaudio.

A `PcmPath` is blocking by default: on a real card, `read()` waits for the card to deliver one
period and so paces whoever calls it on the sound card's clock. The `null` and `file` plugins are
not paced in real time; whoever drives a path over them paces itself (the bridge's `pace=True`).

Every failure (open, read, write) raises `AudioDeviceError`, which names the path, the ALSA
device and the reason: "headset: cannot open capture device 'hw:CARD=Headset' (No such device)".
pyalsaaudio is imported when a path opens, never at import time.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

SAMPLE_BYTES = 2  # S16_LE


class AudioDeviceError(RuntimeError):
    """An ALSA device of a path cannot be used; the message names the path, device and reason."""

    def __init__(self, path: str, device: str, action: str, reason: str) -> None:
        super().__init__(f"{path}: cannot {action} device '{device}' ({reason})")
        self.path = path
        self.device = device
        self.action = action
        self.reason = reason


class AlsaPcm(Protocol):
    """What we use of `alsaaudio.PCM`."""

    def read(self) -> tuple[int, bytes]: ...
    def write(self, data: bytes) -> int: ...
    def close(self) -> None: ...


PcmFactory = Callable[..., AlsaPcm]


@dataclass(frozen=True)
class PathConfig:
    """One path as a board profile describes it (see docs/audio.md, `[audio.paths.NAME]`)."""

    name: str
    capture_device: str | None
    playback_device: str | None
    rate: int = 16000
    channels: int = 1
    period_frames: int = 320
    periods: int = 4


def _alsa_factory(**kwargs: Any) -> AlsaPcm:
    import alsaaudio

    return alsaaudio.PCM(**kwargs)


def _alsa_error_types() -> tuple[type[BaseException], ...]:
    try:
        import alsaaudio
    except ImportError:  # pragma: no cover (pyalsaaudio is a dependency)
        return (OSError,)
    return (alsaaudio.ALSAAudioError, OSError)


class PcmPath:
    """The capture and playback devices of one path; either may be None (a ringer plays only).

    `read()` returns one period of S16_LE interleaved frames (b"" when a non-blocking device has
    nothing yet); `write(pcm)` writes whole periods and returns the frames ALSA took.
    """

    def __init__(self, name: str, capture_device: str | None, playback_device: str | None,
                 rate: int = 16000, channels: int = 1, period_frames: int = 320, *,
                 periods: int = 4, nonblock: bool = False,
                 pcm_factory: PcmFactory = _alsa_factory) -> None:
        self.name = name
        self.capture_device = capture_device
        self.playback_device = playback_device
        self.rate = rate
        self.channels = channels
        self.period_frames = period_frames
        self.periods = periods
        self.nonblock = nonblock
        self._factory = pcm_factory
        self._capture: AlsaPcm | None = None
        self._playback: AlsaPcm | None = None
        self.xruns = 0

    @classmethod
    def from_config(cls, config: PathConfig, **kwargs: Any) -> PcmPath:
        return cls(config.name, config.capture_device, config.playback_device, config.rate,
                   config.channels, config.period_frames, periods=config.periods, **kwargs)

    @property
    def period_bytes(self) -> int:
        return self.period_frames * self.channels * SAMPLE_BYTES

    @property
    def is_open(self) -> bool:
        return self._capture is not None or self._playback is not None

    def open(self) -> PcmPath:
        """Open both devices; on failure nothing stays open and AudioDeviceError says why."""
        try:
            if self.capture_device is not None:
                self._capture = self._open(self.capture_device, capture=True)
            if self.playback_device is not None:
                self._playback = self._open(self.playback_device, capture=False)
        except AudioDeviceError:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Close both devices (a file-plugin output gets its WAV header written here)."""
        for pcm in (self._capture, self._playback):
            if pcm is not None:
                try:
                    pcm.close()
                except _alsa_error_types():
                    pass  # a device already gone cannot be closed any more cleanly
        self._capture = self._playback = None

    def read(self) -> bytes:
        """One period from the capture device; b"" after an overrun or with nothing ready."""
        if self._capture is None:
            raise AudioDeviceError(self.name, str(self.capture_device), "read from", "not open")
        try:
            size, data = self._capture.read()
        except _alsa_error_types() as exc:
            raise self._error(self.capture_device, "read from", exc) from exc
        if size < 0:
            self._xrun(size, self.capture_device, "read from")
            return b""
        return data

    def write(self, pcm: bytes) -> int:
        """Write frames to the playback device; the number of frames taken (0: buffer full)."""
        if self._playback is None:
            raise AudioDeviceError(self.name, str(self.playback_device), "write to", "not open")
        try:
            size = self._playback.write(pcm)
        except _alsa_error_types() as exc:
            raise self._error(self.playback_device, "write to", exc) from exc
        if size < 0:
            self._xrun(size, self.playback_device, "write to")
            return 0
        return size

    def drop(self) -> None:
        """Throw away what the playback device still holds, so that closing does not play it
        out (pyalsaaudio's close() drains a playback PCM first)."""
        pcm = self._playback
        drop = getattr(pcm, "drop", None)
        if drop is not None:
            try:
                drop()
            except _alsa_error_types():
                pass  # a device already gone holds nothing to play

    @property
    def has_capture(self) -> bool:
        return self.capture_device is not None

    @property
    def has_playback(self) -> bool:
        return self.playback_device is not None

    def __repr__(self) -> str:
        return (f"PcmPath({self.name!r}, {self.capture_device!r}, {self.playback_device!r}, "
                f"{self.rate}, {self.channels}, {self.period_frames})")

    # -- inside --------------------------------------------------------------------------------
    def _open(self, device: str, *, capture: bool) -> AlsaPcm:
        import alsaaudio

        kind = alsaaudio.PCM_CAPTURE if capture else alsaaudio.PCM_PLAYBACK
        mode = alsaaudio.PCM_NONBLOCK if self.nonblock else alsaaudio.PCM_NORMAL
        try:
            return self._factory(type=kind, mode=mode, device=device, rate=self.rate,
                                 channels=self.channels, format=alsaaudio.PCM_FORMAT_S16_LE,
                                 periodsize=self.period_frames, periods=self.periods)
        except _alsa_error_types() as exc:
            what = "capture" if capture else "playback"
            raise self._error(device, f"open {what}", exc) from exc

    def _error(self, device: str | None, action: str, exc: BaseException) -> AudioDeviceError:
        reason = str(exc) or type(exc).__name__
        return AudioDeviceError(self.name, str(device), action, reason)

    def _xrun(self, size: int, device: str | None, action: str) -> None:
        """A negative size: -EPIPE is an xrun (pyalsaaudio re-prepared); anything else is fatal."""
        if size == -errno.EPIPE:
            self.xruns += 1
            return
        reason = errno.errorcode.get(-size, str(size))
        raise AudioDeviceError(self.name, str(device), action, reason)
