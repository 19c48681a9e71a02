"""The provisioning server's command line: check-sync against a tiny real SIP responder on
loopback, usage errors of check-sync and serve, and the renderer's ETag-safe mtimes."""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provisioning.pnp import SipMessage, parse_message
from provisioning.server.cli import main
from provisioning.server.https import make_ca
from provisioning.server.inventory import Inventory
from provisioning.server.render import _write_atomic, render_tree
from tools.pbx.ports import free_port

DOMAIN = "pbx.example.se"
Answer = Callable[[str], "tuple[int, str] | None"]


def default_answer(user: str) -> tuple[int, str] | None:
    """1001 has a phone, 1002 does not, 1003 gets no answer at all."""
    return {"1001": (200, "OK"), "1002": (404, "Not Found")}.get(user)


def user_of(notify: SipMessage) -> str:
    """``1001`` of ``NOTIFY sip:1001@pbx.example.se``."""
    return (notify.uri or "").split(":", 1)[1].split("@", 1)[0]


class FakePbx:
    """A UDP SIP peer on 127.0.0.1 answering NOTIFYs as ``answer(user)`` says (None: silence).

    ``notifies`` holds every NOTIFY received (parsed); ``hold_until_users`` makes it answer
    nothing until that many different users are waiting, then answer them all.
    """

    def __init__(self, answer: Answer = default_answer, *, hold_until_users: int = 0) -> None:
        self.answer = answer
        self.hold_until_users = hold_until_users
        self.notifies: list[SipMessage] = []
        self._held: dict[str, tuple[bytes, tuple[str, int]]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="fake-pbx", daemon=True)

    def __enter__(self) -> FakePbx:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        for sock in (self.sock, self._wake_r, self._wake_w):
            sock.close()

    def users(self) -> list[str]:
        """The users the NOTIFYs were for, in arrival order (retransmissions included)."""
        return [user_of(msg) for msg in self.notifies]

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return
                    data, addr = self.sock.recvfrom(65535)
                    self._handle(data, addr)

    def _handle(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_message(data)
        if msg is None or msg.method != "NOTIFY" or msg.uri is None:
            return
        self.notifies.append(msg)
        user = user_of(msg)
        if self.hold_until_users:
            self._held[user] = (data, addr)
            if len(self._held) < self.hold_until_users:
                return
            held, self._held, self.hold_until_users = self._held, {}, 0
            for waiting, (request, source) in held.items():
                self._reply(waiting, request, source)
            return
        self._reply(user, data, addr)

    def _reply(self, user: str, data: bytes, addr: tuple[str, int]) -> None:
        found = self.answer(user)
        msg = parse_message(data)
        if found is None or msg is None:
            return
        status, reason = found
        lines = [f"SIP/2.0 {status} {reason}", *(f"Via: {via}" for via in msg.all("via")),
                 f"From: {msg.header('from')}", f"To: {msg.header('to')};tag=fake",
                 f"Call-ID: {msg.header('call-id')}", f"CSeq: {msg.header('cseq')}",
                 "Content-Length: 0"]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)


@pytest.fixture
def pbx() -> Iterator[FakePbx]:
    with FakePbx() as fake:
        yield fake


def check_sync(db: Path, pbx: FakePbx, *args: str, timeout: str = "0.6") -> int:
    return main(["--db", str(db), "check-sync", "--pbx", f"127.0.0.1:{pbx.port}",
                 "--domain", DOMAIN, "--timeout", timeout, *args])


# -- check-sync -----------------------------------------------------------------------------------


def test_one_line_per_user_and_exit_1_when_some_did_not_answer(
        pbx: FakePbx, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "inventory.db"
    assert check_sync(db, pbx, "1001", "1002", "1003") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["1001: 200 OK", "1002: 404 Not Found",
                       f"1003: no answer from 127.0.0.1:{pbx.port} in 0.6 s"]
    assert out[3] == "1 of 3 answered 2xx"
    assert any("404: the PBX has no phone registered" in line for line in out[4:])
    assert any(line.startswith("no answer: check --pbx") for line in out[4:])
    assert not db.exists()  # users named: the inventory is not opened (nor created)


def test_exit_0_when_every_user_answered_and_the_notify_is_well_formed(
        pbx: FakePbx, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_sync(tmp_path / "inv.db", pbx, "--reboot", "1001", "1001") == 0
    assert capsys.readouterr().out.splitlines() == ["1001: 200 OK", "1 of 1 answered 2xx"]
    msg = pbx.notifies[0]
    assert msg.uri == f"sip:1001@{DOMAIN}"
    assert msg.header("event") == "check-sync;reboot=true"
    assert (msg.header("via") or "").startswith("SIP/2.0/UDP 127.0.0.1:")
    assert pbx.users() == ["1001"]  # named twice, sent once


def test_all_reads_every_line_user_from_the_inventory_once_in_order(
        pbx: FakePbx, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "inventory.db"
    with Inventory(db) as inventory:
        inventory.add_device("00:1a:2b:3c:4d:5f", "T42")
        inventory.set_line("001a2b3c4d5f", 2, "1001", "pw-a")  # the same user on two phones
        inventory.add_device("00:1a:2b:3c:4d:5e", "T42")
        inventory.set_line("001a2b3c4d5e", 2, "1003", "pw-b")
        inventory.set_line("001a2b3c4d5e", 1, "1002", "pw-c")
        inventory.set_line("001a2b3c4d5e", 3, "1001", "pw-d")
        inventory.add_device("00:1a:2b:3c:4d:60", "T42")  # no lines
    assert check_sync(db, pbx, "--all", timeout="0.3") == 1
    out = capsys.readouterr().out
    assert out.splitlines()[:4] == ["1002: 404 Not Found",
                                    f"1003: no answer from 127.0.0.1:{pbx.port} in 0.3 s",
                                    "1001: 200 OK", "1 of 3 answered 2xx"]
    assert sorted(set(pbx.users())) == ["1001", "1002", "1003"]
    assert "pw-" not in out


def test_all_with_no_lines_sends_nothing(pbx: FakePbx, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "inventory.db"
    Inventory(db).close()
    assert check_sync(db, pbx, "--all") == 0
    assert "no check-sync sent" in capsys.readouterr().out
    assert pbx.notifies == []


def test_users_are_sent_to_at_the_same_time(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    users = [str(2000 + n) for n in range(16)]
    # Nothing is answered until all 16 are waiting: one at a time, the first would time out.
    with FakePbx(lambda user: (200, "OK"), hold_until_users=len(users)) as fake:
        assert check_sync(tmp_path / "inv.db", fake, *users, timeout="5") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{user}: 200 OK" for user in users] + ["16 of 16 answered 2xx"]


@pytest.mark.parametrize("args, words", [
    (["1001", "--all"], "name the users"),
    ([], "name the users"),
    (["10 01"], "not a SIP user name"),
    (["1001@evil"], "not a SIP user name"),
    (["1001\r\nX: y"], "not a SIP user name"),
    (["--timeout", "0", "1001"], "above 0"),
    (["--timeout", "soon", "1001"], "not a number of seconds"),
    (["--domain", "bad domain", "1001"], "not a host name or IP address"),
    (["--pbx", "127.0.0.1:sip", "1001"], "the port must be a number"),
    (["--pbx", "127.0.0.1:0", "1001"], "give the PBX's SIP port"),
    (["--pbx", "[::1]5060", "1001"], "expected HOST:PORT"),
])
def test_check_sync_usage_errors_exit_2_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str) -> None:
    base = ["--db", str(tmp_path / "inv.db"), "check-sync", "--pbx", "127.0.0.1:5060",
            "--domain", DOMAIN]
    assert main(base + args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert words in captured.err and len(captured.err.strip().splitlines()) == 1


def test_a_bad_user_in_the_inventory_is_reported_not_sent(
        pbx: FakePbx, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "inventory.db"
    with Inventory(db) as inventory:
        inventory.add_device("001a2b3c4d5e", "T42")
        inventory.set_line("001a2b3c4d5e", 1, "1001", "pw")
        inventory.set_line("001a2b3c4d5e", 2, "anna svensson", "pw")
    assert check_sync(db, pbx, "--all") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "1001: 200 OK"
    assert out[1].startswith("anna svensson: not sent: not a SIP user name")
    assert pbx.users() == ["1001"]


# -- serve: what is refused before anything starts ------------------------------------------------


@pytest.mark.parametrize("args, words", [
    ([], "nothing to run"),
    (["--pnp", "http://prov.example.se/"], "only https is allowed"),
    (["--pnp", "https://prov.example.se/", "--pnp-group", "10.0.0.1:5060"], "multicast"),
    (["--pnp", "https://prov.example.se/", "--pnp-interface", "eth0"], "IPv4 address"),
    (["--redirect", "127.0.0.1:0"], "needs --redirect-cert"),
    (["--pnp", "https://prov.example.se/", "--device-ca", "ca.pem"], "only go with --redirect"),
    (["--redirect", "127.0.0.1:99999", "--redirect-cert", "c", "--redirect-key", "k",
      "--device-ca", "d", "--destinations", "j"], "the port must be a number from 0 to 65535"),
    (["--pnp", "https://prov.example.se/", "--redirect", "127.0.0.1:0", "--redirect-cert",
      "missing.pem", "--redirect-key", "k", "--device-ca", "d", "--destinations", "j"],
     "--redirect-cert missing.pem: no such file"),
])
def test_serve_usage_errors_exit_2_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        args: list[str], words: str) -> None:
    monkeypatch.chdir(tmp_path)
    Inventory(tmp_path / "inv.db").close()
    assert main(["--db", str(tmp_path / "inv.db"), "serve", *args]) == 2
    captured = capsys.readouterr()
    assert "listening" not in captured.out and "serving" not in captured.out  # nothing started
    assert words in captured.err and len(captured.err.strip().splitlines()) == 1


def redirect_args(tmp_path: Path, address: str) -> list[str]:
    """``--redirect address`` with a usable certificate, key, device CA and destinations."""
    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue(tmp_path / "pki", "redirect")
    destinations = tmp_path / "destinations.json"
    destinations.write_text('{"default": "https://prov.example.se/luren/"}')
    return ["--redirect", address, "--redirect-cert", str(cert), "--redirect-key", str(key),
            "--device-ca", str(ca.cert_path), "--destinations", str(destinations)]


def test_serve_redirect_with_an_unreachable_postgres_inventory_exits_2_without_the_password(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://prov:hunter2@127.0.0.1:{free_port()}/inv"  # nothing listens there
    assert main(["--db", url, "serve", *redirect_args(tmp_path, "127.0.0.1:0")]) == 2
    captured = capsys.readouterr()
    assert "listening" not in captured.out and "serving" not in captured.out
    assert len(captured.err.strip().splitlines()) == 1
    assert "the device inventory postgresql://prov:****@127.0.0.1:" in captured.err
    assert "could not be read" in captured.err and "hunter2" not in captured.err


def test_serve_redirect_on_a_port_in_use_exits_2_in_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Inventory(tmp_path / "inv.db").close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--db", str(tmp_path / "inv.db"), "serve",
                     *redirect_args(tmp_path, f"127.0.0.1:{port}")])
    captured = capsys.readouterr()
    assert code == 2 and "serving" not in captured.out
    assert captured.err.strip() == (
        f"provisioning.server.cli: the redirect service cannot listen on 127.0.0.1:{port}: "
        "Address already in use (give an address of this host, or 0.0.0.0 for all, and a free "
        "port; ports below 1024 need extra privileges)")


# -- render: a rewrite never keeps nginx's ETag ---------------------------------------------------


def nginx_etag(path: Path) -> str:
    """nginx's ETag: the whole-second mtime and the size, in hex."""
    info = path.stat()
    return f'"{int(info.st_mtime):x}-{info.st_size:x}"'


def test_same_size_rewrites_within_a_second_get_later_whole_second_mtimes(
        tmp_path: Path) -> None:
    seconds, etags = [], []
    for body in (b"version = 1\n", b"version = 2\n", b"version = 3\n"):  # the same size
        _write_atomic(tmp_path, "common.toml", body)  # three writes within milliseconds
        seconds.append(int((tmp_path / "common.toml").stat().st_mtime))
        etags.append(nginx_etag(tmp_path / "common.toml"))
    assert seconds[0] < seconds[1] < seconds[2]
    assert len(set(etags)) == 3
    assert (tmp_path / "common.toml").read_bytes() == b"version = 3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["common.toml"]  # no temp file left


def test_a_rewrite_after_the_clock_stepped_back_still_moves_the_mtime_on(tmp_path: Path) -> None:
    file = tmp_path / "001a2b3c4d5e.toml"
    file.write_bytes(b"a = 1\n")
    ahead = time.time_ns() + 3600 * 1_000_000_000  # written when the clock was an hour ahead
    os.utime(file, ns=(ahead, ahead))
    _write_atomic(tmp_path, file.name, b"a = 2\n")
    assert file.stat().st_mtime_ns == ahead + 1_000_000_000
    assert oct(file.stat().st_mode & 0o777) == "0o644"


def test_publish_of_a_same_size_change_gives_a_new_nginx_etag(tmp_path: Path) -> None:
    out = tmp_path / "tree"
    with Inventory(tmp_path / "inventory.db") as inventory:
        inventory.set_common('[device]\nlanguage = "en"\n')
        first = render_tree(inventory, out, signer=lambda body: body)
        before = nginx_etag(out / "common.toml")
        inventory.set_common('[device]\nlanguage = "sv"\n')
        second = render_tree(inventory, out, signer=lambda body: body)
        after = nginx_etag(out / "common.toml")
        third = render_tree(inventory, out, signer=lambda body: body)
    assert "common.toml" in first.written and "common.toml" in second.written
    assert before != after
    assert "common.toml" in third.unchanged and nginx_etag(out / "common.toml") == after
