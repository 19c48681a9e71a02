"""Command line for the device inventory and publishing: ``python -m provisioning.server.cli``.

::

    --db DB add-device MAC MODEL [--name N] [--public-key TEXT] [--cert-sha256 HEX] [--secret S]
    --db DB set-line MAC INDEX USER PASSWORD [--display-name D] [--registrar R] [--label L]
    --db DB remove-device MAC
    --db DB list
    --db DB set-model MODEL FILE
    --db DB set-common FILE
    --db DB publish OUT_DIR --sign-key PATH [--site KEY=VALUE ...] [--no-validate]

DB is the inventory's SQLite file, or a PostgreSQL URL (``postgresql://user@host:5432/dbname``).
Keep the database password out of the URL, where the process list shows it: libpq reads it from
``~/.pgpass`` (or the file ``PGPASSFILE`` names) or ``PGPASSWORD``. A password in the URL is
masked in every message.

A PASSWORD (and ``--secret``) of ``-`` is read from the first line of standard input, which keeps
it out of the shell history and the process list. ``list`` never prints passwords or secrets.
``publish`` does not encrypt yet: every device's SIP passwords are withheld from the tree.

Exit codes: 0 done; 1 published, but some devices had errors (listed on stderr); 2 usage or
input error, with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from provisioning.server.backends import database_errors
from provisioning.server.inventory import Device, Inventory
from provisioning.server.render import render_tree

PROG = "provisioning.server.cli"
MASK = "****"


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


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Manage the device inventory and publish the "
                     "signed provisioning tree.")
    parser.add_argument("--db", required=True, metavar="DB",
                        help="the inventory: a SQLite file, or a PostgreSQL URL "
                        "postgresql://USER@HOST[:PORT]/DBNAME (the password from ~/.pgpass or "
                        "PGPASSWORD, not the URL, which the process list shows)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, run: Callable[[Inventory, argparse.Namespace], int],
                text: str) -> _Parser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(run=run)
        return sub

    sub = command("add-device", _add_device, "Add a phone.")
    sub.add_argument("mac")
    sub.add_argument("model")
    sub.add_argument("--name", default="")
    sub.add_argument("--public-key", default="", help="the device's X25519 public key")
    sub.add_argument("--cert-sha256", default="", help="SHA-256 of the device certificate")
    sub.add_argument("--secret", default="", help="per-device secret; - reads it from stdin")

    sub = command("set-line", _set_line, "Add or replace a SIP line of a phone.")
    sub.add_argument("mac")
    sub.add_argument("index", type=int, help="1 to 16")
    sub.add_argument("user")
    sub.add_argument("password", help="- reads it from stdin")
    sub.add_argument("--display-name", default="")
    sub.add_argument("--registrar", default="", help="empty: the registrar site value")
    sub.add_argument("--label", default="")

    sub = command("remove-device", _remove_device, "Remove a phone and its lines.")
    sub.add_argument("mac")

    command("list", _list, "List the phones and lines (passwords masked).")

    sub = command("set-model", _set_model, "Set a model's TOML template from a file.")
    sub.add_argument("model")
    sub.add_argument("file")

    sub = command("set-common", _set_common, "Set the common TOML template from a file.")
    sub.add_argument("file")

    sub = command("publish", _publish, "Render the signed tree into a directory.")
    sub.add_argument("out_dir")
    sub.add_argument("--sign-key", required=True, help="the Ed25519 private key file (.key)")
    sub.add_argument("--site", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                     help="a site value for ${KEY} placeholders; registrar=... is the default "
                     "registrar of lines without one")
    sub.add_argument("--no-validate", dest="validate", action="store_false",
                     help="skip checking each device's config against the phone's schema")
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 done, 1 published with errors, 2 error)."""
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        print(f"{PROG}: {_one_line(exc)} (try --help)", file=sys.stderr)
        return 2
    try:
        with Inventory(args.db) as inventory:
            return int(args.run(inventory, args))
    except (ValueError, OSError, *database_errors()) as exc:  # psycopg's only once imported
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
