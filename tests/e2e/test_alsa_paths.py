"""PCM paths and the ALSA bridge through real ALSA: the `file` plugin over a `null` slave.

Each scenario runs in a child process (this module, run as a script) whose ALSA_CONFIG_PATH
names an asoundrc written here, so this process's ALSA configuration is never touched. Capture
devices read a raw file (`infile`); playback devices write a WAV. The `null` slave is not paced,
so the scenarios drive a simulated card clock and media clock, event by event, faster than real
time: no sleeping anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
FRAME = 320  # 20 ms at 16 kHz
FRAME_BYTES = FRAME * 2


# -- the ALSA configuration ---------------------------------------------------------------------
def capture_pcm(name: str, infile: Path) -> str:
    return (f'pcm.{name} {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
            f'  file "/dev/null"\n  infile "{infile}"\n  format "raw"\n}}\n')


def playback_pcm(name: str, outfile: Path) -> str:
    return (f'pcm.{name} {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
            f'  file "{outfile}"\n  format "wav"\n}}\n')


def write_asoundrc(dirpath: Path, paths: list[str], inputs: dict[str, array]) -> Path:
    """Devices `<path>_cap` (reading `<path>.in.raw`) and `<path>_play` (writing `<path>.wav`)."""
    text = ""
    for name in paths:
        infile = dirpath / f"{name}.in.raw"
        infile.write_bytes(inputs.get(name, array("h", bytes(2 * RATE))).tobytes())
        text += capture_pcm(f"{name}_cap", infile) + playback_pcm(f"{name}_play",
                                                                  dirpath / f"{name}.wav")
    conf = dirpath / "asoundrc"
    conf.write_text(text)
    return conf


def run_child(tmp_path: Path, scenario: str, **args: Any) -> dict[str, Any]:
    env = dict(os.environ, ALSA_CONFIG_PATH=str(tmp_path / "asoundrc"), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, __file__, scenario, str(tmp_path), json.dumps(args)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def read_wav(path: Path) -> array:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return array("h", w.readframes(w.getnframes()))


def tone(hz: float, seconds: float, amplitude: int = 12000) -> array:
    import numpy as np

    t = np.arange(int(RATE * seconds)) / RATE
    return array("h", (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes())


def ramp(n: int, start: int = 1) -> array:
    """Distinct non-zero samples: 1, 2, ... 30000, 1, 2, ... (silence is told apart)."""
    return array("h", [(start - 1 + i) % 30000 + 1 for i in range(n)])


def tone_quality(samples: array, hz: float, width: int = 3) -> tuple[float, float]:
    """(the strongest frequency, the energy within `width` bins of it against the rest, dB)."""
    import numpy as np

    x = np.asarray(samples, dtype=float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    peak = int(np.argmax(spectrum))
    band = spectrum[max(0, peak - width):peak + width + 1].sum()
    return peak * RATE / len(x), 10 * np.log10(band / max(spectrum.sum() - band, 1e-9))


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.e2e
def test_a_tone_goes_through_capture_and_playback_intact(tmp_path: Path) -> None:
    write_asoundrc(tmp_path, ["handset"], {"handset": tone(700, 2.5)})
    out = run_child(tmp_path, "tone", frames=100)
    captured = array("h", (tmp_path / "captured.raw").read_bytes())
    assert len(captured) == 100 * FRAME
    heard = captured[-64 * FRAME:]  # after the 40 ms the ring fills before it is read
    freq, snr = tone_quality(heard, 700)
    assert abs(freq - 700) < 10 and snr > 40, (freq, snr)
    played = read_wav(tmp_path / "handset.wav")
    assert abs(len(played) - 100 * FRAME) <= 4 * FRAME
    freq, snr = tone_quality(played[-64 * FRAME:], 700)
    assert abs(freq - 700) < 10 and snr > 40, (freq, snr)
    assert out["stats"]["capture_underruns"] == 0
    assert out["stats"]["playback_underruns"] == 0


@pytest.mark.e2e
def test_the_volume_scales_what_the_path_plays(tmp_path: Path) -> None:
    from audio.routing import call_gain

    write_asoundrc(tmp_path, ["handset"], {"handset": tone(700, 2.5)})
    run_child(tmp_path, "tone", frames=60, gain=call_gain(5))  # 3 steps down: -6 dB
    played = read_wav(tmp_path / "handset.wav")[-32 * FRAME:]
    rms = (sum(s * s for s in played) / len(played)) ** 0.5
    assert rms == pytest.approx(12000 / 2 ** 0.5 * 10 ** (-6 / 20), rel=0.03)


@pytest.mark.e2e
def test_switching_path_mid_stream_loses_no_frame(tmp_path: Path) -> None:
    inputs = {"handset": ramp(3 * RATE), "headset": ramp(3 * RATE, start=20001)}
    write_asoundrc(tmp_path, ["handset", "headset"], inputs)
    out = run_child(tmp_path, "switch", frames=150, switch_at=60)
    pulled = array("h", (tmp_path / "captured.raw").read_bytes())
    assert len(pulled) == 150 * FRAME
    audio = pulled[pulled.index(1):]  # after the priming silence
    assert 0 not in audio, "silence inserted at the switch"
    cut = audio.index(20001)  # the headset's first sample follows the handset's last
    assert audio[:cut].tolist() == ramp(cut).tolist()
    assert audio[cut:].tolist() == ramp(len(audio) - cut, start=20001).tolist()
    # every frame pushed before the last few (still buffered) reached one device or the other
    handset, headset = read_wav(tmp_path / "handset.wav"), read_wav(tmp_path / "headset.wav")
    played = [s for s in handset.tolist() + headset.tolist() if s]
    assert played == ramp(len(played)).tolist()
    assert len(played) >= (150 - 4) * FRAME
    assert out["stats"]["switches"] == 2 and out["stats"]["capture_underruns"] == 0


@pytest.mark.e2e
def test_a_device_that_cannot_open_is_named_and_the_router_falls_back(tmp_path: Path) -> None:
    write_asoundrc(tmp_path, ["speaker"], {"speaker": tone(700, 1)})
    out = run_child(tmp_path, "open_fails", frames=30)
    assert "handset: cannot open capture device 'no_such_handset'" in out["error"]
    assert out["router_path"] == "speaker" and out["bridge_path"] == "speaker"
    assert out["nonzero_pulled"] > 0  # the call goes on, on the speaker


@pytest.mark.e2e
def test_a_device_that_disappears_mid_call_moves_the_call(tmp_path: Path) -> None:
    write_asoundrc(tmp_path, ["handset", "headset"], {"handset": tone(700, 2)})
    out = run_child(tmp_path, "unplugged", frames=80, fail_after=20)
    assert "headset: cannot read from device 'headset_cap'" in out["error"]
    assert "No such device" in out["error"]
    assert out["router_path"] == "handset" and out["bridge_path"] == "handset"
    assert out["pulled_bytes"] == 80 * FRAME_BYTES


@pytest.mark.e2e
def test_microphone_audio_piled_up_before_a_call_does_not_delay_it(tmp_path: Path) -> None:
    write_asoundrc(tmp_path, ["handset"], {"handset": tone(700, 3)})
    out = run_child(tmp_path, "late_reader", idle_periods=100, frames=50)
    assert out["piled_ms"] >= 150  # two seconds of card periods with nobody reading
    assert out["stats"]["capture_ms"] <= 70, out["stats"]  # frame + period + dead bands


@pytest.mark.e2e
@pytest.mark.parametrize("drift", [0.005, -0.005])
def test_latency_stays_bounded_when_the_clocks_drift(tmp_path: Path, drift: float) -> None:
    write_asoundrc(tmp_path, ["handset"], {"handset": tone(700, 65)})
    out = run_child(tmp_path, "drift", seconds=60, drift=drift)
    settled = out["settled"]  # levels over the last 50 s, after the ring reached its target
    for side in ("capture", "playback"):
        low, high = settled[f"min_{side}_ms"], settled[f"max_{side}_ms"]
        # a saw-tooth of one card period (20 ms) beside the target, never growing
        assert low >= 5 and high <= 100 and high - low <= 30, settled
    stats = out["stats"]
    assert stats["capture_underruns"] == 0 and stats["capture_overruns"] == 0, stats
    assert stats["playback_underruns"] == 0 and stats["playback_overruns"] == 0, stats
    # 0.5 % of 60 s at 16 kHz is 4800 samples a side, absorbed one sample at a time
    assert 0.8 * 9600 <= stats["drift_corrections"] <= 1.3 * 9600, stats
    # the card's 700 Hz reaches the media side 0.5 % off in pitch, wobbling a few Hz as the
    # corrections come and go: all of it within 15 Hz of the tone
    heard = array("h", (tmp_path / "captured.raw").read_bytes())[-RATE:]
    freq, snr = tone_quality(heard, 700, width=15)
    assert abs(freq - 700) < 10 and snr > 25, (freq, snr)


# -- the child process -------------------------------------------------------------------------
def _path(name: str, **kwargs: Any) -> Any:  # a PcmPath; audio/ is imported in the child
    from audio.pcm import PcmPath

    return PcmPath(name, f"{name}_cap", f"{name}_play", RATE, 1, FRAME, **kwargs)


class Clocks:
    """The card's clock and the media clock as two schedules, run in time order."""

    def __init__(self, bridge: Any, drift: float = 0.0) -> None:
        self.bridge = bridge
        self.card_period = 0.02 / (1 + drift)  # drift > 0: the card runs fast
        self.card_t, self.media_t = 0.0, 0.005
        self.pulled = bytearray()
        self.pushed = 0

    def run(self, frames: int, media: Callable[[int], bytes],
            every_frame: Callable[[int], None] | None = None) -> None:
        for n in range(frames):
            while self.card_t <= self.media_t:
                self.bridge.step()
                self.card_t += self.card_period
            self.pulled += self.bridge.pull_capture(FRAME_BYTES)
            self.bridge.push_playback(media(n))
            self.media_t += 0.02
            if every_frame is not None:
                every_frame(n)


def _finish(tmp: Path, clocks: Clocks, bridge: Any, **extra: Any) -> dict[str, Any]:
    from dataclasses import asdict

    bridge.stop()
    (tmp / "captured.raw").write_bytes(clocks.pulled)
    return {"stats": asdict(bridge.stats()), **extra}


def scenario_tone(tmp: Path, frames: int, gain: float = 1.0) -> dict[str, Any]:
    from audio.bridge import AlsaBridge

    bridge = AlsaBridge(_path("handset"))
    bridge.playback_gain = gain
    clocks = Clocks(bridge)
    out = tone(700, frames * 0.02).tobytes()
    clocks.run(frames, lambda n: out[n * FRAME_BYTES:(n + 1) * FRAME_BYTES])
    return _finish(tmp, clocks, bridge)


def scenario_switch(tmp: Path, frames: int, switch_at: int) -> dict[str, Any]:
    from audio.bridge import AlsaBridge

    bridge = AlsaBridge(_path("handset"))
    clocks = Clocks(bridge)
    out = ramp(frames * FRAME).tobytes()
    headset = _path("headset")

    def maybe_switch(n: int) -> None:
        if n == switch_at:
            bridge.switch(headset)

    clocks.run(frames, lambda n: out[n * FRAME_BYTES:(n + 1) * FRAME_BYTES], maybe_switch)
    return _finish(tmp, clocks, bridge)


def _routing(paths: dict[str, Any]) -> tuple[Any, Any, Any]:
    from audio.bridge import AlsaBridge
    from audio.routing import AudioRouter, AudioRouting, Path

    router = AudioRouter()
    bridge = AlsaBridge(None)
    routing = AudioRouting(router, bridge, {Path(k): v for k, v in paths.items()})
    return router, bridge, routing


def scenario_open_fails(tmp: Path, frames: int) -> dict[str, Any]:
    from audio.pcm import PcmPath

    broken = PcmPath("handset", "no_such_handset", "no_such_handset", RATE, 1, FRAME)
    router, bridge, routing = _routing({"handset": broken, "speaker": _path("speaker")})
    router.hook(True)
    clocks = Clocks(bridge)
    clocks.run(frames, lambda n: bytes(FRAME_BYTES))
    pulled = array("h", bytes(clocks.pulled))
    return _finish(tmp, clocks, bridge, error=str(routing.errors[0]), router_path=router.path,
                   bridge_path=bridge.path.name, nonzero_pulled=sum(1 for s in pulled if s))


class _Unplugging:
    """A real ALSA PCM whose reads fail like a pulled USB device after `reads` reads."""

    def __init__(self, pcm: Any, reads: int) -> None:
        self.pcm, self.reads = pcm, reads

    def read(self) -> tuple[int, bytes]:
        import alsaaudio

        self.reads -= 1
        if self.reads < 0:
            raise alsaaudio.ALSAAudioError("No such device [headset_cap]")
        return self.pcm.read()

    def write(self, data: bytes) -> int:
        return self.pcm.write(data)

    def close(self) -> None:
        self.pcm.close()


def scenario_unplugged(tmp: Path, frames: int, fail_after: int) -> dict[str, Any]:
    import alsaaudio

    def factory(**kwargs: Any) -> Any:
        return _Unplugging(alsaaudio.PCM(**kwargs), fail_after)

    router, bridge, routing = _routing({"handset": _path("handset"),
                                        "headset": _path("headset", pcm_factory=factory)})
    router.hook(True)
    router.headset(True)
    clocks = Clocks(bridge)
    clocks.run(frames, lambda n: bytes(FRAME_BYTES))
    return _finish(tmp, clocks, bridge, error=str(routing.errors[0]), router_path=router.path,
                   bridge_path=bridge.path.name, pulled_bytes=len(clocks.pulled))


def scenario_drift(tmp: Path, seconds: int, drift: float) -> dict[str, Any]:
    from audio.bridge import AlsaBridge

    bridge = AlsaBridge(_path("handset"))
    clocks = Clocks(bridge, drift)
    out = tone(700, 0.02 * 50).tobytes()  # 50 frames hold a whole number of 700 Hz cycles
    levels: dict[str, float] = {}

    def watch(n: int) -> None:
        if n < 500:
            return
        s = bridge.stats()
        for side, ms in (("capture", s.capture_ms), ("playback", s.playback_ms)):
            levels[f"min_{side}_ms"] = min(levels.get(f"min_{side}_ms", 1e9), ms)
            levels[f"max_{side}_ms"] = max(levels.get(f"max_{side}_ms", 0), ms)

    clocks.run(seconds * 50, lambda n: out[n % 50 * FRAME_BYTES:(n % 50 + 1) * FRAME_BYTES],
               watch)
    return _finish(tmp, clocks, bridge, settled=levels)


def scenario_late_reader(tmp: Path, idle_periods: int, frames: int) -> dict[str, Any]:
    """The card runs (dial tone, ringing) while the media side reads nothing; then a call
    connects and reads every frame."""
    from audio.bridge import AlsaBridge

    bridge = AlsaBridge(_path("handset"))
    for _ in range(idle_periods):
        bridge.step()
    piled = bridge.stats().capture_ms
    clocks = Clocks(bridge)
    silence = bytes(FRAME_BYTES)
    clocks.run(frames, lambda n: silence)
    return _finish(tmp, clocks, bridge, piled_ms=piled)


SCENARIOS = {"tone": scenario_tone, "switch": scenario_switch, "open_fails": scenario_open_fails,
             "unplugged": scenario_unplugged, "drift": scenario_drift,
             "late_reader": scenario_late_reader}

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    result = SCENARIOS[sys.argv[1]](Path(sys.argv[2]), **json.loads(sys.argv[3]))
    print(json.dumps(result, default=str))
