"""The records routes (``health.api``) and ``HealthExtension``: bodies validated into typed
4xx errors (never a 5xx for bad input), refusals mapped to statuses, and whole flows
through two custodian nodes and a gateway node over fake node services on a real chain:
upload -> commit notice -> fetch by a grantee -> audit transaction -> revoke -> refused ->
erase -> gone; replays and stale requests; a custodian down; repair; a gap in notices."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from health.api import ApiLimits, RecordsBackend, records_routes
from health.contracts.audit import list_audit
from health.contracts.common import DAY_MS, AccessBasis, HealthRole
from health.contracts.consent import grant_payload, revoke_payload
from health.contracts.identity import announce_node_payload, node_of
from health.contracts.records import erase_payload
from health.custodian import CustodianConfig
from health.envelopes import WRAPPED_KEY_BYTES, open_sealed, rewrap_key, unwrap_key
from health.extension import AnnounceConfig, HealthExtension
from health.records_wire import (
    FETCH_REQUEST_CODEC,
    FetchRequest,
    FetchResponse,
    RecordsError,
    keys_statement,
)
from health.vault import PendingBlob, Vault
from node.api.http import Request
from node.app.module import JsonValue
from node.codec import TX_CODEC
from node.errors import BigHealthError, StorageError, StorageFullError
from node.runtime.extension import ExtensionRoute
from node.testing import MemoryStorage
from tests.health.fakes import PEERS, Cluster, Upload
from tests.health.helpers import CHAIN, Party, attributes, party

ID = "ab" * 32


class Api:
    """Dispatches requests to routes as the node's API does: the first pattern that fully
    matches the path, then the method."""

    def __init__(self, routes: Sequence[ExtensionRoute]) -> None:
        self.routes = list(routes)

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        patterns: list[str] = []
        for route in self.routes:
            if route.path_pattern not in patterns:
                patterns.append(route.path_pattern)
        for pattern in patterns:
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            for route in self.routes:
                if route.path_pattern == pattern and route.method == method:
                    response = await route.handler(Request(method, path, {}, {}, data), match)
                    return response.status, json.loads(response.body)
            return 405, {"error": "method"}
        return 404, {"error": "path"}


@dataclass
class StubBackend:
    """A backend that records what reached it and answers as told."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    error: BaseException | None = None
    stored: bool = False

    def _answer(self, name: str, value: Any) -> None:
        self.calls.append((name, value))
        if self.error is not None:
            raise self.error

    async def upload(self, blob: PendingBlob) -> bool:
        self._answer("upload", blob)
        return self.stored

    async def add_keys(
        self, record: bytes, wrapped_keys: dict[bytes, bytes], signature: bytes
    ) -> int:
        self._answer("add_keys", (record, wrapped_keys, signature))
        return 3

    async def fetch(self, requests: Sequence[FetchRequest]) -> tuple[bytes, FetchResponse]:
        self._answer("fetch", tuple(requests))
        return bytes([9]) * 32, FetchResponse(b"cipher", b"w" * WRAPPED_KEY_BYTES)

    async def commitment(self, record: bytes) -> tuple[dict[str, JsonValue], bool] | None:
        self._answer("commitment", record)
        return None if record == bytes(32) else ({"id": record.hex()}, True)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def put_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "owner": "01" * 32,
        "author": "02" * 32,
        "resource_type": "Observation",
        "code": "http://loinc.org|41653-7",
        "key_epoch": 0,
        "data_time_ms": 1_700_000_000_000,
        "ciphertext": b64(b"c" * 64),
        "wrapped_keys": {"03" * 32: b64(b"w" * WRAPPED_KEY_BYTES)},
        "author_signature": "04" * 64,
    }
    body.update(changes)
    return body


def a_request(record: bytes = bytes([5]) * 32, custodian: bytes = bytes([6]) * 32) -> str:
    request = FetchRequest(bytes([7]) * 32, record, custodian, bytes(16), 1, bytes(64))
    return b64(FETCH_REQUEST_CODEC.encode(request))


@pytest.fixture
def backend() -> StubBackend:
    return StubBackend()


@pytest.fixture
def api(backend: StubBackend) -> Api:
    return Api(records_routes(backend))


# -- routes and validation -----------------------------------------------------------------


def test_the_backend_protocol_is_what_the_extension_offers() -> None:
    backend: RecordsBackend = HealthExtension(None, None)
    assert backend is not None


async def test_each_route_answers_its_method_and_path(api: Api, backend: StubBackend) -> None:
    status, document = await api.call("PUT", f"/records/{ID}", put_body())
    assert (status, document) == (202, {"record": ID, "status": "pending"})
    [(name, blob)] = backend.calls
    assert name == "upload" and isinstance(blob, PendingBlob)
    assert blob.record_id == bytes.fromhex(ID) and blob.ciphertext == b"c" * 64
    assert blob.wrapped_keys == {bytes([3]) * 32: b"w" * WRAPPED_KEY_BYTES}
    assert blob.author_signature == bytes([4]) * 64
    backend.stored = True
    assert (await api.call("PUT", f"/records/{ID}", put_body()))[1]["status"] == "stored"
    keys = {
        "record": ID,
        "wrapped_keys": {"03" * 32: b64(b"w" * WRAPPED_KEY_BYTES)},
        "signature": "05" * 64,
    }
    assert await api.call("POST", "/records/keys", keys) == (200, {"record": ID, "keys": 3})
    status, document = await api.call("POST", "/records/fetch", {"request": a_request()})
    assert status == 200
    assert document == {
        "record": "05" * 32,
        "ciphertext": b64(b"cipher"),
        "wrapped_key": b64(b"w" * WRAPPED_KEY_BYTES),
        "custodian": "09" * 32,
    }
    assert await api.call("GET", f"/records/{ID}") == (200, {"id": ID, "held_here": True})
    status, document = await api.call("GET", f"/records/{'00' * 32}")
    assert (status, document["reason"]) == (404, "not_found")
    assert (await api.call("POST", f"/records/{ID}", {}))[0] == 405
    assert (await api.call("PUT", "/records/keys", {}))[0] == 405
    assert (await api.call("GET", "/records/fetch"))[0] == 405


async def test_a_fetch_may_carry_one_request_per_custodian(api: Api, backend: StubBackend) -> None:
    requests = [a_request(custodian=bytes([c]) * 32) for c in (1, 2)]
    assert (await api.call("POST", "/records/fetch", {"request": requests}))[0] == 200
    assert [r.custodian for r in backend.calls[0][1]] == [bytes([1]) * 32, bytes([2]) * 32]


BAD_PUTS: list[tuple[str, object]] = [
    ("body", b"not json"),
    ("body", b"[1, 2]"),
    ("body", b'"text"'),
    ("author", {k: v for k, v in put_body().items() if k != "author"}),
    ("extra", put_body(extra=1)),
    ("owner", put_body(owner="zz" * 32)),
    ("owner", put_body(owner="01" * 31)),
    ("owner", put_body(owner=1)),
    ("resource_type", put_body(resource_type="observation")),
    ("resource_type", put_body(resource_type="O" * 65)),
    ("code", put_body(code="has space")),
    ("key_epoch", put_body(key_epoch=True)),
    ("key_epoch", put_body(key_epoch=1.0)),
    ("key_epoch", put_body(key_epoch="1")),
    ("key_epoch", put_body(key_epoch=-1)),
    ("data_time_ms", put_body(data_time_ms=2**64)),
    ("ciphertext", put_body(ciphertext="not base64!")),
    ("ciphertext", put_body(ciphertext=5)),
    ("wrapped_keys", put_body(wrapped_keys=[])),
    ("wrapped_keys", put_body(wrapped_keys={})),
    ("wrapped_keys", put_body(wrapped_keys={"03" * 31: b64(b"w" * WRAPPED_KEY_BYTES)})),
    ("wrapped_keys", put_body(wrapped_keys={"03" * 32: b64(b"short")})),
    ("wrapped_keys", put_body(wrapped_keys={"03" * 32: "!!"})),
    (
        "wrapped_keys",
        put_body(wrapped_keys={f"{i:064x}": b64(b"w" * WRAPPED_KEY_BYTES) for i in range(65)}),
    ),
    ("author_signature", put_body(author_signature="04" * 63)),
]


@pytest.mark.parametrize(("field_name", "body"), BAD_PUTS)
async def test_a_malformed_upload_is_a_typed_400(
    api: Api, backend: StubBackend, field_name: str, body: object
) -> None:
    status, document = await api.call("PUT", f"/records/{ID}", body)
    assert (status, document["reason"]) == (400, "malformed")
    assert document["error"].startswith(field_name) or field_name == "body"
    assert backend.calls == []


@pytest.mark.parametrize("path", ["/records/xyz", f"/records/{ID[:-2]}", f"/records/{ID}00"])
async def test_a_malformed_record_id_is_a_400(api: Api, path: str) -> None:
    for method in ("PUT", "GET"):
        status, document = await api.call(method, path, put_body())
        assert (status, document["reason"]) == (400, "malformed")


async def test_an_upload_too_large_is_a_413_before_anything_is_read(backend: StubBackend) -> None:
    limits = ApiLimits(max_record_bytes=100, max_wrapped_keys=2)
    api = Api(records_routes(backend, limits))
    assert (await api.call("PUT", f"/records/{ID}", put_body(ciphertext=b64(b"c" * 100))))[0] == 202
    for body in (
        put_body(ciphertext=b64(b"c" * 101)),
        put_body(wrapped_keys={f"{i:064x}": b64(b"w" * WRAPPED_KEY_BYTES) for i in range(3)}),
        json.dumps(put_body(ciphertext=b64(b"c" * 2 * limits.max_put_body_bytes))).encode(),
    ):
        status, document = await api.call("PUT", f"/records/{ID}", body)
        assert (status, document["reason"]) == (413, "too_large")
    assert len(backend.calls) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"request": "%%%"},
        {"request": b64(b"\x93\x01\x02\x03")},
        {"request": 5},
        {"request": []},
        {"request": [a_request()] * 9},
        {"request": [a_request(), a_request(record=bytes(32))]},
        {"requests": a_request()},
    ],
)
async def test_a_malformed_fetch_is_a_typed_400(
    api: Api, backend: StubBackend, body: object
) -> None:
    status, document = await api.call("POST", "/records/fetch", body)
    assert (status, document["reason"]) == (400, "malformed") and backend.calls == []


@pytest.mark.parametrize(
    "body",
    [
        {"record": ID, "wrapped_keys": {}, "signature": "05" * 64},
        {"record": ID, "wrapped_keys": {"03" * 32: b64(b"w" * WRAPPED_KEY_BYTES)}},
        {
            "record": "x",
            "wrapped_keys": {"03" * 32: b64(b"w" * WRAPPED_KEY_BYTES)},
            "signature": "05" * 64,
        },
    ],
)
async def test_malformed_keys_are_a_typed_400(api: Api, backend: StubBackend, body: object) -> None:
    status, document = await api.call("POST", "/records/keys", body)
    assert (status, document["reason"]) == (400, "malformed") and backend.calls == []


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (RecordsError("malformed", "m"), 400, "malformed"),
        (RecordsError("bad_signature", "m"), 403, "bad_signature"),
        (RecordsError("forbidden", "m"), 403, "forbidden"),
        (RecordsError("stale", "m"), 403, "stale"),
        (RecordsError("not_found", "m"), 404, "not_found"),
        (RecordsError("replayed", "m"), 409, "replayed"),
        (RecordsError("mismatch", "m"), 409, "mismatch"),
        (RecordsError("key_pending", "m"), 409, "key_pending"),
        (RecordsError("erased", "m"), 410, "erased"),
        (RecordsError("not_custodian", "m"), 421, "not_custodian"),
        (RecordsError("too_large", "m"), 413, "too_large"),
        (RecordsError("quota", "m"), 507, "quota"),
        (RecordsError("quota", "m", retry_later=True), 429, "quota"),
        (RecordsError("busy", "m"), 503, "busy"),
        (StorageFullError("disk"), 507, "quota"),
        (StorageError("closed"), 503, "busy"),
        (BigHealthError("the core is stopping"), 503, "busy"),
    ],
)
async def test_refusals_are_typed_json_errors(
    api: Api, backend: StubBackend, error: BaseException, status: int, reason: str
) -> None:
    backend.error = error
    for method, path, body in (
        ("PUT", f"/records/{ID}", put_body()),
        ("POST", "/records/fetch", {"request": a_request()}),
        ("GET", f"/records/{ID}", None),
    ):
        got, document = await api.call(method, path, body)
        assert (got, document["reason"]) == (status, reason)
        assert isinstance(document["error"], str)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(
        [("PUT", f"/records/{ID}"), ("POST", "/records/keys"), ("POST", "/records/fetch")]
    ),
    body=st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
)
def test_no_body_gets_a_server_error(route: tuple[str, str], body: bytes) -> None:
    api = Api(records_routes(StubBackend()))
    status, document = trio.run(api.call, route[0], route[1], body)
    assert status < 500
    assert status in (200, 202) or isinstance(document.get("reason"), str)


# -- the extension on a chain --------------------------------------------------------------


@dataclass
class Node:
    """A fake node running ``HealthExtension``."""

    extension: HealthExtension
    api: Api
    vault: Vault | None


def make_node(
    cluster: Cluster, name: str, holder: Party | None, config: CustodianConfig | None = None
) -> Node:
    vault = None if holder is None else Vault(MemoryStorage())
    extension = HealthExtension(
        vault,
        None if holder is None else holder.signer,
        clock=cluster.clock,
        rng_bytes=cluster.rng,
        config=config or CustodianConfig(audit_interval_ms=5_000),
    )
    return Node(extension, Api(extension.routes()), vault)


def upload_body(upload: Upload) -> dict[str, object]:
    blob = upload.blob
    return {
        "owner": blob.owner.hex(),
        "author": blob.author.hex(),
        "resource_type": blob.resource_type,
        "code": blob.code,
        "key_epoch": blob.key_epoch,
        "data_time_ms": blob.data_time_ms,
        "ciphertext": b64(blob.ciphertext),
        "wrapped_keys": {r.hex(): b64(w) for r, w in blob.wrapped_keys.items()},
        "author_signature": blob.author_signature.hex(),
    }


def keys_body(cluster: Cluster, upload: Upload, reader: Party) -> dict[str, object]:
    mine = upload.blob.wrapped_keys[cluster.patient.id]
    rewrapped = rewrap_key(
        mine,
        upload.record_id,
        cluster.patient.encryption_private,
        bytes(reader.encryption.public_key),
    )
    keys = {reader.id: rewrapped}
    signature = cluster.patient.signer.sign(keys_statement(CHAIN, upload.record_id, keys))
    return {
        "record": upload.record_id.hex(),
        "wrapped_keys": {reader.id.hex(): b64(rewrapped)},
        "signature": signature.hex(),
    }


def fetch_body(*requests: FetchRequest) -> dict[str, object]:
    encoded = [b64(FETCH_REQUEST_CODEC.encode(r)) for r in requests]
    return {"request": encoded[0] if len(encoded) == 1 else encoded}


def content_of(upload: Upload, document: dict[str, str], reader: Party) -> bytes:
    wrapped = base64.b64decode(document["wrapped_key"])
    data_key = unwrap_key(wrapped, upload.record_id, reader.encryption_private)
    return open_sealed(
        base64.b64decode(document["ciphertext"]),
        record_id=upload.record_id,
        owner=upload.blob.owner,
        key_epoch=0,
        data_key=data_key,
    )


async def started(nursery: trio.Nursery, cluster: Cluster, nodes: dict[str, Node]) -> None:
    for name, node in nodes.items():
        await nursery.start(node.extension.run, cluster.node(name))
        if node.vault is not None:
            await node.extension.wait_ready()


@dataclass
class Flow:
    """The parties of the record flow: custodians ``a`` and ``b``, a gateway node ``c``."""

    cluster: Cluster
    a: Node
    b: Node
    gateway: Node
    upload: Upload

    @property
    def path(self) -> str:
        return f"/records/{self.upload.record_id.hex()}"

    def vaults(self) -> tuple[Vault, Vault]:
        assert self.a.vault is not None and self.b.vault is not None
        return self.a.vault, self.b.vault


async def _upload_and_commit(flow: Flow) -> None:
    cluster, upload = flow.cluster, flow.upload
    for node in (flow.a, flow.b):
        assert await node.api.call("PUT", flow.path, upload_body(upload)) == (
            202,
            {"record": upload.record_id.hex(), "status": "pending"},
        )
    cluster.commit(cluster.commit_tx(upload))
    await trio.testing.wait_all_tasks_blocked()
    assert all(vault.has(upload.record_id) for vault in flow.vaults())
    status, document = await flow.gateway.api.call("GET", flow.path)
    assert (status, document["held_here"], document["erased"]) == (200, False, False)
    assert (await flow.a.api.call("GET", flow.path))[1]["held_here"]


async def _grant_and_read(flow: Flow) -> bytes:
    """A grant, the key re-wrapped for the doctor at both custodians, a read through the
    gateway, its audit entry on chain; the grant's id."""
    cluster, upload = flow.cluster, flow.upload
    grant_id = grant(cluster, cluster.doctor)
    for node in (flow.a, flow.b):
        keys = keys_body(cluster, upload, cluster.doctor)
        assert await node.api.call("POST", "/records/keys", keys) == (
            200,
            {"record": upload.record_id.hex(), "keys": 2},
        )
    request = cluster.fetch_request(cluster.doctor, upload.record_id, cluster.hospital)
    status, document = await flow.gateway.api.call("POST", "/records/fetch", fetch_body(request))
    assert status == 200, document
    assert document["custodian"] == cluster.hospital.id.hex()
    assert content_of(upload, document, cluster.doctor) == upload.content
    assert (cluster.network.log[-1][0], cluster.network.log[-1][1]) == (PEERS["c"], PEERS["a"])
    await trio.sleep(6)  # the audit interval: the read goes on chain, signed by custodian a
    assert len(cluster.node("a").submitted) == 1
    result, _ = cluster.commit()
    assert all(receipt.ok for receipt in result.receipts), result.receipts
    [entry] = list_audit(cluster.state, cluster.patient.id)
    assert (entry.reader, entry.basis, entry.basis_id, entry.served, entry.custodian) == (
        cluster.doctor.id,
        AccessBasis.GRANT,
        grant_id,
        True,
        cluster.hospital.id,
    )
    return grant_id


async def _revoke_then_erase(flow: Flow, grant_id: bytes) -> None:
    cluster, upload = flow.cluster, flow.upload
    cluster.ok(cluster.patient, "consent.revoke", revoke_payload(cluster.patient.id, grant_id))
    request = cluster.fetch_request(cluster.doctor, upload.record_id, cluster.hospital)
    status, document = await flow.a.api.call("POST", "/records/fetch", fetch_body(request))
    assert (status, document["reason"]) == (403, "forbidden")
    await trio.sleep(6)
    cluster.commit()  # the refusal is audited too
    assert [e.served for e in list_audit(cluster.state, cluster.patient.id)] == [True, False]
    cluster.ok(cluster.patient, "records.erase", erase_payload((upload.record_id,)))
    await trio.testing.wait_all_tasks_blocked()
    assert all(vault.meta(upload.record_id) is None for vault in flow.vaults())
    status, document = await flow.a.api.call("GET", flow.path)
    assert (status, document["held_here"], document["erased"]) == (200, False, True)
    request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.other_hospital)
    status, document = await flow.gateway.api.call("POST", "/records/fetch", fetch_body(request))
    assert (status, document["reason"]) == (410, "erased")


async def test_the_record_flow_from_upload_to_erasure(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    flow = Flow(
        cluster,
        make_node(cluster, "a", cluster.hospital),
        make_node(cluster, "b", cluster.other_hospital),
        make_node(cluster, "c", None),
        cluster.upload("flow", content=b'{"resourceType": "Observation"}'),
    )
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"a": flow.a, "b": flow.b, "c": flow.gateway})
        await _upload_and_commit(flow)
        grant_id = await _grant_and_read(flow)
        await _revoke_then_erase(flow, grant_id)
        nursery.cancel_scope.cancel()


def grant(cluster: Cluster, grantee: Party) -> bytes:
    payload = grant_payload(grantee.id, expires_ms=cluster.chain.time_ms + 1_000 + DAY_MS)
    notice = cluster.ok(cluster.patient, "consent.grant", payload)
    [event] = [e for e in notice.events if e.name == "consent.granted"]
    return bytes.fromhex(attributes(event)["grant"])


async def stored_on(cluster: Cluster, nodes: Sequence[Node], name: str) -> Upload:
    upload = cluster.upload(name)
    for node in nodes:
        assert (
            await node.api.call("PUT", f"/records/{upload.record_id.hex()}", upload_body(upload))
        )[0] == 202
    cluster.commit(cluster.commit_tx(upload))
    await trio.testing.wait_all_tasks_blocked()
    return upload


async def test_replayed_and_stale_requests_are_refused(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    a, gateway = make_node(cluster, "a", cluster.hospital), make_node(cluster, "c", None)
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"a": a, "c": gateway})
        upload = await stored_on(cluster, [a], "r1")
        request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
        assert (await gateway.api.call("POST", "/records/fetch", fetch_body(request)))[0] == 200
        for node in (gateway, a):
            status, document = await node.api.call("POST", "/records/fetch", fetch_body(request))
            assert (status, document["reason"]) == (409, "replayed")
        old = cluster.fetch_request(
            cluster.patient, upload.record_id, cluster.hospital, time_ms=cluster.clock() - 120_000
        )
        status, document = await gateway.api.call("POST", "/records/fetch", fetch_body(old))
        assert (status, document["reason"]) == (403, "stale")
        nursery.cancel_scope.cancel()


async def test_a_custodian_down_and_the_other_serving(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    a, b = (
        make_node(cluster, "a", cluster.hospital),
        make_node(cluster, "b", cluster.other_hospital),
    )
    gateway = make_node(cluster, "c", None)
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"a": a, "b": b, "c": gateway})
        upload = await stored_on(cluster, [a, b], "r1")
        cluster.network.down.add(PEERS["a"])
        ask = cluster.fetch_request
        to_a = ask(cluster.patient, upload.record_id, cluster.hospital)
        status, document = await gateway.api.call("POST", "/records/fetch", fetch_body(to_a))
        assert (status, document["reason"]) == (503, "busy")
        to_a, to_b = (
            ask(cluster.patient, upload.record_id, c)
            for c in (cluster.hospital, cluster.other_hospital)
        )
        status, document = await gateway.api.call("POST", "/records/fetch", fetch_body(to_a, to_b))
        assert status == 200 and document["custodian"] == cluster.other_hospital.id.hex()
        assert content_of(upload, document, cluster.patient) == upload.content
        # b's own node serves b's copy directly
        to_b = ask(cluster.patient, upload.record_id, cluster.other_hospital)
        assert (await b.api.call("POST", "/records/fetch", fetch_body(to_b)))[0] == 200
        nursery.cancel_scope.cancel()


async def test_a_custodian_down_at_upload_repairs_from_the_other(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    a, b = (
        make_node(cluster, "a", cluster.hospital),
        make_node(cluster, "b", cluster.other_hospital),
    )
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"a": a, "b": b})
        upload = await stored_on(cluster, [a], "r1")  # b was not given the blob
        await trio.sleep(1)
        assert b.vault is not None and b.vault.has(upload.record_id)
        request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.other_hospital)
        status, document = await b.api.call("POST", "/records/fetch", fetch_body(request))
        assert status == 200 and content_of(upload, document, cluster.patient) == upload.content
        nursery.cancel_scope.cancel()


async def test_notices_missed_by_a_slow_node_are_reconciled(autojump_clock: trio.abc.Clock) -> None:
    cluster = Cluster()
    b = make_node(cluster, "b", cluster.other_hospital, CustodianConfig(commits_buffer=1))
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"b": b})
        await trio.testing.wait_all_tasks_blocked()  # the consumer waits for notices
        upload = cluster.upload("r1")
        assert (await b.api.call("PUT", f"/records/{upload.record_id.hex()}", upload_body(upload)))[
            0
        ] == 202
        cluster.commit()  # handed to the waiting consumer
        cluster.commit()  # buffered
        cluster.commit(cluster.commit_tx(upload, [cluster.other_hospital.id]))  # missed: full
        await trio.testing.wait_all_tasks_blocked()
        assert b.vault is not None and not b.vault.has(upload.record_id)
        cluster.commit()  # delivered with gap=True
        await trio.testing.wait_all_tasks_blocked()
        assert b.vault.has(upload.record_id)
        assert b.extension.custodian is not None
        assert b.extension.custodian.stats().reconciliations == 2  # at start, after the gap
        nursery.cancel_scope.cancel()


async def test_a_node_without_a_custodian_key_serves_reads_only(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    gateway = make_node(cluster, "c", None)
    upload = cluster.upload("r1")
    path = f"/records/{upload.record_id.hex()}"
    status, document = await gateway.api.call("GET", path)
    assert (status, document["reason"]) == (503, "busy")  # not running yet
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"c": gateway})
        status, document = await gateway.api.call("PUT", path, upload_body(upload))
        assert (status, document["reason"]) == (421, "not_custodian")
        status, document = await gateway.api.call("GET", path)
        assert (status, document["reason"]) == (404, "not_found")
        request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.hospital)
        status, document = await gateway.api.call("POST", "/records/fetch", fetch_body(request))
        assert (status, document["reason"]) == (404, "not_found")
        nursery.cancel_scope.cancel()


async def test_a_custodian_key_not_yet_on_chain_waits_for_its_identity(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    newcomer = make_node(cluster, "c", party("patient-new"))
    async with trio.open_nursery() as nursery:
        await nursery.start(newcomer.extension.run, cluster.node("c"))
        upload = cluster.upload("r1")
        status, document = await newcomer.api.call(
            "PUT", f"/records/{upload.record_id.hex()}", upload_body(upload)
        )
        assert (status, document["reason"]) == (503, "busy")
        cluster.chain.register(cluster.hospital, "patient-new", HealthRole.PATIENT)
        cluster.commit()
        custodian = await newcomer.extension.wait_ready()
        assert custodian.custodian_id == party("patient-new").id
        nursery.cancel_scope.cancel()


async def test_a_custodian_serving_another_blob_is_passed_over(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    a, b = (
        make_node(cluster, "a", cluster.hospital),
        make_node(cluster, "b", cluster.other_hospital),
    )
    gateway = make_node(cluster, "c", None)
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"a": a, "b": b, "c": gateway})
        upload = await stored_on(cluster, [a, b], "r1")
        assert a.vault is not None
        tampered = dataclasses.replace(upload.blob, ciphertext=upload.blob.ciphertext[::-1])
        a.vault.erase(upload.record_id)
        a.vault.put_pending(tampered, cluster.clock())
        meta = a.vault.meta(upload.record_id)
        assert meta is not None
        a.vault.commitment_committed(
            upload.record_id, meta.owner, meta.ciphertext_sha256, meta.size_bytes
        )
        ask = cluster.fetch_request
        to_a, to_b = (
            ask(cluster.patient, upload.record_id, c)
            for c in (cluster.hospital, cluster.other_hospital)
        )
        status, document = await gateway.api.call("POST", "/records/fetch", fetch_body(to_a))
        assert (status, document["reason"]) == (409, "mismatch")
        to_a = ask(cluster.patient, upload.record_id, cluster.hospital)
        status, document = await gateway.api.call("POST", "/records/fetch", fetch_body(to_a, to_b))
        assert status == 200 and document["custodian"] == cluster.other_hospital.id.hex()
        nursery.cancel_scope.cancel()


# -- the node's announcement ---------------------------------------------------------------


def announcements(node: str, cluster: Cluster) -> list[Any]:
    """The ``identity.announce_node`` transactions node ``node`` submitted."""
    decoded = [TX_CODEC.decode(raw) for raw in cluster.node(node).submitted]
    return [tx for tx in decoded if tx.kind == "identity.announce_node"]


def announced(node: Node) -> bool | None:
    """Whether the node saw itself announced (None: not settled yet)."""
    return node.extension.announced


async def test_a_custodian_announces_its_node_until_committed(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    patient_node = make_node(cluster, "c", cluster.patient)
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"c": patient_node})
        await trio.testing.wait_all_tasks_blocked()
        [tx] = announcements("c", cluster)
        assert tx.sender == cluster.patient.id
        assert tx.nonce == cluster.chain.app.next_nonce(cluster.patient.id)
        assert tx.payload == announce_node_payload(PEERS["c"])
        await trio.sleep(3.5)  # not committed yet: the same transaction is sent again
        assert len(cluster.node("c").submitted) > 1
        assert len(set(cluster.node("c").submitted)) == 1
        assert announced(patient_node) is None
        result, _ = cluster.commit()
        assert result.receipts[0].ok
        assert node_of(cluster.state, cluster.patient.id) == PEERS["c"]
        await trio.sleep(60)
        assert announced(patient_node) is True
        assert len(set(cluster.node("c").submitted)) == 1
        nursery.cancel_scope.cancel()


async def test_a_node_already_announced_sends_nothing_and_a_moved_one_announces(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    a = make_node(cluster, "a", cluster.hospital)  # announced on chain as node a
    moved = make_node(cluster, "c", cluster.other_hospital)  # announced as node b
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"a": a, "c": moved})
        await trio.testing.wait_all_tasks_blocked()
        assert announced(a) is True and cluster.node("a").submitted == []
        assert len(announcements("c", cluster)) == 1
        cluster.commit()
        assert node_of(cluster.state, cluster.other_hospital.id) == PEERS["c"]
        await trio.sleep(2)
        assert announced(moved) is True
        nursery.cancel_scope.cancel()


async def test_a_refused_announcement_is_signed_anew_and_the_attempts_are_bounded(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    patient_node = make_node(cluster, "c", cluster.patient)
    patient_node.extension.announce_config = AnnounceConfig(attempts=4, backoff_ms=500)
    cluster.node("c").reject = "mempool full"
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"c": patient_node})
        await trio.testing.wait_all_tasks_blocked()
        assert cluster.node("c").submitted == []  # refused, not kept
        cluster.node("c").reject = None
        await trio.sleep(0.6)
        assert len(announcements("c", cluster)) == 1
        await trio.sleep(60)  # never committed: the attempts run out
        assert announced(patient_node) is False
        assert cluster.node("c").submitted == [cluster.node("c").submitted[0]] * 3
        assert node_of(cluster.state, cluster.patient.id) is None
        nursery.cancel_scope.cancel()


async def test_an_identity_that_may_not_announce_does_not_try(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    doctor_node = make_node(cluster, "c", cluster.doctor)  # a practitioner keeps no records
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"c": doctor_node})
        await trio.testing.wait_all_tasks_blocked()
        assert announced(doctor_node) is False
        assert cluster.node("c").submitted == []
        nursery.cancel_scope.cancel()


async def test_the_announcement_and_the_audit_batches_of_one_key_all_commit(
    autojump_clock: trio.abc.Clock,
) -> None:
    cluster = Cluster()
    patient_node = make_node(cluster, "c", cluster.patient)
    async with trio.open_nursery() as nursery:
        await started(nursery, cluster, {"c": patient_node})
        await trio.testing.wait_all_tasks_blocked()
        cluster.commit()
        assert node_of(cluster.state, cluster.patient.id) == PEERS["c"]
        upload = cluster.upload("r1")
        path = f"/records/{upload.record_id.hex()}"
        assert (await patient_node.api.call("PUT", path, upload_body(upload)))[0] == 202
        cluster.commit(cluster.commit_tx(upload, [cluster.patient.id]))
        await trio.testing.wait_all_tasks_blocked()
        request = cluster.fetch_request(cluster.patient, upload.record_id, cluster.patient)
        status, _ = await patient_node.api.call("POST", "/records/fetch", fetch_body(request))
        assert status == 200
        await trio.sleep(6)  # the audit batch, signed by the same key
        kinds = [TX_CODEC.decode(raw).kind for raw in cluster.node("c").submitted]
        assert kinds[0] == "identity.announce_node" and kinds[-1] == "audit.record"
        result, _ = cluster.commit()
        assert all(receipt.ok for receipt in result.receipts), result.receipts
        assert len(list_audit(cluster.state, cluster.patient.id)) == 1
        nursery.cancel_scope.cancel()
