"""A call through real ALSA: speech into the handset's capture reaches baresip, and baresip's
audio comes out of the handset's playback. The sound card is ALSA's `file` plugin over a `null`
slave (no kernel module): capture reads a raw file, playback writes a WAV."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import USERS, wait_registered
from tests.harness.audio_check import dominant_frequency, read_wav
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until
from tools.phoneproc import REPO_ROOT, LineSpec, PhoneProcess, phone_config

pytestmark = pytest.mark.e2e
RATE = 16000
SPEECH = ("Hej, det här är Luren. Ett, två, tre, fyra, fem. "
          "Hello, this is the handset speaking. Six, seven, eight, nine, ten. ") * 3


def speech_raw(workdir: Path) -> np.ndarray:
    """Spoken Swedish and English (espeak-ng) as 16 kHz mono 16-bit samples."""
    wav, raw = workdir / "speech.wav", workdir / "speech.raw"
    subprocess.run(["espeak-ng", "-v", "sv", "-w", str(wav), SPEECH], check=True)
    subprocess.run(["sox", str(wav), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed",
                    "-t", "raw", str(raw)], check=True)
    return np.frombuffer(raw.read_bytes(), dtype="<i2")


def write_alsa_config(workdir: Path, infile: Path, outfile: Path) -> Path:
    conf = workdir / "asoundrc"
    conf.write_text(
        'pcm.handset_cap {\n  type file\n  slave { pcm { type null } }\n'
        f'  file "/dev/null"\n  infile "{infile}"\n  format "raw"\n}}\n'
        'pcm.handset_play {\n  type file\n  slave { pcm { type null } }\n'
        f'  file "{outfile}"\n  format "wav"\n}}\n')
    return conf


def write_profile(workdir: Path) -> Path:
    sim = (REPO_ROOT / "board" / "profiles" / "sim.toml").read_text()
    profile = workdir / "alsa-deskphone.toml"
    profile.write_text(sim.replace('name = "sim"', 'name = "alsa-test"') + (
        "\n[audio]\npace = true  # the null plugin keeps no time\n"
        '[audio.paths.handset]\ncapture = "handset_cap"\nplayback = "handset_play"\n'))
    return profile


def envelope(samples: np.ndarray, rate: int, frame_ms: int = 20) -> np.ndarray:
    n = rate * frame_ms // 1000
    frames = samples[: len(samples) // n * n].reshape(-1, n)
    return np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))


def best_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Highest normalised cross-correlation of two loudness envelopes over all lags."""
    a, b = (a - a.mean()) / (a.std() or 1), (b - b.mean()) / (b.std() or 1)
    full = np.correlate(a, b, mode="full") / min(len(a), len(b))
    return float(full.max())


def wav_bytes(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def test_call_through_alsa_handset(tmp_path: Path, pbx: Kamailio, make_baresip) -> None:
    source = speech_raw(tmp_path)
    infile, outfile = tmp_path / "handset.in.raw", tmp_path / "handset.out.wav"
    infile.write_bytes(source.tobytes())
    conf = write_alsa_config(tmp_path, infile, outfile)
    far = make_baresip("1002", tone_hz=1000, auto_answer=True)
    line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx.port}", "Handset")
    phone = PhoneProcess(tmp_path / "phone", phone_config([line]), board=str(write_profile(
        tmp_path)), env={"ALSA_CONFIG_PATH": str(conf)}).start()
    try:
        wait_registered(phone)
        phone.hook(True)  # lifting the handset routes the sound to the handset's ALSA path
        phone.keys("1002")
        phone.wait_text("In call", 10)
        far.wait_event("CALL_ESTABLISHED", 10)
        start = wav_bytes(outfile)
        wait_until(lambda: wav_bytes(outfile) - start > 4 * RATE * 2, 20,
                   what="4 s of conversation on the handset")
        phone.hook(False)
        far.wait_event("CALL_CLOSED", 10)
    finally:
        phone.stop()

    heard_by_far = far.wait_audio_files(1, 10)[0]
    samples, rate = read_wav(heard_by_far, 0.5)
    received = envelope((samples * 32768).astype(np.int16), rate)
    assert received.max() > 300, "baresip heard silence"
    assert best_correlation(envelope(source, RATE), received) > 0.5, \
        "what baresip heard does not follow the spoken words"

    with wave.open(str(outfile), "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert dominant_frequency(outfile, skip_seconds=max(0.0, seconds - 2.5)) == \
        pytest.approx(1000, abs=15)
