"""The discrete-event engine: virtual time and a heap of ``(time, sequence, callback, arg)``.

Single-threaded and deterministic: events run in time order and, at equal times, in the order
they were scheduled (the sequence number breaks ties, so callbacks are never compared).
Virtual time is an integer number of microseconds since the start of the run; nothing here
reads a real clock. The heap is bounded (``MAX_PENDING_EVENTS``): a run that schedules
without end is aborted with :class:`~netsim.errors.LimitExceeded` rather than eating memory.
Cancelling is left to the callbacks (a timer checks its generation when it fires), which
keeps scheduling O(log n) with no bookkeeping.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from netsim.errors import LimitExceeded
from netsim.limits import MAX_PENDING_EVENTS

Callback = Callable[[Any], None]


class EventLoop:
    """Virtual time (µs) and the pending events."""

    __slots__ = ("_heap", "_max_pending", "_now_us", "_sequence", "_stopped", "events_run")

    def __init__(self, max_pending_events: int = MAX_PENDING_EVENTS) -> None:
        """An empty loop at time 0 holding at most ``max_pending_events`` (>= 1)."""
        if max_pending_events < 1:
            raise ValueError("max_pending_events must be >= 1")
        self._heap: list[tuple[int, int, Callback, Any]] = []
        self._max_pending = max_pending_events
        self._now_us = 0
        self._sequence = 0
        self._stopped = False
        self.events_run = 0

    @property
    def now_us(self) -> int:
        """The current virtual time in microseconds."""
        return self._now_us

    @property
    def pending(self) -> int:
        """Events scheduled and not yet run."""
        return len(self._heap)

    def next_time_us(self) -> int | None:
        """When the next event is due, or None if nothing is pending."""
        return self._heap[0][0] if self._heap else None

    def at(self, time_us: int, callback: Callback, arg: Any = None) -> None:
        """Run ``callback(arg)`` at virtual time ``time_us`` (not before now).

        Raises ValueError for a time in the past and LimitExceeded when the heap is full.
        """
        if time_us < self._now_us:
            raise ValueError(f"cannot schedule at {time_us} µs, before now ({self._now_us} µs)")
        if len(self._heap) >= self._max_pending:
            raise LimitExceeded(f"more than {self._max_pending} events pending")
        self._sequence += 1
        heapq.heappush(self._heap, (time_us, self._sequence, callback, arg))

    def after(self, delay_us: int, callback: Callback, arg: Any = None) -> None:
        """Run ``callback(arg)`` ``delay_us`` (>= 0) microseconds from now."""
        if delay_us < 0:
            raise ValueError(f"delay must be >= 0 µs, got {delay_us}")
        self.at(self._now_us + delay_us, callback, arg)

    def stop(self) -> None:
        """Make the running :meth:`run` return after the current event."""
        self._stopped = True

    def run(self, until_us: int) -> bool:
        """Run events due at or before ``until_us``; advance time to ``until_us`` if none is
        left. Returns True if stopped by :meth:`stop` (time stays at the last event)."""
        self._stopped = False
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= until_us:
            time_us, _, callback, arg = pop(heap)
            self._now_us = time_us
            self.events_run += 1
            callback(arg)
            if self._stopped:
                return True
        self._now_us = max(self._now_us, until_us)
        return False
