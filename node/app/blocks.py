"""Building blocks and checking the chain rules of headers and bodies.

What is checked here is everything that needs only the block, its parent header and the
validating node's clock reading. Two checks need more and belong to the caller: the
signatures and voting power of ``last_commit`` (``consensus.verify_commit_certificate``
against the validator set of ``height - 1``), and that ``validator_set_hash`` / ``proposer``
match ``ValidatorSet.hash()`` of this height's set and the proposer of the round.
``app_state_root`` is checked by the application (``Application.finalize_block``), which
knows its own state. Evidence is checked here only for its count and ``evidence_root``; that
each object proves an equivocation of a validator of its height, is not too old and not
already committed is the node's check (``node.chain.validation``), which keeps the validator
sets of past heights.

Time rule: ``time_ms`` is strictly greater than the parent's time (the genesis time at
height 1) and at most ``max_future_drift_ms`` ahead of the validating node's clock, so a
proposer cannot push the chain's clock far into the future; a node whose clock lags simply
waits (or prevotes nil) until the block's time is within reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from consensus.evidence import DuplicateVoteEvidence
from node.codec import (
    BLOCK_CODEC,
    MAX_BLOCK_BYTES,
    MAX_EVIDENCE_PER_BLOCK,
    MAX_TX_BYTES,
    MAX_TXS_PER_BLOCK,
    block_id,
    evidence_root,
    tx_root,
)
from node.errors import EncodeError, InvalidBlockError
from node.types import ZERO_HASH, Block, BlockHeader, CommitCertificate

DEFAULT_MAX_FUTURE_DRIFT_MS: Final = 10_000


def propose_time_ms(now_ms: int, previous_time_ms: int) -> int:
    """The time a proposer puts in its header: its clock, but after the parent's time."""
    return max(now_ms, previous_time_ms + 1)


def build_block(
    *,
    chain_id: str,
    height: int,
    time_ms: int,
    previous_block_id: bytes,
    txs: Sequence[bytes],
    app_state_root: bytes,
    validator_set_hash: bytes,
    proposer: bytes,
    last_commit: CommitCertificate | None,
    evidence: Sequence[DuplicateVoteEvidence] = (),
) -> Block:
    """A block over ``txs`` (already encoded) and ``evidence``, with its ``tx_root`` and
    ``evidence_root`` computed (``assemble_block`` without the encoding).

    ``InvalidBlockError`` if it would break a size limit (too many txs or bytes).
    """
    block, _ = assemble_block(
        chain_id=chain_id,
        height=height,
        time_ms=time_ms,
        previous_block_id=previous_block_id,
        txs=txs,
        app_state_root=app_state_root,
        validator_set_hash=validator_set_hash,
        proposer=proposer,
        last_commit=last_commit,
        evidence=evidence,
    )
    return block


def assemble_block(
    *,
    chain_id: str,
    height: int,
    time_ms: int,
    previous_block_id: bytes,
    txs: Sequence[bytes],
    app_state_root: bytes,
    validator_set_hash: bytes,
    proposer: bytes,
    last_commit: CommitCertificate | None,
    evidence: Sequence[DuplicateVoteEvidence] = (),
) -> tuple[Block, bytes]:
    """A block over ``txs`` (already encoded) and ``evidence``, with its ``tx_root`` and
    ``evidence_root`` computed, and its canonical encoding: the one encoding a block needs,
    to be passed on for sizing, gossip (``node.codec.block_message``) and storage
    (``node.codec.committed_block_bytes``).

    ``InvalidBlockError`` if it would break a size limit (too many txs or bytes).
    """
    header = BlockHeader(
        chain_id=chain_id,
        height=height,
        time_ms=time_ms,
        previous_block_id=previous_block_id,
        tx_root=tx_root(txs),
        app_state_root=app_state_root,
        validator_set_hash=validator_set_hash,
        proposer=proposer,
        last_commit=last_commit,
        evidence_root=evidence_root(evidence),
    )
    block = Block(header=header, txs=tuple(txs), evidence=tuple(evidence))
    data = encode_block(block)
    validate_body(block, size_bytes=len(data))
    return block, data


def encode_block(block: Block) -> bytes:
    """The canonical encoding of ``block`` (``InvalidBlockError`` if it does not fit the
    schema or ``MAX_BLOCK_BYTES``)."""
    try:
        return BLOCK_CODEC.encode(block)
    except EncodeError as exc:
        raise InvalidBlockError(f"the block does not fit its schema: {exc}") from exc


def validate_body(block: Block, *, size_bytes: int | None = None) -> int:
    """Size limits, ``tx_root`` and ``evidence_root`` of a block (``InvalidBlockError`` if
    broken); returns the size of its canonical encoding in bytes.

    ``size_bytes``: that size, when the caller has the encoding (a block decoded from its
    bytes, or one it encoded): the block is then not encoded again.
    """
    if len(block.txs) > MAX_TXS_PER_BLOCK:
        raise InvalidBlockError(f"{len(block.txs)} txs > {MAX_TXS_PER_BLOCK}")
    if len(block.evidence) > MAX_EVIDENCE_PER_BLOCK:
        raise InvalidBlockError(f"{len(block.evidence)} evidence > {MAX_EVIDENCE_PER_BLOCK}")
    for index, tx in enumerate(block.txs):
        if len(tx) > MAX_TX_BYTES:
            raise InvalidBlockError(f"tx {index} has {len(tx)} bytes > {MAX_TX_BYTES}")
    size = len(encode_block(block)) if size_bytes is None else size_bytes
    if size > MAX_BLOCK_BYTES:
        raise InvalidBlockError(f"{size} bytes > {MAX_BLOCK_BYTES}")
    if tx_root(block.txs) != block.header.tx_root:
        raise InvalidBlockError("tx_root does not match the transactions")
    if evidence_root(block.evidence) != block.header.evidence_root:
        raise InvalidBlockError("evidence_root does not match the evidence")
    return size


def validate_header(
    header: BlockHeader,
    previous: BlockHeader | None,
    *,
    chain_id: str,
    genesis_time_ms: int,
    now_ms: int,
    max_future_drift_ms: int = DEFAULT_MAX_FUTURE_DRIFT_MS,
) -> None:
    """Chain rules of ``header`` given its parent (``None`` at height 1) and the validating
    node's clock reading ``now_ms`` (``InvalidBlockError`` if broken)."""
    if header.chain_id != chain_id:
        raise InvalidBlockError(f"chain {header.chain_id!r}, expected {chain_id!r}")
    if previous is None:
        _check_first(header, genesis_time_ms)
    else:
        _check_successor(header, previous)
    if header.time_ms > now_ms + max_future_drift_ms:
        raise InvalidBlockError(
            f"time {header.time_ms} is more than {max_future_drift_ms} ms ahead of {now_ms}"
        )


def _check_first(header: BlockHeader, genesis_time_ms: int) -> None:
    if header.height != 1:
        raise InvalidBlockError(f"height {header.height} without a parent, expected 1")
    if header.previous_block_id != ZERO_HASH:
        raise InvalidBlockError("the first block's previous_block_id must be zero")
    if header.last_commit is not None:
        raise InvalidBlockError("the first block has no last commit")
    if header.time_ms <= genesis_time_ms:
        raise InvalidBlockError(f"time {header.time_ms} not after genesis {genesis_time_ms}")


def _check_successor(header: BlockHeader, previous: BlockHeader) -> None:
    if header.height != previous.height + 1:
        raise InvalidBlockError(f"height {header.height} after {previous.height}")
    if header.time_ms <= previous.time_ms:
        raise InvalidBlockError(f"time {header.time_ms} not after {previous.time_ms}")
    parent_id = block_id(previous)
    if header.previous_block_id != parent_id:
        raise InvalidBlockError("previous_block_id is not the parent's id")
    commit = header.last_commit
    if commit is None:
        raise InvalidBlockError(f"height {header.height} lacks the parent's commit")
    if (commit.chain_id, commit.height, commit.value_id) != (
        header.chain_id,
        previous.height,
        parent_id,
    ):
        raise InvalidBlockError("last_commit does not certify the parent block")
    signers = [s.validator for s in commit.signatures]
    if not signers or len(set(signers)) != len(signers):
        raise InvalidBlockError("last_commit has no or duplicate signers")
