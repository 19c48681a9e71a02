"""The audio router's table (audio/routing.py), volume persistence, and the bridge's pure parts."""

from __future__ import annotations

import json
from array import array
from itertools import pairwise
from pathlib import Path as FsPath

import pytest

from audio.bridge import AlsaBridge, DriftControl, LinearResampler, Ring, adjust
from audio.routing import AudioRouter, AudioRouting, JsonVolumeStore, MemoryVolumeStore, Path


def router(**kwargs: bool) -> tuple[AudioRouter, list[tuple[Path, Path]]]:
    r = AudioRouter(MemoryVolumeStore(), **kwargs)
    changes: list[tuple[Path, Path]] = []
    r.add_listener(lambda old, new: changes.append((old, new)))
    return r, changes


def test_lifting_the_handset_always_takes_the_audio_to_the_handset() -> None:
    r, _ = router()
    r.headset(True)
    r.answer()
    assert r.path is Path.HEADSET
    assert r.hook(True) is Path.HANDSET


def test_putting_the_handset_down_releases_the_audio() -> None:
    r, changes = router()
    r.hook(True)
    assert r.hook(False) is Path.NONE
    assert changes == [(Path.NONE, Path.HANDSET), (Path.HANDSET, Path.NONE)]


def test_speaker_key_then_handset_down_stays_hands_free() -> None:
    r, _ = router()
    r.hook(True)
    r.call_started()
    assert r.speaker_key() is Path.SPEAKER
    assert r.hook(False) is Path.SPEAKER


def test_speaker_key_on_speaker_goes_back_to_a_lifted_handset_or_ends() -> None:
    r, _ = router()
    r.hook(True)
    r.speaker_key()
    assert r.speaker_key() is Path.HANDSET
    r.hook(False)
    r.speaker_key()
    assert r.speaker_key() is Path.NONE


def test_headset_key_needs_a_plugged_headset_when_detection_exists() -> None:
    r, changes = router()
    assert r.headset_key() is Path.NONE and changes == []
    r.headset(True)
    assert r.headset_key() is Path.HEADSET


def test_headset_key_without_detection_always_works() -> None:
    r, _ = router(headset_detection=False)
    assert r.headset_key() is Path.HEADSET


def test_headset_key_on_headset_moves_a_call_and_ends_the_dial_tone() -> None:
    r, _ = router()
    r.headset(True)
    r.headset_key()
    assert r.headset_key() is Path.NONE
    r.answer()
    assert r.path is Path.HEADSET
    assert r.headset_key() is Path.SPEAKER


@pytest.mark.parametrize(("offhook", "expected"), [(True, Path.HANDSET), (False, Path.SPEAKER)])
def test_unplugging_the_headset_in_a_call_keeps_the_call(offhook: bool, expected: Path) -> None:
    r, _ = router()
    r.headset(True)
    if offhook:
        r.hook(True)
        r.call_started()
        r.headset_key()
    else:
        r.answer()
    assert r.path is Path.HEADSET
    assert r.headset(False) is expected


def test_plugging_a_headset_in_during_a_call_moves_the_audio() -> None:
    r, _ = router()
    r.answer()
    assert r.path is Path.SPEAKER
    assert r.headset(True) is Path.HEADSET


def test_plugging_a_headset_in_when_idle_only_prepares_the_next_answer() -> None:
    r, changes = router()
    r.headset(True)
    assert changes == []
    assert r.answer() is Path.HEADSET


def test_call_end_releases_speaker_and_headset_but_not_a_lifted_handset() -> None:
    r, _ = router()
    r.answer()
    assert r.call_ended() is Path.NONE
    r.hook(True)
    r.call_started()
    assert r.call_ended() is Path.HANDSET


def test_a_failed_device_falls_back_and_is_skipped_until_restored() -> None:
    r, _ = router()
    r.hook(True)
    assert r.device_failed(Path.HANDSET) is Path.SPEAKER
    r.hook(False)
    assert r.hook(True) is Path.SPEAKER  # the handset is still broken
    r.device_restored(Path.HANDSET)
    assert r.hook(True) is Path.HANDSET


def test_everything_failed_means_no_audio() -> None:
    r, _ = router()
    r.answer()
    r.device_failed(Path.HANDSET)
    assert r.device_failed(Path.SPEAKER) is Path.NONE


def test_volume_per_path_is_clamped_and_persisted(tmp_path: FsPath) -> None:
    store = JsonVolumeStore(tmp_path / "volume.json")
    r = AudioRouter(store)
    heard: list[tuple[Path, int]] = []
    r.add_volume_listener(lambda p, v: heard.append((p, v)))
    r.hook(True)
    assert r.volume() == 8
    r.set_volume(20)
    r.set_volume(3, Path.SPEAKER)
    assert json.loads((tmp_path / "volume.json").read_text()) == {"handset": 15, "speaker": 3}
    assert heard == [(Path.HANDSET, 15), (Path.SPEAKER, 3)]
    again = AudioRouter(store)
    assert again.volume(Path.HANDSET) == 15 and again.volume(Path.SPEAKER) == 3
    assert again.volume(Path.HEADSET) == 8


def test_volume_up_down_and_a_broken_store_file(tmp_path: FsPath) -> None:
    (tmp_path / "volume.json").write_text("{torn")
    r = AudioRouter(JsonVolumeStore(tmp_path / "volume.json"))
    r.answer()
    assert r.volume_up() == 9 and r.volume_down() == 8
    assert r.set_volume(-4) == 0


def test_routing_switches_the_bridge_and_hears_its_failures() -> None:
    r = AudioRouter()
    bridge = AlsaBridge(None)
    handset, speaker = object(), object()
    routing = AudioRouting(r, bridge, {Path.HANDSET: handset, Path.SPEAKER: speaker})  # type: ignore[dict-item]
    r.hook(True)
    assert bridge._next == [handset]
    routing._device_error(handset, RuntimeError("gone"))  # type: ignore[arg-type]
    assert r.path is Path.SPEAKER and bridge._next == [speaker]


# -- the bridge's pure parts -----------------------------------------------------------------
def test_ring_drops_the_oldest_on_overrun() -> None:
    ring = Ring(8)
    assert ring.write(b"abcdefgh") == 0
    assert ring.write(b"ij") == 2
    assert ring.read(100) == b"cdefghij"


def test_adjust_keeps_the_ends_and_changes_the_length() -> None:
    ramp = array("h", range(0, 3200, 10)).tobytes()
    shorter = array("h", adjust(ramp, 3))
    longer = array("h", adjust(ramp, -3))
    assert len(shorter) == 317 and len(longer) == 323
    assert shorter[0] == longer[0] == 0 and shorter[-1] == longer[-1] == 3190
    assert adjust(ramp, 0) == ramp


def test_drift_control_ignores_the_dead_band_and_limits_the_step() -> None:
    control = DriftControl(1000, step=32, limit=3, deadband=160)
    assert control.correction(1100) == 0
    for _ in range(100):
        change = control.correction(5000)
    assert change == 3
    control.reset(1000)
    assert control.correction(1000) == 0


def test_linear_resampler_converts_48k_to_16k_streaming() -> None:
    rs = LinearResampler(48000, 16000)
    out = array("h")
    for start in range(0, 4800, 960):
        out.extend(rs.process(array("h", range(start, start + 960))))
    assert len(out) == 1600
    assert out[:4].tolist() == [0, 2, 5, 8]  # one input sample late: it starts from silence
    assert {b - a for a, b in pairwise(out[1:])} == {3}
