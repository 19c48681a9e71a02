"""The simulated DECT module's pieces: its EEPROM file, its control protocol, its command."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from board.dect import messages as M
from board.dect.eeprom import Registrations
from board.dect.sim import SimDectModule
from board.dect.simcontrol import handle, handle_line
from board.mcu import frame as F

ROOT = Path(__file__).resolve().parents[2]


# -- the registration table ------------------------------------------------------------------

def test_registrations_survive_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "eeprom.json"
    table = Registrations(path)
    table.add(3, "00000000AA", "Kök")
    table.add(1, "00000000bb", "")
    table.rename(1, "Hall")
    assert table.free_number() == 2 and table.number_of("00000000aa") == 3
    again = Registrations(path)
    assert again.entries() == [(1, "00000000bb", "Hall"), (3, "00000000aa", "Kök")]
    assert again.remove(3) and not again.remove(3)
    assert Registrations(path).entries() == [(1, "00000000bb", "Hall")]
    assert not again.rename(6, "nobody") and again.problems == []
    with pytest.raises(ValueError, match=re.escape("handset number must be 1..6")):
        again.add(7, "00000000cc", "")


def test_a_corrupt_file_is_moved_aside_and_said_in_words(tmp_path: Path) -> None:
    path = tmp_path / "eeprom.json"
    path.write_text("{ half a table")
    table = Registrations(path)
    assert table.entries() == []
    assert table.problems[0].startswith(f"cannot read the registrations in {path}")
    assert table.problems[1] == f"moved it aside to {path}.corrupt"
    assert (tmp_path / "eeprom.json.corrupt").read_text() == "{ half a table"
    table.add(1, "00000000aa", "x")
    assert Registrations(path).entries() == [(1, "00000000aa", "x")]


def test_bad_entries_are_left_out_in_words(tmp_path: Path) -> None:
    path = tmp_path / "eeprom.json"
    path.write_text(json.dumps({"version": 1, "handsets": [
        {"number": 1, "ipui": "00000000aa", "name": "ok"},
        {"number": 9, "ipui": "00000000bb"},
        {"number": 2, "ipui": "xyz"},
        {"number": 3, "ipui": "00000000aa"},
        {"number": 1, "ipui": "00000000cc"},
        {"number": 4, "ipui": "00000000dd", "name": "tab\there"},
        "six",
    ]}))
    table = Registrations(path)
    assert table.entries() == [(1, "00000000aa", "ok")]
    assert [p.split(": ", 1)[1] for p in table.problems] == [
        "handset entry 2: handset number must be 1..6, not 9",
        "handset entry 3: IPUI must be 10 hex digits, not 'xyz'",
        "handset entry 4: handset 3 (00000000aa) is there twice",
        "handset entry 5: handset 1 (00000000cc) is there twice",
        "handset entry 6: handset name holds the control character 0x9",
        "handset entry 7 is not a table",
    ]
    Path(tmp_path / "list.json").write_text("[]")
    assert "no \"handsets\" list" in Registrations(tmp_path / "list.json").problems[0]


# -- the control protocol, without a socket ------------------------------------------------

def module_with_window() -> SimDectModule:
    """A module whose link is up, with a window the base opened for PIN 2580."""
    module = SimDectModule(lambda data: None, lambda: 0, epoch=1)
    module.start()
    module.feed(F.encode(F.HELLO, 0, F.pack_hello(M.ROLE_DECT_BASE, 9, (0, 1), M.CAP_DECT)))
    module.feed(F.encode(M.OPEN_WINDOW, 1, M.pack_open_window("2580", 60)))
    assert module.link.up and module.window_open
    return module


def test_register_then_act_through_requests() -> None:
    module = module_with_window()
    answer = handle(module, {"do": "register", "pin": "2580", "ipui": "00000000aa"})
    assert answer["ok"] and answer["result"] == "registered" and answer["state"]["number"] == 1
    assert handle(module, {"handset": 1, "do": "offhook"})["state"]["offhook"]
    assert handle(module, {"handset": 1, "do": "key", "key": "R"})["ok"]
    again = handle(module, {"do": "register", "pin": "2580", "ipui": "00000000AA"})
    assert again["result"] == "window_closed" and again["state"]["number"] == 1
    assert handle(module, {"do": "register", "pin": "2580", "handset": 1})["result"] == \
        "window_closed"
    listing = handle(module, {"do": "list"})
    assert listing["window"] == {"open": False, "seconds_left": 0}
    assert handle(module, {"do": "reset", "reason": "brown-out"}) == {"ok": True}
    assert module.handset(1).registered and not module.handset(1).is_offhook
    assert "not a reset reason" in handle(module, {"do": "reset", "reason": "boredom"})["error"]


@pytest.mark.parametrize(("request_", "error"), [
    ({"do": "register"}, "the request needs 'pin'"),
    ({"handset": 1, "do": "onhook"}, "no handset 1 is registered"),
    ({"handset": 0, "do": "state"}, "handset number must be 1..6, not 0"),
    ({"handset": 2.0, "do": "state"}, "handset number must be 1..6, not 2.0"),
    ({"do": None}, "unknown action None"),
    ({"do": "register", "pin": "2580", "ipui": 12}, "IPUI must be 10 hex digits, not 12"),
    ("offhook", "a request is a JSON object"),
])
def test_requests_that_cannot_be_done_are_answered_in_words(request_: Any, error: str) -> None:
    answer = handle(module_with_window(), request_)
    assert answer["ok"] is False and answer["error"].startswith(error)


def test_request_lines_are_json() -> None:
    module = module_with_window()
    assert json.loads(handle_line(module, b'{"do": "list"}'))["ok"] is True
    for line in (b"\xff\xfe", b"", b"{", b"null", b'"x"'):
        answer = handle_line(module, line)
        assert answer.endswith(b"\n") and json.loads(answer)["ok"] is False


# -- python -m board.dect.sim ---------------------------------------------------------------

def read_line(stream: Any, timeout: float = 10) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the simulated module did not say it was ready"
    return stream.readline()


def test_the_command_serves_a_pty_and_a_control_socket(tmp_path: Path) -> None:
    link, control = tmp_path / "pty-link", tmp_path / "c.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "board.dect.sim", "--pty-link", str(link),
         "--control", str(control), "--state", str(tmp_path / "eeprom.json")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = json.loads(read_line(proc.stdout))
        assert ready == {"pty": link.read_text().strip(), "control": str(control)}
        assert os.path.exists(ready["pty"])
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(control))
            sock.sendall(b'{"do": "list"}\n' + b"x" * 5000)
            reader = sock.makefile("rb")
            answer = json.loads(reader.readline())
            assert answer == {"ok": True, "link_up": False,
                              "window": {"open": False, "seconds_left": 0}, "handsets": []}
            assert json.loads(reader.readline()) == {
                "ok": False, "error": "request longer than 4096 bytes"}
            reader.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not control.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_the_command_says_why_it_cannot_start(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a socket")
    result = subprocess.run(
        [sys.executable, "-m", "board.dect.sim", "--pty-link", str(tmp_path / "link"),
         "--control", str(tmp_path / "taken")],
        cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert f"{tmp_path / 'taken'} exists and is not a socket" in result.stderr
    assert not (tmp_path / "link").exists()
