"""Signature checks against a validator set: one implementation for the edge and light clients.

The consensus core never verifies signatures: the shell calls these on every message before
turning it into an input, block sync and light clients call them on certificates, and the
application calls :func:`verify_duplicate_vote_evidence` before accepting evidence in a block.
Each function returns None or raises a typed :class:`~consensus.errors.InvalidMessageError`.
"""

from __future__ import annotations

from consensus.commit import check_certificate_quorum
from consensus.errors import (
    InvalidCertificateError,
    InvalidEvidenceError,
    InvalidMessageError,
    InvalidSignatureError,
    NotProposerError,
    UnknownValidatorError,
)
from consensus.evidence import DuplicateVoteEvidence
from consensus.sign_bytes import proposal_sign_bytes_of, vote_sign_bytes, vote_sign_bytes_of
from consensus.types import CommitCertificate, Proposal, Vote, VoteType
from consensus.validation import (
    check_expected_chain,
    check_proposal_fields,
    check_vote_fields,
)
from consensus.validator_set import ValidatorSet
from crypto_core.signatures import verify


def verify_vote(vote: Vote, validator_set: ValidatorSet, chain_id: str) -> None:
    """``vote`` is well formed, for ``chain_id``, by a member, and correctly signed."""
    check_vote_fields(vote)
    check_expected_chain(vote.chain_id, chain_id)
    if vote.validator not in validator_set:
        raise UnknownValidatorError(f"{vote.validator.hex()} is not a validator")
    if not verify(vote.validator, vote_sign_bytes_of(vote), vote.signature):
        raise InvalidSignatureError(f"bad vote signature of {vote.validator.hex()}")


def verify_proposal(
    proposal: Proposal, validator_set: ValidatorSet, chain_id: str, *, check_proposer: bool = False
) -> None:
    """``proposal`` is well formed, for ``chain_id``, by a member, and correctly signed.

    ``check_proposer`` also requires its signer to be the proposer of its round; that costs
    O(validators x round) for a round not seen before, so the edge leaves it to the core,
    which checks it only for rounds it admits.
    """
    check_proposal_fields(proposal)
    check_expected_chain(proposal.chain_id, chain_id)
    if proposal.proposer not in validator_set:
        raise UnknownValidatorError(f"{proposal.proposer.hex()} is not a validator")
    if check_proposer and validator_set.proposer(proposal.round) != proposal.proposer:
        raise NotProposerError(f"{proposal.proposer.hex()} is not the proposer of the round")
    if not verify(proposal.proposer, proposal_sign_bytes_of(proposal), proposal.signature):
        raise InvalidSignatureError(f"bad proposal signature of {proposal.proposer.hex()}")


def verify_commit_certificate(
    certificate: CommitCertificate, validator_set: ValidatorSet, chain_id: str
) -> None:
    """``certificate`` proves its value decided: distinct members holding more than 2/3 of
    the power each signed the precommit for it. ``validator_set`` must be the set of the
    certificate's height. Raises InvalidCertificateError (or WrongChainError)."""
    check_certificate_quorum(certificate, validator_set, chain_id)
    sign_bytes = vote_sign_bytes(
        certificate.chain_id,
        certificate.height,
        certificate.round,
        VoteType.PRECOMMIT,
        certificate.value_id,
    )
    for commit_signature in certificate.signatures:
        if not verify(commit_signature.validator, sign_bytes, commit_signature.signature):
            raise InvalidCertificateError(
                f"bad precommit signature of {commit_signature.validator.hex()}"
            )


def verify_duplicate_vote_evidence(
    evidence: DuplicateVoteEvidence, validator_set: ValidatorSet, chain_id: str
) -> None:
    """``evidence`` proves that a member of ``validator_set`` (the set of the votes' height)
    signed two different votes for one step. Raises InvalidEvidenceError."""
    if not isinstance(evidence, DuplicateVoteEvidence):
        raise InvalidEvidenceError(f"expected evidence, got {type(evidence).__name__}")
    try:
        DuplicateVoteEvidence(evidence.vote_a, evidence.vote_b)  # re-checks shape and order
        verify_vote(evidence.vote_a, validator_set, chain_id)
        verify_vote(evidence.vote_b, validator_set, chain_id)
    except InvalidMessageError as exc:
        if isinstance(exc, InvalidEvidenceError):
            raise
        raise InvalidEvidenceError(f"evidence vote rejected: {exc}") from exc
