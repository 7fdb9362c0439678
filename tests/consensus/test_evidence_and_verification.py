"""Evidence objects and store, and the signature checks shared by the edge and light clients."""

from __future__ import annotations

from dataclasses import replace

import pytest

from consensus import (
    CommitSignature,
    DuplicateVoteEvidence,
    EvidenceStore,
    InvalidCertificateError,
    InvalidEvidenceError,
    InvalidSignatureError,
    MalformedMessageError,
    NotProposerError,
    UnknownValidatorError,
    VoteType,
    WrongChainError,
    build_commit_certificate,
    verify_commit_certificate,
    verify_duplicate_vote_evidence,
    verify_proposal,
    verify_vote,
)
from tests.consensus.factories import (
    CHAIN_ID,
    key_of,
    key_pair,
    make_validators,
    signed_proposal,
    signed_vote,
    value_id,
)

PREVOTE, PRECOMMIT = VoteType.PREVOTE, VoteType.PRECOMMIT
V, W = value_id("v"), value_id("w")
KEYS, VALIDATORS = make_validators([1, 1, 1, 1])


def evidence_of(
    index: int, round_: int = 0, values: tuple[bytes | None, ...] = (V, W)
) -> DuplicateVoteEvidence:
    first, second = (signed_vote(KEYS[index], 1, round_, PREVOTE, v) for v in values)
    return DuplicateVoteEvidence.from_votes(first, second)


# --- evidence ----------------------------------------------------------------------------------


def test_evidence_is_canonical_whatever_the_arrival_order() -> None:
    a = signed_vote(KEYS[0], 1, 0, PREVOTE, V)
    b = signed_vote(KEYS[0], 1, 0, PREVOTE, None)
    assert DuplicateVoteEvidence.from_votes(a, b) == DuplicateVoteEvidence.from_votes(b, a)
    assert DuplicateVoteEvidence.from_votes(a, b).vote_a == b  # nil first


@pytest.mark.parametrize(
    ("second", "match"),
    [
        (signed_vote(KEYS[0], 1, 0, PREVOTE, V), "differ"),
        (signed_vote(KEYS[1], 1, 0, PREVOTE, W), "share"),
        (signed_vote(KEYS[0], 1, 1, PREVOTE, W), "share"),
        (signed_vote(KEYS[0], 1, 0, PRECOMMIT, W), "share"),
        (signed_vote(KEYS[0], 2, 0, PREVOTE, W), "share"),
    ],
)
def test_evidence_needs_two_different_votes_of_one_step(second: object, match: str) -> None:
    first = signed_vote(KEYS[0], 1, 0, PREVOTE, V)
    with pytest.raises(InvalidEvidenceError, match=match):
        DuplicateVoteEvidence.from_votes(first, second)  # type: ignore[arg-type]


def test_evidence_verifies_against_the_validator_set() -> None:
    evidence = evidence_of(2)
    verify_duplicate_vote_evidence(evidence, VALIDATORS, CHAIN_ID)
    forged = DuplicateVoteEvidence(evidence.vote_a, replace(evidence.vote_b, signature=bytes(64)))
    with pytest.raises(InvalidEvidenceError, match="signature"):
        verify_duplicate_vote_evidence(forged, VALIDATORS, CHAIN_ID)
    with pytest.raises(InvalidEvidenceError, match="chain"):
        verify_duplicate_vote_evidence(evidence, VALIDATORS, "another-chain")
    _, other_set = make_validators([1, 1])
    stranger = DuplicateVoteEvidence.from_votes(
        signed_vote(key_pair(8), 1, 0, PREVOTE, V), signed_vote(key_pair(8), 1, 0, PREVOTE, W)
    )
    with pytest.raises(InvalidEvidenceError, match="not a validator"):
        verify_duplicate_vote_evidence(stranger, other_set, CHAIN_ID)


def test_store_keeps_one_per_step_and_respects_its_limits() -> None:
    store = EvidenceStore(max_total=3, max_per_validator=2)
    assert store.add(evidence_of(0, 0))
    assert not store.add(evidence_of(0, 0, (V, None)))  # same step
    assert store.add(evidence_of(0, 1))
    assert not store.add(evidence_of(0, 2))  # per-validator limit
    assert store.add(evidence_of(1, 0))
    assert not store.add(evidence_of(2, 0))  # total limit: new evidence is dropped
    assert len(store) == 3 and store.pending(2) == (evidence_of(0, 0), evidence_of(0, 1))
    store.remove([evidence_of(0, 0), evidence_of(3, 3)])
    assert evidence_of(0, 0) not in store and evidence_of(0, 1) in store
    assert store.add(evidence_of(0, 2))  # room again for validator 0
    with pytest.raises(ValueError):
        EvidenceStore(max_total=0)


# --- votes and proposals -----------------------------------------------------------------------


def test_vote_verification() -> None:
    vote = signed_vote(KEYS[1], 3, 2, PRECOMMIT, V)
    verify_vote(vote, VALIDATORS, CHAIN_ID)
    with pytest.raises(InvalidSignatureError):
        verify_vote(replace(vote, value_id=W), VALIDATORS, CHAIN_ID)
    with pytest.raises(InvalidSignatureError):
        verify_vote(replace(vote, round=3), VALIDATORS, CHAIN_ID)
    with pytest.raises(WrongChainError):
        verify_vote(vote, VALIDATORS, "another-chain")
    with pytest.raises(UnknownValidatorError):
        verify_vote(signed_vote(key_pair(9), 3, 2, PRECOMMIT, V), VALIDATORS, CHAIN_ID)
    with pytest.raises(MalformedMessageError):
        verify_vote(replace(vote, signature=b"short"), VALIDATORS, CHAIN_ID)


def test_a_signature_for_another_chain_does_not_transfer() -> None:
    foreign = signed_vote(KEYS[1], 3, 2, PRECOMMIT, V, chain_id="another-chain")
    with pytest.raises(InvalidSignatureError):
        verify_vote(replace(foreign, chain_id=CHAIN_ID), VALIDATORS, CHAIN_ID)


def test_proposal_verification() -> None:
    proposer = key_of(KEYS, VALIDATORS.proposer(1))
    proposal = signed_proposal(proposer, 1, 1, V, 0)
    verify_proposal(proposal, VALIDATORS, CHAIN_ID, check_proposer=True)
    with pytest.raises(InvalidSignatureError):
        verify_proposal(replace(proposal, valid_round=-1), VALIDATORS, CHAIN_ID)
    other = key_of(KEYS, VALIDATORS.proposer(2))
    impostor = signed_proposal(other, 1, 1, V, 0)
    verify_proposal(impostor, VALIDATORS, CHAIN_ID)  # signature fine...
    with pytest.raises(NotProposerError):  # ...but not the proposer of round 1
        verify_proposal(impostor, VALIDATORS, CHAIN_ID, check_proposer=True)


# --- commit certificates -----------------------------------------------------------------------


def certificate(signers: list[int], value: bytes = V, round_: int = 2):  # type: ignore[no-untyped-def]
    precommits = [signed_vote(KEYS[i], 5, round_, PRECOMMIT, value) for i in signers]
    return build_commit_certificate(CHAIN_ID, 5, round_, value, precommits)


def test_a_quorum_certificate_verifies() -> None:
    verify_commit_certificate(certificate([0, 1, 2]), VALIDATORS, CHAIN_ID)
    verify_commit_certificate(certificate([0, 1, 2, 3]), VALIDATORS, CHAIN_ID)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda c: certificate([0, 1]), InvalidCertificateError, "not above 2/3"),
        (
            lambda c: replace(c, signatures=(*c.signatures[:2], c.signatures[0])),
            InvalidCertificateError,
            "twice",
        ),
        (lambda c: replace(c, value_id=W), InvalidCertificateError, "signature"),
        (lambda c: replace(c, round=3), InvalidCertificateError, "signature"),
        (
            lambda c: replace(
                c,
                signatures=(*c.signatures[:2], CommitSignature(key_pair(9).public_key, b"s" * 64)),
            ),
            InvalidCertificateError,
            "not a validator",
        ),
        (lambda c: replace(c, signatures=()), InvalidCertificateError, "malformed"),
        (lambda c: replace(c, chain_id="another-chain"), WrongChainError, "chain"),
        (lambda c: replace(c, value_id=b"short"), InvalidCertificateError, "malformed"),
    ],
)
def test_bad_certificates_are_rejected(mutate: object, error: type[Exception], match: str) -> None:
    bad = mutate(certificate([0, 1, 2]))  # type: ignore[operator]
    with pytest.raises(error, match=match):
        verify_commit_certificate(bad, VALIDATORS, CHAIN_ID)


def test_certificates_need_the_set_of_their_height() -> None:
    _, other_set = make_validators([1, 1, 1, 1, 1, 1, 1])  # a superset: more power needed
    with pytest.raises(InvalidCertificateError, match="not above 2/3"):
        verify_commit_certificate(certificate([0, 1, 2]), other_set, CHAIN_ID)


def test_build_refuses_votes_that_do_not_match() -> None:
    with pytest.raises(ValueError):
        build_commit_certificate(CHAIN_ID, 5, 2, V, [signed_vote(KEYS[0], 5, 2, PRECOMMIT, W)])
