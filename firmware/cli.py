"""`luren`: run a phone, run the simulated office, or check a config file."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Any

from firmware.config import (
    ConfigError,
    PhoneConfig,
    dump_default_config,
    load_config,
    parse_config,
)
from firmware.config.load import load_document, parse_table
from firmware.config.schema import ProvisioningConfig

DEFAULT_DATA_DIR = Path("/var/lib/luren")


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="luren", description="Luren: open firmware for SIP desk phones and DECT bases.")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one phone",
                         description="Run one phone: registers its lines, serves the control "
                                     "API, and runs until SIGINT/SIGTERM.")
    run.add_argument("--board", default="sim", metavar="PROFILE",
                     help="board profile: a name (sim, rpi-deskphone, rpi-deskphone-oled, "
                          "rpi-deskphone-mcu) or a .toml file; see docs/boards.md")
    run.add_argument("--config", type=Path, required=True, help="the phone's TOML config")
    run.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                     help=f"where the phone keeps its state (default {DEFAULT_DATA_DIR})")
    run.add_argument("--api", type=_host_port, default=None, metavar="HOST:PORT",
                     help="control API address (default: api.listen from the config; "
                          "port 0 picks a free one)")
    run.add_argument("--test-clock", action="store_true",
                     help="allow POST /api/v1/clock/advance (tests and benchmarks only)")

    office = sub.add_parser("office", help="run the simulated office",
                            description="A local Kamailio PBX on loopback and two simulated "
                                        "desk phones, 1001 and 1002, with a terminal front "
                                        "panel for 1001. Ctrl-C stops everything.")
    office.add_argument("--data-dir", type=Path, default=None,
                        help="where the office keeps its files (default: a temporary folder)")
    office.add_argument("--answer-after-rings", type=int, default=2, metavar="N",
                        help="1002 answers after N rings; 0 = never (default 2)")
    office.add_argument("--no-panel", action="store_true",
                        help="no front panel: run until Ctrl-C (for scripts)")

    config = sub.add_parser("config", help="check a config file or print the default one")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)
    config_sub.add_parser("default", help="print a commented default config")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from board.profile import ProfileError, load_profile
    from firmware.runtime import REBOOT_EXIT, RunOptions, run_phone  # pjsua2 loads here

    try:
        board = load_profile(args.board)
    except ProfileError as exc:
        print(f"luren: invalid board profile, nothing was changed:\n{exc}", file=sys.stderr)
        return 2
    from firmware.console.commands import wipe_for_factory_reset
    from provisioning.firmware import FirmwareError
    from provisioning.updater import FirmwareUpdater

    wiped = wipe_for_factory_reset(args.data_dir)
    if wiped:
        logging.getLogger("luren").warning("factory reset: %d files and folders erased",
                                           len(wiped))
    config, provisioned = _provision(args.config, args.data_dir, board.name)
    try:
        firmware = FirmwareUpdater.power_on(args.data_dir)
    except (FirmwareError, OSError) as exc:
        print(f"luren: the firmware slots cannot be read: {exc}", file=sys.stderr)
        return 2
    host, port = args.api or _host_port(config.api.listen)
    if not _is_loopback(host) and not config.api.token:
        print(f"luren: the control API on {host} needs api.token in the config "
              "(refusing to serve an open API beyond loopback)", file=sys.stderr)
        return 2
    rediscover = provisioned if callable(provisioned) else None
    options = RunOptions(config=config, data_dir=args.data_dir, api_host=host, api_port=port,
                         board=board, test_clock=args.test_clock,
                         provisioning=None if rediscover else provisioned, firmware=firmware,
                         rediscover=rediscover)
    code = asyncio.run(run_phone(options))
    if code == REBOOT_EXIT:
        # A restart the phone asked for: the same command as a fresh process (same PID), so
        # the config, the provisioning and the firmware slot are all read again.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "firmware.cli", *args.argv])
    return code


def _provision(path: Path, data_dir: Path, model: str) -> tuple[PhoneConfig, Any]:
    """The config file, and with `[provisioning] url` the provisioned files over it
    (docs/provisioning.md): (the config to start on, the provisioning state; or, when
    discovery found no server, a function that looks again; or None).
    Raises ConfigError when nothing valid is left."""
    from provisioning.client import ProvisioningClient, interface_mac, normalise_mac
    from provisioning.discovery import discover
    from provisioning.resync import Provisioned

    document = load_document(path)
    settings = parse_table(ProvisioningConfig, document.get("provisioning", {}),
                           "provisioning", str(path))
    if not settings.url and not settings.discovery:
        return parse_config(document, str(path)), None
    mac = normalise_mac(settings.mac) if settings.mac else interface_mac()
    model = settings.model or model
    if not settings.url:
        sip = document.get("sip", {})
        bind = str(sip.get("bind_address", "")) if isinstance(sip, dict) else ""
        found = discover(settings, data_dir, mac=mac, model=model, bind_address=bind)
        if found is None:
            return parse_config(document, str(path)), lambda: discover(
                settings, data_dir, mac=mac, model=model, bind_address=bind)
        document = {**document, "provisioning": {**document.get("provisioning", {}),
                                                 "url": found.url}}
    client = ProvisioningClient(data_dir, model=model, mac=mac)
    config, outcome = client.run(document)
    return config, Provisioned(client, document, outcome)


def _cmd_office(args: argparse.Namespace) -> int:
    from tools.office import run_office

    return run_office(args.data_dir, args.answer_after_rings, panel=not args.no_panel)


def _cmd_config(args: argparse.Namespace) -> int:
    if args.config_command == "default":
        sys.stdout.write(dump_default_config())
        return 0
    load_config(args.file)
    print(f"{args.file}: OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {"run": _cmd_run, "office": _cmd_office, "config": _cmd_config}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print(f"luren: invalid configuration, nothing was changed:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
