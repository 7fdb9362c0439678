"""What a running node offers its extensions: state reads on the core task, the commit
feed, request/response protocols, and routes on the node's API."""

from __future__ import annotations

import json

import pytest
import trio
from trio.testing import MockClock

from node.api.http import Request, Response
from node.api.routes import NodeApi
from node.app.kv import entry_key, set_payload
from node.chain.actions import BlockCommitted
from node.runtime.extension import StateReader
from node.runtime.services import CommitFeed, commit_notice
from node.types import Event, EventAttribute, ResultCode, TxReceipt
from tests.runtime.test_runtime import network_of, wait_until


def _committed(height: int, codes: tuple[ResultCode, ...] = ()) -> BlockCommitted:
    receipts = tuple(
        TxReceipt(bytes(32), code, "", 0, (Event(f"kv.tx{i}", ()),)) for i, code in enumerate(codes)
    )
    block_event = Event("care.dose_due", (EventAttribute("patient", "ab"),))
    return BlockCommitted(
        height, bytes(32), 1_000 * height, len(codes), bytes(32), (block_event,), receipts
    )


def test_a_notice_holds_block_events_then_successful_transactions_events() -> None:
    notice = commit_notice(_committed(3, (ResultCode.OK, ResultCode.UNAUTHORIZED, ResultCode.OK)))
    assert [e.name for e in notice.events] == ["care.dose_due", "kv.tx0", "kv.tx2"]
    assert (notice.height, notice.time_ms, notice.gap) == (3, 3_000, False)


async def test_a_slow_subscriber_misses_notices_and_is_told_so() -> None:
    feed = CommitFeed(max_subscribers=2)
    slow = feed.subscribe(max_buffered=1)
    fast = feed.subscribe(max_buffered=8)
    for height in (1, 2, 3):
        feed.publish(_committed(height))
    assert feed.dropped == 2  # heights 2 and 3 did not fit the slow buffer
    assert (await slow.receive()).height == 1
    feed.publish(_committed(4))
    fourth = await slow.receive()
    assert (fourth.height, fourth.gap) == (4, True)
    assert [(await fast.receive()).gap for _ in range(4)] == [False] * 4


def test_subscriptions_are_bounded_and_closed_ones_make_room() -> None:
    feed = CommitFeed(max_subscribers=1)
    first = feed.subscribe(max_buffered=4)
    with pytest.raises(ValueError, match="at most 1"):
        feed.subscribe(max_buffered=4)
    first.close()
    feed.subscribe(max_buffered=4)
    for bad in (0, 100_000):
        with pytest.raises(ValueError, match="max_buffered"):
            feed.subscribe(max_buffered=bad)


async def test_an_extension_reads_state_follows_commits_and_serves_a_protocol(
    autojump_clock: MockClock,
) -> None:
    async with network_of(2) as net:
        for name in net.nodes:
            await net.start(name)
        services = net.runtime("v0").services()
        commits = services.commits(max_buffered=64)
        client = net.clients[0]
        raw = net.txs.encoded(client, "kv.set", set_payload(b"greeting", b"hello"))
        assert (await services.submit_tx(raw)).accepted
        seen: list[str] = []
        with trio.fail_after(60):
            while "kv.set" not in seen:
                seen += [e.name for e in (await commits.receive()).events]

        def read(state: StateReader) -> tuple[bytes | None, int]:
            return state.get(entry_key(client.public_key, b"greeting")), len(
                state.iterate(b"kv/e/", 10)
            )

        value, entries = await services.query(read)
        assert entries == 1 and value is not None and b"hello" in value
        assert await services.next_nonce(client.public_key) == 1

        async def echo(peer: str, data: bytes) -> bytes:
            return b"echo:" + data

        net.runtime("v1").services().register_handler("/bighealth/echo/1", echo)
        peer = net.nodes["v1"].network
        assert peer is not None

        async def connected() -> bool:
            return peer.local_peer in services.connected_peers()

        await wait_until(connected)
        answer = await services.request(peer.local_peer, "/bighealth/echo/1", b"hi", 1_000)
        assert answer == b"echo:hi"


async def test_extension_routes_are_served_beside_the_nodes_own() -> None:
    class _NoGateway:
        pass

    api = NodeApi(_NoGateway())  # type: ignore[arg-type]

    async def hello(request: Request, match: object) -> Response:
        return Response(200, json.dumps({"record": match.group(1)}).encode())  # type: ignore[attr-defined]

    api.add_route("GET", r"/records/([0-9a-f]{64})", hello)
    response = await api(Request("GET", "/records/" + "ab" * 32, {}, {}, b""))
    assert json.loads(response.body) == {"record": "ab" * 32}
    missing = await api(Request("POST", "/records/" + "ab" * 32, {}, {}, b""))
    assert missing.status == 405
    with pytest.raises(ValueError, match="twice"):
        api.add_route("GET", r"/records/([0-9a-f]{64})", hello)
