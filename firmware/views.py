"""Lists on a small screen: the call history, directory results, a contact card, menus.

A `ListView` is pure state: a title, items and a cursor. The terminal shows the top view of
its stack while no call needs the screen, and hands it the keys; a view answers each key with
an `Outcome` (nothing, close, open another view, or an action for the terminal to carry out,
such as dialling a number). Rendering fits any text grid: the title on the first row, then as
many items as fit, the selected one marked with ">".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _fit(left: str, right: str, width: int) -> str:
    if not right:
        return left[:width]
    room = width - len(right) - 1
    return (left[:room].ljust(room) + " " + right)[:width]
