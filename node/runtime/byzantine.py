"""A Byzantine node, for attack campaigns only (``bighealth run --byzantine KIND[,KIND...]``).

``ByzantineNetwork`` wraps the runtime's network (``node.runtime.network.RuntimeNetwork``):
the node's core runs honestly, and its outbound path lies. The kinds (``ByzantineKind``):

- ``equivocate``: for each prevote and precommit the node signs, a second vote for the same
  height, round and step, for another value, signed with the validator key directly (past
  the consensus sign guard: only here), sent straight to half of the peers (sorted by peer
  id, the first half, at least one; with no peer yet, the next copy of the vote the runtime
  sends tries again);
- ``invalid-block``: the blocks the node proposes (whole or compact) go out with a wrong
  application state root (the block id, and the proposal naming it, re-signed to match);
- ``oversized``: messages over their kind's limit (a vote of 60 kB) on the gossip topics and
  the direct streams;
- ``malformed``: bytes that are no message on the gossip topics and the direct streams;
- ``tx-flood``: batches of ``flood_batch_txs`` transactions with invalid signatures;
- ``stale-replay``: consensus messages the node sent for heights at least two below its
  newest, sent again.

The periodic kinds (all but the first two) act once every ``interval_s`` in ``attack``, a task
the node's nursery runs; with ``equivocate`` they start once a conflicting vote went out (or
after ``equivocation_grace_s``), since they soon get the node banned. Honest nodes are
expected to keep committing, to put the equivocation evidence in a block, and to score the
node down and disconnect it.

Refused (``ByzantineModeError``) unless the environment sets ``BIGHEALTH_ALLOW_BYZANTINE=1``
and the chain id names a test chain (``test`` at its start or after ``-``, ``_`` or ``.``,
as in ``bighealth-testnet``): a production chain never meets it through this flag.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Final

import trio

from consensus import proposal_sign_bytes_of, vote_sign_bytes_of
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_TXS
from node.codec import TX_CODEC, MessageKind, block_id, decode_message, encode_message
from node.errors import BigHealthError, DecodeError, NetworkError
from node.ports import PeerId, Signer
from node.runtime.forwarding import ForwardingNetwork
from node.runtime.logs import fields
from node.runtime.network import RuntimeNetwork
from node.types import Block, CompactBlock, Proposal, Transaction, TxBatch, Vote

logger = logging.getLogger("node.runtime.byzantine")

ALLOW_BYZANTINE_ENV: Final = "BIGHEALTH_ALLOW_BYZANTINE"
"""The environment variable that must be ``1`` for ``--byzantine`` to be accepted."""
TEST_CHAIN_PATTERN: Final = re.compile(r"(^|[-_.])test", re.IGNORECASE)
MAX_KINDS_TEXT: Final = 200
REWRITE_CACHE_ENTRIES: Final = 64
"""Outbound messages remembered with their rewrite: the runtime sends one consensus message
by gossip and again to each peer, and each copy must carry the same lie."""
MAX_EQUIVOCATED_STEPS: Final = 1024
OVERSIZED_BODY_BYTES: Final = 60_000  # a bin16 body: under 64 KiB
MALFORMED_MAX_BYTES: Final = 512


class ByzantineModeError(BigHealthError):
    """The Byzantine mode is refused (not allowed here, or an unknown kind)."""


class ByzantineKind(Enum):
    """What the Byzantine node does (see the module docstring)."""

    EQUIVOCATE = "equivocate"
    INVALID_BLOCK = "invalid-block"
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    TX_FLOOD = "tx-flood"
    STALE_REPLAY = "stale-replay"


def parse_kinds(text: str) -> frozenset[ByzantineKind]:
    """The kinds of a comma-separated list (``ByzantineModeError`` for an unknown one)."""
    if len(text) > MAX_KINDS_TEXT:
        raise ByzantineModeError(f"--byzantine: at most {MAX_KINDS_TEXT} characters")
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {kind.value: kind for kind in ByzantineKind}
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise ByzantineModeError(
            f"--byzantine: unknown kind(s) {unknown or [text]}; choose from {sorted(known)}"
        )
    return frozenset(known[name] for name in names)


def check_byzantine_allowed(chain_id: str, environ: Mapping[str, str] = os.environ) -> None:
    """``ByzantineModeError`` unless ``BIGHEALTH_ALLOW_BYZANTINE=1`` and ``chain_id`` names
    a test chain (see the module docstring)."""
    if environ.get(ALLOW_BYZANTINE_ENV) != "1":
        raise ByzantineModeError(f"--byzantine needs {ALLOW_BYZANTINE_ENV}=1 (attack tests only)")
    if TEST_CHAIN_PATTERN.search(chain_id) is None:
        raise ByzantineModeError(
            f"--byzantine runs only on a test chain (a chain id with 'test' at its start or "
            f"after '-', '_' or '.'), not on {chain_id!r}"
        )


def byzantine_kinds(
    text: str | None, chain_id: str, environ: Mapping[str, str] = os.environ
) -> frozenset[ByzantineKind]:
    """The kinds of ``bighealth run --byzantine TEXT`` (none without the flag), checked
    against the environment and the chain (``ByzantineModeError`` when refused)."""
    if text is None:
        return frozenset()
    kinds = parse_kinds(text)
    check_byzantine_allowed(chain_id, environ)
    return kinds


@dataclass(frozen=True, slots=True)
class ByzantineSettings:
    """How hard the periodic kinds push."""

    interval_s: float = 1.0
    flood_batch_txs: int = 200
    replay_keep_messages: int = 256
    replay_per_interval: int = 16
    equivocation_grace_s: float = 30.0

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.equivocation_grace_s < 0:
            raise ValueError("ByzantineSettings: interval_s > 0, equivocation_grace_s >= 0")
        for name in ("flood_batch_txs", "replay_keep_messages", "replay_per_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"ByzantineSettings.{name} must be >= 1")


class ByzantineNetwork(ForwardingNetwork):
    """A ``RuntimeNetwork`` whose outbound path lies (see the module docstring)."""

    def __init__(
        self,
        inner: RuntimeNetwork,
        kinds: Iterable[ByzantineKind],
        *,
        signer: Signer | None,
        chain_id: str,
        settings: ByzantineSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        self.kinds = frozenset(kinds)
        self._signer = signer
        self._chain_id = chain_id
        self.settings = settings or ByzantineSettings()
        self._rng = rng or random.Random()
        self.acts: Counter[str] = Counter()
        """What the node did so far, by act (``equivocated_votes``, ``invalid_blocks``...)."""
        self._rewrites: OrderedDict[bytes, tuple[bytes, Vote | None]] = OrderedDict()
        self._bad_ids: OrderedDict[bytes, bytes] = OrderedDict()  # honest id -> bad one
        self._equivocated: OrderedDict[tuple[int, int, int], None] = OrderedDict()
        self._sent: deque[tuple[int, bytes]] = deque(maxlen=self.settings.replay_keep_messages)
        self._newest_height = 0
        self._equivocated_once = trio.Event()

    # -- the lying outbound path ---------------------------------------------------------------

    def broadcast(self, topic: str, data: bytes) -> None:
        self._inner.broadcast(topic, self._outbound(topic, data))

    def send(self, peer: PeerId, topic: str, data: bytes) -> None:
        self._inner.send(peer, topic, self._outbound(topic, data))

    def _outbound(self, topic: str, data: bytes) -> bytes:
        """``data`` as the Byzantine node sends it (and, once per message, its extras)."""
        if topic != TOPIC_CONSENSUS:
            return data
        key = hashlib.sha256(data).digest()
        cached = self._rewrites.get(key)
        if cached is None:
            cached = self._rewrite(data)
            self._rewrites[key] = cached
            if len(self._rewrites) > REWRITE_CACHE_ENTRIES:
                self._rewrites.popitem(last=False)
        rewritten, vote = cached
        if vote is not None and ByzantineKind.EQUIVOCATE in self.kinds:
            self._equivocate(vote)  # again: a vote sent while no peer was connected
        return rewritten

    def _rewrite(self, data: bytes) -> tuple[bytes, Vote | None]:
        """What to send for ``data``, and the vote it holds (if any)."""
        try:
            message = decode_message(data)
        except DecodeError:
            return data, None
        height = getattr(message, "height", None)
        if isinstance(message, (Block, CompactBlock)):
            height = message.header.height
        if isinstance(height, int):
            self._newest_height = max(self._newest_height, height)
            self._sent.append((height, data))
        if isinstance(message, Vote):
            return data, message
        if ByzantineKind.INVALID_BLOCK in self.kinds:
            if isinstance(message, (Block, CompactBlock)):
                return self._invalid_block(message), None
            if isinstance(message, Proposal):
                return self._renamed_proposal(message), None
        return data, None

    def _equivocate(self, vote: Vote) -> None:
        if self._signer is None or vote.validator != self._signer.public_key:
            return  # not ours: a relay of someone else's vote
        step = (vote.height, vote.round, int(vote.vote_type))
        peers = sorted(self._inner.peers())
        if step in self._equivocated or not peers:
            return  # done already, or nobody to lie to yet (tried again with the next copy)
        self._equivocated[step] = None
        if len(self._equivocated) > MAX_EQUIVOCATED_STEPS:
            self._equivocated.popitem(last=False)
        other_value = hashlib.sha256(b"byzantine/" + repr(step).encode()).digest()
        twin = replace(vote, value_id=other_value, signature=b"")
        twin = twin.with_signature(self._signer.sign(vote_sign_bytes_of(twin)))
        targets = peers[: max(1, len(peers) // 2)]
        for peer in targets:
            self._send_quietly(peer, TOPIC_CONSENSUS, encode_message(twin))
        self.acts["equivocated_votes"] += 1
        self._equivocated_once.set()
        logger.warning(
            "byzantine: equivocated",
            extra=fields(height=vote.height, round=vote.round, step=vote.vote_type.name,
                         peers=len(targets)),
        )  # fmt: skip

    def _invalid_block(self, block: Block | CompactBlock) -> bytes:
        """The block (whole or compact: the header is what is changed) with a bad root."""
        honest_id = block_id(block.header)
        bad_root = hashlib.sha256(b"byzantine/root/" + honest_id).digest()
        bad = replace(block, header=replace(block.header, app_state_root=bad_root))
        self._bad_ids[honest_id] = block_id(bad.header)
        if len(self._bad_ids) > REWRITE_CACHE_ENTRIES:
            self._bad_ids.popitem(last=False)
        self.acts["invalid_blocks"] += 1
        logger.warning("byzantine: invalid block", extra=fields(height=block.header.height))
        return encode_message(bad)

    def _renamed_proposal(self, proposal: Proposal) -> bytes:
        bad_id = self._bad_ids.get(proposal.value_id)
        if bad_id is None or self._signer is None:
            return encode_message(proposal)
        renamed = replace(proposal, value_id=bad_id, signature=b"")
        signed = renamed.with_signature(self._signer.sign(proposal_sign_bytes_of(renamed)))
        return encode_message(signed)

    # -- the periodic kinds --------------------------------------------------------------------

    async def attack(self) -> None:
        """Run the periodic kinds until cancelled (the node's nursery runs this). They get
        the node banned soon, so with ``equivocate`` they wait until a conflicting vote went
        out (at most ``equivocation_grace_s``): the lie that needs peers comes first."""
        logger.warning(
            "byzantine mode", extra=fields(kinds=sorted(kind.value for kind in self.kinds))
        )
        if ByzantineKind.EQUIVOCATE in self.kinds:
            with trio.move_on_after(self.settings.equivocation_grace_s):
                await self._equivocated_once.wait()
        while True:
            await trio.sleep(self.settings.interval_s)
            self.attack_once()

    def attack_once(self) -> None:
        """One round of every periodic kind enabled."""
        if ByzantineKind.MALFORMED in self.kinds:
            self._everywhere(self._rng.randbytes(self._rng.randint(1, MALFORMED_MAX_BYTES)))
            self.acts["malformed"] += 1
        if ByzantineKind.OVERSIZED in self.kinds:
            # A vote's envelope with a 60 kB body: within the transport's limit, far over a
            # vote's, so only the receiver's decoder can refuse it.
            body = b"\xc5" + OVERSIZED_BODY_BYTES.to_bytes(2, "big") + bytes(OVERSIZED_BODY_BYTES)
            self._everywhere(b"\x92" + bytes([MessageKind.VOTE]) + body)
            self.acts["oversized"] += 1
        if ByzantineKind.TX_FLOOD in self.kinds:
            self._broadcast_quietly(TOPIC_TXS, self._forged_batch())
            self.acts["tx_flood_batches"] += 1
        if ByzantineKind.STALE_REPLAY in self.kinds:
            stale = [data for height, data in self._sent if height <= self._newest_height - 2]
            for data in stale[-self.settings.replay_per_interval :]:
                self._broadcast_quietly(TOPIC_CONSENSUS, data)
                self.acts["stale_replays"] += 1

    def _forged_batch(self) -> bytes:
        txs = tuple(
            TX_CODEC.encode(
                Transaction(
                    chain_id=self._chain_id,
                    sender=self._rng.randbytes(32),
                    nonce=self._rng.randrange(1 << 32),
                    kind="kv.set",
                    payload=self._rng.randbytes(32),
                    priority=0,
                    signature=self._rng.randbytes(64),
                )
            )
            for _ in range(self.settings.flood_batch_txs)
        )
        return encode_message(TxBatch(txs))

    def _everywhere(self, data: bytes) -> None:
        """``data`` on every gossip topic and on the direct stream of every peer."""
        for topic in (TOPIC_CONSENSUS, TOPIC_TXS):
            self._broadcast_quietly(topic, data)
        for peer in self._inner.peers():
            self._send_quietly(peer, TOPIC_CONSENSUS, data)

    def _broadcast_quietly(self, topic: str, data: bytes) -> None:
        try:
            self._inner.broadcast(topic, data)
        except NetworkError as exc:
            logger.debug("byzantine broadcast refused: %s", exc)

    def _send_quietly(self, peer: PeerId, topic: str, data: bytes) -> None:
        try:
            self._inner.send(peer, topic, data)
        except NetworkError as exc:
            logger.debug("byzantine send refused: %s", exc)


def byzantine_network(
    inner: RuntimeNetwork,
    kinds: frozenset[ByzantineKind],
    *,
    signer: Signer | None,
    chain_id: str,
    environ: Mapping[str, str] = os.environ,
) -> ByzantineNetwork | None:
    """``inner`` behind a ``ByzantineNetwork`` doing ``kinds``, or ``None`` when ``kinds`` is
    empty; ``ByzantineModeError`` where the mode is refused (checked again here, whatever
    the caller checked)."""
    if not kinds:
        return None
    check_byzantine_allowed(chain_id, environ)
    return ByzantineNetwork(inner, kinds, signer=signer, chain_id=chain_id)
