"""Block sync bookkeeping: which peers are how far, which requests are in flight, and the
committed blocks received ahead of time.

The core learns a peer's committed height from its ``Status`` and from the height of its
consensus messages (a peer voting at height h has committed h - 1). When a peer is ahead,
``plan`` spreads the missing heights over the peers that have them, one request per peer,
``max_blocks_per_request`` heights each, at most ``max_pending_requests`` at a time. Answers
(``BlocksReceived``) fill a buffer of at most ``max_buffered_blocks`` blocks and
``max_buffer_bytes`` bytes, from which the core applies blocks in height order after
verifying each one against its own validator schedule — a peer is never trusted.

Pure bookkeeping: no verification, no clock (request timeouts are the core's timers).
"""

from __future__ import annotations

from dataclasses import dataclass

from node.chain.actions import RequestBlocks
from node.ports import PeerId
from node.types import CommittedBlock


@dataclass(frozen=True, slots=True)
class SyncedBlock:
    """A committed block received from ``peer`` (not verified yet): ``size_bytes`` of the
    received encoding, and ``block_bytes``, the block's own canonical encoding within it."""

    committed: CommittedBlock
    size_bytes: int
    peer: PeerId
    block_bytes: bytes


@dataclass(frozen=True, slots=True)
class _Request:
    from_height: int
    max_blocks: int

    def covers(self, height: int) -> bool:
        """True if this request asks for ``height``."""
        return self.from_height <= height < self.from_height + self.max_blocks


class BlockSync:
    """Peer heights, requests in flight and buffered blocks, each within its limit."""

    __slots__ = (
        "_buffer",
        "_buffer_bytes",
        "_heights",
        "_max_blocks_per_request",
        "_max_buffer_bytes",
        "_max_buffered_blocks",
        "_max_peers",
        "_max_pending_requests",
        "_requests",
    )

    def __init__(
        self,
        *,
        max_peers: int,
        max_pending_requests: int,
        max_blocks_per_request: int,
        max_buffered_blocks: int,
        max_buffer_bytes: int,
    ) -> None:
        self._max_peers = max_peers
        self._max_pending_requests = max_pending_requests
        self._max_blocks_per_request = max_blocks_per_request
        self._max_buffered_blocks = max_buffered_blocks
        self._max_buffer_bytes = max_buffer_bytes
        self._heights: dict[PeerId, int] = {}
        self._requests: dict[PeerId, _Request] = {}
        self._buffer: dict[int, SyncedBlock] = {}
        self._buffer_bytes = 0

    # -- peers ----------------------------------------------------------------------------------

    @property
    def peer_count(self) -> int:
        """Peers whose height is known."""
        return len(self._heights)

    def best_height(self) -> int:
        """The highest committed height a peer reported (0 if none)."""
        return max(self._heights.values(), default=0)

    def peer_height(self, peer: PeerId) -> int | None:
        """The committed height ``peer`` reported last, if known."""
        return self._heights.get(peer)

    def note_height(self, peer: PeerId, committed_height: int) -> bool:
        """``peer`` has committed at least ``committed_height``; returns True if the peer was
        not known before. At the peer limit the lowest idle peer is forgotten first."""
        known = self._heights.get(peer)
        if known is not None:
            self._heights[peer] = max(known, committed_height)
            return False
        if len(self._heights) >= self._max_peers and not self._forget_lowest_idle():
            return False
        self._heights[peer] = committed_height
        return True

    def forget(self, peer: PeerId) -> None:
        """Drop a disconnected peer and its request."""
        self._heights.pop(peer, None)
        self._requests.pop(peer, None)

    def _forget_lowest_idle(self) -> bool:
        idle = [(h, p) for p, h in self._heights.items() if p not in self._requests]
        if not idle:
            return False
        del self._heights[min(idle)[1]]
        return True

    # -- requests -------------------------------------------------------------------------------

    def plan(self, next_height: int, *, ask_unknown: bool = False) -> list[RequestBlocks]:
        """Requests for the heights from ``next_height`` on that are neither buffered nor
        asked for, to idle peers that have them (highest first). With ``ask_unknown``,
        peers not known to have ``next_height`` are asked for it too (a decided block is
        missing: whoever decided it will have it soon)."""
        planned: list[RequestBlocks] = []
        candidates = sorted(
            (
                (height, peer)
                for peer, height in self._heights.items()
                if peer not in self._requests
            ),
            key=lambda item: (-item[0], item[1]),
        )
        for peer_height, peer in candidates:
            if len(self._requests) >= self._max_pending_requests:
                break
            start = self._first_missing(next_height)
            if peer_height >= start:
                count = min(self._max_blocks_per_request, peer_height - start + 1)
            elif ask_unknown and start == next_height:
                count = 1
            else:
                continue
            self._requests[peer] = _Request(start, count)
            planned.append(RequestBlocks(peer, start, count))
        return planned

    def _first_missing(self, height: int) -> int:
        while height in self._buffer or any(r.covers(height) for r in self._requests.values()):
            height += 1
        return height

    def pending_from(self, peer: PeerId) -> int | None:
        """The first height of the request in flight to ``peer``, if any."""
        request = self._requests.get(peer)
        return None if request is None else request.from_height

    def request_finished(self, peer: PeerId) -> _Request | None:
        """The answer (or the timeout) of ``peer``'s request came; returns the request."""
        return self._requests.pop(peer, None)

    # -- buffered blocks ------------------------------------------------------------------------

    def add(self, height: int, block: SyncedBlock, next_height: int) -> bool:
        """Buffer a received block of ``height``; False if outside the window or the limits
        (heights ``next_height`` .. ``next_height + max_buffered_blocks - 1``)."""
        if not next_height <= height < next_height + self._max_buffered_blocks:
            return False
        if height in self._buffer:
            return True
        if self._buffer_bytes + block.size_bytes > self._max_buffer_bytes:
            return False
        self._buffer[height] = block
        self._buffer_bytes += block.size_bytes
        return True

    def has(self, height: int) -> bool:
        """True if a block of ``height`` is buffered."""
        return height in self._buffer

    def take(self, height: int) -> SyncedBlock | None:
        """Remove and return the buffered block of ``height``."""
        block = self._buffer.pop(height, None)
        if block is not None:
            self._buffer_bytes -= block.size_bytes
        return block

    def drop_below(self, height: int) -> None:
        """Forget buffered blocks below ``height`` (committed meanwhile)."""
        for stale in [h for h in self._buffer if h < height]:
            self.take(stale)

    @property
    def buffered(self) -> int:
        """Blocks buffered."""
        return len(self._buffer)
