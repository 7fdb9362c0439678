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
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Final

import trio

from crypto_core.signatures import verify
from health.contracts.audit import MAX_ACCESS_AGE_MS, MAX_PATIENTS_PER_BATCH, AccessEntry
from health.contracts.audit import record_payload as audit_record_payload
from health.contracts.common import (
    PARAM_DEFAULTS,
    Access,
    AccessBasis,
    HealthRole,
    Identity,
    Purpose,
    get_identity,
    param,
)
from health.contracts.consent import find_access
from health.contracts.identity import node_of
from health.contracts.records import RecordCommitment, get_record
from health.envelopes import commitment_of, commitment_statement
from health.records_wire import (
    FETCH_RESPONSE_CODEC,
    KIND_FETCH,
    NONCE_BYTES,
    PROTOCOL,
    STORE_REQUEST_CODEC,
    STORE_RESPONSE_CODEC,
    FetchRequest,
    FetchResponse,
    RecordsError,
    StoreRequest,
    StoreResponse,
    WrappedKey,
    decode_answer,
    decode_fetch_request,
    decode_request,
    decode_store_request,
    decode_store_response,
    encode_ok,
    encode_refusal,
    encode_request,
    fetch_statement,
    keys_statement,
    sign_store_request,
    store_statement,
)
from health.vault import PendingBlob, Vault, VaultError
from node.codec import TX_CODEC, sign_transaction
from node.errors import BigHealthError, NetworkError, StorageError
from node.ports import PeerId, Signer
from node.runtime.extension import CommitNotice, NodeServices, StateReader
from node.types import UnsignedTransaction

logger = logging.getLogger("health.custodian")

PURPOSES: Final = frozenset({Purpose.TREATMENT, Purpose.RESEARCH})
"""What a fetch may be for; ``find_access`` keeps the grants whose purpose is one of them."""
NO_BASIS: Final = Access(AccessBasis.OWNER, b"")
"""The basis a refused entry records when the reader had none (an OWNER basis with an empty
id: the only shape without a grant id that ``audit.record`` accepts)."""
AUDIT_AGE_MARGIN_MS: Final = 3600 * 1000
"""Entries this close to ``audit``'s age limit are dropped rather than sent to be refused."""
FINAL_REASONS: Final = frozenset({"forbidden", "erased", "bad_signature", "stale", "replayed"})
"""Refusals no other custodian would answer differently (the fetch proxy stops at them)."""


@dataclass(frozen=True, slots=True)
class CustodianConfig:
    """Bounds and intervals of a custodian."""

    max_request_skew_ms: int = 60_000
    max_nonces: int = 100_000
    audit_queue_max: int = 4_096
    audit_interval_ms: int = 10_000
    commits_buffer: int = 64
    repair_queue_max: int = 1_024
    repair_attempts: int = 5
    repair_backoff_ms: int = 2_000
    repair_backoff_max_ms: int = 60_000
    request_timeout_ms: int = 10_000
    expire_interval_ms: int = 30_000
    reconcile_page: int = 256

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 1:
                raise ValueError(f"CustodianConfig.{name} must be >= 1")


@dataclass(slots=True)
class CustodianStats:
    """Counters since the start (operators' metrics)."""

    served: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    stores_served: int = 0
    uploads: int = 0
    keys_added: int = 0
    audit_queued: int = 0
    audit_dropped: int = 0
    audit_expired: int = 0
    audit_submitted: int = 0
    audit_batches: int = 0
    audit_rejected: int = 0
    erased: int = 0
    repairs_scheduled: int = 0
    repaired: int = 0
    repair_failed: int = 0
    repair_dropped: int = 0
    repair_mismatch: int = 0
    reconciliations: int = 0
    errors: int = 0


class RepairOutcome(Enum):
    """What one repair attempt of a record came to."""

    DONE = "done"
    RETRY = "retry"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class QueuedAccess:
    """An audit entry waiting for its batch, with the record's owner (batches are bounded
    in patients too)."""

    entry: AccessEntry
    patient: bytes


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


@dataclass(frozen=True, slots=True)
class _UploadView:
    author: Identity | None
    owner: Identity | None
    record: RecordCommitment | None


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
        self.last_block_ms = 0
        self._audit: deque[QueuedAccess] = deque()
        self._audit_batch_max = PARAM_DEFAULTS["audit_batch_max"]
        self._audit_wakeup = trio.Event()
        self._audit_lock = trio.Lock()
        self._repairs: list[tuple[float, int, bytes, int]] = []  # (due, seq, record, attempts)
        self._repairing: set[bytes] = set()
        self._repair_seq = 0
        self._repair_wakeup = trio.Event()

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
        try:
            response = await self._fetch(request, self.clock())
        except RecordsError as exc:
            self._count_refusal(exc)
            raise
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
        statement = fetch_statement(
            self.services.chain_id,
            request.requester,
            request.record,
            request.custodian,
            request.nonce,
            request.time_ms,
        )
        self._check_signed(view.signing_key, statement, request.signature)
        self._remember_nonce(b"f" + request.requester + request.nonce, request.time_ms, now_ms)
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
        self._queue_audit(record, request.requester, now_ms, access, served=refusal is None)
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
        try:
            response = await self._store(request, self.clock())
        except RecordsError as exc:
            self._count_refusal(exc)
            raise
        self.counters.stores_served += 1
        return response

    async def _store(self, request: StoreRequest, now_ms: int) -> StoreResponse:
        self._check_addressed(request.custodian, request.time_ms, now_ms)

        def read(reader: StateReader) -> tuple[bytes | None, RecordCommitment | None]:
            identity = get_identity(reader, request.requester)
            key = None if identity is None else identity.signing_key
            return key, get_record(reader, request.record)

        signing_key, found = await self.services.query(read)
        statement = store_statement(
            self.services.chain_id,
            request.requester,
            request.record,
            request.custodian,
            request.nonce,
            request.time_ms,
        )
        self._check_signed(signing_key, statement, request.signature)
        self._remember_nonce(b"s" + request.requester + request.nonce, request.time_ms, now_ms)
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

    @staticmethod
    def _check_signed(signing_key: bytes | None, statement: bytes, signature: bytes) -> None:
        if signing_key is None or not verify(signing_key, statement, signature):
            raise RecordsError("bad_signature", "not signed by the requester's current signing key")

    def _remember_nonce(self, key: bytes, time_ms: int, now_ms: int) -> None:
        self.nonces.remember(key, time_ms + self.config.max_request_skew_ms, now_ms)

    def _require_record(self, record: RecordCommitment | None) -> RecordCommitment:
        if record is None:
            raise RecordsError("not_found", "no such record is committed")
        if self.custodian_id not in record.custodians:
            raise RecordsError("not_custodian", "this node is not a custodian of the record")
        return record

    def _count_refusal(self, error: RecordsError) -> None:
        refused = self.counters.refused
        refused[error.reason] = refused.get(error.reason, 0) + 1

    # -- uploads and keys ---------------------------------------------------------------------

    async def accept_upload(self, blob: PendingBlob) -> bool:
        """Keep an uploaded blob pending (True if its commitment is already committed and
        matches: stored at once). Refused: the vault's checks, ``bad_signature`` (the
        author's statement does not verify with the author's current key), ``forbidden``
        (the owner is not a patient), ``erased``, ``not_custodian`` (the committed record
        names other custodians), ``mismatch`` (it does not match its commitment)."""
        self.vault.check_blob(blob)

        def read(reader: StateReader) -> _UploadView:
            return _UploadView(
                get_identity(reader, blob.author),
                get_identity(reader, blob.owner),
                get_record(reader, blob.record_id),
            )

        view = await self.services.query(read)
        if view.owner is None or view.owner.role is not HealthRole.PATIENT:
            raise RecordsError("forbidden", "the owner is not a patient on chain")
        statement = commitment_statement(
            chain_id=self.services.chain_id,
            record_id=blob.record_id,
            owner=blob.owner,
            resource_type=blob.resource_type,
            code=blob.code,
            commitment=commitment_of(blob.ciphertext),
            key_epoch=blob.key_epoch,
            data_time_ms=blob.data_time_ms,
        )
        author_key = None if view.author is None else view.author.signing_key
        if author_key is None or not verify(author_key, statement, blob.author_signature):
            raise RecordsError("bad_signature", "the author's signature does not verify")
        record = view.record
        if record is not None:
            if record.erased:
                raise RecordsError("erased", f"record {record.id.hex()} was erased")
            if self.custodian_id not in record.custodians:
                raise RecordsError("not_custodian", "the record names other custodians")
        self.vault.put_pending(blob, self.clock())
        self.counters.uploads += 1
        if record is None:
            return False
        if not self._committed(record):
            raise RecordsError("mismatch", "the blob does not match the committed commitment")
        self._repairing.discard(record.id)
        return True

    async def add_keys(
        self, record_id: bytes, wrapped_keys: Mapping[bytes, bytes], signature: bytes
    ) -> int:
        """Add data keys wrapped for new readers, signed by the record's owner over
        ``keys_statement``; how many wrapped keys the record holds now."""
        held_owner = self.vault.owner_of(record_id)
        if held_owner is None:
            raise RecordsError("not_found", f"record {record_id.hex()} is not held here")

        def read(reader: StateReader) -> tuple[RecordCommitment | None, Identity | None]:
            record = get_record(reader, record_id)
            owner = held_owner if record is None else record.owner
            return record, get_identity(reader, owner)

        record, owner = await self.services.query(read)
        if record is not None and record.erased:
            raise RecordsError("erased", f"record {record_id.hex()} was erased")
        statement = keys_statement(self.services.chain_id, record_id, wrapped_keys)
        owner_key = None if owner is None else owner.signing_key
        if owner_key is None or not verify(owner_key, statement, signature):
            raise RecordsError("bad_signature", "not signed by the record owner's current key")
        held = self.vault.add_wrapped_keys(record_id, wrapped_keys)
        self.counters.keys_added += len(wrapped_keys)
        return held

    def _committed(self, record: RecordCommitment) -> bool:
        return self.vault.commitment_committed(
            record.id, record.owner, record.ciphertext_sha256, record.size_bytes
        )

    # -- audit ------------------------------------------------------------------------------

    def _queue_audit(
        self,
        record: RecordCommitment,
        reader: bytes,
        now_ms: int,
        access: Access | None,
        *,
        served: bool,
    ) -> None:
        basis = access if access is not None else NO_BASIS
        entry = AccessEntry(record.id, reader, now_ms, basis.basis, basis.basis_id, served)
        if len(self._audit) >= self.config.audit_queue_max:
            self.counters.audit_dropped += 1  # keep the oldest: they are the most overdue
            return
        self._audit.append(QueuedAccess(entry, record.owner))
        self.counters.audit_queued += 1
        if len(self._audit) >= self._audit_batch_max:
            self._audit_wakeup.set()

    @property
    def audit_backlog(self) -> int:
        """Entries waiting to be sent."""
        return len(self._audit)

    async def flush_audit(self) -> int:
        """Send every queued entry now, in ``audit.record`` batches; how many were handed
        to the node (a batch the node refuses is dropped and counted)."""
        sent = 0
        async with self._audit_lock:
            while self._audit:
                batch_max = await self.services.query(lambda r: param(r, "audit_batch_max"))
                self._audit_batch_max = batch_max
                batch = self._take_batch(batch_max)
                if batch and not await self._submit_audit(batch):
                    break
                sent += len(batch)
        return sent

    def _take_batch(self, batch_max: int) -> list[QueuedAccess]:
        ceiling = self.last_block_ms or self.clock()
        oldest = ceiling - MAX_ACCESS_AGE_MS + AUDIT_AGE_MARGIN_MS
        batch: list[QueuedAccess] = []
        patients: set[bytes] = set()
        while self._audit and len(batch) < batch_max:
            queued = self._audit[0]
            if queued.patient not in patients and len(patients) == MAX_PATIENTS_PER_BATCH:
                break
            self._audit.popleft()
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

    async def _submit_audit(self, batch: list[QueuedAccess]) -> bool:
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
        room = self.config.audit_queue_max - len(self._audit)
        kept = batch[: max(0, room)]
        self.counters.audit_dropped += len(batch) - len(kept)
        self._audit.extendleft(reversed(kept))

    async def _audit_loop(self) -> None:
        while True:
            with trio.move_on_after(self.config.audit_interval_ms / 1000):
                await self._audit_wakeup.wait()
            self._audit_wakeup = trio.Event()
            try:
                await self.flush_audit()
            except Exception:
                self.counters.errors += 1
                logger.exception("flushing the audit queue failed")

    # -- commits ----------------------------------------------------------------------------

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
                self._erase(record_id)
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
            if not self._committed(record) and not self.vault.has(record.id):
                self.schedule_repair(record.id)

    def _erase(self, record_id: bytes) -> None:
        self._repairing.discard(record_id)
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
                self._erase(record_id)
            elif self.custodian_id in record.custodians:
                self._committed(record)

    async def _consume(self, commits: trio.MemoryReceiveChannel[CommitNotice]) -> None:
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

    # -- repair -----------------------------------------------------------------------------

    def schedule_repair(self, record_id: bytes, attempts: int = 0, delay_s: float = 0.0) -> None:
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

    @property
    def repairs_waiting(self) -> int:
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
        return self._committed(record)

    async def _repair_loop(self) -> None:
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
        self.schedule_repair(record_id, attempts, delay_ms / 1000)

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
            nursery.start_soon(self._consume, commits)
            nursery.start_soon(self._audit_loop)
            nursery.start_soon(self._repair_loop)
            nursery.start_soon(self._expiry_loop)
            task_status.started()

    def stats(self) -> CustodianStats:
        """A copy of the counters."""
        return replace(self.counters, refused=dict(self.counters.refused))


def _record_of(value: str | None) -> bytes | None:
    """A record id from an event attribute (hex), or None if it is not one."""
    if value is None or len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None
