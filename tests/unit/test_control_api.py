"""The control API over real HTTP on loopback, in front of the pure controller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from firmware.api import ControlApi
from tests.unit.test_phone_controller import make_phone

Call = Callable[..., Awaitable[tuple[int, Any]]]


async def http(port: int, method: str, path: str, body: Any = None, token: str = "",
               raw: bytes | None = None) -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = b"" if body is None else json.dumps(body).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(raw or (f"{method} {path} HTTP/1.1\r\nHost: phone\r\n{auth}"
                         f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                         ).encode() + data)
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(payload) if payload else None


def run_api(test: Callable[[ControlApi, int], Awaitable[None]], token: str = "",
            clock_control: bool = False) -> None:
    async def main() -> None:
        phone, _, _ = make_phone()

        async def stats() -> dict[str, Any]:
            return {"calls": 0}

        api = ControlApi(phone, stats, token=token, clock_control=clock_control)
        port = await api.server.start("127.0.0.1", 0)
        try:
            await test(api, port)
        finally:
            await api.server.stop()
    asyncio.run(main())


def test_status_screen_and_leds() -> None:
    async def check(api: ControlApi, port: int) -> None:
        status, body = await http(port, "GET", "/api/v1/status")
        assert status == 200
        assert body["lines"][0]["registered"] is True
        assert body["engine"] == {"calls": 0}
        assert body["process"]["rss_kb"] > 0
        status, body = await http(port, "GET", "/api/v1/screen")
        assert body["rows"][1] == "1001 Anna" and body["width"] == 20
        status, body = await http(port, "GET", "/api/v1/leds")
        assert body["leds"]["line1"] == {"pattern": "on", "colour": "green"}
    run_api(check)


def test_keys_hook_and_dial() -> None:
    async def check(api: ControlApi, port: int) -> None:
        status, body = await http(port, "POST", "/api/v1/hook", {"offhook": True})
        assert status == 200 and body["screen"]["rows"][0] == "Dial:"
        status, body = await http(port, "POST", "/api/v1/keys", {"keys": "10"})
        assert body["screen"]["rows"][1] == "10"
        status, body = await http(port, "POST", "/api/v1/keys", {"key": "cancel"})
        assert body["screen"]["rows"][1] == ""
        await http(port, "POST", "/api/v1/hook", {"offhook": False})
        status, body = await http(port, "POST", "/api/v1/dial", {"number": "1002"})
        assert status == 200 and body["screen"]["rows"][0] == "Calling"
        status, body = await http(port, "POST", "/api/v1/dial", {"number": "1003"})
        assert status == 409
    run_api(check)


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/api/v1/keys", {"keys": "12a"}, 400, "not a key: 'a'"),
    ("/api/v1/keys", {"key": "launch"}, 400, "unknown key"),
    ("/api/v1/keys", {"key": "ok", "keys": "1"}, 400, "either"),
    ("/api/v1/keys", [1, 2], 400, "JSON object"),
    ("/api/v1/hook", {"offhook": "yes"}, 400, "offhook"),
    ("/api/v1/dial", {"number": ""}, 400, "number"),
    ("/api/v1/clock/advance", {"seconds": 5}, 404, "--test-clock"),
    ("/api/v1/nothing", {}, 404, "docs/api.md"),
    ("/api/v1/status", {}, 405, "no POST"),
])
def test_bad_requests_get_clear_errors(path: str, body: Any, status: int, words: str) -> None:
    async def check(api: ControlApi, port: int) -> None:
        got, answer = await http(port, "POST", path, body)
        assert got == status
        assert words in answer["error"]
    run_api(check)


def test_malformed_http_and_json_do_not_hurt_the_phone() -> None:
    async def check(api: ControlApi, port: int) -> None:
        status, body = await http(port, "POST", "/api/v1/keys", raw=(
            b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Connection: close\r\n\r\n{bad}"))
        assert status == 400 and "not valid JSON" in body["error"]
        status, _ = await http(port, "GET", "", raw=b"\x00\x01garbage\r\n\r\n")
        assert status == 400
        big = b"x" * (70 * 1024)
        status, _ = await http(port, "POST", "", raw=(
            b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(big)) + big)
        assert status == 413
        status, body = await http(port, "GET", "/api/v1/status")
        assert status == 200
    run_api(check)


def test_token_is_required_when_set() -> None:
    async def check(api: ControlApi, port: int) -> None:
        status, body = await http(port, "GET", "/api/v1/status")
        assert status == 401 and "token" in body["error"]
        status, _ = await http(port, "GET", "/api/v1/status", token="wrong")
        assert status == 401
        status, _ = await http(port, "GET", "/api/v1/status", token="s3cret")
        assert status == 200
    run_api(check, token="s3cret")


def test_long_poll_returns_when_the_screen_changes() -> None:
    async def check(api: ControlApi, port: int) -> None:
        _, now = await http(port, "GET", "/api/v1/screen")
        poll = asyncio.create_task(
            http(port, "GET", f"/api/v1/screen?after={now['version']}&timeout=10"))
        # whichever reaches the phone first, the poll must answer with the newer screen
        await http(port, "POST", "/api/v1/keys", {"keys": "5"})
        status, body = await asyncio.wait_for(poll, 5)
        assert status == 200 and body["version"] > now["version"]
        assert body["rows"][1] == "5"
        status, body = await http(port, "GET", f"/api/v1/screen?after={body['version']}"
                                               "&timeout=0.05")
        assert status == 200  # no change: answers at the timeout with the same screen
    run_api(check)


def test_clock_advance_in_test_mode() -> None:
    async def check(api: ControlApi, port: int) -> None:
        await http(port, "POST", "/api/v1/dial", {"number": "1002"})
        status, body = await http(port, "POST", "/api/v1/clock/advance", {"seconds": 60})
        assert status == 200 and body["timers_run"] >= 1
        _, screen = await http(port, "GET", "/api/v1/screen")
        assert screen["rows"][0] == "No answer"
        status, _ = await http(port, "POST", "/api/v1/clock/advance", {"seconds": -1})
        assert status == 400
    run_api(check, clock_control=True)
