"""The phone controller: lines, terminals and calls, driven by events on one loop.

Pure logic: it talks to the SIP engine only through its command methods and hears from it only
through `on_sip_event()`, which the runtime calls on the controller's loop.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from audio.tones import ToneSegment, tone_set
from board.parts import Board
from firmware.call import Call, CallState, EndReason
from firmware.clock import Clock, Timer
from firmware.config import LineConfig, PhoneConfig
from firmware.config.overrides import OverrideStore, needs_restart
from firmware.directory import (
    Contact,
    Directory,
    DirectoryError,
    PersonalContacts,
    load_directory,
)
from firmware.directory.ldapsource import fetch_ldap
from firmware.history import HistoryStore
from firmware.intercom import Intercom
from firmware.ivr.service import MenuService
from firmware.lists import DirectoryView, HistoryView
from firmware.my_referral import MyReferral, ReferralMenu
from firmware.phone_settings import PhoneSettings, stored_level
from firmware.recordings import RecordingError, RecordingStore
from firmware.referral import ReferralType
from firmware.registration import LineRegistration, RegState
from firmware.settings_menu import main_menu
from firmware.sip import events as ev
from firmware.storage import atomic_write_json
from firmware.terminal import Terminal
from firmware.texts import text
from firmware.views import ListView

log = logging.getLogger("luren.phone")
SCREEN_TICK_S = 1.0


class SipCommands(Protocol):
    """What the controller asks of the SIP engine; every method returns at once."""

    def new_call_id(self) -> str: ...
    def register(self, line: int) -> None: ...
    def reconfigure_line(self, index: int, line: LineConfig) -> None: ...
    def make_call(self, call_id: str, line: int, number: str,
                  identity: ev.OutgoingIdentity | None = None,
                  pickup: ev.Pickup | None = None, terminal: int = 0) -> None: ...
    def ring(self, call_id: str) -> None: ...
    def answer(self, call_id: str, terminal: int = 0) -> None: ...
    def hangup(self, call_id: str, code: int = 0) -> None: ...
    def send_dtmf(self, call_id: str, digits: str) -> None: ...
    def open_audio_path(self, terminal: int = 0) -> None: ...
    def close_audio_path(self, terminal: int = 0) -> None: ...
    def play_tone(self, name: str, segments: list[ToneSegment], loop: bool = True,
                  terminal: int = 0) -> None: ...
    def play_feedback(self, segments: list[ToneSegment], volume: int,
                      terminal: int = 0) -> None: ...
    def stop_tone(self, terminal: int = 0) -> None: ...
    def hold(self, call_id: str) -> None: ...
    def resume(self, call_id: str) -> None: ...
    def transfer(self, call_id: str, number: str) -> None: ...
    def transfer_replaces(self, call_id: str, other_call_id: str) -> None: ...
    def redirect(self, call_id: str, number: str) -> None: ...
    def conference(self, call_ids: list[str], terminal: int = 0) -> None: ...
    def mute(self, muted: bool, terminal: int = 0) -> None: ...
    def start_recording(self, path: str, terminal: int = 0) -> None: ...
    def stop_recording(self, terminal: int = 0) -> None: ...
    def publish_presence(self, line: int, available: bool, note: str,
                         activity: str) -> None: ...
    def watch_presence(self, line: int, user: str) -> None: ...
    def ivr_answer(self, call_id: str) -> None: ...
    def ivr_local(self, start: bool, terminal: int = 0) -> None: ...
    def ivr_play(self, session: str, paths: list[str], token: int) -> None: ...
    def ivr_stop_prompts(self, session: str) -> None: ...
    def ivr_record(self, session: str, path: str, silence_s: float) -> None: ...
    def ivr_stop_recording(self, session: str) -> None: ...


class AudioRoute(Protocol):
    """Where the terminal's sound goes on real hardware (`audio.setup.AudioSystem`)."""

    def route(self, where: str | None) -> None: ...
    def volume_step(self, up: bool) -> int: ...
    def status(self) -> dict[str, Any]: ...
    def simulate_headset(self, plugged: bool) -> bool: ...
    def ring(self, ringtone: str, cadence_ms: tuple[int, ...]) -> None: ...
    def stop_ringing(self) -> None: ...
    def key_sound(self, key: str) -> None: ...
    def ringer_volume_step(self, up: bool) -> int: ...


class Phone:
    """N terminals x M lines. A desk phone: one terminal that uses every line."""

    def __init__(self, config: PhoneConfig, clock: Clock, engine: SipCommands,
                 boards: list[Board], rng: random.Random | None = None,
                 audio: AudioRoute | None = None, data_dir: Path | None = None,
                 overrides: OverrideStore | None = None,
                 terminal_lines: list[list[int]] | None = None) -> None:
        """`terminal_lines`: the lines of each board's terminal (a DECT base's handsets);
        None = every terminal has every line (a desk phone)."""
        self.config = config
        self.overrides = overrides  # the user's changes made on the phone
        self.audio = audio
        self._settings_path = data_dir / "state" / "settings.json" if data_dir else None
        self.settings = self._load_settings()
        self._data_dir = data_dir
        self.directory, self.personal = self._load_directory(data_dir)
        self.presence: dict[str, tuple[bool, str]] = {}  # colleague -> (available, note)
        self.blf: dict[str, tuple[str, str]] = {}  # colleague -> (state, the caller ringing)
        self.pickups: dict[str, ev.Pickup] = {}  # colleague -> the call ringing there
        self.referral = MyReferral(
            clock, lambda: self.config.device.language, lambda: self._tz,
            data_dir / "state" / "referral.json" if data_dir else None,
            publish=self._publish_referral, changed=self.refresh,
            custom=[ReferralType(t.key, t.name_sv, t.name_en, t.rings, t.minutes or None)
                    for t in config.referral_types],
            note=lambda: str(self.settings.get("note", "")))
        self.history = HistoryStore(data_dir / "state" / "history.db",
                                    now=lambda: self.clock.wall_time(UTC)) if data_dir else None
        self.recordings = RecordingStore(
            data_dir / "recordings", now=self.wall_time,
            max_bytes=config.calls.recordings_max_mb * 1024 * 1024) if data_dir else None
        self.clock = clock
        self.engine = engine
        self.tones = tone_set(config.device.tone_country)
        self._tz = ZoneInfo(config.device.time_zone)
        rng = rng or random.Random()
        self.registrations = [LineRegistration(enabled=line.register, rng=rng)
                              for line in config.lines]
        self.calls: dict[str, Call] = {}
        all_lines = list(range(len(config.lines)))
        self.terminals = [Terminal(self, board, terminal_lines[i] if terminal_lines is not None
                                   else all_lines, i) for i, board in enumerate(boards)]
        self._retry_timers: dict[int, Timer] = {}
        self._tick: Timer | None = None
        self.sip_port = 0
        self.headset_detection = "none"  # how the board tells a plugged headset (docs/audio.md)
        self.messages: dict[int, tuple[int, int]] = {}  # line -> (new, old) voice messages
        self.menus = MenuService(self, data_dir) if data_dir else None  # voicemail, menus
        self.provisioning: dict[str, Any] = {}  # the last provisioning run (provisioning.client)
        self.on_check_sync: Callable[[ev.CheckSyncRequested], None] | None = None
        self.on_all_registered: Callable[[], None] | None = None  # every enabled line is up
        self.firmware_status: Callable[[], dict[str, Any]] | None = None
        self.on_lists_changed: Callable[[PhoneConfig, PhoneConfig], None] | None = None
        self.console_code: Callable[[], str] | None = None  # the one-time code, while in use
        self.on_config_applied: Callable[[PhoneConfig], None] | None = None
        self.intercom: Intercom | None = None  # a DECT base's internal calls (**N)
        self.view_makers: dict[str, Callable[[Terminal], ListView | None]] = {
            "history": self._history_view, "directory": self._directory_view,
            "referral": self._referral_view, "menu": self._menu_view}

    def start(self) -> None:
        self.referral.start()
        if self.menus is not None:
            self.menus.start()
        for name in ("backlight", "contrast"):  # as the user left them
            if name in self.settings:
                for terminal in self.terminals:
                    terminal.board.display.set_level(name, stored_level(self.settings, name))
        for user in self.colleagues_to_watch():
            self.engine.watch_presence(0, user)
        if self.recordings is not None:
            for found in self.recordings.recover():
                log.warning("recovered the recording %s (%.1f s) left by a power cut or crash",
                            found.name, found.seconds)
        self._on_tick()

    # -- settings the user changes on the phone (do not disturb, caller-ID role) -------------
    def _load_settings(self) -> dict[str, Any]:
        if self._settings_path is None:
            return {}
        try:
            data = json.loads(self._settings_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("settings %s unreadable (%s): using defaults", self._settings_path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def save_setting(self, key: str, value: Any) -> None:
        self.settings[key] = value
        if self._settings_path is not None:
            atomic_write_json(self._settings_path, self.settings)

    def close(self) -> None:
        """Close the stores, once the SIP engine has stopped (its last calls are recorded)."""
        if self.history is not None:
            self.history.close()
            self.history = None

    def stop(self) -> None:
        self.referral.stop()
        if self._tick is not None:
            self._tick.cancel()
        for timer in self._retry_timers.values():
            timer.cancel()

    def wall_time(self) -> datetime:
        return self.clock.wall_time(self._tz)

    def refresh(self) -> None:
        for terminal in self.terminals:
            terminal.refresh()

    # -- sound hardware -------------------------------------------------------------------
    def headset_detected(self, detection: str, plugged: bool) -> None:
        """The board tells plugged headsets by `detection` (gpio, evdev, alsa or sim)."""
        self.headset_detection = detection
        for terminal in self.terminals:
            terminal.headset_jack = True
            terminal.headset(plugged)

    def headset_changed(self, plugged: bool) -> None:
        """Headset detection saw a headset plugged in or pulled out."""
        for terminal in self.terminals:
            terminal.headset(plugged)

    def simulate_headset(self, plugged: bool) -> bool:
        """Plug or pull a simulated headset (a board without sound hardware, or a profile with
        `jack.kind = "sim"`); False when the board has real headset detection."""
        if self.audio is not None:
            return self.audio.simulate_headset(plugged)
        if self.headset_detection == "none":
            self.headset_detected("sim", plugged)
        else:
            self.headset_changed(plugged)
        return True

    def audio_failed(self, path: str, message: str) -> None:
        """A sound device failed; the audio system has already moved the sound elsewhere."""
        for terminal in self.terminals:
            terminal.audio_failed(path, message)

    def _on_tick(self) -> None:
        """Keep clocks and call durations on screen current."""
        self.refresh()
        self._tick = self.clock.call_later(SCREEN_TICK_S, self._on_tick)

    # -- SIP events ------------------------------------------------------------------------
    def on_sip_event(self, event: ev.SipEvent) -> None:
        """Entry point for every engine event (called on the controller's loop)."""
        log.debug("SIP event %r", event)
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is None:
            log.debug("unhandled SIP event %r", event)
            return
        handler(event)

    def _on_EngineStarted(self, event: ev.EngineStarted) -> None:
        self.sip_port = event.sip_port

    def _on_EngineFailed(self, event: ev.EngineFailed) -> None:
        log.error("SIP engine failed: %s", event.message)

    def _on_CheckSyncRequested(self, event: ev.CheckSyncRequested) -> None:
        if self.on_check_sync is None:
            log.warning("check-sync from %s ignored: this phone is not provisioned",
                        event.source)
            return
        self.on_check_sync(event)

    def _on_RegistrationChanged(self, event: ev.RegistrationChanged) -> None:
        reg = self.registrations[event.line]
        self._cancel_retry(event.line)
        if event.registered:
            reg.succeeded(event.code, event.reason)
            log.info("line %d registered (%d %s, expires %d s)", event.line + 1, event.code,
                     event.reason, event.expires)
            if self.on_all_registered is not None and all(
                    r.state == RegState.REGISTERED for r in self.registrations if r.enabled):
                self.on_all_registered()
        elif event.code // 100 == 2:
            log.info("line %d unregistered", event.line + 1)  # our own un-REGISTER
        elif reg.enabled:
            delay = reg.failed(event.code, event.reason, self.clock.now(), event.retry_after)
            log.warning("line %d not registered: %d %s; retrying in %.0f s", event.line + 1,
                        event.code, event.reason, delay)
            self._retry_timers[event.line] = self.clock.call_later(
                delay, lambda: self._retry_registration(event.line))
        self.refresh()

    def _retry_registration(self, line: int) -> None:
        self._retry_timers.pop(line, None)
        self.registrations[line].retrying()
        self.engine.register(line)
        self.refresh()

    def _cancel_retry(self, line: int) -> None:
        timer = self._retry_timers.pop(line, None)
        if timer is not None:
            timer.cancel()

    def _on_IncomingCall(self, event: ev.IncomingCall) -> None:
        known = self.name_for(event.remote_number)  # the directory's name wins
        call = Call(id=event.call_id, direction="incoming", line=event.line,
                    state=CallState.INCOMING, started_at=self.clock.now(),
                    number=event.remote_number, remote_name=known or event.remote_name)
        self.calls[call.id] = call
        group = [t for t in self.terminals if event.line in t.lines]
        free = [t for t in group if t.alerting is None and not t.busy() and not t.dnd]
        if len(group) > 1 and len(free) > 1:
            self._ring_group(call, free)
        else:
            (free or group or self.terminals)[0].incoming(call)

    def _ring_group(self, call: Call, terminals: list[Terminal]) -> None:
        """A shared line: every free terminal on it rings (the DECT base's handsets); the
        first takes the call's timers (forwarding, voicemail), the first to answer the call."""
        log.info("call %s from %s rings %d terminals", call.id, call.number, len(terminals))
        terminals[0].incoming(call)
        if terminals[0].alerting is not call:
            return  # forwarded, refused or answered for the user: nobody else rings
        for terminal in terminals[1:]:
            terminal.ring_too(call)

    def call_taken(self, call: Call, by: Terminal | None) -> None:
        """`by` answered `call` (or it ended): the other terminals stop ringing for it."""
        for terminal in self.terminals:
            if terminal is not by and terminal.alerting is call:
                terminal.withdraw(call)

    def _on_CallStateChanged(self, event: ev.CallStateChanged) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            return  # a call the engine refused on its own (admission control)
        if self.menus is not None and self.menus.owns(event.call_id):
            self.menus.call_state(event.call_id, event.state)
            if event.state == "disconnected":
                call.end(EndReason.MISSED, self.clock.now(), event.code)  # taken by voicemail
        terminal = self._owner(call)
        if terminal is not None:
            if event.remote_name and not call.remote_name:
                call.remote_name = event.remote_name
            terminal.call_state(call, event.state, event.code)
        if event.state == "disconnected":
            self.call_taken(call, terminal)  # nobody rings on for a call that is over
        if event.state == "disconnected":
            self.calls.pop(event.call_id, None)
            self._remember(call)
            self.refresh()

    def _on_CallMediaChanged(self, event: ev.CallMediaChanged) -> None:
        call = self.calls.get(event.call_id)
        terminal = self._owner(call) if call is not None else None
        if terminal is not None and call is not None:
            terminal.media(call, event.active, event.hold)

    def _on_TransferStatus(self, event: ev.TransferStatus) -> None:
        log.info("call %s transfer: %d %s%s", event.call_id, event.code, event.reason,
                 " (final)" if event.final else "")
        if self.menus is not None and self.menus.owns(event.call_id):
            self.menus.transfer_status(event.call_id, event.code, event.final)
            return
        call = self.calls.get(event.call_id)
        terminal = self._owner(call) if call is not None else None
        if terminal is not None:
            terminal.transfer_status(event)

    def _on_CallReplaced(self, event: ev.CallReplaced) -> None:
        old = self.calls.get(event.old_call_id)
        terminal = self._owner(old) if old is not None else None
        if old is None or terminal is None:
            log.warning("call %s replaced a call this phone does not know", event.new_call_id)
            self.engine.hangup(event.new_call_id)
            return
        new = Call(id=event.new_call_id, direction="outgoing" if event.outgoing else "incoming",
                   line=old.line, state=CallState.CALLING if event.outgoing else
                   CallState.INCOMING, started_at=self.clock.now(),
                   number=event.remote_number, remote_name=event.remote_name)
        self.calls[new.id] = new
        terminal.replaced(old, new, event.outgoing)

    def _on_MessageWaiting(self, event: ev.MessageWaiting) -> None:
        log.info("line %d: messages waiting %s (%d new, %d old)", event.line + 1,
                 "yes" if event.waiting else "no", event.new, event.old)
        self.messages[event.line] = (event.new if event.waiting else 0, event.old)
        self.refresh()

    def _remember(self, call: Call) -> None:
        """Put an ended call in the history (not one another call took the place of)."""
        if self.history is None or call.replaced or call.end_reason is EndReason.FORWARDED:
            return
        now = self.clock.now()
        started = self.clock.wall_time(UTC) - timedelta(seconds=max(0.0, now - call.started_at))
        try:
            self.history.add_call(call, started, now)
        except sqlite3.Error as exc:
            log.error("call history: cannot store call %s: %s", call.id, exc)

    def missed_calls(self) -> int:
        if self.history is None:
            return 0
        try:
            return self.history.unseen_missed()
        except sqlite3.Error:
            return 0

    def make_view(self, name: str, terminal: Terminal) -> ListView | None:
        """The list a key opens ("history", "directory", "menu"); None where there is none."""
        maker = self.view_makers.get(name)
        return maker(terminal) if maker is not None else None

    def _load_directory(self, data_dir: Path | None
                        ) -> tuple[Directory, PersonalContacts | None]:
        personal = PersonalContacts(data_dir / "state" / "contacts.json") if data_dir else None
        return Directory(self._company_contacts(data_dir), personal), personal

    def _company_contacts(self, data_dir: Path | None) -> list[Contact]:
        """The company directory file's contacts ([] when none is set or it is unreadable)."""
        name = self.config.directory.file
        if not name:
            return []
        path = Path(name) if Path(name).is_absolute() or data_dir is None else data_dir / name
        try:
            result = load_directory(path)
        except (DirectoryError, OSError) as exc:
            log.error("company directory %s not loaded: %s", path, exc)
            return []
        for problem in result.problems:
            log.warning("company directory %s: %s", path.name, problem)
        log.info("company directory: %d contacts from %s", len(result.contacts), path)
        return list(result.contacts)

    def fetch_ldap_directory(self) -> list[Contact] | None:
        """The company directory from LDAP where configured (blocking: the runtime calls it
        off the loop and hands the result to `directory.set_company`); None = not used."""
        cfg = self.config.directory
        if not cfg.ldap_url or cfg.file:
            return None
        try:
            result = fetch_ldap(cfg.ldap_url, cfg.ldap_base, bind_dn=cfg.ldap_bind_dn,
                                password=cfg.ldap_password, filter=cfg.ldap_filter)
        except DirectoryError as exc:
            log.error("company directory from %s not loaded: %s", cfg.ldap_url, exc)
            return None
        for problem in result.problems:
            log.warning("company directory (LDAP): %s", problem)
        log.info("company directory: %d contacts from %s", len(result.contacts), cfg.ldap_url)
        return list(result.contacts)

    def name_for(self, number: str) -> str | None:
        """The directory's name for a number (callers, history)."""
        contact = self.directory.lookup_number(number) if number else None
        return contact.name if contact is not None else None

    def colleagues_to_watch(self, limit: int = 20) -> list[str]:
        """Whose presence the phone follows: the favourites' internal numbers."""
        users: list[str] = []
        for contact in self.directory.favourites():
            for number in contact.numbers:
                if number.value.isdigit() and len(number.value) <= 6 \
                        and number.value not in users:
                    users.append(number.value)
                    break
        return users[:limit]

    def blf_changed(self, user: str, state: str, caller: str = "",
                    pickup: ev.Pickup | None = None, terminal: int = 0) -> None:
        """A watched colleague's line state (the dialog watcher): idle, ringing, busy; while
        ringing, the call's identifiers for a pickup when the PBX gave them."""
        self.blf[user] = (state, caller)
        if pickup is not None:
            self.pickups[user] = pickup
        else:
            self.pickups.pop(user, None)
        log.info("BLF %s: %s%s", user, state, f" (from {caller})" if caller else "")
        self.refresh()

    def _publish_referral(self, available: bool, note: str, activity: str) -> None:
        for index, line in enumerate(self.config.lines):
            if line.publish_presence and line.register:
                self.engine.publish_presence(index, available, note, activity)

    def _on_PresenceChanged(self, event: ev.PresenceChanged) -> None:
        self.presence[event.user] = (event.available, event.note)
        self.refresh()

    def presence_text(self, number: str) -> str:
        """A colleague's referral as their presence shows it, and their line's state where a
        BLF key follows it (contact cards)."""
        note = self.presence.get(number, (True, ""))[1]
        line = self.blf.get(number, ("unknown", ""))[0]
        words = text(f"colleague_{line}", self.config.device.language) \
            if line != "unknown" else ""
        return " – ".join(part for part in (words, note) if part)  # a card row each

    def _history_view(self, terminal: Terminal) -> ListView | None:
        if self.history is None:
            return None
        return HistoryView(self.history, self.config.device.language, self._tz, self.name_for)

    def _directory_view(self, terminal: Terminal) -> ListView:
        return DirectoryView(self.directory, self.personal, self.config.device.language,
                             self.presence_text, now=self.clock.now)

    def _referral_view(self, terminal: Terminal) -> ListView:
        return ReferralMenu(self.referral, self.config.device.language)

    def _menu_view(self, terminal: Terminal) -> ListView:
        """The main menu: referral, history and contacts, then the settings."""
        extra = [(lambda lang: ReferralMenu(self.referral, lang).title,
                  lambda: self._referral_view(terminal)),
                 (lambda lang: text("history", lang),
                  lambda: self._history_view(terminal) or ListView("-")),
                 (lambda lang: text("directory", lang), lambda: self._directory_view(terminal))]
        return main_menu(PhoneSettings(self), extra)

    def apply_config(self, new: PhoneConfig) -> None:
        """Use a changed config at once; what only a restart can change is logged."""
        old, self.config = self.config, new
        later = needs_restart(old, new)
        if later:
            log.warning("settings that take effect after a restart: %s", ", ".join(later))
        self.tones = tone_set(new.device.tone_country)
        self._tz = ZoneInfo(new.device.time_zone)
        self._lines_changed(old, new)
        if new.directory.file != old.directory.file:
            self.directory.set_company(self._company_contacts(self._data_dir))
        if (new.directory != old.directory or new.blf != old.blf
                or new.lines[:1] != old.lines[:1]) and self.on_lists_changed is not None:
            self.on_lists_changed(old, new)  # LDAP directory and BLF keys: the runtime's
        for terminal in self.terminals:
            terminal.config_changed()
        self.referral.rearm_publish()
        if self.on_config_applied is not None:
            self.on_config_applied(new)
        self.refresh()

    def _lines_changed(self, old: PhoneConfig, new: PhoneConfig) -> None:
        """Lines whose account changed register again, live; added or removed lines wait for
        a restart (the SIP stack makes its accounts at start)."""
        for index, (before, after) in enumerate(zip(old.lines, new.lines, strict=False)):
            if _account_view(before) == _account_view(after):
                continue
            self._cancel_retry(index)
            self.registrations[index] = LineRegistration(enabled=after.register,
                                                         rng=self.registrations[index].rng)
            self.engine.reconfigure_line(index, after)

    def new_messages(self, lines: list[int]) -> int:
        """New voice messages: the PBX's (message-waiting) and the phone's own mailboxes."""
        return sum(self.messages.get(line, (0, 0))[0] + self._own_messages(line)[0]
                   for line in lines)

    def _own_messages(self, line: int) -> tuple[int, int]:
        return self.menus.counts(line) if self.menus is not None else (0, 0)

    # -- the phone's own voicemail and menus (firmware.ivr) ------------------------------------
    def _on_PromptFinished(self, event: ev.PromptFinished) -> None:
        if self.menus is not None:
            self.menus.prompt_finished(event.session, event.token)

    def _on_SilenceHeard(self, event: ev.SilenceHeard) -> None:
        if self.menus is not None:
            self.menus.silence(event.session)

    def _on_MenuRecordingStopped(self, event: ev.MenuRecordingStopped) -> None:
        if self.menus is not None:
            self.menus.recording_stopped(event.session, event.path)

    def _on_RecordingStopped(self, event: ev.RecordingStopped) -> None:
        if self.recordings is None:
            return
        try:
            done = self.recordings.finish(Path(event.path), wait_closed=0.5)
        except (RecordingError, OSError) as exc:
            log.error("recording %s could not be finished: %s", event.path, exc)
            return
        if done is not None:
            log.info("recording saved: %s (%.1f s)", done.name, done.seconds)

    def _on_DtmfReceived(self, event: ev.DtmfReceived) -> None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.dtmf += event.digit
            call.dtmf_methods += {"rfc4733": "r", "info": "i", "inband": "b"}.get(event.method,
                                                                                   "?")
            log.info("call %s: key %s (%s)", call.id, event.digit, event.method)
        if self.menus is not None and self.menus.owns(event.call_id):
            self.menus.digit(event.call_id, event.digit, event.method)

    def _on_CommandFailed(self, event: ev.CommandFailed) -> None:
        log.warning("SIP command %s failed: %s", event.command, event.message)
        if event.command == "make_call" and event.call_id in self.calls:
            self._on_CallStateChanged(ev.CallStateChanged(event.call_id, "disconnected", 0,
                                                          event.message))
        elif event.command == "transfer":
            for terminal in self.terminals:
                terminal.transfer_command_failed(event.message)

    def _owner(self, call: Call) -> Terminal | None:
        for terminal in self.terminals:
            if call is terminal.call or call is terminal.alerting or \
                    call in terminal.background or call in terminal.conference or (
                    terminal.transfer is not None and call is terminal.transfer.call):
                return terminal
        return None

    # -- what the control API reads ------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "device": {"name": self.config.device.name, "language": self.config.device.language,
                       "time": self.wall_time().isoformat(timespec="seconds")},
            "lines": [self._line_status(i, now) for i in range(len(self.config.lines))],
            "calls": [self._call_status(c, now) for c in self.calls.values()],
            "terminals": [t.status() for t in self.terminals],
            "audio": self.audio.status() if self.audio is not None else None,
            "referral": {"text": self.referral.text(), "available": self.referral.available},
            "presence": {user: {"available": a, "note": n}
                         for user, (a, n) in self.presence.items()},
            "blf": {user: {"state": s, "caller": c} for user, (s, c) in self.blf.items()},
            "missed_calls": self.missed_calls(),
            "menus": self.menus.status() if self.menus is not None else [],
            "provisioning": self.provisioning,
            "firmware": self.firmware_status() if self.firmware_status is not None else None,
        }

    def _line_status(self, index: int, now: float) -> dict[str, Any]:
        cfg, reg = self.config.lines[index], self.registrations[index]
        return {
            "index": index, "user": cfg.user, "label": cfg.label or cfg.user,
            "registered": reg.state is RegState.REGISTERED, "state": reg.state.value,
            "code": reg.code, "reason": reg.reason, "failures": reg.failures,
            "messages": dict(zip(("new", "old"), self.messages.get(index, (0, 0)),
                                 strict=True)),
            "voicemail": dict(zip(("new", "saved"), self._own_messages(index), strict=True)),
            "next_retry_in": None if reg.retry_at is None else max(0.0, reg.retry_at - now),
        }

    @staticmethod
    def _call_status(call: Call, now: float) -> dict[str, Any]:
        return {
            "id": call.id, "state": call.state.value, "direction": call.direction,
            "line": call.line, "remote": call.number, "remote_name": call.remote_name,
            "duration": round(call.duration(now), 1), "dtmf": call.dtmf,
            "held": call.held, "remote_held": call.remote_held,
            "dtmf_methods": call.dtmf_methods,
        }


def _account_view(line: LineConfig) -> LineConfig:
    """A line without what the SIP account does not hold (label, ringtone, auto answer,
    DTMF mode: read at each use), to tell whether its account must change."""
    return dataclasses.replace(line, label="", ringtone="", auto_answer=False, dtmf_mode="")
