"""Inputs of :meth:`consensus.core.ConsensusCore.handle`: everything the core learns.

Messages from the network must have had their signatures checked by the shell (see
:mod:`consensus.verification`) before they become inputs; the core checks everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from consensus.timeouts import TimeoutKind
from consensus.types import CommitCertificate, Proposal, ValueId, Vote
from consensus.validator_set import ValidatorSet


@dataclass(frozen=True, slots=True)
class StartHeight:
    """Start deciding ``height`` (greater than any started before) with ``validator_set``.

    Feed it first, after each ``Decide`` (with the next height's set) or to jump ahead after
    block sync. Messages buffered for ``height`` are processed right away.
    """

    height: int
    validator_set: ValidatorSet


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A proposal whose signature the shell verified (this node's own ones included).

    ``value_valid`` is the application's verdict on the proposed value if already known (the
    block arrived and was validated), None if not yet; send it later as ``ValueValidity``.
    """

    proposal: Proposal
    value_valid: bool | None = None


@dataclass(frozen=True, slots=True)
class ValueValidity:
    """The application's verdict (the paper's ``valid(v)``) on value ``value_id`` at ``height``.

    A verdict must be deterministic: sending a different verdict for the same value later is a
    UsageError. Verdicts may arrive before or after the proposal that carries the value.
    """

    height: int
    value_id: ValueId
    valid: bool


@dataclass(frozen=True, slots=True)
class VoteReceived:
    """A vote whose signature the shell verified, including this node's own signed votes."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class ProposeValue:
    """The answer to ``RequestValue(height, round)``: the id of a block the application built
    and considers valid. A late answer (the round moved on) is ignored."""

    height: int
    round: int
    value_id: ValueId


@dataclass(frozen=True, slots=True)
class TimeoutElapsed:
    """A timer scheduled by ``ScheduleTimeout(kind, height, round, ...)`` fired."""

    kind: TimeoutKind
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class CommitCertificateReceived:
    """A commit certificate for the current height (catch-up), signatures verified by the
    shell; the core checks its quorum against the height's validator set and decides."""

    certificate: CommitCertificate


Input: TypeAlias = (
    StartHeight
    | ProposalReceived
    | ValueValidity
    | VoteReceived
    | ProposeValue
    | TimeoutElapsed
    | CommitCertificateReceived
)
