"""The health API's request and response models (pydantic v2): one source of truth.

The routes validate query parameters and bodies with the request models and build every
answer as a response model; ``health.web.openapi`` generates the OpenAPI document's schemas
from the same classes (``model_json_schema``), so the document cannot drift from the code.

Conventions: ids, keys and hashes are lower-case hex (``Hex32``: 32 bytes; empty where the
chain keeps none, ``HexOrEmpty``); times are milliseconds since the Unix epoch (``_ms``);
enumerations are the chain's names in lower case. Request models are strict for JSON bodies
(no type coercion, unknown fields refused); query models coerce text to numbers (a query is
text) and refuse unknown parameters.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from health.contracts.care import MAX_ITEM_NUMBER, MAX_TZ_OFFSET_MINUTES, MIN_TZ_OFFSET_MINUTES

U64_MAX: Final = 2**64 - 1
U32_MAX: Final = 2**32 - 1
DEFAULT_LIST_LIMIT: Final = 100
MAX_LIST_LIMIT: Final = 500
"""A listing's largest page (a scan reads one more to tell ``truncated``; a node reads at
most 1,000 entries a scan)."""
HEX32_PATTERN: Final = r"^[0-9a-f]{64}$"
HEX32_INPUT_PATTERN: Final = r"^[0-9a-fA-F]{64}$"
KEYSTORE_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CODE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:|/-]{0,63}$"
FHIR_TYPE_PATTERN: Final = r"^[A-Z][A-Za-z]{0,63}$"
MAX_PASSPHRASE_CHARS: Final = 1_024

Hex32 = Annotated[str, Field(pattern=HEX32_PATTERN, description="32 bytes, lower-case hex")]
HexOrEmpty = Annotated[
    str, Field(pattern=r"^([0-9a-f]{64})?$", description="32 bytes in hex, or empty")
]
IdIn = Annotated[str, Field(pattern=HEX32_INPUT_PATTERN, description="32 bytes in hex")]
TimeMs = Annotated[int, Field(ge=0, le=U64_MAX, description="milliseconds since the epoch")]
Count = Annotated[int, Field(ge=0)]
Role = Literal["institution", "practitioner", "patient", "device", "auditor"]
Code = Annotated[str, Field(pattern=CODE_PATTERN, max_length=64)]
FhirType = Annotated[str, Field(pattern=FHIR_TYPE_PATTERN, max_length=64)]


class Out(BaseModel):
    """A response document: exactly these fields (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Body(BaseModel):
    """A JSON request body: strict types, no unknown field."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Query(BaseModel):
    """Query parameters: text coerced to numbers, no unknown parameter."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- errors -----------------------------------------------------------------------------------


class ErrorOut(Out):
    """Every refusal (``reason``: see ``health.web.errors``; the node's own routes give
    ``error`` alone)."""

    error: str
    reason: str | None = None


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


# -- sessions ---------------------------------------------------------------------------------


class SessionBody(Body):
    """``POST /health/session``: a keystore of the node's keystore directory by name and
    its passphrase (never logged, never kept)."""

    keystore: Annotated[str, Field(pattern=KEYSTORE_NAME_PATTERN)]
    passphrase: Annotated[str, Field(min_length=1, max_length=MAX_PASSPHRASE_CHARS)]


class SessionOut(Out):
    """An open session: the token (also set as an HttpOnly cookie) and whose it is."""

    token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")]
    token_type: Literal["bearer"]
    expires_in_s: Count
    keystore: str
    name: str
    role: Role
    id: Hex32 = Field(description="the keystore's identity id")


class SessionEndOut(Out):
    """``DELETE /health/session``."""

    ended: bool


class MeOut(Out):
    """``GET /health/me``: the session's keystore and its identity on chain (null until
    registered)."""

    id: Hex32 = Field(description="the keystore's identity id")
    keystore: str
    name: str
    role: Role
    identity: IdentityOut | None
    expires_in_s: Count


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


# -- actions ----------------------------------------------------------------------------------


class EventOut(Out):
    """An event of a receipt."""

    kind: str
    attributes: dict[str, str]


class ActionOut(Out):
    """``POST /health/actions/{action}``: the committed receipt and what the action made
    (a grant's, referral's or access' id, a proposal's number, keys shared)."""

    action: str
    tx_hash: Hex32
    height: Count
    ok: bool
    code: str
    log: str
    events: list[EventOut]
    result: dict[str, Any]


class GrantAction(Body):
    """``grant``: consent to ``grantee`` (a practitioner or institution) until
    ``expires_ms``; ``share_records``: re-wrap the covered records' keys for it."""

    grantee: IdIn
    expires_ms: TimeMs
    purpose: Literal["treatment", "research"] = "treatment"
    resource_types: Annotated[list[FhirType], Field(max_length=16)] = []
    codes: Annotated[list[Code], Field(max_length=32)] = []
    data_from_ms: TimeMs = 0
    data_to_ms: TimeMs = 0
    referral: IdIn | None = None
    share_records: bool = True


class RevokeAction(Body):
    """``revoke``: end the session patient's grant ``grant``."""

    grant: IdIn


class BreakGlassAction(Body):
    """``break_glass``: open emergency access to ``patient`` (a practitioner)."""

    patient: IdIn
    reason_code: Code


class AckAction(Body):
    """``ack``: the reminder of ``item`` due at ``due_ms`` is done."""

    item: Annotated[int, Field(ge=0, le=MAX_ITEM_NUMBER)]
    due_ms: TimeMs


class SetPolicyAction(Body):
    """``set_policy``: whether alerts go on chain for the plan's practitioner."""

    share_alerts: bool


class AlertAction(Body):
    """``alert``: a reading (``record``) raised an alert of ``level``."""

    level: Literal["hypo_1", "hypo_2", "hyper_1", "hyper_2"]
    record: IdIn


class ScheduleItemIn(Body):
    """One item of a new schedule."""

    item: Annotated[int, Field(ge=0, le=MAX_ITEM_NUMBER)]
    kind: Literal["dose", "measurement"]
    times_of_day_minutes: Annotated[
        list[Annotated[int, Field(ge=0, le=1439)]], Field(min_length=1, max_length=12)
    ]


class SetPlanAction(Body):
    """``set_plan``: a practitioner sets ``patient``'s plan over ``base_version`` (0 for a
    first plan). ``plan`` is the FHIR CarePlan content (default: a minimal active plan): the
    node encrypts it as a record of the patient kept by this node's custodian, then commits
    the schedule."""

    patient: IdIn
    base_version: Annotated[int, Field(ge=0, le=U32_MAX)]
    tz_offset_minutes: Annotated[int, Field(ge=MIN_TZ_OFFSET_MINUTES, le=MAX_TZ_OFFSET_MINUTES)] = 0
    items: Annotated[list[ScheduleItemIn], Field(min_length=1, max_length=16)]
    plan: dict[str, Any] | None = None


class VoteAction(Body):
    """``vote`` on an open proposal (a member institution)."""

    proposal: Annotated[int, Field(ge=1, le=U64_MAX)]
    choice: Literal["yes", "no", "abstain"]


class ProposeAction(Body):
    """``propose`` (a member institution): ``suspend``, ``reinstate`` or ``remove`` a
    member (``institution``), ``set_power`` of a member (``institution``, ``power``), or
    ``set_param`` (``name``, ``value``). The proposal number is in ``result``."""

    kind: Literal["suspend", "reinstate", "remove", "set_power", "set_param"]
    institution: IdIn | None = None
    power: Annotated[int, Field(ge=0, le=U64_MAX)] | None = None
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    value: Annotated[int, Field(ge=0, le=U64_MAX)] | None = None
    reason: Annotated[str, Field(max_length=140)] = ""


class RequestReferralAction(Body):
    """``request_referral``: refer ``patient`` to ``to`` (a practitioner or institution)."""

    patient: IdIn
    to: IdIn
    specialty: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    reason_code: Code
    expires_ms: TimeMs


class ReferralAction(Body):
    """``accept_referral``, ``close_referral``: the referral's id."""

    referral: IdIn


class DeclineReferralAction(Body):
    """``decline_referral``: the referral and why (a code, may be empty)."""

    referral: IdIn
    reason_code: Annotated[str, Field(pattern=r"^([A-Za-z0-9][A-Za-z0-9._:|/-]{0,63})?$")] = ""


class AnswerReferralAction(Body):
    """``answer_referral``: an accepted referral answered by a record we authored."""

    referral: IdIn
    answer_record: IdIn


class DeactivateAction(Body):
    """``deactivate`` ourselves or a child (a practitioner, a patient, a paired device)."""

    identity: IdIn
