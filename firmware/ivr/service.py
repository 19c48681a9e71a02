"""The phone's own voicemail and touch-tone menus, as the controller sees them.

`MenuService` decides nothing about *when* the phone answers (the terminal does: referral not
available, busy, no answer); it answers when asked, runs a `MenuSession` per answered call and
one for the owner at the desk, keeps a `Mailbox` per line, counts wrong PINs (3 in a row lock
remote access for `lockout_minutes`, across calls), and routes the engine's menu events. The
message-waiting LED and count come from `counts()` (docs/voicemail.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware.ivr.menus import (
    CALLER_START,
    OWNER_START,
    REFERRAL_START,
    caller_tree,
    owner_menu,
    referral_menu,
)
from firmware.ivr.prompts import DEFAULT_ROOT, PromptLibrary
from firmware.ivr.session import Caller, MenuSession
from firmware.referral import BUILTIN_TYPES, Referral, ReferralType
from firmware.sip.events import LOCAL_SESSION as LOCAL
from firmware.voicemail import Mailbox

if TYPE_CHECKING:
    from firmware.call import Call
    from firmware.phone import Phone
    from firmware.terminal import Terminal

log = logging.getLogger("luren.ivr")

PIN_ATTEMPTS = 3
# Touch-tone referral keys: the built-in types, then the company's own (keys 7 and 8).
REFERRAL_KEYS = ("available", "meeting", "lunch", "busy", "gone", "vacation", "sick")


class MenuService:
    """Voicemail, caller announcements and the touch-tone menus of one phone."""

    def __init__(self, phone: Phone, data_dir: Path) -> None:
        self.phone = phone
        self._dir = data_dir / "voicemail"
        cfg = phone.config.voicemail
        root = Path(cfg.prompts_dir) if cfg.prompts_dir else DEFAULT_ROOT
        self.library = PromptLibrary(root, data_dir / "prompts")
        self._mailboxes: dict[int, Mailbox] = {}
        self.sessions: dict[str, MenuSession] = {}
        self._closing: dict[str, MenuSession] = {}  # ended, its recorder still closing
        self._local_terminal: Terminal | None = None
        self._wrong_pins: dict[int, int] = {}
        self._locked_until: dict[int, float] = {}

    # -- what the phone provides ---------------------------------------------------------
    @property
    def engine(self) -> Any:
        return self.phone.engine

    @property
    def clock(self) -> Any:
        return self.phone.clock

    @property
    def enabled(self) -> bool:
        return self.phone.config.voicemail.enabled

    def language(self) -> str:
        return self.phone.config.voicemail.language or self.phone.config.device.language

    def mailbox(self, line: int) -> Mailbox:
        box = self._mailboxes.get(line)
        if box is None:
            cfg = self.phone.config.voicemail
            box = self._mailboxes[line] = Mailbox(
                self._dir / f"line{line + 1}", max_messages=cfg.max_messages,
                max_seconds_total=cfg.max_minutes * 60.0, min_seconds=float(cfg.min_message))
        return box

    def start(self) -> None:
        """Finish messages a power cut interrupted; speak the users' names ahead (in the
        background: espeak-ng takes a moment, a caller should not wait for it)."""
        if self.enabled:
            names = [self.user_name(line) for line in range(len(self.phone.config.lines))]
            language = self.language()
            threading.Thread(target=lambda: [self.library.spoken(name, language)
                                             for name in names if name],
                             name="speak-names", daemon=True).start()
        for line in range(len(self.phone.config.lines)):
            for message in self.mailbox(line).recover():
                log.warning("line %d: recovered the message %s (%.1f s) left by a power cut "
                            "or crash", line + 1, message.id, message.seconds)

    def counts(self, line: int) -> tuple[int, int]:
        """(new, saved) messages in the line's mailbox."""
        return self.mailbox(line).counts() if self.enabled else (0, 0)

    def messages_changed(self, line: int) -> None:
        new, saved = self.counts(line)
        log.info("line %d: %d new and %d saved messages", line + 1, new, saved)
        self.phone.refresh()

    def user_name(self, line: int) -> str:
        return self.phone.config.lines[line].display_name

    def user_number(self, line: int) -> str:
        return self.phone.config.lines[line].user

    def referral(self) -> Referral:
        return self.phone.referral.current()

    def now_local(self) -> datetime:
        return self.phone.referral.now_local()

    def referral_types(self) -> dict[str, ReferralType]:
        return dict(self.phone.referral.types)

    def referral_keys(self) -> dict[str, str]:
        """Key -> referral type: 0 available, 1 meeting, ... then the company's own."""
        kinds = [*REFERRAL_KEYS, *(t.key for t in self.phone.referral.custom)][:9]
        return {str(index): kind for index, kind in enumerate(kinds)}

    def referral_type_name(self, kind: str, language: str) -> str:
        found = self.phone.referral.types.get(kind) or BUILTIN_TYPES.get(kind)
        return found.name(language) if found else ""

    def set_referral(self, referral: Referral) -> None:
        self.phone.referral.set(referral)  # kept and published like one set from the keys

    def caller_options(self) -> dict[str, tuple[str, Any]]:
        switchboard = self.phone.config.voicemail.switchboard
        options: dict[str, tuple[str, Any]] = {"1": ("transfer", switchboard)} \
            if switchboard else {}
        options["2"] = ("leave_message", None)
        return options

    def silence_seconds(self) -> float:
        return float(self.phone.config.voicemail.silence)

    # -- PIN -------------------------------------------------------------------------------
    def check_pin(self, line: int, digits: str) -> str:
        """"ok", "wrong", or "locked" (3 wrong in a row, across calls, lock it a while)."""
        now = self.clock.now()
        if self._locked_until.get(line, 0.0) > now:
            log.warning("line %d: remote access refused: locked after wrong PINs", line + 1)
            return "locked"
        pin = self.phone.config.voicemail.pin
        if pin and digits == pin:
            self._wrong_pins.pop(line, None)
            log.info("line %d: remote access with the right PIN", line + 1)
            return "ok"
        count = self._wrong_pins[line] = self._wrong_pins.get(line, 0) + 1
        log.warning("line %d: wrong PIN for remote access (%d in a row)", line + 1, count)
        if count >= PIN_ATTEMPTS:
            minutes = self.phone.config.voicemail.lockout_minutes
            self._locked_until[line] = now + minutes * 60.0
            self._wrong_pins.pop(line, None)
            log.warning("line %d: remote access locked for %d minutes", line + 1, minutes)
            return "locked"
        return "wrong"

    # -- calls the phone answers ------------------------------------------------------------
    def answer(self, call: Call, reason: str) -> bool:
        """Answer `call` for the user ("away", "busy", "no_answer"); False when off."""
        cfg = self.phone.config.voicemail
        if not cfg.enabled:
            return False
        statuses = self.referral_keys()
        tree = caller_tree(self.caller_options(), statuses, remote=bool(cfg.pin),
                           timeout_s=float(cfg.menu_timeout),
                           max_message_s=float(cfg.max_message))
        caller = Caller(call.number, call.remote_name, reason, self.phone.wall_time())
        session = MenuSession(self, call.id, tree, CALLER_START, line=call.line,
                              language=self.language(), call_id=call.id, caller=caller)
        self.sessions[call.id] = session
        log.info("answering call %s from %s for the user (%s)", call.id,
                 call.number or "unknown", reason)
        self.engine.ivr_answer(call.id)
        with self._storage("answering"):
            session.start()
        return True

    @contextlib.contextmanager
    def _storage(self, what: str) -> Iterator[None]:
        """The mailbox is on flash: a full or failing disk is logged, the call goes on."""
        try:
            yield
        except OSError as exc:
            log.error("voicemail storage failed while %s: %s", what, exc)

    def owns(self, call_id: str) -> bool:
        return call_id in self.sessions

    def digit(self, session_id: str, key: str, method: str = "") -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            with self._storage(f"handling key {key}"):
                session.digit(key, method)

    def call_state(self, call_id: str, state: str) -> None:
        session = self.sessions.get(call_id)
        if session is not None and state == "disconnected":
            session.call_ended()
            del self.sessions[call_id]

    def transfer_status(self, call_id: str, code: int, final: bool) -> None:
        """The far end reports on the transfer a caller asked for: done means hang up."""
        session = self.sessions.get(call_id)
        if session is None or not final:
            return
        if code // 100 == 2:
            self.engine.hangup(call_id)
        else:
            log.warning("call %s: transfer failed (%d): taking a message instead", call_id, code)
            session.play(["transfer_failed", "goodbye"])
            session.end()

    def hang_up(self, session: MenuSession) -> None:
        if session.call_id is not None:
            self.engine.hangup(session.call_id)
        elif self._local_terminal is not None:
            self._local_terminal.local_menu_over()

    # -- the owner at the desk ---------------------------------------------------------------
    def local_menu(self, number: str) -> str | None:
        """Which menu dialling `number` opens on this phone, if any."""
        cfg = self.phone.config.voicemail
        if not cfg.enabled or not number:
            return None
        if number == self.phone.config.device.voicemail_number:
            return OWNER_START
        if cfg.referral_code and number == cfg.referral_code:
            return REFERRAL_START
        return None

    def start_local(self, terminal: Terminal, start: str) -> None:
        """The owner's menu (or the referral menu) in the terminal's earpiece."""
        self.stop_local()
        tree = owner_menu() if start == OWNER_START else referral_menu(self.referral_keys())
        self._local_terminal = terminal
        self.engine.ivr_local(True, terminal=terminal.index)
        session = MenuSession(self, LOCAL, tree, start, line=terminal.line,
                              language=self.language())
        self.sessions[LOCAL] = session
        with self._storage("opening the menu"):
            session.start()

    def local_digit(self, key: str) -> None:
        self.digit(LOCAL, key)

    def stop_local(self) -> None:
        session = self.sessions.pop(LOCAL, None)
        terminal, self._local_terminal = self._local_terminal, None
        if session is not None:
            session.call_ended()
            if session.recording:
                self._closing[LOCAL] = session
            self.engine.ivr_local(False, terminal=terminal.index if terminal else 0)

    # -- engine events ----------------------------------------------------------------------
    def prompt_finished(self, session_id: str, token: int) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            with self._storage("a prompt ended"):
                session.prompt_finished(token)

    def silence(self, session_id: str) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            with self._storage("a message went quiet"):
                session.silence()

    def recording_stopped(self, session_id: str, path: str) -> None:
        session = self.sessions.get(session_id) or self._closing.pop(session_id, None)
        if session is not None:
            with self._storage(f"finishing {path}"):
                session.recording_stopped(path)
        else:
            log.warning("a menu recording %s stopped without its session: left for the "
                        "next start-up to finish", path)

    def status(self) -> list[dict[str, Any]]:
        return [{"session": s.id, "line": s.line, "node": s.runner.current,
                 "caller": s.caller.number if s.caller else "",
                 "reason": s.caller.reason if s.caller else "owner"}
                for s in self.sessions.values()]
