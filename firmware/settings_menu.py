"""The phone's own menus: Settings (Inställningar), Profile and Help, as lists on the screen.

``main_menu(ctx)`` is the list the *menu* key opens; everything it needs from the phone comes
through ``ctx`` (a ``SettingsContext``), so the menus are pure state like every ``ListView``.

Keys in these menus: up/down move, ok (or right) opens or chooses, cancel (or left) goes back,
1-9 choose the item with that number, *menu* closes every menu. In a choice list the current
value is marked ``*``. In a level (ring volume, backlight, contrast) left/right, up/down and the
volume keys change it at once (so it can be heard or seen); ok keeps it, cancel puts back the
value it had. The note editor types by multi-tap (``firmware.directory.multitap``: 0-9 letters,
``*`` mode, ``#`` space); right keeps the letter still cycling, cancel or left deletes (and, with
nothing left, goes back without saving), ok saves.

Two items appear after the ``extra`` ones where the phone has them: *Mina kontakter* (the user's
own contacts and groups, ``ctx.contacts_menu``; the views are ``firmware.lists``) and
*Svarsgrupper* (the response groups of ``config.groups``, each marked logged in or out; ok logs
in or out: the view asks the terminal, ``("toggle_group", index)``, to dial the PBX's code as
the group's key does, and the key's LED follows).

Every change goes through ``ctx.set_setting(key, value)``, which returns an error text or None;
an error is shown as a notice over the list (any navigation key closes it). Two kinds of keys:

- dotted keys (``"device.language"``, ``"device.time_zone"``, ``"device.ringtone"``,
  ``"device.key_tones"``) are config keys: the phone keeps them as local overrides
  (``firmware.config.overrides.OverrideStore.set``), validated by the schema;
- plain names (``"ringer_volume"`` 0-15, ``"backlight"`` and ``"contrast"`` 0-10) are levels
  the phone keeps outside the config (the ringer's volume is the audio system's, kept across
  restarts); ``ctx.level(name)`` gives the current one. A level outside its range is refused
  with a notice that gives the range (``ctx.set_setting`` checks it, not only the menu).

The texts are in ``MENU_TEXTS`` (sv/en), keyed so that they can move into ``firmware.texts``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol

from audio.routing import VOLUME_MAX
from audio.synth import RINGTONES
from firmware.config import PhoneConfig
from firmware.texts import text
from firmware.views import NOTHING, Item, ListView, NoticeView, Outcome, TextEntry, common_key

MENU_TEXTS: Final[dict[str, dict[str, str]]] = {
    "settings": {"sv": "Inställningar", "en": "Settings"},
    "settings_language": {"sv": "Språk", "en": "Language"},
    "settings_time_zone": {"sv": "Tidszon", "en": "Time zone"},
    "settings_ringtone": {"sv": "Ringsignal", "en": "Ringtone"},
    "settings_ringer_volume": {"sv": "Ringvolym", "en": "Ring volume"},
    "settings_key_click": {"sv": "Knappljud", "en": "Key click"},
    "settings_backlight": {"sv": "Bakgrundsbelysning", "en": "Backlight"},
    "settings_contrast": {"sv": "Kontrast", "en": "Contrast"},
    "settings_profile": {"sv": "Profil", "en": "Profile"},
    "settings_info": {"sv": "Info", "en": "Info"},
    "settings_help": {"sv": "Hjälp", "en": "Help"},
    "settings_on": {"sv": "På", "en": "On"},
    "settings_off": {"sv": "Av", "en": "Off"},
    "settings_not_saved": {"sv": "Ej sparat", "en": "Not saved"},
    "settings_level_hint": {"sv": "</> ändra, OK klar", "en": "</> change, OK done"},
    "language_sv": {"sv": "Svenska", "en": "Svenska"},
    "language_en": {"sv": "English", "en": "English"},
    "ringtone_classic": {"sv": "Klassisk", "en": "Classic"},
    "ringtone_soft": {"sv": "Mjuk", "en": "Soft"},
    "ringtone_beep": {"sv": "Pip", "en": "Beep"},
    "zone_europe_stockholm": {"sv": "Stockholm", "en": "Stockholm"},
    "zone_europe_helsinki": {"sv": "Helsingfors", "en": "Helsinki"},
    "zone_europe_oslo": {"sv": "Oslo", "en": "Oslo"},
    "zone_europe_copenhagen": {"sv": "Köpenhamn", "en": "Copenhagen"},
    "zone_europe_london": {"sv": "London", "en": "London"},
    "zone_utc": {"sv": "UTC", "en": "UTC"},
    "profile_note": {"sv": "Notering", "en": "Note"},
    "profile_no_note": {"sv": "(ingen)", "en": "(none)"},
    "profile_note_too_long": {"sv": "Noteringen får ha högst {n} tecken",
                              "en": "The note can have at most {n} characters"},
    "settings_out_of_range": {"sv": "{what} ska vara {low}-{high}",
                              "en": "{what} must be {low}-{high}"},
    "settings_response_groups": {"sv": "Svarsgrupper", "en": "Response groups"},
    "group_logged_in": {"sv": "Inloggad", "en": "Logged in"},
    "group_logged_out": {"sv": "Utloggad", "en": "Logged out"},
    "help_1": {"sv": "Upp/Ner: bläddra", "en": "Up/Down: move"},
    "help_2": {"sv": "OK: välj, svara", "en": "OK: choose, answer"},
    "help_3": {"sv": "Avbryt: tillbaka", "en": "Cancel: back"},
    "help_4": {"sv": "Meny: inställningar", "en": "Menu: settings"},
    "help_5": {"sv": "Historik: samtalen", "en": "History: calls"},
    "help_6": {"sv": "Kontakter: sök", "en": "Contacts: search"},
    "help_7": {"sv": "Vänster/Höger: roll", "en": "Left/Right: role"},
    "help_8": {"sv": "Parkera: håll samtal", "en": "Hold: hold the call"},
    "help_9": {"sv": "Koppla: överlämna", "en": "Transfer: hand over"},
    "help_10": {"sv": "Konferens: trepart", "en": "Conference: 3-way"},
    "help_11": {"sv": "Tyst: mikrofon av", "en": "Mute: microphone off"},
    "help_12": {"sv": "Stör ej: inga samtal", "en": "DND: no calls ring"},
    "help_13": {"sv": "Text: * byter läge", "en": "Text: * changes mode"},
    "help_14": {"sv": "Text: # mellanslag", "en": "Text: # is a space"},
    "help_15": {"sv": "Kontakt: * favorit", "en": "Contact: * favourite"},
    "help_16": {"sv": "Kontakt: # VIP", "en": "Contact: # VIP"},
}
HELP_KEYS: Final = tuple(f"help_{n}" for n in range(1, 17))

LANGUAGES: Final = ("sv", "en")
TIME_ZONES: Final = ("Europe/Stockholm", "Europe/Helsinki", "Europe/Oslo", "Europe/Copenhagen",
                     "Europe/London", "UTC")
LEVELS: Final[dict[str, tuple[int, int]]] = {
    "ringer_volume": (0, VOLUME_MAX), "backlight": (0, 10), "contrast": (0, 10)}
"""The phone-held levels and their ranges (both ends included)."""
DISPLAY_CONTROLS: Final = ("backlight", "contrast")

MenuEntry = tuple[Callable[[str], str], Callable[[], ListView]]
"""An extra main-menu item from elsewhere: (its label in a language, the view it opens)."""


def menu_text(key: str, language: str) -> str:
    """The text for ``key`` in ``language`` (falls back to English, then to the key)."""
    entry = MENU_TEXTS.get(key)
    if entry is None:
        return key
    return entry.get(language) or entry["en"]


def language_name(code: str) -> str:
    """A language's own name ("Svenska", "English")."""
    return menu_text(f"language_{code}", code) if f"language_{code}" in MENU_TEXTS else code


def zone_name(zone: str, language: str) -> str:
    """A time zone's short name: "Helsingfors" for Europe/Helsinki in Swedish."""
    key = "zone_" + zone.lower().replace("/", "_")
    fallback = zone.rsplit("/", 1)[-1].replace("_", " ")
    return menu_text(key, language) if key in MENU_TEXTS else fallback


def ringtone_name(name: str, language: str) -> str:
    """A ringtone's name for people ("Klassisk" for "classic")."""
    key = f"ringtone_{name}"
    return menu_text(key, language) if key in MENU_TEXTS else name.capitalize()


@dataclass(frozen=True)
class ProfileInfo:
    """Who this phone is, as the Profile menu shows it."""

    name: str
    numbers: tuple[str, ...] = ()
    note: str = ""  # shown to colleagues (with the referral); edited here


class SettingsContext(Protocol):
    """What the menus need from the phone."""

    @property
    def language(self) -> str:
        """The language the menus speak ("sv" or "en")."""
        ...

    @property
    def config(self) -> PhoneConfig:
        """The config in effect now (with the local overrides)."""
        ...

    @property
    def display_controls(self) -> Set[str]:
        """Which of "backlight" and "contrast" the display can set."""
        ...

    @property
    def profile(self) -> ProfileInfo: ...

    def set_setting(self, key: str, value: Any) -> str | None:
        """Change a setting (dotted: a config key; plain: a level); an error text, or None."""
        ...

    def level(self, name: str) -> int:
        """The current value of a level: "ringer_volume", "backlight" or "contrast"."""
        ...

    def info_lines(self) -> list[str]:
        """Network and version information, one short line each."""
        ...

    def set_note(self, text: str) -> str | None:
        """Save the profile's note; an error text, or None."""
        ...

    def clock_now(self) -> float:
        """The phone's monotonic clock, in seconds (for multi-tap)."""
        ...

    @property
    def contacts_menu(self) -> Callable[[], ListView] | None:
        """Opens *My contacts* (own contacts and groups); None where the phone keeps none."""
        ...

    def group_logged_in(self, index: int) -> bool:
        """Whether the user is logged in to response group ``index`` of ``config.groups``."""
        ...


def main_menu(ctx: SettingsContext, extra: Sequence[MenuEntry] = ()) -> ListView:
    """The Settings menu; ``extra`` items (e.g. the referral menu) come first."""
    return MainMenu(ctx, extra)


# --- the views ----------------------------------------------------------------------------------


class MenuView(ListView):
    """A list in the settings menus: right is ok, left is back, 1-9 pick, menu closes all."""

    def __init__(self, ctx: SettingsContext, title: str, items: Sequence[Item] = (),
                 on_select: Callable[[Item], Outcome] | None = None) -> None:
        super().__init__(title, list(items), on_select=on_select)
        self.ctx = ctx

    def key(self, name: str) -> Outcome:
        if name == "left":
            return Outcome(close=True)
        return super().key("ok" if name == "right" else name)

    def other_key(self, name: str) -> Outcome:
        if len(name) == 1 and name in "123456789" and int(name) <= len(self.items):
            self.cursor = int(name) - 1
            return self.key("ok")
        return common_key(name)


class MainMenu(MenuView):
    """[My contacts, response groups], language, time zone, ringtone, ring volume, key click,
    [backlight, contrast], profile, info, help; each with its current value on the right.
    Rebuilt from ``ctx`` whenever it is shown, so a change made below (even of the language)
    shows at once."""

    def __init__(self, ctx: SettingsContext, extra: Sequence[MenuEntry] = ()) -> None:
        super().__init__(ctx, "", on_select=lambda item: Outcome(push=item.value()))
        self.extra = list(extra)
        self.refresh()

    def refresh(self) -> None:
        language = self.ctx.language
        self.title = menu_text("settings", language)
        self.set_items([Item(label(language), make) for label, make in self.extra]
                       + self._people(language) + self._entries(language))

    def rows(self, width: int, height: int) -> list[str]:
        self.refresh()
        return super().rows(width, height)

    def key(self, name: str) -> Outcome:
        self.refresh()
        return super().key(name)

    def _entries(self, language: str) -> list[Item]:
        device = self.ctx.config.device
        controls = [c for c in DISPLAY_CONTROLS if c in self.ctx.display_controls]
        return [
            Item(menu_text("settings_language", language), self._language,
                 language_name(device.language)),
            Item(menu_text("settings_time_zone", language), self._time_zone,
                 zone_name(device.time_zone, language)),
            Item(menu_text("settings_ringtone", language), self._ringtone,
                 ringtone_name(device.ringtone, language)),
            self._level_item("ringer_volume", language),
            Item(menu_text("settings_key_click", language), self._key_click,
                 _on_off(device.key_tones, language)),
            *(self._level_item(name, language) for name in controls),
            Item(menu_text("settings_profile", language), self._profile),
            Item(menu_text("settings_info", language), self._info),
            Item(menu_text("settings_help", language), self._help),
        ]

    def _people(self, language: str) -> list[Item]:
        """My contacts (where kept) and the response groups (where configured)."""
        items = []
        contacts = self.ctx.contacts_menu
        if contacts is not None:
            items.append(Item(text("my_contacts", language), contacts))
        groups = self.ctx.config.groups
        if groups:
            logged_in = sum(self.ctx.group_logged_in(i) for i in range(len(groups)))
            items.append(Item(menu_text("settings_response_groups", language),
                              partial(ResponseGroupsView, self.ctx),
                              f"{logged_in}/{len(groups)}"))
        return items

    def _level_item(self, name: str, language: str) -> Item:
        return Item(menu_text(f"settings_{name}", language), partial(self._level, name),
                    str(self.ctx.level(name)))

    def _language(self) -> ListView:
        return self._choice("settings_language", "device.language",
                            [(language_name(code), code) for code in LANGUAGES])

    def _time_zone(self) -> ListView:
        zones = list(TIME_ZONES)
        if self.ctx.config.device.time_zone not in zones:
            zones.append(self.ctx.config.device.time_zone)
        language = self.ctx.language
        return self._choice("settings_time_zone", "device.time_zone",
                            [(zone_name(zone, language), zone) for zone in zones])

    def _ringtone(self) -> ListView:
        language = self.ctx.language
        return self._choice("settings_ringtone", "device.ringtone",
                            [(ringtone_name(name, language), name) for name in RINGTONES])

    def _key_click(self) -> ListView:
        language = self.ctx.language
        return self._choice("settings_key_click", "device.key_tones",
                            [(_on_off(True, language), True), (_on_off(False, language), False)])

    def _choice(self, title_key: str, key: str, options: list[tuple[str, Any]]) -> ListView:
        return ChoiceView(self.ctx, menu_text(title_key, self.ctx.language), key, options)

    def _level(self, name: str) -> ListView:
        return LevelView(self.ctx, name, menu_text(f"settings_{name}", self.ctx.language))

    def _profile(self) -> ListView:
        return ProfileView(self.ctx)

    def _info(self) -> ListView:
        return MenuView(self.ctx, menu_text("settings_info", self.ctx.language),
                        [Item(line) for line in self.ctx.info_lines()])

    def _help(self) -> ListView:
        language = self.ctx.language
        return MenuView(self.ctx, menu_text("settings_help", language),
                        [Item(menu_text(key, language)) for key in HELP_KEYS])


class ChoiceView(MenuView):
    """Pick one value of a config key; the current one is marked ``*`` and has the cursor.
    Choosing saves it and goes back; an error stays here under a notice."""

    def __init__(self, ctx: SettingsContext, title: str, key: str,
                 options: Sequence[tuple[str, Any]]) -> None:
        super().__init__(ctx, title, on_select=self._choose)
        self.setting = key
        current = _config_value(ctx.config, key)
        self.set_items([Item(("* " if value == current else "  ") + label, value)
                        for label, value in options])
        self.cursor = next((i for i, (_, value) in enumerate(options) if value == current), 0)

    def _choose(self, item: Item) -> Outcome:
        error = self.ctx.set_setting(self.setting, item.value)
        if error:
            return notice(self.ctx.language, error)
        return Outcome(close=True)


class LevelView(ListView):
    """A level shown as a bar; it changes (and is saved) with each step."""

    def __init__(self, ctx: SettingsContext, name: str, title: str) -> None:
        super().__init__(title)
        self.ctx, self.setting = ctx, name
        self.low, self.high = LEVELS[name]
        self.value = self.start = self._clamped(ctx.level(name))

    def key(self, name: str) -> Outcome:
        if name in ("right", "up", "volume_up"):
            return self._set(self._clamped(self.value + 1))
        if name in ("left", "down", "volume_down"):
            return self._set(self._clamped(self.value - 1))
        if name == "ok":
            return Outcome(close=True)
        if name == "cancel":
            outcome = self._set(self.start)
            outcome.close = True
            return outcome
        return common_key(name)

    def rows(self, width: int, height: int) -> list[str]:
        span = max(1, width - 5)
        filled = round((self.value - self.low) / max(1, self.high - self.low) * span)
        bar = f"[{'#' * filled}{'-' * (span - filled)}]{self.value:>3}"
        hint = menu_text("settings_level_hint", self.ctx.language)
        return [row[:width] for row in (self.title, bar, hint)][:max(1, height)]

    def _set(self, value: int) -> Outcome:
        if value == self.value:
            return Outcome()
        error = self.ctx.set_setting(self.setting, value)
        if error:
            return notice(self.ctx.language, error)
        self.value = value
        return Outcome()

    def _clamped(self, value: int) -> int:
        return max(self.low, min(self.high, value))


class ProfileView(MenuView):
    """The name and numbers colleagues see, and the note (ok on it edits it)."""

    def __init__(self, ctx: SettingsContext) -> None:
        super().__init__(ctx, "", on_select=self._select)
        self.refresh()

    def refresh(self) -> None:
        language, profile = self.ctx.language, self.ctx.profile
        self.title = menu_text("settings_profile", language)
        note = profile.note or menu_text("profile_no_note", language)
        self.set_items([Item(line) for line in (profile.name, *profile.numbers) if line]
                       + [Item(f"{menu_text('profile_note', language)}: {note}", "note")])

    def rows(self, width: int, height: int) -> list[str]:
        self.refresh()
        return super().rows(width, height)

    def _select(self, item: Item) -> Outcome:
        return Outcome(push=NoteEditor(self.ctx)) if item.value == "note" else NOTHING


class NoteEditor(TextEntry):
    """The note typed by multi-tap (`firmware.views.TextEntry`), starting from the saved one;
    a refused note (too long) is a notice, and the text stays for the user to shorten."""

    def __init__(self, ctx: SettingsContext) -> None:
        super().__init__(menu_text("profile_note", ctx.language), ctx.clock_now, self._save,
                         ctx.profile.note)
        self.ctx = ctx

    def _save(self, note: str) -> Outcome:
        error = self.ctx.set_note(note)
        if error:
            return notice(self.ctx.language, error)
        return Outcome(close=True)


class ResponseGroupsView(MenuView):
    """The response groups of ``config.groups``, each "Logged in" or "Logged out"; ok (or
    right, or its number) logs in or out: the terminal dials the PBX's code, as the group's
    key does. Rebuilt whenever it is shown, so the mark follows."""

    def __init__(self, ctx: SettingsContext) -> None:
        super().__init__(ctx, "", on_select=lambda item: Outcome(act=("toggle_group",
                                                                      item.value)))
        self.refresh()

    def refresh(self) -> None:
        language = self.ctx.language
        self.title = menu_text("settings_response_groups", language)
        self.set_items([Item(group.name, index, menu_text(
            "group_logged_in" if self.ctx.group_logged_in(index) else "group_logged_out",
            language)) for index, group in enumerate(self.ctx.config.groups)])

    def rows(self, width: int, height: int) -> list[str]:
        self.refresh()
        return super().rows(width, height)


def notice(language: str, message: str) -> Outcome:
    """Show ``message`` under the title "Not saved"."""
    return Outcome(push=NoticeView(menu_text("settings_not_saved", language), message))


# --- helpers ------------------------------------------------------------------------------------


def _config_value(config: PhoneConfig, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _on_off(on: bool, language: str) -> str:
    return menu_text("settings_on" if on else "settings_off", language)
