"""Proposed blocks this node holds for the current and the next height, and its verdicts.

Blocks travel separately from the signed proposals naming them (``node.chain.messages``), so
either may arrive first: a block waits here until a proposal references it, and a proposal
whose block is missing is marked *awaited* so the block is validated as soon as it comes.

Each block is held with its canonical encoding (as received, or as built by this node), which
the core judges, gossips and stores without encoding the block again.

Bounds: ``max_blocks`` blocks and ``max_bytes`` encoded bytes in total, ``max_per_peer`` blocks
per sender. A sender over its share loses its own oldest block; when the total is reached the
oldest block of the sender holding the most goes. This node's own blocks (sender ``OWN``)
are never evicted for a peer's.

Verdicts (valid or not, with the block's verified transaction hashes) are kept for the
current height only and never evicted: once ``max_verdicts`` blocks were judged, further
blocks of the height get no verdict (this node prevotes nil on them), so a verdict given to
consensus never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from node.ports import PeerId
from node.types import Block

OWN: Final[PeerId] = ""
"""The sender name of this node's own blocks."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """This node's judgement of a block: valid or not; if valid, its transaction hashes."""

    valid: bool
    tx_hashes: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class _Held:
    block: Block
    data: bytes
    """The block's canonical encoding: kept so that it is never encoded again."""
    peer: PeerId

    @property
    def size_bytes(self) -> int:
        return len(self.data)


class ProposedBlocks:
    """Blocks by id with their senders, verdicts of the current height, awaited ids."""

    __slots__ = (
        "_awaited",
        "_blocks",
        "_bytes",
        "_max_blocks",
        "_max_bytes",
        "_max_per_peer",
        "_max_verdicts",
        "_per_peer",
        "_verdicts",
        "evicted",
    )

    def __init__(
        self, *, max_blocks: int, max_per_peer: int, max_bytes: int, max_verdicts: int
    ) -> None:
        self._max_blocks = max_blocks
        self._max_per_peer = max_per_peer
        self._max_bytes = max_bytes
        self._max_verdicts = max_verdicts
        self._blocks: dict[bytes, _Held] = {}  # insertion order: oldest first
        self._per_peer: dict[PeerId, int] = {}
        self._bytes = 0
        self._verdicts: dict[bytes, Verdict] = {}
        self._awaited: set[bytes] = set()
        self.evicted = 0
        """Blocks dropped to respect a limit."""

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def size_bytes(self) -> int:
        """Encoded bytes of the blocks held."""
        return self._bytes

    def add(self, block_id: bytes, block: Block, data: bytes, peer: PeerId) -> bool:
        """Hold ``block`` with ``data``, its canonical encoding (which counts towards the
        byte budget); False if it cannot fit (larger than the whole budget)."""
        if block_id in self._blocks:
            return True
        size_bytes = len(data)
        if size_bytes > self._max_bytes:
            return False
        if peer != OWN and self._per_peer.get(peer, 0) >= self._max_per_peer:
            self._evict_oldest_of(peer)
        while len(self._blocks) >= self._max_blocks or self._bytes + size_bytes > self._max_bytes:
            if not self._evict_one():
                return False
        self._blocks[block_id] = _Held(block, data, peer)
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        self._bytes += size_bytes
        return True

    def get(self, block_id: bytes) -> Block | None:
        """The block with this id, if held."""
        held = self._blocks.get(block_id)
        return None if held is None else held.block

    def encoded(self, block_id: bytes) -> bytes | None:
        """The canonical encoding of the block with this id, if held."""
        held = self._blocks.get(block_id)
        return None if held is None else held.data

    def drop_below(self, height: int) -> None:
        """Forget blocks of heights below ``height`` and every verdict (a new height)."""
        for block_id in [i for i, h in self._blocks.items() if h.block.header.height < height]:
            self._remove(block_id)
        self._verdicts.clear()
        self._awaited.clear()

    # -- verdicts of the current height -------------------------------------------------------

    def verdict(self, block_id: bytes) -> Verdict | None:
        """The verdict on ``block_id`` at the current height, if given."""
        return self._verdicts.get(block_id)

    def can_judge(self) -> bool:
        """True while verdicts may still be recorded at this height."""
        return len(self._verdicts) < self._max_verdicts

    def record(self, block_id: bytes, verdict: Verdict) -> None:
        """Keep a verdict (the caller checked ``can_judge``); a block is judged once."""
        assert block_id not in self._verdicts, "a verdict is never replaced"
        assert self.can_judge(), "verdict limit reached"
        self._verdicts[block_id] = verdict
        self._awaited.discard(block_id)

    def await_block(self, block_id: bytes) -> None:
        """A proposal of the current height names ``block_id``, which is not here yet."""
        if len(self._awaited) < self._max_verdicts:
            self._awaited.add(block_id)

    def is_awaited(self, block_id: bytes) -> bool:
        """True if a proposal waits for this block."""
        return block_id in self._awaited

    # -- eviction -------------------------------------------------------------------------------

    def _evict_oldest_of(self, peer: PeerId) -> None:
        for block_id, held in self._blocks.items():
            if held.peer == peer:
                self._remove(block_id)
                self.evicted += 1
                return

    def _evict_one(self) -> bool:
        peers = [(count, peer) for peer, count in self._per_peer.items() if peer != OWN]
        if not peers:
            return False
        _, heaviest = max(peers)
        self._evict_oldest_of(heaviest)
        return True

    def _remove(self, block_id: bytes) -> None:
        held = self._blocks.pop(block_id)
        self._bytes -= held.size_bytes
        remaining = self._per_peer[held.peer] - 1
        if remaining:
            self._per_peer[held.peer] = remaining
        else:
            del self._per_peer[held.peer]
