"""Libp2pNetwork across OS processes: this test's node and child nodes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio

from node.adapters.libp2p import Libp2pNetwork
from tests.adapters.libp2p_helpers import (
    CHAIN,
    POLL_S,
    collect,
    make_network,
    start,
    wait_until,
)
from tests.adapters.network_node import CONTROL, ECHO

ROOT = Path(__file__).resolve().parents[2]
TEST_TIMEOUT_S = 30
CHILDREN = 2
DIRECT_MESSAGES = 100


@asynccontextmanager
async def child_nodes(tmp_path: Path, bootstrap: str) -> AsyncIterator[list[trio.Process]]:
    """Child node processes that dial ``bootstrap``; stopped (stdin closed) on exit."""
    async with trio.open_nursery() as nursery:
        children = [
            await nursery.start(_run_child, tmp_path / f"child-{i}", bootstrap)
            for i in range(CHILDREN)
        ]
        try:
            yield children
        finally:
            for child in children:
                if child.returncode is None and child.stdin is not None:
                    await child.stdin.aclose()


async def _run_child(home: Path, bootstrap: str, *, task_status: Any) -> None:
    command = [sys.executable, "-m", "tests.adapters.network_node", "--home", str(home)]
    command += ["--chain", CHAIN, "--bootstrap", bootstrap]
    run = partial(
        trio.run_process,
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(run)
        assert process.stdout is not None
        first_line = b""
        while not first_line.endswith(b"\n"):
            first_line += await process.stdout.receive_some(1)
        assert first_line.startswith(b"LISTEN ")
        task_status.started(process)


def in_mesh(node: Libp2pNetwork, peer: str, topic: str) -> bool:
    return peer in node.mesh_peers(topic)


async def mesh_of(node: Libp2pNetwork, child: str, topic: str) -> set[str]:
    reply = await node.request(child, CONTROL, b"mesh " + topic.encode(), timeout_ms=2000)
    return set(reply.decode().split(",")) - {""}


async def test_nodes_in_separate_processes_exchange_every_kind_of_message(tmp_path: Path) -> None:
    node = make_network(tmp_path, "parent")
    for topic in ("ping", "pong"):
        node.subscribe(topic)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            await start(nursery, [node])
            async with child_nodes(tmp_path, node.listen_addrs[0]) as children:
                await wait_until(lambda: len(node.peers()) == CHILDREN)
                peers = node.peers()
                for child in peers:
                    assert await node.request(child, ECHO, b"across", timeout_ms=2000) == (
                        b"across"
                    )

                for child in peers:
                    for i in range(DIRECT_MESSAGES):
                        node.send(child, "direct", i.to_bytes(2, "big"))
                replies = await collect(node, CHILDREN * DIRECT_MESSAGES)
                for child in peers:
                    mine = [m.data for m in replies if m.sender == child]
                    assert mine == [i.to_bytes(2, "big") for i in range(DIRECT_MESSAGES)]

                for child in peers:  # the children must have us in their meshes, too
                    while node.local_peer not in await mesh_of(node, child, "pong"):
                        await trio.sleep(POLL_S)
                    await wait_until(partial(in_mesh, node, child, "ping"))
                node.broadcast("ping", b"hello")
                pongs = [m for m in await collect(node, CHILDREN) if m.topic == "pong"]
                assert sorted(m.data for m in pongs) == sorted(
                    child.encode() + b":hello" for child in peers
                )

                children[0].send_signal(signal.SIGKILL)
                await wait_until(lambda: len(node.peers()) == CHILDREN - 1)
            assert all(child.returncode is not None for child in children)
            assert children[1].returncode == 0  # stopped cleanly when its stdin closed
            nursery.cancel_scope.cancel()
