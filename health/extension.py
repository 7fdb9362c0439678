"""``HealthExtension``: encrypted records' custody plugged into a running node.

The composition root (``node.cli``) builds it for a health chain with the vault (a LevelDB at
``HOME/data/vault``) and the custodian key (``HOME/custodian_key``; None on a node that keeps
no records). The node serves its routes (``health.api``) beside its own API and runs
``run``, which

1. registers the record protocol ``/bighealth/records/1`` (answering ``busy`` until the
   custodian is ready) and subscribes to committed heights;
2. finds the custodian identity (``custodian_id``, else the identity whose current signing
   key is the custodian key; until it is registered on chain, the node re-reads at each
   commit and uploads are refused ``busy``);
3. runs the ``Custodian``: commit notices (pending -> stored, erasure, reconciliation after a
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
from typing import Any, Final

import trio

from health.api import ApiLimits, records_routes
from health.contracts.common import identity_of_sender
from health.contracts.identity import node_of
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
from node.app.module import JsonValue
from node.errors import NetworkError
from node.ports import PeerId, Signer
from node.runtime.extension import CommitNotice, ExtensionRoute, NodeServices, StateReader

logger = logging.getLogger("health.extension")

EXTENSION_NAME: Final = "health"


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
        self.services: NodeServices | None = None
        self.custodian: Custodian | None = None
        self._ready = trio.Event()

    @property
    def name(self) -> str:
        """``health``."""
        return EXTENSION_NAME

    def routes(self) -> Sequence[ExtensionRoute]:
        """The records routes (``health.api``)."""
        return records_routes(self, self.api_limits)

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
        await self.custodian.run(commits)

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
