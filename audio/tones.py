"""Call-progress tones and ring cadences per country (ITU-T E.180 / national specifications).

Pure data: the SIP engine turns the segments into a tone generator on the media bridge
(pjmedia plays each segment's freq1 + freq2 for on_ms, then silence for off_ms, and loops
the list), `audio.synth` renders the same segments to PCM in-process, and the ringer uses
`ToneSet.ring_cadence_ms`. Sweden is the default.

Where the values come from (full table with notes: docs/tones.md):

- "E.180 Suppl. 2" is the list of national tones the ITU keeps under Recommendation E.180
  ("Various tones used in national networks", Annex to ITU Operational Bulletin No. 781,
  1.II.2003, itu.int/ITU-T/inr/forms/files/tones-0203.pdf), as transcribed country by country
  in dahdi-tools `zonedata.c` and Asterisk `configs/samples/indications.conf.sample`.
- BT SIN 350 for the United Kingdom; ANSI T1.401 / Telcordia GR-506 (LSSGR) for the US.
- The confirmation tone (E.180's "positive indication tone") is not in the national lists for
  most of these countries. Luren plays three 100 ms bursts of the country's dial-tone
  frequencies, the North American confirmation tone (GR-506) transposed; this is a choice,
  marked as such in each country's comment.
- The error tone is the special information tone (E.180: 950/1400/1800 Hz, each about
  330 ms, then 1 s silence, repeated) in each country's national form; the US uses its own
  SIT (ANSI T1.401).
"""

from __future__ import annotations

from dataclasses import dataclass

CONTINUOUS_MS = 30_000  # pjmedia tone durations are 16-bit milliseconds
MAX_MS = 32_767  # the largest on_ms/off_ms pjmedia's ToneDesc can hold
DEFAULT_COUNTRY = "se"


@dataclass(frozen=True)
class ToneSegment:
    """One step of a cadence: freq2 is 0 for a single tone; off_ms is silence after it."""

    freq1: int
    freq2: int
    on_ms: int
    off_ms: int

    @property
    def freqs(self) -> tuple[int, ...]:
        """The frequencies sounding in this segment (one or two, zeros left out)."""
        return tuple(f for f in (self.freq1, self.freq2) if f)


TONE_NAMES = ("dial", "ringback", "busy", "congestion", "call_waiting", "confirmation",
              "error")
ONE_SHOT_TONES = frozenset({"confirmation"})  # play once; every other tone loops


@dataclass(frozen=True)
class ToneSet:
    """One country's tones; each tone is a cadence of segments that loops (see `loops`)."""

    country: str
    name: str
    dial: tuple[ToneSegment, ...]
    ringback: tuple[ToneSegment, ...]
    busy: tuple[ToneSegment, ...]
    congestion: tuple[ToneSegment, ...]
    call_waiting: tuple[ToneSegment, ...]
    confirmation: tuple[ToneSegment, ...]
    error: tuple[ToneSegment, ...]
    ring_cadence_ms: tuple[int, ...]  # the local ringer: on, off[, on, off ...] in ms

    def tone(self, name: str) -> list[ToneSegment]:
        """Segments of one of `TONE_NAMES` (`dial`, `ringback`, `busy`, ...)."""
        if name not in TONE_NAMES:
            raise KeyError(f"unknown tone {name!r}; known: {', '.join(TONE_NAMES)}")
        return list(getattr(self, name))

    @staticmethod
    def loops(name: str) -> bool:
        """Whether the tone repeats until stopped (all but the one-shot confirmation)."""
        return name not in ONE_SHOT_TONES

    @property
    def ring_cadence_s(self) -> tuple[float, float]:
        """(ringing, silence) in seconds; a double ring counts as one ring of its full span.

        on + off is the ring period, so a caller can count rings with one timer.
        """
        *ringing, silence = self.ring_cadence_ms
        return sum(ringing) / 1000, silence / 1000


def _s(f1: int, on: int, off: int, f2: int = 0) -> ToneSegment:
    return ToneSegment(f1, f2, on, off)


def _continuous(f1: int, f2: int = 0) -> tuple[ToneSegment, ...]:
    return (_s(f1, CONTINUOUS_MS, 0, f2),)


def _bursts(f1: int, f2: int = 0, count: int = 3, on: int = 100,
            off: int = 100) -> tuple[ToneSegment, ...]:
    """`count` short bursts: Luren's confirmation tone (GR-506 style, 3 x 100/100 ms)."""
    return tuple(_s(f1, on, off, f2) for _ in range(count))


# E.180 special information tone: 950, 1400, 1800 Hz, 330 ms each, 1 s silence.
_SIT_E180 = (_s(950, 330, 0), _s(1400, 330, 0), _s(1800, 330, 1000))

TONE_SETS: dict[str, ToneSet] = {
    # Sweden (default). E.180 Suppl. 2: dial 425 Hz continuous; ringing 425 Hz
    # 1 s on / 5 s off; busy 425 Hz 250/250 ms; congestion 425 Hz 250/750 ms; call waiting
    # 425 Hz 200 on 500 off 200 on 9100 off; special information tone 950/1400/1800 Hz
    # 332 ms each with 24 ms gaps and 2024 ms silence. Ringer 1 s on / 5 s off.
    # Confirmation: Luren's choice, 3 x 100/100 ms of 425 Hz.
    "se": ToneSet(
        "se", "Sweden",
        dial=_continuous(425),
        ringback=(_s(425, 1000, 5000),),
        busy=(_s(425, 250, 250),),
        congestion=(_s(425, 250, 750),),
        call_waiting=(_s(425, 200, 500), _s(425, 200, 9100)),
        confirmation=_bursts(425),
        error=(_s(950, 332, 24), _s(1400, 332, 24), _s(1800, 332, 2024)),
        ring_cadence_ms=(1000, 5000)),
    # Norway. E.180 Suppl. 2: dial 425 Hz continuous; ringing 425 Hz 1 s on / 4 s off; busy
    # 425 Hz 500/500 ms; congestion 425 Hz 200/200 ms; call waiting 425 Hz 200 on 600 off
    # 200 on 10 s off; special information tone 950/1400/1800 Hz 3 x 330 ms, 1 s silence.
    # Ringer 1 s / 4 s. Confirmation: Luren's choice, 3 x 100/100 ms of 425 Hz.
    "no": ToneSet(
        "no", "Norway",
        dial=_continuous(425),
        ringback=(_s(425, 1000, 4000),),
        busy=(_s(425, 500, 500),),
        congestion=(_s(425, 200, 200),),
        call_waiting=(_s(425, 200, 600), _s(425, 200, 10000)),
        confirmation=_bursts(425),
        error=_SIT_E180,
        ring_cadence_ms=(1000, 4000)),
    # Denmark. E.180 Suppl. 2: dial 425 Hz continuous; ringing 425 Hz 1 s on / 4 s off; busy
    # 425 Hz 500/500 ms; congestion 425 Hz 200/200 ms; call waiting 425 Hz 200 on 600 off
    # 200 on 3000 off 200 on 200 off 200 on (given once; Luren repeats it after 10 s of
    # silence, our choice); special information tone 950/1400/1800 Hz 3 x 330 ms, 1 s
    # silence. Ringer 1 s / 4 s. Confirmation: Luren's choice, 3 x 100/100 ms of 425 Hz.
    "dk": ToneSet(
        "dk", "Denmark",
        dial=_continuous(425),
        ringback=(_s(425, 1000, 4000),),
        busy=(_s(425, 500, 500),),
        congestion=(_s(425, 200, 200),),
        call_waiting=(_s(425, 200, 600), _s(425, 200, 3000), _s(425, 200, 200),
                      _s(425, 200, 10000)),
        confirmation=_bursts(425),
        error=_SIT_E180,
        ring_cadence_ms=(1000, 4000)),
    # Finland. E.180 Suppl. 2: dial 425 Hz continuous; ringing 425 Hz 1 s on / 4 s off; busy
    # 425 Hz 300/300 ms; congestion 425 Hz 200/200 ms; call waiting 425 Hz 150 on 150 off
    # 150 on 8 s off; special information tone (national form) 950 Hz 650 on 325 off, 950 Hz
    # 325 on 30 off, 1400 Hz 1300 on 2600 off. Ringer 1 s / 4 s.
    # Confirmation: Luren's choice, 3 x 100/100 ms of 425 Hz.
    "fi": ToneSet(
        "fi", "Finland",
        dial=_continuous(425),
        ringback=(_s(425, 1000, 4000),),
        busy=(_s(425, 300, 300),),
        congestion=(_s(425, 200, 200),),
        call_waiting=(_s(425, 150, 150), _s(425, 150, 8000)),
        confirmation=_bursts(425),
        error=(_s(950, 650, 325), _s(950, 325, 30), _s(1400, 1300, 2600)),
        ring_cadence_ms=(1000, 4000)),
    # Germany. E.180 Suppl. 2: dial 425 Hz continuous; ringing
    # 425 Hz 1 s on / 4 s off; busy 425 Hz 480/480 ms; congestion 425 Hz 240/240 ms; call
    # waiting 425 Hz 200 on 200 off 200 on 5 s off; special information tone 950/1400/1800 Hz
    # 3 x 330 ms, 1 s silence. Ringer 1 s / 4 s.
    # Confirmation: Luren's choice, 3 x 100/100 ms of 425 Hz.
    "de": ToneSet(
        "de", "Germany",
        dial=_continuous(425),
        ringback=(_s(425, 1000, 4000),),
        busy=(_s(425, 480, 480),),
        congestion=(_s(425, 240, 240),),
        call_waiting=(_s(425, 200, 200), _s(425, 200, 5000)),
        confirmation=_bursts(425),
        error=_SIT_E180,
        ring_cadence_ms=(1000, 4000)),
    # United Kingdom. BT SIN 350: dial 350+440 Hz continuous; ringing 400+450 Hz 400 on 200
    # off 400 on 2000 off; busy 400 Hz 375/375 ms; congestion ("equipment engaged") 400 Hz
    # 400 on 350 off 225 on 525 off; call waiting 400 Hz 100 ms on, 4 s off; special
    # information tone 950/1400/1800 Hz 330 ms each, 15 ms gaps, 1 s silence. Ringer double
    # ring 400/200/400/2000 ms. Confirmation: Luren's choice, 3 x 100/100 ms of 350+440 Hz
    # (SIN 350 uses a continuous 1400 Hz where no announcement is given).
    "gb": ToneSet(
        "gb", "United Kingdom",
        dial=_continuous(350, 440),
        ringback=(_s(400, 400, 200, 450), _s(400, 400, 2000, 450)),
        busy=(_s(400, 375, 375),),
        congestion=(_s(400, 400, 350), _s(400, 225, 525)),
        call_waiting=(_s(400, 100, 4000),),
        confirmation=_bursts(350, 440),
        error=(_s(950, 330, 15), _s(1400, 330, 15), _s(1800, 330, 1000)),
        ring_cadence_ms=(400, 200, 400, 2000)),
    # United States. ANSI T1.401 precise tone plan / Telcordia GR-506: dial 350+440 Hz
    # continuous; audible ringing 440+480 Hz 2 s on / 4 s off; busy 480+620 Hz 500/500 ms;
    # reorder 480+620 Hz 250/250 ms; call waiting 440 Hz 300 ms every 10 s; confirmation
    # 350+440 Hz 3 x 100/100 ms; error: SIT "intercept" 913.8 Hz 274 ms, 1370.6 Hz 274 ms,
    # 1776.7 Hz 380 ms (rounded to whole Hz for pjmedia), then 1 s silence (our choice: the
    # SIT precedes an announcement and has no repeat cadence of its own). Ringer 2 s / 4 s.
    "us": ToneSet(
        "us", "United States",
        dial=_continuous(350, 440),
        ringback=(_s(440, 2000, 4000, 480),),
        busy=(_s(480, 500, 500, 620),),
        congestion=(_s(480, 250, 250, 620),),
        call_waiting=(_s(440, 300, 9700),),
        confirmation=_bursts(350, 440),
        error=(_s(914, 274, 0), _s(1371, 274, 0), _s(1777, 380, 1000)),
        ring_cadence_ms=(2000, 4000)),
}

COUNTRIES = tuple(TONE_SETS)  # the choices for DeviceConfig.tone_country, default first


def tone_set(country: str) -> ToneSet:
    """The tones of `country` (ISO 3166 alpha-2, lower case, "gb" for the UK)."""
    try:
        return TONE_SETS[country]
    except KeyError:
        raise KeyError(f"no call-progress tones for country {country!r}; "
                       f"known: {', '.join(sorted(TONE_SETS))}") from None
