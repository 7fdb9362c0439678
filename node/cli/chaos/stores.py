"""Reading the nodes' stores after a campaign, every node stopped (LevelDB is locked while
a node runs): the blocks each committed, what executing them produced, and every vote in
them and in the consensus write-ahead log.

``read_store(home, chain_id)`` opens ``HOME/data`` (never creating it) and gives a
``StoreView``: the committed height and state root, each height's block id and the hash
of its stored results (receipts and events: equal results at one height mean the nodes
executed it alike), and the votes and proposals found: the precommits of each block's own
certificate and of its ``last_commit``, and the votes, proposals and certificates in the
log of the height under way (``node.chain.wal``; a height's log is deleted when it commits).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from consensus.inputs import CommitCertificateReceived, ProposalReceived, VoteReceived
from consensus.types import CommitCertificate, VoteType
from node.adapters.leveldb_store import LevelDBStorage
from node.chain.store import RESULTS_PREFIX, decode_stored_block, read_block, read_meta
from node.chain.wal import WAL_PREFIX, decode_record
from node.codec import block_id
from node.types import Proposal, Vote

DATA_DIR: Final = "data"


@dataclass
class StoreView:
    """What one node's chain store holds (see the module docstring)."""

    height: int = 0
    app_root: bytes = b""
    block_ids: dict[int, bytes] = field(default_factory=dict)
    results: dict[int, bytes] = field(default_factory=dict)
    votes: list[Vote | Proposal] = field(default_factory=list)


def certificate_votes(certificate: CommitCertificate) -> Iterator[Vote]:
    """The precommits a commit certificate is made of."""
    for signature in certificate.signatures:
        yield Vote(
            certificate.chain_id,
            certificate.height,
            certificate.round,
            VoteType.PRECOMMIT,
            certificate.value_id,
            signature.validator,
            signature.signature,
        )


def read_store(home: Path, chain_id: str) -> StoreView:
    """The ``StoreView`` of the node at ``home`` (which must not be running)."""
    view = StoreView()
    with LevelDBStorage(home / DATA_DIR, chain_id, create_if_missing=False) as storage:
        meta = read_meta(storage)
        if meta is None:
            return view
        view.height, view.app_root = meta.height, meta.app_state_root
        for height in range(1, meta.height + 1):
            raw = read_block(storage, height)
            if raw is None:
                continue
            committed = decode_stored_block(raw)
            header = committed.block.header
            view.block_ids[height] = block_id(header)
            view.votes.extend(certificate_votes(committed.commit))
            if header.last_commit is not None:
                view.votes.extend(certificate_votes(header.last_commit))
        for key, value in storage.iterate_prefix(RESULTS_PREFIX):
            height = int.from_bytes(key[len(RESULTS_PREFIX) :], "big")
            view.results[height] = hashlib.sha256(value).digest()
        for _key, value in storage.iterate_prefix(WAL_PREFIX):
            record = decode_record(value)
            if isinstance(record, VoteReceived):
                view.votes.append(record.vote)
            elif isinstance(record, ProposalReceived):
                view.votes.append(record.proposal)
            elif isinstance(record, CommitCertificateReceived):
                view.votes.extend(certificate_votes(record.certificate))
    return view
