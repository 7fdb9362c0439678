"""Deterministic keys, validator sets and signed messages for the consensus tests."""

from __future__ import annotations

from collections.abc import Sequence

from consensus import (
    Proposal,
    Validator,
    ValidatorSet,
    ValueId,
    Vote,
    VoteType,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from crypto_core.signatures import Ed25519KeyPair, sha256

CHAIN_ID = "bighealth-test"


def key_pair(index: int) -> Ed25519KeyPair:
    """The ``index``-th test key (a fixed seed per index)."""
    return Ed25519KeyPair.from_seed(sha256(b"consensus-test-key" + index.to_bytes(4, "big")))


def value_id(label: str) -> ValueId:
    """A 32-byte value id named by ``label``."""
    return sha256(label.encode())


def make_validators(powers: Sequence[int]) -> tuple[list[Ed25519KeyPair], ValidatorSet]:
    """Keys ``0..len(powers)-1`` and the set giving key ``i`` power ``powers[i]``."""
    keys = [key_pair(i) for i in range(len(powers))]
    validator_set = ValidatorSet(
        Validator(key.public_key, power) for key, power in zip(keys, powers, strict=True)
    )
    return keys, validator_set


def signed_vote(
    key: Ed25519KeyPair,
    height: int,
    round_: int,
    vote_type: VoteType,
    value: ValueId | None,
    chain_id: str = CHAIN_ID,
) -> Vote:
    """A vote signed by ``key``."""
    signature = key.sign(vote_sign_bytes(chain_id, height, round_, vote_type, value))
    return Vote(chain_id, height, round_, vote_type, value, key.public_key, signature)


def signed_proposal(
    key: Ed25519KeyPair,
    height: int,
    round_: int,
    value: ValueId,
    valid_round: int = -1,
    chain_id: str = CHAIN_ID,
) -> Proposal:
    """A proposal signed by ``key``."""
    signature = key.sign(proposal_sign_bytes(chain_id, height, round_, value, valid_round))
    return Proposal(chain_id, height, round_, value, valid_round, key.public_key, signature)


def key_of(keys: Sequence[Ed25519KeyPair], public_key: bytes) -> Ed25519KeyPair:
    """The key pair among ``keys`` whose public key is ``public_key``."""
    return next(key for key in keys if key.public_key == public_key)
