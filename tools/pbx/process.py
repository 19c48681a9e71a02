"""Child processes (PBX, test user agents) that are started and stopped by PID.

Each child runs in its own session, so its process group id equals its PID:
stopping it can then also reach any helper processes it forked (Kamailio forks
workers) without ever signalling a process we did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self


class Peer:
    """Something with `start()` and `stop()`: `with peer:` starts it and always stops it."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ManagedProcess:
    """One external program, its output appended to `log_path`.

    `start()` launches it; `stop()` sends SIGTERM, waits up to `grace`
    seconds, then SIGKILLs it and every remaining member of its process group.
    `stop()` is idempotent and leaves no process (nor zombie of ours) behind.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the program (also its process group id), None before start()."""
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Launch the program; output (stdout and stderr) goes to the log file."""
        if self._proc is not None:
            raise RuntimeError(f"{self.argv[0]} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )

    def running(self) -> bool:
        """True while the main process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        """Exit status once the main process has exited, else None."""
        return self._proc.poll() if self._proc else None

    def pids(self) -> list[int]:
        """Live (non-zombie) processes of this program: main PID and its group."""
        if self._proc is None:
            return []
        return sorted(set(group_members(self._proc.pid)) | self._main_if_alive())

    def _main_if_alive(self) -> set[int]:
        assert self._proc is not None
        return {self._proc.pid} if self._proc.poll() is None else set()

    def stop(self, grace: float = 5.0, term_interval: float | None = None) -> None:
        """SIGTERM, wait up to `grace` s, then SIGKILL the whole group. Idempotent.

        With `term_interval`, SIGTERM is repeated every `term_interval` seconds
        within the grace period (baresip exits at once on a second SIGTERM).
        """
        if self._proc is None:
            return
        deadline = time.monotonic() + grace
        while self._proc.poll() is None and time.monotonic() < deadline:
            self._proc.send_signal(signal.SIGTERM)
            step = min(term_interval or grace, max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=step)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        _kill_group(self._proc.pid, grace)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the program's log, for error messages."""
        return log_tail(self.log_path, lines)


def log_tail(path: Path, lines: int = 40) -> str:
    """Last `lines` lines of a text file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def process_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    state = _proc_stat(pid)
    return state is not None and state[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose process group is `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[0] != "Z" and stat[1] == pgid:
                members.append(int(entry))
    return members


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group id) of `pid` from /proc, None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[2])


def _kill_group(pgid: int, grace: float) -> None:
    """Terminate what is left of process group `pgid` (forked workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group_members(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
