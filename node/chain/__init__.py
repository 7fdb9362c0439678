"""Pure helpers of the chain core (``node.core.NodeCore``), one job per module.

- ``events`` / ``actions``: what a shell feeds ``NodeCore.handle`` and what it gets back;
- ``config``: ``NodeConfig``, every local limit with its unit;
- ``genesis``: ``Genesis`` and ``ConsensusParams`` (canonical encoding and hash; the
  ``GenesisModule`` that anchors the hash in the state is ``node.app.genesis_anchor``'s);
- ``application``: ``AppFactory``, the ``ModuleRegistry`` and the default module set;
  ``app_state``: the canonical encoding of modules' genesis states;
- ``messages``: gossip topics and checked decoding;
- ``validation`` / ``proposer``: judging and building blocks;
- ``evidence``: which equivocation evidence a block may carry, which the proposer picks, and
  the pending evidence kept across restarts; ``set_history``: the validator sets of past
  heights evidence is verified against;
- ``proposals``, ``future``, ``sync``, ``gossip``: bounded buffers of proposed blocks,
  next-height messages, block sync and transaction gossip;
- ``round_messages``, ``catch_up``: the signed messages of the current height a node holds,
  and what it re-sends, relays and answers so that validators in different rounds of one
  height catch up after faults heal;
- ``wal``, ``store``, ``schedule``: durable consensus log, storage layout (with each
  height's results and the tx index), validator sets;
- ``queries``, ``event_feed``: clients' read-only queries (modules' state with proofs,
  receipts) and the event feed's pages;
- ``status``: ``NodeStatus`` and ``NodeStats``;
- NodeCore's parts, around the per-height ``HeightState`` and ``Outbox`` (``height``) and
  wired by ``assembly``: ``inbound`` (peers' messages), ``admission`` (transactions and
  their gossip), ``syncing`` (block sync), ``catch_up_sender``, ``feed`` (consensus inputs,
  logged), ``judge`` (blocks and evidence against the tip), ``effects`` (persist before sign,
  signing, proposing, timers), ``commit`` (one synced batch per height), ``progress``.
"""

from node.chain.actions import (
    Action,
    BlockCommitted,
    Broadcast,
    EquivocationDetected,
    Offence,
    PeerMisbehaved,
    RequestBlocks,
    SendTo,
    SetTimer,
    TxResult,
)
from node.chain.application import (
    AppFactory,
    ModuleFactory,
    ModuleRegistry,
    default_application,
    default_registry,
)
from node.chain.config import NodeConfig
from node.chain.errors import (
    ChainError,
    ChainHaltError,
    InvalidConfigError,
    InvalidGenesisError,
    QueryError,
    StorageMismatchError,
)
from node.chain.events import (
    BlocksReceived,
    Event,
    MessageReceived,
    PeerDisconnected,
    PeerStatus,
    Start,
    TimerFired,
    TimerKey,
    TimerKind,
    TxSubmitted,
    VerifiedTxsReceived,
    VerifiedTxsSubmitted,
)
from node.chain.genesis import ConsensusParams, Genesis, GenesisModule
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS, TOPICS
from node.chain.status import NodeStats, NodeStatus

__all__ = [
    "TOPICS",
    "TOPIC_CONSENSUS",
    "TOPIC_STATUS",
    "TOPIC_TXS",
    "Action",
    "AppFactory",
    "BlockCommitted",
    "BlocksReceived",
    "Broadcast",
    "ChainError",
    "ChainHaltError",
    "ConsensusParams",
    "EquivocationDetected",
    "Event",
    "Genesis",
    "GenesisModule",
    "InvalidConfigError",
    "InvalidGenesisError",
    "MessageReceived",
    "ModuleFactory",
    "ModuleRegistry",
    "NodeConfig",
    "NodeStats",
    "NodeStatus",
    "Offence",
    "PeerDisconnected",
    "PeerMisbehaved",
    "PeerStatus",
    "QueryError",
    "RequestBlocks",
    "SendTo",
    "SetTimer",
    "Start",
    "StorageMismatchError",
    "TimerFired",
    "TimerKey",
    "TimerKind",
    "TxResult",
    "TxSubmitted",
    "VerifiedTxsReceived",
    "VerifiedTxsSubmitted",
    "default_application",
    "default_registry",
]
