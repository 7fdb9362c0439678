"""A FIFO bounded both in items and in bytes, sans-I/O.

Every queue between the node and the wire is one of these: pushing never blocks, and a push
that would pass either limit is refused (the caller counts the drop), as a real network drops
under load instead of buffering without end.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedQueue(Generic[T]):
    """Items with their sizes; at most ``max_items`` and ``max_bytes`` in total."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError(f"limits must be >= 1, got {max_items} items, {max_bytes} bytes")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        """The sum of the sizes of the queued items."""
        return self._bytes

    def push(self, item: T, size_bytes: int) -> bool:
        """Append ``item``; False (and nothing queued) if a limit would be passed."""
        if size_bytes < 0:
            raise ValueError(f"size_bytes must be >= 0, got {size_bytes}")
        if len(self._items) >= self.max_items or self._bytes + size_bytes > self.max_bytes:
            return False
        self._items.append((item, size_bytes))
        self._bytes += size_bytes
        return True

    def pop_many(self, max_items: int, max_bytes: int | None = None) -> list[T]:
        """Up to ``max_items`` oldest items, stopping before ``max_bytes`` would be passed
        (but always at least one item if any is queued)."""
        out: list[T] = []
        taken_bytes = 0
        while self._items and len(out) < max_items:
            item, size = self._items[0]
            if out and max_bytes is not None and taken_bytes + size > max_bytes:
                break
            self._items.popleft()
            self._bytes -= size
            taken_bytes += size
            out.append(item)
        assert self._bytes >= 0 and (self._items or self._bytes == 0), "queued bytes drifted"
        return out

    def clear(self) -> int:
        """Drop everything; how many items were dropped."""
        count = len(self._items)
        self._items.clear()
        self._bytes = 0
        return count
