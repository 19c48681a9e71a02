"""Dialog state (RFC 4235) as a BLF key shows it: the dialog-info XML in dialog-event NOTIFYs.

    <dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full"
                 entity="sip:1003@pbx.example.se">
      <dialog id="a84b4c76" call-id="a84b4c76" local-tag="1928" remote-tag="4568"
              direction="recipient">
        <state>early</state>
        <remote><identity display="Anna">sip:1002@pbx.example.se</identity></remote>
      </dialog>
    </dialog-info>

Pure parsing, no SIP and no I/O: `parse_dialog_info(body)` reads one document (None when
it is not a readable dialog-info document: never raises), and `EntityDialogs` merges the
documents of one subscription (full and partial state, RFC 4235 section 4.1: versions
must increase; a partial document after a gap asks for a refresh) into what a BLF key
shows: "idle", "ringing" (with the caller and the call's identifiers, for pickup) or
"busy". Bodies from other PBXs vary: namespaces may be prefixed or missing, states and
directions come in any case (Kamailio publishes "Trying"), optional parts are missing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

MAX_BODY = 64 * 1024  # a BLF document is a few hundred bytes; refuse anything absurd
IDLE, RINGING, BUSY = "idle", "ringing", "busy"
# RFC 4235 3.7.1 dialog states, least to most advanced
STATE_ORDER = ("trying", "proceeding", "early", "confirmed", "terminated")
_UNANSWERED = ("trying", "proceeding", "early")


@dataclass(frozen=True)
class Dialog:
    """One <dialog> element. Strings are "" when the document leaves them out.

    `local_*` describe the watched entity's side, `remote_*` the other party; `state` is
    lower-case (one of STATE_ORDER, or whatever unknown word the document had).
    """

    id: str
    state: str
    direction: str = ""  # "initiator" (the entity called) | "recipient" (it is called)
    call_id: str = ""
    local_tag: str = ""
    remote_tag: str = ""
    local_uri: str = ""
    local_display: str = ""
    remote_uri: str = ""
    remote_display: str = ""
    remote_target: str = ""
    event: str = ""  # why a terminated dialog ended: rejected, cancelled, replaced ...

    @property
    def rank(self) -> int:
        """Position in STATE_ORDER (unknown states rank lowest)."""
        return STATE_ORDER.index(self.state) if self.state in STATE_ORDER else -1


@dataclass(frozen=True)
class DialogInfo:
    """One dialog-info document. `version` is None when it was missing or not a number."""

    version: int | None
    full: bool
    entity: str = ""
    dialogs: tuple[Dialog, ...] = ()


@dataclass(frozen=True)
class Ringing:
    """Who calls the watched user, and the call's identifiers for a pickup (Replaces)."""

    caller_uri: str
    caller_display: str = ""
    call_id: str = ""
    local_tag: str = ""  # the watched user's tag
    remote_tag: str = ""  # the caller's tag
    dialog_id: str = ""

    @property
    def caller_user(self) -> str:
        """The user part of the caller's URI ('sip:1002@pbx' -> '1002'), else the URI."""
        uri = self.caller_uri.split(":", 1)[-1]
        return uri.split("@", 1)[0] if "@" in uri else self.caller_uri


@dataclass(frozen=True)
class BlfView:
    """What a BLF key shows for one user: `state` and, when ringing, who calls."""

    state: str
    ringing: Ringing | None = None


# ----- one document -----


def parse_dialog_info(body: str | bytes) -> DialogInfo | None:
    """The dialog-info document in `body`, or None if it is not one (never raises)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text.strip() or len(text) > MAX_BODY or "<!DOCTYPE" in text.upper():
        return None  # no DTDs: no entity expansion tricks
    try:
        root = ET.fromstring(text.strip())
    except (ET.ParseError, ValueError):
        return None
    if _local(root.tag) != "dialog-info":
        return None
    dialogs = [d for d in (_dialog(e) for e in root if _local(e.tag) == "dialog") if d]
    return DialogInfo(
        version=_int(root.get("version")),
        full=(root.get("state") or "full").strip().lower() != "partial",
        entity=(root.get("entity") or "").strip(),
        dialogs=tuple(dialogs),
    )


def _dialog(element: ET.Element) -> Dialog | None:
    """A <dialog> element; None without an id or a state."""
    state = _child(element, "state")
    dialog_id = (element.get("id") or "").strip()
    if not dialog_id or state is None or not (state.text or "").strip():
        return None
    local, remote = _child(element, "local"), _child(element, "remote")
    local_uri, local_display = _identity(local)
    remote_uri, remote_display = _identity(remote)
    target = _child(remote, "target") if remote is not None else None
    return Dialog(
        id=dialog_id,
        state=(state.text or "").strip().lower(),
        direction=(element.get("direction") or "").strip().lower(),
        call_id=(element.get("call-id") or "").strip(),
        local_tag=(element.get("local-tag") or "").strip(),
        remote_tag=(element.get("remote-tag") or "").strip(),
        local_uri=local_uri,
        local_display=local_display,
        remote_uri=remote_uri,
        remote_display=remote_display,
        remote_target=(target.get("uri") or "").strip() if target is not None else "",
        event=(state.get("event") or "").strip().lower(),
    )


def _identity(party: ET.Element | None) -> tuple[str, str]:
    """(URI, display name) of a <local> or <remote> element's <identity>."""
    identity = _child(party, "identity") if party is not None else None
    if identity is None:
        return "", ""
    return (identity.text or "").strip(), (identity.get("display") or "").strip()


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    """The first child called `name`, whatever its namespace."""
    if element is None:
        return None
    return next((e for e in element if _local(e.tag) == name), None)


def _local(tag: object) -> str:
    """'{urn:...}dialog' -> 'dialog' (comments and processing instructions -> '')."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


# ----- the documents of one subscription -----


@dataclass
class EntityDialogs:
    """The dialogs of one watched user, merged from the NOTIFYs of one subscription.

    Start a new one for every new subscription (versions start again).
    """

    version: int | None = None
    dialogs: dict[str, Dialog] = field(default_factory=dict)

    def apply(self, info: DialogInfo) -> str:
        """Merge `info`: "applied", "stale" (an old version, ignored) or "gap".

        "gap": a partial document skipped a version, so some change was lost; the
        dialogs are left as they were, and the caller should refresh the subscription,
        which brings a full document (RFC 4235 4.1).
        """
        if info.version is not None and self.version is not None:
            if info.version <= self.version:
                return "stale"
            if not info.full and info.version != self.version + 1:
                return "gap"
        if info.full:
            self.dialogs = {}
        for dialog in info.dialogs:
            known = self.dialogs.get(dialog.id)
            if info.full and known and known.rank > dialog.rank:
                continue  # one document listing a dialog twice: the later state counts
            self.dialogs[dialog.id] = dialog
        self.version = info.version if info.version is not None else self.version
        self._forget_terminated()
        return "applied"

    def clear(self) -> None:
        """No state at all (a NOTIFY without a body): idle, any version next."""
        self.version = None
        self.dialogs = {}

    def view(self) -> BlfView:
        """Ringing if any call rings this user, else busy if any call is up, else idle."""
        live = [d for d in self.dialogs.values() if d.state != "terminated"]
        ringing = [d for d in live if d.state in _UNANSWERED and d.direction != "initiator"]
        if ringing:
            return BlfView(RINGING, _ringing(ringing[0]))
        return BlfView(BUSY) if live else BlfView(IDLE)

    def _forget_terminated(self) -> None:
        self.dialogs = {k: d for k, d in self.dialogs.items() if d.state != "terminated"}


def _ringing(dialog: Dialog) -> Ringing:
    return Ringing(
        caller_uri=dialog.remote_uri,
        caller_display=dialog.remote_display,
        call_id=dialog.call_id,
        local_tag=dialog.local_tag,
        remote_tag=dialog.remote_tag,
        dialog_id=dialog.id,
    )


def blf_view(body: str | bytes) -> BlfView | None:
    """What one full document alone says (None if `body` is not a dialog-info document)."""
    info = parse_dialog_info(body)
    if info is None:
        return None
    dialogs = EntityDialogs()
    dialogs.apply(info)
    return dialogs.view()
