"""Call recordings in the data directory, written so a power cut never leaves a broken file.

The recorder (pjsua2's `AudioMediaRecorder`, driven elsewhere) writes to a *part* file,
`<name>.part.wav`, whose WAV header only becomes correct when the recorder is destroyed: until
then pjmedia leaves the RIFF and data sizes at 0 while PCM data follows. (The part file ends in
`.wav` because pjsua picks the file format from the last four characters of the name and refuses
anything else, `.wav.part` included.)

Life of a recording:

1. `RecordingStore.new_part()` names the part file; the recorder writes to it.
2. Once the recorder is destroyed (at hang-up or when the record key stops it),
   `RecordingStore.finish()` checks the header and fixes it from the real data length, fsyncs
   the file, renames it to `<name>.wav` with `os.replace` and fsyncs the directory.
3. At start-up, before any recorder runs, `RecordingStore.recover()` does the same for every
   part file left behind by a power cut or a crash. A part file holding less than
   `min_seconds` of audio, or that is not a 16-bit PCM WAV at all, is deleted and the log says
   why in plain words.

Why a power cut is harmless at any point: a `.wav` only ever appears through an atomic rename
of a part file that has already been repaired and fsynced, so every `.wav` is complete. Until
that rename the part file is the only copy, and repairing it is idempotent: the header fields
written are derived from the file's own length, never from memory. A part file interrupted
half-way through its repair is therefore repaired again, identically, by the next `recover()`.
(Rewriting the header in place, rather than copying the whole file to a temporary one as
`firmware.storage.atomic_write` does for small files, avoids rewriting an hour of audio on an
SD card.)

The size bound: a store made with `max_bytes` and/or `max_files` deletes its oldest finished
recordings after every `finish()` and `recover()` (or whenever `prune()` is called), until the
finished recordings plus any part files in the directory take at most `max_bytes` bytes and
there are at most `max_files` finished recordings. Part files are never deleted by the bound
(one may be recording), and the newest finished recording is always kept, even if it alone
exceeds `max_bytes`. "Oldest" is by the start time in the file name (the file's modification
time for names that carry none). With neither set, nothing is ever deleted automatically.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("luren.recordings")

PART_SUFFIX = ".part.wav"
WAV_SUFFIX = ".wav"
REMOTE_MAX = 24  # characters of the remote number kept in a file name
CALL_ID_MAX = 12
NAME_TIME_FORMAT = "%Y-%m-%d_%H-%M-%S"

_UNSAFE_REMOTE = re.compile(r"[^0-9A-Za-z+*#-]+")
_UNSAFE_CALL_ID = re.compile(r"[^0-9A-Za-z]+")
_NAME_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})_")

_PCM = 0x0001
_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM, 00000001-0000-0010-8000-00aa00389b71, as stored in a fmt chunk.
_PCM_SUBFORMAT = bytes.fromhex("0100000000001000800000aa00389b71")
_FORMAT_NAMES = {0x0003: "32-bit float", 0x0006: "A-law", 0x0007: "µ-law", 0x0011: "IMA ADPCM",
                 0x0055: "MP3"}
_MAX_FMT = 1024  # a fmt chunk larger than this is garbage
_MAX_RIFF = 0xFFFFFFFF
_POLL_SECONDS = 0.01


class RecordingError(Exception):
    """A recording file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class WavInfo:
    """What a 16-bit PCM WAV file holds, as its header says after `repair_wav_header`."""

    rate: int
    channels: int
    sample_width: int  # bytes per sample: always 2
    frames: int
    data_offset: int  # where the PCM samples start in the file
    data_bytes: int
    repaired: bool  # True when the header (or a trailing half frame) had to be fixed

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


@dataclass(frozen=True)
class Recording:
    """A finished recording in the store."""

    path: Path
    started: datetime  # from the file name; its modification time for names not made here
    seconds: float
    bytes: int  # size of the file on disk
    rate: int
    channels: int
    frames: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class _Format:
    rate: int
    channels: int
    block_align: int


@dataclass(frozen=True)
class _Layout:
    fmt: _Format
    riff_size: int
    data_offset: int
    declared_data: int


# -- WAV headers ------------------------------------------------------------------------------

def repair_wav_header(path: Path) -> WavInfo:
    """Make the RIFF and data sizes of a 16-bit PCM WAV match the audio actually in the file.

    A header that is already consistent with the file is left alone. Otherwise the data chunk
    is taken to run to the end of the file, a trailing half frame is cut off, and both sizes are
    rewritten in place. The file is fsynced either way. Raises `RecordingError` for a file that
    is not RIFF/WAVE, lacks a fmt or data chunk, or is not 16-bit PCM.
    """
    with open(path, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        layout = _read_layout(fh, path, size)
        length, consistent = _data_length(fh, layout, size)
        if not consistent:
            _rewrite_sizes(fh, path, layout, length)
        fh.flush()
        os.fsync(fh.fileno())
    return _info(layout, length, repaired=not consistent)


def read_wav_info(path: Path) -> WavInfo:
    """What `repair_wav_header` would report, without writing anything."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        layout = _read_layout(fh, path, size)
        length, consistent = _data_length(fh, layout, size)
    return _info(layout, length, repaired=not consistent)


def _info(layout: _Layout, length: int, *, repaired: bool) -> WavInfo:
    fmt = layout.fmt
    return WavInfo(rate=fmt.rate, channels=fmt.channels, sample_width=2,
                   frames=length // fmt.block_align, data_offset=layout.data_offset,
                   data_bytes=length, repaired=repaired)


def _read_layout(fh: BinaryIO, path: Path, size: int) -> _Layout:
    """Walk the chunks up to `data`, reading `fmt ` on the way and skipping any others."""
    if size == 0:
        raise RecordingError(f"{path}: the file is empty")
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise RecordingError(f"{path}: not a WAV file (it starts with {head[:12]!r}, "
                             "a WAV file starts with 'RIFF' and 'WAVE')")
    riff_size = struct.unpack("<I", head[4:8])[0]
    fmt: _Format | None = None
    pos = 12
    while True:
        if pos + 8 > size:
            what = "audio data chunk ('data')" if fmt else "format chunk ('fmt ')"
            raise RecordingError(f"{path}: no {what} in the file")
        fh.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        if chunk_id == b"data":
            if fmt is None:
                raise RecordingError(f"{path}: the audio data comes before the format chunk "
                                     "('fmt '), so its format is unknown")
            return _Layout(fmt, riff_size, pos + 8, chunk_size)
        if pos + 8 + chunk_size > size:
            raise RecordingError(f"{path}: chunk {chunk_id!r} at byte {pos} runs past the end "
                                 "of the file, before any audio data")
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(path, fh.read(min(chunk_size, _MAX_FMT)), chunk_size)
        pos += 8 + chunk_size + (chunk_size & 1)


def _parse_fmt(path: Path, body: bytes, chunk_size: int) -> _Format:
    """Accept 16-bit PCM, plain or as WAVE_FORMAT_EXTENSIBLE with the PCM sub-format."""
    if not 16 <= chunk_size <= _MAX_FMT:
        raise RecordingError(f"{path}: the format chunk ('fmt ') is {chunk_size} bytes long, "
                             "which is not a valid size")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 40 or body[24:40] != _PCM_SUBFORMAT:
            raise RecordingError(f"{path}: extensible WAV whose sub-format is not PCM; only "
                                 "16-bit PCM recordings are supported")
        tag = _PCM
    if tag != _PCM:
        name = _FORMAT_NAMES.get(tag, "unknown")
        raise RecordingError(f"{path}: audio format {tag} ({name}) is not supported; only "
                             "16-bit PCM recordings are supported")
    if bits != 16:
        raise RecordingError(f"{path}: {bits}-bit samples are not supported; only 16-bit PCM "
                             "recordings are supported")
    if channels < 1 or rate < 1 or block_align != 2 * channels:
        raise RecordingError(f"{path}: the format chunk is inconsistent ({channels} channels, "
                             f"{rate} Hz, {block_align} bytes per frame)")
    return _Format(rate, channels, block_align)


def _data_length(fh: BinaryIO, layout: _Layout, size: int) -> tuple[int, bool]:
    """(bytes of whole frames of audio, whether the header already says exactly that)."""
    available = size - layout.data_offset
    declared = layout.declared_data
    end = layout.data_offset + declared + (declared & 1)
    if (layout.riff_size + 8 == size and declared <= available
            and _chunks_fill(fh, end, size)):
        return declared, True
    return available - available % layout.fmt.block_align, False


def _chunks_fill(fh: BinaryIO, pos: int, size: int) -> bool:
    """Whether the bytes from `pos` to the end of the file are whole, well-formed chunks."""
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        if not all(32 <= c < 127 for c in chunk_id):
            return False
        pos += 8 + chunk_size + (chunk_size & 1)
    return pos in (size, size + 1)  # the last chunk's pad byte is often missing


def _rewrite_sizes(fh: BinaryIO, path: Path, layout: _Layout, length: int) -> None:
    """Cut the file after the last whole frame and write the RIFF and data sizes for it."""
    end = layout.data_offset + length
    if end - 8 > _MAX_RIFF:
        raise RecordingError(f"{path}: more than 4 GiB of audio, too much for one WAV file")
    fh.truncate(end)
    fh.seek(4)
    fh.write(struct.pack("<I", end - 8))
    fh.seek(layout.data_offset - 4)
    fh.write(struct.pack("<I", length))


# -- names --------------------------------------------------------------------------------------

def safe_remote(remote: str) -> str:
    """The remote number reduced to [0-9A-Za-z+*#-], at most `REMOTE_MAX` characters."""
    text = _UNSAFE_REMOTE.sub("-", remote).strip("-")[:REMOTE_MAX].rstrip("-")
    return text or "unknown"


def safe_call_id(call_id: str) -> str:
    """The call id reduced to letters and digits, at most `CALL_ID_MAX` characters."""
    return _UNSAFE_CALL_ID.sub("", call_id)[:CALL_ID_MAX] or "call"


def started_from_name(name: str) -> datetime | None:
    """The start time a store-made name begins with, or None."""
    match = _NAME_TIME.match(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), NAME_TIME_FORMAT)
    except ValueError:
        return None


def _wait_closed(part: Path, timeout: float) -> bool:
    """Wait until `part` has a header consistent with its length; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not read_wav_info(part).repaired:
                return True
        except (RecordingError, OSError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the store ----------------------------------------------------------------------------------

class RecordingStore:
    """The recordings directory: names part files, finishes and recovers them, bounds its size.

    `now` supplies the start time when `new_part` is given none (pass `Clock.wall_time` on the
    phone). `max_bytes` / `max_files` bound the directory (see the module docstring); `None`
    leaves that bound off. Part files shorter than `min_seconds` are deleted rather than kept.
    Not thread-safe: use one store from one thread.
    """

    def __init__(self, directory: Path, *, now: Callable[[], datetime] = datetime.now,
                 max_bytes: int | None = None, max_files: int | None = None,
                 min_seconds: float = 0.5) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be positive or None")
        if max_files is not None and max_files < 1:
            raise ValueError("max_files must be positive or None")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.min_seconds = min_seconds
        self._now = now
        self._active: set[Path] = set()  # part files handed out and not yet finished

    # -- recording ------------------------------------------------------------------------
    def new_part(self, call_id: str, remote: str, started: datetime | None = None) -> Path:
        """A fresh part file path for the recorder, e.g. `2026-11-22_14-05-03_1002_c3.part.wav`.

        The file itself is not created; the name is unique among finished recordings, part
        files on disk and part files this store has handed out."""
        self.directory.mkdir(parents=True, exist_ok=True)
        when = started if started is not None else self._now()
        stem = f"{when.strftime(NAME_TIME_FORMAT)}_{safe_remote(remote)}_{safe_call_id(call_id)}"
        part = next(p for p in self._candidates(stem, PART_SUFFIX) if self._free(p))
        self._active.add(part)
        return part

    def finish(self, part: Path, *, wait_closed: float = 0.0) -> Recording | None:
        """Turn a stopped recording's part file into `<name>.wav`; call once the recorder is gone.

        pjsua2 closes a destroyed recorder asynchronously, on the conference bridge's next
        clock tick (10-20 ms later), and only then writes its last buffer and the header.
        `wait_closed` > 0 first waits up to that many seconds for the header to become
        consistent, i.e. for the recorder to have closed the file, then goes on regardless.

        Returns None when the part file held less than `min_seconds` of audio or was not a
        usable WAV; it is then deleted (and the log says why). An `OSError` (disk full, I/O
        error, ...) propagates and leaves the part file in place for `recover()`."""
        part = Path(part)
        self._active.discard(part)
        if wait_closed > 0 and not _wait_closed(part, wait_closed):
            log.warning("Call recording %s was still open after %.2f s; finishing it anyway.",
                        part.name, wait_closed)
        recording = self._settle(part, recovering=False)
        if recording is not None:
            self.prune()
        return recording

    def recover(self) -> list[Recording]:
        """Finish every part file left by a power cut or crash; call at start-up.

        Never raises for a bad file: unusable ones are deleted, unreadable ones are left for
        the next start-up, and the log says which and why."""
        recovered: list[Recording] = []
        for part in sorted(self.directory.glob("*" + PART_SUFFIX)):
            if part in self._active:
                continue
            try:
                recording = self._settle(part, recovering=True)
            except OSError as exc:
                log.error("Interrupted call recording %s could not be checked (%s). It was left "
                          "in place and will be tried again at the next start-up.",
                          part.name, exc.strerror or exc)
                continue
            if recording is not None:
                recovered.append(recording)
        self.prune()
        return recovered

    # -- the finished recordings ------------------------------------------------------------
    def list(self) -> list[Recording]:
        """Finished recordings, newest first; files that are not readable WAVs are skipped."""
        recordings: list[Recording] = []
        for path in self._finished_paths():
            try:
                recordings.append(self._describe(path))
            except (RecordingError, OSError) as exc:
                log.warning("Skipping %s in the recordings folder: %s", path.name, exc)
        return sorted(recordings, key=_age_key, reverse=True)

    def delete(self, name: str) -> bool:
        """Delete the finished recording called `name`; False if there is none by that name.

        Raises `RecordingError` for anything but the plain name of a finished recording (a
        path, a part file, a non-WAV), so a name from the network cannot reach other files."""
        if (not name or name != Path(name).name or name.startswith(".") or "\0" in name
                or not name.endswith(WAV_SUFFIX) or name.endswith(PART_SUFFIX)):
            raise RecordingError(f"{name!r} is not the name of a finished recording")
        try:
            (self.directory / name).unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.directory)
        log.info("Call recording %s deleted", name)
        return True

    def prune(self) -> list[Path]:
        """Apply the size bound: delete the oldest finished recordings; return what went."""
        if self.max_bytes is None and self.max_files is None:
            return []
        oldest_first = self.list()[::-1]
        total = sum(r.bytes for r in oldest_first) + self._part_bytes()
        removed: list[Path] = []
        while len(oldest_first) > 1 and self._over_bound(total, len(oldest_first)):
            victim = oldest_first.pop(0)
            victim.path.unlink(missing_ok=True)
            total -= victim.bytes
            removed.append(victim.path)
            log.info("Call recording %s deleted to stay within the recordings limit",
                     victim.name)
        if removed:
            _fsync_dir(self.directory)
        return removed

    # -- helpers ------------------------------------------------------------------------------
    def _settle(self, part: Path, *, recovering: bool) -> Recording | None:
        """Repair, fsync and rename one part file, or delete it if it is unusable."""
        try:
            info = repair_wav_header(part)
        except RecordingError as exc:
            self._discard(part)
            log.warning("Call recording %s was damaged beyond repair and has been deleted: %s",
                        part.name, _reason(exc, part))
            return None
        if info.seconds < self.min_seconds:
            self._discard(part)
            level = logging.WARNING if recovering else logging.INFO
            log.log(level, "Call recording %s held only %.1f s of audio (the minimum kept is "
                    "%.1f s) and has been deleted.", part.name, info.seconds, self.min_seconds)
            return None
        final = self._final_path(part)
        os.replace(part, final)
        _fsync_dir(self.directory)
        if recovering:
            log.warning("Call recording %s was interrupted (power cut or crash); its %.1f s of "
                        "audio were saved as %s.", part.name, info.seconds, final.name)
        return self._recording(final, info)

    def _discard(self, part: Path) -> None:
        try:
            part.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.directory)

    def _final_path(self, part: Path) -> Path:
        stem = part.name.removesuffix(PART_SUFFIX)
        return next(p for p in self._candidates(stem, WAV_SUFFIX) if not p.exists())

    def _candidates(self, stem: str, suffix: str) -> Iterator[Path]:
        yield self.directory / f"{stem}{suffix}"
        n = 2
        while True:
            yield self.directory / f"{stem}-{n}{suffix}"
            n += 1

    def _free(self, part: Path) -> bool:
        final = part.with_name(part.name.removesuffix(PART_SUFFIX) + WAV_SUFFIX)
        return part not in self._active and not part.exists() and not final.exists()

    def _finished_paths(self) -> Iterator[Path]:
        for path in self.directory.glob("*" + WAV_SUFFIX):
            if not path.name.endswith(PART_SUFFIX) and path.is_file():
                yield path

    def _part_bytes(self) -> int:
        total = 0
        for part in self.directory.glob("*" + PART_SUFFIX):
            try:
                total += part.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def _over_bound(self, total_bytes: int, files: int) -> bool:
        return ((self.max_bytes is not None and total_bytes > self.max_bytes)
                or (self.max_files is not None and files > self.max_files))

    def _describe(self, path: Path) -> Recording:
        return self._recording(path, read_wav_info(path))

    @staticmethod
    def _recording(path: Path, info: WavInfo) -> Recording:
        stat = path.stat()
        started = started_from_name(path.name) or datetime.fromtimestamp(stat.st_mtime)
        return Recording(path=path, started=started, seconds=info.seconds, bytes=stat.st_size,
                         rate=info.rate, channels=info.channels, frames=info.frames)


def _age_key(recording: Recording) -> tuple[datetime, str]:
    return (recording.started, recording.name)


def _reason(exc: RecordingError, path: Path) -> str:
    """The error message without the path the log line already names."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text
