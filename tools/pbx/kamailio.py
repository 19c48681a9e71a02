"""A local Kamailio PBX (registrar + stateful proxy) for the simulated office and tests.

Typical use::

    with Kamailio(workdir, {"2001": "secret", "2002": "secret"}, port=free_port()) as pbx:
        ...  # phones register to sip:2001@127.0.0.1:<port>
        pbx.set_maintenance(True, retry_after=60)   # REGISTER -> 503 + Retry-After
        pbx.registered_contacts("2001")             # ['sip:2001@127.0.0.1:...']
        pbx.messages("INVITE", direction="out")     # what the PBX sent (tools/pbx/wire.py)
        pbx.wait_message(lambda m: m.status == 486, timeout=5)
        pbx.publish_message_summary("2001", new=2, old=5)  # voicemail -> MWI NOTIFYs

The routing logic is in kamailio.cfg.tmpl next to this file. Everything the
instance writes (config, subscriber table, log, pid file, ctl socket, run dir,
SIP capture) lives in `workdir`, so several instances can run side by side on
different ports. Requires the `kamailio` and `kamcmd` binaries (Debian package kamailio).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tools.pbx.process import ManagedProcess, Peer
from tools.pbx.sipprobe import SipResponse, sip_request
from tools.pbx.waiting import wait_until
from tools.pbx.wire import CaptureReader, SipMessage, select

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")
START_TIMEOUT = 10.0
_UNIX_SOCKET_MAX = 107
_SAFE_FIELD = re.compile(r"^[^\s:\\]+$")
_CAPTURE_FILE = re.compile(r"^capture-(\d+)-")


class KamailioError(RuntimeError):
    """Kamailio failed to start, or an RPC command to it failed."""


class Kamailio(Peer):
    """One Kamailio process listening on 127.0.0.1:`port`, UDP and TCP.

    `users` maps user name -> password; they are the only accounts that may
    REGISTER (digest auth, realm = `domain`). `fr_inv_timeout_ms` is how long
    an INVITE may ring unanswered before the proxy gives up (408).
    `maintenance=True` starts with every REGISTER refused (503, Retry-After
    `retry_after`), as a PBX coming back from a restart would.

    stop() then start() restarts it with the current maintenance state (as
    last set by set_maintenance); registrations are kept in memory only, so
    phones must register again after a restart.

    `capture=True` (the default) records every SIP message the PBX receives
    or sends in `capture_dir` (Kamailio's sipdump module); read them with
    messages() / wait_message(), see tools/pbx/wire.py for what is recorded.
    The capture grows with the traffic (about 0.6 kB per message) and is kept
    across restarts; pass capture=False for long runs and benchmarks.

    `presence=True` (the default; it adds ~15 ms to start-up) makes it a
    presence server too: PUBLISH/SUBSCRIBE of presence, dialog (BLF: the
    state of every call it relays is published per user) and message-summary
    for local users are answered by the PBX itself, state kept in memory
    (lost on restart). See the header of kamailio.cfg.tmpl for the rules.
    """

    def __init__(
        self,
        workdir: Path,
        users: dict[str, str],
        port: int,
        domain: str = "127.0.0.1",
        fr_inv_timeout_ms: int = 120000,
        maintenance: bool = False,
        retry_after: int = 120,
        capture: bool = True,
        presence: bool = True,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.users = dict(users)
        self.port = port
        self.domain = domain
        self.fr_inv_timeout_ms = fr_inv_timeout_ms
        self.maintenance = maintenance
        self.retry_after = retry_after
        self.capture = capture
        self.presence = presence
        self._capture = CaptureReader(self.capture_dir, "capture-*.data")
        self._process: ManagedProcess | None = None
        _check_socket_path(self.ctl_socket)
        for user, password in self.users.items():
            _check_field(user, password)

    # ----- paths -----

    @property
    def config_path(self) -> Path:
        return self.workdir / "kamailio.cfg"

    @property
    def log_path(self) -> Path:
        """Kamailio's log (stderr, debug level 2)."""
        return self.workdir / "kamailio.log"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "kamailio.pid"

    @property
    def ctl_socket(self) -> Path:
        """Unix socket of the ctl module; pass as `kamcmd -s unix:<path>`."""
        return self.workdir / "kamailio.ctl"

    @property
    def db_dir(self) -> Path:
        """db_text directory holding the `subscriber` table."""
        return self.workdir / "db"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def capture_dir(self) -> Path:
        """Where sipdump writes the capture: capture-<start no.>-<date>.data (+ .meta).

        (sipdump needs this path + prefix under 192 bytes; the ctl socket's
        limit on `workdir` already ensures it.)
        """
        return self.workdir / "capture"

    # ----- addresses -----

    @property
    def address(self) -> str:
        """'127.0.0.1:<port>': where phones send requests (UDP or TCP)."""
        return f"127.0.0.1:{self.port}"

    def aor(self, user: str) -> str:
        """The address of record of `user`, e.g. 'sip:2001@127.0.0.1'."""
        return f"sip:{user}@{self.domain}"

    @property
    def pid(self) -> int | None:
        """PID of the main Kamailio process while running."""
        return self._process.pid if self._process and self._process.running() else None

    def pids(self) -> list[int]:
        """All live Kamailio processes of this instance (main + workers)."""
        return self._process.pids() if self._process else []

    # ----- lifecycle -----

    def start(self) -> Kamailio:
        """Write the config and user table, launch Kamailio, wait until it answers.

        Returns self. Raises KamailioError with the tail of the log if it does
        not answer a SIP OPTIONS within START_TIMEOUT seconds.
        """
        if self._process is not None:
            raise KamailioError("already started")
        self._prepare_workdir()
        self._process = ManagedProcess(self._command(), self.log_path, cwd=self.workdir)
        self._process.start()
        try:
            self._wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop Kamailio by PID (SIGTERM, 5 s, SIGKILL). Idempotent."""
        if self._process is not None:
            self._process.stop(grace=5.0)
            self._process = None
        self.pid_file.unlink(missing_ok=True)


    # ----- runtime control -----

    def set_maintenance(self, on: bool, retry_after: int = 120) -> None:
        """Refuse (on=True) or accept again (on=False) every REGISTER, at once.

        While on, REGISTER gets '503 Service Unavailable' with
        'Retry-After: <retry_after>'. Existing registrations and calls are kept.
        """
        self.rpc("htable.seti", "ctl", "retry_after", str(retry_after))
        self.rpc("htable.seti", "ctl", "maint", "1" if on else "0")
        self.maintenance, self.retry_after = on, retry_after

    def publish_message_summary(
        self, user: str, new: int, old: int = 0, *, voicemail: str = "sip:vm@voicemail.invalid",
        expires: int = 3600,
    ) -> SipResponse:
        """PUBLISH `user`'s mailbox state as a voicemail server would (needs presence=True).

        Subscribers of sip:<user>@<domain>, Event: message-summary, get a
        NOTIFY with it. Returns the PBX's answer (200 OK when accepted).
        """
        body = (f"Messages-Waiting: {'yes' if new else 'no'}\r\n"
                f"Message-Account: {self.aor(user)}\r\nVoice-Message: {new}/{old}\r\n")
        return sip_request(
            self.port, "PUBLISH", self.aor(user), from_uri=voicemail, to_uri=self.aor(user),
            extra_headers={"Event": "message-summary", "Expires": str(expires)},
            body=body, content_type="application/simple-message-summary",
        )

    def registered_contacts(self, user: str) -> list[str]:
        """Contact URIs currently registered for `user` ([] if none)."""
        try:
            output = self.rpc("ul.lookup", "location", f"s:{user}")
        except KamailioError as error:
            if "not found" in str(error).lower():
                return []
            raise
        return re.findall(r"^\s*Address:\s*(\S+)\s*$", output, re.MULTILINE)

    def rpc(self, command: str, *params: str, timeout: float = 5.0) -> str:
        """Run one kamcmd RPC command over this instance's ctl socket; return its output.

        kamcmd sends numeric-looking parameters as integers: prefix "s:" to
        force a string (e.g. a user name "s:2001"). Raises KamailioError if
        the command fails.
        """
        argv = ["kamcmd", "-s", f"unix:{self.ctl_socket}", command, *params]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0 or result.stdout.startswith("error:"):
            detail = (result.stdout + result.stderr).strip()
            raise KamailioError(f"kamcmd {command} {' '.join(params)} failed: {detail}")
        return result.stdout

    # ----- what went over the wire -----

    def messages(
        self,
        method: str | None = None,
        *,
        requests_only: bool = False,
        direction: str | None = None,
        call_id: str | None = None,
        after: int | None = None,
    ) -> list[SipMessage]:
        """SIP messages captured so far, oldest first (reads the capture now).

        `method` matches the CSeq method, so it selects requests of that
        method and the replies to them. `direction` "in" keeps what the PBX
        received, "out" what it sent (a relayed message appears once each
        way). `after` keeps messages whose seq is greater. Raises
        KamailioError if this PBX was created with capture=False.

        Kamailio writes a message to the capture a few ms after it went over
        the wire (and not at all if it is stopped in between): to check on a
        message a peer has just seen, use wait_message().
        """
        return select(
            self._captured(), method, requests_only=requests_only,
            direction=direction, call_id=call_id, after=after,
        )

    def wait_message(
        self,
        predicate: Callable[[SipMessage], bool],
        timeout: float = 5.0,
        *,
        after: int | None = None,
        what: str = "",
    ) -> SipMessage:
        """The first captured message (with seq > `after`) matching `predicate`.

        Waits up to `timeout` seconds for it; raises TimeoutError naming `what`
        and listing the messages captured so far.
        """

        def found() -> SipMessage | None:
            return next((m for m in self.messages(after=after) if predicate(m)), None)

        try:
            return wait_until(found, timeout, what=what or "a matching SIP message")
        except TimeoutError as error:
            seen = "\n".join(m.summary for m in self.messages(after=after)[-40:])
            raise TimeoutError(f"{error}; captured so far:\n{seen}") from None

    def last_seq(self) -> int:
        """seq of the newest captured message (-1 if none): pass as `after` to see newer ones."""
        captured = self._captured()
        return captured[-1].seq if captured else -1

    # ----- internals -----

    def _captured(self) -> list[SipMessage]:
        if not self.capture:
            raise KamailioError("this PBX was started with capture=False")
        return self._capture.read()

    def _command(self) -> list[str]:
        return [
            shutil.which("kamailio") or "/usr/sbin/kamailio",
            "-f", str(self.config_path),
            "-P", str(self.pid_file),
            "-Y", str(self.run_dir),
            "-w", str(self.workdir),
            "-DD", "-E",
            "-m", "64", "-M", "8",
        ]

    def _prepare_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        self.ctl_socket.unlink(missing_ok=True)
        self.capture_dir.mkdir(exist_ok=True)
        write_subscriber_table(self.db_dir, self.users, self.domain)
        if self.presence:
            write_presence_tables(self.db_dir)
        self.config_path.write_text(self._render_config())

    def _render_config(self) -> str:
        values = {
            "PORT": str(self.port),
            "DOMAIN": self.domain,
            "DOMAIN_LC": self.domain.lower(),
            "LOG_PREFIX": f"[pbx:{self.port}]",
            "RUN_DIR": str(self.run_dir),
            "CTL_SOCKET": str(self.ctl_socket),
            "DB_DIR": str(self.db_dir),
            "FR_INV_TIMEOUT_MS": str(int(self.fr_inv_timeout_ms)),
            "MAINTENANCE": "1" if self.maintenance else "0",
            "RETRY_AFTER": str(int(self.retry_after)),
            "CAPTURE_DEFINE": "#!define WITH_CAPTURE" if self.capture else "# capture off",
            "CAPTURE_DIR": str(self.capture_dir),
            "CAPTURE_PREFIX": self._next_capture_prefix(),
            "PRESENCE_DEFINE": "#!define WITH_PRESENCE" if self.presence else "# presence off",
        }
        return render_template(TEMPLATE.read_text(), values)

    def _next_capture_prefix(self) -> str:
        """'capture-NNN-': one number per start, so files sort in the order written.

        sipdump names files by the second they were opened; a restart within
        the same second must not reuse (and truncate) the previous file.
        """
        numbers = [
            int(match.group(1))
            for path in self.capture_dir.glob("capture-*")
            if (match := _CAPTURE_FILE.match(path.name))
        ]
        return f"capture-{max(numbers, default=0) + 1:03d}-"

    def _wait_ready(self) -> None:
        """Block until Kamailio answers OPTIONS and its ctl socket exists."""
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self._process.running():
                raise self._start_error(f"exited with status {self._process.returncode()}")
            if self._answers_options() and self.ctl_socket.exists():
                return
        raise self._start_error(f"did not answer within {START_TIMEOUT}s")

    def _answers_options(self) -> bool:
        try:
            sip_request(self.port, "OPTIONS", f"sip:{self.address}", timeout=0.2)
        except TimeoutError:
            return False
        return True

    def _start_error(self, what: str) -> KamailioError:
        assert self._process is not None
        tail = self._process.log_tail()
        return KamailioError(f"Kamailio on port {self.port} {what}; log tail:\n{tail}")


def render_template(template: str, values: dict[str, str]) -> str:
    """Replace every {{NAME}} in `template`; fail if one is left unfilled."""
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    leftover = re.findall(r"\{\{(\w+)\}\}", template)
    if leftover:
        raise KeyError(f"no value for template placeholders: {sorted(set(leftover))}")
    return template


def write_subscriber_table(db_dir: Path, users: dict[str, str], domain: str) -> None:
    """Write the db_text `version` and `subscriber` tables for digest auth.

    Both ha1 (md5 user:realm:pw) and ha1b (md5 user@domain:realm:pw) are
    filled: db_text refuses the whole table if a row leaves one empty.
    """
    db_dir.mkdir(parents=True, exist_ok=True)
    (db_dir / "version").write_text(
        "id(int,auto) table_name(string) table_version(int) \n1:subscriber:7\n"
    )
    rows = [
        f"{i}:{user}:{domain}:{pw}:{_md5(f'{user}:{domain}:{pw}')}:"
        f"{_md5(f'{user}@{domain}:{domain}:{pw}')}"
        for i, (user, pw) in enumerate(sorted(users.items()), start=1)
    ]
    header = (
        "id(int,auto) username(string) domain(string) password(string) "
        "ha1(string) ha1b(string) "
    )
    (db_dir / "subscriber").write_text("\n".join([header, *rows]) + "\n")


# db_text headers of the tables the presence modules check at start-up, with
# the versions Kamailio 5.6 expects (/usr/share/kamailio/dbtext/kamailio/).
# They stay empty: subscriptions and published state are kept in memory.
PRESENCE_TABLES = {
    "presentity": (5, "id(int,auto) username(string) domain(string) event(string) "
                      "etag(string) expires(int) received_time(int) body(string) "
                      "sender(string) priority(int) ruid(string,null) "),
    "active_watchers": (12, "id(int,auto) presentity_uri(string) watcher_username(string) "
                            "watcher_domain(string) to_user(string) to_domain(string) "
                            "event(string) event_id(string,null) to_tag(string) "
                            "from_tag(string) callid(string) local_cseq(int) remote_cseq(int) "
                            "contact(string) record_route(string,null) expires(int) "
                            "status(int) reason(string,null) version(int) "
                            "socket_info(string) local_contact(string) from_user(string) "
                            "from_domain(string) updated(int) updated_winfo(int) flags(int) "
                            "user_agent(string,null) "),
    "watchers": (3, "id(int,auto) presentity_uri(string) watcher_username(string) "
                    "watcher_domain(string) event(string) status(int) reason(string,null) "
                    "inserted_time(int) "),
    "xcap": (4, "id(int,auto) username(string) domain(string) doc(string) doc_type(int) "
                "etag(string) source(int) doc_uri(string) port(int) "),
    "pua": (7, "id(int,auto) pres_uri(string) pres_id(string) event(int) expires(int) "
               "desired_expires(int) flag(int) etag(string) tuple_id(string,null) "
               "watcher_uri(string) call_id(string) to_tag(string) from_tag(string) "
               "cseq(int) record_route(string,null) contact(string) "
               "remote_contact(string) version(int) extra_headers(string) "),
}


def write_presence_tables(db_dir: Path) -> None:
    """Add the (empty) presence tables and their rows in `version` to a db_text dir.

    Call after write_subscriber_table, which (re)writes `version`.
    """
    version = db_dir / "version"
    lines = version.read_text().splitlines()
    start = len(lines)  # the header is line 0, so row ids continue after the existing rows
    rows = [f"{start + i}:{name}:{v}" for i, (name, (v, _)) in enumerate(PRESENCE_TABLES.items())]
    version.write_text("\n".join([*lines, *rows]) + "\n")
    for name, (_, header) in PRESENCE_TABLES.items():
        (db_dir / name).write_text(header + "\n")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _check_field(user: str, password: str) -> None:
    """db_text separates columns with ':'; refuse values it cannot store."""
    for value in (user, password):
        if not _SAFE_FIELD.match(value):
            raise ValueError(f"need 1+ chars and no ':', '\\' or whitespace: {value!r}")


def _check_socket_path(path: Path) -> None:
    if len(str(path).encode()) > _UNIX_SOCKET_MAX:
        raise ValueError(f"workdir too long for a unix socket path ({path}); use a shorter one")
