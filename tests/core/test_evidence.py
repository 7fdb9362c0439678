"""Duplicate-vote evidence in blocks: proposed, judged, committed, recorded, kept across
restarts (node.chain.evidence, node.app.evidence)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from consensus import DuplicateVoteEvidence, EvidenceStore, ValidatorSet
from node.app import EQUIVOCATED_EVENT
from node.app.blocks import build_block
from node.chain import Action, BlockCommitted, ConsensusParams, TimerKey, TimerKind
from node.chain.evidence import (
    PendingEvidenceLog,
    evidence_problem,
    is_expired,
    pick_evidence,
)
from node.chain.validation import ChainTip, validate_block
from node.codec import EVIDENCE_CODEC
from node.core import NodeCore
from node.errors import InvalidBlockError
from node.testing import MemoryStorage
from node.testing.cluster import Cluster
from node.types import Block, EventAttribute, VoteType
from tests.core.helpers import (
    CHAIN,
    GENESIS,
    GENESIS_MS,
    VALIDATORS,
    Solo,
    broadcast_messages,
    certificate,
    first_block,
    id_of,
    key_of,
    kv_tx,
    set_at,
    signed_proposal,
    signed_vote,
    votes_in,
)

KEYS = list(VALIDATORS.keys)
CHEAT = KEYS[3]
FAST = ConsensusParams(
    timeout_propose_ms=300,
    timeout_propose_delta_ms=100,
    timeout_prevote_ms=200,
    timeout_prevote_delta_ms=100,
    timeout_precommit_ms=200,
    timeout_precommit_delta_ms=100,
)


def equivocation(
    height: int, round_: int = 0, vote_type: VoteType = VoteType.PREVOTE, key_index: int = 3
) -> DuplicateVoteEvidence:
    """Real evidence: validator ``key_index`` voted nil and for a value at one step."""
    key = KEYS[key_index]
    nil = signed_vote(key, height, round_, vote_type, None)
    value = signed_vote(key, height, round_, vote_type, bytes([height % 256]) * 32)
    return DuplicateVoteEvidence.from_votes(nil, value)


# -- the whole chain -----------------------------------------------------------------------------


def test_an_equivocating_validator_ends_up_with_committed_evidence_on_every_node() -> None:
    cluster = Cluster(validators=4, seed=5, params=FAST, txs_per_second=20)
    cluster.equivocate("v3")
    cheat = cluster.nodes["v3"].signer
    assert cheat is not None
    cluster.run_until(height=8)
    assert cluster.violations == []  # agreement, app state roots, honest nodes never double-sign

    reported = [a.evidence for a in cluster.equivocations]
    assert reported and all(e.validator == cheat.public_key for e in reported)
    for name in ("v0", "v1", "v2"):
        core = cluster.core(name)
        records = [r for r in map(core.committed_evidence, reported) if r is not None]
        assert records and all(r.committed_height > r.evidence.vote_a.height for r in records)
        assert core.stats.evidence_committed >= 1
        assert all(core.committed_evidence(e) is None for e in core.pending_evidence())
    first = cluster.core("v0").committed_evidence(reported[0])
    assert first is not None
    assert {cluster.core(n).committed_evidence(reported[0]) for n in ("v1", "v2")} == {first}


def test_committed_evidence_raises_the_same_event_on_every_node() -> None:
    cluster = Cluster(validators=4, seed=6, params=FAST)
    events: dict[str, list[tuple[int, tuple[EventAttribute, ...]]]] = {n: [] for n in cluster.names}

    def recorder(name: str) -> Callable[[Action], list[Action]]:
        def record(action: Action) -> list[Action]:
            if isinstance(action, BlockCommitted):
                found = [e for e in action.events if e.name == EQUIVOCATED_EVENT]
                events[name] += [(action.height, e.attributes) for e in found]
            return [action]

        return record

    for name in ("v1", "v2", "v3"):
        cluster.outbound_hooks[name] = recorder(name)
    cluster.equivocate("v0")
    cluster.run_until(height=6)
    assert events["v1"] and events["v1"] == events["v2"] == events["v3"]
    committed_at, attributes = events["v1"][0]
    fields = {a.key: a.value for a in attributes}
    cheat = cluster.nodes["v0"].signer
    assert cheat is not None and fields["validator"] == cheat.public_key.hex()
    assert int(fields["height"]) < committed_at == int(fields["committed_height"])
    assert fields["vote_type"] in {"prevote", "precommit"}


def test_expired_evidence_is_dropped_and_the_chain_goes_on() -> None:
    params = replace(FAST, evidence_max_age_heights=1)
    cluster = Cluster(validators=4, seed=7, params=params)
    cluster.equivocate("v3")
    cluster.run_until(height=7)
    assert cluster.violations == []
    for name in ("v0", "v1", "v2"):
        core = cluster.core(name)
        assert not any(is_expired(e, core.height + 1, 1) for e in core.pending_evidence())


def test_pending_evidence_survives_a_crash() -> None:
    cluster = Cluster(validators=4, seed=8, params=FAST)
    cluster.equivocate("v3")
    cluster.run_until(height=4, nodes=["v1"])
    core = cluster.core("v1")
    kept = {e.key for e in core.pending_evidence() if e.vote_a.height <= core.height}
    assert kept  # detected at the committed height, not in a block yet
    cluster.crash("v1")
    cluster.restart("v1")
    assert kept <= {e.key for e in cluster.core("v1").pending_evidence()}
    cluster.run_until(height=7)
    assert cluster.violations == []


# -- one node: proposing and judging -------------------------------------------------------------


def test_the_proposer_puts_pending_evidence_into_its_next_block() -> None:
    solo = Solo(validator_index=1)  # proposes round 0 of height 2
    nil = signed_vote(CHEAT, 1, 0, VoteType.PREVOTE, None)
    solo.send("p", nil)
    solo.send("p", signed_vote(CHEAT, 1, 0, VoteType.PREVOTE, b"\x02" * 32))
    assert len(solo.core.pending_evidence()) == 1
    block = first_block(solo.core.app_state_root, txs=(kv_tx(0, 0),))
    solo.send("p", block)
    solo.send("p", signed_proposal(key_of(set_at(1).proposer(0)), 1, 0, id_of(block)))
    for key in (KEYS[0], KEYS[2], KEYS[3]):
        solo.send("p", signed_vote(key, 1, 0, VoteType.PRECOMMIT, id_of(block)))
    assert solo.core.height == 1
    solo.now_ms += solo.config.commit_wait_ms
    started = solo.fire(TimerKey(TimerKind.COMMIT_WAIT, 2))
    proposed = [m for m in broadcast_messages(started) if isinstance(m, Block)]
    assert len(proposed) == 1 and proposed[0].evidence == solo.core.pending_evidence()
    assert proposed[0].evidence[0].validator == CHEAT.public_key


def _block_2_with(solo: Solo, evidence: tuple[DuplicateVoteEvidence, ...]) -> Block:
    committed = solo.core.committed_block(1)
    assert committed is not None
    return build_block(
        chain_id=CHAIN,
        height=2,
        time_ms=committed.block.header.time_ms + 1_000,
        previous_block_id=id_of(committed.block),
        txs=(),
        app_state_root=solo.core.app_state_root,
        validator_set_hash=set_at(2).hash(),
        proposer=set_at(2).proposer(0),
        last_commit=certificate(1, 0, id_of(committed.block)),
        evidence=evidence,
    )


@pytest.mark.parametrize("forged", [False, True], ids=["genuine", "forged"])
def test_a_block_is_voted_for_only_if_its_evidence_holds(forged: bool) -> None:
    solo = Solo(validator_index=0)  # proposes neither height 1 nor round 0 of height 2
    block = first_block(solo.core.app_state_root)
    solo.send("p", block)
    solo.send("p", signed_proposal(key_of(set_at(1).proposer(0)), 1, 0, id_of(block)))
    for key in KEYS[1:]:
        solo.send("p", signed_vote(key, 1, 0, VoteType.PRECOMMIT, id_of(block)))
    solo.now_ms += solo.config.commit_wait_ms
    solo.fire(TimerKey(TimerKind.COMMIT_WAIT, 2))
    evidence = equivocation(1)
    if forged:
        evidence = replace(evidence, vote_b=replace(evidence.vote_b, signature=bytes(64)))
    block_2 = _block_2_with(solo, (evidence,))
    proposal = signed_proposal(key_of(set_at(2).proposer(0)), 2, 0, id_of(block_2))
    actions = solo.send("p", block_2) + solo.send("p", proposal)
    expected = None if forged else id_of(block_2)
    assert [(v.height, v.value_id) for v in votes_in(actions)] == [(2, expected)]


# -- the rule, one broken part at a time ---------------------------------------------------------


@dataclass
class FakeLookup:
    """Past sets and committed evidence as a test wants them."""

    members: dict[int, ValidatorSet] = field(default_factory=dict)
    committed: set[object] = field(default_factory=set)

    def members_at(self, height: int) -> ValidatorSet | None:
        return self.members.get(height)

    def is_committed(self, evidence: DuplicateVoteEvidence) -> bool:
        return evidence.key in self.committed


BLOCK_1 = first_block(b"\x05" * 32)
HONEST_ONLY = ValidatorSet(v for v in VALIDATORS.validators if v.public_key != CHEAT.public_key)
ALL_SETS = {h: ValidatorSet(VALIDATORS.validators) for h in range(1, 40)}


def tip_at(height: int, lookup: FakeLookup | None, **params: int) -> ChainTip:
    """A tip after ``height`` committed heights; only what evidence checks need is real."""
    return ChainTip(
        chain_id=CHAIN,
        genesis_time_ms=GENESIS_MS,
        params=replace(GENESIS.params, **params),
        height=height,
        last_header=replace(BLOCK_1.header, height=height),
        app_state_root=b"\x05" * 32,
        validator_set=set_at(2),
        previous_set=set_at(1),
        evidence=lookup,
    )


def problem(evidence: DuplicateVoteEvidence, block_height: int, lookup: FakeLookup) -> str | None:
    return evidence_problem(
        evidence, chain_id=CHAIN, block_height=block_height, max_age_heights=10, lookup=lookup
    )


def test_admissible_evidence_has_no_problem() -> None:
    assert problem(equivocation(5), 6, FakeLookup(ALL_SETS)) is None
    assert problem(equivocation(5), 15, FakeLookup(ALL_SETS)) is None  # exactly the max age


@pytest.mark.parametrize(
    ("evidence", "block_height", "lookup", "reason"),
    [
        (equivocation(5), 16, FakeLookup(ALL_SETS), "expired"),
        (equivocation(5), 5, FakeLookup(ALL_SETS), "not below"),
        (equivocation(5), 6, FakeLookup({}), "no longer kept"),
        (equivocation(5), 6, FakeLookup(ALL_SETS, {equivocation(5).key}), "committed before"),
        (
            replace(equivocation(5), vote_b=replace(equivocation(5).vote_b, signature=bytes(64))),
            6,
            FakeLookup(ALL_SETS),
            "signature",
        ),
        (
            equivocation(5),
            6,
            FakeLookup({5: HONEST_ONLY}),
            "not a validator",
        ),
    ],
    ids=["expired", "future", "unknown_set", "committed", "forged", "not_a_member"],
)
def test_inadmissible_evidence_says_why(
    evidence: DuplicateVoteEvidence, block_height: int, lookup: FakeLookup, reason: str
) -> None:
    found = problem(evidence, block_height, lookup)
    assert found is not None and reason in found


def test_evidence_of_another_chain_is_inadmissible() -> None:
    key = KEYS[3]
    nil = signed_vote(key, 5, 0, VoteType.PREVOTE, None, chain_id="other-chain")
    value = signed_vote(key, 5, 0, VoteType.PREVOTE, b"\x01" * 32, chain_id="other-chain")
    found = problem(DuplicateVoteEvidence.from_votes(nil, value), 6, FakeLookup(ALL_SETS))
    assert found is not None and "chain" in found


def block_at(height: int, evidence: tuple[DuplicateVoteEvidence, ...]) -> Block:
    tip = tip_at(height - 1, None)
    assert tip.last_header is not None
    return build_block(
        chain_id=CHAIN,
        height=height,
        time_ms=BLOCK_1.header.time_ms + 500,
        previous_block_id=id_of(Block(tip.last_header, ())),
        txs=(),
        app_state_root=b"\x05" * 32,
        validator_set_hash=set_at(2).hash(),
        proposer=set_at(2).proposer(0),
        last_commit=certificate(height - 1, 0, id_of(Block(tip.last_header, ()))),
        evidence=evidence,
    )


def judge(block: Block, lookup: FakeLookup | None, **params: int) -> None:
    tip = tip_at(block.header.height - 1, lookup, **params)
    validate_block(block, tip, now_ms=block.header.time_ms, verified_txs=frozenset())


def test_a_block_with_admissible_evidence_is_valid() -> None:
    judge(
        block_at(9, (equivocation(3), equivocation(4, vote_type=VoteType.PRECOMMIT))),
        FakeLookup(ALL_SETS),
    )


@pytest.mark.parametrize(
    ("evidence", "lookup", "params", "reason"),
    [
        ((equivocation(3), equivocation(3)), FakeLookup(ALL_SETS), {}, "repeats a step"),
        ((equivocation(3),), None, {}, "no history"),
        ((equivocation(3),), FakeLookup(ALL_SETS), {"evidence_max_age_heights": 2}, "expired"),
        (
            (equivocation(3), equivocation(4)),
            FakeLookup(ALL_SETS),
            {"max_evidence_per_block": 1},
            "2 evidence > 1",
        ),
        (
            tuple(equivocation(h) for h in range(1, 9)),
            FakeLookup(ALL_SETS),
            {"max_evidence_bytes": 2_100},
            "evidence bytes",
        ),
    ],
    ids=["duplicate_step", "no_history", "expired", "too_many", "too_many_bytes"],
)
def test_a_block_with_bad_evidence_is_invalid(
    evidence: tuple[DuplicateVoteEvidence, ...],
    lookup: FakeLookup | None,
    params: dict[str, int],
    reason: str,
) -> None:
    with pytest.raises(InvalidBlockError, match=reason):
        judge(block_at(9, evidence), lookup, **params)


def test_evidence_not_committed_to_by_the_header_breaks_the_block() -> None:
    block = block_at(9, (equivocation(3),))
    with pytest.raises(InvalidBlockError, match="evidence_root"):
        judge(replace(block, evidence=(equivocation(4),)), FakeLookup(ALL_SETS))


# -- picking and persisting ----------------------------------------------------------------------


def test_the_proposer_picks_the_oldest_admissible_evidence_within_its_limits() -> None:
    pending = [equivocation(h) for h in (7, 3, 5, 4)]
    size = len(EVIDENCE_CODEC.encode(pending[0]))
    chosen, used = pick_evidence(
        pending, max_count=3, max_bytes=10 * size, admissible=lambda e: e.vote_a.height != 4
    )
    assert [e.vote_a.height for e in chosen] == [3, 5, 7] and used == 3 * size
    chosen, used = pick_evidence(pending, max_count=9, max_bytes=2 * size, admissible=bool)
    assert [e.vote_a.height for e in chosen] == [3, 4] and used == 2 * size
    assert pick_evidence(pending, max_count=9, max_bytes=size - 1, admissible=bool) == ([], 0)


def test_the_pending_log_mirrors_the_pool_and_reloads_it() -> None:
    storage = MemoryStorage()
    log = PendingEvidenceLog()
    first, second = equivocation(3), equivocation(4, key_index=2)
    storage.write_batch(log.sync_ops([first, second]), sync=True)
    assert log.sync_ops([first, second]) == []  # nothing changed, nothing written
    storage.write_batch(log.sync_ops([second]), sync=True)
    pool = EvidenceStore()
    _, loaded = PendingEvidenceLog.load(storage, pool)
    assert loaded == [second] and pool.pending() == (second,)


def test_a_node_opens_with_the_pending_evidence_of_its_store() -> None:
    storage = MemoryStorage()
    NodeCore.open(storage, KEYS[0], GENESIS)
    storage.write_batch(PendingEvidenceLog().sync_ops([equivocation(1)]), sync=True)
    reopened = NodeCore.open(storage, KEYS[0], GENESIS)
    assert reopened.pending_evidence() == (equivocation(1),)
    assert reopened.status().pending_evidence == 1
