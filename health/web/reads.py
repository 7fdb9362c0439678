"""The health API's reads of the committed state, as response models.

Each function runs inside one ``NodeServices.query`` (on the core task, against one
committed height): it must be quick, and every scan is bounded (``limit`` entries, or the
contracts' own bounds). They use the contracts' readers and renderings (``get_*``,
``list_*``, ``render_*``), so the API shows what the chain holds, named as the state
queries name it. ``now_ms`` is the node's clock, used to tell grants in force (an expiry
may have passed before the chain's expiry task ran).
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import IntEnum
from typing import Final

from health.contracts import audit, care, consent, governance, referral
from health.contracts.common import (
    CHILD_PREFIX,
    ID_BYTES,
    PARAM_DEFAULTS,
    get_identity,
    param,
)
from health.contracts.identity import render_identity
from health.web.errors import WebError
from health.web.models import (
    AdherenceItemOut,
    AdherenceOut,
    AuditEntryOut,
    AuditOut,
    BallotOut,
    CarePlanOut,
    ChildrenOut,
    ConsentedPatientOut,
    ConsentOut,
    DaoMemberOut,
    DaoOut,
    EmergencyOut,
    GrantsOut,
    IdentityOut,
    InstitutionOut,
    InstitutionsOut,
    MemberOut,
    PatientReferralsOut,
    PlanOut,
    PractitionerPatientsOut,
    PractitionerReferralsOut,
    ProposalOut,
    ProposalsOut,
    ReferralOut,
    ReminderOut,
    RemindersOut,
    ValidatorOut,
)
from node.app.module import JsonValue
from node.runtime.extension import StateReader

MAX_PROPOSAL_SCAN: Final = 1_000
"""Proposal numbers looked at, newest first, for a listing by status."""
MAX_SCAN: Final = 1_000
"""The most entries one scan of the node's committed state reads."""
MAX_OPEN_INDEX: Final = min(MAX_SCAN, governance.MAX_MEMBERS * governance.MAX_OPEN_PROPOSALS)


def identity_out(reader: StateReader, identity_id: bytes) -> IdentityOut:
    """The identity ``identity_id`` (``not_found`` if none)."""
    found = get_identity(reader, identity_id)
    if found is None:
        raise WebError("not_found", f"no identity {identity_id.hex()}")
    return IdentityOut.model_validate(render_identity(found))


def identity_or_none(reader: StateReader, identity_id: bytes) -> IdentityOut | None:
    found = get_identity(reader, identity_id)
    return None if found is None else IdentityOut.model_validate(render_identity(found))


def _members(reader: StateReader) -> list[tuple[bytes, governance.Member]]:
    entries = reader.iterate(governance.MEMBER_PREFIX, governance.MAX_MEMBERS)
    return [
        (key[len(governance.MEMBER_PREFIX) :], governance.MEMBER_CODEC.decode(value))
        for key, value in entries
    ]


def _member_out(member: governance.Member) -> MemberOut:
    return MemberOut(
        validator_key=member.validator_key.hex(),
        power=member.power,
        effective_power=member.effective_power,
        weight=member.weight,
        status=member.status.name.lower(),  # type: ignore[arg-type]
        admitted_height=member.admitted_height,
    )


def institutions(reader: StateReader) -> InstitutionsOut:
    """The member institutions with their labels."""
    found: list[InstitutionOut] = []
    for institution, member in _members(reader):
        identity = get_identity(reader, institution)
        found.append(
            InstitutionOut(
                id=institution.hex(),
                label="" if identity is None else identity.label,
                kind="" if identity is None else identity.kind,
                active=identity is not None and identity.active,
                member=_member_out(member),
            )
        )
    return InstitutionsOut(institutions=found)


def children(reader: StateReader, parent: bytes, limit: int) -> ChildrenOut:
    """The identities ``parent`` registered or paired (``not_found`` for no parent)."""
    identity_out(reader, parent)
    entries = reader.iterate(CHILD_PREFIX + parent, limit + 1)
    kids = [identity_or_none(reader, key[-ID_BYTES:]) for key, _ in entries[:limit]]
    return ChildrenOut(
        parent=parent.hex(),
        children=[kid for kid in kids if kid is not None],
        truncated=len(entries) > limit,
    )


def _consent(grant: consent.Grant) -> ConsentOut:
    return ConsentOut.model_validate(consent.render_consent(grant))


def _emergency(access: consent.EmergencyAccess) -> EmergencyOut:
    return EmergencyOut.model_validate(consent.render_emergency(access))


def grants(reader: StateReader, patient: bytes, limit: int) -> GrantsOut:
    """Every grant of ``patient`` (any state) and every emergency access to it."""
    identity_out(reader, patient)
    found = consent.list_grants(reader, patient, limit + 1)
    accesses = consent.list_emergency_accesses(reader, patient, limit)
    return GrantsOut(
        patient=patient.hex(),
        grants=[_consent(grant) for grant in found[:limit]],
        emergency_accesses=[_emergency(access) for access in accesses],
        truncated=len(found) > limit,
    )


def consented_patients(
    reader: StateReader, practitioner: bytes, limit: int, now_ms: int
) -> PractitionerPatientsOut:
    """The patients whose grants to ``practitioner`` are in force (from the grantee index),
    and its open emergency accesses."""
    identity_out(reader, practitioner)
    prefix = consent.GRANTEE_INDEX_PREFIX + practitioner
    entries = reader.iterate(prefix, limit + 1)
    by_patient: dict[bytes, list[consent.Grant]] = {}
    for key, _ in entries[:limit]:
        patient, grant_id = key[len(prefix) : len(prefix) + ID_BYTES], key[-ID_BYTES:]
        grant = consent.get_grant(reader, patient, grant_id)
        if grant is not None and consent.grant_in_force(grant, now_ms):
            by_patient.setdefault(patient, []).append(grant)
    patients = [
        ConsentedPatientOut(
            patient=patient.hex(),
            identity=identity_or_none(reader, patient),
            expires_ms=max(grant.expires_ms for grant in found),
            grants=[_consent(grant) for grant in found],
        )
        for patient, found in by_patient.items()
    ]
    index = consent.EMERGENCY_INDEX_PREFIX + practitioner
    accesses = []
    for key, _ in reader.iterate(index, limit):
        patient, access_id = key[len(index) : len(index) + ID_BYTES], key[-ID_BYTES:]
        access = consent.get_emergency_access(reader, patient, access_id)
        if access is not None and consent.emergency_open(access, now_ms):
            accesses.append(_emergency(access))
    return PractitionerPatientsOut(
        practitioner=practitioner.hex(),
        patients=patients,
        emergency_accesses=accesses,
        truncated=len(entries) > limit,
    )


def _plan_out(plan: care.CarePlan) -> CarePlanOut:
    return CarePlanOut.model_validate(care.render_plan(plan))


def plan(reader: StateReader, patient: bytes) -> PlanOut:
    """``patient``'s care plan (null without one)."""
    identity_out(reader, patient)
    found = care.get_plan(reader, patient)
    return PlanOut(patient=patient.hex(), plan=None if found is None else _plan_out(found))


def reminders(reader: StateReader, patient: bytes, from_ms: int, limit: int) -> RemindersOut:
    """``patient``'s reminders due in the 7 days from ``from_ms``, at most ``limit``."""
    identity_out(reader, patient)
    found = care.list_reminders(reader, patient, from_ms, limit)
    span_end = min(from_ms + care.LIST_SPAN_MS - 1, 2**64 - 1)
    next_from = found[-1].due_ms + 1 if len(found) == limit else span_end + 1
    return RemindersOut(
        patient=patient.hex(),
        from_ms=from_ms,
        to_ms=span_end,
        reminders=[
            ReminderOut(
                due_ms=entry.due_ms,
                item=entry.item,
                status=entry.reminder.status.name.lower(),  # type: ignore[arg-type]
                kind=entry.reminder.kind.name.lower(),  # type: ignore[arg-type]
                closed_ms=entry.reminder.closed_ms,
                plan_version=entry.reminder.plan_version,
            )
            for entry in found
        ],
        next_from_ms=min(next_from, 2**64 - 1),
    )


def adherence(reader: StateReader, patient: bytes) -> AdherenceOut:
    """The adherence counters of the items of ``patient``'s current plan."""
    identity_out(reader, patient)
    found = care.get_plan(reader, patient)
    items: list[AdherenceItemOut] = []
    for entry in () if found is None else found.items:
        counts = care.get_adherence(reader, patient, entry.item)
        items.append(
            AdherenceItemOut(
                item=entry.item,
                kind=entry.kind.name.lower(),  # type: ignore[arg-type]
                due=counts.due,
                done=counts.done,
                missed=counts.missed,
                done_pct=None if counts.due == 0 else 100.0 * counts.done / counts.due,
            )
        )
    return AdherenceOut(
        patient=patient.hex(), plan_version=None if found is None else found.version, items=items
    )


def _referral(found: referral.Referral) -> ReferralOut:
    return ReferralOut.model_validate(referral.render_referral(found))


def practitioner_referrals(
    reader: StateReader, practitioner: bytes, limit: int
) -> PractitionerReferralsOut:
    """Referrals to ``practitioner`` or to its institution, and those it made."""
    identity = identity_out(reader, practitioner)
    incoming = referral.list_incoming(reader, practitioner, limit)
    if identity.parent:
        seen = {item.id for item in incoming}
        to_institution = referral.list_incoming(reader, bytes.fromhex(identity.parent), limit)
        incoming += [item for item in to_institution if item.id not in seen]
    outgoing = referral.list_outgoing(reader, practitioner, limit)
    return PractitionerReferralsOut(
        practitioner=practitioner.hex(),
        incoming=[_referral(item) for item in incoming[:limit]],
        outgoing=[_referral(item) for item in outgoing],
    )


def patient_referrals(reader: StateReader, patient: bytes, limit: int) -> PatientReferralsOut:
    """The referrals of ``patient``."""
    identity_out(reader, patient)
    found = referral.list_for_patient(reader, patient, limit)
    return PatientReferralsOut(patient=patient.hex(), referrals=[_referral(r) for r in found])


def validators(reader: StateReader) -> list[ValidatorOut]:
    """The members' validators with power now, with their institutions' labels."""
    found = []
    for institution, member in _members(reader):
        if member.effective_power > 0:
            identity = get_identity(reader, institution)
            found.append(
                ValidatorOut(
                    validator_key=member.validator_key.hex(),
                    power=member.effective_power,
                    institution=institution.hex(),
                    label="" if identity is None else identity.label,
                )
            )
    return found


def dao(reader: StateReader) -> DaoOut:
    """Members, validators and power, and every parameter's value now."""
    members_out = []
    for institution, member in _members(reader):
        identity = get_identity(reader, institution)
        members_out.append(
            DaoMemberOut(
                institution=institution.hex(),
                label="" if identity is None else identity.label,
                kind="" if identity is None else identity.kind,
                **_member_out(member).model_dump(),
            )
        )
    active = [m for m in members_out if m.status == "active"]
    found_validators = validators(reader)
    return DaoOut(
        members=members_out,
        validators=found_validators,
        total_power=sum(v.power for v in found_validators),
        total_weight=sum(m.weight for m in active),
        params={name: param(reader, name) for name in sorted(PARAM_DEFAULTS)},
    )


def _json(value: object) -> JsonValue:
    """A decoded record as JSON: bytes as hex, enums by name, records as objects."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, IntEnum):
        return value.name.lower()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: _json(getattr(value, item.name)) for item in fields(value)}
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _proposal_out(reader: StateReader, proposal: governance.Proposal) -> ProposalOut:
    body = _json(governance.BODY_CODECS[proposal.kind].decode(proposal.body))
    ballots = []
    prefix = governance.VOTE_PREFIX + proposal.id.to_bytes(8, "big")
    for key, value in reader.iterate(prefix, governance.MAX_MEMBERS):
        ballot = governance.BALLOT_CODEC.decode(value)
        ballots.append(
            BallotOut(
                member=key[len(prefix) :].hex(),
                choice=ballot.choice.name.lower(),  # type: ignore[arg-type]
                weight=ballot.weight,
            )
        )
    return ProposalOut(
        id=proposal.id,
        proposer=proposal.proposer.hex(),
        kind=proposal.kind.name.lower(),  # type: ignore[arg-type]
        body=body if isinstance(body, dict) else {"value": body},
        reason=proposal.reason,
        created_ms=proposal.created_ms,
        deadline_ms=proposal.deadline_ms,
        status=proposal.status.name.lower(),  # type: ignore[arg-type]
        yes_weight=proposal.yes_weight,
        no_weight=proposal.no_weight,
        abstain_weight=proposal.abstain_weight,
        outcome=proposal.outcome,
        ballots=ballots,
    )


def proposals(reader: StateReader, status: str, limit: int) -> ProposalsOut:
    """Proposals of ``status`` (``open``, ..., ``all``), the newest first."""
    if status == "open":
        entries = reader.iterate(governance.OPEN_PREFIX, MAX_OPEN_INDEX)
        ids = sorted((int.from_bytes(key[-8:], "big") for key, _ in entries), reverse=True)
    else:
        stored = reader.get(governance.NEXT_ID_KEY)
        next_id = governance.FIRST_PROPOSAL_ID if stored is None else int.from_bytes(stored, "big")
        ids = list(range(next_id - 1, max(0, next_id - 1 - MAX_PROPOSAL_SCAN), -1))
    found: list[ProposalOut] = []
    for proposal_id in ids:
        proposal = governance.get_proposal(reader, proposal_id)
        if proposal is None:
            continue
        if status in ("all", proposal.status.name.lower()):
            found.append(_proposal_out(reader, proposal))
            if len(found) == limit:
                break
    return ProposalsOut(status=status, proposals=found)  # type: ignore[arg-type]


def audit_log(reader: StateReader, patient: bytes, limit: int) -> AuditOut:
    """Who read (or was refused) ``patient``'s records, the oldest first."""
    identity_out(reader, patient)
    entries = audit.list_audit(reader, patient, limit + 1)
    return AuditOut(
        patient=patient.hex(),
        entries=[AuditEntryOut.model_validate(audit.render_entry(e)) for e in entries[:limit]],
        truncated=len(entries) > limit,
    )
