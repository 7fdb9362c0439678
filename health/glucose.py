"""Glucose alerts and statistics, computed where readings can be decrypted.

Thresholds and goals follow the international consensus on time in range (Battelino et al.,
"Clinical Targets for Continuous Glucose Monitoring Data Interpretation", Diabetes Care
2019;42:1593–1603), in mg/dL:

| range | readings | goal |
|---|---|---|
| very low (level 2 hypoglycaemia) | < 54 | < 1 % |
| low (level 1) | 54–69 | (below 70 in all: < 4 %) |
| in range | 70–180 | > 70 % |
| high (level 1 hyperglycaemia) | 181–250 | (above 180 in all: < 25 %) |
| very high (level 2) | > 250 | < 5 % |

plus the mean, the glucose management indicator (GMI, % = 3.31 + 0.02392 × mean mg/dL;
Bergenstal et al., Diabetes Care 2018;41:2275–2280) and the coefficient of variation (goal
≤ 36 %). Shares are of readings: CGM readings come at a fixed interval, so a share of
readings is a share of time. Pure functions; nothing here reaches the chain except, if the
patient allows, the level of an alert (``care.alert``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from health.contracts.care import AlertLevel

__all__ = [
    "AlertLevel",
    "GlucoseError",
    "GlucoseStats",
    "alert_for",
    "check_reading",
    "statistics",
]

VERY_LOW_BELOW_MG_DL: Final = 54
LOW_BELOW_MG_DL: Final = 70
HIGH_ABOVE_MG_DL: Final = 180
VERY_HIGH_ABOVE_MG_DL: Final = 250
MIN_PLAUSIBLE_MG_DL: Final = 10
MAX_PLAUSIBLE_MG_DL: Final = 1000
"""Readings outside this are sensor or entry errors, refused rather than averaged."""
GOAL_IN_RANGE_MIN_PCT: Final = 70.0
GOAL_BELOW_70_MAX_PCT: Final = 4.0
GOAL_BELOW_54_MAX_PCT: Final = 1.0
GOAL_ABOVE_180_MAX_PCT: Final = 25.0
GOAL_ABOVE_250_MAX_PCT: Final = 5.0
GOAL_CV_MAX_PCT: Final = 36.0


class GlucoseError(ValueError):
    """A reading that cannot be a glucose value in mg/dL."""


def check_reading(mg_dl: float) -> float:
    """``mg_dl`` if plausible; ``GlucoseError`` otherwise (NaN, infinite, out of range)."""
    if not math.isfinite(mg_dl) or not MIN_PLAUSIBLE_MG_DL <= mg_dl <= MAX_PLAUSIBLE_MG_DL:
        raise GlucoseError(
            f"a glucose reading is {MIN_PLAUSIBLE_MG_DL}..{MAX_PLAUSIBLE_MG_DL} mg/dL, got {mg_dl}"
        )
    return mg_dl


def alert_for(mg_dl: float) -> AlertLevel | None:
    """The alert one reading raises, or None when it is in 70–180."""
    check_reading(mg_dl)
    if mg_dl < VERY_LOW_BELOW_MG_DL:
        return AlertLevel.HYPO_2
    if mg_dl < LOW_BELOW_MG_DL:
        return AlertLevel.HYPO_1
    if mg_dl > VERY_HIGH_ABOVE_MG_DL:
        return AlertLevel.HYPER_2
    if mg_dl > HIGH_ABOVE_MG_DL:
        return AlertLevel.HYPER_1
    return None


@dataclass(frozen=True, slots=True)
class GlucoseStats:
    """The consensus metrics of a set of readings (percentages of readings)."""

    readings: int
    mean_mg_dl: float
    gmi_pct: float
    cv_pct: float
    very_low_pct: float
    low_pct: float
    in_range_pct: float
    high_pct: float
    very_high_pct: float

    @property
    def below_70_pct(self) -> float:
        """Time below range (both levels)."""
        return self.very_low_pct + self.low_pct

    @property
    def above_180_pct(self) -> float:
        """Time above range (both levels)."""
        return self.high_pct + self.very_high_pct

    def goals_met(self) -> dict[str, bool]:
        """Each consensus goal, met or not."""
        return {
            "in_range": self.in_range_pct > GOAL_IN_RANGE_MIN_PCT,
            "below_70": self.below_70_pct < GOAL_BELOW_70_MAX_PCT,
            "below_54": self.very_low_pct < GOAL_BELOW_54_MAX_PCT,
            "above_180": self.above_180_pct < GOAL_ABOVE_180_MAX_PCT,
            "above_250": self.very_high_pct < GOAL_ABOVE_250_MAX_PCT,
            "cv": self.cv_pct <= GOAL_CV_MAX_PCT,
        }


def statistics(readings_mg_dl: Sequence[float]) -> GlucoseStats:
    """The metrics of ``readings_mg_dl`` (at least one; each checked)."""
    if not readings_mg_dl:
        raise GlucoseError("statistics need at least one reading")
    values = [check_reading(value) for value in readings_mg_dl]
    count = len(values)
    mean = math.fsum(values) / count
    variance = math.fsum((value - mean) ** 2 for value in values) / count
    bands = [0, 0, 0, 0, 0]
    for value in values:
        bands[_band(value)] += 1
    share = [100.0 * band / count for band in bands]
    return GlucoseStats(
        readings=count,
        mean_mg_dl=mean,
        gmi_pct=3.31 + 0.02392 * mean,
        cv_pct=100.0 * math.sqrt(variance) / mean,
        very_low_pct=share[0],
        low_pct=share[1],
        in_range_pct=share[2],
        high_pct=share[3],
        very_high_pct=share[4],
    )


def _band(mg_dl: float) -> int:
    if mg_dl < VERY_LOW_BELOW_MG_DL:
        return 0
    if mg_dl < LOW_BELOW_MG_DL:
        return 1
    if mg_dl <= HIGH_ABOVE_MG_DL:
        return 2
    if mg_dl <= VERY_HIGH_ABOVE_MG_DL:
        return 3
    return 4
