"""Care's queries: the key layouts of its readable paths, and a stored value as JSON (with
the patient, due time and item of its key)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from health.contracts.care_types import (
    ADHERENCE_CODEC,
    ADHERENCE_PREFIX,
    ALERT_POLICY_CODEC,
    CARE_PLAN_CODEC,
    NEXT_OCCURRENCE_CODEC,
    NEXT_PREFIX,
    PLAN_PREFIX,
    POLICY_PREFIX,
    REMINDER_CODEC,
    REMINDER_PREFIX,
    CarePlan,
    decode_stored,
)
from health.contracts.common import ID_BYTES
from health.contracts.consent import TIME_SEGMENT
from node.app.module import JsonValue

PATH_LAYOUTS: Final[Mapping[str, Sequence[int]]] = {
    "p": (ID_BYTES,),
    "s": (ID_BYTES,),
    "a": (ID_BYTES, 1),
    "n": (ID_BYTES, 1),
    "r": (ID_BYTES, TIME_SEGMENT, 1),
}


def render_plan(plan: CarePlan) -> dict[str, JsonValue]:
    """A care plan as JSON."""
    items: list[JsonValue] = [
        {
            "item": entry.item,
            "kind": entry.kind.name.lower(),
            "times_of_day_minutes": list(entry.times_of_day_minutes),
        }
        for entry in plan.items
    ]
    return {
        "version": plan.version,
        "plan_record": plan.plan_record.hex(),
        "plan_sha256": plan.plan_sha256.hex(),
        "practitioner": plan.practitioner.hex(),
        "institution": plan.institution.hex(),
        "updated_ms": plan.updated_ms,
        "tz_offset_minutes": plan.tz_offset_minutes,
        "items": items,
    }


def render_care(key: bytes, value: bytes) -> JsonValue:
    """A stored care value as JSON (with the patient, due time and item of its key)."""
    if key.startswith(PLAN_PREFIX):
        return {
            "patient": key[len(PLAN_PREFIX) :].hex(),
            **render_plan(decode_stored(CARE_PLAN_CODEC, value)),
        }
    if key.startswith(REMINDER_PREFIX):
        reminder = decode_stored(REMINDER_CODEC, value)
        start = len(REMINDER_PREFIX)
        return {
            "patient": key[start : start + ID_BYTES].hex(),
            "due_ms": int.from_bytes(key[start + ID_BYTES : start + ID_BYTES + 8], "big"),
            "item": key[-1],
            "status": reminder.status.name.lower(),
            "kind": reminder.kind.name.lower(),
            "closed_ms": reminder.closed_ms,
            "plan_version": reminder.plan_version,
        }
    if key.startswith(ADHERENCE_PREFIX):
        counts = decode_stored(ADHERENCE_CODEC, value)
        return {
            "patient": key[len(ADHERENCE_PREFIX) : -1].hex(),
            "item": key[-1],
            "due": counts.due,
            "done": counts.done,
            "missed": counts.missed,
        }
    if key.startswith(NEXT_PREFIX):
        pending = decode_stored(NEXT_OCCURRENCE_CODEC, value)
        return {
            "patient": key[len(NEXT_PREFIX) : -1].hex(),
            "item": key[-1],
            "due_ms": pending.due_ms,
            "plan_version": pending.plan_version,
        }
    if key.startswith(POLICY_PREFIX):
        policy = decode_stored(ALERT_POLICY_CODEC, value)
        return {
            "patient": key[len(POLICY_PREFIX) :].hex(),
            "share_alerts": policy.share_alerts,
            "updated_ms": policy.updated_ms,
        }
    return {"hex": value.hex()}
