"""Many cores, random delivery orders, equivocating validators: agreement and termination.

With at most f Byzantine validators (less than 1/3 of the power) no two honest cores decide
differently, no honest core signs two different messages for one step, only Byzantine
validators are accused, and with fair delivery every height is decided. With f+1 the same
harness finds schedules that break agreement: the check is able to fail.
"""

from __future__ import annotations

import pytest

from tests.consensus.factories import make_validators
from tests.consensus.harness import Outcome, Simulation


def byzantine_including_first_proposer(powers: list[int], count: int) -> list[int]:
    """``count`` validators, the proposer of (height 1, round 0) among them."""
    keys, validator_set = make_validators(powers)
    first = next(i for i, key in enumerate(keys) if key.public_key == validator_set.proposer(0))
    return [first, *[i for i in range(len(powers)) if i != first][: count - 1]]


def assert_safe_and_live(outcome: Outcome, heights: int) -> None:
    assert outcome.violations == []
    assert outcome.all_decided
    for height in range(1, heights + 1):
        assert len({decided[height] for decided in outcome.decisions.values()}) == 1


@pytest.mark.parametrize("n", [4, 7, 10])
@pytest.mark.parametrize("seed", range(4))
def test_f_equivocators_cannot_break_agreement_or_liveness(n: int, seed: int) -> None:
    f = (n - 1) // 3
    powers = [1] * n
    simulation = Simulation(
        powers, byzantine_including_first_proposer(powers, f), seed, heights=3,
        chaos_deliveries=40 * n,
    )  # fmt: skip
    outcome = simulation.run()
    assert_safe_and_live(outcome, heights=3)
    assert outcome.accused and outcome.accused <= outcome.byzantine_keys


@pytest.mark.parametrize("seed", range(3))
def test_weighted_validators_with_a_heavy_equivocator(seed: int) -> None:
    powers = [4, 3, 2, 1, 1, 1]  # total 12: Byzantine power 3 < 12/3
    heavy = [1]
    outcome = Simulation(powers, heavy, seed, heights=3, chaos_deliveries=200).run()
    assert_safe_and_live(outcome, heights=3)


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("seed", range(3))
def test_crashes_and_replays_keep_safety(n: int, seed: int) -> None:
    f = (n - 1) // 3
    powers = [1] * n
    simulation = Simulation(
        powers, byzantine_including_first_proposer(powers, f), seed, heights=3,
        chaos_deliveries=60 * n, crash_probability=0.05,
    )  # fmt: skip
    outcome = simulation.run()
    assert outcome.restarts > 0
    assert_safe_and_live(outcome, heights=3)


@pytest.mark.parametrize("n", [4, 7, 10])
def test_f_plus_one_equivocators_can_break_agreement(n: int) -> None:
    f = (n - 1) // 3
    powers = [1] * n
    byzantine = byzantine_including_first_proposer(powers, f + 1)
    for seed in range(100):
        # Without more than 2/3 honest power a run need not terminate: bound it.
        simulation = Simulation(powers, byzantine, seed, heights=1, max_deliveries=5_000)
        if any("agreement broken" in v for v in simulation.run().violations):
            return
    pytest.fail("the checker never caught the f+1 attack")


@pytest.mark.slow
@pytest.mark.parametrize("n", [4, 7, 10])
def test_many_schedules(n: int) -> None:
    f = (n - 1) // 3
    powers = [1] * n
    byzantine = byzantine_including_first_proposer(powers, f)
    for seed in range(100, 300):
        simulation = Simulation(
            powers, byzantine, seed, heights=5, chaos_deliveries=80 * n, crash_probability=0.02
        )
        assert_safe_and_live(simulation.run(), heights=5)
