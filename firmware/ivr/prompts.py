"""Prompt files for the menus: generated ones, recorded ones, and speech made when needed.

Prompts live under a root as `<root>/<language>/<name>.wav` (16 kHz mono 16-bit), written at
install time by `python -m tools.prompts` with espeak-ng; a recorded WAV with the same name
replaces a generated one. `PromptLibrary.path()` finds a prompt (a missing Swedish one falls
back to the English one) and, should the install step not have written it, speaks its text
into the cache once. `PromptLibrary.spoken()` does the same for text that is not a fixed prompt:
the user's name, a custom referral type. espeak-ng and sox are installed by the set-up script.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

from firmware.ivr_speech import PROMPT_TEXTS, TONE

log = logging.getLogger("luren.prompts")

VOICES = {"sv": "sv", "en": "en"}
SAMPLE_RATE = 16000
SPEECH_TOOLS = ("espeak-ng", "sox")
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "prompts"
"""Where the set-up script writes the prompts (beside the firmware)."""


class SpeechError(RuntimeError):
    """espeak-ng or sox is missing or failed; the message says which and why."""


def prompt_path(root: Path, language: str, name: str) -> Path:
    """root/<language>/<name>.wav; a missing Swedish prompt falls back to English (logged).

    Raises FileNotFoundError when no file exists.
    """
    wanted = Path(root) / language / f"{name}.wav"
    if wanted.is_file():
        return wanted
    fallback = Path(root) / "en" / f"{name}.wav"
    if language != "en" and fallback.is_file():
        log.warning("prompt %s missing in %s, playing the English one", name, language)
        return fallback
    raise FileNotFoundError(f"no prompt {name!r} for {language!r} under {root}")


def missing_tools() -> list[str]:
    return [tool for tool in SPEECH_TOOLS if shutil.which(tool) is None]


def speak(text: str, language: str, out: Path) -> None:
    """Speak `text` into `out` as a 16 kHz mono 16-bit WAV; written atomically."""
    missing = missing_tools()
    if missing:
        raise SpeechError(f"missing {', '.join(missing)}: install it "
                          f"(apt-get install {' '.join(missing)}) and run again")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw, converted = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        _run(["espeak-ng", "-v", VOICES[language], "-w", str(raw), "--", text])
        _run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
              "-e", "signed-integer", str(converted)])
        os.replace(converted, out)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SpeechError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}")


def write_tone(out: Path, hz: int = 1000, ms: int = 400) -> None:
    """The beep before a recording: a sine at -10 dBFS with 10 ms ramps; written atomically."""
    count = SAMPLE_RATE * ms // 1000
    ramp = SAMPLE_RATE // 100
    peak = 0.316 * 32767
    samples = bytearray()
    for n in range(count):
        gain = min(1.0, n / ramp, (count - 1 - n) / ramp)
        value = int(peak * gain * math.sin(2 * math.pi * hz * n / SAMPLE_RATE))
        samples += value.to_bytes(2, "little", signed=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(samples))
    os.replace(tmp, out)


class PromptLibrary:
    """Finds prompt files under `root`, making the ones that are missing in `cache`."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root, self.cache = Path(root), Path(cache)

    def path(self, name: str, language: str) -> Path | None:
        """The file for a fixed prompt name; None (logged) when there is none and it cannot
        be made."""
        try:
            return prompt_path(self.root, language, name)
        except FileNotFoundError:
            pass
        made = self.cache / language / f"{name}.wav"
        if made.is_file():
            return made
        if name == TONE:
            write_tone(made)
            return made
        text = PROMPT_TEXTS.get(name, {}).get(language)
        if text is None:
            log.error("no prompt called %r (%s): skipped", name, language)
            return None
        return self._speak(text, language, made)

    def spoken(self, text: str, language: str) -> Path | None:
        """`text` spoken in `language` (cached by its words); None when speech fails."""
        key = hashlib.sha1(f"{language}\0{text}".encode()).hexdigest()[:16]
        made = self.cache / language / f"say-{key}.wav"
        return made if made.is_file() else self._speak(text, language, made)

    @staticmethod
    def _speak(text: str, language: str, out: Path) -> Path | None:
        try:
            speak(text, language, out)
        except (SpeechError, OSError) as exc:
            log.error("cannot speak %r (%s): %s", text[:40], language, exc)
            return None
        log.info("spoke %r (%s) into %s", text[:40], language, out.name)
        return out
