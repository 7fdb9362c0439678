"""Compact blocks: a proposed block travels as its header and transaction hashes.

Every validator already holds most of a proposal's transactions (they were gossiped to it
before the proposer reaped them), so sending them again inside the block doubles the bytes
on the wire and bounds a block by the largest message the network carries. A block with
transactions is sent as a ``CompactBlock`` (34 encoded bytes a transaction); a receiver
rebuilds it from its mempool (``rebuild``), and asks the sender for what it lacks
(``BlockTxsRequest``, answered by any node holding the block with ``BlockTxs`` messages
within the batch size, ``block_txs_messages``). ``PendingBlocks`` keeps the compact blocks
waiting for transactions, bounded in blocks; each answer is checked against the hashes the
block lists, so a wrong transaction is the sender's fault, never this node's. The rebuilt
block is then handled as if it had arrived whole: the header's ``tx_root`` and every
signature are checked by the block's judge as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from node.chain.actions import Offence
from node.chain.genesis import ConsensusParams
from node.chain.messages import PeerFault
from node.codec import (
    BLOCK_CODEC,
    ENVELOPE_OVERHEAD_BYTES,
    KIB,
    block_id,
    block_message,
    block_tx_bytes,
    encode_message,
    tx_hash,
)
from node.ports import PeerId
from node.types import DIGEST_BYTES, Block, BlockTxs, BlockTxsRequest, CompactBlock

__all__ = [
    "COMPACT_HEADER_ALLOWANCE_BYTES",
    "REASK_MS",
    "PendingBlocks",
    "TxLookup",
    "block_txs_messages",
    "compact_message",
    "max_compact_message_bytes",
    "proposed_block_message",
    "rebuild",
    "whole_block",
]

TxLookup = Callable[[bytes], "bytes | None"]
"""The encoded transaction of a hash this node holds (its mempool), or None."""


COMPACT_HEADER_ALLOWANCE_BYTES: Final = 128 * KIB
"""Room ``max_compact_message_bytes`` counts for a header: its fields and a commit
certificate of up to about 1,200 validators (101 bytes a signature)."""


def max_compact_message_bytes(params: ConsensusParams) -> int:
    """The largest ``CompactBlock`` message of a chain with ``params`` (a header within
    ``COMPACT_HEADER_ALLOWANCE_BYTES``): what the network must carry in one message. A whole
    block travels in one message only without transactions; block sync answers with whole
    blocks over request/response. Never more than the whole block's own limit: a hash
    (34 bytes encoded) is shorter than any transaction."""
    hashes = 3 + (2 + DIGEST_BYTES) * params.max_block_txs  # array header, bin8 + digest each
    compact = COMPACT_HEADER_ALLOWANCE_BYTES + hashes + params.max_evidence_bytes + 3
    return min(compact, params.max_block_bytes) + ENVELOPE_OVERHEAD_BYTES


def compact_message(block: Block) -> bytes:
    """The ``CompactBlock`` message of ``block``."""
    hashes = tuple(tx_hash(raw) for raw in block.txs)
    return encode_message(CompactBlock(block.header, hashes, block.evidence))


def proposed_block_message(block: Block | None, block_bytes: bytes | None) -> bytes | None:
    """How a held proposed block travels: compact when it has transactions, whole (the
    ``BLOCK`` message of its encoding) when it has none; None when it is not held."""
    if block is None or block_bytes is None:
        return None
    return compact_message(block) if block.txs else block_message(block_bytes)


def rebuild(compact: CompactBlock, lookup: TxLookup) -> list[bytes | None]:
    """The block's transactions this node holds, in block order (None where it lacks one);
    ``PeerFault`` if the block lists a transaction twice (no valid block does)."""
    if len(set(compact.tx_hashes)) != len(compact.tx_hashes):
        raise PeerFault(Offence.INVALID_BLOCK, "a compact block lists a transaction twice")
    return [lookup(hash_) for hash_ in compact.tx_hashes]


def whole_block(compact: CompactBlock, txs: Sequence[bytes]) -> tuple[Block, bytes]:
    """The block a compact block names, with its canonical encoding."""
    block = Block(compact.header, tuple(txs), compact.evidence)
    return block, BLOCK_CODEC.encode(block)


def block_txs_messages(
    block: Block, request: BlockTxsRequest, max_message_bytes: int
) -> list[bytes]:
    """The ``BlockTxs`` messages answering ``request`` for ``block``, each within
    ``max_message_bytes``; ``PeerFault`` for indexes a correct peer never asks for."""
    indexes = request.indexes
    if any(b <= a for a, b in pairwise(indexes)):
        raise PeerFault(Offence.MALFORMED, "block tx indexes must ascend without repeats")
    if indexes and indexes[-1] >= len(block.txs):
        raise PeerFault(Offence.MALFORMED, f"block tx index {indexes[-1]} out of range")
    budget = max_message_bytes - ENVELOPE_OVERHEAD_BYTES - 64  # id, array headers
    messages: list[bytes] = []
    chunk: list[int] = []
    used = 0
    for index in indexes:
        cost = block_tx_bytes(len(block.txs[index])) + 5  # the index's uint
        if chunk and (used + cost > budget or len(chunk) >= _MAX_TXS_PER_MESSAGE):
            messages.append(_txs_message(request.block_id, block, chunk))
            chunk, used = [], 0
        chunk.append(index)
        used += cost
    if chunk:
        messages.append(_txs_message(request.block_id, block, chunk))
    return messages


_MAX_TXS_PER_MESSAGE = 1024  # BLOCK_TXS_CODEC's array limit (MAX_TXS_PER_BATCH)
_MAX_ASKED_PEERS = 32  # holders asked for one pending block
REASK_MS = 1_000
"""How long before the same peer is asked again for a pending block's transactions."""


def _txs_message(id_: bytes, block: Block, indexes: list[int]) -> bytes:
    txs = tuple(block.txs[i] for i in indexes)
    return encode_message(BlockTxs(id_, tuple(indexes), txs))


@dataclass
class _Pending:
    compact: CompactBlock
    sender: PeerId
    txs: list[bytes | None]
    missing: int
    asked: dict[PeerId, int]
    """When each peer was last asked (ms)."""
    missing_at: dict[bytes, int]
    """The index of each missing transaction's hash (its first, if a block lists it twice:
    the second then comes from an answer)."""


class PendingBlocks:
    """Compact blocks waiting for transactions, by block id: at most ``max_blocks`` (the
    oldest goes first), dropped once their height is committed."""

    __slots__ = ("_max_blocks", "_pending")

    def __init__(self, max_blocks: int) -> None:
        if max_blocks < 1:
            raise ValueError("PendingBlocks needs room for one block")
        self._max_blocks = max_blocks
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._pending

    def add(self, compact: CompactBlock, sender: PeerId, txs: list[bytes | None]) -> bytes:
        """Hold ``compact`` with the transactions found so far; returns its block id."""
        id_ = block_id(compact.header)
        missing_at: dict[bytes, int] = {}
        for index, raw in enumerate(txs):
            if raw is None:
                missing_at.setdefault(compact.tx_hashes[index], index)
        missing = sum(1 for raw in txs if raw is None)
        self._pending[id_] = _Pending(compact, sender, txs, missing, {}, missing_at)
        self._pending.move_to_end(id_)
        while len(self._pending) > self._max_blocks:
            self._pending.popitem(last=False)
        return id_

    def request_to(self, id_: bytes, peer: PeerId, now_ms: int) -> BlockTxsRequest | None:
        """The request for what the pending block ``id_`` lacks, to send to ``peer`` — None
        if ``peer`` was asked less than ``REASK_MS`` ago (a block heard twice at once is
        asked for once; a request lost, or sent to a peer that did not hold the block yet, is
        made again when the block is heard again later)."""
        pending = self._pending[id_]
        last_ms = pending.asked.get(peer)
        if last_ms is not None and now_ms - last_ms < REASK_MS:
            return None
        if last_ms is None and len(pending.asked) >= _MAX_ASKED_PEERS:
            return None
        pending.asked[peer] = now_ms
        missing = tuple(i for i, raw in enumerate(pending.txs) if raw is None)
        return BlockTxsRequest(id_, missing)

    def fill(self, answer: BlockTxs) -> tuple[CompactBlock, list[bytes], PeerId] | None:
        """Take the transactions of ``answer``; the compact block, its transactions and its
        first sender once none is missing (and forget it), else None. ``PeerFault`` if a
        transaction is not the one the block lists at its index."""
        pending = self._pending.get(answer.block_id)
        if pending is None:
            return None  # answered late (already complete or dropped): nothing to do
        if len(answer.indexes) != len(answer.txs):
            raise PeerFault(Offence.MALFORMED, "block txs: one index per transaction")
        hashes = pending.compact.tx_hashes
        for index, raw in zip(answer.indexes, answer.txs, strict=True):
            if index >= len(hashes) or tx_hash(raw) != hashes[index]:
                raise PeerFault(Offence.INVALID_BLOCK, f"block tx {index} is not the listed one")
            if pending.txs[index] is None:
                pending.txs[index] = raw
                pending.missing -= 1
                if pending.missing_at.get(hashes[index]) == index:
                    del pending.missing_at[hashes[index]]
        if pending.missing:
            return None
        del self._pending[answer.block_id]
        return pending.compact, [raw for raw in pending.txs if raw is not None], pending.sender

    def fill_from(
        self, tx_hashes: Iterable[bytes], lookup: TxLookup
    ) -> list[tuple[CompactBlock, list[bytes], PeerId]]:
        """Take the transactions of ``tx_hashes`` that this node now holds (``lookup``:
        admitted since the blocks were heard, e.g. gossip that was still being verified);
        the blocks this completed, as ``fill`` returns them (and forget them). A block's
        request may be out already: its answer then finds nothing pending."""
        if not self._pending:
            return []
        hashes = tuple(tx_hashes)
        done: list[tuple[CompactBlock, list[bytes], PeerId]] = []
        for id_, pending in list(self._pending.items()):
            for hash_ in hashes:
                index = pending.missing_at.get(hash_)
                raw = None if index is None else lookup(hash_)
                if index is not None and raw is not None:  # refused ones stay missing
                    del pending.missing_at[hash_]
                    pending.txs[index] = raw
                    pending.missing -= 1
            if pending.missing == 0:
                del self._pending[id_]
                txs = [raw for raw in pending.txs if raw is not None]
                done.append((pending.compact, txs, pending.sender))
        return done

    def drop_through(self, height: int) -> None:
        """Forget the compact blocks of heights up to ``height`` (committed)."""
        for id_ in [i for i, p in self._pending.items() if p.compact.header.height <= height]:
            del self._pending[id_]
