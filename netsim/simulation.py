"""``Simulation``: one seed-replayable run, from a config to a :class:`RunResult`.

It derives every random stream from the seed, places the nodes, builds one
:class:`~netsim.host.NodeHost` per node (Byzantine validators get their node code wrapped),
draws the fault plan, starts the workload and runs the event loop until every honest node
decided the target height with all faults healed, a checker fails (unless told to keep
going), or the virtual time limit is reached. The workload decides what the chain starts
with (accounts, modules' ``app_state``, the application) and hears every decided height;
its report at the end adds its counts to the result and its broken expectations to the
violations (checker ``workload``). Nothing in it reads a real clock except the wall-time
measurement reported at the end, which never feeds back into the run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Final, Protocol

from crypto_core.signatures import Ed25519KeyPair
from netsim.byzantine import ByzantineNode, ByzantineRole, Coalition
from netsim.checkers import WORKLOAD, CheckerSuite, HeightRecord, Violation
from netsim.clock import DEFAULT_EPOCH_MS, SimClock
from netsim.config import SimConfig
from netsim.engine import EventLoop
from netsim.faults import FaultOptions, FaultPlan, plan_faults, swarm_options
from netsim.host import NodeHost, NodeStatus
from netsim.injector import FaultInjector
from netsim.memo import SharedVerification, SignatureMemo
from netsim.network import SimNetwork
from netsim.node_api import Envelope, NodeEnv, NodeFactory, SimNode
from netsim.regions import LatencyTable
from netsim.result import RunResult, summarize
from netsim.rng import RandomStreams
from netsim.topology import Topology, build_topology
from netsim.trace import TraceHasher
from netsim.workload import (
    WORKLOADS,
    CommittedBlock,
    TxRegistry,
    Workload,
    WorkloadReport,
    tx_digest,
)
from node.app.accounts import GenesisAccount
from node.chain.app_state import AppStateEntries, encode_app_states
from node.chain.application import AppFactory
from node.testing.factories import make_validators

CHAIN_ID: Final = "netsim"
GENESIS_TIME_MS: Final = DEFAULT_EPOCH_MS - 60_000
"""The chain starts a minute before virtual time 0 (every clock reads later than it)."""

STEP_US: Final = 250_000
"""Virtual time between two checks of the end condition (and progress reports)."""

VALIDATOR_KEY_PREFIX: Final = "netsim-validator"


@dataclass(frozen=True, slots=True)
class RunSetup:
    """What node builders need to know about a run before it starts."""

    config: SimConfig
    fault_options: FaultOptions
    topology: Topology
    chain_id: str
    genesis_time_ms: int
    validator_keys: tuple[Ed25519KeyPair, ...]
    validator_power: int
    genesis_accounts: tuple[GenesisAccount, ...]
    byzantine: tuple[int, ...]
    genesis_app_state: AppStateEntries = ()
    """The modules' genesis state (canonical, as ``Genesis.app_state`` takes it)."""
    app_factory: AppFactory | None = None
    """The application the nodes run (None: the node's default one)."""


class NodeBuilder(Protocol):
    """Makes the (honest) node code of each node of a run."""

    def factory(self, setup: RunSetup, node: int) -> NodeFactory:
        """The factory building node ``node`` (called again on every restart)."""
        ...


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress report (at most every STEP_US of virtual time)."""

    time_us: int
    height: int
    target_height: int
    events: int
    violations: int


ProgressCallback = Callable[[Progress], None]


class Simulation:
    """One run of ``config`` with the node code ``builder`` makes."""

    def __init__(
        self,
        config: SimConfig,
        builder: NodeBuilder,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config
        self.streams = RandomStreams(config.seed)
        self._on_progress = on_progress
        self.fault_options = (
            swarm_options(self.streams.stream("swarm"), config.faults.window_start_ms)
            if config.swarm
            else config.faults
        )
        table = LatencyTable.preset(config.topology)
        self.topology = build_topology(
            config.validators,
            config.nodes,
            table,
            self.streams.stream("topology"),
            upstreams_per_node=config.byzantine + 1,
        )
        chosen = self.streams.stream("byzantine").sample(range(config.validators), config.byzantine)
        self.byzantine = tuple(sorted(chosen))
        self.honest = tuple(node not in set(self.byzantine) for node in range(config.nodes))
        self.loop = EventLoop()
        self.trace = TraceHasher()
        self.network = SimNetwork(
            self.loop, self.topology, self.streams.stream("network"), self._deliver
        )
        self.workload: Workload = WORKLOADS[config.workload](config)
        self.workload_report = WorkloadReport()
        """The workload's report, once the run ended."""
        self.registry = TxRegistry(self.streams.stream("latency-samples"))
        fixture = make_validators(config.validators, prefix=VALIDATOR_KEY_PREFIX)
        self.setup = RunSetup(
            config=config,
            fault_options=self.fault_options,
            topology=self.topology,
            chain_id=CHAIN_ID,
            genesis_time_ms=GENESIS_TIME_MS,
            validator_keys=fixture.keys,
            validator_power=fixture.validators[0].voting_power,
            genesis_accounts=self.workload.genesis_accounts(),
            byzantine=self.byzantine,
            genesis_app_state=encode_app_states(
                self.workload.genesis_app_state(fixture.validators)
            ),
            app_factory=self.workload.app_factory(),
        )
        self.checkers = self._make_checkers()
        self.plan: FaultPlan = plan_faults(
            self.fault_options,
            validators=config.validators,
            nodes=config.nodes,
            honest=self.honest,
            rng=self.streams.stream("faults"),
        )
        self.hosts = self._make_hosts(builder)
        self.injector = FaultInjector(self.loop, self.hosts, self.network, self.trace)
        self.signature_checks = (0, 0)
        """(checks run, checks answered from the shared memo) of the last run."""

    def _make_checkers(self) -> CheckerSuite:
        keys = self.setup.validator_keys
        checkers = CheckerSuite(
            honest=self.honest,
            honest_validator_keys=frozenset(
                key.public_key for node, key in enumerate(keys) if self.honest[node]
            ),
            known_tx=self.registry,
            own_keys=[
                keys[node].public_key if node < len(keys) else None
                for node in range(len(self.honest))
            ],
            liveness_bound_us=self.config.liveness_bound_ms * 1_000,
            on_violation=self._violated,
        )
        checkers.on_commit = self._committed
        return checkers

    def _make_hosts(self, builder: NodeBuilder) -> list[NodeHost]:
        coalition = Coalition(
            self.byzantine, self.topology, self.streams.stream("coalition"), CHAIN_ID
        )
        role_mix = self.config.byzantine_roles
        hosts: list[NodeHost] = []
        for node in range(self.config.nodes):
            factory = builder.factory(self.setup, node)
            if not self.honest[node]:
                roles = role_mix[self.byzantine.index(node) % len(role_mix)]
                factory = _byzantine_factory(
                    factory, roles, self.setup.validator_keys[node], coalition
                )
            setting = self.plan.clocks[node]
            clock = SimClock(
                lambda: self.loop.now_us,
                offset_ms=setting.offset_ms,
                drift_ppm=setting.drift_ppm,
            )
            hosts.append(
                NodeHost(
                    node,
                    loop=self.loop,
                    network=self.network,
                    trace=self.trace,
                    streams=self.streams,
                    topology=self.topology,
                    observer=self.checkers,
                    clock=clock,
                    factory=factory,
                    honest=self.honest[node],
                )
            )
        return hosts

    # --- running ---------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run to the end (see the module docstring) and summarize."""
        started = time.perf_counter()
        sharing = SharedVerification() if self.config.shared_verification else nullcontext()
        with sharing as memo:
            reason = self._start_and_run()
        if self.config.shared_verification:
            assert isinstance(memo, SignatureMemo)
            self.signature_checks = (memo.misses, memo.hits)
        wall_s = time.perf_counter() - started
        return summarize(self, reason, wall_s)

    def _start_and_run(self) -> str:
        self.injector.schedule(self.plan.actions)
        self.loop.at(self.plan.heal_ms * 1_000, self._healed)
        for host in self.hosts:
            host.boot()
        self.workload.start(_WorkloadPort(self))
        reason = self._run_loop()
        if not (self.checkers.failed and self.config.stop_on_violation):
            up = [host.status is not NodeStatus.DOWN for host in self.hosts]
            self.checkers.finish(self.loop.now_us, self.config.heights, up)
        self.workload_report = self.workload.report()
        for problem in self.workload_report.problems:
            self.checkers.fail(WORKLOAD, self.loop.now_us, None, problem)
        return reason

    def _run_loop(self) -> str:
        limit_us = self.config.max_sim_time_ms * 1_000
        loop = self.loop
        while True:
            until_us = min(loop.now_us + STEP_US, limit_us)
            stopped = loop.run(until_us)
            if self._on_progress is not None:
                self._report_progress()
            if stopped and self.checkers.failed:
                return "violation"
            if self._done():
                return "target reached"
            if loop.now_us >= limit_us:
                return "time limit"
            if loop.pending == 0:
                return "no events left"

    def _done(self) -> bool:
        heights = self.checkers.log.node_height
        target = self.config.heights
        if self.loop.now_us < self.plan.heal_ms * 1_000:
            return False
        return all(heights[n] >= target for n in range(self.config.nodes) if self.honest[n])

    def _report_progress(self) -> None:
        assert self._on_progress is not None
        self._on_progress(
            Progress(
                time_us=self.loop.now_us,
                height=self.checkers.log.max_height,
                target_height=self.config.heights,
                events=self.loop.events_run,
                violations=self.checkers.violation_count,
            )
        )

    # --- callbacks -------------------------------------------------------------------------------

    def _deliver(self, src: int, dst: int, envelope: Envelope) -> None:
        self.hosts[dst].deliver(src, envelope)

    def _violated(self, violation: Violation) -> None:
        if self.config.stop_on_violation:
            self.loop.stop()

    def _committed(self, height: int, record: HeightRecord) -> None:
        time_us = record.first_time_us
        decision = record.decision
        for tx_hash in decision.tx_hashes:
            self.registry.commit(tx_hash, time_us)
        self.workload.on_block(
            CommittedBlock(height, time_us, decision.time_ms, decision.receipts, decision.events)
        )
        if decision.receipts or decision.events:  # the log keeps what the checkers compare
            record.decision = replace(decision, receipts=(), events=())

    def _healed(self, _: object) -> None:
        self.checkers.faults_healed(self.loop.now_us)


def _byzantine_factory(
    inner: NodeFactory,
    roles: tuple[ByzantineRole, ...],
    key: Ed25519KeyPair,
    coalition: Coalition,
) -> NodeFactory:
    def build(env: NodeEnv) -> SimNode:
        return ByzantineNode(env, inner, roles=roles, key=key, coalition=coalition)

    return build


class _WorkloadPort:
    """The ``WorkloadContext`` of a run."""

    def __init__(self, simulation: Simulation) -> None:
        self._sim = simulation

    @property
    def chain_id(self) -> str:
        return CHAIN_ID

    @property
    def topology(self) -> Topology:
        return self._sim.topology

    @property
    def rng(self) -> random.Random:
        return self._sim.streams.stream("workload")

    def now_us(self) -> int:
        return self._sim.loop.now_us

    def later(self, delay_us: int, callback: Callable[[], None]) -> None:
        self._sim.loop.after(delay_us, _call, callback)

    def submit(
        self,
        node: int,
        tx: bytes,
        on_commit: Callable[[], None],
        on_refused: Callable[[str], None] | None = None,
    ) -> bool:
        digest = tx_digest(tx)
        registry = self._sim.registry
        if digest not in registry:
            registry.created(digest, self._sim.loop.now_us, on_commit)
        if on_refused is None:
            return self._sim.hosts[node].submit_tx(tx, digest)
        refused = on_refused  # heard after this call returns: the workload is not re-entered

        def later(reason: str) -> None:
            self.later(0, lambda: refused(reason))

        return self._sim.hosts[node].submit_tx(tx, digest, later)


def _call(callback: Callable[[], None]) -> None:
    callback()
