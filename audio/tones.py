"""Call-progress tones and ring cadences per country (ITU-T E.180 / national specifications).

Pure data: the SIP engine turns the segments into a tone generator on the media bridge, the
ringer uses the cadence. Sweden is the default.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTINUOUS_MS = 30_000  # pjmedia tone durations are 16-bit milliseconds


@dataclass(frozen=True)
class ToneSegment:
    """One step of a cadence: freq2 is 0 for a single tone; off_ms is silence after it."""

    freq1: int
    freq2: int
    on_ms: int
    off_ms: int


@dataclass(frozen=True)
class ToneSet:
    country: str
    dial: tuple[ToneSegment, ...]
    ringback: tuple[ToneSegment, ...]
    busy: tuple[ToneSegment, ...]
    congestion: tuple[ToneSegment, ...]
    call_waiting: tuple[ToneSegment, ...]
    ring_cadence_s: tuple[float, float]

    def tone(self, name: str) -> list[ToneSegment]:
        """Segments of `dial`, `ringback`, `busy`, `congestion` or `call_waiting`."""
        if name not in TONE_NAMES:
            raise KeyError(f"unknown tone {name!r}; known: {', '.join(TONE_NAMES)}")
        return list(getattr(self, name))


TONE_NAMES = ("dial", "ringback", "busy", "congestion", "call_waiting")


def _s(f1: int, on: int, off: int, f2: int = 0) -> ToneSegment:
    return ToneSegment(f1, f2, on, off)


TONE_SETS: dict[str, ToneSet] = {
    "se": ToneSet("se", dial=(_s(425, CONTINUOUS_MS, 0),),
                  ringback=(_s(425, 1000, 5000),), busy=(_s(425, 250, 250),),
                  congestion=(_s(425, 250, 750),),
                  call_waiting=(_s(425, 200, 500), _s(425, 200, 9100)),
                  ring_cadence_s=(1.0, 5.0)),
    "de": ToneSet("de", dial=(_s(425, CONTINUOUS_MS, 0),),
                  ringback=(_s(425, 1000, 4000),), busy=(_s(425, 480, 480),),
                  congestion=(_s(425, 240, 240),),
                  call_waiting=(_s(425, 200, 200), _s(425, 200, 5000)),
                  ring_cadence_s=(1.0, 4.0)),
    "gb": ToneSet("gb", dial=(_s(350, CONTINUOUS_MS, 0, 440),),
                  ringback=(_s(400, 400, 200, 450), _s(400, 400, 2000, 450)),
                  busy=(_s(400, 375, 375),),
                  congestion=(_s(400, 400, 350), _s(400, 225, 525)),
                  call_waiting=(_s(400, 100, 3000),),
                  ring_cadence_s=(1.2, 2.0)),
    "us": ToneSet("us", dial=(_s(350, CONTINUOUS_MS, 0, 440),),
                  ringback=(_s(440, 2000, 4000, 480),), busy=(_s(480, 500, 500, 620),),
                  congestion=(_s(480, 250, 250, 620),),
                  call_waiting=(_s(440, 300, 9700),),
                  ring_cadence_s=(2.0, 4.0)),
}


def tone_set(country: str) -> ToneSet:
    try:
        return TONE_SETS[country]
    except KeyError:
        raise KeyError(f"no call-progress tones for country {country!r}; "
                       f"known: {', '.join(sorted(TONE_SETS))}") from None
