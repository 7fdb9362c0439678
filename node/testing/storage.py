"""An in-memory ``node.ports.Storage`` that can lose what was not synced.

``crash()`` models a power loss: everything written since the last ``sync()`` (or synced
write batch) disappears, batches all-or-nothing. Keys are kept sorted so prefix iteration
costs O(log n + matches).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from node.errors import StorageFullError
from node.ports import Delete, Put, WriteOp

DEFAULT_CAPACITY_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class StorageStats:
    """Counters a test can assert on (e.g. "the vote was synced before it was sent")."""

    writes: int = 0
    batches: int = 0
    syncs: int = 0
    crashes: int = 0


class MemoryStorage:
    """Sorted byte keys to byte values, with a durable copy that survives ``crash()``."""

    def __init__(self, capacity_bytes: int = DEFAULT_CAPACITY_BYTES) -> None:
        self.capacity_bytes = capacity_bytes
        self.stats = StorageStats()
        self._live: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []  # sorted keys of _live
        self._durable: dict[bytes, bytes] = {}
        self._unsynced: dict[bytes, bytes | None] = {}  # the journal since the last sync
        self._used_bytes = 0

    @property
    def used_bytes(self) -> int:
        """Bytes of keys and values currently stored."""
        return self._used_bytes

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or ``None``."""
        return self._live.get(_require_bytes("key", key))

    def put(self, key: bytes, value: bytes) -> None:
        """Write one value (lost by ``crash()`` unless synced)."""
        self.write_batch([Put(key, value)])

    def delete(self, key: bytes) -> None:
        """Remove one key if present (undone by ``crash()`` unless synced)."""
        self.write_batch([Delete(key)])

    def write_batch(self, ops: Sequence[WriteOp], *, sync: bool = False) -> None:
        """Apply ``ops`` atomically; ``StorageFullError`` (and no change) over capacity."""
        checked = [_check_op(op) for op in ops]
        if self._used_after(checked) > self.capacity_bytes:
            raise StorageFullError(
                f"the batch would exceed the capacity of {self.capacity_bytes} bytes"
            )
        for op in checked:
            if isinstance(op, Put):
                self._set(op.key, op.value)
            else:
                self._remove(op.key)
        self.stats.writes += len(checked)
        self.stats.batches += 1
        if sync:
            self.sync()

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under ``prefix`` in key order, as of this call."""
        _require_bytes("prefix", prefix)
        start = bisect_left(self._keys, prefix)
        matches: list[tuple[bytes, bytes]] = []
        for key in self._keys[start:]:
            if not key.startswith(prefix):
                break
            matches.append((key, self._live[key]))
        return iter(matches)

    def sync(self) -> None:
        """Make every write so far durable."""
        for key, value in self._unsynced.items():
            if value is None:
                self._durable.pop(key, None)
            else:
                self._durable[key] = value
        self._unsynced.clear()
        self.stats.syncs += 1

    def crash(self) -> None:
        """Lose every write that was not synced, as a power cut would."""
        self._live = dict(self._durable)
        self._keys = sorted(self._live)
        self._unsynced.clear()
        self._used_bytes = sum(len(k) + len(v) for k, v in self._live.items())
        self.stats.crashes += 1

    def _used_after(self, ops: list[WriteOp]) -> int:
        pending: dict[bytes, bytes | None] = {}
        for op in ops:
            pending[op.key] = op.value if isinstance(op, Put) else None
        used = self._used_bytes
        for key, value in pending.items():
            old = self._live.get(key)
            used -= 0 if old is None else len(key) + len(old)
            used += 0 if value is None else len(key) + len(value)
        return used

    def _set(self, key: bytes, value: bytes) -> None:
        old = self._live.get(key)
        if old is None:
            insort(self._keys, key)
        else:
            self._used_bytes -= len(key) + len(old)
        self._live[key] = value
        self._used_bytes += len(key) + len(value)
        self._unsynced[key] = value

    def _remove(self, key: bytes) -> None:
        old = self._live.pop(key, None)
        if old is None:
            return
        del self._keys[bisect_left(self._keys, key)]
        self._used_bytes -= len(key) + len(old)
        self._unsynced[key] = None


def _require_bytes(name: str, value: object) -> bytes:
    if type(value) is not bytes:
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    return value


def _check_op(op: object) -> WriteOp:
    if isinstance(op, Put):
        _require_bytes("key", op.key)
        _require_bytes("value", op.value)
        return op
    if isinstance(op, Delete):
        _require_bytes("key", op.key)
        return op
    raise TypeError(f"a write batch holds Put and Delete ops, not {type(op).__name__}")
