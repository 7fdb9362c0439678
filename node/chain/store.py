"""Where the chain core keeps its durable state in a ``Storage`` (key layout and codecs).

Keys (heights are u64 big-endian, so prefix iteration is height order):

- ``meta/genesis``: the genesis hash (the store belongs to that chain only);
- ``meta/layout``: the version of this key layout and of the encodings stored under it
  (``LAYOUT_VERSION``); a store of another version is refused, not misread;
- ``meta/height``: the last committed height; ``meta/app_root``: its state root;
- ``block/<height>``: the encoded ``CommittedBlock`` (block and the certificate that
  decided it), made from the block's bytes as received or built
  (``node.codec.committed_block_bytes``) and served to peers as is;
- ``results/<height>``: the encoded ``BlockResults`` of the height (its block time, block
  events and transaction receipts), what clients read events and receipts from;
- ``txidx/<tx hash>``: the ``TxLocation`` (height, position in the block) of a committed
  transaction: of its successful execution if it had one, else of its first inclusion;
- ``app/<key>``: the application state of the last committed height;
- ``vset/<height>``: the validator sets of the schedule (``node.chain.schedule``);
- ``vhist/<height>``: the members of past heights evidence may be about
  (``node.chain.set_history``); ``evid/<step>``: pending evidence (``node.chain.evidence``);
- ``wal/...``, ``sign/last``: the consensus log of the current height (``node.chain.wal``).

Committed blocks and their results are kept (the ledger peers sync from, and what clients
read events from); the state history that can
be proven is bounded by the application's retention, and the consensus log by
``NodeConfig.max_wal_bytes_per_height``.

Everything that makes a height committed is written in ONE synced atomic batch
(``commit_ops`` and ``results_ops``): the block and its certificate, its results and tx
index entries, the state changes, the schedule, the new height, and the deletion of the
height's consensus log. A crash leaves either the whole height or none of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Final

from node.chain.errors import StorageMismatchError
from node.codec import (
    COMMITTED_BLOCK_CODEC,
    EVENT_CODEC,
    MAX_TXS_PER_BLOCK,
    MIB,
    RECEIPT_CODEC,
    ArrayOf,
    Nested,
    StructCodec,
    UInt,
)
from node.errors import DecodeError, EncodeError
from node.ports import Delete, Put, Storage, WriteOp
from node.types import DIGEST_BYTES, CommittedBlock, Event, TxReceipt

GENESIS_KEY: Final = b"meta/genesis"
LAYOUT_KEY: Final = b"meta/layout"
LAYOUT_VERSION: Final = 3
"""Bumped whenever a stored key or encoding changes meaning (2: block headers commit to
evidence, ``evid/`` and ``vhist/`` entries; 3: ``results/`` and ``txidx/`` entries, which a
store of version 2 lacks for the heights it committed, and genesis documents that commit to
the modules' genesis state)."""
HEIGHT_KEY: Final = b"meta/height"
APP_ROOT_KEY: Final = b"meta/app_root"
BLOCK_PREFIX: Final = b"block/"
RESULTS_PREFIX: Final = b"results/"
TXIDX_PREFIX: Final = b"txidx/"
APP_PREFIX: Final = b"app/"
_HEIGHT_BYTES: Final = 8
MAX_BLOCK_EVENTS: Final = 65_536
"""Most block events one height's results hold (the application makes at most a few
thousand: evidence records, and the events of at most ``max_due_tasks_per_block`` tasks)."""
MAX_RESULTS_BYTES: Final = 256 * MIB
"""Largest encoding of one height's results."""


@dataclass(frozen=True, slots=True)
class BlockResults:
    """What executing the block of ``height`` produced (``BlockResult`` of the application,
    with the block's agreed time): block events, then one receipt per transaction."""

    height: int
    time_ms: int
    block_events: tuple[Event, ...]
    receipts: tuple[TxReceipt, ...]


@dataclass(frozen=True, slots=True)
class TxLocation:
    """Where a committed transaction is: its block's height and its position in the block."""

    height: int
    index: int


RESULTS_CODEC: Final = StructCodec(
    BlockResults,
    [
        ("height", UInt()),
        ("time_ms", UInt()),
        ("block_events", ArrayOf(Nested(EVENT_CODEC), MAX_BLOCK_EVENTS)),
        ("receipts", ArrayOf(Nested(RECEIPT_CODEC), MAX_TXS_PER_BLOCK)),
    ],
    MAX_RESULTS_BYTES,
)
TX_LOCATION_CODEC: Final = StructCodec(
    TxLocation, [("height", UInt()), ("index", UInt(MAX_TXS_PER_BLOCK))], 32
)


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


def results_key(height: int) -> bytes:
    """The key of the results of ``height``."""
    return RESULTS_PREFIX + height_bytes(height)


def txidx_key(tx_hash: bytes) -> bytes:
    """The key of the location of the committed transaction ``tx_hash``."""
    return TXIDX_PREFIX + tx_hash


def results_ops(storage: Storage, results: BlockResults) -> list[WriteOp]:
    """The writes that keep ``results`` and index its transactions (part of the height's
    commit batch). A transaction hash already indexed keeps its location unless this is its
    successful execution (one hash executes successfully at most once: nonces). Results
    beyond the codec's limits (an application configured past them) are not kept, and the
    height then has none: bookkeeping never stops a commit."""
    ops: list[WriteOp] = []
    with contextlib.suppress(EncodeError):
        ops.append(Put(results_key(results.height), RESULTS_CODEC.encode(results)))
    indexed: set[bytes] = set()
    for index, receipt in enumerate(results.receipts):
        key = txidx_key(receipt.tx_hash)
        if not receipt.ok and (key in indexed or storage.get(key) is not None):
            continue  # a failed repeat of a transaction indexed already
        indexed.add(key)
        ops.append(Put(key, TX_LOCATION_CODEC.encode(TxLocation(results.height, index))))
    return ops


def read_results(storage: Storage, height: int) -> BlockResults | None:
    """The stored results of ``height``, if kept (``StorageMismatchError`` if corrupt)."""
    data = storage.get(results_key(height))
    return None if data is None else decode_results(data, height)


def decode_results(data: bytes, height: int) -> BlockResults:
    """The results of ``height`` read back from this store (``StorageMismatchError`` if
    corrupt, or of another height)."""
    try:
        results = RESULTS_CODEC.decode(data)
    except DecodeError as exc:
        raise StorageMismatchError(f"corrupt stored results of height {height}: {exc}") from exc
    if results.height != height:
        raise StorageMismatchError(
            f"the results stored for height {height} are of {results.height}"
        )
    return results


def read_tx_location(storage: Storage, tx_hash: bytes) -> TxLocation | None:
    """Where the committed transaction ``tx_hash`` is, if this store committed it."""
    if type(tx_hash) is not bytes or len(tx_hash) != DIGEST_BYTES:
        return None
    data = storage.get(txidx_key(tx_hash))
    if data is None:
        return None
    try:
        return TX_LOCATION_CODEC.decode(data)
    except DecodeError as exc:
        raise StorageMismatchError(f"corrupt stored tx location: {exc}") from exc


def read_block(storage: Storage, height: int) -> bytes | None:
    """The encoded ``CommittedBlock`` at ``height``, if stored."""
    return storage.get(block_key(height))


def decode_stored_block(data: bytes) -> CommittedBlock:
    """A committed block read back from this store (``StorageMismatchError`` if corrupt)."""
    try:
        return COMMITTED_BLOCK_CODEC.decode(data)
    except DecodeError as exc:
        raise StorageMismatchError(f"corrupt stored block: {exc}") from exc


def app_entries(storage: Storage, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
    """The stored application state (of the last committed height) under ``prefix``, in
    key order."""
    cut = len(APP_PREFIX)
    for key, value in storage.iterate_prefix(APP_PREFIX + prefix):
        yield key[cut:], value


def app_entries_page(storage: Storage, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
    """At most ``limit`` stored application entries under ``prefix``, in key order."""
    return list(islice(app_entries(storage, prefix), limit))
