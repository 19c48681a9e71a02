"""The DECT radio module's message set, carried in `board.mcu.frame` frames.

The link layer is the front panel's, unchanged (docs/frontpanel.md): COBS frames with a CRC,
HELLO / HELLO_ACK / ACK / HEARTBEAT, epochs, stop-and-wait delivery. This module only adds the
payloads of frame types 0x40-0x6F: 0x40-0x4F go from the radio module to the base, 0x60-0x6F
from the base to the module. Every one of them is a reliable frame (seq 1..255). Layouts and
meanings: docs/dect.md.

Each `pack_*` checks its arguments and each `unpack_*` checks every field, raising
`MessageError` (a `FrameError`, so a `ValueError`) that says in words what is wrong; nothing
else escapes them, whatever the bytes. Unpacking is canonical: a payload that unpacks packs
back to the same bytes.

Written like `board.mcu.frame`: only `struct` and `binascii`, no dataclasses or `typing`,
annotations with built-in types only, so a module's firmware could run it under MicroPython.
"""

import struct
from binascii import hexlify, unhexlify

try:
    from board.mcu import frame as F
except ImportError:  # on a microcontroller the modules sit at the top level
    import frame as F

# HELLO roles and capability: a DECT end answers only the other DECT end (board.dect.link).
ROLE_DECT_BASE = 2
ROLE_DECT_MODULE = 3
CAP_DECT = 0x0100  # set by both DECT ends; the front panel uses 0x01..0x08
ROLE_NAMES = {
    F.ROLE_HOST: "front-panel host",
    F.ROLE_CONTROLLER: "front-panel controller",
    ROLE_DECT_BASE: "DECT base",
    ROLE_DECT_MODULE: "DECT radio module",
}

# Module -> base.
HANDSET_LIST = 0x40
REGISTERED = 0x41
DEREGISTERED = 0x42
REG_FAILED = 0x43
OFFHOOK = 0x44
ONHOOK = 0x45
DIGITS = 0x46
KEY = 0x47
WINDOW_STATE = 0x48
RESET_REASON = 0x49
# Base -> module.
OPEN_WINDOW = 0x60
CLOSE_WINDOW = 0x61
DEREGISTER = 0x62
DISPLAY = 0x63
RING = 0x64
AUDIO = 0x65
TONE = 0x66
NAME = 0x67

NAMES = {
    HANDSET_LIST: "HANDSET_LIST", REGISTERED: "REGISTERED", DEREGISTERED: "DEREGISTERED",
    REG_FAILED: "REG_FAILED", OFFHOOK: "OFFHOOK", ONHOOK: "ONHOOK", DIGITS: "DIGITS",
    KEY: "KEY", WINDOW_STATE: "WINDOW_STATE", RESET_REASON: "RESET_REASON",
    OPEN_WINDOW: "OPEN_WINDOW", CLOSE_WINDOW: "CLOSE_WINDOW", DEREGISTER: "DEREGISTER",
    DISPLAY: "DISPLAY", RING: "RING", AUDIO: "AUDIO", TONE: "TONE", NAME: "NAME",
}

# Limits.
MAX_HANDSETS = 6
IPUI_BYTES = 5  # on the wire; in Python 10 lower-case hex digits
MAX_NAME_CHARS = 16
MAX_NAME_BYTES = 24  # UTF-8; so six handsets always fit one HANDSET_LIST frame
MAX_LINES = 3
MAX_LINE_CHARS = 24
MAX_LINE_BYTES = 63  # UTF-8; so three lines always fit one DISPLAY frame
MAX_DIGITS = 32
MAX_DETAIL_BYTES = 64
MAX_WINDOW_S = 3600
PIN_DIGITS = 4
AUDIO_CHANNELS = 4  # ALSA channels 0..3
NONE = 0xFF  # "no channel" in AUDIO, "no tone" in TONE
DIAL_CHARS = "0123456789*#"

HANDSET_KEYS = ("R", "int", "menu", "up", "down", "ok", "cancel", "left", "right",
                "vol+", "vol-", "mute", "speaker")
CADENCES = ("normal", "internal", "priority", "intercom")  # RING cadence ids 0..3
TONES = ("dial", "ringback", "busy", "congestion", "call-waiting", "confirm", "error")

# Codes on the wire <-> the words the Python side uses.
REG_FAILURES = {1: "wrong_pin", 2: "window_closed", 3: "full"}
DEREG_REASONS = {1: "base", 2: "handset", 3: "module"}
RESET_REASONS = {0: "power-on", 1: "watchdog", 2: "requested", 3: "brown-out", 4: "unknown"}

ENTRY_FORMAT = "<B5sB"  # number, IPUI, name length (then the name)
WINDOW_FORMAT = "<BH"  # open, seconds left
OPEN_FORMAT = "<4sH"  # PIN (4 ASCII digits), seconds


class MessageError(F.FrameError):
    """A DECT message or argument that does not follow the format, said in words."""


# -- fields ------------------------------------------------------------------------------

def check_number(number) -> int:
    """A handset number, 1..MAX_HANDSETS."""
    if type(number) is not int or not 1 <= number <= MAX_HANDSETS:
        raise MessageError(f"handset number must be 1..{MAX_HANDSETS}, not {number!r}")
    return number


def _number_at(payload: bytes, i: int) -> int:
    if i >= len(payload):
        raise MessageError("message ends before the handset number")
    return check_number(payload[i])


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000


def check_text(text, max_chars: int, max_bytes: int, what: str) -> bytes:
    """`text` as UTF-8 bytes, if it is printable and within both limits."""
    if not isinstance(text, str):
        raise MessageError(f"{what} must be text, not {type(text).__name__}")
    if len(text) > max_chars:
        raise MessageError(f"{what} is {len(text)} characters long, at most {max_chars}")
    for ch in text:
        if _is_control(ch):
            raise MessageError(f"{what} holds the control character {ord(ch):#x}")
    raw = text.encode()
    if len(raw) > max_bytes:
        raise MessageError(f"{what} is {len(raw)} bytes of UTF-8, at most {max_bytes}")
    return raw


def _decode_text(raw: bytes, max_chars: int, max_bytes: int, what: str) -> str:
    if len(raw) > max_bytes:
        raise MessageError(f"{what} is {len(raw)} bytes, at most {max_bytes}")
    try:
        text = bytes(raw).decode()
    except UnicodeError:
        raise MessageError(f"{what} is not UTF-8") from None
    check_text(text, max_chars, max_bytes, what)
    return text


def fit_text(text: str, max_chars: int = MAX_LINE_CHARS, max_bytes: int = MAX_LINE_BYTES) -> str:
    """`text` made to fit: control characters become spaces, then it is cut to the limits."""
    if not isinstance(text, str):
        raise MessageError(f"text expected, not {type(text).__name__}")
    text = "".join(" " if _is_control(ch) else ch for ch in text)[:max_chars]
    while len(text.encode()) > max_bytes:
        text = text[:-1]
    return text


def check_ipui(ipui) -> bytes:
    """The 5 IPUI bytes from 10 hex digits."""
    if not isinstance(ipui, str) or len(ipui) != 2 * IPUI_BYTES:
        raise MessageError(f"IPUI must be {2 * IPUI_BYTES} hex digits, not {ipui!r}")
    try:
        return unhexlify(ipui)
    except (ValueError, TypeError):
        raise MessageError(f"IPUI must be {2 * IPUI_BYTES} hex digits, not {ipui!r}") from None


def ipui_text(raw: bytes) -> str:
    return hexlify(raw).decode()


def check_name(name) -> bytes:
    return check_text(name, MAX_NAME_CHARS, MAX_NAME_BYTES, "handset name")


def check_line(line, what: str = "display line") -> bytes:
    return check_text(line, MAX_LINE_CHARS, MAX_LINE_BYTES, what)


def check_digits(digits) -> bytes:
    """Dialled digits: 1..MAX_DIGITS of 0-9 * #."""
    if not isinstance(digits, str) or not 1 <= len(digits) <= MAX_DIGITS:
        raise MessageError(f"digits must be 1..{MAX_DIGITS} characters of {DIAL_CHARS}")
    for ch in digits:
        if ch not in DIAL_CHARS:
            raise MessageError(f"{ch!r} is not a dial character (0-9, *, #)")
    return digits.encode()


def check_key(name) -> bytes:
    if name not in HANDSET_KEYS:
        raise MessageError(f"{name!r} is not a handset key ({', '.join(HANDSET_KEYS)})")
    return name.encode()


def check_pin(pin) -> bytes:
    if not isinstance(pin, str) or len(pin) != PIN_DIGITS or not _all_digits(pin):
        raise MessageError(f"the PIN must be {PIN_DIGITS} digits")
    return pin.encode()


def _all_digits(text: str) -> bool:
    return all(ch in "0123456789" for ch in text)


def _code_of(words: dict, word, what: str) -> int:
    for code, name in words.items():
        if name == word:
            return code
    raise MessageError(f"{word!r} is not a {what} ({', '.join(words.values())})")


def _word_of(words: dict, code: int, what: str) -> str:
    if code not in words:
        raise MessageError(f"unknown {what} code {code}")
    return words[code]


def _flag(value: int, what: str) -> bool:
    if value > 1:
        raise MessageError(f"{what} must be 0 or 1, not {value}")
    return value == 1


def _exact(payload: bytes, size: int, what: str) -> None:
    if len(payload) != size:
        raise MessageError(f"{what} must be {size} bytes, not {len(payload)}")


def _small(value, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise MessageError(f"{what} must be {low}..{high}, not {value!r}")
    return value


# -- handsets: HANDSET_LIST, REGISTERED ----------------------------------------------------

def pack_entry(number: int, ipui: str, name: str) -> bytes:
    raw = check_name(name)
    return struct.pack(ENTRY_FORMAT, check_number(number), check_ipui(ipui), len(raw)) + raw


def _entry_at(payload: bytes, i: int) -> tuple:
    head = struct.calcsize(ENTRY_FORMAT)
    if i + head > len(payload):
        raise MessageError("handset entry cut short")
    number, ipui, size = struct.unpack_from(ENTRY_FORMAT, payload, i)
    check_number(number)
    end = i + head + size
    if end > len(payload):
        raise MessageError("handset name runs past the message")
    name = _decode_text(payload[i + head:end], MAX_NAME_CHARS, MAX_NAME_BYTES, "handset name")
    return (number, ipui_text(ipui), name), end


def pack_handset_list(entries: list) -> bytes:
    """Every registered handset: [(number, ipui, name), ...], numbers and IPUIs unique."""
    if len(entries) > MAX_HANDSETS:
        raise MessageError(f"{len(entries)} handsets, at most {MAX_HANDSETS}")
    _check_unique(entries)
    packed = sorted((check_number(number), pack_entry(number, ipui, name))
                    for number, ipui, name in entries)
    out = bytearray((len(entries),))
    for _number, entry in packed:
        out.extend(entry)
    return bytes(out)


def unpack_handset_list(payload: bytes) -> list:
    """[(number, ipui, name), ...] in number order."""
    if not payload or payload[0] > MAX_HANDSETS:
        raise MessageError(f"HANDSET_LIST needs a count of 0..{MAX_HANDSETS}")
    entries = []
    i = 1
    for _ in range(payload[0]):
        entry, i = _entry_at(payload, i)
        if entries and entry[0] <= entries[-1][0]:
            raise MessageError("HANDSET_LIST numbers must be unique and ascending")
        entries.append(entry)
    if i != len(payload):
        raise MessageError("HANDSET_LIST has bytes after its last entry")
    _check_unique(entries)
    return entries


def _check_unique(entries: list) -> None:
    numbers = set()
    ipuis = set()
    for number, ipui, _name in entries:
        if number in numbers or ipui in ipuis:
            raise MessageError(f"handset {number} ({ipui}) is listed twice")
        numbers.add(number)
        ipuis.add(ipui)


def pack_registered(number: int, ipui: str, name: str) -> bytes:
    return pack_entry(number, ipui, name)


def unpack_registered(payload: bytes) -> tuple:
    """(number, ipui, name)."""
    entry, end = _entry_at(payload, 0)
    if end != len(payload):
        raise MessageError("REGISTERED has bytes after its entry")
    return entry


def pack_deregistered(number: int, why: str) -> bytes:
    return bytes((check_number(number), _code_of(DEREG_REASONS, why, "de-registration reason")))


def unpack_deregistered(payload: bytes) -> tuple:
    """(number, why): why is "base", "handset" or "module"."""
    _exact(payload, 2, "DEREGISTERED")
    return check_number(payload[0]), _word_of(DEREG_REASONS, payload[1], "de-registration")


def pack_reg_failed(why: str) -> bytes:
    return bytes((_code_of(REG_FAILURES, why, "registration failure"),))


def unpack_reg_failed(payload: bytes) -> str:
    """"wrong_pin", "window_closed" or "full"."""
    _exact(payload, 1, "REG_FAILED")
    return _word_of(REG_FAILURES, payload[0], "registration failure")


# -- handset events: OFFHOOK, ONHOOK, DIGITS, KEY -------------------------------------------

def pack_number(number: int) -> bytes:
    """OFFHOOK, ONHOOK, DEREGISTER: the handset number alone."""
    return bytes((check_number(number),))


def unpack_number(payload: bytes) -> int:
    _exact(payload, 1, "a handset-number message")
    return check_number(payload[0])


def pack_digits(number: int, digits: str) -> bytes:
    return bytes((check_number(number),)) + check_digits(digits)


def unpack_digits(payload: bytes) -> tuple:
    """(number, digits)."""
    number = _number_at(payload, 0)
    try:
        digits = bytes(payload[1:]).decode()
    except UnicodeError:
        raise MessageError("DIGITS are not text") from None
    check_digits(digits)
    return number, digits


def pack_key(number: int, name: str) -> bytes:
    return bytes((check_number(number),)) + check_key(name)


def unpack_key(payload: bytes) -> tuple:
    """(number, key name)."""
    number = _number_at(payload, 0)
    try:
        name = bytes(payload[1:]).decode()
    except UnicodeError:
        raise MessageError("KEY name is not text") from None
    check_key(name)
    return number, name


# -- module state: WINDOW_STATE, RESET_REASON ----------------------------------------------

def pack_window_state(is_open: bool, seconds_left: int) -> bytes:
    seconds = _small(seconds_left, 0, MAX_WINDOW_S if is_open else 0, "window seconds left")
    return struct.pack(WINDOW_FORMAT, 1 if is_open else 0, seconds)


def unpack_window_state(payload: bytes) -> tuple:
    """(open, seconds left); a closed window has 0 seconds left."""
    _exact(payload, struct.calcsize(WINDOW_FORMAT), "WINDOW_STATE")
    flag, seconds = struct.unpack(WINDOW_FORMAT, payload)
    is_open = _flag(flag, "WINDOW_STATE open")
    _small(seconds, 0, MAX_WINDOW_S if is_open else 0, "window seconds left")
    return is_open, seconds


def pack_reset_reason(reason: str, detail: str = "") -> bytes:
    code = _code_of(RESET_REASONS, reason, "reset reason")
    return bytes((code,)) + check_text(detail, MAX_DETAIL_BYTES, MAX_DETAIL_BYTES, "reset detail")


def unpack_reset_reason(payload: bytes) -> tuple:
    """(reason, detail): reason is one of RESET_REASONS' words."""
    if not payload:
        raise MessageError("RESET_REASON is empty")
    reason = _word_of(RESET_REASONS, payload[0], "reset reason")
    detail = _decode_text(payload[1:], MAX_DETAIL_BYTES, MAX_DETAIL_BYTES, "reset detail")
    return reason, detail


# -- base commands: OPEN_WINDOW, CLOSE_WINDOW, DEREGISTER, NAME ------------------------------

def pack_open_window(pin: str, seconds: int) -> bytes:
    return struct.pack(OPEN_FORMAT, check_pin(pin), _small(seconds, 1, MAX_WINDOW_S, "seconds"))


def unpack_open_window(payload: bytes) -> tuple:
    """(pin, seconds)."""
    _exact(payload, struct.calcsize(OPEN_FORMAT), "OPEN_WINDOW")
    raw, seconds = struct.unpack(OPEN_FORMAT, payload)
    try:
        pin = raw.decode()
    except UnicodeError:
        raise MessageError("the PIN must be 4 digits") from None
    check_pin(pin)
    return pin, _small(seconds, 1, MAX_WINDOW_S, "window seconds")


def pack_close_window() -> bytes:
    return b""


def unpack_close_window(payload: bytes) -> None:
    _exact(payload, 0, "CLOSE_WINDOW")


def pack_name(number: int, name: str) -> bytes:
    return bytes((check_number(number),)) + check_name(name)


def unpack_name(payload: bytes) -> tuple:
    """(number, name)."""
    number = _number_at(payload, 0)
    return number, _decode_text(payload[1:], MAX_NAME_CHARS, MAX_NAME_BYTES, "handset name")


# -- what a handset shows and plays: DISPLAY, RING, AUDIO, TONE -----------------------------

def pack_display(number: int, lines: list) -> bytes:
    """Up to 3 lines; the handset clears the lines not given."""
    if len(lines) > MAX_LINES:
        raise MessageError(f"{len(lines)} display lines, at most {MAX_LINES}")
    out = bytearray((check_number(number), len(lines)))
    for line in lines:
        raw = check_line(line)
        out.append(len(raw))
        out.extend(raw)
    return bytes(out)


def unpack_display(payload: bytes) -> tuple:
    """(number, [line, ...])."""
    number = _number_at(payload, 0)
    if len(payload) < 2 or payload[1] > MAX_LINES:
        raise MessageError(f"DISPLAY needs a line count of 0..{MAX_LINES}")
    lines = []
    i = 2
    for _ in range(payload[1]):
        if i >= len(payload) or i + 1 + payload[i] > len(payload):
            raise MessageError("DISPLAY line runs past the message")
        end = i + 1 + payload[i]
        lines.append(_decode_text(payload[i + 1:end], MAX_LINE_CHARS, MAX_LINE_BYTES,
                                  "display line"))
        i = end
    if i != len(payload):
        raise MessageError("DISPLAY has bytes after its last line")
    return number, lines


def pack_ring(number: int, on: bool, cadence: int = 0, caller: str = "") -> bytes:
    cadence = _small(cadence, 0, len(CADENCES) - 1, "ring cadence")
    return bytes((check_number(number), 1 if on else 0, cadence)) + check_line(caller, "caller")


def unpack_ring(payload: bytes) -> tuple:
    """(number, on, cadence, caller)."""
    number = _number_at(payload, 0)
    if len(payload) < 3:
        raise MessageError("RING cut short")
    on = _flag(payload[1], "RING on")
    cadence = _small(payload[2], 0, len(CADENCES) - 1, "ring cadence")
    caller = _decode_text(payload[3:], MAX_LINE_CHARS, MAX_LINE_BYTES, "caller")
    return number, on, cadence, caller


def pack_audio(number: int, channel) -> bytes:
    """`channel` 0..3, or None: the handset's audio is disconnected."""
    if channel is not None:
        _small(channel, 0, AUDIO_CHANNELS - 1, "audio channel")
    return bytes((check_number(number), NONE if channel is None else channel))


def unpack_audio(payload: bytes) -> tuple:
    """(number, channel or None)."""
    _exact(payload, 2, "AUDIO")
    number = check_number(payload[0])
    if payload[1] == NONE:
        return number, None
    return number, _small(payload[1], 0, AUDIO_CHANNELS - 1, "audio channel")


def pack_tone(number: int, tone) -> bytes:
    """`tone` an index into TONES, or None: silence."""
    if tone is not None:
        _small(tone, 0, len(TONES) - 1, "tone")
    return bytes((check_number(number), NONE if tone is None else tone))


def unpack_tone(payload: bytes) -> tuple:
    """(number, tone id or None)."""
    _exact(payload, 2, "TONE")
    number = check_number(payload[0])
    if payload[1] == NONE:
        return number, None
    return number, _small(payload[1], 0, len(TONES) - 1, "tone")


UNPACKERS = {
    HANDSET_LIST: unpack_handset_list, REGISTERED: unpack_registered,
    DEREGISTERED: unpack_deregistered, REG_FAILED: unpack_reg_failed,
    OFFHOOK: unpack_number, ONHOOK: unpack_number, DIGITS: unpack_digits, KEY: unpack_key,
    WINDOW_STATE: unpack_window_state, RESET_REASON: unpack_reset_reason,
    OPEN_WINDOW: unpack_open_window, CLOSE_WINDOW: unpack_close_window,
    DEREGISTER: unpack_number, DISPLAY: unpack_display, RING: unpack_ring,
    AUDIO: unpack_audio, TONE: unpack_tone, NAME: unpack_name,
}


def unpack(ftype: int, payload: bytes):
    """The fields of a DECT message of type `ftype`; MessageError for an unknown type."""
    if ftype not in UNPACKERS:
        raise MessageError(f"frame type {ftype:#04x} is not a DECT message")
    return UNPACKERS[ftype](payload)
