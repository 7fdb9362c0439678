"""A clock that only moves when told to (a ``node.ports.Clock``)."""

from __future__ import annotations


class ManualClock:
    """Milliseconds since the epoch, starting at ``start_ms``, changed only by the test."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        """The current time in ms."""
        return self._now_ms

    def advance(self, delta_ms: int) -> int:
        """Move forward by ``delta_ms`` (>= 0); returns the new time."""
        if delta_ms < 0:
            raise ValueError(f"advance by a negative amount ({delta_ms} ms); use set_ms")
        self._now_ms += delta_ms
        return self._now_ms

    def set_ms(self, now_ms: int) -> None:
        """Jump to ``now_ms``, backwards too (a wall clock can be stepped back)."""
        self._now_ms = now_ms
