"""The on-device voicemail box (firmware/voicemail.py), on real files in tmp_path.

A "crash-state" part file is what pjsua's WAV writer leaves when the phone loses power while a
caller is speaking: a WAV whose RIFF size (bytes 4:8) and data chunk size (bytes 40:44) are
still 0, followed by the PCM that reached the disk.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import struct
import wave
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from firmware.voicemail import Mailbox, MailboxFull, Message
from tests.harness.audio_check import dominant_frequency

RATE = 16000
T0 = datetime(2026, 11, 18, 12, 6, 3, tzinfo=UTC)
BERLIN = timezone(timedelta(hours=1))
SAFE_PART = re.compile(r"^\d{8}-\d{6}-[0-9A-Za-z+]{1,24}(-\d+)?\.part\.wav$")
# One period of a 1 kHz sine at 16 kHz is exactly 16 samples.
_PERIOD = struct.pack("<16h", *(round(12000 * math.sin(2 * math.pi * i / 16)) for i in range(16)))


def write_wav(path: Path, seconds: float, *, sample_width: int = 2) -> None:
    """`seconds` of a 1 kHz sine, 16 kHz mono, written by the wave module (a closed file)."""
    frames = round(seconds * RATE)
    audio = (_PERIOD * (frames // 16 + 1))[: frames * 2]
    if sample_width == 1:
        audio = bytes(frames)  # 8-bit PCM, which the phone does not accept
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(sample_width)
        w.setframerate(RATE)
        w.writeframes(audio)


def crash_state(path: Path, seconds: float) -> None:
    """A WAV as the recorder leaves it at a power cut: RIFF and data sizes still 0."""
    write_wav(path, seconds)
    with open(path, "r+b") as fh:
        fh.seek(4)
        fh.write(b"\0\0\0\0")
        fh.seek(40)
        fh.write(b"\0\0\0\0")


def frames_of(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return w.getnframes()


def record(box: Mailbox, caller: str, received: datetime, seconds: float = 3.0,
           name: str = "") -> Message:
    part = box.start_message(caller, name, received)
    write_wav(part, seconds)
    message = box.finish_message(part)
    assert message is not None
    return message


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# -- recording a message ----------------------------------------------------------------------

def test_start_and_finish_keep_caller_name_time_and_length(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    received = datetime(2026, 11, 18, 13, 6, 3, tzinfo=BERLIN)
    part = box.start_message("+49301234", "Anna Schmidt", received)
    assert part == tmp_path / "20261118-130603-+49301234.part.wav"
    assert not part.exists()  # the recorder creates it
    details = json.loads((tmp_path / "20261118-130603-+49301234.part.json").read_text())
    assert details == {"caller": "+49301234", "caller_name": "Anna Schmidt",
                       "received": "2026-11-18T13:06:03+01:00"}
    write_wav(part, 3.0)

    message = box.finish_message(part)

    assert message == Message(id="20261118-130603-+49301234", caller="+49301234",
                              caller_name="Anna Schmidt", received=received, seconds=3.0,
                              new=True, path=tmp_path / "20261118-130603-+49301234.wav")
    assert message.received.utcoffset() == timedelta(hours=1)
    assert files(tmp_path) == {"20261118-130603-+49301234.wav", "20261118-130603-+49301234.json"}
    saved = json.loads((tmp_path / "20261118-130603-+49301234.json").read_text())
    assert saved == {"caller": "+49301234", "caller_name": "Anna Schmidt",
                     "received": "2026-11-18T13:06:03+01:00", "seconds": 3.0, "new": True}
    assert box.messages() == [message]
    assert Mailbox(tmp_path).messages() == [message]  # all of it is on disk
    assert frames_of(message.path) == 3 * RATE


def test_finish_repairs_a_header_the_recorder_never_wrote(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    part = box.start_message("1002", "", T0)
    crash_state(part, 2.5)
    message = box.finish_message(part, wait_closed=0.02)
    assert message is not None
    assert message.seconds == pytest.approx(2.5)
    assert frames_of(message.path) == 2.5 * RATE


def test_too_short_message_is_not_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Mailbox(tmp_path)
    part = box.start_message("1002", "Bob", T0)
    write_wav(part, 0.8)
    with caplog.at_level(logging.INFO, logger="luren.voicemail"):
        assert box.finish_message(part) is None
    assert files(tmp_path) == set()
    assert "was 0.8 s, shorter than the 2.0 s minimum; not kept" in caplog.text
    assert box.messages() == []


def test_unusable_or_missing_recording_is_not_kept(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    eight_bit = box.start_message("1002", "", T0)
    write_wav(eight_bit, 3.0, sample_width=1)
    assert box.finish_message(eight_bit) is None
    never_written = box.start_message("1003", "", T0)  # caller hung up before the recorder ran
    assert box.finish_message(never_written) is None
    assert files(tmp_path) == set()


def test_cancel_removes_the_part_files(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    kept = record(box, "1001", T0)
    part = box.start_message("1002", "", T0)
    write_wav(part, 3.0)
    box.cancel_message(part)
    box.cancel_message(part)  # missing files are fine
    assert files(tmp_path) == {kept.path.name, f"{kept.id}.json"}
    with pytest.raises(ValueError):
        box.cancel_message(tmp_path.parent / "other.part.wav")


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Mailbox(tmp_path).start_message("1002", "", datetime(2026, 11, 18, 12, 0))
    assert not tmp_path.exists() or files(tmp_path) == set()


# -- the full rule ----------------------------------------------------------------------------

def test_full_by_count(tmp_path: Path) -> None:
    box = Mailbox(tmp_path, max_messages=2)
    first = record(box, "1001", T0)
    assert not box.full()
    second = record(box, "1002", T0 + timedelta(minutes=1))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert box.full()
    with pytest.raises(MailboxFull, match="holds 2 messages, the most it keeps is 2"):
        box.start_message("1003", "", T0 + timedelta(minutes=2))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert box.messages() == [first, second]


def test_full_by_total_length(tmp_path: Path) -> None:
    box = Mailbox(tmp_path, max_seconds_total=5.0)
    first = record(box, "1001", T0, seconds=3.0)
    assert not box.full()
    second = record(box, "1002", T0 + timedelta(minutes=1), seconds=2.0)  # 5.0 s: full
    assert box.full()
    with pytest.raises(MailboxFull, match=r"last 0\.1 minutes together, the most it keeps"):
        box.start_message("1003", "", T0 + timedelta(minutes=2))
    assert box.messages() == [first, second]
    assert box.delete(first.id)
    assert not box.full()  # room again once a message is deleted


def test_limits_must_be_sensible(tmp_path: Path) -> None:
    for kwargs in ({"max_messages": 0}, {"max_seconds_total": 0.0}, {"min_seconds": -1.0}):
        with pytest.raises(ValueError):
            Mailbox(tmp_path, **kwargs)


# -- listening ----------------------------------------------------------------------------------

def test_play_order_new_oldest_first_then_saved_newest_first(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    # recorded out of time order, so the order cannot come from the order of creation
    m3 = record(box, "1003", T0 + timedelta(hours=3))
    m0 = record(box, "1000", T0)
    m2 = record(box, "1002", T0 + timedelta(hours=2))
    m1 = record(box, "1001", T0 + timedelta(hours=1))
    assert [m.id for m in box.messages()] == [m0.id, m1.id, m2.id, m3.id]
    assert box.mark_saved(m0.id) and box.mark_saved(m2.id)
    order = [(m.caller, m.new) for m in box.messages()]
    assert order == [("1001", True), ("1003", True), ("1002", False), ("1000", False)]
    assert box.counts() == (2, 2)


def test_mark_saved_persists(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    message = record(box, "1002", T0, name="Bob")
    assert box.mark_saved(message.id)
    assert box.mark_saved(message.id)  # saving twice is fine
    [again] = Mailbox(tmp_path).messages()
    assert again == Message(id=message.id, caller="1002", caller_name="Bob", received=T0,
                            seconds=3.0, new=False, path=message.path)
    assert json.loads((tmp_path / f"{message.id}.json").read_text())["new"] is False
    assert Mailbox(tmp_path).counts() == (0, 1)
    assert not box.mark_saved("20261118-120603-9999")
    assert not box.mark_saved("../" + message.id)


def test_delete(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    gone = record(box, "1001", T0)
    kept = record(box, "1002", T0)
    assert box.delete(gone.id)
    assert files(tmp_path) == {kept.path.name, f"{kept.id}.json"}
    assert not box.delete(gone.id)
    assert not box.delete("../../etc/passwd")
    assert not box.delete("greeting")
    assert box.messages() == [kept]


def test_corrupt_details_are_moved_aside_and_the_audio_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Mailbox(tmp_path)
    message = record(box, "1002", T0)
    details = tmp_path / f"{message.id}.json"
    details.write_text('{"caller": "1002", "recei')
    os.utime(message.path, (1_800_000_000, 1_800_000_000))
    with caplog.at_level(logging.WARNING, logger="luren.voicemail"):
        [listed] = box.messages()
    assert (tmp_path / f"{message.id}.json.corrupt").read_text() == '{"caller": "1002", "recei'
    assert "moved to" in caplog.text
    assert listed == Message(id=message.id, caller="", caller_name="",
                             received=datetime.fromtimestamp(1_800_000_000, tz=UTC),
                             seconds=3.0, new=True, path=message.path)
    assert json.loads(details.read_text())["seconds"] == 3.0  # details written again
    assert Mailbox(tmp_path).messages() == [listed]


@pytest.mark.parametrize("content", ["[]", '{"caller": 5}', "null",
                                     '{"caller": "1", "caller_name": "", "received": '
                                     '"2026-11-18T12:06:03", "seconds": 3.0, "new": true}',
                                     '{"caller": "1", "caller_name": "", "received": '
                                     '"2026-11-18T12:06:03+00:00", "seconds": -1, "new": true}'])
def test_invalid_details_are_treated_as_corrupt(tmp_path: Path, content: str) -> None:
    box = Mailbox(tmp_path)
    message = record(box, "1002", T0)
    (tmp_path / f"{message.id}.json").write_text(content)
    [listed] = box.messages()
    assert listed.caller == "" and listed.new and listed.seconds == 3.0
    assert (tmp_path / f"{message.id}.json.corrupt").read_text() == content


def test_audio_without_details_is_listed_and_details_rebuilt(tmp_path: Path) -> None:
    write_wav(tmp_path / "20261118-120603-1002.wav", 2.5)
    box = Mailbox(tmp_path)
    [listed] = box.messages()
    assert (listed.id, listed.caller, listed.new, listed.seconds) == (
        "20261118-120603-1002", "", True, 2.5)
    assert (tmp_path / "20261118-120603-1002.json").is_file()
    assert box.mark_saved(listed.id)
    assert box.counts() == (0, 1)


def test_details_without_audio_are_removed(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    kept = record(box, "1001", T0)
    orphan = tmp_path / "20261118-120603-1002.json"
    orphan.write_text(json.dumps({"caller": "1002", "caller_name": "", "new": True,
                                  "received": T0.isoformat(), "seconds": 3.0}))
    assert box.messages() == [kept]
    assert not orphan.exists()


# -- recovery at start-up ---------------------------------------------------------------------

def test_recover_a_crash_state_part(tmp_path: Path) -> None:
    before_cut = Mailbox(tmp_path)
    part = before_cut.start_message("1002", "Bob", T0)
    crash_state(part, 3.0)  # the power goes here

    box = Mailbox(tmp_path)
    [message] = box.recover()

    assert message == Message(id="20261118-120603-1002", caller="1002", caller_name="Bob",
                              received=T0, seconds=3.0, new=True,
                              path=tmp_path / "20261118-120603-1002.wav")
    assert files(tmp_path) == {"20261118-120603-1002.wav", "20261118-120603-1002.json"}
    assert frames_of(message.path) == 3 * RATE
    assert dominant_frequency(message.path) == pytest.approx(1000, abs=5)
    assert box.messages() == [message]
    assert box.recover() == []  # nothing left to do


def test_recover_a_part_without_details(tmp_path: Path) -> None:
    part = tmp_path / "20261118-120603-1002.part.wav"
    crash_state(part, 2.5)
    os.utime(part, (1_800_000_000, 1_800_000_000))
    [message] = Mailbox(tmp_path).recover()
    assert (message.caller, message.caller_name, message.new) == ("", "", True)
    assert message.received == datetime.fromtimestamp(1_800_000_000, tz=UTC)
    assert message.seconds == 2.5
    assert files(tmp_path) == {"20261118-120603-1002.wav", "20261118-120603-1002.json"}


def test_recover_removes_a_too_short_part(tmp_path: Path) -> None:
    part = Mailbox(tmp_path).start_message("1002", "", T0)
    crash_state(part, 1.0)
    assert Mailbox(tmp_path).recover() == []
    assert files(tmp_path) == set()


def test_recover_after_a_cut_half_way_through_finishing(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    part = box.start_message("1002", "Bob", T0)
    write_wav(part, 3.0)
    message = box.finish_message(part)
    assert message is not None
    # Undo the rename: the details are written, the audio is still the part file.
    os.replace(message.path, part)
    (tmp_path / f"{message.id}.part.json").write_text(
        json.dumps({"caller": "1002", "caller_name": "Bob", "received": T0.isoformat()}))
    after = Mailbox(tmp_path)
    assert after.messages() == []  # not listed yet, but its details are not thrown away
    assert (tmp_path / f"{message.id}.json").exists()
    assert after.recover() == [message]
    assert files(tmp_path) == {message.path.name, f"{message.id}.json"}


def test_recover_never_raises_for_bad_files(tmp_path: Path) -> None:
    (tmp_path / "20261118-120603-1001.part.wav").write_bytes(b"not a wav at all")
    (tmp_path / "20261118-120603-1001.part.json").write_text("{}")
    (tmp_path / "20261118-120603-1002.part.wav").mkdir()  # opening it fails with an OSError
    orphan = tmp_path / "20261118-120603-1003.part.json"
    orphan.write_text(json.dumps({"caller": "1003", "caller_name": "",
                                  "received": T0.isoformat()}))
    good = Mailbox(tmp_path).start_message("1004", "", T0)
    crash_state(good, 2.0)

    recovered = Mailbox(tmp_path).recover()

    assert [m.caller for m in recovered] == ["1004"]
    assert files(tmp_path) == {"20261118-120603-1002.part.wav", "20261118-120603-1004.wav",
                               "20261118-120603-1004.json"}


def test_recover_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "none")
    assert box.recover() == []
    assert box.messages() == [] and box.counts() == (0, 0)
    assert not box.full()


# -- the greeting -------------------------------------------------------------------------------

def test_greeting_record_finish_and_delete(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    assert box.greeting() is None
    part = box.start_greeting()
    assert part == tmp_path / "greeting.part.wav"
    write_wav(part, 1.5)
    assert box.finish_greeting(part)
    assert box.greeting() == tmp_path / "greeting.wav"
    assert files(tmp_path) == {"greeting.wav"}
    assert box.messages() == []  # the greeting is not a message
    assert box.delete_greeting()
    assert box.greeting() is None
    assert not box.delete_greeting()


def test_too_short_greeting_keeps_the_old_one(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    write_wav(tmp_path / "greeting.wav", 2.0)
    old = (tmp_path / "greeting.wav").read_bytes()
    part = box.start_greeting()
    write_wav(part, 0.5)
    assert not box.finish_greeting(part)
    assert files(tmp_path) == {"greeting.wav"}
    assert (tmp_path / "greeting.wav").read_bytes() == old
    part = box.start_greeting()
    write_wav(part, 1.5)
    assert not box.finish_greeting(part, min_seconds=2.0)
    assert files(tmp_path) == {"greeting.wav"}


def test_invalid_greeting_is_not_offered(tmp_path: Path) -> None:
    (tmp_path / "greeting.wav").write_bytes(b"RIFF junk")
    assert Mailbox(tmp_path).greeting() is None


def test_recover_an_interrupted_greeting(tmp_path: Path) -> None:
    crash_state(tmp_path / "greeting.part.wav", 1.5)
    box = Mailbox(tmp_path)
    assert box.recover() == []
    assert box.greeting() == tmp_path / "greeting.wav"
    assert frames_of(tmp_path / "greeting.wav") == 1.5 * RATE
    crash_state(tmp_path / "greeting.part.wav", 0.5)
    Mailbox(tmp_path).recover()
    assert files(tmp_path) == {"greeting.wav"}


# -- ids and file names -----------------------------------------------------------------------

def test_ids_are_unique_within_one_second(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    first = box.start_message("1002", "", T0)
    second = box.start_message("1002", "", T0)
    assert first.name == "20261118-120603-1002.part.wav"
    assert second.name == "20261118-120603-1002-2.part.wav"
    write_wav(first, 2.0)
    write_wav(second, 3.0)
    one, two = box.finish_message(first), box.finish_message(second)
    assert one is not None and two is not None
    third = box.start_message("1002", "", T0)  # the finished messages hold the first two ids
    assert third.name == "20261118-120603-1002-3.part.wav"
    assert {m.id for m in box.messages()} == {one.id, two.id}
    assert sorted(m.seconds for m in box.messages()) == [2.0, 3.0]


@pytest.mark.parametrize("caller", ["../../etc", "<sip:x>", "a/b\\c:d\0", "", "日本語",
                                    ".." + "9" * 500, "sip:1002@pbx;user=phone"])
def test_hostile_callers_give_safe_names(tmp_path: Path, caller: str) -> None:
    box = Mailbox(tmp_path)
    part = box.start_message(caller, "<b>x</b>", T0)
    assert part.parent == tmp_path
    assert SAFE_PART.match(part.name), part.name
    write_wav(part, 2.0)
    message = box.finish_message(part)
    assert message is not None
    assert message.caller == caller  # the number as received is kept, only the name is safe
    assert message.path.parent == tmp_path
    assert {p.parent for p in tmp_path.rglob("*")} == {tmp_path}
    assert box.messages() == [message]
