"""The simulator's shell for the real chain core: ``NodeCore`` events in, actions out.

:class:`CoreNode` does for one simulated node what the trio runtime does for a real one,
over the simulated ports: it opens ``NodeCore`` from the node's disk (so a restart replays
the durable log), turns arriving messages, timers and client transactions into events
stamped with the node's own clock, and carries out the actions:

- ``Broadcast(topic, data)`` goes to the topic's audience: among validators, the full mesh
  a gossip network gives; a validator's status also reaches the non-validators it serves,
  and a non-validator talks to its upstream validators (its transactions reach every
  validator). Non-validators never see votes: they learn new heights from their upstreams'
  status — the shell announces each commit to them — and fetch the blocks with their
  certificates by block sync.
- ``SendTo`` is a direct message; ``SetTimer`` replaces a pending timer of the same key.
- ``RequestBlocks`` travels as a request message; the peer's shell answers it from its
  core's ``blocks_for_sync``, and the answer comes back as ``BlocksReceived``, both over the
  simulated network (so partitions, loss and bandwidth apply to block sync too).
- ``BlockCommitted`` goes to the checkers (with the block's receipts and events, which the
  run hands to the workload), ``PeerMisbehaved`` and ``EquivocationDetected`` to the run's
  counters; a client's ``TxResult`` refusal is the answer ``submit_tx`` returns.

The application is the run's: ``RunSetup.app_factory`` (the workload's, e.g. the health
chain's modules) or the node's default one, and the genesis carries the workload's
``app_state``.

A ``ChainHaltError`` (or any exception) escaping the core is left to the host, which
records it as a violation: an honest node must never halt in a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgpack

from netsim.node_api import Decision, Envelope, NodeEnv, NodeFactory, SimNode, TimerToken
from netsim.simulation import RunSetup
from netsim.topology import Topology
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
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS
from node.codec import MessageKind, encode_message
from node.core import NodeCore
from node.ports import PeerId, Signer
from node.types import Status, Validator

SYNC_REQUEST_KIND: Final = 100
"""Envelope kind of a block-sync request (outside ``node.codec.MessageKind``)."""
SYNC_RESPONSE_KIND: Final = 101
"""Envelope kind of a block-sync answer."""

SYNC_RESPONSE_BYTES: Final = 4 * 1024 * 1024
"""Largest block-sync answer a node sends, in bytes (the transport's stream limit)."""

_TOPIC_OF_KIND: Final[dict[int, str]] = {
    MessageKind.PROPOSAL: TOPIC_CONSENSUS,
    MessageKind.VOTE: TOPIC_CONSENSUS,
    MessageKind.BLOCK: TOPIC_CONSENSUS,
    MessageKind.TX_BATCH: TOPIC_TXS,
    MessageKind.STATUS: TOPIC_STATUS,
}


def peer_id(node: int) -> PeerId:
    """The peer id of node ``node`` (``n<index>``)."""
    return f"n{node}"


def node_of(peer: PeerId, nodes: int) -> int | None:
    """The node index of ``peer``, or None for a peer id no node has."""
    if not peer.startswith("n") or not peer[1:].isdigit():
        return None
    index = int(peer[1:])
    return index if index < nodes else None


class Audiences:
    """Who receives a node's broadcast on each topic (see the module docstring)."""

    def __init__(self, topology: Topology) -> None:
        validators = tuple(topology.validator_ids())
        self._topology = topology
        self._validators = validators
        self._status = tuple(validators + topology.downstream[v] for v in validators)

    def of(self, node: int, topic: str) -> Sequence[int]:
        """The receivers of ``node``'s broadcast on ``topic`` (``node`` itself may be listed;
        the network skips it)."""
        topology = self._topology
        if topology.is_validator(node):
            return self._status[node] if topic == TOPIC_STATUS else self._validators
        if topic == TOPIC_TXS:
            return self._validators
        return topology.upstreams[node]


class CoreNode:
    """One simulated node running ``NodeCore`` (implements ``SimNode``)."""

    def __init__(
        self,
        env: NodeEnv,
        *,
        genesis: Genesis,
        signer: Signer | None,
        config: NodeConfig,
        audiences: Audiences,
        app_factory: AppFactory = default_application,
    ) -> None:
        """Open the core from ``env.storage`` (a fresh chain, or a restart) with the
        application ``app_factory`` builds."""
        self._env = env
        self._audiences = audiences
        self._nodes = env.topology.nodes
        self._downstream = env.topology.downstream[env.index] if signer is not None else ()
        self._core = NodeCore.open(env.storage, signer, genesis, config, app_factory=app_factory)
        self._refusal: str | None = None
        self._reads_headers = signer is not None
        self._timer_of_key: dict[TimerKey, tuple[int, int]] = {}
        self._key_of_timer: dict[int, TimerKey] = {}
        self._timer_sequence = 0

    @property
    def core(self) -> NodeCore:
        """The chain core (for inspection in tests)."""
        return self._core

    # --- SimNode ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Feed ``Start``."""
        self._handle(Start(self._env.clock.now_ms()))

    def on_message(self, sender: int, envelope: Envelope) -> None:
        """A message, or a block-sync request or answer, from node ``sender``."""
        now_ms = self._env.clock.now_ms()
        if envelope.kind == SYNC_REQUEST_KIND:
            self._answer_sync(sender, envelope.data)
        elif envelope.kind == SYNC_RESPONSE_KIND:
            blocks = self._decode_blocks(sender, envelope.data)
            if blocks is not None:
                self._handle(BlocksReceived(peer_id(sender), blocks, now_ms))
        else:
            topic = envelope.topic or _TOPIC_OF_KIND.get(envelope.kind, TOPIC_CONSENSUS)
            self._handle(MessageReceived(peer_id(sender), topic, envelope.data, now_ms))

    def on_timer(self, token: TimerToken) -> None:
        """Feed ``TimerFired`` for the key the timer was set for."""
        key = self._key_of_timer.pop(token[0], None)
        if key is None:
            return
        del self._timer_of_key[key]
        self._handle(TimerFired(key, self._env.clock.now_ms()))

    def submit_tx(self, tx: bytes) -> str | None:
        """Feed ``TxSubmitted``; the refusal of its ``TxResult`` (``"<reason>: <message>"``),
        or None when the node admitted it."""
        self._refusal = None
        self._handle(TxSubmitted(tx, self._env.clock.now_ms()))
        refusal, self._refusal = self._refusal, None
        return refusal

    # --- actions ---------------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        committed: BlockCommitted | None = None
        for action in self._core.handle(event):
            if isinstance(action, BlockCommitted):
                committed = action
            self._carry_out(action)
        if committed is not None and self._downstream:
            status = Status(committed.height, committed.block_id)
            self._env.multicast(self._downstream, Envelope(encode_message(status), TOPIC_STATUS))

    def _carry_out(self, action: Action) -> None:
        env = self._env
        if isinstance(action, Broadcast):
            audience = self._audiences.of(env.index, action.topic)
            env.multicast(audience, Envelope(action.data, action.topic))
        elif isinstance(action, SendTo):
            peer = node_of(action.peer, self._nodes)
            if peer is not None and peer != env.index:
                env.send(peer, Envelope(action.data, action.topic))
        elif isinstance(action, SetTimer):
            self._set_timer(action)
        elif isinstance(action, RequestBlocks):
            self._request_blocks(action)
        elif isinstance(action, BlockCommitted):
            env.decided(self._decision(action))
        elif isinstance(action, PeerMisbehaved):
            peer = node_of(action.peer, self._nodes)
            env.rejected(-1 if peer is None else peer, action.offence.value)
        elif isinstance(action, EquivocationDetected):
            env.accused(action.evidence.validator)
        elif isinstance(action, TxResult) and not action.accepted:
            reason = "refused" if action.reason is None else action.reason.value
            self._refusal = f"{reason}: {action.message}"

    def _set_timer(self, action: SetTimer) -> None:
        """Start the timer of ``action.key``, cancelling a pending one of the same key."""
        replaced = self._timer_of_key.pop(action.key, None)
        if replaced is not None:
            sequence, timer_id = replaced
            del self._key_of_timer[sequence]
            self._env.cancel_timer(timer_id)
        self._timer_sequence += 1
        sequence = self._timer_sequence
        timer_id = self._env.set_timer(action.delay_ms, (sequence,))
        self._timer_of_key[action.key] = (sequence, timer_id)
        self._key_of_timer[sequence] = action.key

    def _decision(self, action: BlockCommitted) -> Decision:
        previous: bytes | None = None
        if self._reads_headers:  # validators read the header; the rest rely on agreement
            stored = self._core.committed_block(action.height)
            previous = None if stored is None else stored.block.header.previous_block_id
        return Decision(
            height=action.height,
            block_id=action.block_id,
            previous_block_id=previous,
            app_state_root=action.app_state_root,
            tx_hashes=tuple(receipt.tx_hash for receipt in action.receipts),
            time_ms=action.time_ms,
            receipts=action.receipts,
            events=action.events,
        )

    # --- block sync ------------------------------------------------------------------------------

    def _request_blocks(self, action: RequestBlocks) -> None:
        peer = node_of(action.peer, self._nodes)
        if peer is None or peer == self._env.index:
            return
        request = msgpack.packb([SYNC_REQUEST_KIND, [action.from_height, action.max_blocks]])
        self._env.send(peer, Envelope(request))

    def _answer_sync(self, sender: int, data: bytes) -> None:
        try:
            tag, (from_height, max_blocks) = msgpack.unpackb(data, max_bin_len=0, max_str_len=0)
        except (ValueError, TypeError, msgpack.exceptions.UnpackException):
            self._env.rejected(sender, "malformed")
            return
        if tag != SYNC_REQUEST_KIND or type(from_height) is not int or type(max_blocks) is not int:
            self._env.rejected(sender, "malformed")
            return
        blocks = self._core.blocks_for_sync(from_height, max_blocks, SYNC_RESPONSE_BYTES)
        answer = msgpack.packb([SYNC_RESPONSE_KIND, list(blocks)], use_bin_type=True)
        self._env.send(sender, Envelope(answer))

    def _decode_blocks(self, sender: int, data: bytes) -> tuple[bytes, ...] | None:
        try:
            tag, blocks = msgpack.unpackb(data, max_bin_len=len(data), max_str_len=0)
        except (ValueError, TypeError, msgpack.exceptions.UnpackException):
            blocks, tag = None, None
        if tag != SYNC_RESPONSE_KIND or type(blocks) is not list:
            self._env.rejected(sender, "malformed")
            return None
        if not all(type(block) is bytes for block in blocks):
            self._env.rejected(sender, "malformed")
            return None
        return tuple(blocks)


class CoreBuilder:
    """Builds ``CoreNode`` s: one genesis per run (validators from the run's keys, the
    workload's accounts and app_state), the run's application, the node ``config`` and chain
    ``params`` given here."""

    def __init__(
        self, config: NodeConfig | None = None, params: ConsensusParams | None = None
    ) -> None:
        self._config = config if config is not None else NodeConfig()
        self._params = params if params is not None else ConsensusParams()
        self._cache: tuple[object, Genesis, Audiences] | None = None

    def factory(self, setup: RunSetup, node: int) -> NodeFactory:
        """The factory of node ``node`` of the run ``setup`` describes."""
        genesis, audiences = self._run_objects(setup)
        signer = setup.validator_keys[node] if node < len(setup.validator_keys) else None
        config = self._config
        app_factory = setup.app_factory if setup.app_factory is not None else default_application

        def build(env: NodeEnv) -> SimNode:
            return CoreNode(
                env,
                genesis=genesis,
                signer=signer,
                config=config,
                audiences=audiences,
                app_factory=app_factory,
            )

        return build

    def _run_objects(self, setup: RunSetup) -> tuple[Genesis, Audiences]:
        if self._cache is None or self._cache[0] is not setup:
            validators = tuple(
                Validator(key.public_key, setup.validator_power) for key in setup.validator_keys
            )
            genesis = Genesis(
                chain_id=setup.chain_id,
                genesis_time_ms=setup.genesis_time_ms,
                validators=validators,
                accounts=setup.genesis_accounts,
                params=self._params,
                app_state=setup.genesis_app_state,
            )
            self._cache = (setup, genesis, Audiences(setup.topology))
        return self._cache[1], self._cache[2]
