"""In-band DTMF (audio/dtmf.py): the ITU-T Q.24 conformance grid, talk-off on speech and music,
streaming, and the generator. Every case runs at 8 and 16 kHz.

Twist is the high-group level minus the low-group level (+4 dB: the high tone 4 dB louder).
Levels are the power of both tones together, in dBm0.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
from array import array
from pathlib import Path
from typing import Any

import pytest

from audio.dtmf import DIGITS, ZERO_DBM0_PEAK, DtmfDetector, DtmfEvent, dtmf_pcm

RATES = (8000, 16000)
LEADS_MS = (0.0, 1.5, 3.0)  # where the tones start against the detector's 4.4 ms sub-blocks


def silence(rate: int, ms: float) -> bytes:
    return bytes(2 * round(rate * ms / 1000))


def detect(pcm: bytes, rate: int, chunk_samples: int | None = None) -> list[DtmfEvent]:
    """Every key in pcm, fed whole or in chunks, including one still sounding at the end."""
    detector = DtmfDetector(rate)
    step = 2 * chunk_samples if chunk_samples else max(len(pcm), 1)
    events = [e for i in range(0, len(pcm), step) for e in detector.feed(pcm[i:i + step])]
    return events + detector.flush()


def keys(pcm: bytes, rate: int) -> str:
    return "".join(e.digit for e in detect(pcm, rate))


def all_digits(rate: int, lead_ms: float = 0.0, **tone: Any) -> bytes:
    """Every digit once, after a short silence."""
    tone.setdefault("off_ms", 60)
    return silence(rate, 20 + lead_ms) + dtmf_pcm(DIGITS, rate, **tone)


def add_noise(pcm: bytes, snr_db: float, level_dbm0: float, seed: int) -> bytes:
    """White Gaussian noise snr_db below a signal of level_dbm0 (seeded)."""
    rng = random.Random(seed)
    power = ZERO_DBM0_PEAK**2 / 2 * 10 ** ((level_dbm0 - snr_db) / 10)
    sigma = math.sqrt(power)
    noisy = (round(v + rng.gauss(0.0, sigma)) for v in array("h", pcm))
    return array("h", (max(-32768, min(32767, v)) for v in noisy)).tobytes()


def rms(pcm: bytes) -> float:
    samples = array("h", pcm)
    return math.sqrt(sum(v * v for v in samples) / len(samples))


# --- Q.24: frequencies ---------------------------------------------------------------------

@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("digit", DIGITS)
def test_every_digit_at_nominal_frequencies_once_with_its_times(rate: int, digit: str) -> None:
    start = round(0.0312 * rate)
    pcm = bytes(2 * start) + dtmf_pcm(digit, rate, on_ms=70, off_ms=80)
    events = detect(pcm, rate)
    assert [e.digit for e in events] == [digit]
    tolerance = 5 * rate // 1000  # 5 ms
    assert abs(events[0].start - start) <= tolerance
    assert abs(events[0].end - (start + 70 * rate // 1000)) <= tolerance


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("group", ["low", "high"])
@pytest.mark.parametrize(("error", "detected"), [
    (0.015, True), (-0.015, True), (0.035, False), (-0.035, False)],
    ids=["+1.5%", "-1.5%", "+3.5%", "-3.5%"])
def test_frequency_error_on_each_component(rate: int, group: str, error: float,
                                           detected: bool) -> None:
    offsets = (error, 0.0) if group == "low" else (0.0, error)
    pcm = all_digits(rate, freq_error=offsets)
    assert keys(pcm, rate) == (DIGITS if detected else "")


@pytest.mark.parametrize("rate", RATES)
def test_frequency_error_on_both_components_at_the_worst_twist(rate: int) -> None:
    for offsets in ((0.015, 0.015), (0.015, -0.015), (-0.015, 0.015), (-0.015, -0.015)):
        for twist in (-8.0, 4.0):
            pcm = all_digits(rate, freq_error=offsets, twist_db=twist)
            assert keys(pcm, rate) == DIGITS, (offsets, twist)


# --- Q.24: duration, pauses, breaks --------------------------------------------------------

@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("lead_ms", LEADS_MS)
@pytest.mark.parametrize(("on_ms", "detected"), [(40, True), (23, False)])
def test_tone_duration(rate: int, lead_ms: float, on_ms: float, detected: bool) -> None:
    pcm = all_digits(rate, lead_ms, on_ms=on_ms)
    assert keys(pcm, rate) == (DIGITS if detected else "")


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("lead_ms", LEADS_MS)
@pytest.mark.parametrize("digits", ["1234567890", "5555", "#*#*", "ABCD", "00##"])
def test_40_ms_tones_with_40_ms_pauses_are_all_detected(rate: int, lead_ms: float,
                                                        digits: str) -> None:
    pcm = silence(rate, 20 + lead_ms) + dtmf_pcm(digits, rate, on_ms=40, off_ms=40)
    assert keys(pcm, rate) == digits


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("lead_ms", LEADS_MS)
@pytest.mark.parametrize("break_ms", [5, 10])
def test_a_short_break_in_a_tone_is_one_key(rate: int, lead_ms: float, break_ms: int) -> None:
    pcm = (silence(rate, 20 + lead_ms) + dtmf_pcm("7", rate, on_ms=80, off_ms=break_ms)
           + dtmf_pcm("7", rate, on_ms=80, off_ms=60))
    events = detect(pcm, rate)
    assert [e.digit for e in events] == ["7"]
    assert events[0].end - events[0].start > 160 * rate // 1000


# --- Q.24: twist, level, noise ---------------------------------------------------------------

@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("twist_db", "detected"), [
    (4.0, True), (-8.0, True), (0.0, True), (6.0, False), (-10.0, False)])
def test_twist(rate: int, twist_db: float, detected: bool) -> None:
    assert keys(all_digits(rate, twist_db=twist_db), rate) == (DIGITS if detected else "")


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("level_dbm0", [-25, -20, -15, -10, -5, 0])
def test_signal_level(rate: int, level_dbm0: float) -> None:
    assert keys(all_digits(rate, level_dbm0=level_dbm0), rate) == DIGITS


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("level_dbm0", [-25, -10])
def test_white_noise_at_15_db_snr(rate: int, seed: int, level_dbm0: float) -> None:
    clean = all_digits(rate, on_ms=40, off_ms=40, level_dbm0=level_dbm0)
    noisy = add_noise(clean + silence(rate, 40), 15.0, level_dbm0, seed)
    assert keys(noisy, rate) == DIGITS


@pytest.mark.parametrize("rate", RATES)
def test_measured_figures_match_the_generated_tones(rate: int) -> None:
    detector = DtmfDetector(rate)
    pcm = dtmf_pcm("8", rate, on_ms=50, twist_db=-6.0, freq_error=(0.012, -0.01))
    detector.feed(silence(rate, 20) + pcm)
    figures = detector.last_figures
    assert figures is not None and figures.digit == "8"
    assert figures.twist_db == pytest.approx(-6.0, abs=0.5)
    assert figures.freq_error[0] == pytest.approx(0.012, abs=0.002)
    assert figures.freq_error[1] == pytest.approx(-0.01, abs=0.002)
    assert figures.tone_ratio == pytest.approx(1.0, abs=0.1)


def test_a_dc_offset_does_not_hide_a_key() -> None:
    samples = array("h", all_digits(8000, level_dbm0=-25))
    shifted = array("h", (v + 1500 for v in samples)).tobytes()
    assert keys(shifted, 8000) == DIGITS


# --- streaming -------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", RATES)
def test_chunk_sizes_give_identical_events(rate: int) -> None:
    pcm = add_noise(all_digits(rate, on_ms=45, off_ms=45) + silence(rate, 30), 20.0, -10.0, 7)
    whole = detect(pcm, rate)
    assert "".join(e.digit for e in whole) == DIGITS
    for chunk in (1, 7, 160, 320):
        assert detect(pcm, rate, chunk) == whole, chunk
    odd_bytes = DtmfDetector(rate)
    events = [e for i in range(0, len(pcm), 3) for e in odd_bytes.feed(pcm[i:i + 3])]
    assert events + odd_bytes.flush() == whole


def test_held_shows_the_key_while_it_sounds_and_flush_ends_it() -> None:
    detector = DtmfDetector(8000)
    assert detector.feed(silence(8000, 20) + dtmf_pcm("#", 8000, on_ms=200, off_ms=0)) == []
    assert detector.held == "#"
    events = detector.flush()
    assert [e.digit for e in events] == ["#"]
    assert detector.held is None
    assert detector.flush() == []


def test_reset_starts_the_sample_count_again() -> None:
    detector = DtmfDetector(8000)
    pcm = silence(8000, 20) + dtmf_pcm("3", 8000)
    first = detector.feed(pcm)
    detector.reset()
    assert detector.feed(pcm) == first


@pytest.mark.parametrize("rate", [24000, 48000])
def test_higher_rates_work_too(rate: int) -> None:
    assert keys(all_digits(rate), rate) == DIGITS


@pytest.mark.parametrize("rate", [0, 11025, 22050, 44100, 96000])
def test_unsupported_rates_are_refused(rate: int) -> None:
    with pytest.raises(ValueError, match="samples/s"):
        DtmfDetector(rate)


# --- talk-off --------------------------------------------------------------------------------

SPEECH = {
    "sv": ("Ett, två, tre, fyra, fem, sex, sju, åtta, nio, tio. Välkommen till röstbrevlådan. "
           "Du har tre nya meddelanden. Tryck ett för att lyssna, två för att radera, eller "
           "fyrkant för att gå tillbaka. Numret är noll åtta, femhundrafemtiofem, tjugotvå "
           "tjugotvå. Sju sjösjuka sjömän sköttes av sju sköna sjuksköterskor. Hej hej, hur mår "
           "du idag? Mmm, aaah, eeee, ooooh."),
    "en": ("One, two, three, four, five, six, seven, eight, nine, ten. The quick brown fox "
           "jumps over the lazy dog. You have three new messages. Press one to listen, two to "
           "delete, or hash to go back. Call me at five five five, one two three four, "
           "extension eighty eight. She sells sea shells by the sea shore. Hello, is anybody "
           "there? Mmm, aaah, eeee, ooooh."),
}
VOICES = {"plain": [], "high-slow": ["-p", "80", "-s", "120"],
          "low-fast": ["-p", "20", "-s", "200"]}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the talk-off test needs espeak-ng and sox "
                    f"(sh tools/setup.sh test installs them; on Debian: apt-get install "
                    f"espeak-ng sox)")
    return path


@pytest.fixture(scope="module")
def speech_wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """espeak-ng speaking the SPEECH texts in every VOICES variant, as WAV files."""
    espeak = _tool("espeak-ng")
    folder = tmp_path_factory.mktemp("speech")
    wavs = {}
    for lang, text in SPEECH.items():
        for variant, options in VOICES.items():
            wav = folder / f"{lang}-{variant}.wav"
            subprocess.run([espeak, "-v", lang, *options, "-w", str(wav), text], check=True,
                           capture_output=True, timeout=60)
            wavs[f"{lang}-{variant}"] = wav
    return wavs


def resampled(wav: Path, rate: int, peak_db: float) -> bytes:
    """The WAV as 16-bit little-endian mono PCM at rate, its peak at peak_db dBFS (sox)."""
    sox = _tool("sox")
    done = subprocess.run(
        [sox, str(wav), "-t", "raw", "-r", str(rate), "-e", "signed-integer", "-b", "16",
         "-c", "1", "-L", "-", "gain", "-n", str(peak_db)], check=True, capture_output=True,
        timeout=60)
    return done.stdout


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("lang", list(SPEECH))
def test_no_digit_in_speech(speech_wavs: dict[str, Path], rate: int, lang: str) -> None:
    seconds = 0.0
    for variant in VOICES:
        for peak_db in (-1, -21):
            pcm = resampled(speech_wavs[f"{lang}-{variant}"], rate, peak_db)
            seconds += len(pcm) / 2 / rate
            assert detect(pcm, rate) == [], (variant, peak_db)
    assert seconds > 100


def chord(notes: list[float], partials: int, rate: int, ms: float, rng: random.Random) -> list[int]:
    """Notes with `partials` harmonics each (the k-th at 1/k), at about -10 dBm0."""
    parts = [(2 * math.pi * k * f / rate, 1 / k, rng.uniform(0, 2 * math.pi))
             for f in notes for k in range(1, partials + 1) if k * f < 0.45 * rate]
    scale = 0.3 * ZERO_DBM0_PEAK / math.sqrt(sum(a * a for _, a, _ in parts) / 2)
    return [round(scale * sum(a * math.sin(w * n + p) for w, a, p in parts))
            for n in range(round(rate * ms / 1000))]


@pytest.mark.parametrize("rate", RATES)
def test_no_digit_in_music_like_chords(rate: int) -> None:
    rng = random.Random(1)
    samples: list[int] = []
    for _ in range(40):  # random chords of 2 to 4 equal-tempered notes, C3 to B5
        notes = [440 * 2 ** (rng.randrange(-21, 15) / 12) for _ in range(rng.choice((2, 3, 4)))]
        samples += chord(notes, rng.choice((1, 2, 3, 6)), rate, 250, rng)
    for low in (697, 770, 852, 941):  # the DTMF pairs themselves, played with harmonics
        for high in (1209, 1336, 1477, 1633):
            samples += chord([low, high], rng.choice((2, 3, 4)), rate, 150, rng)
    assert detect(array("h", samples).tobytes(), rate) == []


# --- the generator ---------------------------------------------------------------------------

def test_dtmf_pcm_length_level_and_no_clipping() -> None:
    pcm = dtmf_pcm("12", 8000, on_ms=50, off_ms=25)
    assert len(pcm) == 2 * 2 * (400 + 200)
    tone = pcm[:800]
    assert 20 * math.log10(rms(tone) / (ZERO_DBM0_PEAK / math.sqrt(2))) == pytest.approx(
        -10.0, abs=0.1)
    assert pcm[800:1200] == bytes(400)
    for twist in (-8.0, 0.0, 4.0):
        loud = array("h", dtmf_pcm("D", 16000, level_dbm0=0, twist_db=twist, off_ms=0))
        assert max(map(abs, loud)) < 32767


def test_dtmf_pcm_twist_and_letters() -> None:
    assert dtmf_pcm("abcd", 8000) == dtmf_pcm("ABCD", 8000)
    louder_high = dtmf_pcm("1", 8000, twist_db=6.0, off_ms=0)
    detector = DtmfDetector(8000)
    detector.feed(louder_high)
    assert detector.last_figures is not None
    assert detector.last_figures.twist_db == pytest.approx(6.0, abs=0.3)


def test_dtmf_pcm_refuses_what_is_not_a_digit() -> None:
    with pytest.raises(ValueError, match="not a DTMF digit"):
        dtmf_pcm("12x", 8000)
