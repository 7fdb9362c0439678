"""Carrying out consensus effects: durable log, signing, proposing, timers, decisions.

``Effects.execute`` takes one item of the work queue (``node.chain.feed``), in queue order:

- ``Persist``: flush the consensus log with the signing record in one synced batch
  (``ConsensusLog.flush``); only a successful flush grants the one-shot permit to sign, so
  a signature is never made before the record that protects it is durable. A ``Permit``
  marker (a replayed sign effect, explained by the durable log) grants it too.
- ``SignAndBroadcastVote`` / ``SignAndBroadcastProposal``: with the permit (taken, whether
  used or not) and a signer, sign, hold the message for catch-up, broadcast it (a proposal
  after its block, a re-proposal followed by the polka of its valid round) and feed it back
  to consensus; without, count the signature withheld.
- ``ScheduleTimeout``: a ``SetTimer``; ``on_timeout`` feeds the timeout back when it fires
  for the current height.
- ``RequestValue``: build a block (``node.chain.proposer``) from the pending evidence and the
  mempool and propose it, if this node may propose at the current height.
- ``Decide``: commit the block (``node.chain.commit``) or, if it is not held, wait for it
  (``HeightState.pending_decide``) and request it by block sync.
- ``ReportEvidence``: an ``EquivocationDetected`` action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from consensus import (
    ConsensusCore,
    Decide,
    Persist,
    ProposalReceived,
    ProposeValue,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
    Step,
    TimeoutElapsed,
    TimeoutKind,
    VoteReceived,
)
from node.chain.actions import EquivocationDetected
from node.chain.commit import Committer
from node.chain.compact import proposed_block_message
from node.chain.events import TimerKey, TimerKind
from node.chain.feed import ConsensusFeed, Permit, Work
from node.chain.height import HeightState, Outbox
from node.chain.judge import BlockJudge
from node.chain.messages import TOPIC_CONSENSUS
from node.chain.proposals import OWN, ProposedBlocks, Verdict
from node.chain.proposer import build_proposal
from node.chain.round_messages import RoundMessages
from node.chain.status import NodeStats
from node.chain.syncing import Syncing
from node.chain.wal import ConsensusLog
from node.codec import block_id, encode_message, tx_hash
from node.mempool import Mempool
from node.ports import Signer
from node.types import VoteType

__all__ = ["TIMEOUT_OF_TIMER", "Effects"]

_TIMER_OF_TIMEOUT: Final = {
    TimeoutKind.PROPOSE: TimerKind.PROPOSE,
    TimeoutKind.PREVOTE: TimerKind.PREVOTE,
    TimeoutKind.PRECOMMIT: TimerKind.PRECOMMIT,
}
TIMEOUT_OF_TIMER: Final = {timer: timeout for timeout, timer in _TIMER_OF_TIMEOUT.items()}
"""The consensus timeout each consensus timer kind stands for."""


class Effects:
    """Carries out the work queue's items (see the module docstring)."""

    __slots__ = (
        "_before_proposal",
        "_blocks",
        "_committer",
        "_consensus",
        "_feed",
        "_held",
        "_judge",
        "_log",
        "_mempool",
        "_outbox",
        "_sign_permit",
        "_signer",
        "_state",
        "_stats",
        "_syncing",
    )

    def __init__(
        self,
        *,
        signer: Signer | None,
        state: HeightState,
        consensus: ConsensusCore,
        log: ConsensusLog,
        feed: ConsensusFeed,
        judge: BlockJudge,
        committer: Committer,
        syncing: Syncing,
        mempool: Mempool,
        blocks: ProposedBlocks,
        held: RoundMessages,
        outbox: Outbox,
        stats: NodeStats,
        before_proposal: Callable[[], None],
    ) -> None:
        """``before_proposal``: runs before this node broadcasts a proposal it signed
        (flushing the transaction gossip)."""
        self._signer = signer
        self._before_proposal = before_proposal
        self._state = state
        self._consensus = consensus
        self._log = log
        self._feed = feed
        self._judge = judge
        self._committer = committer
        self._syncing = syncing
        self._mempool = mempool
        self._blocks = blocks
        self._held = held
        self._outbox = outbox
        self._stats = stats
        self._sign_permit = False

    def execute(self, work: Work) -> None:
        """Carry out one item of the work queue."""
        if isinstance(work, Permit):
            self._sign_permit = True
        elif isinstance(work, Persist):
            self._sign_permit = self._log.flush(work.record)
        elif isinstance(work, SignAndBroadcastVote):
            self._sign_vote(work)
        elif isinstance(work, SignAndBroadcastProposal):
            self._sign_proposal(work)
        elif isinstance(work, ScheduleTimeout):
            key = TimerKey(_TIMER_OF_TIMEOUT[work.kind], work.height, work.round)
            self._outbox.set_timer(key, work.duration_ms)
        elif isinstance(work, RequestValue):
            self._propose(work)
        elif isinstance(work, Decide):
            self._on_decide(work)
        elif isinstance(work, ReportEvidence):
            self._outbox.add(EquivocationDetected(work.evidence))

    def on_timeout(self, key: TimerKey) -> None:
        """A consensus timer (a kind of ``TIMEOUT_OF_TIMER``) fired."""
        state = self._state
        if state.active and key.height == state.height + 1 and key.round >= 0:
            self._feed.feed(TimeoutElapsed(TIMEOUT_OF_TIMER[key.kind], key.height, key.round))

    def _take_permit(self) -> bool:
        permitted, self._sign_permit = self._sign_permit, False
        if not permitted:
            self._stats.signatures_withheld += 1
        return permitted and self._signer is not None

    def _sign_vote(self, effect: SignAndBroadcastVote) -> None:
        if not self._take_permit():
            return
        assert self._signer is not None
        vote = effect.vote.with_signature(self._signer.sign(effect.sign_bytes))
        data = encode_message(vote)
        self._held.add_vote(vote, data)
        self._outbox.broadcast(TOPIC_CONSENSUS, data)
        self._feed.feed(VoteReceived(vote))

    def _sign_proposal(self, effect: SignAndBroadcastProposal) -> None:
        if not self._take_permit():
            return
        assert self._signer is not None
        proposal = effect.proposal.with_signature(self._signer.sign(effect.sign_bytes))
        id_ = proposal.value_id
        # The block goes compact: flush the transactions still queued for gossip first, so
        # peers hold them (per-peer FIFO) and rebuild it without asking.
        self._before_proposal()
        block = proposed_block_message(self._blocks.get(id_), self._blocks.encoded(id_))
        messages = [] if block is None else [block]
        data = encode_message(proposal)
        messages.append(data)  # after its block: per-peer FIFO
        if proposal.valid_round >= 0:
            # The proof of lock of a re-proposal: without the polka of its valid round a
            # validator locked earlier prevotes nil (L28), and those who saw it may be gone.
            messages += self._held.votes_for(
                proposal.valid_round, VoteType.PREVOTE, proposal.value_id
            )
        self._held.add_proposal(proposal, data)
        for message in messages:
            self._outbox.broadcast(TOPIC_CONSENSUS, message)
        self._feed.feed(ProposalReceived(proposal, True))

    def _propose(self, effect: RequestValue) -> None:
        state = self._state
        round_state = self._consensus.round_state
        if (
            self._signer is None
            or not state.active
            or effect.height != state.height + 1
            or round_state is None
            or round_state.step is Step.COMMIT
        ):
            return
        block, data = build_proposal(
            self._judge.tip(),
            proposer=self._signer.public_key,
            last_commit=state.last_commit,
            mempool=self._mempool,
            now_ms=state.now_ms,
            evidence=self._consensus.evidence.pending(),
            admissible=self._judge.evidence_admissible,
        )
        id_ = block_id(block.header)
        blocks = self._blocks
        if not blocks.add(id_, block, data, OWN):
            return  # cannot hold it: no proposal (the propose timeout moves the round on)
        if blocks.verdict(id_) is None and blocks.can_judge():
            blocks.record(id_, Verdict(True, frozenset(tx_hash(raw) for raw in block.txs)))
        self._feed.feed(ProposeValue(effect.height, effect.round, id_))

    def _on_decide(self, decided: Decide) -> None:
        if decided.height <= self._state.height:
            return  # a replay decides a committed height again
        block = self._blocks.get(decided.value_id)
        if block is None:
            self._state.pending_decide = decided  # fetched by block sync (HeightProgress)
            self._syncing.request(force=True)
            return
        self._committer.commit(decided, block)
