"""Garbage, oversized, forged and wrong-chain input: reported as PeerMisbehaved, no effect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain import Action, BlocksReceived, Offence, PeerMisbehaved
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS, TOPICS
from node.codec import (
    COMMITTED_BLOCK_CODEC,
    ENVELOPE_OVERHEAD_BYTES,
    MAX_TX_BATCH_BYTES,
    STATUS_CODEC,
    encode_message,
)
from node.testing import TxFactory, key_pair
from node.types import CommittedBlock, Status, TxBatch, VoteType
from tests.core.helpers import (
    GENESIS,
    Solo,
    certificate,
    first_block,
    id_of,
    key_of,
    kv_tx,
    set_at,
    signed_proposal,
    signed_vote,
)

STRANGER = key_pair("not-a-validator")


def snapshot(solo: Solo) -> tuple[object, ...]:
    """Everything a message could change: status (heights, round, step, buffers, peers,
    mempool) and every stored byte."""
    return (solo.core.status(), list(solo.storage.iterate_prefix(b"")))


def expect_rejected(
    solo: Solo, deliver: Callable[[], list[Action]], offence: Offence
) -> PeerMisbehaved:
    before = snapshot(solo)
    actions = deliver()
    assert [type(a) for a in actions] == [PeerMisbehaved]
    report = actions[0]
    assert isinstance(report, PeerMisbehaved) and report.peer == "mallory"
    assert report.offence is offence, report.reason
    assert snapshot(solo) == before
    return report


@pytest.fixture
def solo() -> Solo:
    return Solo(validator_index=1)


def a_vote(**changes: Any) -> bytes:
    key = key_of(set_at(1).proposer(0))
    vote = signed_vote(key, 1, 0, VoteType.PREVOTE, None)
    return encode_message(replace(vote, **changes))


CASES: dict[str, tuple[str, Callable[[], bytes], Offence]] = {
    "garbage": (TOPIC_CONSENSUS, lambda: b"\xc1\xff\x00garbage", Offence.MALFORMED),
    "empty": (TOPIC_TXS, lambda: b"", Offence.MALFORMED),
    "unknown topic": ("gossip/other", a_vote, Offence.MALFORMED),
    "vote on the tx topic": (TOPIC_TXS, a_vote, Offence.MALFORMED),
    "status on the consensus topic": (
        TOPIC_CONSENSUS,
        lambda: encode_message(Status(1, bytes(32))),
        Offence.MALFORMED,
    ),
    "non-canonical encoding": (
        TOPIC_CONSENSUS,
        lambda: a_vote() + b"\x00",
        Offence.MALFORMED,
    ),
    "a map instead of an array": (
        TOPIC_CONSENSUS,
        lambda: msgpack.packb({"kind": 3}),
        Offence.MALFORMED,
    ),
    "oversized consensus message": (
        TOPIC_CONSENSUS,
        lambda: bytes(GENESIS.params.max_block_bytes + ENVELOPE_OVERHEAD_BYTES + 1),
        Offence.OVERSIZE,
    ),
    "oversized tx batch": (
        TOPIC_TXS,
        lambda: bytes(MAX_TX_BATCH_BYTES + ENVELOPE_OVERHEAD_BYTES + 1),
        Offence.OVERSIZE,
    ),
    "oversized status": (
        TOPIC_STATUS,
        lambda: bytes(STATUS_CODEC.max_bytes + ENVELOPE_OVERHEAD_BYTES + 1),
        Offence.OVERSIZE,
    ),
    "vote of another chain": (
        TOPIC_CONSENSUS,
        lambda: encode_message(
            signed_vote(key_of(set_at(1).proposer(0)), 1, 0, VoteType.PREVOTE, None, "other")
        ),
        Offence.WRONG_CHAIN,
    ),
    "vote of a non-validator": (
        TOPIC_CONSENSUS,
        lambda: encode_message(signed_vote(STRANGER, 1, 0, VoteType.PREVOTE, None)),
        Offence.NOT_A_VALIDATOR,
    ),
    "forged vote signature": (
        TOPIC_CONSENSUS,
        lambda: a_vote(signature=bytes(64)),
        Offence.INVALID_SIGNATURE,
    ),
    "vote signed for another round": (
        TOPIC_CONSENSUS,
        lambda: a_vote(round=1),
        Offence.INVALID_SIGNATURE,
    ),
    "proposal by a validator that is not the proposer": (
        TOPIC_CONSENSUS,
        lambda: encode_message(
            signed_proposal(
                next(
                    key_of(v.public_key) for v in set_at(1) if v.public_key != set_at(1).proposer(0)
                ),
                1,
                0,
                bytes(32),
            )
        ),
        Offence.NOT_PROPOSER,
    ),
    "tx with a bad signature": (
        TOPIC_TXS,
        lambda: encode_message(TxBatch((kv_tx(0, 0)[:-1] + b"\x00",))),
        Offence.INVALID_SIGNATURE,
    ),
    "tx of another chain": (
        TOPIC_TXS,
        lambda: encode_message(
            TxBatch((TxFactory("other-chain").encoded(STRANGER, "kv.set", b"", nonce=0),))
        ),
        Offence.WRONG_CHAIN,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_messages_are_reported_and_change_nothing(solo: Solo, case: str) -> None:
    topic, data, offence = CASES[case]
    expect_rejected(solo, lambda: solo.receive("mallory", topic, data()), offence)


def test_a_block_of_another_chain_is_reported(solo: Solo) -> None:
    block = first_block(solo.core.app_state_root)
    alien = replace(block, header=replace(block.header, chain_id="other"))
    expect_rejected(solo, lambda: solo.send("mallory", alien), Offence.WRONG_CHAIN)


def committed(block_bytes: CommittedBlock) -> bytes:
    return COMMITTED_BLOCK_CODEC.encode(block_bytes)


def test_synced_blocks_with_a_certificate_for_another_block_are_refused(solo: Solo) -> None:
    block = first_block(solo.core.app_state_root)
    other = first_block(solo.core.app_state_root, time_ms=block.header.time_ms + 1)
    forged = committed(CommittedBlock(block, certificate(1, 0, id_of(other))))
    report = expect_rejected(
        solo,
        lambda: solo.core.handle(BlocksReceived("mallory", (forged,), solo.now_ms)),
        Offence.INVALID_BLOCK,
    )
    assert "certif" in report.reason


def test_synced_blocks_without_a_quorum_are_refused(solo: Solo) -> None:
    block = first_block(solo.core.app_state_root)
    weak = committed(CommittedBlock(block, certificate(1, 0, id_of(block), signers=2)))
    expect_rejected(
        solo,
        lambda: solo.core.handle(BlocksReceived("mallory", (weak,), solo.now_ms)),
        Offence.INVALID_BLOCK,
    )


def test_synced_garbage_and_too_many_blocks_are_refused(solo: Solo) -> None:
    expect_rejected(
        solo,
        lambda: solo.core.handle(BlocksReceived("mallory", (b"junk",), solo.now_ms)),
        Offence.MALFORMED,
    )
    flood = (b"junk",) * (solo.config.max_blocks_per_request + 1)
    before = snapshot(solo)
    actions = solo.core.handle(BlocksReceived("mallory", flood, solo.now_ms))
    offences = [a.offence for a in actions if isinstance(a, PeerMisbehaved)]
    assert offences == [Offence.UNSOLICITED, Offence.MALFORMED]
    assert snapshot(solo) == before


@settings(max_examples=150, deadline=None)
@given(topic=st.sampled_from([*TOPICS, "x"]), data=st.binary(max_size=300))
def test_random_bytes_never_raise_nor_change_anything(topic: str, data: bytes) -> None:
    solo = SOLO_FOR_PROPERTIES
    before = snapshot(solo)
    actions = solo.receive("mallory", topic, data)
    assert all(isinstance(a, PeerMisbehaved) for a in actions)
    assert snapshot(solo) == before


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_of_a_vote_is_refused(position: int, bit: int) -> None:
    solo = SOLO_FOR_PROPERTIES
    data = bytearray(a_vote())
    data[position % len(data)] ^= 1 << bit
    before = snapshot(solo)
    actions = solo.receive("mallory", TOPIC_CONSENSUS, bytes(data))
    assert all(isinstance(a, PeerMisbehaved) for a in actions)
    assert snapshot(solo) == before


SOLO_FOR_PROPERTIES = Solo(validator_index=1)
