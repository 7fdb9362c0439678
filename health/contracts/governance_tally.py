"""Governance's tally and what a proposal does: the integer pass rules of a vote, the plan of
a proposal's execution (every check made before any write) and its execution.

See ``health.contracts.governance`` for the rules: a proposal passes early on a yes majority
of the active weight, or at its deadline on quorum and threshold; executing it first checks
everything (``plan_proposal``, reads only), then makes its one ``identity`` call, then its own
writes, which cannot be refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from consensus.limits import MAX_TOTAL_VOTING_POWER
from health.contracts.common import (
    PARAM_DEFAULTS,
    PARAM_LIMITS,
    HealthRole,
    get_identity,
    param,
    param_key,
    u64,
)
from health.contracts.governance_types import (
    INSTITUTION_ADMISSION_CODEC,
    MAX_MEMBERS,
    MAX_WEIGHT,
    MEMBER_CODEC,
    MEMBER_TARGET_CODEC,
    MIN_WEIGHT,
    PARAM_CHANGE_CODEC,
    PENALTY_CODEC,
    POWER_CHANGE_CODEC,
    Choice,
    Member,
    MemberStatus,
    Proposal,
    ProposalKind,
    get_member,
    member_key,
    members,
)
from health.contracts.identity import (
    ADMISSION_CODEC,
    GOVERNANCE_REGISTRAR,
    SET_ACTIVE_CODEC,
    SetActive,
    check_admission,
)
from node.app.errors import OutOfGas, TxFailed
from node.app.evidence import validator_evidence_prefix
from node.app.module import AttributeValue, BlockInfo, ExecContext, KeyReader, decode_payload
from node.app.view import MeteredReader
from node.types import ResultCode

# -- tally -----------------------------------------------------------------------------------


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


def counted(proposal: Proposal, choice: Choice, weight: int) -> Proposal:
    """``proposal`` with a ballot of ``choice`` carrying ``weight`` added to its tally."""
    if choice is Choice.YES:
        return replace(proposal, yes_weight=proposal.yes_weight + weight)
    if choice is Choice.NO:
        return replace(proposal, no_weight=proposal.no_weight + weight)
    return replace(proposal, abstain_weight=proposal.abstain_weight + weight)


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


def execute_proposal(ctx: ExecContext, proposal: Proposal) -> str | None:
    """Execute a passed proposal; returns None when done, or why it was refused (then
    nothing of it remains: see ``health.contracts.governance``)."""
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
