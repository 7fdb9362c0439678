"""Watching a running network through its nodes' APIs: heights, block ids, state roots.

``ChainWatch.observe`` asks each node's ``GET /status`` and the ``GET /blocks/<h>`` it has
not compared yet (at most ``max_blocks_per_look`` per node a look, so a look stays short),
and feeds ``node.cli.chaos.checks``: the block ids of every height (a fork), the state
roots of nodes at one height, the heights each node reported (a lost block).
``wait_recovery`` measures liveness after a heal: the seconds until every node has
committed a height above the highest one any node had at the heal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from node.api.client import ApiClient, ApiError
from node.cli.chaos.checks import HeightRecord, fork_violations, root_violations
from node.cli.localnet import LocalNetwork
from node.home.config import parse_host_port

PROBE_TIMEOUT_S: Final = 2.0
POLL_S: Final = 0.2
MAX_BLOCKS_PER_LOOK: Final = 200


class ChainWatch:
    """See the module docstring."""

    def __init__(
        self, net: LocalNetwork, *, max_blocks_per_look: int = MAX_BLOCKS_PER_LOOK
    ) -> None:
        self._clients = {
            name: ApiClient(*parse_host_port(net.node(name).api), timeout_s=PROBE_TIMEOUT_S)
            for name in net.names
        }
        self.max_blocks_per_look = max_blocks_per_look
        self.heights = HeightRecord()
        self.block_ids: dict[str, dict[int, bytes]] = {name: {} for name in net.names}
        self.violations: list[str] = []
        self._reported: set[str] = set()

    def status(self, name: str) -> dict[str, Any] | None:
        """``name``'s ``/status``, or None when it does not answer."""
        try:
            return self._clients[name].get("/status")
        except ApiError:
            return None

    def height(self, name: str) -> int:
        """``name``'s committed height, -1 when it does not answer."""
        status = self.status(name)
        height = None if status is None else status.get("height")
        return height if isinstance(height, int) else -1

    def observe(self, names: Sequence[str]) -> list[str]:
        """One look at ``names`` (the nodes that should answer); the new violations."""
        roots: dict[str, tuple[int, bytes]] = {}
        for name in names:
            status = self.status(name)
            if status is None:
                continue
            height = int(status["height"])
            self.heights.observe(name, height)
            roots[name] = (height, bytes.fromhex(status["app_state_root"]))
            self._read_blocks(name, height)
        return self._new(root_violations(roots) + fork_violations(self.block_ids))

    def _read_blocks(self, name: str, height: int) -> None:
        known = self.block_ids[name]
        start = max(known, default=0) + 1
        for h in range(start, min(height, start + self.max_blocks_per_look - 1) + 1):
            try:
                block = self._clients[name].get(f"/blocks/{h}")
            except ApiError:
                return
            known[h] = bytes.fromhex(block["block_id"])

    def _new(self, lines: list[str]) -> list[str]:
        lines = lines + [v for v in self.heights.violations if v not in self._reported]
        fresh = [line for line in lines if line not in self._reported]
        self._reported.update(fresh)
        self.violations.extend(fresh)
        return fresh

    def wait_recovery(
        self,
        names: Sequence[str],
        bound_s: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float | None:
        """Seconds from now until every node of ``names`` committed a height above the
        highest any of them has now; None if that takes more than ``bound_s``."""
        started = monotonic()
        target = max((self.height(name) for name in names), default=-1)
        waiting = list(names)
        while waiting:
            waiting = [name for name in waiting if self.height(name) <= target]
            if not waiting:
                break
            if monotonic() - started > bound_s:
                return None
            sleep(POLL_S)
        return monotonic() - started
