"""Crash safety: durable before signing, replay after a restart, no double signing ever."""

from __future__ import annotations

import pytest

from node.chain import Action, Broadcast, Start, StorageMismatchError
from node.chain.messages import TOPIC_CONSENSUS
from node.codec import decode_message
from node.core import NodeCore
from node.ports import Delete
from node.testing.cluster import Cluster
from node.types import Proposal, VoteType
from tests.core.helpers import (
    CHAIN,
    GENESIS,
    VALIDATORS,
    Solo,
    first_block,
    id_of,
    key_of,
    make_genesis,
    set_at,
    signed_proposal,
    votes_in,
)

CRASH_HEIGHT = 3
FINAL_HEIGHT = 6


def events_of_v0_during(height: int, seed: int) -> int:
    """How many events v0 handles from committing ``height - 1`` to committing ``height``."""
    cluster = Cluster(validators=4, seed=seed, txs_per_second=20)
    cluster.run_until(height=height - 1, nodes=["v0"])
    handled = 0
    while cluster.height("v0") < height:
        if cluster.step() == "v0":
            handled += 1
    return handled


@pytest.mark.parametrize("before_actions", [True, False], ids=["actions_lost", "actions_done"])
def test_a_validator_crashed_at_every_step_of_a_height_never_double_signs(
    before_actions: bool,
) -> None:
    steps = events_of_v0_during(CRASH_HEIGHT, seed=11)
    assert steps >= 8  # proposal, block, votes, timers, txs: a real height
    for crash_at in range(steps + 1):
        cluster = Cluster(validators=4, seed=11, txs_per_second=20)
        cluster.run_until(height=CRASH_HEIGHT - 1, nodes=["v0"])
        handled = 0
        while handled < crash_at:
            if cluster.step() == "v0":
                handled += 1
        cluster.arm_crash("v0", before_actions=before_actions)
        while cluster.nodes["v0"].alive:
            cluster.step()
        cluster.run_for(700)
        cluster.restart("v0")
        cluster.run_until(height=FINAL_HEIGHT)

        assert cluster.violations == [], f"crash at step {crash_at}"
        chains = {tuple(cluster.block_ids(n)[:FINAL_HEIGHT]) for n in cluster.names}
        roots = {tuple(cluster.app_roots(n)[:FINAL_HEIGHT]) for n in cluster.names}
        assert len(chains) == 1 and len(roots) == 1, f"crash at step {crash_at}"


def _proposer_node(cluster: Cluster, height: int) -> str:
    """The node proposing in round 0 of ``height`` (the cluster's genesis set is the tests')."""
    proposer = set_at(height).proposer(0)
    return next(
        name
        for name, node in cluster.nodes.items()
        if node.signer is not None and node.signer.public_key == proposer
    )


def _crash_right_after_proposing(cluster: Cluster, name: str) -> None:
    proposed: list[bool] = []

    def watch(action: Action) -> list[Action]:
        if isinstance(action, Broadcast) and action.topic == TOPIC_CONSENSUS:
            proposed.append(isinstance(decode_message(action.data), Proposal))
        return [action]

    cluster.outbound_hooks[name] = watch
    while not any(proposed):
        cluster.step()
    cluster.crash(name)
    del cluster.outbound_hooks[name]


@pytest.mark.parametrize("wipe_log", [False, True], ids=["log_kept", "log_wiped"])
def test_the_consensus_log_is_what_prevents_a_conflicting_proposal(wipe_log: bool) -> None:
    cluster = Cluster(validators=4, seed=12, txs_per_second=20)
    cluster.run_until(height=CRASH_HEIGHT - 1)
    proposer = _proposer_node(cluster, CRASH_HEIGHT)
    _crash_right_after_proposing(cluster, proposer)
    if wipe_log:  # what a node without a durable log would be: it forgets what it signed
        storage = cluster.nodes[proposer].storage
        doomed = [k for k, _ in storage.iterate_prefix(b"wal/")] + [b"sign/last"]
        storage.write_batch([Delete(k) for k in doomed], sync=True)
    cluster.run_for(500)  # the clock moves on: a rebuilt block would carry another time
    cluster.restart(proposer)
    cluster.run_until(height=CRASH_HEIGHT + 1)

    double_signed = [v for v in cluster.violations if "double-signed" in v]
    assert bool(double_signed) == wipe_log


def test_a_vote_is_durable_before_it_is_broadcast() -> None:
    proposer_key = key_of(set_at(1).proposer(0))
    voter = next(i for i, k in enumerate(VALIDATORS.keys) if k != proposer_key)
    solo = Solo(validator_index=voter)
    block = first_block(solo.core.app_state_root)
    solo.send("p", block)
    actions = solo.send("p", signed_proposal(proposer_key, 1, 0, id_of(block)))
    prevote = [v for v in votes_in(actions) if v.vote_type is VoteType.PREVOTE]
    assert len(prevote) == 1 and prevote[0].value_id == id_of(block)

    solo.storage.crash()  # power cut right after the broadcast
    reopened = NodeCore.open(solo.storage, solo.key, GENESIS)
    resent = votes_in(reopened.handle(Start(solo.now_ms)))
    assert prevote[0] in resent  # the same signed vote, from the durable log


def test_a_restarted_node_resumes_its_chain_exactly() -> None:
    cluster = Cluster(validators=4, seed=13, txs_per_second=30)
    cluster.run_until(height=8)
    before = cluster.core("v1")
    status = before.status()
    proof = before.query_state(b"accounts/a/" + cluster.client_keys[0].public_key)
    cluster.crash("v1")
    cluster.restart("v1")
    after = cluster.core("v1")

    assert after.height == status.height and after.last_block_id == status.last_block_id
    assert after.app_state_root == status.app_state_root
    assert after.query_state(proof.key) == proof
    assert after.mempool_size == 0  # pending transactions are the clients' to resubmit
    cluster.run_until(height=11)
    assert cluster.violations == []


def test_the_storage_of_another_chain_is_refused() -> None:
    solo = Solo()
    other = make_genesis(max_block_txs=100)
    assert other.chain_id == CHAIN and other.hash() != GENESIS.hash()
    with pytest.raises(StorageMismatchError, match="another genesis"):
        NodeCore.open(solo.storage, solo.key, other)


def test_a_store_of_another_layout_version_is_refused() -> None:
    solo = Solo()
    solo.storage.put(b"meta/layout", (0).to_bytes(8, "big"))
    with pytest.raises(StorageMismatchError, match="layout version 0"):
        NodeCore.open(solo.storage, solo.key, GENESIS)
    solo.storage.delete(b"meta/layout")
    with pytest.raises(StorageMismatchError, match="layout version none"):
        NodeCore.open(solo.storage, solo.key, GENESIS)


def test_a_store_missing_its_last_block_is_refused() -> None:
    cluster = Cluster(validators=4, seed=14)
    cluster.run_until(height=3)
    storage = cluster.nodes["v0"].storage
    cluster.crash("v0")
    last = max(k for k, _ in storage.iterate_prefix(b"block/"))
    storage.write_batch([Delete(last)], sync=True)
    with pytest.raises(StorageMismatchError, match="missing"):
        NodeCore.open(storage, cluster.nodes["v0"].signer, cluster.genesis)
