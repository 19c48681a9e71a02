"""Runs one phone: config, clock, board, SIP engine, controller and control API on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serial import SerialException

from audio.setup import build_audio
from audio.voice_channels import build_voice_channels
from board.profile import BoardProfile, build_board, load_profile
from firmware.api import ControlApi
from firmware.clock import Clock
from firmware.config import PhoneConfig
from firmware.config.overrides import OVERRIDES_FILE, OverrideStore, needs_restart
from firmware.config.schema import split_host_port
from firmware.console.masking import Masker
from firmware.console.service import (
    ConsoleService,
    install_log_buffer,
    make_services,
    phone_secrets,
)
from firmware.phone import Phone
from firmware.sip import events as ev
from firmware.sip.dialog_watch import DialogWatcher
from firmware.sip.dialoginfo import Ringing
from firmware.sip.engine import SipEngine
from firmware.sip.uri import host_port
from firmware.storage import atomic_write_json

if TYPE_CHECKING:
    from firmware.dect_base import DectBase
    from provisioning.client import Outcome
    from provisioning.discovery import Found
    from provisioning.resync import Provisioned, ProvisioningSync
    from provisioning.updater import FirmwareUpdater

log = logging.getLogger("luren.runtime")
READY_FILE = "run/ready.json"
REBOOT_EXIT = 3
"""run_phone's exit code when the phone asked to be restarted (check-sync reboot=true, a
firmware switch): `luren run` starts itself again, as a fresh process."""


@dataclass(frozen=True)
class RunOptions:
    config: PhoneConfig
    data_dir: Path
    api_host: str
    api_port: int
    board: BoardProfile | None = None  # None: the simulated board
    test_clock: bool = False
    provisioning: Provisioned | None = None  # the start-up run, with `[provisioning] url`
    firmware: FirmwareUpdater | None = None  # the slots, booted at start (luren run)
    rediscover: Callable[[], Found | None] | None = None  # discovery found nothing at start


async def run_phone(options: RunOptions) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    loop = asyncio.get_running_loop()
    options.data_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock(loop)
    phone_box: list[Phone] = []

    def sink(event: ev.SipEvent) -> None:
        loop.call_soon_threadsafe(phone_box[0].on_sip_event, event)

    masker = Masker(phone_secrets(options.config))
    log_buffer = install_log_buffer(masker)
    profile = options.board or load_profile("sim")
    dect: DectBase | None = None
    try:
        if profile.kind == "dect-base":
            dect = _open_dect(profile, options.config, clock, loop)
            board: Any = None
            boards = dect.boards
        else:
            board = build_board(profile, clock, loop.call_soon_threadsafe)
            boards = [board]
        audio = build_audio(profile.audio, options.data_dir, loop.call_soon_threadsafe,
                            gpio=getattr(board, "gpio", None), clock=clock)
        voice = (build_voice_channels(profile.audio, len(boards), loop.call_soon_threadsafe)
                 if dect is not None else None)
    except (OSError, RuntimeError, ValueError, SerialException) as exc:
        log.error("the board cannot start: %s", exc)
        return 1
    overrides = OverrideStore(options.data_dir / OVERRIDES_FILE, base=options.config)
    prov = options.provisioning
    if prov is not None:
        overrides.locked = prov.client.locked
        if prov.outcome.changed and prov.client.reset:
            overrides.drop(prov.client.reset)
    config = overrides.apply()  # the provisioned file, and the user's changes on top
    ends = voice.ends if voice is not None else audio.ends if audio is not None else None
    engine = SipEngine(config, sink, options.data_dir, ends, terminals=len(boards))
    phone = Phone(config, clock, engine, boards, audio=audio, data_dir=options.data_dir,
                  overrides=overrides,
                  terminal_lines=dect.terminal_lines() if dect is not None else None)
    phone_box.append(phone)
    if dect is not None:
        dect.attach(phone, voice)
    stop = asyncio.Event()
    reboot: list[str] = []

    def restart(why: str) -> None:
        log.warning("restarting: %s", why)
        reboot.append(why)
        stop.set()

    updater = options.firmware
    if updater is not None:
        phone.firmware_status = updater.status
        phone.on_all_registered = updater.confirm
    sync = (_start_sync(prov, phone, overrides, clock, restart, updater, options.data_dir)
            if prov is not None else None)
    if options.rediscover is not None:
        _keep_discovering(options.rediscover, phone, clock, restart)
    if voice is not None:
        voice.start()
    if audio is not None:
        audio.on_failure = phone.audio_failed
        audio.on_headset = phone.headset_changed
        audio.start()
        if audio.jack is not None:
            phone.headset_detected(audio.detection, audio.headset_plugged)
    try:
        await loop.run_in_executor(None, engine.start)
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    phone.start()
    watchers = [await _start_blf(config, phone, loop)]
    phone.on_lists_changed = lambda old, new: _reload_lists(phone, watchers, old, new, loop)
    ldap = await loop.run_in_executor(None, phone.fetch_ldap_directory)
    if ldap is not None:
        phone.directory.set_company(ldap)
    services = make_services(
        phone, options.data_dir, masker, log_buffer, sip_trace=engine.sip_trace,
        provision_now=sync.run_now if sync is not None else None, restart=restart,
        firmware=updater, loopback=engine.loopback, dect=dect)
    console = ConsoleService(services)
    console.start(config, profile, clock, f"{profile.name}, {_mac_of(prov)}")
    phone.on_config_applied = _config_listeners(console, dect)
    api = ControlApi(phone, lambda: asyncio.wrap_future(engine.stats()),
                     options.config.api.token, options.test_clock,
                     provision_now=sync.run_now if sync is not None else None,
                     commands=services)
    try:
        api_port = await api.server.start(options.api_host, options.api_port)
    except OSError as exc:
        log.error("control API cannot listen on %s:%d: %s", options.api_host, options.api_port,
                  exc.strerror)
        console.stop()
        await loop.run_in_executor(None, engine.stop)
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _announce(options, engine.sip_port, api_port, console.port_name)
    await stop.wait()
    log.info("stopping")
    if sync is not None:
        sync.stop()
    console.stop()
    phone.stop()
    if watchers[0] is not None:
        await watchers[0].close()
    await api.server.stop()
    await loop.run_in_executor(None, engine.stop)
    await asyncio.sleep(0)  # the engine's last events (calls ending) reach the controller
    phone.close()
    if audio is not None:
        audio.stop()
    if voice is not None:
        voice.stop()
    if board is not None:
        board.close()
    if dect is not None:
        dect.radio.close()
    with contextlib.suppress(FileNotFoundError):
        (options.data_dir / READY_FILE).unlink()
    return REBOOT_EXIT if reboot else 0


async def _start_blf(config: PhoneConfig, phone: Phone,
                     loop: asyncio.AbstractEventLoop) -> DialogWatcher | None:
    """Watch the BLF keys' colleagues through the first line (docs/blf.md)."""
    if not config.blf or not config.lines:
        return None
    line = config.lines[0]
    host, port = split_host_port(host_port(line.outbound_proxy_uri or line.registrar_uri))
    domain = host_port(line.registrar_uri).rsplit(":", 1)[0]
    bind = config.sip.bind_address
    watcher = DialogWatcher(
        loop, line.user, line.auth_name, line.password, domain, host, port or 5060,
        lambda user, state, detail: phone.blf_changed(
            user, state, detail.caller_user if detail is not None else "", _pickup(detail)),
        local_host="127.0.0.1" if bind in ("0.0.0.0", "") else bind, transport=line.transport)
    try:
        await watcher.start()
    except OSError as exc:
        log.error("BLF keys cannot watch their colleagues: %s", exc)
        return None
    for blf in config.blf:
        watcher.watch(blf.user)
    return watcher


def _open_dect(profile: BoardProfile, config: PhoneConfig, clock: Clock,
               loop: asyncio.AbstractEventLoop) -> DectBase:
    """The DECT base: its radio module on the configured port (or the profile's)."""
    from board.dect.radio import DectRadio
    from firmware.dect_base import DectBase

    port = config.dect.port or (profile.dect.port if profile.dect is not None else "")
    if not port:
        raise ValueError("a dect-base needs its radio's port (dect.port, or the profile's)")
    radio = DectRadio.open(port, clock, dispatch=loop.call_soon_threadsafe)
    base = DectBase(radio, config)
    radio.start()
    log.info("DECT radio on %s", port)
    return base


def _config_listeners(console: ConsoleService, dect: DectBase | None
                      ) -> Callable[[PhoneConfig], None]:
    def changed(config: PhoneConfig) -> None:
        console.config_changed(config)
        if dect is not None:
            dect.config_changed(config)
    return changed


_reloads: set[asyncio.Task[None]] = set()
REDISCOVER_FIRST_S, REDISCOVER_MAX_S = 60.0, 900.0


def _keep_discovering(find: Callable[[], Found | None], phone: Phone, clock: Clock,
                      restart: Callable[[str], None]) -> None:
    """No provisioning server was found at start: look again (1 min, doubling to 15 min) and
    restart the phone into the normal provisioned start once one answers."""
    delay = [REDISCOVER_FIRST_S]

    def report() -> None:
        phone.provisioning = {"ok": False, "url": "", "from_cache": False,
                              "message": "no provisioning server found; looking again in "
                                         f"{delay[0] / 60:.0f} min"}
        phone.refresh()

    async def look() -> None:
        found = await asyncio.get_running_loop().run_in_executor(None, find)
        if found is not None:
            restart(f"provisioning server found by {found.source}: {found.url}")
            return
        delay[0] = min(delay[0] * 2, REDISCOVER_MAX_S)
        report()
        clock.call_later(delay[0], due)

    def due() -> None:
        task = asyncio.get_running_loop().create_task(look())
        _reloads.add(task)
        task.add_done_callback(_reloads.discard)

    report()
    clock.call_later(delay[0], due)


def _reload_lists(phone: Phone, watchers: list[DialogWatcher | None], old: PhoneConfig,
                  new: PhoneConfig, loop: asyncio.AbstractEventLoop) -> None:
    """A new config changed the BLF keys, the line they watch through, or the directory:
    watch anew, fetch the LDAP directory again (in the background)."""
    async def reload() -> None:
        if new.blf != old.blf or new.lines[:1] != old.lines[:1]:
            if watchers[0] is not None:
                await watchers[0].close()
            wanted = {blf.user for blf in new.blf}
            for user in [user for user in phone.blf if user not in wanted]:
                del phone.blf[user]
            watchers[0] = await _start_blf(new, phone, loop)
            log.info("BLF keys: watching %s", ", ".join(sorted(wanted)) or "nobody")
        if new.directory != old.directory and new.directory.ldap_url:
            ldap = await loop.run_in_executor(None, phone.fetch_ldap_directory)
            if ldap is not None:
                phone.directory.set_company(ldap)
        phone.refresh()

    task = loop.create_task(reload())
    _reloads.add(task)
    task.add_done_callback(_reloads.discard)


def _start_sync(prov: Provisioned, phone: Phone, overrides: OverrideStore,
                clock: Clock, restart: Callable[[str], None], updater: FirmwareUpdater | None,
                data_dir: Path) -> ProvisioningSync:
    """Provisioning while running: new files are taken on live where the phone can, the keys
    that need a restart are reported, a new firmware version is installed and restarted into
    when the phone is idle (docs/provisioning.md)."""
    from provisioning.resync import ProvisioningSync

    phone.provisioning = prov.status()
    tasks: set[asyncio.Task[None]] = set()

    def background(coroutine: Any) -> None:
        tasks.add(task := asyncio.get_running_loop().create_task(coroutine))
        task.add_done_callback(tasks.discard)

    async def update_firmware() -> None:
        if updater is None:
            return
        wanted = phone.config.firmware
        updater.slots.max_tries = wanted.max_boot_tries
        result = await asyncio.get_running_loop().run_in_executor(
            None, updater.update, wanted, phone.config.provisioning,
            data_dir / "provisioning" / "firmware-download")
        if result.restart:
            restart_when_idle(f"firmware {wanted.version} installed")

    def restart_when_idle(why: str) -> None:
        if phone.calls:
            log.info("%s: restarting once the calls have ended", why)
            clock.call_later(30, lambda: restart_when_idle(why))
        else:
            restart(why)

    def apply(config: PhoneConfig | None, outcome: Outcome) -> None:
        status = {**prov.status(), **outcome.as_dict()}
        if config is not None:
            overrides.locked = prov.client.locked
            if prov.client.reset:
                overrides.drop(prov.client.reset)
            effective = overrides.apply(config)
            status["restart_needed"] = needs_restart(phone.config, effective)
            phone.apply_config(effective)
            background(update_firmware())
        else:
            status["restart_needed"] = phone.provisioning.get("restart_needed", [])
        phone.provisioning = status
        phone.refresh()

    settings = prov.client.settings(prov.document)
    sync = ProvisioningSync(prov.client, prov.document, clock=clock, apply=apply,
                            minutes=settings.resync_minutes,
                            spread_minutes=settings.resync_spread_minutes)
    sync.start(failed=not prov.outcome.ok)

    def check_sync(event: ev.CheckSyncRequested) -> None:
        async def run() -> None:
            outcome = await sync.run_now()
            phone.provisioning = {**phone.provisioning,
                                  "check_sync": {"from": event.source, "reboot": event.reboot,
                                                 "at": clock.wall_time().isoformat(
                                                     timespec="seconds")}}
            if not event.reboot:
                return
            if not settings.check_sync_reboot:
                log.warning("check-sync from %s asked for a reboot: not allowed "
                            "(provisioning.check_sync_reboot is off)", event.source)
            elif phone.calls:
                log.warning("check-sync reboot put off: a call is going on")
            else:
                restart(f"check-sync from {event.source} with reboot=true "
                        f"({'files taken' if outcome.ok else outcome.message})")

        background(run())

    phone.on_check_sync = check_sync
    background(update_firmware())  # what the start-up run asked for
    return sync


def _mac_of(prov: Provisioned | None) -> str:
    if prov is not None and prov.client.mac:
        mac = prov.client.mac
        return ":".join(mac[i:i + 2] for i in range(0, 12, 2))
    return "no MAC known"


def _pickup(ringing: Ringing | None) -> ev.Pickup | None:
    if ringing is None or not (ringing.call_id and ringing.local_tag and ringing.remote_tag):
        return None
    return ev.Pickup(ringing.call_id, ringing.local_tag, ringing.remote_tag)


def _announce(options: RunOptions, sip_port: int, api_port: int, console: str) -> None:
    """Tell launchers and tests where the phone listens (atomically, in the data dir)."""
    info = {"pid": os.getpid(), "sip_port": sip_port,
            "api": f"http://{options.api_host}:{api_port}", "boot_id": secrets.token_hex(6),
            "console": console}
    atomic_write_json(options.data_dir / READY_FILE, info)
    log.info("phone ready: SIP on port %d, control API on %s", sip_port, info["api"])
