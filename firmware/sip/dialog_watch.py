"""BLF: watch other users' calls with SUBSCRIBE/NOTIFY for the dialog event (RFC 6665, 4235).

pjsua2 cannot subscribe to the dialog event (its Buddy does presence only), so a phone runs
this small subscriber beside pjsua2, on the phone controller's asyncio loop (no threads),
with its own socket on the phone's bind address and a line's credentials. Why this and not
a SIP library or pjsip through ctypes, and the message flow: docs/blf.md.

    watcher = DialogWatcher(loop, "1002", "1002", "secret", "pbx.example.se",
                            "pbx.example.se", 5060, on_state)
    await watcher.start()
    watcher.watch("1003")      # on_state("1003", "ringing", Ringing(caller_uri=...)) ...
    await watcher.close()      # every subscription ended with Expires: 0

For each watched user it keeps one subscription: SUBSCRIBE (Event: dialog, Expires 600) to
the line's outbound proxy or registrar, digest authentication (MD5, qop=auth) when
challenged, a refresh at 85 % of the granted time, a new subscription after errors, 481
or a terminated subscription (back-off 2 s doubling to 5 min, or Retry-After). Every
NOTIFY is answered (200, or 481 when it matches no subscription). States reported:
"idle", "ringing" (detail: firmware.sip.dialoginfo.Ringing), "busy", and "unknown" while a
user has no working subscription. on_state is called on the loop, only on changes.
UDP (retransmissions per RFC 3261 17.1.2) or TCP (one connection to the proxy, which
also carries the NOTIFYs). No pjsua2 here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from firmware.sip.dialoginfo import EntityDialogs, Ringing, parse_dialog_info

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
EXPIRES = 600
REFRESH_AT = 0.85  # of the granted expiry
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 300.0
T1, T2 = 0.5, 4.0  # RFC 3261 timers: retransmit from T1, doubling up to T2 ...
TIMER_F = 64 * T1  # ... until the transaction times out
CLOSE_TIMEOUT = 2.0  # how long close() waits for the unsubscribes to be answered
FINAL_NOTIFY_WAIT = 1.0  # after an unsubscribe, how long to wait for the last NOTIFY

OnState = Callable[[str, str, Ringing | None], None]

_COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact",
            "l": "content-length", "c": "content-type", "o": "event"}
_AUTH_PARAM = re.compile(r'([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')


# ----- SIP messages (just what a subscriber needs) -----


@dataclass
class SipMessage:
    """A parsed request or response; header names lower-case, compact forms expanded."""

    first_line: str
    headers: list[tuple[str, str]]
    body: str = ""

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/")

    @property
    def method(self) -> str:
        return self.first_line.split(" ", 1)[0] if self.is_request else ""

    @property
    def status(self) -> int:
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if not self.is_request and parts[1:2] and parts[1].isdigit() else 0

    def header(self, name: str) -> str:
        """First value of `name` ('' if absent)."""
        return next((v for n, v in self.headers if n == name), "")

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.header("cseq").partition(" ")
        return (int(number) if number.isdigit() else -1), method.strip().upper()


def parse_message(data: bytes) -> SipMessage | None:
    """One SIP message; None for keep-alives and garbage (never raises)."""
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.lstrip("\r\n").split("\r\n")
    if not lines[0] or " " not in lines[0]:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], f"{headers[-1][1]} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon:
            name = name.strip().lower()
            headers.append((_COMPACT.get(name, name), value.strip()))
    message = SipMessage(lines[0].strip(), headers, body)
    return message if message.is_request or message.status else None


def tag_of(value: str) -> str:
    """The tag parameter of a From/To value ('' if none)."""
    params = value.rsplit(">", 1)[-1]
    match = re.search(r";\s*tag=([^;,\s]+)", params)
    return match.group(1) if match else ""


def uri_of(value: str) -> str:
    """The URI in a name-addr or addr-spec ('"A" <sip:a@b>;x' -> 'sip:a@b')."""
    match = re.search(r"<([^>]*)>", value)
    return (match.group(1) if match else value.split(";", 1)[0]).strip()


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """'terminated;reason=timeout;retry-after=30' -> ('terminated', {...})."""
    first, *rest = [part.strip() for part in value.split(";")]
    params = dict(p.partition("=")[::2] for p in rest if p)
    return first.lower(), {k.strip().lower(): v.strip() for k, v in params.items()}


# ----- digest authentication (RFC 2617 / 7616, MD5 only) -----


def digest_authorization(
    challenge: str, method: str, uri: str, username: str, password: str,
    cnonce: str, nc: int = 1,
) -> str | None:
    """The Authorization value answering one WWW-/Proxy-Authenticate `challenge`.

    None when it cannot be answered: not Digest, an algorithm other than MD5, or a qop
    list without "auth".
    """
    scheme, _, rest = challenge.strip().partition(" ")
    params = {k.lower(): v.strip('"') for k, v in _AUTH_PARAM.findall(rest)}
    qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    if scheme.lower() != "digest" or params.get("algorithm", "MD5").upper() != "MD5":
        return None
    if "realm" not in params or "nonce" not in params or (qops and "auth" not in qops):
        return None
    realm, nonce = params["realm"], params["nonce"]
    ha1, ha2 = _md5(f"{username}:{realm}:{password}"), _md5(f"{method}:{uri}")
    fields = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"',
              f'uri="{uri}"']
    if qops:
        response = _md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
        fields += [f'response="{response}"', "algorithm=MD5", f'cnonce="{cnonce}"',
                   "qop=auth", f"nc={nc:08x}"]
    else:
        fields += [f'response="{_md5(f"{ha1}:{nonce}:{ha2}")}"', "algorithm=MD5"]
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# ----- one subscription -----


class SubscriptionFailed(Exception):
    """A SUBSCRIBE got no usable answer; `retry_after` if the server said when to retry."""

    def __init__(self, why: str, retry_after: float | None = None, at_once: bool = False):
        super().__init__(why)
        self.retry_after, self.at_once = retry_after, at_once


@dataclass(eq=False)
class _Subscription:
    """The state of the subscription to one user's dialog event."""

    user: str
    call_id: str = ""
    local_tag: str = ""
    remote_tag: str = ""
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    cseq: int = 0
    remote_cseq: int = -1
    started: float | None = None  # loop time the last new subscription began
    dialogs: EntityDialogs = field(default_factory=EntityDialogs)
    reported: tuple[str, Ringing | None] | None = None
    terminated: dict[str, str] | None = None  # Subscription-State params once terminated
    stopping: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def established(self) -> bool:
        return bool(self.remote_tag)

    def begin(self, host: str, now: float) -> None:
        """A fresh dialog: new Call-ID and tag, nothing known."""
        self.started = now
        self.call_id = f"{secrets.token_hex(10)}@{host}"
        self.local_tag, self.remote_tag, self.remote_target = secrets.token_hex(6), "", ""
        self.route_set, self.remote_cseq, self.terminated = [], -1, None
        self.dialogs = EntityDialogs()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if woken (NOTIFY terminated, version gap, unwatch)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), max(0.0, seconds))
        self.wake.clear()


# ----- the watcher -----


class DialogWatcher:
    """Subscribes to the dialog state of users on one line's PBX and reports BLF states.

    `line_user`/`auth_user`/`password`/`domain` are the line's account (From is
    sip:line_user@domain, targets are sip:user@domain); requests go to
    `proxy_host`:`proxy_port` (the line's outbound proxy, else its registrar) over
    `transport` "udp" or "tcp", from a socket of our own on `local_host`.
    `on_state(user, state, detail)` runs on `loop` whenever a user's state changes;
    `detail` is a Ringing while the state is "ringing", else None.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        line_user: str,
        auth_user: str,
        password: str,
        domain: str,
        proxy_host: str,
        proxy_port: int,
        on_state: OnState,
        *,
        local_host: str = "127.0.0.1",
        transport: str = "udp",
        expires: int = EXPIRES,
        user_agent: str = "Luren",
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError(f"transport must be 'udp' or 'tcp', not {transport!r}")
        self.loop, self.on_state = loop, on_state
        self.line_user, self.auth_user, self.password = line_user, auth_user, password
        self.domain, self.proxy = domain, (proxy_host, proxy_port)
        self.local_host, self.transport = local_host, transport
        self.expires, self.user_agent = expires, user_agent
        self._subs: dict[str, _Subscription] = {}
        self._ending: set[_Subscription] = set()  # unwatched, still unsubscribing
        self._pending: dict[str, asyncio.Future[SipMessage]] = {}
        self._link: _Link | None = None
        self._proxy_address: tuple[str, int] | None = None  # resolved, for UDP

    # ----- lifecycle -----

    async def start(self) -> None:
        """Open the socket (UDP) or the connection to the proxy (TCP)."""
        await self._connected()

    def watch(self, user: str) -> None:
        """Start watching `user` (no-op if already watched); states follow via on_state."""
        if user in self._subs and not self._subs[user].stopping:
            return
        sub = self._subs[user] = _Subscription(user)
        sub.task = self.loop.create_task(self._run(sub), name=f"blf-{user}")

    def unwatch(self, user: str) -> None:
        """Stop watching `user`: its subscription is ended (Expires: 0) in the background."""
        sub = self._subs.pop(user, None)
        if sub is not None:
            sub.stopping = True
            sub.wake.set()
            self._ending.add(sub)
            if sub.task is not None:
                sub.task.add_done_callback(lambda _: self._ending.discard(sub))

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """End every subscription (Expires: 0, waiting up to `timeout` s), close the socket."""
        for user in list(self._subs):
            self.unwatch(user)
        tasks = [s.task for s in self._ending if s.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._link is not None:
            self._link.close()
            self._link = None

    def state(self, user: str) -> tuple[str, Ringing | None] | None:
        """The last state reported for `user` (None if not watched or nothing reported)."""
        sub = self._subs.get(user)
        return sub.reported if sub else None

    @property
    def local_address(self) -> tuple[str, int] | None:
        """(host, port) of our socket, once started."""
        return self._link.local if self._link else None

    # ----- keeping one subscription alive -----

    async def _run(self, sub: _Subscription) -> None:
        try:
            await self._maintain(sub)
        except Exception:  # a bug must not go unnoticed, nor leave the key lit
            log.exception("BLF %s: watcher failed", sub.user)
            self._report(sub, UNKNOWN, None)

    async def _maintain(self, sub: _Subscription) -> None:
        failures, retried = 0, False
        while not sub.stopping:
            if not sub.established:
                await self._pace(sub)
                if sub.stopping:
                    break
            try:
                granted = await self._subscribe(sub, self.expires)
            except SubscriptionFailed as failure:
                log.info("BLF %s: %s", sub.user, failure)
                sub.remote_tag = ""  # the next attempt is a new subscription
                if failure.at_once and not retried:
                    retried = True  # e.g. 481 to a refresh: subscribe again at once
                    continue
                failures += 1
                self._proxy_address = None  # resolve the name again: the PBX may have moved
                await self._back_off(sub, failure, failures)
                continue
            failures, retried = 0, False
            await sub.sleep(max(1.0, granted * REFRESH_AT))
            if sub.terminated is not None and not sub.stopping:
                await self._after_termination(sub)
        await self._unsubscribe(sub)

    async def _pace(self, sub: _Subscription) -> None:
        """At most one new subscription per BACKOFF_FIRST s (a server ending every one)."""
        if sub.started is not None:
            await sub.sleep(sub.started + BACKOFF_FIRST - self.loop.time())

    async def _back_off(self, sub: _Subscription, failure: SubscriptionFailed,
                        failures: int) -> None:
        self._report(sub, UNKNOWN, None)
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
        await sub.sleep(failure.retry_after if failure.retry_after is not None else delay)

    async def _after_termination(self, sub: _Subscription) -> None:
        """The server ended the subscription (RFC 6665 4.1.3): when to subscribe again."""
        params, sub.remote_tag = sub.terminated or {}, ""
        reason = params.get("reason", "")
        if reason in ("rejected", "noresource", "invariant"):
            self._report(sub, UNKNOWN, None)
            log.warning("BLF %s: subscription %s; not retrying", sub.user, reason)
            sub.stopping = True
            return
        retry = _seconds(params.get("retry-after"))
        if retry is None and reason in ("probation", "giveup"):
            retry = BACKOFF_FIRST
        if retry:
            self._report(sub, UNKNOWN, None)
            await sub.sleep(retry)

    async def _unsubscribe(self, sub: _Subscription) -> None:
        """Expires: 0, then a moment for the final NOTIFY (answered 200, not 481)."""
        if not sub.established or sub.terminated is not None:
            return
        with contextlib.suppress(SubscriptionFailed):
            await self._subscribe(sub, 0)
            if sub.terminated is None:
                await sub.sleep(FINAL_NOTIFY_WAIT)

    # ----- SUBSCRIBE transactions -----

    async def _subscribe(self, sub: _Subscription, expires: int) -> float:
        """Send one SUBSCRIBE (authenticating if asked); return the granted expiry."""
        if not sub.established:
            sub.begin(self.local_host, self.loop.time())
        authorization: tuple[str, str] | None = None
        for _ in range(3):  # a challenge, then perhaps a stale-nonce challenge
            await self._connected()
            sub.cseq += 1
            request = self._build_subscribe(sub, expires, authorization)
            response = await self._transaction(request)
            if response.status in (401, 407):
                authorization = self._answer_challenge(response, sub)
                continue
            if response.status == 423 and _seconds(response.header("min-expires")):
                expires = int(_seconds(response.header("min-expires")) or expires)
                continue
            return self._accepted(sub, response, expires)
        raise SubscriptionFailed("authentication failed")

    def _answer_challenge(self, response: SipMessage, sub: _Subscription) -> tuple[str, str]:
        name = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        uri = self._request_uri(sub)
        for challenge in response.all(name):
            value = digest_authorization(challenge, "SUBSCRIBE", uri, self.auth_user,
                                         self.password, secrets.token_hex(8))
            if value:
                return ("Authorization" if response.status == 401 else
                        "Proxy-Authorization", value)
        raise SubscriptionFailed(f"{response.status}: no challenge we can answer (MD5 only)")

    def _accepted(self, sub: _Subscription, response: SipMessage, expires: int) -> float:
        """Take a final response to SUBSCRIBE; raise SubscriptionFailed if it is not 2xx."""
        if response.status == 481:
            raise SubscriptionFailed("481: subscription gone", at_once=True)
        if response.status >= 300:
            retry = _seconds(response.header("retry-after"))
            raise SubscriptionFailed(f"{response.first_line}", retry_after=retry)
        if not sub.established:
            sub.remote_tag = tag_of(response.header("to"))
            sub.route_set = _uris(response.all("record-route"))[::-1]
        contact = uri_of(response.header("contact"))
        sub.remote_target = contact or sub.remote_target or self._request_uri(sub)
        granted = _seconds(response.header("expires"))
        return float(expires if granted is None else granted)

    async def _transaction(self, request: bytes) -> SipMessage:
        """Send `request` (retransmitting over UDP); its final response.

        Raises SubscriptionFailed on timeout or when the TCP connection is lost.
        """
        branch = re.search(rb"branch=([^;\s]+)", request)
        assert branch is not None
        key = branch.group(1).decode()
        future: asyncio.Future[SipMessage] = self.loop.create_future()
        self._pending[key] = future
        try:
            return await self._send_until_answered(request, future)
        finally:
            self._pending.pop(key, None)

    async def _send_until_answered(self, request: bytes,
                                   future: asyncio.Future[SipMessage]) -> SipMessage:
        deadline, interval = self.loop.time() + TIMER_F, T1
        while True:
            link = self._link
            if link is None or link.closed:
                raise SubscriptionFailed("connection lost")
            link.send(request, self._proxy_address or self.proxy)
            wait = TIMER_F if link.reliable else interval
            wait = min(wait, deadline - self.loop.time())
            try:
                return await asyncio.wait_for(asyncio.shield(future), max(0.0, wait))
            except TimeoutError:
                if self.loop.time() >= deadline:
                    raise SubscriptionFailed("no answer (timeout)") from None
            interval = min(interval * 2, T2)

    # ----- building requests -----

    def _request_uri(self, sub: _Subscription) -> str:
        return sub.remote_target if sub.established else f"sip:{sub.user}@{self.domain}"

    def _build_subscribe(self, sub: _Subscription, expires: int,
                         authorization: tuple[str, str] | None) -> bytes:
        assert self._link is not None
        host, port = self._link.local
        proto = self.transport.upper()
        to_tag = f";tag={sub.remote_tag}" if sub.established else ""
        lines = [
            f"SUBSCRIBE {self._request_uri(sub)} SIP/2.0",
            f"Via: SIP/2.0/{proto} {host}:{port};rport;branch=z9hG4bK{secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"From: <sip:{self.line_user}@{self.domain}>;tag={sub.local_tag}",
            f"To: <sip:{sub.user}@{self.domain}>{to_tag}",
            f"Call-ID: {sub.call_id}",
            f"CSeq: {sub.cseq} SUBSCRIBE",
            *([f"Route: {', '.join(f'<{r}>' for r in sub.route_set)}"] if sub.route_set
              and sub.established else []),
            f"Contact: <{self._contact()}>",
            "Event: dialog",
            "Accept: application/dialog-info+xml",
            f"Expires: {expires}",
            "Allow: NOTIFY",
            f"User-Agent: {self.user_agent}",
            *([f"{authorization[0]}: {authorization[1]}"] if authorization else []),
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _contact(self) -> str:
        assert self._link is not None
        host, port = self._link.local
        suffix = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{self.line_user}@{host}:{port}{suffix}"

    # ----- what arrives -----

    def _received(self, data: bytes, source: tuple[str, int]) -> None:
        message = parse_message(data)
        if message is None:
            return
        if not message.is_request:
            self._on_response(message)
        elif message.method == "NOTIFY":
            self._on_notify(message, source)
        elif message.method != "ACK":
            self._reply(message, source, 405, "Method Not Allowed", "Allow: NOTIFY")

    def _on_response(self, response: SipMessage) -> None:
        branch = re.search(r"branch=([^;\s,]+)", response.header("via"))
        future = self._pending.get(branch.group(1)) if branch else None
        if future is not None and not future.done() and response.status >= 200:
            future.set_result(response)

    def _on_notify(self, notify: SipMessage, source: tuple[str, int]) -> None:
        sub = self._match(notify)
        if sub is None:
            self._reply(notify, source, 481, "Subscription Does Not Exist")
            return
        self._reply(notify, source, 200, "OK")
        cseq, _ = notify.cseq
        if cseq <= sub.remote_cseq:
            return  # a retransmission, or older than what we have
        sub.remote_cseq = cseq
        self._take_dialog(sub, notify)
        state, params = header_params(notify.header("subscription-state"))
        if not sub.stopping and state != "pending":
            self._take_body(sub, notify)
        if state == "terminated":
            sub.terminated = params
            sub.wake.set()

    def _match(self, notify: SipMessage) -> _Subscription | None:
        call_id, to_tag = notify.header("call-id"), tag_of(notify.header("to"))
        for sub in [*self._subs.values(), *self._ending]:
            if sub.call_id == call_id and sub.local_tag == to_tag:
                return sub
        return None

    def _take_dialog(self, sub: _Subscription, notify: SipMessage) -> None:
        """A NOTIFY may come before the 200 to SUBSCRIBE, and may change the target."""
        if not sub.established:
            sub.remote_tag = tag_of(notify.header("from"))
            sub.route_set = _uris(notify.all("record-route"))
        contact = uri_of(notify.header("contact"))
        sub.remote_target = contact or sub.remote_target

    def _take_body(self, sub: _Subscription, notify: SipMessage) -> None:
        if not notify.body.strip():
            sub.dialogs.clear()  # no state published for this user: idle
        else:
            info = parse_dialog_info(notify.body)
            if info is None:
                log.warning("BLF %s: unreadable dialog-info body ignored", sub.user)
                return
            if sub.dialogs.apply(info) == "gap":
                log.info("BLF %s: dialog-info version gap; refreshing", sub.user)
                sub.wake.set()  # the refresh brings a full document
                return
        view = sub.dialogs.view()
        self._report(sub, view.state, view.ringing)

    def _report(self, sub: _Subscription, state: str, detail: Ringing | None) -> None:
        if sub.reported == (state, detail) or sub.stopping:
            return
        sub.reported = (state, detail)
        try:
            self.on_state(sub.user, state, detail)
        except Exception:
            log.exception("BLF on_state callback failed")

    def _reply(self, request: SipMessage, source: tuple[str, int], status: int,
               reason: str, *extra: str) -> None:
        to = request.header("to")
        to = to if tag_of(to) or status < 300 else f"{to};tag={secrets.token_hex(4)}"
        lines = [f"SIP/2.0 {status} {reason}",
                 *(f"Via: {via}" for via in request.all("via")),
                 f"From: {request.header('from')}", f"To: {to}",
                 f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}",
                 *extra, "Content-Length: 0"]
        if self._link is not None:
            self._link.send(("\r\n".join(lines) + "\r\n\r\n").encode(), source)

    # ----- transport -----

    async def _connected(self) -> _Link:
        """The open link (socket or connection), opened now if needed; the proxy resolved."""
        try:
            if self._link is None or self._link.closed:
                self._link = await _open_link(self)
            if self._proxy_address is None and not self._link.reliable:
                self._proxy_address = await self._resolve(self._link.local[0])
        except OSError as error:
            raise SubscriptionFailed(f"cannot reach {self.proxy}: {error}") from None
        return self._link

    async def _resolve(self, local_host: str) -> tuple[str, int]:
        """The proxy's address (DNS A/AAAA, without blocking the loop; no SRV)."""
        family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
        found = await self.loop.getaddrinfo(*self.proxy, family=family,
                                            type=socket.SOCK_DGRAM)
        return found[0][4][0], found[0][4][1]

    def _link_lost(self, link: _Link) -> None:
        """A TCP connection closed: every subscription starts again on a new one."""
        if link is not self._link:
            return
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SubscriptionFailed("connection lost"))
        for sub in self._subs.values():
            sub.remote_tag = ""
            sub.wake.set()


def _uris(values: list[str]) -> list[str]:
    """Every <uri> in a list of Record-Route values, in order."""
    return [uri for value in values for uri in re.findall(r"<([^>]*)>", value)]


def _seconds(value: str | None) -> float | None:
    match = re.match(r"\s*(\d{1,9})", value or "")
    return float(match.group(1)) if match else None


# ----- links: a UDP socket, or a TCP connection to the proxy -----


class _Link:
    local: tuple[str, int] = ("", 0)
    reliable = False
    closed = False

    def send(self, data: bytes, dest: tuple[str, int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


async def _open_link(watcher: DialogWatcher) -> _Link:
    if watcher.transport == "tcp":
        _, tcp = await watcher.loop.create_connection(
            lambda: _TcpLink(watcher), *watcher.proxy, local_addr=(watcher.local_host, 0))
        return tcp
    _, udp = await watcher.loop.create_datagram_endpoint(
        lambda: _UdpLink(watcher), local_addr=(watcher.local_host, 0))
    return udp


class _UdpLink(_Link, asyncio.DatagramProtocol):
    def __init__(self, watcher: DialogWatcher) -> None:
        self.watcher = watcher
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.watcher._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("BLF socket: %s", exc)  # e.g. ICMP port unreachable: retransmissions go on

    def send(self, data: bytes, dest: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, dest)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _TcpLink(_Link, asyncio.Protocol):
    """One connection to the proxy: requests out, responses and NOTIFYs in (RFC 3261 18.3)."""

    reliable = True

    def __init__(self, watcher: DialogWatcher) -> None:
        self.watcher = watcher
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.local = transport.get_extra_info("sockname")[:2]
        self.peer = transport.get_extra_info("peername")[:2]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (message := self._next_message()) is not None:
            self.watcher._received(message, self.peer)

    def _next_message(self) -> bytes | None:
        self.buffer = self.buffer.lstrip(b"\r\n")  # keep-alives
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        length = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)",
                           self.buffer[:head_end])
        end = head_end + 4 + (int(length.group(1)) if length else 0)
        if len(self.buffer) < end:
            return None
        message, self.buffer = self.buffer[:end], self.buffer[end:]
        return message

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.watcher._link_lost(self)

    def send(self, data: bytes, dest: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
