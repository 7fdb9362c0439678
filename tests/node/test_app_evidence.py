"""Committed equivocation evidence in the application: its state record, its event, and the
blocks the application refuses because of their evidence (node.app.evidence)."""

from __future__ import annotations

import dataclasses

import pytest

from consensus import DuplicateVoteEvidence
from consensus.sign_bytes import vote_sign_bytes
from node.app import EQUIVOCATED_EVENT, AccountsModule, AppConfig, Application, KvModule
from node.app.evidence import EVIDENCE_RECORD_CODEC, EvidenceRecord, evidence_key
from node.errors import InvalidBlockError
from node.testing import TxFactory, key_pair
from node.types import Vote, VoteType
from tests.node.helpers import CHAIN, Chain, TestModule, make_app, register_txs

CHEAT = key_pair("cheat")


def vote(height: int, value: bytes | None, *, round_: int = 0, chain_id: str = CHAIN) -> Vote:
    sign_bytes = vote_sign_bytes(chain_id, height, round_, VoteType.PRECOMMIT, value)
    return Vote(
        chain_id,
        height,
        round_,
        VoteType.PRECOMMIT,
        value,
        CHEAT.public_key,
        CHEAT.sign(sign_bytes),
    )


def evidence(height: int, *, round_: int = 0, other: bytes = b"\x01" * 32) -> DuplicateVoteEvidence:
    return DuplicateVoteEvidence.from_votes(
        vote(height, None, round_=round_), vote(height, other, round_=round_)
    )


@pytest.fixture
def chain() -> Chain:
    chain = Chain(make_app())
    chain.run([])
    chain.run([])
    return chain


def test_committed_evidence_is_recorded_with_an_event(chain: Chain) -> None:
    proof = evidence(1)
    result = chain.run([], evidence=[proof])
    record = EvidenceRecord(result.height, proof)
    assert chain.app.committed_evidence(proof) == record
    assert chain.app.committed_evidence(evidence(1, other=b"\x02" * 32)) == record  # same step
    assert chain.app.committed_evidence(evidence(1, round_=1)) is None
    assert dict(result.state_changes)[evidence_key(proof)] == EVIDENCE_RECORD_CODEC.encode(record)
    [event] = result.block_events
    assert event.name == EQUIVOCATED_EVENT
    assert {a.key: a.value for a in event.attributes} == {
        "committed_height": str(result.height),
        "height": "1",
        "round": "0",
        "validator": CHEAT.public_key.hex(),
        "vote_type": "precommit",
    }


def test_evidence_events_come_before_the_due_work_of_the_block(chain: Chain) -> None:
    txs = TxFactory(CHAIN)
    bob = key_pair("bob")
    chain.run(register_txs(txs, "bob"))
    chain.run([txs.encoded(bob, "probe.tasks", bytes([2]) + (1).to_bytes(4, "big"))])
    result = chain.run([], evidence=[evidence(2)])
    names = [event.name for event in result.block_events]
    assert names == [EQUIVOCATED_EVENT, "probe.tick", "probe.tick"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("again", "committed before"),
        ("twice", "repeats a step"),
        ("other_chain", "for chain"),
        ("not_below", "height"),
    ],
)
def test_blocks_with_evidence_the_chain_cannot_take_are_refused(
    chain: Chain, case: str, reason: str
) -> None:
    chain.run([], evidence=[evidence(1)])
    height = chain.app.height + 1
    bad = {
        "again": [evidence(1, other=b"\x03" * 32)],
        "twice": [evidence(2), evidence(2, other=b"\x03" * 32)],
        "other_chain": [
            DuplicateVoteEvidence.from_votes(
                vote(2, None, chain_id="other"), vote(2, b"\x01" * 32, chain_id="other")
            )
        ],
        "not_below": [evidence(height)],
    }[case]
    root = chain.app.state_root
    with pytest.raises(InvalidBlockError, match=reason):
        chain.app.finalize_block(chain.next_block([], evidence=bad))
    assert (chain.app.state_root, chain.app.height) == (root, height - 1)


def test_the_record_is_part_of_the_state_a_node_restores(chain: Chain) -> None:
    proof = evidence(2)
    chain.run([], evidence=[proof])
    accounts = AccountsModule()
    twin = Application(AppConfig(CHAIN), [accounts, KvModule(), TestModule()], accounts)
    twin.restore(
        height=chain.app.height,
        last_block_time_ms=chain.app.last_block_time_ms,
        entries=chain.app.state_entries(),
    )
    assert twin.committed_evidence(proof) == chain.app.committed_evidence(proof)


def test_no_module_may_take_the_name_of_the_evidence_events() -> None:
    accounts = AccountsModule()
    impostor = KvModule()
    impostor.name = "validator"
    with pytest.raises(ValueError, match="reserved"):
        Application(AppConfig(CHAIN), [accounts, impostor], accounts)


def test_a_header_that_does_not_commit_to_the_evidence_is_refused(chain: Chain) -> None:
    block = chain.next_block([], evidence=[evidence(1)])
    swapped = dataclasses.replace(block, evidence=(evidence(2),))
    with pytest.raises(InvalidBlockError, match="evidence_root"):
        chain.app.finalize_block(swapped)
