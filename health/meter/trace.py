"""A simulated patient's glucose, as a CGM or a meter would report it, from a seed.

``GlucoseTrace(seed, kind, start_ms)`` yields ``Reading(time_ms, mg_dl)``: a CGM every
5 minutes from ``start_ms``, a meter four times a day (fasting before breakfast, before
lunch, before dinner, at bedtime). The same seed, kind, start and zone give the same
readings in every process; the glucose at a time depends only on the seed and that time
(not on where the trace started). Nothing here reads a clock or ambient randomness: every
draw comes from a ``random.Random`` seeded with text naming the seed and what is drawn.

The model (blood glucose in mg/dL, a sum of effects, local clock times):

- **baseline**: the patient's fasting level held by basal insulin, with a day-to-day
  offset (the basal dose is never quite right), interpolated smoothly between days;
- **basal waning**: the long-acting insulin injected at 22:00 covers less in the three
  hours before the next injection (a rise of up to ``basal_wane_mg_dl``);
- **dawn rise**: counter-regulatory hormones raise glucose between 04:00 and 08:00; the
  rise fades by 11:00;
- **meals**: breakfast, lunch and dinner (and on some days an unannounced snack) absorb
  their carbohydrate over ~2 h (gamma-2 curve, time constant 40 min); a rapid-acting bolus
  covers a share of it (``bolus cover`` near 1, sometimes late or missed) and acts over
  ~4 h (time constant 60 min); what the bolus did not cover (or over-covered) is corrected
  3 h after the meal. The net effect rises for ~1.5 h and falls back over the next 2–3 h;
- **exercise**: on some days, an afternoon session lowers glucose by 30–70 mg/dL, deepest
  ~50 min after it starts and recovered after ~3 h;
- **hypoglycaemia**: on some days the glucose falls to a drawn nadir (42–66 mg/dL: level 1
  or level 2) at night or before a meal, holds ~15 minutes and recovers as the patient
  takes fast sugar.

A CGM reports interstitial glucose: the blood glucose 10 minutes earlier (``CGM_LAG_MS``),
times a per-sensor calibration bias (each sensor lasts 10 days), plus noise, clamped to
40..400 mg/dL (what sensors show; "LO"/"HI" beyond). A meter reads capillary blood now,
with its own noise, clamped to 20..600 mg/dL. Both ranges lie inside the plausible range of
``health.glucose.check_reading``; values are whole mg/dL.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from typing import Final, NamedTuple

from health.contracts.common import DAY_MS
from health.glucose import MAX_PLAUSIBLE_MG_DL, MIN_PLAUSIBLE_MG_DL

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
CGM_INTERVAL_MS: Final = 5 * MINUTE_MS
CGM_LAG_MS: Final = 10 * MINUTE_MS
"""Interstitial glucose trails blood glucose by about this much."""
SENSOR_LIFE_MS: Final = 10 * DAY_MS
"""A CGM sensor's life: each one has its own calibration bias."""
CGM_RANGE_MG_DL: Final = (40, 400)
METER_RANGE_MG_DL: Final = (20, 600)
assert min(*CGM_RANGE_MG_DL, *METER_RANGE_MG_DL) >= MIN_PLAUSIBLE_MG_DL
assert max(*CGM_RANGE_MG_DL, *METER_RANGE_MG_DL) <= MAX_PLAUSIBLE_MG_DL
METER_READINGS_PER_DAY: Final = 4
MODEL_FLOOR_MG_DL: Final = 30.0
"""The model's blood glucose never goes below this (no patient of this model is that low)."""
MAX_TZ_OFFSET_MINUTES: Final = 14 * 60
MAX_TAKE: Final = 1_000_000
"""Readings one ``take`` or ``until`` call returns at most (a CGM's 9.5 years)."""
_CACHED_DAYS: Final = 8

CARB_TIME_CONSTANT_MIN: Final = 40.0
INSULIN_TIME_CONSTANT_MIN: Final = 60.0
EXERCISE_TIME_CONSTANT_MIN: Final = 50.0
CORRECTION_DELAY_MIN: Final = 180.0
BASAL_INJECTION_MINUTE: Final = 22 * 60


class TraceKind(StrEnum):
    """What reports the readings."""

    CGM = "cgm"
    METER = "meter"


DEVICE_KINDS: Final = {TraceKind.CGM: "cgm", TraceKind.METER: "glucose_meter"}
"""The identity module's (and ``health.fhir``'s) device kind of each trace kind."""


class TraceError(ValueError):
    """A trace asked for with an impossible argument (the message says which)."""


class Reading(NamedTuple):
    """One reading: when (epoch ms) and how much (whole mg/dL)."""

    time_ms: int
    mg_dl: int


@dataclass(frozen=True, slots=True)
class Profile:
    """The simulated patient (drawn from the seed by ``profile_for``)."""

    baseline_mg_dl: float
    """Fasting glucose basal insulin holds on an average day."""
    carb_sensitivity: float
    """mg/dL one gram of carbohydrate raises glucose when no insulin covers it."""
    dawn_rise_mg_dl: float
    basal_wane_mg_dl: float
    bolus_spread: float
    """Standard deviation of a bolus's cover of its meal (1.0 covers it exactly)."""
    exercise_day_share: float
    hypo_day_share: float
    snack_day_share: float


@dataclass(frozen=True, slots=True)
class Meal:
    """Carbohydrate eaten at ``time_ms`` and the bolus that covers ``cover`` of it."""

    time_ms: int
    carbs_g: float
    bolus_ms: int
    cover: float


@dataclass(frozen=True, slots=True)
class Dip:
    """A drop of glucose starting at ``time_ms``: exercise (by ``depth_mg_dl`` at its
    deepest) or a hypoglycaemia (down to ``nadir_mg_dl``)."""

    time_ms: int
    depth_mg_dl: float = 0.0
    nadir_mg_dl: float = 0.0


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What the patient does on local day ``day`` (days since 1970-01-01, local time)."""

    day: int
    offset_mg_dl: float
    dawn_mg_dl: float
    meals: tuple[Meal, ...]
    exercise: Dip | None
    hypo: Dip | None
    meter_times_ms: tuple[int, ...]


def profile_for(seed: int) -> Profile:
    """The patient of ``seed``: an adult with type 1 diabetes on basal-bolus insulin,
    fairly well controlled (most seeds spend 60–85 % of the time in 70–180 mg/dL)."""
    draw = random.Random(f"bighealth-meter/{seed}/profile")
    return Profile(
        baseline_mg_dl=draw.uniform(105.0, 140.0),
        carb_sensitivity=draw.uniform(3.5, 5.5),
        dawn_rise_mg_dl=draw.uniform(20.0, 45.0),
        basal_wane_mg_dl=draw.uniform(5.0, 20.0),
        bolus_spread=draw.uniform(0.1, 0.22),
        exercise_day_share=draw.uniform(0.2, 0.45),
        hypo_day_share=draw.uniform(0.1, 0.2),
        snack_day_share=draw.uniform(0.15, 0.35),
    )


def _gamma2(tau_min: float, time_constant_min: float) -> float:
    """Share absorbed ``tau_min`` after the start of a gamma-2 curve (0 before it)."""
    if tau_min <= 0:
        return 0.0
    x = tau_min / time_constant_min
    return 1.0 - (1.0 + x) * math.exp(-x)


def _smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, a smooth S between."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    return x * x * (3.0 - 2.0 * x)


def _ramp(minute: float, up_from: float, up_to: float, down_to: float) -> float:
    """0 before ``up_from``, rising to 1 at ``up_to``, back to 0 at ``down_to``."""
    if minute < up_to:
        return _smoothstep((minute - up_from) / (up_to - up_from))
    return 1.0 - _smoothstep((minute - up_to) / (down_to - up_to))


def _hypo_shape(tau_min: float) -> float:
    """A hypoglycaemia's share of its depth ``tau_min`` after it starts: a 45-minute fall,
    a 15-minute nadir, a 30-minute recovery once fast sugar is taken."""
    if tau_min <= 0 or tau_min >= 90:
        return 0.0
    if tau_min < 45:
        return _smoothstep(tau_min / 45)
    if tau_min <= 60:
        return 1.0
    return 1.0 - _smoothstep((tau_min - 60) / 30)


HYPO_NADIR_AFTER_MIN: Final = 52.5
"""Minutes from a hypoglycaemia's start to the middle of its nadir."""
LATEST_TIME_MS: Final = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: FHIR times end there."""


class GlucoseTrace:
    """The readings of one simulated patient's device (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        kind: TraceKind | str,
        start_ms: int,
        *,
        tz_offset_minutes: int = 0,
        profile: Profile | None = None,
    ) -> None:
        """``seed``: the patient; ``kind``: ``cgm`` or ``meter``; ``start_ms``: the first
        reading's earliest time (epoch ms, ≥ 0); ``tz_offset_minutes``: the patient's zone
        (local = UTC + offset, -840..840) for meal times; ``profile``: overrides the
        seed's patient. ``TraceError`` for anything else."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TraceError(f"a seed is an integer, got {seed!r}")
        if kind not in TraceKind.__members__.values():
            raise TraceError(f"a trace kind is cgm or meter, got {kind!r}")
        if isinstance(start_ms, bool) or not isinstance(start_ms, int):
            raise TraceError(f"a start time is integer epoch milliseconds, got {start_ms!r}")
        if not 0 <= start_ms <= LATEST_TIME_MS:
            raise TraceError(f"a start time is 0..{LATEST_TIME_MS} epoch ms, got {start_ms}")
        if isinstance(tz_offset_minutes, bool) or not isinstance(tz_offset_minutes, int):
            raise TraceError(f"a zone offset is whole minutes, got {tz_offset_minutes!r}")
        if not -MAX_TZ_OFFSET_MINUTES <= tz_offset_minutes <= MAX_TZ_OFFSET_MINUTES:
            raise TraceError(f"a zone offset is -840..840 minutes, got {tz_offset_minutes}")
        self.seed = seed
        self.kind = TraceKind(kind)
        self.start_ms = start_ms
        self.tz_offset_minutes = tz_offset_minutes
        self.profile = profile if profile is not None else profile_for(seed)
        self._tz_ms = tz_offset_minutes * MINUTE_MS
        self._plans: dict[int, DayPlan] = {}

    # -- readings ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Reading]:
        """Every reading from ``start_ms`` on, in time order (endless until year 9999)."""
        for time_ms in self.times():
            yield self.reading_at(time_ms)

    def times(self) -> Iterator[int]:
        """The times of the readings, without computing their values."""
        if self.kind is TraceKind.CGM:
            yield from range(self.start_ms, LATEST_TIME_MS + 1, CGM_INTERVAL_MS)
            return
        day = (self.start_ms + self._tz_ms) // DAY_MS
        while True:
            for time_ms in self.day_plan(day).meter_times_ms:
                if self.start_ms <= time_ms <= LATEST_TIME_MS:
                    yield time_ms
                elif time_ms > LATEST_TIME_MS:
                    return
            day += 1

    def take(self, count: int) -> list[Reading]:
        """The first ``count`` readings (0..``MAX_TAKE``)."""
        if not 0 <= count <= MAX_TAKE:
            raise TraceError(f"a trace gives 0..{MAX_TAKE} readings at once, got {count}")
        return list(islice(self, count))

    def until(self, end_ms: int) -> list[Reading]:
        """The readings before ``end_ms`` (at most ``MAX_TAKE``: ``TraceError`` beyond)."""
        readings: list[Reading] = []
        for time_ms in self.times():
            if time_ms >= end_ms:
                break
            if len(readings) == MAX_TAKE:
                raise TraceError(f"more than {MAX_TAKE} readings before {end_ms}")
            readings.append(self.reading_at(time_ms))
        return readings

    def reading_at(self, time_ms: int) -> Reading:
        """What the device reports at ``time_ms``: the CGM the blood glucose of
        ``CGM_LAG_MS`` earlier times its sensor's bias, the meter the glucose now; plus
        noise; clamped to the device's range; whole mg/dL."""
        noise = random.Random(f"bighealth-meter/{self.seed}/noise/{self.kind}/{time_ms}")
        if self.kind is TraceKind.CGM:
            sensor_index = time_ms // SENSOR_LIFE_MS
            sensor = random.Random(f"bighealth-meter/{self.seed}/sensor/{sensor_index}")
            bias = min(0.1, max(-0.1, sensor.gauss(0.0, 0.04)))
            truth = self.glucose_at(time_ms - CGM_LAG_MS) * (1.0 + bias)
            low, high = CGM_RANGE_MG_DL
            value = truth + noise.gauss(0.0, 2.5 + 0.025 * truth)
        else:
            truth = self.glucose_at(time_ms)
            low, high = METER_RANGE_MG_DL
            value = truth + noise.gauss(0.0, 3.0 + 0.04 * truth)
        return Reading(time_ms, min(high, max(low, round(value))))

    # -- the model --------------------------------------------------------------------------

    def glucose_at(self, time_ms: int) -> float:
        """The model's blood glucose (mg/dL, not rounded, at least ``MODEL_FLOOR_MG_DL``)
        at ``time_ms``."""
        local_ms = time_ms + self._tz_ms
        plan = self.day_plan(local_ms // DAY_MS)
        value = self._without_hypo(local_ms)
        if plan.hypo is not None:
            value -= self._hypo_depth(plan.hypo) * _hypo_shape(
                (time_ms - plan.hypo.time_ms) / MINUTE_MS
            )
        return max(MODEL_FLOOR_MG_DL, value)

    def _without_hypo(self, local_ms: int) -> float:
        """Every effect but the day's hypoglycaemia, at local time ``local_ms``."""
        day, of_day = divmod(local_ms, DAY_MS)
        minute = of_day / MINUTE_MS
        today, yesterday = self.day_plan(day), self.day_plan(day - 1)
        if minute >= 720:
            first, second, share = today, self.day_plan(day + 1), (minute - 720) / 1440
        else:
            first, second, share = yesterday, today, (minute + 720) / 1440
        offset = first.offset_mg_dl + (second.offset_mg_dl - first.offset_mg_dl) * _smoothstep(
            share
        )
        value = self.profile.baseline_mg_dl + offset
        value += today.dawn_mg_dl * _ramp(minute, 4 * 60, 8 * 60, 11 * 60)
        value += self.profile.basal_wane_mg_dl * _ramp(
            minute, BASAL_INJECTION_MINUTE - 180, BASAL_INJECTION_MINUTE, 24 * 60
        )
        time_ms = local_ms - self._tz_ms
        for plan in (yesterday, today):
            value += sum(self._meal_effect(meal, time_ms) for meal in plan.meals)
            if plan.exercise is not None:
                x = (time_ms - plan.exercise.time_ms) / MINUTE_MS / EXERCISE_TIME_CONSTANT_MIN
                if x > 0:
                    value -= plan.exercise.depth_mg_dl * x * math.exp(1.0 - x)
        return value

    def _meal_effect(self, meal: Meal, time_ms: int) -> float:
        """Carbohydrate absorbed, less what the bolus and the later correction cover."""
        tau = (time_ms - meal.time_ms) / MINUTE_MS
        since_bolus = (time_ms - meal.bolus_ms) / MINUTE_MS
        net = (
            _gamma2(tau, CARB_TIME_CONSTANT_MIN)
            - meal.cover * _gamma2(since_bolus, INSULIN_TIME_CONSTANT_MIN)
            - (1.0 - meal.cover) * _gamma2(tau - CORRECTION_DELAY_MIN, INSULIN_TIME_CONSTANT_MIN)
        )
        return self.profile.carb_sensitivity * meal.carbs_g * net

    def _hypo_depth(self, hypo: Dip) -> float:
        """How far the hypoglycaemia lowers glucose to reach its nadir."""
        nadir_ms = hypo.time_ms + round(HYPO_NADIR_AFTER_MIN * MINUTE_MS)
        return max(0.0, self._without_hypo(nadir_ms + self._tz_ms) - hypo.nadir_mg_dl)

    # -- the days ---------------------------------------------------------------------------

    def day_plan(self, day: int) -> DayPlan:
        """The plan of local day ``day`` (meals, boluses, exercise, a hypoglycaemia, meter
        times), drawn from the seed and the day alone; the last few are kept."""
        plan = self._plans.get(day)
        if plan is None:
            plan = self._draw_day(day)
            if len(self._plans) >= _CACHED_DAYS:
                self._plans.pop(next(iter(self._plans)))
            self._plans[day] = plan
        return plan

    def _draw_day(self, day: int) -> DayPlan:
        draw = random.Random(f"bighealth-meter/{self.seed}/day/{day}")
        midnight_ms = day * DAY_MS - self._tz_ms

        def at(minute: float) -> int:
            return midnight_ms + round(minute * MINUTE_MS)

        profile = self.profile
        offset = min(30.0, max(-30.0, draw.gauss(0.0, 12.0)))
        dawn = profile.dawn_rise_mg_dl * draw.uniform(0.6, 1.3)
        breakfast = _clamped(draw.gauss(7.5 * 60, 30), 6 * 60, 9.5 * 60)
        lunch = _clamped(draw.gauss(12.75 * 60, 40), 11.5 * 60, 14.5 * 60)
        dinner = _clamped(draw.gauss(19 * 60, 45), 17.5 * 60, 21 * 60)
        meals = [
            self._meal(draw, at(breakfast), draw.uniform(30, 60)),
            self._meal(draw, at(lunch), draw.uniform(40, 80)),
            self._meal(draw, at(dinner), draw.uniform(50, 90)),
        ]
        snack_minute, snack_carbs = draw.uniform(15 * 60, 16.5 * 60), draw.uniform(10, 25)
        if draw.random() < profile.snack_day_share:  # eaten without a bolus
            meals.append(Meal(at(snack_minute), snack_carbs, at(snack_minute), 0.0))
        exercise_minute, exercise_depth = draw.uniform(16 * 60, 18 * 60), draw.uniform(30, 70)
        exercise = None
        if draw.random() < profile.exercise_day_share:
            exercise = Dip(at(exercise_minute), depth_mg_dl=exercise_depth)
        fasting, bedtime = breakfast - 15, draw.uniform(22 * 60, 23 * 60)
        meter_minutes = (fasting, lunch - 10, dinner - 10, bedtime)
        hypo_nadir, hypo_place = draw.uniform(42, 66), draw.randrange(4)
        night_start = draw.uniform(1 * 60, 4 * 60)
        hypo = None
        if draw.random() < profile.hypo_day_share:
            # At night, or so that the pre-lunch, pre-dinner or fasting reading sees it.
            nadir_at = (night_start + HYPO_NADIR_AFTER_MIN, *meter_minutes[:3])[hypo_place]
            hypo = Dip(at(nadir_at - HYPO_NADIR_AFTER_MIN), nadir_mg_dl=hypo_nadir)
        return DayPlan(
            day=day,
            offset_mg_dl=offset,
            dawn_mg_dl=dawn,
            meals=tuple(meals),
            exercise=exercise,
            hypo=hypo,
            meter_times_ms=tuple(at(minute) for minute in meter_minutes),
        )

    def _meal(self, draw: random.Random, time_ms: int, carbs_g: float) -> Meal:
        """A meal and its bolus: usually 0–15 minutes before it, sometimes 15–40 minutes
        late, rarely forgotten; covering ~1 of the carbohydrate."""
        cover = min(1.4, max(0.6, draw.gauss(1.0, self.profile.bolus_spread)))
        early, late, timing = draw.uniform(0, 15), draw.uniform(15, 40), draw.random()
        if timing < 0.03:
            return Meal(time_ms, carbs_g, time_ms, 0.0)  # forgotten: corrected later
        shift_min = late if timing < 0.18 else -early
        return Meal(time_ms, carbs_g, time_ms + round(shift_min * MINUTE_MS), cover)


def _clamped(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def backfill_start(
    seed: int, kind: TraceKind | str, end_ms: int, count: int, *, tz_offset_minutes: int = 0
) -> int:
    """The start of the trace whose first ``count`` readings end with the last reading at
    or before ``end_ms``: an accelerated replay of them ends in the present (a chain
    refuses readings from the future). ``TraceError`` for a count outside 1..``MAX_TAKE``
    or a start that would fall before 1970."""
    if not 1 <= count <= MAX_TAKE:
        raise TraceError(f"a backfill is 1..{MAX_TAKE} readings, got {count}")
    if TraceKind(kind) is TraceKind.CGM:
        start = end_ms - (count - 1) * CGM_INTERVAL_MS
    else:
        days = count // METER_READINGS_PER_DAY + 2
        probe = GlucoseTrace(
            seed, kind, max(0, end_ms - days * DAY_MS), tz_offset_minutes=tz_offset_minutes
        )
        last: deque[int] = deque(maxlen=count)
        for time_ms in probe.times():
            if time_ms > end_ms:
                break
            last.append(time_ms)
        start = last[0] if len(last) == count else -1
    if start < 0:
        raise TraceError(f"{count} readings before {end_ms} would start before 1970")
    return start
