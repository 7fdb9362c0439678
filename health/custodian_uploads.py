"""The custodian's uploads and keys: an uploaded blob kept pending (stored at once if its
commitment is committed already), its author's signature checked against the author's
current key; data keys wrapped for new readers added when the record's owner signed them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from crypto_core.signatures import verify
from health.contracts.common import HealthRole, Identity, get_identity
from health.contracts.records import RecordCommitment, get_record
from health.custodian_repair import Repairer
from health.custodian_types import CustodianStats, store_committed
from health.envelopes import commitment_of, commitment_statement
from health.records_wire import RecordsError, keys_statement
from health.vault import PendingBlob, Vault
from node.runtime.extension import NodeServices, StateReader


@dataclass(frozen=True, slots=True)
class _UploadView:
    author: Identity | None
    owner: Identity | None
    record: RecordCommitment | None


class Uploads:
    """Accepts the uploads and wrapped keys of the records one custodian keeps."""

    def __init__(
        self,
        vault: Vault,
        services: NodeServices,
        custodian_id: bytes,
        *,
        clock: Callable[[], int],
        repairs: Repairer,
        counters: CustodianStats,
    ) -> None:
        self.vault = vault
        self.services = services
        self.custodian_id = custodian_id
        self.clock = clock
        self.repairs = repairs
        self.counters = counters

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
        if not store_committed(self.vault, record):
            raise RecordsError("mismatch", "the blob does not match the committed commitment")
        self.repairs.forget(record.id)
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
