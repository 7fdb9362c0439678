"""Each checker passes on a correct history and catches the violation it is for."""

from __future__ import annotations

import hashlib

import pytest

from consensus.sign_bytes import proposal_sign_bytes, vote_sign_bytes
from consensus.types import Proposal, Vote, VoteType
from netsim.checkers import (
    ACCUSATION,
    AGREEMENT,
    DOUBLE_SIGN,
    LIVENESS,
    NODE_ERROR,
    STATE_ROOT,
    VALIDITY,
    CheckerSuite,
)
from netsim.node_api import Decision, Envelope
from node.codec import encode_message
from node.testing.factories import key_pair
from node.types import ZERO_HASH

KEY = key_pair("checker-validator")
CHAIN = "netsim"


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def decision(height: int, *, fork: str = "", root: str = "", txs: tuple[str, ...] = ()) -> Decision:
    previous = ZERO_HASH if height == 1 else h(f"block{height - 1}")
    return Decision(
        height=height,
        block_id=h(f"block{height}{fork}"),
        previous_block_id=previous,
        app_state_root=h(f"root{height}{root}"),
        tx_hashes=tuple(h(tx) for tx in txs),
    )


def suite(nodes: int = 3, honest: tuple[bool, ...] | None = None) -> CheckerSuite:
    return CheckerSuite(
        honest=honest if honest is not None else (True,) * nodes,
        honest_validator_keys=frozenset({KEY.public_key}),
        known_tx={h("tx1"), h("tx2"), h("tx3")},
        own_keys=(KEY.public_key,) + (None,) * (nodes - 1),
        liveness_bound_us=10_000_000,
    )


def checkers_failed(checkers: CheckerSuite) -> list[str]:
    return [v.checker for v in checkers.violations]


def test_a_consistent_history_passes() -> None:
    checkers = suite()
    for height in (1, 2, 3):
        for node in range(3):
            checkers.on_decision(node, height * 1_000, decision(height, txs=(f"tx{height}",)))
    checkers.on_decision(0, 9_000, decision(2, txs=("tx2",)))  # repeated after a restart
    assert checkers.violations == []
    assert checkers.log.max_height == 3 and checkers.log.heights[2].deciders == 3
    assert checkers.committed_txs == 3


def test_agreement_catches_two_blocks_at_one_height() -> None:
    checkers = suite()
    checkers.on_decision(0, 1, decision(1))
    checkers.on_decision(1, 2, decision(1, fork="x"))
    assert checkers_failed(checkers) == [AGREEMENT]
    assert checkers.violations[0].node == 1


def test_state_roots_must_match() -> None:
    checkers = suite()
    checkers.on_decision(0, 1, decision(1))
    checkers.on_decision(1, 2, decision(1, root="x"))
    assert checkers_failed(checkers) == [STATE_ROOT]


def test_validity_catches_a_broken_chain_skipped_heights_and_unknown_or_repeated_txs() -> None:
    checkers = suite()
    checkers.on_decision(0, 1, decision(1, txs=("tx1",)))
    bad_parent = Decision(2, h("block2"), h("elsewhere"), h("root2"), ())
    checkers.on_decision(0, 2, bad_parent)
    checkers.on_decision(1, 3, decision(1, txs=("tx1",)))
    checkers.on_decision(1, 4, decision(3, txs=("tx1", "forged")))
    assert checkers_failed(checkers) == [VALIDITY, VALIDITY, VALIDITY, VALIDITY]
    messages = " ".join(v.message for v in checkers.violations)
    assert "does not extend" in messages and "decided 3 after 1" in messages
    assert "no client sent" in messages and "committed at 1 and 3" in messages


def test_byzantine_nodes_decisions_are_not_checked() -> None:
    checkers = suite(honest=(True, False))
    checkers.on_decision(0, 1, decision(1))
    checkers.on_decision(1, 2, decision(1, fork="x"))
    assert checkers.violations == []


def signed_vote(value: bytes | None, round_: int = 0) -> Envelope:
    sign_bytes = vote_sign_bytes(CHAIN, 5, round_, VoteType.PREVOTE, value)
    vote = Vote(CHAIN, 5, round_, VoteType.PREVOTE, value, KEY.public_key, KEY.sign(sign_bytes))
    return Envelope(encode_message(vote))


def signed_proposal(value: bytes) -> Envelope:
    sign_bytes = proposal_sign_bytes(CHAIN, 5, 1, value, -1)
    proposal = Proposal(CHAIN, 5, 1, value, -1, KEY.public_key, KEY.sign(sign_bytes))
    return Envelope(encode_message(proposal))


def test_double_sign_catches_two_votes_or_proposals_for_one_step() -> None:
    checkers = suite()
    checkers.on_signed_message(0, 1, signed_vote(h("a")))
    checkers.on_signed_message(0, 2, signed_vote(h("a")))  # the same vote again is fine
    checkers.on_signed_message(0, 3, signed_vote(h("a"), round_=1))  # another round is fine
    assert checkers.violations == []
    checkers.on_signed_message(0, 4, signed_vote(None))
    checkers.on_signed_message(0, 5, signed_proposal(h("a")))
    checkers.on_signed_message(0, 6, signed_proposal(h("b")))
    assert checkers_failed(checkers) == [DOUBLE_SIGN, DOUBLE_SIGN]


def test_relayed_messages_are_not_the_relayers_signatures() -> None:
    checkers = suite()
    # node 1 relays node 0's key's two conflicting votes: not a double sign of node 1's
    checkers.on_signed_message(1, 1, signed_vote(h("a")))
    checkers.on_signed_message(1, 2, signed_vote(h("b")))
    assert checkers.violations == []
    checkers.on_signed_message(0, 3, signed_vote(h("a")))
    checkers.on_signed_message(0, 4, signed_vote(h("b")))
    assert checkers_failed(checkers) == [DOUBLE_SIGN]


def test_accusing_an_honest_validator_is_a_violation() -> None:
    checkers = suite()
    checkers.on_accusation(0, 1, h("someone-byzantine"))
    assert checkers.violations == [] and checkers.accusations == 1
    checkers.on_accusation(0, 2, KEY.public_key)
    assert checkers_failed(checkers) == [ACCUSATION]


def test_node_errors_are_violations_naming_where_they_happened() -> None:
    checkers = suite()
    try:
        raise KeyError("missing")
    except KeyError as exc:
        checkers.on_node_error(2, 7, "a timer", exc)
    assert checkers_failed(checkers) == [NODE_ERROR]
    assert "a timer" in checkers.violations[0].message
    assert "test_checkers.py" in checkers.violations[0].message


def test_liveness_counts_only_after_healing() -> None:
    checkers = suite(nodes=1)
    checkers.on_decision(0, 1_000_000, decision(1))
    checkers.on_decision(0, 60_000_000, decision(2))  # a long gap, but faults were active
    assert checkers.violations == []
    checkers.faults_healed(61_000_000)
    checkers.on_decision(0, 65_000_000, decision(3))
    checkers.on_decision(0, 80_000_000, decision(4))  # 15 s > the 10 s bound
    assert checkers_failed(checkers) == [LIVENESS]


@pytest.mark.parametrize(
    ("heights", "up", "expected"),
    [
        ((5, 5), (True, True), []),
        ((5, 3), (True, True), [LIVENESS]),  # node 1 stayed behind
        ((5, 3), (True, False), []),  # ... but it is down: nothing to expect of it
        ((3, 3), (True, True), [LIVENESS]),  # the network stopped short of the target
    ],
)
def test_liveness_at_the_end_of_a_run(
    heights: tuple[int, int], up: tuple[bool, bool], expected: list[str]
) -> None:
    checkers = suite(nodes=2)
    checkers.faults_healed(0)
    for node, top in enumerate(heights):
        for height in range(1, top + 1):
            checkers.on_decision(node, height * 1_000, decision(height))
    checkers.finish(30_000_000, 5, up)
    assert checkers_failed(checkers) == expected
