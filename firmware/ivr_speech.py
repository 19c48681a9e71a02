"""What the voicemail and referral menus say, as sequences of prompt names. Pure; no audio.

Every function returns a list of prompt names; the player plays `<root>/<language>/<name>.wav`
for each (`tools.prompts.prompt_path`). Names are the same in every language, so a missing
Swedish file can fall back to the English one, and a recorded WAV replaces a generated one by
having the same name. `PROMPT_TEXTS` holds every name with its text in "sv" and "en"; the
prompt tool (`python -m tools.prompts`) speaks those texts with espeak-ng.

Names:
- Numbers: "0".."19", "20", "30".."90", "hundred", "thousand". Hundreds and thousands are
  always counted: 100 is "1 hundred" ("ett hundra" / "one hundred"), 1305 is
  "1 thousand 3 hundred 5". English has no "and" ("one hundred one").
- Swedish "en"/"ett": "1" is "ett" (counting, neuter nouns: "ett nytt meddelande", clock
  times). `say_number(..., common=True)` ends in "1_common" instead ("en", for common-gender
  nouns: "tjugoen minuter"); in English "1_common" is also "one".
- Times: Swedish reads the 24-hour clock, minutes always as two digits: 13:00 is "tretton noll
  noll", 09:05 "nio noll fem", 00:00 "noll noll noll". English reads the 12-hour clock with
  "a_m"/"p_m": 13:00 is "one p.m.", 13:05 "one oh five p.m.", 00:00 "twelve a.m.", 12:00
  "twelve p.m.".
- Dates: "monday".."sunday", "january".."december", ordinals "ord_1".."ord_31"; Swedish
  "tisdag den fjortonde november", English "Tuesday November fourteenth"; "today" / "yesterday"
  instead when `today` is given and matches.
- Referral statuses: "referral_<kind>" for the kinds in firmware.referral.kinds (wording as in
  firmware.referral.wording), then "until" and a time. The person's name comes first, from a
  recorded name or the caller's own speech; it is not a prompt.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

LANGUAGES = ("sv", "en")

_UNITS = {
    "sv": ("noll", "ett", "två", "tre", "fyra", "fem", "sex", "sju", "åtta", "nio", "tio",
           "elva", "tolv", "tretton", "fjorton", "femton", "sexton", "sjutton", "arton",
           "nitton"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
           "eighteen", "nineteen"),
}
_TENS = {
    "sv": ("tjugo", "trettio", "fyrtio", "femtio", "sextio", "sjuttio", "åttio", "nittio"),
    "en": ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"),
}
_ORDINALS = {
    "sv": ("första", "andra", "tredje", "fjärde", "femte", "sjätte", "sjunde", "åttonde",
           "nionde", "tionde", "elfte", "tolfte", "trettonde", "fjortonde", "femtonde",
           "sextonde", "sjuttonde", "artonde", "nittonde", "tjugonde", "tjugoförsta",
           "tjugoandra", "tjugotredje", "tjugofjärde", "tjugofemte", "tjugosjätte",
           "tjugosjunde", "tjugoåttonde", "tjugonionde", "trettionde", "trettioförsta"),
    "en": ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
           "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
           "seventeenth", "eighteenth", "nineteenth", "twentieth", "twenty-first",
           "twenty-second", "twenty-third", "twenty-fourth", "twenty-fifth", "twenty-sixth",
           "twenty-seventh", "twenty-eighth", "twenty-ninth", "thirtieth", "thirty-first"),
}
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS = {
    "sv": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
               "september", "october", "november", "december")
_MONTHS = {
    "sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}

# Referral kinds (firmware.referral.kinds) -> (sv, en), worded as firmware.referral.wording.
REFERRAL_PHRASES: dict[str, tuple[str, str]] = {
    "available": ("är tillgänglig", "is available"),
    "meeting": ("är på möte", "is in a meeting"),
    "lunch": ("är på lunch", "is at lunch"),
    "busy": ("är upptagen", "is busy"),
    "gone": ("har gått för dagen", "has gone for the day"),
    "vacation": ("har semester", "is on vacation"),
    "sick": ("är sjuk", "is off sick"),
}

_WORDS: dict[str, tuple[str, str]] = {
    "hundred": ("hundra", "hundred"),
    "thousand": ("tusen", "thousand"),
    "1_common": ("en", "one"),
    "plus": ("plus", "plus"),
    "star": ("stjärna", "star"),
    "hash": ("fyrkant", "hash"),
    "oh": ("noll", "oh"),
    "a_m": ("förmiddag", "a.m."),
    "p_m": ("eftermiddag", "p.m."),
    "den": ("den", "the"),
    "today": ("idag", "today"),
    "yesterday": ("igår", "yesterday"),
    "until": ("till", "until"),
    "at": ("klockan", "at"),
    "from": ("från", "from"),
    "received": ("mottaget", "received"),
    "new_message": ("nytt meddelande", "new message"),
    "saved_message": ("sparat meddelande", "saved message"),
    "unknown_caller": ("okänd uppringare", "unknown caller"),
}

_MENUS: dict[str, tuple[str, str]] = {
    "owner_main_menu": (
        "Tryck 2 för att lyssna på dina meddelanden, 4 för att lyssna på ditt personliga "
        "hälsningsmeddelande, 5 för att spela in ett nytt hälsningsmeddelande, 6 för att radera "
        "ditt hälsningsmeddelande, stjärna för att avsluta, 0 för att höra menyn igen.",
        "Press 2 to listen to your messages, 4 to listen to your personal greeting, 5 to record "
        "a new greeting, 6 to delete your greeting, star to hang up, 0 to hear this menu again."),
    "message_menu": (
        "Tryck 1 för föregående meddelande, 2 för att lyssna igen, 3 för nästa meddelande, "
        "7 för att radera, 0 för huvudmenyn, stjärna för att avsluta.",
        "Press 1 for the previous message, 2 to repeat, 3 for the next message, 7 to delete, "
        "0 for the main menu, star to hang up."),
    "invalid": ("Ogiltigt val.", "Invalid choice."),
    "no_input": ("Jag hörde inget val.", "I did not hear a choice."),
    "goodbye": ("Hej då.", "Goodbye."),
    "record_greeting_after_tone": (
        "Tala in ditt hälsningsmeddelande efter tonen och avsluta med fyrkant.",
        "Record your greeting after the tone and finish with the hash key."),
    "enter_pin": ("Slå din kod och avsluta med fyrkant.",
                  "Enter your PIN followed by the hash key."),
    "pin_wrong": ("Fel kod.", "Wrong PIN."),
    "locked": ("Brevlådan är låst. Försök igen senare.",
               "The mailbox is locked. Please try again later."),
    "no_messages": ("Du har inga meddelanden.", "You have no messages."),
    "no_more_messages": ("Inga fler meddelanden.", "No more messages."),
    "greeting_default": (
        "Lämna ett meddelande efter tonen och avsluta med fyrkant.",
        "Please leave a message after the tone and finish with the hash key."),
    "no_greeting": ("Du har inget personligt hälsningsmeddelande.",
                    "You have no personal greeting."),
    "is_not_available": ("kan inte svara just nu", "cannot answer right now"),
    "is_busy": ("är upptagen i ett annat samtal", "is on another call"),
    "remote_menu": (
        "Tryck 1 för dina meddelanden, 2 för att ändra din hänvisning, stjärna för att avsluta.",
        "Press 1 for your messages, 2 to change your referral, star to hang up."),
    "referral_menu": ("Välj hänvisning.", "Choose your referral."),
    "referral_saved": ("Din hänvisning är ändrad.", "Your referral is changed."),
    "press": ("Tryck", "Press"),
    "for": ("för", "for"),
    "for_switchboard": ("för växeln", "for the switchboard"),
    "to_leave_message": ("för att lämna ett meddelande", "to leave a message"),
    "transfer_failed": ("Det gick inte att koppla samtalet.", "The call could not be put through."),
    "enter_minutes": ("Slå antal minuter och avsluta med fyrkant.",
                      "Enter the number of minutes followed by the hash key."),
    "mailbox_full": ("Brevlådan är full och kan inte ta emot fler meddelanden.",
                     "The mailbox is full and cannot take any more messages."),
    "message_saved": ("Tack, ditt meddelande är sparat.", "Thank you, your message is saved."),
    "message_deleted": ("Meddelandet är raderat.", "Message deleted."),
    "greeting_saved": ("Ditt hälsningsmeddelande är sparat.", "Your greeting is saved."),
    "greeting_deleted": ("Ditt hälsningsmeddelande är raderat.", "Your greeting is deleted."),
}

# The referral types read out by the referral menu ("Tryck 1 för möte").
KIND_WORDS: dict[str, tuple[str, str]] = {
    "available": ("tillgänglig", "available"),
    "meeting": ("möte", "meeting"),
    "lunch": ("lunch", "lunch"),
    "busy": ("upptagen", "busy"),
    "gone": ("gått för dagen", "gone for the day"),
    "vacation": ("semester", "vacation"),
    "sick": ("sjuk", "sick"),
}
TONE = "tone"
"""The beep before a recording: a tone, not speech (written by the prompt tool)."""


def _build_texts() -> dict[str, dict[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    rows.update({str(n): (_UNITS["sv"][n], _UNITS["en"][n]) for n in range(20)})
    rows.update({str(10 * (i + 2)): (_TENS["sv"][i], _TENS["en"][i]) for i in range(8)})
    rows.update({f"ord_{d + 1}": (_ORDINALS["sv"][d], _ORDINALS["en"][d]) for d in range(31)})
    rows.update({k: (_WEEKDAYS["sv"][i], _WEEKDAYS["en"][i]) for i, k in enumerate(WEEKDAY_NAMES)})
    rows.update({k: (_MONTHS["sv"][i], _MONTHS["en"][i]) for i, k in enumerate(MONTH_NAMES)})
    rows.update({f"referral_{k}": v for k, v in REFERRAL_PHRASES.items()})
    rows.update(_WORDS)
    rows.update(_MENUS)
    rows.update({f"kind_{k}": v for k, v in KIND_WORDS.items()})
    return {name: {"sv": sv, "en": en} for name, (sv, en) in rows.items()}


PROMPT_TEXTS: dict[str, dict[str, str]] = _build_texts()


def _check(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
    return language


def _below_100(n: int) -> list[str]:
    if n < 20:
        return [str(n)]
    tens, units = divmod(n, 10)
    return [str(10 * tens)] + ([str(units)] if units else [])


def say_number(n: int, language: str, *, common: bool = False) -> list[str]:
    """0..9999 as prompt names: 1305 -> ["1", "thousand", "3", "hundred", "5"].

    `common=True` ends a trailing one in "1_common" (Swedish "en": "tjugoen minuter").
    """
    _check(language)
    if not 0 <= n <= 9999:
        raise ValueError(f"can only say 0..9999, not {n}")
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    names = [str(thousands), "thousand"] if thousands else []
    names += [str(hundreds), "hundred"] if hundreds else []
    names += _below_100(rest) if rest or not names else []
    if common and names[-1] == "1":
        names[-1] = "1_common"
    return names


_DIGIT_NAMES = {**{d: d for d in "0123456789"}, "+": "plus", "*": "star", "#": "hash"}


def say_digits(number: str, language: str) -> list[str]:
    """A phone number digit by digit: "+4670" -> ["plus", "4", "6", "7", "0"].

    Spaces, dashes, dots and brackets are skipped; any other character is a ValueError.
    """
    _check(language)
    names = []
    for char in number:
        if char in " -.()":
            continue
        if char not in _DIGIT_NAMES:
            raise ValueError(f"cannot say {char!r} in {number!r}")
        names.append(_DIGIT_NAMES[char])
    return names


def _two_digit_minutes(minute: int, zero: str) -> list[str]:
    return [zero, str(minute)] if minute < 10 else _below_100(minute)


def say_time(hour: int, minute: int, language: str) -> list[str]:
    """A time of day: sv 24-hour ("tretton noll fem"), en 12-hour ("one oh five p.m.")."""
    _check(language)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"not a time of day: {hour}:{minute}")
    if language == "sv":
        return [*_below_100(hour), *_two_digit_minutes(minute, "0")]
    hour12 = hour % 12 or 12
    minutes = _two_digit_minutes(minute, "oh") if minute else []
    return [*_below_100(hour12), *minutes, "a_m" if hour < 12 else "p_m"]


def say_date(day: date, language: str, today: date | None = None) -> list[str]:
    """sv "tisdag den fjortonde november", en "Tuesday November fourteenth".

    With `today`, the day itself and the day before are "today" / "yesterday".
    """
    _check(language)
    if isinstance(day, datetime):
        day = day.date()
    if today is not None and day == today:
        return ["today"]
    if today is not None and day == today - timedelta(days=1):
        return ["yesterday"]
    weekday, month = WEEKDAY_NAMES[day.weekday()], MONTH_NAMES[day.month - 1]
    ordinal = f"ord_{day.day}"
    if language == "sv":
        return [weekday, "den", ordinal, month]
    return [weekday, month, ordinal]


def say_envelope(received: datetime, caller: str, language: str, *, new: bool = True,
                 today: date | None = None) -> list[str]:
    """A message's envelope: "(ett) nytt meddelande, mottaget <date> klockan <time>, från <n>".

    `caller` is the number to read digit by digit; empty (or not a number) says
    "unknown_caller".
    """
    names = ["1", "new_message" if new else "saved_message", "received"]
    names += [*say_date(received, language, today), "at",
              *say_time(received.hour, received.minute, language), "from"]
    try:
        digits = say_digits(caller, language)
    except ValueError:
        digits = []
    return names + (digits or ["unknown_caller"])


def say_referral(kind: str, language: str, until: time | None = None) -> list[str]:
    """A referral status after the person's name: "är på lunch till tretton noll noll".

    `kind` is a built-in referral kind (firmware.referral.kinds); unknown kinds are a KeyError.
    """
    _check(language)
    name = f"referral_{kind}"
    if name not in PROMPT_TEXTS:
        raise KeyError(f"no prompt for referral kind {kind!r}")
    if until is None or kind in ("available", "gone"):
        return [name]
    return [name, "until", *say_time(until.hour, until.minute, language)]


def spoken_text(names: list[str], language: str) -> str:
    """The names' texts joined with spaces: what a caller hears, for logs and tests."""
    return " ".join(PROMPT_TEXTS[name][_check(language)] for name in names)
