"""Which part owns which pin: every backend refuses to hand one pin to two parts."""

from __future__ import annotations

from board.gpio.base import GpioError


class PinClaims:
    """Pin -> owning part; a second part asking for a claimed pin gets a `GpioError`."""

    def __init__(self) -> None:
        self._owners: dict[int, str] = {}

    def claim(self, pin: int, owner: str) -> None:
        """Record that `owner` uses `pin`; the same owner may set a pin up again."""
        other = self._owners.get(pin)
        if other is not None and other != owner:
            raise GpioError(f"{label(owner)}: pin {pin} is already used by {label(other)}")
        self._owners[pin] = owner

    def owner(self, pin: int) -> str:
        """The part that claimed `pin` ("" when nobody did)."""
        return self._owners.get(pin, "")

    def pins(self) -> list[int]:
        return sorted(self._owners)

    def clear(self) -> None:
        self._owners.clear()


def label(owner: str) -> str:
    """How error messages name a part that did not say its name."""
    return owner or "gpio"
