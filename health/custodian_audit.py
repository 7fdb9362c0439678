"""The custodian's audit queue: the fetches it answered or refused, queued (bounded; when
full the oldest entries are kept and the drops counted) and sent as ``audit.record``
transactions of at most ``audit_batch_max`` entries and 16 patients, every
``audit_interval_ms`` or as soon as a batch is full."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import trio

from health.contracts.audit import MAX_ACCESS_AGE_MS, MAX_PATIENTS_PER_BATCH, AccessEntry
from health.contracts.audit import record_payload as audit_record_payload
from health.contracts.common import PARAM_DEFAULTS, Access, AccessBasis, param
from health.contracts.records import RecordCommitment
from health.custodian_types import CustodianConfig, CustodianStats
from node.codec import TX_CODEC, sign_transaction
from node.errors import BigHealthError
from node.ports import Signer
from node.runtime.extension import NodeServices
from node.types import UnsignedTransaction

logger = logging.getLogger("health.custodian")

NO_BASIS: Final = Access(AccessBasis.OWNER, b"")
"""The basis a refused entry records when the reader had none (an OWNER basis with an empty
id: the only shape without a grant id that ``audit.record`` accepts)."""
AUDIT_AGE_MARGIN_MS: Final = 3600 * 1000
"""Entries this close to ``audit``'s age limit are dropped rather than sent to be refused."""


@dataclass(frozen=True, slots=True)
class QueuedAccess:
    """An audit entry waiting for its batch, with the record's owner (batches are bounded
    in patients too)."""

    entry: AccessEntry
    patient: bytes


class AuditQueue:
    """The audit entries of one custodian waiting to be sent, and their sending. ``lock``
    is held while a batch takes the signer's nonce (other senders with the same signer
    hold it too)."""

    def __init__(
        self,
        services: NodeServices,
        signer: Signer,
        *,
        clock: Callable[[], int],
        block_ms: Callable[[], int],
        config: CustodianConfig,
        counters: CustodianStats,
    ) -> None:
        self.services = services
        self.signer = signer
        self.clock = clock
        self.block_ms = block_ms  # the last committed block's time (0: none seen yet)
        self.config = config
        self.counters = counters
        self.entries: deque[QueuedAccess] = deque()
        self.batch_max = PARAM_DEFAULTS["audit_batch_max"]
        self.wakeup = trio.Event()
        self.lock = trio.Lock()

    def __len__(self) -> int:
        return len(self.entries)

    def queue(
        self,
        record: RecordCommitment,
        reader: bytes,
        now_ms: int,
        access: Access | None,
        *,
        served: bool,
    ) -> None:
        """Queue the access of ``reader`` to ``record`` (``served`` or refused)."""
        basis = access if access is not None else NO_BASIS
        entry = AccessEntry(record.id, reader, now_ms, basis.basis, basis.basis_id, served)
        if len(self.entries) >= self.config.audit_queue_max:
            self.counters.audit_dropped += 1  # keep the oldest: they are the most overdue
            return
        self.entries.append(QueuedAccess(entry, record.owner))
        self.counters.audit_queued += 1
        if len(self.entries) >= self.batch_max:
            self.wakeup.set()

    async def flush(self) -> int:
        """Send every queued entry now, in ``audit.record`` batches; how many were handed
        to the node (a batch the node refuses is dropped and counted)."""
        sent = 0
        async with self.lock:
            while self.entries:
                batch_max = await self.services.query(lambda r: param(r, "audit_batch_max"))
                self.batch_max = batch_max
                batch = self.take_batch(batch_max)
                if batch and not await self._submit(batch):
                    break
                sent += len(batch)
        return sent

    def take_batch(self, batch_max: int) -> list[QueuedAccess]:
        """The next batch: at most ``batch_max`` entries of at most 16 patients, the
        entries too old for the chain dropped, times past the last block's brought back."""
        ceiling = self.block_ms() or self.clock()
        oldest = ceiling - MAX_ACCESS_AGE_MS + AUDIT_AGE_MARGIN_MS
        batch: list[QueuedAccess] = []
        patients: set[bytes] = set()
        while self.entries and len(batch) < batch_max:
            queued = self.entries[0]
            if queued.patient not in patients and len(patients) == MAX_PATIENTS_PER_BATCH:
                break
            self.entries.popleft()
            entry = queued.entry
            if entry.accessed_ms < oldest:
                self.counters.audit_expired += 1
                continue
            patients.add(queued.patient)
            # The chain refuses an access time past its block time: a clock ahead of the
            # last committed block's is recorded at that block's time.
            if entry.accessed_ms > ceiling:
                entry = replace(entry, accessed_ms=ceiling)
            batch.append(QueuedAccess(entry, queued.patient))
        return batch

    async def _submit(self, batch: list[QueuedAccess]) -> bool:
        services = self.services
        try:
            nonce = await services.next_nonce(self.signer.public_key)
            unsigned = UnsignedTransaction(
                chain_id=services.chain_id,
                sender=self.signer.public_key,
                nonce=nonce,
                kind="audit.record",
                payload=audit_record_payload(tuple(queued.entry for queued in batch)),
                priority=0,
            )
            raw = TX_CODEC.encode(sign_transaction(unsigned, self.signer))
            result = await services.submit_tx(raw)
        except BigHealthError as exc:
            logger.warning("audit batch not submitted, kept for later: %s", exc)
            self._requeue(batch)
            return False
        if not result.accepted:
            self.counters.audit_rejected += len(batch)
            logger.error("the node refused an audit batch (%s): %s", result.reason, result.message)
            return True
        self.counters.audit_batches += 1
        self.counters.audit_submitted += len(batch)
        return True

    def _requeue(self, batch: list[QueuedAccess]) -> None:
        """Put a batch that could not be sent back at the front of the queue (what does
        not fit any more is dropped and counted)."""
        room = self.config.audit_queue_max - len(self.entries)
        kept = batch[: max(0, room)]
        self.counters.audit_dropped += len(batch) - len(kept)
        self.entries.extendleft(reversed(kept))

    async def run(self) -> None:
        """Flush every ``audit_interval_ms``, or at once when a batch is full, until
        cancelled."""
        while True:
            with trio.move_on_after(self.config.audit_interval_ms / 1000):
                await self.wakeup.wait()
            self.wakeup = trio.Event()
            try:
                await self.flush()
            except Exception:
                self.counters.errors += 1
                logger.exception("flushing the audit queue failed")
