"""Benchmark: mouth-to-ear latency of the phone per audio path, and of baresip, in one run.

    .venv/bin/python -m tools.bench.latency_bench [--workdir DIR]

The far end is SIPp (its built-in `uas` scenario with `-rtp_echo`) registered as 2000 at a
local Kamailio: it answers and sends every RTP packet straight back, so what goes into a
microphone comes back out of the same terminal's loudspeaker one network round trip later.

Phone: the board profile is the simulated one plus an `[audio]` table whose paths are ALSA's
`file` plugin over a `null` slave (`pace = true`): each path's capture reads a raw file holding
100 ms chirps (300 -> 3400 Hz) at irregular known times, its playback writes a WAV. The bridge
opens a path's capture and playback together (`AlsaBridge._open_path`) and then moves one period
each way per paced step, so sample i of both files belongs to the same instant of the card's
clock (i / rate after the path opened). The latency of a chirp is then simply the index of its
echo in the playback WAV minus its index in the capture file. The WAV starts with the
`prefill_periods` (2) periods of silence the bridge writes at open: they are kept, since a real
card plays them before anything else (dropping them would understate by 40 ms). Chirps are
found by a matched filter (normalised cross-correlation with the chirp); pairs are matched by the
one lag most chirp pairs agree on (irregular spacing makes it unique). Rows, each one call in
a phone process of its own: handset (lift, dial), handset+2s (lift, 2 s of dial tone, dial),
headset (click-to-dial, then the `headset` key; "n/a" when the call does not move there) and
speaker (click-to-dial).

baresip 1.0.0 (Debian) has an `aufile` source but no file player, and no paced audio device
exists here, so its loudspeaker cannot be recorded against a clock. It sends the same chirps
(aufile source) and its `sndfile` taps record what it encodes and what it decodes; a thread
notes when each tap file grows (libsndfile writes through at once), which times every 20 ms
frame. Its figure is from the encoder's input to the decoder's output: it leaves out what the
phone's figure includes at both ends (source period and its buffer, playout buffer and card).

Figures only: no thresholds, not a test. Everything runs on 127.0.0.1 and is stopped at exit.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
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

USERS = {"1001": "lat-1001", "1002": "lat-1002", "2000": "lat-2000"}
PHONE, BARESIP, ECHO = "1001", "1002", "2000"
CODEC = "PCMU"  # SIPp's uas scenario answers PCMU only
PHONE_RATE = 16000  # the [audio] paths' card rate
BARESIP_RATE = 8000  # aufile source at the codec's rate: no resampling in baresip
CHIRP_S = 0.1
CHIRP_HZ = (300.0, 3400.0)
CHIRP_LEVEL = 0.5  # peak, of full scale
NOISE_LEVEL = 10 ** (-60 / 20)  # rms, of full scale, between the chirps
CHIRP_STARTS_S = (1.00, 1.83, 2.51, 3.62, 4.27, 5.39, 6.08)  # gaps 0.65-1.12 s
TRACK_S = 9.0  # length of the capture file / aufile source (aufile ends the call at its end)
LISTEN_S = 7.0  # a call lasts this long after its path opened: the last echo is back by then
DETECT = 0.5  # normalised correlation a chirp must reach
PAIR_TOLERANCE_S = 0.03
MAX_LAG_S = 2.0
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


def find_chirps(signal: np.ndarray, rate: int) -> list[Hit]:
    """Chirps in `signal`: peaks of the matched filter above DETECT, at least 0.3 s apart."""
    score = np.abs(match_score(signal, chirp(rate)))
    candidates = np.flatnonzero(score >= DETECT)
    gap = int(0.3 * rate)
    hits: list[Hit] = []
    for index in candidates[np.argsort(score[candidates])[::-1]]:
        if all(abs(int(index) - hit.index) >= gap for hit in hits):
            hits.append(Hit(int(index), float(score[index])))
    return sorted(hits, key=lambda hit: hit.index)


def pair_chirps(sent: list[Hit], heard: list[Hit], rate: int) -> list[tuple[Hit, Hit]]:
    """(sent, heard) pairs: the lag most pairs agree on (within PAIR_TOLERANCE_S) wins."""
    tolerance = PAIR_TOLERANCE_S * rate
    lags = [h.index - s.index for s in sent for h in heard
            if 0 <= h.index - s.index <= MAX_LAG_S * rate]
    if not lags:
        return []
    best = max(sorted(lags), key=lambda lag: sum(abs(other - lag) <= tolerance for other in lags))
    pairs = []
    for s in sent:
        near = [h for h in heard if abs(h.index - s.index - best) <= tolerance]
        if near:
            pairs.append((s, min(near, key=lambda h: abs(h.index - s.index - best))))
    return pairs


# ----- results -------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    sent: int = 0
    lags_ms: list[float] = field(default_factory=list)
    min_score: float = 0.0
    buffers: list[tuple[float, float]] = field(default_factory=list)  # (capture, playback) ms
    note: str = ""

    def row(self) -> str:
        if not self.lags_ms:
            return f"  {self.name}: {self.note or 'no chirp came back'}"
        p50 = statistics.median(self.lags_ms)
        found = f"{len(self.lags_ms)}/{self.sent}"
        return (f"  {self.name:11s} {found:6s} {p50:7.1f} {min(self.lags_ms):7.1f} "
                f"{max(self.lags_ms):7.1f} {p50 / 2:10.1f} {self.min_score:6.2f}  "
                f"{self._buffers()}")

    def _buffers(self) -> str:
        if not self.buffers:
            return "-"
        cap, play = zip(*self.buffers, strict=True)
        return f"{statistics.mean(cap):.0f}/{statistics.mean(play):.0f}"


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


def write_alsa_config(workdir: Path) -> tuple[Path, dict[str, PathFiles]]:
    """An asoundrc with `<path>_cap` / `<path>_play` file-over-null PCMs for every path."""
    files, text = {}, ""
    for name in PATHS:
        files[name] = PathFiles(workdir / f"{name}.in.raw", workdir / f"{name}.out.wav")
        files[name].capture.write_bytes(pcm16(chirp_track(PHONE_RATE)))  # each row rewrites
        text += (f'pcm.{name}_cap {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
                 f'  file "/dev/null"\n  infile "{files[name].capture}"\n  format "raw"\n}}\n'
                 f'pcm.{name}_play {{\n  type file\n  slave {{ pcm {{ type null }} }}\n'
                 f'  file "{files[name].playback}"\n  format "wav"\n}}\n')
    conf = workdir / "asoundrc"
    conf.write_text(text)
    return conf, files


def write_profile(workdir: Path) -> Path:
    """The sim board plus an [audio] table: the three paths on the ALSA devices above."""
    sim = (REPO_ROOT / "board" / "profiles" / "sim.toml").read_text()
    paths = "".join(f'[audio.paths.{name}]\ncapture = "{name}_cap"\nplayback = "{name}_play"\n'
                    f"rate = {PHONE_RATE}\nperiod_frames = 320\nperiods = 4\n" for name in PATHS)
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


def measure_phone(workdir: Path, pbx: Kamailio) -> list[Result]:
    """Each row in a phone process of its own: what a call leaves in the bridge's rings
    changes the next call's latency (docs/audio.md), and rows should not depend on order."""
    conf, files = write_alsa_config(workdir)
    profile = write_profile(workdir)
    line = LineSpec(PHONE, USERS[PHONE], f"127.0.0.1:{pbx.port}", "Latency")
    results = []
    for row in ROWS:
        with PhoneProcess(workdir / f"phone-{row.label}", phone_config([line], codecs=(CODEC,)),
                          log_level="warning", board=str(profile),
                          env={"ALSA_CONFIG_PATH": str(conf)}) as phone:
            phone.wait_status(lambda s: s["lines"][0]["registered"], 10, "registration")
            results.append(measure_row(phone, row, files[row.path]))
    return results


# ----- baresip -------------------------------------------------------------------------------

class ChirpBaresip(Baresip):
    """The harness's baresip sending a WAV (aufile source) and recording both directions
    (sndfile: dump-*-enc.wav before the encoder, dump-*-dec.wav after the decoder)."""

    def __init__(self, workdir: Path, pbx_port: int, source: Path) -> None:
        super().__init__(workdir, BARESIP, USERS[BARESIP], pbx_port, tone_hz=None,
                         codecs=("g711",))
        self.source = source

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


def tap_round_trips(log: GrowthLog, enc: Path, dec: Path) -> Result:
    """From the time the frame holding a chirp's start was encoded to the time its echo's
    frame was decoded."""
    sent, heard = read_pcm_wav(enc), read_pcm_wav(dec)
    pairs = pair_chirps(find_chirps(sent.samples, sent.rate),
                        find_chirps(heard.samples, heard.rate), sent.rate)
    result = Result("baresip", len(CHIRP_STARTS_S), note="no chirp came back")
    for s, h in pairs:
        t_enc = log.written_at(enc, sent.data_offset + (s.index + 1) * sent.frame_bytes)
        t_dec = log.written_at(dec, heard.data_offset + (h.index + 1) * heard.frame_bytes)
        if t_enc is not None and t_dec is not None:
            result.lags_ms.append((t_dec - t_enc) * 1000)
    result.min_score = min((h.score for _, h in pairs), default=0.0)
    return result


def measure_baresip(workdir: Path, pbx: Kamailio) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "chirps.wav"
    write_wav(source, chirp_track(BARESIP_RATE), BARESIP_RATE)
    with ChirpBaresip(workdir / "baresip", pbx.port, source) as far:
        far.wait_registered(10)
        with GrowthLog(far.recordings_dir) as log:
            far.dial(far.uri_of(ECHO))
            far.wait_event("CALL_ESTABLISHED", 10)
            time.sleep(LISTEN_S)
            far.hangup()
            far.wait_event("CALL_CLOSED", 10)
        far.wait_audio_files(1, 10)
        enc = sorted(far.recordings_dir.glob("dump-*-enc.wav"))
        dec = sorted(far.recordings_dir.glob("dump-*-dec.wav"))
        if not enc or not dec:
            return Result("baresip", note="no sndfile recordings")
        return tap_round_trips(log, enc[-1], dec[-1])


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


def report(phone: list[Result], baresip: Result) -> None:
    print(f"Mouth-to-ear latency: round trip through SIPp's RTP echo ({CODEC}, 127.0.0.1), "
          f"{len(CHIRP_STARTS_S)} chirps of {CHIRP_S * 1000:.0f} ms per row")
    print("  path        chirps   round trip ms          one-way  match  bridge ms")
    print("                         p50     min     max  p50 / 2    min  capture/playback")
    for result in phone:
        print(result.row())
    print(baresip.row())
    print("  phone:   capture file -> playback WAV, on the paced card clock, prefill included;"
          " bridge: mean\n"
          "           of GET /api/v1/status 'audio' in the call ('-': not reported); the echo"
          " answers at once,\n"
          f"           but handset+2s dials after {DIAL_AFTER_S:.0f} s of dial tone, as people"
          " do")
    print("  baresip: encoder input -> decoder output (sndfile taps, timed by file growth);"
          " leaves out\n"
          "           its source period, its playout buffer and a card")
    print("  The echo holds nothing: a round trip is one send half plus one receive half of"
          " the device,\n"
          "  i.e. the mouth-to-ear of a call between two such phones on a zero-delay network;"
          " p50 / 2\n  splits it evenly, which neither direction is (receive holds more).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="keep the files here (emptied first) instead of a "
                                          "temporary directory")
    args = parser.parse_args()
    with work_dir(args.workdir) as tmp, \
            Kamailio(tmp / "pbx", USERS, port=free_port(), capture=False) as pbx, \
            EchoUas(ECHO, USERS[ECHO], pbx.port, tmp / "echo") as echo:
        echo.wait_registered(10)
        phone = measure_phone(tmp, pbx)
        baresip = measure_baresip(tmp, pbx)
    report(phone, baresip)


if __name__ == "__main__":
    main()
