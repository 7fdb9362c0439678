"""Models of the node's own routes and of the records routes, for the OpenAPI document.

The node's API (``node/api/routes.py``, ``node/api/views.py``) and the records routes
(``health/api.py``) build their JSON themselves; these models state the documents they
answer, field for field, so ``/openapi.json`` describes every route a health node serves
and the tests check real answers against them (``additionalProperties: false``: a field
added to a view without its model fails the tests). Request bodies of the records routes
are ``health.api``'s own models.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from health.web.models import Count, Hex32, Out, TimeMs
from node.chain.status import NodeStats


class HealthOut(Out):
    """``GET /health``: the core answered."""

    status: str
    height: Count
    catching_up: bool
    peers: Count


class MempoolOut(Out):
    """Transactions and bytes waiting."""

    txs: Count
    bytes: Count


class BuffersOut(Out):
    """What the core holds for later."""

    future_messages: Count
    cached_blocks: Count
    sync_buffered_blocks: Count
    pending_evidence: Count


class TrafficOut(Out):
    """The node's network counters."""

    messages_in: Count
    messages_out: Count
    bytes_in: Count
    bytes_out: Count
    dropped: dict[str, int]
    peers_connected: Count
    peers_banned: Count
    bans: Count
    handshakes_failed: Count
    requests_served: Count


class StatusOut(Out):
    """``GET /status`` (``node.api.views.status_document``)."""

    moniker: str
    version: str
    chain_id: str
    genesis_hash: Hex32
    height: Count
    round: Count
    step: str
    consensus_height: Count
    last_block_id: Hex32
    last_block_time_ms: TimeMs
    app_state_root: Hex32
    is_validator: bool
    validator_public_key: Hex32 | None
    catching_up: bool
    best_peer_height: Count
    peer_id: str
    listen_addrs: list[str]
    peers: Count
    peer_ids: list[str]
    mempool: MempoolOut
    buffers: BuffersOut
    stats: NodeStats
    uptime_s: float
    network: TrafficOut | None = None


class EquivocationOut(Out):
    """Who equivocated where."""

    validator: Hex32
    height: Count
    round: Count


class CommitOut(Out):
    """A block's commit certificate, summarised."""

    round: Count
    signatures: Count
    signers: list[Hex32]


class BlockOut(Out):
    """``GET /blocks/{height}`` (``node.api.views.block_document``)."""

    height: Count
    block_id: Hex32
    time_ms: TimeMs
    chain_id: str
    previous_block_id: Hex32
    proposer: Hex32
    tx_root: Hex32
    app_state_root: Hex32
    validator_set_hash: Hex32
    evidence_root: Hex32
    num_txs: Count
    tx_hashes: list[Hex32]
    equivocations: list[EquivocationOut]
    commit: CommitOut


class NonceOut(Out):
    """``GET /accounts/{key}/nonce``."""

    public_key: Hex32
    next_nonce: Count


class TxSubmitOut(Out):
    """``POST /tx``: admitted (202), or why not."""

    accepted: bool
    tx_hash: Hex32
    reason: str | None = None
    message: str | None = None


class NodeEventOut(Out):
    """An event: its kind and text attributes."""

    kind: str
    attributes: dict[str, str]


class TxOut(Out):
    """``GET /tx/{hash}``: a committed transaction's receipt."""

    tx_hash: Hex32
    height: Count
    index: Count
    time_ms: TimeMs
    ok: bool
    code: str
    log: str
    gas_used: Count
    events: list[NodeEventOut]


class LeafOut(Out):
    """A leaf of a state proof."""

    key: str
    value: str
    leaf_index: Count
    path: list[Hex32]


class ProofOut(Out):
    """A state proof (``node.api.views.proof_document``)."""

    height: Count
    state_root: Hex32
    tree_size: Count
    key: str
    value: str | None
    found: LeafOut | None
    lower: LeafOut | None
    upper: LeafOut | None


class StateOut(Out):
    """``GET /state/{module}/{path}``: the value as the module renders it, with its proof."""

    module: str
    path: str
    key: str
    height: Count
    state_root: Hex32
    value: Any = Field(description="the module's rendering; null when absent")
    value_hex: str | None
    proof: ProofOut


class EntryOut(Out):
    """An entry of a listing."""

    key: str
    value: Any
    value_hex: str


class EntriesOut(Out):
    """``GET /state/{module}``: entries under a prefix."""

    module: str
    prefix: str | None
    key_prefix: str
    height: Count
    state_root: Hex32
    entries: list[EntryOut]
    truncated: bool


class FeedEventOut(Out):
    """An event of the feed."""

    height: Count
    index: Count
    time_ms: TimeMs
    tx_hash: Hex32 | None
    kind: str
    attributes: dict[str, str]


class EventsOut(Out):
    """``GET /events``: a page and where to continue."""

    events: list[FeedEventOut]
    next_after: int | str
    height: Count


# -- records routes (health/api.py) -----------------------------------------------------------


class RecordStoredOut(Out):
    """``PUT /records/{id}``: ``pending`` until the commitment commits, or ``stored``."""

    record: Hex32
    status: str


class RecordKeysOut(Out):
    """``POST /records/keys``: how many wrapped keys the record holds here now."""

    record: Hex32
    keys: Count


class FetchedOut(Out):
    """``POST /records/fetch``: the ciphertext and the data key wrapped for the requester
    (base64)."""

    record: Hex32
    ciphertext: str
    wrapped_key: str
    custodian: Hex32


class CommitmentOut(Out):
    """``GET /records/{id}``: the on-chain commitment and whether this node holds it."""

    id: Hex32
    owner: Hex32
    author: Hex32
    author_basis: str
    author_basis_id: Hex32 | None
    resource_type: str
    code: str
    ciphertext_sha256: Hex32
    size_bytes: Count
    custodians: list[Hex32]
    key_epoch: Count
    data_time_ms: TimeMs
    committed_ms: TimeMs
    erased: bool
    erased_ms: TimeMs | None
    held_here: bool
