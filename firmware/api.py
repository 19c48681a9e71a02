"""The control API: the phone's own remote-control interface (HTTP + JSON, version 1).

Like the Action URI / remote key commands of commercial desk phones: read the state, the
screen and the LEDs, press keys, lift the handset, click to dial. The simulator's front panel,
the office launcher and the end-to-end tests drive phones through it. Reference: docs/api.md.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any

from board.keys import DIGITS, is_key
from firmware.console.commands import Services, execute
from firmware.httpd import HttpError as ApiError
from firmware.httpd import JsonServer, Request
from firmware.phone import Phone
from firmware.terminal import Terminal

log = logging.getLogger("luren.api")
MAX_WAIT_S = 30.0
EngineStats = Callable[[], Awaitable[dict[str, Any]]]


def _rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class ControlApi:
    """Routes of /api/v1 over one `Phone`; every handler runs on the controller's loop."""

    def __init__(self, phone: Phone, engine_stats: EngineStats, token: str = "",
                 clock_control: bool = False,
                 provision_now: Callable[[], Awaitable[Any]] | None = None,
                 commands: Services | None = None) -> None:
        self.phone = phone
        self._commands = commands
        self._provision_now = provision_now
        self._engine_stats = engine_stats
        self._token = token
        self._clock_control = clock_control
        self.server = JsonServer(before=self._auth)
        for method, path, handler in (
            ("GET", "/api/v1/status", self.status),
            ("GET", "/api/v1/screen", self.screen),
            ("GET", "/api/v1/leds", self.leds),
            ("POST", "/api/v1/keys", self.keys),
            ("POST", "/api/v1/hook", self.hook),
            ("POST", "/api/v1/headset", self.headset),
            ("POST", "/api/v1/dial", self.dial),
            ("POST", "/api/v1/clock/advance", self.advance_clock),
            ("POST", "/api/v1/provision", self.provision),
            ("POST", "/api/v1/command", self.command),
        ):
            self.server.route(method, path, handler)

    def _auth(self, request: Request) -> None:
        if self._token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self._token.encode()):
                raise ApiError(401, "a valid token is required: Authorization: Bearer <token>")

    # -- helpers ------------------------------------------------------------------------
    def _terminal(self, request: Request) -> Terminal:
        raw = request.query.get("terminal", "0")
        if not raw.isdigit() or int(raw) >= len(self.phone.terminals):
            raise ApiError(404, f"no terminal {raw!r}; this phone has "
                                f"{len(self.phone.terminals)}")
        return self.phone.terminals[int(raw)]

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def _screen_json(self, terminal: Terminal) -> dict[str, Any]:
        display = terminal.board.display
        return {"rows": display.rows, "width": display.width, "height": display.height,
                "version": display.version}

    # -- handlers -----------------------------------------------------------------------
    async def status(self, request: Request) -> dict[str, Any]:
        body = self.phone.status()
        body["engine"] = await self._engine_stats()
        body["process"] = {"rss_kb": _rss_kb()}
        return body

    async def screen(self, request: Request) -> dict[str, Any]:
        """`?after=V&timeout=S` waits (long poll) until the screen's version passes V."""
        terminal = self._terminal(request)
        after = request.query.get("after")
        if after is not None:
            try:
                after_v, timeout = int(after), float(request.query.get("timeout", "10"))
            except ValueError:
                raise ApiError(400, "after must be an integer and timeout a number") from None
            await self._wait_version(terminal, after_v, min(max(timeout, 0.0), MAX_WAIT_S))
        return self._screen_json(terminal)

    async def _wait_version(self, terminal: Terminal, after: int, timeout: float) -> None:
        display = terminal.board.display
        if display.version > after:
            return
        changed = asyncio.get_running_loop().create_future()

        def listener(version: int) -> None:
            if version > after and not changed.done():
                changed.set_result(version)
        display.listeners.append(listener)
        try:
            await asyncio.wait_for(changed, timeout)
        except TimeoutError:
            pass
        finally:
            display.listeners.remove(listener)

    async def leds(self, request: Request) -> dict[str, Any]:
        terminal = self._terminal(request)
        return {"leds": {
            name: {"pattern": led.state.pattern.value, "colour": led.state.colour}
            for name, led in terminal.board.leds.items()}}

    async def keys(self, request: Request) -> dict[str, Any]:
        terminal = self._terminal(request)
        body = self._body(request)
        if isinstance(body.get("keys"), str) and "key" not in body:
            bad = [c for c in body["keys"] if c not in DIGITS]
            if bad or not body["keys"]:
                raise ApiError(400, "keys takes digits, * and # only (use key for named keys)"
                               + (f"; not a key: {bad[0]!r}" if bad else ""))
            names = list(body["keys"])
        elif isinstance(body.get("key"), str) and "keys" not in body:
            if not is_key(body["key"]):
                raise ApiError(400, f"unknown key {body['key']!r}; see docs/api.md")
            names = [body["key"]]
        else:
            raise ApiError(400, 'give either "keys" (a string of digits) or "key" (a name)')
        press = terminal.board.on_key or terminal.key  # as the keypad does
        for name in names:
            press(name)
        return {"ok": True, "screen": self._screen_json(terminal)}

    async def hook(self, request: Request) -> dict[str, Any]:
        terminal = self._terminal(request)
        body = self._body(request)
        if not isinstance(body.get("offhook"), bool):
            raise ApiError(400, 'give {"offhook": true} or {"offhook": false}')
        (terminal.board.on_hook or terminal.hook)(body["offhook"])  # as the hookswitch does
        return {"ok": True, "screen": self._screen_json(terminal)}

    async def headset(self, request: Request) -> dict[str, Any]:
        """Plug in or pull out a simulated headset (boards whose detection is simulated)."""
        terminal = self._terminal(request)
        body = self._body(request)
        if not isinstance(body.get("plugged"), bool):
            raise ApiError(400, 'give {"plugged": true} or {"plugged": false}')
        if not self.phone.simulate_headset(body["plugged"]):
            raise ApiError(409, f"this board detects headsets by {self.phone.headset_detection}"
                                "; plug a real one in")
        return {"ok": True, "screen": self._screen_json(terminal)}

    async def dial(self, request: Request) -> dict[str, Any]:
        terminal = self._terminal(request)
        body = self._body(request)
        number = body.get("number")
        if not isinstance(number, str) or not number or any(c not in DIGITS for c in number):
            raise ApiError(400, "number must be a non-empty string of digits, * and #")
        if not terminal.dial(number):
            raise ApiError(409, "the terminal is busy with another call")
        return {"ok": True, "screen": self._screen_json(terminal)}

    async def provision(self, request: Request) -> dict[str, Any]:
        """Fetch the provisioning files now; answers once the run is over."""
        if self._provision_now is None:
            raise ApiError(409, "this phone is not provisioned: no [provisioning] url")
        await self._provision_now()
        return {"provisioning": self.phone.provisioning}

    async def command(self, request: Request) -> dict[str, Any]:
        """One command of the technician console's table ({"command": "sip register 1"}):
        the same implementation, the same masked answer ({"ok", "text", "data"})."""
        if self._commands is None:
            raise ApiError(409, "this phone has no command table")
        line = self._body(request).get("command")
        if not isinstance(line, str) or len(line) > 1024:
            raise ApiError(400, "command must be a string of at most 1024 characters")
        reply = await execute(self._commands, line, via_api=True)
        return reply.as_api()

    async def advance_clock(self, request: Request) -> dict[str, Any]:
        if not self._clock_control:
            raise ApiError(404, "clock control is off (start the phone with --test-clock)")
        body = self._body(request)
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ApiError(400, "seconds must be a number >= 0")
        ran = self.phone.clock.advance(float(seconds))
        return {"ok": True, "timers_run": ran}
