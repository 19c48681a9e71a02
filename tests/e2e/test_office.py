"""`luren office`: a call between the office's two phones, the DECT base's three handsets
ringing for a call from 1001, a clean stop, and the front panel.

The office runs as a real `luren office --no-panel` process; the tests find its phones, the
DECT base and the radio module's control socket through `office.json` and drive them through
their control APIs (and the handsets through the module's socket), as a person would.
The answering robot's decisions and the voice file are checked without any process first.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from board.dect.eeprom import Registrations
from tests.harness.audio_check import dominant_frequency
from tools import office as office_mod
from tools.dect_module import DectModule, Handset, control_request
from tools.dect_module import main as dect_module_main
from tools.office import OFFICE_FILE, make_voice, robot_action, run_office, shows_active_call
from tools.pbx.process import process_alive
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneClient

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0
CALL_TIMEOUT_S = 20.0  # two Swedish rings (1 s on, 5 s off) and then some
HANDSETS = {1: "Reception", 2: "Lager", 3: "Verkstad"}


# -- the answering robot and the voice, without processes -----------------------------------------
def phone_status(hook: str = "onhook", ringing: bool = False, rings: int = 0,
                 calls: int = 0) -> dict[str, Any]:
    return {"terminals": [{"hook": hook, "ringing": ringing, "rings": rings}],
            "calls": [{"id": f"c{i}"} for i in range(calls)]}


IN_CALL = ["Anna Andersson", "1001", "", "Samtal         00:07"]
ENDED = ["Samtalet avslutat", "Anna Andersson", "", ""]


@pytest.mark.parametrize(("status", "rows", "after", "answered", "action"), [
    (phone_status(), [], 2, False, None),
    (phone_status(ringing=True, rings=1, calls=1), [], 2, False, None),
    (phone_status(ringing=True, rings=2, calls=1), [], 2, False, "answer"),
    (phone_status(ringing=True, rings=5, calls=1), [], 2, False, "answer"),
    (phone_status(ringing=True, rings=9, calls=1), [], 0, False, None),  # 0 = never
    (phone_status("offhook", calls=1), IN_CALL, 2, True, None),
    (phone_status("offhook", calls=0), IN_CALL, 2, True, None),  # screen still in the call
    (phone_status("offhook", calls=0), ENDED, 2, True, "hang_up"),
    (phone_status("offhook", calls=0), ENDED, 2, False, None),  # not lifted by the robot
])
def test_robot_action(status: dict[str, Any], rows: list[str], after: int, answered: bool,
                      action: str | None) -> None:
    assert robot_action(status, rows, after, answered) == action


def test_shows_active_call() -> None:
    assert shows_active_call(IN_CALL)
    assert shows_active_call(["1002", "", "", "In call      1:02:03"])
    assert not shows_active_call(ENDED)
    assert not shows_active_call(["10:42      mån 3 mar", "1002 Bertil Berg", "", ""])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_voice_is_a_16_khz_mono_16_bit_wav(tmp_path: Path) -> None:
    path = make_voice(tmp_path / "voice.wav")
    assert path is not None
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() > 16000  # a sentence and a second of silence
    assert [p.name for p in tmp_path.iterdir()] == ["voice.wav"]


def test_voice_falls_back_when_espeak_is_missing(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(office_mod.shutil, "which", lambda name: None)
    assert make_voice(tmp_path / "voice.wav") is None
    assert "espeak-ng is not installed" in caplog.text


def test_office_handsets_go_into_the_eeprom_and_keep_the_others(tmp_path: Path) -> None:
    module = DectModule(tmp_path / "dect")
    Registrations(module.state).add(4, "0a1b2c3d4e", "Kaffe")  # a person registered one more
    Registrations(module.state).add(6, "00c0ffee02", "Old name")  # "Lager" at another number
    assert module.preregister(list(office_mod.HANDSETS)) == []
    assert module.preregister(list(office_mod.HANDSETS)) == []  # a kept office dir, started again
    assert Registrations(module.state).entries() == [
        (1, "00c0ffee01", "Reception"), (2, "00c0ffee02", "Lager"),
        (3, "00c0ffee03", "Verkstad"), (4, "0a1b2c3d4e", "Kaffe")]


def test_dect_module_refuses_a_control_socket_path_too_long(tmp_path: Path) -> None:
    module = DectModule(tmp_path / ("x" * 120))
    module.preregister([Handset(1, "00c0ffee01", "Reception")])
    with pytest.raises(ValueError, match="longer than 107 bytes"):
        module.start()
    assert module.pid is None


def test_dect_module_command_says_when_there_is_no_module(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dect_module_main([str(tmp_path / "none.sock"), '{"do": "list"}']) == 1
    assert capsys.readouterr().err.startswith("python -m tools.dect_module: [Errno 2]")


def test_office_that_cannot_start_says_why(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    too_long = tmp_path / ("x" * 120)  # no room for Kamailio's control socket path
    assert run_office(too_long, 2, panel=False) == 1
    assert "could not start the office: cannot set up Kamailio" in capsys.readouterr().err
    assert not (too_long / OFFICE_FILE).exists()


# -- the office as a process ---------------------------------------------------------------------
@dataclass
class RunningOffice:
    process: subprocess.Popen[bytes]
    root: Path
    output: Path
    info: dict[str, Any]

    def phone(self, user: str) -> PhoneClient:
        return PhoneClient(self.info["phones"][user]["api"])

    def base(self) -> PhoneClient:
        return PhoneClient(self.info["dect"]["base"]["api"])

    def handsets(self) -> dict[int, dict[str, Any]]:
        """Every handset's state, from the radio module's control socket."""
        answer = control_request(self.info["dect"]["module"]["control"], {"do": "list"})
        assert answer["ok"], answer
        return {h["number"]: h for h in answer["handsets"]}

    def pids(self) -> list[int]:
        phones = [phone["pid"] for phone in self.info["phones"].values()]
        dect = [self.info["dect"]["base"]["pid"], self.info["dect"]["module"]["pid"]]
        return [self.info["pid"], *self.info["pbx"]["pids"], *phones, *dect]

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def interrupt(self) -> int:
        """Ctrl-C (SIGINT) the office and return its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=STOP_TIMEOUT_S)


def _office_info(root: Path, process: subprocess.Popen[bytes], output: Path) -> Any:
    if process.poll() is not None:
        raise AssertionError(f"the office exited with {process.returncode}:\n"
                             + output.read_text(errors="replace"))
    try:
        return json.loads((root / OFFICE_FILE).read_text())
    except FileNotFoundError:
        return None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return not process_alive(pid)  # a zombie no one has reaped yet is gone too


@pytest.fixture
def office(tmp_path: Path) -> Iterator[RunningOffice]:
    root, output = tmp_path / "office", tmp_path / "office.out"
    argv = [sys.executable, "-m", "firmware.cli", "office", "--no-panel", "--data-dir", str(root)]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    with open(output, "wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    running: RunningOffice | None = None
    try:
        info = wait_until(lambda: _office_info(root, process, output), START_TIMEOUT_S, 0.05,
                          "the office to write office.json")
        running = RunningOffice(process, root, output, info)
        yield running
    finally:
        _stop_for_good(process, running)


def _stop_for_good(process: subprocess.Popen[bytes], running: RunningOffice | None) -> None:
    """Whatever a test did: the office and everything it started must end."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in running.pids() if running else []:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def _in_call(text: str) -> bool:
    return shows_active_call(text.splitlines())


def _idle(status: dict[str, Any]) -> bool:
    return not status["calls"] and status["terminals"][0]["hook"] == "onhook"


def _base_dect(base: PhoneClient) -> dict[str, Any]:
    answer = base.request("POST", "/api/v1/command", {"command": "dect"})
    assert answer["ok"], answer
    return answer["data"]["dect"]


@pytest.mark.e2e
def test_office_json_says_where_everything_is(office: RunningOffice) -> None:
    info = office.info
    assert info["version"] == 1 and info["pid"] == office.process.pid
    assert info["dir"] == str(office.root.resolve())
    assert set(info["phones"]) == {"1001", "1002"}
    assert info["phones"]["1001"]["name"] == "Anna Andersson"
    assert info["phones"]["1002"]["name"] == "Bertil Berg"
    for user, phone in info["phones"].items():
        assert Path(phone["log"]).is_file()
        status = office.phone(user).status()
        assert status["device"]["language"] == "sv"
        assert status["lines"][0]["user"] == user and status["lines"][0]["registered"]
        # zero touch: the line came from the office's provisioning site, signed and encrypted
        assert status["provisioning"]["ok"] and "signed by site" in \
            status["provisioning"]["message"], status["provisioning"]
        config = Path(phone["config"]).read_text()
        assert "[[lines]]" not in config and "[provisioning]" in config
        assert phone["console"].startswith("/dev/pts/")  # a technician's serial console
    assert info["provisioning"]["url"].startswith("https://127.0.0.1:")
    assert info["pbx"]["pids"] and info["pbx"]["port"] > 0
    assert "Swedish voice" in info["phones"]["1002"]["mic"]
    _check_dect_base(office)


def _check_dect_base(office: RunningOffice) -> None:
    """The base 1003: registered, provisioned, its console, three handsets over the radio."""
    dect = office.info["dect"]
    assert (dect["user"], dect["pin"]) == ("1003", "2580")
    status = office.base().status()
    assert status["lines"][0]["user"] == "1003" and status["lines"][0]["registered"]
    assert status["provisioning"]["ok"], status["provisioning"]  # its line, zero touch too
    config = Path(dect["base"]["config"]).read_text()
    assert "[[lines]]" not in config and 'pin = "2580"' in config
    assert dect["base"]["console"].startswith("/dev/pts/")
    at_base = _base_dect(office.base())
    assert at_base["link"]["up"], at_base
    assert [(h["number"], h["name"], h["line"]) for h in at_base["handsets"]] == [
        (n, name, 1) for n, name in HANDSETS.items()]
    # registered before the module started: the office wrote them into its EEPROM file
    eeprom = json.loads(Path(dect["module"]["eeprom"]).read_text())
    assert {h["number"]: h["name"] for h in eeprom["handsets"]} == HANDSETS
    assert not at_base["window"]["open"] and at_base["last_registration"] == ""
    assert {n: h["registered"] for n, h in office.handsets().items()} == dict.fromkeys(
        HANDSETS, True)


@pytest.mark.e2e
def test_call_from_1001_is_answered_by_1002_then_office_stops_cleanly(
        office: RunningOffice) -> None:
    anna, bertil = office.phone("1001"), office.phone("1002")
    anna.hook(True)
    anna.keys("1002")
    text = anna.wait_screen(_in_call, CALL_TIMEOUT_S, "1001 to show the connected call")
    assert "1002" in text
    bertil.wait_status(lambda s: s["terminals"][0]["hook"] == "offhook" and any(
        call["state"] == "connected" and call["remote"] == "1001" for call in s["calls"]),
        5, "1002 to show the connected call")
    # Let Anna's 700 Hz tone reach Bertil's earpiece for a while (a screen condition, no sleep).
    anna.wait_screen(lambda t: any(row.endswith("00:02") for row in t.splitlines()), 10,
                     "two seconds of call")
    anna.hook(False)
    anna.wait_status(_idle, 10, "1001 to be idle")
    bertil.wait_status(_idle, 10, "1002's robot to put the handset back")
    bertil.wait_text("1002 Bertil Berg", 10)

    # 1001 calls the DECT base: its three handsets ring together, showing the caller.
    anna.dial("1003")
    ringing = wait_until(lambda: (lambda hs: hs if all(h["ringing"] for h in hs.values())
                                  else None)(office.handsets()), 10, 0.05,
                         "the three handsets to ring")
    assert sorted(ringing) == sorted(HANDSETS)
    assert all(h["caller"] == "Anna Andersson" for h in ringing.values()), ringing
    anna.key("speaker")  # Anna gives up: the handsets stop ringing
    anna.wait_status(_idle, 10, "1001 to be idle again")
    wait_until(lambda: not any(h["ringing"] for h in office.handsets().values()), 10, 0.05,
               "the handsets to stop ringing")
    office.base().wait_status(lambda s: not s["calls"], 10, "no call left at the base")

    pids = office.pids()
    assert office.interrupt() == 0, office.log()
    assert [pid for pid in pids if not _gone(pid)] == [], office.log()
    assert not (office.root / OFFICE_FILE).exists()
    assert "luren office: stopped" in office.log()
    heard = office.root / "phone-1002" / "data" / "audio" / "earpiece-0001.wav"
    assert abs(dominant_frequency(heard, skip_seconds=0.5) - 700) < 15


@pytest.mark.e2e
def test_sigterm_stops_the_office_too(office: RunningOffice) -> None:
    pids = office.pids()
    office.process.send_signal(signal.SIGTERM)
    assert office.process.wait(timeout=STOP_TIMEOUT_S) == 0, office.log()
    assert [pid for pid in pids if not _gone(pid)] == [], office.log()


# -- the front panel in a real terminal (tmux) -----------------------------------------------------
class Tmux:
    """A private tmux server (its own socket) running one command in a detached session."""

    def __init__(self, command: list[str]) -> None:
        self.socket = f"luren-test-{uuid.uuid4().hex[:12]}"
        self.session = "panel"
        self._tmux("new-session", "-d", "-s", self.session, "-x", "100", "-y", "32",
                   shlex.join(command))

    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=10)

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def text(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session).stdout

    def wait_for(self, predicate: Any, what: str, timeout: float = 10.0) -> str:
        try:
            return wait_until(lambda: (lambda t: t if predicate(t) else None)(self.text()),
                              timeout, 0.05, what)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; the panel shows:\n{self.text()}") from None

    def running(self) -> bool:
        return self._tmux("has-session", "-t", self.session).returncode == 0

    def kill(self) -> None:
        self._tmux("kill-server")


def _box_row(text: str, row: str) -> bool:
    """Whether the panel's display box has a row that is exactly `row` (padded)."""
    return any(line.startswith(("│" + row.ljust(20) + "│", "|" + row.ljust(20) + "|"))
               for line in text.splitlines())


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_front_panel_in_a_terminal_presses_the_phones_keys(office: RunningOffice) -> None:
    url = office.info["phones"]["1001"]["api"]
    command = ["env", f"PYTHONPATH={REPO}", sys.executable, "-m", "tools.frontpanel", url,
               "--title", "1001 in tmux"]
    tmux = Tmux(command)
    try:
        tmux.wait_for(lambda t: "1001 in tmux" in t and _box_row(t, "1001 Anna Andersson"),
                      "the panel to show 1001 idle")
        tmux.send("4", "7")
        tmux.wait_for(lambda t: _box_row(t, "Ring upp:") and _box_row(t, "47"),
                      "the typed digits on the display")
        tmux.send("Escape")
        tmux.wait_for(lambda t: _box_row(t, "1001 Anna Andersson"), "cancel back to idle")
        tmux.send("Space")
        tmux.wait_for(lambda t: "Handset: off hook" in t and _box_row(t, "Ring upp:"),
                      "the handset lifted")
        assert office.phone("1001").status()["terminals"][0]["hook"] == "offhook"
        tmux.send("h")
        tmux.wait_for(lambda t: "Handset: on hook" in t and _box_row(t, "1001 Anna Andersson"),
                      "the handset back")
        tmux.send("q")
        wait_until(lambda: not tmux.running(), 10, 0.05, "q to close the panel")
    finally:
        tmux.kill()
