"""The simulated module's control protocol: one JSON object per line in, one per line out.

Other processes (the simulator, end-to-end tests) drive the simulated handsets with it. Each
request names an action in "do"; most also name a registered handset by number:

    {"handset": 2, "do": "offhook"}              also "onhook", "deregister", "state"
    {"handset": 2, "do": "dial", "digits": "123#"}
    {"handset": 2, "do": "key", "key": "R"}
    {"do": "register", "pin": "1234"}            a new handset; "ipui" to choose its IPUI,
                                                  or "handset": N for a registered one
    {"do": "list"}                                every registered handset and the window
    {"do": "reset"}                               a module reset ("reason": a reset word)

Every answer has "ok". A handset action answers {"ok": true, "state": {...}} with the
handset's state (number, ipui, name, registered, offhook, display, ringing, cadence, caller,
audio_channel, tone); "register" adds "result" ("registered", "wrong_pin", "window_closed" or
"full"). A request that cannot be done answers {"ok": false, "error": "<why, in words>"}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from board.dect.sim import SimDectModule, SimHandset

MAX_REQUEST = 4096  # bytes in one line
Action = Callable[[SimDectModule, dict[str, Any]], dict[str, Any]]


def handle_line(module: SimDectModule, line: bytes) -> bytes:
    """One request line -> one answer line (newline-terminated)."""
    try:
        request = json.loads(line)
    except (UnicodeError, ValueError) as exc:
        return _encode({"ok": False, "error": f"not a JSON object: {exc}"})
    return _encode(handle(module, request))


def handle(module: SimDectModule, request: Any) -> dict[str, Any]:
    """Do what `request` says; never raises for anything a client can send."""
    if not isinstance(request, dict):
        return {"ok": False, "error": "a request is a JSON object"}
    do = request.get("do")
    action = ACTIONS.get(do) if isinstance(do, str) else None
    if action is None:
        return {"ok": False, "error": f"unknown action {request.get('do')!r}; known: "
                                      + ", ".join(sorted(ACTIONS))}
    try:
        return action(module, request)
    except (ValueError, TypeError, KeyError) as exc:
        return {"ok": False, "error": _words(exc)}


def _encode(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, ensure_ascii=False).encode() + b"\n"


def _words(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"the request needs {exc.args[0]!r}"
    return str(exc)


def _handset(module: SimDectModule, request: dict[str, Any]) -> SimHandset:
    if "handset" not in request:
        raise ValueError("the request needs 'handset' (a number 1-6)")
    return module.handset(request["handset"])


def _answer(handset: SimHandset, **extra: Any) -> dict[str, Any]:
    return {"ok": True, "state": handset.state(), **extra}


def _simple(method: str) -> Action:
    def act(module: SimDectModule, request: dict[str, Any]) -> dict[str, Any]:
        handset = _handset(module, request)
        getattr(handset, method)()
        return _answer(handset)
    return act


def _state(module: SimDectModule, request: dict[str, Any]) -> dict[str, Any]:
    return _answer(_handset(module, request))


def _dial(module: SimDectModule, request: dict[str, Any]) -> dict[str, Any]:
    handset = _handset(module, request)
    handset.dial(request["digits"])
    return _answer(handset)


def _key(module: SimDectModule, request: dict[str, Any]) -> dict[str, Any]:
    handset = _handset(module, request)
    handset.key(request["key"])
    return _answer(handset)


def _register(module: SimDectModule, request: dict[str, Any]) -> dict[str, Any]:
    if "handset" in request:
        handset = _handset(module, request)
    else:
        handset = _known_or_new(module, request.get("ipui"))
    result = handset.register(request["pin"])
    return _answer(handset, result=result)


def _known_or_new(module: SimDectModule, ipui: Any) -> SimHandset:
    for handset in module.handsets.values():
        if isinstance(ipui, str) and handset.ipui == ipui.lower():
            return handset
    return module.new_handset(ipui)


def _list(module: SimDectModule, request: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "link_up": module.link.up,
            "window": {"open": module.window_open, "seconds_left": module.window_seconds_left()},
            "handsets": [h.state() for _, h in sorted(module.handsets.items())]}


def _reset(module: SimDectModule, request: dict[str, Any]) -> dict[str, Any]:
    module.reset(reason=request.get("reason", "requested"))
    return {"ok": True}


ACTIONS: dict[str, Action] = {
    "offhook": _simple("offhook"), "onhook": _simple("onhook"),
    "deregister": _simple("deregister"), "state": _state, "dial": _dial, "key": _key,
    "register": _register, "list": _list, "reset": _reset,
}
