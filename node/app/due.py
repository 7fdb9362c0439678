"""The time-indexed queue of due work, kept in the application state.

Each scheduled task is one state entry under ``DUE_PREFIX``, keyed by
``due_ms (u64 BE) || height (u64 BE) || sequence-in-block (u32 BE)``, so the state's key order
is the run order: earliest due first, then creation order. The key is the task id. Being
state, the queue is part of the state root, survives restarts and is identical on every
node. The framework runs due tasks at the start of each block (``application.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from node.codec import KIB, Bytes, StructCodec, Text
from node.errors import DecodeError

DUE_PREFIX: Final = b"_due/"
MAX_DUE_PAYLOAD_BYTES: Final = 4 * KIB
_U64: Final = 8
_U32: Final = 4
DUE_KEY_BYTES: Final = len(DUE_PREFIX) + _U64 + _U64 + _U32
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)


@dataclass(frozen=True, slots=True)
class DueTask:
    """A piece of work a module scheduled for ``due_ms`` (block time)."""

    task_id: bytes
    due_ms: int
    module: str
    kind: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class DueRecord:
    """The stored value of a task (its key holds the time and id)."""

    module: str
    kind: str
    payload: bytes


DUE_RECORD_CODEC = StructCodec(
    DueRecord,
    [
        ("module", Text(32, NAME_PATTERN)),
        ("kind", Text(32, NAME_PATTERN)),
        ("payload", Bytes(MAX_DUE_PAYLOAD_BYTES)),
    ],
    MAX_DUE_PAYLOAD_BYTES + 128,
)


def due_key(due_ms: int, height: int, sequence: int) -> bytes:
    """The queue key (and task id) of a task."""
    return (
        DUE_PREFIX
        + due_ms.to_bytes(_U64, "big")
        + height.to_bytes(_U64, "big")
        + sequence.to_bytes(_U32, "big")
    )


def due_ms_of(key: bytes) -> int:
    """The due time encoded in a queue key."""
    start = len(DUE_PREFIX)
    return int.from_bytes(key[start : start + _U64], "big")


def is_due_key(key: bytes) -> bool:
    """True for a well-formed queue key."""
    return len(key) == DUE_KEY_BYTES and key.startswith(DUE_PREFIX)


def parse_task(key: bytes, value: bytes) -> DueTask:
    """The task stored as ``key -> value`` (``DecodeError`` if the entry is corrupt)."""
    if not is_due_key(key):
        raise DecodeError(f"not a due-queue key: {key!r}")
    record = DUE_RECORD_CODEC.decode(value)
    return DueTask(
        task_id=key,
        due_ms=due_ms_of(key),
        module=record.module,
        kind=record.kind,
        payload=record.payload,
    )
