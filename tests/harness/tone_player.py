"""Call-progress tones as the SIP engine plays them, recorded: one terminal per tone.

    python -m tests.harness.tone_player OUT SECONDS se:dial us:busy ...

Starts the phone's `SipEngine` (pjsua2, null sound device) with one terminal per tone asked for,
opens each terminal's earpiece (a WAV recorder under OUT) and plays its tone there with the
segments of the country's `ToneSet`, exactly as a terminal does; after SECONDS closes them and
prints one JSON line: {"se:dial": "OUT/audio/earpiece-0001.wav", "us:busy":
"OUT/audio/handset2/earpiece-0001.wav", ...}. Run in a process of its
own because pjsua2 allows one library per process.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from audio.tones import ToneSet, tone_set
from firmware.config import parse_config
from firmware.sip.engine import SipEngine


def main(argv: list[str]) -> int:
    out, seconds, wanted = Path(argv[0]), float(argv[1]), argv[2:]
    config = parse_config({"provisioning": {"url": "https://127.0.0.1:9/"},  # no lines yet
                           "sip": {"port": 0}})
    engine = SipEngine(config, lambda event: None, out, terminals=len(wanted))
    engine.start()
    try:
        for terminal, spec in enumerate(wanted):
            country, name = spec.split(":")
            engine.open_audio_path(terminal)
            engine.play_tone(name, tone_set(country).tone(name), ToneSet.loops(name),
                             terminal=terminal)
        threading.Event().wait(seconds)  # the recording itself is what is measured
        for terminal in range(len(wanted)):
            engine.close_audio_path(terminal)
    finally:
        engine.stop()  # the recorders are destroyed, their WAV headers written
    audio = out / "audio"
    paths = [audio / "earpiece-0001.wav"] + [
        audio / f"handset{n}" / "earpiece-0001.wav" for n in range(2, len(wanted) + 1)]
    print(json.dumps({spec: str(path) for spec, path in zip(wanted, paths, strict=True)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
