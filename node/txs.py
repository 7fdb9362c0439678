"""Transaction signing and the ids of chain objects: what a sender signs, transaction ids,
and the Merkle roots and ids a block header commits to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, cast

from crypto_core import hash_leaf, merkle_root
from crypto_core.signatures import sha256, verify
from node.codec.limits import BIN_HEADER_MAX_BYTES, TX_SIGN_DOMAIN
from node.codec.schemas import EVIDENCE_CODEC, HEADER_CODEC, UNSIGNED_TX_CODEC
from node.ports import Signer
from node.types import (
    SIGNATURE_BYTES,
    BlockHeader,
    DuplicateVoteEvidence,
    Transaction,
    UnsignedTransaction,
)


def tx_sign_bytes(tx: UnsignedTransaction | Transaction) -> bytes:
    """What the sender signs: ``TX_SIGN_DOMAIN`` + the canonical unsigned transaction.

    The domain tag keeps a transaction signature from ever being valid as a consensus vote or
    any other signed message of the project.
    """
    unsigned = tx.unsigned if isinstance(tx, Transaction) else tx
    return TX_SIGN_DOMAIN + UNSIGNED_TX_CODEC.encode(unsigned)


def sign_transaction(unsigned: UnsignedTransaction, signer: Signer) -> Transaction:
    """Sign ``unsigned`` with ``signer``, whose public key must be the sender's."""
    if signer.public_key != unsigned.sender:
        raise ValueError("the signer's public key is not the transaction's sender")
    signature = signer.sign(tx_sign_bytes(unsigned))
    return Transaction(
        chain_id=unsigned.chain_id,
        sender=unsigned.sender,
        nonce=unsigned.nonce,
        kind=unsigned.kind,
        payload=unsigned.payload,
        priority=unsigned.priority,
        signature=signature,
    )


_SIGNED_TX_HEADER: Final = b"\x97"  # a fixarray of 7: the six unsigned fields, the signature
_UNSIGNED_TX_HEADER: Final = b"\x96"
_SIGNATURE_FIELD: Final = b"\xc4" + bytes([SIGNATURE_BYTES])  # bin8 of 64 bytes, the last field


def tx_sign_bytes_of_encoding(raw: bytes) -> bytes:
    """``tx_sign_bytes`` of the transaction whose canonical encoding is ``raw``, without
    encoding anything: the unsigned transaction's canonical encoding is the signed one's with
    an array header of six and without the last field (the signature). ``raw`` must be what
    ``TX_CODEC.decode`` accepted (``ValueError`` for a shape that cannot be one)."""
    field_bytes = len(_SIGNATURE_FIELD) + SIGNATURE_BYTES
    if raw[:1] != _SIGNED_TX_HEADER or raw[-field_bytes:-SIGNATURE_BYTES] != _SIGNATURE_FIELD:
        raise ValueError("not the canonical encoding of a signed transaction")
    return TX_SIGN_DOMAIN + _UNSIGNED_TX_HEADER + raw[1:-field_bytes]


def tx_signature_ok(tx: Transaction) -> bool:
    """True iff ``tx.signature`` is the sender's Ed25519 signature of ``tx_sign_bytes(tx)``."""
    return verify(tx.sender, tx_sign_bytes(tx), tx.signature)


def tx_hash(tx_bytes: bytes) -> bytes:
    """The id of a transaction: SHA-256 of its canonical bytes."""
    return sha256(tx_bytes)


def tx_root(txs: Sequence[bytes]) -> bytes:
    """RFC 9162 Merkle root over ``hash_leaf`` of each transaction's bytes."""
    return cast(bytes, merkle_root([hash_leaf(tx) for tx in txs]))


def evidence_root(evidence: Sequence[DuplicateVoteEvidence]) -> bytes:
    """RFC 9162 Merkle root over ``hash_leaf`` of each evidence object's canonical bytes
    (a block's ``evidence_root``; ``EMPTY_EVIDENCE_ROOT`` for none)."""
    return cast(bytes, merkle_root([hash_leaf(EVIDENCE_CODEC.encode(e)) for e in evidence]))


def block_id(header: BlockHeader) -> bytes:
    """The id of a block: SHA-256 of its header's canonical bytes."""
    return sha256(HEADER_CODEC.encode(header))


def block_tx_bytes(tx_bytes_len: int) -> int:
    """Bytes a transaction of ``tx_bytes_len`` takes inside a block's tx list."""
    return tx_bytes_len + BIN_HEADER_MAX_BYTES
