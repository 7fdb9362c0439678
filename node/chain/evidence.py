"""Equivocation evidence on its way into blocks: which evidence a block may carry, which the
proposer picks, and the pending evidence a node keeps across restarts.

Admissible (``evidence_problem``): evidence may go into a block at height ``H`` if it is for
this chain, about a committed height ``h < H`` with ``H - h <= evidence_max_age_heights``, not
committed before (the application's record of its step), and
``consensus.verify_duplicate_vote_evidence`` accepts it against the members that ruled ``h``
(``ValidatorSchedule.members_at``). The proposer and every validator apply the same rule, so a
proposer never includes what validators reject; a block breaking it is invalid.

Picking (``pick_evidence``): the admissible pending evidence, oldest step first (the nearest to
expiring), within ``max_evidence_per_block`` and ``max_evidence_bytes``.

Pending: consensus keeps what its vote keeper detects in ``ConsensusCore.evidence`` (bounded by
``consensus.limits.MAX_PENDING_EVIDENCE``). ``PendingEvidenceLog`` mirrors it in storage
(``evid/<validator><height><round><type>`` -> the evidence) in each commit batch. Until then
nothing is lost by a crash: evidence is detected from votes of the height being decided, which
are in its consensus log, and replaying the log detects it again. Evidence leaves the pool
when a block commits its step or when it expires.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from consensus.errors import InvalidEvidenceError
from consensus.evidence import DuplicateVoteEvidence, EvidenceStore
from consensus.validator_set import ValidatorSet
from consensus.verification import verify_duplicate_vote_evidence
from node.app.application import Application
from node.app.evidence import EVIDENCE_PREFIX, evidence_key
from node.chain.errors import StorageMismatchError
from node.chain.schedule import ValidatorSchedule
from node.codec import EVIDENCE_CODEC
from node.errors import DecodeError
from node.ports import Delete, Put, Storage, WriteOp

PENDING_PREFIX: Final = b"evid/"


class EvidenceLookup(Protocol):
    """What judging evidence needs besides the evidence: past validator sets and the
    committed evidence."""

    def members_at(self, height: int) -> ValidatorSet | None:
        """The members that ruled the committed ``height``, if still kept."""
        ...

    def is_committed(self, evidence: DuplicateVoteEvidence) -> bool:
        """True if a block committed evidence of the same step."""
        ...


@dataclass(frozen=True, slots=True)
class ChainEvidenceLookup:
    """The ``EvidenceLookup`` of a node: its validator schedule's history and its
    application's committed evidence."""

    schedule: ValidatorSchedule
    app: Application

    def members_at(self, height: int) -> ValidatorSet | None:
        """The members that ruled the committed ``height``, if still kept."""
        return self.schedule.members_at(height)

    def is_committed(self, evidence: DuplicateVoteEvidence) -> bool:
        """True if a block committed evidence of the same step."""
        return self.app.committed_evidence(evidence) is not None


def evidence_problem(
    evidence: DuplicateVoteEvidence,
    *,
    chain_id: str,
    block_height: int,
    max_age_heights: int,
    lookup: EvidenceLookup,
) -> str | None:
    """Why ``evidence`` may not go into a block at ``block_height``; None if it may."""
    vote = evidence.vote_a
    if vote.chain_id != chain_id:
        return f"it is for chain {vote.chain_id!r}"
    if vote.height >= block_height:
        return f"height {vote.height} is not below the block's {block_height}"
    if block_height - vote.height > max_age_heights:
        return f"height {vote.height} expired ({max_age_heights} heights)"
    if lookup.is_committed(evidence):
        return f"its step at height {vote.height} was committed before"
    members = lookup.members_at(vote.height)
    if members is None:
        return f"the validator set of height {vote.height} is no longer kept"
    try:
        verify_duplicate_vote_evidence(evidence, members, chain_id)
    except InvalidEvidenceError as exc:
        return str(exc)
    return None


def is_expired(evidence: DuplicateVoteEvidence, next_height: int, max_age_heights: int) -> bool:
    """True if no block from ``next_height`` on may carry ``evidence``."""
    return next_height - evidence.vote_a.height > max_age_heights


def pick_evidence(
    pending: Iterable[DuplicateVoteEvidence],
    *,
    max_count: int,
    max_bytes: int,
    admissible: Callable[[DuplicateVoteEvidence], bool],
) -> tuple[list[DuplicateVoteEvidence], int]:
    """The evidence a proposer includes and its encoded size in bytes: admissible objects,
    oldest step first, at most ``max_count`` and ``max_bytes``."""
    chosen: list[DuplicateVoteEvidence] = []
    used_bytes = 0
    for evidence in sorted(pending, key=_age_order):
        if len(chosen) == max_count:
            break
        size = len(EVIDENCE_CODEC.encode(evidence))
        if used_bytes + size <= max_bytes and admissible(evidence):
            chosen.append(evidence)
            used_bytes += size
    return chosen, used_bytes


def _age_order(evidence: DuplicateVoteEvidence) -> tuple[int, int, int, bytes]:
    vote = evidence.vote_a
    return (vote.height, vote.round, int(vote.vote_type), vote.validator)


def _pending_key(evidence: DuplicateVoteEvidence) -> bytes:
    return PENDING_PREFIX + evidence_key(evidence)[len(EVIDENCE_PREFIX) :]


class PendingEvidenceLog:
    """The stored copy of the pending evidence (see the module docstring)."""

    __slots__ = ("_stored",)

    def __init__(self, stored: Iterable[bytes] = ()) -> None:
        """A log whose storage holds the keys ``stored``; use ``load`` on a restart."""
        self._stored = set(stored)

    @classmethod
    def load(
        cls, storage: Storage, into: EvidenceStore
    ) -> tuple[PendingEvidenceLog, list[DuplicateVoteEvidence]]:
        """Put the stored pending evidence back into ``into`` (what it refuses, e.g. being
        full, is dropped at the next commit); returns the log and the evidence read."""
        loaded: list[DuplicateVoteEvidence] = []
        keys: list[bytes] = []
        for key, value in storage.iterate_prefix(PENDING_PREFIX):
            try:
                evidence = EVIDENCE_CODEC.decode(value)
            except DecodeError as exc:
                raise StorageMismatchError(f"corrupt pending evidence: {exc}") from exc
            keys.append(key)
            loaded.append(evidence)
            into.add(evidence)
        return cls(keys), loaded

    def sync_ops(self, pending: Sequence[DuplicateVoteEvidence]) -> list[WriteOp]:
        """The writes that make the stored copy equal ``pending`` (part of a commit batch)."""
        wanted = {_pending_key(evidence): evidence for evidence in pending}
        ops: list[WriteOp] = [Delete(key) for key in sorted(self._stored - wanted.keys())]
        for key, evidence in wanted.items():
            if key not in self._stored:
                ops.append(Put(key, EVIDENCE_CODEC.encode(evidence)))
        self._stored = set(wanted)
        return ops
