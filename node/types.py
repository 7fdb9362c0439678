"""Chain data types: transactions, blocks, receipts, state proofs and network messages.

All are frozen, slotted dataclasses holding only ints, ``str``, ``bytes``, enums, tuples and
other such dataclasses, so they are hashable and compare by value. They carry no validation of
their own: ``node.codec`` holds the one schema (types, ranges, lengths) and enforces it on
every encode and decode, so a value that came off the wire is always in range.

Units and conventions: times are integer milliseconds since the Unix epoch (``*_ms``); hashes
and ids are 32-byte SHA-256 digests; accounts and validators are 32-byte Ed25519 public keys;
heights start at 1 (height 0 is the genesis state).

The consensus messages (``Vote``, ``Proposal``, ``CommitCertificate``, ...) live in
``consensus.types``, equivocation evidence (``DuplicateVoteEvidence``) in
``consensus.evidence``; they are re-exported here for convenience.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from consensus.evidence import DuplicateVoteEvidence
from consensus.types import (
    CommitCertificate,
    CommitSignature,
    Proposal,
    PublicKey,
    Validator,
    Vote,
    VoteType,
)
from crypto_core import EMPTY_ROOT

DIGEST_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
# ``previous_block_id`` of the block at height 1, which has no predecessor.
ZERO_HASH = bytes(DIGEST_BYTES)
# ``evidence_root`` of a block without evidence: the RFC 9162 root of the empty list.
EMPTY_EVIDENCE_ROOT = EMPTY_ROOT

Hash = bytes


@dataclass(frozen=True, slots=True)
class UnsignedTransaction:
    """What a sender signs: the transaction without its signature.

    ``kind`` is ``"<module>.<action>"`` (e.g. ``"kv.set"``); ``payload`` is the module's own
    canonical encoding of the action's arguments; ``nonce`` is the sender's sequence number
    (the first transaction of an account has nonce 0); ``priority`` orders the mempool (higher
    first, see ``node.mempool``).
    """

    chain_id: str
    sender: PublicKey
    nonce: int
    kind: str
    payload: bytes
    priority: int

    @property
    def module(self) -> str:
        """The module part of ``kind`` (before the first dot)."""
        return self.kind.partition(".")[0]

    @property
    def action(self) -> str:
        """The action part of ``kind`` (after the first dot)."""
        return self.kind.partition(".")[2]


@dataclass(frozen=True, slots=True)
class Transaction:
    """A transaction signed by the Ed25519 key ``sender`` (see ``node.codec.tx_sign_bytes``)."""

    chain_id: str
    sender: PublicKey
    nonce: int
    kind: str
    payload: bytes
    priority: int
    signature: bytes

    @property
    def unsigned(self) -> UnsignedTransaction:
        """The signed part of this transaction."""
        return UnsignedTransaction(
            chain_id=self.chain_id,
            sender=self.sender,
            nonce=self.nonce,
            kind=self.kind,
            payload=self.payload,
            priority=self.priority,
        )

    @property
    def module(self) -> str:
        """The module part of ``kind`` (before the first dot)."""
        return self.kind.partition(".")[0]

    @property
    def action(self) -> str:
        """The action part of ``kind`` (after the first dot)."""
        return self.kind.partition(".")[2]


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The header whose canonical encoding's SHA-256 is the block id.

    - ``time_ms``: chosen by the proposer; strictly greater than the previous block's time and
      not too far ahead of a validating node's clock (``node.app.blocks.validate_header``).
    - ``previous_block_id``: id of the block at ``height - 1`` (``ZERO_HASH`` at height 1).
    - ``tx_root``: RFC 9162 Merkle root over ``hash_leaf(tx_bytes)`` of the block's txs.
    - ``app_state_root``: the application state root *after* executing the block at
      ``height - 1`` (the genesis state root at height 1): execution follows commitment, so a
      block commits to its parent's outcome, as in Tendermint.
    - ``validator_set_hash``: hash of the validator set that decides this height.
    - ``proposer``: public key of the validator that proposed the block.
    - ``last_commit``: the certificate that decided ``height - 1`` (``None`` at height 1).
    - ``evidence_root``: RFC 9162 Merkle root over ``hash_leaf(evidence_bytes)`` of the
      block's evidence (``EMPTY_EVIDENCE_ROOT`` when it has none), so the block id commits to
      the evidence as it does to the transactions. Last, with its default, so headers built
      without evidence need not name it.
    """

    chain_id: str
    height: int
    time_ms: int
    previous_block_id: Hash
    tx_root: Hash
    app_state_root: Hash
    validator_set_hash: Hash
    proposer: PublicKey
    last_commit: CommitCertificate | None
    evidence_root: Hash = EMPTY_EVIDENCE_ROOT


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions and its evidence.

    Transactions are kept as their canonical encodings (never re-encoded: hashing, sizing and
    gossip all work on the bytes, decoding happens once at execution). ``evidence`` holds
    proofs that validators equivocated (``DuplicateVoteEvidence``, decoded: few and small),
    which the application records (``node.app.evidence``).
    """

    header: BlockHeader
    txs: tuple[bytes, ...]
    evidence: tuple[DuplicateVoteEvidence, ...] = ()


class ResultCode(IntEnum):
    """Outcome of a transaction in a block (``OK``) or why it did not apply.

    Codes below ``EXECUTION_FAILED`` mean the transaction was not authenticated and changed
    nothing (not even the nonce); from ``EXECUTION_FAILED`` on, the nonce was consumed but the
    transaction's own writes were rolled back.
    """

    OK = 0
    MALFORMED = 1
    WRONG_CHAIN = 2
    BAD_SIGNATURE = 3
    UNKNOWN_SENDER = 4
    ACCOUNT_INACTIVE = 5
    BAD_NONCE = 6
    EXECUTION_FAILED = 16
    UNKNOWN_KIND = 17
    INVALID_PAYLOAD = 18
    UNAUTHORIZED = 19
    NOT_FOUND = 20
    CONFLICT = 21
    OUT_OF_GAS = 22
    LIMIT_EXCEEDED = 23

    @property
    def consumed_nonce(self) -> bool:
        """True when a transaction with this outcome used up its nonce."""
        return self is ResultCode.OK or self >= ResultCode.EXECUTION_FAILED


@dataclass(frozen=True, slots=True)
class EventAttribute:
    """One ``key = value`` pair of an event (values are text: hex for keys and hashes,
    decimal for numbers, so subscribers need no schema to display them)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in a block, e.g. ``kv.set`` or ``care.dose_due``.

    ``name`` is ``"<module>.<event>"``; ``attributes`` are sorted by key, keys unique.
    """

    name: str
    attributes: tuple[EventAttribute, ...]

    def get(self, key: str) -> str | None:
        """The value of attribute ``key``, or ``None``."""
        for attribute in self.attributes:
            if attribute.key == key:
                return attribute.value
        return None


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """The result of one transaction of a block (``tx_hash`` = SHA-256 of its bytes)."""

    tx_hash: Hash
    code: ResultCode
    log: str
    gas_used: int
    events: tuple[Event, ...]

    @property
    def ok(self) -> bool:
        """True when the transaction applied."""
        return self.code is ResultCode.OK


@dataclass(frozen=True, slots=True)
class LeafProof:
    """A state entry and the RFC 9162 inclusion path of its leaf in a state tree."""

    key: bytes
    value: bytes
    leaf_index: int
    path: tuple[Hash, ...]


@dataclass(frozen=True, slots=True)
class StateProof:
    """The value of ``key`` at ``height`` (``None`` = absent), provable against ``state_root``.

    Present: ``found`` proves the entry. Absent: ``lower`` and ``upper`` prove the adjacent
    entries around ``key`` (either is ``None`` at an end of the tree). Checked by
    ``node.app.state.verify_state_proof``.
    """

    height: int
    state_root: Hash
    tree_size: int
    key: bytes
    value: bytes | None
    found: LeafProof | None
    lower: LeafProof | None
    upper: LeafProof | None


# -- network messages (each has a tag in node.codec.MessageKind) ---------------------------


@dataclass(frozen=True, slots=True)
class TxBatch:
    """Transactions gossiped together (few larger messages beat many small ones on libp2p)."""

    txs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """A node's latest committed height and block id, so peers know what they can ask for."""

    height: int
    last_block_id: Hash


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Ask a peer for the committed block at ``height``."""

    height: int


@dataclass(frozen=True, slots=True)
class CompactBlock:
    """A proposed block as its header, its transactions' hashes in block order and its
    evidence: a peer rebuilds the block from the transactions it holds and asks a holder of
    the block for the rest (``BlockTxsRequest``). The header's ``tx_root`` commits to the
    transactions, so a rebuilt block is checked like any other."""

    header: BlockHeader
    tx_hashes: tuple[Hash, ...]
    evidence: tuple[DuplicateVoteEvidence, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockTxsRequest:
    """Ask a peer holding the proposed block ``block_id`` for its transactions at
    ``indexes`` (ascending, no repeats)."""

    block_id: Hash
    indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BlockTxs:
    """Transactions of the proposed block ``block_id``: ``txs[i]`` is its transaction at
    ``indexes[i]`` (the answer to a ``BlockTxsRequest``, in one or more messages)."""

    block_id: Hash
    indexes: tuple[int, ...]
    txs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A decided block with the certificate that decided it (answer to ``BlockRequest``)."""

    block: Block
    commit: CommitCertificate


__all__ = [
    "DIGEST_BYTES",
    "EMPTY_EVIDENCE_ROOT",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "ZERO_HASH",
    "Block",
    "BlockHeader",
    "BlockRequest",
    "BlockTxs",
    "BlockTxsRequest",
    "CommitCertificate",
    "CommitSignature",
    "CommittedBlock",
    "CompactBlock",
    "DuplicateVoteEvidence",
    "Event",
    "EventAttribute",
    "Hash",
    "LeafProof",
    "Proposal",
    "PublicKey",
    "ResultCode",
    "StateProof",
    "Status",
    "Transaction",
    "TxBatch",
    "TxReceipt",
    "UnsignedTransaction",
    "Validator",
    "Vote",
    "VoteType",
]
