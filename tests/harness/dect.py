"""The simulated DECT radio module as a separate process, and its handsets driven by tests.

    with DectModuleProcess(tmp_path / "dect") as module:   # python -m board.dect.sim
        module.pty                                          # the base opens this (dect.port)
        module.do(1, "offhook")                             # a handset's action -> its state
        module.register("2580")                             # a new handset -> the answer
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from tools.pbx.process import ManagedProcess
from tools.pbx.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


class DectModuleProcess:
    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.link = self.workdir / "pty"
        self.control = self.workdir / "control.sock"
        argv = [sys.executable, "-m", "board.dect.sim", "--pty-link", str(self.link),
                "--control", str(self.control), "--state", str(self.workdir / "eeprom.json")]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        self.process = ManagedProcess(argv, self.workdir / "module.log", cwd=REPO_ROOT, env=env)
        self.pty = ""

    def start(self) -> DectModuleProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process.start()
        wait_until(lambda: self.link.exists() and self.control.exists(), 10, 0.02,
                   "the simulated DECT module to start")
        self.pty = self.link.read_text().strip()
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> DectModuleProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def request(self, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.control))
            sock.sendall(json.dumps(body).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def do(self, handset: int, action: str, **more: Any) -> dict[str, Any]:
        answer = self.request({"handset": handset, "do": action, **more})
        assert answer.get("ok"), answer
        return answer["state"]

    def state(self, handset: int) -> dict[str, Any]:
        return self.do(handset, "state")

    def register(self, pin: str) -> dict[str, Any]:
        return self.request({"do": "register", "pin": pin})

    def listing(self) -> dict[str, Any]:
        return self.request({"do": "list"})
