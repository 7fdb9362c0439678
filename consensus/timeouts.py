"""Timeout configuration: durations that grow linearly with the round.

The paper's liveness argument needs timeouts that eventually exceed the (unknown) message
delay after GST; growing them with the round does that without knowing the delay:
``timeout(kind, round) = base_ms(kind) + round * delta_ms(kind)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

from consensus.errors import InvalidConfigError

MAX_TIMEOUT_BASE_MS = 3_600_000
"""Largest base or delta of a timeout, in milliseconds (one hour)."""


class TimeoutKind(IntEnum):
    """The three timeouts of a round (paper: timeoutPropose, timeoutPrevote, timeoutPrecommit)."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Base durations and per-round increments, in milliseconds.

    Bases must be in 1..MAX_TIMEOUT_BASE_MS, deltas in 0..MAX_TIMEOUT_BASE_MS; anything else
    (including bools and floats) raises InvalidConfigError.
    """

    timeout_propose_ms: int = 3_000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 1_000
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 1_000
    timeout_precommit_delta_ms: int = 500

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            lowest = 0 if field.name.endswith("_delta_ms") else 1
            if type(value) is not int or not lowest <= value <= MAX_TIMEOUT_BASE_MS:
                raise InvalidConfigError(
                    f"{field.name} must be an int in {lowest}..{MAX_TIMEOUT_BASE_MS}, got {value!r}"
                )

    def duration_ms(self, kind: TimeoutKind, round_: int) -> int:
        """How long the ``kind`` timeout of ``round_`` (>= 0) lasts, in milliseconds."""
        if round_ < 0:
            raise ValueError(f"round must be >= 0, got {round_}")
        if kind is TimeoutKind.PROPOSE:
            return self.timeout_propose_ms + round_ * self.timeout_propose_delta_ms
        if kind is TimeoutKind.PREVOTE:
            return self.timeout_prevote_ms + round_ * self.timeout_prevote_delta_ms
        return self.timeout_precommit_ms + round_ * self.timeout_precommit_delta_ms
