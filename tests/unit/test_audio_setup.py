"""Assembling a terminal's audio from a profile's [audio] table (no device is opened)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio.routing import Path as Route
from audio.setup import AudioSpecError, AudioSystem, build_audio, parse_audio

PATHS = {"handset": {"capture": "hw:9", "playback": "hw:9"},
         "speaker": {"capture": "hw:9", "playback": "hw:9,1", "rate": 48000}}


def test_a_board_without_audio_gets_none(tmp_path: Path) -> None:
    assert build_audio({}, tmp_path, lambda fn: fn()) is None


def test_the_ringer_path_plays_only() -> None:
    spec = parse_audio({"paths": {**PATHS, "ringer": {"playback": "hw:9,2", "rate": 48000}}})
    assert spec.ringer is not None and spec.ringer.capture_device is None
    assert (spec.ringer.playback_device, spec.ringer.rate) == ("hw:9,2", 48000)
    assert set(spec.paths) == {Route.HANDSET, Route.SPEAKER}


def test_ringer_volume_persists(tmp_path: Path) -> None:
    spec = parse_audio({"paths": {**PATHS, "ringer": {"playback": "hw:9,2"}}})
    audio = AudioSystem(spec, tmp_path, lambda fn: fn())
    start = audio.status()["ringer"]["volume"]
    assert audio.ringer_volume_step(False) == start - 1
    again = AudioSystem(spec, tmp_path, lambda fn: fn())
    assert again.status()["ringer"]["volume"] == start - 1


def test_paths_are_parsed() -> None:
    spec = parse_audio({"paths": PATHS, "pace": True})
    assert set(spec.paths) == {Route.HANDSET, Route.SPEAKER}
    assert spec.paths[Route.SPEAKER].rate == 48000 and spec.pace


@pytest.mark.parametrize(("table", "words"), [
    ({"paths": {}}, "at least one path"),
    ({"paths": {"earpiece": PATHS["handset"]}}, "audio.paths.earpiece: not a path"),
    ({"paths": {"handset": {"capture": "hw:0"}}}, "audio.paths.handset.playback"),
    ({"paths": {"handset": {**PATHS["handset"], "rate": 0}}}, "rate: must be a positive"),
    ({"paths": {"handset": {**PATHS["handset"], "volume": 3}}}, "unknown key 'volume'"),
    ({"paths": PATHS, "pace": "yes"}, "audio.pace"),
    ({"paths": PATHS, "sound": 1}, "unknown key 'sound'"),
    ({"paths": PATHS, "jack": {"kind": "usb"}}, "audio.jack.kind: 'usb' is not one of"),
    ({"paths": {"ringer": {"playback": "hw:9"}}}, "at least one path"),
    ({"paths": {**PATHS, "ringer": {"playback": "hw:9", "capture": "hw:9"}}},
     "audio.paths.ringer: unknown key 'capture' \\(the ringer only plays\\)"),
    ({"paths": {**PATHS, "ringer": {"playback": "hw:9", "rate": 44100}}},
     "audio.paths.ringer.rate: one of 8000, 16000, 48000"),
    ({"paths": PATHS, "jack": {"kind": "gpio"}}, "audio.jack.pin"),
    ({"paths": PATHS, "jack": {"kind": "gpio", "pin": 5, "plugged": 0}}, "audio.jack.plugged"),
    ({"paths": PATHS, "jack": {"kind": "evdev"}}, "audio.jack.device"),
    ({"paths": PATHS, "jack": {"kind": "alsa", "pin": 3}}, "audio.jack.pin: not a key"),
    ({"channels": {"4": PATHS["handset"]}}, "audio.channels.4: a voice channel is 0..3"),
    ({"channels": {"x": PATHS["handset"]}}, "audio.channels.x: a voice channel is 0..3"),
    ({"channels": {"0": {"capture": "hw:0"}}}, "audio.channels.0.playback: an ALSA device"),
    ({"channels": {"0": {**PATHS["handset"], "gain": 2}}},
     "audio.channels.0: unknown key 'gain'"),
    ({"channels": [1, 2]}, "audio.channels: must be a table"),
])
def test_bad_tables_name_the_key(table: dict, words: str) -> None:
    with pytest.raises(AudioSpecError, match=words):
        parse_audio(table)


def test_voice_channels_of_a_dect_base_are_parsed_and_make_no_desk_audio(
        tmp_path: Path) -> None:
    table = {"channels": {"0": PATHS["handset"], "3": PATHS["speaker"]}, "pace": True}
    spec = parse_audio(table)
    assert sorted(spec.channels) == [0, 3] and spec.paths == {}
    assert spec.channels[3].rate == 48000 and spec.channels[0].name == "channel0"
    assert build_audio(table, tmp_path, lambda fn: fn()) is None


def test_echo_is_cancelled_only_hands_free(tmp_path: Path) -> None:
    audio = AudioSystem(parse_audio({"paths": PATHS}), tmp_path, lambda fn: fn())
    assert audio.ends.enabled is False
    audio.route("speaker")
    assert (audio.router.path, audio.ends.enabled) == (Route.SPEAKER, True)
    audio.route("handset")
    assert (audio.router.path, audio.ends.enabled) == (Route.HANDSET, False)
    audio.route(None)
    assert audio.router.path is Route.NONE
    assert audio.status()["path"] == "none"


def test_volume_keys_step_the_current_path_and_persist(tmp_path: Path) -> None:
    audio = AudioSystem(parse_audio({"paths": PATHS}), tmp_path, lambda fn: fn())
    audio.route("speaker")
    start = audio.router.volume()
    assert audio.volume_step(True) == start + 1
    assert audio.bridge.playback_gain == pytest.approx(10 ** ((start + 1 - 8) * 2 / 20))
    audio.router.set_volume(3, Route.HANDSET)
    audio.route("handset")  # each path plays at its own volume
    assert audio.bridge.playback_gain == pytest.approx(10 ** (-10 / 20))
    again = AudioSystem(parse_audio({"paths": PATHS}), tmp_path, lambda fn: fn())
    assert again.router.volume(Route.SPEAKER) == start + 1
    assert again.router.volume(Route.HANDSET) == audio.router.volume(Route.HANDSET)


def test_a_simulated_jack_reports_to_the_controller_and_a_real_one_refuses(
        tmp_path: Path) -> None:
    audio = AudioSystem(parse_audio({"paths": PATHS, "jack": {"kind": "sim"}}), tmp_path,
                        lambda fn: fn())
    heard: list[bool] = []
    audio.on_headset = heard.append
    audio.start()
    try:
        assert audio.simulate_headset(True) and audio.simulate_headset(False)
        assert heard == [True, False]
        assert audio.status()["headset_detection"] == "sim"
    finally:
        audio.stop()
    fifo = tmp_path / "events"
    real = AudioSystem(parse_audio({"paths": PATHS, "jack": {"kind": "evdev",
                                                             "device": str(fifo)}}),
                       tmp_path, lambda fn: fn())
    assert real.simulate_headset(True) is False


def test_headset_detection_that_cannot_start_is_reported_not_fatal(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-input-device"
    audio = AudioSystem(parse_audio({"paths": PATHS, "jack": {"kind": "evdev",
                                                              "device": str(missing)}}),
                        tmp_path, lambda fn: fn())
    audio.start()
    try:
        assert audio.jack is None and audio.status()["headset_detection"] == "none"
    finally:
        audio.stop()
