"""Lists on a small screen: the call history, directory results, a contact card, menus.

A `ListView` is pure state: a title, items and a cursor. The terminal shows the top view of
its stack while no call needs the screen, and hands it the keys; a view answers each key with
an `Outcome` (nothing, close, open another view, or an action for the terminal to carry out,
such as dialling a number). Rendering fits any text grid: the title on the first row, then as
many items as fit, the selected one marked with ">".

Two views every list uses: `NoticeView` (why something was not saved, over the list) and
`TextEntry` (one line typed by multi-tap, `firmware.directory.multitap`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from board.keys import DIGITS
from firmware.directory.multitap import MultiTap

Action = tuple[str, Any]  # e.g. ("dial", "1002"), ("transfer_to", "1003")


@dataclass
class Outcome:
    """What a key did: `close` the view, `push` another, or ask the terminal to `act`."""

    close: bool = False
    push: ListView | None = None
    act: Action | None = None
    handled: bool = True


NOTHING = Outcome()
UNHANDLED = Outcome(handled=False)


@dataclass
class Item:
    label: str
    value: Any = None
    detail: str = ""  # a right-aligned short text (a time, a count)


@dataclass
class ListView:
    """A titled, scrollable list; subclasses react to keys beyond the common ones."""

    title: str
    items: list[Item] = field(default_factory=list)
    cursor: int = 0
    empty_text: str = "-"
    on_select: Callable[[Item], Outcome] | None = None

    @property
    def selected(self) -> Item | None:
        return self.items[self.cursor] if self.items else None

    def set_items(self, items: Sequence[Item]) -> None:
        self.items = list(items)
        self.cursor = min(self.cursor, max(0, len(self.items) - 1))

    def key(self, name: str) -> Outcome:
        """Up/down move, ok selects, cancel closes; anything else goes to `other_key`."""
        if name == "up":
            self.cursor = max(0, self.cursor - 1)
        elif name == "down":
            self.cursor = min(max(0, len(self.items) - 1), self.cursor + 1)
        elif name == "cancel":
            return Outcome(close=True)
        elif name == "ok":
            item = self.selected
            if item is None or self.on_select is None:
                return NOTHING
            return self.on_select(item)
        else:
            return self.other_key(name)
        return NOTHING

    def other_key(self, name: str) -> Outcome:
        return UNHANDLED

    def rows(self, width: int, height: int) -> list[str]:
        """The title, then the items around the cursor."""
        rows = [self.header(width)]
        space = max(1, height - 1)
        if not self.items:
            return [*rows, self.empty_text[:width]]
        first = min(max(0, self.cursor - space // 2), max(0, len(self.items) - space))
        for index in range(first, min(len(self.items), first + space)):
            item = self.items[index]
            mark = ">" if index == self.cursor else " "
            rows.append(_fit(mark + item.label, item.detail, width))
        return rows

    def header(self, width: int) -> str:
        return self.title[:width]


class NoticeView(ListView):
    """A message over the list (why a change was not saved); ok, cancel, left or right close
    it, keypad keys do nothing (they must not start dialling), menu closes every list."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(title, [Item(message)])
        self.message = message

    def key(self, name: str) -> Outcome:
        if name in ("ok", "cancel", "left", "right"):
            return Outcome(close=True)
        if name in ("up", "down"):
            return NOTHING
        return common_key(name)

    def rows(self, width: int, height: int) -> list[str]:
        lines = textwrap.wrap(self.message, width) or [""]
        return [self.title[:width], *lines[:max(1, height - 1)]]


class TextEntry(ListView):
    """One line typed by multi-tap, starting from `text`; the mode (Abc, abc, ABC, 123) on the
    title row. 0-9 type, * changes the mode, # is a space; right keeps the letter still
    cycling; cancel or left deletes, and with nothing left goes back without saving; ok hands
    the text to `on_save`, whose outcome (close, or a notice) is the key's."""

    def __init__(self, title: str, now: Callable[[], float],
                 on_save: Callable[[str], Outcome], text: str = "") -> None:
        super().__init__(title)
        self.now, self.on_save = now, on_save
        self.tap = MultiTap(text)

    @property
    def text(self) -> str:
        return self.tap.text

    def key(self, name: str) -> Outcome:
        now = self.now()
        self.tap.tick(now)
        if name in DIGITS:
            self.tap.press(name, now)
        elif name in ("cancel", "left"):
            if not self.tap.text:
                return Outcome(close=True)
            self.tap.backspace()
        elif name == "right":
            self.tap.commit()
        elif name == "ok":
            self.tap.commit()
            return self.on_save(self.tap.text)
        elif name not in ("up", "down"):
            return common_key(name)
        return NOTHING

    def rows(self, width: int, height: int) -> list[str]:
        self.tap.tick(self.now())
        shown = self.tap.text + ("" if self.tap.pending else "_")
        lines = [shown[i:i + width] for i in range(0, len(shown), width)] or [""]
        return [fit_right(self.title, self.tap.mode, width), *lines[-max(1, height - 1):]]


def common_key(name: str) -> Outcome:
    """Keys menus and editors treat alike: menu closes every list, keypad keys do nothing
    (they must not start dialling under a menu); the rest is the terminal's."""
    if name == "menu":
        return Outcome(act=("close_all", None))
    return NOTHING if name in DIGITS else UNHANDLED


def fit_right(left: str, right: str, width: int) -> str:
    """`left` and `right` on one row of `width`, `right` at the end: `left` is cut to make room
    (a mark or mode on a title row stays visible); `left` alone without `right`."""
    if not right:
        return left[:width]
    room = width - len(right) - 1
    if room < 1:
        return left[:width]
    return (left[:room].ljust(room) + " " + right)[:width]


def _fit(left: str, right: str, width: int) -> str:
    if not right:
        return left[:width]
    room = width - len(right) - 1
    return (left[:room].ljust(room) + " " + right)[:width]
