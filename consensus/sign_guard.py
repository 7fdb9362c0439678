"""Double-sign protection: never sign two different messages for one (height, round, step).

Like a CometBFT private validator's "last sign state", the guard remembers the highest
(height, round, step) this node signed and the exact sign-bytes. It permits a new signature
only for a higher position, or for the very same sign-bytes (re-signing is harmless: Ed25519
signatures are deterministic). The core emits the record in a ``Persist`` effect before the
matching sign effect; a restarted core given the last persisted record refuses anything that
could conflict with what it signed before the crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class SigningStep(IntEnum):
    """Order of the signed messages inside one round."""

    PROPOSAL = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class SigningRecord:
    """What this node signed last: position and exact sign-bytes."""

    height: int
    round: int
    step: SigningStep
    sign_bytes: bytes

    @property
    def position(self) -> tuple[int, int, int]:
        """(height, round, step), ordered as signing must progress."""
        return (self.height, self.round, self.step)


class SignGuard:
    """Monotonic signing positions; O(1) state."""

    __slots__ = ("_last",)

    def __init__(self, last: SigningRecord | None = None) -> None:
        """Start from ``last`` (None: nothing signed yet)."""
        self._last = last

    @property
    def last(self) -> SigningRecord | None:
        """The record of the latest permitted signature."""
        return self._last

    def permit(self, record: SigningRecord) -> bool:
        """True (and remember ``record``) iff signing it cannot conflict with earlier ones."""
        last = self._last
        if last is not None:
            if record.position < last.position:
                return False
            if record.position == last.position:
                return record.sign_bytes == last.sign_bytes
        self._last = record
        return True
