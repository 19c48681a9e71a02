"""Contact debouncing and long-press timing for the front-panel controller.

Pure logic fed with raw bitmaps and millisecond timestamps, so it runs the same on the
controller, under MicroPython on a PC (the tests) and in CPython (the simulator). Common subset
of CPython 3.11 and MicroPython 1.27.
"""

try:
    from time import ticks_diff
except ImportError:  # CPython: timestamps are plain integers that do not wrap
    def ticks_diff(a: int, b: int) -> int:
        return a - b


def bits(mask: int) -> list:
    """Indices of the set bits of `mask`, lowest first."""
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


class Debouncer:
    """Debounces `count` contacts read together as one bitmap (bit i = contact i closed).

    A contact's new level counts once it has held still for `hold_ms`: a 5 ms burst of bounce
    followed by a steady press gives one press, `hold_ms` after the last bounce. `update()`
    returns the changes as [(index, closed), ...] and keeps the debounced bitmap in `state`.
    """

    def __init__(self, count: int, hold_ms: int, now: int, initial: int = 0) -> None:
        self.count = count
        self.hold_ms = hold_ms
        self.state = initial
        self._raw = initial
        self._since = [now] * count

    def update(self, raw: int, now: int) -> list:
        changed = raw ^ self._raw
        if changed:
            self._raw = raw
            for i in bits(changed):
                self._since[i] = now
        pending = raw ^ self.state
        if not pending:
            return []
        events = []
        for i in bits(pending):
            if ticks_diff(now, self._since[i]) >= self.hold_ms:
                self.state ^= 1 << i
                events.append((i, bool(raw & (1 << i))))
        return events


class LongPress:
    """Reports a key held for `hold_ms` once per press."""

    def __init__(self, hold_ms: int) -> None:
        self.hold_ms = hold_ms
        self._down = {}  # index -> press time, or None once reported

    def press(self, index: int, now: int) -> None:
        self._down[index] = now

    def release(self, index: int) -> None:
        self._down.pop(index, None)

    def poll(self, now: int) -> list:
        """Indices that have just been held long enough."""
        due = []
        for index, since in self._down.items():
            if since is not None and ticks_diff(now, since) >= self.hold_ms:
                due.append(index)
        for index in due:
            self._down[index] = None
        return due
