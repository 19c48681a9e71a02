"""The phone as the settings menus see it (`firmware.settings_menu.SettingsContext`): the
user's changes become local overrides validated by the schema (firmware/config/overrides.py)
and are applied at once where they can be; levels (ring volume, backlight, contrast) are kept
with the phone's own settings."""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
from collections.abc import Set
from importlib import metadata
from typing import TYPE_CHECKING, Any

from firmware.config import ConfigError, PhoneConfig
from firmware.settings_menu import ProfileInfo

if TYPE_CHECKING:
    from firmware.phone import Phone

log = logging.getLogger("luren.settings")
NOTE_MAX = 60  # characters of the profile note (shown to colleagues)
LEVELS = {"ringer_volume": 8, "backlight": 8, "contrast": 5}


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
                           str(self.phone.settings.get("note", "")))

    def set_setting(self, key: str, value: Any) -> str | None:
        if "." not in key:
            return self._set_level(key, int(value))
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
        return int(self.phone.settings.get(name, LEVELS.get(name, 8)))

    def _set_level(self, name: str, value: int) -> str | None:
        if name not in LEVELS:
            return f"unknown setting {name}"
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
        lines = [f"Luren {version}", f"IP {_address()}", f"SIP port {phone.sip_port}"]
        for index, line in enumerate(phone.config.lines):
            state = phone.registrations[index].state.value
            lines.append(f"{line.user}: {state}")
        if phone.console_code is not None:  # for a technician standing at the phone
            code = phone.console_code()
            if code:
                lines.append(("Konsolkod " if self.language == "sv" else "Console code ") + code)
        return lines

    def set_note(self, text: str) -> str | None:
        self.phone.save_setting("note", text[:NOTE_MAX])
        self.phone.referral.rearm_publish()
        return None

    def clock_now(self) -> float:
        return self.phone.clock.now()


SIOCGIFADDR = 0x8915


def _address() -> str:
    """The first IPv4 address of an interface other than loopback (asked of the kernel, no
    packet sent), else "-"."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                raw = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                  struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on it
            return f"{socket.inet_ntoa(raw[20:24])} ({name})"
    return "-"
