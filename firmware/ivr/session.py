"""One touch-tone menu session: the `MenuHost` side of a `MenuRunner`.

A session belongs to a call the phone answered for its user (the caller tree: announcement,
message, remote access) or to the owner at the desk (the owner or referral tree). It turns
prompt names into files (`PromptLibrary`, with the placeholders of `firmware.ivr.menus`
filled in), carries out the menus' actions on the mailbox and the referral, and asks the SIP
engine to play, record and hang up. All on the controller's loop; engine replies come back as
events (`prompt_finished`, `recording_stopped`, digits).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware.ivr.engine import END, RETRY, MenuRunner, Node
from firmware.ivr_speech import (
    KIND_WORDS,
    PROMPT_TEXTS,
    say_date,
    say_digits,
    say_envelope,
    say_referral,
    say_time,
)
from firmware.referral import ReferralError, make_referral
from firmware.voicemail import MailboxFull, Message

if TYPE_CHECKING:
    from firmware.ivr.service import MenuService

log = logging.getLogger("luren.ivr")


@dataclass
class Caller:
    """Who a call the phone answered comes from, and why it answered."""

    number: str
    name: str
    reason: str  # "away", "busy" or "no_answer"
    received: datetime


@dataclass
class _Recording:
    kind: str  # "message" or "greeting"
    part: Path
    keep: bool = True


@dataclass
class _Listening:
    """The owner's place in the message list."""

    messages: list[Message] = field(default_factory=list)
    position: int = 0
    playing: str = ""  # the message whose audio is playing now


class MenuSession:
    """A running menu for one call (`call_id`) or for the desk (`call_id` is None)."""

    def __init__(self, service: MenuService, session_id: str, tree: dict[str, Node], start: str,
                 *, line: int, language: str, call_id: str | None = None,
                 caller: Caller | None = None) -> None:
        self.service, self.id = service, session_id
        self.line, self.language = line, language
        self.call_id, self.caller = call_id, caller
        self.mailbox = service.mailbox(line)
        self.runner = MenuRunner(tree, start, self, service.clock)
        self._token = 0
        self._ending = False
        self._recording: _Recording | None = None
        self._listening = _Listening()
        self._referral_kind = ""
        self._out_of_band = False

    # -- the engine's replies -----------------------------------------------------------
    def start(self) -> None:
        self.runner.start()

    def digit(self, key: str, method: str = "") -> None:
        """A key from the caller. Once keys come out of band (RFC 4733, SIP INFO), tones
        heard in the audio are ignored: a phone that sends both would press every key twice."""
        if method == "inband" and self._out_of_band:
            return
        if method in ("rfc4733", "info"):
            self._out_of_band = True
        self.runner.digit(key)

    def silence(self) -> None:
        """A message went quiet: the same as the caller pressing # to end it."""
        if self._recording is not None and self._recording.kind == "message":
            log.info("menu %s: silence ends the message", self.id)
            self.runner.digit("#")

    def prompt_finished(self, token: int) -> None:
        if token != self._token:
            return  # a prompt that was stopped or replaced
        playing, self._listening.playing = self._listening.playing, ""
        if playing:
            self.mailbox.mark_saved(playing)  # heard to the end: now a saved message
            self._listening.messages = [dataclasses.replace(m, new=False) if m.id == playing
                                        else m for m in self._listening.messages]
            self.service.messages_changed(self.line)
        if self._ending:
            self.service.hang_up(self)
        else:
            self.runner.prompt_finished()

    def recording_stopped(self, path: str) -> None:
        recording, self._recording = self._recording, None
        if recording is None or str(recording.part) != path:
            log.warning("menu %s: a recording it did not start stopped: %s", self.id, path)
            return
        if recording.kind == "greeting":
            if not recording.keep:
                recording.part.unlink(missing_ok=True)  # the old greeting stays
            elif self.mailbox.finish_greeting(recording.part, wait_closed=0.5):
                log.info("line %d: new personal greeting", self.line + 1)
            return
        message = self.mailbox.finish_message(recording.part, wait_closed=0.5)
        if message is not None:
            log.info("line %d: new message from %s, %.1f s", self.line + 1,
                     message.caller or "unknown caller", message.seconds)
            self.service.messages_changed(self.line)

    def call_ended(self) -> None:
        self.runner.stop()

    @property
    def recording(self) -> bool:
        return self._recording is not None

    # -- MenuHost ---------------------------------------------------------------------------
    def play(self, prompts: list[str]) -> None:
        self._token += 1
        self._listening.playing = ""
        paths = [str(path) for name in prompts for path in self._expand(name)]
        self.service.engine.ivr_play(self.id, paths, self._token)

    def stop_prompts(self) -> None:
        self._token += 1
        self._listening.playing = ""
        self.service.engine.ivr_stop_prompts(self.id)

    def end(self) -> None:
        self._ending = True
        if self._recording is not None:
            self.service.engine.ivr_stop_recording(self.id)

    def act(self, action: str, arg: Any) -> str | None:
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            log.error("menu %s: no action %r", self.id, action)
            return None
        result: str | None = handler(arg)
        return result

    # -- prompts ----------------------------------------------------------------------------
    def _expand(self, name: str) -> list[Path]:
        if name == "announcement":
            files = self._announcement()
            log.info("menu %s: announcing %s", self.id, " ".join(f.stem for f in files))
            return files
        if name == "greeting":
            greeting = self.mailbox.greeting()
            return [greeting] if greeting else self._files(["greeting_default"])
        if name == "personal_greeting":
            greeting = self.mailbox.greeting()
            return [greeting] if greeting else self._files(["no_greeting"])
        if name == "current_message":
            return self._current_message()
        if name.startswith("caller_option_"):
            key = name.rsplit("_", 1)[1]
            action = self.service.caller_options().get(key, ("", None))[0]
            words = "for_switchboard" if action == "transfer" else "to_leave_message"
            return self._files(["press", *say_digits(key, self.language), words])
        if name.startswith("referral_option_"):
            return self._referral_option(name.rsplit("_", 1)[1])
        return self._files([name])

    def _files(self, names: list[str]) -> list[Path]:
        library = self.service.library
        return [path for name in names if (path := library.path(name, self.language))]

    def _announcement(self) -> list[Path]:
        """"Anna Berg är på lunch till tretton noll noll" / "... is on another call"."""
        name = self.service.user_name(self.line)
        spoken = self.service.library.spoken(name, self.language) if name else None
        head = [spoken] if spoken else self._files(
            say_digits(self.service.user_number(self.line), self.language))
        reason = self.caller.reason if self.caller else "no_answer"
        if reason == "busy":
            return head + self._files(["is_busy"])
        if reason == "away":
            return head + self._files(self._referral_words())
        return head + self._files(["is_not_available"])

    def _referral_words(self) -> list[str]:
        referral = self.service.referral()
        kind = referral.type_key
        if f"referral_{kind}" not in PROMPT_TEXTS:
            return ["is_not_available"]
        if referral.until is None:
            return say_referral(kind, self.language)
        now = self.service.now_local()
        until = referral.until.astimezone(now.tzinfo)
        words = say_referral(kind, self.language, until.time())
        if until.date() != now.date() and len(words) > 1:  # "till fredag den ..., klockan 9"
            words = [words[0], "until", *say_date(until.date(), self.language, now.date()),
                     "at", *say_time(until.hour, until.minute, self.language)]
        return words

    def _referral_option(self, key: str) -> list[Path]:
        kind = self.service.referral_keys().get(key, "")
        head = self._files(["press", *say_digits(key, self.language)])
        if kind in KIND_WORDS:
            return head + self._files([f"kind_{kind}"])
        custom = self.service.referral_type_name(kind, self.language)
        spoken = self.service.library.spoken(custom, self.language) if custom else None
        return head + ([spoken] if spoken else [])

    def _current_message(self) -> list[Path]:
        state = self._listening
        if not state.messages:
            return self._files(["no_messages"])
        message = state.messages[state.position]
        today = self.service.now_local().date()
        received = message.received.astimezone(self.service.now_local().tzinfo)
        envelope = say_envelope(received, message.caller, self.language, new=message.new,
                                today=today)
        if message.new:
            state.playing = message.id
        return [*self._files(envelope), message.path, *self._files(["message_menu"])]

    # -- actions: the owner's messages and greeting --------------------------------------------
    def _do_start_messages(self, _: Any) -> str | None:
        self._listening = _Listening(self.mailbox.messages())
        return None if self._listening.messages else "no_messages"

    def _do_next_message(self, _: Any) -> str | None:
        state = self._listening
        if state.position + 1 >= len(state.messages):
            return "end_of_messages"
        state.position += 1
        return None

    def _do_previous_message(self, _: Any) -> str | None:
        self._listening.position = max(0, self._listening.position - 1)
        return None

    def _do_delete_message(self, _: Any) -> str | None:
        state = self._listening
        if not state.messages:
            return "no_messages"
        message = state.messages.pop(state.position)
        self.mailbox.delete(message.id)
        self.service.messages_changed(self.line)
        log.info("line %d: message %s deleted by its owner", self.line + 1, message.id)
        if state.position >= len(state.messages):
            state.position = max(0, len(state.messages) - 1)
            return "end_of_messages"
        return None

    def _do_start_recording(self, _: Any) -> str | None:
        if self._recording is None:
            part = self.mailbox.start_greeting()
            self._recording = _Recording("greeting", part)
            self.service.engine.ivr_record(self.id, str(part), 0)
        return None

    def _do_stop_recording(self, _: Any) -> str | None:
        if self._recording is not None:
            self.service.engine.ivr_stop_recording(self.id)
        return None

    def _do_cancel_recording(self, _: Any) -> str | None:
        if self._recording is not None:
            self._recording.keep = False
            self.service.engine.ivr_stop_recording(self.id)
        return None

    def _do_delete_greeting(self, _: Any) -> str | None:
        self.mailbox.delete_greeting()
        return None

    # -- actions: callers ---------------------------------------------------------------------
    def _do_transfer(self, number: Any) -> str | None:
        assert self.call_id is not None
        log.info("menu %s: caller asked for %s", self.id, number)
        self.service.engine.transfer(self.call_id, str(number))
        return None

    def _do_leave_message(self, _: Any) -> str | None:
        return "mailbox_full" if self.mailbox.full() else None

    def _do_start_message(self, _: Any) -> str | None:
        if self._recording is not None or self.caller is None:
            return None
        try:
            part = self.mailbox.start_message(self.caller.number, self.caller.name,
                                              self.caller.received)
        except MailboxFull as exc:
            log.warning("line %d: %s", self.line + 1, exc)
            self.runner.stop()
            self.play(["mailbox_full", "goodbye"])
            self.end()
            return None
        self._recording = _Recording("message", part)
        self.service.engine.ivr_record(self.id, str(part), self.service.silence_seconds())
        return None

    def _do_stop_message(self, _: Any) -> str | None:
        if self._recording is not None:
            self.service.engine.ivr_stop_recording(self.id)
        return None

    # -- actions: referral and PIN ----------------------------------------------------------------
    def _do_set_referral(self, kind: Any) -> str | None:
        """Set at once with the type's usual length; minutes, if entered next, replace it."""
        self._referral_kind = str(kind)
        return self._set_referral(None)

    def _do_referral_minutes(self, digits: Any) -> str | None:
        return self._set_referral(int(digits)) if digits else None

    def _set_referral(self, minutes: int | None) -> str | None:
        kind = self._referral_kind  # no minutes: the type's own length, if it has one
        try:
            self.service.set_referral(make_referral(
                self.service.now_local(), kind, minutes=minutes,
                types=self.service.referral_types()))
        except (ReferralError, KeyError) as exc:
            log.warning("menu %s: referral %s for %s min refused: %s", self.id, kind, minutes,
                        exc)
            return RETRY
        return None

    def _do_pin(self, digits: Any) -> str | None:
        verdict = self.service.check_pin(self.line, str(digits))
        if verdict == "locked":
            return END
        return None if verdict == "ok" else RETRY
