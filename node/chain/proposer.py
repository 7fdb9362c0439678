"""Building the block this node proposes, from its mempool and pending evidence, within the
chain's size limits.

The block's time is ``propose_time_ms(now_ms, parent time)`` (this node's clock, but always
after the parent); it carries the certificate that decided the parent (``last_commit``),
the parent's state root and the hash of the height's validator set. Evidence goes first (it
is rare, small and expires; ``node.chain.evidence.pick_evidence`` keeps it within
``max_evidence_per_block`` and ``max_evidence_bytes``); transactions come from
``Mempool.reap`` by priority, in the bytes left: ``max_block_bytes`` minus the encoded header,
the evidence and the block's own framing, so the block never exceeds the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from consensus.evidence import DuplicateVoteEvidence
from node.app.blocks import assemble_block, propose_time_ms
from node.chain.evidence import pick_evidence
from node.chain.validation import ChainTip
from node.codec import BIN_HEADER_MAX_BYTES, HEADER_CODEC, block_id
from node.mempool import Mempool
from node.types import ZERO_HASH, Block, BlockHeader, CommitCertificate, PublicKey

BLOCK_FRAME_BYTES: Final = 1 + 2 * BIN_HEADER_MAX_BYTES
"""The block's array header and the array headers of its tx and evidence lists, at most
(msgpack: an array header takes at most as many bytes as a bin header)."""


def build_proposal(
    tip: ChainTip,
    *,
    proposer: PublicKey,
    last_commit: CommitCertificate | None,
    mempool: Mempool,
    now_ms: int,
    evidence: Iterable[DuplicateVoteEvidence] = (),
    admissible: Callable[[DuplicateVoteEvidence], bool] = lambda _: True,
) -> tuple[Block, bytes]:
    """The block this node proposes at ``tip.height + 1``, with the ``admissible`` part of
    the pending ``evidence``, and its canonical encoding (made once, here)."""
    time_ms = propose_time_ms(now_ms, tip.last_time_ms)
    parent = tip.last_header
    previous_block_id = ZERO_HASH if parent is None else block_id(parent)
    header = BlockHeader(
        chain_id=tip.chain_id,
        height=tip.height + 1,
        time_ms=time_ms,
        previous_block_id=previous_block_id,
        tx_root=ZERO_HASH,
        app_state_root=tip.app_state_root,
        validator_set_hash=tip.validator_set.hash(),
        proposer=proposer,
        last_commit=last_commit,
    )
    params = tip.params
    room_bytes = params.max_block_bytes - len(HEADER_CODEC.encode(header)) - BLOCK_FRAME_BYTES
    chosen, evidence_bytes = pick_evidence(
        evidence,
        max_count=params.max_evidence_per_block,
        max_bytes=min(params.max_evidence_bytes, max(0, room_bytes)),
        admissible=admissible,
    )
    reaped = mempool.reap(max(0, room_bytes - evidence_bytes), params.max_block_txs)
    return assemble_block(
        chain_id=header.chain_id,
        height=header.height,
        time_ms=header.time_ms,
        previous_block_id=header.previous_block_id,
        txs=[verified.raw for verified in reaped],
        app_state_root=header.app_state_root,
        validator_set_hash=header.validator_set_hash,
        proposer=proposer,
        last_commit=last_commit,
        evidence=chosen,
    )
