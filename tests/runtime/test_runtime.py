"""``NodeRuntime`` s in one trio run over the in-memory hub, on a virtual clock.

These check the runtime's own job — timers, the inbox, carrying out actions, block sync by
request/response, the gateway, bans — fast and without processes; the multi-process tests
check the same over libp2p and LevelDB.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from consensus.sign_bytes import vote_sign_bytes_of
from consensus.types import Vote, VoteType
from node.api.http import Request
from node.api.routes import NodeApi
from node.app.accounts import GenesisAccount, Role
from node.app.kv import set_payload
from node.chain.config import NodeConfig
from node.chain.event_feed import EventCursor
from node.chain.genesis import Genesis
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_TXS
from node.chain.queries import BadQueryError, UnknownModuleError
from node.codec import block_id, encode_message, tx_hash
from node.core import NodeCore
from node.errors import RejectReason, RemoteError
from node.ports import Signer
from node.runtime.metrics import NodeMetrics
from node.runtime.node import NodeIdentity, NodeRuntime, RuntimeLimits, TipBoard
from node.runtime.sync_wire import SYNC_PROTOCOL, SYNC_REQUEST_CODEC, SyncRequest, response_codec
from node.testing import MemoryStorage, TxFactory, key_pair, make_validators
from tests.runtime.fakes import GENESIS_TIME_MS, FakeHub, FakeNetwork, VirtualClock

POLL_S = 0.05  # virtual seconds between two looks at a condition
DEADLINE_S = 120.0  # virtual seconds a condition may take
CONFIG = NodeConfig(commit_wait_ms=100)


@dataclass
class Node:
    name: str
    storage: MemoryStorage
    signer: Signer | None
    runtime: NodeRuntime | None = None
    network: FakeNetwork | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


@dataclass
class Net:
    hub: FakeHub
    genesis: Genesis
    nursery: trio.Nursery
    nodes: dict[str, Node]
    txs: TxFactory
    clients: list[Any]

    def runtime(self, name: str) -> NodeRuntime:
        runtime = self.nodes[name].runtime
        assert runtime is not None
        return runtime

    async def start(self, name: str, limits: RuntimeLimits | None = None) -> None:
        node = self.nodes[name]
        core = NodeCore.open(node.storage, node.signer, self.genesis, CONFIG)
        tip = TipBoard(core.height, core.last_block_id)
        if name in self.hub.endpoints:
            network = self.hub.endpoints[name]
            network.status_provider = tip.encoded
        else:
            network = self.hub.join(name, tip.encoded)
        key = None if node.signer is None else node.signer.public_key
        node.runtime = NodeRuntime(
            core,
            network,
            VirtualClock(),
            identity=NodeIdentity(name, "test", key),
            metrics=NodeMetrics(network.snapshot),
            max_block_bytes=self.genesis.params.max_block_bytes,
            limits=limits or RuntimeLimits(peer_poll_interval_s=0.05),
            tip=tip,
        )
        node.network = network
        node.scope = trio.CancelScope()
        await self.nursery.start(self._run, node)

    async def _run(self, node: Node, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        assert node.runtime is not None and node.network is not None
        with node.scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(node.network.serve)
                await nursery.start(node.runtime.run)
                task_status.started()

    def stop(self, name: str) -> None:
        self.nodes[name].scope.cancel()

    async def height(self, name: str) -> int:
        return (await self.runtime(name).snapshot()).status.height

    async def block_ids(self, name: str, up_to: int) -> list[bytes]:
        ids = []
        for height in range(1, up_to + 1):
            block = await self.runtime(name).committed_block(height)
            assert block is not None
            ids.append(block_id(block.block.header))
        return ids


async def wait_until(
    condition: Callable[[], Awaitable[bool]], deadline_s: float = DEADLINE_S
) -> None:
    """Poll ``condition`` every ``POLL_S`` virtual seconds until it holds (or fail)."""
    with trio.fail_after(deadline_s):
        while not await condition():
            await trio.sleep(POLL_S)


@asynccontextmanager
async def network_of(validators: int, observers: int = 0) -> AsyncIterator[Net]:
    fixture = make_validators(validators)
    clients = [key_pair(f"client-{i}") for i in range(4)]
    genesis = Genesis(
        chain_id="runtime-chain",
        genesis_time_ms=GENESIS_TIME_MS,
        validators=fixture.validators,
        accounts=tuple(GenesisAccount(k.public_key, Role.INSTITUTION) for k in clients),
    )
    signers: list[Signer | None] = [*fixture.keys, *([None] * observers)]
    nodes = {}
    for index, signer in enumerate(signers):
        name = f"v{index}" if signer is not None else f"o{index - validators}"
        nodes[name] = Node(name, MemoryStorage(), signer)
    async with trio.open_nursery() as nursery:
        net = Net(FakeHub(), genesis, nursery, nodes, TxFactory(genesis.chain_id), clients)
        yield net
        nursery.cancel_scope.cancel()


async def all_reach(net: Net, names: list[str], height: int) -> None:
    async def reached() -> bool:
        return all([await net.height(name) >= height for name in names])

    await wait_until(reached)


async def test_four_validators_commit_submitted_transactions_and_agree(
    autojump_clock: MockClock,
) -> None:
    async with network_of(4) as net:
        for name in net.nodes:
            await net.start(name)
        accepted = []
        for index in range(12):
            client = net.clients[index % len(net.clients)]
            raw = net.txs.encoded(client, "kv.set", set_payload(b"k%d" % index, b"v"))
            result = await net.runtime(f"v{index % 4}").submit_tx(raw)
            assert result.accepted, result.message
            accepted.append(result.tx_hash)
        names = list(net.nodes)
        await all_reach(net, names, 6)

        async def all_committed() -> bool:
            stats = [(await net.runtime(n).snapshot()).stats for n in names]
            return all(s.txs_committed == len(accepted) for s in stats)

        await wait_until(all_committed)
        first = await net.block_ids("v0", 6)
        for name in names[1:]:
            assert await net.block_ids(name, 6) == first
        assert b"bighealth_commit_latency_seconds_count" in await net.runtime("v0").metrics()


async def test_a_batch_is_verified_off_the_core_task_and_committed(
    autojump_clock: MockClock,
) -> None:
    async with network_of(4) as net:
        for name in net.nodes:
            await net.start(name)
        raws = [
            net.txs.encoded(client, "kv.set", set_payload(b"b%d" % index, b"v"))
            for index, client in enumerate(net.clients)
        ]
        results = await net.runtime("v1").submit_txs([*raws, b"\x01junk", raws[0]])
        assert [r.accepted for r in results] == [True] * len(raws) + [False, False]
        assert results[-2].reason is RejectReason.MALFORMED
        assert results[-1].reason is RejectReason.DUPLICATE

        async def all_committed() -> bool:
            stats = [(await net.runtime(n).snapshot()).stats for n in net.nodes]
            return all(s.txs_committed == len(raws) for s in stats)

        await wait_until(all_committed)


async def test_client_submissions_never_crowd_the_inbox_ahead_of_consensus(
    autojump_clock: MockClock,
) -> None:
    async with network_of(1) as net:
        node = net.nodes["v0"]
        core = NodeCore.open(node.storage, node.signer, net.genesis, CONFIG)
        tip = TipBoard(core.height, core.last_block_id)
        network = net.hub.join("v0", tip.encoded)
        runtime = NodeRuntime(
            core, network, VirtualClock(), identity=NodeIdentity("v0", "test", None),
            metrics=NodeMetrics(network.snapshot),
            max_block_bytes=net.genesis.params.max_block_bytes,
            limits=RuntimeLimits(submission_slots=2), tip=tip,
        )  # fmt: skip
        raw = net.txs.encoded(net.clients[0], "kv.set", set_payload(b"k", b"v"))
        async with trio.open_nursery() as nursery:  # the core task is not running: all wait
            for _ in range(6):
                nursery.start_soon(runtime.submit_txs, [raw])
                nursery.start_soon(runtime.submit_tx, raw)
            await trio.sleep(1)
            assert runtime._inbox_receive.statistics().current_buffer_used == 2
            nursery.cancel_scope.cancel()


async def test_a_rejected_transaction_is_answered_with_its_reason(
    autojump_clock: MockClock,
) -> None:
    async with network_of(1) as net:
        await net.start("v0")
        result = await net.runtime("v0").submit_tx(b"\x01not a transaction")
        assert not result.accepted
        assert result.reason is RejectReason.MALFORMED
        stranger = key_pair("not-in-genesis")
        raw = net.txs.encoded(stranger, "kv.set", set_payload(b"k", b"v"))
        result = await net.runtime("v0").submit_tx(raw)
        assert not result.accepted
        assert result.reason is RejectReason.APP_REJECTED


async def test_a_late_observer_syncs_every_block_from_its_peers(
    autojump_clock: MockClock,
) -> None:
    async with network_of(4, observers=1) as net:
        for name in ("v0", "v1", "v2", "v3"):
            await net.start(name)
        await all_reach(net, ["v0"], 10)
        await net.start("o0")
        await all_reach(net, ["o0"], 10)
        snapshot = await net.runtime("o0").snapshot()
        assert snapshot.stats.blocks_synced >= 9  # the last may come by consensus messages
        assert snapshot.stats.misbehaviours == 0
        assert not snapshot.status.is_validator
        assert await net.block_ids("o0", 10) == await net.block_ids("v0", 10)


async def test_a_stopped_validator_restarts_from_its_storage_and_catches_up(
    autojump_clock: MockClock,
) -> None:
    async with network_of(4) as net:
        for name in net.nodes:
            await net.start(name)
        await all_reach(net, ["v3"], 3)
        net.stop("v3")
        await all_reach(net, ["v0", "v1", "v2"], 10)  # 3 of 4 keep committing
        await net.start("v3")
        stopped_at = (await net.runtime("v3").snapshot()).status.height
        assert stopped_at >= 3  # restored from storage, not from genesis
        await_height = await net.height("v0") + 2
        await all_reach(net, list(net.nodes), await_height)
        assert await net.block_ids("v3", await_height) == await net.block_ids("v0", await_height)


async def test_the_sync_server_answers_blocks_and_refuses_bad_requests(
    autojump_clock: MockClock,
) -> None:
    async with network_of(1) as net:
        await net.start("v0")
        await all_reach(net, ["v0"], 3)
        asker = net.hub.join("asker")
        asker.online = True
        request = SYNC_REQUEST_CODEC.encode(SyncRequest(from_height=1, max_blocks=2))
        answer = await asker.request("v0", SYNC_PROTOCOL, request, timeout_ms=1000)
        blocks = response_codec(8 * 1024 * 1024).decode(answer).blocks
        assert len(blocks) == 2
        for bad in (b"garbage", SYNC_REQUEST_CODEC.encode(SyncRequest(0, 5))):
            with pytest.raises(RemoteError):
                await asker.request("v0", SYNC_PROTOCOL, bad, timeout_ms=1000)


async def test_a_forged_vote_gets_its_sender_banned_and_garbage_is_stopped_at_the_edge(
    autojump_clock: MockClock,
) -> None:
    async with network_of(4) as net:
        for name in net.nodes:
            await net.start(name)
        await all_reach(net, ["v0"], 1)
        intruder = net.hub.join("intruder")
        intruder.online = True
        victim = net.nodes["v0"].network
        assert victim is not None
        intruder.send("v0", TOPIC_TXS, b"\xc1 not msgpack")
        assert victim.rejected and victim.rejected[-1].sender == "intruder"
        height = await net.height("v0") + 1
        forged = Vote(
            "runtime-chain",
            height,
            0,
            VoteType.PREVOTE,
            None,
            make_validators(4).keys[1].public_key,
            b"",
        )
        forged = forged.with_signature(key_pair("intruder").sign(vote_sign_bytes_of(forged)))
        intruder.send("v0", TOPIC_CONSENSUS, encode_message(forged))

        async def banned() -> bool:
            return any(peer == "intruder" for peer, _ in victim.bans)

        await wait_until(banned)
        assert "invalid_signature" in victim.bans[0][1]
        await all_reach(net, ["v0"], height + 2)  # and the node keeps committing


async def test_consensus_broadcasts_also_go_straight_to_every_peer(
    autojump_clock: MockClock,
) -> None:
    async with network_of(4) as net:
        for name in net.nodes:
            await net.start(name)
        await all_reach(net, ["v0"], 2)
        network = net.nodes["v0"].network
        assert network is not None
        direct = {
            peer
            for kind, peer, topic in network.sent
            if kind == "send" and topic == TOPIC_CONSENSUS
        }
        assert direct == {"v1", "v2", "v3"}
        assert ("broadcast", None, TOPIC_CONSENSUS) in network.sent


async def test_status_snapshot_names_the_node_and_its_peers(
    autojump_clock: MockClock,
) -> None:
    async with network_of(2) as net:
        for name in net.nodes:
            await net.start(name)
        await all_reach(net, ["v0", "v1"], 1)
        snapshot = await net.runtime("v0").snapshot()
        assert snapshot.moniker == "v0"
        assert snapshot.peers == ("v1",)
        assert snapshot.status.is_validator
        assert snapshot.validator_key == make_validators(2).keys[0].public_key
        latest = await net.runtime("v0").committed_block(None)
        assert latest is not None and latest.block.header.height == snapshot.status.height
        assert await net.runtime("v0").committed_block(10_000) is None
        client = net.clients[0].public_key
        assert await net.runtime("v0").next_nonce(client) == 0


async def test_a_full_timer_queue_drops_the_timers_of_committed_heights(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with network_of(1) as net:
        # Each height leaves a propose timer that outlives it (the block comes at once):
        # six slots fill within a few heights, and only moot timers may make room.
        await net.start("v0", RuntimeLimits(max_timers=6))
        await all_reach(net, ["v0"], 12)
    assert any(record.getMessage() == "timer queue full" for record in caplog.records)


async def test_a_query_that_fails_is_answered_with_its_error_and_the_node_goes_on(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with network_of(1) as net:
        await net.start("v0")
        runtime = net.runtime("v0")

        def broken(sender: bytes) -> int:
            raise RuntimeError("a bug in a query")

        monkeypatch.setattr(runtime._core, "next_nonce", broken)
        with pytest.raises(RuntimeError, match="a bug in a query"):
            await runtime.next_nonce(bytes(32))
        height = await net.height("v0")
        await all_reach(net, ["v0"], height + 2)


async def test_clients_read_state_receipts_and_events_through_the_core_task(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with network_of(1) as net:
        await net.start("v0")
        runtime = net.runtime("v0")
        client = net.clients[0]
        raw = net.txs.encoded(client, "kv.set", set_payload(b"key", b"value"))
        assert (await runtime.submit_tx(raw)).accepted

        async def committed() -> bool:
            return await runtime.committed_tx(tx_hash(raw)) is not None

        await wait_until(committed)
        receipt = await runtime.committed_tx(tx_hash(raw))
        assert receipt is not None and receipt.receipt.ok
        path = (b"e/" + client.public_key + b"key").hex()
        state = await runtime.module_state("kv", path, None)
        assert state.proof.value is not None and state.rendered is not None
        listing = await runtime.module_entries("kv", None, 10)
        assert [e.key for e in listing.entries] == [state.proof.key]
        page = await runtime.events(EventCursor(0), "kv.", 10)
        assert [e.tx_hash for e in page.events] == [tx_hash(raw)]
        with pytest.raises(UnknownModuleError):
            await runtime.module_state("care", "00", None)
        with pytest.raises(BadQueryError):
            await runtime.module_state("kv", "zz", None)
        assert not any(r.getMessage() == "a query failed" for r in caplog.records)
        tip = await net.height("v0")
        with trio.fail_after(10):
            await runtime.wait_for_height(tip + 1)
        assert await net.height("v0") >= tip + 1
        tip = await net.height("v0")
        request = Request("GET", "/events", {"after": str(tip), "wait_ms": "20000"}, {}, b"")
        started = trio.current_time()
        response = await NodeApi(runtime)(request)
        assert response.status == 200 and trio.current_time() - started < 5
        assert json.loads(response.body)["next_after"] > tip
