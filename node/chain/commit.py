"""Committing a decided block: execute, persist in ONE synced batch, announce, move on.

``Committer.commit`` takes a block consensus decided (held in ``ProposedBlocks``, with the
encoding it arrived as or was built as: a block is never encoded twice) and, in order:
judges it again unless a valid verdict is recorded (an invalid decided block halts the
node); runs ``Application.finalize_block``; updates the mempool (``recheck`` is the rule the
remaining transactions are held to again); writes the block with its certificate, its results
and transaction index, the state changes, the new height and root, the validator schedule,
the pending evidence and the deletion of the height's consensus log in ONE
``write_batch(..., sync=True)`` (``node.chain.store``) — a crash leaves the whole height or
none of it, and a storage error halts the node; emits ``BlockCommitted``; and only then
moves ``HeightState`` to the new height, pausing consensus until the next height is due
(after ``commit_wait_ms``, at once when catching up or when the wait is zero).
"""

from __future__ import annotations

from collections.abc import Callable

from consensus import ConsensusCore, Decide
from node.app.application import Application
from node.chain import store
from node.chain.actions import BlockCommitted
from node.chain.config import NodeConfig
from node.chain.errors import ChainHaltError
from node.chain.events import TimerKey, TimerKind
from node.chain.evidence import PendingEvidenceLog, is_expired
from node.chain.height import HeightState, Outbox
from node.chain.judge import BlockJudge
from node.chain.proposals import ProposedBlocks
from node.chain.round_messages import RoundMessages
from node.chain.schedule import ValidatorSchedule
from node.chain.status import NodeStats
from node.chain.store import BlockResults
from node.chain.sync import BlockSync
from node.chain.wal import ConsensusLog
from node.codec import TX_CODEC, committed_block_bytes, tx_hash
from node.errors import DecodeError, InvalidBlockError, StorageError
from node.mempool import Mempool, VerifiedTx
from node.ports import Storage, WriteOp
from node.types import Block, Transaction

__all__ = ["Committer", "Recheck"]

Recheck = Callable[[VerifiedTx], bool]
"""True if a transaction left in the mempool after a commit may stay."""


class Committer:
    """Commits decided blocks (see the module docstring)."""

    __slots__ = (
        "_app",
        "_blocks",
        "_config",
        "_consensus",
        "_held",
        "_judge",
        "_log",
        "_max_evidence_age",
        "_mempool",
        "_outbox",
        "_pending_evidence",
        "_recheck",
        "_schedule",
        "_state",
        "_stats",
        "_storage",
        "_sync",
    )

    def __init__(
        self,
        *,
        config: NodeConfig,
        max_evidence_age: int,
        state: HeightState,
        storage: Storage,
        app: Application,
        consensus: ConsensusCore,
        log: ConsensusLog,
        schedule: ValidatorSchedule,
        pending_evidence: PendingEvidenceLog,
        judge: BlockJudge,
        recheck: Recheck,
        mempool: Mempool,
        blocks: ProposedBlocks,
        held: RoundMessages,
        sync: BlockSync,
        outbox: Outbox,
        stats: NodeStats,
    ) -> None:
        self._config = config
        self._max_evidence_age = max_evidence_age
        self._state = state
        self._storage = storage
        self._app = app
        self._consensus = consensus
        self._log = log
        self._schedule = schedule
        self._pending_evidence = pending_evidence
        self._judge = judge
        self._recheck = recheck
        self._mempool = mempool
        self._blocks = blocks
        self._held = held
        self._sync = sync
        self._outbox = outbox
        self._stats = stats

    def _decoded_tx(self, hash_: bytes) -> Transaction | None:
        """The mempool's decoded transaction of ``hash_`` (execution decodes no tx twice)."""
        verified = self._mempool.get(hash_)
        return None if verified is None else verified.tx

    def _senders_of(self, block: Block) -> set[bytes]:
        """The accounts of a committed block's transactions (those that decode)."""
        senders: set[bytes] = set()
        for raw in block.txs:
            tx = self._decoded_tx(tx_hash(raw))
            if tx is None:
                try:
                    tx = TX_CODEC.decode(raw)
                except DecodeError:
                    continue  # failed in its block: it moved no nonce
            senders.add(tx.sender)
        return senders

    def commit(self, decided: Decide, block: Block) -> None:
        """Execute, persist (one synced batch) and announce the decided block, using the
        encoding it arrived as (or was built as): a block is never encoded twice."""
        height = decided.height
        data = self._blocks.encoded(decided.value_id)
        assert data is not None, "a decided block is committed from the held blocks"
        verdict = self._blocks.verdict(decided.value_id)
        if verdict is None or not verdict.valid:
            verdict = self._judge.validate(block, data, now_ms=None)
            if not verdict.valid:
                raise ChainHaltError(f"the decided block at height {height} is invalid")
        try:
            result = self._app.finalize_block(
                block,
                preverified_tx_hashes=verdict.tx_hashes,
                size_bytes=len(data),
                decoded_tx=self._decoded_tx,
            )
        except InvalidBlockError as exc:
            raise ChainHaltError(f"the decided block at height {height}: {exc}") from exc
        self._mempool.update(
            block.txs, self._app.next_nonce, self._recheck, senders=self._senders_of(block)
        )
        encoded = committed_block_bytes(data, decided.certificate)
        ops = store.commit_ops(encoded, height, result.state_changes, result.state_root)
        results = BlockResults(height, block.header.time_ms, result.block_events, result.receipts)
        ops += store.results_ops(self._storage, results)
        ops += self._schedule.commit(height, result.validator_updates)
        ops += self._settle_evidence(block, height)
        ops += self._log.delete_ops()
        try:
            self._storage.write_batch(ops, sync=True)
        except StorageError as exc:
            raise ChainHaltError(f"cannot persist height {height}: {exc}") from exc
        self._outbox.add(
            BlockCommitted(
                height,
                result.block_id,
                block.header.time_ms,
                len(block.txs),
                result.state_root,
                result.block_events,
                result.receipts,
                decided.round,
            )
        )
        self._after_commit(decided, block)

    def _after_commit(self, decided: Decide, block: Block) -> None:
        height = decided.height
        state = self._state
        state.height = height
        state.last_header = block.header
        state.last_commit = decided.certificate
        state.last_block_id = decided.value_id
        state.pending_decide = None
        state.active = False
        self._held.reset(height + 1, None)
        self._log.reset(height + 1)
        self._blocks.drop_below(height + 1)
        self._sync.drop_below(height + 1)
        self._stats.blocks_committed += 1
        self._stats.txs_committed += len(block.txs)
        catching_up = self._sync.has(height + 1) or self._sync.best_height() > height
        if catching_up or self._config.commit_wait_ms == 0:
            state.start_due = True
        else:
            key = TimerKey(TimerKind.COMMIT_WAIT, height + 1)
            self._outbox.set_timer(key, self._config.commit_wait_ms)

    def _settle_evidence(self, block: Block, height: int) -> list[WriteOp]:
        """Forget pending evidence ``block`` committed (its steps, whichever votes) or that
        expired with it; returns the writes that bring the stored copy up to date."""
        pool = self._consensus.evidence
        pool.remove(block.evidence)
        max_age = self._max_evidence_age
        pool.remove([e for e in pool.pending() if is_expired(e, height + 1, max_age)])
        self._stats.evidence_committed += len(block.evidence)
        return self._pending_evidence.sync_ops(pool.pending())
