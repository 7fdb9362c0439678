"""``GET /health/network``'s figures from this node's own API: its status and its last blocks.

``NetworkView.read`` (blocking: a worker thread) asks ``GET /status`` (height, peers,
mempool, the last block's time), then the blocks of the last ``window`` heights
(``GET /blocks/<height>``: time and transaction count), keeping each block's two numbers in
a bounded cache (committed blocks never change, so each is asked once). The block interval
is the mean over the window; the throughput is the window's transactions over its time.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Final

from health.client import NodeClient
from node.api.client import ApiError

DEFAULT_WINDOW: Final = 20
MAX_CACHED_BLOCKS: Final = 256
MAX_BLOCK_REPLY_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChainFigures:
    """What the view read: the status document and the window's figures."""

    status: dict[str, Any]
    window_blocks: int
    block_interval_ms: float | None
    throughput_tx_per_s: float | None


class NetworkView:
    """Reads ``node``'s status and recent blocks (see the module docstring)."""

    def __init__(self, node: NodeClient, window: int = DEFAULT_WINDOW) -> None:
        if not 1 <= window < MAX_CACHED_BLOCKS:
            raise ValueError(f"window must be in 1..{MAX_CACHED_BLOCKS - 1}")
        self.node = node
        self.window = window
        self._blocks: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def read(self) -> ChainFigures:
        """The status and the figures of the last ``window`` blocks (``ApiError`` when the
        node's API does not answer as it should)."""
        status = self.node.status()
        height = status.get("height")
        if type(height) is not int or height < 0:
            raise ApiError("the status has no height")
        first = max(1, height - self.window)
        blocks = [(h, *self._block(h)) for h in range(first, height + 1)] if height else []
        if len(blocks) < 2:
            return ChainFigures(status, len(blocks), None, None)
        elapsed_ms = blocks[-1][1] - blocks[0][1]
        spans = len(blocks) - 1
        txs = sum(count for _, _, count in blocks[1:])
        interval = elapsed_ms / spans if elapsed_ms > 0 else None
        throughput = 1000.0 * txs / elapsed_ms if elapsed_ms > 0 else None
        return ChainFigures(status, len(blocks), interval, throughput)

    def _block(self, height: int) -> tuple[int, int]:
        with self._lock:
            cached = self._blocks.get(height)
        if cached is not None:
            return cached
        reply = self.node.transport.request(
            "GET",
            f"{self.node.base_url}/blocks/{height}",
            None,
            {"accept": "application/json"},
            timeout_s=self.node.timeout_s,
            max_response_bytes=MAX_BLOCK_REPLY_BYTES,
        )
        try:
            document = json.loads(reply.body)
        except ValueError:
            raise ApiError(f"block {height} is not JSON") from None
        if reply.status != 200 or not isinstance(document, dict):
            raise ApiError(f"block {height}: HTTP {reply.status}")
        time_ms, count = document.get("time_ms"), document.get("num_txs")
        if type(time_ms) is not int or type(count) is not int:
            raise ApiError(f"block {height} has no time_ms or num_txs")
        with self._lock:
            if len(self._blocks) >= MAX_CACHED_BLOCKS:
                self._blocks.pop(min(self._blocks))
            self._blocks[height] = (time_ms, count)
        return time_ms, count
