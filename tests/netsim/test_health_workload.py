"""The health workload: the diabetes-care story on the health chain's modules, in simulated
networks with Byzantine validators and faults; its senders (nonces, resends, refusals, late
commits), its reminder checks, its genesis, and the CLI's ``--workload health``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import pytest

from netsim import cli
from netsim.checkers import LIVENESS, WORKLOAD
from netsim.cli import parse_run_config
from netsim.config import SimConfig
from netsim.core_adapter import CoreBuilder
from netsim.engine import EventLoop
from netsim.errors import ConfigError
from netsim.faults import FaultKind, FaultOptions
from netsim.health_checks import ReminderLedger
from netsim.health_workload import HealthWorkload
from netsim.regions import LatencyTable
from netsim.result import RunResult
from netsim.senders import Intent, Sender, SenderPool
from netsim.simulation import Simulation
from netsim.topology import Topology, build_topology
from netsim.workload import (
    WORKLOADS,
    CommittedBlock,
    GenericWorkload,
    WorkloadReport,
    tx_digest,
)
from node.chain.app_state import encode_app_states
from node.chain.genesis import Genesis
from node.codec import TX_CODEC
from node.testing.factories import key_pair, make_validators
from node.types import Event, EventAttribute, ResultCode, Transaction, TxReceipt

ROOT = Path(__file__).resolve().parents[2]
STORY = SimConfig(
    seed=7,
    workload="health",
    validators=4,
    nodes=6,
    byzantine=1,
    heights=95,
    topology="national",
    reading_interval_ms=60_000,
)
"""Long enough (about two minutes of virtual time) for reminders to come due and escalate."""


def run(config: SimConfig) -> RunResult:
    return Simulation(config, CoreBuilder()).run()


def committed(result: RunResult, kind: str) -> int:
    return result.workload_counts.get(f"committed/{kind}", 0)


@pytest.fixture(scope="module")
def story() -> RunResult:
    return run(STORY)


# --- whole runs -----------------------------------------------------------------------------------


def test_the_story_runs_safely_with_a_byzantine_validator(story: RunResult) -> None:
    assert story.passed, [v.describe() for v in story.violations]
    assert story.end_reason == "target reached"
    assert story.byzantine and story.accusations > 0  # the equivocator was caught at work


def test_the_story_happened(story: RunResult) -> None:
    counts = story.workload_counts
    institutions, practitioners, patients = 4, 2, 4
    people = institutions * (practitioners + patients)
    devices = institutions * patients
    assert committed(story, "identity.register") == people + devices
    assert counts["emitted/identity.registered"] == people + devices
    assert counts["emitted/consent.granted"] >= institutions * patients
    assert counts["emitted/care.plan_set"] >= institutions * patients
    assert counts["emitted/records.committed"] > devices  # periodic and on-demand readings
    assert counts["reminders/due"] > 0 and counts["reminders/done"] > 0
    assert counts["reminders/missed"] >= 1  # a reminder let pass escalated after the grace
    assert counts["emitted/care.escalated"] == counts["reminders/missed"]
    assert counts["emitted/governance.proposed"] >= 1


def test_failed_receipts_are_counted_not_violations(story: RunResult) -> None:
    failed = {k: v for k, v in story.workload_counts.items() if k.startswith("failed/")}
    refused = {k: v for k, v in story.workload_counts.items() if k.startswith("refused/")}
    assert story.passed
    assert sum(failed.values()) + sum(refused.values()) > 0  # stale clients, late votes
    assert not any("identity.register" in key for key in failed)


def test_the_same_seed_replays_the_same_story_under_faults() -> None:
    faults = FaultOptions(
        kinds=(FaultKind.PARTITION, FaultKind.CRASH), window_start_ms=2_000, window_end_ms=20_000
    )
    config = replace(STORY, heights=30, faults=faults, nodes=8)
    first, again = run(config), run(config)
    assert first.passed, [v.describe() for v in first.violations]
    assert first.fault_actions
    assert first.trace_hash == again.trace_hash
    assert first.workload_counts == again.workload_counts
    assert run(replace(config, seed=8)).trace_hash != first.trace_hash


def test_the_story_replays_in_processes_with_other_hash_seeds(tmp_path: Path) -> None:
    config = replace(STORY, heights=6, nodes=4)
    expected = run(config).trace_hash
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run-{hash_seed}.json"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        argv = ["run", *config.argv(), "--json", str(out), "--no-progress"]
        completed = subprocess.run(
            [sys.executable, "-m", "netsim", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert json.loads(out.read_text())["trace_hash"] == expected


def test_the_generic_workload_reports_its_clients() -> None:
    """The default workload: the default application, no app_state, its counts reported."""
    config = SimConfig(seed=1, validators=4, nodes=8, byzantine=1, heights=4, topology="national")
    result = run(config)
    assert result.passed
    assert result.workload_counts["clients/submitted"] > 0
    assert result.trace_hash == run(config).trace_hash


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_the_story_at_sixteen_validators_with_faults(seed: int) -> None:
    faults = FaultOptions(
        kinds=(FaultKind.PARTITION, FaultKind.CRASH, FaultKind.LOSS, FaultKind.PAUSE),
        window_start_ms=2_000,
        window_end_ms=40_000,
    )
    config = replace(
        STORY, seed=seed, validators=16, nodes=100, byzantine=5, heights=100, faults=faults
    )
    result = run(config)
    safety = [v.describe() for v in result.violations if v.checker != LIVENESS]
    assert safety == []
    assert result.passed, [v.describe() for v in result.violations]
    assert result.workload_counts["reminders/due"] > 0


# --- a broken expectation is a violation ----------------------------------------------------------


class _Complaining(GenericWorkload):
    def report(self) -> WorkloadReport:
        return WorkloadReport({"story/x": 1}, ("a reminder was lost",))


def test_a_problem_of_the_workload_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(WORKLOADS, "complaining", lambda config: _Complaining(clients=2))
    config = SimConfig(seed=1, workload="complaining", validators=4, heights=2, tx_rate=1.0)
    result = run(config)
    assert not result.passed
    assert [v.checker for v in result.violations] == [WORKLOAD]
    assert result.violations[0].message == "a reminder was lost"
    assert result.workload_counts == {"story/x": 1}


# --- genesis --------------------------------------------------------------------------------------


def test_the_genesis_names_one_member_institution_per_validator() -> None:
    fixture = make_validators(4, prefix="g")
    workload = HealthWorkload(institutions=4, patients=1)
    state = workload.genesis_app_state(fixture.validators)
    genesis = Genesis(
        chain_id="c",
        genesis_time_ms=0,
        validators=fixture.validators,
        app_state=encode_app_states(state),
    )
    app = workload.app_factory()
    assert app is not None
    app(genesis)  # the health registry accepts it: members are the validators at their power
    assert workload.genesis_accounts() == ()
    with pytest.raises(ConfigError):
        workload.genesis_app_state(fixture.validators[:3])


@pytest.mark.parametrize(
    "options", [{"patients": -1}, {"devices": 5}, {"miss_pct": 101}, {"reading_interval_ms": 0}]
)
def test_bad_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        HealthWorkload(institutions=4, **options)


def test_health_options_round_trip_through_the_command_line() -> None:
    config = replace(STORY, patients=9, devices=2, practitioners=3, miss_pct=50)
    assert parse_run_config(config.argv()) == config
    assert "--patients" not in SimConfig().argv()  # other workloads' replays are unchanged


def test_the_cli_runs_the_health_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "out.json"
    argv = ["run", "--workload", "health", "--seed", "1", "--heights", "12", "--nodes", "5"]
    status = cli.main([*argv, "--no-progress", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "workload         health: 4 institutions" in out
    assert "committed        " in out and "identity.register" in out
    counts = json.loads(out_json.read_text())["workload_counts"]
    assert counts["committed/identity.register"] > 0


# --- senders --------------------------------------------------------------------------------------


@dataclass
class FakeNodes:
    """A workload context whose nodes refuse what ``answers`` says (node -> reason)."""

    answers: dict[int, str] = field(default_factory=dict)
    loop: EventLoop = field(default_factory=EventLoop)
    topology: Topology = field(
        default_factory=lambda: build_topology(4, 6, LatencyTable(("paris",)), random.Random(0))
    )
    rng: random.Random = field(default_factory=lambda: random.Random(3))
    chain_id: str = "netsim"
    sent: list[tuple[int, Transaction]] = field(default_factory=list)

    def now_us(self) -> int:
        return self.loop.now_us

    def later(self, delay_us: int, callback: Callable[[], None]) -> None:
        self.loop.after(delay_us, lambda _: callback())

    def submit(
        self,
        node: int,
        tx: bytes,
        on_commit: Callable[[], None],
        on_refused: Callable[[str], None] | None = None,
    ) -> bool:
        self.sent.append((node, TX_CODEC.decode(tx)))
        answer = self.answers.get(node)
        if answer is not None and on_refused is not None:
            self.later(0, lambda: on_refused(answer))
        return True


def receipt_of(tx: Transaction, code: ResultCode = ResultCode.OK) -> TxReceipt:
    return TxReceipt(tx_digest(TX_CODEC.encode(tx)), code, "", 0, ())


def block(*receipts: TxReceipt) -> CommittedBlock:
    return CommittedBlock(1, 0, 0, receipts, ())


def make_pool(ctx: FakeNodes, counts: Counter[str], resubmit_us: int = 1_000_000) -> SenderPool:
    return SenderPool(ctx, counts, resubmit_us=resubmit_us, max_attempts=3)


def test_a_sender_keeps_one_transaction_in_flight_with_consecutive_nonces() -> None:
    ctx, counts = FakeNodes(), Counter[str]()
    pool = make_pool(ctx, counts)
    sender = Sender(key_pair("s"), home=5)
    done: list[ResultCode] = []
    for n in range(3):
        pool.send(sender, Intent("kv.set", partial(bytes, [n]), lambda r: done.append(r.code)))
    assert len(ctx.sent) == 1 and ctx.sent[0][0] == 5
    pool.on_block(block(receipt_of(ctx.sent[0][1], ResultCode.CONFLICT)))
    pool.on_block(block(receipt_of(ctx.sent[1][1])))
    pool.on_block(block(receipt_of(ctx.sent[2][1])))
    assert [tx.nonce for _, tx in ctx.sent] == [0, 1, 2]  # a failed receipt used its nonce
    assert done == [ResultCode.CONFLICT, ResultCode.OK, ResultCode.OK]
    assert counts["committed/kv.set"] == 3 and counts["failed/kv.set CONFLICT"] == 1
    assert sender.idle and sender.next_nonce == 3


def test_an_unanswered_transaction_is_sent_again_to_validators_then_abandoned() -> None:
    ctx, counts = FakeNodes(), Counter[str]()
    pool = make_pool(ctx, counts)
    sender = Sender(key_pair("s"), home=5)
    dropped: list[str] = []
    pool.send(sender, Intent("kv.set", lambda: b"a", on_dropped=dropped.append))
    pool.send(sender, Intent("kv.set", lambda: b"b"))
    ctx.loop.run(3_500_000)
    nodes = [node for node, _ in ctx.sent]
    assert nodes[0] == 5 and all(node < 4 for node in nodes[1:3])  # resends go to validators
    assert len({tx.payload for _, tx in ctx.sent[:3]}) == 1
    assert dropped == ["abandoned"] and counts["abandoned/kv.set"] == 1
    assert ctx.sent[3][1].payload == b"b" and ctx.sent[3][1].nonce == 0  # the nonce is reused


def test_an_application_refusal_is_tried_again_at_validators_then_dropped() -> None:
    ctx = FakeNodes(answers={n: "app_rejected: unauthorized: no" for n in range(6)})
    counts = Counter[str]()
    pool = make_pool(ctx, counts, resubmit_us=60_000_000)
    sender = Sender(key_pair("s"), home=5)
    dropped: list[str] = []
    pool.send(sender, Intent("care.set_plan", lambda: b"p", on_dropped=dropped.append))
    ctx.loop.run(100_000)
    assert len(ctx.sent) == 1 and not dropped  # the home node may lag: not given up yet
    ctx.loop.run(4_200_000)
    assert len(ctx.sent) == 3 and all(node < 4 for node, _ in ctx.sent[1:])
    assert dropped == ["app_rejected: unauthorized: no"]
    assert counts["refused/care.set_plan app_rejected unauthorized"] == 3
    assert counts["dropped/care.set_plan refused"] == 1


def test_a_node_that_does_not_know_the_sender_yet_is_not_a_refusal() -> None:
    ctx = FakeNodes(answers={5: "app_rejected: unknown_sender: no identity"})
    counts = Counter[str]()
    pool = make_pool(ctx, counts, resubmit_us=60_000_000)
    sender = Sender(key_pair("s"), home=5)
    pool.send(sender, Intent("care.set_policy", lambda: b"p"))
    ctx.loop.run(2_100_000)
    assert len(ctx.sent) == 2 and ctx.sent[1][0] < 4
    pool.on_block(block(receipt_of(ctx.sent[1][1])))
    assert counts["committed/care.set_policy"] == 1 and sender.idle


def test_a_late_commit_of_a_dropped_transaction_re_signs_the_one_in_flight() -> None:
    ctx, counts = FakeNodes(), Counter[str]()
    pool = make_pool(ctx, counts)
    sender = Sender(key_pair("s"), home=5)
    done: list[bytes] = []
    pool.send(sender, Intent("kv.set", lambda: b"a", lambda r: done.append(b"a")))
    pool.send(sender, Intent("kv.set", lambda: b"b", lambda r: done.append(b"b")))
    ctx.loop.run(3_500_000)  # "a" abandoned; "b" in flight with nonce 0
    first_a = ctx.sent[0][1]
    pool.on_block(block(receipt_of(first_a)))  # "a" committed after all
    assert done == [b"a"] and counts["client/late commits"] == 1
    latest = ctx.sent[-1][1]
    assert latest.payload == b"b" and latest.nonce == 1
    pool.on_block(block(receipt_of(latest)))
    assert done == [b"a", b"b"] and sender.idle


def test_an_unwanted_intent_is_skipped() -> None:
    ctx, counts = FakeNodes(), Counter[str]()
    pool = make_pool(ctx, counts)
    sender = Sender(key_pair("s"))
    pool.send(sender, Intent("governance.vote", lambda: b"v", wanted=lambda: False))
    assert ctx.sent == [] and counts["dropped/governance.vote unwanted"] == 1


# --- reminder checks ------------------------------------------------------------------------------


def care(name: str, due_ms: int, item: int = 1, patient: str = "ab") -> Event:
    attributes = {"due_ms": str(due_ms), "item": str(item), "patient": patient}
    return Event(f"care.{name}", tuple(EventAttribute(k, v) for k, v in attributes.items()))


def test_reminders_that_end_well_raise_no_problem() -> None:
    ledger = ReminderLedger()
    ledger.observe([care("dose_due", 1_000), care("measurement_due", 2_000, item=2)])
    ledger.observe([care("acknowledged", 1_000), care("escalated", 2_000, item=2)])
    ledger.observe([care("dose_due", 9_000)])  # still within its grace
    assert ledger.check(block_time_ms=9_500, grace_ms=1_000) == []
    assert dict(ledger.counts) == {"due": 3, "done": 1, "missed": 1}


def test_an_escalation_may_run_late_by_the_slack() -> None:
    ledger = ReminderLedger()
    ledger.observe([care("dose_due", 1_000)])
    assert ledger.check(block_time_ms=2_500, grace_ms=1_000, slack_ms=1_000) == []
    assert len(ledger.check(block_time_ms=3_000, grace_ms=1_000, slack_ms=1_000)) == 1


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([care("escalated", 1_000)], "never came due"),
        ([care("dose_due", 1_000), care("acknowledged", 1_000), care("escalated", 1_000)],
         "already done"),
        ([care("dose_due", 1_000), care("dose_due", 1_000), care("acknowledged", 1_000)],
         "came due twice"),
        ([care("dose_due", 1_000)], "neither acknowledged nor escalated"),
    ],
)  # fmt: skip
def test_reminders_that_break_the_rules_are_problems(events: list[Event], expected: str) -> None:
    ledger = ReminderLedger()
    ledger.observe(events)
    problems = ledger.check(block_time_ms=2_000, grace_ms=1_000)
    assert len(problems) == 1 and expected in problems[0]
