"""A technician at the phone's serial console: a real pyserial client on the console's pty.

    console = ConsoleClient.attach(phone)        # opens the pty named in run/ready.json
    console.login(read_console_code(phone))      # the code shown on the phone's own screen
    out = console.run("status")                  # everything up to the next prompt
"""

from __future__ import annotations

import codecs
import json
import re
import time

import serial

from tools.phoneproc import PhoneProcess

PROMPT = "luren> "
PASSWORD_PROMPT = "Password: "


class ConsoleClient:
    def __init__(self, port: str) -> None:
        self.serial = serial.Serial(port, 115200, timeout=0.05)
        self.seen = ""  # everything received, as text
        self._pos = 0  # how much of it has been read
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @classmethod
    def attach(cls, phone: PhoneProcess) -> ConsoleClient:
        ready = json.loads((phone.data_dir / "run" / "ready.json").read_text())
        assert ready.get("console"), "the phone announced no console"
        return cls(ready["console"])

    def close(self) -> None:
        self.serial.close()

    def send(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()

    def read_until(self, needle: str, timeout: float = 10.0) -> str:
        """What arrives from the last read on, up to and with `needle`; TimeoutError with
        what came when it does not come."""
        deadline = time.monotonic() + timeout
        while needle not in self.seen[self._pos:]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {needle!r} within {timeout} s; got:\n"
                                   f"{self.seen[self._pos:][-3000:]}")
            chunk = self.serial.read(4096)
            if chunk:
                self.seen += self._decoder.decode(chunk)
        end = self.seen.index(needle, self._pos) + len(needle)
        text, self._pos = self.seen[self._pos:end], end
        return text

    def login(self, secret: str, timeout: float = 10.0) -> str:
        self.send(b"\r")
        self.read_until(PASSWORD_PROMPT, timeout)
        self.send(secret.encode() + b"\r")
        return self.read_until(PROMPT, timeout)

    def run(self, command: str, timeout: float = 15.0) -> str:
        """Type a command; its output (without the echo and the next prompt)."""
        self.send(command.encode() + b"\r")
        text = self.read_until(PROMPT, timeout)
        body = text[:-len(PROMPT)]
        echoed = body.split("\r\n", 1)
        return echoed[1] if len(echoed) == 2 else body


def read_console_code(phone: PhoneProcess, timeout: float = 10.0) -> str:
    """The one-time code as a technician reads it: Settings (menu key), Info, scrolled."""
    phone.key("menu")
    for _ in range(20):
        if any(row.startswith(">Info") for row in phone.screen()):
            break
        phone.key("down")
    else:
        raise AssertionError(f"no Info in the settings menu: {phone.screen_text()}")
    phone.key("ok")
    for _ in range(20):
        match = re.search(r"(?:Konsolkod|Console code) (\d{4} \d{4})", phone.screen_text())
        if match:
            code = match.group(1)
            for _ in range(3):
                phone.key("cancel")  # back to the idle screen
            return code
        phone.key("down")
    raise AssertionError(f"no console code on the screen: {phone.screen_text()}")
