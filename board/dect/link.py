"""The front panel's `Link`, made to answer only the DECT end it expects.

`board.mcu.link.Link` ignores a HELLO carrying its own role (the line loops back) and accepts
any other role. Two DECT ends must never pair with a front-panel end, so `DectLink` also
refuses a HELLO or HELLO_ACK whose role is not the expected peer role or that lacks the
`CAP_DECT` capability bit: the link stays down with a reason that names what answered
("the peer is a front-panel controller, not a DECT radio module"). Everything else -
epochs, stop-and-wait delivery, heartbeats - is the front panel's, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from board.dect import messages as M
from board.mcu.link import Link


class DectLink(Link):
    """A `Link` between the DECT base (`ROLE_DECT_BASE`) and its radio module
    (`ROLE_DECT_MODULE`); `role` is this end's, the peer must have the other."""

    def __init__(self, role: int, epoch: int, write: Callable[[bytes], Any],
                 firmware: tuple[int, int] = (1, 0), caps: int = M.CAP_DECT,
                 **options: int) -> None:
        if role not in (M.ROLE_DECT_BASE, M.ROLE_DECT_MODULE):
            raise ValueError(f"a DECT link's role is {M.ROLE_DECT_BASE} (base) or "
                             f"{M.ROLE_DECT_MODULE} (module), not {role!r}")
        super().__init__(role, epoch, write, firmware, caps | M.CAP_DECT, **options)
        self.peer_role = M.ROLE_DECT_MODULE if role == M.ROLE_DECT_BASE else M.ROLE_DECT_BASE
        self.stats["wrong_peer"] = 0

    def _on_hello(self, ftype: int, hello: tuple, now: int) -> None:
        role, caps = hello[1], hello[4]
        if role != self.role and (role != self.peer_role or not caps & M.CAP_DECT):
            self._refuse(role)
            return
        super()._on_hello(ftype, hello, now)

    def _refuse(self, role: int) -> None:
        """Stay (or go) down: whatever answered is not our DECT peer."""
        self.stats["wrong_peer"] += 1
        expected = M.ROLE_NAMES[self.peer_role]
        if role == self.peer_role:
            reason = f"the peer says it is a {expected} but lacks the DECT capability bit"
        else:
            what = M.ROLE_NAMES.get(role, f"device of unknown role {role}")
            reason = f"the peer is a {what}, not a {expected}"
        if self.up:
            self._go_down(reason)
        else:
            self.reason = reason
