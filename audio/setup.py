"""Assemble a terminal's audio from a board profile's `[audio]` table (docs/audio.md).

The runtime calls `build_audio()`; what it gets back has `ends`, which the SIP engine pulls
and pushes frames through (the ALSA bridge, with the echo cancelled while the speaker carries
the call), and a `route()` the controller calls when the handset, speaker or headset should
carry the call. Only this package touches ALSA.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from audio.bridge import AlsaBridge
from audio.echo import EchoCancellingEnds
from audio.pcm import PathConfig, PcmPath
from audio.routing import AudioRouter, AudioRouting, JsonVolumeStore, Path

log = logging.getLogger("luren.audio")
PATH_KEYS = ("capture", "playback", "rate", "channels", "period_frames", "periods")
ROUTES = {"handset": Path.HANDSET, "speaker": Path.SPEAKER, "headset": Path.HEADSET,
          None: Path.NONE}


class AudioSpecError(ValueError):
    """A profile's `[audio]` table is wrong; the message names the key."""


@dataclass(frozen=True)
class AudioSpec:
    """A validated `[audio]` table."""

    paths: Mapping[Path, PathConfig]
    pace: bool = False  # the devices do not keep time (ALSA null/file plugins in tests)
    jack: Mapping[str, Any] = field(default_factory=dict)


def parse_audio(table: Mapping[str, Any]) -> AudioSpec:
    """Check an `[audio]` table: paths handset/headset/speaker/ringer, `pace`, `jack`."""
    unknown = set(table) - {"paths", "pace", "jack", "media_rate"}
    if unknown:
        raise AudioSpecError(f"audio: unknown key {sorted(unknown)[0]!r}")
    raw_paths = table.get("paths", {})
    if not isinstance(raw_paths, Mapping) or not raw_paths:
        raise AudioSpecError("audio.paths: give at least one path (handset, headset, speaker)")
    paths = {_path_name(name): _path_config(name, raw) for name, raw in raw_paths.items()}
    if not isinstance(table.get("pace", False), bool):
        raise AudioSpecError("audio.pace: must be true or false")
    return AudioSpec(paths, bool(table.get("pace", False)), dict(table.get("jack", {})))


def _path_name(name: str) -> Path:
    try:
        return Path(name)
    except ValueError:
        if name == "ringer":
            raise AudioSpecError("audio.paths.ringer: the ringer path is not used yet") from None
        raise AudioSpecError(f"audio.paths.{name}: not a path (handset, headset, speaker)"
                             ) from None


def _path_config(name: str, raw: Any) -> PathConfig:
    where = f"audio.paths.{name}"
    if not isinstance(raw, Mapping):
        raise AudioSpecError(f"{where}: must be a table")
    unknown = set(raw) - set(PATH_KEYS)
    if unknown:
        raise AudioSpecError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    for key in ("capture", "playback"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise AudioSpecError(f"{where}.{key}: an ALSA device name is required")
    numbers = {k: raw.get(k, d) for k, d in (("rate", 16000), ("channels", 1),
                                              ("period_frames", 320), ("periods", 4))}
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise AudioSpecError(f"{where}.{key}: must be a positive whole number")
    return PathConfig(name, raw["capture"], raw["playback"], **numbers)


class AudioSystem:
    """The bridge, the router and the devices of one terminal."""

    def __init__(self, spec: AudioSpec, data_dir: FsPath,
                 dispatch: Callable[[Callable[[], None]], None]) -> None:
        pcms = {path: PcmPath.from_config(config) for path, config in spec.paths.items()}
        self.bridge = AlsaBridge(None, pace=spec.pace)
        self.router = AudioRouter(JsonVolumeStore(data_dir / "audio" / "volumes.json"),
                                  headset_detection=False)
        self.routing = AudioRouting(self.router, self.bridge, pcms, dispatch=dispatch)
        # what the SIP media pulls and pushes: the bridge, with echo cancelled hands-free
        self.ends = EchoCancellingEnds(self.bridge)
        self.router.add_listener(self._echo_on_speaker)

    def _echo_on_speaker(self, old: Path, new: Path) -> None:
        self.ends.enabled = new is Path.SPEAKER

    def start(self) -> None:
        self.bridge.start()

    def stop(self) -> None:
        self.bridge.stop()

    def route(self, where: str | None) -> None:
        """Carry the call on `where` ("handset", "speaker", "headset") or nowhere (None)."""
        self.router.select(ROUTES[where])

    def volume_step(self, up: bool) -> int:
        """The volume keys: one step on the path now carrying the call (kept across restarts)."""
        return self.router.volume_up() if up else self.router.volume_down()

    def status(self) -> dict[str, Any]:
        stats = self.bridge.stats()
        return {"path": self.router.path.value, "echo_cancelling": self.ends.enabled,
                "buffered_capture_ms": stats.capture_ms,
                "buffered_playback_ms": stats.playback_ms, "device_errors": stats.device_errors,
                "underruns": stats.capture_underruns + stats.playback_underruns}


def build_audio(table: Mapping[str, Any] | None, data_dir: FsPath,
                dispatch: Callable[[Callable[[], None]], None]) -> AudioSystem | None:
    """The audio a profile describes, or None for a board without sound hardware (sim)."""
    if not table:
        return None
    return AudioSystem(parse_audio(table), data_dir, dispatch)
