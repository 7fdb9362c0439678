"""Following a running network through its API: the event feed of one node, and waiting for
nodes to reach a height.

``EventWatch`` reads ``GET /events`` of one node from a cursor (long-polling), keeps the
events it read and not yet asked for (bounded), and answers ``wait_for(kind, count, ...)``
with a deadline: what a patient's app does to show reminders as they come due.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from health.client import NodeClient

POLL_WAIT_MS: Final = 2_000
"""How long one ``GET /events`` may wait for a block (below the client's timeout)."""
PAGE_EVENTS: Final = 500
MAX_BACKLOG: Final = 10_000
"""Events kept unasked for; the oldest are dropped beyond it."""
HEIGHT_POLL_S: Final = 0.1

EventDocument = dict[str, Any]


class WaitTimeout(Exception):
    """What was waited for did not happen before the deadline."""


def attributes(event: EventDocument) -> dict[str, str]:
    """An event document's attributes (``{}`` if it has none)."""
    found = event.get("attributes")
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


class EventWatch:
    """The committed events of one node, read from a cursor (see the module docstring)."""

    def __init__(
        self,
        node: NodeClient,
        after: int | str = 0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.after: int | str = after
        self.backlog: list[EventDocument] = []
        self._monotonic = monotonic

    def skip_to_tip(self) -> None:
        """Forget what was committed so far: from now on only new heights are read."""
        self.after = int(self.node.status()["height"])
        self.backlog.clear()

    def poll(self, wait_ms: int = POLL_WAIT_MS) -> None:
        """Read one page of events after the cursor into the backlog."""
        page = self.node.events(self.after, limit=PAGE_EVENTS, wait_ms=wait_ms)
        self.backlog.extend(event for event in page["events"] if isinstance(event, dict))
        del self.backlog[:-MAX_BACKLOG]
        self.after = page.get("next_after", self.after)

    def wait_for(
        self,
        kind: str,
        count: int,
        timeout_s: float,
        where: Callable[[dict[str, str]], bool] = lambda _: True,
    ) -> list[EventDocument]:
        """The first ``count`` events ``kind`` whose attributes satisfy ``where``, waited
        for until ``timeout_s`` (``WaitTimeout``); they leave the backlog."""
        deadline = self._monotonic() + timeout_s
        while True:
            found = [e for e in self.backlog if e.get("kind") == kind and where(attributes(e))]
            if len(found) >= count:
                taken = found[:count]
                self.backlog = [e for e in self.backlog if not any(e is t for t in taken)]
                return taken
            if self._monotonic() >= deadline:
                raise WaitTimeout(f"{len(found)} of {count} {kind} events after {timeout_s:g} s")
            self.poll()


def wait_for_height(
    nodes: Sequence[NodeClient],
    height: int,
    timeout_s: float,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until every node of ``nodes`` committed ``height`` (``WaitTimeout``)."""
    deadline = monotonic() + timeout_s
    waiting = list(nodes)
    while waiting:
        waiting = [node for node in waiting if int(node.status()["height"]) < height]
        if not waiting:
            return
        if monotonic() >= deadline:
            raise WaitTimeout(f"{waiting} did not reach height {height} in {timeout_s:g} s")
        sleep(HEIGHT_POLL_S)


def settle(nodes: Sequence[NodeClient], timeout_s: float) -> int:
    """Wait until every node of ``nodes`` committed the highest height any of them has
    now (what one committed, all have applied); that height."""
    height = max(int(node.status()["height"]) for node in nodes)
    wait_for_height(nodes, height, timeout_s)
    return height
