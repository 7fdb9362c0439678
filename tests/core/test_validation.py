"""Block validation rules (node.chain.validation), one broken rule at a time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from node.app.blocks import build_block
from node.chain import NodeConfig
from node.chain.validation import ChainTip, validate_block
from node.codec import tx_hash
from node.errors import InvalidBlockError
from node.types import Block, CommitSignature, VoteType
from tests.core.helpers import (
    CHAIN,
    GENESIS,
    GENESIS_MS,
    VALIDATORS,
    Solo,
    certificate,
    first_block,
    id_of,
    key_of,
    kv_tx,
    make_genesis,
    set_at,
    signed_proposal,
    signed_vote,
    votes_in,
)

ROOT = b"\x05" * 32
BLOCK_1 = first_block(bytes(32))
TIP = ChainTip(
    chain_id=CHAIN,
    genesis_time_ms=GENESIS_MS,
    params=GENESIS.params,
    height=1,
    last_header=BLOCK_1.header,
    app_state_root=ROOT,
    validator_set=set_at(2),
    previous_set=set_at(1),
)
NOW_MS = BLOCK_1.header.time_ms + 1_000


def block_2(**changes: Any) -> Block:
    fields: dict[str, Any] = {
        "chain_id": CHAIN,
        "height": 2,
        "time_ms": BLOCK_1.header.time_ms + 500,
        "previous_block_id": id_of(BLOCK_1),
        "txs": (kv_tx(0, 0),),
        "app_state_root": ROOT,
        "validator_set_hash": set_at(2).hash(),
        "proposer": set_at(2).proposer(0),
        "last_commit": certificate(1, 0, id_of(BLOCK_1)),
    }
    fields.update(changes)
    return build_block(**fields)


def test_a_valid_block_returns_its_transaction_hashes() -> None:
    hashes = validate_block(block_2(), TIP, now_ms=NOW_MS, verified_txs=frozenset())
    assert hashes == frozenset({tx_hash(kv_tx(0, 0))})


def _forged_commit() -> object:
    commit = certificate(1, 0, id_of(BLOCK_1))
    first = commit.signatures[0]
    return replace(
        commit, signatures=(CommitSignature(first.validator, bytes(64)), *commit.signatures[1:])
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"last_commit": None}, "lacks the parent's commit"),
        ({"last_commit": certificate(1, 0, id_of(BLOCK_1), signers=2)}, "last_commit"),
        ({"last_commit": _forged_commit()}, "last_commit"),
        ({"last_commit": certificate(1, 0, bytes(32))}, "certify the parent"),
        ({"height": 3}, "height"),
        ({"time_ms": BLOCK_1.header.time_ms}, "not after"),
        ({"time_ms": NOW_MS + GENESIS.params.max_future_drift_ms + 1}, "ahead"),
        ({"validator_set_hash": bytes(32)}, "validator_set_hash"),
        ({"chain_id": "other-chain"}, "chain"),
    ],
)
def test_each_broken_rule_is_named(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidBlockError, match=reason):
        validate_block(block_2(**changes), TIP, now_ms=NOW_MS, verified_txs=frozenset())


def test_the_chain_limits_on_transactions_and_bytes_apply() -> None:
    txs = tuple(kv_tx(c, n) for c in range(4) for n in range(2))
    few = replace(TIP, params=make_genesis(max_block_txs=7).params)
    with pytest.raises(InvalidBlockError, match="8 txs > 7"):
        validate_block(block_2(txs=txs), few, now_ms=NOW_MS, verified_txs=frozenset())
    validate_block(block_2(txs=txs[:7]), few, now_ms=NOW_MS, verified_txs=frozenset())


def test_a_decided_block_is_not_held_to_this_nodes_clock() -> None:
    future = block_2(time_ms=NOW_MS + 3_600_000)
    with pytest.raises(InvalidBlockError, match="ahead"):
        validate_block(future, TIP, now_ms=NOW_MS, verified_txs=frozenset())
    validate_block(future, TIP, now_ms=None, verified_txs=frozenset())


def test_transactions_already_verified_are_not_verified_again() -> None:
    forged = kv_tx(0, 0)[:-1] + b"\x09"
    with pytest.raises(InvalidBlockError, match="bad signature"):
        validate_block(block_2(txs=(forged,)), TIP, now_ms=NOW_MS, verified_txs=frozenset())
    trusted = frozenset({tx_hash(forged)})  # the mempool vouches for it (its own check)
    validate_block(block_2(txs=(forged,)), TIP, now_ms=NOW_MS, verified_txs=trusted)


def test_a_node_whose_log_cannot_grow_withholds_its_votes_but_follows() -> None:
    others = [k for k in VALIDATORS.keys if k.public_key != set_at(1).proposer(0)]
    solo = Solo(
        validator_index=VALIDATORS.keys.index(others[0]),
        config=NodeConfig(max_wal_bytes_per_height=1),
    )
    block = first_block(solo.core.app_state_root)
    actions = solo.send("p", block) + solo.send(
        "p", signed_proposal(key_of(set_at(1).proposer(0)), 1, 0, id_of(block))
    )
    assert votes_in(actions) == [] and solo.core.stats.signatures_withheld == 1
    for key in [k for k in VALIDATORS.keys if k != solo.key][:3]:
        solo.send("p", signed_vote(key, 1, 0, VoteType.PRECOMMIT, id_of(block)))
    assert solo.core.height == 1
