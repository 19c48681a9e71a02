"""Test peers' ports: free for UDP and TCP, never twice, and a range of its own per pytest-xdist
worker so two workers never hand out the same port."""

from __future__ import annotations

import socket

import pytest

from tools.pbx import ports


def test_a_port_is_free_for_both_protocols_and_not_handed_out_twice() -> None:
    first, second = ports.free_port(), ports.free_port()
    assert first != second and 20000 <= first <= 32767
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", first))


@pytest.mark.parametrize(("worker", "count", "expected"), [
    ("", "", (20000, 32767)),
    ("gw0", "1", (20000, 32767)),
    ("gw0", "2", (20000, 26383)),
    ("gw1", "2", (26384, 32767)),
    ("gw2", "4", (26384, 29575)),
    ("master", "2", (20000, 32767)),
])
def test_each_worker_has_its_own_slice(monkeypatch: pytest.MonkeyPatch, worker: str,
                                       count: str, expected: tuple[int, int]) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", count)
    assert ports._slice() == expected
    low, high = expected
    assert low <= ports.free_port() <= high
    base = ports.free_port_range(4)
    assert low <= base and base + 3 <= high
