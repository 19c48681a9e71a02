"""One technician at the serial console (firmware/console/session.py): bytes in through feed(),
bytes out through write(), a real Phone behind the commands and its manual clock for idle
logout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware.console.auth import CODE_LOGIN_TEXT, ConsoleLogin
from firmware.console.commands import COMMANDS, Command, Reply, Services
from firmware.console.masking import MASK
from firmware.console.session import (
    MAX_LINE,
    PASSWORD_PROMPT,
    PROMPT,
    ConsoleSession,
    terminal_safe,
)
from tests.unit.console_support import API_TOKEN, LDAP_PASSWORD, LINE_PASSWORD, Rig, make_rig

BANNER = "Luren test technician console (unit, 02:00:00:00:10:01)"
IDLE_S = 600.0
SECRETS = (LINE_PASSWORD, API_TOKEN, LDAP_PASSWORD)
TIMEOUT_S = 5.0


class Wire:
    """The technician's side of the line: every byte the session wrote, and a way to wait for
    what is still to come."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._grew: asyncio.Event | None = None

    def write(self, data: bytes) -> None:
        self.data += data
        if self._grew is not None:
            self._grew.set()

    def mark(self) -> int:
        """Where the output is now, for `since`."""
        return len(self.data)

    def since(self, mark: int = 0) -> str:
        """The output after `mark`, as text."""
        return self.data[mark:].decode("utf-8")

    async def wait(self, done: Callable[[str], bool], mark: int = 0) -> str:
        """The output since `mark` once `done` says it is complete (TimeoutError if never)."""
        async def until() -> str:
            self._grew = asyncio.Event()
            while not done(self.since(mark)):
                self._grew.clear()
                await self._grew.wait()
            return self.since(mark)

        return await asyncio.wait_for(until(), TIMEOUT_S)


class Console:
    """A session on a real phone, and the technician typing at it."""

    def __init__(self, rig: Rig, services: Services) -> None:
        self.rig, self.wire = rig, Wire()
        self.login = ConsoleLogin("", rig.data_dir / "state",
                                  lambda: rig.clock.wall_time().timestamp())
        self.session = ConsoleSession(services, self.login, self.wire.write, rig.clock,
                                      idle_s=IDLE_S, banner=BANNER)

    def type(self, text: str | bytes) -> str:
        """Feed `text`; what the session wrote back at once."""
        mark = self.wire.mark()
        self.session.feed(text.encode() if isinstance(text, str) else text)
        return self.wire.since(mark)

    def code(self) -> str:
        """The one-time code the phone shows now."""
        return self.login.one_time_code.current()

    def log_in(self) -> str:
        """Log in with the one-time code; what the session answered."""
        out = self.type(self.code() + "\r")
        assert self.session.logged_in, out
        return out

    async def run(self, line: str | bytes) -> str:
        """Type a command line; its output up to the next prompt."""
        mark = self.wire.mark()
        self.session.feed((line.encode() if isinstance(line, str) else line) + b"\r")
        return await self.wire.wait(lambda text: text.endswith(PROMPT), mark)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = make_rig(tmp_path / "data")
    yield made
    made.close()


@pytest.fixture
def services(rig: Rig) -> Services:
    return rig.services()


@pytest.fixture
def console(rig: Rig, services: Services) -> Iterator[Console]:
    made = Console(rig, services)
    made.session.start()
    yield made
    made.session.close()


def other_code(code: str) -> str:
    """A code that is certainly not `code`."""
    digits = code.replace(" ", "")
    return digits[:-1] + str((int(digits[-1]) + 1) % 10)


def assert_terminal_safe(data: bytes) -> None:
    """Only printable text (UTF-8), CR, LF, BS and BEL."""
    text = data.decode("utf-8")
    bad = sorted({ch for ch in text if not (ch.isprintable() or ch in "\r\n\b\x07")})
    assert not bad, bad


# --- login -------------------------------------------------------------------------------------


def test_start_greets_and_asks_for_the_code(console: Console) -> None:
    out = console.wire.since()
    assert out.startswith("\r\n" + BANNER + "\r\n")
    assert "Log in with the one-time code shown on the phone (Settings, Info)." in out
    assert out.endswith("\r\n" + PASSWORD_PROMPT)
    assert not console.session.logged_in


def test_enter_on_arrival_greets_again_without_counting_a_failure(console: Console) -> None:
    out = console.type("\r")
    assert BANNER in out and out.endswith(PASSWORD_PROMPT)
    assert "incorrect" not in out
    assert console.login.lockout.failures == 0


def test_a_wrong_code_is_refused_and_not_echoed(console: Console) -> None:
    wrong = other_code(console.code())
    out = console.type(wrong + "\r")
    assert "Login incorrect" in out and out.endswith(PASSWORD_PROMPT)
    assert wrong not in out
    assert not console.session.logged_in
    assert console.login.lockout.failures == 1


def test_the_one_time_code_logs_in_once(console: Console) -> None:
    code = console.code()
    out = console.type(code + "\r")
    assert console.session.logged_in
    assert CODE_LOGIN_TEXT in out and "Type help for the commands" in out
    assert out.endswith(PROMPT)
    assert code not in out and code.replace(" ", "") not in out
    assert console.code() != code


def test_repeated_failures_lock_the_login(console: Console) -> None:
    wrong = other_code(console.code())
    outs = [console.type(wrong + "\r") for _ in range(6)]
    assert "wait 30 s" in outs[-1]
    assert "wait" in console.type(console.code() + "\r")  # even the right code waits now
    assert not console.session.logged_in


def test_tab_completes_after_login_only(console: Console) -> None:
    assert console.type("sip reg\t") == ""  # nothing echoed while the password is typed
    console.type("\x15")  # Ctrl-U: forget it
    assert BANNER in console.type("\r")  # an empty line again: greeted, nothing counted
    assert console.login.lockout.failures == 0
    console.log_in()
    assert console.type("sip reg\t").endswith("sip register ")


# --- commands ------------------------------------------------------------------------------------


def test_a_command_runs_and_its_output_ends_with_the_prompt(console: Console) -> None:
    async def main() -> str:
        console.log_in()
        return await console.run("sip")

    out = asyncio.run(main())
    assert out == "sip\r\n  line 1 1001: registered\r\n" + PROMPT


def test_a_failing_command_says_why_and_prompts_again(console: Console) -> None:
    async def main() -> tuple[str, str]:
        console.log_in()
        return await console.run("sip register 9"), await console.run("frob")

    register, frob = asyncio.run(main())
    assert "LINE must be a number from 1 to 1" in register and register.endswith(PROMPT)
    assert "unknown command 'frob'" in frob and console.session.logged_in


def test_ctrl_c_interrupts_a_running_command(console: Console,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    async def hangs(s: Services, args: list[str]) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("never")

    monkeypatch.setitem(COMMANDS, "hang", Command("hang", "hang", "waits forever", hangs))

    async def main() -> str:
        console.log_in()
        mark = console.wire.mark()
        console.type("hang\r")
        console.type("status\r")  # typed while it runs: ignored
        console.type("\x03")
        out = await console.wire.wait(lambda text: text.endswith(PROMPT), mark)
        return out + await console.run("sip")

    out = asyncio.run(main())
    assert "(interrupted)" in out
    assert "Luren test, up" not in out  # the status typed meanwhile did not run
    assert out.endswith("  line 1 1001: registered\r\n" + PROMPT)


@pytest.mark.parametrize("word", ["logout", "exit", "quit", "  logout  "])
def test_logout_goes_back_to_the_login(console: Console, word: str) -> None:
    console.log_in()
    out = console.type(word + "\r")
    assert "logged out" in out and BANNER in out and out.endswith(PASSWORD_PROMPT)
    assert not console.session.logged_in


def test_ctrl_d_logs_out(console: Console) -> None:
    console.log_in()
    out = console.type(b"\x04")
    assert "bye" in out and out.endswith(PASSWORD_PROMPT)
    assert not console.session.logged_in


def test_ctrl_d_at_the_login_only_prompts_again(console: Console) -> None:
    out = console.type(b"\x04")
    assert out.endswith(PASSWORD_PROMPT) and "bye" not in out
    assert console.login.lockout.failures == 0


@pytest.mark.parametrize("logged_in", [True, False])
def test_a_10_kb_line_is_refused_as_too_long(console: Console, logged_in: bool) -> None:
    if logged_in:
        console.log_in()
    out = console.type(b"x" * 10_000 + b"\r")
    assert f"line too long (10000 characters; at most {MAX_LINE}): ignored" in out
    assert out.count("\x07") == 1  # one bell for the overflow
    assert out.endswith(PROMPT if logged_in else PASSWORD_PROMPT)
    assert console.session.logged_in is logged_in
    assert console.login.lockout.failures == 0


def test_a_stream_runs_until_any_key(console: Console, rig: Rig) -> None:
    terminal = rig.phone.terminals[0]

    async def main() -> tuple[str, str]:
        console.log_in()
        mark = console.wire.mark()
        console.type("test keys\r")
        await console.wire.wait(lambda text: "press any key here to stop\r\n" in text, mark)
        terminal.board.key("5")
        terminal.board.hook(True)
        running = console.wire.since(mark)
        assert terminal.board.on_key != terminal.key
        stop = console.wire.mark()
        console.type("x")
        return running, await console.wire.wait(lambda text: text.endswith(PROMPT), stop)

    running, stopped = asyncio.run(main())
    assert "key 5\r\n" in running and "hook off (lifted)\r\n" in running
    assert stopped == "(stopped)\r\n" + PROMPT  # the key only stopped it
    assert terminal.board.on_key == terminal.key and terminal.board.on_hook == terminal.hook


# --- idle logout ------------------------------------------------------------------------------


def test_idle_logout_after_idle_s(console: Console, rig: Rig) -> None:
    console.log_in()
    rig.clock.advance(IDLE_S - 1)
    assert console.session.logged_in
    mark = console.wire.mark()
    rig.clock.advance(1)
    out = console.wire.since(mark)
    assert not console.session.logged_in
    assert f"logged out after {IDLE_S / 60:.0f} min without input" in out
    assert BANNER in out and out.endswith(PASSWORD_PROMPT)


def test_typing_keeps_the_session(console: Console, rig: Rig) -> None:
    console.log_in()
    rig.clock.advance(IDLE_S - 1)
    console.type("s")
    rig.clock.advance(IDLE_S - 1)
    assert console.session.logged_in
    rig.clock.advance(1)
    assert not console.session.logged_in


def test_half_typed_text_is_not_the_start_of_the_next_password(console: Console,
                                                               rig: Rig) -> None:
    console.log_in()
    assert console.type("abc") == "abc"
    rig.clock.advance(IDLE_S)
    assert not console.session.logged_in
    out = console.type(console.code() + "\r")
    assert console.session.logged_in, out


def test_idle_logout_stops_a_stream(console: Console, rig: Rig) -> None:
    terminal = rig.phone.terminals[0]

    async def main() -> None:
        console.log_in()
        mark = console.wire.mark()
        console.type("test keys\r")
        await console.wire.wait(lambda text: "press any key here to stop" in text, mark)

    asyncio.run(main())
    assert terminal.board.on_key != terminal.key
    rig.clock.advance(IDLE_S)
    assert not console.session.logged_in
    assert terminal.board.on_key == terminal.key


def test_idle_logout_during_a_command_leaves_one_clean_login_prompt(
        console: Console, rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    async def hangs(s: Services, args: list[str]) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("never")

    monkeypatch.setitem(COMMANDS, "hang", Command("hang", "hang", "waits forever", hangs))

    async def main() -> str:
        console.log_in()
        console.type("hang\r")
        task = console.session._busy
        assert task is not None
        mark = console.wire.mark()
        rig.clock.advance(IDLE_S)
        await asyncio.wait({task}, timeout=TIMEOUT_S)  # its done callbacks have run then
        assert task.done()
        return console.wire.since(mark)

    out = asyncio.run(main())
    assert "logged out after" in out and not console.session.logged_in
    assert out.endswith("\r\n" + PASSWORD_PROMPT) and out.count(PASSWORD_PROMPT) == 1, out


# --- what reaches the terminal ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("plain text 123", "plain text 123"),
    ("\x1b[2J\x1b[H", "?[2J?[H"),
    ("bell\x07 nul\x00 del\x7f", "bell? nul? del?"),
    ("c1 \x9b31m \x85", "c1 ?31m ?"),
    ("a\tb", "a b"),
    ("cr\rlf\n", "cr?lf?"),
    ("r\u00e4ksm\u00f6rg\u00e5s \u00e9", "r\u00e4ksm\u00f6rg\u00e5s \u00e9"),
    ("bidi \u202eevil\u202c zwj\u200d", "bidi ?evil? zwj?"),
])
def test_terminal_safe(text: str, expected: str) -> None:
    assert terminal_safe(text) == expected


def hostile_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register 'hostile': output with escapes, controls and secrets, and a stream of them."""

    class Leaks:
        def start(self, emit: Callable[[str], None]) -> None:
            emit(f"stream \x1b]0;title\x07 {LDAP_PASSWORD} \x9b2J")

        def stop(self) -> None:
            pass

    async def hostile(s: Services, args: list[str]) -> Reply:
        return Reply(True, [f"\x1b[31mred\x1b[0m {LINE_PASSWORD}", "nul\x00 bs\x08 cr\rx",
                            f"token={API_TOKEN}\u202e", "multi\nline"], stream=Leaks())

    monkeypatch.setitem(COMMANDS, "hostile", Command("hostile", "hostile", "bad output",
                                                     hostile))


def test_output_is_safe_for_a_dumb_terminal(console: Console, services: Services,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    hostile_command(monkeypatch)
    logger = logging.getLogger("luren.test.console.session")
    logger.addHandler(services.log)
    try:
        logger.warning("SIP from \x1b[6n evil\x1b]52;c;AAAA\x07 \u009b")
        try:
            raise ValueError("broken \x1b[2J")
        except ValueError:
            logger.exception("with a traceback")
    finally:
        logger.removeHandler(services.log)

    async def main() -> None:
        console.type("\x1b[A\x1bOP\x01\x02\x1b[99;99R" + "\r")  # junk before login
        console.log_in()
        await console.run("log 10")
        mark = console.wire.mark()
        console.type("hostile\r")
        await console.wire.wait(lambda text: "stream " in text, mark)
        console.type(" ")
        await console.run("\x1b[31m\x7fhelp \x1b[Dsip\x1b")
        await console.run("caf\u00e9 \u00e5\x00\x1b[1;5C".encode() + b"\xff\xfe")

    asyncio.run(main())
    assert b"\x1b" not in console.wire.data
    assert_terminal_safe(bytes(console.wire.data))


def test_secrets_in_output_are_masked(console: Console, services: Services,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hostile_command(monkeypatch)

    async def main() -> None:
        console.log_in()
        await console.run("config")
        await console.run("config get api.token")
        mark = console.wire.mark()
        console.type("hostile\r")
        await console.wire.wait(lambda text: "stream " in text, mark)
        console.type(" ")

    asyncio.run(main())
    out = console.wire.since()
    assert not [secret for secret in SECRETS if secret in out]
    assert f"password = {MASK}" in out and f"api.token = {MASK}" in out
    assert f"red?[0m {MASK}" in out and f"token={MASK}" in out and f"]0;title? {MASK}" in out


def test_close_stops_the_stream_and_the_idle_timer(console: Console, rig: Rig) -> None:
    terminal = rig.phone.terminals[0]

    async def main() -> None:
        console.log_in()
        mark = console.wire.mark()
        console.type("test keys\r")
        await console.wire.wait(lambda text: "press any key here to stop" in text, mark)
        console.session.close()

    asyncio.run(main())
    assert terminal.board.on_key == terminal.key
    mark = console.wire.mark()
    rig.clock.advance(IDLE_S * 2)
    assert console.wire.since(mark) == ""  # no idle logout after close
