"""The simulated DECT module as a service: on a pty, driven over a JSON-lines control socket.

    python -m board.dect.sim --pty-link FILE [--control SOCKET] [--state FILE]

creates a pty (raw mode), writes the slave's name to FILE (atomically, one line), serves the
control socket (`board.dect.simcontrol`) and runs until SIGTERM or SIGINT; once ready it
prints one JSON line to stdout: {"pty": "/dev/pts/N", "control": "SOCKET"}. The base opens
the pty's slave with pyserial exactly as it opens a USB-serial adapter (`dect.port`).

`SimServer` is the same thing in-process: one thread (or the caller's, with `run()`) waits
on the line, the control socket and the module's next deadline, with real monotonic time.
Anyone else touching `server.module` while it runs holds `server.lock`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import stat
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from board.dect.sim import SimDectModule
from board.dect.simcontrol import MAX_REQUEST, handle_line
from firmware.storage import atomic_write

log = logging.getLogger(__name__)

READ_CHUNK = 4096
MAX_PENDING = 64 * 1024  # bytes waiting for the base to read; beyond it output is dropped
Handler = Callable[[int], None]


def open_pty() -> tuple[int, int, str]:
    """(master fd, slave fd, slave name) of a new pty whose slave is raw (no echo, no line
    editing: the module's own HELLO must not come back to it)."""
    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)
    return master, slave, os.ttyname(slave)


class SimServer:
    """A `SimDectModule` on file descriptor `fd`, with an optional control socket."""

    def __init__(self, fd: int, *, control_path: Path | None = None,
                 state_path: Path | None = None, epoch: int | None = None,
                 monotonic: Callable[[], float] = time.monotonic, **link_options: int) -> None:
        self.fd = fd
        self.control_path = control_path
        self.pty_name: str | None = None
        self.lock = threading.RLock()
        self._monotonic = monotonic
        self._pending = bytearray()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._own_fds: list[int] = []
        self._clients: dict[socket.socket, bytearray] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        try:
            os.set_blocking(fd, False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
            self._selector.register(fd, selectors.EVENT_READ, self._on_line)
            self._listener = self._listen(control_path) if control_path is not None else None
        except BaseException:
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise
        self.module = SimDectModule(self._write, self._now_ms, epoch=epoch,
                                    state_path=state_path, **link_options)

    @classmethod
    def on_pty(cls, **kwargs: Any) -> SimServer:
        """A server on a new pty; the base opens `server.pty_name`."""
        master, slave, name = open_pty()
        try:
            server = cls(master, **kwargs)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        server.pty_name = name
        server._own_fds = [master, slave]  # the slave stays open: no EIO while the base is away
        return server

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Run in a thread of its own."""
        self._thread = threading.Thread(target=self.run, name="sim-dect-module", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Say HELLO, then serve until `stop()`."""
        with self.lock:
            self.module.start()
        while not self._stopping:
            with self.lock:
                timeout = self.module.next_due() / 1000
            events = self._selector.select(timeout)
            with self.lock:
                for key, mask in events:
                    key.data(mask)
                self.module.poll()

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for client in list(self._clients):
            self._drop_client(client)
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.control_path)  # type: ignore[arg-type]
        self._selector.close()
        for fd in (self._wake_r, self._wake_w, *self._own_fds):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the line -------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._monotonic() * 1000)

    def _write(self, data: bytes) -> None:
        if len(self._pending) + len(data) > MAX_PENDING:
            return  # nobody reads the line: a UART loses bytes too, the link retransmits
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        try:
            while self._pending:
                del self._pending[:os.write(self.fd, self._pending)]
        except BlockingIOError:
            pass
        except OSError as exc:
            log.warning("simulated DECT module: line write failed: %s", exc)
            self._pending.clear()
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._pending else 0)
        with contextlib.suppress(KeyError, ValueError):  # not there once the line failed
            self._selector.modify(self.fd, events, self._on_line)

    def _on_line(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("simulated DECT module: line read failed, line closed: %s", exc)
            self._selector.unregister(self.fd)
            return
        if data:
            self.module.feed(data)

    def _on_wake(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 64)

    # -- the control socket ---------------------------------------------------------------

    def _listen(self, path: Path) -> socket.socket:
        """The listening socket; OSError in words if the path cannot be used."""
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise OSError(f"{path} exists and is not a socket")
            os.unlink(path)  # left by a previous run
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            listener.listen(8)
        except OSError as exc:
            listener.close()
            raise OSError(f"cannot serve the control socket {path}: {exc}") from exc
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, self._on_accept)
        return listener

    def _on_accept(self, mask: int) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        client.settimeout(2.0)  # answers are small; a client that never reads is dropped
        self._clients[client] = bytearray()
        self._selector.register(client, selectors.EVENT_READ,
                                lambda m, c=client: self._on_client(c))

    def _on_client(self, client: socket.socket) -> None:
        try:
            data = client.recv(READ_CHUNK)
        except OSError:
            data = b""
        if not data:
            self._drop_client(client)
            return
        buffer = self._clients[client]
        buffer += data
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            if line.strip() and not self._answer(client, handle_line(self.module, line)):
                return
        if len(buffer) > MAX_REQUEST:
            error = {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"}
            self._answer(client, json.dumps(error).encode() + b"\n")
            self._drop_client(client)

    def _answer(self, client: socket.socket, answer: bytes) -> bool:
        try:
            client.sendall(answer)
        except OSError:
            self._drop_client(client)
            return False
        return True

    def _drop_client(self, client: socket.socket) -> None:
        if self._clients.pop(client, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client)
        client.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m board.dect.sim`: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m board.dect.sim",
                                     description="A simulated DECT radio module on a pty.")
    parser.add_argument("--pty-link", required=True, type=Path,
                        help="file to write the pty slave's name to")
    parser.add_argument("--control", type=Path, help="Unix socket for the JSON-lines control")
    parser.add_argument("--state", type=Path, help="JSON file keeping the registrations")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")
    try:
        server = SimServer.on_pty(control_path=args.control, state_path=args.state)
    except OSError as exc:
        print(f"sim DECT module: {exc}", file=sys.stderr)
        return 2
    with server:
        try:
            atomic_write(args.pty_link, (f"{server.pty_name}\n").encode())
        except OSError as exc:
            print(f"sim DECT module: cannot write {args.pty_link}: {exc}", file=sys.stderr)
            return 2

        def on_signal(signum: int, frame: FrameType | None) -> None:
            server.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        control = str(args.control) if args.control is not None else None
        print(json.dumps({"pty": server.pty_name, "control": control}), flush=True)
        server.run()
    return 0
