"""SIPp as a test peer: a registered phone that is busy or rings forever, and a call load generator.

Every SIPp process binds its own free loopback ports (SIP, media base and
base+2, control socket) and is stopped by PID. Scenario files live in
tests/harness/scenarios/.

SIPp exit status: 0 all calls succeeded, 1 at least one failed, 97 stopped by
an internal command, 99 normal exit without calls, 255/254 fatal (bad
option, port in use).
"""

from __future__ import annotations

import contextlib
import csv
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tools.pbx.ports import free_port, free_port_range
from tools.pbx.process import ManagedProcess, Peer
from tools.pbx.waiting import wait_until

SCENARIOS = Path(__file__).with_name("scenarios")
MODES = ("busy", "ringing")


class SippError(RuntimeError):
    """SIPp failed: bad exit status, registration refused, or no result."""


def sipp_argv(local_port: int, *extra: str) -> list[str]:
    """Common SIPp options: loopback, our own SIP/media/control ports, no stdin.

    Note: SIPp binds its control socket on 0.0.0.0 (no option to change it);
    the SIP and media sockets are on 127.0.0.1 only.
    """
    return [
        shutil.which("sipp") or "/usr/bin/sipp",
        "-i", "127.0.0.1",
        "-p", str(local_port),
        "-mp", str(free_port_range(4)),
        "-cp", str(free_port()),
        "-nostdin",
        *extra,
    ]


class SippRegisteredUas(Peer):
    """A phone registered as `user` that answers every INVITE per `mode`.

    mode "busy": 486 Busy Here. mode "ringing": 180 Ringing and never
    answers; a CANCEL gets 200 and the INVITE 487. Any number of calls, one
    after another or at once, until stop().

    Implemented as two SIPp processes: a UAS scenario listening on `port`,
    and a one-shot REGISTER (digest auth) whose Contact points at it.
    """

    def __init__(
        self,
        user: str,
        password: str,
        pbx_port: int,
        mode: str,
        *,
        workdir: Path | None = None,
        domain: str = "127.0.0.1",
        expires: int = 3600,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.user, self.password, self.pbx_port, self.mode = user, password, pbx_port, mode
        self.domain, self.expires = domain, expires
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sipp-uas-")
            workdir = Path(self._tmp.name)
        self.workdir = Path(workdir).resolve()
        self.port = free_port()
        self._uas: ManagedProcess | None = None
        self._register: ManagedProcess | None = None

    @property
    def pbx(self) -> str:
        return f"127.0.0.1:{self.pbx_port}"

    def pids(self) -> list[int]:
        """Live SIPp processes of this peer."""
        return [pid for proc in (self._uas, self._register) if proc for pid in proc.pids()]

    def start(self) -> SippRegisteredUas:
        """Start the UAS, then send the REGISTER. Returns at once; see wait_registered()."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._uas = self._launch("uas", self._uas_argv())
        wait_until(self._uas_listening, 5.0, what=f"SIPp UAS {self.user} to start")
        self._register = self._launch("register", self._register_argv())
        return self

    def wait_registered(self, timeout: float = 5.0) -> None:
        """Wait until the PBX has answered the REGISTER with 200 OK.

        Raises SippError (with SIPp's log) if the registration failed.
        """
        assert self._register is not None, "start() first"
        register = self._register
        wait_until(lambda: not register.running(), timeout, what=f"REGISTER of {self.user}")
        if register.returncode() != 0:
            raise SippError(
                f"REGISTER of {self.user} failed (sipp exit {register.returncode()}):\n"
                f"{register.log_tail()}"
            )

    def stop(self) -> None:
        """Stop both SIPp processes by PID. Idempotent. (The registration stays at the PBX.)"""
        for proc in (self._register, self._uas):
            if proc is not None:
                proc.stop(grace=5.0)
        self._register = self._uas = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(argv, self.workdir / f"sipp-{name}.log", cwd=self.workdir)
        proc.start()
        return proc

    def _uas_listening(self) -> bool:
        assert self._uas is not None
        if not self._uas.running():
            raise SippError(f"SIPp UAS exited ({self._uas.returncode()}):\n{self._uas.log_tail()}")
        return _udp_port_bound(self.port)

    def _uas_argv(self) -> list[str]:
        scenario = SCENARIOS / f"uas_{self.mode}.xml"
        return sipp_argv(self.port, "-sf", str(scenario), "-s", self.user, "-aa")

    def _register_argv(self) -> list[str]:
        return sipp_argv(
            free_port(),
            "-sf", str(SCENARIOS / "register.xml"),
            "-s", self.user, "-au", self.user, "-ap", self.password,
            "-key", "domain", self.domain,
            "-key", "contact_port", str(self.port),
            "-key", "expires", str(self.expires),
            "-m", "1",
            "-timeout", "10s", "-timeout_error",
            self.pbx,
        )


@dataclass
class SippResult:
    """Outcome of a SIPp load run. `stats` is SIPp's last -trace_stat row (cumulative)."""

    successful: int
    failed: int
    created: int
    returncode: int | None
    stats: dict[str, str] = field(default_factory=dict)
    log: str = ""


def run_uac_load(
    target: str,
    calls: int,
    rate: float,
    concurrent_limit: int,
    call_duration_ms: int,
    timeout: float,
    *,
    workdir: Path | None = None,
) -> SippResult:
    """Place `calls` calls (scenarios/uac_load.xml) and count the outcomes.

    The scenario is SIPp's built-in `uac` (INVITE, hold, BYE) made to work
    through a record-routing proxy and to tolerate late provisional replies.
    Counts come from SIPp's -trace_stat CSV (last, cumulative row).

    `target` is "sip:user@127.0.0.1:port", "user@127.0.0.1:port" or
    "127.0.0.1:port". Calls start at `rate` per second, at most
    `concurrent_limit` at once, each held `call_duration_ms` after the 200 OK.
    The uac scenario does no authentication, so point it at a phone directly
    or at a PBX user as an unauthenticated outside caller.
    SIPp is stopped after `timeout` seconds; unfinished calls then count as
    neither successful nor failed (compare with `created`).
    """
    with tempfile.TemporaryDirectory(prefix="sipp-uac-") as tmp:
        folder = Path(workdir or tmp).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        stat_file = folder / "uac-stats.csv"
        user, hostport = split_target(target)
        argv = sipp_argv(
            free_port(),
            "-sf", str(SCENARIOS / "uac_load.xml"), "-s", user,
            "-m", str(calls), "-r", _rate(rate), "-rp", "1000",
            "-l", str(concurrent_limit), "-d", str(call_duration_ms),
            "-trace_stat", "-stf", str(stat_file), "-fd", "1",
            "-timeout", f"{max(1, math.ceil(timeout))}s",
            hostport,
        )
        proc = ManagedProcess(argv, folder / "sipp-uac.log", cwd=folder)
        proc.start()
        _wait_exit(proc, timeout + 5.0)
        return _result(stat_file, proc)


def split_target(target: str) -> tuple[str, str]:
    """('user', 'host:port') from 'sip:user@host:port'; user defaults to 'service'."""
    target = target.removeprefix("sip:").split(";", 1)[0]
    user, _, hostport = target.rpartition("@")
    return user or "service", hostport


def read_last_stats(stat_file: Path) -> dict[str, str]:
    """The last row of a SIPp -trace_stat CSV (';'-separated) as {column: value}."""
    with open(stat_file, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        raise SippError(f"{stat_file}: no statistics rows")
    return dict(zip(rows[0], rows[-1], strict=False))


def _result(stat_file: Path, proc: ManagedProcess) -> SippResult:
    log = proc.log_tail(60)
    if not stat_file.exists():
        raise SippError(f"SIPp wrote no statistics (exit {proc.returncode()}):\n{log}")
    stats = read_last_stats(stat_file)
    return SippResult(
        successful=int(stats["SuccessfulCall(C)"]),
        failed=int(stats["FailedCall(C)"]),
        created=int(stats["TotalCallCreated"]),
        returncode=proc.returncode(),
        stats=stats,
        log=log,
    )


def _wait_exit(proc: ManagedProcess, timeout: float) -> None:
    """Wait for SIPp to finish; stop it by PID if it overruns `timeout`."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not proc.running(), timeout, interval=0.05, what="SIPp to finish")
    proc.stop(grace=2.0)


def _rate(rate: float) -> str:
    return f"{rate:g}"


def _udp_port_bound(port: int) -> bool:
    """True if something is bound to UDP 127.0.0.1:`port` (per /proc/net/udp)."""
    needle = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == needle for line in list(f)[1:])
