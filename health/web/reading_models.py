"""The answers of the health API's glucose reads: decrypted readings, the records that
could not be read, and the statistics, targets and alerts of a window of readings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from health.web.model_types import U64_MAX, Count, Hex32, Out, Query, TimeMs

# -- readings ---------------------------------------------------------------------------------


class ReadingsQuery(Query):
    """A time window (default: the last day by the node's clock; at most 90 days) and how
    many of its newest readings to read."""

    from_ms: int | None = Field(None, ge=0, le=U64_MAX)
    to_ms: int | None = Field(None, ge=0, le=U64_MAX)
    limit: int = Field(288, ge=1, le=1_000)


class ReadingOut(Out):
    """One decrypted glucose reading."""

    record: Hex32
    time_ms: TimeMs
    mg_dl: float
    code: str


class UnreadableOut(Out):
    """A reading record that could not be read, and why (``forbidden``, ``key_pending``,
    ``undecryptable``, ``not_a_reading``...)."""

    record: Hex32
    reason: str


class ReadingsOut(Out):
    """``GET /health/patients/{id}/readings``: the oldest first; ``truncated`` when the
    window held more than ``limit`` or the time budget ran out."""

    patient: Hex32
    from_ms: TimeMs
    to_ms: TimeMs
    readings: list[ReadingOut]
    unreadable: list[UnreadableOut]
    truncated: bool


class StatsOut(Out):
    """Time in range and the consensus metrics (``health.glucose.statistics``)."""

    mean_mg_dl: float
    gmi_pct: float
    cv_pct: float
    very_low_pct: float
    low_pct: float
    in_range_pct: float
    high_pct: float
    very_high_pct: float
    below_70_pct: float
    above_180_pct: float


class AlertOut(Out):
    """A reading out of 70–180 mg/dL (``health.glucose.alert_for``)."""

    record: Hex32
    time_ms: TimeMs
    mg_dl: float
    level: Literal["hypo_1", "hypo_2", "hyper_1", "hyper_2"]


class TargetOut(Out):
    """The target band in mg/dL."""

    low_mg_dl: int
    high_mg_dl: int


class GlucoseStatsOut(Out):
    """``GET /health/patients/{id}/glucose-stats`` (``stats`` null without readings)."""

    patient: Hex32
    from_ms: TimeMs
    to_ms: TimeMs
    readings: Count
    target: TargetOut
    stats: StatsOut | None
    goals_met: dict[str, bool] | None
    alerts: list[AlertOut]
    unreadable: Count
    truncated: bool
