"""Is a block a valid next block of this chain? The checks a node runs before prevoting it
(``now_ms`` given: a proposal) or before applying it (``now_ms`` None: a block already decided,
received by block sync).

In order, cheapest first; the first broken rule raises ``InvalidBlockError``:

1. header chain rules (``node.app.blocks.validate_header``): chain id, height, strictly
   increasing time, ``previous_block_id``, ``last_commit`` certifies the parent; for a proposal
   also at most ``max_future_drift_ms`` ahead of this node's clock;
2. ``app_state_root`` is the state root after the parent; ``validator_set_hash`` is the hash of
   the height's set; the proposer is a member of it;
3. size: at most ``max_block_txs`` transactions and ``max_block_bytes`` encoded, within the
   codec limits, ``tx_root`` matches (``validate_body``);
4. ``last_commit`` signatures verify against the parent height's set (+2/3 of its power);
5. evidence: at most ``max_evidence_per_block`` objects and ``max_evidence_bytes``, no step
   twice, each admissible (``node.chain.evidence.evidence_problem``: this chain, not expired,
   not committed before, proven against the members of its height);
6. every transaction decodes, is for this chain, appears once, and its signature verifies
   (transactions already verified, e.g. in the mempool, are not verified again).

The result is a function of the block, the committed chain and (for proposals) the clock
reading, so a node's verdict on one block never changes while the chain stands still.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from consensus.errors import InvalidMessageError
from consensus.evidence import EvidenceKey
from consensus.validator_set import ValidatorSet
from consensus.verification import verify_commit_certificate
from node.app.blocks import validate_body, validate_header
from node.chain.evidence import EvidenceLookup, evidence_problem
from node.chain.genesis import ConsensusParams
from node.codec import EVIDENCE_CODEC, TX_CODEC, tx_hash, tx_signature_ok
from node.errors import DecodeError, InvalidBlockError
from node.types import Block, BlockHeader


@dataclass(frozen=True, slots=True)
class ChainTip:
    """What validating the block after the last committed one needs."""

    chain_id: str
    genesis_time_ms: int
    params: ConsensusParams
    height: int
    """The last committed height (0 at genesis)."""
    last_header: BlockHeader | None
    """The header of the last committed block (None at genesis)."""
    app_state_root: bytes
    """The state root after the last committed block."""
    validator_set: ValidatorSet
    """The set deciding ``height + 1``."""
    previous_set: ValidatorSet | None
    """The set that decided ``height`` (None at genesis)."""
    evidence: EvidenceLookup | None = None
    """Past validator sets and committed evidence; None: no evidence can be verified (a
    block carrying any is invalid)."""

    @property
    def last_time_ms(self) -> int:
        """The time of the last committed block (the genesis time at genesis)."""
        return self.genesis_time_ms if self.last_header is None else self.last_header.time_ms


def validate_block(
    block: Block,
    tip: ChainTip,
    *,
    now_ms: int | None,
    verified_txs: Container[bytes],
    size_bytes: int | None = None,
) -> frozenset[bytes]:
    """Check ``block`` as the next block after ``tip`` (see the module docstring).

    ``size_bytes``: the size of the block's canonical encoding, when the caller has it (a
    block received or built as bytes); otherwise the block is encoded to measure it.
    Returns the hashes of its transactions (all now verified). Raises InvalidBlockError.
    """
    header = block.header
    if header.height != tip.height + 1:
        raise InvalidBlockError(f"height {header.height}, expected {tip.height + 1}")
    validate_header(
        header,
        tip.last_header,
        chain_id=tip.chain_id,
        genesis_time_ms=tip.genesis_time_ms,
        now_ms=header.time_ms if now_ms is None else now_ms,
        max_future_drift_ms=tip.params.max_future_drift_ms,
    )
    _check_references(header, tip)
    _check_size(block, tip.params, size_bytes)
    _check_last_commit(header, tip)
    _check_evidence(block, tip)
    return _check_transactions(block, tip.chain_id, verified_txs)


def _check_references(header: BlockHeader, tip: ChainTip) -> None:
    if header.app_state_root != tip.app_state_root:
        raise InvalidBlockError("app_state_root is not the state root after the parent")
    if header.validator_set_hash != tip.validator_set.hash():
        raise InvalidBlockError("validator_set_hash is not the hash of the height's set")
    if header.proposer not in tip.validator_set:
        raise InvalidBlockError(f"proposer {header.proposer.hex()} is not a validator")


def _check_size(block: Block, params: ConsensusParams, size_bytes: int | None) -> None:
    if len(block.txs) > params.max_block_txs:
        raise InvalidBlockError(f"{len(block.txs)} txs > {params.max_block_txs}")
    size_bytes = validate_body(block, size_bytes=size_bytes)
    if size_bytes > params.max_block_bytes:
        raise InvalidBlockError(f"{size_bytes} bytes > {params.max_block_bytes}")


def _check_last_commit(header: BlockHeader, tip: ChainTip) -> None:
    if header.last_commit is None:
        return  # height 1: validate_header required None
    if tip.previous_set is None:
        raise InvalidBlockError("no validator set to check the last commit against")
    try:
        verify_commit_certificate(header.last_commit, tip.previous_set, tip.chain_id)
    except InvalidMessageError as exc:
        raise InvalidBlockError(f"last_commit does not verify: {exc}") from exc


def _check_evidence(block: Block, tip: ChainTip) -> None:
    evidence, params = block.evidence, tip.params
    if not evidence:
        return
    if len(evidence) > params.max_evidence_per_block:
        raise InvalidBlockError(f"{len(evidence)} evidence > {params.max_evidence_per_block}")
    size_bytes = sum(len(EVIDENCE_CODEC.encode(item)) for item in evidence)
    if size_bytes > params.max_evidence_bytes:
        raise InvalidBlockError(f"{size_bytes} evidence bytes > {params.max_evidence_bytes}")
    if tip.evidence is None:
        raise InvalidBlockError("this node keeps no history to verify evidence with")
    steps: set[EvidenceKey] = set()
    for index, item in enumerate(evidence):
        if item.key in steps:
            raise InvalidBlockError(f"evidence {index} repeats a step")
        steps.add(item.key)
        problem = evidence_problem(
            item,
            chain_id=tip.chain_id,
            block_height=block.header.height,
            max_age_heights=params.evidence_max_age_heights,
            lookup=tip.evidence,
        )
        if problem is not None:
            raise InvalidBlockError(f"evidence {index}: {problem}")


def _check_transactions(
    block: Block, chain_id: str, verified_txs: Container[bytes]
) -> frozenset[bytes]:
    hashes: set[bytes] = set()
    for index, raw in enumerate(block.txs):
        hash_ = tx_hash(raw)
        if hash_ in hashes:
            raise InvalidBlockError(f"tx {index} appears twice")
        hashes.add(hash_)
        if hash_ in verified_txs:
            continue
        try:
            tx = TX_CODEC.decode(raw)
        except DecodeError as exc:
            raise InvalidBlockError(f"tx {index} does not decode: {exc}") from exc
        if tx.chain_id != chain_id:
            raise InvalidBlockError(f"tx {index} is for chain {tx.chain_id!r}")
        if not tx_signature_ok(tx):
            raise InvalidBlockError(f"tx {index} has a bad signature")
    return frozenset(hashes)
