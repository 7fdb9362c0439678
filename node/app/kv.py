"""A key-value module: each account stores small values under its own namespace.

It exists to exercise the framework end to end (tests, benchmarks, simulations): writes,
deletes, events, and due work — a value may carry an expiry time, after which the block-time
hook deletes it and emits ``kv.expired``.

State: ``kv/e/<owner public key><key>`` -> ``KvEntry(value, expiry_task)``. Transactions:
``kv.set`` (``KvSet``) and ``kv.delete`` (``KvDelete``); only the owner writes its entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from node.app.due import DueTask
from node.app.errors import TxFailed
from node.app.module import CheckContext, ExecContext, KeyReader, Module, decode_payload
from node.codec import KIB, Bytes, StructCodec, UInt
from node.errors import DecodeError
from node.types import PUBLIC_KEY_BYTES, ResultCode, Transaction

KV: Final = "kv"
ENTRY_PREFIX: Final = b"kv/e/"
MAX_KV_KEY_BYTES: Final = 64
MAX_KV_VALUE_BYTES: Final = 4 * KIB
NO_EXPIRY: Final = 0


@dataclass(frozen=True, slots=True)
class KvSet:
    """Set ``key`` to ``value``; delete it at block time ``expire_at_ms`` (0: never)."""

    key: bytes
    value: bytes
    expire_at_ms: int


@dataclass(frozen=True, slots=True)
class KvDelete:
    """Delete ``key``."""

    key: bytes


@dataclass(frozen=True, slots=True)
class KvEntry:
    """A stored value and the id of its expiry task (empty: none)."""

    value: bytes
    expiry_task: bytes


_KEY = Bytes(MAX_KV_KEY_BYTES, min_len=1)
SET_CODEC = StructCodec(
    KvSet,
    [("key", _KEY), ("value", Bytes(MAX_KV_VALUE_BYTES)), ("expire_at_ms", UInt())],
    MAX_KV_VALUE_BYTES + 128,
    memo_entries=8_192,  # a payload decoded at admission is decoded again at execution
)
DELETE_CODEC = StructCodec(KvDelete, [("key", _KEY)], 128)
ENTRY_CODEC = StructCodec(
    KvEntry, [("value", Bytes(MAX_KV_VALUE_BYTES)), ("expiry_task", Bytes(64))], 8 * KIB
)


def entry_key(owner: bytes, key: bytes) -> bytes:
    """The state key of ``owner``'s ``key``."""
    return ENTRY_PREFIX + owner + key


def read_value(reader: KeyReader, owner: bytes, key: bytes) -> bytes | None:
    """``owner``'s value under ``key``, or ``None``."""
    stored = reader.get(entry_key(owner, key))
    return None if stored is None else ENTRY_CODEC.decode(stored).value


def set_payload(key: bytes, value: bytes, expire_at_ms: int = NO_EXPIRY) -> bytes:
    """The payload of a ``kv.set`` transaction (client helper)."""
    return SET_CODEC.encode(KvSet(key, value, expire_at_ms))


def delete_payload(key: bytes) -> bytes:
    """The payload of a ``kv.delete`` transaction (client helper)."""
    return DELETE_CODEC.encode(KvDelete(key))


class KvModule(Module):
    """Per-account key-value storage with optional expiry."""

    name = KV
    actions = frozenset({"set", "delete"})

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        if tx.action == "set":
            payload = decode_payload(SET_CODEC, tx.payload)
            if payload.expire_at_ms != NO_EXPIRY and payload.expire_at_ms <= ctx.block.time_ms:
                raise TxFailed(ResultCode.INVALID_PAYLOAD, "expiry time is in the past")
        else:
            decode_payload(DELETE_CODEC, tx.payload)

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        owner = ctx.require_sender()
        if tx.action == "set":
            self._set(ctx, owner, decode_payload(SET_CODEC, tx.payload))
        else:
            key = decode_payload(DELETE_CODEC, tx.payload).key
            entry = self._entry(ctx, owner, key)
            if entry is None:
                raise TxFailed(ResultCode.NOT_FOUND, f"no key {key.hex()}")
            if entry.expiry_task:
                ctx.cancel(entry.expiry_task)
            ctx.view.delete(entry_key(owner, key))
            ctx.emit("deleted", owner=owner, key=key)

    def _set(self, ctx: ExecContext, owner: bytes, payload: KvSet) -> None:
        if payload.expire_at_ms != NO_EXPIRY and payload.expire_at_ms <= ctx.block.time_ms:
            raise TxFailed(ResultCode.INVALID_PAYLOAD, "expiry time is in the past")
        previous = self._entry(ctx, owner, payload.key)
        if previous is not None and previous.expiry_task:
            ctx.cancel(previous.expiry_task)
        task = b""
        if payload.expire_at_ms != NO_EXPIRY:
            task = ctx.schedule(payload.expire_at_ms, "expire", owner + payload.key)
        entry = KvEntry(payload.value, task)
        ctx.view.set(entry_key(owner, payload.key), ENTRY_CODEC.encode(entry))
        ctx.emit("set", owner=owner, key=payload.key, size=len(payload.value))

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        if task.kind != "expire":
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"kv has no task {task.kind!r}")
        if len(task.payload) <= PUBLIC_KEY_BYTES:
            raise TxFailed(ResultCode.INVALID_PAYLOAD, "an expiry names an owner and a key")
        owner, key = task.payload[:PUBLIC_KEY_BYTES], task.payload[PUBLIC_KEY_BYTES:]
        entry = self._entry(ctx, owner, key)
        if entry is None or entry.expiry_task != task.task_id:
            return  # replacing or deleting an entry cancels its task; guard it anyway
        ctx.view.delete(entry_key(owner, key))
        ctx.emit("expired", owner=owner, key=key)

    @staticmethod
    def _entry(ctx: ExecContext, owner: bytes, key: bytes) -> KvEntry | None:
        stored = ctx.view.get(entry_key(owner, key))
        if stored is None:
            return None
        try:
            return ENTRY_CODEC.decode(stored)
        except DecodeError as exc:  # our own writes are canonical: corruption is a bug
            raise AssertionError(f"corrupt kv entry: {exc}") from exc
