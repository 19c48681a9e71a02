"""A terminal front panel for any Luren phone, driven through its control API (docs/api.md).

    python -m tools.frontpanel http://127.0.0.1:PORT [--token TOKEN] [--title TEXT]

Shows the phone's display (20x4), its LEDs, hook/speaker/ringing state, line registrations and
calls; keys on the computer's keyboard press the phone's keys (see `COMMANDS`, or the help at
the bottom of the panel). `run_panel(client, title)` runs the same panel from other tools (the
simulated office).

Three background threads talk to the phone, so the keyboard never waits for the network:
the screen thread long-polls `GET /api/v1/screen?after=<version>` (a change shows within
milliseconds), the status thread reads status and LEDs every `STATUS_S`, and the key thread
sends key presses in order. They wake the curses loop through a pipe; the loop sleeps in
`select()` between events and blink phases, never busy. An API error shows in the status line
and the threads keep retrying. Mapping keys and drawing the panel are pure functions below.
"""

from __future__ import annotations

import argparse
import contextlib
import curses
import http.client
import locale
import os
import queue
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from board.keys import DIGITS
from tools.phoneproc import ApiError, PhoneClient

LONG_POLL_S = 2.0  # one screen long poll (short: a phone waits for it when it stops)
STATUS_S = 0.25  # status and LED refresh
RETRY_S = 1.0  # pause after an API error
IDLE_WAKE_S = 1.0  # the loop's longest sleep when nothing blinks
MIN_COLS, MIN_LINES = 56, 16
BLINK_HZ = {"fast_blink": 4.0, "slow_blink": 1.0}
API_ERRORS = (ApiError, OSError, ValueError, KeyError, TypeError, IndexError,
              http.client.HTTPException)


# -- keys ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """What a key press does: "digits" (value: "0"-"9", "*", "#"), "key" (value: a key name
    of board/keys.py), "hook" (toggle the handset) or "quit"."""

    kind: str
    value: str = ""


QUIT = Action("quit")
HOOK = Action("hook")

# (keyboard keys, action, help) — the one command table; the help lines are made from it.
COMMANDS: tuple[tuple[tuple[str | int, ...], Action, str], ...] = (
    (tuple("0123456789*#"), Action("digits"), "0-9 * # digits"),
    ((" ", "h"), HOOK, "Space/h handset"),
    (("s",), Action("key", "speaker"), "s speaker"),
    (("e",), Action("key", "headset"), "e headset"),
    (("j",), Action("jack"), "j plug/pull headset"),
    (("\n", "\r", curses.KEY_ENTER), Action("key", "ok"), "Enter ok"),
    (("\x1b", "\x7f", "\x08", curses.KEY_BACKSPACE), Action("key", "cancel"), "Esc/Bksp cancel"),
    (("r",), Action("key", "redial"), "r redial"),
    (("v",), Action("key", "voicemail"), "v voicemail"),
    ((curses.KEY_UP,), Action("key", "up"), "arrows navigate"),
    ((curses.KEY_DOWN,), Action("key", "down"), ""),
    ((curses.KEY_LEFT,), Action("key", "left"), ""),
    ((curses.KEY_RIGHT,), Action("key", "right"), ""),
    (("m",), Action("key", "mute"), "m mute"),
    (("o",), Action("key", "hold"), "o hold"),
    (("t",), Action("key", "transfer"), "t transfer"),
    (("w",), Action("key", "record"), "w record"),
    (("+",), Action("key", "volume_up"), "+/- volume"),
    (("-",), Action("key", "volume_down"), ""),
    (("d",), Action("key", "dnd"), "d dnd"),
    (("c",), Action("key", "conference"), "c conference"),
    ((curses.KEY_F1,), Action("key", "line1"), "F1/F2 line keys"),
    ((curses.KEY_F2,), Action("key", "line2"), ""),
    (("q",), QUIT, "q quit"),
)
_KEYMAP: dict[str | int, Action] = {
    key: action for keys, action, _ in COMMANDS if action.kind != "digits" for key in keys}


def key_action(key: str | int) -> Action | None:
    """The action of a key as curses' `get_wch()` returns it; None for other keys.

    Letters work in either case (Caps Lock must not stop the panel from quitting).
    """
    if isinstance(key, str) and key in DIGITS:
        return Action("digits", key)
    if isinstance(key, str) and key.isalpha():
        key = key.lower()
    return _KEYMAP.get(key)


def help_items() -> list[str]:
    return [text for _, _, text in COMMANDS if text]


def wrap_items(items: list[str], width: int, sep: str = "   ") -> list[str]:
    """Items joined with `sep` into lines of at most `width` characters (longer items alone)."""
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = f"{current}{sep}{item}" if current else item
        if current and len(candidate) > width:
            lines.append(current)
            candidate = item
        current = candidate
    return [*lines, current] if current else lines


# -- what the panel shows -------------------------------------------------------------------------
@dataclass(frozen=True)
class PanelView:
    """Everything the panel draws, as last read from the phone."""

    title: str
    url: str
    rows: tuple[str, ...] = ()
    width: int = 20
    height: int = 4
    leds: dict[str, dict[str, str]] = field(default_factory=dict)
    status: dict[str, Any] | None = None
    error: str = ""
    note: str = ""


def render_box(rows: tuple[str, ...] | list[str], width: int, height: int,
               unicode: bool = True) -> list[str]:
    """The display rows in a frame: `height` + 2 lines of `width` + 2 characters."""
    tl, tr, bl, br, h, v = "┌┐└┘─│" if unicode else "++++-|"
    body = [(rows[i] if i < len(rows) else "")[:width].ljust(width) for i in range(height)]
    return [tl + h * width + tr, *(v + row + v for row in body), bl + h * width + br]


def led_lit(pattern: str, now: float) -> bool:
    """Whether an LED with `pattern` is lit at monotonic time `now` (blinks at 50 % duty)."""
    if pattern in BLINK_HZ:
        return int(now * BLINK_HZ[pattern] * 2) % 2 == 0
    return pattern == "on"


def next_blink_change(leds: dict[str, dict[str, str]], now: float) -> float | None:
    """Seconds until a blinking LED changes (the loop's sleep); None if nothing blinks."""
    steps = [1.0 / (2 * BLINK_HZ[led.get("pattern", "")]) for led in leds.values()
             if led.get("pattern") in BLINK_HZ]
    if not steps:
        return None
    return min(step - (now % step) for step in steps)


def render_leds(leds: dict[str, dict[str, str]], now: float) -> list[str]:
    """One line per LED: `[*] line1    green fast_blink`; blinking ones blink."""
    width = max((len(name) for name in leds), default=0)
    lines = ["LEDs"]
    for name, led in leds.items():
        pattern = led.get("pattern", "off")
        lamp = "*" if led_lit(pattern, now) else " "
        detail = "off" if pattern == "off" else f"{led.get('colour', '')} {pattern}".strip()
        lines.append(f"[{lamp}] {name.ljust(width)}  {detail}")
    return lines


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def render_status(status: dict[str, Any] | None) -> list[str]:
    """Hook, speaker and ringing of terminal 0; each line's registration; each call."""
    if status is None:
        return ["(waiting for the phone's status)"]
    term = status["terminals"][0]
    hook = "off hook (lifted)" if term["hook"] == "offhook" else "on hook"
    ringing = f"yes, ring {term['rings']}" if term["ringing"] else "no"
    jack = term.get("headset_plugged")
    headset = "" if jack is None else f"   Headset: {'plugged in' if jack else 'not plugged'}"
    lines = [f"Handset: {hook}   Sound: {term.get('route') or 'off'}   "
             f"Ringing: {ringing}   Rings: {term['rings']}{headset}"]
    for line in status["lines"]:
        detail = f" ({line['code']} {line['reason']})" if line.get("code") else ""
        lines.append(f"Line {line['index'] + 1} {line['label']}: {line['state']}{detail}")
    if not status["calls"]:
        lines.append("Calls: none")
    for call in status["calls"]:
        who = " ".join(part for part in (call["remote"], call.get("remote_name", "")) if part)
        arrow = "->" if call["direction"] == "outgoing" else "<-"
        lines.append(f"Call {call['id']} {arrow} {who}: {call['state']} "
                     f"{_duration(call['duration'])}")
    return lines


def too_small(cols: int, lines: int) -> list[str]:
    return ["Terminal too small for the front panel:",
            f"need {MIN_COLS}x{MIN_LINES}, have {cols}x{lines}.", "Enlarge it, or press q."]


def render_panel(view: PanelView, cols: int, lines: int, now: float,
                 unicode: bool = True) -> list[str]:
    """The whole panel as at most `lines` strings of at most `cols` - 1 characters.

    The last line is always the status line: the API error, or what was last sent.
    """
    if cols < MIN_COLS or lines < MIN_LINES:
        return [line[: max(cols - 1, 0)] for line in too_small(cols, lines)][:lines]
    box = render_box(view.rows, view.width, view.height, unicode)
    leds = render_leds(view.leds, now)
    pad = " " * len(box[0])
    side = [f"{(box[i] if i < len(box) else pad)}   {leds[i] if i < len(leds) else ''}"
            for i in range(max(len(box), len(leds)))]
    body = [f"Luren front panel: {view.title}", f"  {view.url}", *side, "",
            *render_status(view.status), "", *wrap_items(help_items(), cols - 1)]
    if view.error:
        bottom = f"! {view.error} (retrying)"
    else:
        bottom = "connected" + (f"; sent {view.note}" if view.note else "")
    body = body[: lines - 1] + [""] * (lines - 1 - len(body))
    return [line.rstrip()[: cols - 1] for line in [*body, bottom]]


# -- talking to the phone -------------------------------------------------------------------------
class PanelState:
    """What the threads last read from the phone; every method is thread-safe."""

    def __init__(self, title: str, url: str) -> None:
        self._lock = threading.Lock()
        self._view = PanelView(title=title, url=url)
        self._version = -1
        self._errors: dict[str, str] = {}

    def view(self) -> PanelView:
        with self._lock:
            error = next(iter(self._errors.values()), "")
            return replace(self._view, error=error)

    def set_screen(self, body: dict[str, Any], newer_only: bool = False) -> bool:
        """Take a screen JSON body; True if what is shown changed."""
        with self._lock:
            if newer_only and body["version"] <= self._version:
                return False
            self._version = body["version"]
            rows = tuple(body["rows"])
            old = self._view
            self._view = replace(old, rows=rows, width=body["width"], height=body["height"])
            return self._view != old

    def set_status(self, status: dict[str, Any], leds: dict[str, dict[str, str]]) -> bool:
        with self._lock:
            old = self._view
            self._view = replace(old, status=status, leds=leds)
            return self._view != old

    def offhook(self) -> bool:
        with self._lock:
            status = self._view.status
            return bool(status) and status["terminals"][0]["hook"] == "offhook"

    def headset_plugged(self) -> bool:
        with self._lock:
            status = self._view.status
            return bool(status) and bool(status["terminals"][0].get("headset_plugged"))

    def set_hook(self, offhook: bool) -> None:
        """Show a hook change at once (the next status read confirms it)."""
        with self._lock:
            status = self._view.status
            if status:
                terminal = dict(status["terminals"][0], hook="offhook" if offhook else "onhook")
                status = dict(status, terminals=[terminal, *status["terminals"][1:]])
                self._view = replace(self._view, status=status)

    def set_note(self, note: str) -> None:
        with self._lock:
            self._view = replace(self._view, note=note)

    def failed(self, source: str, exc: BaseException) -> None:
        with self._lock:
            self._errors[source] = f"{source}: {describe_error(exc)}"

    def ok(self, source: str) -> bool:
        """Forget `source`'s error; True if there was one."""
        with self._lock:
            return self._errors.pop(source, None) is not None


def describe_error(exc: BaseException) -> str:
    """A one-line, human description of an API failure (never a traceback)."""
    reason = getattr(exc, "reason", None)
    if reason is not None and not isinstance(exc, ApiError):
        exc = reason if isinstance(reason, BaseException) else exc
    if isinstance(exc, ConnectionRefusedError):
        return "the phone does not answer (connection refused)"
    if isinstance(exc, TimeoutError):
        return "the phone did not answer in time"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


class FrontPanel:
    """A panel attached to one phone: the background threads and the curses loop."""

    def __init__(self, client: PhoneClient, title: str) -> None:
        self.client = client
        self.state = PanelState(title, client.base_url)
        self.actions: queue.Queue[Action] = queue.Queue()
        self._stop = threading.Event()
        self._wake_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._threads = [threading.Thread(target=loop, name=f"frontpanel-{loop.__name__}",
                                          daemon=True)
                         for loop in (self._screen_loop, self._status_loop, self._key_loop)]

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FrontPanel:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop the threads (a long poll in flight is left to end on its own: daemon)."""
        self._stop.set()
        self.actions.put(QUIT)
        for thread in self._threads:
            if thread.ident is not None:  # started
                thread.join(timeout=0.5)
        with self._wake_lock:  # no thread may write to a closed (maybe reused) descriptor
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_w = -1

    def wake(self) -> None:
        """Make the curses loop redraw now."""
        with self._wake_lock, contextlib.suppress(OSError):  # full pipe: a wake is pending
            if self._wake_w >= 0:
                os.write(self._wake_w, b"!")

    # -- the threads -----------------------------------------------------------------------------
    def _screen_loop(self) -> None:
        version = -1
        while not self._stop.is_set():
            path = f"/api/v1/screen?after={version}&timeout={LONG_POLL_S}"
            try:
                body = self.client.request("GET", path, timeout=LONG_POLL_S + 5)
                changed = self.state.set_screen(body)
            except API_ERRORS as exc:
                self.state.failed("screen", exc)
                self.wake()
                version = -1
                self._stop.wait(RETRY_S)
                continue
            version = body["version"]
            recovered = self.state.ok("screen")
            if recovered or changed:
                self.wake()

    def _status_loop(self) -> None:
        while not self._stop.is_set():
            try:
                changed = self.state.set_status(self.client.status(), self.client.leds())
            except API_ERRORS as exc:
                self.state.failed("status", exc)
                self.wake()
                self._stop.wait(RETRY_S)
                continue
            recovered = self.state.ok("status")
            if recovered or changed:
                self.wake()
            self._stop.wait(STATUS_S)

    def _key_loop(self) -> None:
        while not self._stop.is_set():
            action = self.actions.get()
            if action.kind == "quit":
                return
            try:
                self.send(action)
                self.state.ok("keys")
            except API_ERRORS as exc:
                self.state.failed("keys", exc)
            self.wake()

    def send(self, action: Action) -> None:
        """Carry out one action on the phone (on the key thread; raises on API errors)."""
        if action.kind == "digits":
            response = self.client.keys(action.value)
            note = action.value
        elif action.kind == "key":
            response = self.client.key(action.value)
            note = action.value
        elif action.kind == "jack":
            plugged = not self.state.headset_plugged()
            response = self.client.headset(plugged)
            note = "headset plugged in" if plugged else "headset pulled out"
        elif action.kind == "hook":
            offhook = not self.state.offhook()
            response = self.client.hook(offhook)
            self.state.set_hook(offhook)
            note = "handset lifted" if offhook else "handset down"
        else:
            return
        self.state.set_note(note)
        if "screen" in response:
            self.state.set_screen(response["screen"], newer_only=True)

    # -- the curses loop -----------------------------------------------------------------------
    def run(self, stdscr: Any) -> None:
        """Draw and read keys until `q`; KeyboardInterrupt (Ctrl-C) passes through."""
        _setup_curses(stdscr)
        unicode = locale.getpreferredencoding(False).lower().replace("-", "") == "utf8"
        stdin = sys.stdin.fileno()
        shown: list[str] = []
        while True:
            for key in _pending_keys(stdscr):
                action = key_action(key)
                if action == QUIT:
                    return
                if action is not None:
                    self.actions.put(action)
                elif key == curses.KEY_RESIZE:
                    shown = []
            view, now = self.state.view(), time.monotonic()
            lines, cols = stdscr.getmaxyx()
            panel = render_panel(view, cols, lines, now, unicode)
            if panel != shown:
                _draw(stdscr, panel, bool(view.error))
                shown = panel
            pause = next_blink_change(view.leds, now)
            ready, _, _ = select.select([stdin, self._wake_r], [], [],
                                        IDLE_WAKE_S if pause is None else pause)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)


def _setup_curses(stdscr: Any) -> None:
    with contextlib.suppress(curses.error):
        curses.curs_set(0)
    with contextlib.suppress(AttributeError, curses.error):
        curses.set_escdelay(25)  # Esc is a key here, not only the start of a sequence
    stdscr.keypad(True)
    stdscr.nodelay(True)


def _pending_keys(stdscr: Any) -> Iterator[str | int]:
    """Every key already typed (curses buffers them; drained so select() sees new ones)."""
    while True:
        try:
            yield stdscr.get_wch()
        except curses.error:
            return


def _draw(stdscr: Any, panel: list[str], error: bool) -> None:
    stdscr.erase()
    last = len(panel) - 1
    for y, line in enumerate(panel):
        attr = curses.A_BOLD if y == 0 else (curses.A_REVERSE if y == last and error else 0)
        try:
            stdscr.addstr(y, 0, line, attr)
        except (curses.error, UnicodeEncodeError):
            with contextlib.suppress(curses.error):
                stdscr.addstr(y, 0, line.encode("ascii", "replace").decode(), attr)
    stdscr.refresh()


def run_panel(client: PhoneClient, title: str) -> None:
    """Run the front panel for `client`'s phone in this terminal until `q` (or Ctrl-C).

    Raises curses.error when there is no usable terminal.
    """
    locale.setlocale(locale.LC_ALL, "")
    os.environ.setdefault("ESCDELAY", "25")
    panel = FrontPanel(client, title).start()
    try:
        curses.wrapper(panel.run)
    finally:
        panel.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.frontpanel",
        description="A terminal front panel for a Luren phone, through its control API.")
    parser.add_argument("url", help="the phone's control API, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", default="", help="the API token (api.token), if it has one")
    parser.add_argument("--title", default="", help="what the panel's first line calls it")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"expected an http:// URL, got {args.url!r}")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        run_panel(PhoneClient(args.url, args.token), args.title or args.url)
    except KeyboardInterrupt:
        pass
    except curses.error as exc:
        print(f"frontpanel: cannot use this terminal ({exc}); run it in a terminal window",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
