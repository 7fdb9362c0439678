"""The real chain core (``NodeCore``) in simulated networks: safety with f Byzantine
validators, a violation caught with f+1, replay across processes, non-validators following,
and the regression list of seeds that once failed.

``regressions.json`` lists runs (``python -m netsim run`` options) that failed once; ``python
-m netsim sweep --record`` appends to it. An ``open`` entry is a known bug not fixed yet: its
test is a strict xfail, so fixing the bug turns it into a failure that asks to mark the entry
``fixed`` (a permanent regression test). A seed replays the same schedule only as long as the
simulator and the node code stay the same: a change that alters the schedule (the workload,
the network model, the node's timers) can make an open entry pass without a fix — sweep again
and record fresh seeds then.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from netsim.checkers import LIVENESS
from netsim.cli import parse_run_config
from netsim.config import SimConfig, parse_role_mix
from netsim.core_adapter import CoreBuilder
from netsim.faults import FaultKind, FaultOptions
from netsim.result import RunResult
from netsim.simulation import Simulation
from tests.netsim.scenarios import SAFETY_SIZES, safety_config

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = json.loads((Path(__file__).parent / "regressions.json").read_text())
DEFAULT_SEEDS = range(50)
SLOW_SEEDS = range(50, 450)


def run(config: SimConfig) -> RunResult:
    return Simulation(config, CoreBuilder()).run()


def known_open(config: SimConfig) -> bool:
    """True when this run is an open entry of the regression list (a known, reported bug)."""
    args = shlex.join(replace(config, stop_on_violation=True).argv())
    return any(e["args"] == args and e["status"] == "open" for e in REGRESSIONS)


def check_safety_run(validators: int, seed: int) -> None:
    config = safety_config(validators, seed)
    result = run(config)
    safety = [v.describe() for v in result.violations if v.checker != LIVENESS]
    assert safety == [], safety
    if not known_open(config):
        assert result.passed, [v.describe() for v in result.violations]


@pytest.mark.parametrize("seed", DEFAULT_SEEDS)
@pytest.mark.parametrize("validators", SAFETY_SIZES)
def test_safety_holds_with_f_byzantine_validators(validators: int, seed: int) -> None:
    check_safety_run(validators, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
@pytest.mark.parametrize("validators", SAFETY_SIZES)
def test_safety_holds_with_f_byzantine_validators_many_seeds(validators: int, seed: int) -> None:
    check_safety_run(validators, seed)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("validators", SAFETY_SIZES)
def test_f_plus_one_coordinated_equivocators_break_agreement_and_are_caught(
    validators: int, seed: int
) -> None:
    f = (validators - 1) // 3
    config = SimConfig(
        seed=seed,
        validators=validators,
        nodes=validators,
        byzantine=f + 1,
        byzantine_roles=parse_role_mix("equivocate+double-vote"),
        heights=6,
        topology="national",
        tx_rate=5.0,
    )
    result = run(config)
    assert not result.passed
    assert result.violations[0].checker == "agreement"
    assert result.end_reason == "violation"


def test_the_same_seed_gives_the_same_trace_in_process() -> None:
    config = replay_config()
    first, second = run(config), run(config)
    assert first.trace_hash == second.trace_hash
    assert first.heights_decided == second.heights_decided >= 4
    assert run(replace(config, seed=config.seed + 1)).trace_hash != first.trace_hash


def test_the_same_seed_gives_the_same_trace_in_processes_with_other_hash_seeds(
    tmp_path: Path,
) -> None:
    config = replay_config()
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
        assert expected in completed.stdout


def test_shared_signature_checks_change_nothing_but_the_wall_time() -> None:
    config = replay_config()
    shared = run(config)
    alone = run(replace(config, shared_verification=False))
    assert shared.trace_hash == alone.trace_hash
    assert shared.signature_checks_shared > shared.signature_checks > 0
    assert alone.signature_checks == alone.signature_checks_shared == 0


def replay_config() -> SimConfig:
    """Byzantine roles, non-validators and every fault kind: a run touching every stream."""
    return SimConfig(
        seed=11,
        validators=4,
        nodes=10,
        byzantine=1,
        heights=4,
        topology="global",
        tx_rate=10.0,
        faults=FaultOptions(kinds=tuple(FaultKind), window_start_ms=500, window_end_ms=6_000),
    )


def test_non_validators_follow_the_chain_without_seeing_votes() -> None:
    config = SimConfig(seed=3, validators=4, nodes=24, heights=5, topology="continental")
    result = run(config)
    assert result.passed, [v.describe() for v in result.violations]
    assert result.lowest_honest_height >= 5
    validator_load, _, _, _ = result.per_node(validators=True)
    other_load, _, _, _ = result.per_node(validators=False)
    assert other_load < validator_load / 5


def test_crashed_validators_restart_from_their_disk_and_catch_up() -> None:
    faults = FaultOptions(
        kinds=(FaultKind.CRASH,), window_start_ms=500, window_end_ms=10_000, mean_gap_ms=800
    )
    config = SimConfig(seed=5, validators=4, heights=8, topology="national", faults=faults)
    result = run(config)
    assert result.passed, [v.describe() for v in result.violations]
    assert sum("CRASH" in action for action in result.fault_actions) >= 2


def regression_params() -> list[object]:
    params: list[object] = []
    for index, entry in enumerate(REGRESSIONS):
        marks = []
        if entry["status"] == "open":
            reason = f"open: {entry['found']} (see its note in regressions.json)"
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(entry["args"], marks=marks, id=f"regression-{index}"))
    return params


@pytest.mark.parametrize("args", regression_params())
def test_runs_that_once_failed_pass(args: str) -> None:
    result = run(parse_run_config(shlex.split(args)))
    assert result.passed, [v.describe() for v in result.violations]
