"""Stopping and restarting nodes: real py-libp2p hosts in this process, on 127.0.0.1.

Each wait is a poll of a condition bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.adapters.libp2p_helpers import (
    connect_all,
    make_network,
    start,
    wait_until,
)

TEST_TIMEOUT_S = 30
HEARD_WITHIN_S = 5


async def test_stopping_a_network_tells_its_peers_at_once(tmp_path: Path) -> None:
    a, b = make_network(tmp_path, "a"), make_network(tmp_path, "b")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a])
            async with trio.open_nursery() as life:
                await life.start(b.serve)
                await connect_all([a, b])
                life.cancel_scope.cancel()
            with trio.fail_after(HEARD_WITHIN_S):  # else a would keep b until TCP gives up
                await wait_until(lambda: a.snapshot().peers_connected == 0)
            assert a.peers() == ()
            nursery.cancel_scope.cancel()
