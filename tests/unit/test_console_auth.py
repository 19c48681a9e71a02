"""Console login: password hashes, the one-time code, the lockout, ConsoleLogin and the CLI."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import logging
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.console import auth
from firmware.console.auth import (
    CODE_LOGIN_TEXT,
    ConsoleLogin,
    Lockout,
    LoginResult,
    OneTimeCode,
    check_hash_format,
    delay_after,
    hash_password,
    say_wait,
    verify_password,
)

FAST = 2**10
"""scrypt cost for tests where the cost is not the subject."""
REPO = Path(__file__).resolve().parents[2]
SALT = base64.b64encode(b"s" * 16).decode()
KEY = base64.b64encode(b"k" * 32).decode()


class WallClock:
    """Wall time that moves only when a test says so."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def no_scrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Make scrypt fail the test if it runs; yields the list of its (refused) calls."""
    calls: list[int] = []

    def refuse(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        raise AssertionError("scrypt ran for a hash that should have been refused unseen")

    monkeypatch.setattr(auth.hashlib, "scrypt", refuse)
    yield calls


def _code_other_than(code: str) -> str:
    digits = code.replace(" ", "")
    return digits[:-1] + str((int(digits[-1]) + 1) % 10)


# --- password hashes ---------------------------------------------------------------------


def test_default_hash_has_the_documented_format_and_round_trips() -> None:
    stored = hash_password("correct horse")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt, validate=True)) == 16
    assert len(base64.b64decode(key, validate=True)) == 32
    assert check_hash_format(stored) is None
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horse!", stored)


def test_hashes_are_salted_and_keep_their_own_cost() -> None:
    first, second = hash_password("pw", n=FAST), hash_password("pw", n=FAST)
    assert first != second
    assert first.split("$")[1] == str(FAST)
    assert verify_password("pw", first) and verify_password("pw", second)


@pytest.mark.parametrize("attempt", ["Secret1", "Secret1 ", " secret1", "", "Secret", "é"])
def test_wrong_passwords_do_not_match(attempt: str) -> None:
    assert not verify_password(attempt, hash_password("secret1", n=FAST))


def test_passwords_are_compared_after_unicode_normalisation() -> None:
    stored = hash_password("caf\u00e9", n=FAST)  # é as one code point
    assert verify_password("cafe\u0301", stored)  # e + combining acute


def test_a_hash_made_elsewhere_with_a_16_byte_key_is_checked() -> None:
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(b"pw", salt=salt, n=FAST, r=8, p=1, dklen=16)
    encoded = [base64.b64encode(data).decode() for data in (salt, key)]
    stored = f"scrypt${FAST}$8$1${encoded[0]}${encoded[1]}"
    assert check_hash_format(stored) is None
    assert verify_password("pw", stored)
    assert not verify_password("pW", stored)


def test_a_changed_key_does_not_match() -> None:
    stored = hash_password("pw", n=FAST)
    head, key = stored.rsplit("$", 1)
    raw = bytearray(base64.b64decode(key))
    raw[-1] ^= 1
    assert check_hash_format(f"{head}${base64.b64encode(bytes(raw)).decode()}") is None
    assert not verify_password("pw", f"{head}${base64.b64encode(bytes(raw)).decode()}")


MALFORMED = [
    ("", "empty"),
    ("hunter2-not-a-hash", "does not start"),
    (f"bcrypt$1024$8$1${SALT}${KEY}", "does not start"),
    ("scrypt$16384$8$1", "fields"),
    (f"scrypt$1024$8$1${SALT}${KEY}$extra", "fields"),
    (f"scrypt$1024$8$1${SALT}${KEY}\n", "spaces or line breaks"),
    (f"scrypt$1024$8$1${SALT} ${KEY}", "spaces or line breaks"),
    (f"scrypt$1000$8$1${SALT}${KEY}", "power of two"),
    (f"scrypt$1$8$1${SALT}${KEY}", "power of two"),
    (f"scrypt$01024$8$1${SALT}${KEY}", "n is not"),
    (f"scrypt$+1024$8$1${SALT}${KEY}", "n is not"),
    (f"scrypt$1024$0$1${SALT}${KEY}", "r is not"),
    (f"scrypt$1024$8$-1${SALT}${KEY}", "p is not"),
    (f"scrypt$1024$8$\u0661${SALT}${KEY}", "p is not"),  # an Arabic-Indic digit one
    (f"scrypt$1024$8$99999999999${SALT}${KEY}", "p is not"),
    (f"scrypt$1024$8$1$!!notbase64!!${KEY}", "salt is not valid base64"),
    (f"scrypt$1024$8$1${SALT.rstrip('=')}${KEY}", "salt is not valid base64"),
    (f"scrypt$1024$8$1${SALT}$\u00e9{KEY}", "hash is not valid base64"),
    (f"scrypt$1024$8$1${base64.b64encode(b'short').decode()}${KEY}", "salt must be"),
    (f"scrypt$1024$8$1${SALT}${base64.b64encode(b'k' * 65).decode()}", "hash must be"),
    # hostile costs: refused before scrypt runs
    (f"scrypt${2**30}$8$1${SALT}${KEY}", "power of two"),
    (f"scrypt${2**21}$1$1${SALT}${KEY}", "power of two"),
    (f"scrypt${2**16}$1$1${SALT}${KEY}", "RFC 7914"),
    (f"scrypt${2**20}$8$1${SALT}${KEY}", "too long"),
    (f"scrypt${2**14}$8$1000000${SALT}${KEY}", "too long"),
    (f"scrypt$2$1073741823$1${SALT}${KEY}", "too long"),
    (f"scrypt${2**18}$4$1${SALT}${KEY}", "MiB of memory"),
]


@pytest.mark.parametrize(("text", "reason"), MALFORMED)
def test_malformed_and_hostile_hashes_never_match_and_never_run_scrypt(
        text: str, reason: str, no_scrypt: list[int]) -> None:
    problem = check_hash_format(text)
    assert problem is not None and reason in problem
    assert not verify_password("anything", text)
    assert no_scrypt == []


@pytest.mark.parametrize(("text", "_reason"), MALFORMED)
def test_format_problems_do_not_repeat_the_hash(text: str, _reason: str) -> None:
    problem = check_hash_format(text)
    assert problem is not None
    if text:
        assert text not in problem
    for part in text.split("$"):
        if len(part) >= 8:
            assert part not in problem


@pytest.mark.parametrize("value", [None, 16384, b"scrypt$1024$8$1$x$y", ["scrypt"]])
def test_a_stored_hash_that_is_not_text_is_refused(value: object) -> None:
    assert check_hash_format(value) == "is not text"
    assert not verify_password("pw", value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"n": 1000}, "power of two"),
    ({"n": 2**21}, "power of two"),
    ({"r": 0}, "at least 1"),
    ({"p": 0}, "at least 1"),
    ({"n": 2**20}, "too long"),
])
def test_hash_password_refuses_parameters_the_phone_would_not_check(
        kwargs: dict[str, int], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        hash_password("pw", **kwargs)


def test_hash_password_refuses_an_empty_password() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_a_password_that_is_not_valid_unicode_does_not_match() -> None:
    assert not verify_password("\udcff", hash_password("pw", n=FAST))


# --- the one-time code ---------------------------------------------------------------------


def test_code_is_eight_digits_grouped_and_stored_0600(tmp_path: Path) -> None:
    codes = OneTimeCode(tmp_path / "state" / "code.json")
    code = codes.current()
    assert re.fullmatch(r"\d{4} \d{4}", code)
    assert codes.current() == code
    assert codes.path == tmp_path / "state" / "code.json"
    assert stat.S_IMODE(codes.path.stat().st_mode) == 0o600
    assert json.loads(codes.path.read_text()) == {"code": code.replace(" ", "")}


def test_code_works_once_and_is_replaced_at_once(tmp_path: Path) -> None:
    codes = OneTimeCode(tmp_path / "code.json")
    first = codes.current()
    assert codes.consume(first)
    second = codes.current()
    assert second != first
    assert not codes.consume(first)
    assert codes.current() == second
    assert codes.consume(second)
    assert stat.S_IMODE(codes.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("spacing",
                         ["{a}{b}", " {a} {b} ", "{a}\t{b}", "{a[0]} {a[1]}{a[2]} {a[3]}{b}"])
def test_spaces_in_a_typed_code_are_ignored(tmp_path: Path, spacing: str) -> None:
    codes = OneTimeCode(tmp_path / "code.json")
    a, b = codes.current().split()
    assert codes.consume(spacing.format(a=a, b=b))


def test_wrong_codes_are_refused_and_leave_the_code_alone(tmp_path: Path) -> None:
    codes = OneTimeCode(tmp_path / "code.json")
    code = codes.current()
    digits = code.replace(" ", "")
    arabic = digits.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for wrong in [_code_other_than(code), "", digits[:-1], digits + "0", arabic, "\udcff"]:
        assert not codes.consume(wrong)
    assert codes.current() == code


def test_code_survives_a_restart_until_it_is_used(tmp_path: Path) -> None:
    path = tmp_path / "code.json"
    code = OneTimeCode(path).current()
    after_reboot = OneTimeCode(path)
    assert after_reboot.current() == code
    assert after_reboot.consume(code)
    assert OneTimeCode(path).current() == after_reboot.current() != code


@pytest.mark.parametrize("content", [b"garbage", b"\xff\xfe", b"[]", b'{"code": 12345678}',
                                     b'{"code": "1234"}', b'{"code": "abcdefgh"}', b"{}"])
def test_a_damaged_code_file_gives_a_new_code(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "code.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, "luren.console"):
        code = OneTimeCode(path).current()
    assert re.fullmatch(r"\d{4} \d{4}", code)
    assert json.loads(path.read_text()) == {"code": code.replace(" ", "")}
    assert "starting afresh" in caplog.text or "no valid code" in caplog.text


def test_a_code_file_others_could_read_is_replaced(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "code.json"
    path.write_text('{"code": "12345678"}')
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, "luren.console"):
        code = OneTimeCode(path).current()
    assert code != "1234 5678"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


def test_a_code_that_cannot_be_saved_still_works_in_memory(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "code.json"
    path.mkdir()  # a directory where the file should be: reads and writes fail
    codes = OneTimeCode(path)
    with caplog.at_level(logging.WARNING, "luren.console"):
        code = codes.current()
        assert codes.consume(code)
    assert codes.current() != code
    assert "could not be saved" in caplog.text


def test_the_code_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    codes = OneTimeCode(tmp_path / "code.json")
    seen = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            seen.append(codes.current())
            codes.consume(_code_other_than(seen[-1]))
            codes.consume(seen[-1])
    assert caplog.records
    for code in seen:
        assert code not in caplog.text and code.replace(" ", "") not in caplog.text


# --- the lockout ---------------------------------------------------------------------------


def test_five_failures_are_free_then_the_wait_doubles_up_to_15_minutes(
        tmp_path: Path, clock: WallClock) -> None:
    lockout = Lockout(tmp_path / "lockout.json", clock)
    waits = []
    for _ in range(12):
        waits.append(lockout.failed())
        assert lockout.wait_s() == waits[-1]
        clock.advance(waits[-1])
        assert lockout.wait_s() == 0
    assert waits == [0, 0, 0, 0, 0, 30, 60, 120, 240, 480, 900, 900]
    assert lockout.failures == 12


def test_the_wait_counts_down_with_the_clock(tmp_path: Path, clock: WallClock) -> None:
    lockout = Lockout(tmp_path / "lockout.json", clock)
    for _ in range(6):
        lockout.failed()
    clock.advance(10)
    assert lockout.wait_s() == 20
    clock.advance(19.5)
    assert lockout.wait_s() == 0.5
    clock.advance(0.5)
    assert lockout.wait_s() == 0


def test_a_success_clears_the_count(tmp_path: Path, clock: WallClock) -> None:
    lockout = Lockout(tmp_path / "lockout.json", clock)
    for _ in range(7):
        lockout.failed()
    lockout.succeeded()
    assert lockout.wait_s() == 0 and lockout.failures == 0
    assert [lockout.failed() for _ in range(6)] == [0, 0, 0, 0, 0, 30]
    assert Lockout(lockout.path, clock).failures == 6


def test_the_lockout_survives_a_restart(tmp_path: Path, clock: WallClock) -> None:
    path = tmp_path / "lockout.json"
    lockout = Lockout(path, clock)
    for _ in range(6):
        lockout.failed()
    clock.advance(5)
    after_reboot = Lockout(path, clock)
    assert after_reboot.failures == 6
    assert after_reboot.wait_s() == 25
    clock.advance(25)
    assert after_reboot.failed() == 60
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [
    b"not json", b"\xff\xfe", b"[]", b"{}", b'{"failures": -1, "until": 0}',
    b'{"failures": true, "until": 0}', b'{"failures": 7, "until": "soon"}',
    b'{"failures": 7, "until": NaN}', b'{"failures": 7.5, "until": 0}', b"",
])
def test_a_damaged_lockout_file_means_a_fresh_state(
        tmp_path: Path, clock: WallClock, content: bytes,
        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lockout.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, "luren.console"):
        lockout = Lockout(path, clock)
    assert lockout.failures == 0 and lockout.wait_s() == 0
    assert "starting afresh" in caplog.text
    assert lockout.failed() == 0
    assert json.loads(path.read_text()) == {"failures": 1, "until": clock.t}


def test_a_lockout_file_that_cannot_be_read_or_written_is_no_crash(
        tmp_path: Path, clock: WallClock, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "lockout.json"
    path.mkdir()
    with caplog.at_level(logging.WARNING, "luren.console"):
        lockout = Lockout(path, clock)
        waits = [lockout.failed() for _ in range(6)]
    assert waits[-1] == 30 and lockout.wait_s() == 30
    assert "could not be saved" in caplog.text


def test_a_clock_set_back_does_not_stretch_the_wait(tmp_path: Path, clock: WallClock) -> None:
    lockout = Lockout(tmp_path / "lockout.json", clock)
    for _ in range(6):
        lockout.failed()
    clock.advance(-365 * 86400)
    assert lockout.wait_s() == 30
    clock.advance(30)
    assert lockout.wait_s() == 0


def test_a_stored_deadline_beyond_the_delay_is_cut_back(tmp_path: Path, clock: WallClock) -> None:
    path = tmp_path / "lockout.json"
    path.write_text(json.dumps({"failures": 2, "until": clock.t + 10**9}))
    assert Lockout(path, clock).wait_s() == 0
    path.write_text(json.dumps({"failures": 40, "until": clock.t + 10**9}))
    assert Lockout(path, clock).wait_s() == 900


def test_delay_after_stays_capped_for_any_count() -> None:
    assert [delay_after(k) for k in (0, 5, 6, 7, 10, 11, 10**6)] == [0, 0, 30, 60, 480, 900, 900]


@pytest.mark.parametrize(("seconds", "words"), [
    (30, "30 s"), (29.2, "30 s"), (0.1, "1 s"), (60, "1 min"), (90, "1 min 30 s"),
    (900, "15 min"),
])
def test_waits_are_said_in_words(seconds: float, words: str) -> None:
    assert say_wait(seconds) == words


# --- the login -----------------------------------------------------------------------------


def test_without_a_password_the_one_time_code_logs_in_once(
        tmp_path: Path, clock: WallClock) -> None:
    login = ConsoleLogin("", tmp_path, clock)
    assert login.uses_one_time_code
    code = login.one_time_code.current()
    assert login.attempt(_code_other_than(code)) == LoginResult(False, 0.0, "Login incorrect")
    assert login.attempt(code) == LoginResult(True, 0.0, CODE_LOGIN_TEXT)
    assert login.one_time_code.current() != code
    assert not login.attempt(code).ok
    assert login.one_time_code.path.parent == tmp_path


def test_with_a_password_the_code_is_refused(tmp_path: Path, clock: WallClock) -> None:
    login = ConsoleLogin(hash_password("s3cret", n=FAST), tmp_path, clock)
    assert not login.uses_one_time_code
    assert login.attempt(login.one_time_code.current()) == LoginResult(
        False, 0.0, "Login incorrect")
    assert login.attempt("s3cret") == LoginResult(True, 0.0, "Logged in")
    assert login.lockout.failures == 0


def test_lockout_end_to_end_refuses_unchecked_and_uncounted(
        tmp_path: Path, clock: WallClock, monkeypatch: pytest.MonkeyPatch) -> None:
    login = ConsoleLogin(hash_password("s3cret", n=FAST), tmp_path, clock)
    for _ in range(5):
        assert login.attempt("guess") == LoginResult(False, 0.0, "Login incorrect")
    assert login.attempt("guess") == LoginResult(
        False, 30.0, "Login incorrect. Too many failed logins: wait 30 s")
    checked: list[str] = []
    monkeypatch.setattr(auth, "verify_password", lambda pw, stored: checked.append(pw) or True)
    clock.advance(12)
    assert login.attempt("s3cret") == LoginResult(
        False, 18.0, "Too many failed logins: wait 18 s")
    assert checked == [] and login.lockout.failures == 6
    monkeypatch.undo()
    clock.advance(18)
    assert login.attempt("guess") == LoginResult(
        False, 60.0, "Login incorrect. Too many failed logins: wait 1 min")
    clock.advance(60)
    assert login.attempt("s3cret").ok
    assert login.lockout.failures == 0
    assert login.attempt("guess") == LoginResult(False, 0.0, "Login incorrect")


def test_a_reboot_keeps_the_lockout(tmp_path: Path, clock: WallClock) -> None:
    login = ConsoleLogin("", tmp_path, clock)
    for _ in range(6):
        login.attempt("0000 0000x")
    rebooted = ConsoleLogin("", tmp_path, clock)
    result = rebooted.attempt(rebooted.one_time_code.current())
    assert not result.ok and result.wait_s == 30


def test_update_hash_switches_between_password_and_code(tmp_path: Path, clock: WallClock) -> None:
    login = ConsoleLogin("", tmp_path, clock)
    code = login.one_time_code.current()
    login.update_hash(hash_password("s3cret", n=FAST))
    assert not login.uses_one_time_code
    assert not login.attempt(code).ok
    assert login.attempt("s3cret").ok
    login.update_hash("")
    assert login.uses_one_time_code
    assert login.attempt(code).message == CODE_LOGIN_TEXT


def test_a_malformed_hash_leaves_the_code_in_use_and_is_logged_without_it(
        tmp_path: Path, clock: WallClock, caplog: pytest.LogCaptureFixture) -> None:
    bad = f"scrypt$1000$8$1${SALT}${KEY}"
    with caplog.at_level(logging.WARNING, "luren.console"):
        login = ConsoleLogin(bad, tmp_path, clock)
    assert login.uses_one_time_code
    assert "power of two" in caplog.text and bad not in caplog.text and KEY not in caplog.text
    assert login.attempt(login.one_time_code.current()).ok


def test_no_secret_or_hash_is_logged_or_returned(
        tmp_path: Path, clock: WallClock, caplog: pytest.LogCaptureFixture) -> None:
    stored = hash_password("Tr0ub4dor&3", n=FAST)
    with caplog.at_level(logging.DEBUG):
        login = ConsoleLogin("", tmp_path, clock)
        code = login.one_time_code.current()
        results = [login.attempt("wrong-guess-1"), login.attempt(code)]
        login.update_hash(stored)
        results += [login.attempt("wrong-guess-2"), login.attempt("Tr0ub4dor&3")]
        results += [login.attempt("wrong-guess-3") for _ in range(6)]
    assert [r.ok for r in results[:4]] == [False, True, False, True]
    shown = caplog.text + "".join(repr(r) for r in results)
    assert "console login" in caplog.text
    for secret in ["Tr0ub4dor&3", "wrong-guess", code, code.replace(" ", ""), stored,
                   stored.split("$")[4], stored.split("$")[5]]:
        assert secret not in shown


# --- the command line ----------------------------------------------------------------------


def _run_cli(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware.console.auth", "hash"], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)


def test_cli_hashes_a_password_read_from_stdin() -> None:
    done = _run_cli("pass phrase\n")
    assert done.returncode == 0, done.stderr
    stored = done.stdout.strip()
    assert done.stdout == stored + "\n"
    assert check_hash_format(stored) is None
    assert verify_password("pass phrase", stored)
    assert "pass phrase" not in done.stdout + done.stderr


def test_cli_refuses_an_empty_password() -> None:
    done = _run_cli("")
    assert done.returncode == 2
    assert done.stdout == "" and "error:" in done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("typed", "code"), [(["pw-1", "pw-1"], 0), (["pw-1", "pw-2"], 2)])
def test_cli_on_a_terminal_asks_twice_without_echo(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        typed: list[str], code: int) -> None:
    answers = iter(typed)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(auth.getpass, "getpass", lambda prompt: next(answers))
    monkeypatch.setattr(auth, "hash_password", functools.partial(hash_password, n=FAST))
    assert auth.main(["hash"]) == code
    out, err = capsys.readouterr()
    if code == 0:
        assert verify_password("pw-1", out.strip())
    else:
        assert out == "" and "differ" in err
    assert "pw-1" not in out + err and "pw-2" not in out + err
