"""Where the chain core keeps its durable state in a ``Storage`` (key layout and codecs).

Keys (heights are u64 big-endian, so prefix iteration is height order):

- ``meta/genesis``: the genesis hash (the store belongs to that chain only);
- ``meta/layout``: the version of this key layout and of the encodings stored under it
  (``LAYOUT_VERSION``); a store of another version is refused, not misread;
- ``meta/height``: the last committed height; ``meta/app_root``: its state root;
- ``block/<height>``: the encoded ``CommittedBlock`` (block and the certificate that
  decided it), made from the block's bytes as received or built
  (``node.codec.committed_block_bytes``) and served to peers as is;
- ``app/<key>``: the application state of the last committed height;
- ``vset/<height>``: the validator sets of the schedule (``node.chain.schedule``);
- ``vhist/<height>``: the members of past heights evidence may be about
  (``node.chain.set_history``); ``evid/<step>``: pending evidence (``node.chain.evidence``);
- ``wal/...``, ``sign/last``: the consensus log of the current height (``node.chain.wal``).

Committed blocks are kept (they are the ledger peers sync from); the state history that can
be proven is bounded by the application's retention, and the consensus log by
``NodeConfig.max_wal_bytes_per_height``.

Everything that makes a height committed is written in ONE synced atomic batch
(``commit_ops``): the block and its certificate, the state changes, the schedule, the new
height, and the deletion of the height's consensus log. A crash leaves either the whole
height or none of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from node.chain.errors import StorageMismatchError
from node.codec import COMMITTED_BLOCK_CODEC
from node.errors import DecodeError
from node.ports import Delete, Put, Storage, WriteOp
from node.types import CommittedBlock

GENESIS_KEY: Final = b"meta/genesis"
LAYOUT_KEY: Final = b"meta/layout"
LAYOUT_VERSION: Final = 2
"""Bumped whenever a stored key or encoding changes meaning (2: block headers commit to
evidence, ``evid/`` and ``vhist/`` entries)."""
HEIGHT_KEY: Final = b"meta/height"
APP_ROOT_KEY: Final = b"meta/app_root"
BLOCK_PREFIX: Final = b"block/"
APP_PREFIX: Final = b"app/"
_HEIGHT_BYTES: Final = 8


@dataclass(frozen=True, slots=True)
class StoredMeta:
    """What a store says about its chain."""

    genesis_hash: bytes
    height: int
    app_state_root: bytes


def height_bytes(height: int) -> bytes:
    """A height as a u64 big-endian key part."""
    return height.to_bytes(_HEIGHT_BYTES, "big")


def block_key(height: int) -> bytes:
    """The key of the committed block at ``height``."""
    return BLOCK_PREFIX + height_bytes(height)


def read_meta(storage: Storage) -> StoredMeta | None:
    """The chain metadata, or None for an empty store."""
    genesis_hash = storage.get(GENESIS_KEY)
    if genesis_hash is None:
        return None
    layout = storage.get(LAYOUT_KEY)
    if layout != height_bytes(LAYOUT_VERSION):
        found = "none" if layout is None else str(int.from_bytes(layout, "big"))
        raise StorageMismatchError(
            f"the store has layout version {found}, this node reads version {LAYOUT_VERSION}: "
            "start from an empty store (peers serve the chain through block sync)"
        )
    height = storage.get(HEIGHT_KEY)
    root = storage.get(APP_ROOT_KEY)
    if height is None or root is None or len(height) != _HEIGHT_BYTES:
        raise StorageMismatchError("the store has a genesis but no committed height")
    return StoredMeta(genesis_hash, int.from_bytes(height, "big"), root)


def genesis_ops(
    genesis_hash: bytes, entries: Sequence[tuple[bytes, bytes]], app_state_root: bytes
) -> list[WriteOp]:
    """The writes that initialise an empty store at height 0."""
    ops: list[WriteOp] = [Put(APP_PREFIX + key, value) for key, value in entries]
    ops += [
        Put(GENESIS_KEY, genesis_hash),
        Put(LAYOUT_KEY, height_bytes(LAYOUT_VERSION)),
        Put(HEIGHT_KEY, height_bytes(0)),
        Put(APP_ROOT_KEY, app_state_root),
    ]
    return ops


def commit_ops(
    encoded_block: bytes,
    height: int,
    state_changes: Sequence[tuple[bytes, bytes | None]],
    app_state_root: bytes,
) -> list[WriteOp]:
    """The writes that commit ``height`` (the caller adds schedule and log operations)."""
    ops: list[WriteOp] = [Put(block_key(height), encoded_block)]
    for key, value in state_changes:
        ops.append(Delete(APP_PREFIX + key) if value is None else Put(APP_PREFIX + key, value))
    ops += [Put(HEIGHT_KEY, height_bytes(height)), Put(APP_ROOT_KEY, app_state_root)]
    return ops


def read_block(storage: Storage, height: int) -> bytes | None:
    """The encoded ``CommittedBlock`` at ``height``, if stored."""
    return storage.get(block_key(height))


def decode_stored_block(data: bytes) -> CommittedBlock:
    """A committed block read back from this store (``StorageMismatchError`` if corrupt)."""
    try:
        return COMMITTED_BLOCK_CODEC.decode(data)
    except DecodeError as exc:
        raise StorageMismatchError(f"corrupt stored block: {exc}") from exc


def app_entries(storage: Storage) -> Iterator[tuple[bytes, bytes]]:
    """The stored application state, in key order."""
    cut = len(APP_PREFIX)
    for key, value in storage.iterate_prefix(APP_PREFIX):
        yield key[cut:], value
