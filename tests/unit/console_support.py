"""A real `Phone` for the console's unit tests: a recording SIP engine, a manual clock, a data
directory with an `OverrideStore`, and the `Services` the console's commands act on.

Shared by test_console_commands.py and test_console_session.py (not collected by pytest).
The recording engine follows tests/unit/test_phone_controller.py's, trimmed to recording.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio.tones import ToneSegment
from board.sim import sim_board
from firmware.clock import ManualClock
from firmware.config import LineConfig, PhoneConfig, parse_config
from firmware.config.overrides import OVERRIDES_FILE, OverrideStore
from firmware.console.commands import Services
from firmware.console.logbuffer import LogBuffer
from firmware.console.masking import Masker, config_secrets
from firmware.phone import Phone
from firmware.sip import events as ev

LINE_PASSWORD = "Line-Pw-7781"
API_TOKEN = "tok-Zq81x-api"
PROV_PASSWORD = "prov-Pw-4410"
LDAP_PASSWORD = "ldap-Pw-9921"


class RecordingSip:
    """Stands where the pjsua2 engine stands (`firmware.phone.SipCommands`): records each
    command as a tuple (name, arguments...), in order, and does nothing else."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self._ids = 0

    def names(self) -> list[str]:
        """The names of the commands sent so far, in order."""
        return [command[0] for command in self.sent]

    def _record(self, *command: Any) -> None:
        self.sent.append(command)

    def new_call_id(self) -> str:
        self._ids += 1
        return f"c{self._ids}"

    def register(self, line: int) -> None:
        self._record("register", line)

    def reconfigure_line(self, index: int, line: LineConfig) -> None:
        self._record("reconfigure_line", index, line.user)

    def make_call(self, call_id: str, line: int, number: str,
                  identity: ev.OutgoingIdentity | None = None,
                  pickup: ev.Pickup | None = None, terminal: int = 0) -> None:
        self._record("make_call", call_id, line, number)

    def ring(self, call_id: str) -> None:
        self._record("ring", call_id)

    def answer(self, call_id: str, terminal: int = 0) -> None:
        self._record("answer", call_id)

    def hangup(self, call_id: str, code: int = 0) -> None:
        self._record("hangup", call_id, code)

    def send_dtmf(self, call_id: str, digits: str) -> None:
        self._record("send_dtmf", call_id, digits)

    def open_audio_path(self, terminal: int = 0) -> None:
        self._record("open_audio_path")

    def close_audio_path(self, terminal: int = 0) -> None:
        self._record("close_audio_path")

    def play_tone(self, name: str, segments: list[ToneSegment], loop: bool = True,
                  terminal: int = 0) -> None:
        self._record("play_tone", name)

    def play_feedback(self, segments: list[ToneSegment], volume: int,
                      terminal: int = 0) -> None:
        self._record("play_feedback", volume)

    def stop_tone(self, terminal: int = 0) -> None:
        self._record("stop_tone")

    def hold(self, call_id: str) -> None:
        self._record("hold", call_id)

    def resume(self, call_id: str) -> None:
        self._record("resume", call_id)

    def transfer(self, call_id: str, number: str) -> None:
        self._record("transfer", call_id, number)

    def transfer_replaces(self, call_id: str, other_call_id: str) -> None:
        self._record("transfer_replaces", call_id, other_call_id)

    def redirect(self, call_id: str, number: str) -> None:
        self._record("redirect", call_id, number)

    def conference(self, call_ids: list[str], terminal: int = 0) -> None:
        self._record("conference", tuple(call_ids))

    def mute(self, muted: bool, terminal: int = 0) -> None:
        self._record("mute", muted)

    def start_recording(self, path: str, terminal: int = 0) -> None:
        self._record("start_recording", path)

    def stop_recording(self, terminal: int = 0) -> None:
        self._record("stop_recording")

    def publish_presence(self, line: int, available: bool, note: str, activity: str) -> None:
        self._record("publish_presence", line, available)

    def watch_presence(self, line: int, user: str) -> None:
        self._record("watch_presence", line, user)

    def ivr_answer(self, call_id: str) -> None:
        self._record("ivr_answer", call_id)

    def ivr_local(self, start: bool, terminal: int = 0) -> None:
        self._record("ivr_local", start)

    def ivr_play(self, session: str, paths: list[str], token: int) -> None:
        self._record("ivr_play", session, token)

    def ivr_stop_prompts(self, session: str) -> None:
        self._record("ivr_stop_prompts", session)

    def ivr_record(self, session: str, path: str, silence_s: float) -> None:
        self._record("ivr_record", session, path)

    def ivr_stop_recording(self, session: str) -> None:
        self._record("ivr_stop_recording", session)


def base_config(**device: Any) -> PhoneConfig:
    """One line with a password, an API token, provisioning and LDAP passwords."""
    return parse_config({
        "device": {"language": "sv", **device},
        "lines": [{"user": "1001", "password": LINE_PASSWORD, "registrar": "127.0.0.1:5060",
                   "display_name": "Anna"}],
        "api": {"token": API_TOKEN},
        "provisioning": {"password": PROV_PASSWORD},
        "directory": {"ldap_password": LDAP_PASSWORD},
    })


@dataclass
class Rig:
    """A started phone and what a test needs to drive and inspect it."""

    phone: Phone
    sip: RecordingSip
    clock: ManualClock
    store: OverrideStore
    data_dir: Path
    restarts: list[str]

    def services(self, **hooks: Any) -> Services:
        """The console's `Services` for this phone: masker from the config's secrets, a fresh
        log buffer, restarts recorded in `restarts`."""
        masker = Masker(config_secrets(self.phone.config))
        hooks.setdefault("restart", self.restarts.append)
        return Services(phone=self.phone, data_dir=self.data_dir, version="test",
                        log=LogBuffer(masker), masker=masker, **hooks)

    def close(self) -> None:
        """Stop the phone's timers and close its stores."""
        self.phone.stop()
        self.phone.close()


def make_rig(data_dir: Path, config: PhoneConfig | None = None, terminals: int = 1) -> Rig:
    """A phone on `data_dir` with its overrides there, started, line 1 registered;
    `terminals` > 1: a base's handsets sharing the line."""
    store = OverrideStore(data_dir / OVERRIDES_FILE, base=config or base_config())
    clock, sip = ManualClock(), RecordingSip()
    phone = Phone(store.apply(), clock, sip, [sim_board() for _ in range(terminals)],
                  rng=random.Random(1), data_dir=data_dir, overrides=store)
    phone.start()
    phone.on_sip_event(ev.RegistrationChanged(0, True, 200, "OK", 300))
    return Rig(phone, sip, clock, store, data_dir, [])
