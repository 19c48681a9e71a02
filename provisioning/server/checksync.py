"""The check-sync trigger: after a publish, tell phones to fetch their files now.

A NOTIFY with ``Event: check-sync`` (``;reboot=true`` to also restart them) is sent over UDP to
the PBX, addressed to each user's AOR (``sip:1001@pbx.example.se``). The PBX relays it to the
user's registered contacts over their registration flows, the only way a phone takes it
(``firmware.sip.check_sync``). The PBX must let this server's address send such NOTIFYs without
authentication (Kamailio: a request from outside the domain to a local user is relayed; limit
it to this host with the permissions module), or send them itself (Asterisk's ``pjsip send
notify``, FreeSWITCH's ``sofia ... check-sync``).

    result = send_check_sync(("pbx.example.se", 5060), "1001", "pbx.example.se")
    result.status  # 200 from the phone; 404 when 1001 has no registered phone; 0: no answer
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass

from firmware.sip.dialog_watch import parse_message

T1, T2 = 0.5, 4.0  # RFC 3261 retransmission timers (non-INVITE)


@dataclass(frozen=True)
class CheckSyncResult:
    user: str
    status: int  # the final SIP status, 0 when nothing answered
    reason: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def send_check_sync(pbx: tuple[str, int], user: str, domain: str, *, reboot: bool = False,
                    timeout: float = 8.0, bind_host: str = "") -> CheckSyncResult:
    """Send one check-sync for `user` through the PBX at `pbx` and wait for its final answer
    (retransmitting per RFC 3261 until `timeout`)."""
    family = socket.AF_INET6 if ":" in pbx[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((bind_host, 0))
        sock.connect(pbx)  # answers only from the PBX; our address on the route to it
        local_host, local_port = sock.getsockname()[:2]
        request, call_id = _request(user, domain, local_host, local_port, reboot)
        return _exchange(sock, request, call_id, pbx, user, timeout)


def _request(user: str, domain: str, host: str, port: int, reboot: bool) -> tuple[bytes, str]:
    shown = f"[{host}]" if ":" in host else host
    call_id = f"{secrets.token_hex(12)}@{shown}"
    aor = f"sip:{user}@{domain}"
    lines = [
        f"NOTIFY {aor} SIP/2.0",
        f"Via: SIP/2.0/UDP {shown}:{port};rport;branch=z9hG4bK{secrets.token_hex(8)}",
        "Max-Forwards: 70",
        f"From: <sip:provisioning@{shown}:{port}>;tag={secrets.token_hex(4)}",
        f"To: <{aor}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 NOTIFY",
        f"Contact: <sip:provisioning@{shown}:{port}>",
        f"Event: check-sync;reboot={'true' if reboot else 'false'}",
        "Subscription-State: terminated",
        "User-Agent: luren-provisioning",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), call_id


def _exchange(sock: socket.socket, request: bytes, call_id: str, dest: tuple[str, int],
              user: str, timeout: float) -> CheckSyncResult:
    deadline = time.monotonic() + timeout
    interval, next_send = T1, 0.0
    while (now := time.monotonic()) < deadline:
        if now >= next_send:
            sock.send(request)
            next_send, interval = now + interval, min(interval * 2, T2)
        sock.settimeout(max(0.001, min(next_send, deadline) - now))
        try:
            data = sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            continue
        answer = parse_message(data)
        if (answer is None or answer.is_request or answer.header("call-id") != call_id
                or answer.status < 200):
            if answer is not None and 100 <= answer.status < 200:
                interval = T2  # RFC 3261 17.1.2.2: after a provisional answer, resend at T2
            continue
        reason = answer.first_line.split(" ", 2)[2] if answer.first_line.count(" ") >= 2 else ""
        return CheckSyncResult(user, answer.status, reason)
    return CheckSyncResult(user, 0, f"no answer from {dest[0]}:{dest[1]} in {timeout:g} s")
