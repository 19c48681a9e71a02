"""A private PostgreSQL server on a free loopback port, for inventory tests.

    with PostgresServer() as pg:
        url = pg.create_database()          # a fresh, empty database; its URL carries the password
        Inventory(url)
        pg.drop_database(url)

The cluster lives in a temporary directory of its own (data directory, unix socket, log),
removed by ``stop()``. The server listens on 127.0.0.1 only, on a port from ``free_port()``;
TCP connections authenticate with a random password (scram-sha-256), the socket trusts its
local user. fsync is off: a test cluster, thrown away after the tests.

PostgreSQL refuses to run as root. When the tests run as root, every server program runs as the
``postgres`` account (or ``nobody`` where there is none) through ``setpriv`` (util-linux), and
the temporary directory is given to that account; it must sit under directories anyone may
enter (``/tmp``, not pytest's root-only ``tmp_path``). Run as another user, it runs as that user.

The default collation is ICU's root locale ("und": ``a2`` sorts before ``B1``), unlike SQLite's
byte order, so a query that forgets to ask for byte order shows up in tests.

Needs the server and client programs: Debian packages ``postgresql-15`` (postgres, initdb,
pg_ctl under /usr/lib/postgresql/15/bin) and ``postgresql-client-15`` (pg_isready); another
directory can be named in ``LUREN_PG_BINDIR``.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

from tools.pbx.ports import free_port
from tools.pbx.process import ManagedProcess, Peer
from tools.pbx.waiting import wait_until

SUPERUSER: Final = "luren"
START_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 30
PROGRAMS: Final = ("initdb", "postgres", "pg_ctl", "pg_isready")
SETTINGS: Final = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "log_min_messages": "warning",
}


class PostgresError(RuntimeError):
    """The PostgreSQL server could not be set up, started or stopped."""


class PostgresServer(Peer):
    """One private PostgreSQL cluster; ``url`` reaches its ``postgres`` database."""

    def __init__(self, *, port: int | None = None, parent: Path | None = None) -> None:
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(16)
        self._parent = parent
        self._bindir = find_bindir()
        self._uid, self._gid = _server_account()
        self.workdir: Path | None = None
        self._proc: ManagedProcess | None = None
        self._admin: psycopg.Connection | None = None
        self._names = itertools.count(1)

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database, as the superuser, password included."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """The URL of database ``dbname`` on this server."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PostgresServer:
        """Create the cluster, start the server and wait until it accepts connections."""
        self.workdir = Path(tempfile.mkdtemp(prefix="luren-pg-", dir=self._parent))
        try:
            os.chown(self.workdir, self._uid, self._gid)
            _check_reachable(self.workdir)
            self._initdb()
            self._proc = ManagedProcess(
                self._as_server([self._program("postgres"), "-D", str(self._data)]),
                self.workdir / "postgres.log", cwd=self.workdir, env=_server_env())
            self._proc.start()
            wait_until(self._ready, START_TIMEOUT, interval=0.05,
                       what=f"PostgreSQL on port {self.port}")
            self._admin = psycopg.connect(self.url, autocommit=True)
        except BaseException as exc:
            tail = self._proc.log_tail() if self._proc else ""
            self.stop()
            if isinstance(exc, Exception) and not isinstance(exc, PostgresError):
                raise PostgresError(f"PostgreSQL did not start: {exc}\n{tail}") from exc
            raise
        return self

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and remove its directory. Idempotent."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._proc is not None:
            if self._proc.running():
                subprocess.run(self._as_server([
                    self._program("pg_ctl"), "stop", "-D", str(self._data), "-m", "fast", "-w",
                    "-t", str(STOP_TIMEOUT)]), capture_output=True, timeout=STOP_TIMEOUT + 10,
                    check=False)
            self._proc.stop()  # reaps it; SIGTERM then SIGKILL only if it is still there
            self._proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (named ``name`` or ``t<n>``); returns its URL."""
        name = name or f"t{next(self._names)}"
        self._admin_connection().execute(sql.SQL("CREATE DATABASE {}").format(
            sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, url_or_name: str) -> None:
        """Drop a database made by ``create_database``, ending any session still in it."""
        name = url_or_name.rsplit("/", 1)[-1]
        self._admin_connection().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                                         .format(sql.Identifier(name)))

    def _admin_connection(self) -> psycopg.Connection:
        if self._admin is None:
            raise PostgresError("the PostgreSQL server is not running")
        return self._admin

    # --- setting up ---------------------------------------------------------------------------

    @property
    def _data(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    def _program(self, name: str) -> str:
        return str(self._bindir / name)

    def _as_server(self, argv: list[str]) -> list[str]:
        """``argv`` run as the server's account (through setpriv when we are root)."""
        if os.geteuid() != 0:
            return argv
        return [_setpriv(), f"--reuid={self._uid}", f"--regid={self._gid}", "--clear-groups",
                "--", *argv]

    def _initdb(self) -> None:
        assert self.workdir is not None
        pwfile = self.workdir / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, self._uid, self._gid)
        done = subprocess.run(self._as_server([
            self._program("initdb"), "-D", str(self._data), "-U", SUPERUSER,
            f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=und",
            "--no-sync"]), capture_output=True, text=True, timeout=120, check=False,
            cwd=self.workdir, env=_server_env())
        pwfile.unlink()
        if done.returncode != 0:
            raise PostgresError(f"initdb failed:\n{done.stdout}{done.stderr}")
        settings = {**SETTINGS, "port": str(self.port),
                    "unix_socket_directories": f"'{self.workdir}'"}
        with (self._data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _ready(self) -> bool:
        """True once the server accepts connections; PostgresError if it exited."""
        assert self._proc is not None
        if not self._proc.running():
            raise PostgresError(f"postgres exited ({self._proc.returncode()}):\n"
                                f"{self._proc.log_tail()}")
        done = subprocess.run(
            [self._program("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
             "-d", "postgres", "-t", "1"], capture_output=True, timeout=10, check=False)
        return done.returncode == 0


def find_bindir() -> Path:
    """The directory with initdb, postgres, pg_ctl and pg_isready: ``LUREN_PG_BINDIR``, the
    newest /usr/lib/postgresql/*/bin (Debian), or where PATH finds initdb."""
    candidates = [Path(os.environ["LUREN_PG_BINDIR"])] if "LUREN_PG_BINDIR" in os.environ else []
    debian = Path("/usr/lib/postgresql")
    versions = [p for p in debian.glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    candidates += [Path(on_path).resolve().parent] if on_path else []
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in PROGRAMS):
            return bindir
    raise PostgresError("PostgreSQL server programs not found (apt-get install postgresql-15, "
                        "or set LUREN_PG_BINDIR)")


def _server_account() -> tuple[int, int]:
    """(uid, gid) the server runs as: ours, or when we are root ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    for name in ("postgres", "nobody"):
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        return account.pw_uid, account.pw_gid
    raise PostgresError("running as root and no 'postgres' or 'nobody' account to run "
                        "PostgreSQL as")


def _setpriv() -> str:
    found = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if not found:
        raise PostgresError("setpriv not found (apt-get install util-linux)")
    return found


def _server_env() -> dict[str, str]:
    """A small environment for the server programs: no HOME or PG* settings of ours."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}


def _check_reachable(path: Path) -> None:
    """PostgresError unless, when we are root, every directory above ``path`` may be entered
    by anyone (the server's account is not ours then)."""
    if os.geteuid() != 0:
        return
    for parent in path.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise PostgresError(f"{parent} cannot be entered by other users; give "
                                "PostgresServer(parent=...) a directory under /tmp")
