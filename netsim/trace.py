"""The trace hash: one SHA-256 over everything that happened, in order.

Each *delivered* event — a message handed to a node, a timer firing, a transaction
submitted, a fault applied, a decision — is recorded as ``time (µs) | node | peer | kind |
digest of its payload`` into an incremental SHA-256 (``peer`` is the sender of a message,
``NO_PEER`` otherwise). Two runs are the same run exactly when their
trace hashes are equal; that is how replay is checked. It costs one ``update`` per event, so
it stays on at scale.

The last few records are also kept (bounded) to show what led to a failure.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from netsim.limits import MAX_TRACE_TAIL_EVENTS

_RECORD_HEAD = struct.Struct(">QIIB")
NO_PEER = 0xFFFFFFFF
"""The ``peer`` of a record that is not about a message."""


class TraceKind(IntEnum):
    """What a trace record is about."""

    DELIVER = 1
    TIMER = 2
    TX = 3
    FAULT = 4
    DECIDE = 5
    DROP = 6
    NODE_ERROR = 7


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One recorded event (as kept in the tail)."""

    time_us: int
    node: int
    peer: int
    kind: TraceKind
    digest: bytes

    def describe(self) -> str:
        """``t=1.234567s node 3 DELIVER from 5 0a1b2c3d``: one line for a failure report."""
        seconds = self.time_us / 1_000_000
        source = "" if self.peer == NO_PEER else f" from {self.peer}"
        return f"t={seconds:.6f}s node {self.node} {self.kind.name}{source} {self.digest[:4].hex()}"


class TraceHasher:
    """Incremental SHA-256 over trace records, plus the most recent records."""

    __slots__ = ("_hash", "_tail", "events")

    def __init__(self, tail_events: int = MAX_TRACE_TAIL_EVENTS) -> None:
        self._hash = hashlib.sha256(b"netsim-trace/v1")
        self._tail: deque[tuple[int, int, int, int, bytes]] = deque(maxlen=tail_events)
        self.events = 0

    def record(self, time_us: int, node: int, peer: int, kind: int, digest: bytes) -> None:
        """Add one event; ``digest`` identifies its payload (up to 255 bytes)."""
        update = self._hash.update
        update(_RECORD_HEAD.pack(time_us, node, peer, kind))
        update(bytes((len(digest),)))
        update(digest)
        self._tail.append((time_us, node, peer, kind, digest))
        self.events += 1

    def hexdigest(self) -> str:
        """The trace hash so far (hex); recording may continue afterwards."""
        return self._hash.copy().hexdigest()

    def tail(self) -> list[TraceRecord]:
        """The most recent records, oldest first."""
        return [TraceRecord(t, n, p, TraceKind(k), d) for t, n, p, k, d in self._tail]
