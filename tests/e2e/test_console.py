"""The technician's serial console, end to end: a real phone process with its console on a pty,
a real pyserial client typing at it, a real Kamailio. Login (one-time code read off the phone's
own screen, provisioned password), lockout, every command, malformed input, a scan of all
output for secrets, and the control API running the same commands at the same time.
"""

from __future__ import annotations

import json
import random
import re
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.console.auth import hash_password
from tests.e2e.conftest import USERS, wait_registered
from tests.harness.audio_check import read_wav
from tests.harness.console import PASSWORD_PROMPT, PROMPT, ConsoleClient, read_console_code
from tools.pbx.kamailio import Kamailio
from tools.pbx.waiting import wait_until
from tools.phoneproc import PhoneProcess

pytestmark = pytest.mark.e2e

API_TOKEN = "tok-Zq81x"


def config(pbx: Kamailio, extra: str = "") -> str:
    return (f'[sip]\nport = 0\nbind_address = "127.0.0.1"\n'
            f'[[lines]]\nuser = "1001"\npassword = "{USERS["1001"]}"\n'
            f'registrar = "127.0.0.1:{pbx.port}"\ndisplay_name = "Anna Berg"\n'
            f'[voicemail]\nenabled = false\n[api]\ntoken = "{API_TOKEN}"\n' + extra)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[PhoneProcess | ConsoleClient]]:
    things: list[PhoneProcess | ConsoleClient] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, ConsoleClient):
            thing.close()
        else:
            thing.stop()


def start(tmp_path: Path, pbx: Kamailio, started: list[PhoneProcess | ConsoleClient],
          extra: str = "") -> tuple[PhoneProcess, ConsoleClient]:
    phone = PhoneProcess(tmp_path / "phone", config(pbx, extra), test_clock=True)
    phone.token = API_TOKEN
    started.append(phone.start(30))
    wait_registered(phone)
    console = ConsoleClient.attach(phone)
    started.append(console)
    return phone, console


def test_login_with_the_code_on_the_screen_and_every_command(
        tmp_path: Path, pbx: Kamailio, started: list[PhoneProcess | ConsoleClient]) -> None:
    phone, console = start(tmp_path, pbx, started)
    console.send(b"\r")
    greeting = console.read_until(PASSWORD_PROMPT)
    assert "technician console" in greeting and "one-time code" in greeting
    console.send(b"12345678\r")
    assert "Login incorrect" in console.read_until(PASSWORD_PROMPT)
    code = read_console_code(phone)
    welcome = console.login(code)
    assert "Logged in with the one-time code" in welcome
    assert read_console_code(phone) != code  # each code works once

    status = console.run("status")
    assert "line 1 1001: registered" in status and "firmware: 0.0.0-factory" in status
    assert re.search(r"Luren \S+, up 00:00:\d\d", status), status
    assert "sip register [LINE]" in console.run("help")
    assert "the last N SIP messages" in console.run("help sip trace")
    assert "line 1 1001: registered" in console.run("sip")
    assert "line 1: registering" in console.run("sip register 1")
    assert "LINE must be a number from 1 to 1" in console.run("sip register 7")
    trace = console.run("sip trace 30")
    assert "REGISTER sip:" in trace
    assert re.search(r"Authorization: \*\*\*", trace), trace  # the digest answer is masked
    assert "SIP log level: debug" in console.run("sip log debug")
    assert "registrar 127.0.0.1:" in console.run("net") and "answered" in console.seen
    assert "not provisioned" in console.run("prov")
    assert "not an https:// address" in console.run("prov url ftp://x.example/")
    assert "provisioning URL set" in console.run("prov url https://prov.example.se/luren/")
    found = json.loads((phone.data_dir / "provisioning" / "found.json").read_text())
    assert found == {"url": "https://prov.example.se/luren/", "source": "set on the console"}
    assert "not provisioned" in console.run("prov run")
    shown = console.run("config lines")
    assert 'user = "1001"' in shown and "password = ***" in shown
    assert "sip.port = 0" in console.run("config get sip.port")
    assert "is a secret" in console.run("config set api.token x")
    assert "is inside a list" in console.run("config set lines[0].password x")
    assert "must be one of" in console.run("config set device.language xx")
    assert "device.language set" in console.run("config set device.language en")
    phone.wait_screen(lambda text: re.search(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d+", text)
                      is not None, 5, "the screen in English")
    assert "local setting dropped" in console.run("config reset device.language")
    assert "console login by one-time code" in console.run("log 50")
    assert "log level of luren: info" in console.run("log level info")
    assert "the phone's loggers are luren" in console.run("log level root debug")
    assert "headset detection: none" in console.run("test headset")
    assert "running 0.0.0-factory in slot a" in console.run("fw")
    assert "cannot roll back" in console.run("fw rollback")
    assert "unknown command" in console.run("frobnicate")
    assert "erases this phone's data" in console.run("factory-reset")

    # Tab completes, Up brings the last command back.
    console.send(b"sip reg\t")
    assert "sip register " in console.read_until("sip register ")
    console.send(b"\x15\x1b[A\r")  # Ctrl-U, then Up: the last command again
    console.read_until("erases this phone's data")  # factory-reset, unconfirmed
    console.read_until(PROMPT)

    # Streams: any key stops them.
    console.send(b"test keys\r")
    console.read_until("press any key here to stop")
    phone.key("5")
    console.read_until("key 5")
    phone.hook(True)
    console.read_until("hook off")
    phone.hook(False)
    console.send(b" ")
    console.read_until("(stopped)")
    console.read_until(PROMPT)
    assert phone.status()["calls"] == []  # the keys were only echoed

    console.send(b"test display\r")
    console.read_until("display: all blocks")
    phone.wait_screen(lambda text: "#" * 20 in text, 5, "the all-blocks pattern")
    console.send(b"x")
    console.read_until("(stopped)")
    console.read_until(PROMPT)
    phone.wait_screen(lambda text: "1001" in text, 5, "the idle screen back")

    console.send(b"log follow\r")
    console.read_until("press any key to stop")
    phone.request("POST", "/api/v1/command", {"command": "sip register"})
    console.read_until("registered")
    console.send(b"q")
    console.read_until("(stopped)")
    console.read_until(PROMPT)

    # reboot: the same process restarts; the console comes back on its (new) pty.
    pid = phone.pid
    assert "restarting" in console.run("reboot")
    phone.wait_restarted(40)
    assert phone.pid == pid
    wait_registered(phone)
    again = ConsoleClient.attach(phone)
    started.append(again)
    again.login(read_console_code(phone))
    assert "line 1 1001: registered" in again.run("status")


def test_factory_reset_erases_data_but_keeps_the_device_key(
        tmp_path: Path, pbx: Kamailio, started: list[PhoneProcess | ConsoleClient]) -> None:
    phone, console = start(tmp_path, pbx, started)
    console.login(read_console_code(phone))
    console.run("config set device.language en")
    key = phone.data_dir / "provisioning" / "device.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("device key\n")
    overrides = phone.data_dir / "state" / "overrides.json"
    assert overrides.exists()
    assert "restarting" in console.run('factory-reset "erase everything"')
    phone.wait_restarted(40)
    assert not overrides.exists()
    assert key.read_text() == "device key\n"
    assert (phone.data_dir / "firmware" / "boot.json").exists()
    assert "factory reset:" in phone.log_tail(300)
    assert phone.status()["device"]["language"] == "sv"


def test_lockout_and_the_provisioned_password(
        tmp_path: Path, pbx: Kamailio, started: list[PhoneProcess | ConsoleClient]) -> None:
    hashed = hash_password("Tekn1ker!", n=2**12)
    phone, console = start(tmp_path, pbx, started, f'[console]\npassword_hash = "{hashed}"\n')
    console.send(b"\r")
    assert "the technician password" in console.read_until(PASSWORD_PROMPT)
    console.send(b"1234 5678\r")  # with a password set, no code opens it
    assert "Login incorrect" in console.read_until(PASSWORD_PROMPT)
    for _ in range(4):
        console.send(b"wrong\r")
        assert "Login incorrect" in console.read_until(PASSWORD_PROMPT)
    console.send(b"wrong again\r")
    assert "wait 30 s" in console.read_until(PASSWORD_PROMPT)
    console.send(b"Tekn1ker!\r")  # the right one, but locked: not even checked
    assert "Too many failed logins" in console.read_until(PASSWORD_PROMPT)
    assert "Konsolkod" not in phone.screen_text()


def test_the_password_opens_it_and_idle_logs_out(
        tmp_path: Path, pbx: Kamailio, started: list[PhoneProcess | ConsoleClient]) -> None:
    hashed = hash_password("Tekn1ker!", n=2**12)
    phone, console = start(tmp_path, pbx, started, f'[console]\npassword_hash = "{hashed}"\n'
                           "idle_logout_minutes = 5\n")
    assert "Logged in" in console.login("Tekn1ker!")
    assert "line 1 1001" in console.run("sip")
    phone.advance(5 * 60 + 1)
    assert "logged out after 5 min without input" in console.read_until(PASSWORD_PROMPT)
    console.send(b"status\r")  # now a password attempt, not a command
    assert "Login incorrect" in console.read_until(PASSWORD_PROMPT)


def test_malformed_input_never_hurts(
        tmp_path: Path, pbx: Kamailio, started: list[PhoneProcess | ConsoleClient]) -> None:
    phone, console = start(tmp_path, pbx, started)
    console.send(bytes(random.Random(7).randrange(256) for _ in range(4096)) + b"\x03")
    console.send(b"\r")
    console.read_until(PASSWORD_PROMPT)
    console.login(read_console_code(phone))
    console.send(b"x" * 10_000 + b"\r")
    assert "line too long (10000 characters; at most 1024): ignored" in console.read_until(
        PROMPT)
    console.send(b"st\x00a\x07t\x1b[99;99Hu\x1bOxs\r")  # NUL, BEL and escapes are not text
    assert "firmware:" in console.read_until(PROMPT)
    for ending in (b"\r", b"\n", b"\r\n", b"\r\x00"):
        console.send(b"sip" + ending)
        assert "line 1 1001" in console.read_until(PROMPT)
    console.serial.send_break(0.25)
    console.send(b'config set "device.language\r')
    assert "close the quotes" in console.read_until(PROMPT)
    console.send(b"\xff\xfe\xc3\r")
    console.read_until(PROMPT)
    assert "line 1 1001: registered" in console.run("status")
    assert phone.status()["lines"][0]["registered"]
    assert "\x1b" not in console.seen.split("Logged in", 1)[1]  # nothing but text came back


def test_no_secret_in_any_output_and_the_api_runs_the_same_table(
        tmp_path: Path, pbx: Kamailio, started: list[PhoneProcess | ConsoleClient]) -> None:
    phone, console = start(tmp_path, pbx, started,
                           '[provisioning]\nusername = "prov"\npassword = "Prov-Secret-77"\n'
                           'resync_minutes = 0\n')
    console.login(read_console_code(phone))
    console.send(b"log follow\r")  # the console busy while the API works
    console.read_until("press any key to stop")
    api_out = []
    for command in ("status", "sip", "sip trace 50", "config", "config lines", "prov",
                    "log 200", "fw", "net", "help", "config get api.token",
                    "config get lines"):
        reply = phone.request("POST", "/api/v1/command", {"command": command})
        assert reply["ok"], (command, reply)
        api_out.append(json.dumps(reply))
    refused = phone.request("POST", "/api/v1/command", {"command": "log follow"})
    assert not refused["ok"] and "console only" in refused["text"]
    changed = phone.request("POST", "/api/v1/command",
                            {"command": "config set device.language en"})
    assert changed["ok"]
    console.send(b" ")
    console.read_until("(stopped)")
    console.read_until(PROMPT)
    assert 'device.language = "en"' in console.run("config get device.language")
    for command in ("status", "sip", "sip trace 50", "config", "prov", "log 200", "fw",
                    "net", "config get api.token", "config get lines", "config provisioning"):
        console.run(command)
    everything = console.seen + "".join(api_out)
    for secret in (USERS["1001"], API_TOKEN, "Prov-Secret-77"):
        assert secret not in everything, secret
    assert "password = ***" in everything and '"***"' in everything


def _level(samples: np.ndarray, rate: int, hz: float) -> float:
    """Spectral magnitude at `hz` (Hann window), relative to the whole spectrum."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    index = round(hz * len(samples) / rate)
    return float(spectrum[index - 2:index + 3].max() / (spectrum.sum() + 1e-12))


def test_audio_and_led_tests(tmp_path: Path, pbx: Kamailio,
                             started: list[PhoneProcess | ConsoleClient]) -> None:
    phone, console = start(tmp_path, pbx, started, "[sim]\nmic_tone_hz = 700\n")
    console.login(read_console_code(phone))
    audio_dir = phone.data_dir / "audio"
    before = set(audio_dir.glob("earpiece-*.wav"))
    console.send(b"test audio\r")
    console.read_until("1 kHz tone on the earpiece")
    recording = wait_until(lambda: next(iter(set(audio_dir.glob("earpiece-*.wav")) - before),
                                        None), 10, 0.05, "the earpiece recording")
    grown = lambda size: lambda: recording.stat().st_size > size  # noqa: E731
    wait_until(grown(44 + 2 * 16000 * 2), 10, 0.05, "two seconds of the tone")
    tone_bytes = recording.stat().st_size
    phone.advance(3)  # the next step: the microphone looped to the earpiece
    console.read_until("loopback: the microphone to the earpiece")
    wait_until(grown(tone_bytes + 2 * 16000 * 2), 10, 0.05, "two seconds of loopback")
    console.send(b" ")
    console.read_until("(stopped)")
    console.read_until(PROMPT)
    wait_until(lambda: _closed_wav(recording), 10, 0.05, "the earpiece file closed")
    samples, rate = read_wav(recording)
    tone_part = samples[int(0.5 * rate):int(1.5 * rate)]
    loop_part = samples[-int(1.5 * rate):-int(0.5 * rate)]
    assert _level(tone_part, rate, 1000) > 5 * _level(tone_part, rate, 700)
    assert _level(loop_part, rate, 700) > 5 * _level(loop_part, rate, 1000)

    console.send(b"test leds\r")
    first = console.read_until(" on\r\n")
    name = re.search(r"LED (\S+) on", first)
    assert name is not None, first
    leds = phone.leds()
    assert leds[name.group(1)]["pattern"] == "on", leds
    assert sum(1 for led in leds.values() if led["pattern"] == "on") == 1
    console.send(b" ")
    console.read_until("(stopped)")
    console.read_until(PROMPT)
    assert "not during a call" not in console.run("test headset")


def _closed_wav(path: Path) -> bool:
    """The recorder has written the WAV header (it does when the audio path closes)."""
    try:
        read_wav(path)
    except (wave.Error, EOFError):
        return False
    return True

