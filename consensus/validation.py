"""Well-formedness checks of consensus messages (types, sizes, ranges, chain id).

These run before a message touches any state. They do not check signatures (the shell does,
with :mod:`consensus.verification`) nor validator-set membership (that needs the set of the
message's height). Each raises :class:`~consensus.errors.MalformedMessageError` naming the
field, or :class:`~consensus.errors.WrongChainError`.
"""

from __future__ import annotations

from consensus.errors import MalformedMessageError, WrongChainError
from consensus.limits import (
    MAX_CHAIN_ID_BYTES,
    MAX_HEIGHT,
    MAX_ROUND,
    MAX_VALIDATORS,
    VALUE_ID_BYTES,
)
from consensus.types import CommitCertificate, Proposal, Vote, VoteType
from crypto_core.signatures import PUBLIC_KEY_SIZE, SIGNATURE_SIZE


def check_chain_id(chain_id: object) -> None:
    """A chain id is a non-empty str of at most MAX_CHAIN_ID_BYTES UTF-8 bytes."""
    if type(chain_id) is not str:
        raise MalformedMessageError(f"chain id must be str, not {type(chain_id).__name__}")
    try:
        size_bytes = len(chain_id.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise MalformedMessageError("chain id is not encodable as UTF-8") from exc
    if not 1 <= size_bytes <= MAX_CHAIN_ID_BYTES:
        raise MalformedMessageError(
            f"chain id must be 1..{MAX_CHAIN_ID_BYTES} UTF-8 bytes, got {size_bytes}"
        )


def check_height(height: object) -> None:
    """A height is an int in 1..MAX_HEIGHT."""
    if type(height) is not int or not 1 <= height <= MAX_HEIGHT:
        raise MalformedMessageError(f"height must be an int in 1..{MAX_HEIGHT}, got {height!r}")


def check_round(round_: object, name: str = "round") -> None:
    """A round is an int in 0..MAX_ROUND."""
    if type(round_) is not int or not 0 <= round_ <= MAX_ROUND:
        raise MalformedMessageError(f"{name} must be an int in 0..{MAX_ROUND}, got {round_!r}")


def check_value_id(value_id: object) -> None:
    """A value id is exactly VALUE_ID_BYTES bytes."""
    if type(value_id) is not bytes or len(value_id) != VALUE_ID_BYTES:
        raise MalformedMessageError(f"value id must be {VALUE_ID_BYTES} bytes, got {value_id!r}")


def check_public_key(public_key: object, name: str = "validator") -> None:
    """A public key is exactly PUBLIC_KEY_SIZE bytes."""
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedMessageError(f"{name} key must be {PUBLIC_KEY_SIZE} bytes")


def check_signature(signature: object) -> None:
    """A signature is exactly SIGNATURE_SIZE bytes."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise MalformedMessageError(f"signature must be {SIGNATURE_SIZE} bytes")


def check_expected_chain(chain_id: str, expected_chain_id: str) -> None:
    """Raise WrongChainError unless ``chain_id`` is the expected one."""
    if chain_id != expected_chain_id:
        raise WrongChainError(f"message for chain {chain_id!r}, expected {expected_chain_id!r}")


def check_vote_fields(vote: Vote, *, signed: bool = True) -> None:
    """Every field of ``vote`` is well formed (``signed=False`` skips the signature)."""
    if not isinstance(vote, Vote):
        raise MalformedMessageError(f"expected a Vote, got {type(vote).__name__}")
    check_chain_id(vote.chain_id)
    check_height(vote.height)
    check_round(vote.round)
    if not isinstance(vote.vote_type, VoteType):
        raise MalformedMessageError(f"vote type must be a VoteType, got {vote.vote_type!r}")
    if vote.value_id is not None:
        check_value_id(vote.value_id)
    check_public_key(vote.validator)
    if signed:
        check_signature(vote.signature)


def check_proposal_fields(proposal: Proposal, *, signed: bool = True) -> None:
    """Every field is well formed and ``-1 <= valid_round < round`` (paper, L28)."""
    if not isinstance(proposal, Proposal):
        raise MalformedMessageError(f"expected a Proposal, got {type(proposal).__name__}")
    check_chain_id(proposal.chain_id)
    check_height(proposal.height)
    check_round(proposal.round)
    check_value_id(proposal.value_id)
    valid_round = proposal.valid_round
    if type(valid_round) is not int or not -1 <= valid_round < proposal.round:
        raise MalformedMessageError(
            f"valid round must be -1 or in 0..round-1 (round {proposal.round}), got {valid_round!r}"
        )
    check_public_key(proposal.proposer, "proposer")
    if signed:
        check_signature(proposal.signature)


def check_certificate_fields(certificate: CommitCertificate) -> None:
    """Every field of ``certificate`` is well formed (not its quorum nor its signatures)."""
    if not isinstance(certificate, CommitCertificate):
        raise MalformedMessageError(
            f"expected a CommitCertificate, got {type(certificate).__name__}"
        )
    check_chain_id(certificate.chain_id)
    check_height(certificate.height)
    check_round(certificate.round)
    check_value_id(certificate.value_id)
    if type(certificate.signatures) is not tuple or not certificate.signatures:
        raise MalformedMessageError("a certificate needs a non-empty tuple of signatures")
    if len(certificate.signatures) > MAX_VALIDATORS:
        raise MalformedMessageError(f"a certificate holds at most {MAX_VALIDATORS} signatures")
    for commit_signature in certificate.signatures:
        check_public_key(commit_signature.validator)
        check_signature(commit_signature.signature)
