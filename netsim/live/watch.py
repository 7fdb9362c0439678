"""The chain as the nodes report it: what each committed, whether they agree, each block's
header time (``ChainWatch``), and when this process learned of each commit (``CommitClock``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from netsim.checkers import Violation
from node.api.client import ApiClient, ApiError
from node.home.manifest import ManifestNode

LONG_POLL_MS: Final = 5_000
"""How long one ``GET /events`` of a commit clock waits for the next block, at most (well
below the node's request timeout, 10 s by default)."""
NO_EVENT_KIND: Final = "netsim_live_none"
"""A kind prefix no event has: the long poll returns when a block commits, with no events."""
RETRY_S: Final = 0.1
MAX_CLOCK_HEIGHTS: Final = 100_000
"""Heights a commit clock stamps at most."""


@dataclass
class ChainWatch:
    """What the nodes committed, when this process first and last saw each height, each
    block's header time, and whether the nodes agree."""

    nodes: list[ManifestNode]
    clients: Mapping[str, ApiClient]
    started_s: float
    heights: dict[str, int] = field(default_factory=dict)
    ids: dict[int, dict[str, str]] = field(default_factory=dict)
    first_seen_s: dict[int, float] = field(default_factory=dict)
    last_seen_s: dict[int, float] = field(default_factory=dict)
    header_time_ms: dict[int, int] = field(default_factory=dict)
    """Each block's time as its header states it (the proposer's clock at the proposal)."""
    block_txs: dict[int, list[str]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    polls: int = 0
    reported: int = 0

    @property
    def validators(self) -> list[str]:
        return [node.name for node in self.nodes if node.role == "validator"]

    def poll(self, now_s: float) -> None:
        """Read every node's status and the blocks it newly committed."""
        self.polls += 1
        for node in self.nodes:
            try:
                status = self.clients[node.name].get("/status")
            except ApiError:
                continue
            self.statuses[node.name] = status
            for height in range(self.heights.get(node.name, 0) + 1, int(status["height"]) + 1):
                if not self._record_block(node, height, now_s):
                    break

    def _record_block(self, node: ManifestNode, height: int, now_s: float) -> bool:
        try:
            block = self.clients[node.name].get(f"/blocks/{height}")
        except ApiError:
            return False
        self.heights[node.name] = height
        at_height = self.ids.setdefault(height, {})
        at_height[node.name] = str(block["block_id"])
        self.first_seen_s.setdefault(height, now_s)
        self.last_seen_s[height] = now_s
        self.header_time_ms.setdefault(height, int(block["time_ms"]))
        self.block_txs.setdefault(height, list(block["tx_hashes"]))
        if len(set(at_height.values())) > 1:
            index = [n.name for n in self.nodes].index(node.name)
            message = f"height {height}: {node.name} committed {at_height[node.name][:16]}"
            time_us = int((now_s - self.started_s) * 1e6)
            self.violations.append(Violation("agreement", time_us, index, message))
        return True

    def committed_by_all_validators(self) -> int:
        return min((self.heights.get(name, 0) for name in self.validators), default=0)

    def progress_lines(self) -> list[str]:
        """One line per height every validator has committed since the last call."""
        lines = []
        while self.reported < self.committed_by_all_validators():
            self.reported += 1
            lines.append(self._line(self.reported))
        return lines

    def _line(self, height: int) -> str:
        at_height = self.ids[height]
        validators = [at_height[name] for name in self.validators]
        agree = len(set(validators)) == 1
        others = [n.name for n in self.nodes if n.role != "validator"]
        seen = sum(o in at_height for o in others)
        others_text = f", {seen}/{len(others)} others" if others else ""
        previous_ms = self.header_time_ms.get(height - 1)
        interval = (
            ""
            if previous_ms is None
            else f"  +{(self.header_time_ms[height] - previous_ms) / 1000:.2f} s"
        )
        txs = len(self.block_txs[height])
        verdict = "agree" if agree else "DISAGREE"
        return (
            f"height {height:>5}  block {validators[0][:12]}…  txs {txs:>4}  "
            f"{len(validators)}/{len(validators)} validators {verdict}{others_text}{interval}"
        )


class CommitClock:
    """When this process learned that each height was committed on one node, read on
    ``clock_s`` (``time.monotonic``): a thread keeps a long poll of the node's
    ``GET /events`` open, which the node answers as soon as it commits a block."""

    def __init__(self, client: ApiClient, clock_s: Callable[[], float] = time.monotonic) -> None:
        """``client``'s timeout must exceed ``LONG_POLL_MS``."""
        self.client = client
        self.clock_s = clock_s
        self.tip = 0
        self.seen_s: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-clock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 0.0) -> None:
        """Ask the thread to end (it does at its long poll's end, or when the node stops)."""
        self._stop.set()
        self._thread.join(timeout_s)

    def observe(self, tip: int, now_s: float) -> None:
        """The node's committed height is ``tip`` at ``now_s``: stamp the heights new since
        the last observation (several only if several committed within one poll)."""
        for height in range(self.tip + 1, min(tip, MAX_CLOCK_HEIGHTS) + 1):
            self.seen_s[height] = now_s
        self.tip = max(self.tip, tip)

    def _run(self) -> None:
        wait_ms = 0  # the first poll learns the height already committed: not stamped
        while not self._stop.is_set():
            path = f"/events?after={self.tip}&kind={NO_EVENT_KIND}&limit=1&wait_ms={wait_ms}"
            try:
                page = self.client.get(path)
            except ApiError:
                self._stop.wait(RETRY_S)  # not up yet, busy (503) or stopped
                continue
            if wait_ms == 0:
                self.tip, wait_ms = int(page["height"]), LONG_POLL_MS
            else:
                self.observe(int(page["height"]), self.clock_s())
