"""``bighealth bench network``: a live local network under load, measured from the load side.

One run: measure the machine's ceilings (``ceilings``), make a generic testnet (``bighealth
testnet``: ``validators`` validators, ``accounts`` client accounts in the genesis), start its
node processes (``LocalNetwork``), then run one load phase per offered rate (one rate, or
the sweep). A phase starts ``load_processes`` load processes (``load``), each signing its
accounts' transactions before the clock starts, then sending them for ``duration_s`` while
a watcher thread learns each committed block (``watch``) and a progress line shows the
committed rate and the height on stderr. After the load stops the phase waits up to
``drain_s`` for the transactions still pending to commit (their finality counts; the rates
count the load window only). ``report`` turns the phases into the JSON, table and plot.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import queue
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from node.cli.bench.facts import ProcessSample
from node.cli.bench.load import (
    MAX_BATCH_TXS,
    LoadError,
    Window,
    WorkerPlan,
    WorkerReport,
    read_records,
    run_worker,
)
from node.cli.bench.watch import BlockWatcher
from node.cli.bench.wire import TcpCounters, tcp_bytes_sent
from node.cli.localnet import LocalNetwork
from node.cli.options import BENCH_TX_GOSSIP_MS, BENCH_WINDOW_TXS, TESTNET_COMMIT_WAIT_MS
from node.errors import BigHealthError
from node.home.keys import ACCOUNT_KEY, read_key_file

if TYPE_CHECKING:
    from node.chain.genesis import ConsensusParams

CHAIN_ID: Final = "bench-network"
MAX_VALIDATORS: Final = 16
MAX_DURATION_S: Final = 3_600.0
MAX_WINDOW_TXS: Final = 20_000
"""The closed loop's bound at most: one node's mempool."""
MAX_RATE_TX_PER_S: Final = 100_000.0
MAX_ACCOUNTS: Final = 10_000
MAX_LOAD_PROCESSES: Final = 16
MAX_PRESIGNED_TXS: Final = 600_000
"""Transactions one phase signs at most (about 200 MB of memory in the load processes)."""
CLOSED_LOOP_GUESS_TX_PER_S: Final = 3_000.0
"""A closed-loop phase signs enough for this rate over its duration (it stops early, and
says so, if the network commits faster)."""
SWEEP_RATES: Final = (250.0, 500.0, 1_000.0, 2_000.0, 4_000.0, None)
SMOKE_SWEEP_RATES: Final = (50.0, None)
START_TIMEOUT_S: Final = 90.0
SIGN_TIMEOUT_S: Final = 600.0
REPORT_TIMEOUT_S: Final = 120.0
START_DELAY_S: Final = 0.5
PROGRESS_INTERVAL_S: Final = 0.5
DRAIN_POLL_S: Final = 0.1


class BenchError(BigHealthError):
    """The benchmark could not run as asked (bad options, a load process that failed)."""


@dataclass(frozen=True, slots=True)
class NetworkBenchOptions:
    """One ``bighealth bench network`` run (checked: ``BenchError`` when out of range)."""

    validators: int = 4
    duration_s: float = 60.0
    tx_size_bytes: int = 300
    rate_tx_per_s: float | None = None
    """``None``: closed loop (``--rate max``)."""
    sweep: bool = False
    accounts: int = 2_048
    load_processes: int = 2
    connections_per_node: int = 2
    batch_max: int = 256
    window_txs: int = BENCH_WINDOW_TXS
    """The closed loop's bound: transactions sent and not yet committed, at most."""
    commit_wait_ms: int = TESTNET_COMMIT_WAIT_MS
    """The nodes' pause after a commit (``NodeConfig.commit_wait_ms``), as ``bighealth
    testnet`` writes it: the network an operator starts is the one measured."""
    tx_gossip_ms: int = BENCH_TX_GOSSIP_MS
    """How often the nodes flush their clients' transactions to peers
    (``NodeConfig.tx_gossip_interval_ms``)."""
    drain_s: float = 10.0
    ceiling_s: float = 2.0
    smoke: bool = False
    workload: str = "kv"

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.validators <= MAX_VALIDATORS, f"--validators must be 1..{MAX_VALIDATORS}"),
            (
                0 < self.duration_s <= MAX_DURATION_S,
                f"--duration must be in (0, {MAX_DURATION_S:g}] s",
            ),
            (
                self.rate_tx_per_s is None or 0 < self.rate_tx_per_s <= MAX_RATE_TX_PER_S,
                f"--rate must be max or in (0, {MAX_RATE_TX_PER_S:g}]",
            ),
            (1 <= self.accounts <= MAX_ACCOUNTS, f"--accounts must be 1..{MAX_ACCOUNTS}"),
            (1 <= self.window_txs <= MAX_WINDOW_TXS, f"--window must be 1..{MAX_WINDOW_TXS}"),
            (0 <= self.commit_wait_ms <= 60_000, "--commit-wait-ms must be 0..60000"),
            (1 <= self.tx_gossip_ms <= 60_000, "--tx-gossip-ms must be 1..60000"),
            (
                1 <= self.load_processes <= MAX_LOAD_PROCESSES,
                f"--load-processes must be 1..{MAX_LOAD_PROCESSES}",
            ),
            (1 <= self.connections_per_node <= 8, "--connections must be 1..8"),
            (1 <= self.batch_max <= MAX_BATCH_TXS, f"--batch must be 1..{MAX_BATCH_TXS}"),
            (0 <= self.drain_s <= 600, "--drain must be in 0..600 s"),
            (0 < self.ceiling_s <= 60, "--ceiling-seconds must be in (0, 60]"),
            (self.workload in ("kv", "health"), "--workload must be kv or health"),
        ]
        for ok, rule in checks:
            if not ok:
                raise BenchError(rule)

    @property
    def rates(self) -> tuple[float | None, ...]:
        """The offered rate of each phase (``None``: closed loop)."""
        if self.sweep:
            return SMOKE_SWEEP_RATES if self.smoke else SWEEP_RATES
        return (self.rate_tx_per_s,)


SMOKE: Final = {
    "validators": 2,
    "duration_s": 3.0,
    "rate_tx_per_s": 40.0,
    "accounts": 64,
    "load_processes": 1,
    "connections_per_node": 1,
    "drain_s": 6.0,
    "ceiling_s": 0.2,
}
"""What ``--smoke`` sets (a few seconds of load at a low rate, for the test suite)."""


@dataclass
class PhaseData:
    """What one load phase observed (raw; ``report.phase_figures`` makes the figures)."""

    rate_tx_per_s: float | None
    duration_s: float
    start_s: float
    end_s: float
    reports: list[WorkerReport]
    submitted: list[tuple[bytes, float]]
    blocks: list[Any]
    tx_seen_s: dict[bytes, float]
    node_before: dict[str, ProcessSample | None]
    node_after: dict[str, ProcessSample | None]
    load_before: dict[str, ProcessSample | None]
    load_after: dict[str, ProcessSample | None]
    tcp_before: TcpCounters | None
    tcp_after: TcpCounters | None
    p2p_bytes_out: int | None
    sign_s: float
    presigned: int
    watcher_errors: int


@dataclass
class Accounts:
    """The client accounts' seeds and each one's next nonce."""

    seeds: list[bytes]
    next_nonces: list[int] = field(default_factory=list)
    patients: list[bytes] = field(default_factory=list)
    """The health workload's: each device's patient (empty for kv)."""
    custodians: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.next_nonces:
            self.next_nonces = [0] * len(self.seeds)


def read_accounts(net: LocalNetwork) -> Accounts:
    """The seeds of the testnet's client accounts (its manifest's key files)."""
    seeds = [
        read_key_file(net.directory / client.key_file, ACCOUNT_KEY).seed
        for client in net.manifest.clients
    ]
    return Accounts(seeds)


def p2p_ports(net: LocalNetwork) -> set[int]:
    """The libp2p TCP port of every node (from its multiaddr ``/ip4/<host>/tcp/<port>/...``)."""
    ports = set()
    for node in net.manifest.nodes:
        parts = node.p2p.split("/")
        if "tcp" in parts:
            ports.add(int(parts[parts.index("tcp") + 1]))
    return ports


def node_samples(net: LocalNetwork) -> dict[str, ProcessSample | None]:
    """A /proc sample of every node process."""
    return {name: ProcessSample.read(pid) for name, pid in net.pids().items()}


def _load_samples(pids: Sequence[int]) -> dict[str, ProcessSample | None]:
    return {f"load-{i}": ProcessSample.read(pid) for i, pid in enumerate(pids)}


def p2p_bytes_out(net: LocalNetwork) -> int | None:
    """The sum over the nodes of the adapter's message bytes sent (``/status`` network)."""
    total = 0
    for name in net.names:
        status = net.status(name)
        network = status.get("network") if status else None
        if not isinstance(network, dict) or not isinstance(network.get("bytes_out"), int):
            return None
        total += network["bytes_out"]
    return total


def _plans(
    options: NetworkBenchOptions,
    net: LocalNetwork,
    accounts: Accounts,
    rate: float | None,
    directory: Path,
) -> list[WorkerPlan]:
    total_txs = (CLOSED_LOOP_GUESS_TX_PER_S if rate is None else rate * 1.1) * options.duration_s
    total_txs = min(total_txs, MAX_PRESIGNED_TXS)
    per_account = max(2, math.ceil(total_txs / len(accounts.seeds)))
    addresses = tuple(net.node(name).api for name in net.names)
    count = options.load_processes
    return [
        WorkerPlan(
            index=i,
            chain_id=net.manifest.chain_id,
            api_addresses=addresses,
            seeds=tuple(accounts.seeds[i::count]),
            first_nonces=tuple(accounts.next_nonces[i::count]),
            txs_per_account=per_account,
            tx_size_bytes=options.tx_size_bytes,
            connections_per_node=options.connections_per_node,
            rate_tx_per_s=None if rate is None else rate / count,
            duration_s=options.duration_s,
            batch_max=options.batch_max,
            result_path=directory / f"load-{i}.bin",
            workload=options.workload,
            patients=tuple(accounts.patients[i::count]),
            custodians=tuple(accounts.custodians[i::count]),
        )
        for i in range(count)
    ]


def run_phase(
    options: NetworkBenchOptions,
    net: LocalNetwork,
    accounts: Accounts,
    rate: float | None,
    progress: TextIO | None,
) -> PhaseData:
    """One load phase at ``rate`` (see the module docstring); advances ``accounts``' nonces."""
    context = multiprocessing.get_context("spawn")
    ready: Any = context.Queue()
    done: Any = context.Queue()
    window = Window(
        context.Value("q", 0),
        context.Value("q", 0),
        options.window_txs,
    )
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        plans = _plans(options, net, accounts, rate, Path(scratch))
        gos = [context.Queue() for _ in plans]
        processes = [
            context.Process(target=run_worker, args=(plan, ready, go, done, window), daemon=True)
            for plan, go in zip(plans, gos, strict=True)
        ]
        signing = time.monotonic()
        for process in processes:
            process.start()
        try:
            _await_ready(ready, processes, net)
            sign_s = time.monotonic() - signing
            pids = [p.pid for p in processes if p.pid is not None]
            data = _load_window(
                options,
                net,
                rate,
                gos=gos,
                done=done,
                progress=progress,
                load_pids=pids,
                committed_counter=window.committed,
            )
        finally:
            for process in processes:
                process.join(timeout=5)
                if process.is_alive():
                    process.kill()
        data.sign_s = sign_s
        data.presigned = sum(len(p.seeds) * p.txs_per_account for p in plans)
        data.submitted = [r for plan in plans for r in read_records(plan.result_path)]
    for report in data.reports:
        for offset, nonce in enumerate(report.next_nonces):
            accounts.next_nonces[report.index + offset * len(plans)] = nonce
    return data


def _await_ready(ready: Any, processes: Sequence[Any], net: LocalNetwork) -> None:
    waiting = len(processes)
    deadline = time.monotonic() + SIGN_TIMEOUT_S
    while waiting:
        net.check_alive()
        if any(p.exitcode not in (None, 0) for p in processes):
            raise BenchError("a load process died while signing")
        try:
            ready.get(timeout=0.5)
            waiting -= 1
        except queue.Empty:
            if time.monotonic() > deadline:
                raise BenchError(f"load processes not ready within {SIGN_TIMEOUT_S:g} s") from None


def _load_window(
    options: NetworkBenchOptions,
    net: LocalNetwork,
    rate: float | None,
    *,
    gos: Sequence[Any],
    done: Any,
    progress: TextIO | None,
    load_pids: Sequence[int],
    committed_counter: Any = None,
) -> PhaseData:
    first = net.names[0]
    watcher = BlockWatcher(net.node(first).api, from_height=max(0, net.height(first)))
    watcher.committed_counter = committed_counter
    watcher.start()
    try:
        ports = p2p_ports(net)
        tcp_before, bytes_before = tcp_bytes_sent(ports), p2p_bytes_out(net)
        node_before = node_samples(net)
        load_before = _load_samples(load_pids)
        start_s = time.monotonic() + START_DELAY_S
        for go in gos:
            go.put(start_s)
        end_s = start_s + options.duration_s
        _show_progress(net, watcher, start_s, end_s, progress)
        node_after = node_samples(net)
        load_after = _load_samples(load_pids)
        tcp_after, bytes_after = tcp_bytes_sent(ports), p2p_bytes_out(net)
        reports = _collect_reports(done, len(gos))
        _drain(watcher, reports, options.drain_s)
    finally:
        watcher.stop()
    moved = None if bytes_before is None or bytes_after is None else bytes_after - bytes_before
    return PhaseData(
        rate_tx_per_s=rate,
        duration_s=options.duration_s,
        start_s=start_s,
        end_s=end_s,
        reports=reports,
        submitted=[],
        blocks=list(watcher.blocks),
        tx_seen_s=dict(watcher.tx_seen_s),
        node_before=node_before,
        node_after=node_after,
        load_before=load_before,
        load_after=load_after,
        tcp_before=tcp_before,
        tcp_after=tcp_after,
        p2p_bytes_out=moved,
        sign_s=0.0,
        presigned=0,
        watcher_errors=watcher.errors,
    )


def _show_progress(
    net: LocalNetwork, watcher: BlockWatcher, start_s: float, end_s: float, out: TextIO | None
) -> None:
    """Until ``end_s``: check the nodes live and show a progress line on ``out``."""
    width = 30
    while (now := time.monotonic()) < end_s:
        net.check_alive()
        if out is not None and now >= start_s:
            elapsed = now - start_s
            share = min(1.0, elapsed / (end_s - start_s))
            bar = "#" * int(share * width)
            rate = watcher.committed_since(start_s) / max(elapsed, 1e-3)
            out.write(
                f"\r[{bar:<{width}}] {elapsed:5.1f}/{end_s - start_s:.0f} s  "
                f"committed {rate:7.0f} tx/s  height {watcher.height}"
            )
            out.flush()
        time.sleep(min(PROGRESS_INTERVAL_S, max(0.0, end_s - now)))
    if out is not None:
        out.write("\n")
        out.flush()


def _collect_reports(done: Any, count: int) -> list[WorkerReport]:
    reports = []
    for _ in range(count):
        try:
            report: WorkerReport = done.get(timeout=REPORT_TIMEOUT_S)
        except queue.Empty:
            raise BenchError(
                f"a load process did not report within {REPORT_TIMEOUT_S:g} s"
            ) from None
        if report.error:
            raise LoadError(f"load process {report.index}: {report.error}")
        reports.append(report)
    return sorted(reports, key=lambda r: r.index)


def _drain(watcher: BlockWatcher, reports: list[WorkerReport], drain_s: float) -> None:
    """Wait until the watcher saw as many of our transactions as were accepted, or
    ``drain_s`` passes."""
    accepted = sum(r.accepted for r in reports)
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline and len(watcher.tx_seen_s) < accepted:
        time.sleep(DRAIN_POLL_S)


def bench_params() -> ConsensusParams:
    """The consensus parameters ``bighealth testnet`` writes (2 MiB blocks, 1 s / 0.5 s /
    0.5 s timeouts): the network an operator starts is the one measured (the pause after a
    commit is ``--commit-wait-ms``, ``testnet``'s 500 ms by default)."""
    from node.cli.home_commands import node_params  # noqa: PLC0415

    return node_params(timeout_propose_ms=1_000, timeout_prevote_ms=500, timeout_precommit_ms=500)


@contextlib.contextmanager
def live_network(
    directory: Path, options: NetworkBenchOptions
) -> Iterator[tuple[LocalNetwork, Accounts]]:
    """A testnet of ``options.validators`` validators in ``directory``, running, and its
    sending accounts: client accounts of a generic chain (kv), or the devices of a health
    chain (``health_load``)."""
    from node.chain.config import NodeConfig  # noqa: PLC0415
    from node.cli.bench.health_load import HealthBenchTestnet  # noqa: PLC0415
    from node.cli.health_net import HealthTestnet  # noqa: PLC0415
    from node.cli.testnet import TestnetSpec, create_testnet  # noqa: PLC0415 (imports libp2p)
    from node.runtime.system import SystemRng  # noqa: PLC0415

    rng = SystemRng()
    spec = TestnetSpec(
        validators=options.validators,
        clients=options.accounts,
        chain_id=CHAIN_ID,
        params=bench_params(),
        chain=NodeConfig(
            commit_wait_ms=options.commit_wait_ms, tx_gossip_interval_ms=options.tx_gossip_ms
        ),
    )
    health = None
    if options.workload == "health":
        health = HealthBenchTestnet(HealthTestnet(rng, clinics=0), options.accounts)
    create_testnet(directory, spec, rng, health)
    with LocalNetwork(directory) as net:
        if health is None:
            accounts = read_accounts(net)
        else:
            accounts = Accounts(
                [d.seed for d in health.devices],
                patients=[d.patient for d in health.devices],
                custodians=[d.custodian for d in health.devices],
            )
        net.start()
        net.wait_answering(START_TIMEOUT_S)
        net.wait_height(1, START_TIMEOUT_S)
        yield net, accounts


def refused_total(reports: Sequence[WorkerReport]) -> Counter[str]:
    """Refusals by reason over the load processes."""
    total: Counter[str] = Counter()
    for report in reports:
        total.update(report.refused)
    return total


def run_network_bench(
    options: NetworkBenchOptions, directory: Path, progress: TextIO | None = sys.stderr
) -> tuple[Any, list[PhaseData]]:
    """Ceilings, then every phase on one live network in ``directory`` (absent or empty:
    ``BenchError`` otherwise, before anything runs); the ceilings and the phases' data."""
    from node.cli.bench.ceilings import measure_ceilings  # noqa: PLC0415

    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BenchError(f"{directory} exists and is not an empty directory")
    ceilings = measure_ceilings(options.ceiling_s)
    phases = []
    with live_network(directory, options) as (net, accounts):
        for rate in options.rates:
            if progress is not None:
                shown = "max (closed loop)" if rate is None else f"{rate:g} tx/s"
                progress.write(f"phase: offered {shown}, {options.duration_s:g} s\n")
            phases.append(run_phase(options, net, accounts, rate, progress))
    return ceilings, phases
