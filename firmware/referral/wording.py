"""What a referral looks like on the display and sounds like to a caller, in Swedish and English.

Display (`describe`), in the zone of `now_local` (the phone's zone, so moving the phone to
another zone changes the times shown, not the referral):

- Available, or any referral whose end has passed: "Tillgänglig" / "Available".
- "Gått för dagen" / "Gone for the day" never shows its end (the next working morning).
- No end: the name alone ("Semester").
- Set as a number of minutes (`busy(now, 120)`, `meeting(now, 45)`): the name and the whole
  minutes left, rounded up: "Upptagen 120 min" when set, "Upptagen 87 min" 33 minutes later.
  With `minutes_left=False` (what `to_pidf` publishes, as a published note cannot count down)
  such a referral shows its end like any other.
- Otherwise "<name> till <end>" / "<name> until <end>", the end being "13:00" on the same day,
  "tis 15:30" / "Tue 15:30" within the next six days, else "3 aug 07:00" (plus the year when it
  differs). The user's note is not part of it (the display is narrow).

Published note (`published_note`, what colleagues read on their contact cards): `describe()`
with the end time (`minutes_left=False`), then " – " and the referral's own note and the
user's profile note where there are any: "Lunch until 13:00 – Hämtar barn". The note of a
referral whose end has passed goes with it; the profile note stays (it is the user's, not the
referral's).

Announcement for callers (`announcement`): one sentence per built-in type, e.g. "Anna Berg är på
lunch till 13:00" / "Anna Berg is at lunch until 13:00"; custom types read "Anna Berg: <name>
till 13:00". It always names the end time, never minutes left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from firmware.referral.kinds import (
    AVAILABLE,
    BUILTIN_TYPES,
    BUSY,
    GONE,
    LUNCH,
    MEETING,
    SICK,
    VACATION,
    Referral,
    ReferralType,
    aware,
)
from firmware.texts import MONTHS, WEEKDAYS

UNTIL = {"sv": "till", "en": "until"}
NOTE_SEPARATOR = " – "

ANNOUNCEMENTS: dict[str, dict[str, str]] = {
    AVAILABLE: {"sv": "{who} är tillgänglig", "en": "{who} is available"},
    MEETING: {"sv": "{who} är på möte{end}", "en": "{who} is in a meeting{end}"},
    LUNCH: {"sv": "{who} är på lunch{end}", "en": "{who} is at lunch{end}"},
    BUSY: {"sv": "{who} är upptagen{end}", "en": "{who} is busy{end}"},
    GONE: {"sv": "{who} har gått för dagen", "en": "{who} has gone for the day"},
    VACATION: {"sv": "{who} har semester{end}", "en": "{who} is on vacation{end}"},
    SICK: {"sv": "{who} är sjuk{end}", "en": "{who} is off sick{end}"},
}
CUSTOM_ANNOUNCEMENT = "{who}: {name}{end}"


def _language(language: str) -> str:
    return "sv" if language == "sv" else "en"


def type_of(referral: Referral, types: Mapping[str, ReferralType]) -> ReferralType:
    """The referral's type; an unknown one (a custom type since removed) shows its key."""
    key = referral.type_key
    return types.get(key) or ReferralType(key, key, key, False)


def format_end(end: datetime, now_local: datetime, language: str) -> str:
    """`end` on the clock of `now_local`'s zone, with as much date as it needs."""
    lang = _language(language)
    local = aware(end, "end").astimezone(aware(now_local).tzinfo)
    clock = f"{local:%H:%M}"
    days = (local.date() - now_local.date()).days
    if days == 0:
        return clock
    if 0 < days <= 6:
        return f"{WEEKDAYS[lang][local.weekday()]} {clock}"
    year = f" {local.year}" if local.year != now_local.year else ""
    return f"{local.day} {MONTHS[lang][local.month - 1]}{year} {clock}"


def describe(referral: Referral, language: str, now_local: datetime, *,
             types: Mapping[str, ReferralType] = BUILTIN_TYPES,
             minutes_left: bool = True) -> str:
    """The referral as the display shows it at `now_local` (see the module rules)."""
    kind = type_of(referral, types)
    if kind.key == AVAILABLE or not referral.active(now_local):
        return types.get(AVAILABLE, BUILTIN_TYPES[AVAILABLE]).name(language)
    name = kind.name(language)
    if referral.until is None or kind.key == GONE:
        return name
    if minutes_left and referral.duration_min is not None:
        left = math.ceil((referral.until - now_local).total_seconds() / 60)
        return f"{name} {left} min"
    return f"{name} {UNTIL[_language(language)]} {format_end(referral.until, now_local, language)}"


def published_note(referral: Referral, language: str, now_local: datetime, *, note: str = "",
                   types: Mapping[str, ReferralType] = BUILTIN_TYPES) -> str:
    """The referral as colleagues read it: its end time, then the notes (see the module rules).
    `note` is the user's profile note."""
    text = describe(referral, language, now_local, types=types, minutes_left=False)
    own = referral.note.strip() if referral.active(now_local) else ""
    return NOTE_SEPARATOR.join([text, *(part for part in (own, note.strip()) if part)])


def announcement(user_name: str, referral: Referral, language: str, *,
                 now_local: datetime | None = None,
                 types: Mapping[str, ReferralType] = BUILTIN_TYPES) -> str:
    """The sentence a caller hears or reads, e.g. "Anna Berg är på lunch till 13:00".

    `now_local` decides whether the end needs a weekday or date and in which zone it is told;
    without it the end is told in its own zone, relative to the day the referral was set.
    """
    lang = _language(language)
    if now_local is not None and not referral.active(now_local):
        referral = Referral(AVAILABLE, None, "", now_local)
    kind = type_of(referral, types)
    end = ""
    if referral.until is not None:
        ref = now_local or referral.set_at.astimezone(referral.until.tzinfo)
        end = f" {UNTIL[lang]} {format_end(referral.until, ref, lang)}"
    template = ANNOUNCEMENTS.get(kind.key, {}).get(lang, CUSTOM_ANNOUNCEMENT)
    return template.format(who=user_name, name=kind.name(lang), end=end)
