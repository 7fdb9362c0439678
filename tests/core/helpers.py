"""Shared set-up of the chain-core tests: a small chain, one node under test, signed messages.

``Solo`` drives one ``NodeCore`` by hand (the other validators are played by the test with
their keys), so a test decides exactly what the node sees and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from consensus import ValidatorSet
from consensus.sign_bytes import proposal_sign_bytes, vote_sign_bytes
from crypto_core.signatures import Ed25519KeyPair
from node.app.accounts import GenesisAccount, Role
from node.app.blocks import build_block
from node.app.kv import set_payload
from node.chain import (
    Action,
    Broadcast,
    ConsensusParams,
    Genesis,
    MessageReceived,
    NodeConfig,
    PeerMisbehaved,
    SetTimer,
    Start,
    TimerFired,
    TimerKey,
)
from node.chain.messages import TOPIC_CONSENSUS
from node.codec import block_id, decode_message, encode_message, tx_hash
from node.core import NodeCore
from node.testing import MemoryStorage, TxFactory, key_pair, make_validators
from node.types import (
    ZERO_HASH,
    Block,
    CommitCertificate,
    CommitSignature,
    CompactBlock,
    Proposal,
    Vote,
    VoteType,
)

CHAIN = "core-test-chain"
GENESIS_MS = 1_700_000_000_000
VALIDATORS = make_validators(4)
CLIENTS = [key_pair(f"client-{i}") for i in range(4)]
A = TypeVar("A")


def make_genesis(**params: int) -> Genesis:
    """The chain of these tests: 4 equal validators, 4 institution accounts."""
    return Genesis(
        chain_id=CHAIN,
        genesis_time_ms=GENESIS_MS,
        validators=VALIDATORS.validators,
        accounts=tuple(GenesisAccount(k.public_key, Role.INSTITUTION) for k in CLIENTS),
        params=ConsensusParams(**params),
    )


GENESIS = make_genesis()
GENESIS_SET = ValidatorSet(VALIDATORS.validators)


def set_at(height: int) -> ValidatorSet:
    """The validator set of ``height`` (no updates happen in these tests)."""
    validator_set = GENESIS_SET
    for _ in range(height - 1):
        validator_set = validator_set.for_next_height()
    return validator_set


def key_of(public_key: bytes) -> Ed25519KeyPair:
    """The key pair of a genesis validator."""
    return VALIDATORS.key_of(public_key)


def signed_vote(
    key: Ed25519KeyPair,
    height: int,
    round_: int,
    vote_type: VoteType,
    value_id: bytes | None,
    chain_id: str = CHAIN,
) -> Vote:
    """A vote signed by ``key``."""
    sign_bytes = vote_sign_bytes(chain_id, height, round_, vote_type, value_id)
    return Vote(chain_id, height, round_, vote_type, value_id, key.public_key, key.sign(sign_bytes))


def signed_proposal(
    key: Ed25519KeyPair, height: int, round_: int, value_id: bytes, chain_id: str = CHAIN
) -> Proposal:
    """A fresh proposal (valid round -1) signed by ``key``."""
    sign_bytes = proposal_sign_bytes(chain_id, height, round_, value_id, -1)
    return Proposal(chain_id, height, round_, value_id, -1, key.public_key, key.sign(sign_bytes))


def certificate(height: int, round_: int, value_id: bytes, signers: int = 3) -> CommitCertificate:
    """A real commit certificate of ``value_id`` by the first ``signers`` validators."""
    members = sorted(VALIDATORS.keys, key=lambda k: k.public_key)[:signers]
    signatures = tuple(
        CommitSignature(
            k.public_key, signed_vote(k, height, round_, VoteType.PRECOMMIT, value_id).signature
        )
        for k in members
    )
    return CommitCertificate(CHAIN, height, round_, value_id, signatures)


def first_block(
    app_state_root: bytes, *, txs: tuple[bytes, ...] = (), time_ms: int = GENESIS_MS + 1_000
) -> Block:
    """A valid block at height 1 proposed by the round-0 proposer."""
    validator_set = set_at(1)
    return build_block(
        chain_id=CHAIN,
        height=1,
        time_ms=time_ms,
        previous_block_id=ZERO_HASH,
        txs=txs,
        app_state_root=app_state_root,
        validator_set_hash=validator_set.hash(),
        proposer=validator_set.proposer(0),
        last_commit=None,
    )


KNOWN_TXS: dict[bytes, bytes] = {}
"""Every transaction ``kv_tx`` made, by hash: what the tests rebuild compact blocks from."""


def kv_tx(client: int, nonce: int, key: bytes = b"k", value: bytes = b"v") -> bytes:
    """An encoded, signed kv.set transaction of a genesis client."""
    raw = TxFactory(CHAIN).encoded(CLIENTS[client], "kv.set", set_payload(key, value), nonce=nonce)
    KNOWN_TXS[tx_hash(raw)] = raw
    return raw


def whole(message: object) -> object:
    """``message``, with a compact block of known transactions rebuilt as its ``Block``."""
    if not isinstance(message, CompactBlock):
        return message
    return Block(message.header, tuple(KNOWN_TXS[h] for h in message.tx_hashes), message.evidence)


def of_type(actions: list[Action], kind: type[A]) -> list[A]:
    """The actions of one type, in order."""
    return [a for a in actions if isinstance(a, kind)]


@dataclass
class Solo:
    """One node under test (a validator, unless ``observer``) at genesis, started."""

    observer: bool = False
    validator_index: int = 0
    config: NodeConfig = field(default_factory=NodeConfig)
    genesis: Genesis = GENESIS
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    now_ms: int = GENESIS_MS + 1_000

    def __post_init__(self) -> None:
        self.key = None if self.observer else VALIDATORS.keys[self.validator_index]
        self.core = NodeCore.open(self.storage, self.key, self.genesis, self.config)
        self.started = self.core.handle(Start(self.now_ms))

    def receive(self, sender: str, topic: str, data: bytes) -> list[Action]:
        """Deliver raw bytes from ``sender``."""
        return self.core.handle(MessageReceived(sender, topic, data, self.now_ms))

    def send(self, sender: str, message: object) -> list[Action]:
        """Deliver an encoded message on the consensus topic."""
        return self.receive(sender, TOPIC_CONSENSUS, encode_message(message))  # type: ignore[arg-type]

    def fire(self, key: TimerKey) -> list[Action]:
        """Fire a timer."""
        return self.core.handle(TimerFired(key, self.now_ms))

    def fire_pending(self, actions: list[Action], kind_names: set[str]) -> list[Action]:
        """Fire every timer of ``actions`` whose kind is named in ``kind_names``."""
        out: list[Action] = []
        for timer in of_type(actions, SetTimer):
            if timer.key.kind.name in kind_names:
                out += self.fire(timer.key)
        return out


def broadcast_messages(actions: list[Action]) -> list[object]:
    """The decoded consensus messages among ``actions``."""
    return [
        whole(decode_message(a.data))
        for a in of_type(actions, Broadcast)
        if a.topic == TOPIC_CONSENSUS
    ]


def votes_in(actions: list[Action]) -> list[Vote]:
    """The votes this node broadcast."""
    return [m for m in broadcast_messages(actions) if isinstance(m, Vote)]


def misbehaviours(actions: list[Action]) -> list[PeerMisbehaved]:
    """The misbehaviour reports."""
    return of_type(actions, PeerMisbehaved)


def id_of(block: Block) -> bytes:
    """A block's id."""
    return block_id(block.header)
