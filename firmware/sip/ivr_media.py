"""The audio of one touch-tone menu session on pjsua2's conference bridge.

A session (`IvrLeg`) has a *source* (what the person says: the call's incoming audio, or the
terminal's microphone when the owner uses the menu at the desk) and a *sink* (where prompts are
heard: the call's outgoing audio, or the terminal's earpiece). It plays prompt files one after
another into the sink, records the source into a WAV file, and listens to the source for
in-band DTMF keys and for silence while recording.

Prompts play one file per player, each started when the previous one has ended: a playlist
would need every file in the same format, and a recorded prompt a user drops in may be 8 kHz
while the generated ones are 16 kHz (the bridge resamples each player's port). The end of a
file is reported by pjmedia on its clock thread; the leg only queues a note of it for the
engine thread (`advance`), which starts the next file or reports the prompt finished.

Every method except the `_Tap`/`_Player` callbacks runs on the engine thread.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable
from pathlib import Path

import pjsua2 as pj

from audio.dtmf import DtmfDetector
from firmware.sip.media import Graveyard, stop_transmit

log = logging.getLogger("luren.sip.ivr")
FRAME_MS = 20
SILENCE_RMS = 300  # about -40 dBFS: below this a frame counts as silence

Report = Callable[[str], None]


class _Player(pj.AudioMediaPlayer):
    """A file player that reports its end of file (on pjmedia's clock thread)."""

    def __init__(self, on_eof: Callable[[], None]) -> None:
        super().__init__()
        self._on_eof = on_eof
        self.ended = False

    def onEof2(self) -> None:
        if not self.ended:
            self.ended = True
            try:
                self._on_eof()
            except Exception:  # never let an error cross into pjmedia's thread
                log.exception("prompt end report failed")


class _Tap(pj.AudioMediaPort):
    """Hears the session's source: in-band DTMF always, silence while asked to."""

    def __init__(self, name: str, clock_rate: int, digit: Callable[[str], None],
                 silence: Callable[[], None]) -> None:
        super().__init__()
        self._digit, self._silence = digit, silence
        self._detector = DtmfDetector(clock_rate)
        self._quiet = bytes(clock_rate * 2 * FRAME_MS // 1000)
        self.silence_limit_ms = 0  # > 0: report once after this much silence
        self._silent_ms = 0
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, clock_rate, 1, FRAME_MS * 1000, 16)
        self.createPort(name, fmt)

    def watch_silence(self, seconds: float) -> None:
        self._silent_ms = 0
        self.silence_limit_ms = int(seconds * 1000)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE  # a listener only

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            audio = frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size
            pcm = bytes(frame.buf)[: frame.size] if audio else self._quiet
            for key in self._detector.feed(pcm):
                self._digit(key.digit)
            if self.silence_limit_ms > 0:
                self._count_silence(pcm)
        except Exception:  # never let an error cross into pjmedia's thread
            log.exception("menu audio tap failed")

    def _count_silence(self, pcm: bytes) -> None:
        samples = array("h", pcm[: len(pcm) // 2 * 2])
        power = sum(s * s for s in samples[::4]) / max(1, len(samples[::4]))
        if power >= SILENCE_RMS * SILENCE_RMS:
            self._silent_ms = 0
            return
        self._silent_ms += FRAME_MS
        if self._silent_ms >= self.silence_limit_ms:
            self.silence_limit_ms = 0
            self._silence()


class IvrLeg:
    """One menu session's prompts, recorder and listener (see the module docstring).

    `digit(key)`, `silence()` are called on pjmedia's clock thread; `prompt_end()` too, and
    must only queue work for the engine thread, which then calls `advance()`."""

    def __init__(self, name: str, clock_rate: int, *, digit: Callable[[str], None],
                 silence: Callable[[], None], prompt_end: Callable[[], None],
                 finished: Callable[[int], None], recorded: Callable[[str], None],
                 graveyard: Graveyard, listen_for_dtmf: bool = True) -> None:
        self.name = name
        self._graveyard = graveyard
        self._rate = clock_rate
        self._prompt_end, self._finished, self._recorded = prompt_end, finished, recorded
        self._tap = _Tap(f"ivr-{name}", clock_rate, digit, silence) if listen_for_dtmf \
            else None
        self._source: pj.AudioMedia | None = None
        self._sink: pj.AudioMedia | None = None
        self._queue: list[str] = []
        self._token = 0
        self._player: _Player | None = None
        self._recorder: pj.AudioMediaRecorder | None = None
        self.recording: str | None = None

    # -- wiring ---------------------------------------------------------------------------
    @property
    def slot(self) -> int | None:
        """The conference slot of the current source, or None."""
        return None if self._source is None else int(self._source.getPortId())

    def attach(self, source: pj.AudioMedia | None, sink: pj.AudioMedia | None,
               *, stale: bool = False) -> None:
        """(Re)connect to a source and sink; `stale`: the old ones' slots are already gone."""
        self.detach(stale=stale)
        self._source, self._sink = source, sink
        if source is not None:
            if self._tap is not None:
                source.startTransmit(self._tap)
            if self._recorder is not None:
                source.startTransmit(self._recorder)
        if sink is not None and self._player is not None:
            self._player.startTransmit(sink)

    def detach(self, *, stale: bool = False) -> None:
        """Disconnect the leg's own ports from the source and sink. Also when they are
        `stale` (the call's stream is gone or going): pjmedia 2.15 turns a disconnect naming a
        slot being removed into "disconnect the other port from everything" (upstream issue
        #4719), which for the tap, recorder and player, private to this leg, is what is wanted;
        and a port must never be destroyed while the bridge may still call it."""
        source, sink = self._source, self._sink
        self._source = self._sink = None
        stop_transmit(source, self._tap)
        stop_transmit(source, self._recorder)
        stop_transmit(self._player, sink)

    # -- prompts --------------------------------------------------------------------------
    def play(self, paths: list[str], token: int) -> None:
        """Play the files in order; `finished(token)` after the last (at once if none)."""
        self.stop_prompts()
        self._queue, self._token = list(paths), token
        self._next()

    def stop_prompts(self) -> None:
        self._queue = []
        self._drop_player()

    def advance(self) -> None:
        """The current file has ended (queued from the clock thread): play the next."""
        if self._player is not None and self._player.ended:
            self._drop_player()
            self._next()

    def _next(self) -> None:
        while self._queue:
            path = self._queue.pop(0)
            player = _Player(self._prompt_end)
            try:
                player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
            except pj.Error as exc:
                log.warning("menu %s: cannot play %s: %s", self.name, path, exc.info())
                continue
            self._player = player
            if self._sink is not None:
                player.startTransmit(self._sink)
            return
        self._finished(self._token)

    def _drop_player(self) -> None:
        player, self._player = self._player, None
        if player is not None:
            stop_transmit(player, self._sink)
            self._graveyard.bury(player)  # the bridge may still call it once

    # -- recording ------------------------------------------------------------------------
    def record(self, path: str, silence_s: float) -> None:
        """Record the source into the WAV `path`; `silence()` after `silence_s` of quiet
        (0 = never)."""
        self.stop_recording()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        self._recorder, self.recording = rec, path
        if self._source is not None:
            self._source.startTransmit(rec)
        if self._tap is not None and silence_s > 0:
            self._tap.watch_silence(silence_s)

    def stop_recording(self) -> None:
        """Close the recorder; `recorded(path)` once it is destroyed."""
        rec, path = self._recorder, self.recording
        if rec is None or path is None:
            return
        self._recorder = self.recording = None
        if self._tap is not None:
            self._tap.silence_limit_ms = 0
        stop_transmit(self._source, rec)
        del rec  # destroying the recorder writes the WAV header
        self._recorded(path)

    def close(self, *, stale: bool) -> None:
        """The session is over: stop everything (a recording in progress is kept).
        `stale`: the source and sink slots are gone already (the call ended)."""
        self.detach(stale=stale)
        self.stop_prompts()
        self.stop_recording()
        self._graveyard.bury(self._tap)
        self._tap = None
