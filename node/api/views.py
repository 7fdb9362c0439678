"""The JSON documents of the API: a node's status and a committed block.

Byte strings are lower-case hex; times are milliseconds since the Unix epoch (``_ms``) or
seconds (``_s``). ``status_document`` always carries at least ``height``, ``round``,
``peers`` and ``last_block_id``, the fields operators and scripts rely on.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from node.api.gateway import NodeSnapshot
from node.codec import block_id, tx_hash
from node.types import CommittedBlock, Vote


def status_document(snapshot: NodeSnapshot) -> dict[str, Any]:
    """``GET /status``."""
    status = snapshot.status
    document: dict[str, Any] = {
        "moniker": snapshot.moniker,
        "version": snapshot.version,
        "chain_id": status.chain_id,
        "genesis_hash": status.genesis_hash.hex(),
        "height": status.height,
        "round": status.round,
        "step": status.step,
        "consensus_height": status.consensus_height,
        "last_block_id": status.last_block_id.hex(),
        "last_block_time_ms": status.last_block_time_ms,
        "app_state_root": status.app_state_root.hex(),
        "is_validator": status.is_validator,
        "validator_public_key": _hex(snapshot.validator_key),
        "catching_up": status.catching_up,
        "best_peer_height": status.best_peer_height,
        "peer_id": snapshot.peer_id,
        "listen_addrs": list(snapshot.listen_addrs),
        "peers": len(snapshot.peers),
        "peer_ids": list(snapshot.peers),
        "mempool": {"txs": status.mempool_txs, "bytes": status.mempool_bytes},
        "buffers": {
            "future_messages": status.future_messages,
            "cached_blocks": status.cached_blocks,
            "sync_buffered_blocks": status.sync_buffered_blocks,
            "pending_evidence": status.pending_evidence,
        },
        "stats": asdict(snapshot.stats),
        "uptime_s": round(snapshot.uptime_s, 3),
    }
    if snapshot.network is not None:
        document["network"] = network_document(snapshot)
    return document


def network_document(snapshot: NodeSnapshot) -> dict[str, Any]:
    """The network part of the status: traffic totals, drops, peers and bans."""
    network = snapshot.network
    assert network is not None
    topics = network.topics.values()
    return {
        "messages_in": sum(t.messages_in for t in topics),
        "messages_out": sum(t.messages_out for t in topics),
        "bytes_in": sum(t.bytes_in for t in topics),
        "bytes_out": sum(t.bytes_out for t in topics),
        "dropped": dict(network.dropped),
        "peers_connected": network.peers_connected,
        "peers_banned": network.peers_banned,
        "bans": network.bans,
        "handshakes_failed": network.handshakes_failed,
        "requests_served": network.requests_served,
    }


def block_document(committed: CommittedBlock) -> dict[str, Any]:
    """``GET /blocks/<height>``: the header, the transactions' hashes, the certificate."""
    header = committed.block.header
    commit = committed.commit
    return {
        "height": header.height,
        "block_id": block_id(header).hex(),
        "time_ms": header.time_ms,
        "chain_id": header.chain_id,
        "previous_block_id": header.previous_block_id.hex(),
        "proposer": header.proposer.hex(),
        "tx_root": header.tx_root.hex(),
        "app_state_root": header.app_state_root.hex(),
        "validator_set_hash": header.validator_set_hash.hex(),
        "evidence_root": header.evidence_root.hex(),
        "num_txs": len(committed.block.txs),
        "tx_hashes": [tx_hash(raw).hex() for raw in committed.block.txs],
        "equivocations": [
            {
                "validator": e.vote_a.validator.hex(),
                "height": e.vote_a.height,
                "round": e.vote_a.round,
            }
            for e in committed.block.evidence
        ],
        "commit": {
            "round": commit.round,
            "signatures": len(commit.signatures),
            "signers": [s.validator.hex() for s in commit.signatures],
        },
    }


def _equivocation(vote: Vote) -> dict[str, Any]:
    """Who equivocated, where (one of the two conflicting votes names it)."""
    return {"validator": vote.validator.hex(), "height": vote.height, "round": vote.round}


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()
