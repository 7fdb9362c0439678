"""The diabetes care contract: plans set under a treatment access, reminders in block time
(due, acknowledged or escalated), stale tasks after a plan change, adherence, readings that
close measurement reminders, and the alert policy."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health.contracts.care import (
    ESCALATION_JOB_CODEC,
    MAX_TZ_OFFSET_MINUTES,
    MIN_TZ_OFFSET_MINUTES,
    MINUTE_MS,
    OCCURRENCE_JOB_CODEC,
    Adherence,
    AlertLevel,
    CareModule,
    EscalationJob,
    ItemKind,
    OccurrenceJob,
    ReminderStatus,
    ScheduleItem,
    ack_payload,
    alert_payload,
    get_adherence,
    get_next_occurrence,
    get_plan,
    get_reminder,
    list_reminders,
    next_occurrence_ms,
    reminder_key,
    set_plan_payload,
    set_policy_payload,
)
from health.contracts.common import (
    DAY_MS,
    GLUCOSE_RESOURCE_TYPE,
    PARAM_DEFAULTS,
    READING_NOTICE_CODEC,
    HealthRole,
    ReadingNotice,
    identity_key,
)
from health.contracts.consent import grant_payload
from health.contracts.identity import deactivate_payload
from health.contracts.records import commit_payload
from node.app.due import DueTask
from node.app.errors import TxFailed
from node.app.module import BlockInfo, ExecContext
from node.app.view import ExecutionLimits, GasMeter, GasSchedule, MeteredReader, WriteBuffer
from node.types import ResultCode
from tests.health.helpers import CHAIN, HealthChain, Party, attributes

GRACE_MS = PARAM_DEFAULTS["reminder_grace_ms"]
GLUCOSE_CODE = "http://loinc.org|41653-7"
TZ = 60  # the patient lives at UTC+1
DOSE = ScheduleItem(1, ItemKind.DOSE, (8 * 60, 20 * 60))
MEASURE = ScheduleItem(2, ItemKind.MEASUREMENT, (7 * 60 + 30,))


class Snapshot:
    """The committed state of a chain as a plain reader (get and prefix scans)."""

    def __init__(self, chain: HealthChain) -> None:
        self._entries = dict(chain.app.state_entries())

    def get(self, key: bytes) -> bytes | None:
        return self._entries.get(key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(sorted((k, v) for k, v in self._entries.items() if k.startswith(prefix)))


def scan_reader(chain: HealthChain) -> MeteredReader:
    return MeteredReader(Snapshot(chain), GasMeter(10**12), GasSchedule())


def care_context(
    chain: HealthChain, *, caller: str | None = None
) -> tuple[ExecContext, WriteBuffer]:
    """An execution context of ``care`` over the chain's committed state, one ms later."""
    buffer = WriteBuffer(Snapshot(chain))
    sequence = itertools.count(1)
    ctx = ExecContext(
        module="care",
        block=BlockInfo(CHAIN, chain.app.height + 1, chain.time_ms + 1, bytes(32)),
        buffer=buffer,
        meter=GasMeter(10**9),
        gas=GasSchedule(),
        limits=ExecutionLimits(),
        next_task_sequence=lambda: next(sequence),
        caller=caller,
    )
    return ctx, buffer


class Clinic:
    """A hospital, its doctor, a patient who granted the doctor treatment access, and the
    patient's glucose meter."""

    def __init__(self, chain: HealthChain) -> None:
        self.chain = chain
        self.hospital = chain.members[0]
        self.doctor = chain.register(
            self.hospital, "dr-care", HealthRole.PRACTITIONER, "endo", "Dr"
        )
        self.patient = chain.register(self.hospital, "patient-care", HealthRole.PATIENT)
        self.meter = chain.register(self.patient, "meter-care", HealthRole.DEVICE, "cgm")
        self.grant(self.doctor.id)

    def grant(self, grantee: bytes) -> None:
        expires_ms = self.chain.time_ms + 60 * DAY_MS
        self.chain.ok(self.patient, "consent.grant", grant_payload(grantee, expires_ms=expires_ms))

    def plan(
        self,
        items: tuple[ScheduleItem, ...] = (DOSE, MEASURE),
        *,
        base_version: int = 0,
        by: Party | None = None,
    ) -> bytes:
        return set_plan_payload(
            self.patient.id,
            base_version=base_version,
            plan_record=bytes([7]) * 32,
            plan_sha256=bytes([8]) * 32,
            tz_offset_minutes=TZ,
            items=items,
        )

    def set_plan(self, items: tuple[ScheduleItem, ...] = (DOSE, MEASURE), base: int = 0) -> None:
        self.chain.ok(self.doctor, "care.set_plan", self.plan(items, base_version=base))

    def next_due(self, item: int) -> int:
        pending = get_next_occurrence(self.chain.app, self.patient.id, item)
        assert pending is not None
        return pending.due_ms

    def reach(self, time_ms: int) -> list[tuple[str, dict[str, str]]]:
        """An empty block at ``time_ms``: the care events it raised."""
        result = self.chain.advance(time_ms - self.chain.time_ms)
        return [(e.name, attributes(e)) for e in self.chain.events(result, "care.")]

    def reading(self, sender: Party, record: bytes, data_time_ms: int) -> None:
        payload = commit_payload(
            record,
            self.patient.id,
            resource_type=GLUCOSE_RESOURCE_TYPE,
            code=GLUCOSE_CODE,
            ciphertext_sha256=bytes(32),
            size_bytes=100,
            custodians=(self.hospital.id,),
            key_epoch=0,
            data_time_ms=data_time_ms,
        )
        self.chain.ok(sender, "records.commit", payload)


@pytest.fixture
def clinic() -> Clinic:
    return Clinic(HealthChain())


# -- the schedule arithmetic ---------------------------------------------------------------------

_TIMES = st.lists(st.integers(0, 1439), min_size=1, max_size=12, unique=True).map(
    lambda times: tuple(sorted(times))
)


@given(
    times=_TIMES,
    tz=st.integers(MIN_TZ_OFFSET_MINUTES, MAX_TZ_OFFSET_MINUTES),
    after_ms=st.integers(DAY_MS, 4_000_000_000_000),
)
def test_the_next_occurrence_is_the_first_scheduled_local_minute_after(
    times: tuple[int, ...], tz: int, after_ms: int
) -> None:
    due_ms = next_occurrence_ms(times, tz, after_ms)
    assert after_ms < due_ms <= after_ms + DAY_MS
    local_ms = due_ms + tz * MINUTE_MS
    assert local_ms % MINUTE_MS == 0 and (local_ms % DAY_MS) // MINUTE_MS in times
    # no scheduled local minute lies strictly between: step minute by minute
    first_minute_ms = after_ms + tz * MINUTE_MS
    first_minute_ms += MINUTE_MS - first_minute_ms % MINUTE_MS
    for local in range(first_minute_ms, local_ms, MINUTE_MS):
        assert (local % DAY_MS) // MINUTE_MS not in times


def test_an_occurrence_at_the_very_moment_is_tomorrows() -> None:
    midnight_ms = 100 * DAY_MS
    assert next_occurrence_ms((0,), 0, midnight_ms) == midnight_ms + DAY_MS
    assert next_occurrence_ms((0,), 0, midnight_ms - 1) == midnight_ms
    # 08:00 at UTC+1 is 07:00 UTC
    assert next_occurrence_ms((480,), 60, midnight_ms) == midnight_ms + 7 * 3600 * 1000


# -- plans and authority -------------------------------------------------------------------------


def test_a_practitioner_with_a_treatment_grant_sets_the_plan_and_its_first_occurrences(
    clinic: Clinic,
) -> None:
    receipt = clinic.chain.ok(clinic.doctor, "care.set_plan", clinic.plan())
    (event,) = clinic.chain.events(receipt, "care.plan_set")
    assert attributes(event)["version"] == "1"
    assert attributes(event)["patient"] == clinic.patient.id.hex()
    plan = get_plan(clinic.chain.app, clinic.patient.id)
    assert plan is not None
    assert (plan.version, plan.practitioner, plan.institution) == (
        1,
        clinic.doctor.id,
        clinic.hospital.id,
    )
    assert plan.items == (DOSE, MEASURE) and plan.tz_offset_minutes == TZ
    now_ms = clinic.chain.time_ms
    for entry in plan.items:
        expected = next_occurrence_ms(entry.times_of_day_minutes, TZ, now_ms)
        assert clinic.next_due(entry.item) == expected


def test_a_practitioner_without_a_grant_or_the_patient_cannot_set_a_plan(clinic: Clinic) -> None:
    stranger = clinic.chain.register(
        clinic.hospital, "dr-none", HealthRole.PRACTITIONER, "gp", "Dr"
    )
    clinic.chain.fails(stranger, "care.set_plan", clinic.plan(), ResultCode.UNAUTHORIZED)
    clinic.chain.fails(clinic.patient, "care.set_plan", clinic.plan(), ResultCode.UNAUTHORIZED)
    assert get_plan(clinic.chain.app, clinic.patient.id) is None


def test_an_institution_grant_covers_its_practitioners_only(clinic: Clinic) -> None:
    other = clinic.chain.members[1]
    clinic.grant(other.id)
    theirs = clinic.chain.register(other, "dr-other", HealthRole.PRACTITIONER, "endo", "Dr")
    elsewhere = clinic.chain.register(
        clinic.chain.members[2], "dr-elsewhere", HealthRole.PRACTITIONER, "endo", "Dr"
    )
    clinic.chain.fails(elsewhere, "care.set_plan", clinic.plan(), ResultCode.UNAUTHORIZED)
    clinic.chain.ok(theirs, "care.set_plan", clinic.plan())
    plan = get_plan(clinic.chain.app, clinic.patient.id)
    assert plan is not None and plan.institution == other.id


def test_a_plan_edited_from_a_stale_version_conflicts(clinic: Clinic) -> None:
    clinic.set_plan()
    clinic.chain.fails(clinic.doctor, "care.set_plan", clinic.plan(), ResultCode.CONFLICT)
    clinic.chain.ok(clinic.doctor, "care.set_plan", clinic.plan(base_version=1))
    plan = get_plan(clinic.chain.app, clinic.patient.id)
    assert plan is not None and plan.version == 2


@pytest.mark.parametrize(
    "items",
    [
        (ScheduleItem(1, ItemKind.DOSE, (600, 600)),),
        (ScheduleItem(1, ItemKind.DOSE, (700, 600)),),
        (ScheduleItem(1, ItemKind.DOSE, ()),),
        (ScheduleItem(2, ItemKind.DOSE, (600,)), ScheduleItem(1, ItemKind.DOSE, (700,))),
        (ScheduleItem(1, ItemKind.DOSE, (600,)), ScheduleItem(1, ItemKind.DOSE, (700,))),
    ],
)
def test_a_malformed_schedule_is_refused(clinic: Clinic, items: tuple[ScheduleItem, ...]) -> None:
    clinic.chain.fails(
        clinic.doctor, "care.set_plan", clinic.plan(items), ResultCode.INVALID_PAYLOAD
    )


# -- reminders in block time ---------------------------------------------------------------------


def test_a_due_dose_acknowledged_by_the_patient_is_done(clinic: Clinic) -> None:
    clinic.set_plan((DOSE,))
    due_ms = clinic.next_due(1)
    events = clinic.reach(due_ms)
    assert (
        "care.dose_due",
        {
            "patient": clinic.patient.id.hex(),
            "item": "1",
            "due_ms": str(due_ms),
            "practitioner": clinic.doctor.id.hex(),
            "version": "1",
        },
    ) in events
    reminder = get_reminder(clinic.chain.app, clinic.patient.id, due_ms, 1)
    assert reminder is not None and reminder.status is ReminderStatus.OPEN
    # only the next occurrence of the item is pending: 20:00 local, the same day
    assert clinic.next_due(1) == due_ms + 12 * 3600 * 1000
    receipt = clinic.chain.ok(clinic.patient, "care.ack", ack_payload(1, due_ms))
    (ack,) = clinic.chain.events(receipt, "care.acknowledged")
    assert attributes(ack)["by"] == clinic.patient.id.hex()
    reminder = get_reminder(clinic.chain.app, clinic.patient.id, due_ms, 1)
    assert reminder is not None and reminder.status is ReminderStatus.DONE
    assert reminder.closed_ms == clinic.chain.time_ms
    # the grace period passes without an escalation
    assert not [e for e in clinic.reach(due_ms + GRACE_MS) if e[0] == "care.escalated"]
    assert get_adherence(clinic.chain.app, clinic.patient.id, 1) == Adherence(1, 1, 0)
    clinic.chain.fails(clinic.patient, "care.ack", ack_payload(1, due_ms), ResultCode.CONFLICT)


def test_an_unacknowledged_dose_escalates_to_the_practitioner_and_counts_a_miss(
    clinic: Clinic,
) -> None:
    clinic.set_plan((DOSE,))
    due_ms = clinic.next_due(1)
    clinic.reach(due_ms)
    assert not [e for e in clinic.reach(due_ms + GRACE_MS - 1) if e[0] == "care.escalated"]
    events = clinic.reach(due_ms + GRACE_MS)
    escalated = [a for name, a in events if name == "care.escalated"]
    assert escalated == [
        {
            "patient": clinic.patient.id.hex(),
            "practitioner": clinic.doctor.id.hex(),
            "item": "1",
            "due_ms": str(due_ms),
            "kind": "dose",
        }
    ]
    reminder = get_reminder(clinic.chain.app, clinic.patient.id, due_ms, 1)
    assert reminder is not None and reminder.status is ReminderStatus.MISSED
    assert get_adherence(clinic.chain.app, clinic.patient.id, 1) == Adherence(1, 0, 1)
    clinic.chain.fails(clinic.patient, "care.ack", ack_payload(1, due_ms), ResultCode.CONFLICT)


def test_acknowledging_an_unknown_reminder_is_not_found(clinic: Clinic) -> None:
    clinic.set_plan()
    due_ms = clinic.next_due(1)
    clinic.chain.fails(clinic.patient, "care.ack", ack_payload(1, due_ms), ResultCode.NOT_FOUND)


def test_a_paired_device_acknowledges_measurements_but_not_doses(clinic: Clinic) -> None:
    clinic.set_plan()
    measure_ms, dose_ms = clinic.next_due(2), clinic.next_due(1)
    clinic.reach(max(measure_ms, dose_ms))
    clinic.chain.fails(clinic.meter, "care.ack", ack_payload(1, dose_ms), ResultCode.UNAUTHORIZED)
    clinic.chain.ok(clinic.meter, "care.ack", ack_payload(2, measure_ms))
    reminder = get_reminder(clinic.chain.app, clinic.patient.id, measure_ms, 2)
    assert reminder is not None and reminder.status is ReminderStatus.DONE


def test_reminders_recur_daily_and_adherence_counts_them(clinic: Clinic) -> None:
    clinic.set_plan((MEASURE,))
    outcomes = [True, False, True]
    for acknowledge in outcomes:
        due_ms = clinic.next_due(2)
        clinic.reach(due_ms)
        if acknowledge:
            clinic.chain.ok(clinic.patient, "care.ack", ack_payload(2, due_ms))
        clinic.reach(due_ms + GRACE_MS)
        assert clinic.next_due(2) == due_ms + DAY_MS
    assert get_adherence(clinic.chain.app, clinic.patient.id, 2) == Adherence(3, 2, 1)
    listed = list_reminders(scan_reader(clinic.chain), clinic.patient.id, 0, 10)
    assert listed == []  # more than a week before the first
    first_ms = clinic.next_due(2) - 3 * DAY_MS
    listed = list_reminders(scan_reader(clinic.chain), clinic.patient.id, first_ms, 10)
    assert [(r.due_ms, r.item, r.reminder.status) for r in listed] == [
        (first_ms, 2, ReminderStatus.DONE),
        (first_ms + DAY_MS, 2, ReminderStatus.MISSED),
        (first_ms + 2 * DAY_MS, 2, ReminderStatus.DONE),
    ]
    assert len(list_reminders(scan_reader(clinic.chain), clinic.patient.id, first_ms, 2)) == 2
    later = list_reminders(scan_reader(clinic.chain), clinic.patient.id, first_ms + 1, 10)
    assert [r.due_ms for r in later] == [first_ms + DAY_MS, first_ms + 2 * DAY_MS]


def test_a_plan_change_cancels_the_old_occurrences(clinic: Clinic) -> None:
    clinic.set_plan()
    old_dose_ms, old_measure_ms = clinic.next_due(1), clinic.next_due(2)
    old_tasks = [
        pending.task
        for item in (1, 2)
        if (pending := get_next_occurrence(clinic.chain.app, clinic.patient.id, item))
    ]
    later = ScheduleItem(1, ItemKind.DOSE, (23 * 60,))
    clinic.set_plan((later,), base=1)
    assert len(old_tasks) == 2 and all(clinic.chain.get(task) is None for task in old_tasks)
    assert get_next_occurrence(clinic.chain.app, clinic.patient.id, 2) is None
    new_dose_ms = clinic.next_due(1)
    assert new_dose_ms != old_dose_ms
    events = clinic.reach(max(old_dose_ms, old_measure_ms))
    assert not [e for e in events if e[0].endswith("_due")]
    assert get_reminder(clinic.chain.app, clinic.patient.id, old_dose_ms, 1) is None
    events = clinic.reach(new_dose_ms)
    assert [a["version"] for name, a in events if name == "care.dose_due"] == ["2"]


def test_a_stale_occurrence_task_does_nothing(clinic: Clinic) -> None:
    clinic.set_plan()
    due_ms = clinic.next_due(1)
    clinic.set_plan(base=1)  # the same schedule, version 2: version 1's tasks are stale
    ctx, buffer = care_context(clinic.chain)
    stale = OccurrenceJob(clinic.patient.id, 1, 1, due_ms)
    task = DueTask(b"", due_ms, "care", "occurrence", OCCURRENCE_JOB_CODEC.encode(stale))
    CareModule().on_due(ctx, task)
    assert buffer.changes() == {} and ctx.events == []
    # the current version's task opens the reminder
    current = OccurrenceJob(clinic.patient.id, 1, 2, due_ms)
    task = DueTask(b"", due_ms, "care", "occurrence", OCCURRENCE_JOB_CODEC.encode(current))
    CareModule().on_due(ctx, task)
    assert [e.name for e in ctx.events] == ["care.dose_due"]


def test_an_escalation_of_a_closed_reminder_does_nothing(clinic: Clinic) -> None:
    clinic.set_plan()
    due_ms = clinic.next_due(1)
    clinic.reach(due_ms)
    clinic.chain.ok(clinic.patient, "care.ack", ack_payload(1, due_ms))
    ctx, buffer = care_context(clinic.chain)
    job = ESCALATION_JOB_CODEC.encode(EscalationJob(clinic.patient.id, 1, due_ms))
    CareModule().on_due(ctx, DueTask(b"", due_ms + GRACE_MS, "care", "escalate", job))
    assert buffer.changes() == {} and ctx.events == []


def test_a_deactivated_patient_gets_no_more_reminders(clinic: Clinic) -> None:
    clinic.set_plan((DOSE,))
    due_ms = clinic.next_due(1)
    clinic.chain.ok(clinic.hospital, "identity.deactivate", deactivate_payload(clinic.patient.id))
    assert not [e for e in clinic.reach(due_ms) if e[0] == "care.dose_due"]
    assert get_next_occurrence(clinic.chain.app, clinic.patient.id, 1) is None
    assert clinic.chain.get(identity_key(clinic.patient.id)) is not None


# -- readings close measurement reminders --------------------------------------------------------


def test_a_reading_near_the_due_time_closes_the_measurement_reminder(clinic: Clinic) -> None:
    clinic.set_plan()
    due_ms = clinic.next_due(2)
    clinic.reach(due_ms + 10 * MINUTE_MS)
    clinic.reading(clinic.meter, bytes([1]) * 32, due_ms + 5 * MINUTE_MS)
    reminder = get_reminder(clinic.chain.app, clinic.patient.id, due_ms, 2)
    assert reminder is not None and reminder.status is ReminderStatus.DONE
    assert get_adherence(clinic.chain.app, clinic.patient.id, 2) == Adherence(1, 1, 0)
    assert not [e for e in clinic.reach(due_ms + GRACE_MS) if e[0] == "care.escalated"]


def test_a_reading_far_from_the_due_time_leaves_the_reminder_open(clinic: Clinic) -> None:
    clinic.set_plan()
    due_ms = clinic.next_due(2)
    clinic.reach(due_ms + 1)
    clinic.reading(clinic.patient, bytes([2]) * 32, due_ms - GRACE_MS - 1)
    reminder = get_reminder(clinic.chain.app, clinic.patient.id, due_ms, 2)
    assert reminder is not None and reminder.status is ReminderStatus.OPEN


def test_a_reading_notice_closes_the_nearest_open_measurement_only(clinic: Clinic) -> None:
    twice = ScheduleItem(2, ItemKind.MEASUREMENT, (600, 630))
    dose = ScheduleItem(3, ItemKind.DOSE, (615,))
    clinic.set_plan((twice, dose))
    first_ms = clinic.next_due(2)
    clinic.reach(first_ms)
    clinic.reach(first_ms + 30 * MINUTE_MS)  # both measurements and the dose are open
    ctx, _ = care_context(clinic.chain, caller="records")
    notice = ReadingNotice(clinic.patient.id, bytes([3]) * 32, first_ms + 10 * MINUTE_MS)
    closed = CareModule().on_call(ctx, "reading_committed", READING_NOTICE_CODEC.encode(notice))
    assert closed == reminder_key(clinic.patient.id, first_ms, 2)
    (event,) = ctx.events
    assert attributes(event)["record"] == (bytes([3]) * 32).hex()
    again = CareModule().on_call(ctx, "reading_committed", READING_NOTICE_CODEC.encode(notice))
    assert again == reminder_key(clinic.patient.id, first_ms + 30 * MINUTE_MS, 2)
    third = CareModule().on_call(ctx, "reading_committed", READING_NOTICE_CODEC.encode(notice))
    assert third == b""  # the dose is no measurement


def test_only_records_reports_readings(clinic: Clinic) -> None:
    ctx, _ = care_context(clinic.chain, caller="consent")
    notice = READING_NOTICE_CODEC.encode(ReadingNotice(clinic.patient.id, bytes(32), 0))
    with pytest.raises(TxFailed) as failure:
        CareModule().on_call(ctx, "reading_committed", notice)
    assert failure.value.code is ResultCode.UNAUTHORIZED


# -- alerts --------------------------------------------------------------------------------------


def test_alerts_are_shared_only_under_the_patients_policy(clinic: Clinic) -> None:
    clinic.set_plan()
    alert = alert_payload(AlertLevel.HYPO_2, bytes([9]) * 32)
    clinic.chain.fails(clinic.patient, "care.alert", alert, ResultCode.UNAUTHORIZED)
    clinic.chain.ok(clinic.patient, "care.set_policy", set_policy_payload(True))
    receipt = clinic.chain.ok(clinic.meter, "care.alert", alert)
    (event,) = clinic.chain.events(receipt, "care.alert_raised")
    assert attributes(event)["level"] == "hypo_2"
    assert attributes(event)["practitioner"] == clinic.doctor.id.hex()
    assert attributes(event)["patient"] == clinic.patient.id.hex()
    clinic.chain.fails(clinic.doctor, "care.alert", alert, ResultCode.UNAUTHORIZED)
    clinic.chain.fails(
        clinic.doctor, "care.set_policy", set_policy_payload(True), ResultCode.UNAUTHORIZED
    )
    clinic.chain.ok(clinic.patient, "care.set_policy", set_policy_payload(False))
    clinic.chain.fails(clinic.patient, "care.alert", alert, ResultCode.UNAUTHORIZED)


def test_an_alert_without_a_plan_has_nobody_to_tell(clinic: Clinic) -> None:
    clinic.chain.ok(clinic.patient, "care.set_policy", set_policy_payload(True))
    alert = alert_payload(AlertLevel.HYPER_1, bytes(32))
    clinic.chain.fails(clinic.patient, "care.alert", alert, ResultCode.NOT_FOUND)


# -- queries -------------------------------------------------------------------------------------


def test_query_paths_name_the_keys_and_values_render_as_json(clinic: Clinic) -> None:
    clinic.set_plan()
    due_ms = clinic.next_due(1)
    clinic.reach(due_ms)
    module = CareModule()
    patient = clinic.patient.id
    key = module.query_key(f"r/{patient.hex()}/{due_ms}/01")
    assert key == reminder_key(patient, due_ms, 1)
    stored = clinic.chain.get(key)
    assert stored is not None
    assert module.render(key, stored) == {
        "patient": patient.hex(),
        "due_ms": due_ms,
        "item": 1,
        "status": "open",
        "kind": "dose",
        "closed_ms": 0,
        "plan_version": 1,
    }
    plan_key = module.query_key(f"p/{patient.hex()}")
    plan_json = module.render(plan_key, clinic.chain.get(plan_key) or b"")
    assert isinstance(plan_json, dict) and plan_json["practitioner"] == clinic.doctor.id.hex()
    assert plan_json["items"] == [
        {"item": 1, "kind": "dose", "times_of_day_minutes": [480, 1200]},
        {"item": 2, "kind": "measurement", "times_of_day_minutes": [450]},
    ]
    adherence_key = module.query_key(f"a/{patient.hex()}/01")
    assert module.render(adherence_key, clinic.chain.get(adherence_key) or b"") == {
        "patient": patient.hex(),
        "item": 1,
        "due": 1,
        "done": 0,
        "missed": 0,
    }
    assert module.query_key(f"r/{patient.hex()}") == b"care/r/" + patient
    for bad in ("x/00", f"p/{patient.hex()}/1", "r/zz", f"r/{patient.hex()}/-1"):
        with pytest.raises(ValueError):
            module.query_key(bad)


def test_after_a_halt_the_occurrences_slept_through_are_skipped(clinic: Clinic) -> None:
    clinic.set_plan((MEASURE,))
    due_ms = clinic.next_due(2)
    events = clinic.reach(due_ms + 3 * DAY_MS + 1)
    assert [a["due_ms"] for name, a in events if name == "care.measurement_due"] == [str(due_ms)]
    assert clinic.next_due(2) == due_ms + 4 * DAY_MS
