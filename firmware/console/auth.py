"""Who may use the technician's serial console: password hash, one-time code, lockout.

    login = ConsoleLogin(config.console.password_hash, data_dir / "console", clock=time.time)
    result = login.attempt(typed)  # LoginResult(ok, wait_s, message): print result.message
    login.update_hash(new_hash)    # provisioning changed console.password_hash

The password. Provisioning sets `console.password_hash`, never the password itself. An
administrator makes the hash on their own machine::

    python -m firmware.console.auth hash     # asks twice on a terminal; else reads one line
    scrypt$16384$8$1$<salt, base64>$<hash, base64>

The format is `scrypt$<n>$<r>$<p>$<salt>$<hash>`: scrypt (RFC 7914) with cost `n`, block size
`r` and parallelism `p`, a random salt of 16 bytes and a 32-byte key, both in standard base64
with padding. Passwords are compared after Unicode NFC normalisation, as UTF-8. A stored hash
the phone cannot check, malformed or too costly, never matches: `n` is a power of two up to
`MAX_N`, below 2^(16 r) (RFC 7914), checking may need at most `MAX_MEMORY` bytes and
`n * r * p` may be at most `MAX_WORK` (16 times the default), so a hostile hash cannot make
the phone spend minutes or its memory. `check_hash_format()` says in words what is wrong with
one, for config validation, without repeating it.

The one-time code. Until a password hash is provisioned (or while the provisioned one is not
well-formed: see `ConsoleLogin`), the console takes a per-device one-time code instead: 8
digits, shown on the phone's own display under Settings, Info (Console code), so only someone
standing at the phone can read it (the same physical-presence proof as commercial phones'
admin menus). Each code works once: a successful login makes a new one at once, and the
display shows the new one. Spaces in a typed code are ignored ("1234 5678" = "12345678").
The code lives in `console-code.json` in the state directory, mode 0600. Once a password hash
is set the code is not accepted.

The lockout. Five failed logins in a row are free; the 6th and each later one makes the
console refuse every try for 30 s, then 60 s, 120 s ... at most 15 min (`delay_after()`),
without looking at what was typed and without counting those refusals. A successful login
clears the count. Count and deadline are kept in `console-lockout.json` (wall time), so a
reboot does not clear them; a missing or damaged file means no failures (logged). A wall clock
set back (NTP, no RTC) cannot stretch a wait beyond the delay it was given.

Nothing here logs, prints or returns a password, a code or a hash (the CLI prints the hash it
was asked to make). State files are written with `firmware.storage.atomic_write_json`; a
write that fails is logged and the state held in memory, the console never stops over it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from firmware.storage import atomic_write_json

log = logging.getLogger("luren.console")

SCHEME: Final = "scrypt"
DEFAULT_N: Final = 2**14
DEFAULT_R: Final = 8
DEFAULT_P: Final = 1
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
MIN_BYTES: Final = 16
"""Shortest salt and key accepted in a stored hash."""
MAX_BYTES: Final = 64
"""Longest salt and key accepted in a stored hash."""
MAX_N: Final = 2**20
MAX_MEMORY: Final = 2**26 + 2**16
"""Bytes scrypt may use to check a hash: a 64 MiB table (e.g. n = 2**16, r = 8) plus blocks."""
MAX_WORK: Final = 16 * DEFAULT_N * DEFAULT_R * DEFAULT_P
"""Largest n * r * p: 16 times the default's work (about 1 s on a desktop computer)."""

CODE_DIGITS: Final = 8
FREE_FAILURES: Final = 5
FIRST_DELAY_S: Final = 30.0
MAX_DELAY_S: Final = 900.0

CODE_FILE: Final = "console-code.json"
LOCKOUT_FILE: Final = "console-lockout.json"
FILE_MODE: Final = 0o600

CODE_LOGIN_TEXT: Final = ("Logged in with the one-time code; a new code is now shown on the "
                          "phone. Set console.password_hash by provisioning.")


# --- password hashes ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Scrypt:
    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    key: bytes = field(repr=False)


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R,
                  p: int = DEFAULT_P) -> str:
    """The `scrypt$n$r$p$salt$hash` text for `password`, with a new random salt.

    Raises ValueError for an empty password or for parameters the phone would refuse to check.
    """
    if not password:
        raise ValueError("an empty password cannot be hashed")
    problem = _params_problem(n, r, p)
    if problem is not None:
        raise ValueError(f"scrypt parameters: {problem}")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, _Scrypt(n, r, p, salt, b"\0" * KEY_BYTES))
    return "$".join([SCHEME, str(n), str(r), str(p), _b64(salt), _b64(key)])


def check_hash_format(text: object) -> str | None:
    """None when `text` is a hash the phone can check, else what is wrong, in words.

    The words never contain `text` or any part of it, so they can go into logs and reports.
    """
    parsed = _parse(text)
    return parsed if isinstance(parsed, str) else None


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the `stored` hash; False (never an exception) when `stored`
    is malformed or too costly to check. The keys are compared in constant time."""
    parsed = _parse(stored)
    if isinstance(parsed, str):
        return False
    try:
        derived = _derive(password, parsed)
    except (ValueError, MemoryError):  # includes a password that is not valid Unicode
        return False
    return hmac.compare_digest(derived, parsed.key)


def _derive(password: str, params: _Scrypt) -> bytes:
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    return hashlib.scrypt(secret, salt=params.salt, n=params.n, r=params.r, p=params.p,
                          maxmem=MAX_MEMORY, dklen=len(params.key))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse(text: object) -> _Scrypt | str:
    """The parts of a stored hash, or what is wrong with it (never quoting it)."""
    if not isinstance(text, str):
        return "is not text"
    if not text:
        return "is empty"
    if any(ch.isspace() for ch in text):
        return "has spaces or line breaks in it"
    parts = text.split("$")
    if parts[0] != SCHEME:
        return f"does not start with '{SCHEME}$'"
    if len(parts) != 6:
        return f"has {len(parts)} fields separated by '$', expected 6 (scrypt$n$r$p$salt$hash)"
    for name, part in zip("nrp", parts[1:4], strict=True):
        if not _is_whole_number(part):
            return f"{name} is not a positive whole number in digits"
    n, r, p = (int(part) for part in parts[1:4])
    problem = _params_problem(n, r, p)
    if problem is not None:
        return problem
    salt, key = _bytes_field(parts[4]), _bytes_field(parts[5])
    if isinstance(salt, str):
        return f"the salt {salt}"
    if isinstance(key, str):
        return f"the hash {key}"
    return _Scrypt(n, r, p, salt, key)


def _is_whole_number(part: str) -> bool:
    return 0 < len(part) <= 10 and part.isascii() and part.isdigit() and part[0] != "0"


def _bytes_field(part: str) -> bytes | str:
    """The bytes of a base64 field, or what is wrong with it."""
    try:
        data = base64.b64decode(part.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return "is not valid base64"
    if not MIN_BYTES <= len(data) <= MAX_BYTES:
        return f"must be {MIN_BYTES} to {MAX_BYTES} bytes"
    return data


def _params_problem(n: int, r: int, p: int) -> str | None:
    """What makes scrypt parameters unusable or too costly for the phone, or None."""
    if r < 1 or p < 1:
        return "r and p must be at least 1"
    if n < 2 or n > MAX_N or n & (n - 1):
        return f"n must be a power of two from 2 to {MAX_N}"
    if 16 * r < 64 and n >= 2 ** (16 * r):
        return "n must be below 2^(16 * r) (RFC 7914)"
    if n * r * p > MAX_WORK:
        return f"n * r * p is above {MAX_WORK}: checking it would take too long on the phone"
    if 128 * r * (n + 2 + p) > MAX_MEMORY:
        return f"checking it would need more than {MAX_MEMORY // 2**20} MiB of memory"
    return None


# --- state files ---------------------------------------------------------------------------


def _read_state(path: Path, what: str) -> dict[str, Any] | None:
    """The JSON object in `path`; None (logged) when it is missing, unreadable or damaged."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s %s cannot be read (%s); starting afresh", what, path,
                    exc.__class__.__name__)
        return None
    if not isinstance(data, dict):
        log.warning("%s %s is not a JSON object; starting afresh", what, path)
        return None
    return data


def _write_state(path: Path, data: dict[str, Any], what: str) -> None:
    """Write `data` atomically, mode 0600; a failure is logged, not raised."""
    try:
        # atomic_write makes its file with mkstemp, which creates it 0600; the chmod says so.
        atomic_write_json(path, data)
        os.chmod(path, FILE_MODE)
    except OSError as exc:
        log.warning("%s %s could not be saved (%s); kept in memory only", what, path,
                    exc.strerror or exc.__class__.__name__)


# --- the one-time code ---------------------------------------------------------------------


class OneTimeCode:
    """The per-device code that opens the console until a password hash is provisioned.

    `current()` is what the phone's display shows; `consume()` is what the console checks.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._code: str | None = None

    @property
    def path(self) -> Path:
        """The JSON file holding the code (mode 0600)."""
        return self._path

    def current(self) -> str:
        """The code to show, grouped for reading ("1234 5678"); made on first use."""
        code = self._digits()
        return f"{code[:4]} {code[4:]}"

    def consume(self, given: str) -> bool:
        """Whether `given` (spaces ignored) is the current code; if so a new one replaces it."""
        code = self._digits()
        typed = "".join(given.split()).encode("utf-8", "replace")
        if not hmac.compare_digest(typed, code.encode("ascii")):
            return False
        self._renew(old=code)
        return True

    def _digits(self) -> str:
        if self._code is None:
            self._code = self._load()
        if self._code is None:
            self._renew(old=None)
        assert self._code is not None
        return self._code

    def _renew(self, old: str | None) -> None:
        code = old
        while code == old:
            code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        self._code = code
        _write_state(self._path, {"code": code}, "console code file")
        log.info("a new one-time console code is shown under Settings, Info (Console code)")

    def _load(self) -> str | None:
        if _readable_by_others(self._path):
            log.warning("console code file %s was readable by others; making a new code",
                        self._path)
            return None
        data = _read_state(self._path, "console code file")
        if data is None:
            return None
        code = data.get("code")
        if not _is_code(code):
            log.warning("console code file %s holds no valid code; making a new one", self._path)
            return None
        return code


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o077)
    except OSError:  # missing: nothing to read; unreadable: _read_state reports it
        return False


def _is_code(value: object) -> bool:
    return (isinstance(value, str) and len(value) == CODE_DIGITS and value.isascii()
            and value.isdigit())


# --- the lockout ---------------------------------------------------------------------------


def delay_after(failures: int) -> float:
    """Seconds the console stays shut after the `failures`-th failed login in a row."""
    if failures <= FREE_FAILURES:
        return 0.0
    doublings = min(failures - FREE_FAILURES - 1, 16)
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2**doublings)


class Lockout:
    """Failed logins in a row and the wall time until which the console refuses tries."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._failures, self._until = self._load()

    @property
    def path(self) -> Path:
        """The JSON file holding the count and the deadline."""
        return self._path

    @property
    def failures(self) -> int:
        """Failed logins since the last success."""
        return self._failures

    def wait_s(self) -> float:
        """0 when a try is allowed now, else the seconds until it is."""
        left = self._until - self._clock()
        limit = delay_after(self._failures)
        if left > limit:  # the wall clock was set back: wait no longer than was imposed
            self._until = self._clock() + limit
            self._save()
            left = limit
        return max(0.0, left)

    def failed(self) -> float:
        """Count a failed login; returns the wait it imposes (0 for the first five)."""
        self._failures += 1
        delay = delay_after(self._failures)
        self._until = self._clock() + delay
        self._save()
        if delay:
            log.warning("console locked for %d s after %d failed logins in a row", delay,
                        self._failures)
        return delay

    def succeeded(self) -> None:
        """A login succeeded: forget the failures."""
        if self._failures or self._until:
            self._failures, self._until = 0, 0.0
            self._save()

    def _save(self) -> None:
        _write_state(self._path, {"failures": self._failures, "until": self._until},
                     "console lockout file")

    def _load(self) -> tuple[int, float]:
        data = _read_state(self._path, "console lockout file")
        if data is None:
            return 0, 0.0
        failures, until = data.get("failures"), data.get("until")
        if (isinstance(failures, int) and not isinstance(failures, bool) and failures >= 0
                and isinstance(until, int | float) and not isinstance(until, bool)
                and math.isfinite(until)):
            return failures, float(until)
        log.warning("console lockout file %s holds no valid state; starting afresh", self._path)
        return 0, 0.0


# --- the login -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one try: `message` is for the technician, `wait_s` > 0 while locked."""

    ok: bool
    wait_s: float
    message: str


class ConsoleLogin:
    """Checks what a technician types at the console's login prompt.

    With a well-formed `password_hash` the password is required and the one-time code is
    refused. With none (""), or with one `check_hash_format()` rejects (logged, without the
    hash), the one-time code is the way in: it needs someone at the phone to read it, so a
    mistyped hash in provisioning cannot shut technicians out. Files go in `state_dir`.
    """

    def __init__(self, password_hash: str, state_dir: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.one_time_code = OneTimeCode(state_dir / CODE_FILE)
        self.lockout = Lockout(state_dir / LOCKOUT_FILE, clock)
        self._hash = ""
        self.update_hash(password_hash)

    @property
    def uses_one_time_code(self) -> bool:
        """True while no usable password hash is set, so the one-time code opens the console."""
        return not self._hash

    def update_hash(self, new: str) -> None:
        """Use `new` (provisioning changed console.password_hash; "" for none)."""
        problem = check_hash_format(new) if new else None
        if problem is not None:
            log.warning("console.password_hash %s; the one-time code stays in use", problem)
            new = ""
        if new != self._hash:
            self._hash = new
            log.info("console login now by %s",
                     "one-time code" if self.uses_one_time_code else "password")

    def attempt(self, secret: str) -> LoginResult:
        """Check one typed password or code. While locked out nothing is checked or counted."""
        wait = self.lockout.wait_s()
        if wait > 0:
            return LoginResult(False, wait, f"Too many failed logins: wait {say_wait(wait)}")
        by_code = self.uses_one_time_code
        ok = (self.one_time_code.consume(secret) if by_code
              else verify_password(secret, self._hash))
        if ok:
            self.lockout.succeeded()
            log.info("console login by %s", "one-time code" if by_code else "password")
            return LoginResult(True, 0.0, CODE_LOGIN_TEXT if by_code else "Logged in")
        wait = self.lockout.failed()
        log.warning("console login failed (%d in a row)", self.lockout.failures)
        if wait:
            return LoginResult(False, wait, "Login incorrect. Too many failed logins: "
                                            f"wait {say_wait(wait)}")
        return LoginResult(False, 0.0, "Login incorrect")


def say_wait(seconds: float) -> str:
    """A wait in words: "30 s", "2 min", "1 min 5 s" (rounded up to the second)."""
    whole = math.ceil(seconds)
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" if not rest else f"{minutes} min {rest} s"


# --- the command line ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m firmware.console.auth hash`: print the hash of a password read from stdin."""
    parser = argparse.ArgumentParser(prog="python -m firmware.console.auth",
                                     description="Console login helpers for administrators.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("hash", help="read a password (asked twice on a terminal, else one "
                                     "line of stdin) and print its hash for "
                                     "console.password_hash")
    parser.parse_args(argv)
    try:
        print(hash_password(_read_password()))
    except (ValueError, EOFError, KeyboardInterrupt) as exc:
        print(f"error: {exc or 'no password given'}", file=sys.stderr)
        return 2
    return 0


def _read_password() -> str:
    """The password: asked twice without echo on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("Console password: ")
        if getpass.getpass("Same again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


if __name__ == "__main__":
    sys.exit(main())
