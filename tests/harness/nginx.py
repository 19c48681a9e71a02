"""A private nginx serving one directory over HTTPS on a free loopback port.

    with Nginx(tree, cert, key, tmp_path / "nginx", access_log=True) as web:
        httpx.get(web.url("/common.toml"), verify=str(ca.cert_path))
        web.statuses()   # [("/common.toml", 200), ...] from its access log

What a fleet puts in front of a rendered provisioning tree, with nginx's own behaviour: ETag
`"<mtime hex>-<size hex>"` (mtime in whole seconds), 304 to a matching `If-None-Match`,
keep-alive, `application/octet-stream` for every file. Everything it writes (nginx.conf, pid,
lock, error and access logs, temp directories) stays in `workdir`; it listens on
https://127.0.0.1:<port>/ only, runs in the foreground (`daemon off`) in its own process group
and is stopped by PID: SIGQUIT (graceful), then SIGTERM/SIGKILL after a timeout. It never reads
/etc/nginx nor touches a system nginx. `client_ca` makes it ask for a client certificate from
that CA (nginx then answers 400 to a request without one, it does not fail the handshake).
Requires the Debian package `nginx` (or `nginx-light`, which pulls it in).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
from pathlib import Path

from tools.pbx.ports import free_port
from tools.pbx.process import ManagedProcess, Peer, log_tail
from tools.pbx.waiting import wait_until

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 3  # a port from free_port() can be taken before nginx binds it
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class NginxError(RuntimeError):
    """nginx is not installed, or did not start; the message carries its error log's tail."""


class _PortTaken(NginxError):
    """The port was taken between free_port() and nginx's bind."""


def nginx_binary() -> str:
    """Path of the nginx program; NginxError if it is not installed."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise NginxError("nginx not installed (apt-get install nginx-light)")
    return found


class Nginx(Peer):
    """One nginx master with `worker_processes` workers serving `root` over TLS.

    `access_log` writes `<status> <request uri>` lines to `workdir/access.log` (off by default:
    a benchmark should not measure log writes).
    """

    def __init__(self, root: Path, cert: Path, key: Path, workdir: Path, *,
                 client_ca: Path | None = None, worker_processes: int = 2,
                 access_log: bool = False) -> None:
        self.root = root
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.workdir = workdir
        self.worker_processes = worker_processes
        self.access_log = access_log
        self.port = 0
        self._proc: ManagedProcess | None = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    @property
    def access_log_path(self) -> Path:
        return self.workdir / "access.log"

    def url(self, path: str = "/") -> str:
        """`https://127.0.0.1:<port><path>`."""
        if not self.port:
            raise RuntimeError("nginx was never started")
        return f"https://{HOST}:{self.port}{path}"

    def start(self) -> Nginx:
        """Write nginx.conf, start nginx and wait until its port completes a TLS handshake."""
        if self._proc is not None:
            return self
        binary = nginx_binary()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.port = free_port()
            try:
                self._launch(binary)
                break
            except _PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGQUIT (finish open requests, then exit), SIGTERM/SIGKILL after `timeout`."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.running() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGQUIT)
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not proc.running(), timeout, what="nginx to quit")
        proc.stop(grace=1.0)  # the master if still there, and any worker left in its group

    def worker_pids(self) -> list[int]:
        """PIDs of the running worker processes (the master excluded)."""
        if self._proc is None:
            return []
        return [pid for pid in self._proc.pids() if pid != self._proc.pid]

    def statuses(self) -> list[tuple[str, int]]:
        """(request URI, status) of every request logged so far (needs `access_log`)."""
        if not self.access_log:
            raise RuntimeError("this nginx was started without access_log=True")
        try:
            text = self.access_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        rows = (line.split(" ", 1) for line in text.splitlines() if " " in line)
        return [(uri, int(status)) for status, uri in rows]

    # -- start-up ---------------------------------------------------------------------------------

    def _launch(self, binary: str) -> None:
        self._write_config()
        self.error_log.unlink(missing_ok=True)
        proc = ManagedProcess(
            [binary, "-p", str(self.workdir), "-c", str(self.conf_path),
             "-e", str(self.error_log), "-g", "daemon off; master_process on;"],
            self.workdir / "nginx.out", cwd=self.workdir)
        proc.start()
        self._proc = proc
        try:
            wait_until(self._answers, START_TIMEOUT, what=f"nginx on port {self.port}")
        except TimeoutError as exc:
            self.stop()
            raise NginxError(f"nginx did not start: {exc}\n{self._log_tail()}") from exc
        except NginxError:
            self.stop()
            raise

    def _answers(self) -> bool:
        """True once a TLS handshake on the port gets an answer; NginxError if nginx exited."""
        assert self._proc is not None
        if not self._proc.running():
            tail = self._log_tail()
            error = _PortTaken if "Address already in use" in tail else NginxError
            raise error(f"nginx exited ({self._proc.returncode()}):\n{tail}")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # only "is TLS up?": the tests check trust
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as sock, \
                    context.wrap_socket(sock):
                return True
        except ssl.SSLError:
            return True  # a TLS alert is a TLS answer
        except OSError:
            return False

    def _log_tail(self) -> str:
        return "\n".join(filter(None, (log_tail(self.error_log, 20),
                                       log_tail(self.workdir / "nginx.out", 20))))

    def _write_config(self) -> None:
        temp = self.workdir / "temp"
        for name in TEMP_DIRS:
            (temp / name).mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text("\n".join(self._config_lines(temp)) + "\n")

    def _config_lines(self, temp: Path) -> list[str]:
        w = self.workdir
        return [
            # As root, nginx switches its workers to `nobody`, which cannot read a tree under
            # pytest's 0700 /tmp/pytest-of-root nor our workdir; widening the permissions of
            # directories we do not own is worse than keeping the workers as root for a
            # loopback-only test server. Not root: nginx cannot switch users, so say nothing.
            *(["user root;"] if os.geteuid() == 0 else []),
            f"worker_processes {self.worker_processes};",
            f"pid {w / 'nginx.pid'};",
            f"lock_file {w / 'nginx.lock'};",
            f"error_log {self.error_log} warn;",
            "events { worker_connections 1024; }",
            "http {",
            *(f"    {name}_temp_path {temp / name};" for name in TEMP_DIRS),
            "    default_type application/octet-stream;",
            "    sendfile on;",
            "    keepalive_timeout 65s;",
            "    keepalive_requests 100000;",
            "    server_tokens off;",
            "    log_format luren '$status $request_uri';",
            f"    access_log {self.access_log_path} luren;" if self.access_log
            else "    access_log off;",
            "    server {",
            f"        listen {HOST}:{self.port} ssl;",
            f"        ssl_certificate {self.cert};",
            f"        ssl_certificate_key {self.key};",
            *self._client_ca_lines(),
            f"        root {self.root.resolve()};",
            "        etag on;",
            "        location / { try_files $uri =404; }",
            "    }",
            "}",
        ]

    def _client_ca_lines(self) -> list[str]:
        if self.client_ca is None:
            return []
        return [f"        ssl_client_certificate {self.client_ca};",
                "        ssl_verify_client on;"]
