"""Byzantine validators: honest node code behind a lying network interface.

A Byzantine validator runs the same node code as everyone (so it stays in step with the
protocol and signs plausible messages), wrapped in a :class:`ByzantineNode` that sits
between that code and the network: it rewrites, splits, drops and invents the node's signed
messages with the node's own key. It works on the wire format alone (``node.codec``
messages), so it wraps any :class:`~netsim.node_api.SimNode`.

Roles (``--byzantine-roles``; a node may combine several):

- ``equivocate``: as proposer, sign two different blocks for one round and show each half of
  the network one of them (a *story*). The twin is the block with only its header's time
  changed (same transactions, same evidence); a peer that lacks some of the twin's
  transactions (blocks travel compact) asks the equivocator by the twin's id and gets them.
- ``double-vote``: vote for side A's value towards side A and for side B's value (or nil, or
  a made-up value) towards side B; one honest witness sees both and must produce evidence.
- ``silent``: send nothing at all.
- ``amnesia``: forget its lock: where its honest code prevotes nil because it is locked on
  another value, prevote for the round's proposal anyway.
- ``spam``: send a stream of invalid messages and transactions (garbage bytes, forged
  signatures, votes for another chain or far-future rounds, blocks that break the rules,
  status lies) to random peers.

The Byzantine validators act as one :class:`Coalition`, the strongest adversary: it splits
the honest validators into two sides once, and when a member equivocates every member votes
both stories at once. With at most f Byzantine validators Tendermint must stay safe; with
f+1 this is the classic attack that breaks agreement, which is how the checkers are shown to
be able to fail.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Final

from consensus.sign_bytes import proposal_sign_bytes_of, vote_sign_bytes_of
from consensus.types import Proposal, ValueId, Vote, VoteType
from crypto_core.signatures import Ed25519KeyPair, sha256
from netsim.errors import ConfigError
from netsim.node_api import Decision, Envelope, NodeEnv, NodeFactory, TimerToken
from netsim.storage import SimStorage
from netsim.topology import Topology
from node.codec import TX_CODEC, block_id, encode_message
from node.errors import DecodeError
from node.ports import Clock, Rng
from node.types import (
    Block,
    BlockHeader,
    BlockTxs,
    BlockTxsRequest,
    CompactBlock,
    Status,
    Transaction,
    TxBatch,
)

WRAPPER_TOKEN_BASE: Final = 2**62
"""Timer tokens whose first item is at least this belong to wrappers, not to node code."""

SPAM_TIMER: Final = (WRAPPER_TOKEN_BASE + 1,)
SPAM_INTERVAL_MS: Final = 100
"""How often a spammer sends one invalid message or transaction batch."""

MAX_STORIES: Final = 256
"""(height, round) stories the coalition remembers (oldest forgotten first)."""

MAX_SEEN_PROPOSALS: Final = 64
"""Proposals an amnesiac remembers, to prevote for them (oldest forgotten first)."""

MAX_TWINS: Final = 64
"""Twin blocks whose transactions an equivocator still hands out (oldest forgotten first)."""

MAX_TWIN_ASKERS: Final = 256
"""(peer, block) requests for a twin's transactions awaiting the node code's answer."""

FAR_ROUND_OFFSET: Final = 1_000
SIDE_A: Final = 0
SIDE_B: Final = 1


class ByzantineRole(StrEnum):
    """What a Byzantine validator does (CLI names)."""

    EQUIVOCATE = "equivocate"
    DOUBLE_VOTE = "double-vote"
    SILENT = "silent"
    AMNESIA = "amnesia"
    SPAM = "spam"


def parse_roles(text: str) -> tuple[ByzantineRole, ...]:
    """``"equivocate,spam"`` -> roles (ConfigError naming the valid ones for a bad name)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    valid = {role.value: role for role in ByzantineRole}
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise ConfigError(f"byzantine roles must be some of {sorted(valid)}, got {names}")
    return tuple(dict.fromkeys(valid[name] for name in names))


class Coalition:
    """The Byzantine validators acting together: the two sides and the stories told."""

    def __init__(
        self, members: Sequence[int], topology: Topology, rng: random.Random, chain_id: str
    ) -> None:
        """Members are node ids of validators; honest validators are split in two sides."""
        self.members = tuple(sorted(members))
        self.chain_id = chain_id
        self._rng = rng
        honest = [v for v in topology.validator_ids() if v not in set(members)]
        rng.shuffle(honest)
        self._side_b = frozenset(honest[: len(honest) // 2])
        self._stories: OrderedDict[tuple[int, int], tuple[ValueId, ValueId]] = OrderedDict()
        self._nodes: dict[int, ByzantineNode] = {}
        self.honest_validators = tuple(sorted(honest))

    def side_of(self, node: int) -> int:
        """SIDE_B for the honest validators of side B, SIDE_A for everyone else."""
        return SIDE_B if node in self._side_b else SIDE_A

    def join(self, node: int, member: ByzantineNode) -> None:
        """Register the (current incarnation of the) wrapper of member ``node``."""
        self._nodes[node] = member

    def story(self, height: int, round_: int) -> tuple[ValueId, ValueId] | None:
        """The two values told for (height, round), if a member equivocated there."""
        return self._stories.get((height, round_))

    def tell(self, height: int, round_: int, value_a: ValueId, value_b: ValueId) -> None:
        """A member proposed ``value_a`` to side A and ``value_b`` to side B: every member
        that double-votes backs both stories right away."""
        if (height, round_) in self._stories:
            return
        self._stories[(height, round_)] = (value_a, value_b)
        while len(self._stories) > MAX_STORIES:
            self._stories.popitem(last=False)
        for node in self.members:
            member = self._nodes.get(node)
            if member is not None:
                member.back_story(height, round_, value_a, value_b)

    def witness(self) -> int | None:
        """An honest validator to show both of a double vote (None if there is none)."""
        if not self.honest_validators:
            return None
        return self.honest_validators[self._rng.randrange(len(self.honest_validators))]


class _LyingEnv:
    """The env the wrapped node code sees: everything passes through, except what it sends."""

    def __init__(self, env: NodeEnv, owner: ByzantineNode) -> None:
        self._env = env
        self._owner = owner

    @property
    def index(self) -> int:
        return self._env.index

    @property
    def topology(self) -> Topology:
        return self._env.topology

    @property
    def clock(self) -> Clock:
        return self._env.clock

    @property
    def storage(self) -> SimStorage:
        return self._env.storage

    @property
    def rng(self) -> Rng:
        return self._env.rng

    def send(self, dst: int, envelope: Envelope) -> None:
        self._owner.outbound((dst,), envelope)

    def multicast(self, dsts: Sequence[int], envelope: Envelope) -> None:
        self._owner.outbound(tuple(dsts), envelope)

    def set_timer(self, delay_ms: int, token: TimerToken) -> int:
        if token and token[0] >= WRAPPER_TOKEN_BASE:
            raise ValueError("timer tokens from 2^62 on are reserved for wrappers")
        return self._env.set_timer(delay_ms, token)

    def cancel_timer(self, timer_id: int) -> None:
        self._env.cancel_timer(timer_id)

    def decided(self, decision: Decision) -> None:
        self._env.decided(decision)

    def accused(self, validator: bytes) -> None:
        self._env.accused(validator)

    def rejected(self, sender: int, reason: str) -> None:
        self._env.rejected(sender, reason)


class ByzantineNode:
    """A validator's node code behind the lies of its ``roles`` (see the module docstring)."""

    def __init__(
        self,
        env: NodeEnv,
        inner: NodeFactory,
        *,
        roles: Sequence[ByzantineRole],
        key: Ed25519KeyPair,
        coalition: Coalition,
    ) -> None:
        """Wrap the node ``inner`` builds; ``key`` is the validator's signing key."""
        self._env = env
        self._roles = frozenset(roles)
        self._key = key
        self._coalition = coalition
        self._held_blocks: dict[bytes, tuple[tuple[int, ...], Envelope, Block | CompactBlock]] = {}
        self._seen_proposals: OrderedDict[tuple[int, int], ValueId] = OrderedDict()
        self._twins: OrderedDict[ValueId, ValueId] = OrderedDict()  # twin id -> original id
        self._twin_askers: OrderedDict[tuple[int, ValueId], ValueId] = OrderedDict()
        self._height = 1
        self.messages_forged = 0
        coalition.join(env.index, self)
        self._inner = inner(_LyingEnv(env, self))

    # --- SimNode ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the node code (and the spam timer)."""
        self._inner.start()
        self._flush()
        if ByzantineRole.SPAM in self._roles:
            self._env.set_timer(SPAM_INTERVAL_MS, SPAM_TIMER)

    def on_message(self, sender: int, envelope: Envelope) -> None:
        """Note proposals and heights, then let the node code handle the message."""
        self._observe(envelope)
        self._inner.on_message(sender, self._as_original(sender, envelope))
        self._flush()

    def on_timer(self, token: TimerToken) -> None:
        """Spam on the wrapper's timer; pass every other timer to the node code."""
        if token == SPAM_TIMER:
            self._spam()
            self._env.set_timer(SPAM_INTERVAL_MS, SPAM_TIMER)
            return
        self._inner.on_timer(token)
        self._flush()

    def submit_tx(self, tx: bytes) -> str | None:
        """Transactions go to the node code unchanged (and so does its answer)."""
        refusal = self._inner.submit_tx(tx)
        self._flush()
        return refusal

    # --- what the node code sends ---------------------------------------------------------------

    def outbound(self, dsts: tuple[int, ...], envelope: Envelope) -> None:
        """Rewrite, split, hold or drop a message the node code sends to ``dsts``."""
        roles = self._roles
        if ByzantineRole.SILENT in roles:
            return
        try:
            message = envelope.decoded()
        except DecodeError:
            message = None
        own = self._key.public_key
        if isinstance(message, Vote) and message.validator == own:
            self._vote_out(dsts, message, envelope)
        elif (
            isinstance(message, Block | CompactBlock)  # a block with txs travels compact
            and ByzantineRole.EQUIVOCATE in roles
            and message.header.proposer == own
        ):
            self._held_blocks[block_id(message.header)] = (dsts, envelope, message)
        elif (
            isinstance(message, Proposal)
            and message.proposer == own
            and message.value_id in self._held_blocks
        ):
            self._equivocate(dsts, message, envelope)
        elif isinstance(message, BlockTxs) and len(dsts) == 1:
            self._env.multicast(dsts, self._as_twin(dsts[0], message, envelope))
        else:
            self._env.multicast(dsts, envelope)

    def _flush(self) -> None:
        """Blocks held for a proposal that did not come go out unchanged."""
        held, self._held_blocks = self._held_blocks, {}
        for dsts, envelope, _ in held.values():
            self._env.multicast(dsts, envelope)

    def _vote_out(self, dsts: tuple[int, ...], vote: Vote, envelope: Envelope) -> None:
        roles = self._roles
        if ByzantineRole.AMNESIA in roles and vote.vote_type is VoteType.PREVOTE:
            seen = self._seen_proposals.get((vote.height, vote.round))
            if vote.value_id is None and seen is not None:  # locked elsewhere: forget it
                vote = self._signed_vote(vote, seen)
                envelope = Envelope(encode_message(vote))
        if ByzantineRole.DOUBLE_VOTE not in roles:
            self._env.multicast(dsts, envelope)
            return
        story = self._coalition.story(vote.height, vote.round)
        value_a: ValueId | None
        value_b: ValueId | None
        if story is not None:
            value_a, value_b = story
        else:
            value_a = vote.value_id
            value_b = None if value_a is not None else _made_up_value(vote.height, vote.round)
        to_a = self._vote_envelope(vote, value_a)
        to_b = self._vote_envelope(vote, value_b)
        self._split(dsts, to_a, to_b)
        witness = self._coalition.witness() if story is None else None
        if witness is not None and witness in dsts:  # one honest node sees both votes
            other = to_b if self._coalition.side_of(witness) == SIDE_A else to_a
            self._env.send(witness, other)

    def _equivocate(self, dsts: tuple[int, ...], proposal: Proposal, envelope: Envelope) -> None:
        """Send block and proposal A to side A and a twin B (one ms later) to side B.

        The twin is the block with only its header's time changed: its transactions and
        evidence (and the header's evidence root) are the original's, so the twin is as
        valid as the block and the adversary's equivocation carries everything the honest
        block would have.
        """
        block_dsts, block_envelope, block = self._held_blocks.pop(proposal.value_id)
        header_b = replace(block.header, time_ms=block.header.time_ms + 1)
        twin = replace(block, header=header_b)
        twin_id = block_id(header_b)
        twin_proposal = replace(proposal, value_id=twin_id, signature=b"")
        twin_proposal = twin_proposal.with_signature(
            self._key.sign(proposal_sign_bytes_of(twin_proposal))
        )
        self.messages_forged += 1
        self._twins[twin_id] = proposal.value_id
        while len(self._twins) > MAX_TWINS:
            self._twins.popitem(last=False)
        self._split(block_dsts, block_envelope, Envelope(encode_message(twin)))
        self._split(dsts, envelope, Envelope(encode_message(twin_proposal)))
        self._coalition.tell(proposal.height, proposal.round, proposal.value_id, twin_id)

    def back_story(self, height: int, round_: int, value_a: ValueId, value_b: ValueId) -> None:
        """A member equivocated: prevote and precommit each side's value towards that side."""
        if ByzantineRole.DOUBLE_VOTE not in self._roles or ByzantineRole.SILENT in self._roles:
            return
        me = self._env.index
        dsts = tuple(v for v in self._env.topology.validator_ids() if v != me)
        for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            template = Vote(
                self._coalition.chain_id, height, round_, vote_type, None, self._key.public_key, b""
            )
            self._split(
                dsts,
                self._vote_envelope(template, value_a),
                self._vote_envelope(template, value_b),
            )

    def _split(self, dsts: tuple[int, ...], to_a: Envelope, to_b: Envelope) -> None:
        side_of = self._coalition.side_of
        side_a = [d for d in dsts if side_of(d) == SIDE_A]
        side_b = [d for d in dsts if side_of(d) == SIDE_B]
        if side_a:
            self._env.multicast(side_a, to_a)
        if side_b:
            self._env.multicast(side_b, to_b)

    def _vote_envelope(self, vote: Vote, value: ValueId | None) -> Envelope:
        if value == vote.value_id and vote.signature:
            return Envelope(encode_message(vote))
        self.messages_forged += 1
        return Envelope(encode_message(self._signed_vote(vote, value)))

    def _signed_vote(self, vote: Vote, value: ValueId | None) -> Vote:
        unsigned = replace(vote, value_id=value, signature=b"")
        return unsigned.with_signature(self._key.sign(vote_sign_bytes_of(unsigned)))

    # --- the twin's transactions -----------------------------------------------------------------

    def _as_original(self, sender: int, envelope: Envelope) -> Envelope:
        """A peer of side B that lacks some of the twin's transactions (the twin travels
        compact) asks for them by the twin's id: ask the node code for the original's, the
        same transactions, and note who asked (its answer goes back under the twin's id)."""
        try:
            message = envelope.decoded()
        except DecodeError:
            return envelope
        if not isinstance(message, BlockTxsRequest):
            return envelope
        original = self._twins.get(message.block_id)
        if original is None:  # asked by its own id: answered under it
            self._twin_askers.pop((sender, message.block_id), None)
            return envelope
        self._twin_askers[(sender, original)] = message.block_id
        while len(self._twin_askers) > MAX_TWIN_ASKERS:
            self._twin_askers.popitem(last=False)
        return Envelope(encode_message(replace(message, block_id=original)))

    def _as_twin(self, dst: int, answer: BlockTxs, envelope: Envelope) -> Envelope:
        """The node code's transactions of an original, for a peer that asked for its twin:
        sent under the twin's id."""
        twin_id = self._twin_askers.get((dst, answer.block_id))
        if twin_id is None:
            return envelope
        return Envelope(encode_message(replace(answer, block_id=twin_id)))

    # --- what the node receives ------------------------------------------------------------------

    def _observe(self, envelope: Envelope) -> None:
        try:
            message = envelope.decoded()
        except DecodeError:
            return
        if isinstance(message, Proposal):
            self._seen_proposals[(message.height, message.round)] = message.value_id
            while len(self._seen_proposals) > MAX_SEEN_PROPOSALS:
                self._seen_proposals.popitem(last=False)
            self._height = max(self._height, message.height)
        elif isinstance(message, Vote):
            self._height = max(self._height, message.height)

    # --- spam ------------------------------------------------------------------------------------

    def _spam(self) -> None:
        env = self._env
        nodes = env.topology.nodes
        if nodes < 2:
            return
        target = env.rng.randint(0, nodes - 2)
        target += 1 if target >= env.index else 0
        env.send(target, Envelope(self._junk(env.rng.randint(0, 7))))

    def _junk(self, choice: int) -> bytes:
        """One invalid message of eight sorts (see the module docstring)."""
        rng, height, chain = self._env.rng, self._height, self._coalition.chain_id
        own = self._key.public_key
        if choice == 0:
            return rng.random_bytes(rng.randint(1, 600))
        if choice == 1:  # a forged signature
            vote = Vote(chain, height, 0, VoteType.PREVOTE, None, own, rng.random_bytes(64))
            return encode_message(vote)
        if choice == 2:  # a real signature, for a round far ahead
            far_round = FAR_ROUND_OFFSET + rng.randint(0, 99)
            far = Vote(chain, height, far_round, VoteType.PREVOTE, None, own, b"")
            return encode_message(self._signed_vote(far, None))
        if choice == 3:  # a real signature, for another chain
            other = Vote("netsim-evil", height, 0, VoteType.PRECOMMIT, None, own, b"")
            return encode_message(self._signed_vote(other, None))
        if choice == 4:
            return encode_message(TxBatch(tuple(self._bad_tx() for _ in range(rng.randint(1, 4)))))
        if choice == 5:
            return encode_message(self._bad_block(height))
        if choice == 6:
            return bytes((0x92, 0x63, 0x90))  # [99, []]: a tag no message has
        return encode_message(Status(height + 1_000_000, rng.random_bytes(32)))

    def _bad_tx(self) -> bytes:
        rng = self._env.rng
        tx = Transaction(
            self._coalition.chain_id,
            rng.random_bytes(32),
            rng.randint(0, 1_000),
            "kv.set",
            rng.random_bytes(rng.randint(0, 64)),
            0,
            rng.random_bytes(64),
        )
        return TX_CODEC.encode(tx)

    def _bad_block(self, height: int) -> Block:
        rng = self._env.rng
        header = BlockHeader(
            chain_id=self._coalition.chain_id,
            height=height,
            time_ms=self._env.clock.now_ms(),
            previous_block_id=rng.random_bytes(32),
            tx_root=rng.random_bytes(32),
            app_state_root=rng.random_bytes(32),
            validator_set_hash=rng.random_bytes(32),
            proposer=self._key.public_key,
            last_commit=None,
        )
        return Block(header, (rng.random_bytes(16),))


def _made_up_value(height: int, round_: int) -> ValueId:
    return sha256(b"netsim/double-vote/%d/%d" % (height, round_))
