"""Bounded buffer of inputs for heights the core has not started yet.

Peers that decided first send votes and proposals of the next height before this node has
committed; dropping them would cost a round. They wait here, within limits, until
``StartHeight`` of their height; then they are handled as if just received (membership is
checked only then, when the height's validator set is known).
"""

from __future__ import annotations

from consensus.inputs import Input
from consensus.limits import MAX_BUFFERED_FUTURE_INPUTS, MAX_BUFFERED_FUTURE_INPUTS_PER_SENDER

LOCAL_SENDER = b""
"""Sender key under which the shell's own inputs (validity verdicts) are buffered."""


class FutureBuffer:
    """Inputs by height, in arrival order; at most ``max_total`` and ``max_per_sender``."""

    __slots__ = ("_by_height", "_count_by_sender", "_max_per_sender", "_max_total", "_total")

    def __init__(
        self,
        max_total: int = MAX_BUFFERED_FUTURE_INPUTS,
        max_per_sender: int = MAX_BUFFERED_FUTURE_INPUTS_PER_SENDER,
    ) -> None:
        """An empty buffer with the given limits (counts of inputs)."""
        if max_total < 1 or max_per_sender < 1:
            raise ValueError("buffer limits must be >= 1")
        self._max_total = max_total
        self._max_per_sender = max_per_sender
        self._by_height: dict[int, list[tuple[bytes, Input]]] = {}
        self._count_by_sender: dict[bytes, int] = {}
        self._total = 0

    def add(self, height: int, sender: bytes, item: Input) -> bool:
        """Keep ``item`` for ``height``; False (dropped) when a limit is reached."""
        count = self._count_by_sender.get(sender, 0)
        if self._total >= self._max_total or count >= self._max_per_sender:
            return False
        self._by_height.setdefault(height, []).append((sender, item))
        self._count_by_sender[sender] = count + 1
        self._total += 1
        return True

    def take(self, height: int) -> list[Input]:
        """Remove and return the inputs of ``height``; inputs of lower heights are discarded."""
        taken: list[Input] = []
        for buffered_height in sorted(h for h in self._by_height if h <= height):
            entries = self._by_height.pop(buffered_height)
            for sender, item in entries:
                self._forget(sender)
                if buffered_height == height:
                    taken.append(item)
        return taken

    def _forget(self, sender: bytes) -> None:
        remaining = self._count_by_sender[sender] - 1
        if remaining:
            self._count_by_sender[sender] = remaining
        else:
            del self._count_by_sender[sender]
        self._total -= 1

    def __len__(self) -> int:
        return self._total
