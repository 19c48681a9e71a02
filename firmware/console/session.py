"""One technician at the serial console: login, the command prompt, streams, idle logout.

Bytes come in through `feed` (from `firmware.console.port`), bytes go out through `write`; all
of it on the controller's loop. The line editor (`lineedit`) makes the keys into lines, the
login (`auth`) decides who may in, the command table (`commands`) does the work. Everything
written is masked for secrets and made safe for a dumb terminal: only printable characters,
CR LF line ends, no escape sequence from a log line or a SIP message can reach the terminal.

    Luren 0.4.0 technician console (sim, 02:00:00:00:10:01)
    Password (or the one-time code shown on the phone: Settings, Info):
    luren> status
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from firmware.console.auth import ConsoleLogin
from firmware.console.commands import Reply, Services, Stream, completions, execute
from firmware.console.lineedit import EndOfInput, Interrupt, Line, LineEditor, Overlong

if TYPE_CHECKING:
    from firmware.clock import Clock, Timer

log = logging.getLogger("luren.console")

PROMPT: Final = "luren> "
PASSWORD_PROMPT: Final = "Password: "
MAX_LINE: Final = 1024
CRLF: Final = "\r\n"


def terminal_safe(text: str) -> str:
    """`text` with every character a dumb terminal could misread (ESC, other controls, C1)
    shown as '?'; tabs become spaces."""
    return "".join(" " if ch == "\t" else ch if ch.isprintable() else "?" for ch in text)


class ConsoleSession:
    def __init__(self, services: Services, login: ConsoleLogin, write: Callable[[bytes], None],
                 clock: Clock, *, idle_s: float, banner: str) -> None:
        self.services, self.login, self._write, self.clock = services, login, write, clock
        self.idle_s, self.banner = idle_s, banner
        self.logged_in = False
        self.editor = LineEditor(PASSWORD_PROMPT, max_line=MAX_LINE,
                                 complete=lambda text: completions(text) if self.logged_in
                                 else [])
        self.editor.secret = True
        self._busy: asyncio.Task[Reply] | None = None
        self._stream: Stream | None = None
        self._idle: Timer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- out -------------------------------------------------------------------------------
    def say(self, *lines: str) -> None:
        """Whole lines to the technician (masked, terminal-safe), on a line of their own."""
        masker = self.services.masker
        text = CRLF.join(terminal_safe(part) for line in lines
                         for part in masker.text(line).replace("\r\n", "\n").split("\n"))
        self._write((text + CRLF).encode("utf-8", "replace"))

    def _prompt(self) -> None:
        self._write(self.editor.start())

    # -- in --------------------------------------------------------------------------------
    def start(self) -> None:
        """The line is up: greet whoever is (or will be) there."""
        self._greet()

    def _greet(self) -> None:
        self.logged_in = False
        self.editor.secret = True
        self.editor.prompt = PASSWORD_PROMPT
        self.editor.reset()  # whatever was half typed is not the start of a password
        how = ("the one-time code shown on the phone (Settings, Info)"
               if self.login.uses_one_time_code else "the technician password")
        self._write(CRLF.encode())
        self.say(self.banner, f"Log in with {how}.")
        self._prompt()

    def feed(self, data: bytes) -> None:
        """Bytes from the line."""
        self._arm_idle()
        if self._stream is not None:  # any key ends a stream
            self._end_stream()
            return
        out, events = self.editor.feed(data)
        if out:
            self._write(out)
        for event in events:
            self._event(event)

    def _event(self, event: object) -> None:
        if self._busy is not None and not self._busy.done():
            if isinstance(event, Interrupt):
                self._busy.cancel()
            return  # typed while a command runs: ignored (said once it ends)
        if isinstance(event, Interrupt):
            self._prompt()
        elif isinstance(event, EndOfInput):
            if self.logged_in:
                self._logout("bye")
            else:
                self._prompt()
        elif isinstance(event, Overlong):
            self.say(f"line too long ({event.length} characters; at most {MAX_LINE}): ignored")
            self._prompt()
        elif isinstance(event, Line):
            if self.logged_in:
                self._command(event.text)
            else:
                self._password(event.text)

    def _password(self, secret: str) -> None:
        if not secret:
            self._greet()  # Enter on arrival: who we are and how to log in; nothing counted
            return
        result = self.login.attempt(secret)
        if not result.ok:
            self.say(result.message)
            self._prompt()
            return
        self.logged_in = True
        self.editor.secret = False
        self.editor.prompt = PROMPT
        self.say(result.message, "Type help for the commands, logout to leave.")
        self._prompt()

    def _command(self, line: str) -> None:
        words = line.strip()
        if words in ("logout", "exit", "quit"):
            self._logout("logged out")
            return
        if not words:
            self._prompt()
            return
        task = asyncio.get_running_loop().create_task(execute(self.services, line))
        self._busy = task
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Reply]) -> None:
        self._busy = None
        if task.cancelled() and not self.logged_in:
            return  # ended by a logout, which said so
        if task.cancelled():
            self.say("(interrupted)")
            self._prompt()
            return
        reply = task.result()
        if reply.lines:
            self.say(*reply.lines)
        if reply.stream is not None and self.logged_in:
            self._stream = reply.stream
            reply.stream.start(lambda text: self.say(text))
            return
        self._prompt()

    def _end_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            self.say("(stopped)")
            self._prompt()

    # -- leaving -----------------------------------------------------------------------------
    def _logout(self, why: str) -> None:
        self.logged_in = False
        self.editor.clear_history()  # the next technician does not see these commands
        if self._busy is not None:
            self._busy.cancel()
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.stop()
        self._write(CRLF.encode())  # off the half-typed line
        self.say(why)
        log.info("console: %s", why)
        self._greet()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self.clock.call_later(self.idle_s, self._idle_out)

    def _idle_out(self) -> None:
        self._idle = None
        if self.logged_in:
            self._logout(f"logged out after {self.idle_s / 60:.0f} min without input")

    def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
        if self._busy is not None:
            self._busy.cancel()
