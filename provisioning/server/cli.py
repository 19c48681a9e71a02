"""The provisioning server's command line: ``python -m provisioning.server.cli``.

::

    --db DB add-device MAC MODEL [--name N] [--public-key TEXT] [--cert-sha256 HEX] [--secret S]
    --db DB set-line MAC INDEX USER PASSWORD [--display-name D] [--registrar R] [--label L]
    --db DB remove-device MAC
    --db DB list
    --db DB set-model MODEL FILE
    --db DB set-common FILE
    --db DB publish OUT_DIR --sign-key PATH [--site KEY=VALUE ...] [--no-validate]
    --db DB check-sync --pbx HOST[:PORT] --domain DOMAIN [--reboot] [--timeout S]
                       (USER ... | --all)
    --db DB serve [--pnp URL [--pnp-group IP:PORT] [--pnp-interface IP]]
                  [--redirect HOST:PORT --redirect-cert PEM --redirect-key PEM
                   --device-ca PEM --destinations JSON] [--allow-http]

DB is the inventory's SQLite file, or a PostgreSQL URL (``postgresql://user@host:5432/dbname``).
Keep the database password out of the URL, where the process list shows it: libpq reads it from
``~/.pgpass`` (or the file ``PGPASSFILE`` names) or ``PGPASSWORD``. A password in the URL is
masked in every message. ``check-sync`` with users named and ``serve`` without ``--redirect`` do
not open it.

A PASSWORD (and ``--secret``) of ``-`` is read from the first line of standard input, which keeps
it out of the shell history and the process list. ``list`` never prints passwords or secrets.
``publish`` encrypts each device's SIP passwords for its device key; a device without one gets
its file without them (listed as withheld).

``check-sync`` sends a SIP NOTIFY ``check-sync`` through the PBX to each user (``--all``: every
line user of the inventory, once, in MAC and line order), up to 16 at a time, and prints one line
per user: ``1001: 200 OK``, ``1002: 404 Not Found``, ``1003: no answer from ... in 8 s``.

``serve`` runs the plug-and-play responder (``provisioning.pnp``) and/or the redirect service
(``provisioning.server.redirect``) in the foreground until SIGINT or SIGTERM. It prints where
each service listens, then ``serving ...``, then one log line per request, all on stdout. The
redirect service listens on ``--redirect HOST:PORT``: an address of this host (``0.0.0.0`` or
``[::]`` for all of them) and a port (0: one the system picks, printed). It reads the inventory
``--db`` names, a SQLite file or a PostgreSQL URL, for each phone that asks; it keeps no record
of the requests, it logs them.

Exit codes: 0 done (check-sync: every user answered 2xx; serve: stopped by a signal); 1
published, but some devices had errors (listed on stderr), or some check-sync users did not
answer 2xx; 2 usage or input error, with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import logging
import re
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn, TypeVar

from provisioning.pnp import PNP_GROUP, PnpError, PnpResponder
from provisioning.redirect import check_provisioning_url
from provisioning.server.backends import database_errors, is_postgres_url, mask_url
from provisioning.server.checksync import CheckSyncResult, send_check_sync
from provisioning.server.inventory import Device, Inventory
from provisioning.server.redirect import (
    Destinations,
    RedirectService,
    check_inventory,
    load_destinations,
)
from provisioning.server.render import render_tree

PROG = "provisioning.server.cli"
MASK = "****"
SIP_PORT = 5060
CHECK_SYNC_WORKERS = 16
"""check-sync NOTIFYs in flight at once: 1000 users with no answer take 1000 / 16 x timeout."""
MAX_TIMEOUT_S = 300.0

log = logging.getLogger("luren.provisioning.serve")

Run = Callable[[argparse.Namespace], int]
_T = TypeVar("_T")
# RFC 3261 user part: unreserved, escaped and user-unreserved characters (no '@', ':', spaces).
_SIP_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?")
_SERVE_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class _UsageError(Exception):
    """A command line argparse refused; the message is one line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _secret_arg(value: str) -> str:
    """``-`` means: read the value from the first line of standard input."""
    return sys.stdin.readline().rstrip("\r\n") if value == "-" else value


def _add_device(inventory: Inventory, args: argparse.Namespace) -> int:
    mac = inventory.add_device(args.mac, args.model, args.name, public_key=args.public_key,
                               cert_sha256=args.cert_sha256, secret=_secret_arg(args.secret))
    print(f"added {mac} ({args.model})")
    return 0


def _set_line(inventory: Inventory, args: argparse.Namespace) -> int:
    inventory.set_line(args.mac, args.index, args.user, _secret_arg(args.password),
                       display_name=args.display_name, registrar=args.registrar,
                       label=args.label)
    print(f"set line {args.index} of {args.mac}")
    return 0


def _remove_device(inventory: Inventory, args: argparse.Namespace) -> int:
    inventory.remove_device(args.mac)
    print(f"removed {args.mac}")
    return 0


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _device_lines(device: Device) -> list[str]:
    """A device and its lines as text, passwords and secret masked."""
    head = (f"{device.mac}  {device.model}  {_quoted(device.name)}  "
            f"key: {'yes' if device.public_key else 'no'}  "
            f"cert: {'yes' if device.cert_sha256 else 'no'}  "
            f"secret: {MASK if device.secret else '(none)'}")
    rows = [head]
    for line in device.lines:
        rows.append(f"  line {line.index}  user {_quoted(line.user)}  "
                    f"password {MASK if line.password else '(none)'}  "
                    f"registrar {line.registrar or '(site default)'}  "
                    f"display_name {_quoted(line.display_name)}  label {_quoted(line.label)}")
    if not device.lines:
        rows.append("  (no lines)")
    return rows


def _list(inventory: Inventory, args: argparse.Namespace) -> int:
    devices = inventory.devices()
    for device in devices:
        print("\n".join(_device_lines(device)))
    print(f"{len(devices)} device(s)")
    return 0


def _set_model(inventory: Inventory, args: argparse.Namespace) -> int:
    inventory.set_model_template(args.model, Path(args.file).read_text(encoding="utf-8"))
    print(f"set the template of model {args.model}")
    return 0


def _set_common(inventory: Inventory, args: argparse.Namespace) -> int:
    inventory.set_common(Path(args.file).read_text(encoding="utf-8"))
    print("set the common template")
    return 0


def _site_values(pairs: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"--site {pair!r}: expected KEY=VALUE")
        values[key] = value
    return values


def _publish(inventory: Inventory, args: argparse.Namespace) -> int:
    from provisioning.signing import (  # lazily: only publish signs and encrypts
        device_public_key_from_text,
        encrypt_for_device,
        load_private_key,
        sign,
    )

    key_id, key = load_private_key(Path(args.sign_key))
    report = render_tree(inventory, args.out_dir, signer=lambda body: sign(body, key_id, key),
                         encryptor=lambda body, text: encrypt_for_device(
                             body, device_public_key_from_text(text)),
                         site=_site_values(args.site), validate=args.validate)
    for message in report.warnings:
        print(f"warning: {message}", file=sys.stderr)
    for mac in sorted(report.withheld):
        print(f"{mac}: {report.withheld[mac]}")
    for mac in sorted(report.errors):
        for problem in report.errors[mac].splitlines():
            print(f"error: {problem}", file=sys.stderr)
    print(f"{len(report.written)} written, {len(report.unchanged)} unchanged, "
          f"{len(report.removed)} removed, {len(report.withheld)} withheld, "
          f"{len(report.errors)} with errors in {report.seconds:.2f} s")
    return 1 if report.errors else 0


# --- check-sync -------------------------------------------------------------------------------


def _host_port(text: str, what: str, default_port: int | None) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` (or without ``:PORT`` when there is a default)."""
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{what} {text!r}: expected HOST:PORT, e.g. [2001:db8::1]:5060")
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or (not port and default_port is None):
        raise ValueError(f"{what} {text!r}: expected HOST:PORT, e.g. 192.0.2.10:5060")
    if not port:
        return host, int(default_port or 0)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{what} {text!r}: the port must be a number from 0 to 65535")
    return host, int(port)


def _timeout(text: str) -> float:
    """A positive number of seconds, at most MAX_TIMEOUT_S (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}")
    return value


def _check_domain(domain: str) -> str:
    """The SIP domain of the users' addresses: a host name or an IP address (IPv6 bracketed)."""
    try:
        ip = ipaddress.ip_address(domain.removeprefix("[").removesuffix("]"))
    except ValueError:
        ip = None
    if ip is not None:
        return f"[{ip}]" if ip.version == 6 else str(ip)
    if _HOSTNAME_RE.fullmatch(domain) and len(domain) <= 253:
        return domain
    raise ValueError(f"--domain {domain!r} is not a host name or IP address "
                     "(the domain the phones register in, e.g. pbx.example.se)")


def _sip_user_problem(user: str) -> str | None:
    """Why ``user`` cannot be the user part of a SIP address, or None when it can."""
    if _SIP_USER_RE.fullmatch(user):
        return None
    return "not a SIP user name (letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? / only)"


def _route_to(pbx: tuple[str, int]) -> tuple[tuple[str, int], str]:
    """(the PBX's IP address and port, this host's address towards it); ValueError in words.

    Resolved once, so a thousand NOTIFYs do not make a thousand name look-ups, and sent from the
    address the PBX sees (the NOTIFY's Via and Contact name it).
    """
    host, port = pbx
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(address)  # UDP: picks the route, sends nothing
            local = str(probe.getsockname()[0])
    except OSError as exc:
        raise ValueError(f"the PBX {host}:{port} cannot be reached from here "
                         f"({exc.strerror or exc})") from None
    return (str(address[0]), int(address[1])), local


def _inventory_users(db: str) -> list[str]:
    """Every line user of every device, once each, in MAC then line order."""
    with Inventory(db) as inventory:
        users = (line.user for device in inventory.devices() for line in device.lines)
        return list(dict.fromkeys(user for user in users if user))


def _one_check_sync(user: str, pbx: tuple[str, int], local: str, domain: str,
                    args: argparse.Namespace) -> CheckSyncResult:
    """Send one check-sync; a user that cannot be sent to is a result too, not an exception."""
    problem = _sip_user_problem(user)
    if problem is not None:
        return CheckSyncResult(user, 0, f"not sent: {problem}")
    try:
        return send_check_sync(pbx, user, domain, reboot=args.reboot, timeout=args.timeout,
                               bind_host=local)
    except OSError as exc:
        return CheckSyncResult(user, 0, f"not sent: {exc.strerror or exc}")


def _printable(text: str) -> str:
    """Text from the network, safe for a terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _check_sync(args: argparse.Namespace) -> int:
    if bool(args.users) == args.all:
        raise ValueError("check-sync: name the users (e.g. 1001 1002) or give --all; one of "
                         "the two")
    for user in args.users:
        problem = _sip_user_problem(user)
        if problem is not None:
            raise ValueError(f"check-sync: user {user!r} is {problem}")
    domain = _check_domain(args.domain)
    host, port = _host_port(args.pbx, "--pbx", SIP_PORT)
    if port == 0:
        raise ValueError(f"--pbx {args.pbx!r}: give the PBX's SIP port, e.g. {host}:5060")
    pbx, local = _route_to((host, port))
    users = _inventory_users(args.db) if args.all else list(dict.fromkeys(args.users))
    if not users:
        print("the inventory has no SIP lines: no check-sync sent")
        return 0
    with ThreadPoolExecutor(min(CHECK_SYNC_WORKERS, len(users)),
                            thread_name_prefix="check-sync") as pool:
        results = []
        for result in pool.map(lambda user: _one_check_sync(user, pbx, local, domain, args),
                               users):
            shown = f"{result.status} {result.reason}" if result.status else result.reason
            print(f"{result.user}: {_printable(shown)}", flush=True)
            results.append(result)
    print("\n".join(_check_sync_summary(results)))
    return 0 if all(result.ok for result in results) else 1


def _check_sync_summary(results: Sequence[CheckSyncResult]) -> list[str]:
    """The count, and what the failures seen mean."""
    answered = sum(result.ok for result in results)
    lines = [f"{answered} of {len(results)} answered 2xx"]
    if any(result.status == 404 for result in results):
        lines.append("404: the PBX has no phone registered as that user")
    if any(result.status == 0 for result in results):
        lines.append("no answer: check --pbx, and that the PBX relays NOTIFYs from this host "
                     "to its phones")
    return lines


# --- serve ------------------------------------------------------------------------------------


class _Unkept(list[_T]):
    """A list that keeps nothing: a long-running service must not hoard per-request records."""

    def append(self, item: _T) -> None:
        """Drop ``item``."""


def _log_redirect_error(text: str) -> None:
    """The redirect server's ``on_error``: a failed TLS handshake, or the last line of a
    handler's traceback, logged."""
    handshake, _, why = text.partition("TLS handshake failed: ")
    if not handshake and why:
        log.warning("redirect: a connection was refused at the TLS handshake (no device "
                    "certificate, or one the device CA did not issue): %s", why.strip())
        return
    lines = text.strip().splitlines() or ["unknown error"]
    log.error("redirect: a request failed with an internal error: %s", lines[-1])


def _pnp_group(text: str) -> tuple[str, int]:
    host, port = _host_port(text, "--pnp-group", SIP_PORT)
    try:
        is_multicast = ipaddress.IPv4Address(host).is_multicast
    except ValueError:
        is_multicast = False
    if not is_multicast or port == 0:
        raise ValueError(f"--pnp-group {text!r}: expected an IPv4 multicast group and port, "
                         f"e.g. {PNP_GROUP[0]}:{PNP_GROUP[1]}")
    return host, port


def _ipv4(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected this host's IPv4 address on the phones' "
                         "LAN, e.g. 192.0.2.5") from None


@dataclasses.dataclass(frozen=True)
class _PnpPlan:
    url: str
    group: tuple[str, int]
    interface: str


@dataclasses.dataclass(frozen=True)
class _RedirectPlan:
    host: str
    port: int
    inventory: str
    destinations: Destinations
    cert: Path
    key: Path
    device_ca: Path


def _pnp_plan(args: argparse.Namespace) -> _PnpPlan:
    """The plug-and-play options, checked."""
    try:
        url = check_provisioning_url(args.pnp, allow_http=args.allow_http)
    except ValueError as exc:
        raise ValueError(f"--pnp {args.pnp}: {exc}") from None
    return _PnpPlan(url, _pnp_group(args.pnp_group),
                    _ipv4(args.pnp_interface, "--pnp-interface"))


def _readable_file(path: str, what: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{what} {path}: no such file")
    return file


def _redirect_plan(args: argparse.Namespace) -> _RedirectPlan:
    """The redirect options, checked (the files exist, the URLs are usable, the inventory
    can be read)."""
    host, port = _host_port(args.redirect, "--redirect", 0)
    cert = _readable_file(args.redirect_cert, "--redirect-cert")
    key = _readable_file(args.redirect_key, "--redirect-key")
    device_ca = _readable_file(args.device_ca, "--device-ca")
    destinations = load_destinations(_readable_file(args.destinations, "--destinations"),
                                     allow_http=args.allow_http)
    check_inventory(args.db)
    return _RedirectPlan(host, port, args.db, destinations, cert, key, device_ca)


def _start_pnp(plan: _PnpPlan) -> PnpResponder:
    """The plug-and-play responder, started: every phone that asks is sent to ``plan.url``."""

    def url_for(mac: str, model: str) -> str:
        log.info("plug-and-play: phone %s (model %s) asked; sent %s", mac, model or "unknown",
                 plan.url)
        return plan.url

    responder = PnpResponder(url_for, group=plan.group, interface_ip=plan.interface)
    responder.requests, responder.acks = _Unkept(), _Unkept()
    try:
        responder.start()
    except PnpError as exc:
        raise ValueError(str(exc)) from None
    host, port = responder.address or ("?", 0)
    print(f"plug-and-play: listening on {plan.group[0]}:{plan.group[1]} via {plan.interface} "
          f"(answering from {host}:{port}); phones are sent to {plan.url}", flush=True)
    return responder


def _start_redirect(plan: _RedirectPlan) -> RedirectService:
    """The redirect service, started on ``plan.host``:``plan.port``, logging its errors (each
    decision is logged by its handler) and keeping no record of the requests."""
    service = RedirectService(plan.inventory, plan.destinations, cert=plan.cert, key=plan.key,
                              device_ca=plan.device_ca, host=plan.host, port=plan.port,
                              record=False, on_error=_log_redirect_error)
    try:
        service.start()
    except OSError as exc:
        raise ValueError(_redirect_start_problem(plan, exc)) from None
    print(f"redirect: listening on {service.url('/')} (inventory {_inventory_shown(plan)}); "
          f"phones with a device certificate from {plan.device_ca} ask GET /redirect/v1/<mac>",
          flush=True)
    return service


def _redirect_start_problem(plan: _RedirectPlan, exc: OSError) -> str:
    """Why the redirect service did not start, in words: its files, or its address."""
    if isinstance(exc, ssl.SSLError) or exc.filename is not None:
        return (f"the redirect service cannot start: {_one_line(exc)} (check --redirect-cert, "
                "--redirect-key and --device-ca: PEM files, the key matching the certificate)")
    host = f"[{plan.host}]" if ":" in plan.host else plan.host
    return (f"the redirect service cannot listen on {host}:{plan.port}: "
            f"{exc.strerror or _one_line(exc)} (give an address of this host, or 0.0.0.0 for "
            "all, and a free port; ports below 1024 need extra privileges)")


def _inventory_shown(plan: _RedirectPlan) -> str:
    """The inventory for a message, a URL's password masked."""
    return mask_url(plan.inventory) if is_postgres_url(plan.inventory) else plan.inventory


def _check_serve_args(args: argparse.Namespace) -> tuple[_PnpPlan | None, _RedirectPlan | None]:
    """What to run, every option checked before anything starts."""
    redirect_files = [args.redirect_cert, args.redirect_key, args.device_ca, args.destinations]
    if not args.pnp and not args.redirect:
        raise ValueError("serve: nothing to run; give --pnp URL and/or --redirect HOST:PORT")
    if args.redirect and not all(redirect_files):
        raise ValueError("serve --redirect needs --redirect-cert, --redirect-key, --device-ca "
                         "and --destinations")
    if not args.redirect and any(redirect_files):
        raise ValueError("--redirect-cert, --redirect-key, --device-ca and --destinations only "
                         "go with --redirect")
    return (_pnp_plan(args) if args.pnp else None,
            _redirect_plan(args) if args.redirect else None)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread and every thread started inside, for sigwait."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SERVE_SIGNALS)
    try:
        yield
    finally:
        while _SERVE_SIGNALS & signal.sigpending():  # a second signal during the shutdown
            signal.sigwait(_SERVE_SIGNALS)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _request_log() -> Iterator[None]:
    """Log lines (``luren.*``) to stdout, one per request, while serving."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("luren")
    level, propagate = root.level, root.propagate
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        root.propagate = propagate


def _serve(args: argparse.Namespace) -> int:
    pnp, redirect = _check_serve_args(args)
    with _request_log(), _signals_blocked(), contextlib.ExitStack() as services:
        if pnp is not None:
            services.callback(_start_pnp(pnp).stop)
        if redirect is not None:
            services.callback(_start_redirect(redirect).stop)
        print("serving; stop with Ctrl-C or SIGTERM", flush=True)
        received = signal.sigwait(_SERVE_SIGNALS)
        print(f"stopping ({signal.Signals(received).name})", flush=True)
    print("stopped", flush=True)
    return 0


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Manage the device inventory and publish the "
                     "signed provisioning tree.")
    parser.add_argument("--db", required=True, metavar="DB",
                        help="the inventory: a SQLite file, or a PostgreSQL URL "
                        "postgresql://USER@HOST[:PORT]/DBNAME (the password from ~/.pgpass or "
                        "PGPASSWORD, not the URL, which the process list shows)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, run: Run, text: str) -> _Parser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(run=run)
        return sub

    sub = command("add-device", _with_inventory(_add_device), "Add a phone.")
    sub.add_argument("mac")
    sub.add_argument("model")
    sub.add_argument("--name", default="")
    sub.add_argument("--public-key", default="", help="the device's X25519 public key")
    sub.add_argument("--cert-sha256", default="", help="SHA-256 of the device certificate")
    sub.add_argument("--secret", default="", help="per-device secret; - reads it from stdin")

    sub = command("set-line", _with_inventory(_set_line), "Add or replace a SIP line of a phone.")
    sub.add_argument("mac")
    sub.add_argument("index", type=int, help="1 to 16")
    sub.add_argument("user")
    sub.add_argument("password", help="- reads it from stdin")
    sub.add_argument("--display-name", default="")
    sub.add_argument("--registrar", default="", help="empty: the registrar site value")
    sub.add_argument("--label", default="")

    sub = command("remove-device", _with_inventory(_remove_device), "Remove a phone and its lines.")
    sub.add_argument("mac")

    command("list", _with_inventory(_list), "List the phones and lines (passwords masked).")

    sub = command("set-model", _with_inventory(_set_model),
                  "Set a model's TOML template from a file.")
    sub.add_argument("model")
    sub.add_argument("file")

    sub = command("set-common", _with_inventory(_set_common),
                  "Set the common TOML template from a file.")
    sub.add_argument("file")

    sub = command("publish", _with_inventory(_publish), "Render the signed tree into a directory.")
    sub.add_argument("out_dir")
    sub.add_argument("--sign-key", required=True, help="the Ed25519 private key file (.key)")
    sub.add_argument("--site", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                     help="a site value for ${KEY} placeholders; registrar=... is the default "
                     "registrar of lines without one")
    sub.add_argument("--no-validate", dest="validate", action="store_false",
                     help="skip checking each device's config against the phone's schema")
    _add_check_sync(command("check-sync", _check_sync, "Tell phones to fetch their files now "
                            "(SIP NOTIFY check-sync through the PBX), one line per user."))
    _add_serve(command("serve", _serve, "Run the plug-and-play responder and/or the redirect "
                       "service in the foreground until Ctrl-C or SIGTERM."))
    return parser


def _add_check_sync(sub: _Parser) -> None:
    sub.add_argument("users", nargs="*", metavar="USER",
                     help="the SIP users (e.g. 1001 1002); or --all")
    sub.add_argument("--all", action="store_true",
                     help="every line user of every device in the inventory, once each")
    sub.add_argument("--pbx", required=True, metavar="HOST[:PORT]",
                     help="the PBX (registrar) the phones are registered with, UDP; port 5060 "
                     "unless given. It must relay this host's NOTIFYs to the phones")
    sub.add_argument("--domain", required=True,
                     help="the SIP domain of the users' addresses (sip:USER@DOMAIN)")
    sub.add_argument("--reboot", action="store_true",
                     help="ask the phones to restart too (only those allowed to do so will)")
    sub.add_argument("--timeout", type=_timeout, default=8.0, metavar="S",
                     help="seconds to wait for each user's answer (default 8)")


def _add_serve(sub: _Parser) -> None:
    sub.add_argument("--pnp", metavar="URL",
                     help="run the plug-and-play responder: phones on the LAN asking the "
                     "multicast group are sent to this provisioning URL (https://)")
    sub.add_argument("--pnp-group", default=f"{PNP_GROUP[0]}:{PNP_GROUP[1]}", metavar="IP:PORT",
                     help="the multicast group and UDP port phones ask (default %(default)s)")
    sub.add_argument("--pnp-interface", default="127.0.0.1", metavar="IP",
                     help="this host's IPv4 address on the phones' LAN: the group is joined "
                     "there and answers come from it (default %(default)s, this host only)")
    sub.add_argument("--redirect", metavar="HOST:PORT",
                     help="run the redirect service (HTTPS, device certificate required) on "
                     "this address of this host (0.0.0.0 or [::]: all of them) and port (0: "
                     "one the system picks and prints), e.g. 0.0.0.0:8443")
    sub.add_argument("--redirect-cert", metavar="PEM", help="the redirect service's certificate")
    sub.add_argument("--redirect-key", metavar="PEM", help="its private key")
    sub.add_argument("--device-ca", metavar="PEM",
                     help="the CA that issued the phones' device certificates")
    sub.add_argument("--destinations", metavar="JSON",
                     help='where phones are sent: {"default": URL, "devices": {MAC: URL}}')
    sub.add_argument("--allow-http", action="store_true",
                     help="accept http:// provisioning URLs (a lab without TLS; phones take "
                     "them from plug-and-play only with pnp_https_only = false)")


def _with_inventory(run: Callable[[Inventory, argparse.Namespace], int]) -> Run:
    """A command that works on the opened inventory."""

    def opened(args: argparse.Namespace) -> int:
        with Inventory(args.db) as inventory:
            return run(inventory, args)

    return opened


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 done; 1 published with errors, or some
    check-sync users did not answer 2xx; 2 usage or input error)."""
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        print(f"{PROG}: {_one_line(exc)} (try --help)", file=sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except (ValueError, OSError, *database_errors()) as exc:  # psycopg's only once imported
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
