"""The custodian: serves ``/bighealth/records/1`` from its vault, audits, erases, repairs.

A node acts as the custodian of one identity (``custodian_id``), whose signing key it holds
(``signer``). The custodian

- serves ``fetch``: a reader's signed request (the requester's *current* on-chain signing
  key, a time within ``max_request_skew_ms`` of our clock, a nonce not seen in that window)
  for a committed, unerased record naming this custodian, that the reader may read now
  (``consent.find_access`` on the latest committed state for treatment or research, as the
  grant allows), answered with the ciphertext and the data key wrapped for the reader
  (``key_pending`` until the patient's client has wrapped one);
- serves ``store``: another custodian of the same record asks for the blob and every
  wrapped key (repair);
- accepts uploads (``accept_upload``: the author's signature over the commitment statement,
  checked against the author's current key) and wrapped keys signed by the owner
  (``add_keys``);
- audits: every fetch of a record it keeps by an authenticated, fresh request — served or
  refused — is queued (bounded; when full the oldest entries are kept and the drops
  counted) and flushed as ``audit.record`` transactions of at most the governance parameter
  ``audit_batch_max`` entries (and 16 patients), every ``audit_interval_ms`` or as soon as a
  batch is full. Requests whose signature, time or nonce fail are refused and counted, not
  audited: the reader they name cannot be trusted to have asked;
- follows commits: a pending blob becomes stored on ``records.committed`` of a record
  naming this custodian; ``records.erased`` destroys the blob and its keys; at start and
  after a gap in the notices it reconciles its pending and stored blobs against the state;
- repairs: a committed record naming this custodian that the vault lacks is asked of the
  other custodians' nodes (``store``), checked against the commitment's SHA-256 and size,
  with bounded retries and exponential back-off.

The clock (``clock() -> ms``) and the randomness (``rng_bytes(n)``) are injected; back-off
and intervals wait on trio's clock (tests use ``MockClock``).

This module serves the protocol; the class delegates the rest to its parts:
``health.custodian_uploads`` (uploads and wrapped keys), ``health.custodian_audit`` (the
audit queue and its batches), ``health.custodian_commits`` (following commits, erasure,
reconciliation), ``health.custodian_repair`` (repair) and ``health.custodian_types``
(settings, counters).
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar

import trio

from crypto_core.signatures import verify
from health.contracts.common import Access, Purpose, get_identity
from health.contracts.consent import find_access
from health.contracts.records import RecordCommitment, get_record
from health.custodian_audit import AUDIT_AGE_MARGIN_MS, NO_BASIS, AuditQueue, QueuedAccess
from health.custodian_commits import CommitFollower
from health.custodian_repair import Repairer, RepairOutcome
from health.custodian_types import CustodianConfig, CustodianStats
from health.custodian_uploads import Uploads
from health.records_wire import (
    FETCH_RESPONSE_CODEC,
    KIND_FETCH,
    STORE_RESPONSE_CODEC,
    FetchRequest,
    FetchResponse,
    RecordsError,
    StoreRequest,
    StoreResponse,
    WrappedKey,
    decode_fetch_request,
    decode_request,
    decode_store_request,
    encode_ok,
    encode_refusal,
    fetch_statement,
    store_statement,
)
from health.vault import PendingBlob, Vault
from node.errors import BigHealthError, StorageError
from node.ports import PeerId, Signer
from node.runtime.extension import CommitNotice, NodeServices, StateReader

__all__ = [
    "AUDIT_AGE_MARGIN_MS",
    "FINAL_REASONS",
    "NO_BASIS",
    "PURPOSES",
    "Custodian",
    "CustodianConfig",
    "CustodianStats",
    "NonceCache",
    "QueuedAccess",
    "RepairOutcome",
]

logger = logging.getLogger("health.custodian")

PURPOSES: Final = frozenset({Purpose.TREATMENT, Purpose.RESEARCH})
"""What a fetch may be for; ``find_access`` keeps the grants whose purpose is one of them."""
FINAL_REASONS: Final = frozenset({"forbidden", "erased", "bad_signature", "stale", "replayed"})
"""Refusals no other custodian would answer differently (the fetch proxy stops at them)."""

R = TypeVar("R")
_Statement = Callable[[str, bytes, bytes, bytes, bytes, int], bytes]
"""``fetch_statement`` or ``store_statement``: (chain id, requester, record, custodian,
nonce, time) to the bytes the requester signs."""


class NonceCache:
    """Nonces of accepted requests while their time is within the skew window, at most
    ``capacity`` (``busy`` beyond: replay protection is never silently weakened)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._expiry: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def remember(self, key: bytes, expires_ms: int, now_ms: int) -> None:
        """Remember ``key`` until ``expires_ms``; ``replayed`` if it is remembered already,
        ``busy`` when full."""
        while self._heap and self._heap[0][0] < now_ms:
            _, old = heapq.heappop(self._heap)
            self._expiry.pop(old, None)
        if key in self._expiry:
            raise RecordsError("replayed", "this request was served already (its nonce is used)")
        if len(self._expiry) >= self.capacity:
            raise RecordsError("busy", "too many requests in the time window", retry_later=True)
        self._expiry[key] = expires_ms
        heapq.heappush(self._heap, (expires_ms, key))


@dataclass(frozen=True, slots=True)
class _FetchView:
    """What one fetch reads of the committed state (one height)."""

    signing_key: bytes | None
    record: RecordCommitment | None
    access: Access | None


class Custodian:
    """The custodian of ``custodian_id`` on one node (see the module docstring)."""

    def __init__(
        self,
        vault: Vault,
        services: NodeServices,
        custodian_id: bytes,
        signer: Signer,
        *,
        clock: Callable[[], int],
        rng_bytes: Callable[[int], bytes],
        config: CustodianConfig | None = None,
    ) -> None:
        self.vault = vault
        self.services = services
        self.custodian_id = custodian_id
        self.signer = signer
        self.clock = clock
        self.rng_bytes = rng_bytes
        self.config = config if config is not None else CustodianConfig()
        self.counters = CustodianStats()
        self.nonces = NonceCache(self.config.max_nonces)
        self.audit = AuditQueue(
            services,
            signer,
            clock=clock,
            block_ms=lambda: self.last_block_ms,
            config=self.config,
            counters=self.counters,
        )
        self.repairs = Repairer(
            vault,
            services,
            custodian_id,
            signer,
            clock=clock,
            rng_bytes=rng_bytes,
            config=self.config,
            counters=self.counters,
        )
        self.commits = CommitFollower(
            vault,
            services,
            custodian_id,
            repairs=self.repairs,
            config=self.config,
            counters=self.counters,
        )
        self.uploads = Uploads(
            vault,
            services,
            custodian_id,
            clock=clock,
            repairs=self.repairs,
            counters=self.counters,
        )

    # -- the protocol -------------------------------------------------------------------------

    async def handle(self, peer: PeerId, data: bytes) -> bytes:
        """The protocol handler: a request in, an answer out; never raises for bad input."""
        try:
            kind, body = decode_request(data)
            if kind == KIND_FETCH:
                response = await self.fetch(decode_fetch_request(body))
                return encode_ok(FETCH_RESPONSE_CODEC.encode(response))
            stored = await self.store(decode_store_request(body))
            return encode_ok(STORE_RESPONSE_CODEC.encode(stored))
        except RecordsError as exc:
            if exc.reason == "malformed":
                self._count_refusal(exc)
            return encode_refusal(exc)
        except BigHealthError as exc:  # the vault's storage, the node's core stopping
            logger.error("could not serve %s: %s", peer, exc)
            return encode_refusal(RecordsError("busy", "the custodian cannot serve now"))

    async def fetch(self, request: FetchRequest) -> FetchResponse:
        """Serve a reader's fetch (see the module docstring); ``RecordsError`` otherwise."""
        response = await self._counting_refusals(self._fetch(request, self.clock()))
        self.counters.served += 1
        return response

    async def _fetch(self, request: FetchRequest, now_ms: int) -> FetchResponse:
        self._check_addressed(request.custodian, request.time_ms, now_ms)

        def read(reader: StateReader) -> _FetchView:
            identity = get_identity(reader, request.requester)
            record = get_record(reader, request.record)
            access = None
            if identity is not None and record is not None and not record.erased:
                access = find_access(
                    reader,
                    patient=record.owner,
                    requester=request.requester,
                    resource_type=record.resource_type,
                    code=record.code,
                    data_time_ms=record.data_time_ms,
                    now_ms=now_ms,
                    purposes=PURPOSES,
                )
            return _FetchView(None if identity is None else identity.signing_key, record, access)

        view = await self.services.query(read)
        self._check_request(request, view.signing_key, fetch_statement, b"f", now_ms)
        record = self._require_record(view.record)
        access = view.access
        refusal = self._fetch_refusal(record, access)
        stored = None if refusal is not None else self.vault.get(record.id)
        if refusal is None and stored is None:
            refusal = RecordsError("not_found", f"record {record.id.hex()} is not held here yet")
        wrapped = None if stored is None else stored.wrapped_keys.get(request.requester)
        if refusal is None and wrapped is None:
            refusal = RecordsError(
                "key_pending", "no data key is wrapped for the requester yet (ask the patient)"
            )
        self.audit.queue(record, request.requester, now_ms, access, served=refusal is None)
        if refusal is not None:
            raise refusal
        assert stored is not None and wrapped is not None
        return FetchResponse(stored.ciphertext, wrapped)

    def _fetch_refusal(
        self, record: RecordCommitment, access: Access | None
    ) -> RecordsError | None:
        if record.erased:
            if self.vault.erase(record.id):  # the notice has not come yet: do not wait for it
                self.counters.erased += 1
            return RecordsError("erased", f"record {record.id.hex()} was erased by its owner")
        if access is None:
            return RecordsError("forbidden", "the requester may not read this record now")
        return None

    async def store(self, request: StoreRequest) -> StoreResponse:
        """Serve another custodian's repair request: the blob and every wrapped key of a
        committed record that names both custodians."""
        response = await self._counting_refusals(self._store(request, self.clock()))
        self.counters.stores_served += 1
        return response

    async def _store(self, request: StoreRequest, now_ms: int) -> StoreResponse:
        self._check_addressed(request.custodian, request.time_ms, now_ms)

        def read(reader: StateReader) -> tuple[bytes | None, RecordCommitment | None]:
            identity = get_identity(reader, request.requester)
            key = None if identity is None else identity.signing_key
            return key, get_record(reader, request.record)

        signing_key, found = await self.services.query(read)
        self._check_request(request, signing_key, store_statement, b"s", now_ms)
        record = self._require_record(found)
        if record.erased:
            raise RecordsError("erased", f"record {record.id.hex()} was erased by its owner")
        if request.requester not in record.custodians:
            raise RecordsError("forbidden", "only a custodian of the record may ask for its blob")
        stored = self.vault.get(record.id)
        if stored is None:
            raise RecordsError("not_found", f"record {record.id.hex()} is not held here")
        keys = tuple(WrappedKey(r, w) for r, w in sorted(stored.wrapped_keys.items()))
        return StoreResponse(stored.ciphertext, keys, stored.author_signature)

    def _check_addressed(self, custodian: bytes, time_ms: int, now_ms: int) -> None:
        if custodian != self.custodian_id:
            raise RecordsError("not_custodian", "the request names another custodian")
        skew = self.config.max_request_skew_ms
        if abs(time_ms - now_ms) > skew:
            raise RecordsError("stale", f"the request's time is more than {skew} ms from ours")

    def _check_request(
        self,
        request: FetchRequest | StoreRequest,
        signing_key: bytes | None,
        statement_of: _Statement,
        tag: bytes,
        now_ms: int,
    ) -> None:
        """Check who signed ``request`` and that it is new: ``bad_signature`` unless
        ``signing_key`` (the requester's current key; None: no such identity) signed the
        statement ``statement_of`` makes of it; then its nonce, under ``tag`` (one per kind
        of request), is remembered for the skew window: ``replayed`` if it was seen already,
        ``busy`` when the cache is full."""
        statement = statement_of(
            self.services.chain_id,
            request.requester,
            request.record,
            request.custodian,
            request.nonce,
            request.time_ms,
        )
        if signing_key is None or not verify(signing_key, statement, request.signature):
            raise RecordsError("bad_signature", "not signed by the requester's current signing key")
        expires_ms = request.time_ms + self.config.max_request_skew_ms
        self.nonces.remember(tag + request.requester + request.nonce, expires_ms, now_ms)

    def _require_record(self, record: RecordCommitment | None) -> RecordCommitment:
        if record is None:
            raise RecordsError("not_found", "no such record is committed")
        if self.custodian_id not in record.custodians:
            raise RecordsError("not_custodian", "this node is not a custodian of the record")
        return record

    async def _counting_refusals(self, serving: Awaitable[R]) -> R:
        """What ``serving`` answers; a ``RecordsError`` it raises is counted, then raised."""
        try:
            return await serving
        except RecordsError as exc:
            self._count_refusal(exc)
            raise

    def _count_refusal(self, error: RecordsError) -> None:
        refused = self.counters.refused
        refused[error.reason] = refused.get(error.reason, 0) + 1

    # -- uploads and keys ---------------------------------------------------------------------

    async def accept_upload(self, blob: PendingBlob) -> bool:
        """Keep an uploaded blob pending (``Uploads.accept_upload``: True if it is stored at
        once; ``RecordsError`` when refused)."""
        return await self.uploads.accept_upload(blob)

    async def add_keys(
        self, record_id: bytes, wrapped_keys: Mapping[bytes, bytes], signature: bytes
    ) -> int:
        """Add data keys wrapped for new readers, signed by the record's owner
        (``Uploads.add_keys``); how many wrapped keys the record holds now."""
        return await self.uploads.add_keys(record_id, wrapped_keys, signature)

    # -- the parts: audit, commits, repair ------------------------------------------------------

    @property
    def last_block_ms(self) -> int:
        """The time of the last committed block seen (0: none yet)."""
        return self.commits.last_block_ms

    @last_block_ms.setter
    def last_block_ms(self, value: int) -> None:
        self.commits.last_block_ms = value

    @property
    def _audit(self) -> deque[QueuedAccess]:
        return self.audit.entries

    @property
    def _audit_lock(self) -> trio.Lock:
        """Held while an audit batch takes the signer's nonce."""
        return self.audit.lock

    def _take_batch(self, batch_max: int) -> list[QueuedAccess]:
        return self.audit.take_batch(batch_max)

    @property
    def audit_backlog(self) -> int:
        """Entries waiting to be sent."""
        return len(self.audit)

    async def flush_audit(self) -> int:
        """Send every queued entry now (``AuditQueue.flush``)."""
        return await self.audit.flush()

    async def on_commit(self, notice: CommitNotice) -> None:
        """Apply one committed height (``CommitFollower.on_commit``)."""
        await self.commits.on_commit(notice)

    async def reconcile(self) -> None:
        """Reconcile the vault with the state (``CommitFollower.reconcile``)."""
        await self.commits.reconcile()

    def schedule_repair(self, record_id: bytes, attempts: int = 0, delay_s: float = 0.0) -> None:
        """Ask the other custodians for ``record_id`` (``Repairer.schedule``)."""
        self.repairs.schedule(record_id, attempts, delay_s)

    @property
    def repairs_waiting(self) -> int:
        """Records waiting for a repair attempt."""
        return self.repairs.waiting

    async def repair_once(self, record_id: bytes) -> RepairOutcome:
        """One repair attempt (``Repairer.repair_once``)."""
        return await self.repairs.repair_once(record_id)

    # -- running ----------------------------------------------------------------------------

    async def _expiry_loop(self) -> None:
        while True:
            await trio.sleep(self.config.expire_interval_ms / 1000)
            try:
                while self.vault.expire_pending(self.clock()) > 0:
                    await trio.sleep(0)
            except StorageError:
                self.counters.errors += 1
                logger.exception("expiring pending blobs failed")

    async def run(
        self,
        commits: trio.MemoryReceiveChannel[CommitNotice],
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Reconcile the vault with the state, then follow ``commits``, flush audits,
        repair and expire until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.commits.run, commits)
            nursery.start_soon(self.audit.run)
            nursery.start_soon(self.repairs.run)
            nursery.start_soon(self._expiry_loop)
            task_status.started()

    def stats(self) -> CustodianStats:
        """A copy of the counters."""
        return replace(self.counters, refused=dict(self.counters.refused))
