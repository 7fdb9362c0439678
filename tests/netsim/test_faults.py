"""Fault plans: drawn from the seed, inside their window, every episode ended, only the
chosen kinds, only honest nodes; swarm options drawn from the seed too."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.errors import ConfigError
from netsim.faults import (
    ActionKind,
    FaultKind,
    FaultOptions,
    FaultPlan,
    parse_kinds,
    plan_faults,
    swarm_options,
)

STARTS = {ActionKind.CRASH: ActionKind.RESTART, ActionKind.PAUSE: ActionKind.RESUME}


def plan(
    kinds: tuple[FaultKind, ...], seed: int, honest: tuple[bool, ...] = (True,) * 8
) -> FaultPlan:
    options = FaultOptions(
        kinds=kinds, window_start_ms=1_000, window_end_ms=20_000, mean_gap_ms=1_500
    )
    return plan_faults(
        options, validators=5, nodes=len(honest), honest=honest, rng=random.Random(seed)
    )


@given(
    kinds=st.lists(st.sampled_from(list(FaultKind)), unique=True).map(tuple),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=60, deadline=None)
def test_plans_stay_in_their_window_and_end_every_episode(
    kinds: tuple[FaultKind, ...], seed: int
) -> None:
    drawn = plan(kinds, seed)
    assert drawn == plan(kinds, seed)  # a pure function of options and seed
    times = [action.at_ms for action in drawn.actions]
    assert times == sorted(times)
    assert all(1_000 <= t <= 20_000 for t in times)
    assert drawn.heal_ms == (times[-1] if times else 1_000)
    open_nodes: Counter[tuple[ActionKind, int]] = Counter()
    partitioned = loss = 0
    for action in drawn.actions:
        if action.kind in STARTS:
            open_nodes[(action.kind, action.nodes[0])] += 1
        elif action.kind in STARTS.values():
            start = next(k for k, v in STARTS.items() if v is action.kind)
            open_nodes[(start, action.nodes[0])] -= 1
        elif action.kind is ActionKind.PARTITION:
            partitioned += 1
        elif action.kind is ActionKind.HEAL:
            partitioned -= 1
        elif action.kind is ActionKind.SET_LOSS_PPM:
            loss = action.value
    assert all(count == 0 for count in open_nodes.values())
    assert partitioned == 0 and loss == 0


def test_only_the_chosen_kinds_are_drawn() -> None:
    drawn = plan((FaultKind.PARTITION,), seed=3)
    assert {a.kind for a in drawn.actions} == {ActionKind.PARTITION, ActionKind.HEAL}
    assert plan((), seed=3).actions == ()


def test_crashes_and_pauses_strike_honest_nodes_only() -> None:
    honest = (True, False, True, False, True, True, True, True)
    for seed in range(20):
        drawn = plan((FaultKind.CRASH, FaultKind.PAUSE), seed, honest)
        assert all(honest[node] for action in drawn.actions for node in action.nodes)


def test_partitions_split_validators_into_disjoint_groups() -> None:
    for seed in range(20):
        for action in plan((FaultKind.PARTITION,), seed).actions:
            if action.kind is ActionKind.PARTITION:
                members = [node for group in action.groups for node in group]
                assert len(members) == len(set(members)) == 8
                assert sum(1 for group in action.groups if any(n < 5 for n in group)) >= 2


def test_clocks_are_ntp_grade_unless_the_drift_fault_is_on() -> None:
    calm = plan((), seed=1).clocks
    assert all(abs(c.offset_ms) <= 20 and abs(c.drift_ppm) <= 50 for c in calm)
    wild = plan((FaultKind.DRIFT,), seed=1).clocks
    assert max(abs(c.offset_ms) for c in wild) > 20


def test_fault_names_parse_and_bad_ones_are_explained() -> None:
    assert parse_kinds("partition, crash,partition") == (FaultKind.PARTITION, FaultKind.CRASH)
    with pytest.raises(ConfigError, match="choose from"):
        parse_kinds("partition,meteor")
    with pytest.raises(ConfigError):
        FaultOptions(window_start_ms=10, window_end_ms=5)


def test_swarm_options_are_drawn_from_the_seed() -> None:
    drawn = [swarm_options(random.Random(seed)) for seed in range(40)]
    assert swarm_options(random.Random(7)) == drawn[7]
    assert len({options.kinds for options in drawn}) > 10  # diverse configurations
    assert all(o.window_end_ms > o.window_start_ms for o in drawn)


def test_an_action_describes_itself_and_digests_deterministically() -> None:
    action = plan((FaultKind.PARTITION,), seed=2).actions[0]
    assert action.describe().startswith(f"t={action.at_ms / 1000:.3f}s PARTITION")
    assert action.digest() == plan((FaultKind.PARTITION,), seed=2).actions[0].digest()
    assert len(action.digest()) == 32
