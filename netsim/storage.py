"""``SimStorage``: a node's disk, where a crash loses whatever was not synced.

It is a ``node.ports.Storage`` (over the shipped ``MemoryStorage``, which keeps a durable copy
and a journal) plus the accounting a simulation reports: how many writes were made, synced,
and lost to crashes. The storage object outlives the node process: on a crash the simulator
calls :meth:`crash` and hands the same object to the restarted node, which finds exactly what
was durable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from node.ports import Delete, Put, WriteOp
from node.testing.storage import DEFAULT_CAPACITY_BYTES, MemoryStorage


@dataclass(slots=True)
class SimStorageStats:
    """Counters of one node's disk."""

    writes: int = 0
    syncs: int = 0
    crashes: int = 0
    writes_lost: int = 0


class SimStorage:
    """A node's disk (implements ``node.ports.Storage``); ``crash()`` models a power cut."""

    __slots__ = ("_memory", "_unsynced_writes", "stats")

    def __init__(self, capacity_bytes: int = DEFAULT_CAPACITY_BYTES) -> None:
        """An empty disk of ``capacity_bytes`` (writes beyond raise ``StorageFullError``)."""
        self._memory = MemoryStorage(capacity_bytes)
        self._unsynced_writes = 0
        self.stats = SimStorageStats()

    @property
    def used_bytes(self) -> int:
        """Bytes of keys and values stored."""
        return self._memory.used_bytes

    @property
    def unsynced_writes(self) -> int:
        """Writes a crash right now would lose."""
        return self._unsynced_writes

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or None."""
        return self._memory.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        """Write one value (lost by a crash until synced)."""
        self.write_batch((Put(key, value),))

    def delete(self, key: bytes) -> None:
        """Remove one key if present (undone by a crash until synced)."""
        self.write_batch((Delete(key),))

    def write_batch(self, ops: Sequence[WriteOp], *, sync: bool = False) -> None:
        """Apply ``ops`` atomically; with ``sync`` they are durable on return."""
        self._memory.write_batch(ops)
        self.stats.writes += len(ops)
        self._unsynced_writes += len(ops)
        if sync:
            self.sync()

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under ``prefix`` in key order, as of this call."""
        return self._memory.iterate_prefix(prefix)

    def sync(self) -> None:
        """Make every write so far durable."""
        self._memory.sync()
        self.stats.syncs += 1
        self._unsynced_writes = 0

    def crash(self) -> int:
        """Lose every unsynced write, as a power cut would; returns how many were lost."""
        lost = self._unsynced_writes
        self._memory.crash()
        self.stats.crashes += 1
        self.stats.writes_lost += lost
        self._unsynced_writes = 0
        return lost
