"""Voice prompts for the voicemail and referral menus, spoken by espeak-ng at install time.

    python -m tools.prompts OUTDIR [--language sv|en] [--force] [--only NAME,NAME] [--jobs N]

Writes every `firmware.ivr_speech.PROMPT_TEXTS` entry as OUTDIR/<language>/<name>.wav, 16 kHz
mono 16-bit (espeak-ng voice "sv" or "en", converted with sox), and the recording tone
(tone.wav, a 1 kHz beep). Without --language both
languages are written. A file that already exists is kept unless --force, so a recorded WAV
with the same name replaces the generated one and a second run does nothing.

`prompt_path(root, language, name)` (firmware.ivr.prompts) finds a prompt to play, falling
back to English when the Swedish file is missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from firmware.ivr.prompts import SpeechError, missing_tools, prompt_path, speak, write_tone
from firmware.ivr_speech import LANGUAGES, PROMPT_TEXTS, TONE

log = logging.getLogger("luren.prompts")
__all__ = ["PromptToolError", "Summary", "generate", "main", "prompt_path"]

PromptToolError = SpeechError
"""A required program is missing or a prompt could not be rendered."""


@dataclass
class Summary:
    """What one run did for one language: names written, kept (already there) and failed."""

    language: str
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        return (f"{self.language}: {len(self.written)} written, {len(self.kept)} kept, "
                f"{len(self.failed)} failed")


def generate(root: Path, language: str, *, names: Iterable[str] | None = None,
             force: bool = False, jobs: int | None = None) -> Summary:
    """Write the prompts `names` (default all, and the tone) for `language` under
    root/<language>/."""
    missing = missing_tools()
    if missing:
        raise PromptToolError(f"missing {', '.join(missing)}: install it "
                              f"(apt-get install {' '.join(missing)}) and run again")
    summary = Summary(language)
    tone = Path(root) / language / f"{TONE}.wav"
    if names is None and (force or not tone.exists()):
        write_tone(tone)
        summary.written.append(TONE)
    elif names is None:
        summary.kept.append(TONE)
    todo = []
    for name in sorted(set(PROMPT_TEXTS if names is None else names)):
        out = Path(root) / language / f"{name}.wav"
        if out.exists() and not force:
            summary.kept.append(name)
        else:
            todo.append((name, out))
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        results = pool.map(lambda item: _render_one(item[0], language, item[1]), todo)
        for (name, _), error in zip(todo, results, strict=True):
            if error:
                summary.failed[name] = error
            else:
                summary.written.append(name)
    return summary


def _render_one(name: str, language: str, out: Path) -> str:
    try:
        speak(PROMPT_TEXTS[name][language], language, out)
    except PromptToolError as error:
        return str(error)
    return ""


def _names(only: str | None) -> list[str] | None:
    if not only:
        return None
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROMPT_TEXTS]
    if unknown:
        raise PromptToolError(f"unknown prompt names: {', '.join(unknown)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.prompts", description=__doc__.split(
        "\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--language", choices=LANGUAGES, help="one language (default: all)")
    parser.add_argument("--force", action="store_true", help="overwrite existing WAVs")
    parser.add_argument("--only", help="comma-separated prompt names (default: all)")
    parser.add_argument("--jobs", type=int, help="parallel renders (default: CPU count)")
    args = parser.parse_args(argv)
    try:
        names = _names(args.only)
        summaries = [generate(args.outdir, lang, names=names, force=args.force, jobs=args.jobs)
                     for lang in ([args.language] if args.language else LANGUAGES)]
    except PromptToolError as error:
        print(f"prompts: {error}", file=sys.stderr)
        return 2
    for summary in summaries:
        print(summary.line())
        for name, error in summary.failed.items():
            print(f"  {name}: {error}", file=sys.stderr)
    return 1 if any(s.failed for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
