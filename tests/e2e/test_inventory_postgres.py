"""The inventory on a real PostgreSQL server: the SQLite contract tests, and what only a server
database has (a URL with a password, writers on several connections, collation, NUL).

The contract tests are the unit tests of ``tests/unit/test_prov_server.py`` that take the
``inventory`` (or ``fleet``) fixture, imported unchanged: here ``inventory`` is a PostgreSQL
inventory in a fresh database of its own, so the same suite runs on both backends. One private
server (``tests/harness/postgres.py``) serves the whole module.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from provisioning.fetch import FetchSettings
from provisioning.redirect import RedirectError, ask_redirect
from provisioning.server.backends.postgres import LOCK_KEY
from provisioning.server.backends.urls import mask_url, scrub
from provisioning.server.cli import main
from provisioning.server.https import cert_sha256, make_ca
from provisioning.server.inventory import Inventory
from provisioning.server.redirect import Destinations, RedirectService
from tests.e2e.test_prov_server_serve import START_S, Served
from tests.harness.postgres import PostgresServer
from tests.unit.test_prov_server import (  # noqa: F401 - collected here, on PostgreSQL
    COMMON,
    MAC_A,
    MAC_B,
    MODEL_T42,
    PASSWORDS,
    fleet,
    render,
    test_add_read_and_repr_without_secrets,
    test_bad_macs_are_refused_in_words,
    test_device_broken_later_keeps_its_previous_file,
    test_duplicate_mac_is_refused_in_words,
    test_index_lists_every_file_with_sha256_and_size,
    test_invalid_device_is_reported_and_not_written,
    test_malformed_placeholder_is_refused_when_set,
    test_model_names_that_would_clash_or_escape_are_refused,
    test_model_without_template_is_an_error,
    test_one_change_rewrites_one_file_and_the_index,
    test_passwords_never_in_clear_and_withheld_listed,
    test_randomised_encryption_still_counts_as_unchanged,
    test_remove_device_takes_its_lines,
    test_removed_device_and_model_files_are_deleted,
    test_render_2000_devices,
    test_render_writes_the_signed_tree,
    test_second_render_rewrites_nothing,
    test_set_line_replaces_and_checks,
    test_update_device_changes_only_what_is_given,
    test_without_encryptor_every_password_is_withheld,
    tree_files,
)
from tools.pbx.ports import free_port
from tools.pbx.waiting import wait_until

pytestmark = pytest.mark.e2e

ODD_PASSWORD = "p@ss:w/rd%é"
"""A database password that must be percent-encoded in a URL."""


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the module."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
def inventory(database: str) -> Iterator[Inventory]:
    """A PostgreSQL inventory (overrides the unit tests' SQLite one)."""
    with Inventory(database) as inv:
        yield inv


def copy_into(source: Inventory, target: Inventory) -> None:
    """Everything in ``source`` added to the empty ``target`` through the public API."""
    target.set_common(source.common())
    for model, text in source.model_templates().items():
        target.set_model_template(model, text)
    for device in source.devices():
        target.add_device(device.mac, device.model, device.name, public_key=device.public_key,
                          cert_sha256=device.cert_sha256, secret=device.secret)
        for line in device.lines:
            target.set_line(device.mac, line.index, line.user, line.password,
                            line.display_name, line.registrar, line.label)


# --- the same data and the same tree as from SQLite ---------------------------------------------


@pytest.mark.usefixtures("fleet")
def test_postgres_and_sqlite_publish_the_same_tree(inventory: Inventory, tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as sqlite:
        copy_into(inventory, sqlite)
        assert sqlite.devices() == inventory.devices()
        assert sqlite.snapshot() == inventory.snapshot()
        from_sqlite = render(sqlite, tmp_path / "sqlite")
    from_postgres = render(inventory, tmp_path / "postgres")
    assert from_postgres.errors == {} and from_postgres.withheld == from_sqlite.withheld
    assert sorted(from_postgres.written) == sorted(from_sqlite.written)
    files = tree_files(tmp_path / "postgres")
    assert files == tree_files(tmp_path / "sqlite")
    assert len(files) == 8 and all(PASSWORDS[0].encode() not in data for data in files.values())


def test_rows_come_back_in_sqlite_order(inventory: Inventory, tmp_path: Path) -> None:
    models = ["a2", "B1", "b-3", "b.3", "A_0"]  # the server's default collation sorts a2 < B1
    for model in models:
        inventory.set_model_template(model, f"# {model}\n")
    for mac in ("02000000000b", "02000000000a", "020000000009"):
        inventory.add_device(mac, "a2")
    with Inventory(tmp_path / "inventory.db") as sqlite:
        copy_into(inventory, sqlite)
        assert list(sqlite.model_templates()) == sorted(models)  # byte order
        assert list(inventory.model_templates()) == list(sqlite.model_templates())
        assert [d.mac for d in inventory.devices()] == [d.mac for d in sqlite.devices()]


@pytest.mark.usefixtures("fleet")
def test_snapshot_and_publish_bookkeeping(inventory: Inventory) -> None:
    snap = inventory.snapshot()
    assert len(snap.devices) == 4 and snap.devices == inventory.devices()
    assert snap.common == COMMON and snap.models == inventory.model_templates()
    assert snap.models["T42"] == MODEL_T42
    inventory.record_published("/srv/a", {"x.toml": ("in1", "out1"), "y.toml": ("in2", "out2")})
    inventory.record_published("/srv/b", {"x.toml": ("in3", "out3")})
    inventory.record_published("/srv/a", {"y.toml": ("in4", "out4")})  # replaces /srv/a's
    assert inventory.published_digests("/srv/a") == {"y.toml": ("in4", "out4")}
    assert inventory.published_digests("/srv/b") == {"x.toml": ("in3", "out3")}
    assert inventory.published_digests("/srv/c") == {}


def test_inventory_persists_and_reopens(database: str) -> None:
    with Inventory(database) as inv:
        inv.add_device(MAC_A, "T42", "Reception", secret="s")
        inv.set_line(MAC_A, 3, "1003", "pw-3")
        inv.set_common("[device]\n")
    with Inventory(database) as inv:  # the tables exist: created only when missing
        device = inv.device(MAC_A)
        assert device is not None and (device.name, device.secret) == ("Reception", "s")
        assert [(line.index, line.password) for line in device.lines] == [(3, "pw-3")]
        assert inv.common() == "[device]\n"


def test_nul_in_text_is_refused_in_words(inventory: Inventory) -> None:
    with pytest.raises(ValueError, match="NUL character"):
        inventory.add_device(MAC_A, "T42", "bad\0name")
    with pytest.raises(ValueError, match="NUL character"):
        inventory.set_common("a = 1\0")
    assert inventory.devices() == [] and inventory.common() == ""


def test_line_index_that_cannot_exist_is_refused_in_words(inventory: Inventory) -> None:
    inventory.add_device(MAC_A, "T42")
    inventory.set_line(MAC_A, 1, "1001", "pw")
    for index in (0, 17, 2**70, "1", "x", True):
        with pytest.raises(ValueError, match=f"device {MAC_A} has no line"):
            inventory.remove_line(MAC_A, index)  # type: ignore[arg-type]
    device = inventory.device(MAC_A)
    assert device is not None and len(device.lines) == 1


# --- several writers --------------------------------------------------------------------------


def test_writers_on_two_connections_take_turns(postgres: PostgresServer, database: str) -> None:
    """Two connections adding the same phone at once: one adds it, the other is told in words
    (not a unique-key violation), as SQLite's BEGIN IMMEDIATE does."""
    outcomes: list[str] = []

    def add(inv: Inventory) -> None:
        try:
            inv.add_device(MAC_A, "T42")
            outcomes.append("added")
        except ValueError as exc:
            outcomes.append(str(exc))

    with Inventory(database) as one, Inventory(database) as two, \
            psycopg.connect(database, autocommit=True) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        threads = [threading.Thread(target=add, args=(inv,)) for inv in (one, two)]
        for thread in threads:
            thread.start()
        wait_for_lock_waiters(postgres, 2)  # both checked nothing yet: they wait to begin
        holder.execute("COMMIT")
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(outcomes) == ["added", f"device {MAC_A} is already in the inventory "
                                "(model T42); remove it first to add it again"]


def wait_for_lock_waiters(postgres: PostgresServer, count: int) -> None:
    """Wait until ``count`` sessions wait for the inventory's writer lock."""

    def waiting() -> bool:
        with psycopg.connect(postgres.url, autocommit=True) as db:
            row = db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                             "AND NOT granted").fetchone()
        return row is not None and row[0] >= count

    wait_until(waiting, 20, interval=0.02, what=f"{count} writers waiting for the lock")


# --- the password in the URL ------------------------------------------------------------------


def test_mask_url_hides_every_password() -> None:
    assert mask_url("postgresql://luren:s3cret@db.example:5432/inv") == \
        "postgresql://luren:****@db.example:5432/inv"
    assert mask_url("postgres://luren@h1,h2/inv?password=s3cret&sslmode=require") == \
        "postgres://luren@h1,h2/inv?password=****&sslmode=require"
    assert mask_url("postgresql:///inv?host=/run/postgresql") == \
        "postgresql:///inv?host=/run/postgresql"
    assert mask_url("postgresql://[broken") == "postgresql://****"
    url = "postgresql://u:p%40ss@h/db"
    assert scrub('bad token: "p%40ss" and "p@ss"', url) == 'bad token: "****" and "****"'


@pytest.fixture
def odd_password_url(postgres: PostgresServer, database: str) -> str:
    """``database``'s URL as a role whose password needs percent-encoding."""
    dbname = database.rsplit("/", 1)[-1]
    role = f"odd_{dbname}"
    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(ODD_PASSWORD)))
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(dbname), sql.Identifier(role)))  # may create its tables
    host = database.rpartition("@")[2]
    return f"postgresql://{role}:{quote(ODD_PASSWORD, safe='')}@{host}"


def test_password_never_in_repr_nor_errors(odd_password_url: str) -> None:
    secrets = (ODD_PASSWORD, odd_password_url.rpartition("@")[0].rpartition(":")[2],
               "w/rd", "w%2Frd")  # pieces of it, whatever the encoding
    with Inventory(odd_password_url) as inv:  # the encoded password works
        inv.add_device(MAC_A, "T42")
        shown = f"{inv!r} {inv.target}"
        assert "****@" in inv.target
    bad_urls = [odd_password_url + "_missing",  # no such database
                odd_password_url.replace("%40", "%4"),  # libpq quotes the bad token
                odd_password_url + "?frobnicate=1"]
    for url in bad_urls:
        with pytest.raises(psycopg.Error) as caught:
            Inventory(url)
        assert "cannot connect to postgresql://odd_" in str(caught.value)
        shown += str(caught.value)
    for secret in secrets:
        assert secret not in shown


def test_server_error_detail_is_not_repeated(inventory: Inventory) -> None:
    """A constraint error's DETAIL quotes the whole row (passwords included): it is dropped."""
    inventory.add_device(MAC_A, "T42")
    with pytest.raises(psycopg.errors.CheckViolation) as caught, inventory._transaction() as db:
        db.execute('INSERT INTO lines (mac, line_index, "user", password) VALUES (?, ?, ?, ?)',
                   (MAC_A, 99, "1001", "Leaky-pw"))
    assert "Leaky-pw" not in str(caught.value) and "check constraint" in str(caught.value)
    assert inventory.device(MAC_A) is not None  # the transaction was rolled back cleanly


# --- command line -----------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--db", db, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_with_a_postgres_url(database: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t42.toml").write_text(MODEL_T42)
    assert run(capsys, database, "set-model", "T42", str(tmp_path / "t42.toml"))[0] == 0
    assert run(capsys, database, "add-device", "00:1A:2B:3C:4D:5E", "T42", "--name", "Reception",
               "--secret", "dev-secret") == (0, f"added {MAC_A} (T42)\n", "")
    assert run(capsys, database, "set-line", MAC_A, "1", "1001", "Sup3r-Secret")[0] == 0
    code, out, err = run(capsys, database, "list")
    assert (code, err) == (0, "") and "Sup3r-Secret" not in out and "dev-secret" not in out
    assert out.splitlines()[0] == f'{MAC_A}  T42  "Reception"  key: no  cert: no  secret: ****'
    for argv in [("add-device", MAC_A, "T42"), ("set-line", MAC_B, "1", "1001", "pw"),
                 ("remove-device", MAC_B)]:
        code, out, err = run(capsys, database, *argv)
        assert (code, out) == (2, "") and err.count("\n") == 1, (argv, err)
        assert err.startswith("provisioning.server.cli: ") and " in the inventory" in err
    assert run(capsys, database, "remove-device", MAC_A) == (0, f"removed {MAC_A}\n", "")
    assert run(capsys, database, "list") == (0, "0 device(s)\n", "")


def test_cli_database_error_is_one_line_without_password(
        odd_password_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, odd_password_url + "_missing", "list")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith("provisioning.server.cli: cannot connect to postgresql://odd_")
    assert "does not exist" in err and ODD_PASSWORD not in err and "%40" not in err


def test_cli_publishes_from_postgres(database: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization

    from provisioning.signing import (
        decrypt_for_device,
        generate_device_key,
        generate_key,
        load_device_private_key,
        load_public_keys,
        verify,
    )

    _, site_pub = generate_key(tmp_path / "keys", "site")
    device_priv, device_pub = generate_device_key(tmp_path / "phone", "device")
    raw = serialization.load_pem_public_key(device_pub.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "sim.toml").write_text('[device]\ntone_country = "se"\n')
    db = ["--db", database]
    assert main([*db, "set-model", "sim", str(tmp_path / "sim.toml")]) == 0
    assert main([*db, "add-device", "02:00:00:00:10:01", "sim",
                 "--public-key", base64.b64encode(raw).decode()]) == 0
    assert main([*db, "set-line", "020000001001", "1", "1001", "pw-secret",
                 "--registrar", "127.0.0.1:5060"]) == 0
    out = tmp_path / "tree"
    publish = [*db, "publish", str(out), "--sign-key", str(tmp_path / "keys" / "site.key")]
    assert main(publish) == 0
    assert ", 0 withheld," in capsys.readouterr().out
    _, body = verify((out / "020000001001.toml").read_bytes(), load_public_keys([site_pub]))
    clear = decrypt_for_device(body, load_device_private_key(device_priv))
    assert tomllib.loads(clear.decode())["lines"][0]["password"] == "pw-secret"
    assert main(publish) == 0  # the digests in PostgreSQL: the encrypted file is unchanged
    assert "0 written, 4 unchanged" in capsys.readouterr().out


def test_cli_without_psycopg_for_sqlite(tmp_path: Path) -> None:
    """A SQLite inventory does not load psycopg (a fresh interpreter)."""
    code = ("import sys\nfrom provisioning.server.cli import main\n"
            f"assert main(['--db', {str(tmp_path / 'inv.db')!r}, 'list']) == 0\n"
            "print('psycopg' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2], check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "0 device(s)\nFalse\n", "")


# --- the redirect service ---------------------------------------------------------------------

SITE_URL = "https://prov.example.se/luren/"


class RedirectLab:
    """Lab certificates (a server CA, a device CA, a phone's device certificate), and the phone
    enrolled with its certificate's SHA-256 in the inventory at ``db`` by the command line."""

    def __init__(self, root: Path, db: str, mac: str = MAC_A) -> None:
        server_ca, self.device_ca = make_ca(root, name="server-ca"), make_ca(root, name="dev-ca")
        self.server_ca = server_ca.cert_path
        self.server = server_ca.issue(root, "redirect")
        self.phone = self.device_ca.issue(root, "phone", server=False)
        self.mac = mac
        assert main(["--db", db, "add-device", mac, "T42",
                     "--cert-sha256", cert_sha256(self.phone[0])]) == 0

    def settings(self, *, with_cert: bool = True) -> FetchSettings:
        cert = {"client_cert": self.phone[0], "client_key": self.phone[1]} if with_cert else {}
        return FetchSettings(ca_file=self.server_ca, timeout_s=5.0, **cert)  # type: ignore[arg-type]


def test_redirect_reads_a_postgres_inventory(database: str, tmp_path: Path) -> None:
    lab = RedirectLab(tmp_path / "pki", database)
    with RedirectService(database, Destinations(SITE_URL), cert=lab.server[0], key=lab.server[1],
                         device_ca=lab.device_ca.cert_path) as service:
        assert ask_redirect(service.url(), lab.mac, lab.settings(), tmp_path / "c1") == SITE_URL
        with pytest.raises(RedirectError, match="does not know this phone"):
            ask_redirect(service.url(), MAC_B, lab.settings(), tmp_path / "c2")
        with Inventory(database) as inv:  # an enrolment is seen at once
            inv.add_device(MAC_B, "T42", cert_sha256=cert_sha256(lab.phone[0]))
        assert ask_redirect(service.url(), MAC_B, lab.settings(), tmp_path / "c3") == SITE_URL
    assert service.server.statuses == [(f"/redirect/v1/{lab.mac}", 200),
                                       (f"/redirect/v1/{MAC_B}", 404),
                                       (f"/redirect/v1/{MAC_B}", 200)]


def test_serve_redirect_from_postgres_never_shows_the_password(
        postgres: PostgresServer, database: str, tmp_path: Path) -> None:
    lab = RedirectLab(tmp_path / "pki", database)
    destinations = tmp_path / "destinations.json"
    destinations.write_text(json.dumps({"default": SITE_URL}))
    port = free_port()
    serve = Served(["--db", database, "serve", "--redirect", f"127.0.0.1:{port}",
                    "--redirect-cert", str(lab.server[0]), "--redirect-key", str(lab.server[1]),
                    "--device-ca", str(lab.device_ca.cert_path),
                    "--destinations", str(destinations)])
    try:
        serve.wait_for("serving", START_S)
        url = f"https://127.0.0.1:{port}/"
        assert ask_redirect(url, lab.mac, lab.settings(), tmp_path / "cache") == SITE_URL
        assert "200, sent to its site default" in serve.wait_for(f"redirect for {lab.mac}", 5)
        assert serve.stop(signal.SIGTERM) == 0
    finally:
        serve.kill()
    shown = "\n".join(serve.seen + list(iter(serve.lines.get, None)))
    assert f"redirect: listening on {url} (inventory {mask_url(database)})" in shown
    assert postgres.password not in shown and "****" in shown
