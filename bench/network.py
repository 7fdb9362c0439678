"""Network benchmark: the libp2p adapter between real nodes on 127.0.0.1.

    python -m bench.network [--json PATH] [--in-process] [--smoke]

A driver node and three peer nodes (each in its own OS process, as nodes run in production;
``--in-process`` puts them all in this one) measure:

- request/response round trips of 200 B over one long-lived stream, one at a time: median
  and p99 latency, and requests per second;
- gossip: one broadcast at a time, the time until all three peers have it (each peer stamps
  its receipt with the system-wide monotonic clock and tells the driver): median and p99;
- bulk: 64 KiB direct messages over the peer's direct stream, paced on the outbound queue:
  MiB/s until the peer has counted every byte.

The figures measured on py-libp2p 0.8.1 (``docs/NETWORKING.md``) are printed
beside ours: request/response ~1.1-1.6 ms median and ~600-960 req/s on one stream, gossip to
all of 4 processes ~7-11 ms, bulk ~70 MiB/s in one process and ~117 MiB/s between
processes (raw library streams, without our framing). ``--smoke`` runs tiny sizes with the
peers in this process, for the test suite. No targets are enforced: the figures depend on the
machine.
"""

from __future__ import annotations

import argparse
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

from bench.common import Column, machine_facts, machine_line, render_table, write_case_rows
from node.adapters.config import Libp2pNetworkConfig
from node.adapters.libp2p import Libp2pNetwork
from node.testing import SeededRng

CHAIN: Final = "bench-net"
PEERS: Final = 3
BENCH_PROTOCOL: Final = "/bighealth/bench/1"
GOSSIP_TOPIC: Final = "bench/gossip"
ACK_TOPIC: Final = "bench/ack"
BULK_TOPIC: Final = "bench/bulk"
BULK_DONE_TOPIC: Final = "bench/bulk-done"
REQUEST_BYTES: Final = 200
BULK_CHUNK_BYTES: Final = 64 * 1024
BULK_BACKLOG_BYTES: Final = 4 * 1024 * 1024  # keep this much queued for the peer's stream
POLL_S: Final = 0.0005
WARMUP_TRIES: Final = 50
WARMUP_WAIT_S: Final = 1.0
SETUP_TIMEOUT_S: Final = 60.0
ROOT: Final = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does."""

    requests: int
    gossip_messages: int
    bulk_bytes: int


FULL = Sizes(requests=2000, gossip_messages=300, bulk_bytes=128 * 1024 * 1024)
SMOKE = Sizes(requests=30, gossip_messages=5, bulk_bytes=1024 * 1024)


@dataclass
class Row:
    """One figure."""

    case: str
    what: str
    value: float
    unit: str
    reference: str


# -- the peer side ----------------------------------------------------------------------------


class BenchPeer:
    """What a peer node does for the benchmark: echo requests, acknowledge gossip with its
    receipt time, count bulk bytes and say when the announced amount has arrived."""

    def __init__(self, network: Libp2pNetwork) -> None:
        self.network = network
        self.bulk_target = 0
        self.bulk_received = 0
        network.register_handler(BENCH_PROTOCOL, self.handle)
        network.subscribe(GOSSIP_TOPIC)

    async def handle(self, peer: str, data: bytes) -> bytes:
        if data.startswith(b"bulk-start "):
            self.bulk_target = int(data.split()[1])
            self.bulk_received = 0
            return b"ok"
        return data

    async def answer(self) -> None:
        network = self.network
        while True:
            seen = network.arrivals
            for message in network.receive(1024):
                if message.topic == GOSSIP_TOPIC:
                    stamp = time.monotonic_ns().to_bytes(8, "big")
                    network.send(message.sender, ACK_TOPIC, message.data[:8] + stamp)
                elif message.topic == BULK_TOPIC:
                    self.bulk_received += len(message.data)
                    if self.bulk_received == self.bulk_target:
                        network.send(message.sender, BULK_DONE_TOPIC, b"")
            await network.wait_arrival(seen)


def make_network(home: Path, bootstrap: Sequence[str] = ()) -> Libp2pNetwork:
    config = Libp2pNetworkConfig(chain_id=CHAIN, home=home, bootstrap=tuple(bootstrap))
    return Libp2pNetwork(config, rng=SeededRng(str(home)))


async def serve_peer_until_stdin_closes(home: Path, bootstrap: str) -> None:
    """The ``--peer`` mode: a peer node in this process, stopped by closing stdin."""
    network = make_network(home, [bootstrap])
    peer = BenchPeer(network)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.serve)
        nursery.start_soon(peer.answer)
        print("READY", flush=True)
        stdin = trio.wrap_file(sys.stdin)
        while await stdin.readline():
            pass
        nursery.cancel_scope.cancel()


# -- setting up -------------------------------------------------------------------------------


@asynccontextmanager
async def bench_nodes(home: Path, in_process: bool) -> AsyncIterator[Libp2pNetwork]:
    """A running driver node with ``PEERS`` peers ready and meshed on the gossip topic."""
    driver = make_network(home / "driver")
    driver.subscribe(GOSSIP_TOPIC)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.serve)
        with trio.fail_after(SETUP_TIMEOUT_S):
            if in_process:
                for i in range(PEERS):
                    await _start_peer_here(nursery, home / f"peer-{i}", driver)
            else:
                for i in range(PEERS):
                    await nursery.start(_run_peer_process, home / f"peer-{i}", driver)
            while len(driver.peers()) < PEERS:
                await trio.sleep(POLL_S)
        yield driver
        nursery.cancel_scope.cancel()


async def _start_peer_here(nursery: trio.Nursery, home: Path, driver: Libp2pNetwork) -> None:
    network = make_network(home)
    peer = BenchPeer(network)
    await nursery.start(network.serve)
    nursery.start_soon(peer.answer)
    await network.connect(driver.listen_addrs[0])


async def _run_peer_process(home: Path, driver: Libp2pNetwork, *, task_status: Any) -> None:
    command = [sys.executable, "-m", "bench.network", "--peer", str(home)]
    command += ["--bootstrap", driver.listen_addrs[0]]
    run = partial(
        trio.run_process,
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(run)
        assert process.stdout is not None and process.stdin is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            if not chunk:
                raise RuntimeError("a peer process ended before it was ready")
            line += chunk
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await process.stdin.aclose()


# -- measuring --------------------------------------------------------------------------------


async def measure_requests(driver: Libp2pNetwork, count: int) -> list[Row]:
    peer = driver.peers()[0]
    payload = bytes(REQUEST_BYTES)
    for _ in range(max(10, count // 20)):  # warm-up: open and pool the stream
        await driver.request(peer, BENCH_PROTOCOL, payload, timeout_ms=5000)
    latencies_ms = []
    started = time.perf_counter()
    for _ in range(count):
        sent = time.perf_counter()
        await driver.request(peer, BENCH_PROTOCOL, payload, timeout_ms=5000)
        latencies_ms.append((time.perf_counter() - sent) * 1000)
    per_second = count / (time.perf_counter() - started)
    return [
        Row(
            "rr_median",
            "request/response 200 B, one stream: median",
            _median(latencies_ms),
            "ms",
            "notes: 1.1-1.6 ms",
        ),
        Row("rr_p99", "request/response 200 B, one stream: p99", _p99(latencies_ms), "ms", ""),
        Row(
            "rr_rate",
            "request/response 200 B, one stream, sequential",
            per_second,
            "req/s",
            "notes: 600-960 req/s",
        ),
    ]


async def measure_gossip(driver: Libp2pNetwork, count: int) -> list[Row]:
    peers = set(driver.peers())
    for attempt in range(WARMUP_TRIES):  # until the mesh carries a message to every peer
        if await _gossip_round(driver, attempt, peers, WARMUP_WAIT_S) is not None:
            break
    else:
        raise RuntimeError("gossip never reached every peer")
    latencies_ms = []
    for i in range(count):
        latency = await _gossip_round(driver, WARMUP_TRIES + i, peers, 10.0)
        if latency is None:
            raise RuntimeError(f"gossip message {i} did not reach every peer within 10 s")
        latencies_ms.append(latency)
    return [
        Row(
            "gossip_median",
            f"gossip 1 KiB to all {len(peers)} peers: median",
            _median(latencies_ms),
            "ms",
            "notes: 7-11 ms (4 processes)",
        ),
        Row(
            "gossip_p99",
            f"gossip 1 KiB to all {len(peers)} peers: p99",
            _p99(latencies_ms),
            "ms",
            "",
        ),
    ]


async def _gossip_round(
    driver: Libp2pNetwork, number: int, peers: set[str], wait_s: float
) -> float | None:
    """Broadcast one message; ms until the last peer received it (None if one never did)."""
    tag = number.to_bytes(8, "big")
    driver.receive(10_000)  # late acks of an earlier round
    sent_ns = time.monotonic_ns()
    driver.broadcast(GOSSIP_TOPIC, tag + bytes(1024 - len(tag)))
    received: dict[str, int] = {}
    with trio.move_on_after(wait_s):
        while received.keys() != peers:
            seen = driver.arrivals
            for message in driver.receive(100):
                if message.topic == ACK_TOPIC and message.data[:8] == tag:
                    received[message.sender] = int.from_bytes(message.data[8:16], "big")
            if received.keys() != peers:
                await driver.wait_arrival(seen)
    if received.keys() != peers:
        return None
    return (max(received.values()) - sent_ns) / 1e6


async def measure_bulk(driver: Libp2pNetwork, total_bytes: int) -> list[Row]:
    peer = driver.peers()[0]
    chunks = total_bytes // BULK_CHUNK_BYTES
    announced = b"bulk-start %d" % (chunks * BULK_CHUNK_BYTES)
    await driver.request(peer, BENCH_PROTOCOL, announced, timeout_ms=5000)
    chunk = bytes(BULK_CHUNK_BYTES)
    started = time.perf_counter()
    for _ in range(chunks):
        while driver.outbound_queued_bytes(peer) > BULK_BACKLOG_BYTES:
            await trio.sleep(POLL_S)
        driver.send(peer, BULK_TOPIC, chunk)
    done = False
    while not done:
        seen = driver.arrivals
        done = any(m.topic == BULK_DONE_TOPIC for m in driver.receive(100))
        if not done:
            await driver.wait_arrival(seen)
    elapsed = time.perf_counter() - started
    dropped = driver.snapshot().dropped["outbound_full"]
    mib = chunks * BULK_CHUNK_BYTES / (1024 * 1024)
    return [
        Row(
            "bulk",
            f"bulk {mib:.0f} MiB in 64 KiB direct messages ({dropped} dropped)",
            mib / elapsed,
            "MiB/s",
            "notes: ~70 (1 process), ~117 (2 processes) raw",
        ),
    ]


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


# -- running and reporting ----------------------------------------------------------------------


async def run_bench(sizes: Sizes, in_process: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-network-") as home:
        async with bench_nodes(Path(home), in_process) as driver:
            rows = await measure_requests(driver, sizes.requests)
            rows += await measure_gossip(driver, sizes.gossip_messages)
            rows += await measure_bulk(driver, sizes.bulk_bytes)
    return rows


COLUMNS = (
    Column("case", 14),
    Column("what", 58),
    Column("value", 10, ">", ".2f"),
    Column("unit", 6),
    Column("reference", 0),
)


def render(rows: Sequence[Row], mode: str, info: dict[str, Any] | None = None) -> str:
    info = machine_facts() if info is None else info
    table = render_table(COLUMNS, ((r.case, r.what, r.value, r.unit, r.reference) for r in rows))
    return f"network benchmark ({mode}); {machine_line(info)}\n{table}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.network", description=__doc__)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--in-process", action="store_true", help="all nodes in this process")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, in process (tests)")
    parser.add_argument("--peer", type=Path, help=argparse.SUPPRESS)  # a peer process's home
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer is not None:
        trio.run(serve_peer_until_stdin_closes, args.peer, args.bootstrap)
        return 0
    sizes = SMOKE if args.smoke else FULL
    in_process = args.in_process or args.smoke
    mode = ("smoke, " if args.smoke else "") + ("one process" if in_process else "processes")
    info = machine_facts()
    rows = trio.run(run_bench, sizes, in_process)
    print(render(rows, mode, info))
    if args.json:
        write_case_rows(
            args.json,
            "network",
            info,
            rows,
            smoke=args.smoke,
            figures="figures",
            in_process=in_process,
            sizes=asdict(sizes),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
