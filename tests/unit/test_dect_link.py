"""DectRadio (the base) against SimDectModule (the radio module) over a real pty.

The module sits on the pty's master, driven from the test's thread; the radio opens the slave
with pyserial and reads it on its reader thread, like a USB-serial adapter. Time is simulated
on both sides (a ManualClock for the radio, explicit milliseconds for the module), as in
test_frontpanel_link.py: the test waits for bytes to cross by counting them, never sleeping.
The control-socket test runs the module in its own thread (`SimServer`) with real time.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from board.dect import messages as M
from board.dect.eeprom import Registrations
from board.dect.radio import DectRadio, HandsetInfo, HandsetState
from board.dect.sim import SimDectModule, SimHandset
from board.dect.simserver import SimServer, open_pty
from board.mcu import frame as F
from firmware.clock import ManualClock

BASE_EPOCH = 0xBA5E0001
MODULE_EPOCH = 0xDEC70001
PIN = "2580"
UP_REASON = "peer epoch dec70001, firmware 1.0"
Event = tuple[Any, ...]


class Rig:
    """Radio + simulated module on a pty, stepped in milliseconds; radio events recorded."""

    def __init__(self, state_path: Path | None = None) -> None:
        self.clock = ManualClock()
        self.now = 0
        self.cut = False
        self.master, self.slave, self.pty_name = open_pty()
        self.dispatched: queue.Queue[Callable[[], None]] = queue.Queue()
        self.delivered = 0  # bytes the module put on the line
        self.read_from_radio = 0
        self.events: list[Event] = []
        self.module = SimDectModule(self._to_radio, lambda: self.now, epoch=MODULE_EPOCH,
                                    state_path=state_path, rng=random.Random(7))
        self.radio = self.open_radio(BASE_EPOCH)
        self.module.start()
        self.exchange()

    def open_radio(self, epoch: int) -> DectRadio:
        radio = DectRadio.open(self.pty_name, self.clock, dispatch=self.dispatched.put,
                               epoch=epoch)
        record = self.events.append
        radio.on_link = lambda up, reason: record(("link", up, reason))
        radio.on_handset_list = lambda infos: record(("list", [i.number for i in infos]))
        radio.on_registered = lambda info: record(("registered", info.number))
        radio.on_deregistered = lambda number, why: record(("deregistered", number, why))
        radio.on_registration_failed = lambda why: record(("failed", why))
        radio.on_offhook = lambda number: record(("offhook", number))
        radio.on_onhook = lambda number: record(("onhook", number))
        radio.on_digits = lambda number, digits: record(("digits", number, digits))
        radio.on_key = lambda number, key: record(("key", number, key))
        radio.on_window = lambda is_open, left: record(("window", is_open, left))
        radio.start()
        return radio

    def close(self) -> None:
        self.radio.close()
        os.close(self.master)
        os.close(self.slave)

    # -- moving time and bytes ------------------------------------------------------------

    def _to_radio(self, data: bytes) -> None:
        if not self.cut:
            os.write(self.master, data)
            self.delivered += len(data)

    def exchange(self) -> None:
        """Carry every byte written so far to the other end, waiting until it has."""
        deadline = time.monotonic() + 5
        line = self.radio.line
        while self.read_from_radio < line.tx_bytes or line.rx_bytes < self.delivered:
            left = deadline - time.monotonic()
            assert left > 0, f"bytes lost in the pty: {self.radio.stats()}"
            if self.read_from_radio < line.tx_bytes:
                ready, _, _ = select.select([self.master], [], [], left)
                if ready:
                    data = os.read(self.master, 4096)
                    self.read_from_radio += len(data)
                    if not self.cut:
                        self.module.feed(data)
            else:
                self.dispatched.get(timeout=left)()

    def step(self, ms: int = 1) -> None:
        for _ in range(ms):
            self.now += 1
            self.clock.advance(0.001)
            self.module.poll()
            self.exchange()

    def run_until(self, done: Callable[[], bool], limit_ms: int = 20_000) -> None:
        for _ in range(0, limit_ms, 5):
            if done():
                return
            self.step(5)
        raise AssertionError(f"not settled after {limit_ms} ms: {self.radio.stats()}")

    def settle(self) -> None:
        """Run until both ends are up with nothing left to deliver."""
        self.run_until(lambda: self.radio.up and self.module.link.up
                       and not self.radio.link.pending() and not self.module.link.pending())

    def take(self) -> list[Event]:
        """The events so far, forgetting them."""
        events = list(self.events)
        self.events.clear()
        return events

    # -- shortcuts ------------------------------------------------------------------------

    def register(self, handset: SimHandset | None = None) -> SimHandset:
        """Open a window and register a (new) handset in it."""
        handset = handset or self.module.new_handset()
        self.radio.open_window(PIN, 60)
        self.settle()
        assert handset.register(PIN) == "registered"
        self.settle()
        return handset


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(*args: Any, **kwargs: Any) -> Rig:
        rigs.append(Rig(*args, **kwargs))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


def write_registrations(path: Path, entries: list[tuple[int, str, str]]) -> None:
    table = Registrations(path)
    for number, ipui, name in entries:
        table.add(number, ipui, name)


# -- handshake and registration --------------------------------------------------------------

def test_handshake_brings_the_handset_list(rig_factory: Callable[..., Rig],
                                           tmp_path: Path) -> None:
    state = tmp_path / "eeprom.json"
    write_registrations(state, [(2, "00000000aa", "Kitchen"), (5, "00000000bb", "Office")])
    rig = rig_factory(state)
    rig.settle()
    assert rig.take() == [("link", True, UP_REASON), ("list", [2, 5]), ("window", False, 0)]
    assert rig.radio.handsets == {2: HandsetInfo(2, "00000000aa", "Kitchen"),
                                  5: HandsetInfo(5, "00000000bb", "Office")}
    assert rig.radio.module_reset_reason == ("power-on", "")
    assert rig.module.link.peer_epoch == BASE_EPOCH
    assert rig.radio.stats()["retransmits"] == 0


def test_registration_with_the_right_pin_inside_the_window(rig_factory: Callable[..., Rig],
                                                           tmp_path: Path) -> None:
    state = tmp_path / "eeprom.json"
    rig = rig_factory(state)
    rig.settle()
    rig.take()
    rig.radio.open_window(PIN, 90)
    rig.settle()
    assert rig.module.window_open and rig.radio.window_open
    handset = rig.module.new_handset("0012abcdef")
    assert handset.register(PIN) == "registered"
    rig.settle()
    assert rig.take() == [("window", True, 90), ("registered", 1), ("window", False, 0)]
    assert rig.radio.handsets[1] == HandsetInfo(1, "0012abcdef", "Handset 1")
    assert handset.number == 1 and not rig.module.window_open  # one registration per window
    assert Registrations(state).entries() == [(1, "0012abcdef", "Handset 1")]


def test_wrong_pin_and_a_closed_window_are_refused(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    rig.take()
    handset = rig.module.new_handset()
    assert handset.register(PIN) == "window_closed"
    rig.radio.open_window(PIN, 2)
    rig.settle()
    assert handset.register("1111") == "wrong_pin"
    assert handset.register(None) == "wrong_pin"  # type: ignore[arg-type]
    rig.settle()
    assert rig.module.window_open  # a wrong PIN does not close it
    rig.step(2000)
    assert handset.register(PIN) == "window_closed"
    rig.settle()
    assert rig.take() == [("failed", "window_closed"), ("window", True, 2),
                          ("failed", "wrong_pin"), ("failed", "wrong_pin"),
                          ("window", False, 0), ("failed", "window_closed")]
    assert not handset.registered and rig.radio.handsets == {}
    rig.radio.open_window(PIN, 60)
    rig.radio.close_window()
    rig.settle()
    assert not rig.module.window_open and handset.register(PIN) == "window_closed"


def test_the_default_pin_never_opens_a_window(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    with pytest.raises(ValueError, match="still the default 0000: change it"):
        rig.radio.open_window("0000", 60)
    with pytest.raises(ValueError, match="PIN must be 4 digits"):
        rig.radio.open_window("25a0", 60)
    with pytest.raises(ValueError, match=re.escape("seconds must be 1..3600")):
        rig.radio.open_window(PIN, 0)
    rig.settle()
    assert not rig.module.window_open and rig.radio.link.stats["acked"] == 0


def test_the_seventh_handset_is_refused(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    handsets = [rig.register() for _ in range(6)]
    assert [h.number for h in handsets] == [1, 2, 3, 4, 5, 6]
    rig.take()
    rig.radio.open_window(PIN, 60)
    rig.settle()
    assert rig.module.new_handset().register(PIN) == "full"
    assert handsets[3].register(PIN) == "registered"  # one already known may register again
    rig.settle()
    assert rig.take() == [("window", True, 60), ("failed", "full"), ("registered", 4),
                          ("window", False, 0)]
    assert sorted(rig.radio.handsets) == [1, 2, 3, 4, 5, 6]


def test_deregistration_by_the_base_and_by_the_handset(rig_factory: Callable[..., Rig],
                                                       tmp_path: Path) -> None:
    state = tmp_path / "eeprom.json"
    rig = rig_factory(state)
    rig.settle()
    first, second, third = rig.register(), rig.register(), rig.register()
    rig.radio.display(2, ["Anna"])
    rig.take()
    rig.radio.deregister(2)
    rig.settle()
    assert first.deregister() and not first.deregister()
    rig.settle()
    assert rig.take() == [("deregistered", 2, "base"), ("deregistered", 1, "handset")]
    assert not first.registered and not second.registered and third.number == 3
    assert second.display_lines == [] and rig.radio.told(2) == HandsetState()
    assert sorted(rig.radio.handsets) == [3]
    assert [n for n, _, _ in Registrations(state).entries()] == [3]
    rig.radio.deregister(2)  # no longer there: the module ignores it
    rig.settle()
    assert rig.take() == [] and rig.module.stats["no_such_handset"] == 1
    assert rig.register(second).number == 1  # the lowest free number


# -- a call's events and commands ------------------------------------------------------------

def test_handset_events_reach_the_callbacks_in_order(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    one, two = rig.register(), rig.register()
    rig.take()
    one.offhook()
    one.dial("0")
    one.dial("701234#")  # block dialling
    two.offhook()
    one.key("R")
    one.key("vol+")
    two.key("int")
    one.onhook()
    one.onhook()  # already on-hook: nothing sent
    rig.settle()
    assert rig.take() == [("offhook", 1), ("digits", 1, "0"), ("digits", 1, "701234#"),
                          ("offhook", 2), ("key", 1, "R"), ("key", 1, "vol+"),
                          ("key", 2, "int"), ("onhook", 1)]
    assert rig.radio.offhook(2) and not rig.radio.offhook(1)
    with pytest.raises(ValueError, match="not a handset key"):
        one.key("selfdestruct")
    with pytest.raises(ValueError, match="is not registered"):
        rig.module.new_handset().offhook()


def test_display_ring_audio_tone_and_name_reach_the_handset(
        rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    handset = rig.register()
    rig.radio.display(1, ["Incoming call", "Bob Builder <1002>"])
    rig.radio.ring(1, True, "Bob\tBuilder with a very long display name", cadence=1)
    rig.radio.tone(1, 4)
    rig.radio.name(1, "Reception desk, ground floor")
    rig.settle()
    assert handset.display_lines == ["Incoming call", "Bob Builder <1002>"]
    assert handset.ringing and handset.cadence == 1
    assert handset.caller == "Bob Builder with a very "  # fitted: 24 characters, no tab
    assert handset.tone == 4 and handset.name == "Reception desk, "
    rig.radio.ring(1, False)
    rig.radio.audio(1, 2)
    rig.radio.tone(1, None)
    rig.settle()
    assert not handset.ringing and handset.audio_channel == 2 and handset.tone is None
    assert rig.radio.handsets[1].name == "Reception desk, "
    assert rig.radio.told(1) == HandsetState(("Incoming call", "Bob Builder <1002>"),
                                             (False, 0, ""), 2, None)
    with pytest.raises(ValueError, match="at most 3 lines"):
        rig.radio.display(1, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=re.escape("audio channel must be 0..3")):
        rig.radio.audio(1, 4)
    with pytest.raises(ValueError, match=re.escape("handset number must be 1..6")):
        rig.radio.ring(7, True)


def test_burst_of_display_updates_is_coalesced(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    handset = rig.register()
    acked = rig.radio.link.stats["acked"]
    for second in range(30):
        rig.radio.display(1, [f"00:{second:02d}"])
    rig.settle()
    assert handset.display_lines == ["00:29"]
    assert rig.radio.link.stats["acked"] - acked <= 2


# -- faults ------------------------------------------------------------------------------------

def test_corrupted_and_dropped_frames_lose_nothing(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    handset = rig.register()
    rig.take()
    expected: list[Event] = []
    for n in range(12):
        if n % 3 == 0:
            rig.module.corrupt_next(4 + n)
        elif n % 3 == 1:
            rig.module.drop_next(1)
        else:
            rig.module.corrupt_next(3, incoming=True)  # the base's next bytes
        handset.dial(str(n % 10))
        handset.key("menu")
        expected += [("digits", 1, str(n % 10)), ("key", 1, "menu")]
        rig.radio.display(1, [f"line {n}"])
        rig.step(3)
    rig.settle()
    assert rig.take() == expected
    assert handset.display_lines == ["line 11"]
    stats = rig.radio.stats()
    assert stats["rx_crc"] + stats["rx_cobs"] + stats["rx_length"] + stats["rx_short"] > 0
    assert stats["retransmits"] > 0 and rig.module.link.stats["retransmits"] > 0
    assert rig.module.stats["tx_dropped"] == 4 and rig.module.stats["rx_corrupted"] == 12
    assert rig.module.stats["tx_corrupted"] == 4 + 7 + 10 + 13


def test_module_reset_mid_call_ends_the_call_and_restores_the_handsets(
        rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    one, two = rig.register(), rig.register()
    one.offhook()
    one.dial("1002")
    rig.radio.display(1, ["Connected", "Bob"])
    rig.radio.audio(1, 0)
    rig.radio.ring(2, True, "Carol", cadence=2)
    rig.radio.display(2, ["Carol calling"])
    rig.settle()
    rig.take()
    rig.radio.tone(1, 1)  # still in flight when the module resets
    rig.module.reset(epoch=MODULE_EPOCH + 1, reason="watchdog")
    assert one.display_lines == [] and one.audio_channel is None and not two.ringing
    assert not one.is_offhook and one.registered and two.registered
    rig.settle()
    assert rig.take() == [("link", False, "module restarted"), ("onhook", 1),
                          ("link", True, "peer epoch dec70002, firmware 1.0"),
                          ("list", [1, 2]), ("window", False, 0)]
    assert one.display_lines == ["Connected", "Bob"] and one.audio_channel == 0
    assert one.tone == 1
    assert two.ringing and two.caller == "Carol" and two.cadence == 2
    assert two.display_lines == ["Carol calling"]
    assert not rig.radio.offhook(1)  # no call state left dangling
    assert rig.radio.module_reset_reason == ("watchdog", "")
    one.offhook()  # a new call works at once
    rig.settle()
    assert rig.take() == [("offhook", 1)]


def test_module_reset_while_the_line_is_cut(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    handset = rig.register()
    handset.offhook()
    rig.radio.display(1, ["Talking"])
    rig.settle()
    rig.take()
    rig.cut = True
    rig.run_until(lambda: not rig.radio.up, limit_ms=5000)
    assert rig.take() == [("link", False, "nothing heard for 3000 ms")]
    assert rig.radio.offhook(1)  # the module may still hold the call
    rig.module.reset(epoch=MODULE_EPOCH + 7)
    rig.step(100)
    rig.cut = False
    rig.settle()
    assert rig.take() == [("link", False, "module restarted"), ("onhook", 1),
                          ("link", True, "peer epoch dec70008, firmware 1.0"),
                          ("list", [1]), ("window", False, 0)]
    assert handset.display_lines == ["Talking"]


def test_line_cut_without_a_reset_keeps_the_call(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    handset = rig.register()
    handset.offhook()
    rig.settle()
    rig.take()
    rig.cut = True
    rig.run_until(lambda: not rig.radio.up, limit_ms=5000)
    handset.dial("5")  # queued in the module until the base answers again
    rig.step(2000)
    rig.cut = False
    rig.settle()
    assert rig.take() == [("link", False, "nothing heard for 3000 ms"),
                          ("link", True, UP_REASON), ("digits", 1, "5"), ("list", [1]),
                          ("window", False, 0)]
    assert rig.radio.offhook(1)


def test_a_restarted_base_learns_who_is_off_hook(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    one, _two = rig.register(), rig.register()
    one.offhook()
    rig.settle()
    rig.radio.close()
    rig.take()
    rig.read_from_radio = 0
    rig.delivered = 0
    rig.radio = rig.open_radio(BASE_EPOCH + 1)
    rig.settle()
    assert rig.take() == [("link", True, UP_REASON), ("list", [1, 2]), ("window", False, 0),
                          ("offhook", 1)]
    assert rig.module.link.peer_epoch == BASE_EPOCH + 1


# -- who is on the line, and what comes over it ----------------------------------------------

class NullPort:
    """A port that swallows writes and never has anything to read."""

    timeout: float | None = 0
    in_waiting = 0

    def read(self, size: int = 1) -> bytes:
        return b""

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        pass


def hello(role: int, caps: int) -> bytes:
    return F.encode(F.HELLO, 0, F.pack_hello(role, 0x1234, (1, 0), caps))


def test_a_front_panel_controller_is_not_taken_for_a_dect_module() -> None:
    radio = DectRadio(NullPort(), ManualClock(), epoch=1)
    links: list[Event] = []
    radio.on_link = lambda *args: links.append(args)
    radio.start(reader=False)
    radio.feed(hello(F.ROLE_CONTROLLER, F.CAP_KEYS | F.CAP_HOOK | F.CAP_LEDS))
    assert not radio.up and links == []
    assert radio.reason == "the peer is a front-panel controller, not a DECT radio module"
    radio.feed(hello(M.ROLE_DECT_MODULE, 0))
    assert not radio.up and "lacks the DECT capability bit" in radio.reason
    radio.feed(hello(M.ROLE_DECT_MODULE, M.CAP_DECT))
    assert radio.up and radio.stats()["wrong_peer"] == 2
    radio.feed(hello(F.ROLE_HOST, 0))  # the cable moved to a front-panel host
    assert not radio.up and links[-1] == (False, "the peer is a front-panel host, not a "
                                                 "DECT radio module")
    radio.close()


def test_a_dect_module_does_not_answer_a_front_panel_host() -> None:
    sent: list[bytes] = []
    module = SimDectModule(sent.append, lambda: 0, epoch=5)
    module.start()
    module.feed(hello(F.ROLE_HOST, 0))
    assert not module.link.up and "front-panel host" in module.link.reason
    assert [F.Decoder().feed(data)[0][0] for data in sent] == [F.HELLO]  # no HELLO_ACK


def test_loopback_line_hears_itself() -> None:
    radio = DectRadio.open("loop://", ManualClock(), epoch=1)
    radio.start(reader=False)
    radio.poll()
    assert not radio.up and "loops back" in radio.reason
    radio.close()


def test_bad_and_unknown_messages_from_the_module_are_counted(
        rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    handset = rig.register()
    rig.take()
    rig.module.send(M.KEY, b"\x01selfdestruct")
    rig.module.send(0x4E, b"from the future")
    rig.module.send(M.DIGITS, b"\x09123")
    handset.dial("7")
    rig.settle()
    assert rig.take() == [("digits", 1, "7")]
    stats = rig.radio.stats()
    assert stats["bad_message"] == 2 and stats["unknown_type"] == 1


def test_garbage_into_either_end_never_raises() -> None:
    rng = random.Random(3)
    radio = DectRadio(NullPort(), ManualClock(), epoch=1)
    radio.start(reader=False)
    radio.feed(hello(M.ROLE_DECT_MODULE, M.CAP_DECT))
    module = SimDectModule(lambda data: None, lambda: 0, epoch=2)
    module.start()
    module.feed(hello(M.ROLE_DECT_BASE, M.CAP_DECT))
    assert radio.up and module.link.up
    for n in range(3000):
        ftype = rng.choice(list(M.NAMES)) if n % 2 else rng.randrange(256)
        payload = bytes((rng.randrange(1, 8),)) + rng.randbytes(rng.randrange(12))
        frame = F.encode(ftype, n % 255 + 1, payload[:F.MAX_PAYLOAD])
        radio.feed(frame + rng.randbytes(rng.randrange(4)))
        module.feed(frame)
    assert radio.stats()["bad_message"] > 100 and module.stats["bad_command"] > 100
    radio.close()


# -- the control socket ----------------------------------------------------------------------

class Control:
    """A JSON-lines client of the simulated module's control socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def raw(self, line: bytes) -> dict[str, Any]:
        self.sock.sendall(line + b"\n")
        return json.loads(self.reader.readline())

    def __call__(self, **request: Any) -> dict[str, Any]:
        return self.raw(json.dumps(request).encode())

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def test_control_socket_drives_handsets_from_another_process_view(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    dispatched: queue.Queue[Callable[[], None]] = queue.Queue()
    events: list[Event] = []
    with SimServer.on_pty(control_path=path, state_path=tmp_path / "eeprom.json") as server:
        server.start()
        assert server.pty_name is not None
        radio = DectRadio.open(server.pty_name, ManualClock(), dispatch=dispatched.put)
        radio.on_offhook = lambda n: events.append(("offhook", n))
        radio.on_digits = lambda n, d: events.append(("digits", n, d))
        control = Control(path)

        def wait_for(done: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 5
            while not done():
                dispatched.get(timeout=max(0.0, deadline - time.monotonic()))()

        try:
            radio.start()
            wait_for(lambda: radio.up and radio.module_reset_reason is not None)
            assert control(do="register", pin=PIN)["result"] == "window_closed"
            radio.open_window(PIN, 60)
            wait_for(lambda: radio.window_open)
            answer = control(do="register", pin=PIN, ipui="00000000C1")
            assert answer["ok"] and answer["result"] == "registered"
            assert answer["state"]["number"] == 1 and answer["state"]["ipui"] == "00000000c1"
            assert control(handset=1, do="offhook")["state"]["offhook"] is True
            assert control(handset=1, do="dial", digits="100#")["ok"]
            wait_for(lambda: len(events) == 2)
            assert events == [("offhook", 1), ("digits", 1, "100#")]
            radio.display(1, ["Ringing", "100"])
            radio.ring(1, True, "Alice")
            radio.audio(1, 3)
            wait_for(lambda: not radio.link.pending())
            state = control(handset=1, do="state")["state"]
            assert state == {"number": 1, "ipui": "00000000c1", "name": "Handset 1",
                             "registered": True, "offhook": True,
                             "display": ["Ringing", "100"], "ringing": True, "cadence": 0,
                             "caller": "Alice", "audio_channel": 3, "tone": None}
            listing = control(do="list")
            assert listing["link_up"] and [h["number"] for h in listing["handsets"]] == [1]
            assert control.raw(b"{not json")["error"].startswith("not a JSON object")
            assert control.raw(b"[1, 2]") == {"ok": False, "error": "a request is a JSON object"}
            assert "known: deregister, dial" in control(do="fly")["error"]
            assert control(do=["offhook"])["ok"] is False
            assert control(handset=5, do="offhook")["error"] == "no handset 5 is registered"
            assert "handset number must be 1..6" in control(handset="one", do="state")["error"]
            assert control(handset=1, do="key")["error"] == "the request needs 'key'"
            assert "not a dial character" in control(handset=1, do="dial", digits="1x")["error"]
            assert control(do="offhook")["error"] == "the request needs 'handset' (a number 1-6)"
            assert "IPUI must be 10 hex digits" in control(do="register", pin=PIN,
                                                           ipui="zz")["error"]
            assert control(handset=1, do="deregister")["state"]["registered"] is False
        finally:
            control.close()
            radio.close()
    assert not path.exists()
