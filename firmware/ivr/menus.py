"""The phone's touch-tone menus, as data, in one place.

Prompt names are resolved by the host (recorded file or speech); a few are placeholders for
audio that changes: "announcement" (the active referral announcement), "current_message" (the
message the owner is on, preceded by its date, time and caller), "personal_greeting" (the
owner's recorded greeting, or a "no greeting recorded" notice), "referral_option_<key>" and
"caller_option_<key>" (one configured option read out).

Owner menu (the seed, exactly). Main: 2 listen to saved messages, 4 listen to personal greeting,
5 record personal greeting, 6 delete personal greeting, * end call, 0 repeat this menu. While a
message plays: 1 previous, 2 repeat current, 3 next, 7 delete current, 0 main menu, * end call.

New and saved messages: the seed has one listening key, "2: listen to saved messages". It plays
every message: new messages first (oldest first), then saved ones (newest first), each preceded
by its date, time and caller. A new message counts as saved once it has been played, so the
key's name stays true for the next session. The host keeps that list and the position in it:

- `start_messages` puts the position on the first message; returns "no_messages" if none.
- `next_message` / `previous_message` move it; `next_message` past the last returns
  "end_of_messages"; `previous_message` on the first stays there.
- `delete_message` deletes the current one, moves to the next; returns "end_of_messages" if none
  is left. Silence after a message plays the next one.
- `start_recording` (after the tone), `stop_recording` (# or the time limit: keep it),
  `cancel_recording` (*), `delete_greeting`.

Actions of the other trees: `transfer` (caller menu; the host takes the call over),
`leave_message` (returns "mailbox_full" when the mailbox is full), `start_message` /
`stop_message` (recording the caller after the tone), `set_referral` with the referral type
key and `referral_minutes` with the digits ("" = no duration), `pin` with the digits (return
None if right, `RETRY` if wrong, `END` while locked out; the host keeps the count of wrong PINs
across calls).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from firmware.ivr.engine import DONE, END, DigitsInput, Menu, Node, Option

OWNER_START = "main"
CALLER_START = "caller"
REFERRAL_START = "referral"
PIN_START = "pin"
REMOTE_START = "remote"
MESSAGE = "leave_message"

RECORDING_LIMIT_S = 120.0
_SAVED = Option("stop_recording", goto="main", prompt=["greeting_saved"])


def owner_menu() -> dict[str, Node]:
    """The owner's message menu: main menu, message loop, greeting recording."""
    main = Menu("main", ["owner_main_menu"], {
        "2": Option("start_messages", goto="messages"),
        "4": Option(goto="main", prompt=["personal_greeting"]),
        "5": Option(goto="record_greeting"),
        "6": Option("delete_greeting", goto="main", prompt=["greeting_deleted"]),
        "*": Option(goto=END),
        "0": Option(goto="main"),
    })
    messages = Menu("messages", ["current_message"], {
        "1": Option("previous_message", goto="messages"),
        "2": Option(goto="messages"),
        "3": Option("next_message", goto="messages"),
        "7": Option("delete_message", goto="messages", prompt=["message_deleted"]),
        "0": Option(goto="main"),
        "*": Option(goto=END),
    }, on_timeout=Option("next_message", goto="messages"))
    record = Menu("record_greeting", ["record_greeting_after_tone", "tone"], {
        "#": _SAVED,
        "*": Option("cancel_recording", goto="main"),
    }, timeout_s=RECORDING_LIMIT_S, on_timeout=_SAVED, on_ready="start_recording")
    nodes = [main, messages, record, _back_to_main("no_messages"),
             _back_to_main("end_of_messages", ["no_more_messages"])]
    return {node.name: node for node in nodes}


def _back_to_main(name: str, prompt: list[str] | None = None) -> Menu:
    """A notice that returns to the main menu as soon as it has played."""
    options = {"0": Option(goto="main"), "*": Option(goto=END)}
    return Menu(name, prompt or [name], options, timeout_s=0.0, on_timeout=Option(goto="main"))


def caller_menu(options: Mapping[str, tuple[str, Any]], *, timeout_s: float = 5.0,
                max_message_s: float = RECORDING_LIMIT_S,
                remote_key: str | None = None) -> dict[str, Node]:
    """The announcement, then configured keys, e.g. {"1": ("transfer", "100"),
    "2": ("leave_message", None)}; no input leaves a message.

    `transfer` hands the call to the host (`DONE`). `leave_message` goes to the greeting, the
    tone and the recording: # (or `max_message_s`, or silence, which the host turns into #)
    ends it; other keys are ignored. The host's `leave_message` returns "mailbox_full" when
    nothing can be kept. `remote_key` (not read out) leads to the owner's PIN, and after it to
    the remote menu: 1 messages (the owner menu), 2 referral; see `remote_tree()`.
    """
    prompt = ["announcement", *(f"caller_option_{key}" for key in options)]
    keys = {key: Option(action, arg, goto=MESSAGE if action == "leave_message" else DONE)
            for key, (action, arg) in options.items()}
    if remote_key is not None:
        if remote_key in keys:
            raise ValueError(f"the remote access key {remote_key!r} is also a caller option")
        keys[remote_key] = Option(goto=PIN_START)
    menu = Menu(CALLER_START, prompt, keys, timeout_s=timeout_s,
                on_timeout=Option("leave_message", goto=MESSAGE))
    saved = Option("stop_message", goto=END, prompt=["message_saved"])
    greeting = Menu(MESSAGE, ["greeting"], {"#": Option(goto="record_message")},
                    timeout_s=0.0, on_timeout=Option(goto="record_message"),
                    ignore_other_keys=True)
    record = Menu("record_message", ["tone"], {"#": saved}, timeout_s=max_message_s,
                  on_timeout=saved, on_ready="start_message", ignore_other_keys=True)
    full = Menu("mailbox_full", ["mailbox_full"], {}, timeout_s=0.0, on_timeout=Option(goto=END),
                ignore_other_keys=True)
    return {node.name: node for node in (menu, greeting, record, full)}


def referral_menu(statuses: Mapping[str, str], *,
                  no_minutes: Collection[str] = ("available", "gone")) -> dict[str, Node]:
    """Reads the options (keys 0-8 → referral type), sets one, then asks for minutes.

    Types in `no_minutes` are set without asking. Minutes end with #; # alone, or no input,
    means no duration.
    """
    bad = [key for key in statuses if len(key) != 1 or key not in "012345678"]
    if bad:
        raise ValueError(f"referral keys must be 0-8, got {bad}")
    saved = ["referral_saved"]
    keys = {key: Option("set_referral", status, goto=END, prompt=saved) if status in no_minutes
            else Option("set_referral", status, goto="referral_minutes")
            for key, status in sorted(statuses.items())}
    keys["*"] = Option(goto=END)
    prompt = ["referral_menu", *(f"referral_option_{key}" for key in sorted(statuses))]
    minutes = DigitsInput("referral_minutes", ["enter_minutes"], 4,
                          then=Option("referral_minutes", goto=END, prompt=saved),
                          on_timeout=Option("referral_minutes", "", goto=END, prompt=saved))
    menu = Menu(REFERRAL_START, prompt, keys)
    return {menu.name: menu, minutes.name: minutes}


def pin_menu(next_node: str = OWNER_START, *, attempts: int = 3,
             max_digits: int = 8) -> dict[str, Node]:
    """PIN entry ending with #; `attempts` wrong PINs (or silences) → "locked" and hang up.

    Needs `next_node` in the same tree: see `remote_owner_menu()`.
    """
    entry = DigitsInput(PIN_START, ["enter_pin"], max_digits, then=Option("pin", goto=next_node),
                        min_digits=1, retries=attempts, invalid_prompt=["pin_wrong"],
                        goodbye_prompt=["locked", "goodbye"])
    return {entry.name: entry}


def remote_owner_menu() -> dict[str, Node]:
    """Remote access: the PIN first, then the owner menu."""
    return {**pin_menu(OWNER_START), **owner_menu()}


def remote_tree(statuses: Mapping[str, str]) -> dict[str, Node]:
    """After the PIN: 1 the owner menu, 2 the referral menu, * end call."""
    choice = Menu(REMOTE_START, ["remote_menu"], {
        "1": Option(goto=OWNER_START), "2": Option(goto=REFERRAL_START), "*": Option(goto=END)})
    return {**pin_menu(REMOTE_START), choice.name: choice, **owner_menu(),
            **referral_menu(statuses)}


def caller_tree(options: Mapping[str, tuple[str, Any]], statuses: Mapping[str, str], *,
                remote: bool, timeout_s: float = 5.0,
                max_message_s: float = RECORDING_LIMIT_S) -> dict[str, Node]:
    """Everything a call the phone answers can reach: the caller menu and message, and with
    `remote` the * key to the PIN and the owner's remote menu."""
    tree = caller_menu(options, timeout_s=timeout_s, max_message_s=max_message_s,
                       remote_key="*" if remote else None)
    if remote:
        tree.update(remote_tree(statuses))
    return tree
