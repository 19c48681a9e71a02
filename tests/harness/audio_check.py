"""Checks on recorded call audio (16-bit PCM WAV files, any rate, mono or stereo)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(wav_path: Path, skip_seconds: float = 0.0) -> tuple[np.ndarray, int]:
    """Samples as float in [-1, 1) (channels averaged to mono) and the sample rate.

    The first `skip_seconds` are dropped (call set-up, jitter buffer filling).
    Only 16-bit PCM is supported; raises ValueError otherwise.
    """
    with wave.open(str(wav_path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{wav_path}: only 16-bit PCM is supported")
        rate, channels = wav.getframerate(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    mono = samples.reshape(-1, channels).mean(axis=1)
    return mono[int(skip_seconds * rate) :], rate


def dominant_frequency(wav_path: Path, skip_seconds: float = 0.5) -> float:
    """Frequency (Hz) of the strongest spectral peak after `skip_seconds`.

    Uses a Hann-windowed FFT with parabolic peak interpolation, so the result
    is accurate to well under 1 Hz for a clean tone of a second or more.
    Raises ValueError if too little audio is left to analyse (< 0.1 s).
    """
    samples, rate = read_wav(wav_path, skip_seconds)
    if len(samples) < rate // 10:
        raise ValueError(f"{wav_path}: less than 0.1 s of audio after {skip_seconds}s")
    spectrum = np.abs(np.fft.rfft((samples - samples.mean()) * np.hanning(len(samples))))
    peak = int(np.argmax(spectrum[1:])) + 1
    return _interpolated_bin(spectrum, peak) * rate / len(samples)


def rms(wav_path: Path, skip_seconds: float = 0.0) -> float:
    """Root-mean-square level, 0.0 (silence) to 1.0 (full-scale square wave)."""
    samples, _ = read_wav(wav_path, skip_seconds)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def _interpolated_bin(spectrum: np.ndarray, peak: int) -> float:
    """Fractional bin of a peak, from a parabola through it and its neighbours."""
    if peak + 1 >= len(spectrum):
        return float(peak)
    left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
    denominator = left - 2 * centre + right
    return peak + (0.5 * (left - right) / denominator if denominator else 0.0)
