"""The glucose-meter simulator: the trace model (deterministic, plausible, with its dawn rise,
meals, lows, cadences) and the runner (pacing in virtual time, uploads, retries, typed
errors), against fake uploaders and against the real client over a health chain in virtual
time (``tests/health/fake_node.py``)."""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice, pairwise
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest

from health import fhir
from health.client import KDF_MIN, HealthClient, Keystore
from health.client.errors import (
    ReceiptTimeout,
    RecordError,
    TransactionFailed,
    TransactionRejected,
)
from health.contracts.common import (
    DAY_MS,
    GLUCOSE_RESOURCE_TYPE,
    HealthRole,
    Identity,
)
from health.contracts.records import get_record
from health.glucose import check_reading, statistics
from health.meter import (
    CGM_INTERVAL_MS,
    GlucoseTrace,
    Reading,
    TraceError,
    TraceKind,
    backfill_start,
)
from health.meter.runner import (
    MeterError,
    MeterRefused,
    MeterSummary,
    MeterTarget,
    MeterUnreachable,
    Pacing,
    check_target,
    observation_for,
    run_meter,
)
from health.meter.trace import CGM_RANGE_MG_DL, HOUR_MS, MINUTE_MS
from node.api.client import ApiResponseError, ApiUnreachableError
from node.cli import build_parser, main
from node.cli.meter_command import Console, simulate
from node.types import ResultCode, TxReceipt
from tests.health.fake_node import CHAIN, ClientChain, FakeNode, InProcessTransport

START = 1_780_012_800_000  # 2026-05-29T00:00:00Z, a midnight
MONTH = 30 * DAY_MS
ROOT = Path(__file__).resolve().parents[2]
PATIENT, DEVICE = bytes([1]) * 32, bytes([2]) * 32
CUSTODIAN = (bytes([3]) * 32, "http://custodian.test")


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


# -- the runner against a fake uploader --------------------------------------------------------


@dataclass
class FakeClock:
    """Virtual wall-clock time: ``sleep`` moves it (nothing sleeps for real)."""

    now_ms: int
    sleeps: list[float] = field(default_factory=list)

    def clock_ms(self) -> int:
        return self.now_ms

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now_ms += round(seconds * 1000)


@dataclass
class FakeUploader:
    """Records each upload and when it came; raises ``failures`` first, in order."""

    clock: FakeClock
    failures: list[BaseException] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def upload_record(
        self,
        content: Mapping[str, Any],
        *,
        owner: bytes | None = None,
        resource_type: str,
        code: str,
        data_time_ms: int,
        custodians: Sequence[tuple[bytes, str]],
        readers: Sequence[bytes] = (),
    ) -> bytes:
        self.calls.append(
            {
                "content": content,
                "owner": owner,
                "resource_type": resource_type,
                "code": code,
                "data_time_ms": data_time_ms,
                "custodians": custodians,
                "readers": readers,
                "at_ms": self.clock.now_ms,
            }
        )
        if self.failures:
            raise self.failures.pop(0)
        return hashlib.sha256(str(data_time_ms).encode()).digest()


TARGET = MeterTarget(PATIENT, DEVICE, TraceKind.CGM, (CUSTODIAN,), readers=(bytes([4]) * 32,))
NOW = START + 10 * DAY_MS + 7 * MINUTE_MS


@dataclass
class Run:
    clock: FakeClock
    uploader: FakeUploader
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __call__(self, start_ms: int, pacing: Pacing, target: MeterTarget = TARGET) -> MeterSummary:
        return run_meter(
            GlucoseTrace(5, target.kind, start_ms),
            self.uploader,
            target,
            pacing,
            start_ms=start_ms,
            clock_ms=self.clock.clock_ms,
            sleep=self.clock.sleep,
            emit=self.lines.append,
            warn=self.warnings.append,
        )


@pytest.fixture
def run() -> Run:
    clock = FakeClock(NOW)
    return Run(clock, FakeUploader(clock))


def test_an_accelerated_backfill_plays_an_hour_a_minute_and_ends_now(run: Run) -> None:
    start = backfill_start(5, "cgm", NOW, 12)
    summary = run(start, Pacing(speed=60, count=12))
    calls = run.uploader.calls
    assert [c["at_ms"] for c in calls] == [NOW + i * 5_000 for i in range(12)]  # 5 min in 5 s
    assert [c["data_time_ms"] for c in calls] == [start + i * CGM_INTERVAL_MS for i in range(12)]
    assert calls[-1]["data_time_ms"] <= NOW  # nothing from the future
    assert sum(run.clock.sleeps) == pytest.approx(55.0)
    expected = GlucoseTrace(5, "cgm", start).take(12)
    for call, reading in zip(calls, expected, strict=True):
        assert call["owner"] == PATIENT and call["resource_type"] == GLUCOSE_RESOURCE_TYPE
        assert call["code"] == fhir.record_code("cgm") == "http://loinc.org|99504-3"
        assert call["custodians"] == (CUSTODIAN,) and call["readers"] == TARGET.readers
        parsed = fhir.reading_of(call["content"])
        assert (parsed.time_ms, parsed.mg_dl, parsed.code) == (*reading, call["code"])
        assert call["content"]["device"] == {"reference": f"Device/{DEVICE.hex()}"}
    assert summary.sent == 12 and summary.retries == 0
    assert len(run.lines) == 12
    record = hashlib.sha256(str(start).encode()).digest().hex()
    assert run.lines[0].startswith(fhir.iso_datetime(start))
    assert f"{expected[0].mg_dl:>3} mg/dL" in run.lines[0] and record in run.lines[0]
    assert summary.lines()[0] == "readings sent     12 (retries 0)"


def test_readings_never_go_out_before_their_time(run: Run) -> None:
    """From now, an accelerated run has nothing to catch up: real time, a reading at a time."""
    run(NOW, Pacing(speed=60, count=3))
    assert [c["at_ms"] for c in run.uploader.calls] == [
        NOW + i * CGM_INTERVAL_MS for i in (0, 1, 2)
    ]
    assert max(run.clock.sleeps) <= 60.0  # long waits are cut into short sleeps


def test_a_meter_reads_four_times_a_day_in_real_time(run: Run) -> None:
    target = replace(TARGET, kind=TraceKind.METER)
    run(NOW, Pacing(count=8), target)
    times = [c["data_time_ms"] for c in run.uploader.calls]
    assert times == [c["at_ms"] for c in run.uploader.calls]  # speed 1: sent when measured
    assert times == list(islice(GlucoseTrace(5, "meter", NOW).times(), 8))
    assert len(times) == 8 and times[-1] - times[0] < 2 * DAY_MS + HOUR_MS
    assert {c["code"] for c in run.uploader.calls} == {"http://loinc.org|41653-7"}


def test_uploads_that_may_pass_are_tried_again_a_bounded_number_of_times(run: Run) -> None:
    run.uploader.failures = [
        ApiUnreachableError("no node answers at http://node.test: is it running?"),
        RecordError("no_custodian", "no custodian took record ab"),
        TransactionRejected("records.commit", "mempool_full", "the mempool is full"),
    ]
    summary = run(NOW, Pacing(count=2, retries=3, retry_delay_s=1.0))
    assert summary.sent == 2 and summary.retries == 3
    assert len(run.uploader.calls) == 5
    assert run.clock.sleeps[:3] == [1.0, 2.0, 4.0]  # doubling waits
    assert len(run.warnings) == 3 and "no node answers" in run.warnings[0]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (ApiUnreachableError("no node answers at http://node.test"), MeterUnreachable),
        (ApiResponseError(503, "busy", None), MeterUnreachable),
        (RecordError("no_custodian", "no custodian took it"), MeterRefused),
    ],
)
def test_the_run_stops_when_the_retries_run_out(
    run: Run, failure: Exception, error: type[MeterError]
) -> None:
    run.uploader.failures = [failure] * 3
    with pytest.raises(error, match="3 attempts"):
        run(NOW, Pacing(count=1, retries=2))
    assert len(run.uploader.calls) == 3


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (
            TransactionFailed(
                "records.commit", TxReceipt(bytes(32), ResultCode.UNAUTHORIZED, "not paired", 0, ())
            ),
            MeterRefused,
        ),
        (TransactionRejected("records.commit", "app_rejected", "data time ahead"), MeterRefused),
        (RecordError("unknown_identity", "the reader is not active"), MeterRefused),
        (ApiResponseError(400, "bad request", None), MeterRefused),
        (ReceiptTimeout(bytes(32), 30), MeterError),
    ],
)
def test_a_refusal_that_will_not_pass_stops_the_run_at_once(
    run: Run, failure: Exception, error: type[MeterError]
) -> None:
    run.uploader.failures = [failure]
    with pytest.raises(error) as raised:
        run(NOW, Pacing(count=3, retries=5))
    assert len(run.uploader.calls) == 1 and run.warnings == []
    if isinstance(failure, ReceiptTimeout):
        assert "not confirmed" in str(raised.value) and not isinstance(raised.value, MeterRefused)


def test_a_stopped_run_keeps_its_counts(run: Run) -> None:
    run.uploader.failures = []
    summary = MeterSummary()
    clock = run.clock

    class StopAtThird(FakeUploader):
        def upload_record(self, content: Mapping[str, Any], **kwargs: Any) -> bytes:
            if len(self.calls) == 2:
                raise KeyboardInterrupt
            return super().upload_record(content, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        run_meter(
            GlucoseTrace(5, "cgm", NOW),
            StopAtThird(clock),
            TARGET,
            Pacing(),
            start_ms=NOW,
            clock_ms=clock.clock_ms,
            sleep=clock.sleep,
            emit=lambda line: None,
            summary=summary,
        )
    assert summary.sent == 2
    assert summary.lines()[0] == "readings sent     2 (retries 0)"


def test_pacing_is_bounded() -> None:
    for bad in (
        {"speed": 0.0},
        {"speed": float("inf")},
        {"count": 0},
        {"retries": 21},
        {"retry_delay_s": -1.0},
    ):
        with pytest.raises(MeterError):
            Pacing(**bad)
    with pytest.raises(MeterError, match="custodian"):
        MeterTarget(PATIENT, DEVICE, TraceKind.CGM, ())


def identity(
    ident: bytes, role: HealthRole, kind: str = "", parent: bytes = b"", active: bool = True
) -> Identity:
    return Identity(ident, role, kind, "", parent, ident, bytes(32), 0, active, 1)


def test_only_the_patient_or_a_device_paired_to_it_may_send() -> None:
    other = bytes([9]) * 32
    base = {PATIENT: identity(PATIENT, HealthRole.PATIENT, parent=CUSTODIAN[0])}

    def check(device: Identity | None, target: MeterTarget = TARGET) -> None:
        known = dict(base) | ({} if device is None else {DEVICE: device})
        check_target(known.get, target)

    check(identity(DEVICE, HealthRole.DEVICE, "cgm", PATIENT))
    check_target(base.get, replace(TARGET, device=PATIENT))  # the patient's own keystore
    refusals = {
        "not on chain": None,
        "unpaired": identity(DEVICE, HealthRole.DEVICE, "cgm", PATIENT, active=False),
        "not to the patient": identity(DEVICE, HealthRole.DEVICE, "cgm", other),
        "registered as a glucose_meter": identity(
            DEVICE, HealthRole.DEVICE, "glucose_meter", PATIENT
        ),
        "a practitioner": identity(DEVICE, HealthRole.PRACTITIONER, "endocrinology", CUSTODIAN[0]),
    }
    for message, device in refusals.items():
        with pytest.raises(MeterRefused, match=message):
            check(device)
    with pytest.raises(MeterRefused, match="not an active patient"):
        check_target(lambda _: None, TARGET)


def test_the_observation_names_the_patient_and_the_device() -> None:
    reading = Reading(NOW, 123)
    observation = observation_for(TARGET, reading)
    assert observation["subject"] == {"reference": f"Patient/{PATIENT.hex()}"}
    assert fhir.reading_of(observation).mg_dl == 123
    own = observation_for(replace(TARGET, device=PATIENT, kind=TraceKind.METER), reading)
    assert "device" not in own
    assert fhir.reading_of(own).code == "http://loinc.org|41653-7"


# -- the runner through the real client, over a health chain in virtual time -------------------

PASS = "pass phrase"


@dataclass
class ChainWorld:
    """A health chain in virtual time and one custodian's node, reached in process."""

    tmp: Path
    chain: ClientChain = field(default_factory=ClientChain)
    host: str = "h0.test"

    def __post_init__(self) -> None:
        self.node = FakeNode(self.chain, self.chain.institutions[0].id, {})
        self.transport = InProcessTransport({self.host: self.node})

    def client(
        self, name: str, role: HealthRole, seed: bytes | None = None, enc: bytes | None = None
    ) -> HealthClient:
        keystore = Keystore.create(
            self.tmp / f"{name}.keystore",
            PASS,
            name=name,
            role=role,
            kdf=KDF_MIN,
            signing_seed=seed,
            encryption_private_key=enc,
        )
        return HealthClient(
            f"http://{self.host}",
            keystore,
            CHAIN,
            transport=self.transport,
            clock_ms=self.chain.now_ms,
            monotonic=self.chain.monotonic,
            sleep=self.chain.sleep,
            poll_interval_s=0.5,
            receipt_timeout_s=20,
        )


def test_a_paired_cgm_uploads_readings_the_patient_reads_back(tmp_path: Path) -> None:
    world = ChainWorld(tmp_path)
    chain, client, node, host = world.chain, world.client, world.node, world.host
    member = chain.institutions[0]
    hospital = client(
        "hospital", HealthRole.INSTITUTION, member.signer.seed, member.encryption_private
    )
    patient = client("patient", HealthRole.PATIENT)
    hospital.register(*patient.keystore.admission_keys(), role=HealthRole.PATIENT)
    device = client("cgm", HealthRole.DEVICE)
    patient.register(*device.keystore.admission_keys(), role=HealthRole.DEVICE, kind="cgm")
    target = MeterTarget(
        patient.identity_id,
        device.identity_id,
        TraceKind.CGM,
        ((node.custodian, f"http://{host}"),),
    )
    check_target(device.identity, target)
    with pytest.raises(MeterRefused, match="registered as a cgm"):
        check_target(device.identity, replace(target, kind=TraceKind.METER))

    now = chain.now_ms()
    start = backfill_start(9, "cgm", now, 4)
    lines: list[str] = []
    summary = run_meter(
        GlucoseTrace(9, "cgm", start),
        device,
        target,
        Pacing(speed=60, count=4),
        start_ms=start,
        clock_ms=chain.now_ms,
        sleep=chain.sleep,
        emit=lines.append,
    )
    assert summary.sent == 4 and len(lines) == 4
    expected = GlucoseTrace(9, "cgm", start).take(4)
    records = patient.list_records()
    assert len(records) == 4
    for record in records:
        commitment = get_record(chain, record)
        assert commitment is not None and commitment.author == device.identity_id
        assert commitment.code == "http://loinc.org|99504-3"
    first = fhir.reading_of(patient.read_record(records[0]))
    assert (first.time_ms, first.mg_dl) == expected[0]


# -- bighealth meter simulate ------------------------------------------------------------------


@dataclass
class FakeDeviceClient(FakeUploader):
    """A ``HealthClient`` as the command uses it: uploads, identities, our identity."""

    identities: dict[bytes, Identity] = field(default_factory=dict)

    @property
    def identity_id(self) -> bytes:
        return DEVICE

    def identity(self, identity_id: bytes) -> Identity | None:
        return self.identities.get(identity_id)


def simulate_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(
        [
            "meter", "simulate", "--keystore", "device.keystore", "--passphrase", "p",
            "--node", "http://node.test", "--patient", PATIENT.hex(),
            "--custodian", f"{CUSTODIAN[0].hex()}={CUSTODIAN[1]}", "--tz-offset-minutes", "0",
            *extra,
        ]
    )  # fmt: skip


def paired(kind: str = "cgm") -> FakeDeviceClient:
    clock = FakeClock(NOW)
    return FakeDeviceClient(
        clock,
        identities={
            PATIENT: identity(PATIENT, HealthRole.PATIENT, parent=CUSTODIAN[0]),
            DEVICE: identity(DEVICE, HealthRole.DEVICE, kind, PATIENT),
        },
    )


def console_of(client: FakeDeviceClient, lines: list[str]) -> Console:
    return Console(client.clock.clock_ms, client.clock.sleep, lines.append, lines.append)


def test_the_command_backfills_an_accelerated_run_and_prints_a_line_a_reading() -> None:
    client, lines = paired(), list[str]()
    args = simulate_args("--speed", "60", "--count", "6", "--seed", "5")
    summary = simulate(args, client, console_of(client, lines))
    assert summary.sent == 6
    times = [c["data_time_ms"] for c in client.calls]
    assert times[-1] == NOW and times[0] == NOW - 5 * CGM_INTERVAL_MS  # ends in the present
    assert client.clock.now_ms == NOW + 25_000  # 25 simulated minutes in 25 s
    assert lines[0].startswith("meter simulate: cgm ")
    assert len([line for line in lines if " mg/dL " in line]) == 6
    assert "readings sent     6 (retries 0)" in lines
    assert any(line.startswith("time in ranges") for line in lines)


def test_the_command_takes_the_kind_and_seed_from_the_device() -> None:
    client, lines = paired("glucose_meter"), list[str]()
    simulate(simulate_args("--count", "2"), client, console_of(client, lines))
    assert {c["code"] for c in client.calls} == {"http://loinc.org|41653-7"}
    seed = int.from_bytes(DEVICE[:8], "big")
    expected = GlucoseTrace(seed, "meter", NOW).take(2)
    assert [c["data_time_ms"] for c in client.calls] == [r.time_ms for r in expected]
    wrong = paired("glucose_meter")
    with pytest.raises(MeterRefused, match="registered as a glucose_meter"):
        simulate(simulate_args("--kind", "cgm"), wrong, console_of(wrong, []))
    assert wrong.calls == []


def test_the_command_prints_its_summary_when_stopped() -> None:
    client, lines = paired(), list[str]()
    client.failures = [ApiResponseError(400, "bad request", None)]
    with pytest.raises(MeterRefused, match="bad request"):
        simulate(simulate_args("--count", "3"), client, console_of(client, lines))
    assert "readings sent     0 (retries 0)" in lines
    client, lines = paired(), list[str]()
    client.failures = [KeyboardInterrupt()]  # Ctrl-C, or SIGTERM (sigterm_as_interrupt)
    summary = simulate(simulate_args(), client, console_of(client, lines))
    assert summary.sent == 0 and "stopped" in lines


def test_the_command_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (
        ["--speed", "0"],
        ["--count", "-3"],
        ["--custodian", "abc"],
        ["--reader", "12"],
        ["--kind", "pump"],
    ):
        with pytest.raises(SystemExit) as exited:
            simulate_args(*bad)
        assert exited.value.code == 2
    assert "an identity id is 32 bytes" in capsys.readouterr().err


def test_the_command_says_when_no_node_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keystore = tmp_path / "device.keystore"
    Keystore.create(keystore, PASS, name="device", role=HealthRole.DEVICE, kdf=KDF_MIN)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    common = [
        "meter", "simulate", "--keystore", str(keystore), "--node", f"http://127.0.0.1:{port}",
        "--patient", PATIENT.hex(), "--custodian", f"{CUSTODIAN[0].hex()}=http://127.0.0.1:{port}",
    ]  # fmt: skip
    assert main([*common, "--passphrase", PASS]) == 1
    assert "bighealth meter: no node answers at http://127.0.0.1" in capsys.readouterr().err
    assert main([*common, "--passphrase", "wrong"]) == 1
    assert "does not open with this passphrase" in capsys.readouterr().err
