"""The simulated DECT radio module as a separate process, and its handsets driven by tests.

    with DectModuleProcess(tmp_path / "dect") as module:   # python -m board.dect.sim
        module.pty                                          # the base opens this (dect.port)
        module.do(1, "offhook")                             # a handset's action -> its state
        module.register("2580")                             # a new handset -> the answer

The launcher and the control socket are the office's (`tools.dect_module.DectModule`); this adds
the handset shorthands the tests use.
"""

from __future__ import annotations

from typing import Any

from tools.dect_module import DectModule


class DectModuleProcess(DectModule):
    def __enter__(self) -> DectModuleProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def do(self, handset: int, action: str, **more: Any) -> dict[str, Any]:
        """A handset's action; its state after it (fails the test when refused)."""
        answer = self.request({"handset": handset, "do": action, **more})
        assert answer.get("ok"), answer
        return answer["state"]

    def handset(self, number: int) -> dict[str, Any]:
        """Handset `number`'s state: display, ringing, caller, audio channel ..."""
        return self.do(number, "state")

    def register(self, pin: str) -> dict[str, Any]:
        """A new handset registering with `pin`: the module's answer ("result")."""
        return self.request({"do": "register", "pin": pin})

    def listing(self) -> dict[str, Any]:
        return self.request({"do": "list"})
