"""``TimerQueue``: the pending timers of one node, by key, in due order (sans-I/O).

``NodeCore`` names timers with ``TimerKey`` s and a ``SetTimer`` with a key already pending
replaces that timer. The queue keeps one heap of ``(due, sequence, key)`` and the live
sequence per key; a replaced entry stays in the heap until it surfaces and is skipped (or
until the heap is compacted), so ``set`` is O(log n) and never scans.

Bounded: at most ``max_timers`` live keys (``TimerOverflowError`` beyond, after the caller
had a chance to ``discard`` moot ones); the heap holds at most twice as many entries plus a
small slack before it is rebuilt from the live ones.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from node.errors import BigHealthError

K = TypeVar("K", bound=Hashable)

DEFAULT_MAX_TIMERS: Final = 4_096
"""Live timers a node may have pending at once (the core keeps a few dozen)."""
COMPACTION_SLACK: Final = 64
"""Stale heap entries tolerated beyond the live count before the heap is rebuilt."""


class TimerOverflowError(BigHealthError):
    """More distinct timers than the queue's bound: a bug in whoever sets them."""


class TimerQueue(Generic[K]):
    """Timers keyed by ``K``, due at times in seconds of any monotonic clock."""

    def __init__(self, max_timers: int = DEFAULT_MAX_TIMERS) -> None:
        if max_timers < 1:
            raise ValueError(f"max_timers must be >= 1, got {max_timers}")
        self.max_timers = max_timers
        self._heap: list[tuple[float, int, K]] = []
        self._live: dict[K, tuple[float, int]] = {}
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def set(self, key: K, due_s: float) -> None:
        """Start ``key`` (replacing a pending one) to fire at ``due_s``."""
        if math.isnan(due_s):
            raise ValueError("due_s must be a number")
        if key not in self._live and len(self._live) >= self.max_timers:
            raise TimerOverflowError(f"more than {self.max_timers} timers pending")
        self._sequence += 1
        self._live[key] = (due_s, self._sequence)
        heapq.heappush(self._heap, (due_s, self._sequence, key))
        if len(self._heap) > 2 * len(self._live) + COMPACTION_SLACK:
            self._compact()

    def cancel(self, key: K) -> bool:
        """Forget ``key``; True if it was pending."""
        return self._live.pop(key, None) is not None

    def discard(self, moot: Callable[[K], bool]) -> int:
        """Cancel every pending timer whose key ``moot`` accepts; how many were."""
        gone = [key for key in self._live if moot(key)]
        for key in gone:
            del self._live[key]
        return len(gone)

    def next_due(self) -> float | None:
        """When the earliest live timer is due, or None with none pending."""
        self._drop_stale_head()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now_s: float) -> list[K]:
        """Remove and return the keys due at ``now_s``, earliest first."""
        fired: list[K] = []
        while True:
            self._drop_stale_head()
            if not self._heap or self._heap[0][0] > now_s:
                return fired
            _, _, key = heapq.heappop(self._heap)
            del self._live[key]
            fired.append(key)

    def _drop_stale_head(self) -> None:
        heap = self._heap
        while heap and self._live.get(heap[0][2], (0.0, -1))[1] != heap[0][1]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [(due, seq, key) for key, (due, seq) in self._live.items()]
        heapq.heapify(self._heap)
