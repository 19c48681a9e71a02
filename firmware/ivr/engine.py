"""One engine for every touch-tone menu: trees are data, the phone is the `MenuHost`.

A tree maps node names to nodes. A `Menu` plays its prompt and maps single keys to `Option`s; a
`DigitsInput` collects several digits (a PIN, minutes) up to a terminator. An `Option` names an
action the host carries out (`host.act(action, arg)`) and/or where to go next (`goto`): another
node, or one of the targets `END` (goodbye and hang up), `DONE` (the host has taken over the
call: transfer, leave a message) or `RETRY` (counts as a failed attempt, e.g. a wrong PIN).

Every key source (RFC 4733, SIP INFO, in-band detection, the simulator) calls `digit()`.
Timing (all through the phone's `Clock`):

- `host.play(prompts)` starts a prompt; the host calls `prompt_finished()` when it has played,
  and only then does the node's timeout start. A key while a prompt plays stops it
  (`host.stop_prompts()`, barge-in) and is handled at once.
- An invalid key or a timeout is a failure: the failure prompt and the node's prompt play again.
  The `retries`-th failure in a row plays the goodbye prompt and calls `host.end()` (the host
  hangs up once the queued prompts have played). A valid choice resets the count.
- Keys are handled strictly in order, also when the host feeds keys from inside `act()`/`play()`.
  After the end (or `stop()`) keys, prompt completions and timers are ignored.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from firmware.clock import Clock, Timer

log = logging.getLogger(__name__)

END = "@end"
"""Goto target: play the goodbye prompt, then `host.end()`."""
DONE = "@done"
"""Goto target: stop listening without hanging up; the host now owns the call."""
RETRY = "@retry"
"""Goto target (usually returned by `act`): the attempt failed, play the invalid prompt again."""

DTMF_KEYS = frozenset("0123456789*#ABCD")
_TARGETS = frozenset({END, DONE, RETRY})


@dataclass(frozen=True)
class Option:
    """What a key does: `act(action, arg)` if `action` is set, then go to `goto`.

    `act` may return a node name (or `END`/`DONE`/`RETRY`) that replaces `goto`. With no target
    at all the runner stays in the node and listens again. `prompt` plays before the next node's
    prompt (a confirmation such as "message_deleted").
    """

    action: str | None = None
    arg: Any = None
    goto: str | None = None
    prompt: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Menu:
    """A prompt and the keys it accepts; `*` and `0` are keys like any other.

    `on_timeout` replaces the retry on no input (e.g. a caller who says nothing leaves a
    message). `on_ready` is an action carried out whenever the prompt has finished (e.g. start
    recording after the tone). `ignore_other_keys`: a key the menu has no option for is
    dropped, without a failure, and neither stops the prompt nor restarts the timeout (a caller
    pressing keys while leaving a message).
    """

    name: str
    prompt: list[str]
    options: dict[str, Option]
    timeout_s: float = 5.0
    retries: int = 2
    on_timeout: Option | None = None
    invalid_prompt: list[str] = field(default_factory=lambda: ["invalid"])
    timeout_prompt: list[str] = field(default_factory=lambda: ["no_input"])
    goodbye_prompt: list[str] = field(default_factory=lambda: ["goodbye"])
    on_ready: str | None = None
    ignore_other_keys: bool = False


@dataclass(frozen=True)
class DigitsInput:
    """Collects up to `max_digits` digits; `terminator` (or the last digit) delivers them.

    The digits go to `then` as `act(then.action, "1234")` (possibly ""); `timeout_s` runs from the
    end of the prompt and again after every digit. Fewer than `min_digits` is a failure, and so
    is a `*` or a letter key.
    """

    name: str
    prompt: list[str]
    max_digits: int
    _: KW_ONLY
    then: Option
    terminator: str = "#"
    min_digits: int = 0
    timeout_s: float = 5.0
    retries: int = 2
    on_timeout: Option | None = None
    invalid_prompt: list[str] = field(default_factory=lambda: ["invalid"])
    timeout_prompt: list[str] = field(default_factory=lambda: ["no_input"])
    goodbye_prompt: list[str] = field(default_factory=lambda: ["goodbye"])
    on_ready: str | None = None


Node = Menu | DigitsInput


class MenuHost(Protocol):
    """The phone side of a menu session."""

    def play(self, prompts: list[str]) -> None:
        """Play these prompt names in order; call `prompt_finished()` after the last one."""

    def stop_prompts(self) -> None:
        """Stop playing at once (barge-in); no `prompt_finished()` for what was stopped."""

    def act(self, action: str, arg: Any) -> str | None:
        """Carry out an action; return a node name or target to override the option's goto."""

    def end(self) -> None:
        """The session is over: hang up once the queued prompts have played."""


def validate_tree(tree: Mapping[str, Node]) -> None:
    """Raise ValueError if a node is misnamed, malformed or points at a missing node."""
    for name, node in tree.items():
        if node.name != name:
            raise ValueError(f"node {node.name!r} stored under {name!r}")
        if node.retries < 1 or node.timeout_s < 0:
            raise ValueError(f"{name}: retries must be >= 1 and timeout_s >= 0")
        for option in _options_of(node):
            if option.goto is not None and option.goto not in tree and option.goto not in _TARGETS:
                raise ValueError(f"{name}: goto {option.goto!r} is not in the tree")
        _validate_keys(node)


def _options_of(node: Node) -> list[Option]:
    found = list(node.options.values()) if isinstance(node, Menu) else [node.then]
    return found + ([node.on_timeout] if node.on_timeout else [])


def _validate_keys(node: Node) -> None:
    if isinstance(node, Menu):
        bad = [key for key in node.options if key not in DTMF_KEYS]
        if bad:
            raise ValueError(f"{node.name}: keys {bad} are not DTMF keys")
    elif node.terminator not in DTMF_KEYS or node.terminator.isdigit():
        raise ValueError(f"{node.name}: terminator {node.terminator!r} must be * # or A-D")
    elif not 0 <= node.min_digits <= node.max_digits or node.max_digits < 1:
        raise ValueError(f"{node.name}: need 0 <= min_digits <= max_digits, max_digits >= 1")


class MenuRunner:
    """Runs one session of a menu tree for one call."""

    def __init__(self, tree: Mapping[str, Node], start: str, host: MenuHost, clock: Clock) -> None:
        validate_tree(tree)
        if start not in tree:
            raise ValueError(f"start node {start!r} is not in the tree")
        self._tree = dict(tree)
        self._start = start
        self._host = host
        self._clock = clock
        self._current = start
        self._started = False
        self._ended = False
        self._playing = False
        self._failures = 0
        self._buffer = ""
        self._timer: Timer | None = None
        self._queue: deque[str] = deque()
        self._draining = False

    @property
    def current(self) -> str:
        """Name of the node the session is in."""
        return self._current

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def failures(self) -> int:
        """Failed attempts in a row in the current node."""
        return self._failures

    def start(self) -> None:
        """Play the start node's prompt; a second call does nothing."""
        if self._started or self._ended:
            return
        self._started = True
        self._enter(self._start, [])

    def stop(self) -> None:
        """End the session silently (the call went away): cancels timers, ignores what follows."""
        self._ended = True
        self._queue.clear()
        self._cancel_timer()

    def digit(self, key: str) -> None:
        """Handle one key; keys arriving while another is handled wait their turn."""
        if self._ended or not self._started:
            return
        key = key.upper()
        if len(key) != 1 or key not in DTMF_KEYS:
            log.debug("ignoring non-DTMF key %r", key)
            return
        self._queue.append(key)
        self._drain()

    def digits(self, keys: str) -> None:
        """Handle several keys in order (e.g. a burst from SIP INFO)."""
        for key in keys:
            self.digit(key)

    def prompt_finished(self) -> None:
        """The host has played the last prompt: start listening (and the timeout)."""
        if self._ended or not self._playing:
            return
        self._playing = False
        self._listen()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and not self._ended:
                self._handle(self._queue.popleft())
        finally:
            self._draining = False
            if self._ended:
                self._queue.clear()

    def _node(self) -> Node:
        return self._tree[self._current]

    def _handle(self, key: str) -> None:
        node = self._node()
        if isinstance(node, Menu) and node.ignore_other_keys and key not in node.options:
            log.debug("menu %s: key %s ignored", node.name, key)
            return
        if self._playing:
            self._playing = False
            self._host.stop_prompts()
        self._cancel_timer()
        if isinstance(node, Menu):
            self._menu_key(node, key)
        else:
            self._collect_key(node, key)

    def _menu_key(self, node: Menu, key: str) -> None:
        option = node.options.get(key)
        if option is None:
            self._fail(node.invalid_prompt)
        else:
            self._choose(option, option.arg)

    def _collect_key(self, node: DigitsInput, key: str) -> None:
        if key == node.terminator:
            self._submit(node)
        elif not key.isdigit():
            self._fail(node.invalid_prompt)
        else:
            self._buffer += key
            if len(self._buffer) >= node.max_digits:
                self._submit(node)
            else:
                self._arm_timer(node)

    def _submit(self, node: DigitsInput) -> None:
        collected, self._buffer = self._buffer, ""
        if len(collected) < node.min_digits:
            self._fail(node.invalid_prompt)
        else:
            self._choose(node.then, collected)

    def _choose(self, option: Option, arg: Any) -> None:
        result = self._host.act(option.action, arg) if option.action else None
        if self._ended:
            return
        target = result if result is not None else option.goto
        if target == RETRY:
            self._fail(self._node().invalid_prompt)
            return
        self._failures = 0
        if target == END:
            self._finish([*option.prompt, *self._node().goodbye_prompt])
        elif target == DONE:
            self._close(option.prompt)
        elif target is None:
            self._play(list(option.prompt))
        else:
            self._enter(target, option.prompt)

    def _on_timeout(self) -> None:
        self._timer = None
        if self._ended:
            return
        node = self._node()
        self._buffer = ""
        if node.on_timeout is not None:
            self._choose(node.on_timeout, node.on_timeout.arg)
        else:
            self._fail(node.timeout_prompt)

    def _fail(self, prompt: list[str]) -> None:
        node = self._node()
        self._failures += 1
        self._buffer = ""
        if self._failures >= node.retries:
            self._finish(list(node.goodbye_prompt))
        else:
            self._play([*prompt, *node.prompt])

    def _enter(self, name: str, lead: list[str]) -> None:
        if name not in self._tree:
            raise ValueError(f"host chose node {name!r}, which is not in the tree")
        self._current = name
        self._buffer = ""
        self._play([*lead, *self._node().prompt])

    def _play(self, prompts: list[str]) -> None:
        if not prompts:
            self._listen()
            return
        self._playing = True
        self._host.play(prompts)

    def _listen(self) -> None:
        node = self._node()
        if node.on_ready:
            self._host.act(node.on_ready, None)
            if self._ended:
                return
        self._arm_timer(node)

    def _arm_timer(self, node: Node) -> None:
        self._cancel_timer()
        self._timer = self._clock.call_later(node.timeout_s, self._on_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self, prompts: list[str]) -> None:
        self.stop()
        if prompts:
            self._host.play(prompts)
        self._host.end()

    def _close(self, prompts: list[str]) -> None:
        self.stop()
        if prompts:
            self._host.play(list(prompts))
