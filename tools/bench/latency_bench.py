"""Benchmark: mouth-to-ear latency of the phone per audio path, and of baresip, in one run.

    .venv/bin/python -m tools.bench.latency_bench [--workdir DIR] [--period-frames 320]

The far end is SIPp (its built-in `uas` scenario with `-rtp_echo`) registered as 2000 at a
local Kamailio: it answers and sends every RTP packet straight back, so what goes into a
microphone comes back out of the same terminal's loudspeaker one network round trip later.
Every row is one call, PCMU (the only codec SIPp's answer offers), the same 100 ms chirps
(300 -> 3400 Hz) at the same irregular times, found by a matched filter (normalised
cross-correlation with the chirp) and paired by the one lag most chirp pairs agree on.

Device rows (Luren only). The board profile is the simulated one plus an `[audio]` table whose
paths are ALSA's `file` plugin over a `null` slave (`pace = true`): each path's capture reads a
raw file holding the chirps, its playback writes a WAV. The bridge opens a path's capture and
playback together (`AlsaBridge._open_path`) and then moves one period each way per paced step,
so sample i of both files belongs to the same instant of the card's clock. The latency of a
chirp is the index of its echo in the playback WAV minus its index in the capture file. The WAV
starts with the `prefill_periods` (2) periods of silence the bridge writes at open: they are
kept, since a real card plays them before anything else. Rows, each in a phone process of its
own: handset (lift, dial), handset+2s (lift, 2 s of dial tone, dial), headset (click-to-dial,
then the `headset` key; "n/a" when the call does not move there) and speaker (click-to-dial).
baresip has no such row: 1.0.0 has no paced audio device here (its `alsa` module on the `null`
plugin would run unpaced) and no file player.

File rows (no sound card, both user agents, side by side):
- Luren sim: the sim board with the chirps as its microphone WAV (`[sim] mic_file`, played on
  pjmedia's 20 ms media tick). Once the call is up, the `record` key records the microphone
  and the call mixed, on the same tick as the earpiece recorder: the sent chirps and their
  echoes sit in one file on one clock, so the lag is an index difference (the sent chirps are
  subtracted before the echoes are searched).
- baresip: account 1002 sends the chirps (`aufile` source) and plays into the `aubridge`
  device `ear`; a second account, 1003, in the same process, has `aubridge,ear` as its source
  and holds a call of its own to the echo. aubridge pulls 1002's player every 20 ms (a paced
  "card" with no buffer) and hands the audio to 1003's encoder at once, so 1003's encoder tap
  (`sndfile`) records what 1002 played, when it played it. The lag is the time 1003's tap file
  grew by the echo's frame minus the time 1002's encoder tap grew by the chirp's frame (a thread
  notes file growth every 1 ms; libsndfile writes each 20 ms frame through at once).
- baresip taps: the same call from 1002's encoder tap to its decoder tap (a part of the row
  above: it leaves out the playout buffer).

Figures only: no thresholds, not a test. Everything runs on 127.0.0.1 and is stopped at exit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.harness.baresip import MODULE_PATH, RTP_PORTS, Baresip
from tests.harness.sipp import SippRegisteredUas, sipp_argv
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.pbx.waiting import wait_until
from tools.phoneproc import REPO_ROOT, LineSpec, PhoneProcess, phone_config

USERS = {"1001": "lat-1001", "1002": "lat-1002", "1003": "lat-1003", "2000": "lat-2000"}
PHONE, BARESIP, BARESIP_EAR, ECHO = "1001", "1002", "1003", "2000"
CODEC = "PCMU"  # SIPp's uas scenario answers PCMU only
PHONE_RATE = 16000  # the [audio] paths' card rate, and the sim microphone WAV's
BARESIP_RATE = 8000  # aufile source at the codec's rate: no resampling in baresip
PERIOD_FRAMES = 320  # the [audio] paths' period (20 ms at 16 kHz); --period-frames changes it
CHIRP_S = 0.1
CHIRP_HZ = (300.0, 3400.0)
CHIRP_LEVEL = 0.5  # peak, of full scale
SIM_LEVEL = 0.3  # the sim row's recording mixes chirp and echo: keep their sum below clipping
NOISE_LEVEL = 10 ** (-60 / 20)  # rms, of full scale, between the chirps
CHIRP_STARTS_S = (1.00, 1.83, 2.51, 3.62, 4.27, 5.39, 6.08)  # gaps 0.65-1.12 s
TRACK_S = 9.0  # length of the capture file / aufile source (aufile ends the call at its end)
LISTEN_S = 7.0  # a call lasts this long after its path opened: the last echo is back by then
DETECT = 0.5  # normalised correlation a chirp must reach
MIXED_DETECT = 0.4  # the same, where a chirp and its echo overlap in one file
PAIR_TOLERANCE_S = 0.03
MAX_LAG_S = 2.0
ECHO_WITHIN_S = 0.5  # sim row: an echo comes back this soon (chirps are >= 0.65 s apart)
PATHS = ("handset", "headset", "speaker")
DIAL_AFTER_S = 2.0  # the realistic row: dial tone this long before dialling


@dataclass(frozen=True)
class Row:
    label: str
    path: str
    dial_after_s: float = 0.0  # handset: time off-hook before dialling


# The headset call starts on the speaker path (and truncates its WAV): the speaker goes last
# so that its own files are kept.
ROWS = (Row("handset", "handset"), Row("handset+2s", "handset", DIAL_AFTER_S),
        Row("headset", "headset"), Row("speaker", "speaker"))


# ----- signals -------------------------------------------------------------------------------

def chirp(rate: int) -> np.ndarray:
    """A linear 300 -> 3400 Hz sweep of CHIRP_S, 5 ms raised-cosine fades, peak 1."""
    t = np.arange(int(CHIRP_S * rate)) / rate
    f0, f1 = CHIRP_HZ
    sweep = np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * CHIRP_S) * t**2))
    fade = int(0.005 * rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    sweep[:fade] *= ramp
    sweep[-fade:] *= ramp[::-1]
    return sweep


def chirp_track(rate: int, delay_s: float = 0.0, seed: int = 7) -> np.ndarray:
    """Low noise with the chirps at CHIRP_STARTS_S (+ `delay_s`), as floats in [-1, 1)."""
    track = np.random.default_rng(seed).normal(0.0, NOISE_LEVEL,
                                               int((TRACK_S + delay_s) * rate))
    sweep = chirp(rate) * CHIRP_LEVEL
    for start in CHIRP_STARTS_S:
        i = round((start + delay_s) * rate)
        track[i:i + len(sweep)] += sweep
    return track


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm16(samples))


@dataclass(frozen=True)
class WavData:
    samples: np.ndarray  # mono floats
    rate: int
    data_offset: int  # bytes before the first sample (the header)
    frame_bytes: int


def read_pcm_wav(path: Path) -> WavData:
    """A 16-bit PCM WAV, read chunk by chunk; the data runs to the end of the file even when
    the writer has not put its length in the header yet."""
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    pos, channels, rate = 12, 1, 0
    while pos + 8 <= len(raw):
        tag, size = raw[pos:pos + 4], int.from_bytes(raw[pos + 4:pos + 8], "little")
        if tag == b"fmt ":
            channels = int.from_bytes(raw[pos + 10:pos + 12], "little")
            rate = int.from_bytes(raw[pos + 12:pos + 16], "little")
        elif tag == b"data":
            body = raw[pos + 8:]
            body = body[:len(body) // (2 * channels) * 2 * channels]
            ints = np.frombuffer(body, dtype="<i2").astype(np.float64) / 32768
            return WavData(ints.reshape(-1, channels).mean(axis=1), rate, pos + 8, 2 * channels)
        pos += 8 + size + size % 2
    raise ValueError(f"{path}: no data chunk")


def match_score(signal: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation (-1..1) of `template` at every offset of `signal`."""
    n, m = len(signal), len(template)
    if n < m:
        return np.zeros(0)
    size = 1 << (n + m - 1).bit_length()
    spectrum = np.fft.rfft(signal, size) * np.conj(np.fft.rfft(template, size))
    corr = np.fft.irfft(spectrum, size)[:n - m + 1]
    energy = np.concatenate(([0.0], np.cumsum(signal**2)))
    window = np.sqrt(np.maximum(energy[m:] - energy[:-m], 1e-12))
    return corr / (window * np.linalg.norm(template))


@dataclass(frozen=True)
class Hit:
    index: int  # first sample of the chirp
    score: float


def find_chirps(signal: np.ndarray, rate: int, *, detect: float = DETECT,
                gap_s: float = 0.3) -> list[Hit]:
    """Chirps in `signal`: peaks of the matched filter above `detect`, at least `gap_s` apart."""
    score = np.abs(match_score(signal, chirp(rate)))
    candidates = np.flatnonzero(score >= detect)
    gap = int(gap_s * rate)
    hits: list[Hit] = []
    for index in candidates[np.argsort(score[candidates])[::-1]]:
        if all(abs(int(index) - hit.index) >= gap for hit in hits):
            hits.append(Hit(int(index), float(score[index])))
    return sorted(hits, key=lambda hit: hit.index)


Position = Callable[[Hit], float]  # where a hit is, in seconds on some clock


def pair_chirps(sent: list[Hit], heard: list[Hit], rate: int,
                sent_at: Position | None = None,
                heard_at: Position | None = None) -> list[tuple[Hit, Hit]]:
    """(sent, heard) pairs: the lag most pairs agree on (within PAIR_TOLERANCE_S) wins.
    Positions are sample indices at `rate` unless `sent_at` / `heard_at` say otherwise."""
    sent_at = sent_at or (lambda hit: hit.index / rate)
    heard_at = heard_at or (lambda hit: hit.index / rate)
    lags = [heard_at(h) - sent_at(s) for s in sent for h in heard
            if 0 <= heard_at(h) - sent_at(s) <= MAX_LAG_S]
    if not lags:
        return []
    best = max(sorted(lags), key=lambda lag: sum(abs(other - lag) <= PAIR_TOLERANCE_S
                                                 for other in lags))
    pairs = []
    for s in sent:
        near = [h for h in heard if abs(heard_at(h) - sent_at(s) - best) <= PAIR_TOLERANCE_S]
        if near:
            pairs.append((s, min(near, key=lambda h: abs(heard_at(h) - sent_at(s) - best))))
    return pairs


def split_mixed(signal: np.ndarray, rate: int) -> tuple[list[Hit], list[Hit]]:
    """Sent chirps and their echoes in one file that holds both (the sim row's recording).

    A sent chirp is the first hit of a cluster (an echo comes back within ECHO_WITHIN_S and
    the chirps are further apart than that); it is subtracted (least squares) before the
    echoes are searched, so that each echo is matched on its own."""
    template = chirp(rate)
    sent: list[Hit] = []
    for hit in find_chirps(signal, rate, detect=MIXED_DETECT, gap_s=0.01):
        if not sent or hit.index - sent[-1].index > ECHO_WITHIN_S * rate:
            sent.append(hit)
    residual = signal.copy()
    for hit in sent:
        part = residual[hit.index:hit.index + len(template)]
        shape = template[:len(part)]
        part -= shape * (part @ shape) / (shape @ shape)
    return sent, find_chirps(residual, rate)


# ----- results -------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    sent: int = 0
    lags_ms: list[float] = field(default_factory=list)
    min_score: float = 0.0
    buffers: list[tuple[float, float]] = field(default_factory=list)  # (send, receive) ms
    note: str = ""

    @property
    def p50(self) -> float | None:
        return statistics.median(self.lags_ms) if self.lags_ms else None

    def row(self) -> str:
        if not self.lags_ms:
            return f"  {self.name:13s} {self.note or 'no chirp came back'}"
        p50 = statistics.median(self.lags_ms)
        found = f"{len(self.lags_ms)}/{self.sent}"
        return (f"  {self.name:13s} {found:6s} {p50:7.1f} {min(self.lags_ms):7.1f} "
                f"{max(self.lags_ms):7.1f} {p50 / 2:10.1f} {self.min_score:6.2f}  "
                f"{self._buffers()}")

    def _buffers(self) -> str:
        if not self.buffers:
            return "-"
        send, receive = zip(*self.buffers, strict=True)
        return f"{statistics.mean(send):.0f}/{statistics.mean(receive):.0f}"


def lag_result(name: str, sent: list[Hit], heard: list[Hit], rate: int) -> Result:
    pairs = pair_chirps(sent, heard, rate)
    return Result(name, len(sent), [(h.index - s.index) * 1000 / rate for s, h in pairs],
                  min((h.score for _, h in pairs), default=0.0))


# ----- the far end ---------------------------------------------------------------------------

class EchoUas(SippRegisteredUas):
    """The harness's registered SIPp UAS, running SIPp's built-in `uas` scenario (answers at
    once, PCMU) with `-rtp_echo`: every RTP packet goes straight back to its sender."""

    def __init__(self, user: str, password: str, pbx_port: int, workdir: Path) -> None:
        super().__init__(user, password, pbx_port, "ringing", workdir=workdir)

    def _uas_argv(self) -> list[str]:
        return sipp_argv(self.port, "-sn", "uas", "-rtp_echo", "-mi", "127.0.0.1",
                         "-s", self.user, "-aa")


# ----- the phone -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PathFiles:
    capture: Path  # raw S16_LE the capture device reads
    playback: Path  # WAV the playback device writes


def write_alsa_config(workdir: Path, capture: bytes | None = None
                      ) -> tuple[Path, dict[str, PathFiles]]:
    """An asoundrc with `<path>_cap` / `<path>_play` file-over-null PCMs for every path; each
    capture file holds `capture` (raw S16_LE at PHONE_RATE; default the chirps)."""
    files, text = {}, ""
    capture = pcm16(chirp_track(PHONE_RATE)) if capture is None else capture
    for name in PATHS:
        files[name] = PathFiles(workdir / f"{name}.in.raw", workdir / f"{name}.out.wav")
        files[name].capture.write_bytes(capture)  # each latency row rewrites its own
        text += (f'pcm.{name}_cap {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
                 f'  file "/dev/null"\n  infile "{files[name].capture}"\n  format "raw"\n}}\n'
                 f'pcm.{name}_play {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
                 f'  file "{files[name].playback}"\n  format "wav"\n}}\n')
    conf = workdir / "asoundrc"
    conf.write_text(text)
    return conf, files


def write_profile(workdir: Path, period_frames: int = PERIOD_FRAMES) -> Path:
    """The sim board plus an [audio] table: the three paths on the ALSA devices above."""
    sim = (REPO_ROOT / "board" / "profiles" / "sim.toml").read_text()
    paths = "".join(f'[audio.paths.{name}]\ncapture = "{name}_cap"\nplayback = "{name}_play"\n'
                    f"rate = {PHONE_RATE}\nperiod_frames = {period_frames}\nperiods = 4\n"
                    for name in PATHS)
    profile = workdir / "latency-bench.toml"
    profile.write_text(sim.replace('name = "sim"', 'name = "latency-bench"')
                       + "\n[audio]\npace = true  # the null plugin keeps no time\n" + paths)
    return profile


def connected(status: dict[str, Any]) -> bool:
    return any(call["state"] == "connected" for call in status["calls"])


def reported_path(status: dict[str, Any]) -> str | None:
    """The audio path the phone says carries the call, where its status tells (newer code)."""
    audio = status.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("path"), str):
        return audio["path"]
    terminal = status["terminals"][0]
    for key in ("audio_route", "route"):
        if isinstance(terminal.get(key), str):
            return terminal[key]
    return None


def bridge_buffers(status: dict[str, Any]) -> tuple[float, float] | None:
    audio = status.get("audio")
    if isinstance(audio, dict) and "buffered_capture_ms" in audio:
        return float(audio["buffered_capture_ms"]), float(audio["buffered_playback_ms"])
    return None


def hold_call(phone: PhoneProcess, until: float, result: Result) -> None:
    """Keep the call until the monotonic time `until`, sampling the bridge's buffers."""
    while time.monotonic() < until:
        buffers = bridge_buffers(phone.status())
        if buffers is not None:
            result.buffers.append(buffers)
        time.sleep(0.25)


def headset_taken(phone: PhoneProcess, files: PathFiles) -> bool:
    """Did the headset key move the call to the headset path? Status if it tells, else the
    headset's playback file appearing."""
    def check() -> bool | None:
        path = reported_path(phone.status())
        if path is not None and path != "speaker":
            return path == "headset"
        return True if files.playback.exists() else None
    with contextlib.suppress(TimeoutError):
        return bool(wait_until(check, 1.5, 0.05, "the headset path"))
    return False


def start_on_path(phone: PhoneProcess, row: Row, files: PathFiles) -> float | None:
    """Set up a call to the echo on the row's path; the monotonic time the path opened (None:
    the path cannot be selected)."""
    path = row.path
    if path == "handset":
        phone.hook(True)  # lifting the handset opens the handset path
        opened = time.monotonic()
        time.sleep(row.dial_after_s)
        phone.dial(ECHO)
    else:
        phone.dial(ECHO)  # click-to-dial goes out hands-free: the speaker path
        opened = time.monotonic()
    phone.wait_status(connected, 10, "the echo to answer")
    if path == "headset":
        phone.key("headset")
        opened = time.monotonic()
        if not headset_taken(phone, files):
            return None
    return opened


def end_call(phone: PhoneProcess, path: str) -> None:
    if path == "handset":
        phone.hook(False)
    else:
        phone.key("cancel")
    phone.wait_status(lambda s: not s["terminals"][0]["audio_path"], 10, "the path to close")
    time.sleep(0.3)  # the card thread closes the devices (and finishes the WAV) at its next step


def measure_row(phone: PhoneProcess, row: Row, files: PathFiles) -> Result:
    """One call on the row's path; the chirps start when the call would have, after dialling."""
    files.capture.write_bytes(pcm16(chirp_track(PHONE_RATE, row.dial_after_s)))
    result = Result(row.label)
    opened = start_on_path(phone, row, files)
    if opened is None:
        end_call(phone, row.path)
        result.note = "n/a (not selectable yet)"
        return result
    hold_call(phone, opened + row.dial_after_s + LISTEN_S, result)
    end_call(phone, row.path)
    sent = find_chirps(np.frombuffer(files.capture.read_bytes(), "<i2") / 32768, PHONE_RATE)
    heard = read_pcm_wav(files.playback)
    measured = lag_result(row.label, sent, find_chirps(heard.samples, heard.rate), PHONE_RATE)
    measured.buffers = result.buffers
    return measured


def measure_phone(workdir: Path, pbx: Kamailio, period_frames: int) -> list[Result]:
    """Each row in a phone process of its own: what a call leaves in the bridge's rings
    changes the next call's latency (docs/audio.md), and rows should not depend on order."""
    conf, files = write_alsa_config(workdir)
    profile = write_profile(workdir, period_frames)
    line = LineSpec(PHONE, USERS[PHONE], f"127.0.0.1:{pbx.port}", "Latency")
    results = []
    for row in ROWS:
        with PhoneProcess(workdir / f"phone-{row.label}", phone_config([line], codecs=(CODEC,)),
                          log_level="warning", board=str(profile),
                          env={"ALSA_CONFIG_PATH": str(conf)}) as phone:
            phone.wait_status(lambda s: s["lines"][0]["registered"], 10, "registration")
            results.append(measure_row(phone, row, files[row.path]))
    return results


def finished_recording(data_dir: Path) -> Path | None:
    """The call recording once the phone has finished it (`<name>.wav`, no `.part`)."""
    done = [p for p in (data_dir / "recordings").glob("*.wav") if not p.name.endswith(".part.wav")]
    return done[0] if done else None


def sim_round_trips(recording: Path) -> Result:
    """Sent chirps and echoes in the call recording (microphone and call mixed, one clock)."""
    mixed = read_pcm_wav(recording)
    sent, heard = split_mixed(mixed.samples, mixed.rate)
    result = lag_result("Luren sim", sent, heard, mixed.rate)
    result.sent = len(CHIRP_STARTS_S)  # a chirp sent before the recording began is missed
    return result


def measure_phone_sim(workdir: Path, pbx: Kamailio) -> Result:
    """The sim board (no [audio] table): the chirps as the microphone WAV, click-to-dial, then
    the `record` key; the recording holds microphone and call on the media clock."""
    mic = workdir / "sim-mic.wav"
    write_wav(mic, chirp_track(PHONE_RATE) * (SIM_LEVEL / CHIRP_LEVEL), PHONE_RATE)
    line = LineSpec(PHONE, USERS[PHONE], f"127.0.0.1:{pbx.port}", "Latency")
    config = phone_config([line], codecs=(CODEC,), mic_file=str(mic))
    with PhoneProcess(workdir / "phone-sim", config, log_level="warning") as phone:
        phone.wait_status(lambda s: s["lines"][0]["registered"], 10, "registration")
        phone.dial(ECHO)  # the microphone WAV starts playing when the call's media connects
        phone.wait_status(connected, 10, "the echo to answer")
        opened = time.monotonic()
        phone.key("record")
        phone.wait_status(lambda s: s["terminals"][0]["recording"], 5, "the recording")
        time.sleep(max(0.0, opened + LISTEN_S - time.monotonic()))
        phone.key("cancel")
        recording = wait_until(lambda: finished_recording(phone.data_dir), 10, 0.1,
                               "the call recording")
    return sim_round_trips(recording)


# ----- baresip -------------------------------------------------------------------------------

class ChirpBaresip(Baresip):
    """The harness's baresip with two accounts. 1002 sends a WAV (aufile source) and plays
    into the aubridge device `ear`; 1003 takes `ear` as its source, so the encoder tap of its
    own call records what 1002 played. sndfile taps every call: dump-<second>-enc.wav before
    the encoder, dump-<second>-dec.wav after the decoder."""

    def __init__(self, workdir: Path, pbx_port: int, source: Path) -> None:
        super().__init__(workdir, BARESIP, USERS[BARESIP], pbx_port, tone_hz=None,
                         codecs=("g711",))
        self.source = source

    def add_ear(self) -> None:
        """Add and register account 1003, whose source is what 1002 plays."""
        self._checked("uanew", f"<{self.aor_of(BARESIP_EAR)}>;auth_pass={USERS[BARESIP_EAR]}"
                               ";regint=600;ptime=20;audio_source=aubridge,ear"
                               ";audio_player=aubridge,void")
        self.wait_registered(10)

    def aor_of(self, user: str) -> str:
        return f"sip:{user}@{self.domain}:{self.pbx_port}"

    def use(self, user: str) -> None:
        """Make `user`'s account the one `dial`, `hangup` and `audio_debug` act on."""
        self._checked("uafind", self.aor_of(user))

    def aubuf_ms(self) -> tuple[float, float] | None:
        """(send, receive) audio buffered now in the current call's aubufs (`audio_debug`)."""
        found = re.findall(r"aubuf:.*?\(cur ([\d.]+)ms", self.command("audio_debug")["data"])
        return (float(found[0]), float(found[1])) if len(found) >= 2 else None

    def _account_line(self) -> str:
        return super()._account_line() + ";audio_player=aubridge,ear"

    def _config_text(self) -> str:
        return "\n".join([
            "poll_method\t\tepoll",
            f"sip_listen\t\t127.0.0.1:{self.sip_port}",
            "net_interface\t\t127.0.0.1",
            "call_local_timeout\t120",
            f"audio_source\t\taufile,{self.source}",
            f"ausrc_srate\t\t{BARESIP_RATE}",
            "ausrc_channels\t\t1",
            "audio_player\t\taubridge,sink",
            "audio_alert\t\taubridge,alert",
            f"rtp_ports\t\t{RTP_PORTS}",
            "rtcp_mux\t\tno",
            "statmode_default\toff",
            f"module_path\t\t{MODULE_PATH}",
            *(f"module\t\t\t{codec}.so" for codec in self.codecs),
            "module\t\t\tsndfile.so",
            "module\t\t\taufile.so",
            "module\t\t\taubridge.so",
            "module_tmp\t\taccount.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            f"ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}",
            f"snd_path\t\t{self.recordings_dir}",
            "",
        ])


class GrowthLog:
    """Notes (monotonic time, size) whenever a file in `folder` grows, polling every 1 ms."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sizes: dict[Path, list[tuple[float, int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="growth-log", daemon=True)

    def __enter__(self) -> GrowthLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def written_at(self, path: Path, offset: int) -> float | None:
        """When the file first held `offset` bytes."""
        return next((t for t, size in self.sizes.get(path, []) if size >= offset), None)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            now = time.monotonic()
            for path in self.folder.glob("*.wav"):
                with contextlib.suppress(FileNotFoundError):
                    size = path.stat().st_size
                    seen = self.sizes.setdefault(path, [])
                    if not seen or size > seen[-1][1]:
                        seen.append((now, size))


FRAME_SAMPLES = BARESIP_RATE * 20 // 1000  # baresip taps write one 20 ms frame at a time


def timed_chirps(log: GrowthLog, path: Path) -> tuple[list[Hit], dict[Hit, float]]:
    """The chirps in a tap file and the monotonic time each one's first sample got there:
    when the file grew by the frame holding it, plus its place in that frame."""
    wav = read_pcm_wav(path)
    times = {}
    for hit in find_chirps(wav.samples, wav.rate):
        frame_end = (hit.index // FRAME_SAMPLES + 1) * FRAME_SAMPLES
        t = log.written_at(path, wav.data_offset + frame_end * wav.frame_bytes)
        if t is not None:
            times[hit] = t + (hit.index % FRAME_SAMPLES) / wav.rate
    return list(times), times


def timed_round_trips(name: str, log: GrowthLog, sent_file: Path, heard_file: Path) -> Result:
    """From the time a chirp reached `sent_file` to the time its echo reached `heard_file`."""
    sent, sent_at = timed_chirps(log, sent_file)
    heard, heard_at = timed_chirps(log, heard_file)
    pairs = pair_chirps(sent, heard, BARESIP_RATE, sent_at.__getitem__, heard_at.__getitem__)
    return Result(name, len(CHIRP_STARTS_S), [(heard_at[h] - sent_at[s]) * 1000 for s, h in pairs],
                  min((h.score for _, h in pairs), default=0.0))


def next_second() -> None:
    """Sleep into the next wall-clock second: sndfile names its files by the second."""
    time.sleep(1.05 - time.time() % 1.0)


def baresip_call(far: ChirpBaresip, user: str) -> None:
    far.use(user)
    far.dial(far.uri_of(ECHO))
    far.wait_event("CALL_ESTABLISHED", 10)


def hang_up(far: ChirpBaresip, user: str) -> None:
    far.use(user)
    far.hangup()
    far.wait_event("CALL_CLOSED", 10)


def measure_baresip(workdir: Path, pbx: Kamailio) -> tuple[Result, Result]:
    """(source -> player, encoder tap -> decoder tap) of one call from 1002 to the echo."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "chirps.wav"
    write_wav(source, chirp_track(BARESIP_RATE), BARESIP_RATE)
    buffers: list[tuple[float, float]] = []
    with ChirpBaresip(workdir / "baresip", pbx.port, source) as far:
        far.wait_registered(10)
        far.add_ear()
        with GrowthLog(far.recordings_dir) as log:
            baresip_call(far, BARESIP_EAR)  # silent until 1002 plays into `ear`
            next_second()
            baresip_call(far, BARESIP)
            until = time.monotonic() + LISTEN_S
            while time.monotonic() < until:
                time.sleep(0.25)
                if (levels := far.aubuf_ms()) is not None:
                    buffers.append(levels)
            hang_up(far, BARESIP)
            hang_up(far, BARESIP_EAR)
        far.wait_audio_files(2, 10)
        enc = sorted(far.recordings_dir.glob("dump-*-enc.wav"))  # [1003's, 1002's]
        dec = sorted(far.recordings_dir.glob("dump-*-dec.wav"))
    if len(enc) < 2 or len(dec) < 2:
        return Result("baresip", note="no sndfile recordings"), Result("baresip taps")
    played = timed_round_trips("baresip", log, enc[1], enc[0])
    played.buffers = buffers
    return played, timed_round_trips("baresip taps", log, enc[1], dec[1])


# ----- main ----------------------------------------------------------------------------------

@contextlib.contextmanager
def work_dir(keep: str | None) -> Iterator[Path]:
    if keep:
        path = Path(keep).resolve()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="luren-latency-") as tmp:
        yield Path(tmp)


HEADER = ("  row           chirps   round trip ms          one-way  match  buffered ms\n"
          "                           p50     min     max  p50 / 2    min  send/receive")

INCLUDED = """\
What each row includes (+) and leaves out (-):
  Luren ALSA    + capture period and ring, pjmedia (conference bridge, PCMU, jitter buffer),
                  loopback, playback ring, the 2-period prefill the card plays first
                - the converter and FIFO delay of a real card (file/null has none)
                buffered: the bridge's capture/playback rings (GET /api/v1/status 'audio')
  Luren sim     + microphone WAV read on the 20 ms media tick, pjmedia (conference bridge,
                  PCMU, jitter buffer), loopback, the recorder written on the same tick
                - the ALSA bridge (rings, prefill) and a card
  baresip       + aufile read (20 ms timer), tx aubuf, PCMU, jitter buffer, loopback, rx aubuf
                  (playout buffer), aubridge pulling the player every 20 ms
                - a card (its alsa module's buffer); timed by tap files growing (+-2 ms),
                  not by sample index as the Luren rows
                buffered: tx/rx aubuf ('audio_debug', sampled in the call)
  baresip taps  + encoder input -> decoder output (jitter buffer, loopback)
                - source timer, playout buffer, card: a part of the baresip row"""


def report(phone: list[Result], sim: Result, baresip: Result, taps: Result,
           period_frames: int, load: tuple[float, float]) -> None:
    period_ms = period_frames * 1000 / PHONE_RATE
    print(f"Mouth-to-ear latency: round trip through SIPp's RTP echo ({CODEC}, 127.0.0.1), "
          f"{len(CHIRP_STARTS_S)} chirps of {CHIRP_S * 1000:.0f} ms per row, one call per row")
    print(f"(load average {load[0]:.2f} at start, {load[1]:.2f} at end, {os.cpu_count()} cores)")
    print(HEADER)
    print(f" Luren, ALSA file/null paths ({PHONE_RATE} Hz, period_frames = {period_frames}"
          f" = {period_ms:g} ms, paced)")
    for result in phone:
        print(result.row())
    print(" No sound card: file source -> file sink, both user agents")
    for result in (sim, baresip, taps):
        print(result.row())
    print()
    print("Side by side, like for like (no card, file to file, p50 round trip ms):")
    print(f"  Luren sim {fmt(sim.p50)}   baresip {fmt(baresip.p50)}   "
          f"(encoder -> decoder only: baresip taps {fmt(taps.p50)})")
    print("  Device rows have no baresip counterpart: baresip 1.0.0 has no file player and no")
    print("  paced ALSA device exists here (its alsa module on the null plugin runs unpaced).")
    print()
    print(INCLUDED)
    print(f"  handset+2s dials after {DIAL_AFTER_S:.0f} s of dial tone, as people do; the echo"
          " answers at once.")
    print("  The echo holds nothing: a round trip is one send half plus one receive half of the"
          " device,\n  i.e. the mouth-to-ear of a call between two such phones on a zero-delay"
          " network; p50 / 2\n  splits it evenly, which neither direction is.")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="keep the files here (emptied first) instead of a "
                                          "temporary directory")
    parser.add_argument("--period-frames", type=int, default=PERIOD_FRAMES,
                        help="period of the [audio] paths in frames at 16 kHz (default 320)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with work_dir(args.workdir) as tmp, \
            Kamailio(tmp / "pbx", USERS, port=free_port(), capture=False) as pbx, \
            EchoUas(ECHO, USERS[ECHO], pbx.port, tmp / "echo") as echo:
        echo.wait_registered(10)
        phone = measure_phone(tmp, pbx, args.period_frames)
        sim = measure_phone_sim(tmp, pbx)
        baresip, taps = measure_baresip(tmp, pbx)
    report(phone, sim, baresip, taps, args.period_frames, (load_start, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
