"""``HealthClient``: the one place apps, meters, the dashboard and the demo go through.

It holds a party's keystore, talks to its own node's API (``node_url``) and to the API of
custodians' nodes, and offers:

- every health transaction (``ContractActions``: identity, consent, audit, governance, care,
  referral), signed with the keystore's current key, nonces tracked for several in flight,
  each waited for until committed (``TxSender``);
- reads of the committed state it needs: identities, record commitments, an owner's records;
- the record flows of docs/RECORDS.md: ``upload_record`` (seal, wrap for the owner and the
  readers, sign the author statement, ``PUT`` to each custodian, commit), ``read_record``
  (a signed fetch request through its own node, unwrap, open, parse), ``grant`` (the grant,
  then the covered records' keys re-wrapped for the grantee and sent to their custodians),
  ``revoke``, ``erase`` (the erasure, then the keystore's copies of the keys forgotten),
  ``rotate_keys`` and ``export_fhir_bundle``.

Custodians are identities on chain; the client reaches their nodes' APIs through a
directory (identity id -> API URL) given at construction, extended by ``add_custodian``
and by every upload. Record ids, data keys, nonces and fetch nonces come from the operating
system's generator (``nacl.utils.random``). Clock, sleep, transport and timeouts are
parameters, so the same client points at real nodes or at tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import nacl.utils

from health import fhir
from health.client.actions import ContractActions
from health.client.errors import (
    ClientError,
    RecordError,
    TransactionFailed,
    TransactionRejected,
)
from health.client.keystore import Keystore
from health.client.node_client import (
    DEFAULT_TIMEOUT_S,
    FetchedRecord,
    HttpTransport,
    NodeClient,
    NodeResponseError,
    RecordUpload,
)
from health.client.transactions import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_RECEIPT_TIMEOUT_S,
    TxSender,
)
from health.contracts.common import (
    ID_BYTES,
    IDENTITY_CODEC,
    Identity,
    Purpose,
)
from health.contracts.consent import OPEN_WINDOW
from health.contracts.records import (
    MAX_ERASE_RECORDS,
    RECORD_CODEC,
    RecordCommitment,
    commit_payload,
    erase_payload,
)
from health.envelopes import (
    DATA_KEY_BYTES,
    NONCE_BYTES,
    Commitment,
    EnvelopeError,
    commitment_of,
    commitment_statement,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from health.records_wire import (
    FETCH_REQUEST_CODEC,
    MAX_WRAPPED_KEYS,
    keys_statement,
    sign_fetch_request,
)
from health.records_wire import NONCE_BYTES as FETCH_NONCE_BYTES
from node.api.client import ApiError
from node.codec import StructCodec
from node.errors import DecodeError
from node.types import TxReceipt

logger = logging.getLogger("health.client")
T = TypeVar("T")

MAX_CUSTODIAN_CLIENTS: Final = 256
"""Custodian API clients kept (the directory itself is bounded likewise)."""
MAX_RECORDS_PER_CALL: Final = 1_000
"""Records one ``grant``, ``erase`` or ``export_fhir_bundle`` call handles."""
TRY_NEXT_CUSTODIAN: Final = frozenset({"busy", "not_found", "not_custodian", "mismatch", ""})
"""Fetch refusals that another custodian of the record may not give."""


@dataclass(frozen=True, slots=True)
class ShareResult:
    """What re-wrapping records' keys for a reader achieved: per record, the custodians
    that took the new key, and why the others (or the record) failed."""

    delivered: dict[bytes, list[bytes]] = field(default_factory=dict)
    failed: dict[bytes, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GrantResult:
    """A committed grant and the keys re-wrapped for its grantee."""

    grant_id: bytes
    shared: ShareResult


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class HealthClient(ContractActions):
    """A party's client of the health chain (see the module docstring)."""

    def __init__(
        self,
        node_url: str,
        keystore: Keystore,
        chain_id: str,
        *,
        custodians: Mapping[bytes, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        receipt_timeout_s: float = DEFAULT_RECEIPT_TIMEOUT_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        transport: HttpTransport | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``node_url``: our node's API; ``custodians``: identity id -> API URL of the nodes
        keeping records; ``clock_ms``: wall clock for fetch requests and bundles;
        ``monotonic``/``sleep``: for waiting on receipts."""
        self.keystore = keystore
        self._transport = transport
        self._timeout_s = timeout_s
        self.node = NodeClient(node_url, timeout_s=timeout_s, transport=transport)
        self.tx = TxSender(
            self.node,
            lambda: self.keystore.signer,
            chain_id,
            receipt_timeout_s=receipt_timeout_s,
            poll_interval_s=poll_interval_s,
            monotonic=monotonic,
            sleep=sleep,
        )
        self.clock_ms = clock_ms
        self._directory: dict[bytes, str] = {}
        self._clients: dict[str, NodeClient] = {}
        for identity_id, url in (custodians or {}).items():
            self.add_custodian(identity_id, url)

    @property
    def identity_id(self) -> bytes:
        """Our identity id (the keystore's)."""
        return self.keystore.identity_id

    # -- directory --------------------------------------------------------------------------

    def add_custodian(self, identity_id: bytes, url: str) -> None:
        """Reach the custodian ``identity_id``'s node at the API ``url``."""
        if len(identity_id) != ID_BYTES:
            raise ValueError(f"an identity id is {ID_BYTES} bytes")
        if identity_id not in self._directory and len(self._directory) >= MAX_CUSTODIAN_CLIENTS:
            raise ClientError(f"the custodian directory holds {MAX_CUSTODIAN_CLIENTS} entries")
        self._client_for(url)  # checks the URL
        self._directory[identity_id] = url

    def custodian_url(self, identity_id: bytes) -> str | None:
        """The API URL of a custodian's node, if known."""
        return self._directory.get(identity_id)

    def _client_for(self, url: str) -> NodeClient:
        client = self._clients.get(url)
        if client is None:
            if len(self._clients) >= MAX_CUSTODIAN_CLIENTS:
                self._clients.pop(next(iter(self._clients)))
            client = NodeClient(url, timeout_s=self._timeout_s, transport=self._transport)
            self._clients[url] = client
        return client

    # -- reads ------------------------------------------------------------------------------

    def identity(self, identity_id: bytes) -> Identity | None:
        """The committed identity ``identity_id``, or None."""
        value = self.node.state("identity", f"i/{identity_id.hex()}").value
        return None if value is None else _decode(IDENTITY_CODEC, value, "identity")

    def record(self, record_id: bytes) -> RecordCommitment | None:
        """The committed commitment of ``record_id`` (erased or not), or None."""
        value = self.node.state("records", f"r/{record_id.hex()}").value
        return None if value is None else _decode(RECORD_CODEC, value, "record")

    def list_records(self, owner: bytes | None = None, limit: int = 100) -> list[bytes]:
        """Ids of up to ``limit`` (1..1000) records of ``owner`` (default: us), earliest data
        time first, erased ones included."""
        who = self.identity_id if owner is None else owner
        document = self.node.entries("records", prefix=f"o/{who.hex()}", limit=limit)
        entries = document.get("entries")
        if not isinstance(entries, list):
            raise ApiError("a state listing without entries")
        return [bytes.fromhex(str(entry["key"]))[-ID_BYTES:] for entry in entries]

    def _require_identity(self, identity_id: bytes, what: str) -> Identity:
        found = self.identity(identity_id)
        if found is None or not found.active:
            raise RecordError("unknown_identity", f"{what} {identity_id.hex()} is not active")
        return found

    # -- upload -----------------------------------------------------------------------------

    def upload_record(
        self,
        content: Mapping[str, Any],
        *,
        owner: bytes | None = None,
        resource_type: str,
        code: str,
        data_time_ms: int,
        custodians: Sequence[tuple[bytes, str]],
        readers: Sequence[bytes] = (),
    ) -> bytes:
        """Seal ``content`` (a FHIR resource) as a new record of ``owner`` (default: us),
        hand it to each custodian (identity id, API URL), commit it; its id. The data key is
        wrapped for the owner and each reader at their current on-chain encryption keys (an
        author who is not the owner, a practitioner, names itself among the readers to read
        the record back). ``RecordError("no_custodian")`` when no custodian took the blob
        (nothing was committed); ``TransactionRejected``/``TransactionFailed`` when the
        commitment was refused."""
        if not custodians:
            raise ValueError("a record needs at least one custodian")
        owner_identity = self._require_identity(
            self.identity_id if owner is None else owner, "the owner"
        )
        upload, data_key = self._sealed(
            content,
            owner_identity,
            resource_type=resource_type,
            code=code,
            data_time_ms=data_time_ms,
            readers=readers,
        )
        self._put_everywhere(upload, custodians)
        commitment = commitment_of(upload.ciphertext)
        payload = commit_payload(
            upload.record,
            upload.owner,
            resource_type=resource_type,
            code=code,
            ciphertext_sha256=commitment.ciphertext_sha256,
            size_bytes=commitment.size_bytes,
            custodians=tuple(custodian for custodian, _ in custodians),
            key_epoch=upload.key_epoch,
            data_time_ms=data_time_ms,
        )
        self._commit(upload.record, upload.owner, data_key, payload)
        return upload.record

    def _sealed(
        self,
        content: Mapping[str, Any],
        owner: Identity,
        *,
        resource_type: str,
        code: str,
        data_time_ms: int,
        readers: Sequence[bytes],
    ) -> tuple[RecordUpload, bytes]:
        """A new record (fresh id, data key and nonce) sealed, its key wrapped and its
        author statement signed; and its data key."""
        record_id = nacl.utils.random(ID_BYTES)
        data_key = nacl.utils.random(DATA_KEY_BYTES)
        ciphertext = seal(
            fhir.dumps(content),
            record_id=record_id,
            owner=owner.id,
            key_epoch=owner.key_epoch,
            data_key=data_key,
            nonce=nacl.utils.random(NONCE_BYTES),
        )
        statement = commitment_statement(
            chain_id=self.chain_id,
            record_id=record_id,
            owner=owner.id,
            resource_type=resource_type,
            code=code,
            commitment=commitment_of(ciphertext),
            key_epoch=owner.key_epoch,
            data_time_ms=data_time_ms,
        )
        upload = RecordUpload(
            record=record_id,
            owner=owner.id,
            author=self.identity_id,
            resource_type=resource_type,
            code=code,
            key_epoch=owner.key_epoch,
            data_time_ms=data_time_ms,
            ciphertext=ciphertext,
            wrapped_keys=self._wrap_for(owner, readers, data_key, record_id),
            author_signature=self.keystore.signer.sign(statement),
        )
        return upload, data_key

    def _wrap_for(
        self, owner: Identity, readers: Sequence[bytes], data_key: bytes, record_id: bytes
    ) -> dict[bytes, bytes]:
        wrapped = {owner.id: wrap_key(data_key, record_id, owner.encryption_key)}
        for reader in readers:
            if reader in wrapped:
                continue
            if len(wrapped) >= MAX_WRAPPED_KEYS:
                raise ValueError(f"a record carries at most {MAX_WRAPPED_KEYS} wrapped keys")
            found = self._require_identity(reader, "the reader")
            wrapped[reader] = wrap_key(data_key, record_id, found.encryption_key)
        return wrapped

    def _put_everywhere(
        self, upload: RecordUpload, custodians: Sequence[tuple[bytes, str]]
    ) -> None:
        """PUT the blob to every custodian; at least one must take it."""
        refusals: list[str] = []
        for custodian, url in custodians:
            self.add_custodian(custodian, url)
            try:
                self._client_for(url).put_record(upload)
            except ApiError as exc:
                logger.warning(
                    "a custodian did not take a record",
                    extra={"fields": {"custodian": custodian.hex(), "error": str(exc)}},
                )
                refusals.append(f"{custodian.hex()[:16]}: {exc}")
        if len(refusals) == len(custodians):
            raise RecordError(
                "no_custodian", f"no custodian took record {upload.record.hex()}: {refusals}"
            )

    def _commit(self, record_id: bytes, owner: bytes, data_key: bytes, payload: bytes) -> None:
        """Send ``records.commit``; the owner's keystore keeps the data key first (a crash
        after the commit must not lose it) and forgets it if the commitment fails."""
        remember = owner == self.identity_id
        if remember:
            self.keystore.remember_data_key(record_id, data_key)
        try:
            self.tx.transact("records.commit", payload)
        except ClientError:
            if remember:
                self.keystore.forget_data_keys([record_id])
            raise

    # -- read -------------------------------------------------------------------------------

    def read_record(self, record_id: bytes) -> dict[str, Any]:
        """The FHIR resource of ``record_id``, fetched through our node under a signed
        request, checked against its commitment and decrypted with our key.
        ``RecordError``: ``not_found``, ``erased``, a custodian's refusal (``forbidden``,
        ``key_pending``...), ``mismatch`` or ``undecryptable``."""
        commitment = self._live_record(record_id)
        fetched = self._fetch(commitment)
        data_key = self._data_key_of(commitment, fetched.wrapped_key)
        try:
            content = open_sealed(
                fetched.ciphertext,
                record_id=record_id,
                owner=commitment.owner,
                key_epoch=commitment.key_epoch,
                data_key=data_key,
            )
        except EnvelopeError as exc:
            raise RecordError("undecryptable", f"record {record_id.hex()}: {exc}") from exc
        return fhir.loads(content)

    def _live_record(self, record_id: bytes) -> RecordCommitment:
        commitment = self.record(record_id)
        if commitment is None:
            raise RecordError("not_found", f"no record {record_id.hex()} on chain")
        if commitment.erased:
            raise RecordError("erased", f"record {record_id.hex()} was erased")
        return commitment

    def _fetch(self, commitment: RecordCommitment) -> FetchedRecord:
        """The record from the first custodian that serves it (one signed request each,
        through our node), checked against the commitment."""
        reasons: list[str] = []
        for custodian in commitment.custodians:
            request = sign_fetch_request(
                self.keystore.signer,
                chain_id=self.chain_id,
                requester=self.identity_id,
                record=commitment.id,
                custodian=custodian,
                nonce=nacl.utils.random(FETCH_NONCE_BYTES),
                time_ms=self.clock_ms(),
            )
            try:
                fetched = self.node.fetch_record(FETCH_REQUEST_CODEC.encode(request))
            except NodeResponseError as exc:
                if exc.reason not in TRY_NEXT_CUSTODIAN and exc.status < 500:
                    raise RecordError(exc.reason or "refused", str(exc)) from exc
                reasons.append(f"{custodian.hex()[:16]}: {exc.reason or exc.status}")
                continue
            expected = commitment_of_record(commitment)
            if fetched.record != commitment.id or commitment_of(fetched.ciphertext) != expected:
                reasons.append(f"{custodian.hex()[:16]}: served a blob that does not match")
                continue
            return fetched
        raise RecordError(
            "no_custodian", f"no custodian served record {commitment.id.hex()}: {reasons}"
        )

    def _data_key_of(self, commitment: RecordCommitment, wrapped: bytes) -> bytes:
        """Unwrap with our current or a rotated-out key; else the keystore's own copy."""
        for private_key in self.keystore.decryption_keys:
            try:
                return unwrap_key(wrapped, commitment.id, private_key)
            except EnvelopeError:
                continue
        remembered = self.keystore.data_key(commitment.id)
        if remembered is None:
            raise RecordError("undecryptable", f"no key of ours opens record {commitment.id.hex()}")
        return remembered

    # -- grant, revoke, erase ---------------------------------------------------------------

    def grant(
        self,
        grantee: bytes,
        *,
        expires_ms: int,
        purpose: Purpose = Purpose.TREATMENT,
        resource_types: Sequence[str] = (),
        codes: Sequence[str] = (),
        data_from_ms: int = OPEN_WINDOW,
        data_to_ms: int = OPEN_WINDOW,
        referral: bytes = b"",
        records: Sequence[bytes] = (),
    ) -> GrantResult:
        """``consent.grant`` to ``grantee``, then ``share_records(grantee, records)`` so the
        grantee's reads of those records are served (not ``key_pending``)."""
        if len(records) > MAX_RECORDS_PER_CALL:
            raise ValueError(f"at most {MAX_RECORDS_PER_CALL} records per grant call")
        grant_id = self.grant_only(
            grantee,
            expires_ms=expires_ms,
            purpose=purpose,
            resource_types=resource_types,
            codes=codes,
            data_from_ms=data_from_ms,
            data_to_ms=data_to_ms,
            referral=referral,
        )
        return GrantResult(grant_id, self.share_records(grantee, records))

    def share_records(self, reader: bytes, records: Sequence[bytes]) -> ShareResult:
        """Wrap the data keys of our ``records`` for ``reader`` (from the keystore, or by
        unwrapping our own wrapped key fetched from a custodian) and send each to every
        custodian of the record (``POST /records/keys``, signed by us as the owner).
        Failures are reported per record, not raised: a custodian down does not undo the
        others."""
        if len(records) > MAX_RECORDS_PER_CALL:
            raise ValueError(f"at most {MAX_RECORDS_PER_CALL} records per call")
        reader_identity = self._require_identity(reader, "the reader")
        result = ShareResult()
        for record_id in dict.fromkeys(records):
            try:
                commitment = self._live_record(record_id)
                if commitment.owner != self.identity_id:
                    raise RecordError("forbidden", "only the owner re-wraps a record's key")
                data_key = self._owner_data_key(commitment)
            except (RecordError, ApiError) as exc:
                result.failed[record_id] = [str(exc)]
                continue
            wrapped = {reader: wrap_key(data_key, record_id, reader_identity.encryption_key)}
            signature = self.keystore.signer.sign(keys_statement(self.chain_id, record_id, wrapped))
            self._send_keys(commitment, wrapped, signature, result)
        return result

    def _owner_data_key(self, commitment: RecordCommitment) -> bytes:
        remembered = self.keystore.data_key(commitment.id)
        if remembered is not None:
            return remembered
        data_key = self._data_key_of(commitment, self._fetch(commitment).wrapped_key)
        self.keystore.remember_data_key(commitment.id, data_key)
        return data_key

    def _send_keys(
        self,
        commitment: RecordCommitment,
        wrapped: Mapping[bytes, bytes],
        signature: bytes,
        result: ShareResult,
    ) -> None:
        for custodian in commitment.custodians:
            url = self._directory.get(custodian)
            try:
                if url is None:
                    raise RecordError("no_custodian", "no API URL known for this custodian")
                self._client_for(url).post_record_keys(commitment.id, wrapped, signature)
            except (RecordError, ApiError) as exc:
                result.failed.setdefault(commitment.id, []).append(
                    f"custodian {custodian.hex()}: {exc}"
                )
                continue
            result.delivered.setdefault(commitment.id, []).append(custodian)

    def erase(self, records: Sequence[bytes]) -> list[TxReceipt]:
        """Erase our ``records`` (``records.erase``, 32 a transaction) and forget the
        keystore's copies of their data keys as each transaction commits."""
        if len(records) > MAX_RECORDS_PER_CALL:
            raise ValueError(f"at most {MAX_RECORDS_PER_CALL} records per call")
        unique = list(dict.fromkeys(records))
        receipts: list[TxReceipt] = []
        for start in range(0, len(unique), MAX_ERASE_RECORDS):
            chunk = tuple(unique[start : start + MAX_ERASE_RECORDS])
            receipts.append(self.tx.transact("records.erase", erase_payload(chunk)))
            self.keystore.forget_data_keys(chunk)
        return receipts

    # -- keys -------------------------------------------------------------------------------

    def rotate_keys(self, *, signing: bool = True, encryption: bool = True) -> TxReceipt:
        """Rotate our keys: new keys kept as pending in the keystore, ``identity.rotate_keys``
        signed by the current key, the new keys used once it committed (cancelled if it was
        refused; left pending on a ``ReceiptTimeout``: ``resume_rotation`` settles it)."""
        self.resume_rotation()
        current = self._require_identity(self.identity_id, "our identity")
        payload = self.keystore.rotate(
            chain_id=self.chain_id,
            new_epoch=current.key_epoch + 1,
            signing=signing,
            encryption=encryption,
        )
        try:
            receipt = self.tx.transact("identity.rotate_keys", payload)
        except (TransactionRejected, TransactionFailed):
            self.keystore.cancel_rotation()  # it did not apply: the current keys stay
            raise
        self.keystore.complete_rotation()
        return receipt

    def resume_rotation(self) -> bool | None:
        """Settle a pending rotation against the chain: completed (True) if the identity
        holds the pending keys at its epoch, cancelled (False) if the identity moved past
        it otherwise, left pending (None) while the rotation may still commit."""
        pending = self.keystore.pending_rotation
        if pending is None:
            return None
        current = self._require_identity(self.identity_id, "our identity")
        if (
            current.key_epoch == pending.epoch
            and current.signing_key == pending.signer.public_key
            and current.encryption_key == pending.encryption_public_key
        ):
            self.keystore.complete_rotation()
            return True
        if current.key_epoch >= pending.epoch:
            self.keystore.cancel_rotation()
            return False
        return None

    # -- export -----------------------------------------------------------------------------

    def export_fhir_bundle(
        self, records: Sequence[bytes], *, bundle_id: str | None = None
    ) -> dict[str, Any]:
        """A FHIR ``Bundle`` (collection) of the resources of ``records``, read and
        decrypted one by one; a resource without an ``id`` gets its record id (hex)."""
        if len(records) > MAX_RECORDS_PER_CALL:
            raise ValueError(f"at most {MAX_RECORDS_PER_CALL} records per bundle")
        resources: list[dict[str, Any]] = []
        for record_id in dict.fromkeys(records):
            resource = self.read_record(record_id)
            resource.setdefault("id", record_id.hex())
            resources.append(resource)
        identifier = bundle_id or f"export-{nacl.utils.random(8).hex()}"
        return fhir.bundle(resources, bundle_id=identifier, timestamp_ms=self.clock_ms())


def commitment_of_record(commitment: RecordCommitment) -> Commitment:
    """The ``envelopes.Commitment`` a record's on-chain commitment states."""
    return Commitment(commitment.ciphertext_sha256, commitment.size_bytes)


def _decode(codec: StructCodec[T], value: bytes, what: str) -> T:
    try:
        return codec.decode(value)
    except DecodeError as exc:
        raise ApiError(f"the node served a {what} that does not decode: {exc}") from exc
