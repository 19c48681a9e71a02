"""A DECT base's handset audio: the radio module's voice channels as ALSA paths.

The module carries up to four calls at once, each on a voice channel it exposes to the base as
an ALSA capture + playback pair (`[audio.channels.N]` in the board profile, docs/dect.md). The
base gives a handset a channel when its call starts (the AUDIO message) and takes it back when
the call ends; here every handset terminal has a bridge of its own (`ends[terminal]`, what the
SIP engine pulls and pushes that terminal's frames through), and `connect(terminal, channel)`
moves that bridge onto the channel's devices, or off them. A handset without a channel hears
silence and sends silence; a channel whose device fails is reported and the call goes on,
silent, as on a desk phone whose headset is pulled out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from audio.bridge import AlsaBridge
from audio.pcm import AudioDeviceError, PathConfig, PcmPath
from audio.setup import parse_audio

log = logging.getLogger("luren.audio")
FailureReport = Callable[[int, str], None]  # (channel, message), on the controller's loop


class VoiceChannels:
    def __init__(self, channels: Mapping[int, PathConfig], terminals: int, *, pace: bool = False,
                 dispatch: Callable[[Callable[[], None]], None] = lambda fn: fn()) -> None:
        self._configs = dict(channels)
        # one PcmPath per handset and channel: each bridge opens and closes its own on its own
        # thread, so a channel let go by one handset and given to another shares no handles
        self._pcms = [{n: PcmPath.from_config(config) for n, config in channels.items()}
                      for _ in range(terminals)]
        self._lock = threading.Lock()  # _connected: the loop's connect(), the card threads
        self._dispatch = dispatch
        self.on_failure: FailureReport | None = None
        self.bridges = [AlsaBridge(None, pace=pace, on_error=self._error_on(terminal))
                        for terminal in range(terminals)]
        self._connected: dict[int, int] = {}  # terminal -> channel
        self.failures = 0

    @property
    def ends(self) -> Sequence[AlsaBridge]:
        """What each terminal's SIP media pulls and pushes (index: terminal)."""
        return self.bridges

    @property
    def channels(self) -> list[int]:
        return sorted(self._configs)

    def connect(self, terminal: int, channel: int | None) -> None:
        """Carry `terminal`'s audio on voice `channel` (None: on none)."""
        if not 0 <= terminal < len(self.bridges):
            return
        if channel is not None and channel not in self._configs:
            log.warning("DECT voice channel %d has no ALSA devices in the board profile; "
                        "handset %d is silent", channel, terminal + 1)
            channel = None
        with self._lock:
            if self._connected.get(terminal) == channel:
                return
            if channel is None:
                self._connected.pop(terminal, None)
            else:
                self._connected[terminal] = channel
        self.bridges[terminal].switch(None if channel is None else
                                      self._pcms[terminal][channel])

    def connected(self, terminal: int) -> int | None:
        with self._lock:
            return self._connected.get(terminal)

    def start(self) -> None:
        for bridge in self.bridges:
            bridge.start()

    def stop(self) -> None:
        for bridge in self.bridges:
            bridge.stop()

    def status(self) -> dict[str, Any]:
        with self._lock:
            connected = {str(t + 1): c for t, c in sorted(self._connected.items())}
        return {"channels": self.channels, "connected": connected,
                "device_errors": self.failures}

    def _error_on(self, terminal: int) -> Callable[[PcmPath, AudioDeviceError], None]:
        return lambda path, error: self._error(terminal, path, error)

    def _error(self, terminal: int, path: PcmPath, error: AudioDeviceError) -> None:
        """A channel's device failed (on the card thread): say so; the call goes on, silent,
        and the next call on that channel opens it again."""
        self.failures += 1
        channel = next((n for n, pcm in self._pcms[terminal].items() if pcm is path), -1)
        with self._lock:
            if self._connected.get(terminal) == channel:
                del self._connected[terminal]
        log.error("DECT voice channel %d (handset %d): %s", channel, terminal + 1, error)
        if self.on_failure is not None:
            report = self.on_failure
            self._dispatch(lambda: report(channel, str(error)))


def build_voice_channels(table: Mapping[str, Any] | None, terminals: int,
                         dispatch: Callable[[Callable[[], None]], None]
                         ) -> VoiceChannels | None:
    """The voice channels a DECT base's profile names, or None when it names none."""
    if not table:
        return None
    spec = parse_audio(table)
    if not spec.channels:
        return None
    return VoiceChannels(spec.channels, terminals, pace=spec.pace, dispatch=dispatch)
