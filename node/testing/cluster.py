"""A deterministic multi-node driver: N ``NodeCore`` s in virtual time, no I/O, no sleeping.

``Cluster`` runs validators (and optionally observers), each with its own ``MemoryStorage``,
wired by direct routing: a ``Broadcast`` or ``SendTo`` becomes a delivery event
``latency_ms`` (plus seeded jitter) later; ``SetTimer`` a timer event (a later ``SetTimer``
with the same key replaces it); ``RequestBlocks`` is answered from the peer's
``blocks_for_sync`` one round trip later, as the runtime's request/response protocol would.
One heap of ``(time_ms, sequence, event)`` orders everything, so a run is a function of the
seed. A seeded workload of signed ``kv.set`` transactions from genesis accounts keeps the
mempools busy.

Checks on every run: agreement (one block id and one app state root per height across all
nodes), no double signing by any honest node's key (across crashes too; a node relaying
others' signed votes signs nothing), no ``PeerMisbehaved`` among honest nodes. Violations are
collected in ``Cluster.violations``.

Typical use (a test, a benchmark, the simulator building on it)::

    cluster = Cluster(validators=4, seed=7, txs_per_second=50)
    cluster.run_until(height=100)
    assert cluster.violations == []
    assert len({tuple(cluster.block_ids(n)) for n in cluster.names}) == 1

Faults and probes:

- ``crash(name)`` loses the node's unsynced writes (``MemoryStorage.crash``), its timers and
  the messages in flight to it; ``restart(name)`` reopens it with ``NodeCore.open`` from that
  storage; ``arm_crash(name, before_actions=...)`` crashes it right after its next event,
  with or without carrying out the actions that event returned;
- ``isolate(name)`` / ``heal()`` cut and restore a node's links;
- ``lose(rule)`` / ``stop_losing()``: every message a rule matches (by sender, receiver and
  decoded message) is lost until told to stop; ``round_loss(height, round_, ...)`` builds
  the rule that loses a round's votes (of one type, or all) and proposals on chosen links;
- ``outbound_hooks[name]`` rewrites a node's actions before they are carried out (a
  Byzantine role: drop, alter, re-sign); ``equivocate(name)`` installs one that double-votes,
  and marks the node Byzantine (``byzantine``: exempt from the no-double-signing check);
- ``step()`` processes one event and names the node that handled it; ``run_for`` /
  ``run_while`` / ``run_until`` run in virtual time, raising ``ClusterStalled`` past a budget.

The per-node record (``block_ids``, ``app_roots``, ``committed_txs``) comes from the
``BlockCommitted`` actions, completed from storage after a restart for heights whose
announcement a crash swallowed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Final

from consensus.sign_bytes import vote_sign_bytes_of
from crypto_core.signatures import sha256
from node.app.accounts import GenesisAccount, Role
from node.app.kv import set_payload
from node.app.module import JsonValue
from node.chain.actions import (
    Action,
    BlockCommitted,
    Broadcast,
    EquivocationDetected,
    PeerMisbehaved,
    RequestBlocks,
    SendTo,
    SetTimer,
    TxResult,
)
from node.chain.app_state import encode_app_states
from node.chain.application import AppFactory, default_application
from node.chain.config import NodeConfig
from node.chain.events import (
    BlocksReceived,
    Event,
    MessageReceived,
    Start,
    TimerFired,
    TimerKey,
    TxSubmitted,
)
from node.chain.genesis import ConsensusParams, Genesis
from node.chain.messages import TOPIC_CONSENSUS
from node.codec import Message, block_id, decode_message, encode_message
from node.core import NodeCore
from node.errors import DecodeError
from node.ports import Signer
from node.testing.factories import TxFactory, key_pair, make_validators
from node.testing.rng import SeededRng
from node.testing.signing import SigningLedger
from node.testing.storage import MemoryStorage
from node.types import Proposal, Validator, Vote, VoteType

DEFAULT_GENESIS_TIME_MS: Final = 1_700_000_000_000
DEFAULT_LATENCY_MS: Final = 5
WORKLOAD_TICK_MS: Final = 100
"""Virtual time between two workload submissions."""
MAX_RUN_EVENTS: Final = 50_000_000
"""Events one ``run_until`` may process before it gives up (a livelock guard)."""
SYNC_RESPONSE_BYTES: Final = 8 * 1024 * 1024
"""What a peer answers one block request with, at most."""


LossRule = Callable[[str, str, Message], bool]
"""Loses a message: ``rule(sender, receiver, message)`` True drops it."""


def round_loss(
    height: int,
    round_: int,
    *,
    senders: Sequence[str] | None = None,
    receivers: Sequence[str] | None = None,
    vote_type: VoteType | None = None,
) -> LossRule:
    """The rule that loses the votes and proposals of ``round_`` at ``height`` (only its
    votes of ``vote_type``, if given) sent by one of ``senders`` (default: anyone) to one of
    ``receivers`` (default: anyone)."""

    def rule(sender: str, receiver: str, message: Message) -> bool:
        if isinstance(message, Vote):
            if vote_type is not None and message.vote_type is not vote_type:
                return False
        elif not isinstance(message, Proposal) or vote_type is not None:
            return False
        return (
            (message.height, message.round) == (height, round_)
            and (senders is None or sender in senders)
            and (receivers is None or receiver in receivers)
        )

    return rule


class ClusterStalled(AssertionError):
    """The cluster did not reach its goal within the time or event budget."""


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """What a node committed at one height."""

    block_id: bytes
    app_state_root: bytes
    time_ms: int
    num_txs: int


@dataclass
class ClusterNode:
    """One node of the cluster and what the driver observed of it."""

    name: str
    signer: Signer | None
    storage: MemoryStorage
    core: NodeCore | None
    epoch: int = 0
    """Bumped by a crash: events of an older epoch are dropped."""
    commits: dict[int, CommitRecord] = field(default_factory=dict)
    misbehaviours: list[PeerMisbehaved] = field(default_factory=list)
    restarts: int = 0

    @property
    def alive(self) -> bool:
        """True unless crashed and not restarted."""
        return self.core is not None


@dataclass(frozen=True, slots=True)
class _Deliver:
    receiver: str
    epoch: int
    sender: str
    topic: str
    data: bytes


@dataclass(frozen=True, slots=True)
class _Timer:
    node: str
    epoch: int
    key: TimerKey
    token: int


@dataclass(frozen=True, slots=True)
class _SyncAnswer:
    requester: str
    epoch: int
    responder: str
    request: RequestBlocks


@dataclass(frozen=True, slots=True)
class _Workload:
    pass


_Item = _Deliver | _Timer | _SyncAnswer | _Workload


def _genesis(
    validators: tuple[Validator, ...],
    *,
    accounts: Sequence[GenesisAccount] | None,
    client_keys: Sequence[Signer],
    genesis_time_ms: int,
    params: ConsensusParams | None,
    app_state: Mapping[str, JsonValue] | None,
) -> Genesis:
    """The genesis of a cluster (chain id ``cluster-chain``); ``accounts`` None: the
    client keys, as institutions."""
    if accounts is None:
        accounts = [GenesisAccount(k.public_key, Role.INSTITUTION) for k in client_keys]
    return Genesis(
        chain_id="cluster-chain",
        genesis_time_ms=genesis_time_ms,
        validators=validators,
        accounts=tuple(accounts),
        params=params if params is not None else ConsensusParams(),
        app_state=encode_app_states(app_state or {}),
    )


class Cluster:
    """N nodes in virtual time; see the module docstring."""

    def __init__(
        self,
        validators: int = 4,
        observers: int = 0,
        *,
        seed: int | str = 0,
        params: ConsensusParams | None = None,
        config: NodeConfig | None = None,
        latency_ms: int = DEFAULT_LATENCY_MS,
        jitter_ms: int = 0,
        clients: int = 8,
        txs_per_second: int = 0,
        genesis_time_ms: int = DEFAULT_GENESIS_TIME_MS,
        record_votes: bool = False,
        app_factory: AppFactory = default_application,
        app_state: Mapping[str, JsonValue] | None = None,
        genesis_accounts: Sequence[GenesisAccount] | None = None,
    ) -> None:
        """``app_state`` (module -> JSON value) and ``genesis_accounts`` go into the genesis
        (default: no module state; the ``clients`` keys as institutions), for a chain of
        other modules (``app_factory``). ``InvalidGenesisError`` for a bad state."""
        if validators < 1 or observers < 0 or latency_ms < 0 or jitter_ms < 0:
            raise ValueError("need >= 1 validator and non-negative counts and latencies")
        self.rng = SeededRng(seed)
        self._latency_rng = self.rng.fork("latency")
        self._workload_rng = self.rng.fork("workload")
        fixture = make_validators(validators)
        self.client_keys = [key_pair(f"client-{i}") for i in range(clients)]
        self.genesis = _genesis(
            fixture.validators,
            accounts=genesis_accounts,
            client_keys=self.client_keys,
            genesis_time_ms=genesis_time_ms,
            params=params,
            app_state=app_state,
        )
        self.config = config if config is not None else NodeConfig()
        self.app_factory = app_factory
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.txs_per_second = txs_per_second
        self.now_ms = genesis_time_ms
        self.nodes: dict[str, ClusterNode] = {}
        signers: list[Signer | None] = [*fixture.keys, *([None] * observers)]
        for index, signer in enumerate(signers):
            name = f"v{index}" if index < validators else f"o{index - validators}"
            self.nodes[name] = ClusterNode(name, signer, MemoryStorage(), None)
        self.violations: list[str] = []
        self.equivocations: list[EquivocationDetected] = []
        self._heap: list[tuple[int, int, _Item]] = []
        self._sequence = 0
        self._timer_tokens: dict[tuple[str, TimerKey], int] = {}
        self._init_probes(record_votes)
        self._canonical: dict[int, CommitRecord] = {}
        self._txs = TxFactory(self.genesis.chain_id)
        self._client_cursor = 0
        self.txs_submitted = 0
        self.txs_accepted = 0
        self.events_processed = 0
        for name in self.nodes:
            self._boot(name)
        if txs_per_second > 0:
            self._push(self.now_ms + WORKLOAD_TICK_MS, _Workload())

    def _init_probes(self, record_votes: bool) -> None:
        """The fault and observation state of a new cluster (no faults, nothing seen)."""
        self._isolated: set[str] = set()
        self._loss_rules: list[LossRule] = []
        self._armed: dict[str, bool] = {}
        self.outbound_hooks: dict[str, Callable[[Action], list[Action]]] = {}
        """Per node: rewrites each action before it is carried out (a Byzantine role)."""
        self.byzantine: set[str] = set()
        """Nodes playing a Byzantine role: their double signing is the point, not a bug."""
        self.votes: list[Vote] = []
        """Every vote broadcast, in order (kept only with ``record_votes``)."""
        self._record_votes = record_votes
        self._ledger = SigningLedger()

    # -- inspection -----------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Every node's name (validators ``v<i>``, observers ``o<i>``)."""
        return list(self.nodes)

    def core(self, name: str) -> NodeCore:
        """The running core of ``name`` (``RuntimeError`` if crashed)."""
        core = self.nodes[name].core
        if core is None:
            raise RuntimeError(f"{name} is crashed")
        return core

    def height(self, name: str) -> int:
        """The last height ``name`` committed (as the driver saw it)."""
        return max(self.nodes[name].commits, default=0)

    def block_ids(self, name: str) -> list[bytes]:
        """The ids of the blocks ``name`` committed, in height order."""
        commits = self.nodes[name].commits
        return [commits[h].block_id for h in sorted(commits)]

    def app_roots(self, name: str) -> list[bytes]:
        """The app state roots after each block ``name`` committed, in height order."""
        commits = self.nodes[name].commits
        return [commits[h].app_state_root for h in sorted(commits)]

    def committed_txs(self, name: str) -> int:
        """Transactions in the blocks ``name`` committed."""
        return sum(record.num_txs for record in self.nodes[name].commits.values())

    # -- running --------------------------------------------------------------------------------

    def run_until(
        self,
        height: int,
        *,
        nodes: Sequence[str] | None = None,
        max_virtual_ms: int = 3_600_000,
    ) -> None:
        """Process events until every live node of ``nodes`` (default all) committed
        ``height``; ``ClusterStalled`` if ``max_virtual_ms`` of virtual time pass first."""
        watched = list(nodes) if nodes is not None else self.names

        def reached() -> bool:
            return all(self.height(n) >= height for n in watched if self.nodes[n].alive)

        self.run_while(lambda: not reached(), max_virtual_ms=max_virtual_ms)

    def run_while(self, condition: Callable[[], bool], *, max_virtual_ms: int) -> None:
        """Process events while ``condition()`` holds (``ClusterStalled`` past the budget)."""
        deadline = self.now_ms + max_virtual_ms
        for _ in range(MAX_RUN_EVENTS):
            if not condition():
                return
            if not self._heap or self._heap[0][0] > deadline:
                raise ClusterStalled(f"stalled at {self.now_ms} ms: {self._heights_text()}")
            self.step()
        raise ClusterStalled(f"more than {MAX_RUN_EVENTS} events: {self._heights_text()}")

    def run_for(self, virtual_ms: int) -> None:
        """Process every event of the next ``virtual_ms`` milliseconds."""
        until = self.now_ms + virtual_ms
        while self._heap and self._heap[0][0] <= until:
            self.step()
        self.now_ms = max(self.now_ms, until)

    def step(self) -> str | None:
        """Process the next event; returns the name of the node that handled it, if any."""
        time_ms, _, item = heapq.heappop(self._heap)
        self.now_ms = max(self.now_ms, time_ms)
        self.events_processed += 1
        if isinstance(item, _Deliver):
            return self._deliver(item)
        if isinstance(item, _Timer):
            return self._fire(item)
        if isinstance(item, _SyncAnswer):
            return self._answer(item)
        self._run_workload()
        return None

    # -- faults ---------------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """Power-cut ``name``: unsynced writes, timers and messages in flight to it are lost."""
        node = self.nodes[name]
        node.core = None
        node.epoch += 1
        node.storage.crash()

    def restart(self, name: str) -> None:
        """Reopen a crashed node from its storage and start it."""
        if self.nodes[name].alive:
            raise RuntimeError(f"{name} is running")
        self.nodes[name].restarts += 1
        self._boot(name)

    def arm_crash(self, name: str, *, before_actions: bool) -> None:
        """Crash ``name`` right after it handles its next event: ``before_actions`` loses the
        actions that event returned (a power cut inside ``handle``, after its synced
        writes), otherwise they are carried out first."""
        self._armed[name] = before_actions

    def isolate(self, name: str) -> None:
        """Drop every message to or from ``name`` until ``heal``."""
        self._isolated.add(name)

    def heal(self) -> None:
        """Reconnect every isolated node."""
        self._isolated.clear()

    def lose(self, rule: LossRule) -> None:
        """Lose every message ``rule`` matches from now on (in flight ones included)."""
        self._loss_rules.append(rule)

    def stop_losing(self) -> None:
        """Forget every loss rule: links deliver everything again."""
        self._loss_rules.clear()

    def equivocate(self, name: str) -> None:
        """Make validator ``name`` Byzantine: next to every vote it broadcasts it signs and
        broadcasts a conflicting vote for the same step (nil against a value, a made-up value
        against nil), so every node that hears both holds evidence against it."""
        signer = self.nodes[name].signer
        if signer is None:
            raise ValueError(f"{name} is an observer: it has no key to equivocate with")
        self.byzantine.add(name)
        self.outbound_hooks[name] = partial(_with_conflicting_vote, signer)

    def submit(self, name: str, raw: bytes) -> TxResult | None:
        """Submit an encoded transaction to ``name`` now; its ``TxResult`` (None if down)."""
        result: TxResult | None = None
        for action in self._handle(name, TxSubmitted(raw, self.now_ms)):
            if isinstance(action, TxResult):
                result = action
        return result

    def handle(self, name: str, event: Event) -> list[Action]:
        """Hand ``event`` to ``name`` and carry out its actions (for tests that inject)."""
        return self._handle(name, event)

    # -- internals ------------------------------------------------------------------------------

    def _boot(self, name: str) -> None:
        node = self.nodes[name]
        node.core = NodeCore.open(
            node.storage, node.signer, self.genesis, self.config, app_factory=self.app_factory
        )
        self._backfill(node, node.core)
        self._handle(name, Start(self.now_ms))

    def _handle(self, name: str, event: Event) -> list[Action]:
        node = self.nodes[name]
        if node.core is None:
            return []
        actions = node.core.handle(event)
        hook = self.outbound_hooks.get(name)
        if hook is not None:
            actions = [changed for action in actions for changed in hook(action)]
        before_actions = self._armed.pop(name, None)
        if before_actions is True:
            self.crash(name)
            return []
        for action in actions:
            self._carry_out(node, action)
        if before_actions is False:
            self.crash(name)
        return actions

    def _carry_out(self, node: ClusterNode, action: Action) -> None:
        if isinstance(action, Broadcast):
            self._check_signature(node, action.topic, action.data, broadcast=True)
            for receiver in self.nodes:
                if receiver != node.name:
                    self._send(node.name, receiver, action.topic, action.data)
        elif isinstance(action, SendTo):
            # catch-up answers go to one peer: a signature there counts as much
            self._check_signature(node, action.topic, action.data, broadcast=False)
            self._send(node.name, action.peer, action.topic, action.data)
        elif isinstance(action, SetTimer):
            self._set_timer(node, action)
        elif isinstance(action, RequestBlocks):
            if action.peer in self.nodes and not self._cut(node.name, action.peer):
                answer = _SyncAnswer(node.name, node.epoch, action.peer, action)
                self._push(self.now_ms + 2 * self._delay_ms(), answer)
        elif isinstance(action, BlockCommitted):
            self._record_commit(node, action)
        elif isinstance(action, PeerMisbehaved):
            node.misbehaviours.append(action)
            self.violations.append(f"{node.name}: {action.peer} misbehaved: {action.reason}")
        elif isinstance(action, EquivocationDetected):
            self.equivocations.append(action)

    def _send(self, sender: str, receiver: str, topic: str, data: bytes) -> None:
        if receiver not in self.nodes or self._cut(sender, receiver):
            return
        epoch = self.nodes[receiver].epoch
        self._push(self.now_ms + self._delay_ms(), _Deliver(receiver, epoch, sender, topic, data))

    def _cut(self, a: str, b: str) -> bool:
        return a in self._isolated or b in self._isolated

    def _delay_ms(self) -> int:
        jitter = self._latency_rng.randint(0, self.jitter_ms) if self.jitter_ms else 0
        return self.latency_ms + jitter

    def _set_timer(self, node: ClusterNode, action: SetTimer) -> None:
        self._sequence += 1
        token = self._sequence
        self._timer_tokens[(node.name, action.key)] = token
        self._push(self.now_ms + action.delay_ms, _Timer(node.name, node.epoch, action.key, token))

    def _deliver(self, item: _Deliver) -> str | None:
        node = self.nodes[item.receiver]
        if node.epoch != item.epoch or self._cut(item.sender, item.receiver):
            return None
        if self._loss_rules and self._lost(item):
            return None
        self._handle(
            item.receiver, MessageReceived(item.sender, item.topic, item.data, self.now_ms)
        )
        return item.receiver

    def _lost(self, item: _Deliver) -> bool:
        try:
            message = decode_message(item.data)
        except DecodeError:
            return False  # garbage reaches the node, which reports it
        return any(rule(item.sender, item.receiver, message) for rule in self._loss_rules)

    def _fire(self, item: _Timer) -> str | None:
        node = self.nodes[item.node]
        if node.epoch != item.epoch or self._timer_tokens.get((item.node, item.key)) != item.token:
            return None
        del self._timer_tokens[(item.node, item.key)]
        self._handle(item.node, TimerFired(item.key, self.now_ms))
        return item.node

    def _answer(self, item: _SyncAnswer) -> str | None:
        requester = self.nodes[item.requester]
        responder = self.nodes[item.responder].core
        if requester.epoch != item.epoch or responder is None:
            return None  # no answer: the requester's timer covers it
        request = item.request
        blocks = responder.blocks_for_sync(
            request.from_height, request.max_blocks, SYNC_RESPONSE_BYTES
        )
        self._handle(item.requester, BlocksReceived(item.responder, blocks, self.now_ms))
        return item.requester

    def _push(self, time_ms: int, item: _Item) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (time_ms, self._sequence, item))

    # -- checks ---------------------------------------------------------------------------------

    def _record_commit(self, node: ClusterNode, action: BlockCommitted) -> None:
        record = CommitRecord(
            action.block_id, action.app_state_root, action.time_ms, action.num_txs
        )
        if action.height in node.commits and node.commits[action.height] != record:
            self.violations.append(f"{node.name} committed height {action.height} twice")
        node.commits[action.height] = record
        canonical = self._canonical.setdefault(action.height, record)
        if canonical.block_id != record.block_id:
            self.violations.append(f"agreement broken at height {action.height} by {node.name}")
        elif canonical.app_state_root != record.app_state_root:
            self.violations.append(f"app state diverged at height {action.height} on {node.name}")

    def _backfill(self, node: ClusterNode, core: NodeCore) -> None:
        """Record heights a node committed durably whose ``BlockCommitted`` a crash lost."""
        for height in range(1, core.height + 1):
            if height in node.commits:
                continue
            stored = core.committed_block(height)
            following = core.committed_block(height + 1)
            assert stored is not None, "a committed height has its block"
            root = (
                core.app_state_root if following is None else following.block.header.app_state_root
            )
            header = stored.block.header
            committed = BlockCommitted(
                height, block_id(header), header.time_ms, len(stored.block.txs), root, (), ()
            )
            self._record_commit(node, committed)

    def _check_signature(
        self, node: ClusterNode, topic: str, data: bytes, *, broadcast: bool
    ) -> None:
        """Record what an honest ``node`` signed with its own key, broadcast or sent to one
        peer; a second, different signature for one step is a violation (the votes of others
        it relays are theirs, not its own). Only broadcast votes join ``votes``."""
        if topic != TOPIC_CONSENSUS or node.name in self.byzantine:
            return
        message = decode_message(data)
        if not isinstance(message, Vote | Proposal):
            return
        own_key = None if node.signer is None else node.signer.public_key
        recorded = self._record_votes and broadcast
        if recorded and isinstance(message, Vote) and message.validator == own_key:
            self.votes.append(message)
        double = self._ledger.record(own_key, message)
        if double is not None:
            position = (double.height, double.round, double.step)
            self.violations.append(f"{node.name} double-signed at {position}")

    # -- workload -------------------------------------------------------------------------------

    def _run_workload(self) -> None:
        count = self.txs_per_second * WORKLOAD_TICK_MS // 1000
        for _ in range(max(1, count)):
            self._submit_one()
        self._push(self.now_ms + WORKLOAD_TICK_MS, _Workload())

    def _submit_one(self) -> None:
        index = self._client_cursor % len(self.client_keys)
        self._client_cursor += 1
        validators = [n for n in self.names if n.startswith("v")]
        home = validators[index % len(validators)]
        core = self.nodes[home].core
        if core is None or not self.client_keys:
            return
        client = self.client_keys[index]
        nonce = core.next_nonce(client.public_key)
        key = self._workload_rng.random_bytes(8)
        raw = self._txs.encoded(
            client, "kv.set", set_payload(key, self._workload_rng.random_bytes(32)), nonce=nonce
        )
        self.txs_submitted += 1
        result = self.submit(home, raw)
        if result is not None and result.accepted:
            self.txs_accepted += 1

    def _heights_text(self) -> str:
        return ", ".join(
            f"{n}={self.height(n)}{'' if self.nodes[n].alive else '(down)'}" for n in self.nodes
        )


def _with_conflicting_vote(signer: Signer, action: Action) -> list[Action]:
    """``action`` and, if it broadcasts a vote, a conflicting vote of ``signer`` after it."""
    if not isinstance(action, Broadcast) or action.topic != TOPIC_CONSENSUS:
        return [action]
    vote = decode_message(action.data)
    if not isinstance(vote, Vote):
        return [action]
    step = b"%d/%d/%d" % (vote.height, vote.round, vote.vote_type)
    other = sha256(b"cluster/equivocation/" + step) if vote.value_id is None else None
    twin = replace(vote, value_id=other, signature=b"")
    twin = twin.with_signature(signer.sign(vote_sign_bytes_of(twin)))
    return [action, Broadcast(TOPIC_CONSENSUS, encode_message(twin))]
