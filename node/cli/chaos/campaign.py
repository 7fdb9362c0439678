"""One fault campaign, from an empty directory to its result.

``make_chaos_testnet`` writes a health testnet (``validators`` hospitals, one patient's
observer; keystores under the cheapest KDF: a local test network). ``Campaign.run``:

1. starts every node behind its fault gate and waits until they follow the chain;
2. prepares and starts the health workload (``node.cli.chaos.workload``);
3. plays the seeded schedule (``node.cli.chaos.schedule``) episode by episode: inject,
   hold, heal; then measures the recovery (``ChainWatch.wait_recovery``) and looks at
   every node (``ChainWatch.observe``); until ``kills`` kills are done and ``duration_s``
   has passed (or a node exits for good, or the stop event is set);
4. stops the workload, waits for a last new height everywhere, reads every acknowledged
   record back, stops the nodes;
5. reads every node's stores (forks, execution results, state roots, double signs) and
   scans every LevelDB for the records' plaintext.

Every broken invariant is a line in ``CampaignResult.violations``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from health import fhir
from health.client import KDF_MIN
from node.chain.config import NodeConfig
from node.cli.chaos.at_rest import leveldbs, scan_at_rest
from node.cli.chaos.checks import VoteScan, fork_violations, recovery_violation, root_violations
from node.cli.chaos.faults import FaultyNetwork
from node.cli.chaos.report import CampaignResult
from node.cli.chaos.schedule import Episode, FaultKind, Nodes, episodes
from node.cli.chaos.stores import StoreView, read_store
from node.cli.chaos.watch import ChainWatch
from node.cli.chaos.workload import Acknowledged, HealthWorkload, WorkloadNodes
from node.cli.health_net import DEFAULT_TESTNET_PASSPHRASE, HealthTestnet
from node.cli.home_commands import node_params
from node.cli.localnet import LocalNetError
from node.cli.testnet import TestnetSpec, create_testnet
from node.home.manifest import TestnetManifest
from node.runtime.system import SystemClock, SystemRng

logger = logging.getLogger("node.cli.chaos")

CHAIN_ID: Final = "bighealth-chaos"
START_TIMEOUT_S: Final = 120.0
PREPARE_TIMEOUT_S: Final = 120.0
CHAOS_CHAIN: Final = NodeConfig(commit_wait_ms=200, tx_gossip_interval_ms=100)
MAX_STALLED_EPISODES: Final = 3
"""A campaign stops after this many episodes in a row without recovery: the network is
down, and more faults would only be waited out (each for the whole liveness bound)."""
AT_REST_MARKERS: Final = (b"resourceType", b"valueQuantity")
"""Every needle of the at-rest scan holds one of these."""


@dataclass(frozen=True, slots=True)
class CampaignOptions:
    """What to run (``bighealth chaos``'s options)."""

    seed: int
    validators: int = 4
    kills: int = 50
    duration_s: float = 0.0
    liveness_bound_s: float = 60.0
    upload_interval_s: float = 0.5


def make_chaos_testnet(directory: Path, validators: int) -> TestnetManifest:
    """A health testnet in ``directory``: ``validators`` hospitals and one patient."""
    spec = TestnetSpec(
        validators=validators,
        observers=1,
        chain_id=CHAIN_ID,
        genesis_time_ms=SystemClock().now_ms(),
        params=node_params(
            timeout_propose_ms=1_000, timeout_prevote_ms=500, timeout_precommit_ms=500
        ),
        chain=CHAOS_CHAIN,
    )
    app = HealthTestnet(SystemRng(), clinics=0, kdf=KDF_MIN)
    return create_testnet(directory, spec, SystemRng(), app)


def workload_nodes(net: FaultyNetwork) -> WorkloadNodes:
    """Hospital 0's validator and the patient's observer keep the records; uploads go
    through validator 1 (validator 0 when alone)."""
    local = net.net
    validators = [n.name for n in local.manifest.nodes if n.role == "validator"]
    patient = next(n.name for n in local.manifest.nodes if n.role == "observer")
    submit = validators[1] if len(validators) > 1 else validators[0]
    return WorkloadNodes(
        hospital_url=local.api_url(validators[0]),
        patient_url=local.api_url(patient),
        submit_url=local.api_url(submit),
        hospital_peer=local.node(validators[0]).peer_id,
        patient_peer=local.node(patient).peer_id,
    )


class Campaign:
    """See the module docstring."""

    def __init__(
        self,
        directory: Path,
        options: CampaignOptions,
        out: TextIO,
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.directory = directory
        self.options = options
        self.out = out
        self.should_stop = should_stop
        self.net = FaultyNetwork(directory)
        manifest = self.net.net.manifest
        self.nodes = Nodes(
            tuple(n.name for n in manifest.nodes if n.role == "validator"),
            tuple(n.name for n in manifest.nodes if n.role == "observer"),
        )
        self.result = CampaignResult(
            seed=options.seed,
            validators=len(self.nodes.validators),
            nodes=len(self.nodes.all),
            liveness_bound_s=options.liveness_bound_s,
        )

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def run(self) -> CampaignResult:
        """The whole campaign (see the module docstring); nodes are stopped on every way out."""
        started = time.monotonic()
        acknowledged: list[Acknowledged] = []
        try:
            acknowledged = self._live(started)
        finally:
            self.net.stop_all()
            self.result.duration_s = round(time.monotonic() - started, 1)
        self._offline(acknowledged)
        return self.result

    # -- live -----------------------------------------------------------------------------------

    def _live(self, started: float) -> list[Acknowledged]:
        net, result = self.net, self.result
        net.start_all()
        net.net.wait_answering(START_TIMEOUT_S)
        net.net.wait_height(1, START_TIMEOUT_S)
        following_s = time.monotonic() - started
        workload = HealthWorkload(
            self.directory / "clients",
            CHAIN_ID,
            DEFAULT_TESTNET_PASSPHRASE,
            workload_nodes(net),
            interval_s=self.options.upload_interval_s,
        )
        workload.prepare(PREPARE_TIMEOUT_S)
        self.say(
            f"  network     {len(self.nodes.all)} nodes following the chain after "
            f"{following_s:.1f} s, the patient registered after {time.monotonic() - started:.1f} s"
        )
        watch = ChainWatch(net.net)
        workload.start()
        try:
            stalled = 0
            for episode in episodes(self.options.seed, self.nodes):
                if self._done(started):
                    break
                recovered = self._episode(episode, watch)
                if recovered is None:
                    break
                stalled = 0 if recovered else stalled + 1
                if stalled >= MAX_STALLED_EPISODES:
                    self._stalled()
                    break
        finally:
            workload.stop()
        self._final_look(watch)
        acknowledged = list(workload.acknowledged)
        lost = workload.verify(acknowledged)
        self.say(f"  end         {len(acknowledged)} records read back, {len(lost)} lost")
        result.records_acknowledged = len(acknowledged)
        result.uploads_failed = sum(workload.failures.values())
        result.upload_failures = dict(workload.failures)
        result.records_lost = len(lost)
        result.violations += [f"acknowledged record {r.hex()} not read back" for r in lost]
        if workload.crashed is not None:
            result.violations.append(f"the workload stopped: {workload.crashed}")
        return acknowledged

    def _done(self, started: float) -> bool:
        kills_done = self.net.injected["kill"]
        elapsed = time.monotonic() - started
        enough = kills_done >= self.options.kills and elapsed >= self.options.duration_s
        return enough or self.should_stop()

    def _stalled(self) -> None:
        line = f"stopped after {MAX_STALLED_EPISODES} episodes in a row without recovery"
        self.result.violations.append(line)
        self.say(f"  {line}")

    def _episode(self, episode: Episode, watch: ChainWatch) -> bool | None:
        """Inject, hold, heal, measure: whether every node recovered; None when the
        campaign cannot go on (a node exited)."""
        self.result.episodes += 1
        try:
            inject_and_heal(self.net, episode)
            recovery = watch.wait_recovery(self.nodes.all, self.options.liveness_bound_s)
            self.net.net.check_alive()
        except LocalNetError as exc:
            self.result.violations.append(f"{episode.describe()}: {exc}")
            self.say(f"  {episode.describe()}: a node failed: {str(exc).splitlines()[0]}")
            return None
        violation = recovery_violation(episode.describe(), recovery, self.options.liveness_bound_s)
        if violation is not None:
            self.result.violations.append(violation)
        if recovery is not None:
            self.result.add_recovery(recovery)
        new = watch.observe(self.nodes.all)
        self.result.violations += new
        took = "no recovery" if recovery is None else f"recovered in {recovery:.1f} s"
        line = f"{episode.describe()}: {took}" + (f", {len(new)} violations" if new else "")
        self.result.faults.append(line)
        self.say(f"  {line}")
        return recovery is not None

    def _final_look(self, watch: ChainWatch) -> None:
        recovery = watch.wait_recovery(self.nodes.all, self.options.liveness_bound_s)
        if recovery is None:
            self.result.violations.append("the end: no new height on every node")
        self.result.violations += watch.observe(self.nodes.all)
        self.result.blocks_lost = watch.heights.lost
        self._count_faults()

    def _count_faults(self) -> None:
        injected, result = self.net.injected, self.result
        result.kills = injected["kill"]
        result.skewed_restarts = injected["skewed_restart"]
        result.pauses = injected["pause"]
        result.partitions = injected["partition"]
        result.one_way_losses = injected["one_way"]

    # -- offline --------------------------------------------------------------------------------

    def _offline(self, acknowledged: list[Acknowledged]) -> None:
        """The stores of the stopped nodes: chains, results, roots, votes; at rest."""
        homes = {name: self.net.net.home(name) for name in self.nodes.all}
        views = {name: read_store(home, CHAIN_ID) for name, home in homes.items()}
        self.result.violations += store_violations(views)
        scan = VoteScan()
        for view in views.values():
            scan.add(view.votes)
        self.result.votes_scanned = scan.seen
        self.result.double_signs = len(scan.found)
        self.result.violations += [double.describe() for double in scan.found]
        self.result.final_height = max((v.height for v in views.values()), default=0)
        self.result.heights_compared = len({h for v in views.values() for h in v.block_ids})
        needles = {}
        for index, item in enumerate(acknowledged):
            needles[f"plaintext {index}"] = item.plaintext
            quantity = fhir.dumps(item.observation["valueQuantity"])
            needles[f"valueQuantity {index}"] = b'"valueQuantity":' + quantity
        found = scan_at_rest(leveldbs(homes), CHAIN_ID, needles, AT_REST_MARKERS)
        leaks = {name: where for name, where in found.items() if where}
        self.result.plaintext_found_at_rest = len(leaks)
        self.result.violations += [
            f"{name} found at rest in {where}" for name, where in leaks.items()
        ]


def store_violations(views: dict[str, StoreView]) -> list[str]:
    """Forks, differing execution results, and differing roots at equal final heights."""
    found = fork_violations({name: view.block_ids for name, view in views.items()})
    results = {name: view.results for name, view in views.items()}
    found += [
        line.replace("fork", "execution results differ", 1) for line in fork_violations(results)
    ]
    found += root_violations({name: (view.height, view.app_root) for name, view in views.items()})
    return found


def inject_and_heal(
    net: FaultyNetwork, episode: Episode, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Do ``episode`` on ``net``: inject, hold ``hold_s``, heal."""
    kind, target = episode.kind, episode.target
    if kind in (FaultKind.KILL, FaultKind.SKEWED_RESTART):
        net.kill(target)
        sleep(episode.hold_s)
        net.restart(target, episode.skew_ms if kind is FaultKind.SKEWED_RESTART else None)
    elif kind is FaultKind.PAUSE:
        net.pause(target)
        sleep(episode.hold_s)
        net.resume(target)
    elif kind is FaultKind.PARTITION:
        net.partition(episode.side)
        sleep(episode.hold_s)
        net.heal_links()
    else:
        net.drop_one_way(episode.side[0], target)
        sleep(episode.hold_s)
        net.heal_links()
