"""The SBC's FrontPanelLink against the controller program (CPython, same source) over a line.

Two lines: an in-memory one (the SBC reads it like a non-blocking pyserial port) and a real pty
pair (the SBC opens the slave with `serial_for_url` and reads it on its reader thread). Faults
are injected between the two ends. Time is simulated on both sides (ManualClock on the SBC,
explicit milliseconds on the controller); the pty test waits for bytes to cross, counting them,
never sleeping.
"""

from __future__ import annotations

import os
import queue
import random
import select
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator

import pytest

from board.frontpanel import FrontPanelLink, attach_frontpanel
from board.mcu import frame as F
from board.mcu.scan import HookInput, MatrixScanner
from board.mcu.sim import FakePin, SimPanel
from board.parts import LedPattern, LedState
from board.sim import sim_board
from firmware.clock import ManualClock

CONTROLLER_EPOCH = 0xC0DE0001
SBC_EPOCH = 0x5BC00001
KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#", "ok", "line1", "line2",
        "speaker", "mute", "hold", "up", "down"]
PATTERNS = list(LedPattern)
COLOURS = ["green", "red", "amber"]
LED_NAMES = ["message", "speaker", "mute", "headset", "line1", "line2"]
FAULTS = ("corrupt", "drop", "duplicate", "garbage", "replay", "truncate")
PATTERN_CODES = {LedPattern.OFF: F.OFF, LedPattern.ON: F.ON,
                 LedPattern.SLOW_BLINK: F.SLOW_BLINK, LedPattern.FAST_BLINK: F.FAST_BLINK}


class Wire:
    """One direction of the line; with a rate, some writes are damaged on the way."""

    def __init__(self, deliver: Callable[[bytes], object], rng: random.Random | None = None,
                 rate: float = 0.0) -> None:
        self.deliver = deliver
        self.rng = rng
        self.rate = rate
        self.cut = False
        self.delivered = 0
        self.faults: Counter[str] = Counter()
        self.history: deque[bytes] = deque(maxlen=8)

    def write(self, data: bytes) -> None:
        if self.cut:
            return
        out = data
        if self.rng is not None and self.rng.random() < self.rate:
            out = self._damage(data)
        self.history.append(data)
        if out:
            self.delivered += len(out)
            self.deliver(out)

    def _damage(self, data: bytes) -> bytes:
        rng = self.rng
        assert rng is not None
        kind = rng.choice(FAULTS)
        self.faults[kind] += 1
        if kind == "corrupt":
            bad = bytearray(data)
            bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
            return bytes(bad)
        if kind == "drop":
            return b""
        if kind == "duplicate":
            return data + data
        if kind == "garbage":
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) + data
        if kind == "replay" and self.history:
            return data + rng.choice(list(self.history))
        return data[: max(1, len(data) // 2)]  # truncate (or replay with no history)


class MemoryPort:
    """The SBC's end of the in-memory line: what a non-blocking pyserial port offers."""

    def __init__(self) -> None:
        self.rx = bytearray()
        self.timeout: float | None = 0
        self.sink: Callable[[bytes], None] = lambda data: None

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def read(self, size: int = 1) -> bytes:
        data = bytes(self.rx[:size])
        del self.rx[:size]
        return data

    def write(self, data: bytes) -> int:
        self.sink(data)
        return len(data)

    def close(self) -> None:
        pass


class Rig:
    """SBC link + simulated controller on one line ("memory" or "pty"), stepped in ms."""

    def __init__(self, line: str = "memory", seed: int | None = None, rate: float = 0.0) -> None:
        rng = random.Random(seed) if seed is not None else None
        self.line = line
        self.clock = ManualClock()
        self.now = 0
        self.alive = True
        self.keys: list[str] = []
        self.long: list[str] = []
        self.hooks: list[bool] = []
        self.states: list[tuple[bool, str]] = []
        self.down = Wire(lambda data: self.panel.receive(data), rng, rate)
        if line == "memory":
            port = MemoryPort()
            port.sink = self.down.write
            self.up = Wire(port.rx.extend, rng, rate)
            self.link = FrontPanelLink(port, self.clock, epoch=SBC_EPOCH)
        else:
            self._open_pty(rng, rate)
        self.panel = SimPanel(self.up.write, CONTROLLER_EPOCH, self.now)
        self.link.on_key = self.keys.append
        self.link.on_long_press = self.long.append
        self.link.on_hook = self.hooks.append
        self.link.on_link_state = lambda up, reason: self.states.append((up, reason))
        self.link.start(reader=line == "pty")
        self.exchange()

    def _open_pty(self, rng: random.Random | None, rate: float) -> None:
        self.master, self.slave = os.openpty()
        self.dispatched: queue.Queue[Callable[[], None]] = queue.Queue()
        self.link = FrontPanelLink.open(os.ttyname(self.slave), self.clock,
                                        dispatch=self.dispatched.put, epoch=SBC_EPOCH)
        self.up = Wire(lambda data: os.write(self.master, data), rng, rate)
        self.read_from_sbc = 0

    def close(self) -> None:
        self.link.close()
        if self.line == "pty":
            os.close(self.master)
            os.close(self.slave)

    # -- moving time and bytes --------------------------------------------------------------

    def step(self, ms: int = 1) -> None:
        for _ in range(ms):
            self.now += 1
            self.clock.advance(0.001)
            if self.alive:
                self.panel.poll(self.now)
            self.exchange()

    def exchange(self) -> None:
        """Carry every byte written so far to the other end (the pty: wait until it has)."""
        if self.line == "memory":
            self.link.poll()
            return
        deadline = time.monotonic() + 5
        while self.read_from_sbc < self.link.tx_bytes or self.link.rx_bytes < self.up.delivered:
            left = deadline - time.monotonic()
            assert left > 0, "bytes lost in the pty"
            if self.read_from_sbc < self.link.tx_bytes:
                ready, _, _ = select.select([self.master], [], [], left)
                if ready:
                    data = os.read(self.master, 4096)
                    self.read_from_sbc += len(data)
                    self.down.write(data)
            else:
                self.dispatched.get(timeout=left)()

    def run_until(self, done: Callable[[], bool], limit_ms: int = 60_000) -> None:
        for _ in range(0, limit_ms, 10):
            if done():
                return
            self.step(10)
        raise AssertionError(f"not settled after {limit_ms} ms: {self.link.stats()}")

    def settle(self) -> None:
        """Run until both ends are up with nothing unacknowledged and the LEDs agree."""
        self.run_until(lambda: self.link.up and self.panel.link.up
                       and not self.link.link.pending() and not self.panel.link.pending()
                       and self.leds_agree())

    # -- the front panel ------------------------------------------------------------------

    def tap(self, key: str, hold_ms: int = 30, gap_ms: int = 30) -> None:
        self.panel.press(key)
        self.step(hold_ms)
        self.panel.release(key)
        self.step(gap_ms)

    def leds_agree(self) -> bool:
        return all(self.panel.led(name) == (PATTERN_CODES[s.pattern], s.colour)
                   for name, s in self.link.leds.items() if name in self.panel.outputs)

    def reset_controller(self, epoch: int) -> None:
        """The controller restarts while bytes flow: half a frame on the line, RAM lost."""
        half = F.encode(F.KEY, 77, F.pack_key("9", F.PRESS))
        self.up.deliver(half[: len(half) // 2])
        self.up.delivered += len(half) // 2
        self.up.history.clear()
        self.down.history.clear()
        self.panel = SimPanel(self.up.write, epoch, self.now)

    def unplug(self, unplugged: bool = True) -> None:
        self.up.cut = self.down.cut = unplugged


@pytest.fixture
def rig_factory() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(*args: object, **kwargs: object) -> Rig:
        rigs.append(Rig(*args, **kwargs))  # type: ignore[arg-type]
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


def random_led(rng: random.Random) -> tuple[str, LedState]:
    return rng.choice(LED_NAMES), LedState(rng.choice(PATTERNS), rng.choice(COLOURS))


def pending_presses(rig: Rig) -> int:
    """KEY presses the controller has not had acknowledged yet."""
    return sum(1 for ftype, payload in rig.panel.link.unacked()
               if ftype == F.KEY and F.unpack_key(payload)[1] == F.PRESS)


# -- a clean line ------------------------------------------------------------------------

def test_handshake_keys_hook_and_leds(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.step(5)
    assert rig.link.up and rig.panel.link.up
    assert rig.states == [(True, "peer epoch c0de0001, firmware 1.0")]
    rig.link.set_led("line1", LedState(LedPattern.SLOW_BLINK, "red"))
    rig.link.set_led("message", LedState(LedPattern.ON, "red"))
    for key in ["1", "2", "#", "ok", "line2"]:
        rig.tap(key)
    rig.panel.press("hold")
    rig.step(900)
    rig.panel.release("hold")
    rig.panel.set_hook(True)
    rig.step(100)
    assert rig.keys == ["1", "2", "#", "ok", "line2", "hold"]
    assert rig.long == ["hold"]
    assert rig.hooks == [True]
    assert rig.panel.led("line1") == (F.SLOW_BLINK, "red")
    assert rig.panel.led("message") == (F.ON, "red")
    assert rig.link.stats()["retransmits"] == 0


def test_led_patterns_blink_from_the_clock(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.link.set_led("line1", LedState(LedPattern.FAST_BLINK, "amber"))
    rig.link.set_led("line2", LedState(LedPattern.ON, "green"))
    rig.step(1000 - rig.now % 1000)  # a whole second: both blink phases start lit
    seen = []
    for _ in range(8):
        rig.step(125)
        seen.append(rig.panel.lit_colours("line1"))
    assert seen == [[], ["green", "red"]] * 4
    assert rig.panel.lit_colours("line2") == ["green"]


def test_burst_of_led_updates_is_coalesced(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.step(5)
    for pattern in PATTERNS * 5:
        rig.link.set_led("speaker", LedState(pattern, "green"))
    rig.settle()
    assert rig.panel.led("speaker") == (F.FAST_BLINK, "green")
    assert rig.link.stats()["acked"] <= 3


def test_unknown_key_from_the_controller_is_dropped(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.step(5)
    rig.panel.link.send(F.KEY, F.pack_key("selfdestruct", F.PRESS), rig.now)
    rig.tap("5")
    assert rig.keys == ["5"]


def test_unknown_led_is_reported_once(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.step(5)
    rig.link.set_led("line9", LedState(LedPattern.ON, "green"))
    rig.link.set_led("line9", LedState(LedPattern.OFF, "green"))
    rig.settle()
    assert list(rig.link.controller_errors) == [(F.ERR_UNKNOWN_LED, "line9")]


def test_protocol_version_mismatch_keeps_the_link_down() -> None:
    clock = ManualClock()
    port = MemoryPort()
    link = FrontPanelLink(port, clock, epoch=1)
    link.start(reader=False)
    hello = bytearray(F.pack_hello(F.ROLE_CONTROLLER, 2, (9, 0), 0))
    hello[0] = F.PROTOCOL_VERSION + 1
    port.rx.extend(F.encode(F.HELLO, 0, bytes(hello)))
    link.poll()
    assert not link.up
    assert "protocol 2" in link.reason


def test_loop_url_hears_itself_and_stays_down() -> None:
    clock = ManualClock()
    link = FrontPanelLink.open("loop://", clock, epoch=1)
    states: list[tuple[bool, str]] = []
    link.on_link_state = lambda up, reason: states.append((up, reason))
    link.start(reader=False)
    clock.advance(2)
    while link.poll():
        pass
    assert not link.up and states == []
    assert link.stats()["echo"] >= 1 and "loops back" in link.reason
    link.close()


def test_attach_frontpanel_routes_board_events_and_leds(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    board = sim_board()
    board.led("message").set(LedState(LedPattern.SLOW_BLINK, "red"))
    attach_frontpanel(board, rig.link)
    keys: list[str] = []
    hooks: list[bool] = []
    board.on_key = keys.append
    board.on_hook = hooks.append
    board.led("line1").set(LedState(LedPattern.ON, "green"))
    board.led("line1").set(LedState(LedPattern.ON, "red"))
    rig.tap("7")
    rig.panel.set_hook(True)
    rig.step(60)
    rig.settle()
    assert keys == ["7"] and hooks == [True]
    assert rig.panel.led("message") == (F.SLOW_BLINK, "red")
    assert rig.panel.led("line1") == (F.ON, "red")
    assert set(rig.link.leds) == set(board.leds)


# -- faults ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faulty_line_loses_and_doubles_nothing(rig_factory: Callable[..., Rig],
                                               seed: int) -> None:
    rig = rig_factory(seed=seed, rate=0.2)
    rng = random.Random(seed)
    pressed = [rng.choice(KEYS) for _ in range(60)]
    for key in pressed:
        rig.link.set_led(*random_led(rng))
        rig.tap(key, hold_ms=rng.randrange(25, 60), gap_ms=rng.randrange(25, 60))
    rig.settle()
    assert rig.keys == pressed
    faults = rig.up.faults + rig.down.faults
    assert set(faults) == set(FAULTS), faults
    stats = rig.link.stats()
    assert stats["retransmits"] + rig.panel.link.stats["retransmits"] > 0
    assert stats["duplicates"] > 0


def test_controller_reset_mid_stream_restores_leds(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    before, after = ["1", "2", "3", "line1", "4", "5"], ["6", "7", "#", "ok", "mute"]
    rig.link.set_led("message", LedState(LedPattern.SLOW_BLINK, "red"))
    for key in before:
        rig.tap(key)
    rig.settle()
    assert 1 in rig.link.link._recent  # a reset controller starts again from seq 1
    rig.link.set_led("line1", LedState(LedPattern.FAST_BLINK, "amber"))
    rig.link.set_led("speaker", LedState(LedPattern.ON, "green"))
    rig.link.set_led("mute", LedState(LedPattern.ON, "red"))
    rig.reset_controller(0xC0DE0002)  # with LED frames still in flight
    assert rig.panel.led("line1") == (F.OFF, "")
    for key in after:
        rig.tap(key)
    rig.settle()
    assert rig.keys == before + after
    assert rig.panel.led("message") == (F.SLOW_BLINK, "red")
    assert rig.panel.led("line1") == (F.FAST_BLINK, "amber")
    assert rig.panel.led("mute") == (F.ON, "red")
    assert [up for up, _ in rig.states] == [True, False, True]
    assert "restarted" in rig.states[1][1]


@pytest.mark.parametrize("seed", [11, 21, 26])
def test_reset_at_a_random_moment_on_a_faulty_line(rig_factory: Callable[..., Rig],
                                                   seed: int) -> None:
    """Only presses still unacknowledged in the dead controller's RAM may be lost."""
    rig = rig_factory(seed=seed, rate=0.15)
    rng = random.Random(seed)
    before = [rng.choice(KEYS) for _ in range(rng.randrange(5, 25))]
    after = [rng.choice(KEYS) for _ in range(20)]
    for key in before:
        rig.link.set_led(*random_led(rng))
        rig.tap(key, gap_ms=rng.randrange(21, 40))
    lost_at_most = pending_presses(rig)
    rig.reset_controller(0xC0DE0000 + seed)
    for key in after:
        rig.link.set_led(*random_led(rng))
        rig.tap(key)
    rig.settle()
    lost = len(before) + len(after) - len(rig.keys)
    assert 0 <= lost <= lost_at_most
    assert rig.keys == before[: len(before) - lost] + after


def test_dead_controller_reported_once_then_back(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.link.set_led("line1", LedState(LedPattern.ON, "green"))
    rig.tap("1")
    rig.settle()
    unplugged_at = rig.now
    rig.unplug()
    rig.run_until(lambda: not rig.link.up, limit_ms=5000)
    assert 2000 <= rig.now - unplugged_at <= 3010
    assert rig.states[-1][0] is False and "nothing heard" in rig.states[-1][1]
    rig.link.set_led("line1", LedState(LedPattern.SLOW_BLINK, "red"))  # while it is away
    rig.tap("2")  # queued in the controller
    rig.tap("3")
    rig.step(10_000)
    assert [up for up, _ in rig.states] == [True, False]
    rig.unplug(False)
    rig.settle()
    assert [up for up, _ in rig.states] == [True, False, True]
    assert rig.keys == ["1", "2", "3"]
    assert rig.panel.led("line1") == (F.SLOW_BLINK, "red")


def test_hung_controller_with_same_epoch_keeps_its_queue(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    rig.alive = False  # stops polling: bytes pile up in its UART buffer
    rig.step(4000)
    assert not rig.link.up
    rig.alive = True
    rig.tap("9")
    rig.settle()
    assert rig.keys == ["9"]
    assert [up for up, _ in rig.states] == [True, False, True]


def test_full_queue_while_away_is_reported(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.settle()
    rig.unplug()
    keys = [KEYS[n % len(KEYS)] for n in range(40)]  # 80 frames for a 64-frame queue
    for key in keys:
        rig.tap(key)
    rig.unplug(False)
    rig.settle()
    # the frame in flight stays; the oldest queued ones made room for the newest
    first, *rest = rig.keys
    assert first == keys[0] and rest == keys[-len(rest):] and len(rest) == 32
    [(code, text)] = rig.link.controller_errors
    assert code == F.ERR_QUEUE_OVERFLOW and text == "15 events dropped from a full queue"


def test_sbc_restart_gets_the_queued_keys_and_sets_leds_afresh(
        rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    for key in ["1", "2"]:
        rig.tap(key)
    rig.link.set_led("line1", LedState(LedPattern.ON, "green"))
    rig.settle()
    old = rig.link
    old.close()
    rig.up.deliver = lambda data: None  # nobody reads the line while the SBC restarts
    rig.tap("3")
    rig.tap("4")
    port = MemoryPort()
    port.sink = rig.down.write
    rig.up.deliver = port.rx.extend
    rig.link = FrontPanelLink(port, rig.clock, epoch=SBC_EPOCH + 1)
    rig.link.on_key = rig.keys.append
    rig.link.set_led("line2", LedState(LedPattern.SLOW_BLINK, "red"))
    rig.link.start(reader=False)
    rig.settle()
    assert rig.keys == ["1", "2", "3", "4"]
    assert rig.panel.led("line2") == (F.SLOW_BLINK, "red")
    assert rig.panel.led("line1") == (F.OFF, "")  # the old SBC's LED, cleared
    assert rig.panel.link.peer_epoch == SBC_EPOCH + 1


# -- the controller's inputs --------------------------------------------------------------

class MatrixWiring:
    """Rows driven low one at a time; a column reads low while a pressed key joins them."""

    def __init__(self, rows: int, cols: int) -> None:
        self.pressed: set[tuple[int, int]] = set()
        self.rows = [FakePin(1) for _ in range(rows)]
        self.cols = [self._column(c) for c in range(cols)]

    def _column(self, col: int) -> FakePin:
        wiring = self

        class Column(FakePin):
            def value(self, level: int | None = None) -> int | None:
                return int(not any(wiring.rows[r].level == 0 for r, c in wiring.pressed
                                   if c == col))

        return Column()


def test_matrix_scan_gives_one_bit_per_key_even_with_several_held() -> None:
    wiring = MatrixWiring(3, 4)
    scanner = MatrixScanner(wiring.rows, wiring.cols)
    assert scanner.count == 12 and scanner.scan() == 0
    wiring.pressed = {(0, 0), (1, 2), (2, 3)}
    assert scanner.scan() == (1 << 0) | (1 << 6) | (1 << 11)
    assert all(row.level == 1 for row in wiring.rows)
    hook = FakePin(1)
    assert HookInput(hook).read() == 0
    hook.level = 0
    assert HookInput(hook).read() == 1 and HookInput(hook, active_low=False).read() == 0


# -- over a real pty ---------------------------------------------------------------------

def test_pty_line_with_faults_and_a_reset(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory("pty", seed=5, rate=0.15)
    rng = random.Random(5)
    rig.settle()
    before = [rng.choice(KEYS) for _ in range(25)]
    after = [rng.choice(KEYS) for _ in range(25)]
    for key in before:
        rig.link.set_led(*random_led(rng))
        rig.tap(key)
    rig.settle()
    rig.link.set_led("line2", LedState(LedPattern.FAST_BLINK, "red"))
    rig.step(1)
    rig.reset_controller(0xC0DE0003)
    for key in after:
        rig.link.set_led(*random_led(rng))
        rig.tap(key)
    rig.settle()
    assert rig.keys == before + after
    assert rig.leds_agree() and len(rig.link.leds) >= 5
    assert [up for up, _ in rig.states][-2:] == [False, True]
    assert sum((rig.up.faults + rig.down.faults).values()) > 10
    stats = rig.link.stats()
    assert stats["rx_bytes"] == rig.up.delivered > 2000
    assert stats["tx_bytes"] == rig.read_from_sbc > 2000
