"""The front-panel link's wire format, shared by the controller (MicroPython) and the SBC.

Written in the common subset of CPython 3.11 and MicroPython 1.27: only `struct` and
`binascii.crc32`, no f-strings, no dataclasses, annotations with built-in types only.

On the wire a frame is ``00 COBS(body) 00``; the body is::

    len:u8  type:u8  seq:u8  payload[len]  crc32:u32le (over len..payload)

COBS removes every 0x00 from the body, so 0x00 only ever delimits frames: a receiver that
starts mid-stream or meets garbage drops bytes up to the next 0x00 and is in step again.
`seq` is 0 on unsequenced frames (HELLO, HELLO_ACK, ACK, HEARTBEAT) and 1..255 on reliable
ones. Layout of every payload: docs/frontpanel.md.
"""

import struct
from binascii import crc32

PROTOCOL_VERSION = 1
MAX_PAYLOAD = 200  # bytes; LED_ALL is split to fit
HEADER = 3  # len, type, seq
TRAILER = 4  # crc32
MAX_BODY = HEADER + MAX_PAYLOAD + TRAILER
MAX_ENCODED = MAX_BODY + MAX_BODY // 254 + 1
DELIMITER = b"\x00"

# Frame types. Unsequenced (seq 0): HELLO, HELLO_ACK, ACK, HEARTBEAT; the rest are reliable.
HELLO = 0x01
HELLO_ACK = 0x02
ACK = 0x03
HEARTBEAT = 0x04
KEY = 0x10
HOOK = 0x11
LED = 0x20
LED_ALL = 0x21
ERROR = 0x30

# HELLO roles: a HELLO from our own role means the line loops back to us.
ROLE_HOST = 0
ROLE_CONTROLLER = 1

# KEY actions.
RELEASE = 0
PRESS = 1
LONG = 2

# LED patterns (board.parts.LedPattern on the SBC).
OFF = 0
ON = 1
SLOW_BLINK = 2
FAST_BLINK = 3
PATTERNS = (OFF, ON, SLOW_BLINK, FAST_BLINK)
LED_ALL_FIRST = 0x01  # LED_ALL flag: the first frame of a snapshot

# ERROR codes.
ERR_UNKNOWN_LED = 1
ERR_QUEUE_OVERFLOW = 2

# Capability bits in HELLO.
CAP_KEYS = 0x01
CAP_HOOK = 0x02
CAP_LEDS = 0x04
CAP_LONG_PRESS = 0x08

HELLO_FORMAT = "<BBIBBHI"  # version, role, epoch, fw major, fw minor, capabilities, echo
HEARTBEAT_FORMAT = "<II"  # epoch, uptime ms (mod 2**32)
MAX_NAME = 16  # key, LED and colour names are ASCII, at most this long


class FrameError(ValueError):
    """A payload or body that does not follow the format."""


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result holds no 0x00."""
    out = bytearray()
    start = 0
    while True:
        zero = data.find(DELIMITER, start)
        end = len(data) if zero < 0 else zero
        while end - start >= 254:
            out.append(0xFF)
            out.extend(data[start:start + 254])
            start += 254
        out.append(end - start + 1)
        out.extend(data[start:end])
        if zero < 0:
            return bytes(out)
        start = zero + 1


def cobs_decode(data: bytes) -> bytes:
    """Undo `cobs_encode`; raises FrameError on a 0x00 or a block running past the end."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("zero byte inside a COBS frame")
        end = i + code
        if end > n:
            raise FrameError("COBS block runs past the frame")
        out.extend(data[i + 1:end])
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame ready for the wire, delimiters included."""
    size = len(payload)
    if size > MAX_PAYLOAD:
        raise FrameError(f"payload of {size} bytes is over {MAX_PAYLOAD}")
    body = bytearray((size, ftype, seq))
    body.extend(payload)
    body.extend(struct.pack("<I", crc32(body) & 0xFFFFFFFF))
    return DELIMITER + cobs_encode(body) + DELIMITER


def parse_body(body: bytes) -> tuple:
    """(type, seq, payload) from a decoded body; FrameError names what is wrong."""
    if len(body) < HEADER + TRAILER:
        raise FrameError("short")
    size = body[0]
    if size > MAX_PAYLOAD or len(body) != HEADER + size + TRAILER:
        raise FrameError("length")
    crc = struct.unpack_from("<I", body, HEADER + size)[0]
    if crc != crc32(body[:HEADER + size]) & 0xFFFFFFFF:
        raise FrameError("crc")
    return body[1], body[2], bytes(body[HEADER:HEADER + size])


class Decoder:
    """Turns a byte stream into frames, in step again after any garbage.

    `feed(data)` returns the complete, valid frames as (type, seq, payload) tuples. Bad frames
    are dropped and counted in `errors` (keys: short, length, crc, cobs, oversize).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skipping = False
        self.frames = 0
        self.errors = {"short": 0, "length": 0, "crc": 0, "cobs": 0, "oversize": 0}

    def feed(self, data: bytes) -> list:
        frames = []
        start = 0
        while True:
            zero = data.find(DELIMITER, start)
            if zero < 0:
                self._take(data[start:])
                return frames
            self._take(data[start:zero])
            self._finish(frames)
            start = zero + 1

    def error_count(self) -> int:
        return sum(self.errors.values())

    def _take(self, chunk: bytes) -> None:
        if self._skipping or not chunk:
            return
        if len(self._buf) + len(chunk) > MAX_ENCODED:
            self.errors["oversize"] += 1
            self._buf = bytearray()
            self._skipping = True
            return
        self._buf.extend(chunk)

    def _finish(self, frames: list) -> None:
        encoded = self._buf
        self._buf = bytearray()
        if self._skipping:
            self._skipping = False
            return
        if not encoded:
            return
        try:
            frames.append(parse_body(cobs_decode(encoded)))
        except FrameError as exc:
            kind = str(exc)
            self.errors[kind if kind in self.errors else "cobs"] += 1
            return
        self.frames += 1


# Payloads. Each pack_* has an unpack_* that raises FrameError on anything malformed.

def _name(text: str) -> bytes:
    raw = text.encode()
    if not raw or len(raw) > MAX_NAME:
        raise FrameError(f"name must be 1..{MAX_NAME} bytes")
    return raw


def _text(raw: bytes) -> str:
    if not raw or len(raw) > MAX_NAME:
        raise FrameError("bad name")
    try:
        return raw.decode()
    except UnicodeError:
        raise FrameError("name is not text") from None


def pack_hello(role: int, epoch: int, firmware: tuple, caps: int, echo: int = 0) -> bytes:
    return struct.pack(HELLO_FORMAT, PROTOCOL_VERSION, role, epoch & 0xFFFFFFFF,
                       firmware[0], firmware[1], caps, echo & 0xFFFFFFFF)


def unpack_hello(payload: bytes) -> tuple:
    """(version, role, epoch, (fw major, fw minor), caps, echo)."""
    if len(payload) < struct.calcsize(HELLO_FORMAT):
        raise FrameError("short HELLO")
    v, role, epoch, major, minor, caps, echo = struct.unpack_from(HELLO_FORMAT, payload, 0)
    return v, role, epoch, (major, minor), caps, echo


def pack_heartbeat(epoch: int, uptime_ms: int) -> bytes:
    return struct.pack(HEARTBEAT_FORMAT, epoch & 0xFFFFFFFF, uptime_ms & 0xFFFFFFFF)


def unpack_heartbeat(payload: bytes) -> tuple:
    """(epoch, uptime ms)."""
    if len(payload) < 8:
        raise FrameError("short HEARTBEAT")
    return struct.unpack_from(HEARTBEAT_FORMAT, payload, 0)


def pack_ack(seq: int) -> bytes:
    return bytes((seq,))


def unpack_ack(payload: bytes) -> int:
    if len(payload) != 1:
        raise FrameError("bad ACK")
    return payload[0]


def pack_key(name: str, action: int) -> bytes:
    return bytes((action,)) + _name(name)


def unpack_key(payload: bytes) -> tuple:
    """(key name, action)."""
    if len(payload) < 2 or payload[0] > LONG:
        raise FrameError("bad KEY")
    return _text(payload[1:]), payload[0]


def pack_hook(offhook: bool) -> bytes:
    return b"\x01" if offhook else b"\x00"


def unpack_hook(payload: bytes) -> bool:
    if len(payload) != 1 or payload[0] > 1:
        raise FrameError("bad HOOK")
    return payload[0] == 1


def pack_led(name: str, pattern: int, colour: str) -> bytes:
    """One LED entry: pattern, colour (length-prefixed), name (length-prefixed)."""
    if pattern not in PATTERNS:
        raise FrameError("bad pattern")
    c = _name(colour)
    n = _name(name)
    return bytes((pattern, len(c))) + c + bytes((len(n),)) + n


def _unpack_led_at(payload: bytes, i: int) -> tuple:
    if i + 2 > len(payload) or payload[i] not in PATTERNS:
        raise FrameError("bad LED entry")
    pattern = payload[i]
    clen = payload[i + 1]
    c_end = i + 2 + clen
    if c_end >= len(payload):
        raise FrameError("bad LED entry")
    n_end = c_end + 1 + payload[c_end]
    if n_end > len(payload):
        raise FrameError("bad LED entry")
    colour = _text(payload[i + 2:c_end])
    name = _text(payload[c_end + 1:n_end])
    return (name, pattern, colour), n_end


def unpack_led(payload: bytes) -> tuple:
    """(LED name, pattern, colour)."""
    entry, end = _unpack_led_at(payload, 0)
    if end != len(payload):
        raise FrameError("bad LED")
    return entry


def pack_led_all(entries: list) -> list:
    """LED_ALL payloads (one per frame) for the full state [(name, pattern, colour), ...].

    Each payload is flags, count, entries. The first one has LED_ALL_FIRST set: the controller
    turns off every LED the snapshot does not name.
    """
    payloads = []
    chunk = bytearray((LED_ALL_FIRST, 0))
    for name, pattern, colour in entries:
        entry = pack_led(name, pattern, colour)
        if len(chunk) + len(entry) > MAX_PAYLOAD:
            payloads.append(bytes(chunk))
            chunk = bytearray((0, 0))
        chunk.extend(entry)
        chunk[1] += 1
    payloads.append(bytes(chunk))
    return payloads


def unpack_led_all(payload: bytes) -> tuple:
    """(flags, [(name, pattern, colour), ...]) from one LED_ALL payload."""
    if len(payload) < 2:
        raise FrameError("bad LED_ALL")
    entries = []
    i = 2
    for _ in range(payload[1]):
        entry, i = _unpack_led_at(payload, i)
        entries.append(entry)
    if i != len(payload):
        raise FrameError("bad LED_ALL")
    return payload[0], entries


def pack_error(code: int, text: str) -> bytes:
    return bytes((code,)) + text.encode()[:MAX_PAYLOAD - 1]


def unpack_error(payload: bytes) -> tuple:
    """(code, text)."""
    if not payload:
        raise FrameError("bad ERROR")
    try:
        return payload[0], payload[1:].decode()
    except UnicodeError:
        raise FrameError("ERROR text is not text") from None
