"""Effects returned by :meth:`consensus.core.ConsensusCore.handle`: what the shell must do.

Execute them in list order. Each docstring says what to do and what, if anything, to feed
back. A ``Persist`` always comes right before the sign effect it protects and must be durable
before any later effect is executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from consensus.evidence import DuplicateVoteEvidence
from consensus.sign_guard import SigningRecord
from consensus.timeouts import TimeoutKind
from consensus.types import CommitCertificate, Proposal, ValueId, Vote


@dataclass(frozen=True, slots=True)
class Persist:
    """Make durable (write and fsync) BEFORE executing any later effect of this list.

    What must be durable: the input log — every input handed to ``handle`` since the
    ``StartHeight`` of the *previous* height (inputs of a height can arrive, and wait in the
    core's buffer, while the previous height runs), up to and including the one that returned
    this effect — so that ``ConsensusCore.replay`` rebuilds this exact state after a crash.
    The log may be truncated at each ``StartHeight`` to begin at the one before. Keeping
    ``record`` (the
    last-signed position and sign-bytes) as well lets a core restarted without its log refuse
    conflicting signatures (``ConsensusCore(..., last_signed=record)``). Feed back nothing.
    """

    record: SigningRecord


@dataclass(frozen=True, slots=True)
class SignAndBroadcastVote:
    """Sign ``sign_bytes`` with this node's key, put the signature into ``vote`` (whose
    ``signature`` is empty), broadcast the signed vote to the peers, and feed it back as
    ``VoteReceived`` (this node's vote counts only once it comes back signed)."""

    vote: Vote
    sign_bytes: bytes


@dataclass(frozen=True, slots=True)
class SignAndBroadcastProposal:
    """Sign ``sign_bytes`` with this node's key, put the signature into ``proposal``, broadcast
    it with the block of ``proposal.value_id``, and feed it back as ``ProposalReceived``
    (the core already knows the value is valid)."""

    proposal: Proposal
    sign_bytes: bytes


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Start a timer of ``duration_ms``; when it fires, feed back
    ``TimeoutElapsed(kind, height, round)``. Older timers need not be cancelled: the core
    ignores timeouts of rounds or steps it has left."""

    kind: TimeoutKind
    height: int
    round: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RequestValue:
    """This node proposes in (height, round): have the application build and validate a block,
    then feed back ``ProposeValue(height, round, block id)``. If it cannot, feed back nothing
    (the propose timeout moves the round on)."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class Decide:
    """``value_id`` is decided at ``height`` by the precommits of ``round``; ``certificate``
    proves it to anyone holding the height's validator set. Commit the block (fetch it first
    if it is missing), store the certificate with it, then feed back ``StartHeight`` for the
    next height. After a replay the same Decide can come again: ignore a height already
    committed."""

    height: int
    round: int
    value_id: ValueId
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """A validator equivocated. The evidence is already in ``ConsensusCore.evidence`` for the
    application to include in a block; the shell may also gossip it. Feed back nothing."""

    evidence: DuplicateVoteEvidence


Effect: TypeAlias = (
    Persist
    | SignAndBroadcastVote
    | SignAndBroadcastProposal
    | ScheduleTimeout
    | RequestValue
    | Decide
    | ReportEvidence
)
