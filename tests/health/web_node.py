"""A health node running in-process for the health API's tests: the real HTTP server on
loopback, the node's real routes, the real records extension (a custodian over a memory
vault) and the real health API, over a one-validator health chain in virtual time.

- ``LiveNode`` runs one trio loop in a background thread: ``serve_http`` on 127.0.0.1 with
  ``NodeApi`` over ``ClusterGateway`` (the chain routes), ``HealthExtension`` (records,
  custodian of ``hospital-1``) and ``HealthWeb`` (the health API), both given
  ``ClusterServices`` (the ``NodeServices`` of the chain). Tests are plain synchronous code
  talking HTTP to ``node.url``.
- The chain (``tests.health.fake_node.ClientChain``) moves only when told: ``advance(ms)``
  runs its virtual time on the trio thread, then tells the extensions of each committed
  height (``CommitNotice``). Every client's ``sleep`` (the tests' ``HealthClient`` s and the
  API's own) is ``advance``: waiting for a receipt runs the chain, nothing sleeps for real.
- ``clock_ms`` is the chain's virtual time; the API's monotonic clock is the chain's plus
  ``monotonic_offset_s`` (a test moves it to expire sessions or rate-limit windows).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import trio

from health.client import KDF_MIN, HealthClient, Keystore
from health.client.node_client import HttpClientTransport
from health.contracts.common import HealthRole
from health.contracts.identity import node_of
from health.custodian import CustodianConfig
from health.extension import AnnounceConfig, HealthExtension
from health.vault import Vault
from health.web.api import HealthWeb, WebConfig
from health.web.session import SessionLimits
from node.api.gateway import NodeSnapshot
from node.api.http import HttpLimits, serve_http
from node.api.routes import NodeApi
from node.chain.actions import TxResult
from node.chain.queries import BadQueryError
from node.chain.status import NodeStats
from node.errors import NetworkError
from node.ports import PeerId
from node.runtime.extension import CommitNotice, StateReader
from node.runtime.network import RequestHandler
from node.testing import MemoryStorage
from node.types import ResultCode
from tests.health.fake_node import CHAIN, ChainGateway, ClientChain
from tests.health.helpers import Party

T = TypeVar("T")
PEER: Final = "12D3KooWWebNode" + "z" * 38
PASS: Final = "pass phrase"
MAX_SCAN: Final = 1_000


class BoundedReader:
    """The chain's committed state with the real node's scan bound (1..1000 entries)."""

    def __init__(self, chain: ClientChain) -> None:
        self.chain = chain

    def get(self, key: bytes) -> bytes | None:
        return self.chain.get(key)

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        if not 1 <= limit <= MAX_SCAN:
            raise BadQueryError(f"limit must be in 1..{MAX_SCAN}")
        return self.chain.iterate(prefix, limit)


class ClusterServices:
    """``NodeServices`` over the chain's validator: queries, submissions, nonces and commit
    notices (published by ``publish_commits``; a subscriber that falls behind misses
    notices and gets the next with ``gap``, as from the runtime); no peers."""

    def __init__(self, chain: ClientChain) -> None:
        self.chain = chain
        self.reader = BoundedReader(chain)
        self.handlers: dict[str, RequestHandler] = {}
        self._subscribers: list[tuple[trio.MemorySendChannel[CommitNotice], list[bool]]] = []
        self._published = chain.core.height

    @property
    def chain_id(self) -> str:
        return CHAIN

    @property
    def local_peer(self) -> PeerId:
        return PEER

    def connected_peers(self) -> tuple[PeerId, ...]:
        return ()

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        self.handlers[protocol] = handler

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        raise NetworkError(f"{peer} is not connected")

    async def query(self, read: Callable[[StateReader], T]) -> T:
        await trio.lowlevel.checkpoint()
        return read(self.reader)

    async def submit_tx(self, raw: bytes) -> TxResult:
        result = self.chain.cluster.submit("v0", raw)
        assert result is not None
        return result

    async def submit_txs(self, raws: Sequence[bytes]) -> list[TxResult]:
        return [await self.submit_tx(raw) for raw in raws]

    async def next_nonce(self, sender: bytes) -> int:
        return self.chain.core.next_nonce(sender)

    def commits(self, max_buffered: int) -> trio.MemoryReceiveChannel[CommitNotice]:
        send, receive = trio.open_memory_channel[CommitNotice](max_buffered)
        self._subscribers.append((send, [False]))
        return receive

    def publish_commits(self) -> None:
        """Tell the subscribers of every height committed since the last call."""
        core = self.chain.core
        for height in range(self._published + 1, core.height + 1):
            results = core.block_results(height)
            assert results is not None
            events = [*results.block_events]
            for receipt in results.receipts:
                if receipt.code is ResultCode.OK:
                    events += receipt.events
            for send, missed in self._subscribers:
                notice = CommitNotice(height, results.time_ms, tuple(events), gap=missed[0])
                try:  # as the runtime: a full subscriber misses it, the next says gap
                    send.send_nowait(notice)
                    missed[0] = False
                except trio.WouldBlock:
                    missed[0] = True
        self._published = core.height


class LiveGateway(ChainGateway):
    """The chain routes' gateway: status from the core, blocks committed by long polls are
    announced to the extensions."""

    def __init__(self, chain: ClientChain, services: ClusterServices) -> None:
        super().__init__(chain)
        self.services = services

    async def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(
            moniker="web-node",
            version="test",
            peer_id=PEER,
            validator_key=None,
            listen_addrs=("/ip4/127.0.0.1/tcp/1",),
            peers=(),
            status=self.chain.core.status(),
            stats=NodeStats(),
            network=None,
            uptime_s=1.0,
        )

    async def wait_for_height(self, height: int) -> None:
        await super().wait_for_height(height)
        self.services.publish_commits()


class LiveNode:
    """See the module docstring. Use as a context manager."""

    def __init__(self, tmp: Path, sessions: SessionLimits | None = None) -> None:
        self.chain = ClientChain()
        self.tmp = tmp
        self.keystores = tmp / "keystores"
        self.keystores.mkdir()
        self.hospital, self.custodian_party = self.chain.institutions
        self.services = ClusterServices(self.chain)
        self.gateway = LiveGateway(self.chain, self.services)
        self.monotonic_offset_s = 0.0
        self.extension = HealthExtension(
            Vault(MemoryStorage()),
            self.custodian_party.signer,
            clock=self.chain.now_ms,
            config=CustodianConfig(audit_interval_ms=50),
            announce=AnnounceConfig(backoff_ms=20, backoff_max_ms=100, attempts=100),
        )
        self.url = ""
        self.web: HealthWeb | None = None
        self._sessions = sessions or SessionLimits()
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="live-node", daemon=True)

    # -- clocks -----------------------------------------------------------------------------

    def monotonic(self) -> float:
        """The API's monotonic clock (see the module docstring)."""
        return self.chain.monotonic() + self.monotonic_offset_s

    def sleep(self, seconds: float) -> None:
        """Run the chain ``seconds`` of virtual time (from any thread but the node's)."""
        self.advance(max(1, round(seconds * 1000)))

    def advance(self, ms: int) -> None:
        """Run the chain ``ms`` of virtual time on the node's thread."""
        assert self._token is not None
        trio.from_thread.run_sync(self._advance, ms, trio_token=self._token)

    def _advance(self, ms: int) -> None:
        self.chain.cluster.run_for(ms)
        self.services.publish_commits()

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` run on the node's thread (for reads of its objects)."""
        assert self._token is not None
        return trio.from_thread.run_sync(function, *args, trio_token=self._token)

    # -- lifetime ---------------------------------------------------------------------------

    def __enter__(self) -> LiveNode:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"the node did not start: {self._error!r}")
        if self._error is not None:
            raise self._error
        self._wait_announced()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)
        if self._error is not None and exc == (None, None, None):
            raise self._error

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        api = NodeApi(self.gateway, max_wait_ms=2_000)
        async with trio.open_nursery() as nursery:
            limits = HttpLimits(max_body_bytes=2 * 1024 * 1024, handler_timeout_s=30.0)
            # the health API needs the URL it is served at: bind first, add its routes after
            host, port = await nursery.start(serve_http, "127.0.0.1", 0, api, limits)
            self.url = f"http://{host}:{port}"
            web = HealthWeb(self._config())
            for extension in (self.extension, web):
                for route in extension.routes():
                    api.add_route(route.method, route.path_pattern, route.handler)
            await nursery.start(self.extension.run, self.services)
            await nursery.start(web.run, self.services)
            self.web = web
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def _config(self) -> WebConfig:
        return WebConfig(
            keystores=self.keystores,
            node_url=self.url,
            sessions=self._sessions,
            transport=HttpClientTransport(),
            clock_ms=self.chain.now_ms,
            monotonic=self.monotonic,
            sleep=self.sleep,
            request_timeout_s=10.0,
            receipt_timeout_s=20.0,
            poll_interval_s=0.5,
            read_budget_s=60.0,
        )

    def _wait_announced(self) -> None:
        for _ in range(200):
            self.advance(1_000)
            if self.call(node_of, self.chain, self.custodian_party.id) == PEER:
                return
            threading.Event().wait(0.02)  # the extension submits between commits
        raise RuntimeError("the node's custodian was never announced")

    # -- parties ----------------------------------------------------------------------------

    def keystore(self, name: str, role: HealthRole, party: Party | None = None) -> Keystore:
        """A keystore in the node's keystore directory (``party``'s keys if given)."""
        return Keystore.create(
            self.keystores / f"{name}.keystore",
            PASS,
            name=name,
            role=role,
            kdf=KDF_MIN,
            signing_seed=None if party is None else party.signer.seed,
            encryption_private_key=None if party is None else party.encryption_private,
        )

    def client(self, keystore: Keystore) -> HealthClient:
        """A client of the node for ``keystore`` (its sleeps run the chain)."""
        return HealthClient(
            self.url,
            keystore,
            CHAIN,
            custodians={self.custodian_party.id: self.url},
            transport=HttpClientTransport(),
            clock_ms=self.chain.now_ms,
            monotonic=self.chain.monotonic,
            sleep=self.sleep,
            poll_interval_s=0.5,
            receipt_timeout_s=20,
        )


def decode(body: bytes) -> Any:
    """A JSON body."""
    return json.loads(body) if body else None
