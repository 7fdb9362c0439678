"""Messages and validator data of the consensus core (frozen, hashable, no I/O).

These field names are shared with node/codec (which encodes them canonically); add fields or
methods freely, but rename or remove one only together with the codec.

Conventions: a *value id* is the 32-byte SHA-256 id of the proposed block (the consensus core
never sees blocks); ``None`` as a vote's value id means nil. Validators are identified by their
32-byte Ed25519 public key. Heights start at 1; rounds at 0; ``valid_round`` -1 means none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

ValueId = bytes
PublicKey = bytes


class VoteType(IntEnum):
    """The two voting steps of a round."""

    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class Vote:
    """A signed prevote or precommit for ``value_id`` (``None`` = nil)."""

    chain_id: str
    height: int
    round: int
    vote_type: VoteType
    value_id: ValueId | None
    validator: PublicKey
    signature: bytes

    def with_signature(self, signature: bytes) -> Vote:
        """This vote carrying ``signature`` (the shell's step after ``SignAndBroadcastVote``)."""
        return replace(self, signature=signature)


@dataclass(frozen=True, slots=True)
class Proposal:
    """A signed proposal of ``value_id`` by the round's proposer (``valid_round`` -1 = none)."""

    chain_id: str
    height: int
    round: int
    value_id: ValueId
    valid_round: int
    proposer: PublicKey
    signature: bytes

    def with_signature(self, signature: bytes) -> Proposal:
        """This proposal carrying ``signature`` (after ``SignAndBroadcastProposal``)."""
        return replace(self, signature=signature)


@dataclass(frozen=True, slots=True)
class CommitSignature:
    """One validator's precommit signature inside a commit certificate."""

    validator: PublicKey
    signature: bytes


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """The +2/3 (by power) precommits for ``value_id`` at (height, round) that decided it."""

    chain_id: str
    height: int
    round: int
    value_id: ValueId
    signatures: tuple[CommitSignature, ...]


@dataclass(frozen=True, slots=True)
class Validator:
    """A validator: its public key and voting power (> 0)."""

    public_key: PublicKey
    voting_power: int
