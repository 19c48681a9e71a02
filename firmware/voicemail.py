"""The phone's own voicemail box, one per line: messages and a personal greeting on local storage.

Life of a message:

1. When a caller is sent to voicemail, `Mailbox.start_message()` picks a unique id from the
   time and the caller's number (e.g. `20261118-120603-1002`), writes `<id>.part.json` (caller,
   name, time) atomically and hands back `<id>.part.wav` for the recorder (pjsua2, driven
   elsewhere). pjsua writes the RIFF and data sizes only when the recorder is destroyed, so
   until then both sizes are 0.
2. After the recorder is destroyed, `Mailbox.finish_message()` waits for the header to become
   consistent, repairs it from the file length if it did not (`repair_wav_header`, which also
   fsyncs the file), writes `<id>.json` (caller, name, time, length, `new: true`) atomically,
   renames `<id>.part.wav` to `<id>.wav`, fsyncs the directory and deletes `<id>.part.json`.
   A message shorter than `min_seconds` (a caller who hung up at the beep) or a file that is
   not a 16-bit PCM WAV is deleted instead, and the log says why.
3. `mark_saved()` rewrites `<id>.json` with `new: false`; `delete()` removes `<id>.wav`, then
   `<id>.json`.
4. At start-up, `Mailbox.recover()` finishes every part file a power cut or crash left behind,
   taking caller and time from its `<id>.part.json` (or "unknown caller" and the file's
   modification time when that is missing or unreadable), and removes leftovers.

Why a power cut at any point leaves either a complete message or none: a message is an
`<id>.wav` with its `<id>.json`, and `<id>.wav` only ever appears through an atomic rename of a
part file that has already been repaired and fsynced, after its `<id>.json` was written with
`atomic_write_json` (write, fsync, rename, fsync the directory). Until that rename the part
file is the only copy of the audio, and repairing it is idempotent (the header is derived from
the file's own length), so `recover()` simply finishes it again. Every other state a cut can
leave is tidied up: an `<id>.json` whose audio is still a part file is rewritten when the part
is finished (or removed with it); an `<id>.json` without any audio (a cut during `delete()`) is
removed; a lone `<id>.part.json` is removed; an `<id>.wav` whose `<id>.json` is missing or
unreadable is still listed, as a new message from an unknown caller at the file's time, and its
details are written again. Audio is never deleted because its details were lost.

Play order (`messages()`): new messages first, oldest first, so callers are heard in the order
they called; then saved messages, newest first. The owner menu's "2 listen to saved messages"
plays all of them in this order.

The full rule: the box is full when it holds `max_messages` messages, or when its messages
together last `max_seconds_total` seconds or more. A full box takes no new message
(`start_message()` raises `MailboxFull`, whose text says which limit was reached); messages
already in it are never deleted to make room. The greeting does not count.

Not thread-safe: use one `Mailbox` from one thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from firmware.recordings import (
    REMOTE_MAX,
    RecordingError,
    _fsync_dir,
    _reason,
    _wait_closed,
    read_wav_info,
    repair_wav_header,
)
from firmware.storage import atomic_write_json, move_aside

log = logging.getLogger("luren.voicemail")

PART_WAV = ".part.wav"
PART_JSON = ".part.json"
WAV = ".wav"
JSON = ".json"
GREETING = "greeting"
ID_TIME_FORMAT = "%Y%m%d-%H%M%S"

_UNSAFE_CALLER = re.compile(r"[^0-9A-Za-z+]+")
_SAFE_ID = re.compile(r"^[0-9A-Za-z+][0-9A-Za-z+-]{0,79}$")


class MailboxFull(Exception):
    """The mailbox takes no new message; the text says which limit was reached."""


@dataclass(frozen=True)
class Message:
    """One finished voicemail message."""

    id: str  # e.g. "20261118-120603-1002" (time + safe caller), unique in the box
    caller: str  # number as received ("" if unknown)
    caller_name: str  # "" if unknown
    received: datetime  # timezone-aware
    seconds: float  # audio length
    new: bool  # not yet listened to
    path: Path  # the finished .wav


@dataclass(frozen=True)
class _Details:
    caller: str
    caller_name: str
    received: datetime


class Mailbox:
    """The voicemail directory of one line: messages, their details and the greeting.

    Messages shorter than `min_seconds` are not kept; `max_messages` and `max_seconds_total`
    make the box full (see the module docstring)."""

    def __init__(self, directory: Path, *, max_messages: int = 50,
                 max_seconds_total: float = 3600.0, min_seconds: float = 2.0) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if not max_seconds_total > 0:
            raise ValueError("max_seconds_total must be positive")
        if not min_seconds >= 0:
            raise ValueError("min_seconds must not be negative")
        self.directory = Path(directory)
        self.max_messages = max_messages
        self.max_seconds_total = max_seconds_total
        self.min_seconds = min_seconds
        self._active: set[Path] = set()  # part files handed out and not yet finished

    # -- start-up -------------------------------------------------------------------------------
    def recover(self) -> list[Message]:
        """Finish or remove what a power cut or crash left behind; call at start-up.

        Returns the messages recovered. Never raises for a bad file: unusable ones are
        deleted, unreadable ones are left for the next start-up, and the log says which."""
        if not self.directory.is_dir():
            return []
        recovered: list[Message] = []
        for part in sorted(self.directory.glob("*" + PART_WAV)):
            if part in self._active or part.name == GREETING + PART_WAV:
                continue
            if not _SAFE_ID.match(_stem(part, PART_WAV)):
                log.warning("Ignoring %s in the voicemail folder: not a name the phone makes.",
                            part.name)
                continue
            try:
                message = self._settle(part, recovering=True)
            except OSError as exc:
                log.error("Interrupted voicemail message %s could not be checked (%s). It was "
                          "left in place and will be tried again at the next start-up.",
                          part.name, exc.strerror or exc)
                continue
            if message is not None:
                recovered.append(message)
        greeting_part = self.directory / (GREETING + PART_WAV)
        if greeting_part.exists() and greeting_part not in self._active:
            try:
                self._settle_greeting(greeting_part, min_seconds=1.0, recovering=True)
            except OSError as exc:
                log.error("Interrupted greeting recording could not be checked (%s). It was "
                          "left in place and will be tried again at the next start-up.",
                          exc.strerror or exc)
        self._remove_orphan_parts()
        return recovered

    # -- recording a message --------------------------------------------------------------------
    def full(self) -> bool:
        """Whether the box takes no new message (see the module docstring)."""
        return self._full_reason(self.messages()) is not None

    def start_message(self, caller: str, caller_name: str, received: datetime) -> Path:
        """Note who is calling and return the part file for the recorder (not created here).

        Raises `MailboxFull` when the box is full and `ValueError` for a naive `received`."""
        if received.tzinfo is None or received.utcoffset() is None:
            raise ValueError("received must be timezone-aware")
        reason = self._full_reason(self.messages())
        if reason is not None:
            raise MailboxFull(reason)
        self.directory.mkdir(parents=True, exist_ok=True)
        base = f"{received.strftime(ID_TIME_FORMAT)}-{_safe_caller(caller)}"
        message_id = next(i for i in _candidates(base) if self._id_free(i))
        atomic_write_json(self._path(message_id, PART_JSON), {
            "caller": caller, "caller_name": caller_name, "received": received.isoformat()})
        part = self._path(message_id, PART_WAV)
        self._active.add(part)
        return part

    def finish_message(self, part: Path, *, wait_closed: float = 0.0) -> Message | None:
        """Turn a stopped recording into a message; call once the recorder is destroyed.

        `wait_closed` > 0 first waits up to that many seconds for pjsua to write the final
        header, then goes on regardless. Returns None (and deletes the part files) when the
        recording is shorter than `min_seconds`, missing or not a usable WAV. An `OSError`
        (disk full, I/O error ...) propagates and leaves the part for `recover()`."""
        part = self._check_part(part)
        self._active.discard(part)
        if wait_closed > 0 and not _wait_closed(part, wait_closed):
            log.warning("Voicemail message %s was still open after %.2f s; finishing it anyway.",
                        _stem(part, PART_WAV), wait_closed)
        return self._settle(part, recovering=False)

    def cancel_message(self, part: Path) -> None:
        """Throw away a message being recorded (its part files; missing ones are fine)."""
        part = self._check_part(part)
        self._active.discard(part)
        self._discard(part)

    # -- the messages ---------------------------------------------------------------------------
    def messages(self) -> list[Message]:
        """All messages in play order: new ones oldest first, then saved ones newest first."""
        if not self.directory.is_dir():
            return []
        found: list[Message] = []
        for wav in self._message_wavs():
            message = self._load(_stem(wav, WAV))
            if message is not None:
                found.append(message)
        self._remove_orphan_details()
        new = sorted((m for m in found if m.new), key=_order)
        saved = sorted((m for m in found if not m.new), key=_order, reverse=True)
        return new + saved

    def counts(self) -> tuple[int, int]:
        """(new, saved) message counts."""
        found = self.messages()
        new = sum(1 for m in found if m.new)
        return new, len(found) - new

    def mark_saved(self, message_id: str) -> bool:
        """Mark a message as listened to; False if there is no such message."""
        if not _valid_id(message_id) or not self._path(message_id, WAV).is_file():
            return False
        message = self._load(message_id)
        if message is None:
            return False
        if message.new:
            self._write_details(message_id, message, new=False)
            log.info("Voicemail message %s marked as saved.", message_id)
        return True

    def delete(self, message_id: str) -> bool:
        """Delete a message (its audio, then its details); False if there is no such message."""
        if not _valid_id(message_id):
            return False
        try:
            self._path(message_id, WAV).unlink()
        except FileNotFoundError:
            existed = False
        else:
            existed = True
        self._path(message_id, JSON).unlink(missing_ok=True)
        if existed:
            _fsync_dir(self.directory)
            log.info("Voicemail message %s deleted.", message_id)
        return existed

    # -- the greeting ---------------------------------------------------------------------------
    def greeting(self) -> Path | None:
        """The personal greeting, if one is recorded and is a valid WAV."""
        path = self.directory / (GREETING + WAV)
        try:
            read_wav_info(path)
        except FileNotFoundError:
            return None
        except (RecordingError, OSError) as exc:
            log.warning("The personal greeting cannot be played, the standard one is used: %s",
                        exc)
            return None
        return path

    def start_greeting(self) -> Path:
        """The part file to record a new greeting into (not created here)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        part = self.directory / (GREETING + PART_WAV)
        self._active.add(part)
        return part

    def finish_greeting(self, part: Path, *, wait_closed: float = 0.0,
                        min_seconds: float = 1.0) -> bool:
        """Make a stopped greeting recording the greeting; False (and deleted) if it is
        shorter than `min_seconds`, missing or unusable. The old greeting stays until then."""
        part = Path(part)
        if part != self.directory / (GREETING + PART_WAV):
            raise ValueError(f"{part} is not this mailbox's greeting part file")
        self._active.discard(part)
        if wait_closed > 0 and not _wait_closed(part, wait_closed):
            log.warning("Greeting recording was still open after %.2f s; finishing it anyway.",
                        wait_closed)
        return self._settle_greeting(part, min_seconds=min_seconds, recovering=False)

    def delete_greeting(self) -> bool:
        """Delete the personal greeting; False if there is none."""
        try:
            (self.directory / (GREETING + WAV)).unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.directory)
        log.info("Personal greeting deleted; callers hear the standard greeting.")
        return True

    # -- helpers --------------------------------------------------------------------------------
    def _settle(self, part: Path, *, recovering: bool) -> Message | None:
        """Repair a part file and make it a message, or delete it if it is unusable."""
        part_id = _stem(part, PART_WAV)
        try:
            written = _mtime(part)  # before the repair touches the file
            info = repair_wav_header(part)
        except FileNotFoundError:
            self._discard(part)
            log.info("Voicemail message %s was never recorded (no audio file); not kept.",
                     part_id)
            return None
        except RecordingError as exc:
            self._discard(part)
            log.warning("Voicemail message %s was damaged beyond repair; not kept: %s",
                        part_id, _reason(exc, part))
            return None
        if info.seconds < self.min_seconds:
            self._discard(part)
            log.log(logging.WARNING if recovering else logging.INFO,
                    "Voicemail message %s was %.1f s, shorter than the %.1f s minimum; not kept.",
                    part_id, info.seconds, self.min_seconds)
            return None
        details = self._part_details(part, written)
        # The id is unique by construction; should a .wav of that name exist anyway, it is
        # another message and must not be overwritten.
        message_id = next(i for i in _candidates(part_id)
                          if not self._path(i, WAV).exists())
        message = Message(id=message_id, caller=details.caller, caller_name=details.caller_name,
                          received=details.received, seconds=info.seconds, new=True,
                          path=self._path(message_id, WAV))
        # repair_wav_header has fsynced the audio, so the details can be made durable first.
        self._write_details(message_id, message, new=True)
        os.replace(part, message.path)
        _fsync_dir(self.directory)
        self._path(part_id, PART_JSON).unlink(missing_ok=True)
        _fsync_dir(self.directory)
        if recovering:
            log.warning("Voicemail message %s was interrupted (power cut or crash); its %.1f s "
                        "of audio were kept as a new message.", message_id, info.seconds)
        else:
            log.info("Voicemail message %s recorded: %.1f s from %s.", message_id,
                     info.seconds, details.caller or "an unknown caller")
        return message

    def _settle_greeting(self, part: Path, *, min_seconds: float, recovering: bool) -> bool:
        try:
            info = repair_wav_header(part)
        except FileNotFoundError:
            log.info("The greeting was never recorded (no audio file); the old one is kept.")
            return False
        except RecordingError as exc:
            self._unlink(part)
            log.warning("The greeting recording was damaged beyond repair and was deleted: %s",
                        _reason(exc, part))
            return False
        if info.seconds < min_seconds:
            self._unlink(part)
            log.log(logging.WARNING if recovering else logging.INFO,
                    "The greeting recording was %.1f s, shorter than the %.1f s minimum; not "
                    "kept.", info.seconds, min_seconds)
            return False
        # repair_wav_header has fsynced the audio.
        os.replace(part, self.directory / (GREETING + WAV))
        _fsync_dir(self.directory)
        if recovering:
            log.warning("The greeting recording was interrupted (power cut or crash); its %.1f s "
                        "of audio became the new greeting.", info.seconds)
        else:
            log.info("New personal greeting recorded: %.1f s.", info.seconds)
        return True

    def _part_details(self, part: Path, written: datetime) -> _Details:
        """Caller and time from `<id>.part.json`; unknown caller and `written` if bad."""
        details_path = self._path(_stem(part, PART_WAV), PART_JSON)
        try:
            data = json.loads(details_path.read_text(encoding="utf-8"))
            return _parse_details(data)
        except FileNotFoundError:
            problem = "its details file is missing"
        except (OSError, ValueError) as exc:
            problem = f"its details file is unreadable ({exc})"
        log.warning("Voicemail message %s: %s; it is kept as from an unknown caller, at the "
                    "time of the audio file.", _stem(part, PART_WAV), problem)
        return _Details("", "", written)

    def _load(self, message_id: str) -> Message | None:
        """The message `<id>.wav` + `<id>.json`, rebuilding missing or corrupt details."""
        wav = self._path(message_id, WAV)
        details_path = self._path(message_id, JSON)
        try:
            data = json.loads(details_path.read_text(encoding="utf-8"))
            details = _parse_details(data)
            seconds, new = _parse_state(data)
            return Message(id=message_id, caller=details.caller,
                           caller_name=details.caller_name, received=details.received,
                           seconds=seconds, new=new, path=wav)
        except FileNotFoundError:
            log.warning("Voicemail message %s had no details file; it is listed as a new "
                        "message from an unknown caller at the time of the audio file.",
                        message_id)
        except (OSError, ValueError) as exc:
            self._set_aside(details_path, exc)
        return self._rebuild(message_id)

    def _set_aside(self, details_path: Path, problem: Exception) -> None:
        try:
            aside = move_aside(details_path, "corrupt")
        except OSError as exc:
            log.error("Voicemail details file %s is unreadable (%s) and could not be moved "
                      "aside (%s).", details_path.name, problem, exc.strerror or exc)
            return
        log.warning("Voicemail details file %s was unreadable (%s); it was moved to %s and the "
                    "message is listed as a new message from an unknown caller at the time of "
                    "the audio file.", details_path.name, problem, aside.name)

    def _rebuild(self, message_id: str) -> Message | None:
        """A message from its audio alone; its details are written again if possible."""
        wav = self._path(message_id, WAV)
        try:
            info = read_wav_info(wav)
            received = _mtime(wav)
        except (RecordingError, OSError) as exc:
            problem = _reason(exc, wav) if isinstance(exc, RecordingError) else exc
            log.warning("Voicemail message %s cannot be played and is skipped (left in "
                        "place): %s", message_id, problem)
            return None
        message = Message(id=message_id, caller="", caller_name="", received=received,
                          seconds=info.seconds, new=True, path=wav)
        try:
            self._write_details(message_id, message, new=True)
        except OSError as exc:
            log.error("Details of voicemail message %s could not be written again (%s).",
                      message_id, exc.strerror or exc)
        return message

    def _write_details(self, message_id: str, message: Message, *, new: bool) -> None:
        atomic_write_json(self._path(message_id, JSON), {
            "caller": message.caller, "caller_name": message.caller_name,
            "received": message.received.isoformat(), "seconds": message.seconds, "new": new})

    def _full_reason(self, found: list[Message]) -> str | None:
        if len(found) >= self.max_messages:
            return (f"The mailbox is full: it holds {len(found)} messages, the most it "
                    f"keeps is {self.max_messages}.")
        total = sum(m.seconds for m in found)
        if total >= self.max_seconds_total:
            return (f"The mailbox is full: its messages last {total / 60:.1f} minutes "
                    f"together, the most it keeps is {self.max_seconds_total / 60:.1f} minutes.")
        return None

    def _message_wavs(self) -> Iterator[Path]:
        for wav in self.directory.glob("*" + WAV):
            if wav.name.endswith(PART_WAV) or not wav.is_file():
                continue
            if _valid_id(_stem(wav, WAV)):
                yield wav

    def _remove_orphan_details(self) -> None:
        """Delete `<id>.json` files whose audio is gone (a cut during `delete()`)."""
        removed = False
        for details in self.directory.glob("*" + JSON):
            message_id = _stem(details, JSON)
            if (details.name.endswith(PART_JSON) or not _valid_id(message_id)
                    or self._path(message_id, WAV).exists()
                    or self._path(message_id, PART_WAV).exists()):
                continue  # a message, or one still being finished
            with contextlib.suppress(FileNotFoundError):
                details.unlink()
                removed = True
                log.info("Removed voicemail details file %s: its audio is gone.", details.name)
        if removed:
            _fsync_dir(self.directory)

    def _remove_orphan_parts(self) -> None:
        """Delete `<id>.part.json` files whose part audio is gone."""
        removed = False
        for details in self.directory.glob("*" + PART_JSON):
            message_id = _stem(details, PART_JSON)
            if not _valid_id(message_id) or self._path(message_id, PART_WAV).exists():
                continue
            with contextlib.suppress(FileNotFoundError):
                details.unlink()
                removed = True
                log.info("Removed %s: the message it describes was never recorded.",
                         details.name)
        if removed:
            _fsync_dir(self.directory)

    def _discard(self, part: Path) -> None:
        """Delete a part file, its details and any details written for it in advance."""
        message_id = _stem(part, PART_WAV)
        paths = [part, self._path(message_id, PART_JSON)]
        if not self._path(message_id, WAV).exists():
            paths.append(self._path(message_id, JSON))  # from a cut half-way through finishing
        removed = False
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed = True
        if removed:
            _fsync_dir(self.directory)

    def _unlink(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.directory)

    def _id_free(self, message_id: str) -> bool:
        if self._path(message_id, PART_WAV) in self._active:
            return False
        return not any(self._path(message_id, suffix).exists()
                       for suffix in (WAV, JSON, PART_WAV, PART_JSON))

    def _check_part(self, part: Path) -> Path:
        part = Path(part)
        if (part.parent != self.directory or not part.name.endswith(PART_WAV)
                or not _valid_id(_stem(part, PART_WAV))):
            raise ValueError(f"{part} is not a voicemail part file of this mailbox")
        return part

    def _path(self, message_id: str, suffix: str) -> Path:
        return self.directory / f"{message_id}{suffix}"


# -- module helpers ---------------------------------------------------------------------------

def _safe_caller(caller: str) -> str:
    """The caller's number reduced to [0-9A-Za-z+] for ids and file names; "unknown" if empty."""
    return _UNSAFE_CALLER.sub("", caller)[:REMOTE_MAX] or "unknown"


def _valid_id(message_id: str) -> bool:
    return bool(_SAFE_ID.match(message_id)) and message_id != GREETING


def _candidates(base: str) -> Iterator[str]:
    yield base
    n = 2
    while True:
        yield f"{base}-{n}"
        n += 1


def _stem(path: Path, suffix: str) -> str:
    return path.name.removesuffix(suffix)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def _parse_details(data: object) -> _Details:
    """Caller, name and time from a details dict; ValueError if anything is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    caller, name, received = data.get("caller"), data.get("caller_name"), data.get("received")
    if not isinstance(caller, str) or not isinstance(name, str):
        raise ValueError("caller or caller_name missing or not text")
    if not isinstance(received, str):
        raise ValueError("received missing or not text")
    when = datetime.fromisoformat(received)
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("received has no time zone")
    return _Details(caller, name, when)


def _parse_state(data: dict[str, object]) -> tuple[float, bool]:
    """(seconds, new) from a message's details; ValueError if wrong."""
    seconds, new = data.get("seconds"), data.get("new")
    if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
            or not math.isfinite(seconds) or seconds < 0):
        raise ValueError("seconds missing or not a length")
    if not isinstance(new, bool):
        raise ValueError("new missing or not true/false")
    return float(seconds), new


def _order(message: Message) -> tuple[datetime, str]:
    return (message.received, message.id)
