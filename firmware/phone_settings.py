"""The phone as the settings menus see it (`firmware.settings_menu.SettingsContext`): the
user's changes become local overrides validated by the schema (firmware/config/overrides.py)
and are applied at once where they can be; levels (ring volume, backlight, contrast) and the
profile note are kept with the phone's own settings (`<data>/state/settings.json`).

Levels are whole numbers within `firmware.settings_menu.LEVELS` and the note is at most
`NOTE_MAX` characters: a change outside is refused with a message that says the range. What
`settings.json` holds is not trusted either: a level that is not a whole number is replaced by
its default, one out of range is clamped, a note that is not text or too long is dropped or
cut, each with a warning in the log (once: the corrected value is kept in memory and written
with the next change); nothing there can stop the menus.
"""

from __future__ import annotations

import fcntl
import logging
import re
import socket
import struct
from collections.abc import Callable, MutableMapping, Set
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware.config import ConfigError, PhoneConfig
from firmware.console.netinfo import SYS_NET, default_gateway, dns_servers
from firmware.lists import Book, ContactsMenu
from firmware.settings_menu import LEVELS, ProfileInfo, menu_text
from firmware.views import ListView

if TYPE_CHECKING:
    from firmware.phone import Phone

log = logging.getLogger("luren.settings")
NOTE_MAX = 60  # characters of the profile note (shown to colleagues)
DEFAULT_LEVELS = {"ringer_volume": 8, "backlight": 8, "contrast": 5}
"""A level's value until the user sets one (the ranges are `settings_menu.LEVELS`)."""


def whole_number(value: Any) -> int | None:
    """`value` as an int when it is a whole number (7, 7.0, "7"), else None (True, "x", [])."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    return None


def stored_level(settings: MutableMapping[str, Any], name: str) -> int:
    """The level `name` as `settings` (settings.json) keeps it, made safe: its default when
    missing or not a whole number, clamped into its range; a bad value is logged and replaced
    in `settings` (in memory) so that it is logged once."""
    default = DEFAULT_LEVELS[name]
    if name not in settings:
        return default
    raw = settings[name]
    value = whole_number(raw)
    low, high = LEVELS[name]
    if value is None:
        log.warning("settings.json: %s = %r is not a whole number: using %d", name, raw, default)
        value = default
    elif not low <= value <= high:
        fixed = max(low, min(high, value))
        log.warning("settings.json: %s = %d is outside %d-%d: using %d", name, value, low, high,
                    fixed)
        value = fixed
    if raw != value or isinstance(raw, bool):
        settings[name] = value
    return value


def stored_note(settings: MutableMapping[str, Any]) -> str:
    """The profile note as settings.json keeps it: "" when it is not text, cut to NOTE_MAX;
    a bad one is logged and replaced in `settings` (in memory)."""
    raw = settings.get("note", "")
    note = raw if isinstance(raw, str) else ""
    if not isinstance(raw, str):
        log.warning("settings.json: the note %r is not text: ignored", raw)
    elif len(note) > NOTE_MAX:
        log.warning("settings.json: the note has %d characters, more than %d: cut", len(note),
                    NOTE_MAX)
        note = note[:NOTE_MAX]
    if note != raw:
        settings["note"] = note
    return note


class PhoneSettings:
    """Adapts a `Phone` to `SettingsContext`."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone

    @property
    def display_controls(self) -> Set[str]:
        """What the first terminal's panel can set (backlight, contrast)."""
        return self.phone.terminals[0].board.display.controls

    @property
    def language(self) -> str:
        return self.phone.config.device.language

    @property
    def config(self) -> PhoneConfig:
        return self.phone.config

    @property
    def profile(self) -> ProfileInfo:
        lines = self.phone.config.lines
        name = (lines[0].display_name or lines[0].user) if lines else ""
        return ProfileInfo(name, tuple(line.user for line in lines),
                           stored_note(self.phone.settings))

    @property
    def contacts_menu(self) -> Callable[[], ListView] | None:
        phone = self.phone
        if phone.personal is None:
            return None
        return lambda: ContactsMenu(Book(phone.directory, phone.personal, self.language,
                                         phone.presence_text, phone.clock.now))

    def group_logged_in(self, index: int) -> bool:
        return self.phone.terminals[0].group_logged_in(index)

    def set_setting(self, key: str, value: Any) -> str | None:
        if "." not in key:
            return self._set_level(key, value)
        overrides = self.phone.overrides
        if overrides is None:
            return "no data directory"
        try:
            new = overrides.set(key, value)
        except ConfigError as exc:
            return exc.problems[0].message if exc.problems else str(exc)
        except OSError as exc:
            return exc.strerror or str(exc)
        self.phone.apply_config(new)
        return None

    def level(self, name: str) -> int:
        audio = self.phone.audio
        if name == "ringer_volume" and audio is not None:
            ringer = audio.status().get("ringer")
            if ringer:
                return int(ringer["volume"])
        return stored_level(self.phone.settings, name)

    def _set_level(self, name: str, given: Any) -> str | None:
        """Set a level after checking its name and range; an error text, or None."""
        if name not in LEVELS:
            return f"unknown setting {name}"
        low, high = LEVELS[name]
        value = whole_number(given)
        if value is None or not low <= value <= high:
            return menu_text("settings_out_of_range", self.language).format(
                what=menu_text(f"settings_{name}", self.language), low=low, high=high)
        audio = self.phone.audio
        if name == "ringer_volume" and audio is not None:
            for _ in range(16):  # step the ringer to the level (persisted by the audio system)
                now = self.level(name)
                if now == value:
                    break
                audio.ringer_volume_step(value > now)
        if name in ("backlight", "contrast"):
            for terminal in self.phone.terminals:
                terminal.board.display.set_level(name, value)
        self.phone.save_setting(name, value)
        return None

    def info_lines(self) -> list[str]:
        phone = self.phone
        try:
            version = metadata.version("luren")
        except metadata.PackageNotFoundError:
            version = "dev"
        address, interface = _address()
        gateway = default_gateway() or "-"
        dns = ", ".join(dns_servers()[:2]) or "-"
        lines = [f"Luren {version}", f"IP {address}" + (f" ({interface})" if interface else ""),
                 f"MAC {_mac(interface) or '-'}", f"Gateway {gateway}", f"DNS {dns}",
                 f"SIP port {phone.sip_port}"]
        for index, line in enumerate(phone.config.lines):
            state = phone.registrations[index].state.value
            lines.append(f"{line.user}: {state}")
        if phone.console_code is not None:  # for a technician standing at the phone
            code = phone.console_code()
            if code:
                lines.append(("Konsolkod " if self.language == "sv" else "Console code ") + code)
        return lines

    def set_note(self, text: str) -> str | None:
        if len(text) > NOTE_MAX:
            return menu_text("profile_note_too_long", self.language).format(n=NOTE_MAX)
        self.phone.save_setting("note", text)
        self.phone.referral.rearm_publish()
        return None

    def clock_now(self) -> float:
        return self.phone.clock.now()


SIOCGIFADDR = 0x8915


def _mac(interface: str, sys_net: Path = SYS_NET) -> str:
    """The interface's hardware address as desk phones print it (805EC0123456: fits a
    20-column screen), "" when unknown."""
    if not interface:
        return ""
    try:
        return (sys_net / interface / "address").read_text().strip().replace(":", "").upper()
    except OSError:
        return ""


def _address() -> tuple[str, str]:
    """The first IPv4 address of an interface other than loopback and that interface (asked
    of the kernel, no packet sent), else ("-", "")."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                raw = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                  struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on it
            return socket.inet_ntoa(raw[20:24]), name
    return "-", ""
