"""Catching up within a height: what a node re-sends when stalled and tells a lagging peer.

After a partition, losses, a crash or a pause heal, validators of one height may sit in
different rounds, or keep prevoting nil because the polka that unlocks them was lost. The
timeouts alone never repair that: the messages that would move them are not sent again.
As production Tendermint does (CometBFT's consensus reactor gossiping votes and the
proof-of-lock of a re-proposal, Malachite's vote sync and round certificates), a node whose
round did not move for a whole sync tick broadcasts, most useful first:

1. its own proposal (block first) and votes of the current round;
2. the precommit quorum of the highest round holding one, and — for a value — that round's
   proposal and block, with which any validator decides (L49); for nil, it lets a peer in
   that round time out to the next one (L47, L65);
3. the polka of its valid round (the prevotes for its valid value) with that round's
   proposal and block: a peer locked in an earlier round accepts the value again (L28),
   one still in that round locks on it (L36);
4. its own votes of earlier rounds, newest first.

A peer whose messages show it in a lower round of the height is sent the same list, from
its round on (round skip, L55, needs messages of more than 1/3 of the power from a higher
round: every validator answering with its own votes provides them), at most once per sync
tick. Relayed votes of others are always a *quorum for one value* — never loose votes —
so a relayer cannot carry an equivocator's conflicting votes on: with at most f faulty
power, two quorums for different values of one round cannot exist anywhere. Loose votes
are re-sent by their own signers.

Everything sent this way in one sync tick counts against ``TickBudget``
(``NodeConfig.max_catch_up_messages_per_tick`` and ``max_catch_up_bytes_per_tick``), and
one lagging peer gets at most ``max_catch_up_messages_per_peer`` of it; all of it is drawn
from ``node.chain.round_messages``, itself bounded, in a deterministic order.
"""

from __future__ import annotations

from collections.abc import Callable

from consensus import RoundState
from node.chain.round_messages import RoundMessages
from node.ports import PeerId
from node.types import VoteType

BlockMessage = Callable[[bytes], "bytes | None"]
"""The ``BLOCK`` message of a value id, if the node holds that block."""


def catch_up_messages(
    held: RoundMessages,
    state: RoundState,
    block_message: BlockMessage,
    *,
    peer_round: int = -1,
) -> list[bytes]:
    """The messages to send, in order and without repeats (see the module docstring).

    ``peer_round`` is the highest round a lagging peer was heard in (-1: everyone, when
    this node is stalled): own votes, blocks and proposals of rounds below it are left out,
    and so is a nil quorum of a round below it — the peer is past them. Own votes of its
    round stay: they may be exactly what it waits for.
    """
    plan = _Plan(held, block_message, peer_round)
    plan.own_round(state.round)
    quorum = held.highest_precommit_quorum()
    if quorum is not None:
        round_, value_id = quorum
        if value_id is not None or round_ >= peer_round:
            plan.extend(held.votes_for(round_, VoteType.PRECOMMIT, value_id))
        if value_id is not None:
            plan.proposal(round_, value_id)
    if state.valid_round >= 0 and state.valid_value is not None:
        plan.extend(held.votes_for(state.valid_round, VoteType.PREVOTE, state.valid_value))
        plan.proposal(state.valid_round, state.valid_value)
    plan.extend(held.own_votes(above_round=peer_round - 1))
    return plan.messages


class _Plan:
    """An ordered list of messages without repeats, drawn from ``held``."""

    __slots__ = ("_block_message", "_held", "_peer_round", "_seen", "messages")

    def __init__(self, held: RoundMessages, block_message: BlockMessage, peer_round: int) -> None:
        self._held = held
        self._block_message = block_message
        self._peer_round = peer_round
        self.messages: list[bytes] = []
        self._seen: set[bytes] = set()

    def add(self, data: bytes) -> None:
        if data not in self._seen:
            self._seen.add(data)
            self.messages.append(data)

    def extend(self, items: list[bytes]) -> None:
        for data in items:
            self.add(data)

    def own_round(self, round_: int) -> None:
        """This node's own proposal (block first) and votes of the current round."""
        own = self._held.own_proposal(round_)
        if own is not None:
            self._with_block(own[0], own[1])
        self.extend(self._held.own_votes(above_round=round_ - 1))

    def proposal(self, round_: int, value_id: bytes) -> None:
        """The block and proposal of ``value_id`` in ``round_`` (a peer past it needs
        neither)."""
        if round_ < self._peer_round:
            return
        data = self._held.proposal_for(round_, value_id)
        if data is not None:
            self._with_block(value_id, data)

    def _with_block(self, value_id: bytes, proposal: bytes) -> None:
        block = self._block_message(value_id)
        if block is not None:
            self.add(block)  # before its proposal: per-peer FIFO delivers it first
        self.add(proposal)


class TickBudget:
    """What catch-up traffic may still send in the current sync tick."""

    __slots__ = ("_max_bytes", "_max_messages", "bytes_left", "messages_left")

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self.messages_left = max_messages
        self.bytes_left = max_bytes

    def refill(self) -> None:
        """A new sync tick: the whole budget again."""
        self.messages_left = self._max_messages
        self.bytes_left = self._max_bytes

    def take(self, size_bytes: int) -> bool:
        """Spend one message of ``size_bytes``; False (nothing spent) if it does not fit."""
        if self.messages_left <= 0 or size_bytes > self.bytes_left:
            return False
        self.messages_left -= 1
        self.bytes_left -= size_bytes
        return True

    def exhausted(self) -> bool:
        """True once no further message fits."""
        return self.messages_left <= 0


class PeerRounds:
    """The highest round of the current height each peer was heard in, and which lagging
    peers were answered in the current sync tick. At most ``max_peers`` peers are tracked
    (others are not answered: they still get the stall re-broadcasts)."""

    __slots__ = ("_answered", "_max_peers", "_rounds")

    def __init__(self, max_peers: int) -> None:
        self._max_peers = max_peers
        self._rounds: dict[PeerId, int] = {}
        self._answered: set[PeerId] = set()

    def reset(self) -> None:
        """A new height: nobody was heard in it yet."""
        self._rounds.clear()
        self._answered.clear()

    def new_tick(self) -> None:
        """A new sync tick: every lagging peer may be answered again."""
        self._answered.clear()

    def note(self, peer: PeerId, round_: int) -> int | None:
        """``peer`` sent a message of ``round_``; returns its highest round heard (None if
        the peer is not tracked)."""
        known = self._rounds.get(peer)
        if known is None:
            if len(self._rounds) >= self._max_peers:
                return None
            known = self._rounds[peer] = round_
        elif round_ > known:
            known = self._rounds[peer] = round_
        return known

    def answer_due(self, peer: PeerId) -> bool:
        """True (once per sync tick and peer) when ``peer`` may be answered now."""
        if peer in self._answered:
            return False
        self._answered.add(peer)
        return True
