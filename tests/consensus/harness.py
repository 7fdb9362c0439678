"""A deterministic in-test network of consensus cores with a random delivery schedule.

Honest nodes run a :class:`~consensus.ConsensusCore` behind a minimal shell that executes its
effects: it signs, loops its own messages back, broadcasts into a shared pool, answers value
requests, keeps timers in virtual time and, when nothing else is in flight, lets a lagging
node catch up from a commit certificate (block sync). Byzantine validators are driven by an
adversary from :mod:`tests.consensus.byzantine`.

Each step delivers one message picked at random from the pool. During the first
``chaos_deliveries`` steps a pending timer may also fire early (asynchrony: rounds move on
before messages arrive); afterwards delivery is fair: every message is delivered, and a timer
fires only when no message is in flight. Nodes may crash and restart from the durable prefix
of their input log (``crash_probability``).

The run records violations instead of raising, so a test can assert that they are absent
(safety with <= f Byzantine) or present (the checker catches f+1).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from consensus import (
    CommitCertificate,
    CommitCertificateReceived,
    ConsensusCore,
    Decide,
    Effect,
    Input,
    InvalidMessageError,
    Persist,
    ProposalReceived,
    ProposeValue,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    SignAndBroadcastProposal,
    SignAndBroadcastVote,
    StartHeight,
    TimeoutElapsed,
    TimeoutKind,
    ValidatorSet,
    ValueId,
    ValueValidity,
    VoteReceived,
    verify_commit_certificate,
)
from crypto_core.signatures import Ed25519KeyPair
from tests.consensus.byzantine import SplitBrainAdversary
from tests.consensus.factories import CHAIN_ID, make_validators, value_id

MAX_DELIVERIES = 400_000
"""Default number of steps after which a run counts as not live."""


@dataclass
class Node:
    """An honest node: its core and the state its shell keeps."""

    index: int
    key: Ed25519KeyPair
    core: ConsensusCore
    log: list[Input] = field(default_factory=list)
    current_height_start: int = 0
    durable_inputs: int = 0
    decided: dict[int, ValueId] = field(default_factory=dict)
    restarts: int = 0


@dataclass
class Outcome:
    """What a run established."""

    violations: list[str]
    decisions: dict[int, dict[int, ValueId]]
    all_decided: bool
    deliveries: int
    accused: set[bytes]
    byzantine_keys: set[bytes]
    restarts: int


class Simulation:
    """n validators (powers given), some Byzantine, deciding ``heights`` heights."""

    def __init__(
        self,
        powers: Sequence[int],
        byzantine: Sequence[int],
        seed: int,
        heights: int = 2,
        chaos_deliveries: int = 0,
        crash_probability: float = 0.0,
        max_deliveries: int = MAX_DELIVERIES,
    ) -> None:
        self.rng = random.Random(seed)
        self.max_deliveries = max_deliveries
        self.keys, genesis = make_validators(powers)
        self.heights = heights
        self.sets: dict[int, ValidatorSet] = {1: genesis}
        for height in range(2, heights + 1):
            self.sets[height] = self.sets[height - 1].for_next_height()
        self.byzantine = list(byzantine)
        honest = [i for i in range(len(powers)) if i not in byzantine]
        self.nodes = {
            i: Node(i, self.keys[i], ConsensusCore(CHAIN_ID, self.keys[i].public_key))
            for i in honest
        }
        self.adversary = SplitBrainAdversary(self.keys, byzantine, honest, self.sets, self.rng)
        self.chaos_deliveries = chaos_deliveries
        self.crash_probability = crash_probability
        self.pool: list[tuple[int, Input]] = []
        self.timers: list[tuple[int, int, int, TimeoutElapsed]] = []
        self.now_ms = 0
        self._sequence = 0
        self.violations: list[str] = []
        self.certificates: dict[int, CommitCertificate] = {}
        self.first_decision: dict[int, ValueId] = {}
        self.signed: dict[tuple[int, int, int, int], bytes] = {}
        self.accused: set[bytes] = set()
        self.byzantine_keys = {self.keys[i].public_key for i in self.byzantine}
        self.relayed: set[object] = set()

    # --- running -------------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Run until every honest node decided every height, a violation, or the step limit."""
        for node in self.nodes.values():
            self.feed(node, StartHeight(1, self.sets[1]))
        deliveries = 0
        while not self._all_decided() and deliveries < self.max_deliveries:
            if self.violations:
                break
            deliveries += 1
            chaotic = deliveries <= self.chaos_deliveries
            if chaotic and self.timers and self.rng.random() < 0.05:
                self._fire_timer(self.timers.pop(self.rng.randrange(len(self.timers))))
            elif chaotic and self.rng.random() < self.crash_probability:
                self.crash_and_restart(self.rng.choice(list(self.nodes.values())))
            elif self.pool:
                self._deliver_random()
            elif not self._sync_laggard():
                if not self.timers:
                    self.violations.append("deadlock: nothing in flight and no timer")
                    break
                self._fire_timer(heapq.heappop(self.timers))
        byzantine_keys = self.byzantine_keys
        if self.accused - byzantine_keys:
            self.violations.append("an honest validator was accused of equivocation")
        return Outcome(
            violations=self.violations,
            decisions={i: dict(node.decided) for i, node in self.nodes.items()},
            all_decided=self._all_decided(),
            deliveries=deliveries,
            accused=set(self.accused),
            byzantine_keys=byzantine_keys,
            restarts=sum(node.restarts for node in self.nodes.values()),
        )

    def _all_decided(self) -> bool:
        return all(len(node.decided) == self.heights for node in self.nodes.values())

    def _deliver_random(self) -> None:
        index = self.rng.randrange(len(self.pool))
        self.pool[index], self.pool[-1] = self.pool[-1], self.pool[index]
        recipient, event = self.pool.pop()
        self._relay(recipient, event)
        self.feed(self.nodes[recipient], event)

    def _relay(self, recipient: int, event: Input) -> None:
        """Gossip: an honest node forwards a Byzantine message it received to all others.

        The paper's communication model assumes it (a message received by a correct process
        reaches every correct process); without it a targeted liar could stall liveness.
        """
        if isinstance(event, VoteReceived):
            message: object = event.vote
            signer = event.vote.validator
        elif isinstance(event, ProposalReceived):
            message, signer = event.proposal, event.proposal.proposer
        else:
            return
        if signer not in self.byzantine_keys or message in self.relayed:
            return
        self.relayed.add(message)
        self.pool.extend((other, event) for other in self.nodes if other != recipient)

    def _fire_timer(self, timer: tuple[int, int, int, TimeoutElapsed]) -> None:
        fire_at_ms, _, recipient, event = timer
        self.now_ms = max(self.now_ms, fire_at_ms)
        self.feed(self.nodes[recipient], event)

    def _sync_laggard(self) -> bool:
        """Block sync: give one lagging node the certificate of its current height."""
        for node in self.nodes.values():
            height = node.core.height
            if height not in node.decided and height in self.certificates:
                self.feed(node, CommitCertificateReceived(self.certificates[height]))
                return True
        return False

    # --- the shell of an honest node ---------------------------------------------------------

    def feed(self, node: Node, event: Input) -> None:
        """Log ``event`` and hand it to ``node``'s core, then execute the effects."""
        if isinstance(event, StartHeight):
            # Keep the previous height's inputs: they include this height's early messages.
            node.log = node.log[node.current_height_start :]
            node.current_height_start = len(node.log)
            node.log.append(event)
            node.durable_inputs = len(node.log)  # height boundaries are synced (a WAL marker)
        else:
            node.log.append(event)
        try:
            effects = node.core.handle(event)
        except InvalidMessageError as exc:
            self.violations.append(f"node {node.index} rejected a message: {exc!r}")
            return
        self.execute(node, effects)

    def execute(self, node: Node, effects: list[Effect], *, replayed: bool = False) -> None:
        """Execute ``effects`` of ``node`` in order, checking the Persist-before-sign rule
        (replayed effects come without their Persist: it is already durable)."""
        persisted = False
        for effect in effects:
            is_sign = isinstance(effect, SignAndBroadcastVote | SignAndBroadcastProposal)
            if is_sign and not persisted and not replayed:
                self.violations.append(f"node {node.index} signs without a Persist first")
            persisted = isinstance(effect, Persist)
            if isinstance(effect, Persist):
                node.durable_inputs = len(node.log)
            elif isinstance(effect, SignAndBroadcastVote):
                self._sign_vote(node, effect)
            elif isinstance(effect, SignAndBroadcastProposal):
                self._sign_proposal(node, effect)
            elif isinstance(effect, ScheduleTimeout):
                self._schedule(node, effect)
            elif isinstance(effect, RequestValue):
                value = value_id(f"honest/{effect.height}/{effect.round}/{node.index}")
                self.pool.append((node.index, ProposeValue(effect.height, effect.round, value)))
            elif isinstance(effect, Decide):
                self._decide(node, effect)
            elif isinstance(effect, ReportEvidence):
                self.accused.add(effect.evidence.validator)

    def _sign_vote(self, node: Node, effect: SignAndBroadcastVote) -> None:
        vote = effect.vote
        self._check_double_sign(node, vote.height, vote.round, int(vote.vote_type), effect)
        signed = VoteReceived(vote.with_signature(node.key.sign(effect.sign_bytes)))
        self.feed(node, signed)
        self._broadcast(node, signed)

    def _sign_proposal(self, node: Node, effect: SignAndBroadcastProposal) -> None:
        proposal = effect.proposal
        self._check_double_sign(node, proposal.height, proposal.round, 0, effect)
        signed = proposal.with_signature(node.key.sign(effect.sign_bytes))
        self.feed(node, ProposalReceived(signed))
        for other in self.nodes:
            if other == node.index:
                continue
            if self.rng.random() < 0.5:
                self.pool.append((other, ProposalReceived(signed, True)))
            else:  # the block arrives later than the proposal
                self.pool.append((other, ProposalReceived(signed)))
                verdict = ValueValidity(signed.height, signed.value_id, True)
                self.pool.append((other, verdict))
        self.pool.extend(self.adversary.on_honest_proposal(signed))

    def _check_double_sign(
        self,
        node: Node,
        height: int,
        round_: int,
        step: int,
        effect: SignAndBroadcastVote | SignAndBroadcastProposal,
    ) -> None:
        position = (node.index, height, round_, step)
        earlier = self.signed.setdefault(position, effect.sign_bytes)
        if earlier != effect.sign_bytes:
            self.violations.append(f"node {node.index} double-signed at {position[1:]}")

    def _broadcast(self, node: Node, event: Input) -> None:
        self.pool.extend((other, event) for other in self.nodes if other != node.index)

    def _schedule(self, node: Node, effect: ScheduleTimeout) -> None:
        self._sequence += 1
        event = TimeoutElapsed(effect.kind, effect.height, effect.round)
        fire_at_ms = self.now_ms + effect.duration_ms
        heapq.heappush(self.timers, (fire_at_ms, self._sequence, node.index, event))
        if effect.kind is TimeoutKind.PROPOSE:
            self.pool.extend(self.adversary.on_round_started(effect.height, effect.round))

    def _decide(self, node: Node, effect: Decide) -> None:
        height = effect.height
        verify_commit_certificate(effect.certificate, self.sets[height], CHAIN_ID)
        if height in node.decided:  # re-emitted after a replay
            if node.decided[height] != effect.value_id:
                self.violations.append(f"node {node.index} changed its decision at {height}")
            return
        node.decided[height] = effect.value_id
        first = self.first_decision.setdefault(height, effect.value_id)
        if first != effect.value_id:
            self.violations.append(f"agreement broken at height {height}")
        self.certificates.setdefault(height, effect.certificate)
        if height < self.heights:
            self.feed(node, StartHeight(height + 1, self.sets[height + 1]))

    # --- crashes -------------------------------------------------------------------------------

    def crash_and_restart(self, node: Node) -> None:
        """Lose everything not durable, rebuild the core by replay, resume its effects."""
        node.restarts += 1
        node.log = node.log[: node.durable_inputs]
        node.current_height_start = max(
            i for i, event in enumerate(node.log) if isinstance(event, StartHeight)
        )
        self.timers = [t for t in self.timers if t[2] != node.index]
        heapq.heapify(self.timers)
        core, effects = ConsensusCore.replay(CHAIN_ID, node.key.public_key, node.log)
        node.core = core
        self.execute(node, effects, replayed=True)
        # The block store is the truth: a height committed after the last synced input is
        # not decided again; start the next one, as a restarted node's handshake would.
        height = node.core.height
        if height in node.decided and height < self.heights:
            self.feed(node, StartHeight(height + 1, self.sets[height + 1]))
        self._regossip_to(node)

    def _regossip_to(self, node: Node) -> None:
        """Peers re-send a restarted node the messages of its height it may have lost (as
        gossip does for a peer that reconnects and lacks votes)."""
        height = node.core.height
        for peer in self.nodes.values():
            if peer is node:
                continue
            for event in peer.log:
                if _height_of(event) in (height, height + 1):
                    self.pool.append((node.index, event))


def _height_of(event: Input) -> int | None:
    if isinstance(event, VoteReceived):
        return event.vote.height
    if isinstance(event, ProposalReceived):
        return event.proposal.height
    if isinstance(event, ValueValidity):
        return event.height
    return None
