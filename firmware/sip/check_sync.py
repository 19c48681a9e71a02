"""check-sync: the PBX telling the phone to fetch its provisioning files now (NOTIFY, Event:
check-sync, as Yealink, Snom, Poly and Gigaset phones take it); and the other requests outside
any dialog that pjsua2 drops unanswered.

pjsua2 drops an out-of-dialog NOTIFY whose event it does not know, and a REFER outside any
dialog, unanswered; but its message log carries every request it receives, with the transport
and the address it came from. The engine reads those requests from that log
(``received_request``) and this module decides:

- a check-sync is taken only when it arrives over a registered flow: the same transport and
  the same address and port the line's REGISTER answers came from (the registrar, or the
  outbound proxy that carries the registration). Anything else is ignored and logged, not
  answered, so the phone cannot be used to reflect packets at a third party;
- ``reboot=true`` (an Event parameter) asks for a restart after the fetch; the phone honours it
  only with ``provisioning.check_sync_reboot``;
- an out-of-dialog NOTIFY of any other event (but message-summary, which is pjsua2's) is
  answered ``481 Subscription does not exist`` (RFC 6665 4.1.3), and an out-of-dialog REFER
  ``403 Out-of-dialog REFER not accepted`` (RFC 3515: the phone transfers only its own calls);
  over UDP to the address the request came from (never to an address the Via merely names),
  over TCP or TLS only on a registered flow; requests inside a dialog (To with a tag) are
  pjsua2's, which answers them;
- the answer is built here and sent by the engine from its own socket (RFC 3261 18.2.2),
  since pjsua2 will not.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from firmware.sip.dialog_watch import SipMessage, header_params, parse_message

log = logging.getLogger("luren.sip")

EVENT = "check-sync"

_RX = re.compile(r"RX \d+ bytes Request msg (?:NOTIFY|REFER)/cseq=\d+ \(\S+\) from "
                 r"(UDP|TCP|TLS)6? (\S+):(\d+):\n")
OWN_EVENTS = frozenset({"message-summary"})  # out-of-dialog NOTIFYs pjsua2 answers itself
_VIA = re.compile(r"SIP/2\.0/(\w+)\s+([^;\s]+)(.*)", re.S)


@dataclass(frozen=True)
class Flow:
    """Where a line's registration runs: transport (UDP, TCP, TLS) and the far address."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport} {self.host}:{self.port}"


@dataclass(frozen=True)
class ReceivedRequest:
    """A NOTIFY or REFER pjsua2 logged: the flow it came over and the message."""

    flow: Flow
    message: SipMessage


@dataclass(frozen=True)
class Decision:
    """What to do with a request: the line a check-sync is for (None: nothing to act on), the
    answer to send (b"" for none), whether it asks for a restart, and why, in words;
    `reply_to`: send the answer to this flow's address (UDP), not to the top Via's."""

    line: int | None
    answer: bytes
    reboot: bool
    reason: str
    reply_to: Flow | None = None


def received_request(log_text: str) -> ReceivedRequest | None:
    """The NOTIFY or REFER in a pjsua2 "RX ..." log entry, or None for every other entry."""
    if not log_text.startswith("RX ") or not ("Request msg NOTIFY/" in log_text[:80]
                                              or "Request msg REFER/" in log_text[:80]):
        return None
    match = _RX.match(log_text)
    if match is None:
        return None
    raw = log_text[match.end():]
    raw = raw.split("\n--end msg--", 1)[0]
    message = parse_message(raw.encode("utf-8", "replace"))
    if message is None or message.method not in ("NOTIFY", "REFER"):
        return None
    host = match.group(2).strip("[]")
    return ReceivedRequest(Flow(match.group(1), host, int(match.group(3))), message)


def decide(notify: ReceivedRequest, flows: Mapping[int, Flow]) -> Decision:
    """Accept a check-sync over a registered flow, refuse stray requests; see the module
    text."""
    message = notify.message
    event, params = header_params(message.header("event"))
    event = event.strip().lower()
    if message.method == "NOTIFY" and event == EVENT:
        return _check_sync(notify, flows, params)
    if _in_dialog(message) or event in OWN_EVENTS:
        return Decision(None, b"", False, "")  # pjsua2 answers it (481 when no dialog)
    if message.method == "REFER":
        return _refuse(notify, flows, 403, "Out-of-dialog REFER not accepted",
                       "a REFER outside any call")
    return _refuse(notify, flows, 481, "Subscription does not exist",
                   f"a NOTIFY ({event or 'no event'}) for no subscription")


def _check_sync(notify: ReceivedRequest, flows: Mapping[int, Flow],
                params: Mapping[str, str]) -> Decision:
    message = notify.message
    lines = [line for line, flow in sorted(flows.items()) if flow == notify.flow]
    if not lines:
        return Decision(None, b"", False,
                        f"check-sync from {notify.flow} ignored: not the registrar or "
                        "outbound proxy of a registered line")
    reboot = params.get("reboot", "").strip('"').lower() == "true"
    return Decision(lines[0], response(message, 200, "OK"), reboot,
                    f"check-sync from {notify.flow} (line {lines[0] + 1})"
                    + (", reboot=true" if reboot else ""))


def _in_dialog(message: SipMessage) -> bool:
    return ";tag=" in (message.header("to") or "").replace(" ", "").lower()


def _refuse(notify: ReceivedRequest, flows: Mapping[int, Flow], status: int, reason: str,
            what: str) -> Decision:
    """A stray request's refusal: to its source over UDP, on a registered flow otherwise."""
    registered = notify.flow in flows.values()
    if not registered and notify.flow.transport != "UDP":
        return Decision(None, b"", False, f"{what} from {notify.flow} ignored (not answered "
                                          "over TCP/TLS: not a registered flow)")
    return Decision(None, response(notify.message, status, reason), False,
                    f"{what} from {notify.flow}: answered {status} {reason}",
                    None if registered else notify.flow)


def response(request: SipMessage, status: int, reason: str) -> bytes:
    """A stateless answer to `request`: its Vias, From, To (with a tag), Call-ID and CSeq."""
    to = request.header("to")
    if to and ";tag=" not in to.replace(" ", ""):
        to = f"{to};tag=cs{zlib.crc32(request.header('call-id').encode()):08x}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {via}" for via in request.all("via")]
    lines += [f"From: {request.header('from')}", f"To: {to}",
              f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}",
              "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reply_address(request: SipMessage) -> tuple[str, str, int] | None:
    """Where an answer goes (RFC 3261 18.2.2, RFC 3581): (transport, host, port) of the top
    Via, with its received and rport; None when the Via cannot be read."""
    vias = request.all("via")
    if not vias:
        return None
    top = vias[0].split(",", 1)[0].strip()
    match = _VIA.match(top)
    if match is None:
        return None
    transport = match.group(1).upper()
    sent_by = match.group(2)
    if sent_by.startswith("["):
        host, _, rest = sent_by[1:].partition("]")
        port_text = rest.lstrip(":")
    else:
        host, _, port_text = sent_by.partition(":")
    params = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (part.partition("=") for part in match.group(3).split(";"))
        if name.strip())
    host = params.get("received") or host
    port_text = params.get("rport") or port_text
    try:
        port = int(port_text) if port_text else (5061 if transport == "TLS" else 5060)
    except ValueError:
        return None
    if not host or not 0 < port < 65536:
        return None
    return transport, host, port


class AnswerSender:
    """Sends the answers pjsua2 will not: UDP from one socket of its own; TCP and TLS over a
    short connection to the top Via's address, made on a thread so the engine never waits."""

    CONNECT_TIMEOUT = 3.0

    def __init__(self, bind_host: str = "") -> None:
        self._bind_host = "" if bind_host in ("0.0.0.0", "::") else bind_host
        self._udp: socket.socket | None = None

    def send(self, answer: bytes, request: SipMessage, source: Flow | None = None) -> None:
        """Send `answer` where `request`'s top Via says, or to `source` (a UDP request's
        address and port); problems are logged, never raised."""
        where = (source.transport, source.host, source.port) if source is not None \
            else reply_address(request)
        if where is None:
            log.warning("check-sync: cannot answer, the request's Via is unreadable")
            return
        transport, host, port = where
        try:
            if transport == "UDP":
                self._udp_socket(host).sendto(answer, (host, port))
                return
        except OSError as exc:
            log.warning("check-sync: answer to %s:%d not sent: %s", host, port, exc)
            return
        threading.Thread(target=self._send_stream, args=(answer, transport, host, port),
                         name="check-sync-answer", daemon=True).start()

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def _udp_socket(self, host: str) -> socket.socket:
        if self._udp is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((self._bind_host, 0))
            self._udp = sock
        return self._udp

    def _send_stream(self, answer: bytes, transport: str, host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=self.CONNECT_TIMEOUT) as raw:
                if transport == "TLS":
                    # Only an answer goes this way; nothing is read, so nothing to trust.
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                    with context.wrap_socket(raw, server_hostname=host) as sock:
                        sock.sendall(answer)
                else:
                    raw.sendall(answer)
        except OSError as exc:
            log.warning("check-sync: answer to %s %s:%d not sent: %s", transport, host, port,
                        exc)
