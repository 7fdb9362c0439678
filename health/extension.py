"""``HealthExtension``: encrypted records' custody plugged into a running node.

The composition root (``node.cli.health_net``) builds it for a health chain with the vault
(its own LevelDB at ``HOME/vault``) and the custodian key (``HOME/custodian_key``; None on a
node that keeps no records). The node serves its routes (``health.api``) beside its own API and runs
``run``, which

1. registers the record protocol ``/bighealth/records/1`` (answering ``busy`` until the
   custodian is ready) and subscribes to committed heights;
2. finds the custodian identity (``custodian_id``, else the identity whose current signing
   key is the custodian key; until it is registered on chain, the node re-reads at each
   commit and uploads are refused ``busy``);
3. announces this node as the custodian's (``identity.announce_node`` signed by the custodian
   key) unless ``identity/n/<custodian id>`` names it already: re-read after a back-off and
   the announcement sent again (the same transaction while the node may still hold it, a
   fresh one if it was refused) until it is committed, at most ``AnnounceConfig.attempts``
   times;
4. runs the ``Custodian``: commit notices (pending -> stored, erasure, reconciliation after a
   gap), audit batches signed by the custodian key, repair, expiry.

Fetches through ``POST /records/fetch`` go to the custodian each request names: served here
when it is this node's, else asked of the node that custodian announced on chain
(``identity/n/<id>``), the next request's custodian being tried while one is down; what a
custodian served is checked against the commitment before it is passed on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

from health.api import ApiLimits, records_routes
from health.contracts.common import get_identity, identity_of_sender, is_acting
from health.contracts.identity import NODE_ANNOUNCERS, announce_node_payload, node_of
from health.contracts.records import RecordCommitment, get_record, render_record
from health.custodian import FINAL_REASONS, Custodian, CustodianConfig
from health.envelopes import commitment_of
from health.records_wire import (
    FETCH_REQUEST_CODEC,
    PROTOCOL,
    FetchRequest,
    FetchResponse,
    RecordsError,
    decode_answer,
    decode_fetch_response,
    encode_refusal,
    encode_request,
)
from health.vault import PendingBlob, Vault
from health.web.dashboard import dashboard_routes
from node.app.module import JsonValue
from node.codec import TX_CODEC, sign_transaction
from node.errors import BigHealthError, NetworkError, RejectReason
from node.ports import PeerId, Signer
from node.runtime.extension import CommitNotice, ExtensionRoute, NodeServices, StateReader
from node.types import UnsignedTransaction

logger = logging.getLogger("health.extension")

EXTENSION_NAME: Final = "health"


@dataclass(frozen=True, slots=True)
class AnnounceConfig:
    """How the node announces itself as its custodian's: the state is re-read
    ``backoff_ms`` after each submission, doubling up to ``backoff_max_ms``, at most
    ``attempts`` times."""

    attempts: int = 8
    backoff_ms: int = 1_000
    backoff_max_ms: int = 30_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 1:
                raise ValueError(f"AnnounceConfig.{name} must be >= 1")


def system_clock_ms() -> int:
    """Wall-clock milliseconds (the production clock of the custodian)."""
    return time.time_ns() // 1_000_000


class HealthExtension:
    """Records custody on a node (a ``node.runtime.extension.NodeExtension``)."""

    def __init__(
        self,
        vault: Vault | None,
        custodian_signer: Signer | None,
        *,
        custodian_id: bytes | None = None,
        clock: Callable[[], int] = system_clock_ms,
        rng_bytes: Callable[[int], bytes] = os.urandom,
        config: CustodianConfig | None = None,
        api_limits: ApiLimits | None = None,
        announce: AnnounceConfig | None = None,
    ) -> None:
        if custodian_signer is not None and vault is None:
            raise ValueError("a custodian needs a vault")
        self.vault = vault
        self.custodian_signer = custodian_signer
        self.custodian_id = custodian_id
        self.clock = clock
        self.rng_bytes = rng_bytes
        self.config = config if config is not None else CustodianConfig()
        self.api_limits = api_limits
        self.announce_config = announce if announce is not None else AnnounceConfig()
        # Whether this node was seen announced as the custodian's (None until settled).
        self.announced: bool | None = None
        self.services: NodeServices | None = None
        self.custodian: Custodian | None = None
        self._ready = trio.Event()

    @property
    def name(self) -> str:
        """``health``."""
        return EXTENSION_NAME

    def routes(self) -> Sequence[ExtensionRoute]:
        """The records routes (``health.api``) and the dashboard's static files
        (``health.web.dashboard``, under ``/dashboard/``)."""
        return [*records_routes(self, self.api_limits), *dashboard_routes()]

    async def run(
        self, services: NodeServices, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Register the protocol, then run the custodian (if this node is one) until
        cancelled."""
        self.services = services
        services.register_handler(PROTOCOL, self._handle)
        if self.custodian_signer is None or self.vault is None:
            task_status.started()
            await trio.sleep_forever()
        commits = services.commits(self.config.commits_buffer)
        task_status.started()
        custodian_id = self.custodian_id or await self._find_identity(commits)
        self.custodian = Custodian(
            self.vault,
            services,
            custodian_id,
            self.custodian_signer,
            clock=self.clock,
            rng_bytes=self.rng_bytes,
            config=self.config,
        )
        self._ready.set()
        logger.info("custodian of %s ready", custodian_id.hex())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.custodian.run, commits)
            nursery.start_soon(self.announce, custodian_id)

    async def wait_ready(self) -> Custodian:
        """The custodian, once it runs."""
        await self._ready.wait()
        assert self.custodian is not None
        return self.custodian

    async def _find_identity(self, commits: trio.MemoryReceiveChannel[CommitNotice]) -> bytes:
        """The identity whose current signing key is the custodian key, read now and after
        each commit until it exists (the notices read meanwhile concern no record of ours:
        a record names only registered custodians)."""
        assert self.services is not None and self.custodian_signer is not None
        key = self.custodian_signer.public_key

        def read(reader: StateReader) -> bytes | None:
            identity = identity_of_sender(reader, key)
            return None if identity is None else identity.id

        found = await self.services.query(read)
        if found is None:
            logger.warning("the custodian key %s is no identity's yet: waiting", key.hex())
        while found is None:
            await commits.receive()
            found = await self.services.query(read)
        return found

    # -- the announcement -------------------------------------------------------------------

    async def announce(self, custodian_id: bytes) -> bool:
        """Make ``identity/n/<custodian_id>`` name this node (see the module docstring);
        True once it does, False when the identity may not announce (not an acting
        institution or patient) or no announcement was seen committed after
        ``attempts`` submissions. Never raises for the node's refusals or errors: they are
        logged and retried."""
        services = self._require_services()
        config = self.announce_config
        backoff_ms = config.backoff_ms
        raw: bytes | None = None
        for attempt in range(config.attempts + 1):
            try:
                announced, may = await services.query(
                    lambda reader: self._announcement_view(reader, custodian_id)
                )
                if announced == services.local_peer:
                    logger.info("this node is announced as the node of %s", custodian_id.hex())
                    self.announced = True
                    return True
                if not may:
                    logger.warning("%s may not announce a node", custodian_id.hex())
                    break
                if attempt == config.attempts:
                    logger.warning("this node's announcement was not committed: giving up")
                    break
                raw = await self._submit_announcement(raw)
            except BigHealthError as exc:
                logger.warning("announcing this node failed, will retry: %s", exc)
            await trio.sleep(backoff_ms / 1000)
            backoff_ms = min(config.backoff_max_ms, 2 * backoff_ms)
        self.announced = False
        return False

    @staticmethod
    def _announcement_view(reader: StateReader, custodian_id: bytes) -> tuple[str | None, bool]:
        identity = get_identity(reader, custodian_id)
        may = identity is not None and identity.role in NODE_ANNOUNCERS
        may = may and is_acting(reader, identity)
        return node_of(reader, custodian_id), may

    async def _submit_announcement(self, raw: bytes | None) -> bytes | None:
        """Submit ``raw`` (the announcement sent before) or a new one; the transaction to
        send again next time (None: it was refused, sign a new one). The custodian's audit
        lock keeps its batches from taking the same nonce meanwhile."""
        services = self._require_services()
        assert self.custodian is not None and self.custodian_signer is not None
        signer = self.custodian_signer
        async with self.custodian._audit_lock:
            if raw is None:
                unsigned = UnsignedTransaction(
                    chain_id=services.chain_id,
                    sender=signer.public_key,
                    nonce=await services.next_nonce(signer.public_key),
                    kind="identity.announce_node",
                    payload=announce_node_payload(services.local_peer),
                    priority=0,
                )
                raw = TX_CODEC.encode(sign_transaction(unsigned, signer))
            result = await services.submit_tx(raw)
        if result.accepted or result.reason is RejectReason.DUPLICATE:
            return raw
        logger.warning(
            "the node refused this node's announcement (%s): %s", result.reason, result.message
        )
        return None

    async def _handle(self, peer: PeerId, data: bytes) -> bytes:
        if self.custodian is None:
            return encode_refusal(RecordsError("busy", "this node's custodian is not ready"))
        return await self.custodian.handle(peer, data)

    def _require_services(self) -> NodeServices:
        if self.services is None:
            raise RecordsError("busy", "the node is starting", retry_later=True)
        return self.services

    def _require_custodian(self) -> Custodian:
        self._require_services()
        if self.custodian is None:
            if self.custodian_signer is None:
                raise RecordsError("not_custodian", "this node keeps no records")
            raise RecordsError("busy", "this node's custodian is not ready", retry_later=True)
        return self.custodian

    # -- the routes' backend (health.api.RecordsBackend) ----------------------------------

    async def upload(self, blob: PendingBlob) -> bool:
        """Keep an uploaded blob (``Custodian.accept_upload``)."""
        return await self._require_custodian().accept_upload(blob)

    async def add_keys(
        self, record: bytes, wrapped_keys: dict[bytes, bytes], signature: bytes
    ) -> int:
        """Add owner-signed wrapped keys (``Custodian.add_keys``)."""
        return await self._require_custodian().add_keys(record, wrapped_keys, signature)

    async def commitment(self, record: bytes) -> tuple[dict[str, JsonValue], bool] | None:
        """The on-chain commitment of ``record`` rendered, and whether the blob is here."""
        services = self._require_services()
        found = await services.query(lambda reader: get_record(reader, record))
        if found is None:
            return None
        held = self.vault is not None and self.vault.has(record)
        return render_record(found), held

    async def fetch(self, requests: Sequence[FetchRequest]) -> tuple[bytes, FetchResponse]:
        """The answer of the first custodian that serves one of ``requests`` (all of one
        requester for one record, each naming its custodian): a refusal no other custodian
        would answer differently ends the search; a custodian down, without the blob or the
        key yet, is passed over."""
        services = self._require_services()
        record_id = requests[0].record

        def read(reader: StateReader) -> tuple[RecordCommitment | None, dict[bytes, str | None]]:
            record = get_record(reader, record_id)
            custodians = () if record is None else record.custodians
            return record, {custodian: node_of(reader, custodian) for custodian in custodians}

        record, peers = await services.query(read)
        if record is None:
            raise RecordsError("not_found", f"no record {record_id.hex()} is committed")
        last: RecordsError | None = None
        for request in requests:
            if request.custodian not in peers:
                last = RecordsError("not_custodian", "the request names no custodian of it")
                continue
            try:
                response = await self._fetch_from(request, peers[request.custodian], record)
            except RecordsError as exc:
                if exc.reason in FINAL_REASONS or exc.reason == "malformed":
                    raise
                last = exc
                continue
            return request.custodian, response
        raise last or RecordsError("busy", "no custodian of the record could be reached")

    async def _fetch_from(
        self, request: FetchRequest, peer: PeerId | None, record: RecordCommitment
    ) -> FetchResponse:
        services = self._require_services()
        if self.custodian is not None and request.custodian == self.custodian.custodian_id:
            response = await self.custodian.fetch(request)
        elif peer is None or peer == services.local_peer:
            raise RecordsError("busy", f"custodian {request.custodian.hex()} has no node up")
        else:
            data = encode_request("fetch", FETCH_REQUEST_CODEC.encode(request))
            try:
                answer = await services.request(
                    peer, PROTOCOL, data, self.config.request_timeout_ms
                )
            except NetworkError as exc:
                raise RecordsError("busy", f"custodian {peer} is unreachable: {exc}") from exc
            response = decode_fetch_response(decode_answer(answer))
        got = commitment_of(response.ciphertext)
        if (got.ciphertext_sha256, got.size_bytes) != (record.ciphertext_sha256, record.size_bytes):
            raise RecordsError("mismatch", "a custodian served a blob that is not the record's")
        return response
