"""Governance: members, proposals, weighted votes, tallies and their execution
(health/contracts/governance.py, docs/HEALTH.md "governance")."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import DuplicateVoteEvidence
from consensus.sign_bytes import vote_sign_bytes
from consensus.validator_set import ValidatorUpdate
from crypto_core.signatures import Ed25519KeyPair
from health.contracts.common import (
    DAY_MS,
    PARAM_DEFAULTS,
    HealthRole,
    get_identity,
    param,
    param_key,
)
from health.contracts.governance import (
    BODY_CODECS,
    MAX_OPEN_PROPOSALS,
    NEXT_ID_KEY,
    Choice,
    GenesisMember,
    GovernanceModule,
    Member,
    MemberStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
    admit_auditor_payload,
    admit_institution_payload,
    get_ballot,
    get_member,
    get_proposal,
    member_key,
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
from health.contracts.identity import IdentityModule, admission
from node.app import AppConfig, Application, BlockResult
from node.testing import key_pair
from node.types import Event, ResultCode, TxReceipt, Vote, VoteType
from tests.health.helpers import CHAIN, HealthChain, Party, attributes, party
from tests.node.helpers import GENESIS_TIME_MS, Chain

VOTING_PERIOD_MS = PARAM_DEFAULTS["voting_period_ms"]
NEW_VALIDATOR = key_pair("validator-new")


# -- driving governance ----------------------------------------------------------------------


def propose(chain: HealthChain, proposer: Party, payload: bytes) -> int:
    """Submit a proposal; returns its id."""
    receipt = chain.ok(proposer, "governance.propose", payload)
    [event] = chain.events(receipt, "governance.proposed")
    return int(attributes(event)["proposal"])


def vote(chain: HealthChain, voter: Party, proposal_id: int, choice: Choice) -> TxReceipt:
    """Vote in a block of its own; the vote must be accepted."""
    return chain.ok(voter, "governance.vote", vote_payload(proposal_id, choice))


def vote_block(
    chain: HealthChain, voters: list[Party], proposal_id: int, choice: Choice = Choice.YES
) -> BlockResult:
    """The votes of ``voters`` in one block (each must be accepted)."""
    txs = [chain.tx(v, "governance.vote", vote_payload(proposal_id, choice)) for v in voters]
    result = chain.run(*txs)
    assert all(r.code is ResultCode.OK for r in result.receipts), result.receipts
    return result


def proposal(chain: HealthChain, proposal_id: int) -> Proposal:
    found = get_proposal(chain.app, proposal_id)
    assert found is not None
    return found


def member(chain: HealthChain, institution: bytes) -> Member:
    found = get_member(chain.app, institution)
    assert found is not None
    return found


def names(events: list[Event]) -> list[str]:
    return [event.name for event in events]


def new_institution(name: str, label: str = "New Clinic") -> tuple[Party, bytes]:
    """A party and the ``admit_institution`` proposal payload admitting it."""
    newcomer = party(name)
    admitted = admission(
        newcomer.signer,
        newcomer.encryption_private,
        chain_id=CHAIN,
        role=HealthRole.INSTITUTION,
        kind="clinic",
        label=label,
    )
    payload = admit_institution_payload(
        admitted, validator_key=NEW_VALIDATOR.public_key, power=5, weight=2, reason="joins"
    )
    return newcomer, payload


@pytest.fixture
def chain() -> HealthChain:
    """Four genesis members (weight 1, power 10 each): 3 yes votes pass a proposal early."""
    return HealthChain(institutions=4)


# -- admission -------------------------------------------------------------------------------


def test_an_admitted_institution_becomes_a_member_validator_and_registrar(
    chain: HealthChain,
) -> None:
    a, b, c, _ = chain.members
    newcomer, payload = new_institution("clinic-new")
    proposal_id = propose(chain, a, payload)
    vote(chain, a, proposal_id, Choice.YES)
    vote(chain, b, proposal_id, Choice.YES)
    assert proposal(chain, proposal_id).status is ProposalStatus.OPEN  # 2*100 <= 66*4
    result = chain.run(chain.tx(c, "governance.vote", vote_payload(proposal_id, Choice.YES)))
    receipt = result.receipts[0]
    assert receipt.code is ResultCode.OK
    assert names(chain.events(receipt)) == [
        "governance.voted",
        "identity.registered",
        "governance.member_admitted",
        "governance.passed",
    ]
    assert result.validator_updates == (ValidatorUpdate(NEW_VALIDATOR.public_key, 5),)
    decided = proposal(chain, proposal_id)
    assert (decided.status, decided.yes_weight, decided.outcome) == (ProposalStatus.PASSED, 3, "")
    assert member(chain, newcomer.id) == Member(
        NEW_VALIDATOR.public_key, 5, 2, MemberStatus.ACTIVE, result.height
    )
    assert chain.get(open_key(a.id, proposal_id)) is None
    # The deadline task was cancelled: nothing happens at the deadline.
    assert chain.events(chain.advance(VOTING_PERIOD_MS), "governance") == []
    # The new institution acts: it registers a practitioner, proposes and votes (weight 2).
    doctor = chain.register(newcomer, "dr-new", HealthRole.PRACTITIONER, "endocrinology", "Dr N")
    identity = get_identity(chain.app, doctor.id)
    assert identity is not None and identity.parent == newcomer.id
    second = propose(chain, newcomer, set_param_payload("quorum_pct", 60))
    receipt = vote(chain, newcomer, second, Choice.NO)
    assert attributes(chain.events(receipt, "governance.voted")[0])["weight"] == "2"
    assert proposal(chain, second).no_weight == 2


def test_an_admission_with_bad_proofs_is_refused_when_proposed(chain: HealthChain) -> None:
    newcomer = party("clinic-bad")
    wrong_chain = admission(
        newcomer.signer,
        newcomer.encryption_private,
        chain_id="another-chain",
        role=HealthRole.INSTITUTION,
        kind="clinic",
        label="Bad",
    )
    payload = admit_institution_payload(
        wrong_chain, validator_key=NEW_VALIDATOR.public_key, power=1, weight=1
    )
    chain.fails(chain.members[0], "governance.propose", payload, ResultCode.UNAUTHORIZED)


@pytest.mark.parametrize(
    ("role", "signing_key", "validator_key", "weight", "code"),
    [
        (HealthRole.AUDITOR, None, NEW_VALIDATOR.public_key, 1, ResultCode.INVALID_PAYLOAD),
        (None, party("hospital-2").id, NEW_VALIDATOR.public_key, 1, ResultCode.CONFLICT),
        (None, None, key_pair("validator-1").public_key, 1, ResultCode.CONFLICT),
        (None, None, NEW_VALIDATOR.public_key, 0, ResultCode.INVALID_PAYLOAD),
    ],
)
def test_an_admission_that_cannot_apply_is_refused_when_proposed(
    chain: HealthChain,
    role: HealthRole | None,
    signing_key: bytes | None,
    validator_key: bytes,
    weight: int,
    code: ResultCode,
) -> None:
    newcomer = party("clinic-x")
    admitted = admission(
        newcomer.signer,
        newcomer.encryption_private,
        chain_id=CHAIN,
        role=HealthRole.INSTITUTION,
        kind="clinic",
        label="X",
    )
    if role is not None:
        admitted = dataclasses.replace(admitted, role=role)
    if signing_key is not None:
        admitted = dataclasses.replace(admitted, signing_key=signing_key)
    payload = admit_institution_payload(
        admitted, validator_key=validator_key, power=1, weight=weight
    )
    chain.fails(chain.members[0], "governance.propose", payload, code)


def test_a_proposal_that_can_no_longer_apply_fails_without_failing_the_vote(
    chain: HealthChain,
) -> None:
    a, b, c, d = chain.members
    newcomer, payload = new_institution("clinic-twice")
    first, second = propose(chain, a, payload), propose(chain, b, payload)
    vote_block(chain, [a, b, c], first)
    # The newcomer's weight 2 makes the total 6: the fourth yes vote decides (400 > 396).
    vote_block(chain, [a, b, c], second)
    result = chain.run(chain.tx(d, "governance.vote", vote_payload(second, Choice.YES)))
    receipt = result.receipts[0]
    assert receipt.code is ResultCode.OK
    assert names(chain.events(receipt)) == ["governance.voted", "governance.failed"]
    assert result.validator_updates == ()
    failed = proposal(chain, second)
    assert failed.status is ProposalStatus.FAILED
    assert "bound" in failed.outcome or "exists" in failed.outcome
    assert attributes(chain.events(receipt, "governance.failed")[0])["log"] == failed.outcome
    assert get_ballot(chain.app, second, d.id) is not None  # the vote itself counts
    assert member(chain, newcomer.id).admitted_height < result.height


def test_an_auditor_is_admitted_by_a_vote(chain: HealthChain) -> None:
    auditor = party("auditor-1")
    admitted = admission(
        auditor.signer,
        auditor.encryption_private,
        chain_id=CHAIN,
        role=HealthRole.AUDITOR,
        label="Health Inspectorate",
    )
    proposal_id = propose(chain, chain.members[0], admit_auditor_payload(admitted))
    result = vote_block(chain, chain.members[:3], proposal_id)
    assert "governance.auditor_admitted" in names(chain.events(result))
    identity = get_identity(chain.app, auditor.id)
    assert identity is not None and identity.role is HealthRole.AUDITOR and identity.active
    assert get_member(chain.app, auditor.id) is None  # auditors do not vote


# -- who may propose and vote ----------------------------------------------------------------


def test_only_active_member_institutions_propose_and_vote(chain: HealthChain) -> None:
    a = chain.members[0]
    doctor = chain.register(a, "dr-a", HealthRole.PRACTITIONER, "cardiology", "Dr A")
    proposal_id = propose(chain, a, set_param_payload("quorum_pct", 60))
    refused = chain.fails(
        doctor, "governance.vote", vote_payload(proposal_id, Choice.YES), ResultCode.UNAUTHORIZED
    )
    assert "member" in refused.log or "institution" in refused.log
    chain.fails(
        doctor,
        "governance.propose",
        set_param_payload("quorum_pct", 70),
        ResultCode.UNAUTHORIZED,
    )
    unsent = chain.factory.make(
        doctor.signer,
        "governance.vote",
        vote_payload(proposal_id, Choice.NO),
        nonce=chain.app.next_nonce(doctor.id),
    )
    check = chain.app.check_tx(unsent)
    assert check.code is ResultCode.UNAUTHORIZED
    assert proposal(chain, proposal_id).yes_weight == 0


def test_a_member_votes_once_and_only_while_the_proposal_is_open(chain: HealthChain) -> None:
    a, b, c, d = chain.members
    proposal_id = propose(chain, a, set_param_payload("quorum_pct", 60))
    vote(chain, a, proposal_id, Choice.NO)
    again = chain.fails(
        a, "governance.vote", vote_payload(proposal_id, Choice.YES), ResultCode.CONFLICT
    )
    assert "already voted" in again.log
    assert proposal(chain, proposal_id).no_weight == 1
    assert proposal(chain, proposal_id).yes_weight == 0
    chain.fails(a, "governance.vote", vote_payload(99, Choice.YES), ResultCode.NOT_FOUND)
    vote_block(chain, [b, c, d], proposal_id)
    assert proposal(chain, proposal_id).status is ProposalStatus.PASSED
    # A proposal whose deadline has passed refuses votes too.
    second = propose(chain, a, set_param_payload("quorum_pct", 70))
    chain.advance(VOTING_PERIOD_MS)
    closed = chain.fails(
        b, "governance.vote", vote_payload(second, Choice.YES), ResultCode.CONFLICT
    )
    assert "rejected" in closed.log


def test_a_member_has_a_bounded_number_of_open_proposals(chain: HealthChain) -> None:
    a = chain.members[0]
    txs = [
        chain.tx(a, "governance.propose", set_param_payload("quorum_pct", 51 + i))
        for i in range(MAX_OPEN_PROPOSALS + 1)
    ]
    receipts = chain.run(*txs).receipts
    assert all(r.code is ResultCode.OK for r in receipts[:MAX_OPEN_PROPOSALS])
    assert receipts[-1].code is ResultCode.LIMIT_EXCEEDED
    chain.ok(chain.members[1], "governance.propose", set_param_payload("quorum_pct", 99))


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (set_param_payload("no_such_param", 1), ResultCode.INVALID_PAYLOAD),
        (set_param_payload("quorum_pct", 101), ResultCode.INVALID_PAYLOAD),
        (set_param_payload("threshold_pct", 49), ResultCode.INVALID_PAYLOAD),
        (suspend_payload(bytes(32)), ResultCode.NOT_FOUND),
        (reinstate_payload(party("hospital-1").id), ResultCode.CONFLICT),
        (set_power_payload(party("hospital-1").id, 10), ResultCode.CONFLICT),
        (propose_payload(ProposalKind.SUSPEND, b"\x91\x01"), ResultCode.INVALID_PAYLOAD),
        (b"\x93\x01", ResultCode.INVALID_PAYLOAD),
    ],
)
def test_proposals_that_cannot_apply_are_refused(
    chain: HealthChain, payload: bytes, code: ResultCode
) -> None:
    chain.fails(chain.members[0], "governance.propose", payload, code)
    assert chain.get(NEXT_ID_KEY) is None


# -- suspension, removal, power --------------------------------------------------------------


def test_a_suspended_institution_cannot_act_and_loses_its_validator_power(
    chain: HealthChain,
) -> None:
    a, b, c, d = chain.members
    doctor = chain.register(d, "dr-d", HealthRole.PRACTITIONER, "cardiology", "Dr D")
    proposal_id = propose(chain, a, suspend_payload(d.id, "audit findings"))
    result = vote_block(chain, [a, b, c], proposal_id)
    assert result.validator_updates == (ValidatorUpdate(chain.validators[3].public_key, 0),)
    assert "governance.member_suspended" in names(chain.events(result))
    assert member(chain, d.id).status is MemberStatus.SUSPENDED
    assert member(chain, d.id).power == 10  # kept, restored on reinstatement
    identity = get_identity(chain.app, d.id)
    assert identity is not None and not identity.active
    chain.fails(
        d, "governance.propose", set_param_payload("quorum_pct", 60), ResultCode.ACCOUNT_INACTIVE
    )
    # Its practitioners cannot act either (their institution is not active).
    refused = chain.receipt(doctor, "kv.set", b"")
    assert refused.code is ResultCode.ACCOUNT_INACTIVE
    # The total weight is now 3: two yes votes pass (2*100 > 66*3).
    back = propose(chain, a, reinstate_payload(d.id))
    result = vote_block(chain, [a, b], back)
    assert proposal(chain, back).status is ProposalStatus.PASSED
    assert result.validator_updates == (ValidatorUpdate(chain.validators[3].public_key, 10),)
    assert member(chain, d.id).status is MemberStatus.ACTIVE
    chain.factory.set_nonce(d.id, chain.app.next_nonce(d.id))  # its refused tx used no nonce
    vote(chain, d, propose(chain, a, remove_payload(c.id)), Choice.NO)


def test_removal_and_power_changes(chain: HealthChain) -> None:
    a, b, c, d = chain.members
    powered = propose(chain, a, set_power_payload(b.id, 25))
    result = vote_block(chain, [a, b, c], powered)
    assert result.validator_updates == (ValidatorUpdate(chain.validators[1].public_key, 25),)
    assert member(chain, b.id).power == 25
    removal = propose(chain, a, remove_payload(d.id))
    result = vote_block(chain, [a, b, c], removal)
    assert result.validator_updates == (ValidatorUpdate(chain.validators[3].public_key, 0),)
    assert member(chain, d.id).status is MemberStatus.REMOVED
    chain.fails(a, "governance.propose", reinstate_payload(d.id), ResultCode.CONFLICT)
    chain.fails(a, "governance.propose", set_power_payload(d.id, 3), ResultCode.CONFLICT)


def test_the_last_active_member_and_the_last_validator_are_never_taken_away() -> None:
    chain = HealthChain(institutions=2)
    a, b = chain.members
    # Two members of weight 1: a proposal needs both yes votes (200 > 132) until one leaves.
    unpower_a = propose(chain, a, set_power_payload(a.id, 0))
    unpower_b = propose(chain, a, set_power_payload(b.id, 0))
    suspend_a = propose(chain, b, suspend_payload(a.id))
    suspend_b = propose(chain, b, suspend_payload(b.id))
    vote_block(chain, [a, b], unpower_a)
    result = vote_block(chain, [a, b], unpower_b)
    assert proposal(chain, unpower_b).status is ProposalStatus.FAILED
    assert proposal(chain, unpower_b).outcome == "no validator would remain"
    assert result.validator_updates == ()
    assert member(chain, b.id).power == 10
    vote_block(chain, [a, b], suspend_a)
    assert member(chain, a.id).status is MemberStatus.SUSPENDED
    vote(chain, b, suspend_b, Choice.YES)  # b alone is the whole active weight now
    assert proposal(chain, suspend_b).status is ProposalStatus.FAILED
    assert proposal(chain, suspend_b).outcome == "no active member would remain"
    assert member(chain, b.id).status is MemberStatus.ACTIVE


# -- parameters ------------------------------------------------------------------------------


def test_a_parameter_change_is_read_through_common_param(chain: HealthChain) -> None:
    a, b, c, _ = chain.members
    assert param(chain.app, "max_grant_ms") == PARAM_DEFAULTS["max_grant_ms"]
    proposal_id = propose(chain, a, set_param_payload("max_grant_ms", 30 * DAY_MS))
    result = vote_block(chain, [a, b, c], proposal_id)
    [changed] = chain.events(result, "governance.param_changed")
    assert attributes(changed) == {
        "param": "max_grant_ms",
        "previous": str(PARAM_DEFAULTS["max_grant_ms"]),
        "proposal": str(proposal_id),
        "value": str(30 * DAY_MS),
    }
    assert param(chain.app, "max_grant_ms") == 30 * DAY_MS
    assert chain.get(param_key("max_grant_ms")) == (30 * DAY_MS).to_bytes(8, "big")


def test_a_changed_voting_period_sets_the_next_deadlines() -> None:
    chain = HealthChain(institutions=3, params={"voting_period_ms": 60_000})
    proposal_id = propose(chain, chain.members[0], set_param_payload("quorum_pct", 60))
    created = proposal(chain, proposal_id)
    assert created.deadline_ms == created.created_ms + 60_000
    chain.advance(60_000)
    assert proposal(chain, proposal_id).status is ProposalStatus.REJECTED


# -- tally at the deadline -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choices", "status", "outcome"),
    [
        ((Choice.YES, Choice.YES), ProposalStatus.PASSED, ""),  # quorum 200 >= 200, 200 > 132
        ((Choice.YES, Choice.YES, Choice.NO), ProposalStatus.PASSED, ""),  # 200 > 198
        ((Choice.YES, Choice.ABSTAIN), ProposalStatus.PASSED, ""),  # abstain counts to quorum
        ((Choice.YES,), ProposalStatus.REJECTED, "quorum not reached"),  # 100 < 200
        ((Choice.YES, Choice.NO), ProposalStatus.REJECTED, "threshold not reached"),
        ((Choice.ABSTAIN, Choice.ABSTAIN), ProposalStatus.REJECTED, "threshold not reached"),
        ((), ProposalStatus.REJECTED, "quorum not reached"),
    ],
)
def test_the_deadline_tally_applies_quorum_and_threshold(
    chain: HealthChain, choices: tuple[Choice, ...], status: ProposalStatus, outcome: str
) -> None:
    proposal_id = propose(chain, chain.members[0], set_param_payload("quorum_pct", 75))
    for voter, choice in zip(chain.members, choices, strict=False):
        vote(chain, voter, proposal_id, choice)
    deadline_ms = proposal(chain, proposal_id).deadline_ms
    assert chain.events(chain.run(time_ms=deadline_ms - 1), "governance") == []
    result = chain.run(time_ms=deadline_ms)
    decided = proposal(chain, proposal_id)
    assert (decided.status, decided.outcome) == (status, outcome)
    event = "governance.passed" if status is ProposalStatus.PASSED else "governance.rejected"
    assert event in names(chain.events(result))
    expected_quorum = 75 if status is ProposalStatus.PASSED else PARAM_DEFAULTS["quorum_pct"]
    assert param(chain.app, "quorum_pct") == expected_quorum
    assert chain.get(open_key(chain.members[0].id, proposal_id)) is None


def test_a_proposal_passed_at_its_deadline_is_executed_by_the_deadline_task(
    chain: HealthChain,
) -> None:
    a, b, _, d = chain.members
    proposal_id = propose(chain, a, suspend_payload(d.id))
    vote_block(chain, [a, b], proposal_id)  # quorum 200 >= 200, 200 > 0: passes at the deadline
    result = chain.advance(VOTING_PERIOD_MS)
    assert names(chain.events(result, "governance")) == [
        "governance.member_suspended",
        "governance.passed",
    ]
    assert result.validator_updates == (ValidatorUpdate(chain.validators[3].public_key, 0),)
    assert member(chain, d.id).status is MemberStatus.SUSPENDED
    identity = get_identity(chain.app, d.id)
    assert identity is not None and not identity.active


# -- penalties -------------------------------------------------------------------------------


def equivocation(validator: Ed25519KeyPair, height: int) -> DuplicateVoteEvidence:
    """Two conflicting precommits of ``validator`` at ``height``."""

    def precommit(value: bytes | None) -> Vote:
        sign_bytes = vote_sign_bytes(CHAIN, height, 0, VoteType.PRECOMMIT, value)
        return Vote(
            CHAIN,
            height,
            0,
            VoteType.PRECOMMIT,
            value,
            validator.public_key,
            validator.sign(sign_bytes),
        )

    return DuplicateVoteEvidence.from_votes(precommit(None), precommit(b"\x07" * 32))


def test_penalize_needs_committed_evidence(chain: HealthChain) -> None:
    a, b, c, _ = chain.members
    cheat = chain.validators[2]
    chain.run()
    chain.run()
    refused = chain.fails(
        a, "governance.propose", penalize_payload(cheat.public_key, 1), ResultCode.NOT_FOUND
    )
    assert "equivocation" in refused.log
    chain.chain.run([], evidence=[equivocation(cheat, 1)])
    # Evidence at another height does not count.
    chain.fails(
        a, "governance.propose", penalize_payload(cheat.public_key, 2), ResultCode.NOT_FOUND
    )
    stranger = key_pair("not-a-member")
    chain.chain.run([], evidence=[equivocation(stranger, 1)])
    chain.fails(
        a, "governance.propose", penalize_payload(stranger.public_key, 1), ResultCode.NOT_FOUND
    )
    proposal_id = propose(chain, a, penalize_payload(cheat.public_key, 1, "double signing"))
    result = vote_block(chain, [a, b, c], proposal_id)
    assert result.validator_updates == (ValidatorUpdate(cheat.public_key, 0),)
    [penalized] = chain.events(result, "governance.member_penalized")
    assert attributes(penalized)["institution"] == c.id.hex()
    assert attributes(penalized)["evidence_height"] == "1"
    assert member(chain, c.id) == dataclasses.replace(
        member(chain, c.id), status=MemberStatus.SUSPENDED, power=0
    )
    assert member(chain, c.id).power == 0
    identity = get_identity(chain.app, c.id)
    assert identity is not None and not identity.active
    chain.fails(a, "governance.propose", penalize_payload(cheat.public_key, 1), ResultCode.CONFLICT)
    # Reinstated, it acts again but has no validator power until a vote gives it some.
    back = propose(chain, a, reinstate_payload(c.id))
    result = vote_block(chain, [a, b], back)
    assert member(chain, c.id).status is MemberStatus.ACTIVE
    assert result.validator_updates == ()


# -- the tally, against a model --------------------------------------------------------------


def weighted_chain(weights: list[int], params: dict[str, int]) -> HealthChain:
    """A ``HealthChain`` whose genesis members carry ``weights`` (identity and governance
    only)."""
    chain = HealthChain(institutions=len(weights))
    identity = chain.app.module("identity")
    assert isinstance(identity, IdentityModule)
    genesis = [
        GenesisMember(m.id, v.public_key, 10, w)
        for m, v, w in zip(chain.members, chain.validators, weights, strict=True)
    ]
    app = Application(
        AppConfig(CHAIN), [identity, GovernanceModule(genesis, params)], authenticator=identity
    )
    app.init_chain(GENESIS_TIME_MS)
    chain.app, chain.chain = app, Chain(app)
    return chain


def model_outcome(
    weights: list[int], votes: list[tuple[int, Choice]], threshold_pct: int, quorum_pct: int
) -> tuple[list[bool], ProposalStatus, int | None]:
    """Which votes are accepted, the final status and the vote (index) that decided it
    early (None: decided at the deadline), by plain arithmetic."""
    total = sum(weights)
    tally = {Choice.YES: 0, Choice.NO: 0, Choice.ABSTAIN: 0}
    accepted: list[bool] = []
    voted: set[int] = set()
    decided_at: int | None = None
    for index, (who, choice) in enumerate(votes):
        ok = decided_at is None and who not in voted
        accepted.append(ok)
        if not ok:
            continue
        voted.add(who)
        tally[choice] += weights[who]
        if tally[Choice.YES] * 100 > threshold_pct * total:
            decided_at = index
    if decided_at is not None:
        return accepted, ProposalStatus.PASSED, decided_at
    yes, no, cast = tally[Choice.YES], tally[Choice.NO], sum(tally.values())
    passed = cast * 100 >= quorum_pct * total and yes * 100 > threshold_pct * (yes + no)
    return accepted, ProposalStatus.PASSED if passed else ProposalStatus.REJECTED, None


def test_an_early_pass_needs_strictly_more_than_the_threshold() -> None:
    chain = weighted_chain([1, 1, 2], {"threshold_pct": 50})
    light, other, heavy = chain.members
    proposal_id = propose(chain, light, set_param_payload("quorum_pct", 60))
    vote(chain, heavy, proposal_id, Choice.YES)  # 2 * 100 == 50 * 4: not yet
    assert proposal(chain, proposal_id).status is ProposalStatus.OPEN
    vote(chain, other, proposal_id, Choice.NO)
    assert proposal(chain, proposal_id).status is ProposalStatus.OPEN
    vote(chain, light, proposal_id, Choice.YES)  # 3 * 100 > 50 * 4
    assert proposal(chain, proposal_id).status is ProposalStatus.PASSED


@settings(max_examples=150, deadline=None)
@given(
    # Small weights make the boundaries (yes * 100 == threshold_pct * total) likely.
    weights=st.lists(st.integers(1, 4) | st.integers(1, 1000), min_size=1, max_size=6),
    raw_votes=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(list(Choice))), min_size=0, max_size=9
    ),
    threshold_pct=st.sampled_from([50, 66, 75, 100]) | st.integers(50, 100),
    quorum_pct=st.sampled_from([25, 50, 100]) | st.integers(1, 100),
)
def test_the_outcome_matches_a_simple_model(
    weights: list[int],
    raw_votes: list[tuple[int, Choice]],
    threshold_pct: int,
    quorum_pct: int,
) -> None:
    votes = [(who % len(weights), choice) for who, choice in raw_votes]
    params = {"threshold_pct": threshold_pct, "quorum_pct": quorum_pct}
    chain = weighted_chain(weights, params)
    accepted, status, decided_at = model_outcome(weights, votes, threshold_pct, quorum_pct)
    proposal_id = propose(chain, chain.members[0], set_param_payload("reminder_grace_ms", 120_000))
    for index, (who, choice) in enumerate(votes):
        receipt = chain.receipt(
            chain.members[who], "governance.vote", vote_payload(proposal_id, choice)
        )
        assert receipt.code is (ResultCode.OK if accepted[index] else ResultCode.CONFLICT)
        is_open = proposal(chain, proposal_id).status is ProposalStatus.OPEN
        assert is_open == (decided_at is None or index < decided_at)
    chain.advance(VOTING_PERIOD_MS)
    assert proposal(chain, proposal_id).status is status
    expected_grace = 120_000 if status is ProposalStatus.PASSED else None
    stored = chain.get(param_key("reminder_grace_ms"))
    assert (None if stored is None else int.from_bytes(stored, "big")) == expected_grace


# -- genesis and queries ---------------------------------------------------------------------


def test_genesis_from_app_state() -> None:
    institution, validator = party("hospital-0").id, key_pair("validator-0").public_key
    module = GovernanceModule.from_app_state(
        {
            "members": [
                {
                    "institution": institution.hex(),
                    "validator_key": validator.hex(),
                    "power": 7,
                    "weight": 3,
                }
            ],
            "params": {"quorum_pct": 60, "threshold_pct": PARAM_DEFAULTS["threshold_pct"]},
        }
    )
    assert module.genesis_members == (GenesisMember(institution, validator, 7, 3),)
    identity = IdentityModule()
    app = Application(AppConfig(CHAIN), [identity, module], authenticator=identity)
    app.init_chain(GENESIS_TIME_MS)
    assert get_member(app, institution) == Member(validator, 7, 3, MemberStatus.ACTIVE, 0)
    assert param(app, "quorum_pct") == 60
    assert app.get(param_key("threshold_pct")) is None  # defaults are not written
    assert GovernanceModule.from_app_state(None).genesis_members == ()


_GOOD_MEMBER = {
    "institution": "11" * 32,
    "validator_key": "22" * 32,
    "power": 1,
    "weight": 1,
}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ([], "must be a JSON object"),
        ({"members": {}}, "members must be a list"),
        ({"voters": []}, "unknown field"),
        ({"members": [{**_GOOD_MEMBER, "weight": 0}]}, "weight"),
        ({"members": [{**_GOOD_MEMBER, "weight": 1001}]}, "weight"),
        ({"members": [{**_GOOD_MEMBER, "power": True}]}, "power must be an integer"),
        ({"members": [{**_GOOD_MEMBER, "institution": "zz"}]}, "institution must be a hex"),
        ({"members": [{**_GOOD_MEMBER, "validator_key": "22"}]}, "validator_key"),
        ({"members": [{"institution": "11" * 32}]}, "missing field"),
        ({"members": [_GOOD_MEMBER, _GOOD_MEMBER]}, "listed twice"),
        ({"params": {"quorum_pct": 0}}, "quorum_pct"),
        ({"params": {"colour": 1}}, "no parameter"),
        ({"params": []}, "params must be a JSON object"),
    ],
)
def test_bad_genesis_is_refused_with_a_clear_message(state: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GovernanceModule.from_app_state(state)  # type: ignore[arg-type]


def test_query_paths_and_rendering(chain: HealthChain) -> None:
    a = chain.members[0]
    module = chain.app.module("governance")
    proposal_id = propose(chain, a, suspend_payload(chain.members[1].id, "why"))
    vote(chain, a, proposal_id, Choice.ABSTAIN)
    assert module.query_key("n") == NEXT_ID_KEY
    assert module.query_key(f"m/{a.id.hex()}") == member_key(a.id)
    assert module.query_key(f"q/{proposal_id}") == proposal_key(proposal_id)
    assert module.query_key(f"v/{proposal_id}/{a.id.hex()}") == vote_key(proposal_id, a.id)
    assert module.query_key(f"o/{a.id.hex()}/{proposal_id}") == open_key(a.id, proposal_id)
    assert module.query_key("p/quorum_pct") == param_key("quorum_pct")
    assert module.query_key("m") == b"governance/m/"
    assert module.query_key(f"v/{proposal_id}") == vote_key(proposal_id, b"")
    for bad in ("x", "q/abc", "q/-1", f"q/{1 << 64}", "m/zz", "m/00", "p/colour", "n/1", "v"):
        with pytest.raises(ValueError):
            module.query_key(bad)

    def rendered(path: str) -> object:
        key = module.query_key(path)
        value = chain.get(key)
        assert value is not None
        return module.render(key, value)

    shown = rendered(f"q/{proposal_id}")
    assert isinstance(shown, dict)
    assert shown["kind"] == "suspend" and shown["status"] == "open"
    assert shown["body"] == {"institution": chain.members[1].id.hex()}
    assert shown["abstain_weight"] == 1 and shown["reason"] == "why"
    assert rendered(f"v/{proposal_id}/{a.id.hex()}") == {
        "proposal": proposal_id,
        "member": a.id.hex(),
        "choice": "abstain",
        "weight": 1,
    }
    assert rendered(f"m/{a.id.hex()}") == {
        "institution": a.id.hex(),
        "validator_key": chain.validators[0].public_key.hex(),
        "power": 10,
        "weight": 1,
        "status": "active",
        "admitted_height": 0,
    }
    assert rendered("n") == {"next_id": proposal_id + 1}
    assert set(BODY_CODECS) == set(ProposalKind)


def test_admission_bodies_render_their_identity_fields(chain: HealthChain) -> None:
    module = chain.app.module("governance")
    newcomer, payload = new_institution("clinic-render", label="Render Clinic")
    proposal_id = propose(chain, chain.members[0], payload)
    key = proposal_key(proposal_id)
    value = chain.get(key)
    assert value is not None
    shown = module.render(key, value)
    assert isinstance(shown, dict)
    body = shown["body"]
    assert isinstance(body, dict)
    assert body["validator_key"] == NEW_VALIDATOR.public_key.hex()
    shown_admission = body["admission"]
    assert isinstance(shown_admission, dict)
    assert shown_admission["role"] == "institution"
    assert shown_admission["label"] == "Render Clinic"
    assert shown_admission["signing_key"] == newcomer.id.hex()
    assert shown_admission["encryption_key"] == bytes(newcomer.encryption.public_key).hex()
