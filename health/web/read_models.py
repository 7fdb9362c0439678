"""The answers of the health API's reads of the chain's state: identities and
institutions, grants and emergency accesses, care plans, reminders and adherence,
referrals, governance, the audit trail and the network (with their query models)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from health.contracts.care import MAX_ITEM_NUMBER
from health.web.model_types import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    U64_MAX,
    Count,
    Hex32,
    HexOrEmpty,
    Out,
    Query,
    Role,
    TimeMs,
)

# -- identities -------------------------------------------------------------------------------


class IdentityOut(Out):
    """An identity (``identity.render_identity``)."""

    id: Hex32
    role: Role
    kind: str
    label: str
    parent: HexOrEmpty
    signing_key: Hex32
    encryption_key: Hex32
    key_epoch: Count
    active: bool
    registered_height: Count


class MemberOut(Out):
    """A governance member record."""

    validator_key: Hex32
    power: Count
    effective_power: Count
    weight: Count
    status: Literal["active", "suspended", "removed"]
    admitted_height: Count


class InstitutionOut(Out):
    """A member institution with its public label."""

    id: Hex32
    label: str
    kind: str
    active: bool
    member: MemberOut


class InstitutionsOut(Out):
    """``GET /health/institutions``."""

    institutions: list[InstitutionOut]


class ChildrenOut(Out):
    """``GET /health/identities/{id}/children``: practitioners and patients of an
    institution, devices of a patient."""

    parent: Hex32
    children: list[IdentityOut]
    truncated: bool


class ListQuery(Query):
    """A bounded listing."""

    limit: int = Field(DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)


# -- consent ----------------------------------------------------------------------------------


class PeriodOut(Out):
    """A grant's time of force."""

    start: TimeMs
    end: TimeMs


class DataPeriodOut(Out):
    """The data a grant covers, by the data's time (null: open)."""

    start: TimeMs | None
    end: TimeMs | None


class ActorOut(Out):
    """Who a grant names."""

    role: Literal["grantee"]
    reference: Hex32


class ProvisionOut(Out):
    """What a grant permits."""

    type: Literal["permit"]
    period: PeriodOut
    actor: list[ActorOut]
    purpose: list[Literal["treatment", "research"]]
    class_: list[str] = Field(alias="class")
    code: list[str]
    dataPeriod: DataPeriodOut


class ConsentOut(Out):
    """A grant as a FHIR R4 ``Consent`` (``consent.render_consent``)."""

    resourceType: Literal["Consent"]
    id: Hex32
    status: Literal["active", "inactive"]
    state: Literal["active", "revoked", "expired"]
    patient: Hex32
    dateTime: TimeMs
    provision: ProvisionOut
    referral: Hex32 | None
    ended_ms: TimeMs | None


class EmergencyOut(Out):
    """An emergency (break-glass) access (``consent.render_emergency``)."""

    id: Hex32
    patient: Hex32
    practitioner: Hex32
    institution: Hex32
    reason_code: str
    opened_ms: TimeMs
    expires_ms: TimeMs
    open: bool
    closed_ms: TimeMs | None


class GrantsOut(Out):
    """``GET /health/patients/{id}/grants``: every grant (any state) and emergency access."""

    patient: Hex32
    grants: list[ConsentOut]
    emergency_accesses: list[EmergencyOut]
    truncated: bool


class ConsentedPatientOut(Out):
    """A patient whose grants to the practitioner are in force."""

    patient: Hex32
    identity: IdentityOut | None
    expires_ms: TimeMs = Field(description="when the last of these grants ends")
    grants: list[ConsentOut]


class PractitionerPatientsOut(Out):
    """``GET /health/practitioners/{id}/patients``."""

    practitioner: Hex32
    patients: list[ConsentedPatientOut]
    emergency_accesses: list[EmergencyOut]
    truncated: bool


# -- care -------------------------------------------------------------------------------------


class ScheduleItemOut(Out):
    """One item of a plan's schedule (local minutes after midnight)."""

    item: Annotated[int, Field(ge=0, le=MAX_ITEM_NUMBER)]
    kind: Literal["dose", "measurement"]
    times_of_day_minutes: list[Annotated[int, Field(ge=0, le=1439)]]


class CarePlanOut(Out):
    """A care plan as on chain (``care.render_plan``); its content is the encrypted record
    ``plan_record``."""

    version: Count
    plan_record: Hex32
    plan_sha256: Hex32
    practitioner: Hex32
    institution: HexOrEmpty
    updated_ms: TimeMs
    tz_offset_minutes: int
    items: list[ScheduleItemOut]


class PlanOut(Out):
    """``GET /health/patients/{id}/plan`` (``plan`` null without one)."""

    patient: Hex32
    plan: CarePlanOut | None


class RemindersQuery(Query):
    """``from_ms`` (default: a day ago by the node's clock) and a bound; a page covers at
    most 7 days from ``from_ms``."""

    from_ms: int | None = Field(None, ge=0, le=U64_MAX)
    limit: int = Field(DEFAULT_LIST_LIMIT, ge=1, le=256)


class ReminderOut(Out):
    """A reminder raised in block time."""

    due_ms: TimeMs
    item: Annotated[int, Field(ge=0, le=MAX_ITEM_NUMBER)]
    status: Literal["open", "done", "missed"]
    kind: Literal["dose", "measurement"]
    closed_ms: TimeMs
    plan_version: Count


class RemindersOut(Out):
    """``GET /health/patients/{id}/reminders``; ``next_from_ms`` continues the listing."""

    patient: Hex32
    from_ms: TimeMs
    to_ms: TimeMs
    reminders: list[ReminderOut]
    next_from_ms: TimeMs


class AdherenceItemOut(Out):
    """Counters of one plan item; ``done_pct`` of the reminders that came due (null
    before the first)."""

    item: Annotated[int, Field(ge=0, le=MAX_ITEM_NUMBER)]
    kind: Literal["dose", "measurement"]
    due: Count
    done: Count
    missed: Count
    done_pct: float | None


class AdherenceOut(Out):
    """``GET /health/patients/{id}/adherence``: the items of the current plan."""

    patient: Hex32
    plan_version: Count | None
    items: list[AdherenceItemOut]


# -- referrals --------------------------------------------------------------------------------

ReferralStatus = Literal["requested", "accepted", "declined", "answered", "closed", "expired"]


class ReferralOut(Out):
    """A referral (``referral.render_referral``)."""

    id: Hex32
    patient: Hex32
    from_practitioner: Hex32
    from_institution: HexOrEmpty
    to: Hex32
    specialty: str
    reason_code: str
    status: ReferralStatus
    created_ms: TimeMs
    expires_ms: TimeMs
    accepted_by: HexOrEmpty
    answer_record: HexOrEmpty
    updated_ms: TimeMs


class PractitionerReferralsOut(Out):
    """``GET /health/practitioners/{id}/referrals``: incoming (to the practitioner or its
    institution) and outgoing."""

    practitioner: Hex32
    incoming: list[ReferralOut]
    outgoing: list[ReferralOut]


class PatientReferralsOut(Out):
    """``GET /health/patients/{id}/referrals``."""

    patient: Hex32
    referrals: list[ReferralOut]


# -- governance -------------------------------------------------------------------------------


class DaoMemberOut(Out):
    """A member institution, its label and its validator."""

    institution: Hex32
    label: str
    kind: str
    validator_key: Hex32
    power: Count
    effective_power: Count
    weight: Count
    status: Literal["active", "suspended", "removed"]
    admitted_height: Count


class ValidatorOut(Out):
    """A validator with power, and the member it is the validator of."""

    validator_key: Hex32
    power: Count
    institution: Hex32
    label: str


class DaoOut(Out):
    """``GET /health/dao``: members, validators and power, parameters (their values now)."""

    members: list[DaoMemberOut]
    validators: list[ValidatorOut]
    total_power: Count
    total_weight: Count
    params: dict[str, int]


class ProposalsQuery(Query):
    """Which proposals: ``open`` (default), ``passed``, ``rejected``, ``failed`` or
    ``all``; the newest first."""

    status: Literal["open", "passed", "rejected", "failed", "all"] = "open"
    limit: int = Field(DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)


class BallotOut(Out):
    """A member's vote and the weight it carried."""

    member: Hex32
    choice: Literal["yes", "no", "abstain"]
    weight: Count


ProposalKind = Literal[
    "admit_institution",
    "admit_auditor",
    "suspend",
    "reinstate",
    "remove",
    "set_power",
    "set_param",
    "penalize",
]


class ProposalOut(Out):
    """A proposal, its body (by kind) and its ballots."""

    id: Annotated[int, Field(ge=1)]
    proposer: Hex32
    kind: ProposalKind
    body: dict[str, Any]
    reason: str
    created_ms: TimeMs
    deadline_ms: TimeMs
    status: Literal["open", "passed", "rejected", "failed"]
    yes_weight: Count
    no_weight: Count
    abstain_weight: Count
    outcome: str
    ballots: list[BallotOut]


class ProposalsOut(Out):
    """``GET /health/dao/proposals``."""

    status: Literal["open", "passed", "rejected", "failed", "all"]
    proposals: list[ProposalOut]


# -- audit ------------------------------------------------------------------------------------


class AuditEntryOut(Out):
    """Who read (or was refused) which record, when, under what (``audit.render_entry``)."""

    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    patient: Hex32
    record: Hex32
    reader: Hex32
    accessed_ms: TimeMs
    basis: Literal["owner", "grant", "emergency"]
    basis_id: Hex32 | None
    served: bool
    custodian: Hex32
    recorded_ms: TimeMs


class AuditOut(Out):
    """``GET /health/patients/{id}/audit``: the oldest first."""

    patient: Hex32
    entries: list[AuditEntryOut]
    truncated: bool


# -- network ----------------------------------------------------------------------------------


class NetworkOut(Out):
    """``GET /health/network``: from this node's status and the last blocks."""

    chain_id: str
    moniker: str
    height: Count
    last_block_time_ms: TimeMs
    catching_up: bool
    peers: list[str] = Field(description="the peer ids connected now")
    mempool_txs: Count
    validators: list[ValidatorOut]
    total_power: Count
    window_blocks: Count
    block_interval_ms: float | None
    throughput_tx_per_s: float | None
