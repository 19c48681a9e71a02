"""Where the audio goes: handset, headset, speaker (hands-free) or nowhere, decided from the
hookswitch, the speaker and headset keys, headset detection and device failures.

`AudioRouter` is pure logic (no ALSA, no threads); `AudioRouting` ties it to an `AlsaBridge`.
The rules follow commercial desk phones (Yealink, Snom); the table, top row first wins:

| event                  | now                          | goes to                                 |
|------------------------|------------------------------|-----------------------------------------|
| handset lifted         | anything                     | handset                                 |
| handset put down       | handset                      | none (the controller ends the call)     |
| handset put down       | speaker / headset            | unchanged (handed over before)          |
| speaker key            | speaker, handset lifted      | handset                                 |
| speaker key            | speaker                      | none (ends the call / the dial tone)    |
| speaker key            | anything else                | speaker (then putting the handset down  |
|                        |                              | keeps hands-free)                       |
| headset key            | headset, in a call           | handset if lifted, else speaker         |
| headset key            | headset, idle                | none                                    |
| headset key            | anything else                | headset, unless detection says unplugged|
| headset plugged        | audio on (not none)          | headset                                 |
| headset plugged        | none                         | none; the next answer goes to headset   |
| headset unplugged      | headset                      | handset if lifted, else speaker in a    |
|                        |                              | call, else none                         |
| answer without lifting | none                         | headset if plugged, else speaker        |
| call ended             | speaker / headset            | none (handset: stays until put down)    |
| device failed          | that path                    | handset if lifted, speaker, headset if  |
|                        |                              | plugged, none: the first that works     |

A path whose device failed is skipped wherever it would be chosen, until `device_restored`.
"None" in the middle of a call tells the controller the user hung up; the router never ends a
call itself.

Volume: 0..15 per path, kept in an injected `VolumeStore` (`JsonVolumeStore` writes atomically).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path as FsPath
from typing import Protocol

from audio.bridge import AlsaBridge
from audio.pcm import AudioDeviceError, PcmPath
from firmware.storage import atomic_write_json

log = logging.getLogger("luren.audio.routing")

VOLUME_MAX = 15
VOLUME_DEFAULT = 8
VOLUME_STEP_DB = 2.0  # of a call's sound: the default step plays at 0 dB, 0 is silence


def call_gain(volume: int) -> float:
    """Linear playback gain of a call at `volume`: 8 (default) is 0 dB, each step 2 dB, 0 is
    silence; 15 is +14 dB (quiet far ends; loud ones clip)."""
    if volume <= 0:
        return 0.0
    return 10 ** ((min(volume, VOLUME_MAX) - VOLUME_DEFAULT) * VOLUME_STEP_DB / 20)


class Path(StrEnum):
    NONE = "none"
    HANDSET = "handset"
    HEADSET = "headset"
    SPEAKER = "speaker"


ChangeListener = Callable[[Path, Path], None]  # (old, new)
VolumeListener = Callable[[Path, int], None]
Dispatch = Callable[[Callable[[], None]], None]


def call_now(fn: Callable[[], None]) -> None:
    fn()


class VolumeStore(Protocol):
    def load(self) -> dict[str, int]: ...
    def save(self, volumes: dict[str, int]) -> None: ...


class MemoryVolumeStore:
    """Volumes in memory (tests, a board without storage)."""

    def __init__(self, volumes: dict[str, int] | None = None) -> None:
        self.volumes = dict(volumes or {})
        self.saves = 0

    def load(self) -> dict[str, int]:
        return dict(self.volumes)

    def save(self, volumes: dict[str, int]) -> None:
        self.volumes = dict(volumes)
        self.saves += 1


class JsonVolumeStore:
    """Volumes in a JSON file, written atomically; a missing or broken file means defaults."""

    def __init__(self, path: FsPath) -> None:
        self.path = path

    def load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int)}

    def save(self, volumes: dict[str, int]) -> None:
        atomic_write_json(self.path, volumes)


class AudioRouter:
    """The current path from events; see the module's table. Listeners hear every change."""

    def __init__(self, store: VolumeStore | None = None, *, headset_detection: bool = True) -> None:
        self.path = Path.NONE
        self.offhook = False
        self.in_call = False
        self.headset_detection = headset_detection
        self.headset_plugged = not headset_detection  # no detection: assume a headset is there
        self.failed: set[Path] = set()
        self.store = store or MemoryVolumeStore()
        self._volumes = _clean_volumes(self.store.load())
        self._listeners: list[ChangeListener] = []
        self._volume_listeners: list[VolumeListener] = []

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def add_volume_listener(self, listener: VolumeListener) -> None:
        self._volume_listeners.append(listener)

    # -- events ------------------------------------------------------------------------------
    def hook(self, offhook: bool) -> Path:
        """The handset was lifted (True) or put down (False)."""
        self.offhook = offhook
        if offhook:
            return self._go(Path.HANDSET)
        if self.path is Path.HANDSET:
            return self._go(Path.NONE)
        return self.path

    def speaker_key(self) -> Path:
        if self.path is Path.SPEAKER:
            return self._go(Path.HANDSET if self.offhook else Path.NONE)
        return self._go(Path.SPEAKER)

    def headset_key(self) -> Path:
        if self.path is Path.HEADSET:
            return self._go(self._away_from_headset())
        if self.headset_detection and not self.headset_plugged:
            log.info("headset key: no headset plugged in")
            return self.path
        return self._go(Path.HEADSET)

    def headset(self, plugged: bool) -> Path:
        """Headset detection saw the headset plugged in (True) or pulled out (False)."""
        self.headset_plugged = plugged
        if plugged and self.path is not Path.NONE:
            return self._go(Path.HEADSET)
        if not plugged and self.path is Path.HEADSET:
            return self._go(self._away_from_headset())
        return self.path

    def answer(self) -> Path:
        """A call was answered (or placed) without lifting the handset."""
        self.in_call = True
        if self.path is Path.NONE:
            return self._go(Path.HEADSET if self._headset_usable() else Path.SPEAKER)
        return self.path

    def call_started(self) -> None:
        """A call has audio now (answered by lifting the handset, or dialled)."""
        self.in_call = True

    def call_ended(self) -> Path:
        self.in_call = False
        if self.path in (Path.SPEAKER, Path.HEADSET):
            return self._go(Path.NONE)
        return self.path

    def select(self, path: Path) -> Path:
        """Go to `path` as the controller decided (handset lifted, speaker on, all closed);
        a plugged headset takes the place of the speaker, and a failed path falls back."""
        self.offhook = path is Path.HANDSET or (self.offhook and path is not Path.NONE)
        if path is Path.SPEAKER and self._headset_usable() and self.headset_detection:
            path = Path.HEADSET
        return self._go(path)

    def device_failed(self, path: Path) -> Path:
        """The devices of `path` failed (cannot open, unplugged USB headset): move elsewhere."""
        self.failed.add(path)
        if self.path is path:
            return self._go(self._fallback())
        return self.path

    def device_restored(self, path: Path) -> None:
        self.failed.discard(path)

    # -- volume ------------------------------------------------------------------------------
    def volume(self, path: Path | None = None) -> int:
        return self._volumes.get((path or self.path).value, VOLUME_DEFAULT)

    def set_volume(self, level: int, path: Path | None = None) -> int:
        """Set (clamped to 0..15) and persist the volume of `path` (default: the current one)."""
        path = path or self.path
        if path is Path.NONE:
            return VOLUME_DEFAULT
        level = max(0, min(VOLUME_MAX, level))
        if self._volumes.get(path.value) != level:
            self._volumes[path.value] = level
            self.store.save(dict(self._volumes))
        for listener in list(self._volume_listeners):
            listener(path, level)
        return level

    def volume_up(self) -> int:
        return self.set_volume(self.volume() + 1)

    def volume_down(self) -> int:
        return self.set_volume(self.volume() - 1)

    # -- inside ------------------------------------------------------------------------------
    def _headset_usable(self) -> bool:
        return self.headset_plugged and Path.HEADSET not in self.failed

    def _away_from_headset(self) -> Path:
        if self.offhook:
            return Path.HANDSET
        return Path.SPEAKER if self.in_call else Path.NONE

    def _fallback(self) -> Path:
        order = [Path.HANDSET] if self.offhook else []
        order += [Path.SPEAKER] + ([Path.HEADSET] if self.headset_plugged else [])
        return next((p for p in order if p not in self.failed), Path.NONE)

    def _go(self, path: Path) -> Path:
        if path in self.failed:
            path = self._fallback()
        old, self.path = self.path, path
        if old is not path:
            log.info("audio path %s -> %s", old, path)
            for listener in list(self._listeners):
                listener(old, path)
        return path


def _clean_volumes(raw: Mapping[str, int]) -> dict[str, int]:
    names = {p.value for p in Path if p is not Path.NONE}
    return {k: max(0, min(VOLUME_MAX, v)) for k, v in raw.items() if k in names}


class AudioRouting:
    """Carries the router's decisions to the bridge, and device failures back to the router.

    `paths` maps each path to its `PcmPath`; a path without one counts as failed. The bridge
    reports failures on its card thread: `dispatch` hands them to the router's loop (the
    runtime passes `loop.call_soon_threadsafe`; tests call at once).
    """

    def __init__(self, router: AudioRouter, bridge: AlsaBridge,
                 paths: Mapping[Path, PcmPath], dispatch: Dispatch = call_now,
                 on_failure: Callable[[Path, AudioDeviceError], None] | None = None) -> None:
        self.router = router
        self.bridge = bridge
        self.paths = dict(paths)
        self.dispatch = dispatch
        self.on_failure = on_failure  # told (on the router's loop) after the router moved on
        self.errors: list[AudioDeviceError] = []
        router.add_listener(self._changed)
        bridge.on_error = self._device_error

    def _changed(self, old: Path, new: Path) -> None:
        self.bridge.switch(self.paths.get(new))

    def _device_error(self, pcm: PcmPath, error: AudioDeviceError) -> None:
        self.errors.append(error)
        path = next((p for p, v in self.paths.items() if v is pcm), None)
        if path is not None:
            self.dispatch(lambda: self._failed(path, error))

    def _failed(self, path: Path, error: AudioDeviceError) -> None:
        self.router.device_failed(path)
        if self.on_failure is not None:
            self.on_failure(path, error)
