"""When the core sends what ``node.chain.catch_up`` plans: stalled rounds and lagging peers.

``CatchUpSender`` owns the catch-up bookkeeping of the current height: the signed messages
held (``node.chain.round_messages.RoundMessages``, shared with the code that adds to it), the
rounds peers were heard in (``PeerRounds``) and the per-tick budget (``TickBudget``). Once per
sync tick (``on_sync_tick``) it refills the budget and, if consensus did not move for a whole
tick, broadcasts the catch-up messages; a peer heard only in rounds below this node's
(``heard``) is answered directly, at most once per tick and within the budget. It reads
consensus and ``HeightState`` and never feeds consensus.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus import ConsensusCore, RoundState, ValidatorSet
from node.chain.catch_up import PeerRounds, TickBudget, catch_up_messages
from node.chain.compact import proposed_block_message
from node.chain.config import NodeConfig
from node.chain.height import HeightState, Outbox
from node.chain.messages import TOPIC_CONSENSUS
from node.chain.proposals import ProposedBlocks
from node.chain.round_messages import RoundMessages
from node.chain.status import NodeStats
from node.codec import encode_message
from node.ports import PeerId
from node.types import Proposal, Vote

__all__ = ["CatchUpSender"]


class CatchUpSender:
    """Holds the height's signed messages and sends catch-up (see the module docstring)."""

    __slots__ = (
        "_blocks",
        "_budget",
        "_consensus",
        "_held",
        "_max_per_peer",
        "_outbox",
        "_peer_rounds",
        "_state",
        "_stats",
        "_tick_position",
    )

    def __init__(
        self,
        *,
        config: NodeConfig,
        state: HeightState,
        consensus: ConsensusCore,
        held: RoundMessages,
        blocks: ProposedBlocks,
        outbox: Outbox,
        stats: NodeStats,
    ) -> None:
        self._state = state
        self._consensus = consensus
        self._held = held
        self._blocks = blocks
        self._outbox = outbox
        self._stats = stats
        self._max_per_peer = config.max_catch_up_messages_per_peer
        self._peer_rounds = PeerRounds(config.max_tracked_peers)
        self._budget = TickBudget(
            config.max_catch_up_messages_per_tick, config.max_catch_up_bytes_per_tick
        )
        self._tick_position: tuple[int, int, int] | None = None

    def hold_height(
        self, height: int, validator_set: ValidatorSet, logged: Sequence[Vote | Proposal] = ()
    ) -> None:
        """Hold the signed messages of ``height`` from now on, starting with ``logged`` (those
        of its durable consensus log, after a restart)."""
        self._held.reset(height, validator_set)
        self._peer_rounds.reset()
        for message in logged:
            self.hold(message, encode_message(message))

    def hold(self, message: Vote | Proposal, data: bytes) -> None:
        """Hold ``message`` (encoded as ``data``) of the current height."""
        if isinstance(message, Vote):
            self._held.add_vote(message, data)
        else:
            self._held.add_proposal(message, data)

    def let_go(self) -> None:
        """After an event: let go of the rounds consensus no longer needs."""
        state = self._consensus.round_state
        if self._state.active and state is not None:
            self._held.follow(state.round, (state.locked_round, state.valid_round))

    def on_sync_tick(self) -> None:
        """A new catch-up budget; if the round did not move for a whole tick, re-send and
        relay what lets peers catch up within the height (``node.chain.catch_up``)."""
        self._budget.refill()
        self._peer_rounds.new_tick()
        state = self._consensus.round_state
        position = (
            self._consensus.height,
            -1 if state is None else state.round,
            -1 if state is None else int(state.step),
        )
        if self._state.active and state is not None and position == self._tick_position:
            self._send(state, None)
        self._tick_position = position

    def heard(self, sender: PeerId, round_: int) -> None:
        """``sender`` spoke in ``round_`` of the current height: if every round it was heard
        in is below this node's, answer it with what lets it catch up (once per sync tick)."""
        state = self._consensus.round_state
        peer_round = self._peer_rounds.note(sender, round_)
        if state is None or peer_round is None or peer_round >= state.round:
            return
        if self._peer_rounds.answer_due(sender):
            self._send(state, sender, peer_round)

    def _send(self, state: RoundState, peer: PeerId | None, peer_round: int = -1) -> None:
        """Broadcast (``peer`` None) or send to ``peer`` the catch-up messages of the height,
        within what is left of this tick's budget."""
        budget = self._budget
        if budget.exhausted():
            return
        plan = catch_up_messages(self._held, state, self._block_message, peer_round=peer_round)
        if peer is not None:
            plan = plan[: self._max_per_peer]
        for data in plan:
            if budget.exhausted():
                break
            if not budget.take(len(data)):
                continue  # too big for what is left (a block): smaller messages may fit
            self._stats.catch_up_messages += 1
            if peer is None:
                self._outbox.broadcast(TOPIC_CONSENSUS, data)
            else:
                self._outbox.send(peer, TOPIC_CONSENSUS, data)

    def _block_message(self, value_id: bytes) -> bytes | None:
        """The message of a held block (compact when it has transactions), if held."""
        return proposed_block_message(self._blocks.get(value_id), self._blocks.encoded(value_id))
