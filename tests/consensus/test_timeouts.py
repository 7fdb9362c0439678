"""Timeout configuration: defaults, linear growth with the round, validation."""

from __future__ import annotations

import pytest

from consensus import InvalidConfigError, TimeoutConfig, TimeoutKind


def test_defaults_grow_linearly_with_the_round() -> None:
    config = TimeoutConfig()
    assert [config.duration_ms(TimeoutKind.PROPOSE, r) for r in range(3)] == [3000, 3500, 4000]
    assert config.duration_ms(TimeoutKind.PREVOTE, 4) == 1000 + 4 * 500
    assert config.duration_ms(TimeoutKind.PRECOMMIT, 0) == 1000


def test_each_kind_has_its_own_base_and_delta() -> None:
    config = TimeoutConfig(
        timeout_propose_ms=10,
        timeout_propose_delta_ms=1,
        timeout_prevote_ms=20,
        timeout_prevote_delta_ms=2,
        timeout_precommit_ms=30,
        timeout_precommit_delta_ms=0,
    )
    assert [config.duration_ms(kind, 5) for kind in TimeoutKind] == [15, 30, 30]
    with pytest.raises(ValueError):
        config.duration_ms(TimeoutKind.PROPOSE, -1)


@pytest.mark.parametrize(
    "fields",
    [
        {"timeout_propose_ms": 0},
        {"timeout_prevote_ms": -5},
        {"timeout_precommit_ms": 3_600_001},
        {"timeout_propose_delta_ms": -1},
        {"timeout_prevote_ms": 1.5},
        {"timeout_precommit_delta_ms": True},
        {"timeout_propose_ms": "3000"},
    ],
)
def test_out_of_range_values_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidConfigError, match=next(iter(fields))):
        TimeoutConfig(**fields)  # type: ignore[arg-type]


def test_zero_deltas_are_allowed() -> None:
    config = TimeoutConfig(timeout_prevote_delta_ms=0)
    assert config.duration_ms(TimeoutKind.PREVOTE, 100) == config.timeout_prevote_ms
