"""The front-panel wire format in CPython: round trips, resync, rejection of bad frames."""

from __future__ import annotations

import random
import struct
from binascii import crc32

import pytest

from board.mcu import frame as F


def decode_all(data: bytes) -> list[tuple[int, int, bytes]]:
    return F.Decoder().feed(data)


@pytest.mark.parametrize("payload", [
    b"", b"\x00", b"\x00\x00\x00", b"abc\x00def\x00", bytes(range(256))[:F.MAX_PAYLOAD],
    b"\xff" * F.MAX_PAYLOAD, b"\x00" * F.MAX_PAYLOAD,
])
def test_frame_round_trip(payload: bytes) -> None:
    wire = F.encode(F.LED, 42, payload)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    assert decode_all(wire) == [(F.LED, 42, payload)]


def test_cobs_round_trip_over_long_runs_and_zeros() -> None:
    rng = random.Random(7)
    for size in (0, 1, 253, 254, 255, 508, 600):
        for zeros in (0.0, 0.1, 0.9):
            data = bytes(0 if rng.random() < zeros else rng.randrange(1, 256)
                         for _ in range(size))
            encoded = F.cobs_encode(data)
            assert 0 not in encoded
            assert F.cobs_decode(encoded) == data


def test_decoder_takes_bytes_in_any_split() -> None:
    frames = [(F.KEY, 1, F.pack_key("5", F.PRESS)), (F.HOOK, 2, F.pack_hook(True)),
              (F.ACK, 0, F.pack_ack(9))]
    stream = b"".join(F.encode(*f) for f in frames)
    for cut in range(len(stream) + 1):
        decoder = F.Decoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == frames
    decoder = F.Decoder()
    assert [f for b in stream for f in decoder.feed(bytes([b]))] == frames


def test_resync_after_garbage() -> None:
    rng = random.Random(3)
    frames = [(F.KEY, n, F.pack_key("line1", F.PRESS)) for n in range(1, 40)]
    stream = bytearray()
    for f in frames:
        stream += bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30)))
        stream += F.encode(*f)
    decoder = F.Decoder()
    assert decoder.feed(bytes(stream)) == frames
    assert decoder.error_count() > 0


def test_truncated_frame_does_not_swallow_the_next() -> None:
    good = F.encode(F.KEY, 7, F.pack_key("ok", F.PRESS))
    decoder = F.Decoder()
    assert decoder.feed(good[:6] + good) == [(F.KEY, 7, F.pack_key("ok", F.PRESS))]


def test_every_single_byte_corruption_is_rejected() -> None:
    wire = F.encode(F.LED, 3, F.pack_led("line1", F.SLOW_BLINK, "red"))
    for i in range(1, len(wire) - 1):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(wire)
            bad[i] ^= flip
            decoder = F.Decoder()
            assert decoder.feed(bytes(bad)) == [], (i, flip)
            assert decoder.error_count() >= 1


def test_bad_crc_counted() -> None:
    body = bytearray([1, F.HOOK, 5, 1])
    body += struct.pack("<I", (crc32(body) ^ 1) & 0xFFFFFFFF)
    decoder = F.Decoder()
    assert decoder.feed(b"\x00" + F.cobs_encode(bytes(body)) + b"\x00") == []
    assert decoder.errors["crc"] == 1


def test_length_field_must_match() -> None:
    body = bytearray([2, F.HOOK, 5, 1])  # says 2 payload bytes, carries 1
    body += struct.pack("<I", crc32(body) & 0xFFFFFFFF)
    decoder = F.Decoder()
    assert decoder.feed(b"\x00" + F.cobs_encode(bytes(body)) + b"\x00") == []
    assert decoder.errors["length"] == 1


def test_oversize_rejected_on_both_sides() -> None:
    with pytest.raises(F.FrameError):
        F.encode(F.LED_ALL, 1, b"x" * (F.MAX_PAYLOAD + 1))
    good = F.encode(F.HOOK, 4, F.pack_hook(False))
    decoder = F.Decoder()
    assert decoder.feed(b"\x01" * (F.MAX_ENCODED * 3)) == []
    assert decoder.feed(good) == [(F.HOOK, 4, b"\x00")]
    assert decoder.errors["oversize"] == 1


def test_payload_round_trips() -> None:
    hello = F.unpack_hello(F.pack_hello(F.ROLE_CONTROLLER, 0xDEADBEEF, (1, 2), 0x0F, 7))
    assert hello == (F.PROTOCOL_VERSION, F.ROLE_CONTROLLER, 0xDEADBEEF, (1, 2), 0x0F, 7)
    assert F.unpack_key(F.pack_key("volume_down", F.LONG)) == ("volume_down", F.LONG)
    assert F.unpack_hook(F.pack_hook(True)) is True
    assert F.unpack_led(F.pack_led("line12", F.FAST_BLINK, "amber")) == (
        "line12", F.FAST_BLINK, "amber")
    assert F.unpack_heartbeat(F.pack_heartbeat(5, 2**33 + 1)) == (5, 1)
    assert F.unpack_ack(F.pack_ack(255)) == 255
    assert F.unpack_error(F.pack_error(F.ERR_UNKNOWN_LED, "foo")) == (F.ERR_UNKNOWN_LED, "foo")


def test_led_all_splits_to_fit_and_keeps_every_entry() -> None:
    entries = [(f"line{n}", n % 4, "green" if n % 2 else "red") for n in range(1, 17)]
    entries += [("message", F.SLOW_BLINK, "red"), ("speaker", F.ON, "green")]
    payloads = F.pack_led_all(entries)
    assert len(payloads) > 1
    assert all(len(p) <= F.MAX_PAYLOAD for p in payloads)
    assert [e for p in payloads for e in F.unpack_led_all(p)[1]] == entries
    assert [F.unpack_led_all(p)[0] for p in payloads] == [F.LED_ALL_FIRST] + [0] * (
        len(payloads) - 1)
    assert F.unpack_led_all(F.pack_led_all([])[0]) == (F.LED_ALL_FIRST, [])


@pytest.mark.parametrize(("unpack", "payload"), [
    (F.unpack_key, b""), (F.unpack_key, b"\x09ok"), (F.unpack_key, b"\x01"),
    (F.unpack_key, b"\x01\xff\xfe"), (F.unpack_key, b"\x01" + b"k" * 17),
    (F.unpack_hook, b"\x02"), (F.unpack_hook, b""), (F.unpack_ack, b"\x01\x02"),
    (F.unpack_led, b"\x07\x03red\x01x"), (F.unpack_led, b"\x01\x09red\x01x"),
    (F.unpack_led, F.pack_led("a", 1, "red") + b"x"), (F.unpack_led_all, b"\x01\x02"),
    (F.unpack_hello, b"\x01\x00"), (F.unpack_heartbeat, b"\x01"),
])
def test_malformed_payloads_raise_frame_error(unpack, payload: bytes) -> None:
    with pytest.raises(F.FrameError):
        unpack(payload)


def test_names_must_fit() -> None:
    with pytest.raises(F.FrameError):
        F.pack_key("", F.PRESS)
    with pytest.raises(F.FrameError):
        F.pack_led("x" * 17, F.ON, "red")
    with pytest.raises(F.FrameError):
        F.pack_led("x", 9, "red")
