"""Phone numbers in one comparable form, for caller lookup and search.

`normalise_number()` turns the ways people write a Swedish number into one form:

    "08-123 45 67", "+46 8 123 45 67", "+46 (0)8 123 45 67", "0046 8 1234567",
    "tel:+4681234567", "sip:+4681234567@pbx.example.se"   ->  "081234567"

Spaces, dashes, dots, slashes and brackets go; a leading "00" becomes "+"; "+46" (the country
code, a parameter) becomes the national trunk prefix "0". Other countries keep "+": "+47 22 12
34 56" -> "+4722123456". Extensions ("4567") and service codes ("*21#") are left as they are.
"""

from __future__ import annotations

import re

COUNTRY_CODE = "46"
"""Sweden: numbers starting +46 are stored and matched in national form, 0..."""

_SCHEME = re.compile(r"^(?:tel|sips?):", re.IGNORECASE)
_TRUNK_IN_BRACKETS = re.compile(r"\(0\)")
_SEPARATORS = re.compile(r"[\s\-./()\[\]\u00a0\u2010-\u2015]+")
_DIALABLE = re.compile(r"\+?[*#]*[0-9][0-9*#]*")
_NOT_DIGIT = re.compile(r"[^0-9]+")
_PLAIN = re.compile(r"[0-9]+")


def normalise_number(value: str, *, country_code: str = COUNTRY_CODE) -> str:
    """The comparable form of a number (see the module docstring); "" when nothing is left."""
    if _PLAIN.fullmatch(value):
        return value
    number = _SCHEME.sub("", value.strip())
    number = number.split("@", 1)[0].split(";", 1)[0]
    number = _SEPARATORS.sub("", _TRUNK_IN_BRACKETS.sub("", number))
    if number.startswith("00"):
        number = "+" + number[2:]
    prefix = "+" + country_code
    if country_code and number.startswith(prefix):
        national = number[len(prefix):]
        number = national if national.startswith("0") else "0" + national
    return number


def is_dialable(normalised: str) -> bool:
    """True for digits with an optional leading + and any * and #, with at least one digit."""
    return _DIALABLE.fullmatch(normalised) is not None


def digits_of(normalised: str) -> str:
    """Only the digits: what a number search on the keypad compares with."""
    return _NOT_DIGIT.sub("", normalised)
