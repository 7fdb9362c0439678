"""Governance of the health chain: member institutions vote on admissions, suspensions,
validator power and parameters (docs/HEALTH.md, "governance").

State (under ``governance/``):

- ``m/<institution id>`` -> ``Member`` (validator key, power, voting weight, status, admitted
  height). A member's *effective* validator power is ``power`` while it is ACTIVE and 0
  otherwise; governance keeps the consensus validator set equal to the effective powers of
  its members (the genesis document must list the same validators with the same powers).
- ``p/<name>`` -> the parameter as 8 bytes big-endian (``common.param`` reads it; absent:
  the default of ``common.PARAM_DEFAULTS``).
- ``q/<u64 id>`` -> ``Proposal``; ``v/<u64 id><member id>`` -> ``Ballot`` (choice and the
  weight it carried); ``o/<proposer><u64 id>`` -> deadline (u64), the open proposals of a
  member (at most ``MAX_OPEN_PROPOSALS`` each); ``n`` -> the next proposal id (u64, from 1).

Transactions: ``governance.propose`` (``ProposePayload``) and ``governance.vote``
(``VotePayload``), both by an institution that is an ACTIVE member.

Tally (integers only): ``total`` is the weight of the ACTIVE members when the tally runs. A
proposal passes as soon as ``yes * 100 > threshold_pct * total`` (it is executed in the
transaction of the deciding vote); at its deadline (``created_ms + voting_period_ms``, a due
task) it passes if ``(yes + no + abstain) * 100 >= quorum_pct * total`` and ``yes * 100 >
threshold_pct * (yes + no)``, else it is REJECTED. A ballot keeps the weight its member had
when it was cast.

Execution never fails half-way: everything a proposal needs is checked first (``_plan``,
reads only), then the module calls it makes to ``identity`` (at most one: identity checks
before it writes, so a refusal there leaves no write behind), then governance's own writes,
validator-power requests and events, none of which can be refused. A refusal in the first two
steps makes the proposal FAILED (its message is kept as the outcome) without failing the
vote transaction or the deadline task; events and validator updates requested by a refused
execution are dropped. Proposals that would leave no ACTIVE member, or take the last
validator's power away, are refused that way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from enum import IntEnum
from typing import Any, Final

from consensus.limits import MAX_TOTAL_VOTING_POWER
from health.contracts.common import (
    ID_BYTES,
    PARAM_DEFAULTS,
    PARAM_LIMITS,
    PARAM_PREFIX,
    HealthRole,
    get_identity,
    param,
    param_key,
    read_struct,
    require_sender,
    u64,
)
from health.contracts.identity import (
    ADMISSION_CODEC,
    GOVERNANCE_REGISTRAR,
    SET_ACTIVE_CODEC,
    Admission,
    SetActive,
    check_admission,
)
from node.app.due import DueTask
from node.app.errors import OutOfGas, TxFailed
from node.app.evidence import validator_evidence_prefix
from node.app.module import (
    AttributeValue,
    BlockInfo,
    CheckContext,
    ExecContext,
    JsonValue,
    KeyReader,
    Module,
    decode_payload,
)
from node.app.view import MeteredReader
from node.codec import Bytes, EnumOf, Nested, StructCodec, Text, UInt
from node.errors import DecodeError
from node.types import PUBLIC_KEY_BYTES, ResultCode, Transaction

GOVERNANCE: Final = "governance"
MEMBER_PREFIX: Final = b"governance/m/"
PROPOSAL_PREFIX: Final = b"governance/q/"
VOTE_PREFIX: Final = b"governance/v/"
OPEN_PREFIX: Final = b"governance/o/"
NEXT_ID_KEY: Final = b"governance/n"
FIRST_PROPOSAL_ID: Final = 1

MAX_MEMBERS: Final = 256
"""Member records ever (removed members stay, as history): bounds every roster scan."""
MAX_OPEN_PROPOSALS: Final = 16
"""Open proposals per member at a time (a member cannot flood the due-work queue)."""
MIN_WEIGHT: Final = 1
MAX_WEIGHT: Final = 1000
MAX_VALIDATOR_POWER: Final = MAX_TOTAL_VOTING_POWER
MAX_REASON_CHARS: Final = 140
MAX_BODY_BYTES: Final = 1024
MAX_OUTCOME_CHARS: Final = 256
DEADLINE_TASK: Final = "deadline"


class MemberStatus(IntEnum):
    """Where a member stands: only ACTIVE members propose, vote and count in the total."""

    ACTIVE = 1
    SUSPENDED = 2
    REMOVED = 3


class ProposalKind(IntEnum):
    """What a proposal does when it passes (its body's codec follows from it)."""

    ADMIT_INSTITUTION = 1
    ADMIT_AUDITOR = 2
    SUSPEND = 3
    REINSTATE = 4
    REMOVE = 5
    SET_POWER = 6
    SET_PARAM = 7
    PENALIZE = 8


class ProposalStatus(IntEnum):
    """OPEN until decided; FAILED: it passed but its execution was refused."""

    OPEN = 1
    PASSED = 2
    REJECTED = 3
    FAILED = 4


class Choice(IntEnum):
    """A member's vote."""

    YES = 1
    NO = 2
    ABSTAIN = 3


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """A member institution (``governance/m/<institution>``)."""

    validator_key: bytes
    power: int
    weight: int
    status: MemberStatus
    admitted_height: int

    @property
    def effective_power(self) -> int:
        """The validator power this member has in consensus: ``power`` only while ACTIVE."""
        return self.power if self.status is MemberStatus.ACTIVE else 0


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal (``governance/q/<id>``). ``deadline_task``: the id of its deadline task;
    ``outcome``: why it was rejected or failed ("" while open and when it passed)."""

    id: int
    proposer: bytes
    kind: ProposalKind
    body: bytes
    reason: str
    created_ms: int
    deadline_ms: int
    status: ProposalStatus
    yes_weight: int
    no_weight: int
    abstain_weight: int
    deadline_task: bytes
    outcome: str


@dataclass(frozen=True, slots=True)
class Ballot:
    """A member's vote on a proposal (``governance/v/<id><member>``) and its weight then."""

    choice: Choice
    weight: int


@dataclass(frozen=True, slots=True)
class GenesisMember:
    """A member from genesis (its institution must be a genesis identity of ``identity``)."""

    institution: bytes
    validator_key: bytes
    power: int
    weight: int


# -- payloads and proposal bodies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposePayload:
    """``governance.propose``: a proposal of ``kind`` with its encoded ``body``."""

    kind: ProposalKind
    body: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class VotePayload:
    """``governance.vote``: ``choice`` on proposal ``proposal``."""

    proposal: int
    choice: Choice


@dataclass(frozen=True, slots=True)
class InstitutionAdmission:
    """Body of ADMIT_INSTITUTION: the identity admission, and the member it becomes."""

    admission: Admission
    validator_key: bytes
    power: int
    weight: int


@dataclass(frozen=True, slots=True)
class MemberTarget:
    """Body of SUSPEND, REINSTATE and REMOVE."""

    institution: bytes


@dataclass(frozen=True, slots=True)
class PowerChange:
    """Body of SET_POWER: the member's validator power from now on."""

    institution: bytes
    power: int


@dataclass(frozen=True, slots=True)
class ParamChange:
    """Body of SET_PARAM."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Penalty:
    """Body of PENALIZE: the validator that equivocated at ``evidence_height``."""

    validator_key: bytes
    evidence_height: int


_ID = Bytes.exactly(ID_BYTES)
_KEY = Bytes.exactly(PUBLIC_KEY_BYTES)
_WEIGHT = UInt(MAX_WEIGHT)
_POWER = UInt(MAX_VALIDATOR_POWER)
_PARAM_NAME = Text(32)

MEMBER_CODEC: Final = StructCodec(
    Member,
    [
        ("validator_key", _KEY),
        ("power", _POWER),
        ("weight", _WEIGHT),
        ("status", EnumOf(MemberStatus)),
        ("admitted_height", UInt()),
    ],
    128,
)
PROPOSAL_CODEC: Final = StructCodec(
    Proposal,
    [
        ("id", UInt()),
        ("proposer", _ID),
        ("kind", EnumOf(ProposalKind)),
        ("body", Bytes(MAX_BODY_BYTES)),
        ("reason", Text(MAX_REASON_CHARS)),
        ("created_ms", UInt()),
        ("deadline_ms", UInt()),
        ("status", EnumOf(ProposalStatus)),
        ("yes_weight", UInt()),
        ("no_weight", UInt()),
        ("abstain_weight", UInt()),
        ("deadline_task", Bytes(64)),
        ("outcome", Text(MAX_OUTCOME_CHARS)),
    ],
    4096,
)
BALLOT_CODEC: Final = StructCodec(Ballot, [("choice", EnumOf(Choice)), ("weight", _WEIGHT)], 16)
PROPOSE_CODEC: Final = StructCodec(
    ProposePayload,
    [
        ("kind", EnumOf(ProposalKind)),
        ("body", Bytes(MAX_BODY_BYTES)),
        ("reason", Text(MAX_REASON_CHARS)),
    ],
    2048,
)
VOTE_CODEC: Final = StructCodec(VotePayload, [("proposal", UInt()), ("choice", EnumOf(Choice))], 32)
INSTITUTION_ADMISSION_CODEC: Final = StructCodec(
    InstitutionAdmission,
    [
        ("admission", Nested(ADMISSION_CODEC)),
        ("validator_key", _KEY),
        ("power", _POWER),
        ("weight", _WEIGHT),
    ],
    MAX_BODY_BYTES,
)
MEMBER_TARGET_CODEC: Final = StructCodec(MemberTarget, [("institution", _ID)], 64)
POWER_CHANGE_CODEC: Final = StructCodec(PowerChange, [("institution", _ID), ("power", _POWER)], 64)
PARAM_CHANGE_CODEC: Final = StructCodec(ParamChange, [("name", _PARAM_NAME), ("value", UInt())], 64)
PENALTY_CODEC: Final = StructCodec(
    Penalty, [("validator_key", _KEY), ("evidence_height", UInt())], 64
)
BODY_CODECS: Final[Mapping[ProposalKind, StructCodec[Any]]] = {
    ProposalKind.ADMIT_INSTITUTION: INSTITUTION_ADMISSION_CODEC,
    ProposalKind.ADMIT_AUDITOR: ADMISSION_CODEC,
    ProposalKind.SUSPEND: MEMBER_TARGET_CODEC,
    ProposalKind.REINSTATE: MEMBER_TARGET_CODEC,
    ProposalKind.REMOVE: MEMBER_TARGET_CODEC,
    ProposalKind.SET_POWER: POWER_CHANGE_CODEC,
    ProposalKind.SET_PARAM: PARAM_CHANGE_CODEC,
    ProposalKind.PENALIZE: PENALTY_CODEC,
}
"""The codec of each kind's proposal body."""


# -- keys and reads --------------------------------------------------------------------------


def member_key(institution: bytes) -> bytes:
    """The state key of a member."""
    return MEMBER_PREFIX + institution


def proposal_key(proposal_id: int) -> bytes:
    """The state key of a proposal."""
    return PROPOSAL_PREFIX + u64(proposal_id)


def vote_key(proposal_id: int, member: bytes) -> bytes:
    """The state key of ``member``'s ballot on a proposal."""
    return VOTE_PREFIX + u64(proposal_id) + member


def open_key(proposer: bytes, proposal_id: int) -> bytes:
    """The index entry of an open proposal of ``proposer``."""
    return OPEN_PREFIX + proposer + u64(proposal_id)


def get_member(reader: KeyReader, institution: bytes) -> Member | None:
    """The member ``institution``, or None."""
    return read_struct(reader, member_key(institution), MEMBER_CODEC)


def get_proposal(reader: KeyReader, proposal_id: int) -> Proposal | None:
    """The proposal ``proposal_id``, or None."""
    return read_struct(reader, proposal_key(proposal_id), PROPOSAL_CODEC)


def get_ballot(reader: KeyReader, proposal_id: int, member: bytes) -> Ballot | None:
    """``member``'s ballot on a proposal, or None."""
    return read_struct(reader, vote_key(proposal_id, member), BALLOT_CODEC)


def members(reader: MeteredReader) -> list[tuple[bytes, Member]]:
    """Every member record (at most ``MAX_MEMBERS``) in institution-id order."""
    found = []
    for key, value in reader.iterate(MEMBER_PREFIX, MAX_MEMBERS):
        try:
            found.append((key[len(MEMBER_PREFIX) :], MEMBER_CODEC.decode(value)))
        except DecodeError as exc:  # our own writes are canonical: a bug
            raise AssertionError(f"corrupt member record under {key!r}: {exc}") from exc
    return found


def active_weight(roster: Sequence[tuple[bytes, Member]]) -> int:
    """The total weight of the ACTIVE members of ``roster``."""
    return sum(m.weight for _, m in roster if m.status is MemberStatus.ACTIVE)


def passes_early(yes: int, total: int, threshold_pct: int) -> bool:
    """True when ``yes`` decides a proposal before its deadline."""
    return yes * 100 > threshold_pct * total


def passes_at_deadline(
    yes: int, no: int, abstain: int, total: int, *, quorum_pct: int, threshold_pct: int
) -> bool:
    """True when a proposal still open at its deadline passes."""
    quorum = (yes + no + abstain) * 100 >= quorum_pct * total
    return quorum and yes * 100 > threshold_pct * (yes + no)


# -- client helpers --------------------------------------------------------------------------


def propose_payload(kind: ProposalKind, body: bytes, reason: str = "") -> bytes:
    """The payload of ``governance.propose`` for an already encoded ``body``."""
    return PROPOSE_CODEC.encode(ProposePayload(kind, body, reason))


def admit_institution_payload(
    admission: Admission, *, validator_key: bytes, power: int, weight: int, reason: str = ""
) -> bytes:
    """Propose admitting an institution (``identity.admission(...)`` builds ``admission``)."""
    body = InstitutionAdmission(admission, validator_key, power, weight)
    return propose_payload(
        ProposalKind.ADMIT_INSTITUTION, INSTITUTION_ADMISSION_CODEC.encode(body), reason
    )


def admit_auditor_payload(admission: Admission, reason: str = "") -> bytes:
    """Propose admitting an auditor."""
    return propose_payload(ProposalKind.ADMIT_AUDITOR, ADMISSION_CODEC.encode(admission), reason)


def suspend_payload(institution: bytes, reason: str = "") -> bytes:
    """Propose suspending a member (it can no longer act; its validator power goes to 0)."""
    body = MEMBER_TARGET_CODEC.encode(MemberTarget(institution))
    return propose_payload(ProposalKind.SUSPEND, body, reason)


def reinstate_payload(institution: bytes, reason: str = "") -> bytes:
    """Propose reinstating a suspended member (its power is restored)."""
    body = MEMBER_TARGET_CODEC.encode(MemberTarget(institution))
    return propose_payload(ProposalKind.REINSTATE, body, reason)


def remove_payload(institution: bytes, reason: str = "") -> bytes:
    """Propose removing a member for good."""
    body = MEMBER_TARGET_CODEC.encode(MemberTarget(institution))
    return propose_payload(ProposalKind.REMOVE, body, reason)


def set_power_payload(institution: bytes, power: int, reason: str = "") -> bytes:
    """Propose setting a member's validator power."""
    body = POWER_CHANGE_CODEC.encode(PowerChange(institution, power))
    return propose_payload(ProposalKind.SET_POWER, body, reason)


def set_param_payload(name: str, value: int, reason: str = "") -> bytes:
    """Propose setting a governance parameter."""
    body = PARAM_CHANGE_CODEC.encode(ParamChange(name, value))
    return propose_payload(ProposalKind.SET_PARAM, body, reason)


def penalize_payload(validator_key: bytes, evidence_height: int, reason: str = "") -> bytes:
    """Propose penalizing the validator whose equivocation at ``evidence_height`` the chain
    committed: its member is suspended with power 0."""
    body = PENALTY_CODEC.encode(Penalty(validator_key, evidence_height))
    return propose_payload(ProposalKind.PENALIZE, body, reason)


def vote_payload(proposal_id: int, choice: Choice) -> bytes:
    """The payload of ``governance.vote``."""
    return VOTE_CODEC.encode(VotePayload(proposal_id, choice))


# -- what a proposal does --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """The effects of executing a proposal, all checked before any of them happens:
    ``call`` (an identity action and its payload) first, then the member and parameter
    writes, the validator-power request and the event."""

    call: tuple[str, bytes] | None
    member: tuple[bytes, Member] | None
    param: tuple[str, int] | None
    power: tuple[bytes, int] | None
    event: str
    attributes: Mapping[str, AttributeValue]


def _require_member(reader: KeyReader, institution: bytes) -> Member:
    member = get_member(reader, institution)
    if member is None:
        raise TxFailed(ResultCode.NOT_FOUND, f"no member {institution.hex()}")
    return member


def _check_roster(
    roster: Sequence[tuple[bytes, Member]], institution: bytes, updated: Member
) -> None:
    """Refuse a change of ``institution`` to ``updated`` that would leave no ACTIVE member,
    take the power of the last validator, or exceed the total voting power consensus allows."""
    old = dict(roster).get(institution)
    after = [(i, updated if i == institution else m) for i, m in roster]
    if old is None:
        after.append((institution, updated))
    if not any(m.status is MemberStatus.ACTIVE for _, m in after):
        raise TxFailed(ResultCode.CONFLICT, "no active member would remain")
    if (
        old is not None
        and old.effective_power > 0
        and not any(m.effective_power > 0 for _, m in after)
    ):
        raise TxFailed(ResultCode.CONFLICT, "no validator would remain")
    if sum(m.effective_power for _, m in after) > MAX_TOTAL_VOTING_POWER:
        raise TxFailed(ResultCode.LIMIT_EXCEEDED, "the total validator power would be too large")


def _member_change(
    reader: MeteredReader,
    roster: Sequence[tuple[bytes, Member]],
    institution: bytes,
    updated: Member,
    event: str,
) -> _Plan:
    """The plan of changing member ``institution`` (already in ``roster``) to ``updated``:
    its identity follows its status (a member not ACTIVE cannot act), its validator power
    follows its effective power."""
    old = _require_member(reader, institution)
    _check_roster(roster, institution, updated)
    call = None
    now_active = updated.status is MemberStatus.ACTIVE
    if (old.status is MemberStatus.ACTIVE) != now_active:
        identity = get_identity(reader, institution)
        if identity is None:
            raise TxFailed(ResultCode.NOT_FOUND, f"member {institution.hex()} has no identity")
        if identity.active != now_active:
            call = ("set_active", SET_ACTIVE_CODEC.encode(SetActive(institution, now_active)))
    power = None
    if old.effective_power != updated.effective_power:
        power = (updated.validator_key, updated.effective_power)
    attributes: dict[str, AttributeValue] = {
        "institution": institution,
        "validator_key": updated.validator_key,
        "power": updated.effective_power,
        "status": updated.status.name.lower(),
    }
    return _Plan(call, (institution, updated), None, power, event, attributes)


def _plan_admit_institution(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    request = decode_payload(INSTITUTION_ADMISSION_CODEC, body)
    admission = request.admission
    if admission.role is not HealthRole.INSTITUTION:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "an institution admission has role institution")
    if request.weight < MIN_WEIGHT:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"a weight is {MIN_WEIGHT}..{MAX_WEIGHT}")
    # Kind, label, unused keys and both proofs: what identity will check when it admits.
    check_admission(reader, block.chain_id, GOVERNANCE_REGISTRAR, admission)
    institution = admission.signing_key
    roster = members(reader)
    if len(roster) >= MAX_MEMBERS:
        raise TxFailed(ResultCode.LIMIT_EXCEEDED, f"governance has {MAX_MEMBERS} members")
    if any(m.validator_key == request.validator_key for _, m in roster):
        raise TxFailed(ResultCode.CONFLICT, "the validator key belongs to a member")
    member = Member(
        request.validator_key, request.power, request.weight, MemberStatus.ACTIVE, block.height
    )
    _check_roster(roster, institution, member)
    attributes: dict[str, AttributeValue] = {
        "institution": institution,
        "validator_key": member.validator_key,
        "power": member.power,
        "weight": member.weight,
        "kind": admission.kind,
    }
    return _Plan(
        ("admit_institution", ADMISSION_CODEC.encode(admission)),
        (institution, member),
        None,
        (member.validator_key, member.power) if member.power > 0 else None,
        "member_admitted",
        attributes,
    )


def _plan_admit_auditor(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    admission = decode_payload(ADMISSION_CODEC, body)
    if admission.role is not HealthRole.AUDITOR:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, "an auditor admission has role auditor")
    check_admission(reader, block.chain_id, GOVERNANCE_REGISTRAR, admission)
    call = ("admit_auditor", ADMISSION_CODEC.encode(admission))
    return _Plan(call, None, None, None, "auditor_admitted", {"auditor": admission.signing_key})


def _plan_suspend(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    institution = decode_payload(MEMBER_TARGET_CODEC, body).institution
    member = _require_member(reader, institution)
    if member.status is not MemberStatus.ACTIVE:
        raise TxFailed(ResultCode.CONFLICT, f"member {institution.hex()} is not active")
    updated = replace(member, status=MemberStatus.SUSPENDED)
    return _member_change(reader, members(reader), institution, updated, "member_suspended")


def _plan_reinstate(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    institution = decode_payload(MEMBER_TARGET_CODEC, body).institution
    member = _require_member(reader, institution)
    if member.status is not MemberStatus.SUSPENDED:
        raise TxFailed(ResultCode.CONFLICT, f"member {institution.hex()} is not suspended")
    updated = replace(member, status=MemberStatus.ACTIVE)
    return _member_change(reader, members(reader), institution, updated, "member_reinstated")


def _plan_remove(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    institution = decode_payload(MEMBER_TARGET_CODEC, body).institution
    member = _require_member(reader, institution)
    if member.status is MemberStatus.REMOVED:
        raise TxFailed(ResultCode.CONFLICT, f"member {institution.hex()} is already removed")
    updated = replace(member, status=MemberStatus.REMOVED)
    return _member_change(reader, members(reader), institution, updated, "member_removed")


def _plan_set_power(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    change = decode_payload(POWER_CHANGE_CODEC, body)
    member = _require_member(reader, change.institution)
    if member.status is MemberStatus.REMOVED:
        raise TxFailed(ResultCode.CONFLICT, f"member {change.institution.hex()} is removed")
    if member.power == change.power:
        raise TxFailed(ResultCode.CONFLICT, f"the member's power is already {change.power}")
    updated = replace(member, power=change.power)
    return _member_change(reader, members(reader), change.institution, updated, "power_changed")


def _plan_set_param(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    change = decode_payload(PARAM_CHANGE_CODEC, body)
    if change.name not in PARAM_DEFAULTS:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"no governance parameter {change.name!r}")
    low, high = PARAM_LIMITS[change.name]
    if not low <= change.value <= high:
        raise TxFailed(ResultCode.INVALID_PAYLOAD, f"{change.name} must be in {low}..{high}")
    attributes: dict[str, AttributeValue] = {
        "param": change.name,
        "value": change.value,
        "previous": param(reader, change.name),
    }
    return _Plan(None, None, (change.name, change.value), None, "param_changed", attributes)


def _plan_penalize(reader: MeteredReader, block: BlockInfo, body: bytes) -> _Plan:
    penalty = decode_payload(PENALTY_CODEC, body)
    validator = penalty.validator_key
    # Records are keyed validator ‖ height ‖ round ‖ vote type: one bounded step finds any.
    prefix = validator_evidence_prefix(validator) + u64(penalty.evidence_height)
    if not reader.iterate(prefix, 1):
        raise TxFailed(
            ResultCode.NOT_FOUND,
            f"no committed equivocation of {validator.hex()} at height {penalty.evidence_height}",
        )
    roster = members(reader)
    found = [(i, m) for i, m in roster if m.validator_key == validator]
    if not found:
        raise TxFailed(ResultCode.NOT_FOUND, f"no member has validator key {validator.hex()}")
    institution, member = found[0]  # validator keys are unique among members
    if member.status is MemberStatus.REMOVED:
        raise TxFailed(ResultCode.CONFLICT, f"member {institution.hex()} is removed")
    if member.status is MemberStatus.SUSPENDED and member.power == 0:
        raise TxFailed(ResultCode.CONFLICT, f"member {institution.hex()} is already penalized")
    updated = replace(member, status=MemberStatus.SUSPENDED, power=0)
    plan = _member_change(reader, roster, institution, updated, "member_penalized")
    attributes = {**plan.attributes, "evidence_height": penalty.evidence_height}
    return replace(plan, attributes=attributes)


_Planner = Callable[[MeteredReader, BlockInfo, bytes], _Plan]
_PLANNERS: Final[Mapping[ProposalKind, _Planner]] = {
    ProposalKind.ADMIT_INSTITUTION: _plan_admit_institution,
    ProposalKind.ADMIT_AUDITOR: _plan_admit_auditor,
    ProposalKind.SUSPEND: _plan_suspend,
    ProposalKind.REINSTATE: _plan_reinstate,
    ProposalKind.REMOVE: _plan_remove,
    ProposalKind.SET_POWER: _plan_set_power,
    ProposalKind.SET_PARAM: _plan_set_param,
    ProposalKind.PENALIZE: _plan_penalize,
}


def plan_proposal(reader: MeteredReader, block: BlockInfo, kind: ProposalKind, body: bytes) -> None:
    """Raise the ``TxFailed`` that executing a proposal of ``kind`` with ``body`` would
    meet now, if any (proofs of admissions aside: identity verifies them when it runs)."""
    _PLANNERS[kind](reader, block, body)


def _execute(ctx: ExecContext, proposal: Proposal) -> str | None:
    """Execute a passed proposal; returns None when done, or why it was refused (then
    nothing of it remains: see the module docstring)."""
    events_before = len(ctx.events)
    updates_before = dict(ctx.validator_updates)
    try:
        plan = _PLANNERS[proposal.kind](ctx.view, ctx.block, proposal.body)
        if plan.call is not None:
            ctx.call("identity", *plan.call)
    except OutOfGas:
        raise
    except TxFailed as failure:
        del ctx.events[events_before:]
        ctx.validator_updates.clear()
        ctx.validator_updates.update(updates_before)
        return failure.message
    # From here nothing can be refused: small writes in our namespace, one power request.
    if plan.member is not None:
        institution, member = plan.member
        ctx.view.set(member_key(institution), MEMBER_CODEC.encode(member))
    if plan.param is not None:
        name, value = plan.param
        ctx.view.set(param_key(name), u64(value))
    if plan.power is not None:
        ctx.set_validator_power(*plan.power)
    ctx.emit(plan.event, proposal=proposal.id, **plan.attributes)
    return None


# -- genesis ---------------------------------------------------------------------------------


def _check_genesis_members(genesis: Sequence[GenesisMember]) -> tuple[GenesisMember, ...]:
    """``genesis`` if it is a valid set of members (``ValueError`` otherwise)."""
    if len(genesis) > MAX_MEMBERS:
        raise ValueError(f"governance: at most {MAX_MEMBERS} members")
    for index, member in enumerate(genesis):
        where = f"governance member {index}"
        if type(member.institution) is not bytes or len(member.institution) != ID_BYTES:
            raise ValueError(f"{where}: institution must be {ID_BYTES} bytes")
        if type(member.validator_key) is not bytes or len(member.validator_key) != 32:
            raise ValueError(f"{where}: validator_key must be {PUBLIC_KEY_BYTES} bytes")
        if type(member.weight) is not int or not MIN_WEIGHT <= member.weight <= MAX_WEIGHT:
            raise ValueError(f"{where}: weight must be an int in {MIN_WEIGHT}..{MAX_WEIGHT}")
        if type(member.power) is not int or not 0 <= member.power <= MAX_VALIDATOR_POWER:
            raise ValueError(f"{where}: power must be an int in 0..{MAX_VALIDATOR_POWER}")
    if len({m.institution for m in genesis}) != len(genesis):
        raise ValueError("governance: an institution is listed twice")
    if len({m.validator_key for m in genesis}) != len(genesis):
        raise ValueError("governance: a validator key is listed twice")
    if sum(m.power for m in genesis) > MAX_TOTAL_VOTING_POWER:
        raise ValueError("governance: the total validator power is too large")
    return tuple(genesis)


def _check_genesis_params(params: Mapping[str, int]) -> dict[str, int]:
    """``params`` if every name is a parameter and every value within its limits."""
    for name, value in params.items():
        if name not in PARAM_DEFAULTS:
            raise ValueError(f"governance: no parameter {name!r}")
        low, high = PARAM_LIMITS[name]
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"governance: parameter {name} must be an int in {low}..{high}")
    return dict(params)


def _json_object(value: JsonValue, where: str, keys: frozenset[str]) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    return value


def _json_hex(value: JsonValue, where: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"{where} must be a hex string") from exc


def _json_int(value: JsonValue, where: str) -> int:
    if type(value) is not int:
        raise ValueError(f"{where} must be an integer")
    return value


_MEMBER_FIELDS: Final = frozenset({"institution", "validator_key", "power", "weight"})


def _genesis_member(value: JsonValue, where: str) -> GenesisMember:
    item = _json_object(value, where, _MEMBER_FIELDS)
    missing = sorted(_MEMBER_FIELDS - set(item))
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    return GenesisMember(
        institution=_json_hex(item["institution"], f"{where}.institution"),
        validator_key=_json_hex(item["validator_key"], f"{where}.validator_key"),
        power=_json_int(item["power"], f"{where}.power"),
        weight=_json_int(item["weight"], f"{where}.weight"),
    )


# -- the module ------------------------------------------------------------------------------


def _require_active_member(reader: KeyReader, sender: bytes, what: str) -> tuple[bytes, Member]:
    """The institution id and member record of ``sender``, an ACTIVE member institution."""
    identity = require_sender(reader, sender, (HealthRole.INSTITUTION,), what)
    member = get_member(reader, identity.id)
    if member is None or member.status is not MemberStatus.ACTIVE:
        raise TxFailed(ResultCode.UNAUTHORIZED, f"only an active member institution may {what}")
    return identity.id, member


def _next_id(reader: KeyReader) -> int:
    stored = reader.get(NEXT_ID_KEY)
    return FIRST_PROPOSAL_ID if stored is None else int.from_bytes(stored, "big")


def _counted(proposal: Proposal, choice: Choice, weight: int) -> Proposal:
    if choice is Choice.YES:
        return replace(proposal, yes_weight=proposal.yes_weight + weight)
    if choice is Choice.NO:
        return replace(proposal, no_weight=proposal.no_weight + weight)
    return replace(proposal, abstain_weight=proposal.abstain_weight + weight)


class GovernanceModule(Module):
    """Member institutions, proposals, votes and parameters (see the module docstring)."""

    name = GOVERNANCE
    actions = frozenset({"propose", "vote"})

    def __init__(
        self, members: Sequence[GenesisMember] = (), params: Mapping[str, int] | None = None
    ) -> None:
        self.genesis_members = _check_genesis_members(members)
        self.genesis_params = _check_genesis_params(params or {})

    @classmethod
    def from_app_state(cls, value: JsonValue) -> GovernanceModule:
        """The module of ``app_state["governance"]``: ``{"members": [{"institution",
        "validator_key", "power", "weight"}], "params": {name: value}}`` (hex for bytes;
        both fields optional); ``ValueError`` saying what is wrong otherwise."""
        if value is None:
            return cls()
        state = _json_object(value, "app_state.governance", frozenset({"members", "params"}))
        listed = state.get("members", [])
        if not isinstance(listed, list):
            raise ValueError("app_state.governance.members must be a list")
        genesis = [
            _genesis_member(item, f"app_state.governance.members[{index}]")
            for index, item in enumerate(listed)
        ]
        raw_params = state.get("params", {})
        if not isinstance(raw_params, dict):
            raise ValueError("app_state.governance.params must be a JSON object")
        params = {
            name: _json_int(item, f"app_state.governance.params.{name}")
            for name, item in raw_params.items()
        }
        return cls(genesis, params)

    def init_genesis(self, ctx: ExecContext) -> None:
        for genesis in self.genesis_members:
            member = Member(
                genesis.validator_key,
                genesis.power,
                genesis.weight,
                MemberStatus.ACTIVE,
                ctx.block.height,
            )
            ctx.view.set(member_key(genesis.institution), MEMBER_CODEC.encode(member))
        for name in sorted(self.genesis_params):
            if self.genesis_params[name] != PARAM_DEFAULTS[name]:
                ctx.view.set(param_key(name), u64(self.genesis_params[name]))

    # -- transactions -----------------------------------------------------------------------

    def check_tx(self, ctx: CheckContext, tx: Transaction) -> None:
        if tx.action == "propose":
            payload = decode_payload(PROPOSE_CODEC, tx.payload)
            decode_payload(BODY_CODECS[payload.kind], payload.body)
            _require_active_member(ctx.view, tx.sender, "propose")
        else:
            decode_payload(VOTE_CODEC, tx.payload)
            _require_active_member(ctx.view, tx.sender, "vote")

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        if tx.action == "propose":
            self._propose(ctx, decode_payload(PROPOSE_CODEC, tx.payload))
        else:
            self._vote(ctx, decode_payload(VOTE_CODEC, tx.payload))

    def _propose(self, ctx: ExecContext, payload: ProposePayload) -> None:
        proposer, _ = _require_active_member(ctx.view, ctx.require_sender(), "propose")
        # A proposal that could not be executed now is refused now (it may still fail later).
        plan_proposal(ctx.view, ctx.block, payload.kind, payload.body)
        if len(ctx.view.iterate(OPEN_PREFIX + proposer, MAX_OPEN_PROPOSALS)) >= MAX_OPEN_PROPOSALS:
            raise TxFailed(
                ResultCode.LIMIT_EXCEEDED, f"a member has at most {MAX_OPEN_PROPOSALS} open"
            )
        proposal_id = _next_id(ctx.view)
        ctx.view.set(NEXT_ID_KEY, u64(proposal_id + 1))
        deadline_ms = ctx.block.time_ms + param(ctx.view, "voting_period_ms")
        task = ctx.schedule(deadline_ms, DEADLINE_TASK, u64(proposal_id))
        proposal = Proposal(
            id=proposal_id,
            proposer=proposer,
            kind=payload.kind,
            body=payload.body,
            reason=payload.reason,
            created_ms=ctx.block.time_ms,
            deadline_ms=deadline_ms,
            status=ProposalStatus.OPEN,
            yes_weight=0,
            no_weight=0,
            abstain_weight=0,
            deadline_task=task,
            outcome="",
        )
        ctx.view.set(proposal_key(proposal_id), PROPOSAL_CODEC.encode(proposal))
        ctx.view.set(open_key(proposer, proposal_id), u64(deadline_ms))
        ctx.emit(
            "proposed",
            proposal=proposal_id,
            proposer=proposer,
            kind=payload.kind.name.lower(),
            deadline_ms=deadline_ms,
            reason=payload.reason,
        )

    def _vote(self, ctx: ExecContext, payload: VotePayload) -> None:
        voter, member = _require_active_member(ctx.view, ctx.require_sender(), "vote")
        proposal = get_proposal(ctx.view, payload.proposal)
        if proposal is None:
            raise TxFailed(ResultCode.NOT_FOUND, f"no proposal {payload.proposal}")
        if proposal.status is not ProposalStatus.OPEN:
            raise TxFailed(
                ResultCode.CONFLICT, f"proposal {proposal.id} is {proposal.status.name.lower()}"
            )
        if ctx.block.time_ms >= proposal.deadline_ms:
            raise TxFailed(ResultCode.CONFLICT, f"voting on proposal {proposal.id} has closed")
        if get_ballot(ctx.view, proposal.id, voter) is not None:
            raise TxFailed(ResultCode.CONFLICT, f"already voted on proposal {proposal.id}")
        ballot = Ballot(payload.choice, member.weight)
        ctx.view.set(vote_key(proposal.id, voter), BALLOT_CODEC.encode(ballot))
        proposal = _counted(proposal, payload.choice, member.weight)
        ctx.emit(
            "voted",
            proposal=proposal.id,
            member=voter,
            choice=payload.choice.name.lower(),
            weight=member.weight,
        )
        total = active_weight(members(ctx.view))
        if passes_early(proposal.yes_weight, total, param(ctx.view, "threshold_pct")):
            ctx.cancel(proposal.deadline_task)
            proposal = self._decide(ctx, proposal)
        ctx.view.set(proposal_key(proposal.id), PROPOSAL_CODEC.encode(proposal))

    # -- decisions --------------------------------------------------------------------------

    def on_due(self, ctx: ExecContext, task: DueTask) -> None:
        if task.kind != DEADLINE_TASK or len(task.payload) != 8:
            raise TxFailed(ResultCode.UNKNOWN_KIND, f"governance has no task {task.kind!r}")
        proposal = get_proposal(ctx.view, int.from_bytes(task.payload, "big"))
        if proposal is None or proposal.status is not ProposalStatus.OPEN:
            return  # decided early: the deadline task was cancelled; guard it anyway
        if proposal.deadline_task != task.task_id:
            return
        total = active_weight(members(ctx.view))
        quorum_pct = param(ctx.view, "quorum_pct")
        threshold_pct = param(ctx.view, "threshold_pct")
        yes, no, abstain = proposal.yes_weight, proposal.no_weight, proposal.abstain_weight
        if passes_at_deadline(
            yes, no, abstain, total, quorum_pct=quorum_pct, threshold_pct=threshold_pct
        ):
            proposal = self._decide(ctx, proposal)
        else:
            quorum = (yes + no + abstain) * 100 >= quorum_pct * total
            outcome = "threshold not reached" if quorum else "quorum not reached"
            proposal = replace(proposal, status=ProposalStatus.REJECTED, outcome=outcome)
            ctx.view.delete(open_key(proposal.proposer, proposal.id))
            ctx.emit(
                "rejected",
                proposal=proposal.id,
                kind=proposal.kind.name.lower(),
                yes=yes,
                no=no,
                abstain=abstain,
                total=total,
                log=outcome,
            )
        ctx.view.set(proposal_key(proposal.id), PROPOSAL_CODEC.encode(proposal))

    def _decide(self, ctx: ExecContext, proposal: Proposal) -> Proposal:
        """Execute a proposal that passed: PASSED, or FAILED if its execution was refused.
        The caller writes the returned proposal."""
        ctx.view.delete(open_key(proposal.proposer, proposal.id))
        refusal = _execute(ctx, proposal)
        kind = proposal.kind.name.lower()
        if refusal is None:
            ctx.emit("passed", proposal=proposal.id, kind=kind)
            return replace(proposal, status=ProposalStatus.PASSED)
        outcome = refusal[:MAX_OUTCOME_CHARS]
        ctx.emit("failed", proposal=proposal.id, kind=kind, log=outcome)
        return replace(proposal, status=ProposalStatus.FAILED, outcome=outcome)

    # -- queries ----------------------------------------------------------------------------

    def query_key(self, path: str) -> bytes:
        """Readable paths: ``n``; ``m`` or ``m/<hex institution>``; ``p`` or ``p/<name>``;
        ``q`` or ``q/<id>``; ``v/<id>`` or ``v/<id>/<hex member>``; ``o/<hex proposer>`` or
        ``o/<hex proposer>/<id>`` (ids in decimal). ``ValueError`` for anything else."""
        head, _, rest = path.partition("/")
        parts = rest.split("/") if rest else []
        if head == "n" and not parts:
            return NEXT_ID_KEY
        if head == "m" and len(parts) <= 1:
            return MEMBER_PREFIX + b"".join(_path_id(p) for p in parts)
        if head == "p" and len(parts) <= 1:
            if parts and parts[0] not in PARAM_DEFAULTS:
                raise ValueError(f"governance: no parameter {parts[0]!r}")
            return PARAM_PREFIX + b"".join(p.encode() for p in parts)
        if head == "q" and len(parts) <= 1:
            return PROPOSAL_PREFIX + b"".join(_path_number(p) for p in parts)
        if head == "v" and 1 <= len(parts) <= 2:
            return VOTE_PREFIX + _path_number(parts[0]) + b"".join(map(_path_id, parts[1:]))
        if head == "o" and 1 <= len(parts) <= 2:
            return OPEN_PREFIX + _path_id(parts[0]) + b"".join(map(_path_number, parts[1:]))
        raise ValueError(f"governance: no state at path {path!r}")

    def render(self, key: bytes, value: bytes) -> JsonValue:
        if key == NEXT_ID_KEY:
            return {"next_id": int.from_bytes(value, "big")}
        if key.startswith(MEMBER_PREFIX):
            member = MEMBER_CODEC.decode(value)
            return {"institution": key[len(MEMBER_PREFIX) :].hex(), **_json_of(member)}
        if key.startswith(PARAM_PREFIX):
            return {"name": key[len(PARAM_PREFIX) :].decode(), "value": _u64_of(value)}
        if key.startswith(PROPOSAL_PREFIX):
            proposal = PROPOSAL_CODEC.decode(value)
            body = _json_of(BODY_CODECS[proposal.kind].decode(proposal.body))
            return {**_json_of(proposal), "body": body}
        if key.startswith(VOTE_PREFIX):
            suffix = key[len(VOTE_PREFIX) :]
            ballot = _json_of(BALLOT_CODEC.decode(value))
            return {"proposal": _u64_of(suffix[:8]), "member": suffix[8:].hex(), **ballot}
        if key.startswith(OPEN_PREFIX):
            suffix = key[len(OPEN_PREFIX) :]
            return {
                "proposer": suffix[:ID_BYTES].hex(),
                "proposal": _u64_of(suffix[ID_BYTES:]),
                "deadline_ms": _u64_of(value),
            }
        return {"hex": value.hex()}


def _path_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError as exc:
        raise ValueError(f"governance: {text!r} is not a hex id") from exc
    if len(value) != ID_BYTES:
        raise ValueError(f"governance: an id is {ID_BYTES} bytes, got {len(value)}")
    return value


def _path_number(text: str) -> bytes:
    if not (text.isascii() and text.isdigit()) or int(text) >= 1 << 64:
        raise ValueError(f"governance: {text!r} is not a proposal id")
    return u64(int(text))


def _u64_of(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _json_of(record: object) -> dict[str, JsonValue]:
    """A record as JSON: bytes as hex, enums by lower-case name, nested records as objects
    (fields in declaration order)."""
    if not is_dataclass(record) or isinstance(record, type):
        raise AssertionError(f"not a record: {type(record).__name__}")
    result: dict[str, JsonValue] = {}
    for field in fields(record):
        result[field.name] = _json_value(getattr(record, field.name))
    return result


def _json_value(value: object) -> JsonValue:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, IntEnum):
        return value.name.lower()
    if isinstance(value, bool | int | str):
        return value
    if is_dataclass(value):
        return _json_of(value)
    raise AssertionError(f"no JSON form for {type(value).__name__}")
