"""The test PBX's presence server, and the phone's BLF watcher against it.

Real peers only: SIPp watchers and publishers (tests/harness/scenarios/
subscribe_watch.xml, publish.xml), raw requests (tools/pbx/sipprobe.py), baresip
phones making the calls whose dialog state is published, and the firmware's own
DialogWatcher (firmware/sip/dialog_watch.py) on an asyncio loop of its own. What went
over the wire is read back from the PBX's capture.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from firmware.sip.dialog_watch import DialogWatcher
from firmware.sip.dialoginfo import Ringing, parse_dialog_info
from tests.e2e.conftest import USERS
from tests.harness.baresip import Baresip
from tests.harness.sipp import SCENARIOS, sipp_argv
from tools.pbx.kamailio import Kamailio
from tools.pbx.ports import free_port
from tools.pbx.process import ManagedProcess
from tools.pbx.sipprobe import sip_request
from tools.pbx.waiting import wait_until
from tools.pbx.wire import SipMessage

pytestmark = pytest.mark.e2e

T = TypeVar("T")
BaresipFactory = Callable[..., Baresip]
SippStarter = Callable[..., ManagedProcess]
DOMAIN = "127.0.0.1"
NOTE = "In a meeting until 3"
PIDF = ('<?xml version="1.0" encoding="UTF-8"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@127.0.0.1">'
        '<tuple id="t1"><status><basic>open</basic></status></tuple>'
        f"<note>{NOTE}</note></presence>")
SUMMARY = ("Messages-Waiting: yes\r\nMessage-Account: sip:1001@127.0.0.1\r\n"
           "Voice-Message: 2/5 (1/0)\r\n")


# ----- peers -----


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[SippStarter]:
    """Start a SIPp scenario against the PBX; every one is stopped by PID at the end."""
    runs: list[ManagedProcess] = []

    def start(pbx: Kamailio, scenario: str, service: str, auth_user: str,
              **keys: str) -> ManagedProcess:
        workdir = tmp_path / f"sipp-{len(runs)}-{scenario}"
        workdir.mkdir(parents=True)
        key_args = [arg for name, value in keys.items() for arg in ("-key", name, value)]
        argv = sipp_argv(free_port(), "-sf", str(SCENARIOS / f"{scenario}.xml"),
                         "-s", service, "-au", auth_user, "-ap", USERS[auth_user],
                         "-key", "domain", DOMAIN, *key_args, "-m", "1", pbx.address)
        run = ManagedProcess(argv, workdir / "sipp.log", cwd=workdir)
        runs.append(run)
        run.start()
        return run

    yield start
    for run in runs:
        run.stop(grace=2.0)


def watch_with_sipp(sipp: SippStarter, pbx: Kamailio, watcher: str,
                    target: str, event: str, accept: str) -> SipMessage:
    """A SIPp watcher subscribed to `target`; returns the first NOTIFY the PBX sent it."""
    after = pbx.last_seq()
    sipp(pbx, "subscribe_watch", target, watcher, watcher=watcher, event=event,
         accept=accept, expires="120")
    return pbx.wait_message(
        lambda m: m.method == "NOTIFY" and m.direction == "out"
        and (m.header("Event") or "").startswith(event), after=after,
        what=f"the first {event} NOTIFY to the SIPp watcher")


def notify_answered(pbx: Kamailio, notify: SipMessage) -> SipMessage:
    """The watcher's 200 OK to `notify`, as the PBX received it."""
    return pbx.wait_message(
        lambda m: m.direction == "in" and m.status == 200 and m.call_id == notify.call_id
        and m.cseq == notify.cseq and m.cseq_method == "NOTIFY",
        what=f"the 200 OK to NOTIFY CSeq {notify.cseq}")


def notify_to(pbx: Kamailio, call_id: str | None, predicate: Callable[[SipMessage], bool],
              what: str, after: int | None = None) -> SipMessage:
    return pbx.wait_message(
        lambda m: m.method == "NOTIFY" and m.direction == "out" and m.call_id == call_id
        and predicate(m), after=after, what=what)


def dialog_states(message: SipMessage, call_id: str) -> list[str]:
    """States of the dialogs of call `call_id` in a dialog-info NOTIFY body."""
    info = parse_dialog_info(message.body)
    return [d.state for d in info.dialogs if d.call_id == call_id] if info else []


def ring_answer_hang_up(caller: Baresip, callee: Baresip, ring_s: float = 0.5,
                        talk_s: float = 0.5) -> str:
    """A complete call from caller to callee; returns its Call-ID."""
    caller.dial(caller.uri_of(callee.user))
    incoming = callee.wait_event("CALL_INCOMING", 5)
    time.sleep(ring_s)  # let it ring: the watcher must see the early state
    callee.answer()
    callee.wait_event("CALL_ESTABLISHED", 5)
    time.sleep(talk_s)
    caller.hangup()
    callee.wait_event("CALL_CLOSED", 5)
    return str(incoming["id"])


# ----- the presence server -----


def test_published_note_reaches_a_presence_watcher(pbx: Kamailio, sipp: SippStarter) -> None:
    first = watch_with_sipp(sipp, pbx, "1002", "1001", "presence", "application/pidf+xml")
    assert (first.header("Subscription-State") or "").startswith("active")
    notify_answered(pbx, first)

    after = pbx.last_seq()
    publisher = sipp(pbx, "publish", "1001", "1001", event="presence",
                     content_type="application/pidf+xml", body=PIDF, expires="60")
    wait_until(lambda: not publisher.running(), 10, what="the PUBLISH to finish")
    assert publisher.returncode() == 0, publisher.log_tail()
    pbx.wait_message(lambda m: m.cseq_method == "PUBLISH" and m.status == 200, after=after,
                     what="the 200 OK to the PUBLISH")
    assert [m.status for m in pbx.messages("PUBLISH", direction="out", after=after)] == [
        407, 200]

    notify = notify_to(pbx, first.call_id, lambda m: NOTE in m.body, "the note", after)
    assert notify.header("Content-Type") == "application/pidf+xml"
    notify_answered(pbx, notify)


def test_dialog_state_of_a_call_reaches_a_dialog_watcher(
        pbx: Kamailio, sipp: SippStarter, make_baresip: BaresipFactory) -> None:
    caller, callee = make_baresip("1002"), make_baresip("1003")
    first = watch_with_sipp(sipp, pbx, "1001", "1003", "dialog",
                            "application/dialog-info+xml")
    assert first.body == ""  # nothing published for 1003 yet: idle
    after = first.seq

    call_id = ring_answer_hang_up(caller, callee)

    seen = after
    for state in ("early", "confirmed", "terminated"):
        notify = notify_to(pbx, first.call_id,
                           lambda m, s=state: s in dialog_states(m, call_id),
                           f"1003's dialog {state}", after=seen)
        notify_answered(pbx, notify)
        info = parse_dialog_info(notify.body)
        assert info is not None and info.entity == "sip:1003@127.0.0.1"
        seen = notify.seq


def test_voicemail_message_summary_reaches_the_mailbox_owner(
        pbx: Kamailio, sipp: SippStarter) -> None:
    first = watch_with_sipp(sipp, pbx, "1001", "1001", "message-summary",
                            "application/simple-message-summary")
    notify_answered(pbx, first)

    answer = sip_request(pbx.port, "PUBLISH", "sip:1001@127.0.0.1",
                         from_uri="sip:vm@voicemail.invalid", to_uri="sip:1001@127.0.0.1",
                         extra_headers={"Event": "message-summary", "Expires": "60"},
                         body=SUMMARY, content_type="application/simple-message-summary")
    assert answer.status == 200  # from another domain: no challenge, like a trunk

    notify = notify_to(pbx, first.call_id, lambda m: "Voice-Message: 2/5" in m.body,
                       "the message count")
    assert notify.header("Content-Type") == "application/simple-message-summary"
    assert "Messages-Waiting: yes" in notify.body
    notify_answered(pbx, notify)

    assert pbx.publish_message_summary("1001", new=0, old=7).status == 200  # the same, cleared
    cleared = notify_to(pbx, first.call_id, lambda m: "Voice-Message: 0/7" in m.body,
                        "the cleared count", after=notify.seq)
    assert "Messages-Waiting: no" in cleared.body


def test_presence_server_refuses_outsiders_and_strangers(
        pbx: Kamailio, sipp: SippStarter) -> None:
    def ask(method: str, event: str, from_uri: str, target: str = "1001") -> int:
        body = SUMMARY if method == "PUBLISH" else ""
        return sip_request(
            pbx.port, method, f"sip:{target}@127.0.0.1", from_uri=from_uri,
            to_uri=f"sip:{target}@127.0.0.1", extra_headers={"Event": event},
            body=body, content_type="application/simple-message-summary" if body else "",
        ).status

    outsider, phone = "sip:someone@elsewhere.invalid", "sip:1002@127.0.0.1"
    assert ask("SUBSCRIBE", "dialog", outsider) == 403
    assert ask("SUBSCRIBE", "message-summary", outsider) == 403
    assert ask("PUBLISH", "presence", outsider) == 403  # only voicemail may publish
    assert ask("SUBSCRIBE", "dialog", phone) == 407  # phones authenticate first
    assert ask("SUBSCRIBE", "dialog", phone, target="1099") == 404

    # an authenticated phone, but someone else's mailbox (after the 404 reached the capture)
    after = pbx.wait_message(lambda m: m.status == 404, what="the 404").seq
    sipp(pbx, "subscribe_watch", "1001", "1002", watcher="1002", event="message-summary",
         accept="application/simple-message-summary", expires="60")
    refused = pbx.wait_message(lambda m: m.cseq_method == "SUBSCRIBE" and m.status == 403,
                               after=after, what="the 403")
    assert refused.reason == "Only for your own address"
    assert pbx.messages("SUBSCRIBE", requests_only=True, after=after)[-1].header(
        "Proxy-Authorization")


def test_presence_can_be_switched_off(tmp_path: Path) -> None:
    with Kamailio(tmp_path / "plain", USERS, port=free_port(), presence=False) as plain:
        answer = sip_request(plain.port, "SUBSCRIBE", f"sip:1001@{plain.address}",
                             from_uri="sip:someone@elsewhere.invalid",
                             extra_headers={"Event": "dialog"})
        assert answer.status == 404  # routed to 1001's phones, and it has none


# ----- the phone's BLF watcher -----


class LoopThread:
    """An asyncio loop on a thread of its own, as the phone controller's loop would be."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, function: Callable[..., object], *args: object) -> None:
        self.loop.call_soon_threadsafe(function, *args)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dialog_watcher_follows_a_call_and_unsubscribes(
        pbx: Kamailio, make_baresip: BaresipFactory, transport: str) -> None:
    caller, callee = make_baresip("1002"), make_baresip("1003")
    states: list[tuple[str, str, Ringing | None]] = []
    with LoopThread() as thread:
        watcher = DialogWatcher(thread.loop, "1001", "1001", USERS["1001"], DOMAIN,
                                "127.0.0.1", pbx.port,
                                lambda user, state, detail: states.append((user, state, detail)),
                                transport=transport)
        thread.run(watcher.start())
        thread.call(watcher.watch, "1003")
        wait_until(lambda: states, 5, what="the first BLF state")
        assert states == [("1003", "idle", None)]

        call_id = ring_answer_hang_up(caller, callee)
        wait_until(lambda: len(states) >= 4, 5, what="ringing, busy and idle")

        thread.run(watcher.close())

    assert [(user, state) for user, state, _ in states] == [
        ("1003", "idle"), ("1003", "ringing"), ("1003", "busy"), ("1003", "idle")]
    ringing = states[1][2]
    assert ringing is not None and ringing.caller_user == "1002"
    assert ringing.call_id == call_id

    unsubscribe = pbx.wait_message(
        lambda m: m.method == "SUBSCRIBE" and m.header("Expires") == "0", what="Expires: 0")
    last = notify_to(pbx, unsubscribe.call_id,
                     lambda m: (m.header("Subscription-State") or "").startswith("terminated"),
                     "the final NOTIFY")
    notify_answered(pbx, last)
    subscribes = pbx.messages("SUBSCRIBE", call_id=unsubscribe.call_id)
    assert [m.status for m in subscribes if m.direction == "out"] == [407, 200, 200]
    assert [m.header("Expires") for m in subscribes if m.is_request] == ["600", "600", "0"]
    assert subscribes[2].header("Proxy-Authorization")  # digest auth on the retry
    notifies = pbx.messages("NOTIFY", call_id=unsubscribe.call_id)
    assert {m.transport for m in [*subscribes, *notifies]} == {transport}
    sent = [m for m in notifies if m.is_request]
    assert len(sent) >= 5  # idle, early, confirmed, terminated, and the final one
    assert [m.status for m in notifies if m.direction == "in"] == [200] * len(sent)
