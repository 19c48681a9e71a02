"""The phone's lists, built on `firmware.views`: call history, and the menus that follow.

Keys in the history (docs/people.md): up/down move, ok calls the number back, left shows all
calls or only missed ones, right shows the call's details (number, line, date and time,
duration), # deletes the selected call, * deletes them all (after an ok).
Opening the history marks the missed calls seen: the missed-call count and LED go out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from firmware.directory import Contact, Directory, MultiTap, PersonalContacts
from firmware.history import HistoryEntry, HistoryStore
from firmware.texts import text
from firmware.views import NOTHING, UNHANDLED, Item, ListView, Outcome

HISTORY_SHOWN = 100
KIND_MARK = {"missed": "!", "received": "<", "dialed": ">"}


class ConfirmView(ListView):
    """"Delete all?": ok does it, cancel goes back."""

    def __init__(self, title: str, question: str, then: Callable[[], Outcome]) -> None:
        super().__init__(title, [Item(question)])
        self._then = then

    def key(self, name: str) -> Outcome:
        if name == "ok":
            outcome = self._then()
            outcome.close = True
            return outcome
        if name == "cancel":
            return Outcome(close=True)
        return NOTHING


class HistoryView(ListView):
    """Missed, received and dialled calls, newest first."""

    def __init__(self, store: HistoryStore, language: str, tz: tzinfo,
                 name_for: Callable[[str], str | None] | None = None) -> None:
        super().__init__(text("history", language), empty_text=text("no_calls", language))
        self.store, self.language, self.tz, self.name_for = store, language, tz, name_for
        self.missed_only = False
        self.on_select = self._call_back
        self.reload()
        store.mark_seen(self.items[0].value.id if self.items else None)

    def reload(self) -> None:
        entries = self.store.list("missed" if self.missed_only else None, HISTORY_SHOWN,
                                  name_for=self.name_for)
        self.set_items([self._item(e) for e in entries])

    def _item(self, entry: HistoryEntry) -> Item:
        local = entry.started.astimezone(self.tz)
        when = local.strftime("%H:%M") if local.date() == datetime.now(self.tz).date() \
            else local.strftime("%d/%m")
        return Item(KIND_MARK.get(entry.kind, " ") + (entry.name or entry.number), entry, when)

    def header(self, width: int) -> str:
        key = "history_missed" if self.missed_only else "history"
        return text(key, self.language)[:width]

    def _call_back(self, item: Item) -> Outcome:
        return Outcome(act=("dial", item.value.number))

    def other_key(self, name: str) -> Outcome:
        if name == "left":
            self.missed_only = not self.missed_only
            self.cursor = 0
            self.reload()
        elif name == "right" and self.selected is not None:
            return Outcome(push=self._details(self.selected.value))
        elif name == "#" and self.selected is not None:
            self.store.delete(self.selected.value.id)
            self.reload()
        elif name == "*" and self.items:
            return Outcome(push=ConfirmView(self.header(40), text("delete_all", self.language),
                                            self._delete_all))
        else:
            return UNHANDLED
        return NOTHING

    def _details(self, entry: HistoryEntry) -> ListView:
        local = entry.started.astimezone(self.tz)
        minutes, seconds = divmod(round(entry.duration_s), 60)
        view = ListView(entry.name or entry.number,
                        on_select=lambda item: Outcome(act=("dial", entry.number)))
        view.set_items([Item(entry.number, entry.number),
                        Item(f"{text('kind_' + entry.kind, self.language)} "
                             f"{text('line_word', self.language)} {entry.line + 1}"),
                        Item(local.strftime("%Y-%m-%d %H:%M")),
                        Item(f"{minutes}:{seconds:02d}")])
        return view

    def _delete_all(self) -> Outcome:
        self.store.clear("missed" if self.missed_only else None)
        self.reload()
        return Outcome()


class DirectoryView(ListView):
    """Search as you type: digits search names (T9: one press per letter) and numbers; left or
    right switches to letters typed by multi-tap (2 = a, 22 = b ...; # is a space). With
    nothing typed, the favourites. cancel deletes the last key, then closes; ok opens the
    contact card."""

    def __init__(self, directory: Directory, personal: PersonalContacts | None, language: str,
                 presence: Callable[[str], str] | None = None,
                 now: Callable[[], float] | None = None) -> None:
        super().__init__(text("directory", language), empty_text=text("no_match", language))
        self.directory, self.personal = directory, personal
        self.language, self.presence = language, presence
        self.now = now or (lambda: 0.0)
        self.query = ""
        self.letters: MultiTap | None = None  # multi-tap entry, when chosen
        self.on_select = self._open_card
        self.refresh()

    def refresh(self) -> None:
        if self.letters is not None:
            query = self.letters.text.strip()
            found = self.directory.search_text(query) if query else self.directory.favourites()
        else:
            found = self.directory.search_t9(self.query) if self.query else \
                self.directory.favourites()
        self.set_items([Item(("*" if c.favourite else "") + c.name, c) for c in found])

    def header(self, width: int) -> str:
        typed = self.letters.text if self.letters is not None else self.query
        mode = " (abc)" if self.letters is not None else ""
        title = f"{text('search', self.language)}{mode}: {typed}" if typed else \
            text("favourites", self.language) + mode
        return title[:width]

    def key(self, name: str) -> Outcome:
        if name == "cancel" and (self.query or (self.letters and self.letters.text)):
            if self.letters is not None:
                self.letters.backspace()
            else:
                self.query = self.query[:-1]
            self.cursor = 0
            self.refresh()
            return NOTHING
        return super().key(name)

    def other_key(self, name: str) -> Outcome:
        if name in ("left", "right"):
            self.letters = None if self.letters is not None else MultiTap()
            self.query, self.cursor = "", 0
        elif self.letters is not None and len(name) == 1 and name in "0123456789*#":
            self.letters.press(name, self.now())
            self.cursor = 0
        elif name.isdigit():
            self.query += name
            self.cursor = 0
        else:
            return UNHANDLED
        self.refresh()
        return NOTHING

    def _open_card(self, item: Item) -> Outcome:
        return Outcome(push=ContactCard(item.value, self.personal, self.language,
                                        self.presence))


class ContactCard(ListView):
    """One contact: every number (ok calls it), then company, department, note and what is
    known of their referral and line; * stars or unstars them."""

    def __init__(self, contact: Contact, personal: PersonalContacts | None, language: str,
                 presence: Callable[[str], str] | None = None) -> None:
        super().__init__(contact.name)
        self.contact, self.personal, self.language = contact, personal, language
        self.on_select = self._call
        items = [Item(f"{text('kind_' + n.kind, language)} {n.value}", n.value)
                 for n in contact.numbers]
        status = presence(contact.numbers[0].value) if presence and contact.numbers else ""
        items += [Item(line) for line in (status, contact.company, contact.department,
                                          contact.note) if line]
        self.set_items(items)

    def _call(self, item: Item) -> Outcome:
        return Outcome(act=("dial", item.value)) if item.value else NOTHING

    def other_key(self, name: str) -> Outcome:
        if name == "*" and self.personal is not None:
            self.personal.set_favourite(self.contact.id, not self.contact.favourite)
            return Outcome(close=True)
        return UNHANDLED
