"""A tiny leader-based node to drive the simulator in tests without the chain core.

Node 0 leads: every ``tick_ms`` it seals the transactions it holds into the next block,
writes its chain to disk (synced) and multicasts the last few blocks to everyone. Other
nodes forward client transactions to the leader, decide blocks in height order, and ask
the leader for what they missed. Deliberate faults (a forked node, a diverging state root,
an exception, a double vote) let the tests prove each checker can fail.

Toy messages are msgpack ``[kind, body]`` arrays with kinds outside ``node.codec``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack

from consensus.sign_bytes import vote_sign_bytes
from consensus.types import Vote, VoteType
from netsim.node_api import Decision, Envelope, NodeEnv, NodeFactory, SimNode, TimerToken
from netsim.simulation import RunSetup
from node.codec import encode_message
from node.types import ZERO_HASH

BLOCKS = 120
REQUEST = 121
TX = 122
TICK = (1,)
RESEND_BLOCKS = 8
MAX_TXS_PER_BLOCK = 50


@dataclass(frozen=True)
class ToyFaults:
    """Deliberate bugs: ``fork`` node decides another block at ``fork_height``; ``bad_root``
    node reports another state root; ``explode`` node raises on its first message after
    ``explode_height``; ``double_vote`` node signs two votes for one step."""

    fork: int | None = None
    fork_height: int = 3
    bad_root: int | None = None
    explode: int | None = None
    explode_height: int = 2
    double_vote: int | None = None


@dataclass
class ToyChain:
    """A node's decided blocks: (block id, tx hashes) per height, and the state root."""

    blocks: list[tuple[bytes, tuple[bytes, ...]]] = field(default_factory=list)
    root: bytes = ZERO_HASH


def block_id_of(height: int, previous: bytes, txs: Sequence[bytes]) -> bytes:
    return hashlib.sha256(b"toy%d" % height + previous + b"".join(txs)).digest()


class ToyNode:
    """See the module docstring."""

    def __init__(self, env: NodeEnv, tick_ms: int, faults: ToyFaults, setup: RunSetup) -> None:
        self.env = env
        self.tick_ms = tick_ms
        self.faults = faults
        self.setup = setup
        self.chain = ToyChain()
        self.pool: dict[bytes, None] = {}

    def start(self) -> None:
        stored = self.env.storage.get(b"toy/chain")
        if stored is not None:
            for block_id, txs in msgpack.unpackb(stored):
                self._append(block_id, tuple(txs), report=False)
        if self.env.index == 0:
            self.env.set_timer(self.tick_ms, TICK)

    def on_timer(self, token: TimerToken) -> None:
        assert token == TICK
        self.env.set_timer(self.tick_ms, TICK)
        txs = tuple(list(self.pool)[:MAX_TXS_PER_BLOCK])
        for tx in txs:
            del self.pool[tx]
        height = len(self.chain.blocks) + 1
        self._decide(height, block_id_of(height, self._tip(), txs), txs)
        self.env.multicast(range(self.env.topology.nodes), self._blocks_message(height))

    def on_message(self, sender: int, envelope: Envelope) -> None:
        kind, body = msgpack.unpackb(envelope.data)
        if kind == TX and self.env.index == 0:
            self.pool.setdefault(body, None)
        elif kind == REQUEST and self.env.index == 0:
            self.env.send(sender, self._blocks_message(len(self.chain.blocks), since=body))
        elif kind == BLOCKS:
            self._on_blocks(body)

    def submit_tx(self, tx: bytes) -> None:
        tx_hash = hashlib.sha256(tx).digest()
        if self.env.index == 0:
            self.pool.setdefault(tx_hash, None)
        else:
            self.env.send(0, Envelope(msgpack.packb([TX, tx_hash])))

    def _on_blocks(self, blocks: list[list[object]]) -> None:
        me = self.env.index
        if self.faults.explode == me and len(self.chain.blocks) >= self.faults.explode_height:
            raise RuntimeError("toy node exploded")
        for height, block_id, txs in blocks:
            assert isinstance(height, int) and isinstance(block_id, bytes)
            if height == len(self.chain.blocks) + 1:
                self._decide(height, block_id, tuple(txs))  # type: ignore[arg-type]
        first = blocks[0][0] if blocks else 0
        if isinstance(first, int) and first > len(self.chain.blocks) + 1:
            self.env.send(0, Envelope(msgpack.packb([REQUEST, len(self.chain.blocks) + 1])))

    def _decide(self, height: int, block_id: bytes, txs: tuple[bytes, ...]) -> None:
        if self.faults.fork == self.env.index and height == self.faults.fork_height:
            block_id = hashlib.sha256(b"fork" + block_id).digest()
        if self.faults.double_vote == self.env.index:
            self._double_vote(height)
        self._append(block_id, txs, report=True)
        data = msgpack.packb([[b, list(t)] for b, t in self.chain.blocks])
        self.env.storage.put(b"toy/chain", data)
        self.env.storage.sync()

    def _append(self, block_id: bytes, txs: tuple[bytes, ...], *, report: bool) -> None:
        previous = self._tip()
        self.chain.blocks.append((block_id, txs))
        self.chain.root = hashlib.sha256(self.chain.root + block_id).digest()
        root = self.chain.root
        if self.faults.bad_root == self.env.index:
            root = hashlib.sha256(b"bad" + root).digest()
        if report:
            height = len(self.chain.blocks)
            self.env.decided(Decision(height, block_id, previous, root, txs))

    def _tip(self) -> bytes:
        return self.chain.blocks[-1][0] if self.chain.blocks else ZERO_HASH

    def _blocks_message(self, height: int, since: object = None) -> Envelope:
        start = since if isinstance(since, int) else max(1, height - RESEND_BLOCKS + 1)
        blocks = [
            [h, self.chain.blocks[h - 1][0], list(self.chain.blocks[h - 1][1])]
            for h in range(max(1, start), height + 1)
        ]
        return Envelope(msgpack.packb([BLOCKS, blocks]))

    def _double_vote(self, height: int) -> None:
        key = self.setup.validator_keys[self.env.index]
        for value in (b"\x01" * 32, b"\x02" * 32):
            sign_bytes = vote_sign_bytes(self.setup.chain_id, height, 0, VoteType.PREVOTE, value)
            vote = Vote(
                self.setup.chain_id, height, 0, VoteType.PREVOTE, value, key.public_key,
                key.sign(sign_bytes),
            )  # fmt: skip
            self.env.multicast(range(self.env.topology.validators), Envelope(encode_message(vote)))


class ToyBuilder:
    """Builds toy nodes (a ``netsim.simulation.NodeBuilder``)."""

    def __init__(self, tick_ms: int = 500, faults: ToyFaults | None = None) -> None:
        self.tick_ms = tick_ms
        self.faults = faults if faults is not None else ToyFaults()

    def factory(self, setup: RunSetup, node: int) -> NodeFactory:
        def build(env: NodeEnv) -> SimNode:
            return ToyNode(env, self.tick_ms, self.faults, setup)

        return build
