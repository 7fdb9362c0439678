"""Hypothesis strategies for every type the codec encodes (valid values only)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from node.codec import MAX_TX_PRIORITY, U32_MAX, U64_MAX
from node.types import (
    Block,
    BlockHeader,
    BlockRequest,
    BlockTxs,
    BlockTxsRequest,
    CommitCertificate,
    CommitSignature,
    CommittedBlock,
    CompactBlock,
    DuplicateVoteEvidence,
    Event,
    EventAttribute,
    LeafProof,
    Proposal,
    ResultCode,
    StateProof,
    Status,
    Transaction,
    TxBatch,
    TxReceipt,
    UnsignedTransaction,
    Validator,
    Vote,
    VoteType,
)

u64 = st.integers(0, U64_MAX)
u32 = st.integers(0, U32_MAX)
hashes = st.binary(min_size=32, max_size=32)
keys = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=64, max_size=64)
chain_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
names = st.from_regex(r"\A[a-z][a-z0-9_]{0,31}\Z")
kinds = st.builds(lambda a, b: f"{a}.{b}", names, names)
text = st.text(max_size=40)  # any Unicode the codec must carry (surrogates excluded)
small_blobs = st.binary(max_size=64)

unsigned_txs = st.builds(
    UnsignedTransaction,
    chain_id=chain_ids,
    sender=keys,
    nonce=u64,
    kind=kinds,
    payload=small_blobs,
    priority=st.integers(0, MAX_TX_PRIORITY),
)
transactions = st.builds(
    Transaction,
    chain_id=chain_ids,
    sender=keys,
    nonce=u64,
    kind=kinds,
    payload=small_blobs,
    priority=st.integers(0, MAX_TX_PRIORITY),
    signature=signatures,
)
votes = st.builds(
    Vote,
    chain_id=chain_ids,
    height=u64,
    round=u32,
    vote_type=st.sampled_from(VoteType),
    value_id=st.none() | hashes,
    validator=keys,
    signature=signatures,
)
evidence = st.builds(
    lambda vote, other_value, other_signature: DuplicateVoteEvidence.from_votes(
        vote,
        Vote(
            vote.chain_id,
            vote.height,
            vote.round,
            vote.vote_type,
            None if other_value == vote.value_id else other_value,
            vote.validator,
            other_signature,
        ),
    ),
    votes.filter(lambda vote: vote.value_id is not None),
    hashes,
    signatures,
)
proposals = st.builds(
    Proposal,
    chain_id=chain_ids,
    height=u64,
    round=u32,
    value_id=hashes,
    valid_round=st.integers(-1, U32_MAX),
    proposer=keys,
    signature=signatures,
)
commit_signatures = st.builds(CommitSignature, validator=keys, signature=signatures)
certificates = st.builds(
    CommitCertificate,
    chain_id=chain_ids,
    height=u64,
    round=u32,
    value_id=hashes,
    signatures=st.lists(commit_signatures, max_size=4).map(tuple),
)
validators = st.builds(Validator, public_key=keys, voting_power=u64)
headers = st.builds(
    BlockHeader,
    chain_id=chain_ids,
    height=u64,
    time_ms=u64,
    previous_block_id=hashes,
    tx_root=hashes,
    app_state_root=hashes,
    validator_set_hash=hashes,
    proposer=keys,
    last_commit=st.none() | certificates,
    evidence_root=hashes,
)
tx_lists = st.lists(st.binary(max_size=200), max_size=8).map(tuple)
blocks = st.builds(
    Block, header=headers, txs=tx_lists, evidence=st.lists(evidence, max_size=2).map(tuple)
)
attributes = st.builds(EventAttribute, key=names, value=text)
events = st.builds(
    Event,
    name=kinds,
    attributes=st.lists(attributes, max_size=4).map(tuple),
)
receipts = st.builds(
    TxReceipt,
    tx_hash=hashes,
    code=st.sampled_from(ResultCode),
    log=text,
    gas_used=u64,
    events=st.lists(events, max_size=3).map(tuple),
)
leaf_proofs = st.builds(
    LeafProof,
    key=st.binary(max_size=40),
    value=small_blobs,
    leaf_index=u64,
    path=st.lists(hashes, max_size=5).map(tuple),
)
state_proofs = st.builds(
    StateProof,
    height=u64,
    state_root=hashes,
    tree_size=u64,
    key=st.binary(max_size=40),
    value=st.none() | small_blobs,
    found=st.none() | leaf_proofs,
    lower=st.none() | leaf_proofs,
    upper=st.none() | leaf_proofs,
)
tx_batches = st.builds(TxBatch, txs=tx_lists)
statuses = st.builds(Status, height=u64, last_block_id=hashes)
block_requests = st.builds(BlockRequest, height=u64)
committed_blocks = st.builds(CommittedBlock, block=blocks, commit=certificates)
compact_blocks = st.builds(
    CompactBlock,
    header=headers,
    tx_hashes=st.lists(hashes, max_size=8).map(tuple),
    evidence=st.lists(evidence, max_size=2).map(tuple),
)
indexes = st.lists(st.integers(0, U32_MAX), max_size=8).map(tuple)
block_txs_requests = st.builds(BlockTxsRequest, block_id=hashes, indexes=indexes)
block_txs = st.integers(0, 8).flatmap(
    lambda n: st.builds(
        BlockTxs,
        block_id=hashes,
        indexes=st.lists(st.integers(0, U32_MAX), min_size=n, max_size=n).map(tuple),
        txs=st.lists(st.binary(max_size=200), min_size=n, max_size=n).map(tuple),
    )
)

BY_TYPE: dict[type, st.SearchStrategy[Any]] = {
    UnsignedTransaction: unsigned_txs,
    Transaction: transactions,
    Vote: votes,
    Proposal: proposals,
    DuplicateVoteEvidence: evidence,
    CommitSignature: commit_signatures,
    CommitCertificate: certificates,
    Validator: validators,
    BlockHeader: headers,
    Block: blocks,
    EventAttribute: attributes,
    Event: events,
    TxReceipt: receipts,
    LeafProof: leaf_proofs,
    StateProof: state_proofs,
    TxBatch: tx_batches,
    Status: statuses,
    BlockRequest: block_requests,
    CommittedBlock: committed_blocks,
    CompactBlock: compact_blocks,
    BlockTxsRequest: block_txs_requests,
    BlockTxs: block_txs,
}

any_value = st.one_of(*BY_TYPE.values())
messages = st.one_of(
    tx_batches,
    proposals,
    votes,
    blocks,
    statuses,
    block_requests,
    committed_blocks,
    compact_blocks,
    block_txs_requests,
    block_txs,
)
