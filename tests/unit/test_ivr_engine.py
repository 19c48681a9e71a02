from collections.abc import Callable
from typing import Any

import pytest

from firmware.clock import ManualClock
from firmware.ivr.engine import DONE, END, RETRY, DigitsInput, Menu, MenuRunner, Node, Option
from firmware.ivr.menus import (
    caller_menu,
    caller_tree,
    owner_menu,
    pin_menu,
    referral_menu,
    remote_owner_menu,
)


class RecordingHost:
    """Stands for the phone: records every call; `answers` says what `act` returns."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.answers = answers or {}
        self.on_act: Callable[[str, Any], None] | None = None

    def play(self, prompts: list[str]) -> None:
        self.calls.append(("play", list(prompts)))

    def stop_prompts(self) -> None:
        self.calls.append(("stop",))

    def act(self, action: str, arg: Any) -> str | None:
        self.calls.append(("act", action, arg))
        if self.on_act:
            self.on_act(action, arg)
        answer = self.answers.get(action)
        return answer(arg) if callable(answer) else answer

    def end(self) -> None:
        self.calls.append(("end",))

    def take(self) -> list[tuple[Any, ...]]:
        taken, self.calls = self.calls, []
        return taken

    def acts(self) -> list[tuple[Any, ...]]:
        return [call[1:] for call in self.calls if call[0] == "act"]


def run(tree: dict[str, Node], start: str, host: RecordingHost | None = None,
        ) -> tuple[MenuRunner, RecordingHost, ManualClock]:
    host = host or RecordingHost()
    clock = ManualClock()
    runner = MenuRunner(tree, start, host, clock)
    runner.start()
    return runner, host, clock


def owner(host: RecordingHost | None = None) -> tuple[MenuRunner, RecordingHost, ManualClock]:
    runner, host, clock = run(owner_menu(), "main", host)
    assert host.take() == [("play", ["owner_main_menu"])]
    runner.prompt_finished()
    return runner, host, clock


# --- owner menu ---------------------------------------------------------------------------


def test_owner_main_repeat_with_0() -> None:
    runner, host, _ = owner()
    runner.digit("0")
    assert host.take() == [("play", ["owner_main_menu"])]
    assert runner.current == "main"


def test_owner_star_ends_call() -> None:
    runner, host, clock = owner()
    runner.digit("*")
    assert host.take() == [("play", ["goodbye"]), ("end",)]
    assert runner.ended
    assert clock.pending() == 0


def test_owner_4_plays_greeting_then_menu() -> None:
    runner, host, _ = owner()
    runner.digit("4")
    assert host.take() == [("play", ["personal_greeting", "owner_main_menu"])]


def test_owner_6_deletes_greeting() -> None:
    runner, host, _ = owner()
    runner.digit("6")
    assert host.take() == [("act", "delete_greeting", None),
                           ("play", ["greeting_deleted", "owner_main_menu"])]


def test_owner_5_records_after_tone_and_hash_saves() -> None:
    runner, host, _ = owner()
    runner.digit("5")
    assert host.take() == [("play", ["record_greeting_after_tone", "tone"])]
    runner.prompt_finished()
    assert host.take() == [("act", "start_recording", None)]
    runner.digit("#")
    assert host.take() == [("act", "stop_recording", None),
                           ("play", ["greeting_saved", "owner_main_menu"])]
    assert runner.current == "main"


def test_owner_5_recording_time_limit_saves() -> None:
    runner, host, clock = owner()
    runner.digit("5")
    runner.prompt_finished()
    host.take()
    clock.advance(119)
    assert host.take() == []
    clock.advance(1)
    assert host.take() == [("act", "stop_recording", None),
                           ("play", ["greeting_saved", "owner_main_menu"])]


def test_owner_message_loop_every_key() -> None:
    runner, host, _ = owner()
    runner.digit("2")
    assert host.take() == [("act", "start_messages", None), ("play", ["current_message"])]
    assert runner.current == "messages"
    expected = {
        "1": [("stop",), ("act", "previous_message", None), ("play", ["current_message"])],
        "2": [("stop",), ("play", ["current_message"])],
        "3": [("stop",), ("act", "next_message", None), ("play", ["current_message"])],
        "7": [("stop",), ("act", "delete_message", None),
              ("play", ["message_deleted", "current_message"])],
    }
    for key, calls in expected.items():
        runner.digit(key)  # while the message plays: barge-in
        assert host.take() == calls, key
    runner.digit("0")
    assert host.take() == [("stop",), ("play", ["owner_main_menu"])]
    runner.prompt_finished()
    runner.digit("2")
    runner.digit("*")
    assert host.take() == [("act", "start_messages", None), ("play", ["current_message"]),
                           ("stop",), ("play", ["goodbye"]), ("end",)]


def test_owner_silence_after_message_plays_next_until_end_of_messages() -> None:
    left = iter([None, "end_of_messages"])
    runner, host, clock = owner(RecordingHost({"next_message": lambda _: next(left)}))
    runner.digit("2")
    runner.prompt_finished()
    host.take()
    clock.advance(5)
    assert host.take() == [("act", "next_message", None), ("play", ["current_message"])]
    runner.prompt_finished()
    clock.advance(5)
    assert host.take() == [("act", "next_message", None), ("play", ["no_more_messages"])]
    runner.prompt_finished()
    clock.advance(0)
    assert host.take() == [("play", ["owner_main_menu"])]
    assert runner.current == "main"


def test_owner_no_messages() -> None:
    runner, host, clock = owner(RecordingHost({"start_messages": "no_messages"}))
    runner.digit("2")
    assert host.take() == [("act", "start_messages", None), ("play", ["no_messages"])]
    runner.prompt_finished()
    clock.advance(0)
    assert runner.current == "main"


# --- failures, timeouts, robustness --------------------------------------------------------


def test_invalid_digit_then_valid() -> None:
    runner, host, _ = owner()
    runner.digit("9")
    assert host.take() == [("play", ["invalid", "owner_main_menu"])]
    assert runner.failures == 1
    runner.prompt_finished()
    runner.digit("6")
    assert host.take()[0] == ("act", "delete_greeting", None)
    assert runner.failures == 0


def test_two_timeouts_goodbye_and_end() -> None:
    runner, host, clock = owner()
    clock.advance(4.9)
    assert host.take() == []
    clock.advance(0.1)
    assert host.take() == [("play", ["no_input", "owner_main_menu"])]
    clock.advance(60)  # the timeout waits for the prompt to finish
    assert host.take() == []
    runner.prompt_finished()
    clock.advance(5)
    assert host.take() == [("play", ["goodbye"]), ("end",)]
    assert runner.ended and clock.pending() == 0


def test_invalid_then_timeout_count_together() -> None:
    runner, host, clock = owner()
    runner.digit("8")
    runner.prompt_finished()
    clock.advance(5)
    assert host.take()[-2:] == [("play", ["goodbye"]), ("end",)]


def test_endless_invalid_digits_end_after_retries() -> None:
    runner, host, clock = owner()
    runner.digits("9" * 1000)
    calls = host.take()
    assert calls == [("play", ["invalid", "owner_main_menu"]), ("stop",),
                     ("play", ["goodbye"]), ("end",)]
    assert runner.ended and clock.pending() == 0


def test_barge_in_stops_prompt_only_while_playing() -> None:
    runner, host, _ = run(owner_menu(), "main")
    host.take()
    runner.digit("0")  # prompt still playing
    assert host.take() == [("stop",), ("play", ["owner_main_menu"])]
    runner.prompt_finished()
    runner.digit("0")
    assert host.take() == [("play", ["owner_main_menu"])]


def test_digits_after_end_and_before_start_ignored() -> None:
    host = RecordingHost()
    clock = ManualClock()
    runner = MenuRunner(owner_menu(), "main", host, clock)
    runner.digit("2")
    assert host.take() == []
    runner.start()
    runner.digit("*")
    host.take()
    runner.digits("2450")
    runner.prompt_finished()
    clock.advance(100)
    assert host.take() == []


def test_stop_cancels_timers_silently() -> None:
    runner, host, clock = owner()
    assert clock.pending() == 1
    runner.stop()
    assert clock.pending() == 0
    clock.advance(100)
    runner.digit("2")
    assert host.take() == []


def test_fast_digits_processed_in_order() -> None:
    runner, host, _ = owner()
    runner.digits("2370*")  # all before any prompt finishes
    assert host.take() == [
        ("act", "start_messages", None), ("play", ["current_message"]),
        ("stop",), ("act", "next_message", None), ("play", ["current_message"]),
        ("stop",), ("act", "delete_message", None),
        ("play", ["message_deleted", "current_message"]),
        ("stop",), ("play", ["owner_main_menu"]),
        ("stop",), ("play", ["goodbye"]), ("end",),
    ]


def test_digits_fed_from_inside_act_wait_their_turn() -> None:
    host = RecordingHost()
    runner, host, _ = owner(host)
    host.on_act = lambda action, _: runner.digit("3") if action == "start_messages" else None
    runner.digit("2")
    assert [call[:2] for call in host.take()] == [
        ("act", "start_messages"), ("play", ["current_message"]),
        ("stop",), ("act", "next_message"), ("play", ["current_message"])]


def test_non_dtmf_input_ignored() -> None:
    runner, host, _ = owner()
    runner.digit("x")
    runner.digit("")
    assert host.take() == []
    assert runner.failures == 0


def test_host_returned_unknown_node_is_an_error() -> None:
    runner, _, _ = owner(RecordingHost({"start_messages": "nowhere"}))
    with pytest.raises(ValueError, match="nowhere"):
        runner.digit("2")


def test_tree_validation() -> None:
    with pytest.raises(ValueError, match="missing"):
        MenuRunner({"a": Menu("a", [], {"1": Option(goto="a")})}, "missing", RecordingHost(),
                   ManualClock())
    with pytest.raises(ValueError, match="not in the tree"):
        MenuRunner({"a": Menu("a", [], {"1": Option(goto="b")})}, "a", RecordingHost(),
                   ManualClock())
    with pytest.raises(ValueError, match="DTMF"):
        MenuRunner({"a": Menu("a", [], {"11": Option()})}, "a", RecordingHost(), ManualClock())
    with pytest.raises(ValueError, match="stored under"):
        MenuRunner({"a": Menu("b", [], {})}, "a", RecordingHost(), ManualClock())


def test_menu_without_prompt_listens_at_once() -> None:
    tree: dict[str, Node] = {"a": Menu("a", [], {"1": Option("x")}, on_timeout=Option(goto=END))}
    _, host, clock = run(tree, "a")
    assert clock.pending() == 1
    clock.advance(5)
    assert host.take() == [("play", ["goodbye"]), ("end",)]


def test_option_without_goto_stays_and_listens() -> None:
    tree: dict[str, Node] = {"a": Menu("a", ["a"], {"1": Option("x")})}
    runner, host, clock = run(tree, "a")
    runner.prompt_finished()
    host.take()
    runner.digit("1")
    assert host.take() == [("act", "x", None)]
    assert runner.current == "a" and clock.pending() == 1


# --- collected digits, PIN -----------------------------------------------------------------


def remote(answer: Any) -> tuple[MenuRunner, RecordingHost, ManualClock]:
    runner, host, clock = run(remote_owner_menu(), "pin", RecordingHost({"pin": answer}))
    assert host.take() == [("play", ["enter_pin"])]
    runner.prompt_finished()
    return runner, host, clock


def test_pin_collected_with_hash_then_owner_menu() -> None:
    runner, host, _ = remote(lambda pin: None if pin == "1234" else RETRY)
    runner.digits("1234#")
    assert host.take() == [("act", "pin", "1234"), ("play", ["owner_main_menu"])]
    assert runner.current == "main"


def test_pin_interdigit_timeout_restarts_after_each_digit() -> None:
    runner, host, clock = remote(None)
    for key in "123":
        clock.advance(4)
        runner.digit(key)
    clock.advance(4)
    runner.digit("#")
    assert host.take()[0] == ("act", "pin", "123")


def test_pin_lockout_after_three_wrong() -> None:
    runner, host, _ = remote(RETRY)
    runner.digits("1111#")
    assert host.take() == [("act", "pin", "1111"), ("play", ["pin_wrong", "enter_pin"])]
    runner.prompt_finished()
    runner.digits("2222#")
    runner.prompt_finished()
    host.take()
    runner.digits("3333#")
    assert host.take() == [("act", "pin", "3333"), ("play", ["locked", "goodbye"]), ("end",)]
    runner.digits("1234#")
    assert host.take() == []


def test_pin_empty_is_a_wrong_attempt_without_asking_host() -> None:
    runner, host, _ = remote(None)
    runner.digit("#")
    assert host.take() == [("play", ["pin_wrong", "enter_pin"])]


def test_digits_input_delivers_at_max_digits() -> None:
    tree: dict[str, Node] = {"d": DigitsInput("d", ["d"], 3, then=Option("got", goto=DONE))}
    runner, host, _ = run(tree, "d")
    host.take()
    runner.digits("12345")
    assert host.take() == [("stop",), ("act", "got", "123")]
    assert runner.ended


def test_star_while_collecting_is_invalid() -> None:
    runner, host, _ = remote(None)
    runner.digits("12*")
    assert host.take() == [("play", ["pin_wrong", "enter_pin"])]


# --- referral ------------------------------------------------------------------------------

STATUSES = {"0": "available", "1": "meeting", "2": "lunch", "3": "busy", "4": "away",
            "5": "gone_for_today", "6": "vacation", "7": "sick", "8": "course"}


def referral() -> tuple[MenuRunner, RecordingHost, ManualClock]:
    runner, host, clock = run(referral_menu(STATUSES), "referral")
    assert host.take() == [("play", ["referral_menu",
                                     *(f"referral_option_{k}" for k in "012345678")])]
    runner.prompt_finished()
    return runner, host, clock


def test_referral_with_minutes() -> None:
    runner, host, _ = referral()
    runner.digit("1")
    assert host.take() == [("act", "set_referral", "meeting"), ("play", ["enter_minutes"])]
    runner.prompt_finished()
    runner.digits("45#")
    assert host.take() == [("act", "referral_minutes", "45"),
                           ("play", ["referral_saved", "goodbye"]), ("end",)]


def test_referral_with_empty_minutes() -> None:
    runner, host, _ = referral()
    runner.digit("3")
    runner.prompt_finished()
    runner.digit("#")
    assert host.acts() == [("set_referral", "busy"), ("referral_minutes", "")]
    assert host.calls[-1] == ("end",)


def test_referral_minutes_silence_means_no_duration() -> None:
    runner, host, clock = referral()
    runner.digit("2")
    runner.prompt_finished()
    clock.advance(5)
    assert host.acts() == [("set_referral", "lunch"), ("referral_minutes", "")]


def test_referral_available_asks_no_minutes() -> None:
    runner, host, _ = referral()
    runner.digit("0")
    assert host.take() == [("act", "set_referral", "available"),
                           ("play", ["referral_saved", "goodbye"]), ("end",)]


def test_referral_keys_must_be_0_to_8() -> None:
    with pytest.raises(ValueError):
        referral_menu({"9": "x"})


# --- caller --------------------------------------------------------------------------------

CALLER_OPTIONS = {"1": ("transfer", "100"), "2": ("leave_message", None)}


def test_caller_no_input_leaves_message() -> None:
    runner, host, clock = run(caller_menu(CALLER_OPTIONS), "caller")
    assert host.take() == [("play", ["announcement", "caller_option_1", "caller_option_2"])]
    runner.prompt_finished()
    clock.advance(5)
    assert host.take() == [("act", "leave_message", None), ("play", ["greeting"])]
    runner.prompt_finished()
    clock.advance(0)
    assert host.take() == [("play", ["tone"])]
    runner.prompt_finished()
    assert host.take() == [("act", "start_message", None)]
    runner.digits("123")  # keys while recording are ignored: no retry, no prompt
    assert host.take() == []
    runner.digit("#")
    assert host.take() == [("act", "stop_message", None),
                           ("play", ["message_saved", "goodbye"]), ("end",)]
    assert runner.ended and clock.pending() == 0


def test_caller_message_ends_at_the_time_limit() -> None:
    runner, host, clock = run(caller_menu(CALLER_OPTIONS, max_message_s=30), "caller")
    runner.digit("2")
    runner.digit("#")  # skips the greeting
    assert host.take()[-1] == ("play", ["tone"])
    runner.prompt_finished()
    clock.advance(29)
    assert host.acts() == [("start_message", None)]
    clock.advance(1)
    assert host.acts()[-1] == ("stop_message", None) and host.calls[-1] == ("end",)


def test_caller_mailbox_full_says_so_and_hangs_up() -> None:
    host = RecordingHost({"leave_message": "mailbox_full"})
    runner, host, clock = run(caller_menu(CALLER_OPTIONS), "caller", host)
    runner.digit("2")
    assert host.take()[-1] == ("play", ["mailbox_full"])
    runner.prompt_finished()
    clock.advance(0)
    assert host.take() == [("play", ["goodbye"]), ("end",)]
    assert "start_message" not in [a for a, _ in host.acts()]


def test_caller_transfer_hands_call_to_host() -> None:
    runner, host, _ = run(caller_menu(CALLER_OPTIONS), "caller")
    host.take()
    runner.digit("1")
    assert host.take() == [("stop",), ("act", "transfer", "100")]
    assert runner.ended


def test_caller_star_leads_to_the_pin_and_the_remote_menu() -> None:
    tree = caller_tree(CALLER_OPTIONS, STATUSES, remote=True)
    runner, host, _ = run(tree, "caller", RecordingHost({"pin": None}))
    runner.digit("*")
    assert host.take()[-1] == ("play", ["enter_pin"])
    runner.digits("1234#")
    assert host.take()[-1] == ("play", ["remote_menu"])
    runner.digit("2")
    assert host.take()[-1][1][0] == "referral_menu"
    runner.digit("2")
    runner.digits("30#")
    assert host.acts()[-2:] == [("set_referral", "lunch"), ("referral_minutes", "30")]


def test_caller_star_is_invalid_without_remote_access() -> None:
    runner, host, _ = run(caller_tree(CALLER_OPTIONS, STATUSES, remote=False), "caller")
    host.take()
    runner.digit("*")
    assert host.take() == [("stop",), ("play", ["invalid", "announcement", "caller_option_1",
                                                "caller_option_2"])]


def test_all_trees_validate() -> None:
    for tree, start in [(owner_menu(), "main"), (remote_owner_menu(), "pin"),
                        (caller_menu(CALLER_OPTIONS), "caller"),
                        (caller_tree(CALLER_OPTIONS, STATUSES, remote=True), "caller"),
                        (referral_menu(STATUSES), "referral")]:
        MenuRunner(tree, start, RecordingHost(), ManualClock())
    with pytest.raises(ValueError):
        MenuRunner(pin_menu("main"), "pin", RecordingHost(), ManualClock())


def test_owner_menu_keys_match_the_seed() -> None:
    tree = owner_menu()
    main, messages = tree["main"], tree["messages"]
    assert isinstance(main, Menu) and isinstance(messages, Menu)
    assert sorted(main.options) == sorted("24560*")
    assert sorted(messages.options) == sorted("12370*")
