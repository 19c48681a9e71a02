"""Media wiring on pjsua2's conference bridge: microphone, earpiece, call-progress tones.

The engine runs on a null sound device, so the terminal's audio ends are conference ports:
- the microphone is a continuous tone or a looping WAV (simulated board), or silence;
- the earpiece is a WAV recorder opened while the terminal's audio path is open (off-hook,
  speaker on, or in a call) — one file per session under `<data dir>/audio/`;
- call-progress tones come from a `ToneGenerator` into the earpiece.
Every method runs on the engine thread.
"""

from __future__ import annotations

import itertools
import logging
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pjsua2 as pj

from audio.dtmf import DtmfDetector
from audio.tones import ToneSegment

log = logging.getLogger("luren.sip.media")
FRAME_MS = 20
DigitReport = Callable[[str, str], None]  # (call id, digit), called on the media clock thread
_LONG_MS = 30_000  # pjmedia tone durations are 16-bit


def _tone_descs(segments: list[ToneSegment], volume: int = 0) -> pj.ToneDescVector:
    descs = pj.ToneDescVector()
    for seg in segments:
        d = pj.ToneDesc()
        d.freq1, d.freq2 = seg.freq1, seg.freq2
        d.on_msec, d.off_msec = seg.on_ms, seg.off_ms
        d.volume = volume
        descs.append(d)
    return descs


def _next_session(folder: Path | None) -> int:
    """One past the highest earpiece-NNNN.wav already there, so a restart overwrites nothing."""
    numbers = [int(p.stem.rsplit("-", 1)[1]) for p in (folder.glob("earpiece-*.wav") if folder
               else []) if p.stem.rsplit("-", 1)[1].isdigit()]
    return max(numbers, default=0) + 1


def stop_transmit(src: pj.AudioMedia | None, dst: pj.AudioMedia | None) -> None:
    """Stop `src` sending to `dst`, if both exist and it does (a stream may be gone)."""
    if src is None or dst is None:
        return
    try:
        src.stopTransmit(dst)
    except pj.Error as exc:
        log.debug("stop transmit: %s", exc.info())


class Graveyard:
    """Bridge ports written in Python, kept alive a while after they are let go.

    pjmedia calls a port's `onFrameReceived`/`onFrameRequested`/`onEof2` on its clock thread,
    and disconnecting or removing a port only takes effect at the bridge's next tick (pjsua
    2.15 queues those operations). Destroying the Python object at once lets such a call
    reach a half-destroyed object. Ports are therefore buried here, already disconnected (or
    with their call's stream gone), and destroyed on the engine thread a little later, when
    nothing can call them any more (two seconds: the bridge's queued operations run within
    a tick, 20 ms; the margin covers a loaded machine)."""

    def __init__(self, keep_s: float = 2.0) -> None:
        self._keep_s = keep_s
        self._buried: list[tuple[float, object]] = []

    def bury(self, port: object) -> None:
        if port is not None:
            self._buried.append((time.monotonic() + self._keep_s, port))

    def sweep(self) -> None:
        """Destroy what has waited long enough (engine thread)."""
        if self._buried:
            now = time.monotonic()
            self._buried = [(due, port) for due, port in self._buried if due > now]

    def clear(self) -> None:
        self._buried.clear()


class AudioEnds(Protocol):
    """A terminal's sound hardware as the media clock sees it (`audio.bridge.AlsaBridge`).

    Both methods run on pjmedia's clock thread, 50 times a second, and must never block."""

    def pull_capture(self, nbytes: int) -> bytes: ...
    def push_playback(self, pcm: bytes) -> None: ...


class _HardwarePort(pj.AudioMediaPort):
    """A conference-bridge port whose source and sink are the terminal's sound hardware."""

    def __init__(self, ends: AudioEnds, clock_rate: int) -> None:
        super().__init__()
        self._ends = ends
        self._bytes = clock_rate * 2 * FRAME_MS // 1000
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, clock_rate, 1, FRAME_MS * 1000, 16)
        self.createPort("terminal", fmt)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        try:
            frame.buf = pj.ByteVector(self._ends.pull_capture(self._bytes))
            frame.size, frame.type = self._bytes, pj.PJMEDIA_FRAME_TYPE_AUDIO
        except Exception:  # never let an error cross into pjmedia's thread
            log.exception("capture frame failed")

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            self._ends.push_playback(bytes(frame.buf))
        except Exception:
            log.exception("playback frame failed")


class _DtmfTap(pj.AudioMediaPort):
    """A bridge port that hears one call's incoming audio and reports in-band DTMF keys."""

    def __init__(self, call_id: str, clock_rate: int, report: DigitReport) -> None:
        super().__init__()
        self._call_id, self._report = call_id, report
        self._detector = DtmfDetector(clock_rate)
        self._silence = bytes(clock_rate * 2 * FRAME_MS // 1000)  # stands in for a lost frame
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, clock_rate, 1, FRAME_MS * 1000, 16)
        self.createPort(f"dtmf-{call_id}", fmt)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE  # a listener only: it sends nothing

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            audio = frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size
            pcm = bytes(frame.buf)[: frame.size] if audio else bytes(self._silence)
            for key in self._detector.feed(pcm):
                self._report(self._call_id, key.digit)
        except Exception:  # never let an error cross into pjmedia's thread
            log.exception("in-band DTMF detection failed")


class TerminalMedia:
    """One terminal's audio ends and the calls currently connected to them.

    With `ends` (real sound hardware) the microphone and earpiece are one bridge port; without
    them (the simulated board) the microphone is a tone or a WAV file and the earpiece a WAV
    recorder per audio session."""

    def __init__(self, recordings_dir: Path | None, mic_tone_hz: int = 0, mic_file: str = "",
                 clock_rate: int = 16000, ends: AudioEnds | None = None,
                 dtmf_report: DigitReport | None = None,
                 graveyard: Graveyard | None = None) -> None:
        self._dir = recordings_dir
        self._graveyard = graveyard or Graveyard()
        self._dtmf_report = dtmf_report  # set: listen for in-band DTMF in every call
        self._taps: dict[str, _DtmfTap] = {}
        self._session = itertools.count(_next_session(recordings_dir))
        self._rate = clock_rate
        self._mic_obj: object | None = None
        self._port = _HardwarePort(ends, clock_rate) if ends is not None else None
        self.mic: pj.AudioMedia | None = self._port or self._make_mic(mic_tone_hz, mic_file)
        self._tones = pj.ToneGenerator()
        self._tones.createToneGenerator(clock_rate, 1)
        self._feedback = pj.ToneGenerator()  # key clicks and DTMF heard while keys are pressed
        self._feedback.createToneGenerator(clock_rate, 1)
        self._earpiece: pj.AudioMedia | None = None
        self._looping = False  # set_loopback: the microphone into the earpiece
        self._silence: pj.AudioMediaPlayer | None = None
        self.earpiece_file: Path | None = None
        self.tone: str | None = None
        self.tone_started_at = 0.0  # time.monotonic() when the current tone started
        self._calls: dict[str, pj.AudioMedia] = {}
        self._dtmf: dict[str, pj.ToneGenerator] = {}  # in-band DTMF senders per call
        self._conference: set[str] = set()  # calls mixed with each other
        self.muted = False
        self._recorder: pj.AudioMediaRecorder | None = None
        self.recording: Path | None = None
        self._linked: list[TerminalMedia] = []  # internal calls: terminals we talk with

    def _make_mic(self, tone_hz: int, path: str) -> pj.AudioMedia | None:
        if path:
            player = pj.AudioMediaPlayer()
            player.createPlayer(path, 0)  # 0 = loop
            self._mic_obj = player
            return player
        if tone_hz:
            gen = pj.ToneGenerator()
            gen.createToneGenerator(self._rate, 1)
            gen.play(_tone_descs([ToneSegment(tone_hz, 0, _LONG_MS, 0)]), True)
            self._mic_obj = gen
            return gen
        return None

    # -- the audio path (earpiece) ------------------------------------------------------
    @property
    def earpiece(self) -> pj.AudioMedia | None:
        """What the terminal hears through (None while the audio path is closed)."""
        return self._earpiece

    def open_path(self) -> Path | None:
        """Open the earpiece: the hardware port, or a new recording; idempotent."""
        if self._earpiece is None:
            self._earpiece = self._port or self._new_recording()
            if self._earpiece is not None:
                self._tones.startTransmit(self._earpiece)
                self._feedback.startTransmit(self._earpiece)
                for media in self._calls.values():
                    media.startTransmit(self._earpiece)
                for other in self._linked:
                    other._send_mic(self._earpiece, True)
        return self.earpiece_file

    def _new_recording(self) -> pj.AudioMediaRecorder | None:
        if self._dir is None:
            return None
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / f"earpiece-{next(self._session):04d}.wav"
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(str(path))
        self.earpiece_file = path
        self._keep_time(rec)
        return rec

    def _keep_time(self, rec: pj.AudioMediaRecorder) -> None:
        """The conference bridge writes nothing to a recorder none of whose sources has
        audio (a call on hold, no tone): a looping silence keeps the recording in step with
        the clock, so a second of it is a second of time."""
        if self._silence is None:
            assert self._dir is not None
            path = self._dir / ".silence.wav"
            if not path.exists():
                with wave.open(str(path), "wb") as wav:
                    wav.setnchannels(1)
                    wav.setsampwidth(2)
                    wav.setframerate(self._rate)
                    wav.writeframes(bytes(2 * self._rate))
            self._silence = pj.AudioMediaPlayer()
            self._silence.createPlayer(str(path), 0)
        self._silence.startTransmit(rec)

    def set_loopback(self, on: bool) -> None:
        """The technician's audio test: the microphone straight to the earpiece (opened)."""
        if self.mic is None:
            return
        if on:
            self.open_path()
            if self._earpiece is not None and not self._looping:
                self.mic.startTransmit(self._earpiece)
                self._looping = True
        elif self._looping:
            self._looping = False
            if self._earpiece is not None:
                stop_transmit(self.mic, self._earpiece)

    def close_path(self) -> None:
        """Close the earpiece; a recording's WAV file is complete once this returns."""
        self.set_loopback(False)
        self.stop_tone()
        sink, self._earpiece = self._earpiece, None
        if sink is not None:
            for media in self._calls.values():
                media.stopTransmit(sink)
            for other in self._linked:
                other._send_mic(sink, False)
            self._tones.stopTransmit(sink)
            self._feedback.stopTransmit(sink)
            stop_transmit(self._silence, sink)
            del sink  # destroying a recorder writes the WAV header

    # -- calls -------------------------------------------------------------------------
    def connect_call(self, call_id: str, media: pj.AudioMedia) -> None:
        old = self._calls.get(call_id)
        if old is not None and old.getPortId() == media.getPortId():
            return  # the same stream: already wired
        if old is not None:  # re-negotiated (resumed, re-INVITE): pjsua made a new stream
            self.disconnect_call(call_id, stale=True)
        self._calls[call_id] = media
        if self.mic is not None and not self.muted:
            self.mic.startTransmit(media)
        if self._earpiece is not None:
            media.startTransmit(self._earpiece)
        if self._recorder is not None:
            media.startTransmit(self._recorder)
        if call_id in self._conference:
            for other_id in self._conference - {call_id}:
                self._cross(call_id, other_id, True)
        if self._dtmf_report is not None:
            tap = self._taps.get(call_id)
            if tap is None:
                tap = self._taps[call_id] = _DtmfTap(call_id, self._rate, self._dtmf_report)
            media.startTransmit(tap)
        gen = self._dtmf.get(call_id)
        if gen is not None:
            gen.startTransmit(media)

    def play_dtmf(self, call_id: str, digits: str, on_ms: int = 100, off_ms: int = 100) -> None:
        """Send `digits` in-band: DTMF tone pairs mixed into the call's outgoing audio."""
        media = self._calls[call_id]
        gen = self._dtmf.get(call_id)
        if gen is None:
            gen = self._dtmf[call_id] = pj.ToneGenerator()
            gen.createToneGenerator(self._rate, 1)
            gen.startTransmit(media)
        tones = pj.ToneDigitVector()
        for digit in digits:
            tone = pj.ToneDigit()
            tone.digit, tone.on_msec, tone.off_msec, tone.volume = digit, on_ms, off_ms, 0
            tones.append(tone)
        gen.playDigits(tones, False)

    # -- conference, mute, recording ---------------------------------------------------------
    def set_conference(self, call_ids: list[str]) -> None:
        """Mix these calls with each other; the calls left out stop hearing the others."""
        wanted = set(call_ids)
        for a in self._conference | wanted:
            for b in self._conference | wanted:
                if a < b:
                    self._cross(a, b, a in wanted and b in wanted)
        self._conference = wanted

    def _cross(self, a: str, b: str, on: bool) -> None:
        media_a, media_b = self._calls.get(a), self._calls.get(b)
        if media_a is None or media_b is None:
            return  # joins when its media connects
        for src, dst in ((media_a, media_b), (media_b, media_a)):
            try:
                if on:
                    src.startTransmit(dst)
                else:
                    src.stopTransmit(dst)
            except pj.Error as exc:
                log.debug("conference %s-%s: %s", a, b, exc.info())

    def set_mute(self, muted: bool) -> None:
        """Stop (or restart) sending the microphone to every call."""
        if muted == self.muted:
            return
        self.muted = muted
        if self.mic is None:
            return
        for media in self._calls.values():
            if muted:
                self.mic.stopTransmit(media)
            else:
                self.mic.startTransmit(media)
        for other in self._linked:
            if other._earpiece is not None:
                self._send_mic(other._earpiece, not muted)

    # -- internal calls (a DECT base's handsets talking to each other) ------------------------
    def link(self, other: TerminalMedia, on: bool) -> None:
        """An internal call: each terminal's microphone into the other's earpiece, kept up
        while either earpiece is closed and opened again; `on=False` ends it."""
        if other is self or (other in self._linked) == on:
            return
        if on:
            self._linked.append(other)
            other._linked.append(self)
        else:
            self._linked.remove(other)
            other._linked.remove(self)
        if other._earpiece is not None:
            self._send_mic(other._earpiece, on)
        if self._earpiece is not None:
            other._send_mic(self._earpiece, on)

    def _send_mic(self, sink: pj.AudioMedia, on: bool) -> None:
        if self.mic is None:
            return
        if on and not self.muted:
            self.mic.startTransmit(sink)
        elif not on:
            stop_transmit(self.mic, sink)

    def take_call(self, call_id: str) -> pj.AudioMedia | None:
        """Let a call go to another terminal (an internal transfer): its stream, unwired
        here, with what this terminal kept for it dropped."""
        media = self._calls.get(call_id)
        self.disconnect_call(call_id)
        self.forget_call(call_id)
        return media

    def start_recording(self, path: str) -> None:
        """Record microphone and calls, mixed, to the WAV `path` (its header is written on
        `stop_recording`)."""
        if self._recorder is not None:
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        self._recorder, self.recording = rec, Path(path)
        if self.mic is not None:
            self.mic.startTransmit(rec)
        for media in self._calls.values():
            media.startTransmit(rec)

    def stop_recording(self) -> Path | None:
        """Close the recorder; returns the finished file, or None when none was recording."""
        rec, path = self._recorder, self.recording
        if rec is None:
            return None
        self._recorder = self.recording = None
        for media in [self.mic, *self._calls.values()]:
            stop_transmit(media, rec)
        del rec  # destroying the recorder writes the WAV header
        return path

    def disconnect_call(self, call_id: str, *, stale: bool = False) -> None:
        """Unwire a call's stream. `stale`: pjsua has already removed (or queued the removal
        of) its conference slot, which took every connection of that slot with it; then
        nothing may be disconnected by that slot number: pjmedia 2.15 turns a disconnect
        naming a slot being removed into "disconnect the other port from everything" (upstream
        issue #4719), which would cut the tones and recorder off the earpiece."""
        media = self._calls.pop(call_id, None)
        if media is None or stale:
            return
        tap = self._taps.get(call_id)
        if tap is not None:
            stop_transmit(media, tap)
        gen = self._dtmf.get(call_id)
        if gen is not None:
            stop_transmit(gen, media)
        if call_id in self._conference:
            for other_id in self._conference - {call_id}:
                other = self._calls.get(other_id)
                stop_transmit(media, other)
                stop_transmit(other, media)
        stop_transmit(self.mic, media)
        stop_transmit(media, self._earpiece)
        stop_transmit(media, self._recorder)

    def forget_call(self, call_id: str) -> None:
        """The call is over: pjsua removes its stream itself; drop what was kept for it."""
        tap = self._taps.pop(call_id, None)
        if tap is not None:  # private to this call: cutting it off everything is safe (#4719)
            stop_transmit(self._calls.get(call_id), tap)
        self.disconnect_call(call_id, stale=True)
        self._graveyard.bury(tap)
        self._dtmf.pop(call_id, None)
        self._conference.discard(call_id)

    def is_current(self, call_id: str, live_slots: set[int]) -> bool:
        """Whether the stream kept for `call_id` is still one of the call's live slots."""
        media = self._calls.get(call_id)
        return media is not None and media.getPortId() in live_slots

    # -- tones -------------------------------------------------------------------------
    def play_tone(self, name: str, segments: list[ToneSegment], loop: bool = True) -> None:
        """Play a call-progress tone into the earpiece: looping until stopped, or once."""
        self._tones.stop()
        self._tones.play(_tone_descs(segments), loop)
        self.tone, self.tone_started_at = name, time.monotonic()

    def play_feedback(self, segments: list[ToneSegment], volume: int) -> None:
        """A short sound once, over whatever plays (key click, DTMF of a pressed key); only
        heard with the earpiece open. `volume` is the peak sample value."""
        if self._earpiece is None:
            return
        self._feedback.stop()
        self._feedback.play(_tone_descs(segments, volume), False)

    def stop_tone(self) -> None:
        if self.tone is not None:
            self._tones.stop()
            self.tone = None

    def close(self) -> None:
        self.stop_recording()
        self.close_path()
        self._calls.clear()
        self._dtmf.clear()
        self._taps.clear()
        self.mic = None
        self._mic_obj = None
        self._port = None
        self._tones = None
        self._feedback = None
        self._silence = None
