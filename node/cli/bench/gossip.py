"""``bighealth bench gossip``: how long a block-sized payload takes to reach every node.

For each network size N, this process runs a driver node and starts N-1 peer processes
(``python -m node.cli.bench.gossip --peer HOME``), each running the node's own
``Libp2pNetwork`` (Noise, Yamux, gossipsub with the node's parameters) on 127.0.0.1. Once
every peer is up, each is told to dial every other one (a full mesh of connections, as the
validators of a testnet keep each other as bootstrap peers; gossipsub then keeps its own
mesh of ``degree`` peers per topic and relays). For each payload size, the driver broadcasts
``rounds`` payloads one at a time; each peer stamps the arrival of a whole payload with
``time.monotonic_ns()`` (CLOCK_MONOTONIC: one clock for the processes of a host) and sends
the stamp to the driver; a round's figure is the time from the broadcast to the last peer's
arrival. The report gives, per N and size, the median and the greatest time to all N.

A payload larger than the adapter's largest gossip message (``max_message_bytes``, 640 KiB
today) cannot go as one message: it is sent as chunks of ``CHUNK_BYTES`` and has arrived
when every chunk has; the report says so (``chunks``, ``note``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import trio

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.libp2p import Libp2pNetwork
from node.cli.bench.facts import load_average, machine_facts
from node.errors import BigHealthError
from node.runtime.system import SystemRng

CHAIN: Final = "bench-gossip"
TOPIC: Final = "bench/block"
ACK_TOPIC: Final = "bench/arrived"
CHUNK_BYTES: Final = 512 * 1024
HEADER: Final = 12
"""Each message starts with the round (8 bytes), the chunk's index and the chunk count."""
MAX_NODES: Final = 64
MAX_PAYLOAD_BYTES: Final = 64 * 1024 * 1024
MAX_ROUNDS: Final = 1_000
SETUP_TIMEOUT_S: Final = 120.0
ROUND_TIMEOUT_S: Final = 20.0
SETTLE_S: Final = 6.0
SMOKE_SETTLE_S: Final = 0.5
"""After the warm-up: longer than the gossip prune back-off (5 s), so the mesh settles."""
WARMUP_TRIES: Final = 60
WARMUP_WAIT_S: Final = 1.0
PAUSE_S: Final = 0.2
"""Between rounds, so one round's relays do not slow the next."""
UNITS: Final = {"B": 1, "KIB": 1024, "MIB": 1024 * 1024}


class GossipBenchError(BigHealthError):
    """The gossip benchmark could not run (bad options, a peer that failed or never got a
    payload)."""


def parse_size(text: str) -> int:
    """Bytes of ``256KiB``, ``2MiB``, ``1000B`` or ``1000`` (``GossipBenchError`` if bad)."""
    upper = text.strip().upper()
    for unit in ("KIB", "MIB", "B"):
        if upper.endswith(unit):
            number, factor = upper[: -len(unit)], UNITS[unit]
            break
    else:
        number, factor = upper, 1
    if not number.isdigit() or not HEADER < int(number) * factor <= MAX_PAYLOAD_BYTES:
        raise GossipBenchError(f"a size is {HEADER + 1}..{MAX_PAYLOAD_BYTES} B, not {text!r}")
    return int(number) * factor


def parse_nodes(text: str) -> list[int]:
    """Network sizes of ``4,16`` (each 2..MAX_NODES)."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise GossipBenchError(f"--nodes is a list of integers, not {text!r}") from None
    if not sizes or not all(2 <= n <= MAX_NODES for n in sizes):
        raise GossipBenchError(f"each network size is 2..{MAX_NODES}")
    return sizes


@dataclass(frozen=True, slots=True)
class GossipRow:
    """The figures of one network size and payload size."""

    nodes: int
    payload_bytes: int
    chunks: int
    rounds: int
    reached_all: int
    """Rounds in which every node had the whole payload within ``ROUND_TIMEOUT_S``."""
    p50_ms: float | None
    """Over the rounds that reached every node (``None`` if none did)."""
    max_ms: float | None
    min_ms: float | None
    note: str


# -- the peer side ----------------------------------------------------------------------------


def make_network(home: Path, bootstrap: Sequence[str] = ()) -> Libp2pNetwork:
    config = Libp2pNetworkConfig(chain_id=CHAIN, home=home, bootstrap=tuple(bootstrap))
    return Libp2pNetwork(config, rng=SystemRng())


async def _answer(network: Libp2pNetwork, driver: str) -> None:
    """Stamp each payload's last chunk and tell the driver the round and the stamp."""
    pending: dict[bytes, set[int]] = {}
    while True:
        seen = network.arrivals
        for message in network.receive(1024):
            if message.topic != TOPIC or len(message.data) < HEADER:
                continue
            stamp = time.monotonic_ns()
            tag = message.data[:8]
            index = int.from_bytes(message.data[8:10], "big")
            count = int.from_bytes(message.data[10:12], "big")
            chunks = pending.setdefault(tag, set())
            chunks.add(index)
            if len(chunks) == count:
                del pending[tag]
                network.send(driver, ACK_TOPIC, tag + stamp.to_bytes(8, "big"))
            while len(pending) > MAX_ROUNDS:  # rounds that never completed
                del pending[next(iter(pending))]
        await network.wait_arrival(seen)


async def serve_peer(home: Path, bootstrap: str, driver: str) -> None:
    """The ``--peer`` mode: print the listen address, dial each address read on stdin, stop
    when stdin closes."""
    network = make_network(home, [bootstrap])
    network.subscribe(TOPIC)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve)
        nursery.start_soon(_answer, network, driver)
        print(network.listen_addrs[0], flush=True)
        stdin = trio.wrap_file(sys.stdin)
        while line := (await stdin.readline()).strip():
            with trio.move_on_after(10):
                await network.connect(line)
        nursery.cancel_scope.cancel()


# -- the driver -------------------------------------------------------------------------------


@asynccontextmanager
async def gossip_network(home: Path, nodes: int) -> AsyncIterator[Libp2pNetwork]:
    """A driver node here and ``nodes - 1`` peer processes, all connected to each other."""
    driver = make_network(home / "driver")
    driver.subscribe(TOPIC)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.serve)
        with trio.fail_after(SETUP_TIMEOUT_S):
            async with trio.open_nursery() as starting:
                peers: list[tuple[str, trio.Process]] = []
                for i in range(nodes - 1):
                    starting.start_soon(_start_peer, nursery, home / f"peer-{i}", driver, peers)
            addresses = [address for address, _ in peers]
            for index, (_, process) in enumerate(peers):
                assert process.stdin is not None
                dial = "".join(f"{a}\n" for a in addresses[:index])
                if dial:
                    await process.stdin.send_all(dial.encode())
            while len(driver.peers()) < nodes - 1:
                await trio.sleep(0.05)
        try:
            yield driver
        finally:
            for _, process in peers:
                assert process.stdin is not None
                with trio.CancelScope(shield=True):
                    await process.stdin.aclose()
            nursery.cancel_scope.cancel()


async def _start_peer(
    nursery: trio.Nursery, home: Path, driver: Libp2pNetwork, peers: list[tuple[str, Any]]
) -> None:
    command = [sys.executable, "-m", "node.cli.bench.gossip", "--peer", str(home)]
    command += ["--bootstrap", driver.listen_addrs[0], "--driver", driver.local_peer]
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "peer.log").open("ab")  # libp2p's warnings: kept, not shown
    nursery.start_soon(_close_at_end, log)
    run = partial(
        trio.run_process,
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        check=False,
    )
    process: trio.Process = await nursery.start(run)
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        chunk = await process.stdout.receive_some(1)
        if not chunk:
            raise GossipBenchError(f"the peer process of {home.name} ended before it was ready")
        line += chunk
    peers.append((line.decode().strip(), process))


async def _close_at_end(log: Any) -> None:
    try:
        await trio.sleep_forever()
    finally:
        log.close()


def _messages(number: int, payload_bytes: int, chunk_bytes: int) -> list[bytes]:
    """The messages of round ``number``: ``payload_bytes`` in all (headers included), in
    chunks of at most ``chunk_bytes``."""
    count = -(-payload_bytes // chunk_bytes)
    body_bytes = payload_bytes - HEADER * count
    sizes = [body_bytes // count + (1 if i < body_bytes % count else 0) for i in range(count)]
    tag = number.to_bytes(8, "big")
    return [
        tag + index.to_bytes(2, "big") + count.to_bytes(2, "big") + os.urandom(size)
        for index, size in enumerate(sizes)
    ]


async def gossip_round(
    driver: Libp2pNetwork, messages: list[bytes], peers: set[str], wait_s: float
) -> tuple[float | None, int]:
    """Broadcast one payload: (ms until the last peer had all of it, or ``None`` if one did
    not within ``wait_s``; how many peers had it)."""
    tag = messages[0][:8]
    driver.receive(100_000)  # late acknowledgements of an earlier round
    sent_ns = time.monotonic_ns()
    for message in messages:
        driver.broadcast(TOPIC, message)
    arrived: dict[str, int] = {}
    with trio.move_on_after(wait_s):
        while arrived.keys() != peers:
            seen = driver.arrivals
            for ack in driver.receive(1_000):
                if ack.topic == ACK_TOPIC and ack.data[:8] == tag:
                    arrived[ack.sender] = int.from_bytes(ack.data[8:16], "big")
            if arrived.keys() != peers:
                await driver.wait_arrival(seen)
    if arrived.keys() != peers:
        return None, len(arrived)
    return (max(arrived.values()) - sent_ns) / 1e6, len(arrived)


async def _warm_up(driver: Libp2pNetwork, peers: set[str], chunk: int, settle_s: float) -> int:
    """Small broadcasts until one reaches every peer, then a pause for the mesh to settle;
    the last round number used."""
    for number in range(1, WARMUP_TRIES + 1):
        took, _ = await gossip_round(driver, _messages(number, 1024, chunk), peers, WARMUP_WAIT_S)
        if took is not None:
            await trio.sleep(settle_s)
            return number
    raise GossipBenchError(f"gossip never reached all {len(peers)} peers")


async def _measure_size(
    driver: Libp2pNetwork, peers: set[str], size: int, rounds: int, first: int
) -> GossipRow:
    limit = driver.max_message_bytes
    chunk = min(CHUNK_BYTES, limit)
    times_ms: list[float] = []
    chunks, short = 0, []
    for number in range(first, first + rounds):
        messages = _messages(number, size, chunk)
        chunks = len(messages)
        took, reached = await gossip_round(driver, messages, peers, ROUND_TIMEOUT_S)
        if took is None:
            short.append(reached + 1)
        else:
            times_ms.append(took)
        await trio.sleep(PAUSE_S)
    notes = []
    if chunks > 1:
        notes.append(
            f"larger than one gossip message ({limit} B): sent as {chunks} chunks of at most "
            f"{chunk} B"
        )
    if short:
        notes.append(
            f"{len(short)} of {rounds} rounds did not reach all nodes within "
            f"{ROUND_TIMEOUT_S:g} s (nodes reached: {sorted(short)})"
        )
    return GossipRow(
        nodes=len(peers) + 1,
        payload_bytes=size,
        chunks=chunks,
        rounds=rounds,
        reached_all=len(times_ms),
        p50_ms=round(statistics.median(times_ms), 1) if times_ms else None,
        max_ms=round(max(times_ms), 1) if times_ms else None,
        min_ms=round(min(times_ms), 1) if times_ms else None,
        note="; ".join(notes),
    )


async def measure(
    nodes: int, sizes: Sequence[int], rounds: int, settle_s: float = SETTLE_S
) -> list[GossipRow]:
    """The rows of one network size (``settle_s``: the pause after the warm-up)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gossip-") as home:
        async with gossip_network(Path(home), nodes) as driver:
            peers = set(driver.peers())
            chunk = min(CHUNK_BYTES, driver.max_message_bytes)
            number = await _warm_up(driver, peers, chunk, settle_s)
            for size in sizes:
                rows.append(await _measure_size(driver, peers, size, rounds, number + 1))
                number += rounds
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render(rows: Sequence[GossipRow], info: dict[str, Any]) -> str:
    lines = [
        f"bench gossip: time for a payload to reach all N nodes; machine: {info['cpu']} "
        f"({info['cores']} cores), load {info['load_avg_before']} -> {info['load_avg_after']}",
        f"{'nodes':>5} {'payload':>10} {'chunks':>6} {'reached':>8} {'p50 ms':>8} {'max ms':>8}"
        f" {'min ms':>8}  note",
    ]
    for r in rows:
        reached = f"{r.reached_all}/{r.rounds}"
        lines.append(
            f"{r.nodes:>5} {r.payload_bytes:>10} {r.chunks:>6} {reached:>8} {_ms(r.p50_ms):>8} "
            f"{_ms(r.max_ms):>8} {_ms(r.min_ms):>8}  {r.note}"
        )
    return "\n".join(lines)


def main_command(args: argparse.Namespace) -> int:
    """``bighealth bench gossip`` (see the module docstring)."""
    if args.smoke:
        nodes, sizes, rounds, settle_s = [3], [64 * 1024, 700 * 1024], 2, SMOKE_SETTLE_S
    else:
        nodes, sizes = parse_nodes(args.nodes), [parse_size(s) for s in args.sizes.split(",")]
        rounds, settle_s = args.rounds, SETTLE_S
    if not 1 <= rounds <= MAX_ROUNDS:
        raise GossipBenchError(f"--rounds must be 1..{MAX_ROUNDS}")
    logging.getLogger("libp2p").setLevel(logging.ERROR)  # gossipsub's mesh churn warnings
    before = load_average()
    rows = []
    for count in nodes:
        print(f"gossip: {count} nodes ...", file=sys.stderr, flush=True)
        rows += trio.run(measure, count, sizes, rounds, settle_s)
    info = machine_facts(load_avg_before=before, load_avg_after=load_average())
    print(render(rows, info))
    if args.json is not None:
        document = {
            "bench": "gossip",
            "machine": info,
            "smoke": args.smoke,
            "results": [asdict(r) for r in rows],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def peer_main(argv: Sequence[str] | None = None) -> int:
    """``python -m node.cli.bench.gossip --peer HOME --bootstrap ADDR --driver PEER_ID``."""
    parser = argparse.ArgumentParser(prog="python -m node.cli.bench.gossip")
    parser.add_argument("--peer", type=Path, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--driver", required=True)
    args = parser.parse_args(argv)
    trio.run(serve_peer, args.peer, args.bootstrap, args.driver)
    return 0


if __name__ == "__main__":
    sys.exit(peer_main())
