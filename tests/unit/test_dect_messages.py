"""The DECT message set: round trips, every field checked, and fuzzing that finds no crash."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from board.dect import messages as M
from board.mcu import frame as F

IPUI = "0a1b2c3d4e"

# ftype -> how to pack the fields unpack gives back
REPACK: dict[int, Callable[[Any], bytes]] = {
    M.HANDSET_LIST: M.pack_handset_list,
    M.REGISTERED: lambda f: M.pack_registered(*f),
    M.DEREGISTERED: lambda f: M.pack_deregistered(*f),
    M.REG_FAILED: M.pack_reg_failed,
    M.OFFHOOK: M.pack_number, M.ONHOOK: M.pack_number, M.DEREGISTER: M.pack_number,
    M.DIGITS: lambda f: M.pack_digits(*f),
    M.KEY: lambda f: M.pack_key(*f),
    M.WINDOW_STATE: lambda f: M.pack_window_state(*f),
    M.RESET_REASON: lambda f: M.pack_reset_reason(*f),
    M.OPEN_WINDOW: lambda f: M.pack_open_window(*f),
    M.CLOSE_WINDOW: lambda f: M.pack_close_window(),
    M.DISPLAY: lambda f: M.pack_display(*f),
    M.RING: lambda f: M.pack_ring(*f),
    M.AUDIO: lambda f: M.pack_audio(*f),
    M.TONE: lambda f: M.pack_tone(*f),
    M.NAME: lambda f: M.pack_name(*f),
}

# (type, payload, what unpack gives)
SAMPLES: list[tuple[int, bytes, Any]] = [
    (M.HANDSET_LIST, M.pack_handset_list([]), []),
    (M.HANDSET_LIST, M.pack_handset_list([(3, "ffffffffff", "Kök"), (1, IPUI, "")]),
     [(1, IPUI, ""), (3, "ffffffffff", "Kök")]),
    (M.HANDSET_LIST, M.pack_handset_list([(n, f"{n:010x}", "Ж" * 12) for n in range(1, 7)]),
     [(n, f"{n:010x}", "Ж" * 12) for n in range(1, 7)]),
    (M.REGISTERED, M.pack_registered(6, IPUI.upper(), "Handset 6"), (6, IPUI, "Handset 6")),
    (M.DEREGISTERED, M.pack_deregistered(2, "handset"), (2, "handset")),
    (M.DEREGISTERED, M.pack_deregistered(5, "module"), (5, "module")),
    (M.REG_FAILED, M.pack_reg_failed("wrong_pin"), "wrong_pin"),
    (M.REG_FAILED, M.pack_reg_failed("full"), "full"),
    (M.OFFHOOK, M.pack_number(1), 1),
    (M.ONHOOK, M.pack_number(6), 6),
    (M.DIGITS, M.pack_digits(2, "0701234567*#"), (2, "0701234567*#")),
    (M.DIGITS, M.pack_digits(2, "9" * M.MAX_DIGITS), (2, "9" * M.MAX_DIGITS)),
    (M.KEY, M.pack_key(3, "R"), (3, "R")),
    (M.KEY, M.pack_key(3, "vol-"), (3, "vol-")),
    (M.WINDOW_STATE, M.pack_window_state(True, 120), (True, 120)),
    (M.WINDOW_STATE, M.pack_window_state(False, 0), (False, 0)),
    (M.RESET_REASON, M.pack_reset_reason("watchdog", "stuck in RF"), ("watchdog", "stuck in RF")),
    (M.RESET_REASON, M.pack_reset_reason("power-on"), ("power-on", "")),
    (M.OPEN_WINDOW, M.pack_open_window("2580", 90), ("2580", 90)),
    (M.CLOSE_WINDOW, M.pack_close_window(), None),
    (M.DEREGISTER, M.pack_number(4), 4),
    (M.DISPLAY, M.pack_display(1, []), (1, [])),
    (M.DISPLAY, M.pack_display(1, ["Anna Svensson", "", "12:00 ☎"]),
     (1, ["Anna Svensson", "", "12:00 ☎"])),
    (M.DISPLAY, M.pack_display(2, ["é" * 24, "ü" * 24, "日本語の表示"]),
     (2, ["é" * 24, "ü" * 24, "日本語の表示"])),
    (M.RING, M.pack_ring(1, True, 2, "Bob <1002>"), (1, True, 2, "Bob <1002>")),
    (M.RING, M.pack_ring(1, False), (1, False, 0, "")),
    (M.AUDIO, M.pack_audio(5, 3), (5, 3)),
    (M.AUDIO, M.pack_audio(5, None), (5, None)),
    (M.TONE, M.pack_tone(5, 2), (5, 2)),
    (M.TONE, M.pack_tone(5, None), (5, None)),
    (M.NAME, M.pack_name(3, "Reception"), (3, "Reception")),
]


def test_type_numbers_are_in_the_dect_range_and_distinct() -> None:
    assert len(set(M.NAMES)) == len(M.NAMES) == len(M.UNPACKERS) == len(REPACK)
    assert all(0x40 <= t <= 0x4F for t in (M.HANDSET_LIST, M.RESET_REASON, M.WINDOW_STATE))
    assert all(0x40 <= t <= 0x6F for t in M.NAMES)
    front_panel = {F.HELLO, F.HELLO_ACK, F.ACK, F.HEARTBEAT, F.KEY, F.HOOK, F.LED, F.LED_ALL,
                   F.ERROR}
    assert not front_panel & set(M.NAMES)


def test_roles_and_capability_differ_from_the_front_panels() -> None:
    roles = {F.ROLE_HOST, F.ROLE_CONTROLLER, M.ROLE_DECT_BASE, M.ROLE_DECT_MODULE}
    assert len(roles) == 4
    assert not M.CAP_DECT & (F.CAP_KEYS | F.CAP_HOOK | F.CAP_LEDS | F.CAP_LONG_PRESS)


@pytest.mark.parametrize(("ftype", "payload", "fields"), SAMPLES,
                         ids=[f"{M.NAMES[s[0]]}-{i}" for i, s in enumerate(SAMPLES)])
def test_round_trip(ftype: int, payload: bytes, fields: Any) -> None:
    assert M.unpack(ftype, payload) == fields
    assert REPACK[ftype](fields) == payload
    assert len(F.encode(ftype, 1, payload)) <= F.MAX_ENCODED


def test_largest_messages_fit_one_frame() -> None:
    names = [(n, f"{n:010x}", "€" * 8) for n in range(1, 7)]  # 24 bytes each
    lines = ["€" * 21] * 3  # 63 bytes each
    assert len(M.pack_handset_list(names)) <= F.MAX_PAYLOAD
    assert len(M.pack_display(1, lines)) <= F.MAX_PAYLOAD
    F.encode(M.DISPLAY, 1, M.pack_display(1, lines))  # no FrameError


BAD_PACKS: list[tuple[Callable[[], bytes], str]] = [
    (lambda: M.pack_number(0), "handset number must be 1..6"),
    (lambda: M.pack_number(7), "handset number must be 1..6"),
    (lambda: M.pack_number(True), "handset number"),
    (lambda: M.pack_number("1"), "handset number"),
    (lambda: M.pack_entry(1, "0a1b2c3d", "x"), "IPUI must be 10 hex digits"),
    (lambda: M.pack_entry(1, "0a1b2c3d4g", "x"), "IPUI must be 10 hex digits"),
    (lambda: M.pack_entry(1, IPUI, "x" * 17), "17 characters long, at most 16"),
    (lambda: M.pack_entry(1, IPUI, "€" * 9), "27 bytes of UTF-8, at most 24"),
    (lambda: M.pack_entry(1, IPUI, "a\nb"), "control character 0xa"),
    (lambda: M.pack_entry(1, IPUI, 5), "must be text"),
    (lambda: M.pack_handset_list([(1, IPUI, "")] * 7), "7 handsets, at most 6"),
    (lambda: M.pack_handset_list([(1, IPUI, ""), (1, "ffffffffff", "")]), "listed twice"),
    (lambda: M.pack_handset_list([(1, IPUI, ""), (2, IPUI, "")]), "listed twice"),
    (lambda: M.pack_deregistered(1, "bored"), "not a de-registration reason"),
    (lambda: M.pack_reg_failed("nope"), "not a registration failure"),
    (lambda: M.pack_digits(1, ""), "digits must be 1..32"),
    (lambda: M.pack_digits(1, "1" * 33), "digits must be 1..32"),
    (lambda: M.pack_digits(1, "12a"), "'a' is not a dial character"),
    (lambda: M.pack_key(1, "volume_up"), "'volume_up' is not a handset key"),
    (lambda: M.pack_window_state(True, 3601), "window seconds left must be 0..3600"),
    (lambda: M.pack_window_state(False, 5), "window seconds left must be 0..0"),
    (lambda: M.pack_reset_reason("bored"), "not a reset reason"),
    (lambda: M.pack_open_window("123", 60), "PIN must be 4 digits"),
    (lambda: M.pack_open_window("12a4", 60), "PIN must be 4 digits"),
    (lambda: M.pack_open_window("١٢٣٤", 60), "PIN must be 4 digits"),
    (lambda: M.pack_open_window("1234", 0), "seconds must be 1..3600"),
    (lambda: M.pack_open_window("1234", 3601), "seconds must be 1..3600"),
    (lambda: M.pack_display(1, ["a"] * 4), "4 display lines, at most 3"),
    (lambda: M.pack_display(1, ["x" * 25]), "25 characters long, at most 24"),
    (lambda: M.pack_display(1, ["日本語" * 8]), "72 bytes of UTF-8, at most 63"),
    (lambda: M.pack_display(1, ["\x1b[2J"]), "control character 0x1b"),
    (lambda: M.pack_display(1, ["\ud800"]), "control character 0xd800"),
    (lambda: M.pack_ring(1, True, 4), "ring cadence must be 0..3"),
    (lambda: M.pack_ring(1, True, 0, "c" * 25), "caller is 25 characters long"),
    (lambda: M.pack_audio(1, 4), "audio channel must be 0..3"),
    (lambda: M.pack_audio(1, -1), "audio channel must be 0..3"),
    (lambda: M.pack_tone(1, 7), "tone must be 0..6"),
    (lambda: M.pack_name(1, "\x7f"), "control character 0x7f"),
]


@pytest.mark.parametrize(("pack", "words"), BAD_PACKS)
def test_bad_arguments_are_refused_in_words(pack: Callable[[], bytes], words: str) -> None:
    with pytest.raises(M.MessageError, match=re.escape(words)):
        pack()


BAD_PAYLOADS: list[tuple[int, bytes, str]] = [
    (M.HANDSET_LIST, b"", "count of 0..6"),
    (M.HANDSET_LIST, b"\x07", "count of 0..6"),
    (M.HANDSET_LIST, b"\x01\x01\x0a\x1b", "cut short"),
    (M.HANDSET_LIST, b"\x01\x01\x0a\x1b\x2c\x3d\x4e\x05ab", "runs past"),
    (M.HANDSET_LIST, b"\x01\x00\x0a\x1b\x2c\x3d\x4e\x00", "handset number must be 1..6"),
    (M.HANDSET_LIST, b"\x00\x00", "bytes after its last entry"),
    (M.HANDSET_LIST, b"\x02" + M.pack_entry(2, IPUI, "") + M.pack_entry(1, "ffffffffff", ""),
     "unique and ascending"),
    (M.HANDSET_LIST, b"\x02" + M.pack_entry(1, IPUI, "") + M.pack_entry(2, IPUI, ""),
     "listed twice"),
    (M.HANDSET_LIST, b"\x01\x01\x0a\x1b\x2c\x3d\x4e\x02\xc3\x28", "not UTF-8"),
    (M.HANDSET_LIST, b"\x01\x01\x0a\x1b\x2c\x3d\x4e\x01\x07", "control character 0x7"),
    (M.REGISTERED, M.pack_entry(1, IPUI, "a") + b"x", "bytes after its entry"),
    (M.DEREGISTERED, b"\x01", "must be 2 bytes"),
    (M.DEREGISTERED, b"\x01\x09", "unknown de-registration code 9"),
    (M.REG_FAILED, b"\x00", "unknown registration failure code 0"),
    (M.OFFHOOK, b"", "must be 1 bytes"),
    (M.ONHOOK, b"\x09", "handset number must be 1..6"),
    (M.DIGITS, b"", "ends before the handset number"),
    (M.DIGITS, b"\x01", "digits must be 1..32"),
    (M.DIGITS, b"\x01\xff", "not text"),
    (M.DIGITS, b"\x0112A", "'A' is not a dial character"),
    (M.KEY, b"\x01", "'' is not a handset key"),
    (M.KEY, b"\x01RR", "'RR' is not a handset key"),
    (M.WINDOW_STATE, b"\x02\x00\x00", "open must be 0 or 1"),
    (M.WINDOW_STATE, b"\x00\x05\x00", "seconds left must be 0..0"),
    (M.WINDOW_STATE, b"\x01\x11\x0e", "seconds left must be 0..3600"),
    (M.WINDOW_STATE, b"\x01\x00", "must be 3 bytes"),
    (M.RESET_REASON, b"", "empty"),
    (M.RESET_REASON, b"\x09", "unknown reset reason code 9"),
    (M.RESET_REASON, b"\x00" + b"x" * 65, "65 bytes, at most 64"),
    (M.OPEN_WINDOW, b"1234\x00\x00", "window seconds must be 1..3600"),
    (M.OPEN_WINDOW, b"12\xff4\x3c\x00", "PIN must be 4 digits"),
    (M.OPEN_WINDOW, b"1234\x3c", "must be 6 bytes"),
    (M.CLOSE_WINDOW, b"\x00", "must be 0 bytes"),
    (M.DISPLAY, b"\x01", "line count of 0..3"),
    (M.DISPLAY, b"\x01\x04", "line count of 0..3"),
    (M.DISPLAY, b"\x01\x01\x05ab", "runs past"),
    (M.DISPLAY, b"\x01\x01", "runs past"),
    (M.DISPLAY, b"\x01\x00z", "bytes after its last line"),
    (M.DISPLAY, b"\x01\x01\x19" + b"x" * 25, "25 characters long, at most 24"),
    (M.DISPLAY, b"\x01\x01\x40" + b"x" * 64, "64 bytes, at most 63"),
    (M.RING, b"\x01\x01", "cut short"),
    (M.RING, b"\x01\x02\x00", "RING on must be 0 or 1"),
    (M.RING, b"\x01\x01\x04", "ring cadence must be 0..3"),
    (M.RING, b"\x01\x01\x00\x0d", "control character 0xd"),
    (M.AUDIO, b"\x01\x04", "audio channel must be 0..3"),
    (M.AUDIO, b"\x01", "must be 2 bytes"),
    (M.TONE, b"\x01\x07", "tone must be 0..6"),
    (M.NAME, b"\x01" + b"n" * 17, "17 characters long, at most 16"),
    (M.NAME, b"", "ends before the handset number"),
]


@pytest.mark.parametrize(("ftype", "payload", "words"), BAD_PAYLOADS)
def test_every_field_is_checked_on_unpack(ftype: int, payload: bytes, words: str) -> None:
    with pytest.raises(M.MessageError, match=re.escape(words)):
        M.unpack(ftype, payload)


def test_unknown_type_is_said_in_words() -> None:
    with pytest.raises(M.MessageError, match="0x10 is not a DECT message"):
        M.unpack(F.KEY, b"\x01")


def test_message_error_is_a_frame_error_and_a_value_error() -> None:
    assert issubclass(M.MessageError, F.FrameError)
    assert issubclass(M.MessageError, ValueError)


def test_fit_text_cuts_and_cleans() -> None:
    assert M.fit_text("Anna\tSvensson\n") == "Anna Svensson "
    assert M.fit_text("x" * 40) == "x" * 24
    fitted = M.fit_text("日本語" * 8)
    assert len(fitted.encode()) <= M.MAX_LINE_BYTES and fitted == ("日本語" * 8)[:21]
    assert M.fit_text("Über-lång-namn-här!", M.MAX_NAME_CHARS, M.MAX_NAME_BYTES) == \
        "Über-lång-namn-h"
    assert M.fit_text("a\ud800b") == "a b"
    with pytest.raises(M.MessageError, match="text expected"):
        M.fit_text(None)  # type: ignore[arg-type]


def _unpacks_canonically(ftype: int, payload: bytes) -> bool:
    """True if the payload unpacks (then it packs back to itself); False if refused."""
    try:
        fields = M.unpack(ftype, payload)
    except M.MessageError:
        return False
    assert REPACK[ftype](fields) == payload, (M.NAMES[ftype], payload)
    return True


@pytest.mark.parametrize(("ftype", "payload", "fields"), SAMPLES[:24])
def test_every_damaged_sample_is_refused_or_canonical(ftype: int, payload: bytes,
                                                      fields: Any) -> None:
    damaged = [payload[:cut] for cut in range(len(payload))] + [payload + b"\x00"]
    for i in range(len(payload)):
        for bit in range(8):
            bad = bytearray(payload)
            bad[i] ^= 1 << bit
            damaged.append(bytes(bad))
    results = [_unpacks_canonically(ftype, bad) for bad in damaged]
    assert not all(results)


def test_fuzzed_payloads_raise_only_message_errors() -> None:
    rng = random.Random(1234)
    accepted = 0
    for _ in range(20_000):
        ftype = rng.choice(list(M.UNPACKERS))
        size = rng.choice((0, 1, 2, 3, 6, 8, rng.randrange(F.MAX_PAYLOAD + 1)))
        head = bytes((rng.randrange(8),)) if rng.random() < 0.7 else b""
        payload = (head + rng.randbytes(size))[:F.MAX_PAYLOAD]
        accepted += _unpacks_canonically(ftype, payload)
    assert accepted > 100  # the fuzzer reaches past the first checks


def test_random_bytes_through_the_decoder_and_unpackers() -> None:
    rng = random.Random(99)
    decoder = F.Decoder()
    valid = [F.encode(ftype, rng.randrange(1, 256), payload) for ftype, payload, _ in SAMPLES]
    seen = 0
    for _ in range(2000):
        chunk = rng.randbytes(rng.randrange(1, 300))
        if rng.random() < 0.5:
            frame = bytearray(rng.choice(valid))
            if rng.random() < 0.5:
                frame[rng.randrange(1, len(frame) - 1)] ^= 1 << rng.randrange(8)
            chunk += bytes(frame)
        for ftype, _seq, payload in decoder.feed(chunk):
            seen += 1
            if ftype in M.UNPACKERS:
                _unpacks_canonically(ftype, payload)
    assert seen > 400 and decoder.error_count() > 0
