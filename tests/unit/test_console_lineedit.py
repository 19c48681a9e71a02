"""The serial console's line editor (firmware/console/lineedit.py), seen on a dumb terminal."""

from __future__ import annotations

import dataclasses
import random

import pytest

from firmware.console.lineedit import (
    EndOfInput,
    Event,
    Interrupt,
    Key,
    KeyDecoder,
    Line,
    LineEditor,
    Overlong,
    printable,
)

LEFT, RIGHT, UP, DOWN = b"\x1b[D", b"\x1b[C", b"\x1b[A", b"\x1b[B"
HOME, END, DELETE = b"\x1b[H", b"\x1b[F", b"\x1b[3~"
COMMANDS = ["help", "sip register", "sip reset-log", "sip status", "status", "reboot"]


class Screen:
    """A dumb terminal of unlimited width: printable characters overwrite at the cursor, BS
    moves left (never past column 0), CR goes to column 0, LF to a new row; anything else in the
    output fails the test."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = [[]]
        self.col = 0
        self.bells = 0
        self.lowest = 10**9  # the leftmost column BS reached since the last CR

    def write(self, data: bytes) -> None:
        for ch in data.decode("utf-8"):
            self._put(ch)

    def _put(self, ch: str) -> None:
        row = self.rows[-1]
        if ch == "\b":
            self.col = max(0, self.col - 1)
            self.lowest = min(self.lowest, self.col)
        elif ch == "\r":
            self.col, self.lowest = 0, 10**9
        elif ch == "\n":
            self.rows.append([])
            self.col = 0
        elif ch == "\x07":
            self.bells += 1
        else:
            assert printable(ch), f"{ch!r} written to a dumb terminal"
            row.extend(" " * (self.col + 1 - len(row)))
            row[self.col] = ch
            self.col += 1

    @property
    def line(self) -> str:
        """The row the cursor is on, with "|" at the cursor (trailing blanks are not seen)."""
        text = "".join(self.rows[-1]).ljust(self.col)
        return (text[:self.col] + "|" + text[self.col:]).rstrip()

    @property
    def text(self) -> list[str]:
        """Every row as seen, without the cursor."""
        return ["".join(row).rstrip() for row in self.rows]


class Session:
    """A LineEditor wired to a Screen the way the console wires it to the serial port."""

    def __init__(self, prompt: str = "> ", **kwargs: object) -> None:
        self.editor = LineEditor(prompt, **kwargs)  # type: ignore[arg-type]
        self.screen = Screen()
        self.out = b""  # the bytes written for the last type() call
        self.screen.write(self.editor.start())

    def type(self, *chunks: bytes | str) -> list[Event]:
        """Feed each chunk as one read from the serial port; returns the events."""
        events: list[Event] = []
        self.out = b""
        for chunk in chunks:
            out, got = self.editor.feed(chunk.encode() if isinstance(chunk, str) else chunk)
            self.screen.write(out)
            self.out += out
            events += got
        return events

    def prompt(self) -> None:
        """The console is ready for the next line."""
        self.screen.write(self.editor.start())

    def enter(self, *chunks: bytes | str) -> str:
        """Type chunks, then Enter: the line delivered."""
        events = self.type(*chunks, b"\r")
        assert len(events) == 1 and isinstance(events[0], Line)
        self.prompt()
        return events[0].text


def completer(text: str) -> list[str]:
    return [c for c in COMMANDS if c.startswith(text)]


# -- typing and Enter -------------------------------------------------------------------------

def test_typing_at_the_end_echoes_just_the_characters() -> None:
    s = Session()
    assert s.screen.line == "> |"
    for ch in "abc":
        s.type(ch)
        assert s.out == ch.encode()
    assert s.screen.line == "> abc|"


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n", b"\r\x00"])
def test_each_enter_gives_one_line_and_a_new_screen_line(ending: bytes) -> None:
    s = Session()
    events = s.type(b"status" + ending)
    assert events == [Line("status")]
    assert s.out == b"status\r\n"
    assert s.screen.text == ["> status", ""]


@pytest.mark.parametrize("first, second", [(b"\r", b"\n"), (b"\r", b"\x00")])
def test_the_second_half_of_an_enter_in_the_next_read_is_not_another_enter(
        first: bytes, second: bytes) -> None:
    s = Session()
    assert s.type(b"ls" + first) == [Line("ls")]
    s.prompt()
    assert s.type(second) == []
    assert s.type(b"x") == [] and s.screen.line == "> x|"


@pytest.mark.parametrize("keys, lines", [(b"\r\r", 2), (b"\n\n", 2), (b"\n\r", 2),
                                         (b"\r\n\r\n", 2), (b"\r\x00\r\n\n", 3)])
def test_every_press_of_enter_is_one_line(keys: bytes, lines: int) -> None:
    s = Session()
    assert s.type(keys) == [Line("")] * lines


def test_a_line_after_cr_lf_is_not_mistaken_for_part_of_it() -> None:
    s = Session()
    assert s.type(b"a\r", b"\nb\r") == [Line("a"), Line("b")]


def test_after_enter_nothing_is_echoed_until_the_prompt_then_typed_ahead_text_shows() -> None:
    s = Session()
    s.type(b"reboot\r")
    s.type(b"sta", LEFT)
    assert s.out == b""
    assert s.screen.text == ["> reboot", ""]
    s.prompt()
    assert s.screen.line == "> st|a"
    s.type(b"x")
    assert s.screen.line == "> stx|a"
    assert s.enter() == "stxa"


def test_pasted_lines_are_each_delivered_once() -> None:
    s = Session()
    assert s.type(b"one\r\ntwo\r\nthr") == [Line("one"), Line("two")]
    s.prompt()
    assert s.enter("ee") == "three"


def test_start_shows_the_prompt_as_set_now() -> None:
    s = Session()
    s.type(b"x\r")
    s.editor.prompt = "luren# "
    s.prompt()
    assert s.screen.line == "luren# |"


# -- UTF-8 and control characters -------------------------------------------------------------

def test_swedish_letters_are_typed_and_echoed_in_utf8() -> None:
    s = Session()
    s.type("Växjö å")
    assert s.out == "Växjö å".encode()
    assert s.screen.line == "> Växjö å|"
    assert s.enter() == "Växjö å"


@pytest.mark.parametrize("text", ["å", "ö", "€", "😀", "𝄞"])
def test_a_character_split_over_reads_still_decodes(text: str) -> None:
    s = Session()
    encoded = text.encode()
    assert s.type(*(encoded[i:i + 1] for i in range(len(encoded)))) == []
    assert s.screen.line == f"> {text}|"
    assert s.enter() == text


@pytest.mark.parametrize("garbage", [b"\xff", b"\xfe\xfe", b"\x80", b"\xbf\xbf", b"\xc0\xaf",
                                     b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc3",
                                     b"\xe2\x82", b"\xf4\x90\x80\x80"])
def test_invalid_utf8_is_dropped_silently(garbage: bytes) -> None:
    s = Session()
    assert s.enter(b"a", garbage, b"b") == "ab"
    assert s.screen.text[0] == "> ab"


def test_a_broken_character_does_not_swallow_the_next_one() -> None:
    s = Session()
    assert s.enter(b"\xc3a\xe2\x82\xc3\xa5") == "aå"


@pytest.mark.parametrize("control", [b"\x00", b"\x07", b"\x0f", b"\x11", b"\x12", b"\x13",
                                     b"\x14", b"\x16", b"\x18", b"\x19", b"\x1a", b"\x1c",
                                     b"\x1d", b"\x1e", b"\x1f"])
def test_unbound_control_characters_are_ignored(control: bytes) -> None:
    s = Session()
    s.type(b"ab")
    assert s.type(control) == [] and s.out == b""
    assert s.enter(b"c") == "abc"


@pytest.mark.parametrize("char", ["\u0085", "\u009b", "\u200b", "\u202e", "\u2028", "\ufeff"])
def test_c1_format_and_separator_characters_are_ignored(char: str) -> None:
    s = Session()
    s.type("a" + char)
    assert s.out == b"a"
    assert s.enter("b") == "ab"


def test_every_code_point_is_one_column() -> None:
    s = Session()
    s.type("日本")
    s.type(b"\x7f")
    assert s.out == b"\x08 \x08"
    assert s.enter() == "日"


# -- editing keys -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", [b"\x08", b"\x7f"])
def test_backspace_at_the_end_rubs_out_the_last_character(key: bytes) -> None:
    s = Session()
    s.type(b"abc")
    s.type(key)
    assert s.out == b"\x08 \x08"
    assert s.screen.line == "> ab|"
    assert s.enter() == "ab"


@pytest.mark.parametrize("key", [b"\x08", b"\x7f", LEFT, HOME, b"\x17", b"\x15"])
def test_nothing_moves_left_of_the_start_of_the_line(key: bytes) -> None:
    s = Session()
    s.type(b"ab", HOME)
    s.type(key)
    assert s.out == b""
    assert s.screen.line == "> |ab" and s.screen.lowest >= 2


def test_typing_in_the_middle_rewrites_the_rest_and_backs_up() -> None:
    s = Session()
    s.type(b"abc", LEFT)
    s.type(b"X")
    assert s.out == b"Xc\x08"
    assert s.screen.line == "> abX|c"


def test_backspace_in_the_middle_closes_the_gap_and_blanks_the_old_end() -> None:
    s = Session()
    s.type(b"abcd", LEFT, LEFT)
    s.type(b"\x7f")
    assert s.out == b"\x08cd \x08\x08\x08"
    assert s.screen.line == "> a|cd"
    assert s.enter() == "acd"


@pytest.mark.parametrize("key", [DELETE, b"\x1b[3;5~", b"\x04"])
def test_delete_and_ctrl_d_remove_the_character_under_the_cursor(key: bytes) -> None:
    s = Session()
    s.type(b"abc", LEFT, LEFT)
    assert s.type(key) == []
    assert s.out == b"c \x08\x08"
    assert s.screen.line == "> a|c"
    s.type(END, key)
    assert s.out == b"c"  # End re-writes "c"; Delete at the end does nothing
    assert s.enter() == "ac"


def test_ctrl_d_on_an_empty_line_ends_input() -> None:
    s = Session()
    assert s.type(b"\x04") == [EndOfInput()]
    assert s.out == b"\r\n"
    s.prompt()
    assert s.screen.line == "> |"


@pytest.mark.parametrize("key", [LEFT, b"\x1bOD", b"\x02", b"\x1b[1;5D", b"\x1b[1;2D"])
def test_left_is_one_backspace(key: bytes) -> None:
    s = Session()
    s.type(b"abc")
    s.type(key)
    assert s.out == b"\x08"
    assert s.screen.line == "> ab|c"


@pytest.mark.parametrize("key", [RIGHT, b"\x1bOC", b"\x06", b"\x1b[1;5C"])
def test_right_rewrites_the_character_under_the_cursor(key: bytes) -> None:
    s = Session()
    s.type(b"abc", HOME)
    s.type(key)
    assert s.out == b"a"
    assert s.screen.line == "> a|bc"
    s.type(END, key)
    assert s.out == b"bc"  # End, then Right at the end does nothing


@pytest.mark.parametrize("key", [HOME, b"\x1b[1~", b"\x1b[7~", b"\x1bOH", b"\x01"])
def test_home_backs_up_to_the_start_of_the_line(key: bytes) -> None:
    s = Session()
    s.type("åbc")
    s.type(key)
    assert s.out == b"\x08\x08\x08"
    assert s.screen.line == "> |åbc"


@pytest.mark.parametrize("key", [END, b"\x1b[4~", b"\x1b[8~", b"\x1bOF", b"\x05"])
def test_end_rewrites_up_to_the_end_of_the_line(key: bytes) -> None:
    s = Session()
    s.type("åbc", HOME)
    s.type(key)
    assert s.out == "åbc".encode()
    assert s.screen.line == "> åbc|"


def test_ctrl_u_deletes_to_the_start() -> None:
    s = Session()
    s.type(b"sip status", LEFT * 6)
    s.type(b"\x15")
    assert s.screen.line == "> |status"
    assert s.enter() == "status"


def test_ctrl_k_deletes_to_the_end() -> None:
    s = Session()
    s.type(b"sip status", LEFT * 6)
    s.type(b"\x0b")
    assert s.out == b"      " + b"\x08" * 6
    assert s.screen.line == "> sip |"
    assert s.enter() == "sip "


def test_ctrl_w_deletes_the_word_before_the_cursor_and_the_blanks_after_it() -> None:
    s = Session()
    s.type(b"sip  reset-log  now", LEFT * 3)
    s.type(b"\x17")
    assert s.screen.line == "> sip  |now"
    s.type(b"\x17")
    assert s.screen.line == "> |now"
    assert s.enter() == "now"


def test_ctrl_l_shows_the_line_again_on_a_new_screen_line() -> None:
    s = Session()
    s.type(b"sip status", LEFT * 3)
    s.screen.write(b"\r\n[ 12.3] kernel: eth0 up")  # something else wrote to the port
    s.type(b"\x0c")
    assert s.screen.text[-2:] == ["[ 12.3] kernel: eth0 up", "> sip status"]
    assert s.screen.line == "> sip sta|tus"
    assert s.enter("x") == "sip staxtus"


def test_ctrl_c_drops_the_line_shows_caret_c_and_starts_a_new_line() -> None:
    s = Session()
    s.type(b"reboot", HOME)
    assert s.type(b"\x03") == [Interrupt()]
    assert s.screen.text == ["> reboot^C", ""]
    s.prompt()
    assert s.screen.line == "> |"
    assert s.editor.history == []


def test_ctrl_c_while_a_command_runs_is_shown_and_drops_typed_ahead_text() -> None:
    s = Session()
    s.type(b"ping\r")  # no prompt while ping runs
    s.screen.write(b"64 bytes")
    assert s.type(b"abc\x03") == [Interrupt()]
    assert s.screen.text[-2:] == ["64 bytes^C", ""]
    s.prompt()
    assert s.screen.line == "> |"


def test_edits_in_one_read_are_drawn_together() -> None:
    s = Session()
    s.type(b"abcdef" + HOME + DELETE + DELETE + b"XY" + END)
    assert s.out == b"XYcdef"
    assert s.screen.line == "> XYcdef|"


# -- escape sequences -------------------------------------------------------------------------

@pytest.mark.parametrize("sequence", [
    b"\x1b[200~", b"\x1b[201~", b"\x1b[15~", b"\x1b[24~", b"\x1b[?1h", b"\x1b[>c", b"\x1b[6n",
    b"\x1b[1;2;3;4Z", b"\x1b[ q", b"\x1b[Z", b"\x1b[M", b"\x1b[5;5H", b"\x1b[2;1A", b"\x1b[99~",
    b"\x1b[3;;~", b"\x1bOP", b"\x1bOS", b"\x1bOM", b"\x1bOj", b"\x1bO5P", b"\x1b[[A", b"\x1b[[E",
    b"\x1b\x7f", b"\x1b[" + b"1;" * 40 + b"A", b"\x1b[" + b"9" * 10_000 + b"m",
    b"\x1bO" + b"1" * 20 + b"A"])
def test_unknown_escape_sequences_are_swallowed(sequence: bytes) -> None:
    s = Session()
    s.type(b"ab", LEFT)
    assert s.type(sequence) == [] and s.out == b""
    assert s.enter(b"x") == "axb"


@pytest.mark.parametrize("sequence", [b"\x1b[A", b"\x1bOD", DELETE, b"\x1b[1;5C"])
def test_an_escape_sequence_split_over_reads_still_decodes(sequence: bytes) -> None:
    whole, split = Session(), Session()
    for s in (whole, split):
        s.enter("help")
        s.type(b"abc", LEFT)
    whole.type(sequence)
    split.type(*(sequence[i:i + 1] for i in range(len(sequence))))
    assert whole.screen.text == split.screen.text and whole.screen.line == split.screen.line


@pytest.mark.parametrize("after", [b"b", b" ", b"x", b"~", "ö".encode()])
def test_a_lone_escape_is_dropped_and_the_character_after_it_kept(after: bytes) -> None:
    s = Session()
    s.type(b"a\x1b", after)
    assert b"\x1b" not in s.out
    assert s.enter() == "a" + after.decode()


def test_escape_escape_starts_over() -> None:
    s = Session()
    s.type(b"ab\x1b\x1b[D")
    assert s.screen.line == "> a|b"


@pytest.mark.parametrize("cut", [b"\x1b", b"\x1b[", b"\x1b[1;", b"\x1bO"])
def test_enter_and_ctrl_c_still_act_inside_a_broken_sequence(cut: bytes) -> None:
    s = Session()
    assert s.type(b"ls", cut, b"\r") == [Line("ls")]
    s.prompt()
    assert s.type(b"ls", cut, b"\x03") == [Interrupt()]


@pytest.mark.parametrize("cut", [b"\x1b[", b"\x1b[12", b"\x1bO"])
def test_a_sequence_cut_by_a_non_ascii_byte_is_dropped(cut: bytes) -> None:
    s = Session()
    assert s.enter(b"a", cut, b"\xc3\xa5b") == "ab"


def test_the_key_decoder_names_keys_and_passes_text() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"a\x1b[Ab\x1b[3~\r\n\t") == ["a", Key.UP, "b", Key.DELETE, Key.ENTER,
                                                      Key.TAB]
    assert decoder.feed(b"\x1b[") == []
    decoder.reset()
    assert decoder.feed(b"A") == ["A"]


# -- history ----------------------------------------------------------------------------------

@pytest.mark.parametrize("up, down", [(UP, DOWN), (b"\x1bOA", b"\x1bOB"), (b"\x10", b"\x0e"),
                                      (b"\x1b[1;5A", b"\x1b[1;5B")])
def test_up_and_down_walk_the_history_and_come_back_to_the_line_being_typed(
        up: bytes, down: bytes) -> None:
    s = Session()
    for line in ("sip register", "status", "help"):
        s.enter(line)
    s.type(b"reb")
    s.type(up)
    assert s.screen.line == "> help|"
    s.type(up, up)
    assert s.screen.line == "> sip register|"
    s.type(up)
    assert s.out == b"" and s.screen.line == "> sip register|"  # the oldest: stays
    s.type(down)
    assert s.screen.line == "> status|"
    s.type(down, down)
    assert s.screen.line == "> reb|"
    s.type(down)
    assert s.out == b""
    assert s.enter("oot") == "reboot"


def test_a_shorter_entry_over_a_longer_one_blanks_the_rest() -> None:
    s = Session()
    s.enter("ls")
    s.type(b"sip reset-log", UP)
    assert s.screen.text[-1] == "> ls" and s.screen.line == "> ls|"


def test_a_recalled_entry_can_be_edited_and_entered() -> None:
    s = Session()
    s.enter("sip status 1")
    assert s.enter(UP, b"\x7f2") == "sip status 2"
    assert s.editor.history == ["sip status 1", "sip status 2"]


def test_empty_lines_and_repeats_are_not_remembered() -> None:
    s = Session()
    for line in ("", "status", "   ", "status", "help", "status"):
        s.enter(line)
    assert s.editor.history == ["status", "help", "status"]


def test_history_keeps_the_newest_entries_only() -> None:
    s = Session(history_size=3)
    for n in range(5):
        s.enter(f"cmd {n}")
    assert s.editor.history == ["cmd 2", "cmd 3", "cmd 4"]
    s.type(UP * 5)
    assert s.screen.line == "> cmd 2|"


def test_with_no_history_up_does_nothing() -> None:
    s = Session(history_size=0)
    s.enter("status")
    s.type(b"x", UP)
    assert s.editor.history == [] and s.screen.line == "> x|"


def test_history_is_a_copy() -> None:
    s = Session()
    s.enter("status")
    s.editor.history.append("reboot")
    assert s.editor.history == ["status"]


def test_an_interrupted_or_overlong_line_is_not_remembered() -> None:
    s = Session(max_line=4)
    s.type(b"abc\x03")
    s.prompt()
    assert s.type(b"abcdef\r") == [Overlong(6)]
    assert s.editor.history == []


# -- completion -------------------------------------------------------------------------------

def test_one_candidate_completes_with_a_space() -> None:
    s = Session(complete=completer)
    s.type(b"hel\t")
    assert s.screen.line == "> help |"
    assert s.enter(b"sip") == "help sip"


def test_several_candidates_extend_to_their_common_prefix() -> None:
    s = Session(complete=completer)
    s.type(b"sip r\t")
    assert s.out == b"sip re"
    assert s.screen.line == "> sip re|"


def test_candidates_with_nothing_to_add_are_listed_and_the_line_drawn_again() -> None:
    s = Session(complete=completer)
    s.type(b"sip ", HOME, END)
    s.type(b"\t")
    assert s.screen.text == ["> sip", "sip register  sip reset-log  sip status", "> sip"]
    assert s.screen.line == "> sip |"
    s.type(b"r\t")
    assert s.screen.line == "> sip re|"
    s.type(b"\t")
    assert s.screen.text[-2:] == ["sip register  sip reset-log", "> sip re"]


def test_a_long_list_wraps_at_78_columns() -> None:
    words = [f"{chr(ord('a') + n % 26)}-word{n:02}" for n in range(40)]
    s = Session(complete=lambda text: words)
    s.type(b"\t")
    listed = s.screen.text[1:-1]
    assert len(listed) > 1 and all(len(row) <= 78 for row in listed)
    assert "  ".join(listed).split("  ") == words
    assert s.screen.line == "> |"


def test_completion_gets_the_text_before_the_cursor_and_keeps_the_rest() -> None:
    seen: list[str] = []

    def complete(text: str) -> list[str]:
        seen.append(text)
        return completer(text)

    s = Session(complete=complete)
    s.type(b"stat 1", LEFT * 2, b"\t")
    assert seen == ["stat"]
    assert s.screen.line == "> status | 1"
    assert s.enter() == "status  1"


def test_no_candidate_rings_the_bell() -> None:
    s = Session(complete=completer)
    s.type(b"xyz")
    s.type(b"\t")
    assert s.out == b"\x07" and s.screen.line == "> xyz|"


def test_without_a_completer_tab_is_ignored() -> None:
    s = Session()
    s.type(b"ab")
    s.type(b"\t")
    assert s.out == b""
    assert s.enter() == "ab"


def test_a_failing_completer_rings_the_bell_and_the_line_survives() -> None:
    def broken(text: str) -> list[str]:
        raise RuntimeError("boom")

    s = Session(complete=broken)
    s.type(b"ab\t")
    assert s.screen.bells == 1
    assert s.enter() == "ab"


def test_control_characters_in_candidates_are_never_written() -> None:
    s = Session(complete=lambda text: ["sip \x1b[31mred", "sip \x1b[32mgreen"])
    s.type(b"\t")
    assert b"\x1b" not in s.out
    assert s.screen.line == "> sip [3|"


def test_a_completion_past_max_line_rings_the_bell() -> None:
    s = Session(max_line=8, complete=completer)
    s.type(b"sip res\t")
    assert s.screen.bells == 1 and s.screen.line == "> sip res|"


# -- secret entry -----------------------------------------------------------------------------

def test_secret_entry_echoes_nothing_and_remembers_nothing() -> None:
    s = Session(complete=completer)
    s.type(b"su\r")
    s.editor.prompt, s.editor.secret = "Password: ", True
    s.prompt()
    s.type("hemligt", b"\x7f\x7f", LEFT, HOME, END, b"\t", UP, b"\x0b", b"\x0c")
    assert s.screen.line == "Password: |"
    assert s.screen.text[-2:] == ["Password:", "Password:"]  # Ctrl-L: prompt again, no text
    events = s.type(b"t\r")
    assert events == [Line("hemlit")] and s.out == b"\r\n"
    assert s.editor.history == ["su"]


def test_ctrl_c_interrupts_secret_entry_without_showing_it() -> None:
    s = Session()
    s.editor.secret = True
    assert s.type(b"pin\x03") == [Interrupt()]
    assert s.screen.text == ["> ^C", ""]


# -- overlong lines ---------------------------------------------------------------------------

def test_past_max_line_characters_are_refused_with_one_bell() -> None:
    s = Session(max_line=5)
    s.type(b"abcdefgh")
    assert s.screen.line == "> abcde|" and s.screen.bells == 1
    assert s.type(b"\r") == [Overlong(8)]
    assert s.out == b"\r\n"


def test_a_ten_kilobyte_paste_is_refused_with_bounded_output() -> None:
    s = Session()
    assert s.type(b"x" * 10_240) == []
    assert s.screen.bells == 1 and len(s.out) == 1024 + 1
    assert s.type(b"\r") == [Overlong(10_240)]


def test_a_ten_kilobyte_paste_byte_by_byte_still_rings_once() -> None:
    s = Session()
    data = "å".encode() * 5000
    s.type(*(data[i:i + 1] for i in range(len(data))))
    assert s.screen.bells == 1 and len(s.out) == 2 * 1024 + 1
    assert s.type(b"\n") == [Overlong(5000)]


def test_each_new_overflow_rings_again() -> None:
    s = Session(max_line=3)
    s.type(b"abcd", b"\x7f", b"xy")
    assert s.screen.bells == 2 and s.screen.line == "> abx|"


def test_a_line_emptied_after_an_overflow_is_a_fresh_line() -> None:
    s = Session(max_line=3)
    s.type(b"abcd", b"\x15")
    assert s.enter(b"ok") == "ok"


# -- reset and construction -------------------------------------------------------------------

def test_reset_drops_the_partial_line_and_partial_input() -> None:
    s = Session()
    s.type(b"sip reg\x1b[")
    s.screen.write(s.editor.reset())
    assert s.screen.text == ["> sip reg", ">"]
    assert s.enter(b"A") == "A"


def test_reset_forgets_a_pending_cr() -> None:
    s = Session()
    s.type(b"a\r")
    s.screen.write(s.editor.reset())
    assert s.type(b"\n") == [Line("")]


@pytest.mark.parametrize("kwargs", [{"max_line": 0}, {"history_size": -1}])
def test_nonsense_limits_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        LineEditor(**kwargs)  # type: ignore[arg-type]


def test_events_are_frozen_values() -> None:
    assert Line("a") == Line("a") and Overlong(3) != Overlong(4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Line("a").text = "b"  # type: ignore[misc]


# -- garbage ----------------------------------------------------------------------------------

def _garbage(rng: random.Random) -> bytes:
    """Random bytes, half the time drawn mostly from the bytes the decoder treats specially."""
    if rng.random() < 0.5:
        return rng.randbytes(rng.randrange(65))
    alphabet = b"\x1b\x1b[[O0123456789;~ABCDFH\r\n\x00\x03\x04\x08\x7f\t\x0c\x15\x17\xc3\xa5\x80"
    return bytes(rng.choice(alphabet) for _ in range(rng.randrange(65)))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("options", [{}, {"max_line": 20, "complete": completer}])
def test_garbage_never_raises_and_the_screen_shows_what_is_delivered(
        seed: int, options: dict[str, object]) -> None:
    rng = random.Random(seed)
    s = Session(**options)
    for _ in range(60):
        if s.type(_garbage(rng)):
            s.prompt()  # as the console does after every event
        seen = s.screen.text[-1]
        assert s.screen.lowest >= 2  # never backed into the prompt
        events = s.type(b"\x05\r")  # End, Enter: what does the editor hold?
        if isinstance(events[0], Line):
            assert seen == ("> " + events[0].text).rstrip()
        else:
            assert isinstance(events[0], Overlong)
        s.prompt()
