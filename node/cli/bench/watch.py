"""The commit watcher of ``bighealth bench network``: learns each block as one node commits it.

``BlockWatcher`` runs in a thread of the parent process. It long-polls the node's
``GET /events`` with a kind that matches nothing (``wait_ms``: the answer comes when a block
commits, carrying the tip height), then reads every new block (``GET /blocks/<h>``) and
stamps each with the ``time.monotonic()`` at which its document arrived: the moment the load
side learned that the block's transactions are final. Load processes stamp submissions with
the same clock (CLOCK_MONOTONIC on Linux, shared by the processes of a host), so
``seen - submitted`` is a transaction's finality as a client sees it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

NO_EVENTS_KIND: Final = "bench.watch.none"
"""A kind prefix no event has: the long poll then only waits for the next block."""
LONG_POLL_MS: Final = 1_000
HTTP_TIMEOUT_S: Final = 10.0
MAX_TRACKED_TXS: Final = 4_000_000
"""Transaction hashes the watcher keeps at most (a run's memory stays bounded)."""
MAX_TRACKED_BLOCKS: Final = 200_000
"""Blocks the watcher keeps at most (over a day at a block a second)."""
ERROR_PAUSE_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class SeenBlock:
    """A block as the watcher learned it."""

    height: int
    time_ms: int
    """The header's time (ms since the epoch): the proposer's clock."""
    num_txs: int
    seen_s: float
    """``time.monotonic()`` when the watcher had the block."""


@dataclass
class BlockWatcher:
    """Follows the committed blocks of the node at ``address`` (``host:port``) from the
    height after ``from_height``; ``start`` and ``stop`` run and end its thread."""

    address: str
    from_height: int = 0
    blocks: list[SeenBlock] = field(default_factory=list)
    tx_seen_s: dict[bytes, float] = field(default_factory=dict)
    errors: int = 0
    dropped_hashes: int = 0
    dropped_blocks: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    committed_counter: Any = None
    """A shared ``multiprocessing`` value the watcher adds each block's transactions to (the
    load's closed-loop window), if given."""

    @property
    def height(self) -> int:
        """The last height seen."""
        with self._lock:
            return self.blocks[-1].height if self.blocks else self.from_height

    def committed_since(self, since_s: float) -> int:
        """Transactions in the blocks seen at or after ``since_s`` (monotonic)."""
        with self._lock:
            return sum(b.num_txs for b in self.blocks if b.seen_s >= since_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="block-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HTTP_TIMEOUT_S + 1)

    def _run(self) -> None:
        host, _, port = self.address.rpartition(":")
        connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=HTTP_TIMEOUT_S)
        last = self.from_height
        while not self._stop.is_set():
            try:
                tip = self._wait_tip(connection, last)
                while last < tip and not self._stop.is_set():
                    self._record(_get(connection, f"/blocks/{last + 1}"))
                    last += 1
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                self.errors += 1
                connection.close()
                time.sleep(ERROR_PAUSE_S)
        connection.close()

    def _wait_tip(self, connection: http.client.HTTPConnection, last: int) -> int:
        path = f"/events?after={last}&kind={NO_EVENTS_KIND}&limit=1&wait_ms={LONG_POLL_MS}"
        tip = _get(connection, path)["height"]
        if not isinstance(tip, int):
            raise ValueError("the events page has no height")
        return tip

    def _record(self, document: dict[str, Any]) -> None:
        seen_s = time.monotonic()
        block = SeenBlock(
            int(document["height"]), int(document["time_ms"]), int(document["num_txs"]), seen_s
        )
        hashes = document["tx_hashes"]
        with self._lock:
            if len(self.blocks) >= MAX_TRACKED_BLOCKS:
                self.dropped_blocks += 1
                return
            self.blocks.append(block)
            if self.committed_counter is not None:
                self.committed_counter.value += block.num_txs
            for text in hashes:
                if len(self.tx_seen_s) >= MAX_TRACKED_TXS:
                    self.dropped_hashes += 1
                    continue
                self.tx_seen_s[bytes.fromhex(text)] = seen_s


def _get(connection: http.client.HTTPConnection, path: str) -> dict[str, Any]:
    connection.request("GET", path)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise ValueError(f"GET {path} answered {response.status}: {data[:200]!r}")
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError(f"GET {path} is not a JSON object")
    return document
