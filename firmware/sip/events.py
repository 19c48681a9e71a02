"""Plain events the SIP engine delivers to the controller; no pjsua2 types cross this line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineStarted:
    sip_port: int
    transports: tuple[str, ...]


@dataclass(frozen=True)
class EngineFailed:
    message: str


@dataclass(frozen=True)
class RegistrationChanged:
    """A REGISTER transaction ended (or the transport under it went away)."""

    line: int
    registered: bool
    code: int
    reason: str
    expires: int = 0
    retry_after: int | None = None


@dataclass(frozen=True)
class IncomingCall:
    call_id: str
    line: int
    remote_uri: str
    remote_name: str
    remote_number: str


@dataclass(frozen=True)
class CallStateChanged:
    """The INVITE session moved: state is calling, early, connecting, confirmed or disconnected.

    `code`/`reason` are the last SIP status seen (for disconnected: why the call ended; 0 when no
    response ever came, e.g. a transport error).
    """

    call_id: str
    state: str
    code: int
    reason: str
    remote_uri: str = ""
    remote_name: str = ""  # the far end's display name, when its messages carry one


@dataclass(frozen=True)
class CallMediaChanged:
    call_id: str
    active: bool


@dataclass(frozen=True)
class DtmfReceived:
    call_id: str
    digit: str
    method: str


@dataclass(frozen=True)
class CommandFailed:
    """A command could not be carried out; `call_id` names the call it was for, if any."""

    command: str
    message: str
    call_id: str = ""


SipEvent = (EngineStarted | EngineFailed | RegistrationChanged | IncomingCall | CallStateChanged
            | CallMediaChanged | DtmfReceived | CommandFailed)
