"""The keypad: a key matrix (rows driven, columns read with pull-ups) plus keys on their own pins.

Rows are driven open-drain style: the selected row is an output driven low, the others are
inputs with pull-ups (never driven high), so two keys pressed in one column cannot short two
outputs together.

Events, desk-phone style: every key acts on press (`on_key(name)` once the press is debounced,
so a digit's tone starts while the finger is still down). A key held for `long_press` seconds
also gives `on_long_press(name)`. Keys that repeat (volume, arrows) give no long press; they
repeat `on_key` after `repeat_delay`, every `repeat_interval`, while held.

Idle costs nothing: at rest every row is driven low, so any key press pulls its column low and
the column's edge watch (or a direct key's own) wakes the part. It then scans every
`scan_interval` seconds while anything is down and stops, with no timer and no reads, once
everything is released.

Debounce: a key changes state only once its contact has read the same for `debounce` seconds.

Ghosting rule (a matrix without diodes): when three keys at the corners of a rectangle (two
rows x two columns) are down, the fourth corner reads down too, and no scan can tell which of
the four are really pressed. So whenever the scan sees all four corners of any rectangle
closed, those four keys are *ambiguous* and keep the state they had: a key already reported
down stays down (no release), a key not yet reported stays up (no press). Once a key is let go
and the rectangle breaks, the others are read normally again (a real key still held is then
reported). Any two keys at once are always unambiguous and both reported.

Stuck keys: a key down for `stuck_after` seconds is reported once, as a fault (log and
`on_fault(part, message)`), then ignored until released; while only stuck keys are down the
part polls every `stuck_poll` seconds instead of scanning fast, so the rest of the keypad keeps
working at a tiny cost.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from board.gpio.base import GpioBackend
from board.keys import is_key
from firmware.clock import Clock, Timer

log = logging.getLogger("luren.board.keypad")
REPEAT_KEYS = frozenset({"volume_up", "volume_down", "up", "down", "left", "right"})
_EPS = 1e-6  # clock arithmetic slack, so 20 ms measured in 5 ms steps is 20 ms

Cell = tuple[int, int]  # (row index, column index) in the matrix
KeyId = Cell | str  # a matrix cell, or the name of a direct key


@dataclass(frozen=True)
class KeyTiming:
    """Every time a keypad uses, in seconds."""

    debounce: float = 0.020
    long_press: float = 0.800
    repeat_delay: float = 0.500
    repeat_interval: float = 0.100
    scan_interval: float = 0.005
    held_interval: float = 0.020  # keys down and steady: enough for long press and repeat
    stuck_after: float = 30.0
    stuck_poll: float = 0.050


@dataclass
class _Key:
    """One physical key's contact and what has been reported about it."""

    name: str
    repeats: bool
    raw: bool = False  # contact as last sampled (ambiguous keys: frozen at `down`)
    since: float = 0.0  # when `raw` last changed
    down: bool = False  # debounced, reported state
    down_at: float = 0.0
    long_sent: bool = False
    next_repeat: float = 0.0
    stuck: bool = False

    @property
    def active(self) -> bool:
        return self.raw or self.down

    @property
    def busy(self) -> bool:
        """Down or changing, and not written off as stuck: needs scanning."""
        return self.active and not self.stuck

    @property
    def changing(self) -> bool:
        """The contact differs from the reported state: debouncing needs fast scanning."""
        return self.raw != self.down


class _Mode(enum.Enum):
    IDLE = "idle"  # waiting for an edge; no timer, no reads
    SCAN = "scan"  # something is down: scan every scan_interval
    POLL = "poll"  # only stuck keys are down: scan every stuck_poll
    CLOSED = "closed"


def ghost_corners(closed: Iterable[Cell]) -> set[Cell]:
    """The corners of every rectangle (two rows x two columns) whose four contacts read closed.

    Those are the cells a matrix without diodes cannot resolve: any one of them may be a ghost.
    """
    by_row: dict[int, set[int]] = {}
    for row, col in closed:
        by_row.setdefault(row, set()).add(col)
    corners: set[Cell] = set()
    for r1, r2 in combinations(sorted(r for r, cols in by_row.items() if len(cols) > 1), 2):
        shared = by_row[r1] & by_row[r2]
        if len(shared) > 1:
            corners |= {(r, c) for r in (r1, r2) for c in shared}
    return corners


class Keypad:
    """A matrix of `rows` x `cols` pins named by `keymap`, plus `direct` keys (name -> pin).

    `keymap[r][c]` names the key joining row `r` to column `c` (None or "" where there is none);
    names come from `board.keys`. Keys read pressed when low: columns and direct keys have
    pull-ups and the switches go to a row driven low (matrix) or to ground (direct).
    """

    def __init__(self, gpio: GpioBackend, clock: Clock, *, rows: Sequence[int] = (),
                 cols: Sequence[int] = (), keymap: Sequence[Sequence[str | None]] = (),
                 direct: Mapping[str, int] | None = None,
                 repeat_keys: Iterable[str] = REPEAT_KEYS, timing: KeyTiming | None = None,
                 name: str = "keypad") -> None:
        self.gpio = gpio
        self.clock = clock
        self.name = name
        self.rows = list(rows)
        self.cols = list(cols)
        self.direct = dict(direct or {})
        self.timing = timing or KeyTiming()
        self.on_key: Callable[[str], None] | None = None
        self.on_long_press: Callable[[str], None] | None = None
        self.on_fault: Callable[[str, str], None] | None = None
        self._keys = self._make_keys(keymap, frozenset(repeat_keys))
        self._timer: Timer | None = None
        self._mode = _Mode.IDLE
        self._setup_pins()
        self._tick()

    # -- what callers use -------------------------------------------------------------------
    def pressed(self) -> set[str]:
        """Names of the keys reported down now."""
        return {key.name for key in self._keys.values() if key.down}

    def stuck(self) -> set[str]:
        """Names of the keys written off as stuck (until they are released)."""
        return {key.name for key in self._keys.values() if key.stuck}

    def contacts(self, key: str) -> tuple[int, ...]:
        """The pins a key joins: (row pin, column pin), or (pin,) for a direct key."""
        for key_id, state in self._keys.items():
            if state.name == key:
                return (self.direct[key],) if isinstance(key_id, str) else (
                    self.rows[key_id[0]], self.cols[key_id[1]])
        raise KeyError(f"{self.name}: no key {key!r}")

    def key_names(self) -> list[str]:
        return [key.name for key in self._keys.values()]

    @property
    def scanning(self) -> bool:
        """True while a timer runs (something is down); False at rest."""
        return self._timer is not None

    def close(self) -> None:
        """Stop scanning for good (the backend releases the pins)."""
        self._cancel()
        self._mode = _Mode.CLOSED

    # -- set-up ------------------------------------------------------------------------------
    def _make_keys(self, keymap: Sequence[Sequence[str | None]],
                   repeat_keys: frozenset[str]) -> dict[KeyId, _Key]:
        self._check_shape(keymap)
        keys: dict[KeyId, _Key] = {}
        cells = [((r, c), n) for r, row in enumerate(keymap) for c, n in enumerate(row) if n]
        for key_id, key in [*cells, *((n, n) for n in self.direct)]:
            self._check_name(key, keys)
            keys[key_id] = _Key(key, key in repeat_keys)
        return keys

    def _check_shape(self, keymap: Sequence[Sequence[Any]]) -> None:
        if len(keymap) != len(self.rows) or any(len(r) != len(self.cols) for r in keymap):
            raise ValueError(f"{self.name}: the keymap must have {len(self.rows)} rows of "
                             f"{len(self.cols)} keys, one per row and column pin")

    def _check_name(self, key: str, keys: Mapping[KeyId, _Key]) -> None:
        if not is_key(key):
            raise ValueError(f"{self.name}: unknown key {key!r} (see board/keys.py)")
        if any(k.name == key for k in keys.values()):
            raise ValueError(f"{self.name}: key {key!r} appears twice")

    def _setup_pins(self) -> None:
        for pin in self.rows:
            self.gpio.setup_output(pin, False, owner=self.name)
        for pin in [*self.cols, *self.direct.values()]:
            self.gpio.setup_input(pin, pull_up=True, owner=self.name)
            self.gpio.watch(pin, self._edge)

    # -- waking and sleeping --------------------------------------------------------------------
    def _edge(self, pin: int, level: bool) -> None:
        """An input moved: at rest, start scanning (on the loop, not inside the edge)."""
        if self._mode is _Mode.IDLE:
            self._mode = _Mode.SCAN
            self._timer = self.clock.call_later(0.0, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._mode = _Mode.SCAN  # edges our own row writes cause are not news
        now = self.clock.now()
        matrix = self._scan_matrix()
        ambiguous = ghost_corners(matrix)
        closed = matrix | self._read_direct()
        for key_id, key in self._keys.items():
            self._sample(key, key.down if key_id in ambiguous else key_id in closed, now)
        self._plan_next(bool(ambiguous))

    def _plan_next(self, ambiguous: bool) -> None:
        keys = self._keys.values()
        if ambiguous or any(key.changing for key in keys):
            self._schedule(_Mode.SCAN, self.timing.scan_interval)
        elif any(key.busy for key in keys):
            self._schedule(_Mode.SCAN, self.timing.held_interval)
        elif any(key.active for key in keys):
            self._schedule(_Mode.POLL, self.timing.stuck_poll)
        else:
            self._mode = _Mode.IDLE

    def _schedule(self, mode: _Mode, delay: float) -> None:
        self._mode = mode
        self._timer = self.clock.call_later(delay, self._tick)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- reading ---------------------------------------------------------------------------------
    def _scan_matrix(self) -> set[Cell]:
        """Select each row in turn and read the columns; every row ends selected (at rest)."""
        closed: set[Cell] = set()
        for pin in self.rows[1:]:
            self._release_row(pin)
        for r, pin in enumerate(self.rows):
            if r:
                self._select_row(pin)
            closed |= {(r, c) for c, col in enumerate(self.cols) if not self.gpio.read(col)}
            self._release_row(pin)
        for pin in self.rows:
            self._select_row(pin)
        return closed

    def _select_row(self, pin: int) -> None:
        """Drive a row low: keys on it pull their columns low."""
        self.gpio.setup_output(pin, False, owner=self.name)

    def _release_row(self, pin: int) -> None:
        """Let a row float up (input, pull-up) rather than drive it high, open-drain style:
        two keys pressed in one column then never short a low row to a high one."""
        self.gpio.setup_input(pin, pull_up=True, owner=self.name)

    def _read_direct(self) -> set[KeyId]:
        return {name for name, pin in self.direct.items() if not self.gpio.read(pin)}

    # -- one key ---------------------------------------------------------------------------------
    def _sample(self, key: _Key, closed: bool, now: float) -> None:
        if closed != key.raw:
            key.raw, key.since = closed, now
        if key.raw != key.down and now - key.since >= self.timing.debounce - _EPS:
            self._settle(key, now)
        elif key.down and not key.stuck:
            self._held(key, now)

    def _settle(self, key: _Key, now: float) -> None:
        key.down = key.raw
        if key.down:
            key.down_at, key.long_sent = now, False
            key.next_repeat = now + self.timing.repeat_delay
            self._emit(self.on_key, key.name)
        elif key.stuck:
            key.stuck = False
            log.info("%s: key %s released; it works again", self.name, key.name)

    def _held(self, key: _Key, now: float) -> None:
        held = now - key.down_at
        if held >= self.timing.stuck_after - _EPS:
            self._report_stuck(key)
        elif key.repeats:
            self._repeat(key, now)
        elif not key.long_sent and held >= self.timing.long_press - _EPS:
            key.long_sent = True
            self._emit(self.on_long_press, key.name)

    def _repeat(self, key: _Key, now: float) -> None:
        if now >= key.next_repeat - _EPS:
            key.next_repeat += self.timing.repeat_interval
            if key.next_repeat <= now:  # fell behind (a stalled loop): no burst to catch up
                key.next_repeat = now + self.timing.repeat_interval
            self._emit(self.on_key, key.name)

    def _report_stuck(self, key: _Key) -> None:
        key.stuck = True
        message = (f"key {key.name} stuck down for {self.timing.stuck_after:g} s; "
                   "ignored until released")
        log.warning("%s: %s", self.name, message)
        self._emit(self.on_fault, self.name, message)

    def _emit(self, callback: Callable[..., None] | None, *args: str) -> None:
        """Call a listener; one that raises must not stop the scanning."""
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("%s: listener for %s failed", self.name, args)
