"""The prompt tool (tools/prompts.py) with the real espeak-ng and sox: 16 kHz mono WAVs with
speech in them, recorded prompts kept, idempotent runs, English fallback, missing programs.
"""

from __future__ import annotations

import array
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from firmware.ivr_speech import LANGUAGES, PROMPT_TEXTS
from tools.prompts import generate, main, prompt_path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                       reason="needs espeak-ng and sox"),
]

SAMPLE = ["0", "13", "thousand", "ord_14", "tuesday", "p_m", "referral_lunch", "owner_main_menu",
          "goodbye"]


def _read(path: Path) -> tuple[wave._wave_params, array.array]:
    with wave.open(str(path)) as wav:
        params = wav.getparams()
        samples = array.array("h", wav.readframes(params.nframes))
    return params, samples


def _assert_speech(path: Path, min_s: float, max_s: float) -> None:
    params, samples = _read(path)
    assert (params.framerate, params.nchannels, params.sampwidth) == (16000, 1, 2), path
    assert min_s <= params.nframes / params.framerate <= max_s, path
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 300, f"{path} is nearly silent (rms {rms:.0f})"


def test_full_run_both_languages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for language in LANGUAGES:
        # every spoken prompt, and the tone before recordings
        assert f"{language}: {len(PROMPT_TEXTS) + 1} written, 0 kept, 0 failed" in out
        assert (tmp_path / language / "tone.wav").is_file()
        assert {p.stem for p in (tmp_path / language).glob("*.wav")} == {*PROMPT_TEXTS, "tone"}
        for name in SAMPLE[:-2]:
            _assert_speech(tmp_path / language / f"{name}.wav", 0.2, 4.0)
        _assert_speech(tmp_path / language / "owner_main_menu.wav", 6.0, 30.0)
        _assert_speech(tmp_path / language / "goodbye.wav", 0.3, 3.0)
    assert main([str(tmp_path)]) == 0
    assert f"sv: 0 written, {len(PROMPT_TEXTS) + 1} kept" in capsys.readouterr().out


def test_recorded_prompt_wins_unless_forced(tmp_path: Path) -> None:
    recorded = tmp_path / "sv" / "goodbye.wav"
    recorded.parent.mkdir(parents=True)
    recorded.write_bytes(b"a recording")
    summary = generate(tmp_path, "sv", names=["goodbye", "13"])
    assert (summary.written, summary.kept, summary.failed) == (["13"], ["goodbye"], {})
    assert recorded.read_bytes() == b"a recording"
    generate(tmp_path, "sv", names=["goodbye"], force=True)
    _assert_speech(recorded, 0.3, 3.0)


def test_languages_sound_different(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--only", "owner_main_menu,7"]) == 0
    assert (tmp_path / "sv" / "7.wav").read_bytes() != (tmp_path / "en" / "7.wav").read_bytes()
    assert not (tmp_path / "sv" / "8.wav").exists()


def test_prompt_path_falls_back_to_english(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    generate(tmp_path, "en", names=["goodbye", "7"])
    generate(tmp_path, "sv", names=["7"])
    assert prompt_path(tmp_path, "sv", "7") == tmp_path / "sv" / "7.wav"
    assert prompt_path(tmp_path, "sv", "goodbye") == tmp_path / "en" / "goodbye.wav"
    assert "goodbye" in caplog.text
    with pytest.raises(FileNotFoundError):
        prompt_path(tmp_path, "en", "owner_main_menu")


def test_unknown_name_and_missing_programs(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--only", "nope"]) == 2
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "tools.prompts", str(tmp_path / "out")],
                            capture_output=True, text=True, env={"PATH": str(empty)},
                            cwd=Path(__file__).resolve().parents[2], check=False)
    assert result.returncode == 2
    assert "missing espeak-ng, sox" in result.stderr
    assert not (tmp_path / "out").exists()
