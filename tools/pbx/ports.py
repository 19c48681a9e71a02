"""Free loopback ports for test peers (SIP servers and user agents).

SIP peers listen on the same port number for UDP and TCP, so a port is only
handed out when both protocols can bind it on 127.0.0.1.

Ports come from 20000-32767: above the RTP range the test peers use
(10000-20000) and below the kernel's ephemeral range (32768 and up), so a
port found free cannot be taken by some program's outgoing connection before
the peer that was given it binds it.
"""

from __future__ import annotations

import os
import random
import socket
import threading

_HOST = "127.0.0.1"
_LOWEST, _HIGHEST = 20000, 32767
_lock = threading.Lock()
_handed_out: set[int] = set()


def free_port() -> int:
    """Return a port that is free for both UDP and TCP on 127.0.0.1.

    The same port is never returned twice within one process. The port is
    released before returning, so bind it soon: another program could take it.
    """
    with _lock:
        for _ in range(200):
            port = _candidate()
            if _usable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")


def free_port_range(count: int) -> int:
    """Return the first of `count` consecutive ports free for UDP and TCP on 127.0.0.1.

    For programs that bind a base port plus fixed offsets (SIPp media: base
    and base+2). None of the ports is handed out again within this process.
    """
    with _lock:
        for _ in range(200):
            base = _candidate()
            ports = range(base, base + count)
            if base + count - 1 <= _slice()[1] and all(_usable(port) for port in ports):
                _handed_out.update(ports)
                return base
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def _usable(port: int) -> bool:
    """Not handed out yet, and both UDP and TCP can bind it on loopback."""
    return port not in _handed_out and _udp_free(port) and _tcp_free(port)


def _tcp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        try:
            tcp.bind((_HOST, port))
        except OSError:
            return False
    return True


def _slice() -> tuple[int, int]:
    """This process's share of the range: all of it, or, when the tests run in parallel
    (pytest-xdist: PYTEST_XDIST_WORKER gw0, gw1 ... of PYTEST_XDIST_WORKER_COUNT), a slice of
    its own, so two workers never hand out the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit()
            and int(count) > 1):
        return _LOWEST, _HIGHEST
    index, workers = int(worker[2:]), int(count)
    size = (_HIGHEST - _LOWEST + 1) // workers
    low = _LOWEST + (index % workers) * size
    return low, low + size - 1


def _candidate() -> int:
    """A random port between the RTP range and the kernel's ephemeral range (this worker's
    slice of it)."""
    low, high = _slice()
    return random.randint(low, high)


def _udp_free(port: int) -> bool:
    """True if UDP `port` can be bound on loopback (TCP was checked already)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind((_HOST, port))
        except OSError:
            return False
    return True
