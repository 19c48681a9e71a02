"""Start a `luren run` phone as a child process and drive it through its control API.

Used by the simulated office, the benchmarks and the end-to-end tests: the same client a
front panel or a provisioning tool would use, nothing private.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.pbx.process import ManagedProcess, Peer
from tools.pbx.waiting import wait_until

READY_FILE = "run/ready.json"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LineSpec:
    user: str
    password: str
    registrar: str
    display_name: str = ""
    transport: str = "udp"
    auto_answer: bool = False
    dtmf_mode: str = ""  # empty: the phone's [sip] dtmf_mode


def phone_config(lines: list[LineSpec], *, language: str = "en", mic_tone_hz: int = 0,
                 mic_file: str = "", extra: str = "", dtmf_mode: str = "rfc4733",
                 codecs: tuple[str, ...] = ("PCMA", "PCMU", "G722"),
                 detect_inband_dtmf: bool = False, voicemail: bool = False) -> str:
    """A TOML config for a simulated phone on loopback with a free SIP port.

    Without `voicemail` the phone's own voicemail is off (`[voicemail] enabled = false`, as
    where the PBX keeps the messages): calls are refused busy or ring on as before. With it,
    `extra` may carry the `[voicemail]` table."""
    parts = [f'[device]\nlanguage = "{language}"\n',
             f'[sip]\nport = 0\nbind_address = "127.0.0.1"\ndtmf_mode = "{dtmf_mode}"\n',
             f"codecs = {json.dumps(list(codecs))}\n"
             f"detect_inband_dtmf = {str(detect_inband_dtmf).lower()}\n",
             f'[sim]\nmic_tone_hz = {mic_tone_hz}\nmic_file = {json.dumps(mic_file)}\n']
    for line in lines:
        parts.append(
            f'[[lines]]\nuser = "{line.user}"\npassword = "{line.password}"\n'
            f'registrar = "{line.registrar}"\ndisplay_name = "{line.display_name}"\n'
            f'transport = "{line.transport}"\nauto_answer = {str(line.auto_answer).lower()}\n'
            f'dtmf_mode = "{line.dtmf_mode}"\n')
    if not voicemail:
        parts.append("[voicemail]\nenabled = false\n")
    return "\n".join(parts) + extra


class ApiError(RuntimeError):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body.get('error', body)}")
        self.status, self.body = status, body


class PhoneClient:
    """A client of one phone's control API (docs/api.md)."""

    def __init__(self, base_url: str, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                timeout: float = 10.0) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, json.loads(exc.read() or b"{}")) from None

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/api/v1/status")

    def screen(self) -> list[str]:
        return self.request("GET", "/api/v1/screen")["rows"]

    def screen_text(self) -> str:
        return "\n".join(self.screen())

    def leds(self) -> dict[str, Any]:
        return self.request("GET", "/api/v1/leds")["leds"]

    def keys(self, digits: str) -> dict[str, Any]:
        return self.request("POST", "/api/v1/keys", {"keys": digits})

    def key(self, name: str) -> dict[str, Any]:
        return self.request("POST", "/api/v1/keys", {"key": name})

    def hook(self, offhook: bool) -> dict[str, Any]:
        return self.request("POST", "/api/v1/hook", {"offhook": offhook})

    def headset(self, plugged: bool) -> dict[str, Any]:
        return self.request("POST", "/api/v1/headset", {"plugged": plugged})

    def dial(self, number: str) -> dict[str, Any]:
        return self.request("POST", "/api/v1/dial", {"number": number})

    def advance(self, seconds: float) -> dict[str, Any]:
        return self.request("POST", "/api/v1/clock/advance", {"seconds": seconds})

    def wait_screen(self, predicate: Callable[[str], bool], timeout: float = 10.0,
                    what: str = "") -> str:
        """Wait (long-polling the screen) until `predicate(screen text)` holds; returns it."""
        deadline = time.monotonic() + timeout
        version = -1
        while True:
            left = deadline - time.monotonic()
            query = f"?after={version}&timeout={max(0.0, min(left, 5.0)):.2f}"
            body = self.request("GET", "/api/v1/screen" + query, timeout=left + 5)
            text = "\n".join(body["rows"])
            if predicate(text):
                return text
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or 'screen'};"
                                   f" screen shows:\n{text}")
            version = body["version"]

    def wait_text(self, needle: str, timeout: float = 10.0) -> str:
        return self.wait_screen(lambda text: needle in text, timeout, repr(needle))

    def wait_status(self, predicate: Callable[[dict[str, Any]], Any], timeout: float = 10.0,
                    what: str = "") -> Any:
        return wait_until(lambda: predicate(self.status()), timeout, 0.02, what)


class PhoneProcess(PhoneClient, Peer):
    """`luren run` in a child process with its own data dir; stopped by PID."""

    def __init__(self, workdir: Path, config_toml: str, *, test_clock: bool = False,
                 log_level: str = "info", board: str = "sim",
                 env: dict[str, str] | None = None) -> None:
        super().__init__("http://127.0.0.1:0")
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "config.toml"
        self.data_dir = self.workdir / "data"
        self.config_toml = config_toml
        argv = [sys.executable, "-m", "firmware.cli", "--log-level", log_level, "run",
                "--config", str(self.config_path), "--data-dir", str(self.data_dir),
                "--api", "127.0.0.1:0", "--board", board]
        if test_clock:
            argv.append("--test-clock")
        full_env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        full_env.update(env or {})
        self.process = ManagedProcess(argv, self.workdir / "phone.log", cwd=REPO_ROOT,
                                      env=full_env)
        self.sip_port = 0
        self.pid = 0
        self.boot_id = ""

    def start(self, timeout: float = 20.0) -> PhoneProcess:
        """Launch and wait until the phone announces its SIP port and API address."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_toml)
        self.process.start()
        ready = wait_until(self._ready, timeout, 0.02, "the phone to start")
        self.base_url, self.sip_port, self.pid = ready["api"], ready["sip_port"], ready["pid"]
        self.boot_id = ready.get("boot_id", "")
        return self

    def wait_restarted(self, timeout: float = 30.0) -> PhoneProcess:
        """Wait until the phone has restarted itself (same process, a new boot) and is ready."""
        before = self.boot_id
        ready = wait_until(lambda: (r := self._ready()) is not None
                           and r.get("boot_id") != before and r, timeout, 0.05,
                           "the phone to restart")
        self.base_url, self.sip_port = ready["api"], ready["sip_port"]
        self.boot_id = ready.get("boot_id", "")
        return self

    def _ready(self) -> dict[str, Any] | None:
        if not self.process.running():
            raise RuntimeError(f"the phone exited with {self.process.returncode()}:\n"
                               + self.log_tail())
        try:
            ready = json.loads((self.data_dir / READY_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return ready if ready.get("pid") == self.process.pid else None

    def stop(self, grace: float = 10.0) -> int | None:
        self.process.stop(grace=grace)
        return self.process.returncode()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.process.log_path.read_text(errors="replace")
                             .splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
