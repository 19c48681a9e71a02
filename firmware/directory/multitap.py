"""Multi-tap text entry: key presses become letters, as on a Swedish mobile phone keypad.

Pressing a key cycles through its characters; the character is kept when another key is
pressed, or when `timeout` seconds (default 1.0) pass without a press (the caller drives time:
every method takes `now`, from the phone's clock; `tick(now)` commits on time-out).

    1  . , ? ! ' - & @ / : 1      6  m n o ö 6
    2  a b c å ä 2                7  p q r s 7
    3  d e f é 3                  8  t u v ü 8
    4  g h i 4                    9  w x y z 9
    5  j k l 5                    0  0 +
    #  space                      *  next mode: Abc -> abc -> ABC -> 123 -> Abc

Modes: "Abc" (the default) writes a capital at the start of the text and after a space or a
hyphen, small letters elsewhere ("Anna-Karin Öberg"); "abc" all small; "ABC" all capitals;
"123" types the digit on each key at once (0-9; `#` is still a space).
"""

from __future__ import annotations

MULTITAP_KEYS: dict[str, str] = {
    "1": ".,?!'-&@/:1", "2": "abcåä2", "3": "defé3", "4": "ghi4", "5": "jkl5",
    "6": "mnoö6", "7": "pqrs7", "8": "tuvü8", "9": "wxyz9", "0": "0+",
}
MODES = ("Abc", "abc", "ABC", "123")


class MultiTap:
    """The text being typed; `text` includes the character still cycling (`pending`)."""

    def __init__(self, text: str = "", *, timeout: float = 1.0, mode: str = "Abc") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.committed = text
        self.timeout = timeout
        self.mode = mode
        self._key = ""
        self._presses = 0
        self._last = 0.0

    @property
    def pending(self) -> str:
        """The character the last key is cycling through ("" when none): show it underlined."""
        if not self._key:
            return ""
        letters = MULTITAP_KEYS[self._key]
        return self._cased(letters[(self._presses - 1) % len(letters)])

    @property
    def text(self) -> str:
        """Everything typed so far, the pending character included."""
        return self.committed + self.pending

    def press(self, key: str, now: float) -> str:
        """One key press at time `now` (seconds); returns `text`. Keys: 0-9, * and #."""
        if len(key) != 1 or key not in "0123456789*#":
            raise ValueError(f"not a keypad key: {key!r}")
        same = key == self._key and now - self._last < self.timeout
        if not same:
            self.commit()
        if key == "*":
            self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        elif key == "#":
            self.committed += " "
        elif self.mode == "123":
            self.committed += key
        else:
            self._key, self._last = key, now
            self._presses = self._presses + 1 if same else 1
        return self.text

    def tick(self, now: float) -> bool:
        """Commit the pending character if `timeout` has passed since its key; True if so."""
        if self._key and now - self._last >= self.timeout:
            self.commit()
            return True
        return False

    def commit(self) -> None:
        """Keep the pending character now."""
        self.committed += self.pending
        self._key, self._presses = "", 0

    def backspace(self) -> str:
        """Drop the pending character, or else the last one typed; returns `text`."""
        if self._key:
            self._key, self._presses = "", 0
        else:
            self.committed = self.committed[:-1]
        return self.text

    def clear(self) -> None:
        """Start again with no text (the mode stays)."""
        self.committed, self._key, self._presses = "", "", 0

    def _cased(self, char: str) -> str:
        if self.mode == "ABC":
            return char.upper()
        starts_word = not self.committed or self.committed[-1] in " -"
        return char.upper() if self.mode == "Abc" and starts_word else char
