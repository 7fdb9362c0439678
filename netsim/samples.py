"""Bounded samples for percentiles: every value until the limit, then a uniform reservoir.

Reservoir sampling (Vitter's algorithm R) keeps a uniform sample of everything seen in
``MAX_LATENCY_SAMPLES`` slots, drawing from its own random stream so it never disturbs the
run's other streams. Percentiles use the nearest-rank method on the kept values.
"""

from __future__ import annotations

import random

from netsim.limits import MAX_LATENCY_SAMPLES


class Samples:
    """Non-negative integer samples (e.g. latencies in µs), bounded in memory."""

    __slots__ = ("_capacity", "_random", "_sorted", "count", "values")

    def __init__(self, rng: random.Random, capacity: int = MAX_LATENCY_SAMPLES) -> None:
        """Keep at most ``capacity`` (>= 1) values; ``rng`` drives the reservoir."""
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._capacity = capacity
        self._random = rng
        self._sorted: list[int] | None = None
        self.values: list[int] = []
        self.count = 0

    def add(self, value: int) -> None:
        """Record one value."""
        self.count += 1
        self._sorted = None
        if len(self.values) < self._capacity:
            self.values.append(value)
            return
        slot = self._random.randrange(self.count)
        if slot < self._capacity:
            self.values[slot] = value

    def percentile(self, fraction: float) -> int | None:
        """The nearest-rank percentile (``fraction`` in [0, 1]); None without samples."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("a percentile fraction is in [0, 1]")
        if not self.values:
            return None
        ordered = self.sorted()
        rank = max(1, -(-int(fraction * 1_000_000) * len(ordered) // 1_000_000))
        return ordered[rank - 1]

    def sorted(self) -> list[int]:
        """The kept values in ascending order (cached until the next add)."""
        if self._sorted is None:
            self._sorted = sorted(self.values)
        return self._sorted
