"""A call through real ALSA: speech into the handset's capture reaches baresip, and baresip's
audio comes out of the handset's playback. The sound card is ALSA's `file` plugin over a `null`
slave (no kernel module): capture reads a raw file, playback writes a WAV."""

from __future__ import annotations

import os
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audio.jack import EV_SW, SW_HEADPHONE_INSERT, pack_event
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


def tone_raw(freq: float, seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes()


def dominant_by_window(samples: np.ndarray, rate: int, window_s: float = 0.5) -> list[int]:
    """The strongest frequency (Hz, rounded) of each window that is not silent."""
    n = int(rate * window_s)
    found = []
    for start in range(0, len(samples) - n, n):
        chunk = samples[start:start + n]
        if np.sqrt(np.mean(chunk ** 2)) < 0.01:
            continue
        spectrum = np.abs(np.fft.rfft(chunk * np.hanning(n)))
        found.append(round(float(np.argmax(spectrum)) * rate / n))
    return found


def runs(values: list[int], tolerance: int = 20, min_run: int = 3) -> list[int]:
    """The sequence of values held for at least `min_run` windows in a row."""
    out: list[int] = []
    count = 0
    for i, value in enumerate(values):
        count = count + 1 if i and abs(value - values[i - 1]) <= tolerance else 1
        if count == min_run and (not out or abs(out[-1] - value) > tolerance):
            out.append(value)
    return out


def near(freq: int, found: list[int], tolerance: int = 20) -> bool:
    """`freq` is among `found` (0.5 s windows: 2 Hz bins; the bridge's drift correction,
    catching up on a busy machine, bends a tone by up to 1 %)."""
    return any(abs(f - freq) <= tolerance for f in found)


def like(found: list[int], want: list[int], tolerance: int = 20) -> bool:
    """The same tones in the same order, each within `tolerance` (see `near`)."""
    return len(found) == len(want) and all(abs(f - w) <= tolerance
                                           for f, w in zip(found, want, strict=True))


def test_headset_plugged_in_mid_call_moves_both_directions_and_back(
        tmp_path: Path, pbx: Kamailio, make_baresip) -> None:
    """A headset jack switch (Linux input events, here through a FIFO) plugged in during a
    handset call moves speech both ways to the headset; pulling it out moves it back."""
    files = {}
    conf = tmp_path / "asoundrc"
    parts = []
    for path, freq in (("handset", 500), ("headset", 1500)):
        infile, outfile = tmp_path / f"{path}.in.raw", tmp_path / f"{path}.out.wav"
        infile.write_bytes(tone_raw(freq, 90))
        files[path] = outfile
        parts.append(
            f'pcm.{path}_cap {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
            f'  file "/dev/null"\n  infile "{infile}"\n  format "raw"\n}}\n'
            f'pcm.{path}_play {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
            f'  file "{outfile}"\n  format "wav"\n}}\n')
    conf.write_text("".join(parts))
    events = tmp_path / "headset-events"
    os.mkfifo(events)
    writer = os.open(events, os.O_RDWR)  # a writer exists before the phone opens it
    sim = (REPO_ROOT / "board" / "profiles" / "sim.toml").read_text()
    profile = tmp_path / "headset-deskphone.toml"
    profile.write_text(sim.replace('name = "sim"', 'name = "headset-test"') + (
        "\n[audio]\npace = true\n"
        '[audio.paths.handset]\ncapture = "handset_cap"\nplayback = "handset_play"\n'
        '[audio.paths.headset]\ncapture = "headset_cap"\nplayback = "headset_play"\n'
        f'[audio.jack]\nkind = "evdev"\ndevice = "{events}"\n'))
    far = make_baresip("1002", tone_hz=1000, auto_answer=True)
    line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx.port}", "Handset")
    phone = PhoneProcess(tmp_path / "phone", phone_config([line]), board=str(profile),
                         env={"ALSA_CONFIG_PATH": str(conf)}).start()

    def audio_on(path: str) -> None:
        phone.wait_status(lambda s: s["audio"]["path"] == path, 10, f"the sound on {path}")

    def plays(path: str, seconds: float) -> None:
        start = wav_bytes(files[path])
        wait_until(lambda: wav_bytes(files[path]) - start > seconds * RATE * 2, 20,
                   what=f"{seconds} s more of the call on the {path}")

    try:
        wait_registered(phone)
        assert phone.status()["audio"]["headset_detection"] == "evdev"
        phone.hook(True)
        phone.keys("1002")
        phone.wait_text("In call", 10)
        far.wait_event("CALL_ESTABLISHED", 10)
        plays("handset", 2)
        os.write(writer, pack_event(EV_SW, SW_HEADPHONE_INSERT, 1))
        audio_on("headset")
        assert "Headset" in phone.screen_text()
        assert phone.leds()["headset"]["pattern"] == "on"
        plays("headset", 2.5)
        os.write(writer, pack_event(EV_SW, SW_HEADPHONE_INSERT, 0))
        audio_on("handset")
        plays("handset", 2.5)
        assert phone.status()["calls"][0]["state"] == "connected"
        phone.hook(False)
        far.wait_event("CALL_CLOSED", 10)
    finally:
        phone.stop()
        os.close(writer)

    heard, rate = read_wav(far.wait_audio_files(1, 10)[0])
    assert like(runs(dominant_by_window(heard, rate)), [500, 1500, 500]), \
        "baresip did not hear handset, then headset, then handset"
    for path in ("headset", "handset"):  # the handset's file holds its last stretch
        samples, rate = read_wav(files[path])
        assert near(1000, runs(dominant_by_window(samples, rate), min_run=4)), \
            f"the far end's tone did not come out of the {path}"


def test_an_incoming_call_rings_on_the_ringer_device_until_answered(
        tmp_path: Path, pbx: Kamailio, make_baresip) -> None:
    """The ringtone (synthesised, Swedish cadence: 1 s on, 5 s off) comes out of the ringer's
    ALSA device while the call rings, and stops when the handset is lifted."""
    infile, outfile = tmp_path / "handset.in.raw", tmp_path / "handset.out.wav"
    infile.write_bytes(tone_raw(500, 30))
    ring_file = tmp_path / "ringer.wav"
    conf = write_alsa_config(tmp_path, infile, outfile)
    conf.write_text(conf.read_text() + (
        'pcm.ringer {\n  type file\n  slave { pcm { type null } }\n'
        f'  file "{ring_file}"\n  format "wav"\n}}\n'))
    profile = write_profile(tmp_path)
    profile.write_text(profile.read_text() + '[audio.paths.ringer]\nplayback = "ringer"\n')
    line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx.port}", "Handset")
    phone = PhoneProcess(tmp_path / "phone", phone_config([line]), board=str(profile),
                         env={"ALSA_CONFIG_PATH": str(conf)}).start()
    far = make_baresip("1002", tone_hz=1000)
    try:
        wait_registered(phone)
        far.dial(far.uri_of("1001"))
        phone.wait_text("Incoming call", 10)
        wait_until(lambda: wav_bytes(ring_file) > 2.2 * RATE * 2, 10,
                   what="2.2 s of ringing on the ringer device")
        ringer = phone.status()["audio"]["ringer"]
        assert ringer["ringing"] and ringer["ringtone"] == "classic"
        phone.hook(True)
        phone.wait_text("In call", 10)
        phone.wait_status(lambda s: not s["audio"]["ringer"]["ringing"], 5, "the ringing to end")
        phone.hook(False)
        far.wait_event("CALL_CLOSED", 10)
    finally:
        phone.stop()

    samples, rate = read_wav(ring_file)
    on, off = samples[: int(0.95 * rate)], samples[int(1.05 * rate): int(2.0 * rate)]
    spectrum = np.abs(np.fft.rfft(on * np.hanning(len(on))))
    strongest = sorted(round(float(i) * rate / len(on)) for i in np.argsort(spectrum)[-40:])
    assert any(abs(f - 1000) < 10 for f in strongest) and any(abs(f - 1250) < 10
                                                              for f in strongest)
    assert np.sqrt(np.mean(on ** 2)) > 0.01, "the ringtone is too quiet"
    assert np.sqrt(np.mean(off ** 2)) < 1e-3, "the ringer is not silent between rings"


def usb_headset_call(tmp_path: Path, pbx: Kamailio, make_baresip: Any, headset_pcms: str
                     ) -> tuple[PhoneProcess, Any]:
    """A phone whose handset plays 500 Hz into a call with baresip (1000 Hz), connected, and
    a USB headset (simulated jack) whose ALSA devices `headset_pcms` defines (or nobody)."""
    infile, outfile = tmp_path / "handset.in.raw", tmp_path / "handset.out.wav"
    infile.write_bytes(tone_raw(500, 90))
    conf = write_alsa_config(tmp_path, infile, outfile)
    conf.write_text(conf.read_text() + headset_pcms)
    profile = write_profile(tmp_path)
    profile.write_text(profile.read_text() + (
        '[audio.paths.headset]\ncapture = "usb_headset_cap"\nplayback = "usb_headset_play"\n'
        '[audio.jack]\nkind = "sim"\n'))
    far = make_baresip("1002", tone_hz=1000, auto_answer=True)
    line = LineSpec("1001", USERS["1001"], f"127.0.0.1:{pbx.port}", "Handset")
    phone = PhoneProcess(tmp_path / "phone", phone_config([line]), board=str(profile),
                         env={"ALSA_CONFIG_PATH": str(conf)}).start()
    try:
        wait_registered(phone)
        phone.hook(True)
        phone.keys("1002")
        phone.wait_text("In call", 10)
        far.wait_event("CALL_ESTABLISHED", 10)
    except BaseException:
        phone.stop()
        raise
    return phone, far


def goes_on_at_the_handset(phone: PhoneProcess, far: Any, outfile: Path,
                           seconds: float) -> None:
    """The headset failed: the screen says so, the status shows the call connected on the
    handset, `seconds` more of it come out of the handset; then the call is hung up."""
    phone.wait_text("Headset failed", 10)
    status = phone.status()
    assert status["audio"]["failed_paths"] == ["headset"]
    assert status["audio"]["path"] == "handset"
    assert status["calls"][0]["state"] == "connected"
    start = wav_bytes(outfile)
    wait_until(lambda: wav_bytes(outfile) - start > seconds * RATE * 2, 20,
               what="the call to go on at the handset")
    phone.hook(False)
    far.wait_event("CALL_CLOSED", 10)


def test_a_headset_that_cannot_be_opened_is_named_and_the_call_stays_on_the_handset(
        tmp_path: Path, pbx: Kamailio, make_baresip) -> None:
    """A headset plugged in whose ALSA devices do not exist (a USB headset whose card never
    came up): the screen says so, the log names the device, the call goes on at the handset."""
    outfile = tmp_path / "handset.out.wav"
    phone, far = usb_headset_call(tmp_path, pbx, make_baresip, "")
    try:
        phone.headset(True)
        goes_on_at_the_handset(phone, far, outfile, 2)
    finally:
        phone.stop()
    log = (tmp_path / "phone" / "phone.log").read_text()
    assert "headset: cannot open capture device 'usb_headset_cap'" in log


def test_a_headset_pulled_out_mid_call_is_named_and_the_call_moves_to_the_handset(
        tmp_path: Path, pbx: Kamailio, make_baresip) -> None:
    """A USB headset carrying a call is pulled out: its ALSA device starts failing (here the
    `file` plugin's pipe loses its reader, and alsa-lib reports an I/O error as a vanished USB
    card does). The screen and the log say so, the call goes on at the handset, both ways."""
    outfile = tmp_path / "handset.out.wav"
    head_in, head_out, head_pid = (tmp_path / "headset.in.raw", tmp_path / "headset.out.raw",
                                   tmp_path / "headset.pid")
    head_in.write_bytes(tone_raw(1500, 90))
    phone, far = usb_headset_call(tmp_path, pbx, make_baresip, (
        'pcm.usb_headset_cap {\n  type file\n  slave { pcm { type null } }\n'
        f'  file "/dev/null"\n  infile "{head_in}"\n  format "raw"\n}}\n'
        'pcm.usb_headset_play {\n  type file\n  slave { pcm { type null } }\n'
        f'  file "|echo $$ > {head_pid}; exec cat > {head_out}"\n  format "raw"\n}}\n'))
    try:
        phone.headset(True)
        phone.wait_status(lambda s: s["audio"]["path"] == "headset", 10, "the sound on headset")
        wait_until(lambda: head_pid.exists() and head_pid.read_text().strip().isdigit()
                   and head_out.exists() and head_out.stat().st_size > 2 * RATE * 2, 20,
                   what="2 s of the call out of the USB headset")
        os.kill(int(head_pid.read_text()), 9)  # the card is gone
        goes_on_at_the_handset(phone, far, outfile, 2.5)
    finally:
        phone.stop()
    log = (tmp_path / "phone" / "phone.log").read_text()
    assert "headset: cannot write to device 'usb_headset_play'" in log, log[-3000:]
    heard, rate = read_wav(far.wait_audio_files(1, 10)[0])
    assert like(runs(dominant_by_window(heard, rate)), [1500, 500]), \
        "baresip did not hear the headset, then the handset"
    out = np.frombuffer(head_out.read_bytes(), dtype="<i2").astype(np.float64) / 32768
    assert near(1000, runs(dominant_by_window(out, RATE), min_run=3)), \
        "the far end's tone did not come out of the headset before it was pulled"
    samples, rate = read_wav(outfile)
    assert near(1000, runs(dominant_by_window(samples[-int(2 * rate):], rate), min_run=3)), \
        "the far end's tone did not come out of the handset afterwards"
