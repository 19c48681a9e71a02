"""The dial plan: a digit map that says when a number being dialled is complete.

Syntax (as on Cisco/Yealink/Snom phones, after MGCP digit maps, RFC 3435 2.1.5): alternatives
separated by `|`; `0`-`9`, `*`, `#` match themselves; `x` matches any digit; `[1-5]` or `[135]`
a set; `.` repeats the element before it zero or more times; a trailing `T` means "complete only
once the interdigit timer runs out". Example: `112|555|[1-9]xxx|0[1-9]x.T`.
The first alternative that matches in full completes the number (so `112` dials at once even
though `1xxx` could still match `1120`): order and choose alternatives with that in mind.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass


class Match(enum.Enum):
    COMPLETE = "complete"  # dial now
    PARTIAL = "partial"  # more digits may follow; wait (complete on timeout if TIMER says so)
    NONE = "none"  # no alternative can ever match


@dataclass(frozen=True)
class Verdict:
    match: Match
    on_timeout: bool  # True: when the interdigit timer runs out, the number is complete


class DialPlanError(ValueError):
    pass


_ELEMENT = re.compile(r"\[[0-9*#\-]+\]|[0-9*#xX]")


@dataclass(frozen=True)
class _Alternative:
    pattern: re.Pattern[str]
    prefix_pattern: re.Pattern[str]
    timer: bool
    source: str


def _element_regex(element: str) -> str:
    if element in ("x", "X"):
        return "[0-9]"
    if element.startswith("["):
        inner = element[1:-1].replace("*", r"\*").replace("#", r"\#")
        return f"[{inner}]"
    return re.escape(element)


def _compile(alt: str) -> _Alternative:
    timer = alt.endswith("T")
    body = alt[:-1] if timer else alt
    parts: list[str] = []
    pos = 0
    while pos < len(body):
        if body[pos] == ".":
            if not parts:
                raise DialPlanError(f"'.' must follow a digit or set in {alt!r}")
            parts[-1] = f"(?:{parts[-1]})*"
            pos += 1
            continue
        m = _ELEMENT.match(body, pos)
        if not m:
            raise DialPlanError(f"unexpected {body[pos]!r} at position {pos + 1} of {alt!r}")
        parts.append(_element_regex(m.group(0)))
        pos = m.end()
    if not parts:
        raise DialPlanError("empty alternative in dial plan")
    full = "".join(parts)
    # A string is a possible prefix of the alternative when some completion of it matches:
    # built from nested optional groups, element by element.
    prefix = ""
    for part in reversed(parts):
        prefix = f"(?:{part}{prefix})?" if not part.endswith(")*") else f"{part}(?:{prefix})?"
    return _Alternative(re.compile(full), re.compile(prefix), timer, alt)


class DialPlan:
    """A compiled digit map; `check(digits)` says whether to dial, wait, or give up."""

    def __init__(self, spec: str) -> None:
        problem = dial_plan_error(spec)
        if problem:
            raise DialPlanError(problem)
        self.spec = spec
        self._alts = [_compile(a.strip()) for a in spec.split("|")]

    def check(self, digits: str) -> Verdict:
        """As in MGCP digit maps, the first alternative that matches in full (without `T`)
        completes the number at once, even when a longer one could still match."""
        if any(a.pattern.fullmatch(digits) and not a.timer for a in self._alts):
            return Verdict(Match.COMPLETE, True)
        on_timeout = any(a.pattern.fullmatch(digits) for a in self._alts)
        if on_timeout or any(a.prefix_pattern.fullmatch(digits) for a in self._alts):
            return Verdict(Match.PARTIAL, on_timeout)
        return Verdict(Match.NONE, False)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


_DIAL_PLAN_CHARS = frozenset("0123456789*#xX[]-.T|")


def dial_plan_error(plan: str) -> str | None:
    """Why ``plan`` is not a valid digit map, or None when it is one."""
    if not plan:
        return "must not be empty"
    bad = next((char for char in plan if char not in _DIAL_PLAN_CHARS), None)
    if bad is not None:
        return f"character {_quote(bad)} is not allowed; use only 0-9 * # x X [ ] - . T |"
    for number, alternative in enumerate(plan.split("|"), 1):
        problem = _alternative_error(alternative)
        if problem:
            return f"alternative {number} ({_quote(alternative)}): {problem}"
    return None


def _alternative_error(alternative: str) -> str | None:
    """Why one ``|``-separated alternative of a digit map is invalid, or None."""
    if not alternative:
        return "is empty"
    previous = ""  # "", "element" or "."
    index = 0
    while index < len(alternative):
        char = alternative[index]
        if char == "[":
            end = alternative.find("]", index)
            if end < 0:
                return "'[' without ']'"
            problem = _digit_set_error(alternative[index + 1:end])
            if problem:
                return problem
            index, previous = end + 1, "element"
            continue
        problem = _element_error(char, previous, index == len(alternative) - 1)
        if problem:
            return problem
        index, previous = index + 1, "." if char == "." else "element"
    return None


def _element_error(char: str, previous: str, is_last: bool) -> str | None:
    """Why ``char`` cannot stand here in an alternative (outside brackets), or None."""
    if char == "]":
        return "']' without '['"
    if char == "-":
        return "'-' is only allowed inside [...]"
    if char == "." and previous != "element":
        return "'.' must follow a digit, x or [...]"
    if char == "T" and not is_last:
        return "'T' may only end an alternative"
    if char == "T" and not previous:
        return "'T' must follow at least one digit, x or [...]"
    return None


def _digit_set_error(body: str) -> str | None:
    """Why the inside of ``[...]`` is not digits and ranges like ``1-5``, or None."""
    if not body:
        return "'[]' is empty"
    for item in re.findall(r".-.|.", body):
        if "[" in item:
            return "'[' inside [...]"
        if len(item) == 3 and not (item[0].isdigit() and item[2].isdigit() and item[0] <= item[2]):
            return f"range {_quote(item)} in [...] must be two digits in order, e.g. 1-5"
        if len(item) == 1 and item not in "0123456789*#":
            return (f"{_quote(item)} is not allowed inside [...]; "
                    "use digits, * # and ranges like 1-5")
    return None
