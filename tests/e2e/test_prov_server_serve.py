"""``provisioning.server.cli serve`` as a real process: a phone finds the provisioning URL by
plug-and-play multicast on loopback, a phone with a lab device certificate is answered by the
redirect service, each request is logged, and SIGTERM (or Ctrl-C) stops it cleanly."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioning.fetch import FetchSettings
from provisioning.pnp import discover
from provisioning.redirect import RedirectError, ask_redirect
from provisioning.server.https import cert_sha256, make_ca
from tools.pbx.ports import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MAC = "00:1a:2b:3c:4d:5e"
PNP_URL = "https://127.0.0.1:1/"
SITE_URL = "https://prov.example.se/luren/"
START_S = 15.0
STOP_S = 5.0


class Served:
    """The serve process, its stdout read line by line by a thread."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "provisioning.server.cli", *args], cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, name="serve-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, words: str, timeout: float) -> str:
        """The next stdout line containing `words`; fails at the deadline or at the end."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                err = self.process.stderr.read() if self.process.stderr else ""
                pytest.fail(f"serve ended before {words!r}: {self.seen} {err}")
            self.seen.append(line)
            if words in line:
                return line
        pytest.fail(f"no {words!r} from serve in {timeout} s: {self.seen}")

    def stop(self, signum: int) -> int:
        """Send `signum` and return the exit code, within STOP_S."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=STOP_S)
        self._reader.join(timeout=STOP_S)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@dataclass(frozen=True)
class Lab:
    db: Path
    server_ca: Path
    server: tuple[Path, Path]
    device_ca: Path
    phone: tuple[Path, Path]
    destinations: Path


def cli(db: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "provisioning.server.cli", "--db", str(db),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    """Lab certificates, and an inventory with the phone's certificate enrolled (by the CLI)."""
    pki = tmp_path / "pki"
    server_ca, device_ca = make_ca(pki, name="server-ca"), make_ca(pki, name="device-ca")
    phone = device_ca.issue(pki, "phone", server=False)
    db = tmp_path / "inventory.db"
    cli(db, "add-device", MAC, "T42", "--cert-sha256", cert_sha256(phone[0]))
    destinations = tmp_path / "destinations.json"
    destinations.write_text(json.dumps({"default": SITE_URL}))
    return Lab(db, server_ca.cert_path, server_ca.issue(pki, "redirect"),
               device_ca.cert_path, phone, destinations)


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for one in started:
        one.kill()


def test_serve_answers_plug_and_play_and_redirect_then_stops_on_sigterm(
        lab: Lab, served: list[Served], tmp_path: Path) -> None:
    group = ("224.0.1.75", free_port())
    redirect_port = free_port()
    serve = Served(["--db", str(lab.db), "serve", "--pnp", PNP_URL,
                    "--pnp-group", f"{group[0]}:{group[1]}", "--pnp-interface", "127.0.0.1",
                    "--redirect", f"127.0.0.1:{redirect_port}",
                    "--redirect-cert", str(lab.server[0]), "--redirect-key", str(lab.server[1]),
                    "--device-ca", str(lab.device_ca), "--destinations", str(lab.destinations)])
    served.append(serve)
    serve.wait_for("serving", START_S)
    pnp_line = next(line for line in serve.seen if line.startswith("plug-and-play: listening"))
    assert f"{group[0]}:{group[1]} via 127.0.0.1" in pnp_line
    redirect_line = next(line for line in serve.seen if line.startswith("redirect: listening"))
    redirect_url = redirect_line.split("listening on ", 1)[1].split(" ", 1)[0]
    assert redirect_url == f"https://127.0.0.1:{redirect_port}/"
    assert f"(inventory {lab.db})" in redirect_line

    found = discover(MAC, "T42", "1.0.0", group=group, interface_ip="127.0.0.1", timeout_s=5.0)
    assert found is not None and found.url == PNP_URL
    assert "phone 001a2b3c4d5e (model T42) asked" in serve.wait_for("plug-and-play: phone", 5)

    settings = FetchSettings(ca_file=lab.server_ca, client_cert=lab.phone[0],
                             client_key=lab.phone[1], timeout_s=5.0)
    assert ask_redirect(redirect_url, MAC, settings, tmp_path / "cache") == SITE_URL
    logged = serve.wait_for("redirect for 001a2b3c4d5e", 5)
    assert "200, sent to its site default at prov.example.se" in logged
    with pytest.raises(RedirectError, match="could not be asked"):  # no device certificate
        ask_redirect(redirect_url, MAC, FetchSettings(ca_file=lab.server_ca, timeout_s=5.0),
                     tmp_path / "cache2")
    assert "no device certificate" in serve.wait_for("refused at the TLS handshake", 5)

    assert serve.stop(signal.SIGTERM) == 0
    rest = serve.seen + list(iter(serve.lines.get, None))
    assert rest[-2:] == ["stopping (SIGTERM)", "stopped"]
    key_text = lab.server[1].read_text()
    assert not any("PRIVATE KEY" in line or key_text in line for line in rest)


def test_serve_stops_on_ctrl_c(served: list[Served], tmp_path: Path) -> None:
    group = ("224.0.1.75", free_port())
    serve = Served(["--db", str(tmp_path / "unused.db"), "serve", "--pnp", PNP_URL,
                    "--pnp-group", f"{group[0]}:{group[1]}"])
    served.append(serve)
    serve.wait_for("serving", START_S)
    assert serve.stop(signal.SIGINT) == 0
    assert list(iter(serve.lines.get, None)) == ["stopping (SIGINT)", "stopped"]
    assert not (tmp_path / "unused.db").exists()  # plug-and-play alone needs no inventory
