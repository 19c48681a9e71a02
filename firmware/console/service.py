"""Puts the console together for the runtime: the line, the login, the session, the commands.

`ConsoleService.start` opens the port the config names (``console.port``) or else the board
profile's, and keeps one `ConsoleSession` on it. The same `Services` serve the control API's
``POST /api/v1/command``, so the console and the API run one implementation of every action.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import serial

from firmware.console.auth import ConsoleLogin
from firmware.console.commands import Services
from firmware.console.logbuffer import LogBuffer
from firmware.console.masking import Masker, config_secrets
from firmware.console.port import ConsoleTransport, open_port
from firmware.console.session import ConsoleSession

if TYPE_CHECKING:
    from board.profile import BoardProfile
    from firmware.clock import Clock
    from firmware.config import PhoneConfig
    from firmware.phone import Phone

log = logging.getLogger("luren.console")

STATE_DIR = "state"


def version() -> str:
    try:
        return metadata.version("luren")
    except metadata.PackageNotFoundError:
        return "dev"


def phone_secrets(config: PhoneConfig) -> list[str]:
    """The values never to show: every secret of the config (the console hash included)."""
    return config_secrets(config)


def install_log_buffer(masker: Masker) -> LogBuffer:
    """Keep the phone's log in memory for the console (on the root logger, from now on)."""
    buffer = LogBuffer(masker)
    logging.getLogger().addHandler(buffer)
    return buffer


@dataclass
class ConsoleService:
    services: Services
    session: ConsoleSession | None = None
    transport: ConsoleTransport | None = None
    login: ConsoleLogin | None = None

    @property
    def port_name(self) -> str:
        return self.transport.name if self.transport is not None else ""

    def start(self, config: PhoneConfig, profile: BoardProfile | None, clock: Clock,
              banner_id: str) -> None:
        """Open the console's line; a port that cannot be opened is logged (the phone runs
        on without a console)."""
        port = config.console.port or (profile.console.port if profile and profile.console
                                       else "")
        baud = profile.console.baud if profile and profile.console else 115200
        if not port or port == "off":
            log.info("console: off")
            return
        phone = self.services.phone
        self.login = ConsoleLogin(config.console.password_hash,
                                  self.services.data_dir / STATE_DIR, time.time)
        login = self.login
        if login.uses_one_time_code:
            login.one_time_code.current()  # made now, shown under Settings, Info
        phone.console_code = lambda: (login.one_time_code.current()
                                      if login.uses_one_time_code else "")
        self.services.console_code = phone.console_code
        loop = asyncio.get_running_loop()
        holder: list[ConsoleSession] = []
        try:
            self.transport = open_port(port, baud, loop, lambda data: holder[0].feed(data))
        except (OSError, serial.SerialException, ValueError) as exc:
            log.error("console: cannot open %s: %s", port, exc)
            return
        banner = f"Luren {self.services.version} technician console ({banner_id})"
        self.session = ConsoleSession(self.services, login, self.transport.write, clock,
                                      idle_s=60.0 * config.console.idle_logout_minutes,
                                      banner=banner)
        holder.append(self.session)
        self.services.console_port = self.transport.name
        self.session.start()
        log.info("console on %s (%d 8N1)", self.transport.name, baud)

    def config_changed(self, config: PhoneConfig) -> None:
        self.services.masker.update(phone_secrets(config))
        if self.login is not None:
            self.login.update_hash(config.console.password_hash)
        if self.session is not None:
            self.session.idle_s = 60.0 * config.console.idle_logout_minutes

    def stop(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.transport is not None:
            self.transport.close()


def make_services(phone: Phone, data_dir: Path, masker: Masker, buffer: LogBuffer,
                  **hooks: Any) -> Services:
    return Services(phone=phone, data_dir=data_dir, version=version(), log=buffer,
                    masker=masker, **hooks)
