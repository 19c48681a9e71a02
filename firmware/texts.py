"""Every word the phone shows, in Swedish and English. Keys are stable ids; pure data."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "no_service": {"sv": "Ingen tjänst", "en": "No service"},
    "registering": {"sv": "Registrerar...", "en": "Registering..."},
    "dial": {"sv": "Ring upp:", "en": "Dial:"},
    "calling": {"sv": "Ringer upp", "en": "Calling"},
    "ringing_remote": {"sv": "Det ringer", "en": "Ringing"},
    "incoming": {"sv": "Inkommande samtal", "en": "Incoming call"},
    "connected": {"sv": "Samtal", "en": "In call"},
    "provisioning_failed": {"sv": "Provisionering fel", "en": "Provisioning failed"},
    "no_line": {"sv": "Ingen linje", "en": "No line"},
    "awaiting_provisioning": {"sv": "Väntar på konfig", "en": "Awaiting config"},
    "menu_main": {"sv": "Röstbrevlåda", "en": "Voicemail"},
    "menu_referral": {"sv": "Hänvisning", "en": "Referral"},
    "busy": {"sv": "Upptaget", "en": "Busy"},
    "unknown_number": {"sv": "Okänt nummer", "en": "Unknown number"},
    "no_answer": {"sv": "Inget svar", "en": "No answer"},
    "network_error": {"sv": "Nätverksfel", "en": "Network error"},
    "all_busy": {"sv": "Alla linjer upptagna", "en": "All lines busy"},
    "declined": {"sv": "Avvisat", "en": "Declined"},
    "not_allowed": {"sv": "Ej tillåtet", "en": "Not allowed"},
    "call_ended": {"sv": "Samtalet avslutat", "en": "Call ended"},
    "invalid_number": {"sv": "Ogiltigt nummer", "en": "Invalid number"},
    "missed_call": {"sv": "Missat samtal", "en": "Missed call"},
    "line_busy": {"sv": "Linjen upptagen", "en": "Line busy"},
    "transferred": {"sv": "Kopplat", "en": "Transferred"},
    "forwarded": {"sv": "Vidarekopplat", "en": "Forwarded"},
    "on_hold": {"sv": "Parkerat", "en": "On hold"},
    "held_by_remote": {"sv": "Parkerad av andra", "en": "Held by other end"},
    "held_short": {"sv": "Park", "en": "Held"},
    "transfer_to": {"sv": "Koppla till:", "en": "Transfer to:"},
    "transferring": {"sv": "Kopplar...", "en": "Transferring..."},
    "transfer_failed": {"sv": "Koppling misslyckad", "en": "Transfer failed"},
    "pick_call": {"sv": "Koppla ihop med:", "en": "Join with:"},
    "conference": {"sv": "Konferens", "en": "Conference"},
    "conference_add": {"sv": "Lägg till:", "en": "Add:"},
    "end_conference": {"sv": "Avsluta konferens?", "en": "End conference?"},
    "end_choices": {"sv": "OK=alla 1-{n}=en", "en": "OK=all 1-{n}=one"},
    "muted": {"sv": "Tyst", "en": "Muted"},
    "history": {"sv": "Samtalslista", "en": "Call history"},
    "directory": {"sv": "Kontakter", "en": "Contacts"},
    "favourites": {"sv": "Favoriter", "en": "Favourites"},
    "search": {"sv": "Sök", "en": "Search"},
    "no_match": {"sv": "Ingen träff", "en": "No match"},
    "colleague_idle": {"sv": "Ledig", "en": "Free"},
    "colleague_ringing": {"sv": "Det ringer", "en": "Ringing"},
    "colleague_busy": {"sv": "I samtal", "en": "In a call"},
    "kind_missed": {"sv": "Missat", "en": "Missed"},
    "kind_received": {"sv": "Mottaget", "en": "Received"},
    "kind_dialed": {"sv": "Uppringt", "en": "Dialled"},
    "line_word": {"sv": "linje", "en": "line"},
    "kind_work": {"sv": "Arb", "en": "Work"},
    "kind_mobile": {"sv": "Mob", "en": "Mob"},
    "kind_home": {"sv": "Hem", "en": "Home"},
    "kind_other": {"sv": "Övr", "en": "Other"},
    "kind_extension": {"sv": "Ankn", "en": "Ext"},
    "history_missed": {"sv": "Missade samtal", "en": "Missed calls"},
    "no_calls": {"sv": "Inga samtal", "en": "No calls"},
    "delete_all": {"sv": "Radera alla? OK", "en": "Delete all? OK"},
    "missed_count": {"sv": "{n} missade", "en": "{n} missed"},
    "new_messages": {"sv": "{n} nya meddel.", "en": "{n} new messages"},
    "dnd": {"sv": "Stör ej", "en": "Do not disturb"},
    "waiting": {"sv": "Väntande samtal", "en": "Call waiting"},
    "as_role": {"sv": "Som", "en": "As"},
    "on_speaker": {"sv": "Högtalare", "en": "Speaker"},
    "on_headset": {"sv": "Headset", "en": "Headset"},
    "no_headset": {"sv": "Inget headset", "en": "No headset"},
    "headset_failed": {"sv": "Headsetfel", "en": "Headset failed"},
    "speaker_failed": {"sv": "Högtalarfel", "en": "Speaker failed"},
    "handset_failed": {"sv": "Lurfel", "en": "Handset failed"},
}

WEEKDAYS = {"sv": ("mån", "tis", "ons", "tor", "fre", "lör", "sön"),
            "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}
MONTHS = {"sv": ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov",
                 "dec"),
          "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec")}


def text(key: str, language: str) -> str:
    """The text for `key` in `language` (falls back to English, then to the key itself)."""
    entry = TEXTS.get(key)
    if entry is None:
        return key
    return entry.get(language) or entry["en"]
