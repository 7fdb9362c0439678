"""The API routes over a scripted gateway: documents, status codes, and transaction verdicts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack
import pytest
import trio
from trio.testing import MockClock

from node.adapters.metrics import NetworkCounters
from node.api.gateway import GatewayBusyError, NodeSnapshot
from node.api.http import Request, Response
from node.api.routes import NodeApi
from node.chain.actions import TxResult
from node.chain.event_feed import EventCursor, EventPage
from node.chain.queries import CommittedTx, ModuleEntries, ModuleState, UnknownModuleError
from node.codec import MAX_TX_BYTES, MAX_TXS_PER_BATCH
from node.errors import RejectReason
from node.testing.cluster import Cluster
from node.types import CommittedBlock

TX_HASH = bytes(range(32))
SENDER = bytes(range(32, 64))


def committed_blocks() -> list[CommittedBlock]:
    cluster = Cluster(validators=1, seed=3)
    cluster.run_until(height=2)
    core = cluster.core("v0")
    blocks = [core.committed_block(h) for h in (1, 2)]
    assert all(b is not None for b in blocks)
    return blocks  # type: ignore[return-value]


BLOCKS = committed_blocks()
CLUSTER_SNAPSHOT_CORE = Cluster(validators=1, seed=4)


@dataclass
class ScriptedGateway:
    verdict: TxResult = field(default_factory=lambda: TxResult(TX_HASH, True, None, ""))
    hang: bool = False
    busy: bool = False
    submitted: list[bytes] = field(default_factory=list)

    async def snapshot(self) -> NodeSnapshot:
        if self.hang:
            await trio.sleep_forever()
        if self.busy:
            raise GatewayBusyError("the node is stopping")
        core = CLUSTER_SNAPSHOT_CORE.core("v0")
        return NodeSnapshot(
            moniker="m",
            version="1",
            peer_id="12D3Koo",
            validator_key=SENDER,
            listen_addrs=("/ip4/127.0.0.1/tcp/1/p2p/12D3Koo",),
            peers=("a", "b"),
            status=core.status(),
            stats=core.stats,
            network=NetworkCounters().snapshot(
                peers_connected=2, peers_ready=2, peers_banned=0, inbound_queued=0
            ),
            uptime_s=1.5,
        )

    async def submit_tx(self, raw: bytes) -> TxResult:
        self.submitted.append(raw)
        return self.verdict

    async def submit_txs(self, raws: Sequence[bytes]) -> list[TxResult]:
        return [await self.submit_tx(raw) for raw in raws]

    async def next_nonce(self, sender: bytes) -> int:
        return 7 if sender == SENDER else 0

    async def committed_block(self, height: int | None) -> CommittedBlock | None:
        if height is None:
            return BLOCKS[-1]
        return BLOCKS[height - 1] if 1 <= height <= len(BLOCKS) else None

    async def metrics(self) -> bytes:
        return b"bighealth_height 2.0\n"

    async def module_state(self, module: str, path: str, height: int | None) -> ModuleState:
        raise UnknownModuleError(module)

    async def module_entries(self, module: str, path: str | None, limit: int) -> ModuleEntries:
        raise UnknownModuleError(module)

    async def events(self, after: EventCursor, kind_prefix: str, limit: int) -> EventPage:
        return EventPage((), after, after.height)

    async def committed_tx(self, tx_hash: bytes) -> CommittedTx | None:
        return None

    async def wait_for_height(self, height: int) -> None:
        await trio.sleep_forever()


def request(method: str, path: str, body: bytes = b"", content_type: str = "") -> Request:
    headers = {"content-type": content_type} if content_type else {}
    return Request(method, path, {}, headers, body)


def document(response: Response) -> dict[str, object]:
    value = json.loads(response.body)
    assert isinstance(value, dict)
    return value


async def test_status_carries_height_round_peers_and_the_last_block() -> None:
    response = await NodeApi(ScriptedGateway())(request("GET", "/status"))
    assert response.status == 200
    status = document(response)
    for key in ("height", "round", "step", "peers", "last_block_id", "chain_id", "mempool"):
        assert key in status
    assert isinstance(status["buffers"], dict) and status["buffers"]["pending_evidence"] == 0
    assert status["peers"] == 2
    assert status["validator_public_key"] == SENDER.hex()
    assert isinstance(status["network"], dict) and status["network"]["peers_connected"] == 2


async def test_health_is_ok_while_the_core_answers_and_503_when_it_does_not(
    autojump_clock: MockClock,
) -> None:
    healthy = await NodeApi(ScriptedGateway())(request("GET", "/health"))
    assert healthy.status == 200 and document(healthy)["status"] == "ok"
    stuck = await NodeApi(ScriptedGateway(hang=True))(request("GET", "/health"))
    assert stuck.status == 503


async def test_a_transaction_is_accepted_raw_or_as_json_hex() -> None:
    gateway = ScriptedGateway()
    api = NodeApi(gateway)
    raw = await api(request("POST", "/tx", b"\x01\x02", "application/octet-stream"))
    assert raw.status == 202
    assert document(raw) == {"accepted": True, "tx_hash": TX_HASH.hex()}
    hexed = await api(request("POST", "/tx", b'{"tx": "0a0b"}', "application/json; charset=utf-8"))
    assert hexed.status == 202
    assert gateway.submitted == [b"\x01\x02", b"\x0a\x0b"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", "application/octet-stream", 400),
        (b'{"tx": "zz"}', "application/json", 400),
        (b"[1]", "application/json", 400),
        (b"x", "text/plain", 415),
    ],
)
async def test_a_body_that_is_no_transaction_is_refused_before_the_node(
    body: bytes, content_type: str, status: int
) -> None:
    gateway = ScriptedGateway()
    response = await NodeApi(gateway)(request("POST", "/tx", body, content_type))
    assert response.status == status
    assert gateway.submitted == []


async def test_a_batch_is_submitted_as_one_request_and_answered_per_transaction() -> None:
    gateway = ScriptedGateway()
    body = msgpack.packb([b"\x01", b"\x02\x03"], use_bin_type=True)
    response = await NodeApi(gateway)(request("POST", "/txs", body, "application/msgpack"))
    assert response.status == 200
    assert document(response) == {
        "accepted": 2,
        "results": [{"tx_hash": TX_HASH.hex(), "accepted": True, "reason": None, "message": ""}]
        * 2,
    }
    assert gateway.submitted == [b"\x01", b"\x02\x03"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (msgpack.packb([b"\x01"]), "application/octet-stream", 415),
        (b"\xc1", "application/msgpack", 400),  # never used in msgpack
        (msgpack.packb([]), "application/msgpack", 400),
        (msgpack.packb([b""]), "application/msgpack", 400),
        (msgpack.packb(["text"]), "application/msgpack", 400),
        (msgpack.packb({"a": b"\x01"}), "application/msgpack", 400),
        (msgpack.packb([b"\x01"] * (MAX_TXS_PER_BATCH + 1)), "application/msgpack", 400),
        (msgpack.packb([b"\x01" * (MAX_TX_BYTES + 1)]), "application/msgpack", 400),
        (msgpack.packb([b"\x01"]) + b"\x00", "application/msgpack", 400),
    ],
)
async def test_a_body_that_is_no_batch_is_refused_before_the_node(
    body: bytes, content_type: str, status: int
) -> None:
    gateway = ScriptedGateway()
    response = await NodeApi(gateway)(request("POST", "/txs", body, content_type))
    assert response.status == status
    assert gateway.submitted == []


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (RejectReason.MALFORMED, 400),
        (RejectReason.BAD_SIGNATURE, 422),
        (RejectReason.NONCE_GAP, 422),
        (RejectReason.APP_REJECTED, 422),
        (RejectReason.MEMPOOL_FULL, 503),
    ],
)
async def test_a_refused_transaction_says_why(reason: RejectReason, status: int) -> None:
    gateway = ScriptedGateway(verdict=TxResult(TX_HASH, False, reason, "because"))
    response = await NodeApi(gateway)(request("POST", "/tx", b"\x01"))
    assert response.status == status
    assert document(response) == {
        "accepted": False,
        "tx_hash": TX_HASH.hex(),
        "reason": reason.value,
        "message": "because",
    }
    if reason is RejectReason.MEMPOOL_FULL:
        assert ("retry-after", "1") in response.headers


async def test_blocks_by_height_and_latest() -> None:
    api = NodeApi(ScriptedGateway())
    first = await api(request("GET", "/blocks/1"))
    assert first.status == 200
    block = document(first)
    assert block["height"] == 1
    assert block["num_txs"] == len(BLOCKS[0].block.txs)
    assert block["equivocations"] == []
    assert isinstance(block["commit"], dict) and block["commit"]["signatures"] == 1
    latest = document(await api(request("GET", "/blocks/latest")))
    assert latest["height"] == 2
    assert latest["previous_block_id"] == block["block_id"]
    assert (await api(request("GET", "/blocks/99"))).status == 404
    beyond = await api(request("GET", f"/blocks/{2**64}"))  # no such height can exist
    beyond_error = document(beyond)["error"]
    assert beyond.status == 400 and isinstance(beyond_error, str) and "at most" in beyond_error


async def test_the_nonce_of_an_account() -> None:
    response = await NodeApi(ScriptedGateway())(request("GET", f"/accounts/{SENDER.hex()}/nonce"))
    assert document(response) == {"public_key": SENDER.hex(), "next_nonce": 7}
    for key in ("abc", "zz", "zz" * 32, SENDER.hex() + "00"):
        bad = await NodeApi(ScriptedGateway())(request("GET", f"/accounts/{key}/nonce"))
        assert bad.status == 400
        assert "an account key is 64 hex digits" in str(document(bad)["error"])


async def test_unknown_paths_wrong_methods_busy_nodes_and_metrics() -> None:
    api = NodeApi(ScriptedGateway())
    assert (await api(request("GET", "/nope"))).status == 404
    wrong = await api(request("GET", "/tx"))
    assert wrong.status == 405 and ("allow", "POST") in wrong.headers
    busy = await NodeApi(ScriptedGateway(busy=True))(request("GET", "/status"))
    assert busy.status == 503
    metrics = await api(request("GET", "/metrics"))
    assert metrics.status == 200
    assert metrics.content_type.startswith("text/plain")
    assert metrics.body == b"bighealth_height 2.0\n"
