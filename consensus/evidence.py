"""Equivocation evidence: two different signed votes of one validator for one step.

A validator that signs two different votes (different value ids, nil counting as a value) for
the same chain, height, round and vote type has equivocated. The vote keeper detects it and
builds a :class:`DuplicateVoteEvidence`; the :class:`EvidenceStore` keeps such objects, within
bounds, until the application includes them in a block. Anyone holding the validator set of
that height can check one with :func:`consensus.verification.verify_duplicate_vote_evidence`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consensus.errors import InvalidEvidenceError
from consensus.limits import MAX_EVIDENCE_PER_VALIDATOR, MAX_PENDING_EVIDENCE
from consensus.types import PublicKey, Vote, VoteType

EvidenceKey = tuple[PublicKey, str, int, int, VoteType]
"""(validator, chain id, height, round, vote type): the step an evidence object is about."""


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two conflicting votes of one validator, in canonical order (nil first, then by value id).

    Build it with :meth:`from_votes`, which orders the votes, so the same equivocation gives
    an equal object on every node whatever the arrival order.
    """

    vote_a: Vote
    vote_b: Vote

    def __post_init__(self) -> None:
        a, b = self.vote_a, self.vote_b
        if not isinstance(a, Vote) or not isinstance(b, Vote):
            raise InvalidEvidenceError("evidence holds two Vote objects")
        same_step = (a.chain_id, a.height, a.round, a.vote_type, a.validator) == (
            b.chain_id,
            b.height,
            b.round,
            b.vote_type,
            b.validator,
        )
        if not same_step:
            raise InvalidEvidenceError("votes of an evidence must share validator and step")
        if _order_key(a) >= _order_key(b):
            raise InvalidEvidenceError("evidence votes must differ and be in canonical order")

    @classmethod
    def from_votes(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        """Evidence of ``first`` and ``second`` in canonical order; raises InvalidEvidenceError
        unless they are different votes of one validator for one step."""
        if _order_key(first) <= _order_key(second):
            return cls(first, second)
        return cls(second, first)

    @property
    def validator(self) -> PublicKey:
        """The equivocating validator."""
        return self.vote_a.validator

    @property
    def key(self) -> EvidenceKey:
        """The step this evidence is about (at most one evidence per key is kept)."""
        vote = self.vote_a
        return (vote.validator, vote.chain_id, vote.height, vote.round, vote.vote_type)


def _order_key(vote: Vote) -> tuple[int, bytes]:
    return (0, b"") if vote.value_id is None else (1, vote.value_id)


class EvidenceStore:
    """Pending evidence in arrival order, at most one per step and MAX_* in total."""

    __slots__ = ("_by_key", "_count_by_validator", "_max_per_validator", "_max_total")

    def __init__(
        self,
        max_total: int = MAX_PENDING_EVIDENCE,
        max_per_validator: int = MAX_EVIDENCE_PER_VALIDATOR,
    ) -> None:
        """An empty store holding at most ``max_total`` objects, ``max_per_validator`` each."""
        if max_total < 1 or max_per_validator < 1:
            raise ValueError("evidence limits must be >= 1")
        self._max_total = max_total
        self._max_per_validator = max_per_validator
        self._by_key: dict[EvidenceKey, DuplicateVoteEvidence] = {}
        self._count_by_validator: dict[PublicKey, int] = {}

    def add(self, evidence: DuplicateVoteEvidence) -> bool:
        """Keep ``evidence``; False (not kept) if its step is known or a limit is reached.

        New evidence is dropped rather than old evidence evicted: the oldest evidence is
        as valid a proof as the newest, and one per validator suffices to act on it.
        """
        key = evidence.key
        count = self._count_by_validator.get(evidence.validator, 0)
        if key in self._by_key or count >= self._max_per_validator:
            return False
        if len(self._by_key) >= self._max_total:
            return False
        self._by_key[key] = evidence
        self._count_by_validator[evidence.validator] = count + 1
        return True

    def pending(self, max_count: int | None = None) -> tuple[DuplicateVoteEvidence, ...]:
        """Up to ``max_count`` (default all) pending objects, oldest first."""
        values = tuple(self._by_key.values())
        return values if max_count is None else values[:max_count]

    def remove(self, committed: Iterable[DuplicateVoteEvidence]) -> None:
        """Forget evidence a block has included (unknown objects are ignored)."""
        for evidence in committed:
            if self._by_key.pop(evidence.key, None) is not None:
                remaining = self._count_by_validator[evidence.validator] - 1
                if remaining:
                    self._count_by_validator[evidence.validator] = remaining
                else:
                    del self._count_by_validator[evidence.validator]

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, evidence: object) -> bool:
        return isinstance(evidence, DuplicateVoteEvidence) and (
            self._by_key.get(evidence.key) == evidence
        )
