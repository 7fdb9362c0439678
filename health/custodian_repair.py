"""The custodian's repair: a committed record naming this custodian that the vault lacks is
asked of the other custodians' nodes (``store``), checked against the commitment's SHA-256
and size, with bounded retries and exponential back-off (on trio's clock)."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from enum import Enum

import trio

from health.contracts.identity import node_of
from health.contracts.records import RecordCommitment, get_record
from health.custodian_types import CustodianConfig, CustodianStats, store_committed
from health.envelopes import commitment_of
from health.records_wire import (
    NONCE_BYTES,
    PROTOCOL,
    STORE_REQUEST_CODEC,
    RecordsError,
    StoreResponse,
    decode_answer,
    decode_store_response,
    encode_request,
    sign_store_request,
)
from health.vault import PendingBlob, Vault, VaultError
from node.errors import NetworkError
from node.ports import PeerId, Signer
from node.runtime.extension import NodeServices, StateReader

logger = logging.getLogger("health.custodian")


class RepairOutcome(Enum):
    """What one repair attempt of a record came to."""

    DONE = "done"
    RETRY = "retry"
    DROP = "drop"


class Repairer:
    """The records one custodian waits to repair, and their repair."""

    def __init__(
        self,
        vault: Vault,
        services: NodeServices,
        custodian_id: bytes,
        signer: Signer,
        *,
        clock: Callable[[], int],
        rng_bytes: Callable[[int], bytes],
        config: CustodianConfig,
        counters: CustodianStats,
    ) -> None:
        self.vault = vault
        self.services = services
        self.custodian_id = custodian_id
        self.signer = signer
        self.clock = clock
        self.rng_bytes = rng_bytes
        self.config = config
        self.counters = counters
        self._repairs: list[tuple[float, int, bytes, int]] = []  # (due, seq, record, attempts)
        self._repairing: set[bytes] = set()
        self._repair_seq = 0
        self._repair_wakeup = trio.Event()

    def schedule(self, record_id: bytes, attempts: int = 0, delay_s: float = 0.0) -> None:
        """Ask the other custodians for ``record_id`` (now, or after ``delay_s``); at most
        ``repair_queue_max`` records wait (more are dropped and counted)."""
        if record_id in self._repairing and attempts == 0:
            return
        if attempts == 0:
            if len(self._repairing) >= self.config.repair_queue_max:
                self.counters.repair_dropped += 1
                return
            self._repairing.add(record_id)
            self.counters.repairs_scheduled += 1
        self._repair_seq += 1
        due = trio.current_time() + delay_s
        heapq.heappush(self._repairs, (due, self._repair_seq, record_id, attempts))
        self._repair_wakeup.set()

    def forget(self, record_id: bytes) -> None:
        """Stop repairing ``record_id`` (stored or erased meanwhile)."""
        self._repairing.discard(record_id)

    @property
    def waiting(self) -> int:
        """Records waiting for a repair attempt."""
        return len(self._repairing)

    async def repair_once(self, record_id: bytes) -> RepairOutcome:
        """One attempt: ask each other custodian of the committed record in turn; DONE once
        a blob matching the commitment is stored, DROP when there is nothing to repair
        (held already, erased, not ours), RETRY otherwise."""
        if self.vault.has(record_id):
            return RepairOutcome.DONE

        def read(reader: StateReader) -> tuple[RecordCommitment | None, dict[bytes, str | None]]:
            record = get_record(reader, record_id)
            custodians = () if record is None else record.custodians
            return record, {c: node_of(reader, c) for c in custodians if c != self.custodian_id}

        record, peers = await self.services.query(read)
        if record is None or record.erased or self.custodian_id not in record.custodians:
            return RepairOutcome.DROP
        for custodian, peer in peers.items():
            if peer is None or peer == self.services.local_peer:
                continue
            response = await self._ask_store(record, custodian, peer)
            if response is None:
                continue
            if self._store_repaired(record, response):
                return RepairOutcome.DONE
        return RepairOutcome.RETRY

    async def _ask_store(
        self, record: RecordCommitment, custodian: bytes, peer: PeerId
    ) -> StoreResponse | None:
        request = sign_store_request(
            self.signer,
            chain_id=self.services.chain_id,
            requester=self.custodian_id,
            record=record.id,
            custodian=custodian,
            nonce=self.rng_bytes(NONCE_BYTES),
            time_ms=self.clock(),
        )
        data = encode_request("store", STORE_REQUEST_CODEC.encode(request))
        try:
            answer = await self.services.request(
                peer, PROTOCOL, data, self.config.request_timeout_ms
            )
            response = decode_store_response(decode_answer(answer))
        except (NetworkError, RecordsError) as exc:
            logger.info("custodian %s did not give record %s: %s", peer, record.id.hex(), exc)
            return None
        got = commitment_of(response.ciphertext)
        if (got.ciphertext_sha256, got.size_bytes) != (record.ciphertext_sha256, record.size_bytes):
            self.counters.repair_mismatch += 1
            logger.warning("custodian %s gave a blob that does not match %s", peer, record.id.hex())
            return None
        return response

    def _store_repaired(self, record: RecordCommitment, response: StoreResponse) -> bool:
        blob = PendingBlob(
            record_id=record.id,
            owner=record.owner,
            author=record.author,
            resource_type=record.resource_type,
            code=record.code,
            key_epoch=record.key_epoch,
            data_time_ms=record.data_time_ms,
            ciphertext=response.ciphertext,
            wrapped_keys={key.recipient: key.wrapped for key in response.wrapped_keys},
            author_signature=response.author_signature,
        )
        try:
            self.vault.put_pending(blob, self.clock())
        except VaultError as exc:
            logger.warning("repaired record %s not kept: %s", record.id.hex(), exc)
            return False
        return store_committed(self.vault, record)

    async def run(self) -> None:
        """Attempt each scheduled repair when it is due, until cancelled."""
        while True:
            if not self._repairs:
                self._repair_wakeup = trio.Event()
                await self._repair_wakeup.wait()
                continue
            due, _, record_id, attempts = self._repairs[0]
            wait_s = due - trio.current_time()
            if wait_s > 0:
                self._repair_wakeup = trio.Event()
                with trio.move_on_after(wait_s):
                    await self._repair_wakeup.wait()
                continue
            heapq.heappop(self._repairs)
            if record_id not in self._repairing:
                continue  # erased or stored meanwhile
            await self._attempt_repair(record_id, attempts)

    async def _attempt_repair(self, record_id: bytes, attempts: int) -> None:
        try:
            outcome = await self.repair_once(record_id)
        except Exception:
            self.counters.errors += 1
            logger.exception("repairing record %s failed", record_id.hex())
            outcome = RepairOutcome.RETRY
        if outcome is RepairOutcome.DONE:
            self.counters.repaired += 1
        if outcome is not RepairOutcome.RETRY:
            self._repairing.discard(record_id)
            return
        attempts += 1
        if attempts >= self.config.repair_attempts:
            self.counters.repair_failed += 1
            self._repairing.discard(record_id)
            logger.warning("gave up repairing record %s", record_id.hex())
            return
        backoff_ms = self.config.repair_backoff_ms * 2 ** (attempts - 1)
        delay_ms = min(self.config.repair_backoff_max_ms, backoff_ms)
        self.schedule(record_id, attempts, delay_ms / 1000)
