"""The signing ledger the cluster driver and the simulator share."""

from __future__ import annotations

from dataclasses import replace

from consensus.types import Proposal, Vote, VoteType
from node.testing import key_pair
from node.testing.signing import PROPOSAL_STEP, SigningLedger

OWN = key_pair("ledger-own").public_key
OTHER = key_pair("ledger-other").public_key


def _vote(value: bytes | None, *, round_: int = 0, signer: bytes = OWN) -> Vote:
    return Vote(
        chain_id="c", height=5, round=round_, vote_type=VoteType.PREVOTE, value_id=value,
        validator=signer, signature=bytes(64),
    )  # fmt: skip


def test_a_second_different_vote_for_one_step_is_a_double_sign() -> None:
    ledger = SigningLedger()
    assert ledger.record(OWN, _vote(b"a" * 32)) is None
    assert ledger.record(OWN, _vote(b"a" * 32)) is None  # the same vote again
    assert ledger.record(OWN, _vote(b"a" * 32, round_=1)) is None  # another round
    double = ledger.record(OWN, _vote(None))
    assert double is not None and (double.height, double.round, double.step) == (5, 0, 1)
    assert "height 5" in double.describe()


def test_relays_and_non_signers_are_not_judged() -> None:
    ledger = SigningLedger()
    assert ledger.record(OWN, _vote(b"a" * 32, signer=OTHER)) is None
    assert ledger.record(OWN, _vote(b"b" * 32, signer=OTHER)) is None
    assert ledger.record(None, _vote(b"b" * 32)) is None
    assert len(ledger) == 0


def test_proposals_have_their_own_step_and_old_heights_are_forgotten() -> None:
    ledger = SigningLedger()
    proposal = Proposal(
        chain_id="c", height=5, round=0, value_id=b"a" * 32, valid_round=-1, proposer=OWN,
        signature=bytes(64),
    )  # fmt: skip
    assert ledger.record(OWN, proposal) is None
    double = ledger.record(OWN, replace(proposal, value_id=b"c" * 32))
    assert double is not None and double.step == PROPOSAL_STEP
    ledger.forget_below(6)
    assert len(ledger) == 0
    assert ledger.record(OWN, replace(proposal, value_id=b"b" * 32)) is None
