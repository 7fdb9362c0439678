"""Commit certificates: building them from precommits and checking their quorum.

A certificate is the set of precommit signatures for ``value_id`` at (height, round) whose
signers hold more than 2/3 of the height's voting power. Every signature in it signs
``vote_sign_bytes(chain_id, height, round, PRECOMMIT, value_id)``, so a holder of the
validator set can check it without any other message (:mod:`consensus.verification` does the
signature part; this module the structure and the power).
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.errors import InvalidCertificateError, MalformedMessageError
from consensus.types import CommitCertificate, CommitSignature, ValueId, Vote, VoteType
from consensus.validation import check_certificate_fields, check_expected_chain
from consensus.validator_set import ValidatorSet


def build_commit_certificate(
    chain_id: str, height: int, round_: int, value_id: ValueId, precommits: Sequence[Vote]
) -> CommitCertificate:
    """The certificate of ``precommits`` (all for ``value_id`` at that height and round).

    Signatures keep the order of ``precommits`` (the vote keeper gives canonical validator
    order). Raises ValueError if a vote does not match the certificate.
    """
    for vote in precommits:
        if (vote.chain_id, vote.height, vote.round, vote.vote_type, vote.value_id) != (
            chain_id,
            height,
            round_,
            VoteType.PRECOMMIT,
            value_id,
        ):
            raise ValueError("every vote of a certificate is a precommit for its value")
    signatures = tuple(CommitSignature(v.validator, v.signature) for v in precommits)
    return CommitCertificate(chain_id, height, round_, value_id, signatures)


def check_certificate_quorum(
    certificate: CommitCertificate, validator_set: ValidatorSet, chain_id: str
) -> int:
    """Check form, chain, signers and quorum (not signatures); returns the signed power.

    Raises InvalidCertificateError (or WrongChainError) naming the problem: a malformed
    field, a signer outside the set, a repeated signer, or power not above 2/3 of the total.
    """
    try:
        check_certificate_fields(certificate)
    except MalformedMessageError as exc:
        raise InvalidCertificateError(f"malformed certificate: {exc}") from exc
    check_expected_chain(certificate.chain_id, chain_id)
    signed_power = 0
    seen: set[bytes] = set()
    for commit_signature in certificate.signatures:
        key = commit_signature.validator
        power = validator_set.power_of(key)
        if power == 0:
            raise InvalidCertificateError(f"signer {key.hex()} is not a validator")
        if key in seen:
            raise InvalidCertificateError(f"signer {key.hex()} appears twice")
        seen.add(key)
        signed_power += power
    if not validator_set.has_quorum(signed_power):
        raise InvalidCertificateError(
            f"signed power {signed_power} is not above 2/3 of {validator_set.total_voting_power}"
        )
    return signed_power
