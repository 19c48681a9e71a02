"""Touch-tone menus: one engine runs menu trees that are plain data.

`engine` holds the data classes (`Menu`, `Option`, `DigitsInput`) and `MenuRunner`, which plays
prompts, reads keys, times out and retries through a `MenuHost` (the phone). `menus` holds the
phone's trees (owner, caller, referral, PIN) in one place. Pure logic: no audio, no SIP, no threads.
"""

from firmware.ivr.engine import (
    DONE,
    END,
    RETRY,
    DigitsInput,
    Menu,
    MenuHost,
    MenuRunner,
    Node,
    Option,
    validate_tree,
)

__all__ = [
    "DONE",
    "END",
    "RETRY",
    "DigitsInput",
    "Menu",
    "MenuHost",
    "MenuRunner",
    "Node",
    "Option",
    "validate_tree",
]
