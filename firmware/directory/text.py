"""Letters: accent folding, name words, the Swedish T9 keypad and Swedish alphabetical order.

The keypad (what is printed on a Swedish phone's keys; the first letters are the T9 and
multi-tap letters, the rest fold onto them):

    2  a b c å ä   (à á â ã æ ç)
    3  d e f é     (è ê ë)
    4  g h i       (ì í î ï)
    5  j k l
    6  m n o ö     (ò ó ô õ ø ñ)
    7  p q r s     (ß š)
    8  t u v ü     (ù ú û)
    9  w x y z     (ý ÿ ž)

A digit in a name is on its own key. Other characters (punctuation, letters outside the Latin
alphabet) are on no key: they are left out of a word's key sequence.

Alphabetical order is Swedish: a-z, then å, ä, ö; æ sorts as ä, ø as ö and ü as y; other
accented letters sort with their base letter (é with e), just after it on a tie.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

T9_KEYS: dict[str, str] = {
    "2": "abcåä", "3": "defé", "4": "ghi", "5": "jkl", "6": "mnoö",
    "7": "pqrs", "8": "tuvü", "9": "wxyz",
}
"""Key -> the letters printed on it (Swedish keypad). Accented letters fold (see fold())."""

_SPECIAL = {"æ": "ae", "ø": "o", "ß": "ss", "đ": "d", "ð": "d", "ł": "l", "þ": "th",
            "œ": "oe", "ı": "i"}
_SV_ORDER = {"å": "{", "ä": "|", "æ": "|", "ö": "}", "ø": "}", "ü": "y"}  # '{|}' sort after z
_WORD_SPLIT = re.compile(r"[^\w]+")
_APOSTROPHES = re.compile(r"['’`´]")


def _fold_char(char: str) -> str:
    if char in _SPECIAL:
        return _SPECIAL[char]
    return "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))


class _Table(dict[int, "str | None"]):
    """A str.translate() table that works out (and remembers) each character the first time."""

    def __init__(self, rule: Callable[[str], str | None]) -> None:
        super().__init__()
        self.rule = rule

    def __missing__(self, codepoint: int) -> str | None:
        self[codepoint] = value = self.rule(chr(codepoint))
        return value


def _key_of(char: str) -> str | None:
    if "0" <= char <= "9":
        return char
    letters = _fold_char(char)
    return "".join(key for c in letters for key, on in T9_KEYS.items() if c in on) or None


_FOLD = _Table(_fold_char)
_T9 = _Table(_key_of)
_ORDER = _Table(lambda char: _SV_ORDER.get(char) or _fold_char(char))


def clean(text: str) -> str:
    """NFC-normalised text with runs of whitespace collapsed to one space, trimmed."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def clean_note(text: str) -> str:
    """NFC-normalised free text, trimmed; line breaks kept."""
    return unicodedata.normalize("NFC", text).strip()


def fold(text: str) -> str:
    """Lower case without accents, for matching: "Åsa Öberg-Müller" -> "asa oberg-muller"."""
    low = text.casefold()
    return low if low.isascii() else low.translate(_FOLD)


def words(name: str) -> list[str]:
    """The folded words of a name: split at spaces, hyphens and punctuation; apostrophes dropped.

    "Anna-Karin O'Brien" -> ["anna", "karin", "obrien"].
    """
    return [w for w in _WORD_SPLIT.split(_APOSTROPHES.sub("", fold(name))) if w]


def t9(word: str) -> str:
    """The key sequence that types `word` in T9: "Öberg" -> "62374"."""
    return word.casefold().translate(_T9)


def sort_key(name: str) -> tuple[str, str, str]:
    """Key for Swedish alphabetical order: ... x y z å ä ö, case and accents only break ties."""
    low = name.casefold()
    return low.translate(_ORDER), low, name
