"""Feeding consensus: every input is logged, every effect queued to be carried out in order.

``ConsensusFeed`` is the one way the core's parts hand ``ConsensusCore`` an input. Each
input is appended to the height's consensus log (``node.chain.wal``) right after consensus
took it, and the effects it returned join the work queue, which the core drains in order
(``next_work``) before it looks for other progress. A peer's input that consensus refuses
becomes ``PeerMisbehaved`` and changes nothing.

The queue also holds ``Permit`` markers: placed before a replayed sign effect after a restart
(its signature is explained by the durable log), a marker grants the one-shot permit to sign
that a ``Persist`` grants otherwise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from consensus import (
    ConsensusCore,
    ConsensusError,
    Effect,
    Input,
    InvalidCertificateError,
    InvalidMessageError,
    InvalidSignatureError,
    NotProposerError,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
    UnknownValidatorError,
    WrongChainError,
)
from node.chain.actions import Offence
from node.chain.height import Outbox
from node.chain.wal import ConsensusLog, encode_record
from node.ports import PeerId

__all__ = ["ConsensusFeed", "Permit", "Work", "offence_of"]


@dataclass(frozen=True, slots=True)
class Permit:
    """Queue marker: the next sign effect is covered by the durable log (a replayed one)."""


Work = Effect | Permit
"""An item of the work queue."""


class ConsensusFeed:
    """Consensus, its log of the current height, and the queue of effects to carry out."""

    __slots__ = ("_consensus", "_log", "_outbox", "_work")

    def __init__(self, consensus: ConsensusCore, log: ConsensusLog, outbox: Outbox) -> None:
        self._consensus = consensus
        self._log = log
        self._outbox = outbox
        self._work: deque[Work] = deque()

    def feed(self, event: Input) -> None:
        """Hand ``event`` to consensus, log it, queue its effects (raises ConsensusError)."""
        effects = self._consensus.handle(event)
        self._log.append(encode_record(event))
        self._work.extend(effects)

    def feed_from(self, sender: PeerId, event: Input) -> bool:
        """``feed`` a peer's input; False (reported) if consensus refused it."""
        try:
            self.feed(event)
        except InvalidMessageError as exc:
            self._outbox.misbehaved(sender, offence_of(exc), str(exc))
            return False
        return True

    def queue_replayed(self, effects: Iterable[Effect]) -> None:
        """Queue the effects of a replayed log, each sign effect after a ``Permit``."""
        for effect in effects:
            if isinstance(effect, SignAndBroadcastVote | SignAndBroadcastProposal):
                self._work.append(Permit())  # the durable log explains these signatures
            self._work.append(effect)

    def next_work(self) -> Work | None:
        """The oldest queued item, taken off the queue; None if the queue is empty."""
        return self._work.popleft() if self._work else None


def offence_of(error: ConsensusError) -> Offence:
    """The offence a peer committed by sending what raised ``error``."""
    if isinstance(error, WrongChainError):
        return Offence.WRONG_CHAIN
    if isinstance(error, UnknownValidatorError):
        return Offence.NOT_A_VALIDATOR
    if isinstance(error, NotProposerError):
        return Offence.NOT_PROPOSER
    if isinstance(error, InvalidSignatureError | InvalidCertificateError):
        return Offence.INVALID_SIGNATURE
    return Offence.MALFORMED
