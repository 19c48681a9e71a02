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

from audio import synth
from audio.bridge import AlsaBridge
from audio.echo import EchoCancellingEnds
from audio.jack import HeadsetJack, SimJack, jack_from_profile
from audio.pcm import AudioDeviceError, PathConfig, PcmPath
from audio.ringer import MEDIA_RATE, Ringer
from audio.routing import (
    VOLUME_DEFAULT,
    AudioRouter,
    AudioRouting,
    JsonVolumeStore,
    Path,
    call_gain,
)
from board.gpio.base import GpioBackend

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
    ringer: PathConfig | None = None  # playback only
    channels: Mapping[int, PathConfig] = field(default_factory=dict)  # a DECT base's voice


VOICE_CHANNELS = 4  # a DECT radio module's voice channels, 0..3 (docs/dect.md)


def parse_audio(table: Mapping[str, Any]) -> AudioSpec:
    """Check an `[audio]` table: paths handset/headset/speaker/ringer, `pace`, `jack`; or a
    DECT base's voice `channels` (0..3), each an ALSA path like the others."""
    unknown = set(table) - {"paths", "pace", "jack", "media_rate", "channels"}
    if unknown:
        raise AudioSpecError(f"audio: unknown key {sorted(unknown)[0]!r}")
    channels = _channels(table.get("channels", {}))
    raw_paths = dict(table.get("paths", {})) if isinstance(table.get("paths"), Mapping) else {}
    raw_ringer = raw_paths.pop("ringer", None)
    if not raw_paths and not channels:
        raise AudioSpecError("audio.paths: give at least one path (handset, headset, speaker)")
    paths = {_path_name(name): _path_config(name, raw) for name, raw in raw_paths.items()}
    ringer = None if raw_ringer is None else _path_config("ringer", raw_ringer, capture=False)
    if ringer is not None and ringer.rate not in synth.RATES:
        raise AudioSpecError(f"audio.paths.ringer.rate: one of {', '.join(map(str, synth.RATES))}")
    if not isinstance(table.get("pace", False), bool):
        raise AudioSpecError("audio.pace: must be true or false")
    return AudioSpec(paths, bool(table.get("pace", False)), _jack(table.get("jack", {})),
                     ringer, channels)


def _channels(raw: Any) -> dict[int, PathConfig]:
    """`[audio.channels.N]`: the ALSA capture and playback of the radio's voice channel N."""
    if not isinstance(raw, Mapping):
        raise AudioSpecError("audio.channels: must be a table of channels 0..3")
    out = {}
    for key, path in raw.items():
        if not str(key).isdigit() or not 0 <= int(key) < VOICE_CHANNELS:
            raise AudioSpecError(f"audio.channels.{key}: a voice channel is 0..3")
        out[int(key)] = _path_config(f"channel{int(key)}", path, where=f"audio.channels.{key}")
    return out


JACK_KEYS = {"none": set(), "sim": set(), "gpio": {"pin", "plugged"},
             "evdev": {"device", "switch"}, "alsa": {"card", "control"}}


def _jack(raw: Any) -> dict[str, Any]:
    """Check `[audio.jack]`: a kind and the keys that kind takes (docs/audio.md)."""
    if not isinstance(raw, Mapping):
        raise AudioSpecError("audio.jack: must be a table")
    kind = raw.get("kind", "none")
    if kind not in JACK_KEYS:
        raise AudioSpecError(f"audio.jack.kind: {kind!r} is not one of "
                             f"{', '.join(sorted(JACK_KEYS))}")
    unknown = set(raw) - {"kind"} - JACK_KEYS[kind]
    if unknown:
        raise AudioSpecError(f"audio.jack.{sorted(unknown)[0]}: not a key of a {kind} jack")
    if kind == "gpio" and (isinstance(raw.get("pin"), bool) or not isinstance(raw.get("pin"),
                                                                               int)):
        raise AudioSpecError("audio.jack.pin: the GPIO number of the jack switch is required")
    if kind == "gpio" and raw.get("plugged", "low") not in ("low", "high"):
        raise AudioSpecError('audio.jack.plugged: "low" or "high"')
    if kind == "evdev" and not isinstance(raw.get("device"), str):
        raise AudioSpecError("audio.jack.device: the input device path is required")
    if kind == "evdev" and raw.get("switch", "headphone") not in ("headphone", "microphone"):
        raise AudioSpecError('audio.jack.switch: "headphone" or "microphone"')
    return dict(raw)


def _path_name(name: str) -> Path:
    try:
        return Path(name)
    except ValueError:
        raise AudioSpecError(f"audio.paths.{name}: not a path (handset, headset, speaker)"
                             ) from None


def _path_config(name: str, raw: Any, *, capture: bool = True, where: str = "") -> PathConfig:
    where = where or f"audio.paths.{name}"
    if not isinstance(raw, Mapping):
        raise AudioSpecError(f"{where}: must be a table")
    unknown = set(raw) - (set(PATH_KEYS) if capture else set(PATH_KEYS) - {"capture"})
    if unknown:
        raise AudioSpecError(f"{where}: unknown key {sorted(unknown)[0]!r}"
                             + ("" if capture else " (the ringer only plays)"))
    for key in ("capture", "playback") if capture else ("playback",):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise AudioSpecError(f"{where}.{key}: an ALSA device name is required")
    numbers = {k: raw.get(k, d) for k, d in (("rate", 16000), ("channels", 1),
                                              ("period_frames", 320), ("periods", 4))}
    for key, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise AudioSpecError(f"{where}.{key}: must be a positive whole number")
    return PathConfig(name, raw.get("capture"), raw["playback"], **numbers)


class AudioSystem:
    """The bridge, the router, the devices and the headset detection of one terminal.

    The controller decides the path (`route()`); this reports back through two callbacks it
    sets, both called on the controller's loop: `on_headset(plugged)` from headset detection
    and `on_failure(path, message)` when a path's device fails (the sound has already moved on).
    """

    def __init__(self, spec: AudioSpec, data_dir: FsPath,
                 dispatch: Callable[[Callable[[], None]], None], *,
                 gpio: GpioBackend | None = None, clock: Any = None) -> None:
        pcms = {path: PcmPath.from_config(config) for path, config in spec.paths.items()}
        self.bridge = AlsaBridge(None, pace=spec.pace)
        self.router = AudioRouter(JsonVolumeStore(data_dir / "audio" / "volumes.json"),
                                  headset_detection=False)
        self.routing = AudioRouting(self.router, self.bridge, pcms, dispatch=dispatch,
                                    on_failure=self._failed)
        # what the SIP media pulls and pushes: the bridge, with echo cancelled hands-free
        self.ends = EchoCancellingEnds(self.bridge)
        self.router.add_listener(self._echo_on_speaker)
        self.router.add_listener(lambda old, new: self._apply_volume())
        self.router.add_volume_listener(lambda path, level: self._apply_volume())
        kind = spec.jack.get("kind", "none")
        self.jack: HeadsetJack | None = None if kind == "none" else jack_from_profile(
            dict(spec.jack), gpio=gpio, clock=clock, dispatch=dispatch)
        self.detection = kind
        self.on_headset: Callable[[bool], None] | None = None
        self.on_failure: Callable[[str, str], None] | None = None
        self._ringer_volume = JsonVolumeStore(data_dir / "audio" / "ringer.json")
        self.ringer: Ringer | None = None
        if spec.ringer is not None:
            volume = self._ringer_volume.load().get("ringer", VOLUME_DEFAULT)
            self.ringer = Ringer(spec.ringer, pace=spec.pace, volume=volume,
                                 on_error=lambda error: dispatch(
                                     lambda: self._ringer_failed(error)))

    def _apply_volume(self) -> None:
        self.bridge.playback_gain = call_gain(self.router.volume())

    def _echo_on_speaker(self, old: Path, new: Path) -> None:
        self.ends.enabled = new is Path.SPEAKER

    def _failed(self, path: Path, error: AudioDeviceError) -> None:
        if self.on_failure is not None:
            self.on_failure(path.value, str(error))

    def _ringer_failed(self, error: AudioDeviceError) -> None:
        if self.on_failure is not None:
            self.on_failure("ringer", str(error))

    # -- the ringer ------------------------------------------------------------------------
    def ring(self, ringtone: str, cadence_ms: tuple[int, ...]) -> None:
        """Ring with `ringtone` in the country's cadence (on the ringer path, if any)."""
        if self.ringer is not None:
            self.ringer.ring(ringtone, cadence_ms)

    def stop_ringing(self) -> None:
        """Stop ringing; returns once the ringer's device is closed (a speaker sharing the
        hardware can open it next)."""
        if self.ringer is not None:
            self.ringer.stop()

    def key_sound(self, key: str) -> None:
        """A key press while no path is open: its DTMF pair or a click, on the ringer."""
        if self.ringer is None:
            return
        sound = synth.dtmf_feedback(key, MEDIA_RATE) if key in synth.DTMF_FREQS \
            else synth.key_click(MEDIA_RATE)
        self.ringer.play_once(sound, MEDIA_RATE)

    def ringer_volume_step(self, up: bool) -> int:
        """The volume keys while it rings: the ringer's volume, kept across restarts."""
        if self.ringer is None:
            return VOLUME_DEFAULT
        self.ringer.volume = self.ringer.volume + (1 if up else -1)
        self._ringer_volume.save({"ringer": self.ringer.volume})
        return self.ringer.volume

    def _headset(self, plugged: bool) -> None:
        if plugged:
            self.router.device_restored(Path.HEADSET)  # a headset plugged in again works again
        if self.on_headset is not None:
            self.on_headset(plugged)

    def simulate_headset(self, plugged: bool) -> bool:
        """Move a simulated jack (`jack.kind = "sim"`); False for real headset detection."""
        if not isinstance(self.jack, SimJack):
            return False
        if plugged:
            self.jack.plug()
        else:
            self.jack.unplug()
        return True

    @property
    def headset_plugged(self) -> bool:
        return self.jack is not None and self.jack.plugged

    def start(self) -> None:
        """Start the card thread and headset detection (its state is known afterwards)."""
        self.bridge.start()
        if self.jack is not None:
            self.jack.on_change = self._headset
            try:
                self.jack.start()
            except (OSError, ValueError) as exc:
                log.error("headset detection (%s) cannot start: %s", self.detection, exc)
                self.jack = None

    def stop(self) -> None:
        if self.jack is not None:
            self.jack.close()
        if self.ringer is not None:
            self.ringer.close()
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
                "headset_detection": self.detection if self.jack is not None else "none",
                "headset_plugged": self.headset_plugged,
                "failed_paths": sorted(p.value for p in self.router.failed),
                "volume": self.router.volume(),
                "ringer": self.ringer.status() if self.ringer is not None else None,
                "buffered_capture_ms": stats.capture_ms,
                "buffered_playback_ms": stats.playback_ms, "device_errors": stats.device_errors,
                "underruns": stats.capture_underruns + stats.playback_underruns}


def build_audio(table: Mapping[str, Any] | None, data_dir: FsPath,
                dispatch: Callable[[Callable[[], None]], None], *,
                gpio: GpioBackend | None = None, clock: Any = None) -> AudioSystem | None:
    """The audio a profile describes, or None for a board without sound hardware (sim).
    `gpio` and `clock` serve headset detection on a GPIO pin or by polling ALSA."""
    if not table:
        return None
    spec = parse_audio(table)
    if not spec.paths:  # a DECT base: its sound is the radio's voice channels
        return None
    return AudioSystem(spec, data_dir, dispatch, gpio=gpio, clock=clock)
