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

Execution never fails half-way: everything a proposal needs is checked first (``plan_proposal``,
reads only), then the module calls it makes to ``identity`` (at most one: identity checks
before it writes, so a refusal there leaves no write behind), then governance's own writes,
validator-power requests and events, none of which can be refused. A refusal in the first two
steps makes the proposal FAILED (its message is kept as the outcome) without failing the
vote transaction or the deadline task; events and validator updates requested by a refused
execution are dropped. Proposals that would leave no ACTIVE member, or take the last
validator's power away, are refused that way.

The module's parts: ``governance_types`` (records, codecs, keys, reads and payload
builders), ``governance_tally`` (pass rules, the plan of a proposal and its execution),
``governance_genesis`` (genesis members and parameters), ``governance_render`` (query paths
and JSON); this module holds ``GovernanceModule`` and re-exports every public name of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from health.contracts.common import (
    PARAM_DEFAULTS,
    HealthRole,
    param,
    param_key,
    require_sender,
    u64,
)
from health.contracts.governance_genesis import (
    check_genesis_members,
    check_genesis_params,
    genesis_of_app_state,
)
from health.contracts.governance_render import governance_key, render_governance
from health.contracts.governance_tally import (
    active_weight,
    counted,
    execute_proposal,
    passes_at_deadline,
    passes_early,
    plan_proposal,
)
from health.contracts.governance_types import (
    BALLOT_CODEC,
    BODY_CODECS,
    DEADLINE_TASK,
    FIRST_PROPOSAL_ID,
    GOVERNANCE,
    INSTITUTION_ADMISSION_CODEC,
    MAX_BODY_BYTES,
    MAX_MEMBERS,
    MAX_OPEN_PROPOSALS,
    MAX_OUTCOME_CHARS,
    MAX_REASON_CHARS,
    MAX_VALIDATOR_POWER,
    MAX_WEIGHT,
    MEMBER_CODEC,
    MEMBER_PREFIX,
    MEMBER_TARGET_CODEC,
    MIN_WEIGHT,
    NEXT_ID_KEY,
    OPEN_PREFIX,
    PARAM_CHANGE_CODEC,
    PENALTY_CODEC,
    POWER_CHANGE_CODEC,
    PROPOSAL_CODEC,
    PROPOSAL_PREFIX,
    PROPOSE_CODEC,
    VOTE_CODEC,
    VOTE_PREFIX,
    Ballot,
    Choice,
    GenesisMember,
    InstitutionAdmission,
    Member,
    MemberStatus,
    MemberTarget,
    ParamChange,
    Penalty,
    PowerChange,
    Proposal,
    ProposalKind,
    ProposalStatus,
    ProposePayload,
    VotePayload,
    admit_auditor_payload,
    admit_institution_payload,
    get_ballot,
    get_member,
    get_proposal,
    member_key,
    members,
    open_key,
    penalize_payload,
    proposal_key,
    propose_payload,
    reinstate_payload,
    remove_payload,
    set_param_payload,
    set_power_payload,
    suspend_payload,
    vote_key,
    vote_payload,
)
from node.app.due import DueTask
from node.app.errors import TxFailed
from node.app.module import CheckContext, ExecContext, JsonValue, KeyReader, Module, decode_payload
from node.types import ResultCode, Transaction

__all__ = [
    "BALLOT_CODEC",
    "BODY_CODECS",
    "DEADLINE_TASK",
    "FIRST_PROPOSAL_ID",
    "GOVERNANCE",
    "INSTITUTION_ADMISSION_CODEC",
    "MAX_BODY_BYTES",
    "MAX_MEMBERS",
    "MAX_OPEN_PROPOSALS",
    "MAX_OUTCOME_CHARS",
    "MAX_REASON_CHARS",
    "MAX_VALIDATOR_POWER",
    "MAX_WEIGHT",
    "MEMBER_CODEC",
    "MEMBER_PREFIX",
    "MEMBER_TARGET_CODEC",
    "MIN_WEIGHT",
    "NEXT_ID_KEY",
    "OPEN_PREFIX",
    "PARAM_CHANGE_CODEC",
    "PENALTY_CODEC",
    "POWER_CHANGE_CODEC",
    "PROPOSAL_CODEC",
    "PROPOSAL_PREFIX",
    "PROPOSE_CODEC",
    "VOTE_CODEC",
    "VOTE_PREFIX",
    "Ballot",
    "Choice",
    "GenesisMember",
    "GovernanceModule",
    "InstitutionAdmission",
    "Member",
    "MemberStatus",
    "MemberTarget",
    "ParamChange",
    "Penalty",
    "PowerChange",
    "Proposal",
    "ProposalKind",
    "ProposalStatus",
    "ProposePayload",
    "VotePayload",
    "active_weight",
    "admit_auditor_payload",
    "admit_institution_payload",
    "check_genesis_members",
    "check_genesis_params",
    "counted",
    "execute_proposal",
    "genesis_of_app_state",
    "get_ballot",
    "get_member",
    "get_proposal",
    "governance_key",
    "member_key",
    "members",
    "open_key",
    "passes_at_deadline",
    "passes_early",
    "penalize_payload",
    "plan_proposal",
    "proposal_key",
    "propose_payload",
    "reinstate_payload",
    "remove_payload",
    "render_governance",
    "set_param_payload",
    "set_power_payload",
    "suspend_payload",
    "vote_key",
    "vote_payload",
]


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


class GovernanceModule(Module):
    """Member institutions, proposals, votes and parameters (see the module docstring)."""

    name = GOVERNANCE
    actions = frozenset({"propose", "vote"})

    def __init__(
        self, members: Sequence[GenesisMember] = (), params: Mapping[str, int] | None = None
    ) -> None:
        self.genesis_members = check_genesis_members(members)
        self.genesis_params = check_genesis_params(params or {})

    @classmethod
    def from_app_state(cls, value: JsonValue) -> GovernanceModule:
        """The module of ``app_state["governance"]``: ``{"members": [{"institution",
        "validator_key", "power", "weight"}], "params": {name: value}}`` (hex for bytes;
        both fields optional); ``ValueError`` saying what is wrong otherwise."""
        if value is None:
            return cls()
        return cls(*genesis_of_app_state(value))

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
        proposal = counted(proposal, payload.choice, member.weight)
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
        refusal = execute_proposal(ctx, proposal)
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
        return governance_key(path)

    def render(self, key: bytes, value: bytes) -> JsonValue:
        return render_governance(key, value)
