"""Call recordings (firmware/recordings.py): WAV header repair, finishing, start-up recovery,
the size bound and file names, on real files in tmp_path.

A "power-cut" file is what pjmedia's WAV writer leaves when the phone loses power mid-call: a
44-byte header whose RIFF and data sizes are still 0 (or some stale value), followed by
whatever PCM reached the disk, possibly ending in half a frame.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
import time
import wave
from datetime import datetime
from pathlib import Path

import pytest

from firmware import recordings
from firmware.recordings import (
    PART_SUFFIX,
    RecordingError,
    RecordingStore,
    read_wav_info,
    repair_wav_header,
    safe_remote,
)

RATE = 16000
T0 = datetime(2026, 11, 22, 14, 5, 3)


def pcm(frames: int, channels: int = 1, seed: int = 0) -> bytes:
    """Deterministic, non-silent 16-bit samples."""
    return struct.pack(f"<{frames * channels}h",
                       *(((i * 7919 + seed * 104729) % 65536) - 32768
                         for i in range(frames * channels)))


def fmt_chunk(rate: int = RATE, channels: int = 1, bits: int = 16, tag: int = 1) -> bytes:
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return b"fmt " + struct.pack("<I", len(body)) + body


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def wav_bytes(audio: bytes, *, rate: int = RATE, channels: int = 1, data_size: int | None = None,
              riff_size: int | None = None, before_data: bytes = b"",
              fmt: bytes | None = None) -> bytes:
    """A WAV file; `data_size`/`riff_size` override the header (None: the correct value)."""
    fmt = fmt if fmt is not None else fmt_chunk(rate, channels)
    head = fmt + before_data
    data_size = len(audio) if data_size is None else data_size
    riff_size = 4 + len(head) + 8 + len(audio) if riff_size is None else riff_size
    return (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + head
            + b"data" + struct.pack("<I", data_size) + audio)


def power_cut_part(directory: Path, name: str, frames: int, *, channels: int = 1,
                   rate: int = RATE, header_size: int = 0, half_frame: bool = True,
                   before_data: bytes = b"") -> tuple[Path, bytes]:
    """A part file as a recorder killed mid-call leaves it; returns (path, the whole frames)."""
    audio = pcm(frames, channels)
    tail = b"\x12" if half_frame else b""
    path = directory / f"{name}{PART_SUFFIX}"
    path.write_bytes(wav_bytes(audio + tail, rate=rate, channels=channels,
                               data_size=header_size, riff_size=header_size,
                               before_data=before_data))
    return path, audio


def read_back(path: Path) -> tuple[int, int, int, bytes]:
    """(rate, channels, frames, PCM) as Python's wave module sees the file."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        return w.getframerate(), w.getnchannels(), w.getnframes(), w.readframes(w.getnframes())


def closed_recording(path: Path, frames: int, rate: int = RATE, channels: int = 1) -> bytes:
    """A normally closed recording written by the wave module; returns its PCM."""
    audio = pcm(frames, channels, seed=3)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio)
    return audio


# -- recovery after a power cut -------------------------------------------------------------

@pytest.mark.parametrize("header_size", [0, 0xFFFFFFFF, 36 + 3200])
@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (8000, 2), (44100, 1)])
def test_recover_power_cut_file(tmp_path: Path, header_size: int, rate: int,
                                channels: int) -> None:
    frames = rate * 3 // 2 + 7  # 1.5 s and a bit, plus a trailing half frame
    part, audio = power_cut_part(tmp_path, "2026-11-22_14-05-03_1002_c3", frames,
                                 channels=channels, rate=rate, header_size=header_size)
    [rec] = RecordingStore(tmp_path).recover()
    assert not part.exists()
    assert rec.path == tmp_path / "2026-11-22_14-05-03_1002_c3.wav"
    assert read_back(rec.path) == (rate, channels, frames, audio)
    assert rec.frames == frames and rec.rate == rate and rec.channels == channels
    assert rec.seconds == pytest.approx(frames / rate)
    assert rec.bytes == rec.path.stat().st_size == 44 + len(audio)
    assert rec.started == T0


def test_recover_half_frame_is_cut_off_and_header_exact(tmp_path: Path) -> None:
    part, audio = power_cut_part(tmp_path, "x", 16000, channels=2)
    info = repair_wav_header(part)
    assert info.repaired and info.frames == 16000 and info.data_bytes == len(audio)
    raw = part.read_bytes()
    assert len(raw) == 44 + len(audio)
    assert struct.unpack("<I", raw[4:8])[0] == len(raw) - 8
    assert struct.unpack("<I", raw[40:44])[0] == len(audio)
    assert raw[44:] == audio
    assert not repair_wav_header(part).repaired  # idempotent: a second pass changes nothing
    assert part.read_bytes() == raw


def test_recover_with_list_and_fact_chunks_before_data(tmp_path: Path) -> None:
    extra = chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00Luren\x00") + chunk(b"fact", b"\0" * 4)
    _, audio = power_cut_part(tmp_path, "2026-01-02_03-04-05_7_c1", 12345,
                              before_data=extra)
    [rec] = RecordingStore(tmp_path).recover()
    assert read_back(rec.path) == (RATE, 1, 12345, audio)
    raw = rec.path.read_bytes()
    assert extra in raw  # the other chunks are kept
    assert raw.endswith(audio)


def test_wave_format_extensible_pcm_is_accepted(tmp_path: Path) -> None:
    body = struct.pack("<HHIIHHHHI", 0xFFFE, 2, RATE, RATE * 4, 4, 16, 22, 16, 3)
    body += bytes.fromhex("0100000000001000800000aa00389b71")
    audio = pcm(4000, 2)
    path = tmp_path / "ext.wav"
    path.write_bytes(wav_bytes(audio + b"\1", fmt=b"fmt " + struct.pack("<I", 40) + body,
                               data_size=0, riff_size=0))
    info = repair_wav_header(path)
    assert (info.rate, info.channels, info.frames) == (RATE, 2, 4000)
    raw = path.read_bytes()
    assert struct.unpack("<I", raw[info.data_offset - 4:info.data_offset])[0] == len(audio)
    assert raw[info.data_offset:] == audio


def test_bad_part_files_are_removed_and_reported_others_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good, audio = power_cut_part(tmp_path, "2026-11-22_10-00-00_100_c1", RATE)
    garbage = tmp_path / f"2026-11-22_10-01-00_101_c2{PART_SUFFIX}"
    garbage.write_bytes(bytes(range(256)) * 12)
    empty = tmp_path / f"2026-11-22_10-02-00_102_c3{PART_SUFFIX}"
    empty.write_bytes(b"")
    short, _ = power_cut_part(tmp_path, "2026-11-22_10-03-00_103_c4", RATE // 10)
    header_only, _ = power_cut_part(tmp_path, "2026-11-22_10-04-00_104_c5", 0, half_frame=False)
    alaw = tmp_path / f"2026-11-22_10-05-00_105_c6{PART_SUFFIX}"
    alaw.write_bytes(wav_bytes(b"\x55" * 16000, fmt=fmt_chunk(bits=8, tag=6), data_size=0))
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me")

    with caplog.at_level(logging.INFO, logger="luren.recordings"):
        recovered = RecordingStore(tmp_path, min_seconds=0.5).recover()

    assert [r.name for r in recovered] == ["2026-11-22_10-00-00_100_c1.wav"]
    assert read_back(recovered[0].path)[3] == audio
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2026-11-22_10-00-00_100_c1.wav", "notes.txt"]
    text = caplog.text
    assert f"{garbage.name} was damaged beyond repair and has been deleted: not a WAV" in text
    assert f"{empty.name} was damaged beyond repair and has been deleted: the file is empty" in text
    assert f"{short.name} held only 0.1 s of audio" in text
    assert f"{header_only.name} held only 0.0 s of audio" in text
    assert f"{alaw.name} was damaged beyond repair" in text and "(A-law)" in text
    assert f"{good.name} was interrupted (power cut or crash)" in text
    assert str(tmp_path) not in text  # the log names files, not the full paths


def test_recover_never_crashes_on_an_unreadable_part(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    odd = tmp_path / f"odd{PART_SUFFIX}"
    odd.mkdir()  # opening it fails with an OSError
    power_cut_part(tmp_path, "fine", RATE)
    with caplog.at_level(logging.ERROR, logger="luren.recordings"):
        recovered = RecordingStore(tmp_path).recover()
    assert [r.name for r in recovered] == ["fine.wav"]
    assert odd.exists()
    assert f"{odd.name} could not be checked" in caplog.text


def test_recover_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert RecordingStore(tmp_path / "nope", max_files=1).recover() == []


def test_recover_leaves_a_part_this_store_is_recording(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    part = store.new_part("c1", "100", T0)
    part.write_bytes(wav_bytes(pcm(RATE), data_size=0, riff_size=0))
    assert store.recover() == []
    assert part.exists()
    assert store.finish(part) is not None


# -- finish ------------------------------------------------------------------------------

def test_finish_keeps_a_closed_recording_bit_exact(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    part = store.new_part("c3", "1002", T0)
    closed_recording(part, 2 * RATE + 1)
    original = part.read_bytes()
    rec = store.finish(part)
    assert rec is not None
    assert rec.path == tmp_path / "2026-11-22_14-05-03_1002_c3.wav"
    assert rec.path.read_bytes() == original
    assert not part.exists()
    assert (rec.frames, rec.rate, rec.channels) == (2 * RATE + 1, RATE, 1)
    assert rec.seconds == pytest.approx(2 + 1 / RATE)
    assert rec.bytes == len(original)


def test_finish_keeps_chunks_after_the_data_bit_exact(tmp_path: Path) -> None:
    audio = pcm(RATE)
    trailer = chunk(b"LIST", b"INFOICMT\x03\x00\x00\x00hi\x00\x00")
    raw = wav_bytes(audio) + trailer
    raw = raw[:4] + struct.pack("<I", len(raw) - 8) + raw[8:]
    part = tmp_path / f"t{PART_SUFFIX}"
    part.write_bytes(raw)
    info = read_wav_info(part)
    assert not info.repaired and info.frames == RATE
    rec = RecordingStore(tmp_path).finish(part)
    assert rec is not None and rec.path.read_bytes() == raw


def test_finish_repairs_an_unclosed_recording(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    part = store.new_part("c1", "200", T0)
    audio = pcm(RATE)
    part.write_bytes(wav_bytes(audio + b"\0", data_size=0, riff_size=0))
    rec = store.finish(part)
    assert rec is not None and read_back(rec.path) == (RATE, 1, RATE, audio)


def test_finish_can_wait_for_the_recorder_to_close_the_file(tmp_path: Path) -> None:
    """pjsua2 closes a destroyed recorder on its next clock tick, not at once."""
    store = RecordingStore(tmp_path)
    part = store.new_part("c1", "200", T0)
    audio = pcm(RATE)
    part.write_bytes(wav_bytes(audio[:8192], data_size=0, riff_size=0))  # still open

    def recorder_closes() -> None:
        time.sleep(0.05)
        part.write_bytes(wav_bytes(audio))  # last buffer and the header

    closer = threading.Thread(target=recorder_closes)
    closer.start()
    rec = store.finish(part, wait_closed=2.0)
    closer.join()
    assert rec is not None and read_back(rec.path) == (RATE, 1, RATE, audio)


def test_finish_waits_only_so_long_for_a_file_left_open(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    part = tmp_path / f"open{PART_SUFFIX}"
    audio = pcm(RATE)
    part.write_bytes(wav_bytes(audio, data_size=0, riff_size=0))
    start = time.monotonic()
    rec = RecordingStore(tmp_path).finish(part, wait_closed=0.05)
    assert 0.05 <= time.monotonic() - start < 1.0
    assert rec is not None and read_back(rec.path) == (RATE, 1, RATE, audio)
    assert "was still open after 0.05 s" in caplog.text


def test_finish_of_a_too_short_recording_deletes_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = RecordingStore(tmp_path, min_seconds=0.5)
    part = store.new_part("c1", "200", T0)
    closed_recording(part, RATE // 4)
    with caplog.at_level(logging.INFO, logger="luren.recordings"):
        assert store.finish(part) is None
    assert list(tmp_path.iterdir()) == []
    assert "held only 0.2 s of audio (the minimum kept is 0.5 s)" in caplog.text


def test_finish_does_not_overwrite_an_existing_recording(tmp_path: Path) -> None:
    (tmp_path / "same.wav").write_bytes(b"someone else's file")
    part = tmp_path / f"same{PART_SUFFIX}"
    closed_recording(part, RATE)
    rec = RecordingStore(tmp_path).finish(part)
    assert rec is not None and rec.name == "same-2.wav"
    assert (tmp_path / "same.wav").read_bytes() == b"someone else's file"


# -- a crash in the middle of finish() -------------------------------------------------------

def test_crash_before_rename_leaves_a_recoverable_part(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RecordingStore(tmp_path)
    part = store.new_part("c7", "300", T0)
    audio = pcm(RATE * 2)
    part.write_bytes(wav_bytes(audio + b"\7", data_size=0, riff_size=0))

    def power_cut(*_args: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(recordings.os, "replace", power_cut)
    with pytest.raises(OSError):
        store.finish(part)
    assert list(tmp_path.glob("*.wav")) == [part]  # no .wav appeared, the part is intact
    monkeypatch.undo()

    [rec] = RecordingStore(tmp_path).recover()  # the next start-up
    assert read_back(rec.path) == (RATE, 1, RATE * 2, audio)
    assert not part.exists()


def test_crash_during_fsync_leaves_a_recoverable_part(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RecordingStore(tmp_path)
    part = store.new_part("c8", "300", T0)
    audio = pcm(RATE)
    part.write_bytes(wav_bytes(audio, data_size=0, riff_size=0))
    monkeypatch.setattr(recordings.os, "fsync", lambda _fd: (_ for _ in ()).throw(OSError(5, "")))
    with pytest.raises(OSError):
        store.finish(part)
    monkeypatch.undo()
    assert part.exists()
    [rec] = RecordingStore(tmp_path).recover()
    assert read_back(rec.path) == (RATE, 1, RATE, audio)


def test_crash_half_way_through_the_header_rewrite_is_recovered(tmp_path: Path) -> None:
    """The RIFF size got written, the data size did not: the next recover() finishes the job."""
    audio = pcm(RATE)
    part = tmp_path / f"half{PART_SUFFIX}"
    part.write_bytes(wav_bytes(audio, data_size=0))  # correct RIFF size, data size still 0
    [rec] = RecordingStore(tmp_path).recover()
    assert read_back(rec.path) == (RATE, 1, RATE, audio)


# -- header errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"ID3\x04" + b"\0" * 100, "not a WAV file"),
    (b"RIFF\0\0\0\0WAVE", "no format chunk ('fmt ')"),
    (b"RIFF\0\0\0\0WAVE" + chunk(b"data", pcm(10)), "audio data comes before the format chunk"),
    (b"RIFF\0\0\0\0WAVE" + fmt_chunk(), "no audio data chunk ('data')"),
    (b"RIFF\0\0\0\0WAVE" + fmt_chunk(tag=3, bits=32), "audio format 3 (32-bit float)"),
    (b"RIFF\0\0\0\0WAVE" + fmt_chunk(bits=8) + b"data\0\0\0\0", "8-bit samples"),
    (b"RIFF\0\0\0\0WAVE" + b"LIST\xff\xff\xff\x00" + b"\0" * 20, "runs past the end"),
])
def test_repair_rejects_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as err:
        repair_wav_header(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)
    assert path.read_bytes() == content  # nothing was written to a file that was rejected


# -- list, delete, the size bound ---------------------------------------------------------------

def make_finished(store: RecordingStore, when: datetime, frames: int = RATE,
                  remote: str = "100") -> Path:
    part = store.new_part("c1", remote, when)
    closed_recording(part, frames)
    rec = store.finish(part)
    assert rec is not None
    return rec.path


def test_list_is_newest_first_and_skips_parts_and_junk(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    a = make_finished(store, datetime(2026, 1, 1, 9, 0, 0))
    c = make_finished(store, datetime(2026, 3, 1, 9, 0, 0))
    b = make_finished(store, datetime(2026, 2, 1, 9, 0, 0))
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    store.new_part("c9", "1", T0).write_bytes(wav_bytes(pcm(RATE), data_size=0))
    assert [r.path for r in store.list()] == [c, b, a]


def test_delete_only_accepts_names_of_finished_recordings(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "rec")
    path = make_finished(store, T0)
    (tmp_path / "secret.wav").write_bytes(b"x")
    for bad in ["../secret.wav", "/etc/passwd", "x.part.wav", ".hidden.wav", "a\0.wav",
                "config.toml", ""]:
        with pytest.raises(RecordingError):
            store.delete(bad)
    assert store.delete("missing.wav") is False
    assert store.delete(path.name) is True
    assert not path.exists() and (tmp_path / "secret.wav").exists()


def test_max_files_removes_the_oldest(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path, max_files=2)
    old = make_finished(store, datetime(2026, 1, 1, 9, 0, 0))
    mid = make_finished(store, datetime(2026, 1, 2, 9, 0, 0))
    assert old.exists()
    new = make_finished(store, datetime(2026, 1, 3, 9, 0, 0))
    assert not old.exists() and mid.exists() and new.exists()


def test_max_bytes_removes_the_oldest_but_never_a_part_or_the_newest(tmp_path: Path) -> None:
    size = 44 + 2 * RATE  # one second of 16 kHz mono
    store = RecordingStore(tmp_path, max_bytes=3 * size)
    first = make_finished(store, datetime(2026, 1, 1, 9, 0, 0))
    second = make_finished(store, datetime(2026, 1, 1, 10, 0, 0))
    recording = store.new_part("c5", "500", datetime(2026, 1, 1, 12, 0, 0))
    recording.write_bytes(wav_bytes(pcm(RATE), data_size=0, riff_size=0))  # still recording
    third = make_finished(store, datetime(2026, 1, 1, 11, 0, 0))
    # 3 finished + 1 part = 4 s of audio > 3 s allowed: the oldest finished one goes.
    assert not first.exists()
    assert second.exists() and third.exists() and recording.exists()

    huge = make_finished(store, datetime(2026, 1, 1, 13, 0, 0), frames=5 * RATE)
    assert huge.exists() and recording.exists()  # the newest stays even alone over the bound
    assert not second.exists() and not third.exists()
    assert store.prune() == []


def test_recover_applies_the_bound(tmp_path: Path) -> None:
    for hour in range(4):
        power_cut_part(tmp_path, f"2026-01-01_{hour:02d}-00-00_1_c1", RATE)
    recovered = RecordingStore(tmp_path, max_files=2).recover()
    assert len(recovered) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2026-01-01_02-00-00_1_c1.wav", "2026-01-01_03-00-00_1_c1.wav"]


def test_bounds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RecordingStore(tmp_path, max_bytes=0)
    with pytest.raises(ValueError):
        RecordingStore(tmp_path, max_files=-1)


# -- names -----------------------------------------------------------------------------------

SAFE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_[0-9A-Za-z+*#-]{1,24}_"
                       r"[0-9A-Za-z]{1,12}(-\d+)?\.part\.wav$")


def test_name_scheme(tmp_path: Path) -> None:
    part = RecordingStore(tmp_path).new_part("c3", "1002", T0)
    assert part == tmp_path / "2026-11-22_14-05-03_1002_c3.part.wav"


@pytest.mark.parametrize(("remote", "expected"), [
    ("../../etc", "etc"),
    ("../../etc/passwd", "etc-passwd"),
    ("+49 (30) 1234-567", "+49-30-1234-567"),
    ("*97#", "*97#"),
    ("sip:1002@pbx.example.com", "sip-1002-pbx-example-com"),
    ("日本語", "unknown"),
    ("١٠٠٢", "unknown"),  # Arabic-Indic digits are digits, but not ASCII ones
    ("Zoë\u202e1002", "Zo-1002"),
    ("", "unknown"),
    ("/", "unknown"),
    ("9" * 300, "9" * 24),
])
def test_remote_is_sanitised(remote: str, expected: str) -> None:
    assert safe_remote(remote) == expected


@pytest.mark.parametrize("remote", ["../../etc", "9" * 5000, "日本語\0\n", "a/b\\c:d", "-",
                                    "..", "\u202e\u200b"])
@pytest.mark.parametrize("call_id", ["c3", "../c", "", "x" * 100, "\0"])
def test_hostile_names_stay_in_the_directory(tmp_path: Path, remote: str, call_id: str) -> None:
    part = RecordingStore(tmp_path).new_part(call_id, remote, T0)
    assert part.parent == tmp_path
    assert SAFE_NAME.match(part.name), part.name
    assert len(part.name) <= 80
    closed_recording(part, RATE)  # the name is usable on this filesystem


def test_names_are_unique_within_one_second(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    first = store.new_part("c1", "100", T0)
    second = store.new_part("c1", "100", T0)  # handed out, not yet on disk
    assert second.name == "2026-11-22_14-05-03_100_c1-2.part.wav"
    closed_recording(first, RATE)
    rec = store.finish(first)
    assert rec is not None
    third = store.new_part("c1", "100", T0)  # the finished .wav holds the first name
    assert third.name == "2026-11-22_14-05-03_100_c1-3.part.wav"


def test_default_start_time_comes_from_now(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path, now=lambda: datetime(2030, 5, 6, 7, 8, 9))
    assert store.new_part("c2", "42").name == "2030-05-06_07-08-09_42_c2.part.wav"
