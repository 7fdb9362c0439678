"""The JSON documents of the API: a node's status, a committed block, modules' state with its
proof, the event feed and committed transactions.

Byte strings are lower-case hex; times are milliseconds since the Unix epoch (``_ms``) or
seconds (``_s``). ``status_document`` always carries at least ``height``, ``round``,
``peers`` and ``last_block_id``, the fields operators and scripts rely on.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from node.api.gateway import NodeSnapshot
from node.chain.event_feed import EventPage, FeedEvent
from node.chain.queries import CommittedTx, ModuleEntries, ModuleState
from node.codec import block_id, tx_hash
from node.types import CommittedBlock, Event, LeafProof, StateProof, Vote


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


def state_document(state: ModuleState) -> dict[str, Any]:
    """``GET /state/<module>/<path>``: the value as the module renders it (null when
    absent), its bytes and the proof against the state root of ``height``."""
    proof = state.proof
    return {
        "module": state.module,
        "path": state.path,
        "key": proof.key.hex(),
        "height": proof.height,
        "state_root": proof.state_root.hex(),
        "value": state.rendered,
        "value_hex": _hex(proof.value),
        "proof": proof_document(proof),
    }


def proof_document(proof: StateProof) -> dict[str, Any]:
    """Every field of a ``StateProof`` (bytes as hex; ``node.app.state.verify_state_proof``
    checks it once read back)."""
    return {
        "height": proof.height,
        "state_root": proof.state_root.hex(),
        "tree_size": proof.tree_size,
        "key": proof.key.hex(),
        "value": _hex(proof.value),
        "found": _leaf(proof.found),
        "lower": _leaf(proof.lower),
        "upper": _leaf(proof.upper),
    }


def entries_document(listing: ModuleEntries) -> dict[str, Any]:
    """``GET /state/<module>?prefix=<path>``: the entries under the prefix, rendered."""
    return {
        "module": listing.module,
        "prefix": listing.path,
        "key_prefix": listing.prefix.hex(),
        "height": listing.height,
        "state_root": listing.state_root.hex(),
        "entries": [
            {"key": e.key.hex(), "value": e.rendered, "value_hex": e.value.hex()}
            for e in listing.entries
        ],
        "truncated": listing.truncated,
    }


def events_document(page: EventPage) -> dict[str, Any]:
    """``GET /events``: the page's events and where to continue (``next_after``: the
    height as a number at a height boundary, else the text ``"<height>:<index>"``)."""
    cursor = page.next_after
    return {
        "events": [feed_event_document(item) for item in page.events],
        "next_after": cursor.height if cursor.index is None else str(cursor),
        "height": page.tip_height,
    }


def feed_event_document(item: FeedEvent) -> dict[str, Any]:
    """One event of the feed."""
    return {
        "height": item.height,
        "index": item.index,
        "time_ms": item.time_ms,
        "tx_hash": _hex(item.tx_hash),
        **event_document(item.event),
    }


def event_document(event: Event) -> dict[str, Any]:
    """An event: its kind and attributes (text values)."""
    return {"kind": event.name, "attributes": {a.key: a.value for a in event.attributes}}


def tx_document(committed: CommittedTx) -> dict[str, Any]:
    """``GET /tx/<hash>``: a committed transaction's receipt and where it is."""
    receipt = committed.receipt
    return {
        "tx_hash": receipt.tx_hash.hex(),
        "height": committed.height,
        "index": committed.index,
        "time_ms": committed.time_ms,
        "ok": receipt.ok,
        "code": receipt.code.name.lower(),
        "log": receipt.log,
        "gas_used": receipt.gas_used,
        "events": [event_document(event) for event in receipt.events],
    }


def _leaf(leaf: LeafProof | None) -> dict[str, Any] | None:
    if leaf is None:
        return None
    return {
        "key": leaf.key.hex(),
        "value": leaf.value.hex(),
        "leaf_index": leaf.leaf_index,
        "path": [node.hex() for node in leaf.path],
    }


def _equivocation(vote: Vote) -> dict[str, Any]:
    """Who equivocated, where (one of the two conflicting votes names it)."""
    return {"validator": vote.validator.hex(), "height": vote.height, "round": vote.round}


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()
