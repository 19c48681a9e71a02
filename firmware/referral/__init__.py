"""Referrals ("hänvisning"): the away status callers and colleagues see, e.g. "Lunch till 13:00".

Pure logic, standard library only. The parts, each documented in its own module:

- `kinds`: referral types (built-in and custom), the manual `Referral` and its shortcuts
  (`lunch`, `busy`, `meeting`, `gone_for_today`), validation errors (`ReferralError`).
- `schedule`: future and recurring referrals in their own time zone, DST rules.
- `book`: `ReferralBook`, what is in effect now and when that changes; `ReferralWatch`, the one
  timer on the phone's `Clock`.
- `wording`: display text, the note published to colleagues and caller announcements, in
  Swedish and English.
- `store`: `ReferralStore`, the book as JSON on disk, surviving corrupt files.
- `pidf`: presence documents (PIDF + RPID): the reference for tests and other vendors'
  documents (pjsua2 builds the ones the phone publishes).
"""

from firmware.referral.book import ReferralBook, ReferralWatch
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
    ReferralError,
    ReferralType,
    available,
    busy,
    gone_for_today,
    lunch,
    make_referral,
    meeting,
    next_working_morning,
    referral_type,
    referral_types,
)
from firmware.referral.pidf import from_pidf, to_pidf
from firmware.referral.schedule import Recurrence, ScheduledReferral
from firmware.referral.store import ReferralStore
from firmware.referral.wording import announcement, describe, format_end, published_note

__all__ = [
    "AVAILABLE", "BUILTIN_TYPES", "BUSY", "GONE", "LUNCH", "MEETING", "SICK", "VACATION",
    "Recurrence", "Referral", "ReferralBook", "ReferralError", "ReferralStore", "ReferralType",
    "ReferralWatch", "ScheduledReferral", "announcement", "available", "busy", "describe",
    "format_end", "from_pidf", "gone_for_today", "lunch", "make_referral", "meeting",
    "next_working_morning", "published_note", "referral_type", "referral_types", "to_pidf",
]
