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
    """The call's audio: `active` while it flows; `hold` is "local" (we hold the far end),
    "remote" (the far end holds us) or "" when nobody holds."""

    call_id: str
    active: bool
    hold: str = ""


@dataclass(frozen=True)
class TransferStatus:
    """Progress of a transfer we asked for (REFER): the NOTIFYs' sipfrag status line.
    `final` is the last one: 2xx means the transfer target answered the far end."""

    call_id: str
    code: int
    reason: str
    final: bool


@dataclass(frozen=True)
class CallReplaced:
    """A call of ours became another one: the far end transferred us (REFER; we now call
    `remote_number`) or an INVITE with Replaces took its place (attended transfer to us)."""

    old_call_id: str
    new_call_id: str
    outgoing: bool
    remote_uri: str = ""
    remote_name: str = ""
    remote_number: str = ""


@dataclass(frozen=True)
class MessageWaiting:
    """A message-summary NOTIFY (subscribed or unsolicited) for a line."""

    line: int
    waiting: bool
    new: int
    old: int


@dataclass(frozen=True)
class CheckSyncRequested:
    """The registrar (or outbound proxy) of `line` said check-sync over the registered flow:
    fetch the provisioning files now; `reboot` asks for a restart after (honoured only when
    the config allows it)."""

    line: int
    reboot: bool
    source: str


@dataclass(frozen=True)
class PresenceChanged:
    """A colleague's presence (a subscription of ours): available, and their note."""

    user: str
    available: bool
    note: str


@dataclass(frozen=True)
class RecordingStopped:
    """The call recorder closed `path`: its WAV header is written."""

    path: str


@dataclass(frozen=True)
class OutgoingIdentity:
    """Who a call says it is from (a caller-ID role): the From display name and user, or
    anonymous (From anonymous, Privacy: id). The line's own identity goes in
    P-Preferred-Identity so the PBX can authorise the role. Plain data for `make_call`."""

    display_name: str = ""
    user: str = ""
    anonymous: bool = False


@dataclass(frozen=True)
class Pickup:
    """A call ringing at a colleague, to take over with INVITE + Replaces (RFC 3891,
    early-only) sent to its caller: the early dialog's Call-ID and both tags."""

    call_id: str
    callee_tag: str
    caller_tag: str


@dataclass(frozen=True)
class DtmfReceived:
    call_id: str
    digit: str
    method: str


LOCAL_SESSION = "local"
"""The menu session id of the owner at the desk (the others are call ids)."""


@dataclass(frozen=True)
class PromptFinished:
    """A menu session's prompts (started with `token`) have all played."""

    session: str
    token: int


@dataclass(frozen=True)
class SilenceHeard:
    """A menu session's recording heard the configured length of silence."""

    session: str


@dataclass(frozen=True)
class MenuRecordingStopped:
    """A menu session's recorder closed `path` (at its stop, or when the call ended)."""

    session: str
    path: str


@dataclass(frozen=True)
class CommandFailed:
    """A command could not be carried out; `call_id` names the call it was for, if any."""

    command: str
    message: str
    call_id: str = ""


SipEvent = (EngineStarted | EngineFailed | RegistrationChanged | CheckSyncRequested
            | IncomingCall | CallStateChanged
            | CallMediaChanged | DtmfReceived | CommandFailed | TransferStatus | CallReplaced
            | RecordingStopped | MessageWaiting | PresenceChanged | PromptFinished | SilenceHeard
            | MenuRecordingStopped)
