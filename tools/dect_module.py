"""The simulated DECT radio module as a child process, for the simulated office.

    module = DectModule(root / "dect")
    module.preregister([Handset(1, "00c0ffee01", "Reception")])  # its EEPROM, before start
    module.start()            # python -m board.dect.sim --pty-link ... --control ... --state ...
    module.pty                # the base's `[dect] port`
    module.request({"handset": 1, "do": "offhook"})   # docs/dect.md, the control socket
    module.stop()             # by PID, its process group too

From a shell, one request: `python -m tools.dect_module SOCKET '{"do": "list"}'`.

The module, its pty and its control protocol are `board.dect.simserver` and
`board.dect.simcontrol`; this only starts, asks and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from board.dect.eeprom import Registrations
from tools.pbx.process import ManagedProcess
from tools.pbx.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 10.0
MAX_SOCKET_PATH = 107  # bytes of sockaddr_un.sun_path, less its NUL


@dataclass(frozen=True)
class Handset:
    """One entry of the module's registration table."""

    number: int
    ipui: str  # 10 hex digits
    name: str


class DectModule:
    """`python -m board.dect.sim` with its pty link, control socket and EEPROM in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.link = self.workdir / "pty"
        self.control = self.workdir / "control.sock"
        self.state = self.workdir / "eeprom.json"
        argv = [sys.executable, "-m", "board.dect.sim", "--pty-link", str(self.link),
                "--control", str(self.control), "--state", str(self.state)]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        self.process = ManagedProcess(argv, self.workdir / "module.log", cwd=REPO_ROOT, env=env)
        self.pty = ""

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def preregister(self, handsets: list[Handset]) -> list[str]:
        """Put `handsets` in the EEPROM file (others already there stay); returns its problems.

        Call before `start()`: the module reads the file when it starts. An unreadable file is
        moved aside by `Registrations` and said in the problems.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        table = Registrations(self.state)
        for handset in handsets:
            other = table.number_of(handset.ipui)
            if other is not None and other != handset.number:
                table.remove(other)
            table.add(handset.number, handset.ipui, handset.name)
        return table.problems

    def start(self) -> DectModule:
        """Launch it and wait for its pty link file and control socket (ValueError, OSError,
        RuntimeError or TimeoutError in words when it cannot start)."""
        if len(os.fsencode(self.control)) > MAX_SOCKET_PATH:
            raise ValueError(f"the control socket path {self.control} is longer than "
                             f"{MAX_SOCKET_PATH} bytes")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.link.unlink(missing_ok=True)
        self.process.start()
        wait_until(self._ready, START_TIMEOUT_S, 0.02, "the simulated DECT module to start")
        self.pty = self.link.read_text().strip()
        return self

    def _ready(self) -> bool:
        if not self.process.running():
            raise RuntimeError(f"the simulated DECT module exited with "
                               f"{self.process.returncode()}:\n{self.process.log_tail()}")
        return self.link.exists() and self.control.exists()

    def running(self) -> bool:
        return self.process.running()

    def stop(self) -> None:
        """SIGTERM (the module removes its socket), SIGKILL after a grace; idempotent."""
        self.process.stop()

    def request(self, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """One request on the control socket and its answer (docs/dect.md)."""
        return control_request(self.control, body, timeout)


def control_request(path: Path | str, body: dict[str, Any],
                    timeout: float = 5.0) -> dict[str, Any]:
    """Send one JSON request line to the module's control socket at `path`; its answer.

    OSError when the socket cannot be reached, ValueError when the answer is not JSON.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(body).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ValueError(f"the module answered {answer!r}, not a JSON object")
    return answer


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.dect_module SOCKET REQUEST`: one request, its answer on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.dect_module",
        description="Send one request to a simulated DECT module's control socket "
                    "(docs/dect.md), e.g. '{\"handset\": 1, \"do\": \"offhook\"}'.")
    parser.add_argument("socket", type=Path, help="the module's control socket")
    parser.add_argument("request", help="one JSON object")
    args = parser.parse_args(argv)
    try:
        answer = control_request(args.socket, json.loads(args.request))
    except (OSError, ValueError) as exc:
        print(f"python -m tools.dect_module: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
