"""A small HTTP/1.1 JSON server on asyncio streams, with h11 doing the protocol.

The control API needs a dozen JSON routes, keep-alive and long polls; a full web framework
cost half the phone's idle memory and a quarter of a second at start (measured with
tools/bench/phone_bench.py), so the phone uses h11 (a well-kept HTTP/1.1 state machine) under
this thin router instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

log = logging.getLogger("luren.httpd")
MAX_BODY = 64 * 1024
IDLE_TIMEOUT_S = 60.0


class HttpError(Exception):
    """Raise from a handler to answer `status` with {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"the body is not valid JSON: {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: Any = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Any]]


class JsonServer:
    """Routes (method, path) to handlers; a handler returns a JSON-able value or a Response."""

    def __init__(self, before: Callable[[Request], None] | None = None) -> None:
        self._routes: dict[tuple[str, str], Handler] = {}
        self._before = before
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method, path)] = handler

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while await self._one_request(conn, reader, writer):
                conn.start_next_cycle()
        except (ConnectionError, asyncio.CancelledError, TimeoutError):
            pass
        except h11.RemoteProtocolError as exc:
            log.debug("bad HTTP from a client: %s", exc)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(self, conn: h11.Connection, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        try:
            request = await self._read_request(conn, reader)
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._send(conn, writer, Response(exc.error_status_hint,
                                                        {"error": f"bad request: {exc}"}))
            return False
        if request is None:
            return False
        response = await self._dispatch(request)
        await self._send(conn, writer, response)
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _read_request(self, conn: h11.Connection,
                            reader: asyncio.StreamReader) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(16384), IDLE_TIMEOUT_S)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise h11.RemoteProtocolError("body too large", error_status_hint=413)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return self._request(head, bytes(body))

    @staticmethod
    def _request(head: h11.Request, body: bytes) -> Request:
        target = urlsplit(head.target.decode("latin-1"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
        return Request(head.method.decode("ascii"), target.path,
                       dict(parse_qsl(target.query)), headers, body)

    async def _dispatch(self, request: Request) -> Response:
        handler = self._routes.get((request.method, request.path))
        try:
            if handler is None:
                known = any(path == request.path for _, path in self._routes)
                raise HttpError(405 if known else 404,
                                f"no {request.method} {request.path} here; see docs/api.md")
            if self._before is not None:
                self._before(request)
            result = await handler(request)
        except HttpError as exc:
            return Response(exc.status, {"error": exc.message})
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return Response(500, {"error": "internal error; see the phone's log"})
        return result if isinstance(result, Response) else Response(200, result)

    @staticmethod
    async def _send(conn: h11.Connection, writer: asyncio.StreamWriter,
                    response: Response) -> None:
        payload = json.dumps(response.body, ensure_ascii=False).encode()
        headers = [("Content-Type", "application/json; charset=utf-8"),
                   ("Content-Length", str(len(payload)))]
        writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
        writer.write(conn.send(h11.Data(data=payload)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
