"""The terminal front panel's pure parts: key map, drawing, state, and what a key sends."""

from __future__ import annotations

import curses
from typing import Any

import pytest

from board.keys import is_key
from tools.frontpanel import (
    COMMANDS,
    HOOK,
    MIN_COLS,
    MIN_LINES,
    QUIT,
    Action,
    FrontPanel,
    PanelState,
    PanelView,
    describe_error,
    help_items,
    key_action,
    led_lit,
    next_blink_change,
    render_box,
    render_leds,
    render_panel,
    render_status,
    wrap_items,
)
from tools.phoneproc import ApiError

IDLE_ROWS = ("10:42      mån 3 mar", "1001 Anna Andersson", "", "")


def status(hook: str = "onhook", ringing: bool = False, rings: int = 0,
           calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "lines": [{"index": 0, "user": "1001", "label": "1001", "registered": True,
                   "state": "registered", "code": 200, "reason": "OK"}],
        "calls": calls or [],
        "terminals": [{"hook": hook, "speaker": False, "ringing": ringing, "rings": rings}],
    }


LEDS = {"message": {"pattern": "off", "colour": "green"},
        "line1": {"pattern": "on", "colour": "green"}}


# -- keys ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("digit", list("0123456789*#"))
def test_digits_are_sent_as_digits(digit: str) -> None:
    assert key_action(digit) == Action("digits", digit)


@pytest.mark.parametrize(("key", "name"), [
    ("s", "speaker"), ("\n", "ok"), ("\r", "ok"), (curses.KEY_ENTER, "ok"),
    ("\x1b", "cancel"), ("\x7f", "cancel"), ("\x08", "cancel"), (curses.KEY_BACKSPACE, "cancel"),
    ("r", "redial"), ("v", "voicemail"), (curses.KEY_UP, "up"), (curses.KEY_DOWN, "down"),
    (curses.KEY_LEFT, "left"), (curses.KEY_RIGHT, "right"), ("m", "mute"), ("o", "hold"),
    ("t", "transfer"), ("+", "volume_up"), ("-", "volume_down"), ("d", "dnd"),
    ("S", "speaker"), ("D", "dnd"),
])
def test_named_keys(key: str | int, name: str) -> None:
    assert key_action(key) == Action("key", name)


@pytest.mark.parametrize("key", [" ", "h", "H"])
def test_space_and_h_toggle_the_handset(key: str) -> None:
    assert key_action(key) == HOOK


@pytest.mark.parametrize("key", ["q", "Q"])
def test_q_quits(key: str) -> None:
    assert key_action(key) == QUIT


@pytest.mark.parametrize("key", ["x", "ä", "!", curses.KEY_RESIZE, curses.KEY_F9, ""])
def test_other_keys_do_nothing(key: str | int) -> None:
    assert key_action(key) is None


def test_every_named_key_is_a_key_the_phone_knows() -> None:
    for _, action, _ in COMMANDS:
        if action.kind == "key":
            assert is_key(action.value), action


def test_help_mentions_every_letter_key() -> None:
    text = " ".join(help_items())
    for letter in "hsrvmotdq":
        assert f"{letter} " in text or f"/{letter} " in text, letter


def test_wrap_items_keeps_lines_within_width() -> None:
    lines = wrap_items(help_items(), 40)
    assert all(len(line) <= 40 for line in lines)
    assert " ".join(lines).split() == "   ".join(help_items()).split()


def test_wrap_items_puts_a_too_long_item_on_its_own_line() -> None:
    assert wrap_items(["abcdef", "x"], 3) == ["abcdef", "x"]
    assert wrap_items([], 10) == []


# -- drawing -------------------------------------------------------------------------------------
def test_box_frames_every_row_at_display_width() -> None:
    box = render_box(["Ring upp:", "47"], 20, 4)
    assert box == ["┌" + "─" * 20 + "┐", "│Ring upp:           │", "│47                  │",
                   "│" + " " * 20 + "│", "│" + " " * 20 + "│", "└" + "─" * 20 + "┘"]


def test_box_cuts_long_rows_and_has_an_ascii_form() -> None:
    box = render_box(["x" * 30], 20, 1, unicode=False)
    assert box == ["+" + "-" * 20 + "+", "|" + "x" * 20 + "|", "+" + "-" * 20 + "+"]


@pytest.mark.parametrize(("pattern", "times", "lit"), [
    ("on", [0.0, 0.3, 0.9], [True, True, True]),
    ("off", [0.0, 0.3], [False, False]),
    ("fast_blink", [0.0, 0.13, 0.26, 0.38], [True, False, True, False]),  # 4 Hz
    ("slow_blink", [0.1, 0.6, 1.1], [True, False, True]),  # 1 Hz
])
def test_led_lit(pattern: str, times: list[float], lit: list[bool]) -> None:
    assert [led_lit(pattern, t) for t in times] == lit


def test_next_blink_change_waits_for_the_fastest_blinker() -> None:
    leds = {"line1": {"pattern": "fast_blink"}, "message": {"pattern": "slow_blink"}}
    assert next_blink_change(leds, 10.05) == pytest.approx(0.075)
    assert next_blink_change({"message": {"pattern": "slow_blink"}}, 10.2) == pytest.approx(0.3)


def test_no_blink_no_timer() -> None:
    assert next_blink_change(LEDS, 3.0) is None
    assert next_blink_change({}, 3.0) is None


def test_leds_show_lamp_colour_and_pattern() -> None:
    leds = dict(LEDS, speaker={"pattern": "fast_blink", "colour": "red"})
    assert render_leds(leds, 0.0) == ["LEDs", "[ ] message  off", "[*] line1    green on",
                                      "[*] speaker  red fast_blink"]
    assert render_leds(leds, 0.13)[3] == "[ ] speaker  red fast_blink"


def test_status_idle() -> None:
    assert render_status(status()) == [
        "Handset: on hook   Sound: off   Ringing: no   Rings: 0",
        "Line 1 1001: registered (200 OK)",
        "Calls: none"]


def test_status_ringing_and_calls() -> None:
    call = {"id": "c1", "state": "incoming", "direction": "incoming", "line": 0,
            "remote": "1002", "remote_name": "Bertil Berg", "duration": 65.4}
    lines = render_status(status(ringing=True, rings=2, calls=[call]))
    assert lines[0] == "Handset: on hook   Sound: off   Ringing: yes, ring 2   Rings: 2"
    assert lines[2] == "Call c1 <- 1002 Bertil Berg: incoming 01:05"


def test_status_offhook_outgoing_call_and_unregistered_line() -> None:
    call = {"id": "c2", "state": "connected", "direction": "outgoing", "line": 0,
            "remote": "1002", "remote_name": "", "duration": 3.0}
    body = status(hook="offhook", calls=[call])
    body["lines"][0].update(registered=False, state="failed", code=403, reason="Forbidden")
    lines = render_status(body)
    assert lines[0].startswith("Handset: off hook (lifted)")
    assert lines[1] == "Line 1 1001: failed (403 Forbidden)"
    assert lines[2] == "Call c2 -> 1002: connected 00:03"


def test_status_shows_where_the_sound_goes_and_the_headset_jack() -> None:
    body = status()
    body["terminals"][0].update(route="headset", headset_plugged=True)
    assert render_status(body)[0] == ("Handset: on hook   Sound: headset   Ringing: no   "
                                      "Rings: 0   Headset: plugged in")


def test_status_before_the_first_read() -> None:
    assert render_status(None) == ["(waiting for the phone's status)"]


def view(**changes: Any) -> PanelView:
    base = PanelView(title="1001 Anna Andersson", url="http://127.0.0.1:8080", rows=IDLE_ROWS,
                     leds=LEDS, status=status())
    return PanelView(**{**base.__dict__, **changes})


def test_panel_shows_box_leds_status_help_and_status_line() -> None:
    panel = render_panel(view(note="5"), 90, 30, 0.0)
    assert len(panel) == 30
    assert panel[0] == "Luren front panel: 1001 Anna Andersson"
    assert "│10:42      mån 3 mar│   [ ] message  off" in panel
    assert "│1001 Anna Andersson │   [*] line1    green on" in panel
    assert "Calls: none" in panel
    assert any("q quit" in line for line in panel)
    assert panel[-1] == "connected; sent 5"
    assert all(len(line) < 90 for line in panel)


def test_panel_shows_an_api_error_in_the_status_line() -> None:
    panel = render_panel(view(error="status: the phone does not answer"), 80, 24, 0.0)
    assert panel[-1] == "! status: the phone does not answer (retrying)"


def test_panel_in_a_short_terminal_keeps_the_status_line() -> None:
    panel = render_panel(view(error="boom"), MIN_COLS, MIN_LINES, 0.0)
    assert len(panel) == MIN_LINES
    assert panel[-1].startswith("! boom")
    assert all(len(line) < MIN_COLS for line in panel)


@pytest.mark.parametrize(("cols", "lines"), [(MIN_COLS - 1, 40), (100, MIN_LINES - 1),
                                             (10, 2), (1, 1), (0, 0)])
def test_too_small_terminal_gets_a_message(cols: int, lines: int) -> None:
    panel = render_panel(view(), cols, lines, 0.0)
    assert len(panel) <= lines
    assert all(len(line) <= max(cols - 1, 0) for line in panel)
    if lines >= 2 and cols >= 40:
        assert panel[0] == "Terminal too small for the front panel:"
        assert f"need {MIN_COLS}x{MIN_LINES}, have {cols}x{lines}" in panel[1]


# -- state and sending ---------------------------------------------------------------------------
def screen(version: int, *rows: str) -> dict[str, Any]:
    return {"rows": list(rows), "width": 20, "height": 4, "version": version}


def test_state_takes_screens_and_reports_changes() -> None:
    state = PanelState("t", "u")
    assert state.set_screen(screen(3, "a"))
    assert not state.set_screen(screen(4, "a"))
    assert not state.set_screen(screen(2, "old"), newer_only=True)
    assert state.view().rows == ("a",)
    assert state.set_screen(screen(1, "after a restart"))  # the long poll is authoritative


def test_state_errors_show_until_their_source_recovers() -> None:
    state = PanelState("t", "u")
    state.failed("status", ConnectionRefusedError(111, "refused"))
    assert state.view().error == "status: the phone does not answer (connection refused)"
    assert state.ok("status")
    assert not state.ok("status")
    assert state.view().error == ""


@pytest.mark.parametrize(("exc", "text"), [
    (ApiError(400, {"error": "unknown key"}), "HTTP 400: unknown key"),
    (TimeoutError("timed out"), "the phone did not answer in time"),
    (ValueError("Expecting value:\n line 1"), "Expecting value: line 1"),
])
def test_describe_error_is_one_line(exc: Exception, text: str) -> None:
    assert describe_error(exc) == text


def test_describe_error_unwraps_urlerror() -> None:
    import urllib.error

    exc = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert describe_error(exc) == "the phone does not answer (connection refused)"


class FakeClient:
    """Records what the panel sends; answers like the control API."""

    base_url = "http://fake"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.version = 10

    def _ok(self) -> dict[str, Any]:
        self.version += 1
        return {"ok": True, "screen": screen(self.version, f"after {self.sent[-1]}")}

    def keys(self, digits: str) -> dict[str, Any]:
        self.sent.append(("keys", digits))
        return self._ok()

    def key(self, name: str) -> dict[str, Any]:
        self.sent.append(("key", name))
        return self._ok()

    def hook(self, offhook: bool) -> dict[str, Any]:
        self.sent.append(("hook", offhook))
        return self._ok()


@pytest.fixture
def panel() -> Any:
    client = FakeClient()
    made = FrontPanel(client, "test")  # type: ignore[arg-type]
    yield made, client
    made.stop()


def test_send_digits_and_keys_and_show_the_returned_screen(panel: Any) -> None:
    front, client = panel
    front.send(Action("digits", "5"))
    front.send(Action("key", "ok"))
    assert client.sent == [("keys", "5"), ("key", "ok")]
    assert front.state.view().rows == ("after ('key', 'ok')",)
    assert front.state.view().note == "ok"


def test_hook_toggles_from_the_last_known_state(panel: Any) -> None:
    front, client = panel
    front.state.set_status(status(hook="onhook"), LEDS)
    front.send(HOOK)
    front.send(HOOK)
    front.send(HOOK)
    assert client.sent == [("hook", True), ("hook", False), ("hook", True)]
    assert front.state.offhook()
    assert front.state.view().note == "handset lifted"


def test_hook_before_any_status_lifts_the_handset(panel: Any) -> None:
    front, client = panel
    front.send(HOOK)
    assert client.sent == [("hook", True)]


def test_wake_after_stop_is_harmless() -> None:
    front = FrontPanel(FakeClient(), "t")  # type: ignore[arg-type]
    front.stop()
    front.wake()


@pytest.mark.parametrize(("key", "name"), [("e", "headset"), ("c", "conference"),
                                           (curses.KEY_F1, "line1"), (curses.KEY_F2, "line2")])
def test_headset_conference_and_line_keys(key: str | int, name: str) -> None:
    assert key_action(key) == Action("key", name)
