"""Care's reminder lifecycle, the writes of its transactions and due work: an item's next
occurrence scheduled (one pending task per item), a plan's pending occurrences cancelled,
a reminder opened with its escalation, closed as DONE, and the adherence counters kept."""

from __future__ import annotations

from dataclasses import replace

from health.contracts.care_schedule import next_occurrence_ms
from health.contracts.care_types import (
    ADHERENCE_CODEC,
    ESCALATION_JOB_CODEC,
    NEXT_OCCURRENCE_CODEC,
    OCCURRENCE_JOB_CODEC,
    REMINDER_CODEC,
    Adherence,
    CarePlan,
    EscalationJob,
    ItemKind,
    NextOccurrence,
    OccurrenceJob,
    Reminder,
    ReminderStatus,
    ScheduleItem,
    adherence_key,
    get_adherence,
    get_next_occurrence,
    get_plan,
    next_key,
    reminder_key,
)
from health.contracts.common import param
from node.app.module import ExecContext


def schedule_next(
    ctx: ExecContext, patient: bytes, plan: CarePlan, entry: ScheduleItem, *, after_ms: int
) -> None:
    """Schedule the next occurrence of ``entry`` after ``after_ms`` and remember its task."""
    due_ms = next_occurrence_ms(entry.times_of_day_minutes, plan.tz_offset_minutes, after_ms)
    job = OccurrenceJob(patient, entry.item, plan.version, due_ms)
    task = ctx.schedule(due_ms, "occurrence", OCCURRENCE_JOB_CODEC.encode(job))
    pending = NextOccurrence(due_ms, plan.version, task)
    ctx.view.set(next_key(patient, entry.item), NEXT_OCCURRENCE_CODEC.encode(pending))


def cancel_pending(ctx: ExecContext, patient: bytes, old: CarePlan | None, new: CarePlan) -> None:
    """Cancel the old plan's pending occurrences (stale tasks would do nothing anyway:
    this only keeps the queue short) and forget items the new plan drops."""
    if old is None:
        return
    kept = {entry.item for entry in new.items}
    for entry in old.items:
        pending = get_next_occurrence(ctx.view, patient, entry.item)
        if pending is not None:
            ctx.cancel(pending.task)
        if entry.item not in kept:
            ctx.view.delete(next_key(patient, entry.item))


def open_reminder(
    ctx: ExecContext, job: OccurrenceJob, plan: CarePlan, entry: ScheduleItem
) -> None:
    """Open the reminder of ``job`` and schedule its escalation ``reminder_grace_ms`` later."""
    grace_ms = param(ctx.view, "reminder_grace_ms")
    escalation = EscalationJob(job.patient, job.item, job.due_ms)
    task = ctx.schedule(job.due_ms + grace_ms, "escalate", ESCALATION_JOB_CODEC.encode(escalation))
    reminder = Reminder(ReminderStatus.OPEN, entry.kind, 0, plan.version, task)
    ctx.view.set(reminder_key(job.patient, job.due_ms, job.item), REMINDER_CODEC.encode(reminder))
    count_adherence(ctx, job.patient, job.item, due=1)
    name = "dose_due" if entry.kind is ItemKind.DOSE else "measurement_due"
    ctx.emit(
        name,
        patient=job.patient,
        item=job.item,
        due_ms=job.due_ms,
        practitioner=plan.practitioner,
        version=plan.version,
    )


def close_reminder(
    ctx: ExecContext,
    patient: bytes,
    due_ms: int,
    item: int,
    reminder: Reminder,
    *,
    by: bytes = b"",
    record: bytes = b"",
) -> None:
    """An OPEN reminder becomes DONE (by an ack of ``by`` or the reading ``record``)."""
    if reminder.escalation_task:
        ctx.cancel(reminder.escalation_task)
    done = replace(
        reminder, status=ReminderStatus.DONE, closed_ms=ctx.block.time_ms, escalation_task=b""
    )
    ctx.view.set(reminder_key(patient, due_ms, item), REMINDER_CODEC.encode(done))
    count_adherence(ctx, patient, item, done=1)
    plan = get_plan(ctx.view, patient)
    ctx.emit(
        "acknowledged",
        patient=patient,
        item=item,
        due_ms=due_ms,
        practitioner=b"" if plan is None else plan.practitioner,
        by=by,
        record=record,
    )


def count_adherence(
    ctx: ExecContext, patient: bytes, item: int, *, due: int = 0, done: int = 0, missed: int = 0
) -> None:
    """Add to the adherence counters of ``item``."""
    counts = get_adherence(ctx.view, patient, item)
    updated = Adherence(counts.due + due, counts.done + done, counts.missed + missed)
    ctx.view.set(adherence_key(patient, item), ADHERENCE_CODEC.encode(updated))
