"""The ringer through real ALSA: the `file` plugin over a `null` slave writes what it plays to a
WAV, analysed here with numpy.

As in tests/e2e/test_alsa_paths.py, each scenario runs in a child process (this module, run as
a script) whose ALSA_CONFIG_PATH names an asoundrc written here, so this process's ALSA
configuration is never touched. The `null` slave keeps no time, so the ringer paces itself
(`pace=True`) and ringing takes real time; the child waits for the WAV to grow with
`wait_until`. The file plugin writes a new WAV each time the device opens, so a child moves the
WAV aside once `stop()` or `wait_idle()` has closed the device.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audio import synth
from audio.pcm import AudioDeviceError, PathConfig, PcmPath
from audio.ringer import Ringer, gain
from audio.tones import ToneSegment, tone_set
from tests.harness.audio_check import dominant_frequency, read_wav, rms
from tools.pbx.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
PERIOD = 320  # frames: PathConfig's default, 20 ms
WAV_HEADER = 44
SE = tone_set("se").ring_cadence_ms  # (1000, 5000)
TONE_1K = synth.render([ToneSegment(1000, 0, 200, 0)], RATE)


# -- the ALSA configuration and the child ------------------------------------------------------
def playback_pcm(name: str, outfile: Path) -> str:
    return (f'pcm.{name} {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
            f'  file "{outfile}"\n  format "wav"\n}}\n')


def run_child(tmp_path: Path, scenario: str, **args: Any) -> dict[str, Any]:
    """Run `scenario` in a child whose only ALSA device, `ringer`, writes tmp_path/ringer.wav."""
    conf = tmp_path / "asoundrc"
    conf.write_text(playback_pcm("ringer", tmp_path / "ringer.wav"))
    env = dict(os.environ, ALSA_CONFIG_PATH=str(conf), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, __file__, scenario, str(tmp_path), json.dumps(args)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


# -- analysis ----------------------------------------------------------------------------------
def wav_frames(path: Path) -> tuple[np.ndarray, int]:
    """int16 frames (frames x channels) and the rate of a WAV the file plugin wrote."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels()), w.getframerate()


def band_share(x: np.ndarray, rate: int, hz: float, width: float = 40) -> float:
    """The share of the energy of `x` within `width` Hz of `hz`."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) <= width].sum() / spectrum.sum())


def sounding(x: np.ndarray, rate: int, window_ms: int = 5) -> list[tuple[int, int]]:
    """(start, end) ms of each stretch where something sounds, to `window_ms`."""
    n = rate * window_ms // 1000
    loud = np.abs(x[:len(x) // n * n].reshape(-1, n)).max(axis=1) > 0.003
    edges = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(int), [0]))))
    return [(int(a) * window_ms, int(b) * window_ms) for a, b in zip(edges[::2], edges[1::2],
                                                                     strict=True)]


def near(got: list[tuple[int, int]], want: list[tuple[int, int]], ms: int = 40) -> bool:
    return len(got) == len(want) and all(abs(g - w) <= ms for gw, ww in zip(got, want, strict=True)
                                         for g, w in zip(gw, ww, strict=True))


# -- without a device --------------------------------------------------------------------------
def test_volume_steps_are_3_db_from_0_db_at_15_down_to_mute() -> None:
    assert gain(15) == 1.0 and gain(0) == 0.0
    assert gain(14) == pytest.approx(10 ** (-3 / 20))
    assert gain(11) == pytest.approx(10 ** (-12 / 20))
    assert (gain(99), gain(-3)) == (1.0, 0.0)  # clamped, like the router's volumes
    ringer = Ringer(PathConfig("ringer", None, "ringer"), volume=40)
    assert ringer.volume == 15
    ringer.volume = 7
    assert ringer.volume == 7 and ringer.status()["volume"] == 7


def test_a_ringer_path_only_plays() -> None:
    ringer = Ringer(PathConfig("ringer", "hw:0", "hw:0"))  # a profile's capture is left out
    assert not ringer.path.has_capture and ringer.status()["device"] == "hw:0"
    with pytest.raises(ValueError, match="no capture"):
        Ringer(PcmPath("ringer", "hw:0", "hw:0"))
    with pytest.raises(ValueError, match="rate 44100"):
        Ringer(PathConfig("ringer", None, "hw:0", rate=44100))


def test_a_bad_ringtone_or_cadence_raises_at_once_and_opens_nothing() -> None:
    ringer = Ringer(PathConfig("ringer", None, "hw:0"))
    ringer.stop()  # nothing rings: harmless
    with pytest.raises(KeyError, match="unknown ringtone 'bell'"):
        ringer.ring("bell", SE)
    with pytest.raises(ValueError, match="on/off pairs"):
        ringer.ring("classic", (1000,))
    assert ringer.status() == {"ringing": False, "ringtone": None, "cadence_ms": None,
                               "volume": 8, "device": "hw:0", "open": False,
                               "last_error": None}
    ringer.close()


# -- through ALSA ------------------------------------------------------------------------------
def test_swedish_cadence_rings_one_second_then_is_silent(tmp_path: Path) -> None:
    out = run_child(tmp_path, "swedish")
    assert out["ringing"]["ringing"] and out["ringing"]["ringtone"] == "classic"
    assert out["ringing"]["cadence_ms"] == [1000, 5000]
    assert out["stop_s"] < 0.1, "stop() took more than a few periods"
    assert not out["stopped"]["ringing"] and not out["stopped"]["open"]
    frames, rate = wav_frames(tmp_path / "se.wav")
    assert rate == RATE and frames.shape[1] == 1
    x = frames[:, 0]
    assert 2.5 * RATE <= len(x) < 3.5 * RATE
    # the 1 s on part: the classic trill's 1000 and 1250 Hz; then silence to the end
    on = x[:RATE].astype(float)
    assert band_share(on, RATE, 1000) > 0.35 and band_share(on, RATE, 1250) > 0.35
    assert not x[RATE:].any(), "the off part is not silent"
    samples, _ = read_wav(tmp_path / "se.wav")
    assert near(sounding(samples, RATE), [(0, 1000)])
    # sample for sample the rendered ringtone: ring() again with the same ringtone at 1.5 s
    # (in the silence) did not start it over
    expected = np.frombuffer(synth.ringtone("classic", RATE, SE), dtype="<i2")
    assert np.array_equal(x, expected[:len(x)])
    # rung again after stop(): another ringtone, into a new WAV
    again, _ = read_wav(tmp_path / "again.wav")
    assert len(again) >= 0.3 * RATE and band_share(again[:int(0.3 * RATE)], RATE, 1400) > 0.9
    assert out["again"]["ringtone"] == "beep" and out["again"]["last_error"] is None


def test_a_short_cadence_loops_on_time(tmp_path: Path) -> None:
    run_child(tmp_path, "cadence", cadence=[400, 600], seconds=2.2)
    samples, rate = read_wav(tmp_path / "cadence.wav")
    got = sounding(samples[:int(2.2 * rate)], rate)
    assert near(got, [(0, 400), (1000, 1400), (2000, 2200)]), got


def test_a_one_shot_is_mixed_on_top_of_the_ringtone(tmp_path: Path) -> None:
    run_child(tmp_path, "mixed")
    frames, rate = wav_frames(tmp_path / "mixed.wav")
    x = frames[:, 0].astype(int)
    ring = np.frombuffer(synth.ringtone("classic", RATE, SE), dtype="<i2").astype(int)
    extra = x - ring[:len(x)]  # what is not the ringtone
    where = np.flatnonzero(extra)
    feedback = np.frombuffer(synth.dtmf_feedback("5", RATE), dtype="<i2")
    assert 0.3 * RATE <= where[0] < 0.8 * RATE, "the one-shot was not played while ringing"
    start = int(where[0]) // PERIOD * PERIOD  # it starts with a period (its first sample is 0)
    assert np.array_equal(extra[start:start + len(feedback)], feedback)
    assert not extra[start + len(feedback):].any()
    burst = x[start:start + len(feedback)].astype(float)  # DTMF 5 over the trill
    assert band_share(burst, rate, 1000) + band_share(burst, rate, 1250) > 0.8
    assert band_share(burst, rate, 770) > 0.005 and band_share(burst, rate, 1336) > 0.005


def test_a_one_shot_opens_plays_and_closes(tmp_path: Path) -> None:
    out = run_child(tmp_path, "once")
    assert out["idle"] and not out["status"]["open"] and not out["status"]["ringing"]
    samples, rate = read_wav(tmp_path / "once.wav")
    assert rate == RATE and 0.06 * RATE <= len(samples) <= 0.08 * RATE
    assert band_share(samples, rate, 770) > 0.4 and band_share(samples, rate, 1336) > 0.4


def test_a_one_shot_at_the_media_rate_plays_on_a_48_khz_stereo_path(tmp_path: Path) -> None:
    run_child(tmp_path, "once", rate=48000, channels=2, period_frames=960)
    frames, rate = wav_frames(tmp_path / "once.wav")
    assert rate == 48000 and frames.shape[1] == 2
    assert np.array_equal(frames[:, 0], frames[:, 1]), "the channels differ"
    assert 0.059 * rate <= len(frames) <= 0.08 * rate
    x = frames[:, 0].astype(float)
    assert band_share(x, rate, 770) > 0.4 and band_share(x, rate, 1336) > 0.4


def test_volume_scales_the_output(tmp_path: Path) -> None:
    run_child(tmp_path, "volume", volumes=[15, 11, 0])
    full, lower = rms(tmp_path / "volume15.wav"), rms(tmp_path / "volume11.wav")
    assert abs(dominant_frequency(tmp_path / "volume11.wav", 0.05) - 1000) < 2
    assert lower / full == pytest.approx(10 ** (-12 / 20), rel=0.02)  # 4 steps: 12 dB
    muted, _ = wav_frames(tmp_path / "volume0.wav")
    assert len(muted) >= 0.2 * RATE and not muted.any()


def test_a_device_that_cannot_open_is_reported_not_raised(tmp_path: Path) -> None:
    out = run_child(tmp_path, "open_fails")
    message = "ringer: cannot open playback device 'no_such_ringer'"
    assert len(out["errors"]) == 2, "a later ring() did not try again"
    assert all(e.startswith(message) for e in out["errors"]), out["errors"]
    status = out["status"]
    assert status["last_error"].startswith(message) and not status["ringing"]
    assert not status["open"] and status["device"] == "no_such_ringer"
    assert message in out["logged"]


def test_a_device_that_fails_while_ringing_stops_it_and_ringing_again_reopens(
        tmp_path: Path) -> None:
    out = run_child(tmp_path, "write_fails")
    assert out["errors"] == ["ringer: cannot write to device 'ringer' (No such device [ringer])"]
    assert not out["failed"]["ringing"] and not out["failed"]["open"]
    assert out["again"]["ringing"] and out["again"]["last_error"] == out["errors"][0]
    samples, rate = read_wav(tmp_path / "ringer.wav")  # the second opening's WAV
    assert len(samples) >= 0.2 * rate and band_share(samples, rate, 1400) > 0.9


# -- the child process: scenarios ---------------------------------------------------------------
def _wav_seconds(path: Path, rate: int = RATE, channels: int = 1) -> float:
    """Audio in a WAV the file plugin is still writing (its header is not filled in yet)."""
    size = path.stat().st_size if path.exists() else 0
    return max(0, size - WAV_HEADER) / (rate * channels * 2)


def _ringer(**kwargs: Any) -> Ringer:
    config = PathConfig("ringer", None, kwargs.pop("device", "ringer"),
                        **{k: kwargs.pop(k) for k in ("rate", "channels", "period_frames")
                           if k in kwargs})
    return Ringer(config, volume=kwargs.pop("volume", 15), pace=True, **kwargs)


def _ring_for(wav: Path, seconds: float) -> None:
    wait_until(lambda: _wav_seconds(wav) >= seconds, 10 + 2 * seconds,
               what=f"{seconds} s of ringing in {wav.name}")


def scenario_swedish(tmp: Path) -> dict[str, Any]:
    wav = tmp / "ringer.wav"
    ringer = _ringer()
    ringer.stop()  # not ringing: harmless
    ringer.ring("classic", SE)
    ringing = ringer.status()
    _ring_for(wav, 1.5)
    ringer.ring("classic", list(SE))  # the same again: nothing changes
    _ring_for(wav, 2.5)
    start = time.monotonic()
    ringer.stop()
    stop_s = time.monotonic() - start
    stopped = ringer.status()
    shutil.move(wav, tmp / "se.wav")  # closed: the header is final
    ringer.ring("beep", SE)
    _ring_for(wav, 0.3)
    again = ringer.status()
    ringer.close()
    shutil.move(wav, tmp / "again.wav")
    return {"ringing": ringing, "stop_s": stop_s, "stopped": stopped, "again": again}


def scenario_cadence(tmp: Path, cadence: list[int], seconds: float) -> dict[str, Any]:
    ringer = _ringer()
    ringer.ring("classic", cadence)
    _ring_for(tmp / "ringer.wav", seconds)
    ringer.close()
    shutil.move(tmp / "ringer.wav", tmp / "cadence.wav")
    return {}


def scenario_mixed(tmp: Path) -> dict[str, Any]:
    ringer = _ringer()
    ringer.ring("classic", SE)
    _ring_for(tmp / "ringer.wav", 0.3)
    ringer.play_once(synth.dtmf_feedback("5", RATE))
    _ring_for(tmp / "ringer.wav", 0.8)
    ringer.close()
    shutil.move(tmp / "ringer.wav", tmp / "mixed.wav")
    return {}


def scenario_once(tmp: Path, **path: Any) -> dict[str, Any]:
    ringer = _ringer(**path)
    ringer.play_once(synth.dtmf_feedback("5", RATE))  # at the media rate, 16 kHz
    idle = ringer.wait_idle(5)
    status = ringer.status()
    ringer.close()
    shutil.move(tmp / "ringer.wav", tmp / "once.wav")
    return {"idle": idle, "status": status}


def scenario_volume(tmp: Path, volumes: list[int]) -> dict[str, Any]:
    ringer = _ringer()
    for level in volumes:
        ringer.volume = level
        ringer.play_once(TONE_1K)
        assert ringer.wait_idle(5)
        shutil.move(tmp / "ringer.wav", tmp / f"volume{level}.wav")
    ringer.close()
    return {}


def scenario_open_fails(tmp: Path) -> dict[str, Any]:
    import logging

    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("luren.audio.ringer").addHandler(handler)
    errors: list[str] = []
    ringer = _ringer(device="no_such_ringer", on_error=lambda e: errors.append(str(e)))
    ringer.ring("classic", SE)  # does not raise
    wait_until(lambda: errors, 5, what="the first error")
    ringer.wait_idle(5)
    status = ringer.status()
    ringer.ring("classic", SE)  # tries the device again
    wait_until(lambda: len(errors) == 2, 5, what="the second error")
    ringer.close()
    return {"errors": errors, "status": status, "logged": "\n".join(logged)}


class _Unplugging:
    """A real ALSA PCM whose writes fail like a pulled USB device after `writes` writes."""

    def __init__(self, pcm: Any, writes: int) -> None:
        self.pcm, self.writes = pcm, writes

    def write(self, data: bytes) -> int:
        import alsaaudio

        self.writes -= 1
        if self.writes < 0:
            raise alsaaudio.ALSAAudioError("No such device [ringer]")
        return self.pcm.write(data)

    def read(self) -> tuple[int, bytes]:
        return self.pcm.read()

    def drop(self) -> None:
        self.pcm.drop()

    def close(self) -> None:
        self.pcm.close()


def scenario_write_fails(tmp: Path) -> dict[str, Any]:
    import alsaaudio

    openings: list[int] = []

    def factory(**kwargs: Any) -> Any:  # the first opening fails after 5 periods
        openings.append(1)
        return _Unplugging(alsaaudio.PCM(**kwargs), 5 if len(openings) == 1 else 10**9)

    errors: list[AudioDeviceError] = []
    ringer = Ringer(PcmPath("ringer", None, "ringer", pcm_factory=factory), volume=15, pace=True,
                    on_error=errors.append)
    ringer.ring("beep", SE)
    wait_until(lambda: errors, 5, what="the write error")
    ringer.wait_idle(5)
    failed = ringer.status()
    ringer.ring("beep", SE)
    _ring_for(tmp / "ringer.wav", 0.2)
    again = ringer.status()
    ringer.close()
    return {"errors": [str(e) for e in errors], "failed": failed, "again": again}


SCENARIOS = {"swedish": scenario_swedish, "cadence": scenario_cadence, "mixed": scenario_mixed,
             "once": scenario_once, "volume": scenario_volume, "open_fails": scenario_open_fails,
             "write_fails": scenario_write_fails}

if __name__ == "__main__":
    result = SCENARIOS[sys.argv[1]](Path(sys.argv[2]), **json.loads(sys.argv[3]))
    print(json.dumps(result, default=str))
