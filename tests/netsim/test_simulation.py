"""Whole runs with the toy node: the end conditions, faults applied and healed, the checkers
wired to real runs (each can fail), workload statistics, and replay."""

from __future__ import annotations

from dataclasses import replace

import pytest

from netsim.checkers import AGREEMENT, DOUBLE_SIGN, LIVENESS, NODE_ERROR, STATE_ROOT
from netsim.config import SimConfig
from netsim.faults import FaultKind, FaultOptions
from netsim.simulation import Progress, Simulation
from tests.netsim.toy import ToyBuilder, ToyFaults

ALL_BUT_DRIFT = tuple(kind for kind in FaultKind if kind is not FaultKind.DRIFT)


def config(**changes: object) -> SimConfig:
    base = SimConfig(
        seed=1, node="toy", validators=4, nodes=6, heights=8, topology="national", tx_rate=20.0
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_clean_run_reaches_the_target_and_commits_transactions() -> None:
    result = Simulation(config(), ToyBuilder()).run()
    assert result.passed, result.violations
    assert result.end_reason == "target reached"
    assert result.lowest_honest_height >= 8
    assert result.txs_committed > 0 and result.commit_latency_p50_ms is not None
    assert len(result.heights) == result.heights_decided
    assert result.messages_delivered > 0 and result.events > result.messages_delivered


def test_the_same_seed_replays_the_same_trace_and_another_seed_does_not() -> None:
    faulty = config(faults=FaultOptions(kinds=ALL_BUT_DRIFT, window_end_ms=8_000))
    first = Simulation(faulty, ToyBuilder()).run()
    again = Simulation(faulty, ToyBuilder()).run()
    other = Simulation(replace(faulty, seed=2), ToyBuilder()).run()
    assert first.trace_hash == again.trace_hash
    assert first.fault_actions == again.fault_actions and first.fault_actions
    assert other.trace_hash != first.trace_hash


def test_faults_strike_and_heal_and_the_run_waits_for_healing() -> None:
    faults = FaultOptions(kinds=(FaultKind.CRASH, FaultKind.PARTITION), window_end_ms=12_000)
    result = Simulation(config(faults=faults, heights=3), ToyBuilder(tick_ms=200)).run()
    assert result.passed, result.violations
    assert result.fault_actions
    assert result.sim_time_s >= max(result.fault_times_s)
    assert result.dropped["partition"] + result.dropped["node_down"] > 0


@pytest.mark.parametrize(
    ("faults", "checker"),
    [
        (ToyFaults(fork=2), AGREEMENT),
        (ToyFaults(bad_root=3), STATE_ROOT),
        (ToyFaults(explode=1), NODE_ERROR),
        (ToyFaults(double_vote=0), DOUBLE_SIGN),
    ],
)
def test_every_checker_fails_a_run_with_its_bug(faults: ToyFaults, checker: str) -> None:
    result = Simulation(config(), ToyBuilder(faults=faults)).run()
    assert not result.passed
    assert result.violations[0].checker == checker
    assert result.end_reason == "violation"
    assert result.trace_tail  # the events that led to it


def test_keep_going_records_every_violation_and_runs_to_the_end() -> None:
    bugged = config(stop_on_violation=False)
    result = Simulation(bugged, ToyBuilder(faults=ToyFaults(fork=2))).run()
    assert result.end_reason == "target reached"
    assert result.violation_count >= 1


def test_heights_too_far_apart_fail_liveness_during_the_run() -> None:
    slow = config(liveness_bound_ms=5_000)
    result = Simulation(slow, ToyBuilder(tick_ms=10_000)).run()
    assert [v.checker for v in result.violations] == [LIVENESS]
    assert "no new height for 8.0s" in result.violations[0].message  # healed at 2 s


def test_a_network_that_stops_deciding_fails_liveness_at_the_time_limit() -> None:
    stalled = config(max_sim_time_ms=20_000, liveness_bound_ms=5_000)
    result = Simulation(stalled, ToyBuilder(tick_ms=100_000)).run()
    assert result.end_reason == "time limit"
    assert [v.checker for v in result.violations] == [LIVENESS]
    assert "stuck at height 0" in result.violations[0].message


def test_byzantine_nodes_are_chosen_by_the_seed() -> None:
    first = Simulation(config(byzantine=1), ToyBuilder())
    assert first.byzantine == Simulation(config(byzantine=1), ToyBuilder()).byzantine
    assert first.honest.count(False) == 1
    assert any(
        Simulation(config(byzantine=1, seed=s), ToyBuilder()).byzantine != first.byzantine
        for s in range(2, 12)
    )


def test_progress_reports_come_in_virtual_time_order() -> None:
    reports: list[Progress] = []
    Simulation(config(heights=3), ToyBuilder(), on_progress=reports.append).run()
    assert reports and [r.time_us for r in reports] == sorted(r.time_us for r in reports)
    assert reports[-1].height >= 3
