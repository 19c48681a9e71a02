"""The one command table: the technician console and the control API run the same actions.

Each command takes its words (``sip register 1`` -> ``["1"]``) and answers a `Reply`: lines of
plain text for a dumb terminal, the same facts as data for the API, and for the few commands
that go on until stopped (``log follow``, ``test keys`` ...) a `Stream`. `execute` parses a
command line, finds the command, runs it and masks every secret in what comes back; nothing
here prints, so the console and ``POST /api/v1/command`` show exactly the same answer.

A command never raises for bad input: unknown commands, missing or wrong arguments and
unbalanced quotes come back as a Reply with ``ok=False`` and the reason in words.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shlex
import textwrap
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from board.parts import LedPattern, LedState
from firmware.config import ConfigError, config_to_dict
from firmware.config.load import toml_literal
from firmware.console.logbuffer import LEVELS, LogBuffer, set_level
from firmware.console.masking import Masker
from firmware.storage import atomic_write_json

if TYPE_CHECKING:
    from firmware.dect_base import DectBase
    from firmware.phone import Phone
    from provisioning.updater import FirmwareUpdater

log = logging.getLogger("luren.console")

FACTORY_RESET_MARK: Final = "FACTORY_RESET"
"""A file in the data directory: at the next start everything but the device key and the
firmware slots is wiped (``wipe_for_factory_reset``), then the file goes."""
KEPT_BY_FACTORY_RESET: Final = ("provisioning/device.key", "firmware")
CONFIRM_FACTORY_RESET: Final = "erase everything"
MAX_TAIL: Final = 500


class Stream(Protocol):
    """Output that goes on until stopped (any key at the console)."""

    def start(self, emit: Callable[[str], None]) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Reply:
    ok: bool
    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    stream: Stream | None = None

    def as_api(self) -> dict[str, Any]:
        return {"ok": self.ok, "text": "\n".join(self.lines), "data": self.data}


def fail(text: str) -> Reply:
    return Reply(False, [text])


@dataclass
class Services:
    """What the commands act on; the runtime provides it."""

    phone: Phone
    data_dir: Path
    version: str
    log: LogBuffer
    masker: Masker
    started: float = field(default_factory=time.monotonic)
    sip_trace: Callable[[int], list[str]] = lambda count: []
    provision_now: Callable[[], Awaitable[Any]] | None = None
    restart: Callable[[str], None] = lambda why: None
    firmware: FirmwareUpdater | None = None
    loopback: Callable[..., None] | None = None  # (on, terminal=0): the audio test
    console_code: Callable[[], str] | None = None
    console_port: str = ""
    dect: DectBase | None = None

    def lines(self) -> list[Any]:
        return list(self.phone.config.lines)


Handler = Callable[[Services, list[str]], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    name: str  # "sip register"
    usage: str  # "sip register [LINE]"
    summary: str
    run: Handler
    api: bool = True  # also through POST /api/v1/command (streams are console-only)


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, summary: str, *, api: bool = True
            ) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, summary, fn, api)
        return fn
    return register


# --- finding and running ----------------------------------------------------------------------


def parse(line: str) -> list[str]:
    """The words of a command line; ValueError in words for unbalanced quotes."""
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise ValueError(f"cannot read the command: {exc} (close the quotes)") from None


def find(words: list[str]) -> tuple[Command | None, list[str]]:
    """The command named by the first one or two words, and the rest."""
    if len(words) >= 2 and f"{words[0]} {words[1]}" in COMMANDS:
        return COMMANDS[f"{words[0]} {words[1]}"], words[2:]
    if words and words[0] in COMMANDS:
        return COMMANDS[words[0]], words[1:]
    return None, words


async def execute(services: Services, line: str, *, via_api: bool = False) -> Reply:
    """Run one command line; every answer masked. Never raises for anything the user typed."""
    try:
        words = parse(line)
    except ValueError as exc:
        return fail(str(exc))
    if not words:
        return Reply(True, [])
    cmd, args = find(words)
    if cmd is None:
        groups = sorted({name.split()[0] for name in COMMANDS if name.split()[0].startswith(
            words[0][:2])}) if words[0] else []
        hint = f"; did you mean {', '.join(groups)}?" if groups else ""
        return fail(f"unknown command {words[0][:40]!r}{hint} (type help)")
    if via_api and not cmd.api:
        return fail(f"{cmd.name} runs on the console only (it goes on until stopped)")
    try:
        reply = await cmd.run(services, args)
    except Exception as exc:  # a command gone wrong is reported, never takes the phone down
        log.exception("console command %r failed", cmd.name)
        reply = fail(f"{cmd.name} failed: {exc}")
    reply.lines = [services.masker.text(text) for text in reply.lines]
    reply.data = services.masker.data(reply.data)
    return reply


def completions(text: str) -> list[str]:
    """Whole command names that continue `text` (for the console's Tab)."""
    text = text.lstrip()
    names = sorted(COMMANDS) + ["help " + name for name in sorted({n.split()[0] for n in COMMANDS})]
    return sorted({name for name in names if name.startswith(text) and name != text.rstrip()})


# --- help --------------------------------------------------------------------------------------


@command("help", "help [COMMAND]", "the commands, or one command's use")
async def _help(s: Services, args: list[str]) -> Reply:
    if args:
        prefix = " ".join(args)
        found = [c for n, c in sorted(COMMANDS.items()) if n == prefix or n.startswith(
            prefix + " ")]
        if not found:
            return fail(f"no command {prefix!r} (type help)")
        return Reply(True, [f"{c.usage}\n    {c.summary}" for c in found])
    lines = ["Commands (help COMMAND for one; Tab completes):"]
    for _, c in sorted(COMMANDS.items()):
        lines.append(f"  {c.usage}")
        lines += textwrap.wrap(c.summary, 76, initial_indent="      ",
                               subsequent_indent="      ")
    return Reply(True, lines)


# --- status ------------------------------------------------------------------------------------


def _uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _line_text(line: dict[str, Any]) -> str:
    state = "registered" if line["registered"] else line["state"]
    last = f" (last: {line['code']} {line['reason']})" if line["code"] and not line[
        "registered"] else ""
    retry = f", retry in {line['next_retry_in']:.0f} s" if line["next_retry_in"] else ""
    return f"  line {line['index'] + 1} {line['user']}: {state}{last}{retry}"


@command("status", "status", "uptime, version, firmware, addresses, lines, calls, referral")
async def _status(s: Services, args: list[str]) -> Reply:
    from firmware.console import netinfo

    status = s.phone.status()
    uptime = time.monotonic() - s.started
    addresses = await asyncio.get_running_loop().run_in_executor(None, netinfo.addresses)
    shown = [f"{i.name} {' '.join(i.addresses) or '(no address)'}" for i in addresses
             if i.addresses and not i.loopback]
    fw = status.get("firmware") or {}
    lines = [f"Luren {s.version}, up {_uptime(uptime)}",
             f"firmware: {fw.get('running', '?')} in slot {fw.get('slot', '?')}"
             + ("" if fw.get("confirmed", True) else " (on trial)") if fw else
             "firmware: slots not in use",
             "addresses: " + ("; ".join(shown) or "none (no network?)")]
    lines.append("lines:" if status["lines"] else "lines: none (waiting for provisioning)")
    lines += [_line_text(line) for line in status["lines"]]
    lines.append(f"calls: {len(status['calls'])}")
    lines += [f"  {c['direction']} {c['remote'] or '?'} {c['state']} {c['duration']:.0f} s"
              for c in status["calls"]]
    lines.append(f"referral: {status['referral']['text'] or 'available'}")
    prov = status.get("provisioning") or {}
    if prov:
        lines.append(f"provisioning: {'ok' if prov.get('ok') else 'FAILED'}: "
                     f"{prov.get('message', '')}")
    data = {"version": s.version, "uptime_s": round(uptime), "firmware": fw,
            "addresses": [dataclasses.asdict(i) for i in addresses],
            "lines": status["lines"], "calls": status["calls"],
            "referral": status["referral"], "provisioning": prov}
    return Reply(True, lines, data)


# --- net ---------------------------------------------------------------------------------------


@command("net", "net", "addresses, gateway, DNS, DHCP options; registrar and provisioning "
         "server reachable?")
async def _net(s: Services, args: list[str]) -> Reply:
    from firmware.config.schema import split_host_port
    from firmware.console import netinfo
    from firmware.sip.uri import host_port

    loop = asyncio.get_running_loop()
    config = s.phone.config
    addresses = await loop.run_in_executor(None, netinfo.addresses)
    lines = ["interfaces:"] + [f"  {i.name} {'up' if i.up else 'down'} {i.mac or ''} "
                               f"{' '.join(i.addresses)}".rstrip() for i in addresses]
    gateway = netinfo.default_gateway()
    dns = netinfo.dns_servers()
    lines += [f"gateway: {gateway or 'none'}", f"dns: {', '.join(dns) or 'none'}"]
    dhcp = await loop.run_in_executor(None, netinfo.dhcp_options,
                                      list(config.provisioning.dhcp_leases))
    lines += dhcp.lines() if dhcp is not None else ["dhcp: no lease file found"]
    checks: list[Awaitable[Any]] = []
    for line in config.lines:
        host, port = split_host_port(host_port(line.outbound_proxy_uri or line.registrar_uri))
        checks.append(loop.run_in_executor(None, lambda h=host, p=port, t=line.transport:
                                           netinfo.sip_options_ping(h, p or 5060, transport=t)))
    url = (s.phone.provisioning or {}).get("url") or config.provisioning.url
    if url:
        checks.append(loop.run_in_executor(None, lambda: netinfo.https_check(
            url.rstrip("/") + "/common.toml", ca_file=config.provisioning.ca_file)))
    for result in await asyncio.gather(*checks):
        lines += result.lines()
    if not config.lines:
        lines.append("registrar: no line configured yet")
    if not url:
        lines.append("provisioning server: none known")
    return Reply(True, lines, {"interfaces": [dataclasses.asdict(i) for i in addresses],
                               "gateway": gateway, "dns": dns})


# --- sip ---------------------------------------------------------------------------------------


@command("sip", "sip", "each line's registration and its last error")
async def _sip(s: Services, args: list[str]) -> Reply:
    if args:
        return fail(f"sip: unknown subcommand {args[0][:20]!r} (help sip)")
    status = s.phone.status()["lines"]
    return Reply(True, [_line_text(line) for line in status] or ["no lines"],
                 {"lines": status})


def _line_arg(s: Services, args: list[str], what: str) -> list[int] | str:
    """Line indexes (0-based) from an optional 1-based LINE argument, or the error text."""
    count = len(s.phone.config.lines)
    if not count:
        return "no lines configured yet"
    if not args:
        return list(range(count))
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= count:
        return f"{what}: LINE must be a number from 1 to {count}"
    return [int(args[0]) - 1]


@command("sip register", "sip register [LINE]", "register again now (every line, or one)")
async def _sip_register(s: Services, args: list[str]) -> Reply:
    lines = _line_arg(s, args, "sip register")
    if isinstance(lines, str):
        return fail(lines)
    for index in lines:
        s.phone.registrations[index].retrying()
        s.phone.engine.register(index)
    return Reply(True, [f"line {i + 1}: registering" for i in lines], {"lines": lines})


@command("sip trace", "sip trace [N]", "the last N SIP messages (default 10), secrets masked")
async def _sip_trace(s: Services, args: list[str]) -> Reply:
    if len(args) > 1 or (args and not args[0].isdigit()):
        return fail("sip trace: N must be a number")
    count = min(int(args[0]) if args else 10, 200)
    messages = s.sip_trace(count)
    lines: list[str] = []
    for message in messages:
        lines += [*message.replace("\r\n", "\n").rstrip("\n").split("\n"), "--"]
    return Reply(True, lines or ["no SIP messages yet"], {"messages": messages})


@command("sip log", "sip log LEVEL", "how much the SIP engine logs: debug, info, warning, error")
async def _sip_log(s: Services, args: list[str]) -> Reply:
    if len(args) != 1:
        return fail(f"sip log: give one level: {', '.join(LEVELS)}")
    problem = set_level("luren.sip", args[0])
    return fail(problem) if problem else Reply(True, [f"SIP log level: {args[0].lower()}"])


# --- prov --------------------------------------------------------------------------------------


@command("prov", "prov", "provisioning: source, URL, last result and error")
async def _prov(s: Services, args: list[str]) -> Reply:
    if args:
        return fail(f"prov: unknown subcommand {args[0][:20]!r} (help prov)")
    prov = dict(s.phone.provisioning or {})
    found = _found(s.data_dir)
    own = s.phone.config.provisioning.url
    lines = [f"URL: {prov.get('url') or own or (found or {}).get('url') or 'none'}",
             f"source: {'the phone own file' if own else (found or {}).get('source', 'none')}"]
    if prov:
        lines.append(f"last run: {prov.get('at', '?')}: {'ok' if prov.get('ok') else 'FAILED'}")
        lines.append(f"  {prov.get('message', '')}")
        if prov.get("from_cache"):
            lines.append("  running on the last-known-good files")
        if prov.get("restart_needed"):
            lines.append(f"  restart needed for: {', '.join(prov['restart_needed'])}")
    else:
        lines.append("not provisioned")
    return Reply(True, lines, {"provisioning": prov, "found": found})


def _found(data_dir: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads((data_dir / "provisioning" / "found.json").read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


@command("prov url", "prov url URL", "use this provisioning URL from the next start")
async def _prov_url(s: Services, args: list[str]) -> Reply:
    from provisioning.redirect import check_provisioning_url

    if len(args) != 1:
        return fail("prov url: give one URL, e.g. prov url https://prov.example.se/luren/")
    settings = s.phone.config.provisioning
    try:
        url = check_provisioning_url(args[0], allow_http=settings.allow_http)
    except ValueError as exc:
        return fail(f"prov url: {exc}")
    atomic_write_json(s.data_dir / "provisioning" / "found.json",
                      {"url": url, "source": "set on the console"})
    note = (["note: the phone's own file names a URL, which comes first"] if settings.url
            else ["restart (reboot) to provision from it"])
    return Reply(True, [f"provisioning URL set: {url}", *note], {"url": url})


@command("prov run", "prov run", "fetch the provisioning files now")
async def _prov_run(s: Services, args: list[str]) -> Reply:
    if s.provision_now is None:
        return fail("this phone is not provisioned: no URL (prov url URL, then reboot)")
    await s.provision_now()
    prov = s.phone.provisioning
    return Reply(bool(prov.get("ok")), [f"{'ok' if prov.get('ok') else 'FAILED'}: "
                                        f"{prov.get('message', '')}"], {"provisioning": prov})


# --- config ------------------------------------------------------------------------------------


@command("config", "config [TABLE]", "the running config (secrets masked), or one table")
async def _config(s: Services, args: list[str]) -> Reply:
    document = config_to_dict(s.phone.config)
    if args:
        if args[0] not in document:
            return fail(f"config: no table {args[0]!r}; tables: {', '.join(document)}")
        document = {args[0]: document[args[0]]}
    return Reply(True, _toml_lines(document), {"config": document})


def _toml_lines(document: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for table, body in document.items():
        if isinstance(body, dict):
            lines.append(f"[{table}]")
            lines += [f"{k} = {toml_literal(v)}" for k, v in body.items()]
        elif isinstance(body, list) and body and all(isinstance(i, dict) for i in body):
            for item in body:
                lines.append(f"[[{table}]]")
                lines += [f"{k} = {toml_literal(v)}" for k, v in item.items()]
        else:
            lines.append(f"{table} = {toml_literal(body)}")
    return lines


def _value_at(document: Any, key: str) -> Any:
    node = document
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(key)
    return node


@command("config get", "config get KEY", "one setting, e.g. config get sip.port")
async def _config_get(s: Services, args: list[str]) -> Reply:
    if len(args) != 1:
        return fail("config get: give one key, e.g. device.language")
    try:
        value = _value_at(config_to_dict(s.phone.config), args[0])
    except KeyError:
        return fail(f"config get: no key {args[0][:60]!r}")
    return Reply(True, [f"{args[0]} = {toml_literal(value)}"], {"key": args[0], "value": value})


def _value(text: str) -> Any:
    """A TOML value (5070, true, "x", ["a"]); anything else is taken as text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


@command("config set", "config set KEY VALUE", "a local setting, checked against the schema")
async def _config_set(s: Services, args: list[str]) -> Reply:
    overrides = s.phone.overrides
    if len(args) < 2:
        return fail("config set: give a key and a value, e.g. config set device.language en")
    if overrides is None:
        return fail("config set: this phone keeps no local settings (no data directory)")
    key, value = args[0], _value(" ".join(args[1:]))
    try:
        new = overrides.set(key, value, technician=True)
    except ConfigError as exc:
        return fail("config set: " + "; ".join(f"{p.path}: {p.message}" for p in exc.problems))
    except OSError as exc:
        return fail(f"config set: not stored: {exc.strerror}")
    s.phone.apply_config(new)
    return Reply(True, [f"{key} set (kept across restarts; config reset {key} undoes it)"],
                 {"key": key})


@command("config reset", "config reset KEY", "drop a local setting: the provisioned one applies")
async def _config_reset(s: Services, args: list[str]) -> Reply:
    overrides = s.phone.overrides
    if len(args) != 1:
        return fail("config reset: give one key")
    if overrides is None:
        return fail("config reset: this phone keeps no local settings")
    try:
        new = overrides.reset(args[0])
    except ConfigError as exc:
        return fail("config reset: " + "; ".join(f"{p.path}: {p.message}" for p in exc.problems))
    s.phone.apply_config(new)
    return Reply(True, [f"{args[0]}: local setting dropped"], {"key": args[0]})


# --- log ---------------------------------------------------------------------------------------


@command("log", "log [N]", "the last N log lines (default 20)")
async def _log(s: Services, args: list[str]) -> Reply:
    if len(args) > 1 or (args and not args[0].isdigit()):
        return fail("log: N must be a number")
    lines = s.log.tail(min(int(args[0]) if args else 20, MAX_TAIL))
    return Reply(True, lines or ["(nothing logged yet)"], {"lines": lines})


class _Follow:
    def __init__(self, buffer: LogBuffer) -> None:
        self.buffer = buffer
        self._emit: Callable[[str], None] | None = None
        self._loop = asyncio.get_running_loop()

    def _on_line(self, line: str) -> None:
        if self._emit is not None:
            self._loop.call_soon_threadsafe(self._emit_line, line)

    def _emit_line(self, line: str) -> None:
        if self._emit is not None:
            self._emit(line)

    def start(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self.buffer.follow(self._on_line)

    def stop(self) -> None:
        self._emit = None
        self.buffer.unfollow(self._on_line)


@command("log follow", "log follow", "show new log lines as they come (any key stops)",
         api=False)
async def _log_follow(s: Services, args: list[str]) -> Reply:
    return Reply(True, ["following the log; press any key to stop"], stream=_Follow(s.log))


@command("log level", "log level [LOGGER] LEVEL", "debug, info, warning or error, for the "
         "whole phone or e.g. luren.sip")
async def _log_level(s: Services, args: list[str]) -> Reply:
    if not 1 <= len(args) <= 2:
        return fail(f"log level: give a level ({', '.join(LEVELS)}), optionally after a logger")
    name, level = (args[0], args[1]) if len(args) == 2 else ("", args[0])
    if name and not (name == "luren" or name.startswith("luren.")):
        return fail("log level: the phone's loggers are luren and luren.<part>")
    problem = set_level(name, level)
    return fail(problem) if problem else Reply(
        True, [f"log level of {name or 'luren'}: {level.lower()}"])


# --- test --------------------------------------------------------------------------------------


class _KeyEcho:
    """Key presses and the hookswitch echoed, not acted on, while it runs."""

    def __init__(self, phone: Phone) -> None:
        self.boards = [t.board for t in phone.terminals]
        self.saved: list[tuple[Any, Any]] = []

    def start(self, emit: Callable[[str], None]) -> None:
        for board in self.boards:
            self.saved.append((board.on_key, board.on_hook))
            board.on_key = lambda key: emit(f"key {key}")
            board.on_hook = lambda off: emit(f"hook {'off (lifted)' if off else 'on (down)'}")

    def stop(self) -> None:
        for board, (on_key, on_hook) in zip(self.boards, self.saved, strict=False):
            board.on_key, board.on_hook = on_key, on_hook
        self.saved.clear()


@command("test keys", "test keys", "show each key press and the hookswitch (any console key "
         "stops); the phone does not act on them meanwhile", api=False)
async def _test_keys(s: Services, args: list[str]) -> Reply:
    return Reply(True, ["press keys on the phone; press any key here to stop"],
                 stream=_KeyEcho(s.phone))


class _Cycle:
    """Steps through `steps` every `period` seconds on the phone's clock, then `done`."""

    def __init__(self, phone: Phone, steps: list[tuple[str, Callable[[], None]]],
                 done: Callable[[], None], period: float) -> None:
        self.phone, self.steps, self.done, self.period = phone, steps, done, period
        self._timer: Any = None
        self._index = 0
        self._emit: Callable[[str], None] | None = None

    def start(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._step()

    def _step(self) -> None:
        if self._emit is None:
            return
        text, act = self.steps[self._index % len(self.steps)]
        act()
        self._emit(text)
        self._index += 1
        self._timer = self.phone.clock.call_later(self.period, self._step)

    def stop(self) -> None:
        self._emit = None
        if self._timer is not None:
            self._timer.cancel()
        self.done()


@command("test leds", "test leds", "each LED on in turn, then all (any key stops)", api=False)
async def _test_leds(s: Services, args: list[str]) -> Reply:
    leds = [(t, name, led) for t in s.phone.terminals for name, led in sorted(t.board.leds.items())]
    if not leds:
        return fail("this board has no LEDs")
    on, off = LedState(LedPattern.ON), LedState(LedPattern.OFF)

    def only(which: Any) -> Callable[[], None]:
        def act() -> None:
            for _, _, led in leds:
                led.set(on if led is which or which is None else off)
        return act

    def done() -> None:
        for _, _, led in leds:
            led.set(off)  # then the phone lights what it uses
        _release(s.phone)

    steps = [(f"LED {name} on", only(led)) for _, name, led in leds] + [("all on", only(None))]
    _hold(s.phone)
    return Reply(True, ["cycling the LEDs; press any key to stop"],
                 stream=_Cycle(s.phone, steps, done, 0.5))


def _hold(phone: Phone) -> None:
    """The screens and LEDs are the test's until `_release`."""
    for terminal in phone.terminals:
        terminal.under_test = True


def _release(phone: Phone) -> None:
    for terminal in phone.terminals:
        terminal.under_test = False
    phone.refresh()


@command("test display", "test display", "patterns on the screen (any key stops)", api=False)
async def _test_display(s: Services, args: list[str]) -> Reply:
    displays = [t.board.display for t in s.phone.terminals]
    width, height = displays[0].width, displays[0].height
    charset = "".join(chr(c) for c in range(33, 127)) + "ÅÄÖåäöé"
    patterns = {
        "all blocks": ["#" * width] * height,
        "checkerboard": [("#." if r % 2 else ".#") * width for r in range(height)],
        "frame": ["+" + "-" * (width - 2) + "+"] + ["|" + " " * (width - 2) + "|"] * (
            height - 2) + ["+" + "-" * (width - 2) + "+"],
        "characters": [charset[r * width:(r + 1) * width] for r in range(height)],
    }

    def show(rows: list[str]) -> Callable[[], None]:
        return lambda: [d.show(rows) for d in displays] and None

    steps = [(f"display: {name}", show(rows)) for name, rows in patterns.items()]
    _hold(s.phone)
    return Reply(True, ["showing display patterns; press any key to stop"],
                 stream=_Cycle(s.phone, steps, lambda: _release(s.phone), 2.0))


@command("test audio", "test audio [HANDSET]", "a tone on each audio path, then a loopback "
         "(any key stops); on a DECT base, of handset HANDSET (1)", api=False)
async def _test_audio(s: Services, args: list[str]) -> Reply:
    from audio.tones import ToneSegment

    phone, audio = s.phone, s.phone.audio
    if len(args) > 1 or (args and not (args[0].isdigit() and
                                       1 <= int(args[0]) <= len(phone.terminals))):
        return fail(f"test audio: give a handset number 1-{len(phone.terminals)}, or none"
                    if len(phone.terminals) > 1 else "test audio: takes no argument")
    index = int(args[0]) - 1 if args else 0
    if phone.calls or any(t.call or t.alerting for t in phone.terminals):
        return fail("test audio: not during a call (the call's audio would be cut)")
    paths = ["handset", "headset", "speaker"] if audio is not None else ["earpiece"]
    tone = [ToneSegment(1000, 0, 800, 200)]
    engine = phone.engine

    def on_path(path: str) -> Callable[[], None]:
        def act() -> None:
            if s.loopback is not None:
                s.loopback(False, terminal=index)
            if audio is not None:
                audio.route(path)
            engine.open_audio_path(terminal=index)
            engine.play_tone("test", tone, True, terminal=index)
        return act

    def loopback() -> None:
        engine.stop_tone(terminal=index)
        if s.loopback is not None:
            s.loopback(True, terminal=index)

    def done() -> None:
        engine.stop_tone(terminal=index)
        if s.loopback is not None:
            s.loopback(False, terminal=index)
        engine.close_audio_path(terminal=index)  # the terminal opens it again if it wants it
        for terminal in phone.terminals:
            terminal.forget_audio_path()
        phone.refresh()

    where = f" of handset {index + 1}" if len(phone.terminals) > 1 else ""
    steps = [(f"1 kHz tone on the {p}{where}", on_path(p)) for p in paths]
    if s.loopback is not None:
        steps.append((f"loopback{where}: the microphone to the earpiece", loopback))
    return Reply(True, ["testing audio; press any key to stop"],
                 stream=_Cycle(phone, steps, done, 3.0))


@command("test headset", "test headset", "how the headset is detected, and whether it is in")
async def _test_headset(s: Services, args: list[str]) -> Reply:
    audio = s.phone.audio
    if audio is None:
        return Reply(True, ["headset detection: none on this board (simulated audio)"],
                     {"detection": "none"})
    status = audio.status()
    return Reply(True, [f"headset detection: {status['headset_detection']}",
                        f"headset: {'plugged in' if status['headset_plugged'] else 'out'}",
                        f"audio path now: {status['path']}"], {"audio": status})


# --- reboot, factory reset, firmware ------------------------------------------------------------


@command("reboot", "reboot", "restart the phone (calls end)")
async def _reboot(s: Services, args: list[str]) -> Reply:
    calls = len(s.phone.calls)
    s.phone.clock.call_later(0.5, lambda: s.restart("reboot from the console"))
    return Reply(True, ["restarting" + (f"; {calls} call(s) end" if calls else "")])


@command("factory-reset", f'factory-reset "{CONFIRM_FACTORY_RESET}"',
         "erase settings, history, contacts, voicemail, provisioning state; then restart")
async def _factory_reset(s: Services, args: list[str]) -> Reply:
    if " ".join(args) != CONFIRM_FACTORY_RESET:
        return fail(f'factory-reset erases this phone\'s data. To go on, type: factory-reset '
                    f'{CONFIRM_FACTORY_RESET}')
    atomic_write_json(s.data_dir / FACTORY_RESET_MARK, {"at": time.time()})
    s.phone.clock.call_later(0.5, lambda: s.restart("factory reset from the console"))
    return Reply(True, ["erasing at restart; the device key and the firmware stay",
                        "restarting"])


def wipe_for_factory_reset(data_dir: Path) -> list[str]:
    """At start, when FACTORY_RESET is there: remove everything but the device key and the
    firmware slots, the mark last (a power cut in between just wipes again)."""
    import shutil

    mark = data_dir / FACTORY_RESET_MARK
    if not mark.exists():
        return []
    removed = []
    keep = {data_dir / k for k in KEPT_BY_FACTORY_RESET}
    for path in sorted(data_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path == mark or any(path == k or k in path.parents or path in k.parents
                               for k in keep):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(str(path.relative_to(data_dir)))
    mark.unlink()
    return removed


@command("fw", "fw", "firmware: running version, the two slots")
async def _fw(s: Services, args: list[str]) -> Reply:
    if args:
        return fail(f"fw: unknown subcommand {args[0][:20]!r} (help fw)")
    if s.firmware is None:
        return fail("firmware slots are not in use on this phone")
    status = s.firmware.status()
    lines = [f"running {status['running']} in slot {status['slot']}"
             + ("" if status["confirmed"] else f" (on trial, {status['tries_left']} boots left)")]
    lines += [f"  slot {name}: {info['version'] or '-'} ({info['state']})"
              for name, info in sorted(status["slots"].items())]
    if status.get("pending"):
        lines.append(f"next start: slot {status['pending']}")
    if status.get("update"):
        lines.append(f"last update: {status['update']['action']}: {status['update']['message']}")
    return Reply(True, lines, {"firmware": status})


@command("fw rollback", "fw rollback", "start the other (good) firmware at the next start")
async def _fw_rollback(s: Services, args: list[str]) -> Reply:
    from provisioning.firmware import FirmwareError

    if s.firmware is None:
        return fail("firmware slots are not in use on this phone")
    try:
        s.firmware.slots.rollback()
    except FirmwareError as exc:
        return fail(f"fw rollback: {exc}")
    return Reply(True, ["rollback set: the other slot runs after a restart (reboot)"],
                 {"firmware": s.firmware.status()})


# --- the DECT base --------------------------------------------------------------------------------


def _dect(s: Services) -> DectBase | Reply:
    return s.dect if s.dect is not None else fail("this is not a DECT base")


@command("dect", "dect", "the DECT base: radio link, registration window, handsets")
async def _dect_status(s: Services, args: list[str]) -> Reply:
    base = _dect(s)
    if isinstance(base, Reply):
        return base
    if args:
        return fail(f"dect: unknown subcommand {args[0][:20]!r} (help dect)")
    status = base.status()
    link, window = status["link"], status["window"]
    lines = [f"radio: {'up' if link['up'] else 'DOWN'} ({link['reason']})",
             "registration window: " + (f"open, {window['seconds_left']} s left"
                                        if window["open"] else "closed")]
    if status["last_registration"]:
        lines.append(f"last: {status['last_registration']}")
    lines.append("handsets:" if status["handsets"] else "handsets: none registered")
    lines += [f"  {h['number']} {h['name']}: line {h['line'] or '-'}"
              + (", off hook" if h["offhook"] else "")
              + (f", audio channel {h['audio_channel']}" if h["audio_channel"] is not None
                 else "") for h in status["handsets"]]
    return Reply(True, lines, {"dect": status})


@command("dect window", "dect window", "open the registration window (the system PIN)")
async def _dect_window(s: Services, args: list[str]) -> Reply:
    base = _dect(s)
    if isinstance(base, Reply):
        return base
    problem = base.open_window()
    if problem:
        return fail(f"dect window: {problem}")
    seconds = s.phone.config.dect.window_seconds
    return Reply(True, [f"registration window open for {seconds} s: register the handset "
                        "with the system PIN"], {"seconds": seconds})


@command("dect close", "dect close", "close the registration window")
async def _dect_close(s: Services, args: list[str]) -> Reply:
    base = _dect(s)
    if isinstance(base, Reply):
        return base
    base.close_window()
    return Reply(True, ["registration window closed"])


@command("dect deregister", "dect deregister NUMBER", "remove a handset from the base")
async def _dect_deregister(s: Services, args: list[str]) -> Reply:
    base = _dect(s)
    if isinstance(base, Reply):
        return base
    if len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= 6:
        return fail("dect deregister: NUMBER must be a handset number from 1 to 6")
    problem = base.deregister(int(args[0]))
    if problem:
        return fail(f"dect deregister: {problem}")
    return Reply(True, [f"handset {args[0]}: de-registering"])

