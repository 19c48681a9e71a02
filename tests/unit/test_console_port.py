"""The console's serial line (firmware/console/port.py): the simulator's pty with a real pyserial
client on its slave side, and a pyserial URL (``loop://``) for the UART transport."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import serial

from firmware.console.port import MAX_PENDING_WRITE, PtyPort, SerialPort, open_port

TIMEOUT_S = 5.0
T = TypeVar("T")


class Received:
    """What the port delivered through on_data, and a way to wait for more."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.calls = 0
        self._grew: asyncio.Event | None = None

    def on_data(self, data: bytes) -> None:
        self.calls += 1
        self.data += data
        if self._grew is not None:
            self._grew.set()

    async def wait_for(self, wanted: bytes) -> None:
        """Until `wanted` has arrived (TimeoutError after TIMEOUT_S)."""
        async def until() -> None:
            self._grew = asyncio.Event()
            while wanted not in self.data:
                self._grew.clear()
                await self._grew.wait()

        await asyncio.wait_for(until(), TIMEOUT_S)


async def condition(check: Callable[[], bool], what: str) -> None:
    """Wait until `check()` holds, letting the loop run meanwhile; fails after TIMEOUT_S."""
    async def until() -> None:
        while not check():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(until(), TIMEOUT_S)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`main()` on a fresh event loop."""
    return asyncio.run(main())


def client(name: str) -> serial.Serial:
    """A technician's terminal program on the pty's slave side."""
    return serial.Serial(name, 115200, timeout=TIMEOUT_S)


def open_fds() -> set[str]:
    """The file descriptors this process has open."""
    return set(os.listdir("/proc/self/fd"))


# --- PtyPort ----------------------------------------------------------------------------------


def test_pty_bytes_go_both_ways_unchanged() -> None:
    every_byte = bytes(range(256))

    async def main() -> tuple[bytes, bytes]:
        received = Received()
        port = PtyPort(asyncio.get_running_loop(), received.on_data)
        term = client(port.name)
        try:
            term.write(b"status\r" + every_byte)
            await received.wait_for(every_byte)
            port.write(b"luren> " + every_byte)
            back = await asyncio.to_thread(term.read, 7 + 256)
        finally:
            term.close()
            port.close()
        return bytes(received.data), back

    got, back = run(main)
    assert got == b"status\r" + every_byte  # raw: no echo, no CR/LF translation, no signals
    assert back == b"luren> " + every_byte


def test_open_port_pty_makes_a_pty_port() -> None:
    async def main() -> str:
        port = open_port("pty", 115200, asyncio.get_running_loop(), lambda data: None)
        try:
            assert isinstance(port, PtyPort)
            return port.name
        finally:
            port.close()

    assert run(main).startswith("/dev/pts/")


def test_the_technician_can_close_and_come_back() -> None:
    async def main() -> list[tuple[bytes, bytes]]:
        received = Received()
        port = PtyPort(asyncio.get_running_loop(), received.on_data)
        rounds = []
        try:
            for number in range(3):
                term = client(port.name)
                try:
                    term.reset_input_buffer()
                    sent = f"round {number}\r".encode()
                    term.write(sent)
                    await received.wait_for(sent)
                    port.write(f"answer {number}\r\n".encode())
                    rounds.append((sent, await asyncio.to_thread(term.read_until, b"\r\n")))
                finally:
                    term.close()
        finally:
            port.close()
        return rounds

    rounds = run(main)
    assert [back for _, back in rounds] == [b"answer 0\r\n", b"answer 1\r\n", b"answer 2\r\n"]


def test_output_nobody_reads_does_not_grow_without_bound() -> None:
    chunk_size = 16 * 1024
    chunks = 64  # 1 MiB, four times what the port may hold

    async def main() -> tuple[int, bytes]:
        port = PtyPort(asyncio.get_running_loop(), lambda data: None)
        try:
            for number in range(chunks):
                port.write(bytes([number]) * chunk_size)
            held = len(port._pending)
            term = client(port.name)
            try:
                got = bytearray()
                reading = asyncio.create_task(asyncio.to_thread(read_until_marker, term, got))
                await condition(lambda: not port._pending, "the held output to be sent")
                port.write(b"\xffEND")
                await asyncio.wait_for(reading, TIMEOUT_S)
            finally:
                term.close()
        finally:
            port.close()
        return held, bytes(got)

    held, got = run(main)
    assert 0 < held <= MAX_PENDING_WRITE
    body = got.removesuffix(b"\xffEND")
    assert len(body) < chunks * chunk_size  # the excess was dropped, not queued
    assert len(body) >= held
    kept = sorted(set(body))
    assert kept == list(range(len(kept)))  # the oldest output kept, the newest dropped
    assert list(body) == sorted(body)  # in order


def read_until_marker(term: serial.Serial, into: bytearray) -> None:
    """Read into `into` until it ends with the end marker (or a read times out)."""
    while not into.endswith(b"\xffEND"):
        data = term.read(max(1, term.in_waiting))
        if not data:
            return
        into += data


def test_close_is_idempotent_and_releases_the_pty() -> None:
    async def main() -> None:
        before = open_fds()
        received = Received()
        port = PtyPort(asyncio.get_running_loop(), received.on_data)
        assert open_fds() - before  # the master and the slave
        port.close()
        port.close()
        port.write(b"after close")  # ignored, no error
        assert open_fds() == before

    run(main)


# --- SerialPort -----------------------------------------------------------------------------


def test_serial_loopback_bytes_come_back_through_on_data() -> None:
    async def main() -> bytes:
        received = Received()
        port = open_port("loop://", 115200, asyncio.get_running_loop(), received.on_data)
        try:
            assert isinstance(port, SerialPort) and port.name == "loop://"
            port.write(b"luren> ")
            port.write(b"status\r\n")
            await received.wait_for(b"luren> status\r\n")
        finally:
            port.close()
        return bytes(received.data)

    assert run(main) == b"luren> status\r\n"


def test_serial_close_joins_its_threads_and_is_idempotent() -> None:
    async def main() -> list[threading.Thread]:
        before = set(threading.enumerate())
        received = Received()
        port = SerialPort("loop://", 115200, asyncio.get_running_loop(), received.on_data)
        mine = [t for t in threading.enumerate() if t not in before]
        assert len(mine) == 2 and all(t.is_alive() for t in mine)
        port.write(b"x")
        await received.wait_for(b"x")
        port.close()
        port.close()
        port.write(b"after close")  # ignored, no error
        return mine

    threads = run(main)
    assert not any(t.is_alive() for t in threads)


def test_serial_port_that_cannot_be_opened_raises_in_words() -> None:
    async def main() -> None:
        with pytest.raises(serial.SerialException, match="nowhere"):
            SerialPort("/dev/nowhere-console", 115200, asyncio.get_running_loop(),
                       lambda data: None)

    run(main)


def test_serial_hands_a_typed_key_on_without_waiting_for_the_read_timeout() -> None:
    async def main() -> float:
        received = Received()
        port = SerialPort("loop://", 115200, asyncio.get_running_loop(), received.on_data)
        try:
            started = time.monotonic()
            port.write(b"k")
            await received.wait_for(b"k")
            return time.monotonic() - started
        finally:
            port.close()

    assert run(main) < 0.15
