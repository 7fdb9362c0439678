"""The health API's writes: opening and ending a session (and who it is), and the
actions a session signs (``POST /health/actions/{action}``), with their receipts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from health.contracts.care import MAX_ITEM_NUMBER, MAX_TZ_OFFSET_MINUTES, MIN_TZ_OFFSET_MINUTES
from health.web.model_types import (
    KEYSTORE_NAME_PATTERN,
    MAX_PASSPHRASE_CHARS,
    U32_MAX,
    U64_MAX,
    Body,
    Code,
    Count,
    FhirType,
    Hex32,
    IdIn,
    Out,
    Role,
    TimeMs,
)
from health.web.read_models import IdentityOut

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
    # Pydantic fields (``Body`` is a BaseModel): pydantic copies mutable defaults.
    resource_types: Annotated[list[FhirType], Field(max_length=16)] = []  # noqa: RUF012
    codes: Annotated[list[Code], Field(max_length=32)] = []  # noqa: RUF012
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
