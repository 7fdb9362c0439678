"""Nodes for the client's tests: the real API routes over a real health chain in virtual time,
and a small custodian answering the records routes, all reached through an in-process
HTTP transport.

- ``ClientChain``: a one-validator ``Cluster`` running the health registry; its genesis
  institutions are ``hospital-0`` (the validator's member) and ``hospital-1``. The client's
  ``sleep`` runs the cluster's virtual time, its clocks read it.
- ``FakeNode``: the node of one custodian identity at a base URL: chain routes answered by
  the real ``node.api.routes.NodeApi`` over a gateway that reads the cluster's validator,
  records routes by a fake custodian that keeps what the contract asks of a real one
  (author signatures, owner-signed keys, fetch signatures, time skew, replayed nonces,
  ``consent.find_access`` on the committed state, erasure) in dictionaries.
- ``InProcessTransport``: the client's ``HttpTransport`` that turns each request into a
  ``node.api.http.Request`` and runs the node's async handler with ``trio.run``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import trio

from crypto_core.signatures import verify
from health.client.node_client import HttpReply
from health.contracts.common import Purpose, get_identity
from health.contracts.consent import find_access
from health.contracts.records import RecordCommitment, get_record, render_record
from health.contracts.registry import health_registry
from health.envelopes import commitment_of, commitment_statement
from health.records_wire import (
    FetchRequest,
    RecordsError,
    decode_fetch_request,
    fetch_statement,
    keys_statement,
)
from node.api.client import ApiUnreachableError
from node.api.gateway import NodeSnapshot
from node.api.http import Request, Response
from node.api.routes import NodeApi
from node.app.module import JsonValue
from node.chain import store
from node.chain.actions import TxResult
from node.chain.event_feed import EventCursor, EventPage
from node.chain.queries import CommittedTx, ModuleEntries, ModuleState
from node.core import NodeCore
from node.testing import key_pair
from node.testing.cluster import Cluster
from tests.health.helpers import Party, party

CHAIN: Final = "cluster-chain"
MAX_SKEW_MS: Final = 60_000
STATUS: Final = {
    "malformed": 400,
    "bad_signature": 403,
    "forbidden": 403,
    "not_found": 404,
    "not_custodian": 404,
    "replayed": 409,
    "mismatch": 409,
    "key_pending": 409,
    "erased": 410,
    "too_large": 413,
    "quota": 429,
    "busy": 503,
    "stale": 403,
}


def _app_state(institutions: list[Party]) -> dict[str, JsonValue]:
    identities: list[JsonValue] = [
        {
            "role": "institution",
            "kind": "hospital",
            "label": f"Hospital {i}",
            "signing_key": member.id.hex(),
            "encryption_key": bytes(member.encryption.public_key).hex(),
        }
        for i, member in enumerate(institutions)
    ]
    member: JsonValue = {
        "institution": institutions[0].id.hex(),
        "validator_key": key_pair("validator-0").public_key.hex(),
        "power": 10,
        "weight": 1,
    }
    return {"identity": {"identities": identities}, "governance": {"members": [member]}}


class ClientChain:
    """A health chain of one validator in virtual time (see the module docstring)."""

    def __init__(self) -> None:
        self.institutions = [party("hospital-0"), party("hospital-1")]
        self.cluster = Cluster(
            validators=1,
            seed="client-tests",
            app_factory=health_registry().build,
            app_state=_app_state(self.institutions),
            genesis_accounts=(),
        )
        self.sleeps: list[float] = []

    @property
    def core(self) -> NodeCore:
        """The validator's core."""
        return self.cluster.core("v0")

    def now_ms(self) -> int:
        """Virtual wall-clock time."""
        return self.cluster.now_ms

    def monotonic(self) -> float:
        """Virtual monotonic time in seconds."""
        return self.cluster.now_ms / 1000

    def sleep(self, seconds: float) -> None:
        """Let the chain run ``seconds`` of virtual time."""
        self.sleeps.append(seconds)
        self.cluster.run_for(max(1, round(seconds * 1000)))

    def get(self, key: bytes) -> bytes | None:
        """Committed state."""
        return self.core.get_state(key)

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Committed state under a prefix (``consent.ScanReader``)."""
        return store.app_entries_page(self.cluster.nodes["v0"].storage, prefix, limit)


class ChainGateway:
    """A ``NodeGateway`` over the chain's validator (what ``NodeApi`` reads)."""

    def __init__(self, chain: ClientChain) -> None:
        self.chain = chain

    async def snapshot(self) -> NodeSnapshot:
        raise NotImplementedError

    async def submit_tx(self, raw: bytes) -> TxResult:
        result = self.chain.cluster.submit("v0", raw)
        assert result is not None
        return result

    async def submit_txs(self, raws: Sequence[bytes]) -> list[TxResult]:
        return [await self.submit_tx(raw) for raw in raws]

    async def next_nonce(self, sender: bytes) -> int:
        return self.chain.core.next_nonce(sender)

    async def committed_block(self, height: int | None) -> Any:
        return self.chain.core.committed_block(self.chain.core.height if height is None else height)

    async def metrics(self) -> bytes:
        return b""

    async def module_state(self, module: str, path: str, height: int | None) -> ModuleState:
        return self.chain.core.queries.module_state(module, path, height)

    async def module_entries(self, module: str, path: str | None, limit: int) -> ModuleEntries:
        return self.chain.core.queries.module_entries(module, path, limit)

    async def events(self, after: EventCursor, kind_prefix: str, limit: int) -> EventPage:
        return self.chain.core.queries.events(after, kind_prefix, limit)

    async def committed_tx(self, tx_hash: bytes) -> CommittedTx | None:
        return self.chain.core.queries.committed_tx(tx_hash)

    async def wait_for_height(self, height: int) -> None:
        self.chain.cluster.run_while(lambda: self.chain.core.height < height, max_virtual_ms=5_000)


@dataclass
class Blob:
    """What a fake custodian keeps of one record."""

    owner: bytes
    ciphertext: bytes
    wrapped_keys: dict[bytes, bytes]


@dataclass
class FakeNode:
    """The node of the custodian ``custodian`` (see the module docstring)."""

    chain: ClientChain
    custodian: bytes
    network: dict[bytes, FakeNode]
    blobs: dict[bytes, Blob] = field(default_factory=dict)
    seen_nonces: set[bytes] = field(default_factory=set)
    fetches: list[FetchRequest] = field(default_factory=list)
    down: bool = False
    """A node that is down answers nothing (the transport says unreachable)."""

    def __post_init__(self) -> None:
        self.api = NodeApi(ChainGateway(self.chain))
        self.network[self.custodian] = self

    async def __call__(self, request: Request) -> Response:
        if not request.path.startswith("/records"):
            return await self.api(request)
        try:
            return self._records(request)
        except RecordsError as exc:
            body = {"error": exc.message, "reason": exc.reason}
            return Response(STATUS[exc.reason], json.dumps(body).encode())

    def _records(self, request: Request) -> Response:
        body: dict[str, Any] = json.loads(request.body) if request.body else {}
        route = (request.method, request.path)
        if route == ("POST", "/records/fetch"):
            fetch = decode_fetch_request(base64.b64decode(body["request"]))
            target = self.network.get(fetch.custodian)
            if target is None or target.down:
                raise RecordsError("busy", "that custodian cannot be reached")
            return _json(200, target.serve(fetch))
        if route == ("POST", "/records/keys"):
            return _json(200, self.add_keys(body))
        record = bytes.fromhex(request.path.removeprefix("/records/"))
        if request.method == "PUT":
            return _json(202, self.store(record, body))
        commitment = get_record(self.chain, record)
        if commitment is None:
            raise RecordsError("not_found", "no such record")
        document: dict[str, Any] = dict(render_record(commitment))
        document["held_here"] = record in self.blobs
        return _json(200, document)

    def store(self, record: bytes, body: dict[str, Any]) -> dict[str, Any]:
        """``PUT /records/<id>``: check the author's statement, keep the blob."""
        owner, author = bytes.fromhex(body["owner"]), bytes.fromhex(body["author"])
        ciphertext = base64.b64decode(body["ciphertext"])
        statement = commitment_statement(
            chain_id=CHAIN,
            record_id=record,
            owner=owner,
            resource_type=body["resource_type"],
            code=body["code"],
            commitment=commitment_of(ciphertext),
            key_epoch=body["key_epoch"],
            data_time_ms=body["data_time_ms"],
        )
        author_identity = get_identity(self.chain, author)
        signature = bytes.fromhex(body["author_signature"])
        if author_identity is None or not verify(author_identity.signing_key, statement, signature):
            raise RecordsError("bad_signature", "the author's statement does not verify")
        wrapped = {bytes.fromhex(k): base64.b64decode(v) for k, v in body["wrapped_keys"].items()}
        self.blobs[record] = Blob(owner, ciphertext, wrapped)
        return {"record": record.hex(), "status": "pending"}

    def add_keys(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /records/keys``: keys signed by the record's owner."""
        record = bytes.fromhex(body["record"])
        commitment = self._committed(record)
        wrapped = {bytes.fromhex(k): base64.b64decode(v) for k, v in body["wrapped_keys"].items()}
        owner = get_identity(self.chain, commitment.owner)
        statement = keys_statement(CHAIN, record, wrapped)
        assert owner is not None
        if not verify(owner.signing_key, statement, bytes.fromhex(body["signature"])):
            raise RecordsError("bad_signature", "the keys are not signed by the owner")
        blob = self.blobs.get(record)
        if blob is None:
            raise RecordsError("not_found", "no blob here")
        blob.wrapped_keys.update(wrapped)
        return {"record": record.hex(), "keys": len(blob.wrapped_keys)}

    def serve(self, fetch: FetchRequest) -> dict[str, Any]:
        """The custodian's side of a fetch (what the protocol handler would do)."""
        self.fetches.append(fetch)
        requester = get_identity(self.chain, fetch.requester)
        statement = fetch_statement(
            CHAIN, fetch.requester, fetch.record, fetch.custodian, fetch.nonce, fetch.time_ms
        )
        if requester is None or not verify(requester.signing_key, statement, fetch.signature):
            raise RecordsError("bad_signature", "the request does not verify")
        if abs(fetch.time_ms - self.chain.now_ms()) > MAX_SKEW_MS:
            raise RecordsError("stale", "the request's time is too far from ours")
        if fetch.nonce in self.seen_nonces:
            raise RecordsError("replayed", "nonce seen")
        self.seen_nonces.add(fetch.nonce)
        commitment = self._committed(fetch.record)
        blob = self.blobs.get(fetch.record)
        if blob is None:
            raise RecordsError("not_found", "not held here")
        access = find_access(
            self.chain,
            patient=commitment.owner,
            requester=fetch.requester,
            resource_type=commitment.resource_type,
            code=commitment.code,
            data_time_ms=commitment.data_time_ms,
            now_ms=self.chain.core.status().last_block_time_ms,
            purposes=(Purpose.TREATMENT, Purpose.RESEARCH),
        )
        if access is None:
            raise RecordsError("forbidden", "no access")
        wrapped = blob.wrapped_keys.get(fetch.requester)
        if wrapped is None:
            raise RecordsError("key_pending", "no key wrapped for the requester yet")
        return {
            "record": fetch.record.hex(),
            "ciphertext": base64.b64encode(blob.ciphertext).decode(),
            "wrapped_key": base64.b64encode(wrapped).decode(),
            "custodian": self.custodian.hex(),
        }

    def _committed(self, record: bytes) -> RecordCommitment:
        commitment = get_record(self.chain, record)
        if commitment is None:
            raise RecordsError("not_found", "no commitment on chain")
        if commitment.erased:
            self.blobs.pop(record, None)
            raise RecordsError("erased", "the record was erased")
        return commitment


def _json(status: int, document: dict[str, Any]) -> Response:
    return Response(status, json.dumps(document).encode())


@dataclass
class InProcessTransport:
    """Requests to ``http://<host>`` go to ``nodes[host]`` (see the module docstring)."""

    nodes: dict[str, FakeNode]
    requests: list[tuple[str, str]] = field(default_factory=list)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str] | Any,
        *,
        timeout_s: float,
        max_response_bytes: int,
    ) -> HttpReply:
        parts = urlsplit(url)
        node = self.nodes.get(parts.netloc)
        if node is None or node.down:
            raise ApiUnreachableError(f"no node answers at {parts.netloc}")
        self.requests.append((method, parts.path))
        query = dict(parse_qsl(parts.query))
        lowered = {k.lower(): v for k, v in dict(headers).items()}
        request = Request(method, parts.path, query, lowered, body or b"")
        response: Response = trio.run(node, request)
        assert len(response.body) <= max_response_bytes
        return HttpReply(response.status, response.body)
