"""The API's chain routes (``/state``, ``/events``, ``/tx``) over a gateway that reads a real
chain (a one-validator ``Cluster``), long-polls included, on trio's virtual clock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from node.api.gateway import NodeSnapshot
from node.api.http import Request, Response
from node.api.routes import MAX_QUERY_PATH_CHARS, NodeApi
from node.app.kv import set_payload
from node.app.state import verify_state_proof
from node.chain.actions import TxResult
from node.chain.event_feed import EventCursor, EventPage
from node.chain.queries import CommittedTx, ModuleEntries, ModuleState
from node.codec import tx_hash
from node.core import NodeCore
from node.testing import TxFactory
from node.testing.cluster import Cluster
from node.types import CommittedBlock, LeafProof, StateProof


class ClusterGateway:
    """A ``NodeGateway`` reading ``v0`` of a one-validator cluster; ``commit`` advances it."""

    def __init__(self) -> None:
        self.cluster = Cluster(validators=1, seed=12)
        self.txs = TxFactory(self.cluster.genesis.chain_id)
        self._moved = trio.Event()

    @property
    def core(self) -> NodeCore:
        return self.cluster.core("v0")

    def commit(self, client: int, key: bytes) -> bytes:
        """Submit ``kv.set key`` from client ``client``, commit it (two heights); its hash."""
        raw = self.txs.encoded(self.cluster.client_keys[client], "kv.set", set_payload(key, b"v"))
        result = self.cluster.submit("v0", raw)
        assert result is not None and result.accepted
        self.cluster.run_until(height=self.core.height + 2)
        self._moved.set()
        self._moved = trio.Event()
        return tx_hash(raw)

    async def snapshot(self) -> NodeSnapshot:
        raise NotImplementedError

    async def submit_tx(self, raw: bytes) -> TxResult:
        raise NotImplementedError

    async def submit_txs(self, raws: Sequence[bytes]) -> list[TxResult]:
        raise NotImplementedError

    async def next_nonce(self, sender: bytes) -> int:
        return self.core.next_nonce(sender)

    async def committed_block(self, height: int | None) -> CommittedBlock | None:
        return self.core.committed_block(self.core.height if height is None else height)

    async def metrics(self) -> bytes:
        return b""

    async def module_state(self, module: str, path: str, height: int | None) -> ModuleState:
        return self.core.queries.module_state(module, path, height)

    async def module_entries(self, module: str, path: str | None, limit: int) -> ModuleEntries:
        return self.core.queries.module_entries(module, path, limit)

    async def events(self, after: EventCursor, kind_prefix: str, limit: int) -> EventPage:
        return self.core.queries.events(after, kind_prefix, limit)

    async def committed_tx(self, tx_hash: bytes) -> CommittedTx | None:
        return self.core.queries.committed_tx(tx_hash)

    async def wait_for_height(self, height: int) -> None:
        while self.core.height < height:
            await self._moved.wait()


def chain() -> tuple[ClusterGateway, list[bytes]]:
    """Client 0 sets ``one`` and ``two``, client 1 sets ``one``."""
    gateway = ClusterGateway()
    hashes = [gateway.commit(0, b"one"), gateway.commit(0, b"two"), gateway.commit(1, b"one")]
    return gateway, hashes


async def get(api: NodeApi, target: str) -> tuple[int, Any]:
    path, _, query = target.partition("?")
    params = dict(item.split("=", 1) for item in query.split("&")) if query else {}
    response: Response = await api(Request("GET", path, params, {}, b""))
    return response.status, json.loads(response.body)


def kv_path(gateway: ClusterGateway, client: int, key: bytes) -> str:
    return (b"e/" + gateway.cluster.client_keys[client].public_key + key).hex()


def proof_of(document: dict[str, Any]) -> StateProof:
    """A ``StateProof`` read back from its JSON document."""

    def leaf(value: dict[str, Any] | None) -> LeafProof | None:
        if value is None:
            return None
        path = tuple(bytes.fromhex(h) for h in value["path"])
        key, stored = bytes.fromhex(value["key"]), bytes.fromhex(value["value"])
        return LeafProof(key, stored, value["leaf_index"], path)

    value = document["value"]
    return StateProof(
        height=document["height"],
        state_root=bytes.fromhex(document["state_root"]),
        tree_size=document["tree_size"],
        key=bytes.fromhex(document["key"]),
        value=None if value is None else bytes.fromhex(value),
        found=leaf(document["found"]),
        lower=leaf(document["lower"]),
        upper=leaf(document["upper"]),
    )


async def test_a_module_key_with_a_proof_that_verifies() -> None:
    gateway, _ = chain()
    api = NodeApi(gateway)
    path = kv_path(gateway, 0, b"one")
    status, state = await get(api, f"/state/kv/{path}")
    assert status == 200
    assert state["module"] == "kv" and state["path"] == path
    assert state["key"] == (b"kv/" + bytes.fromhex(path)).hex()
    assert state["height"] == gateway.core.height
    assert state["state_root"] == gateway.core.app_state_root.hex()
    assert state["value"] == {"hex": state["value_hex"]}
    proof = proof_of(state["proof"])
    assert proof.value is not None and proof.value.hex() == state["value_hex"]
    assert verify_state_proof(proof, gateway.core.app_state_root)
    status, old = await get(api, f"/state/kv/{path}?height=0")
    assert status == 200 and old["value"] is None and old["value_hex"] is None
    assert old["proof"]["found"] is None and old["height"] == 0


@pytest.mark.parametrize(
    ("target", "status", "message"),
    [
        ("/state/care/00", 404, "no module 'care'"),
        ("/state/kv/zz", 400, "hex"),
        ("/state/kv/00?height=999", 404, "height 999 is not kept"),
        ("/state/kv/00?height=-1", 400, "height must be an integer"),
        ("/state/kv/00?height=x", 400, "height must be an integer"),
        ("/state/kv/%ff", 400, "not %-escaped UTF-8"),
        ("/state/kv/" + "0" * (MAX_QUERY_PATH_CHARS + 2), 400, "at most"),
        ("/state/care", 404, "no module"),
        ("/state/kv?limit=0", 400, "limit must be an integer in 1..1000"),
        ("/state/kv?limit=1001", 400, "limit"),
        ("/state/kv?prefix=zz", 400, "hex"),
        ("/tx/zz", 400, "a transaction hash is 64 hex digits"),
        ("/tx/" + "00" * 32, 404, "not committed here"),
        ("/events?after=x", 400, "after: a cursor"),
        ("/events?kind=Care", 400, "kind must match"),
        ("/events?limit=5000", 400, "limit"),
        ("/events?wait_ms=30001", 400, "wait_ms"),
    ],
)
async def test_bad_or_missing_things_are_400_or_404_with_a_message(
    target: str, status: int, message: str
) -> None:
    gateway = ClusterGateway()
    got, document = await get(NodeApi(gateway), target)
    assert got == status
    assert message in document["error"]


async def test_entries_under_a_prefix_rendered_and_bounded() -> None:
    gateway, _ = chain()
    api = NodeApi(gateway)
    status, listing = await get(api, "/state/kv")
    assert status == 200 and listing["module"] == "kv" and listing["prefix"] is None
    assert listing["key_prefix"] == b"kv/".hex()
    assert len(listing["entries"]) == 3 and not listing["truncated"]
    assert listing["height"] == gateway.core.height
    mine = kv_path(gateway, 0, b"")
    status, page = await get(api, f"/state/kv?prefix={mine}&limit=1")
    assert status == 200 and page["truncated"] and page["prefix"] == mine
    entry = page["entries"][0]
    assert entry["key"] == (b"kv/" + bytes.fromhex(kv_path(gateway, 0, b"one"))).hex()
    assert entry["value"] == {"hex": entry["value_hex"]}


async def test_a_committed_transaction_has_its_receipt() -> None:
    gateway, hashes = chain()
    status, tx = await get(NodeApi(gateway), f"/tx/{hashes[1].hex()}")
    assert status == 200
    assert tx["tx_hash"] == hashes[1].hex() and tx["ok"] and tx["code"] == "ok"
    assert tx["log"] == "" and tx["gas_used"] > 0
    block = gateway.core.committed_block(tx["height"])
    assert block is not None and tx_hash(block.block.txs[tx["index"]]) == hashes[1]
    assert tx["time_ms"] == block.block.header.time_ms
    assert [e["kind"] for e in tx["events"]] == ["kv.set"]
    assert tx["events"][0]["attributes"]["key"] == b"two".hex()


async def test_events_are_paged_and_filtered() -> None:
    gateway, hashes = chain()
    api = NodeApi(gateway)
    status, page = await get(api, "/events?kind=kv.")
    assert status == 200
    assert [e["tx_hash"] for e in page["events"]] == [h.hex() for h in hashes]
    first = page["events"][0]
    assert first["kind"] == "kv.set" and set(first) == {
        "height", "index", "time_ms", "tx_hash", "kind", "attributes",
    }  # fmt: skip
    assert first["attributes"]["key"] == b"one".hex()
    assert page["next_after"] == gateway.core.height == page["height"]
    status, two = await get(api, "/events?kind=kv.set&limit=2")
    assert [e["tx_hash"] for e in two["events"]] == [h.hex() for h in hashes[:2]]
    status, rest = await get(api, f"/events?kind=kv.&after={two['next_after']}")
    assert [e["tx_hash"] for e in rest["events"]] == [hashes[2].hex()]
    status, none = await get(api, "/events?kind=care.")
    assert none["events"] == [] and none["next_after"] == gateway.core.height


async def test_a_long_poll_answers_when_a_block_commits(autojump_clock: MockClock) -> None:
    gateway, _ = chain()
    api = NodeApi(gateway)
    tip = gateway.core.height
    new_hash: list[bytes] = []

    async def commit_later() -> None:
        await trio.sleep(1.5)
        new_hash.append(gateway.commit(1, b"late"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(commit_later)
        started = trio.current_time()
        status, page = await get(api, f"/events?after={tip}&kind=kv.&wait_ms=20000")
        waited_s = trio.current_time() - started
    assert status == 200 and 1.5 <= waited_s < 2.0
    assert [e["tx_hash"] for e in page["events"]] == [new_hash[0].hex()]
    assert api.long_polls == 0


async def test_a_long_poll_ends_empty_after_wait_ms_or_the_server_limit(
    autojump_clock: MockClock,
) -> None:
    gateway, _ = chain()
    tip = gateway.core.height
    started = trio.current_time()
    status, page = await get(NodeApi(gateway), f"/events?after={tip}&wait_ms=2500")
    assert status == 200 and page["events"] == [] and page["next_after"] == tip
    assert trio.current_time() - started == pytest.approx(2.5)
    started = trio.current_time()
    clamped = NodeApi(gateway, max_wait_ms=300)
    status, page = await get(clamped, f"/events?after={tip}&wait_ms=30000")
    assert status == 200 and trio.current_time() - started == pytest.approx(0.3)
    started = trio.current_time()
    status, page = await get(NodeApi(gateway), "/events?after=0&kind=kv.&wait_ms=5000")
    assert len(page["events"]) == 3 and trio.current_time() == started  # no wait for these


async def test_long_polls_are_bounded(autojump_clock: MockClock) -> None:
    gateway, _ = chain()
    api = NodeApi(gateway, max_long_polls=1)
    tip = gateway.core.height
    answers: list[int] = []

    async def waiting() -> None:
        answers.append((await get(api, f"/events?after={tip}&wait_ms=10000"))[0])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiting)
        await trio.sleep(1)
        assert api.long_polls == 1
        response = await api(
            Request("GET", "/events", {"after": str(tip), "wait_ms": "10"}, {}, b"")
        )
        assert response.status == 503 and ("retry-after", "1") in response.headers
        assert (await get(api, f"/events?after={tip}"))[0] == 200  # no wait: served
    assert answers == [200] and api.long_polls == 0
