"""The phone's lists, built on `firmware.views`: call history, the directory and the user's
own contacts and groups.

Keys in the history (docs/people.md): up/down move, ok calls the number back, left shows all
calls or only missed ones, right shows the call's details (number, line, date and time,
duration), # deletes the selected call, * deletes them all (after an ok).
Opening the history marks the missed calls seen: the missed-call count and LED go out.

Keys in the directory and on contact cards (docs/directory.md, "On the phone"): digits search;
with nothing typed the favourites come first, then *New contact...* and *Groups...*. On a card
ok calls the selected number, * stars, # makes a VIP; an own contact's card ends with *Edit*,
*Groups* and *Delete*, a company contact's with *Save to mine* (the company directory itself
is read-only). Every change goes through `PersonalContacts`, saved atomically at once; a change
that cannot be saved is a notice over the list ("Not saved" and why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from board.keys import DIGITS
from firmware.directory import (
    Contact,
    Directory,
    MultiTap,
    Number,
    PersonalContacts,
    normalise_number,
    sort_key,
)
from firmware.directory.numbers import is_dialable
from firmware.history import HistoryEntry, HistoryStore
from firmware.texts import text
from firmware.views import (
    NOTHING,
    UNHANDLED,
    Item,
    ListView,
    NoticeView,
    Outcome,
    TextEntry,
    common_key,
    fit_right,
)

HISTORY_SHOWN = 100
KIND_MARK = {"missed": "!", "received": "<", "dialed": ">"}
NUMBER_MAX = 32
"""Characters of a number typed into a contact on the phone."""
FORM_KINDS = ("work", "mobile")
"""The number fields a new contact's form offers (an edited one: its own numbers, and these)."""


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


@dataclass
class Book:
    """What the directory's views share: the directory (company and own contacts), the user's
    own contacts (None: the phone keeps none, so nothing can be added or marked), the
    language, colleagues' presence and the phone's clock (for multi-tap)."""

    directory: Directory
    personal: PersonalContacts | None
    language: str
    presence: Callable[[str], str] | None = None
    now: Callable[[], float] = lambda: 0.0

    @property
    def revision(self) -> int:
        """Grows with every saved change of the own contacts (lists rebuild on it)."""
        return self.personal.revision if self.personal is not None else 0

    def say(self, key: str, **values: object) -> str:
        words = text(key, self.language)
        return words.format(**values) if values else words

    def not_saved(self, message: str) -> Outcome:
        """A notice "Not saved" with `message` over the list."""
        return Outcome(push=NoticeView(self.say("not_saved"), message))

    def save_failed(self, error: OSError) -> Outcome:
        return self.not_saved(self.say("save_failed", reason=error.strerror or str(error)))


def contact_item(contact: Contact) -> Item:
    """A contact in a list: * before a favourite's name, VIP on the right."""
    return Item(("*" if contact.favourite else "") + contact.name, contact,
                "VIP" if contact.vip else "")


class BookList(ListView):
    """A list drawn from the directory, rebuilt (`refresh`) whenever the own contacts change,
    so it never shows a contact deleted or changed further up. ok on a contact opens its card;
    an item whose value is a function (an action such as "New contact...") runs it."""

    def __init__(self, title: str, book: Book, empty_text: str = "") -> None:
        super().__init__(title, empty_text=empty_text or book.say("no_contacts"))
        self.book = book
        self.on_select = self.select
        self._revision = book.revision

    def refresh(self) -> None:
        """Rebuild the items (subclasses)."""

    def rows(self, width: int, height: int) -> list[str]:
        self._fresh()
        return super().rows(width, height)

    def key(self, name: str) -> Outcome:
        self._fresh()
        return super().key(name)

    def other_key(self, name: str) -> Outcome:
        return NOTHING if name in DIGITS else UNHANDLED  # keypad keys do not start a call

    def select(self, item: Item) -> Outcome:
        if isinstance(item.value, Contact):
            return Outcome(push=ContactCard(item.value, self.book))
        if callable(item.value):
            outcome: Outcome = item.value()
            return outcome
        return NOTHING

    def _fresh(self) -> None:
        if self.book.revision != self._revision:
            self._revision = self.book.revision
            self.refresh()

    def _actions(self) -> list[Item]:
        """"New contact..." and "Groups..." where the phone keeps own contacts."""
        if self.book.personal is None:
            return []
        return [Item(self.book.say("new_contact") + "...", self._new_contact),
                Item(self.book.say("groups") + "...", self._groups)]

    def _new_contact(self) -> Outcome:
        return Outcome(push=ContactForm(self.book))

    def _groups(self) -> Outcome:
        return Outcome(push=GroupsView(self.book))


class DirectoryView(BookList):
    """Search as you type: digits search names (T9: one press per letter) and numbers; left or
    right switches to letters typed by multi-tap (2 = a, 22 = b ...; # is a space). With
    nothing typed, the favourites, then "New contact..." and "Groups..." (where the phone keeps
    own contacts). cancel deletes the last key, then closes; ok opens the contact card."""

    def __init__(self, directory: Directory, personal: PersonalContacts | None, language: str,
                 presence: Callable[[str], str] | None = None,
                 now: Callable[[], float] | None = None) -> None:
        book = Book(directory, personal, language, presence, now or (lambda: 0.0))
        super().__init__(text("directory", language), book, text("no_match", language))
        self.directory, self.personal = directory, personal
        self.language, self.presence, self.now = language, presence, book.now
        self.query = ""
        self.letters: MultiTap | None = None  # multi-tap entry, when chosen
        self.refresh()

    def refresh(self) -> None:
        if self.letters is not None:
            query = self.letters.text.strip()
            found = self.directory.search_text(query) if query else None
        else:
            found = self.directory.search_t9(self.query) if self.query else None
        if found is None:  # nothing typed
            self.set_items([contact_item(c) for c in self.directory.favourites()]
                           + self._actions())
        else:
            self.set_items([contact_item(c) for c in found])

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


class ContactCard(ListView):
    """One contact: every number (ok calls it), then company, department, note and what is
    known of their referral and line. The title shows * (a favourite) and VIP; * stars or
    unstars, # makes a VIP (rings through do not disturb) or not, on own and company contacts
    alike. At the end, an own contact's *Edit*, *Groups: ...* and *Delete* (which asks: ok
    deletes, cancel keeps); a company contact's *Save to mine* (an own copy to change)."""

    def __init__(self, contact: Contact, book: Book) -> None:
        super().__init__(contact.name)
        self.contact, self.book = contact, book
        self.on_select = self._select
        self.asking = False  # "Delete? OK" is shown
        self._asked_at = 0  # where the cursor was (on "Delete")
        self._revision = book.revision
        self.build()

    def build(self) -> None:
        contact, book = self.contact, self.book
        items = [Item(f"{book.say('kind_' + n.kind)} {n.value}", n.value)
                 for n in contact.numbers]
        status = book.presence(contact.numbers[0].value) if book.presence and contact.numbers \
            else ""
        # a colleague's referral and note ("Lunch until 13:00 – Hämtar barn"): a row each
        items += [Item(line.strip()) for line in (*status.split(" – "), contact.company,
                                                  contact.department, contact.note)
                  if line.strip()]
        if book.personal is not None and contact.source == "personal":
            groups = ", ".join(contact.groups) or "-"
            items += [Item(book.say("contact_edit"), self._edit),
                      Item(f"{book.say('groups')}: {groups}", self._groups),
                      Item(book.say("contact_delete"), self._ask)]
        elif book.personal is not None:
            items.append(Item(book.say("contact_copy"), self._copy))
        self.set_items(items)

    def header(self, width: int) -> str:
        if self.asking:
            return self.title[:width]
        marks = " ".join(mark for mark, on in (("*", self.contact.favourite),
                                               ("VIP", self.contact.vip)) if on)
        return fit_right(self.title, marks, width)

    def rows(self, width: int, height: int) -> list[str]:
        self._fresh()
        return super().rows(width, height)

    def key(self, name: str) -> Outcome:
        self._fresh()
        if self.asking:
            return self._answer(name)
        return super().key(name)

    def other_key(self, name: str) -> Outcome:
        personal = self.book.personal
        if personal is None or name not in ("*", "#"):
            return UNHANDLED
        try:
            if name == "*":
                personal.set_favourite(self.contact.id, not self.contact.favourite)
            else:
                personal.set_vip(self.contact.id, not self.contact.vip)
        except OSError as error:
            return self.book.save_failed(error)
        self._fresh()
        return NOTHING

    def _select(self, item: Item) -> Outcome:
        if isinstance(item.value, str):
            return Outcome(act=("dial", item.value))
        if callable(item.value):
            outcome: Outcome = item.value()
            return outcome
        return NOTHING

    def _fresh(self) -> None:
        """Show the contact as it is now (after a star, a VIP mark or an edit)."""
        if self.book.revision == self._revision:
            return
        self._revision = self.book.revision
        now = self.book.directory.get(self.contact.id)
        if now is not None and not self.asking:
            self.contact, self.title = now, now.name
            self.build()

    def _edit(self) -> Outcome:
        return Outcome(push=ContactForm(self.book, self.contact))

    def _groups(self) -> Outcome:
        return Outcome(push=GroupPicker(self.book, self.contact.id))

    def _ask(self) -> Outcome:
        self.asking, self._asked_at = True, self.cursor
        self.cursor = 0
        self.set_items([Item(self.book.say("contact_delete_ask"))])
        return NOTHING

    def _answer(self, name: str) -> Outcome:
        if name == "ok":
            assert self.book.personal is not None
            try:
                self.book.personal.delete(self.contact.id)
            except OSError as error:
                return self.book.save_failed(error)
            except KeyError:
                pass  # already gone
            return Outcome(close=True)
        if name in ("cancel", "left"):
            self.asking = False
            self.build()
            self.cursor = min(self._asked_at, len(self.items) - 1)  # back on "Delete"
            return NOTHING
        return NOTHING if name in ("up", "down") else common_key(name)

    def _copy(self) -> Outcome:
        """An own copy of a company contact (the VIP mark goes with it: own contacts name a
        caller first, so the copy decides whether they ring through do not disturb)."""
        assert self.book.personal is not None
        contact = self.contact
        try:
            copy = add_contact(self.book, contact.name, contact.numbers, company=contact.company,
                               department=contact.department, note=contact.note,
                               vip=contact.vip)
        except ValueError as error:
            return self.book.not_saved(str(error))
        except OSError as error:
            return self.book.save_failed(error)
        return Outcome(close=True, push=ContactCard(copy, self.book))


def add_contact(book: Book, name: str, numbers: tuple[Number, ...] | list[Number], *,
                company: str = "", department: str = "", note: str = "",
                vip: bool = False) -> Contact:
    """Add and save an own contact; ValueError when the phone has as many as it keeps (in
    the user's words) or the model refuses it, OSError when it cannot be saved."""
    personal = book.personal
    assert personal is not None
    if len(personal.contacts) >= personal.max_contacts:
        raise ValueError(book.say("contacts_full", n=personal.max_contacts))
    return personal.add(name, numbers, company=company, department=department, note=note,
                        vip=vip)


class ContactForm(ListView):
    """A new own contact, or one edited: the name typed by multi-tap (`MultiTap`: 0-9 letters,
    * mode, # space, right keeps the letter), each number by digits (* on an empty number types
    +). up/down go from field to field; cancel or left deletes, and on an empty field goes back
    without saving; ok saves (a new contact's card opens). Fields: the name, the contact's
    numbers, and an empty work and mobile number where it has none."""

    def __init__(self, book: Book, contact: Contact | None = None) -> None:
        super().__init__(book.say("edit_contact" if contact else "new_contact"))
        self.book, self.contact = book, contact
        self.name = MultiTap(contact.name if contact is not None else "")
        numbers = [[n.kind, n.value] for n in contact.numbers] if contact is not None else []
        kinds = {kind for kind, _value in numbers}
        self.numbers = numbers + [[kind, ""] for kind in FORM_KINDS if kind not in kinds]
        self.field = 0  # 0: the name, then the numbers

    def key(self, name: str) -> Outcome:
        now = self.book.now()
        self.name.tick(now)
        if name in ("up", "down"):
            self.name.commit()
            step = 1 if name == "down" else -1
            self.field = max(0, min(len(self.numbers), self.field + step))
        elif name == "ok":
            return self._save()
        elif name in ("cancel", "left"):
            return self._delete()
        elif name == "right":
            self.name.commit()
        elif name in DIGITS:
            self._type(name, now)
        else:
            return common_key(name)
        return NOTHING

    def rows(self, width: int, height: int) -> list[str]:
        self.name.tick(self.book.now())
        title = fit_right(self.title, self.name.mode if self.field == 0 else "", width)
        lines = [self._line(index, width) for index in range(len(self.numbers) + 1)]
        space = max(1, height - 1)
        first = min(max(0, self.field - space // 2), max(0, len(lines) - space))
        return [title, *lines[first:first + space]]

    def _line(self, index: int, width: int) -> str:
        focused = index == self.field
        if index == 0:
            label, value = self.book.say("contact_name"), self.name.text
            value += "" if self.name.pending or not focused else "_"
        else:
            kind, value = self.numbers[index - 1]
            label = self.book.say("kind_" + kind)
            value += "_" if focused else ""
        head = (">" if focused else " ") + label + ": "
        room = max(1, width - len(head))
        return (head + (value[-room:] if focused else value[:room]))[:width]

    def _type(self, key: str, now: float) -> None:
        if self.field == 0:
            self.name.press(key, now)
            return
        number = self.numbers[self.field - 1]
        if len(number[1]) < NUMBER_MAX:
            number[1] += "+" if key == "*" and not number[1] else key

    def _delete(self) -> Outcome:
        if self.field == 0:
            if not self.name.text:
                return Outcome(close=True)
            self.name.backspace()
            return NOTHING
        number = self.numbers[self.field - 1]
        if not number[1]:
            return Outcome(close=True)
        number[1] = number[1][:-1]
        return NOTHING

    def _save(self) -> Outcome:
        self.name.commit()
        numbers = [Number(kind, value.strip()) for kind, value in self.numbers if value.strip()]
        if not numbers:
            return self.book.not_saved(self.book.say("need_number"))
        for number in numbers:
            if not is_dialable(normalise_number(number.value)):
                return self.book.not_saved(self.book.say("not_a_number", number=number.value))
        personal = self.book.personal
        assert personal is not None
        try:
            if self.contact is None:
                added = add_contact(self.book, self.name.text, numbers)
                return Outcome(close=True, push=ContactCard(added, self.book))
            personal.update(self.contact.id, name=self.name.text, numbers=numbers)
        except ValueError as error:
            return self.book.not_saved(str(error))
        except KeyError:
            pass  # deleted meanwhile (another terminal): nothing to save into
        except OSError as error:
            return self.book.save_failed(error)
        return Outcome(close=True)


class ContactsMenu(BookList):
    """*My contacts*: "New contact...", "Groups...", then the own contacts alphabetically."""

    def __init__(self, book: Book) -> None:
        super().__init__(book.say("my_contacts"), book)
        self.refresh()

    def refresh(self) -> None:
        personal = self.book.personal
        own = sorted(personal.contacts if personal is not None else (),
                     key=lambda c: (sort_key(c.name), c.id))
        self.set_items(self._actions() + [contact_item(c) for c in own])


class GroupsView(BookList):
    """Every group, own and the company directory's, with how many are in it; ok shows its
    members (`Directory.in_group`); "New group..." (first) creates an own group; # on an own
    group deletes it after an ok (its contacts stay). Company groups are read-only."""

    def __init__(self, book: Book) -> None:
        super().__init__(book.say("groups"), book)
        self.refresh()

    def refresh(self) -> None:
        counts: dict[str, int] = {}
        for contact in self.book.directory.contacts:
            for group in contact.groups:
                counts[group] = counts.get(group, 0) + 1
        groups = [Item(name, name, str(counts.get(name, 0)))
                  for name in self.book.directory.groups()]
        new = [Item(self.book.say("new_group") + "...", self._new)] \
            if self.book.personal is not None else []
        self.set_items(new + groups)

    def select(self, item: Item) -> Outcome:
        if isinstance(item.value, str):
            return Outcome(push=GroupMembers(self.book, item.value))
        return super().select(item)

    def other_key(self, name: str) -> Outcome:
        item, personal = self.selected, self.book.personal
        if name != "#" or item is None or personal is None or \
                item.value not in personal.group_names:
            return super().other_key(name)
        group = item.value
        return Outcome(push=ConfirmView(group, self.book.say("group_delete_ask"),
                                        lambda: self._delete(group)))

    def _delete(self, group: str) -> Outcome:
        assert self.book.personal is not None
        try:
            self.book.personal.delete_group(group)
        except KeyError:
            pass
        except OSError as error:
            return self.book.save_failed(error)
        return Outcome()

    def _new(self) -> Outcome:
        return Outcome(push=TextEntry(self.book.say("new_group"), self.book.now,
                                      self._create))

    def _create(self, name: str) -> Outcome:
        assert self.book.personal is not None
        if not name.strip():
            return self.book.not_saved(self.book.say("need_group_name"))
        try:
            self.book.personal.add_group(name)
        except OSError as error:
            return self.book.save_failed(error)
        return Outcome(close=True)


class GroupMembers(BookList):
    """The contacts in one group (`Directory.in_group`), alphabetically; ok opens a card."""

    def __init__(self, book: Book, group: str) -> None:
        super().__init__(group, book)
        self.group = group
        self.refresh()

    def refresh(self) -> None:
        self.set_items([contact_item(c) for c in self.book.directory.in_group(self.group)])


class GroupPicker(BookList):
    """The own groups an own contact can be in, those it is in marked "*"; ok puts it in or
    takes it out; "New group..." (last) creates a group with the contact in it."""

    def __init__(self, book: Book, contact_id: str) -> None:
        super().__init__(book.say("groups"), book)
        self.contact_id = contact_id
        self.refresh()

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups the contact is in now."""
        assert self.book.personal is not None
        contact = self.book.personal.get(self.contact_id)
        return contact.groups if contact is not None else ()

    def refresh(self) -> None:
        assert self.book.personal is not None
        member = self.groups
        self.set_items([Item(("* " if group in member else "  ") + group, group)
                        for group in self.book.personal.group_names]
                       + [Item(self.book.say("new_group") + "...", self._new)])

    def select(self, item: Item) -> Outcome:
        if isinstance(item.value, str):
            member = self.groups
            groups = [g for g in member if g != item.value] if item.value in member \
                else [*member, item.value]
            return self._save(groups)
        return super().select(item)

    def _new(self) -> Outcome:
        return Outcome(push=TextEntry(self.book.say("new_group"), self.book.now,
                                      self._create))

    def _create(self, name: str) -> Outcome:
        if not name.strip():
            return self.book.not_saved(self.book.say("need_group_name"))
        outcome = self._save([*self.groups, name])
        return outcome if outcome.push is not None else Outcome(close=True)

    def _save(self, groups: list[str]) -> Outcome:
        assert self.book.personal is not None
        try:
            self.book.personal.update(self.contact_id, groups=groups)
        except (KeyError, ValueError) as error:
            return self.book.not_saved(str(error))
        except OSError as error:
            return self.book.save_failed(error)
        return Outcome()
