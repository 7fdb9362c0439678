"""Chain rules of headers and bodies, block building, validator-set updates."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from node.app import (
    build_block,
    propose_time_ms,
    validate_body,
    validate_header,
)
from node.codec import MAX_TX_BYTES, MAX_TXS_PER_BLOCK, block_id
from node.errors import InvalidBlockError
from node.testing import make_validators
from node.types import ZERO_HASH, Block, BlockHeader, CommitCertificate, CommitSignature

CHAIN = "bh-test"
GENESIS_MS = 1_000_000
VALIDATORS = make_validators(4)


def make(
    height: int, time_ms: int, previous: BlockHeader | None, txs: tuple[bytes, ...] = ()
) -> Block:
    commit = None
    previous_id = ZERO_HASH
    if previous is not None:
        previous_id = block_id(previous)
        signatures = tuple(CommitSignature(v.public_key, bytes(64)) for v in VALIDATORS.validators)
        commit = CommitCertificate(CHAIN, previous.height, 0, previous_id, signatures)
    return build_block(
        chain_id=CHAIN,
        height=height,
        time_ms=time_ms,
        previous_block_id=previous_id,
        txs=txs,
        app_state_root=bytes(32),
        validator_set_hash=bytes(32),
        proposer=VALIDATORS.validators[0].public_key,
        last_commit=commit,
    )


def check(header: BlockHeader, previous: BlockHeader | None, now_ms: int = 10_000_000) -> None:
    validate_header(header, previous, chain_id=CHAIN, genesis_time_ms=GENESIS_MS, now_ms=now_ms)


FIRST = make(1, GENESIS_MS + 1, None).header
SECOND = make(2, GENESIS_MS + 2, FIRST).header


def test_a_well_formed_chain_passes() -> None:
    check(FIRST, None)
    check(SECOND, FIRST)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"height": 2}, "without a parent"),
        ({"previous_block_id": bytes([1]) * 32}, "previous_block_id must be zero"),
        ({"time_ms": GENESIS_MS}, "not after genesis"),
        ({"chain_id": "other"}, "chain"),
        (
            {"last_commit": CommitCertificate(CHAIN, 0, 0, ZERO_HASH, ())},
            "no last commit",
        ),
    ],
)
def test_first_block_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidBlockError, match=message):
        check(dataclasses.replace(FIRST, **changes), None)


def commit_for(header: BlockHeader, **changes: Any) -> CommitCertificate:
    assert header.last_commit is not None
    return dataclasses.replace(header.last_commit, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"height": 3}, "height 3 after 1"),
        ({"time_ms": FIRST.time_ms}, "not after"),
        ({"previous_block_id": bytes(32)}, "parent's id"),
        ({"last_commit": None}, "lacks the parent's commit"),
        ({"last_commit": commit_for(SECOND, height=5)}, "does not certify"),
        ({"last_commit": commit_for(SECOND, value_id=bytes(32))}, "does not certify"),
        ({"last_commit": commit_for(SECOND, signatures=())}, "no or duplicate signers"),
        (
            {
                "last_commit": commit_for(
                    SECOND, signatures=(CommitSignature(bytes(32), bytes(64)),) * 2
                )
            },
            "duplicate",
        ),
    ],
)
def test_successor_rules(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidBlockError, match=message):
        check(dataclasses.replace(SECOND, **changes), FIRST)


def test_time_may_not_run_ahead_of_the_validators_clock() -> None:
    header = make(1, GENESIS_MS + 20_000, None).header
    check(header, None, now_ms=GENESIS_MS + 10_000)  # exactly at the drift limit
    with pytest.raises(InvalidBlockError, match="ahead"):
        check(header, None, now_ms=GENESIS_MS + 9_999)


def test_propose_time_follows_the_clock_but_stays_after_the_parent() -> None:
    assert propose_time_ms(now_ms=5_000, previous_time_ms=1_000) == 5_000
    assert propose_time_ms(now_ms=900, previous_time_ms=1_000) == 1_001  # a lagging clock


def test_body_limits_and_tx_root() -> None:
    block = make(1, GENESIS_MS + 1, None, (b"a", b"b"))
    validate_body(block)
    with pytest.raises(InvalidBlockError, match="tx_root"):
        validate_body(dataclasses.replace(block, txs=(b"b", b"a")))
    with pytest.raises(InvalidBlockError, match="bytes"):
        make(1, GENESIS_MS + 1, None, (bytes(MAX_TX_BYTES + 1),))
    with pytest.raises(InvalidBlockError, match="txs"):
        make(1, GENESIS_MS + 1, None, (b"",) * (MAX_TXS_PER_BLOCK + 1))
    with pytest.raises(InvalidBlockError, match="bytes"):  # 70 txs of 60 KiB > 4 MiB
        make(1, GENESIS_MS + 1, None, (bytes(60 * 1024),) * 70)
