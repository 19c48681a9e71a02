"""A line editor for the serial console: bytes from the technician's terminal in, echo out.

Pure: no I/O, no threads. The console hands every received chunk to `LineEditor.feed()`, writes
the bytes it returns and acts on the events (`Line`, `Interrupt`, `EndOfInput`, `Overlong`).
After any event the prompt is no longer on screen: the console writes its own output, then
`start()` when it is ready for the next line.

Output works on a dumb terminal (`screen`, picocom, minicom, a VT with no ANSI): only printable
characters, CR, LF, BS, space and BEL are ever written. The cursor is moved left with BS and right
by writing again the characters it passes over; an edit that is not an append at the end rewrites
the line from the first changed character, blanks what is left of the old tail with spaces and
backs up with BS. Input may carry ANSI/VT escape sequences (arrows, Home, End, Delete), which are
understood; unknown ones are swallowed.

Limitations: every code point counts as one column, so wide (CJK, most emoji) and combining
characters put the cursor in the wrong place on screen (the line itself stays right). A line
longer than the terminal is wide wraps, and BS cannot go back up a row on most terminals, so
editing such a line garbles the screen; Ctrl-L shows it again.
"""

from __future__ import annotations

import codecs
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

log = logging.getLogger("luren.console")

BEL, BS, CRLF = "\x07", "\b", "\r\n"
LIST_WIDTH = 78  # completion candidates are listed in rows no wider than this
MAX_SEQUENCE = 16  # escape sequence parameters kept; a longer sequence is swallowed whole
_NOT_SHOWN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, format, surrogates, separators


@dataclass(frozen=True)
class Line:
    """Enter was pressed: `text` is the line as typed, without the line ending."""

    text: str


@dataclass(frozen=True)
class Interrupt:
    """Ctrl-C: the line being typed was dropped (and any running command should stop)."""


@dataclass(frozen=True)
class EndOfInput:
    """Ctrl-D on an empty line: the technician is done (log out, close the session)."""


@dataclass(frozen=True)
class Overlong:
    """Enter on a line that outgrew `max_line`; the line was dropped, never delivered.

    `length` is how many characters were typed for it: those kept plus those refused.
    """

    length: int


Event = Line | Interrupt | EndOfInput | Overlong


class Key(Enum):
    """An editing key, whatever byte or escape sequence the terminal sent for it."""

    ENTER = auto()
    INTERRUPT = auto()  # Ctrl-C
    CTRL_D = auto()  # end of input on an empty line, else Delete
    TAB = auto()
    BACKSPACE = auto()
    DELETE = auto()
    LEFT = auto()
    RIGHT = auto()
    HOME = auto()
    END = auto()
    UP = auto()
    DOWN = auto()
    KILL_START = auto()  # Ctrl-U
    KILL_END = auto()  # Ctrl-K
    KILL_WORD = auto()  # Ctrl-W
    REDRAW = auto()  # Ctrl-L


_CONTROLS = {0x01: Key.HOME, 0x02: Key.LEFT, 0x03: Key.INTERRUPT, 0x04: Key.CTRL_D,
             0x05: Key.END, 0x06: Key.RIGHT, 0x08: Key.BACKSPACE, 0x09: Key.TAB,
             0x0B: Key.KILL_END, 0x0C: Key.REDRAW, 0x0E: Key.DOWN, 0x10: Key.UP,
             0x15: Key.KILL_START, 0x17: Key.KILL_WORD, 0x7F: Key.BACKSPACE}
_LETTERS = {"A": Key.UP, "B": Key.DOWN, "C": Key.RIGHT, "D": Key.LEFT, "H": Key.HOME,
            "F": Key.END}  # ESC [ x and ESC O x
_TILDES = {"1": Key.HOME, "7": Key.HOME, "4": Key.END, "8": Key.END, "3": Key.DELETE}  # ESC [ n ~
_LETTER_PARAMS = re.compile(r"1?(?:;\d{1,3})?")  # none, or a modifier (Ctrl-Left acts as Left)
_TILDE_PARAMS = re.compile(r"(\d{1,2})(?:;\d{1,3})?")

_TEXT, _ESC, _SEQ = "text", "esc", "seq"  # decoder states
_CSI, _SS3, _LINUX_FN = "[", "O", "[["  # kinds of sequence (ESC [ [ x: Linux console F1-F5)


def printable(ch: str) -> bool:
    """Whether a character may be put into a line and shown (no controls of any kind)."""
    return unicodedata.category(ch) not in _NOT_SHOWN


def _only_printable(text: str) -> str:
    return "".join(ch for ch in text if printable(ch))


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings (slice compares, not a char loop)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class KeyDecoder:
    """Turns received bytes into typed characters (`str`) and editing keys (`Key`).

    Keeps its state between `feed()` calls, so a UTF-8 character, an escape sequence or a CR LF
    pair split across two reads still decodes. Never raises: invalid UTF-8 is dropped, control
    characters without a key and unknown or malformed escape sequences are swallowed.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._state = _TEXT
        self._kind = _CSI
        self._params = bytearray()
        self._overlong = False
        self._after_cr = False  # an LF or NUL right after a CR is part of the same Enter
        self._keys: list[Key | str] = []

    def reset(self) -> None:
        """Forget any partial character, escape sequence or CR (e.g. after a serial break)."""
        self._utf8.reset()
        self._state = _TEXT
        self._after_cr = False

    def feed(self, data: bytes) -> list[Key | str]:
        """The characters and keys in `data`, in order."""
        for byte in data:
            if self._after_cr:
                self._after_cr = False
                if byte in (0x0A, 0x00):
                    continue
            if self._state == _TEXT:
                self._text(byte)
            elif self._state == _ESC:
                self._escape(byte)
            else:
                self._sequence(byte)
        keys, self._keys = self._keys, []
        return keys

    def _text(self, byte: int) -> None:
        if byte >= 0x80:
            self._keys.extend(ch for ch in self._utf8.decode(bytes((byte,))) if printable(ch))
            return
        self._utf8.reset()  # an ASCII byte ends any partial character: it was invalid
        if 0x20 <= byte < 0x7F:
            self._keys.append(chr(byte))
        elif byte == 0x1B:
            self._state = _ESC
        elif byte in (0x0D, 0x0A):
            self._keys.append(Key.ENTER)
            self._after_cr = byte == 0x0D
        elif byte in _CONTROLS:
            self._keys.append(_CONTROLS[byte])

    def _escape(self, byte: int) -> None:
        if byte in (0x5B, 0x4F):  # ESC [ (CSI) or ESC O (SS3)
            self._start_sequence(chr(byte))
        elif byte != 0x1B and byte != 0x7F:  # ESC DEL (Alt-Backspace) is swallowed
            self._state = _TEXT  # a lone ESC is dropped; what follows counts on its own
            self._text(byte)

    def _start_sequence(self, kind: str) -> None:
        self._state, self._kind = _SEQ, kind
        self._params.clear()
        self._overlong = False

    def _sequence(self, byte: int) -> None:
        if 0x20 <= byte <= 0x3F:  # parameter or intermediate byte
            if len(self._params) < MAX_SEQUENCE:
                self._params.append(byte)
            else:
                self._overlong = True
        elif 0x40 <= byte <= 0x7E:  # final byte
            self._state = _TEXT
            if byte == 0x5B and self._kind == _CSI and not self._params:
                self._start_sequence(_LINUX_FN)
            elif not self._overlong:
                self._finish(chr(byte), self._params.decode("ascii"))
        else:  # a control or a non-ASCII byte cuts the sequence short
            self._state = _TEXT
            if byte < 0x20:
                self._text(byte)  # C0 controls still act: Ctrl-C, Enter, ESC

    def _finish(self, final: str, params: str) -> None:
        if self._kind == _LINUX_FN:
            return  # Linux console F1-F5: no key here
        key = None
        if final == "~" and self._kind == _CSI:
            match = _TILDE_PARAMS.fullmatch(params)
            key = _TILDES.get(match.group(1)) if match else None
        elif _LETTER_PARAMS.fullmatch(params):
            key = _LETTERS.get(final)
        if key is not None:
            self._keys.append(key)


class LineEditor:
    """Edits one line at a time on a serial console; see the module docstring for the screen.

    `prompt` and `secret` may be changed between lines; set them before `start()`. In `secret`
    mode (password entry) nothing typed is echoed, not even a '*', Up/Down and Tab do nothing and
    the line is not put into `history`. `max_line` is in characters: past it, characters are
    refused with one BEL per overflow and Enter gives `Overlong` instead of `Line`.
    `complete(text_before_cursor)` returns full candidates for Tab, e.g. "sip re" ->
    ["sip register", "sip reset-log"].
    """

    def __init__(self, prompt: str = "> ", *, max_line: int = 1024, history_size: int = 100,
                 complete: Callable[[str], list[str]] | None = None) -> None:
        if max_line < 1 or history_size < 0:
            raise ValueError("max_line must be at least 1 and history_size not negative")
        self.prompt = prompt
        self.secret = False
        self._max_line = max_line
        self._history_size = history_size
        self._complete = complete
        self._decoder = KeyDecoder()
        self._history: list[str] = []
        self._buf: list[str] = []
        self._pos = 0
        self._refused = 0  # characters refused because the line was full
        self._rang = False  # BEL rung for the current overflow
        self._walk = 0  # the history entry shown; len(history): the line being typed
        self._draft: tuple[list[str], int] = ([], 0)  # line being typed, kept while walking
        self._shown: str | None = None  # the line as on screen after the prompt; None: hidden
        self._shown_pos = 0
        self._out: list[str] = []
        self._events: list[Event] = []
        self._actions: dict[Key, Callable[[], None]] = {
            Key.ENTER: self._enter, Key.INTERRUPT: self._interrupt, Key.CTRL_D: self._ctrl_d,
            Key.TAB: self._tab, Key.BACKSPACE: self._backspace, Key.DELETE: self._delete,
            Key.LEFT: self._left, Key.RIGHT: self._right, Key.HOME: self._home,
            Key.END: self._end, Key.UP: self._up, Key.DOWN: self._down,
            Key.KILL_START: self._kill_start, Key.KILL_END: self._kill_end,
            Key.KILL_WORD: self._kill_word, Key.REDRAW: self._redraw}

    @property
    def history(self) -> list[str]:
        """Lines entered, oldest first (a copy: changing it does not change the editor's)."""
        return list(self._history)

    def clear_history(self) -> None:
        """Forget the lines entered (a logout)."""
        self._history.clear()
        self._walk = 0
        self._draft = ([], 0)

    def feed(self, data: bytes) -> tuple[bytes, list[Event]]:
        """Process received bytes; returns what to write back (echo, redraws) and what happened.

        While no prompt is shown (before `start()`, and after each event until the next
        `start()`) typing goes into the line unechoed; `start()` shows it. Lines finished then,
        e.g. several pasted at once, are delivered as events without having been echoed.
        """
        for key in self._decoder.feed(data):
            if isinstance(key, str):
                self._insert(key)
            else:
                self._actions[key]()
        self._render()
        out, events = "".join(self._out).encode(), self._events
        self._out, self._events = [], []
        return out, events

    def start(self) -> bytes:
        """The prompt and anything typed ahead, to write at the start of a line when a prompt
        is due; from then on typing is echoed."""
        return self._draw().encode()

    def reset(self) -> bytes:
        """Drop the partial line and any partial input (e.g. after a serial break); returns a
        new line and the prompt to write."""
        self._decoder.reset()
        self._new_line()
        return (CRLF + self._draw()).encode()

    # -- the screen ---------------------------------------------------------------------------

    def _draw(self) -> str:
        """Prompt and line from the start of a screen line, cursor put back where it belongs."""
        text, pos = self._visible()
        self._shown, self._shown_pos = text, pos
        return _only_printable(self.prompt) + text + BS * (len(text) - pos)

    def _visible(self) -> tuple[str, int]:
        """What the screen should show after the prompt, and the cursor in it."""
        if self.secret:
            return "", 0
        return "".join(self._buf), self._pos

    def _render(self) -> None:
        """Bring the screen from what it shows to the line as it is now, with BS and rewrites."""
        if self._shown is None:
            return
        text, pos = self._visible()
        old, cursor = self._shown, self._shown_pos
        if text == old:
            self._move(cursor, pos, text)
        else:
            start = _common_prefix(old, text)
            self._move(cursor, start, text)
            blank = max(0, len(old) - len(text))
            self._out.append(text[start:] + " " * blank + BS * (len(text) + blank - pos))
        self._shown, self._shown_pos = text, pos

    def _move(self, cursor: int, to: int, text: str) -> None:
        self._out.append(BS * (cursor - to) if to < cursor else text[cursor:to])

    def _bell(self) -> None:
        self._out.append(BEL)

    # -- the line -----------------------------------------------------------------------------

    def _insert(self, ch: str) -> None:
        if len(self._buf) >= self._max_line:
            self._refused += 1
            if not self._rang:
                self._bell()
                self._rang = True
            return
        self._buf.insert(self._pos, ch)
        self._pos += 1
        self._rang = False

    def _cut(self, start: int, end: int) -> None:
        """Delete characters start..end, leaving the cursor at start."""
        del self._buf[start:end]
        self._pos = start
        if not self._buf:
            self._refused = 0  # an emptied line is a fresh start, not an overlong one

    def _set_line(self, chars: list[str], refused: int) -> None:
        self._buf, self._pos, self._refused = list(chars), len(chars), refused

    def _new_line(self) -> None:
        """Forget the line: nothing typed, nothing shown, history walk back at the end."""
        self._set_line([], 0)
        self._rang = False
        self._walk = len(self._history)
        self._draft = ([], 0)
        self._shown = None

    def _remember(self, text: str) -> None:
        if self.secret or not text.strip() or self._history[-1:] == [text]:
            return
        self._history.append(text)
        del self._history[:max(0, len(self._history) - self._history_size)]

    # -- keys ---------------------------------------------------------------------------------

    def _enter(self) -> None:
        self._finish_line(CRLF)
        if self._refused:
            self._events.append(Overlong(len(self._buf) + self._refused))
        else:
            text = "".join(self._buf)
            self._events.append(Line(text))
            self._remember(text)
        self._new_line()

    def _finish_line(self, ending: str, *, hidden_too: bool = False) -> None:
        """Put the cursor after the text, then write `ending` if the line is shown (or
        `hidden_too`)."""
        self._pos = len(self._buf)
        self._render()
        if self._shown is not None or hidden_too:
            self._out.append(ending)

    def _interrupt(self) -> None:
        self._finish_line("^C" + CRLF, hidden_too=True)  # feedback even while a command runs
        self._events.append(Interrupt())
        self._new_line()

    def _ctrl_d(self) -> None:
        if self._buf:
            self._delete()
            return
        self._finish_line(CRLF)
        self._events.append(EndOfInput())
        self._new_line()

    def _backspace(self) -> None:
        if self._pos > 0:
            self._cut(self._pos - 1, self._pos)

    def _delete(self) -> None:
        if self._pos < len(self._buf):
            self._cut(self._pos, self._pos + 1)

    def _left(self) -> None:
        self._pos = max(0, self._pos - 1)

    def _right(self) -> None:
        self._pos = min(len(self._buf), self._pos + 1)

    def _home(self) -> None:
        self._pos = 0

    def _end(self) -> None:
        self._pos = len(self._buf)

    def _kill_start(self) -> None:
        self._cut(0, self._pos)

    def _kill_end(self) -> None:
        self._cut(self._pos, len(self._buf))

    def _kill_word(self) -> None:
        start = self._pos
        while start > 0 and self._buf[start - 1].isspace():
            start -= 1
        while start > 0 and not self._buf[start - 1].isspace():
            start -= 1
        self._cut(start, self._pos)

    def _redraw(self) -> None:
        if self._shown is not None:
            self._out.append(CRLF + self._draw())

    def _up(self) -> None:
        if self.secret or self._walk == 0:
            return
        if self._walk == len(self._history):
            self._draft = (list(self._buf), self._refused)
        self._walk -= 1
        self._set_line(list(self._history[self._walk]), 0)

    def _down(self) -> None:
        if self.secret or self._walk >= len(self._history):
            return
        self._walk += 1
        if self._walk == len(self._history):
            self._set_line(*self._draft)
        else:
            self._set_line(list(self._history[self._walk]), 0)

    def _tab(self) -> None:
        if self._complete is None or self.secret or self._shown is None:
            return
        before = "".join(self._buf[:self._pos])
        try:
            found = self._complete(before)
        except Exception:
            log.exception("completing %r failed", before)
            self._bell()
            return
        candidates = [c for c in dict.fromkeys(_only_printable(c) for c in found) if c]
        if not candidates:
            self._bell()
        elif len(candidates) == 1:
            only = candidates[0]
            self._complete_to(only if only.endswith(" ") else only + " ")
        else:
            prefix = candidates[0][:min(_common_prefix(candidates[0], c) for c in candidates)]
            if len(prefix) > len(before):
                self._complete_to(prefix)
            else:
                self._list(candidates)

    def _complete_to(self, text: str) -> None:
        """Replace the text before the cursor with `text` (BEL if the line would be too long)."""
        if len(self._buf) - self._pos + len(text) > self._max_line:
            self._bell()
            return
        self._buf[:self._pos] = list(text)
        self._pos = len(text)

    def _list(self, candidates: list[str]) -> None:
        rows: list[str] = []
        for candidate in candidates:
            if rows and len(rows[-1]) + 2 + len(candidate) <= LIST_WIDTH:
                rows[-1] += "  " + candidate
            else:
                rows.append(candidate)
        self._out.append(CRLF + "".join(row + CRLF for row in rows) + self._draw())
