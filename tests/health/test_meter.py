"""The glucose-meter simulator's trace model: deterministic, plausible, with its dawn rise,
meals, exercise, lows and cadences."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from statistics import fmean

import pytest

from health.contracts.common import DAY_MS
from health.glucose import check_reading, statistics
from health.meter import (
    CGM_INTERVAL_MS,
    GlucoseTrace,
    Reading,
    TraceError,
    TraceKind,
    backfill_start,
)
from health.meter.trace import CGM_RANGE_MG_DL, HOUR_MS, MINUTE_MS

START = 1_780_012_800_000  # 2026-05-29T00:00:00Z, a midnight
MONTH = 30 * DAY_MS
ROOT = Path(__file__).resolve().parents[2]


def month(seed: int, kind: str = "cgm") -> list[Reading]:
    return GlucoseTrace(seed, kind, START).until(START + MONTH)


# -- the trace ---------------------------------------------------------------------------------


def test_a_trace_is_a_function_of_its_seed_and_the_time() -> None:
    first = GlucoseTrace(7, "cgm", START).take(600)
    assert first == GlucoseTrace(7, "cgm", START).take(600)
    assert first != GlucoseTrace(8, "cgm", START).take(600)
    later = GlucoseTrace(7, "cgm", START + DAY_MS).take(10)  # started elsewhere: same values
    assert later == first[288:298]
    meter = GlucoseTrace(7, "meter", START).take(20)
    assert meter == GlucoseTrace(7, TraceKind.METER, START).take(20)


def test_a_trace_is_the_same_in_another_process() -> None:
    code = (
        "import hashlib; from health.meter import GlucoseTrace; "
        f"r = GlucoseTrace(3, 'cgm', {START}).take(300); "
        "print(hashlib.sha256(repr(r).encode()).hexdigest())"
    )
    here = hashlib.sha256(repr(GlucoseTrace(3, "cgm", START).take(300)).encode()).hexdigest()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True
        )
        assert out.stdout.decode().strip() == here


def test_readings_are_whole_and_within_the_devices_range() -> None:
    for seed in range(4):
        for kind in ("cgm", "meter"):
            for reading in month(seed, kind):
                assert isinstance(reading.mg_dl, int)
                check_reading(reading.mg_dl)  # inside health.glucose's plausible range
                if kind == "cgm":
                    assert CGM_RANGE_MG_DL[0] <= reading.mg_dl <= CGM_RANGE_MG_DL[1]


def test_a_cgm_reads_every_five_minutes_and_a_meter_four_times_a_day() -> None:
    cgm = GlucoseTrace(1, "cgm", START + 17).take(1000)
    assert cgm[0].time_ms == START + 17
    assert {b.time_ms - a.time_ms for a, b in pairwise(cgm)} == {CGM_INTERVAL_MS}
    trace = GlucoseTrace(1, "meter", START)
    meter = trace.until(START + MONTH)
    assert len(meter) == 30 * 4
    for day in range(30):
        plan = trace.day_plan(START // DAY_MS + day)
        today = [r.time_ms for r in meter if (r.time_ms - START) // DAY_MS == day]
        assert today == list(plan.meter_times_ms)
        breakfast, lunch, dinner = (meal.time_ms for meal in plan.meals[:3])
        assert today[0] < breakfast and today[1] < lunch and today[2] < dinner < today[3]
    assert [r.time_ms for r in meter] == sorted(r.time_ms for r in meter)


def test_glucose_rises_at_dawn_on_average() -> None:
    """From 03:00 to the fasting reading before breakfast (06:00 at the earliest), on the
    readings of a CGM (noise, lag and all)."""
    rises = []
    for seed in range(6):
        trace = GlucoseTrace(seed, "cgm", START)
        per_day = []
        for day in range(30):
            fasting = trace.day_plan(START // DAY_MS + day).meter_times_ms[0]
            night = START + day * DAY_MS + 3 * HOUR_MS
            per_day.append(trace.reading_at(fasting).mg_dl - trace.reading_at(night).mg_dl)
        rises.append(fmean(per_day))
    assert min(rises) > 5, rises
    assert fmean(rises) > 12, rises


def test_meals_raise_glucose_and_insulin_brings_it_back() -> None:
    for seed in range(4):
        trace = GlucoseTrace(seed, "cgm", START)
        rises, later = [], []
        for day in range(30):
            for meal in trace.day_plan(START // DAY_MS + day).meals[:3]:
                at_meal = trace.glucose_at(meal.time_ms)
                peak = max(trace.glucose_at(meal.time_ms + m * MINUTE_MS) for m in (60, 90, 120))
                rises.append(peak - at_meal)
                later.append(trace.glucose_at(meal.time_ms + 5 * HOUR_MS) - at_meal)
        assert fmean(rises) > 30, seed  # the peak, 1-2 h after eating
        assert fmean(later) < fmean(rises) / 2, seed  # mostly gone 5 h later
        assert sum(rise > 0 for rise in rises) > 0.8 * len(rises)


def test_a_simulated_month_has_some_lows_and_a_plausible_time_in_range() -> None:
    very_low = 0
    for seed in range(6):
        stats = statistics([r.mg_dl for r in month(seed)])
        assert 40 <= stats.in_range_pct <= 90, (seed, stats)
        assert 0 < stats.below_70_pct < 5, (seed, stats)  # some lows, not many
        assert stats.very_high_pct < 15, (seed, stats)
        assert 10 < stats.cv_pct < 45, (seed, stats)
        very_low += stats.very_low_pct > 0
        meter = statistics([r.mg_dl for r in month(seed, "meter")])
        assert 40 <= meter.in_range_pct <= 95, (seed, meter)
    assert very_low >= 3  # level-2 lows (< 54) happen too


def test_exercise_lowers_glucose_for_a_few_hours() -> None:
    drops, after = [], []
    for seed in range(4):
        trace = GlucoseTrace(seed, "cgm", START)
        still = GlucoseTrace(
            seed, "cgm", START, profile=replace(trace.profile, exercise_day_share=0.0)
        )  # the same days, without the exercise
        for day in range(30):
            plan = trace.day_plan(START // DAY_MS + day)
            if plan.exercise is None or plan.hypo is not None:
                continue
            deepest = plan.exercise.time_ms + 50 * MINUTE_MS
            drops.append(still.glucose_at(deepest) - trace.glucose_at(deepest))
            later = plan.exercise.time_ms + 5 * HOUR_MS
            after.append(still.glucose_at(later) - trace.glucose_at(later))
    assert len(drops) > 10  # several exercise days a month
    assert 30 <= fmean(drops) <= 70
    assert fmean(after) < 0.1 * fmean(drops)


def test_the_zone_moves_meals_to_local_time() -> None:
    utc = GlucoseTrace(2, "meter", START)
    east = GlucoseTrace(2, "meter", START, tz_offset_minutes=120)
    day = START // DAY_MS
    shifted = [t + 2 * HOUR_MS for t in east.day_plan(day).meter_times_ms]
    assert shifted == list(utc.day_plan(day).meter_times_ms)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TraceError, match="cgm or meter"):
        GlucoseTrace(1, "pump", START)
    with pytest.raises(TraceError, match="seed"):
        GlucoseTrace(True, "cgm", START)
    with pytest.raises(TraceError, match="start"):
        GlucoseTrace(1, "cgm", -1)
    with pytest.raises(TraceError, match="zone"):
        GlucoseTrace(1, "cgm", START, tz_offset_minutes=900)
    with pytest.raises(TraceError):
        GlucoseTrace(1, "cgm", START).take(-1)
    with pytest.raises(TraceError):
        backfill_start(1, "cgm", START, 0)


def test_a_backfill_ends_with_the_last_reading_before_the_end() -> None:
    end = START + 3 * DAY_MS + 1234
    for kind in ("cgm", "meter"):
        for count in (1, 5, 13):
            start = backfill_start(4, kind, end, count)
            readings = GlucoseTrace(4, kind, start).take(count + 1)
            assert readings[0].time_ms == start
            assert readings[count - 1].time_ms <= end < readings[count].time_ms
    assert backfill_start(4, "cgm", end, 3) == end - 2 * CGM_INTERVAL_MS
