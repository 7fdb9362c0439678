"""Reconnect delays: exponential up to a cap, jittered by the injected rng, reset when stable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.adapters.backoff import Backoff, BackoffPolicy
from node.testing import SeededRng


def test_base_delays_double_up_to_the_cap() -> None:
    policy = BackoffPolicy(initial_ms=100, max_ms=1000, multiplier=2, jitter_percent=0)
    assert [policy.base_delay_ms(a) for a in range(1, 7)] == [100, 200, 400, 800, 1000, 1000]
    assert policy.base_delay_ms(10**9) == 1000  # no huge powers for huge attempt numbers


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_jittered_delays_stay_within_the_jitter_band(attempt: int, seed: int) -> None:
    policy = BackoffPolicy(initial_ms=500, max_ms=30_000, jitter_percent=20)
    base = policy.base_delay_ms(attempt)
    delay = policy.delay_ms(attempt, SeededRng(seed))
    assert base - base * 20 // 100 <= delay <= base


def test_the_same_seed_gives_the_same_schedule_and_jitter_spreads_nodes() -> None:
    policy = BackoffPolicy()
    first = [Backoff(policy, SeededRng("node-a")).next_delay_ms() for _ in range(3)]
    again = [Backoff(policy, SeededRng("node-a")).next_delay_ms() for _ in range(3)]
    assert first == again
    spread = {Backoff(policy, SeededRng(f"node-{i}")).next_delay_ms() for i in range(20)}
    assert len(spread) > 1


def test_a_stable_connection_resets_the_schedule_a_brief_one_does_not() -> None:
    policy = BackoffPolicy(initial_ms=100, max_ms=10_000, jitter_percent=0, stable_after_ms=5_000)
    backoff = Backoff(policy, SeededRng(1))
    assert [backoff.next_delay_ms() for _ in range(3)] == [100, 200, 400]
    backoff.connection_ended(connected_for_ms=4_999)
    assert backoff.next_delay_ms() == 800
    backoff.connection_ended(connected_for_ms=5_000)
    assert backoff.next_delay_ms() == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_ms": 0},
        {"initial_ms": 10, "max_ms": 5},
        {"multiplier": 0},
        {"jitter_percent": 101},
        {"stable_after_ms": -1},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)
