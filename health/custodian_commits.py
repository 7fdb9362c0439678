"""The custodian following commits: a pending blob becomes stored on ``records.committed``
of a record naming this custodian (or its repair is scheduled); ``records.erased`` destroys
the blob and its keys; at start and after a gap in the notices the pending and stored blobs
are reconciled against the state."""

from __future__ import annotations

import logging

import trio

from health.contracts.records import get_record
from health.custodian_repair import Repairer
from health.custodian_types import CustodianConfig, CustodianStats, store_committed
from health.vault import Vault
from node.runtime.extension import CommitNotice, NodeServices

logger = logging.getLogger("health.custodian")


class CommitFollower:
    """Applies the committed heights to one custodian's vault."""

    def __init__(
        self,
        vault: Vault,
        services: NodeServices,
        custodian_id: bytes,
        *,
        repairs: Repairer,
        config: CustodianConfig,
        counters: CustodianStats,
    ) -> None:
        self.vault = vault
        self.services = services
        self.custodian_id = custodian_id
        self.repairs = repairs
        self.config = config
        self.counters = counters
        self.last_block_ms = 0

    async def on_commit(self, notice: CommitNotice) -> None:
        """Apply one committed height: erase the erased records held here, store the
        pending blobs of committed records naming this custodian (or schedule their
        repair), reconcile everything after a gap."""
        self.last_block_ms = max(self.last_block_ms, notice.time_ms)
        committed: list[bytes] = []
        for event in notice.events:
            if event.name not in ("records.erased", "records.committed"):
                continue
            record_id = _record_of(event.get("record"))
            if record_id is None:
                logger.warning("a %s event without a record id", event.name)
            elif event.name == "records.erased":
                self.erase(record_id)
            else:
                committed.append(record_id)
        if committed:
            await self._apply_committed(committed)
        if notice.gap:
            await self.reconcile()

    async def _apply_committed(self, record_ids: list[bytes]) -> None:
        records = await self.services.query(lambda r: [get_record(r, i) for i in record_ids])
        for record in records:
            if record is None or record.erased or self.custodian_id not in record.custodians:
                continue
            if not store_committed(self.vault, record) and not self.vault.has(record.id):
                self.repairs.schedule(record.id)

    def erase(self, record_id: bytes) -> None:
        """Destroy the blob of an erased record and its keys, and stop repairing it."""
        self.repairs.forget(record_id)
        if self.vault.erase(record_id):
            self.counters.erased += 1
            logger.info("erased record %s", record_id.hex())

    async def reconcile(self) -> None:
        """After missed notices: store the pending blobs whose commitments were committed,
        erase the blobs of erased records (pending or stored), in pages of
        ``reconcile_page`` records per state query."""
        self.counters.reconciliations += 1
        page = self.config.reconcile_page
        pending = self.vault.pending_records(self.vault.limits.max_pending)
        for start in range(0, len(pending), page):
            await self._reconcile_page(pending[start : start + page])
        chunk: list[bytes] = []
        for record_id in self.vault.stored_records():
            chunk.append(record_id)
            if len(chunk) == page:
                await self._reconcile_page(chunk)
                chunk = []
        if chunk:
            await self._reconcile_page(chunk)

    async def _reconcile_page(self, record_ids: list[bytes]) -> None:
        records = await self.services.query(lambda r: [get_record(r, i) for i in record_ids])
        for record_id, record in zip(record_ids, records, strict=True):
            if record is None:
                continue  # not committed (yet): a pending blob waits for its time
            if record.erased:
                self.erase(record_id)
            elif self.custodian_id in record.custodians:
                store_committed(self.vault, record)

    async def run(self, commits: trio.MemoryReceiveChannel[CommitNotice]) -> None:
        """Reconcile once (what happened while the node was down is a gap too), then apply
        every notice."""
        try:
            await self.reconcile()
        except Exception:
            self.counters.errors += 1
            logger.exception("reconciling the vault at start failed")
        async with commits:
            async for notice in commits:
                try:
                    await self.on_commit(notice)
                except Exception:
                    self.counters.errors += 1
                    logger.exception("applying the commit of height %d failed", notice.height)


def _record_of(value: str | None) -> bytes | None:
    """A record id from an event attribute (hex), or None if it is not one."""
    if value is None or len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None
