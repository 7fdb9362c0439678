"""Glucose alerts and time-in-range statistics (2019 international consensus)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.glucose import AlertLevel, GlucoseError, alert_for, check_reading, statistics


@pytest.mark.parametrize(
    ("mg_dl", "level"),
    [
        (53.9, AlertLevel.HYPO_2),
        (54, AlertLevel.HYPO_1),
        (69, AlertLevel.HYPO_1),
        (70, None),
        (180, None),
        (181, AlertLevel.HYPER_1),
        (250, AlertLevel.HYPER_1),
        (251, AlertLevel.HYPER_2),
    ],
)
def test_alert_thresholds(mg_dl: float, level: AlertLevel | None) -> None:
    assert alert_for(mg_dl) is level


def test_a_known_day() -> None:
    # 100 readings: 1 very low, 3 low, 70 in range, 21 high, 5 very high
    readings = [50.0] + [60.0] * 3 + [120.0] * 70 + [200.0] * 21 + [300.0] * 5
    stats = statistics(readings)
    assert (stats.very_low_pct, stats.low_pct, stats.in_range_pct) == (1.0, 3.0, 70.0)
    assert (stats.high_pct, stats.very_high_pct) == (21.0, 5.0)
    assert stats.below_70_pct == 4.0 and stats.above_180_pct == 26.0
    mean = sum(readings) / 100
    assert math.isclose(stats.mean_mg_dl, mean)
    assert math.isclose(stats.gmi_pct, 3.31 + 0.02392 * mean)
    goals = stats.goals_met()
    # goals are strict: exactly 70 % in range and exactly 4 % below 70 do not meet them
    assert goals == {
        "in_range": False,
        "below_70": False,
        "below_54": False,
        "above_180": False,
        "above_250": False,
        "cv": stats.cv_pct <= 36.0,
    }
    assert 30 < stats.cv_pct < 45


def test_a_steady_patient_meets_every_goal() -> None:
    stats = statistics([110.0, 120.0, 130.0, 125.0])
    assert all(stats.goals_met().values())
    assert stats.cv_pct < 10


@given(st.lists(st.floats(min_value=10, max_value=1000), min_size=1, max_size=300))
def test_bands_partition_the_readings(readings: list[float]) -> None:
    stats = statistics(readings)
    total = (
        stats.very_low_pct
        + stats.low_pct
        + stats.in_range_pct
        + stats.high_pct
        + stats.very_high_pct
    )
    assert math.isclose(total, 100.0)
    assert min(readings) - 1e-9 <= stats.mean_mg_dl <= max(readings) + 1e-9


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -5.0, 5.0, 1500.0])
def test_implausible_readings_are_refused(bad: float) -> None:
    with pytest.raises(GlucoseError):
        check_reading(bad)
    with pytest.raises(GlucoseError):
        statistics([100.0, bad])


def test_no_readings_no_statistics() -> None:
    with pytest.raises(GlucoseError, match="at least one"):
        statistics([])
