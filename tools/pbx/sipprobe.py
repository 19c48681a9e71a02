"""A minimal SIP client over UDP: send one out-of-dialog request, get its final answer.

Used to probe whether a PBX is up (OPTIONS) and by tests that need to see an
exact reply (e.g. REGISTER during maintenance). It does no authentication and
no dialogs; for anything more, use a real user agent.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field


@dataclass
class SipResponse:
    """A parsed SIP response. Header names are lower-case; values keep their order."""

    status: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    raw: str = ""

    def header(self, name: str) -> str | None:
        """First value of header `name` (case-insensitive), None if absent."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse_response(data: bytes) -> SipResponse:
    """Parse the status line and headers of a SIP response (body ignored)."""
    text = data.decode("utf-8", errors="replace")
    head = text.split("\r\n\r\n", 1)[0]
    status_line, *lines = head.split("\r\n")
    version, status, reason = [*status_line.split(" ", 2), ""][:3]
    if not version.startswith("SIP/2.0"):
        raise ValueError(f"not a SIP response: {status_line!r}")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return SipResponse(int(status), reason, headers, text)


def sip_request(
    port: int,
    method: str,
    request_uri: str,
    *,
    host: str = "127.0.0.1",
    from_uri: str | None = None,
    to_uri: str | None = None,
    extra_headers: dict[str, str] | None = None,
    timeout: float = 2.0,
    body: str = "",
    content_type: str = "",
) -> SipResponse:
    """Send `method` to `host:port` over UDP and return the first final response.

    Provisional (1xx) responses are skipped. The request is retransmitted every
    0.5 s until answered. Raises TimeoutError if no final response arrives
    within `timeout` seconds. From/To default to sip:probe@host.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local_port = sock.getsockname()[1]
        message = build_request(
            method, request_uri, local_port,
            from_uri=from_uri or f"sip:probe@{host}",
            to_uri=to_uri or from_uri or f"sip:probe@{host}",
            extra_headers=extra_headers or {}, body=body, content_type=content_type,
        )
        return _exchange(sock, message, (host, port), timeout)


def build_request(
    method: str,
    request_uri: str,
    local_port: int,
    *,
    from_uri: str,
    to_uri: str,
    extra_headers: dict[str, str],
    body: str = "",
    content_type: str = "",
) -> bytes:
    """The bytes of a fresh out-of-dialog request sent from 127.0.0.1:`local_port`."""
    payload = body.encode()
    lines = [
        f"{method} {request_uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};rport;branch=z9hG4bK{secrets.token_hex(8)}",
        "Max-Forwards: 70",
        f"From: <{from_uri}>;tag={secrets.token_hex(4)}",
        f"To: <{to_uri}>",
        f"Call-ID: {secrets.token_hex(12)}@127.0.0.1",
        f"CSeq: 1 {method}",
        f"Contact: <sip:probe@127.0.0.1:{local_port}>",
        "User-Agent: luren-sipprobe",
        *(f"{name}: {value}" for name, value in extra_headers.items()),
        *([f"Content-Type: {content_type}"] if content_type else []),
        f"Content-Length: {len(payload)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _exchange(
    sock: socket.socket, message: bytes, dest: tuple[str, int], timeout: float
) -> SipResponse:
    """Send (and resend) `message` until a final response comes back."""
    deadline = time.monotonic() + timeout
    next_send = 0.0
    while (now := time.monotonic()) < deadline:
        if now >= next_send:
            sock.sendto(message, dest)
            next_send = now + 0.5
        sock.settimeout(max(0.001, min(next_send, deadline) - now))
        try:
            data = sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            continue
        response = parse_response(data)
        if response.status >= 200:
            return response
    raise TimeoutError(f"no final SIP response from {dest[0]}:{dest[1]} within {timeout}s")
