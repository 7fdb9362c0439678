"""Whole chains of NodeCores in virtual time (node.testing.cluster): agreement and progress."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus import ValidatorSet, VoteType
from consensus.sign_bytes import proposal_sign_bytes_of
from node.app.blocks import build_block
from node.chain import Action, Broadcast, ConsensusParams
from node.chain.messages import TOPIC_CONSENSUS
from node.codec import block_id, decode_message, encode_message
from node.testing.cluster import Cluster
from node.types import Block, CompactBlock, Proposal

FAST = ConsensusParams(
    timeout_propose_ms=300,
    timeout_propose_delta_ms=100,
    timeout_prevote_ms=150,
    timeout_prevote_delta_ms=100,
    timeout_precommit_ms=150,
    timeout_precommit_delta_ms=100,
)


def assert_one_chain(cluster: Cluster, height: int) -> None:
    """Every node committed the same blocks with the same state roots up to ``height``."""
    assert cluster.violations == []
    ids = {tuple(cluster.block_ids(name)[:height]) for name in cluster.names}
    roots = {tuple(cluster.app_roots(name)[:height]) for name in cluster.names}
    assert len(ids) == 1 and len(roots) == 1
    assert all(cluster.height(name) >= height for name in cluster.names)


def test_four_nodes_commit_100_blocks_of_transactions_with_identical_state() -> None:
    cluster = Cluster(validators=4, seed=1, txs_per_second=40)
    cluster.run_until(height=100)

    assert_one_chain(cluster, 100)
    assert len(set(cluster.app_roots("v0")[:100])) > 90  # the state really changes
    committed = cluster.committed_txs("v0")
    assert committed >= 0.9 * cluster.txs_accepted - 40 * 2  # all but the last ~2 s of txs
    core = cluster.core("v1")
    for height in (1, 50, 99):  # each header carries its parent's id and state root
        parent, child = core.committed_block(height), core.committed_block(height + 1)
        assert parent is not None and child is not None
        assert child.block.header.previous_block_id == block_id(parent.block.header)
        assert child.block.header.app_state_root == cluster.app_roots("v1")[height - 1]
        assert child.block.header.last_commit is not None
    for name in cluster.names:
        assert cluster.core(name).stats.blocks_synced == 0  # consensus alone got them there
        assert cluster.core(name).stats.misbehaviours == 0


def test_observers_follow_the_chain_and_never_sign() -> None:
    cluster = Cluster(validators=4, observers=2, seed=2, txs_per_second=20, record_votes=True)
    cluster.run_until(height=12)

    assert_one_chain(cluster, 12)
    validator_keys = {v.public_key for v in cluster.genesis.validators}
    assert {vote.validator for vote in cluster.votes} == validator_keys
    for observer in ("o0", "o1"):
        status = cluster.core(observer).status()
        assert not status.is_validator and status.height >= 12
        assert cluster.core(observer).app_state_root == cluster.core("v0").app_state_root or (
            cluster.height(observer) != cluster.height("v0")
        )


def test_a_late_validator_and_observer_catch_up_by_block_sync() -> None:
    cluster = Cluster(validators=4, observers=1, seed=3, txs_per_second=20)
    cluster.isolate("v3")
    cluster.isolate("o0")
    cluster.run_until(height=25, nodes=["v0", "v1", "v2"])
    assert cluster.height("v3") == 0 and cluster.height("o0") == 0

    cluster.heal()
    cluster.run_until(height=28)

    assert_one_chain(cluster, 28)
    for late in ("v3", "o0"):
        stats = cluster.core(late).stats
        assert stats.blocks_synced >= 24 and stats.sync_requests >= 1
        assert stats.misbehaviours == 0


def test_a_crashed_validator_restarts_from_storage_and_rejoins() -> None:
    cluster = Cluster(validators=4, seed=4, txs_per_second=20)
    cluster.run_until(height=5)
    cluster.crash("v2")
    cluster.run_until(height=12, nodes=["v0", "v1", "v3"])
    cluster.restart("v2")

    assert cluster.core("v2").height >= 5  # resumed from its own storage, not from scratch
    cluster.run_until(height=15)
    assert_one_chain(cluster, 15)


def _proposer_at(genesis_set: ValidatorSet, height: int) -> bytes:
    validator_set = genesis_set
    for _ in range(height - 1):
        validator_set = validator_set.for_next_height()
    return validator_set.proposer(0)


def _invalid_variant(block: Block, how: str) -> Block:
    header = block.header
    txs = block.txs
    time_ms = header.time_ms
    if how == "future_time":
        time_ms += 3_600_000  # far beyond max_future_drift_ms
    else:
        txs = (*txs, b"\x93not a transaction")
    return build_block(
        chain_id=header.chain_id,
        height=header.height,
        time_ms=time_ms,
        previous_block_id=header.previous_block_id,
        txs=txs,
        app_state_root=header.app_state_root,
        validator_set_hash=header.validator_set_hash,
        proposer=header.proposer,
        last_commit=header.last_commit,
    )


@pytest.mark.parametrize("how", ["future_time", "garbage_tx"])
def test_an_invalid_proposed_block_gets_nil_prevotes_and_the_round_moves_on(how: str) -> None:
    cluster = Cluster(validators=4, seed=5, params=FAST, txs_per_second=20, record_votes=True)
    byzantine = cluster.nodes["v0"]
    key = byzantine.signer
    assert key is not None
    held: dict[bytes, Block] = {}

    def corrupt(action: Action) -> list[Action]:
        """v0 proposes a block its peers must reject, correctly signed."""
        if not isinstance(action, Broadcast) or action.topic != TOPIC_CONSENSUS:
            return [action]
        message = decode_message(action.data)
        if isinstance(message, Block | CompactBlock):  # the variant drops the compact's txs
            held[block_id(message.header)] = Block(message.header, (), message.evidence)
            return []
        if not isinstance(message, Proposal) or message.value_id not in held:
            return [action]
        bad = _invalid_variant(held[message.value_id], how)
        unsigned = replace(message, value_id=block_id(bad.header))
        signed = unsigned.with_signature(key.sign(proposal_sign_bytes_of(unsigned)))
        return [
            Broadcast(TOPIC_CONSENSUS, encode_message(bad)),
            Broadcast(TOPIC_CONSENSUS, encode_message(signed)),
        ]

    cluster.outbound_hooks["v0"] = corrupt
    cluster.run_until(height=12)

    honest = ["v1", "v2", "v3"]
    assert cluster.violations == []
    genesis_set = cluster.genesis.validator_set()
    v0_heights = [h for h in range(1, 13) if _proposer_at(genesis_set, h) == key.public_key]
    assert v0_heights, "the byzantine node proposed at least once"
    for height in v0_heights:
        committed = cluster.core("v1").committed_block(height)
        assert committed is not None
        assert committed.commit.round >= 1  # round 0 failed
        assert committed.block.header.proposer != key.public_key
        round0 = [
            v
            for v in cluster.votes
            if v.height == height and v.round == 0 and v.vote_type is VoteType.PREVOTE
        ]
        honest_keys = {cluster.nodes[n].signer.public_key for n in honest}  # type: ignore[union-attr]
        assert {v.validator for v in round0 if v.value_id is None} == honest_keys
    assert len({tuple(cluster.block_ids(n)[:12]) for n in cluster.names}) == 1


@pytest.mark.parametrize("seed", range(3))
def test_random_latency_crashes_and_partitions_keep_safety_and_liveness(seed: int) -> None:
    run_faulty_cluster(seed, heights=15)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 23))
def test_many_seeds_of_faults(seed: int) -> None:
    run_faulty_cluster(seed, heights=30)


def run_faulty_cluster(seed: int, heights: int) -> None:
    """Jittery links (round changes happen), one crash and one partition at seeded times."""
    cluster = Cluster(
        validators=4, seed=seed, params=FAST, latency_ms=20, jitter_ms=250, txs_per_second=20
    )
    rng = cluster.rng.fork("faults")
    victim = f"v{rng.randint(0, 3)}"
    cluster.run_until(height=rng.randint(2, 5))
    cluster.crash(victim)
    cluster.run_for(rng.randint(100, 3_000))
    cluster.restart(victim)
    loner = f"v{rng.randint(0, 3)}"
    cluster.isolate(loner)
    cluster.run_for(rng.randint(100, 5_000))
    cluster.heal()
    cluster.run_until(height=heights)
    assert_one_chain(cluster, heights)
