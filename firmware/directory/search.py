"""`Directory`: company and personal contacts together, searched from the keypad as you type.

Matching:

* `search_t9("2662")`: the keys typed (see `firmware.directory.text` for the Swedish keypad)
  match the start of any word of a name ("Anna Berg", "Britt-Marie Åberg": words "britt",
  "marie", "brittmarie", "aberg"), or, from the third digit on (NUMBER_MATCH_MIN_DIGITS),
  appear anywhere in one of the contact's numbers.
* `search_text("anna b")`: each word typed (case and accents ignored) starts a word of the
  name; or, when the query is a number of 3 digits or more, it appears anywhere in one of
  the numbers.

Ranking: favourites first; then contacts whose first name or surname (the first or last word
of the name) matched, before those matched on a middle word, before those matched only by a
number; then Swedish alphabetical order of the name as shown (a-z, å, ä, ö).

How it stays fast: the company directory is indexed once, when it arrives: one entry per name
word, its folded text and its T9 key sequence, each in a sorted list beside an integer
`tier * N + alphabetical position`. A prefix is a `bisect` range of that list and the best
matches are its smallest integers: no name is compared with the query at search time.
Numbers are searched with `str.find` over one string of every contact's digits, in
alphabetical order, and only as far as needed to fill the results. The personal contacts
have an index of their own, rebuilt (in milliseconds) when they change, merged with the
company's by `heapq.merge`; favourites, a handful, are checked one by one.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

from .model import Contact
from .numbers import digits_of, normalise_number
from .text import fold, sort_key, t9, words

if TYPE_CHECKING:
    from .personal import Mark, PersonalContacts

NUMBER_MATCH_MIN_DIGITS = 3
"""Digits typed before numbers are searched too (one or two are in almost every number)."""

_NUMBER_QUERY = re.compile(r"\+?[0-9*#]+")
_SEPARATORS = re.compile(r"[\s\-./()]+")
_TOP = "\U0010ffff"

_SortKey = tuple[str, str, str]
_Words = list[tuple[str, str, int]]  # (folded word, its T9 keys, tier)
_Hit = tuple[int, _SortKey, Contact]  # (tier, sort key, contact)


def _name_words(name: str) -> dict[str, int]:
    """Each folded word of `name` with its tier: 0 first name or surname, 1 another word."""
    tokens = name.split()
    found: dict[str, int] = {}
    for position, token in enumerate(tokens):
        tier = 0 if position in (0, len(tokens) - 1) else 1
        parts = words(token)
        for word in [*parts, "".join(parts)] if len(parts) > 1 else parts:
            found[word] = min(tier, found.get(word, tier))
    return found


@dataclass(frozen=True)
class _Query:
    """What was typed: a name-word prefix (T9 keys or text), more words, a number."""

    t9: bool
    prefix: str
    rest: tuple[str, ...] = ()
    number: str = ""

    def accepts(self, found: _Words) -> bool:
        """True if every further word typed starts one of the name's words."""
        return all(any(word.startswith(q) for word, _keys, _tier in found) for q in self.rest)

    def tier(self, found: _Words, digits: str) -> int | None:
        """0/1: a name word matched (first/last, other), 2: a number matched, None: no match."""
        tiers = [tier for word, keys, tier in found
                 if self.prefix and (keys if self.t9 else word).startswith(self.prefix)]
        if tiers and self.accepts(found):
            return min(tiers)
        return 2 if self.number and self.number in digits else None


class _Cache:
    """What the index needs from each name and number, worked out once per distinct value."""

    def __init__(self) -> None:
        self.names: dict[str, tuple[_SortKey, _Words]] = {}
        self.numbers: dict[str, tuple[str, str]] = {}

    def name(self, name: str) -> tuple[_SortKey, _Words]:
        """(sort key, [(word, T9 keys, tier)])."""
        found = self.names.get(name)
        if found is None:
            found = self.names[name] = (sort_key(name), [(w, t9(w), tier) for w, tier
                                                         in _name_words(name).items()])
        return found

    def number(self, value: str) -> tuple[str, str]:
        """(normalised, digits only)."""
        found = self.numbers.get(value)
        if found is None:
            norm = normalise_number(value)
            found = self.numbers[value] = (norm, digits_of(norm))
        return found


class _Index:
    """Sorted word keys and ranks for one set of contacts (see the module docstring)."""

    def __init__(self, contacts: Iterable[Contact], cache: _Cache) -> None:
        named = sorted(((cache.name(c.name), c) for c in contacts),
                       key=lambda item: (item[0][0], item[1].id))
        self.contacts = [contact for _name, contact in named]
        self.sort_keys = [key for (key, _words), _contact in named]
        self.words = [found for (_key, found), _contact in named]
        self.by_id = {contact.id: alpha for alpha, contact in enumerate(self.contacts)}
        n = self.n = max(1, len(named))
        text = [(w, tier * n + a) for a, found in enumerate(self.words) for w, _k, tier in found]
        keys = [(k, tier * n + a) for a, found in enumerate(self.words) for _w, k, tier in found]
        self.text_keys, self.text_ranks = _columns(text)
        self.t9_keys, self.t9_ranks = _columns(keys)
        self.by_number, self.digits = _numbers(self.contacts, cache)
        self.starts = _starts(self.digits)
        self.blob = "\n".join(self.digits)

    def hits(self, query: _Query) -> Iterator[_Hit]:
        """Matches in (tier, alphabetical) order, lazily; a contact may come more than once."""
        keys, ranks = (self.t9_keys, self.t9_ranks) if query.t9 else (self.text_keys,
                                                                      self.text_ranks)
        prefix = query.prefix
        ranked = sorted(set(ranks[bisect_left(keys, prefix):bisect_left(keys, prefix + _TOP)])
                        ) if prefix else []
        for rank in ranked:
            tier, alpha = divmod(rank, self.n)
            if not query.rest or query.accepts(self.words[alpha]):
                yield tier, self.sort_keys[alpha], self.contacts[alpha]
        if query.number:
            for alpha in self._number_matches(query.number):
                yield 2, self.sort_keys[alpha], self.contacts[alpha]

    def _number_matches(self, digits: str) -> Iterator[int]:
        """Alphabetical positions of contacts with `digits` in a number, in order."""
        position = self.blob.find(digits)
        while position >= 0:
            alpha = bisect_right(self.starts, position) - 1
            yield alpha
            if alpha + 1 >= len(self.starts):
                return
            position = self.blob.find(digits, self.starts[alpha + 1])

    def with_number(self, norm: str) -> list[Contact]:
        """The contacts that have this (normalised) number."""
        return [self.contacts[a] for a in self.by_number.get(norm, [])]


def _numbers(contacts: list[Contact], cache: _Cache) -> tuple[dict[str, list[int]], list[str]]:
    """{normalised number: alphabetical positions}, and each contact's digits, tab-separated."""
    by_number: dict[str, list[int]] = {}
    digits: list[str] = []
    for alpha, contact in enumerate(contacts):
        parts = []
        for number in contact.numbers:
            norm, only_digits = cache.number(number.value)
            bucket = by_number.get(norm)
            if bucket is None:
                by_number[norm] = [alpha]
            elif bucket[-1] != alpha:
                bucket.append(alpha)
            parts.append(only_digits)
        digits.append("\t".join(parts))
    return by_number, digits


def _columns(pairs: list[tuple[str, int]]) -> tuple[list[str], list[int]]:
    pairs.sort()
    return [key for key, _rank in pairs], [rank for _key, rank in pairs]


def _starts(blocks: list[str]) -> list[int]:
    starts, position = [], 0
    for block in blocks:
        starts.append(position)
        position += len(block) + 1
    return starts


class Directory:
    """Company contacts (from provisioning) and personal ones (a `PersonalContacts`), indexed.

    The company contacts are indexed here and by `set_company()` (a new directory from
    provisioning). The personal contacts and the user's marks on company contacts are read
    again at the first call after `personal.revision` changes. Every contact returned has the
    user's favourite/VIP marks applied.
    """

    def __init__(self, company: Iterable[Contact] = (),
                 personal: PersonalContacts | None = None) -> None:
        self._personal = personal
        self._cache = _Cache()
        self._company = _Index(company, self._cache)
        self._own = _Index((), self._cache)
        self._marks: dict[str, Mark] = {}
        self._favourites: list[tuple[_SortKey, _Words, str, Contact]] = []
        self._revision: int | None = None
        self._refresh()

    def set_company(self, contacts: Iterable[Contact]) -> None:
        """Replace the company contacts (a new directory from provisioning) and index them."""
        self._cache = _Cache()
        self._company = _Index(contacts, self._cache)
        self._revision = None

    def _refresh(self) -> None:
        revision = self._personal.revision if self._personal is not None else 0
        if revision == self._revision:
            return
        personal = self._personal
        self._marks = dict(personal.marks) if personal is not None else {}
        self._own = _Index(personal.contacts if personal is not None else (), self._cache)
        self._revision = revision
        self._favourites = sorted(
            ((key, found, digits, contact)
             for index in (self._company, self._own)
             for contact, key, found, digits in zip(index.contacts, index.sort_keys,
                                                    index.words, index.digits, strict=True)
             if self._marked(contact).favourite),
            key=lambda item: (item[0], item[3].id))

    def _marked(self, contact: Contact) -> Contact:
        mark = self._marks.get(contact.id)
        return contact if mark is None else mark.apply(contact)

    # -- browsing --------------------------------------------------------------------------

    @property
    def contacts(self) -> tuple[Contact, ...]:
        """Every contact, in Swedish alphabetical order."""
        self._refresh()
        merged = heapq.merge(zip(self._company.sort_keys, self._company.contacts, strict=True),
                             zip(self._own.sort_keys, self._own.contacts, strict=True),
                             key=lambda item: item[0])
        return tuple(self._marked(contact) for _key, contact in merged)

    def get(self, contact_id: str) -> Contact | None:
        """The contact with this id, or None."""
        self._refresh()
        for index in (self._own, self._company):
            alpha = index.by_id.get(contact_id)
            if alpha is not None:
                return self._marked(index.contacts[alpha])
        return None

    def favourites(self) -> list[Contact]:
        """The favourite contacts, alphabetically."""
        self._refresh()
        return [self._marked(contact) for _key, _words, _digits, contact in self._favourites]

    def groups(self) -> list[str]:
        """Every group name, company and personal (empty personal groups too), alphabetically."""
        self._refresh()
        names = {g for index in (self._company, self._own) for c in index.contacts
                 for g in c.groups}
        if self._personal is not None:
            names.update(self._personal.group_names)
        return sorted(names, key=sort_key)

    def in_group(self, group: str) -> list[Contact]:
        """The contacts in `group` (case and accents ignored), alphabetically."""
        wanted = fold(group)
        return [c for c in self.contacts if any(fold(g) == wanted for g in c.groups)]

    # -- searching -------------------------------------------------------------------------

    def search_t9(self, digits: str, limit: int = 20) -> list[Contact]:
        """Contacts whose name has a word starting with the letters on these keys, or with
        these digits in a number; best first (see the module docstring). Keys other than
        0-9 are ignored."""
        digits = "".join(c for c in digits if c in "0123456789")
        return self._search(_Query(True, digits, number=_numeric(digits)), limit) \
            if digits else []

    def search_text(self, query: str, limit: int = 20) -> list[Contact]:
        """Contacts with a name word starting with each word of `query` (case and accents
        ignored), or, for a number, with it in one of their numbers; best first."""
        typed = words(query)
        compact = _SEPARATORS.sub("", query)
        number = _numeric(digits_of(normalise_number(compact))) \
            if _NUMBER_QUERY.fullmatch(compact) else ""
        if not typed and not number:
            return []
        return self._search(_Query(False, typed[0] if typed else "", tuple(typed[1:]), number),
                            limit)

    def _search(self, query: _Query, limit: int) -> list[Contact]:
        self._refresh()
        favourites = sorted(((tier, key, contact) for key, found, digits, contact
                             in self._favourites
                             if (tier := query.tier(found, digits)) is not None),
                            key=lambda hit: (hit[0], hit[1], hit[2].id))
        others = heapq.merge(self._company.hits(query), self._own.hits(query),
                             key=lambda hit: hit[:2])
        return _first(chain(favourites, others), limit, self._marked)

    # -- callers ---------------------------------------------------------------------------

    def lookup_number(self, number: str) -> Contact | None:
        """Who has this number (a caller's, in any usual form: +46..., 08-..., an extension).

        Personal contacts are asked before company ones. A number that several contacts
        with different names share (a switchboard listed on everybody's entry) names nobody:
        None, rather than the wrong person.
        """
        self._refresh()
        norm = normalise_number(number)
        for index in (self._own, self._company):
            found = index.with_number(norm)
            if found:
                same = len({fold(c.name) for c in found}) == 1
                return self._marked(found[0]) if same else None
        return None

    def is_vip(self, number: str) -> bool:
        """True if `lookup_number(number)` is a VIP (who rings through do-not-disturb)."""
        contact = self.lookup_number(number)
        return contact is not None and contact.vip


def _numeric(digits: str) -> str:
    """The digits to look for in numbers: none until NUMBER_MATCH_MIN_DIGITS are typed."""
    return digits if len(digits) >= NUMBER_MATCH_MIN_DIGITS else ""


def _first(hits: Iterable[_Hit], limit: int, marked: Callable[[Contact], Contact]
           ) -> list[Contact]:
    """The first `limit` different contacts of `hits`, with marks applied.

    A favourite met again among the others (it matched there too) is skipped by its id.
    """
    found: list[Contact] = []
    seen: set[str] = set()
    for _tier, _key, contact in hits:
        if len(found) >= limit:
            break
        if contact.id not in seen:
            seen.add(contact.id)
            found.append(marked(contact))
    return found
