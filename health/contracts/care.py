"""Diabetes care plans, their reminders, adherence and alerts (docs/HEALTH.md, care).

Nothing here is health content: medication names, doses and glucose targets live in the
encrypted FHIR ``CarePlan`` record the plan points at. On chain: the plan's version, record
id and ciphertext hash, its practitioner, and a schedule of numbered items (a dose of
medication item *n*, or a glucose measurement) at times of day in the patient's time zone.

State (all under ``care/``):

- ``p/<patient>`` -> ``CarePlan``: version (+1 per change), record, practitioner, schedule;
- ``n/<patient><item u8>`` -> ``NextOccurrence``: the one pending occurrence task of an item
  (its due time, plan version and task id), so a plan change cancels it;
- ``r/<patient><due_ms u64><item u8>`` -> ``Reminder``: OPEN, then DONE or MISSED;
- ``a/<patient><item u8>`` -> ``Adherence``: due, done, missed counters;
- ``s/<patient>`` -> ``AlertPolicy``: whether the patient shares alerts.

Transactions: ``care.set_plan`` (a practitioner whose treatment access to the patient's
``CarePlan`` data ``consent.find_access`` allows), ``care.ack`` (the patient; also a paired
device for a measurement), ``care.set_policy`` (the patient), ``care.alert`` (the patient
or a paired device, if the policy shares alerts). Module call served: ``reading_committed``
(from ``records``, a ``common.ReadingNotice``): a glucose reading closes the OPEN
measurement reminder nearest to its time within ``reminder_grace_ms``.

Due work: ``occurrence`` (open a reminder, schedule its escalation and the item's next
occurrence; only the next occurrence of each item is ever scheduled, so the queue stays
bounded; a task of a stale plan version does nothing) and ``escalate`` (an OPEN reminder
``reminder_grace_ms`` after its due time becomes MISSED).

The module's parts: ``care_types`` (records, codecs, keys, reads and payload builders),
``care_schedule`` (occurrence times, schedule checks and reminder scans), ``care_reminders``
(a reminder's lifecycle: occurrences scheduled, reminders opened and closed, adherence
counted), ``care_render`` (query paths and JSON); this module holds the authority checks and
``CareModule`` and re-exports every public name of the parts it was split into.
"""

from __future__ import annotations

from dataclasses import replace

from health.contracts.care_reminders import (
    cancel_pending,
    close_reminder,
    count_adherence,
    open_reminder,
    schedule_next,
)
from health.contracts.care_render import PATH_LAYOUTS, render_care, render_plan
from health.contracts.care_schedule import (
    CHUNK_SCAN_LIMIT,
    CHUNK_SHIFT,
    LIST_SPAN_MS,
    MAX_LIST_LIMIT,
    check_items,
    list_reminders,
    nearest_open_measurement,
    next_occurrence_ms,
)
from health.contracts.care_types import (
    ACK_CODEC,
    ADHERENCE_CODEC,
    ADHERENCE_PREFIX,
    ALERT_CODEC,
    ALERT_POLICY_CODEC,
    CARE,
    CARE_PLAN_CODEC,
    CARE_PLAN_RESOURCE_TYPE,
    ESCALATION_JOB_CODEC,
    MAX_ITEM_NUMBER,
    MAX_ITEMS,
    MAX_TIMES_PER_ITEM,
    MAX_TZ_OFFSET_MINUTES,
    MIN_TZ_OFFSET_MINUTES,
    MINUTE_MS,
    MINUTES_PER_DAY,
    NEXT_OCCURRENCE_CODEC,
    NEXT_PREFIX,
    OCCURRENCE_JOB_CODEC,
    PLAN_PREFIX,
    POLICY_PREFIX,
    RECORDS_MODULE,
    REMINDER_CODEC,
    REMINDER_PREFIX,
    SCHEDULE_ITEM_CODEC,
    SET_PLAN_CODEC,
    SET_POLICY_CODEC,
    Ack,
    Adherence,
    Alert,
    AlertLevel,
    AlertPolicy,
    CarePlan,
    EscalationJob,
    ItemKind,
    NextOccurrence,
    OccurrenceJob,
    Reminder,
    ReminderEntry,
    ReminderStatus,
    ScheduleItem,
    SetPlan,
    SetPolicy,
    T,
    ack_payload,
    adherence_key,
    alert_payload,
    decode_stored,
    get_adherence,
    get_next_occurrence,
    get_plan,
    get_policy,
    get_reminder,
    next_key,
    plan_key,
    policy_key,
    reminder_key,
    set_plan_payload,
    set_policy_payload,
)
from health.contracts.common import (
    READING_NOTICE_CODEC,
    AccessBasis,
    HealthRole,
    Identity,
    Purpose,
    get_identity,
    is_acting,
    param,
    require_identity,
    require_sender,
)
from health.contracts.consent import ScanReader, find_access, key_from_path
from node.app.due import DueTask
from node.app.errors import TxFailed
from node.app.module import CheckContext, ExecContext, JsonValue, KeyReader, Module, decode_payload
from node.codec import U32_MAX
from node.types import ResultCode, Transaction

__all__ = [
    "ACK_CODEC",
    "ADHERENCE_CODEC",
    "ADHERENCE_PREFIX",
    "ALERT_CODEC",
    "ALERT_POLICY_CODEC",
    "CARE",
    "CARE_PLAN_CODEC",
    "CARE_PLAN_RESOURCE_TYPE",
    "CHUNK_SCAN_LIMIT",
    "CHUNK_SHIFT",
    "ESCALATION_JOB_CODEC",
    "LIST_SPAN_MS",
    "MAX_ITEMS",
    "MAX_ITEM_NUMBER",
    "MAX_LIST_LIMIT",
    "MAX_TIMES_PER_ITEM",
    "MAX_TZ_OFFSET_MINUTES",
    "MINUTES_PER_DAY",
    "MINUTE_MS",
    "MIN_TZ_OFFSET_MINUTES",
    "NEXT_OCCURRENCE_CODEC",
    "NEXT_PREFIX",
    "OCCURRENCE_JOB_CODEC",
    "PATH_LAYOUTS",
    "PLAN_PREFIX",
    "POLICY_PREFIX",
    "RECORDS_MODULE",
    "REMINDER_CODEC",
    "REMINDER_PREFIX",
    "SCHEDULE_ITEM_CODEC",
    "SET_PLAN_CODEC",
    "SET_POLICY_CODEC",
    "Ack",
    "Adherence",
    "Alert",
    "AlertLevel",
    "AlertPolicy",
    "CareModule",
    "CarePlan",
    "EscalationJob",
    "ItemKind",
    "NextOccurrence",
    "OccurrenceJob",
    "Reminder",
    "ReminderEntry",
    "ReminderStatus",
    "ScheduleItem",
    "SetPlan",
    "SetPolicy",
    "T",
    "ack_payload",
    "adherence_key",
    "alert_payload",
    "authorize_plan",
    "check_items",
    "decode_stored",
    "get_adherence",
    "get_next_occurrence",
    "get_plan",
    "get_policy",
    "get_reminder",
    "list_reminders",
    "nearest_open_measurement",
    "next_key",
    "next_occurrence_ms",
    "patient_of_sender",
    "plan_key",
    "policy_key",
    "reminder_key",
    "render_care",
    "render_plan",
    "set_plan_payload",
    "set_policy_payload",
]


# -- authority ---------------------------------------------------------------------------------


def authorize_plan(reader: ScanReader, sender: bytes, patient: bytes, now_ms: int) -> Identity:
    """The acting practitioner ``sender`` if a treatment grant or emergency access of the
    active patient ``patient`` covers its ``CarePlan`` data now; else ``TxFailed``."""
    practitioner = require_sender(reader, sender, {HealthRole.PRACTITIONER}, "set a care plan")
    require_identity(reader, patient, {HealthRole.PATIENT}, "care plan patient")
    access = find_access(
        reader,
        patient=patient,
        requester=practitioner.id,
        resource_type=CARE_PLAN_RESOURCE_TYPE,
        code="",
        data_time_ms=now_ms,
        now_ms=now_ms,
        purposes=frozenset({Purpose.TREATMENT}),
    )
    if access is None or access.basis not in (AccessBasis.GRANT, AccessBasis.EMERGENCY):
        raise TxFailed(ResultCode.UNAUTHORIZED, "no treatment access to this patient's care plan")
    return practitioner


def patient_of_sender(reader: KeyReader, sender: bytes, what: str) -> tuple[bytes, Identity]:
    """The patient an acting patient or paired device acts for, and the sender identity."""
    identity = require_sender(reader, sender, {HealthRole.PATIENT, HealthRole.DEVICE}, what)
    patient = identity.id if identity.role is HealthRole.PATIENT else identity.parent
    return patient, identity


# -- the module --------------------------------------------------------------------------------


class CareModule(Module):
    """Care plans, reminders, adherence and alert policy (see the module docstring)."""

    name = CARE
    actions = frozenset({"set_plan", "ack", "set_policy", "alert"})

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        now_ms = ctx.block.time_ms
        if tx.action == "set_plan":
            payload = decode_payload(SET_PLAN_CODEC, tx.payload)
            check_items(payload.items)
            authorize_plan(ctx.view, tx.sender, payload.patient, now_ms)
        elif tx.action == "ack":
            decode_payload(ACK_CODEC, tx.payload)
            patient_of_sender(ctx.view, tx.sender, "acknowledge a reminder")
        elif tx.action == "set_policy":
            decode_payload(SET_POLICY_CODEC, tx.payload)
            require_sender(ctx.view, tx.sender, {HealthRole.PATIENT}, "set an alert policy")
        else:
            decode_payload(ALERT_CODEC, tx.payload)
            patient_of_sender(ctx.view, tx.sender, "raise an alert")

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        if tx.action == "set_plan":
            self._set_plan(ctx, decode_payload(SET_PLAN_CODEC, tx.payload))
        elif tx.action == "ack":
            self._ack(ctx, decode_payload(ACK_CODEC, tx.payload))
        elif tx.action == "set_policy":
            payload = decode_payload(SET_POLICY_CODEC, tx.payload)
            patient = require_sender(
                ctx.view, ctx.require_sender(), {HealthRole.PATIENT}, "set an alert policy"
            ).id
            policy = AlertPolicy(payload.share_alerts, ctx.block.time_ms)
            ctx.view.set(policy_key(patient), ALERT_POLICY_CODEC.encode(policy))
            ctx.emit("policy_set", patient=patient, share_alerts=int(payload.share_alerts))
        else:
            self._alert(ctx, decode_payload(ALERT_CODEC, tx.payload))

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        if task.kind == "occurrence":
            self._occurrence(ctx, decode_payload(OCCURRENCE_JOB_CODEC, task.payload))
        elif task.kind == "escalate":
            self._escalate(ctx, decode_payload(ESCALATION_JOB_CODEC, task.payload))
        else:
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"care has no task {task.kind!r}")

    def on_call(self, ctx: ExecContext, action: str, payload: bytes) -> bytes:
        """``reading_committed`` (``common.READING_NOTICE_CODEC``), from ``records`` only:
        returns the key of the reminder it closed, or b"" if none was open near it."""
        if action != "reading_committed":
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"care serves no call {action!r}")
        if ctx.caller != RECORDS_MODULE:
            raise TxFailed(ResultCode.UNAUTHORIZED, "only records reports readings")
        notice = decode_payload(READING_NOTICE_CODEC, payload)
        grace_ms = param(ctx.view, "reminder_grace_ms")
        found = nearest_open_measurement(ctx.view, notice.patient, notice.data_time_ms, grace_ms)
        if found is None:
            return b""
        close_reminder(
            ctx, notice.patient, found.due_ms, found.item, found.reminder, record=notice.record
        )
        return reminder_key(notice.patient, found.due_ms, found.item)

    # -- transactions ----------------------------------------------------------------------

    def _set_plan(self, ctx: ExecContext, payload: SetPlan) -> None:
        check_items(payload.items)
        now_ms = ctx.block.time_ms
        practitioner = authorize_plan(ctx.view, ctx.require_sender(), payload.patient, now_ms)
        current = get_plan(ctx.view, payload.patient)
        current_version = 0 if current is None else current.version
        if payload.base_version != current_version:
            raise TxFailed(
                ResultCode.CONFLICT,
                f"the plan is at version {current_version}, not {payload.base_version}",
            )
        if current_version >= U32_MAX:
            raise TxFailed(ResultCode.LIMIT_EXCEEDED, "the plan version is exhausted")
        plan = CarePlan(
            version=current_version + 1,
            plan_record=payload.plan_record,
            plan_sha256=payload.plan_sha256,
            practitioner=practitioner.id,
            institution=practitioner.parent,
            updated_ms=now_ms,
            tz_offset_minutes=payload.tz_offset_minutes,
            items=payload.items,
        )
        ctx.view.set(plan_key(payload.patient), CARE_PLAN_CODEC.encode(plan))
        cancel_pending(ctx, payload.patient, current, plan)
        for entry in plan.items:
            schedule_next(ctx, payload.patient, plan, entry, after_ms=now_ms)
        ctx.emit(
            "plan_set",
            patient=payload.patient,
            practitioner=practitioner.id,
            institution=practitioner.parent,
            version=plan.version,
            record=plan.plan_record,
            items=len(plan.items),
        )

    def _ack(self, ctx: ExecContext, payload: Ack) -> None:
        patient, sender = patient_of_sender(
            ctx.view, ctx.require_sender(), "acknowledge a reminder"
        )
        reminder = get_reminder(ctx.view, patient, payload.due_ms, payload.item)
        if reminder is None:
            raise TxFailed(
                ResultCode.NOT_FOUND, f"no reminder of item {payload.item} at {payload.due_ms}"
            )
        if sender.role is HealthRole.DEVICE and reminder.kind is not ItemKind.MEASUREMENT:
            raise TxFailed(ResultCode.UNAUTHORIZED, "a device acknowledges measurements only")
        if reminder.status is not ReminderStatus.OPEN:
            raise TxFailed(ResultCode.CONFLICT, f"the reminder is {reminder.status.name.lower()}")
        close_reminder(ctx, patient, payload.due_ms, payload.item, reminder, by=sender.id)

    def _alert(self, ctx: ExecContext, payload: Alert) -> None:
        patient, sender = patient_of_sender(ctx.view, ctx.require_sender(), "raise an alert")
        policy = get_policy(ctx.view, patient)
        if policy is None or not policy.share_alerts:
            raise TxFailed(ResultCode.UNAUTHORIZED, "the patient's policy shares no alerts")
        plan = get_plan(ctx.view, patient)
        if plan is None:
            raise TxFailed(ResultCode.NOT_FOUND, "no care plan: no practitioner to alert")
        ctx.emit(
            "alert_raised",
            patient=patient,
            level=payload.level.name.lower(),
            practitioner=plan.practitioner,
            record=payload.record,
            by=sender.id,
        )

    # -- due work --------------------------------------------------------------------------

    def _occurrence(self, ctx: ExecContext, job: OccurrenceJob) -> None:
        plan = get_plan(ctx.view, job.patient)
        if plan is None or plan.version != job.plan_version:
            return  # a plan change made this task stale (and normally cancelled it)
        entry = next((e for e in plan.items if e.item == job.item), None)
        if entry is None:
            return
        if not is_acting(ctx.view, get_identity(ctx.view, job.patient)):
            ctx.view.delete(next_key(job.patient, job.item))
            return  # a deactivated patient gets no more reminders (a new plan restarts them)
        key = reminder_key(job.patient, job.due_ms, job.item)
        if ctx.view.get(key) is None:
            open_reminder(ctx, job, plan, entry)
        # The next occurrence not yet past: after a halt of the chain, the occurrences it
        # slept through are skipped rather than opened one block after another.
        after_ms = max(job.due_ms, ctx.block.time_ms - 1)
        schedule_next(ctx, job.patient, plan, entry, after_ms=after_ms)

    def _escalate(self, ctx: ExecContext, job: EscalationJob) -> None:
        reminder = get_reminder(ctx.view, job.patient, job.due_ms, job.item)
        if reminder is None or reminder.status is not ReminderStatus.OPEN:
            return  # closed in time (closing normally cancels this task)
        missed = replace(
            reminder,
            status=ReminderStatus.MISSED,
            closed_ms=ctx.block.time_ms,
            escalation_task=b"",
        )
        ctx.view.set(reminder_key(job.patient, job.due_ms, job.item), REMINDER_CODEC.encode(missed))
        count_adherence(ctx, job.patient, job.item, missed=1)
        plan = get_plan(ctx.view, job.patient)
        ctx.emit(
            "escalated",
            patient=job.patient,
            practitioner=b"" if plan is None else plan.practitioner,
            item=job.item,
            due_ms=job.due_ms,
            kind=reminder.kind.name.lower(),
        )

    # -- queries ---------------------------------------------------------------------------

    def query_key(self, path: str) -> bytes:
        """``p/<patient>``, ``s/<patient>``, ``a/<patient>[/<item>]``,
        ``n/<patient>[/<item>]``, ``r/<patient>[/<due_ms>[/<item>]]``: ids and the item in
        hex (one byte), the due time in decimal ms; a shorter path is a prefix."""
        return key_from_path(b"care/", path, PATH_LAYOUTS)

    def render(self, key: bytes, value: bytes) -> JsonValue:
        return render_care(key, value)
