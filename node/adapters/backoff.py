"""Reconnect delays: exponential, capped, jittered by an injected ``Rng``.

Attempt 1 waits about ``initial_ms``, each further attempt ``multiplier`` times longer, never
more than ``max_ms``. The jitter takes up to ``jitter_percent`` off each delay, so nodes that
lost a peer at the same moment do not redial it in lockstep; drawn from the ``Rng`` port,
the schedule replays exactly under a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.ports import Rng

MAX_JITTER_PERCENT = 100


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delays between attempts to reach a peer, in milliseconds."""

    initial_ms: int = 500
    max_ms: int = 30_000
    multiplier: int = 2
    jitter_percent: int = 20
    # A connection that stayed up this long counts as healthy: the next failure starts over
    # from ``initial_ms`` instead of where the schedule had got to.
    stable_after_ms: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.initial_ms <= self.max_ms:
            raise ValueError(
                f"need 1 <= initial_ms <= max_ms, got {self.initial_ms} and {self.max_ms}"
            )
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter_percent <= MAX_JITTER_PERCENT:
            raise ValueError(f"jitter_percent must be 0..100, got {self.jitter_percent}")
        if self.stable_after_ms < 0:
            raise ValueError(f"stable_after_ms must be >= 0, got {self.stable_after_ms}")

    def base_delay_ms(self, attempt: int) -> int:
        """The un-jittered delay before attempt ``attempt`` (``attempt >= 1``)."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, got {attempt}")
        delay = self.initial_ms
        for _ in range(attempt - 1):  # stops at the cap: no huge powers for huge attempts
            if delay >= self.max_ms or self.multiplier == 1:
                break
            delay *= self.multiplier
        return min(delay, self.max_ms)

    def delay_ms(self, attempt: int, rng: Rng) -> int:
        """The delay before attempt ``attempt``: the base delay less a random share of up to
        ``jitter_percent`` of it (never below 1 ms)."""
        base = self.base_delay_ms(attempt)
        max_cut = base * self.jitter_percent // 100
        cut = rng.randint(0, max_cut) if max_cut > 0 else 0
        return max(1, base - cut)


class Backoff:
    """The attempt counter for one peer, following a ``BackoffPolicy``."""

    def __init__(self, policy: BackoffPolicy, rng: Rng) -> None:
        self.policy = policy
        self._rng = rng
        self.failures = 0

    def next_delay_ms(self) -> int:
        """Record a failed attempt; the delay to wait before the next one."""
        self.failures += 1
        return self.policy.delay_ms(self.failures, self._rng)

    def connection_ended(self, connected_for_ms: int) -> None:
        """A connection that was up ends: start over if it had been up long enough."""
        if connected_for_ms >= self.policy.stable_after_ms:
            self.failures = 0
