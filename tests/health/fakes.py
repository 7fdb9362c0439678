"""In-memory fakes of what a running node offers the health extension (``NodeServices``),
driven by a real health chain (``tests.health.helpers.HealthChain``, every contract).

- ``FakeState``: a dict of committed state with ``get`` and ``iterate(prefix, limit)``,
  refreshed from the chain after each block;
- ``FakeNetwork``: request routing between the fake nodes' registered handlers, with nodes
  that can be taken down;
- ``FakeServices``: one node's ``NodeServices`` — queries run on ``FakeState``, submitted
  transactions go to a shared list (the next block takes them), ``commits()`` channels the
  test pushes notices into (a subscriber that falls behind gets the next notice with
  ``gap=True``);
- ``Cluster``: the chain, the state, the network, two custodian institutions (``hospital``
  with node ``a``, ``other_hospital`` with node ``b``, both announced on chain), a patient,
  a doctor of the first hospital, an outsider of the second, a clock following block time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import trio

from crypto_core.signatures import sha256
from health.contracts.identity import announce_node_payload
from health.contracts.records import commit_payload
from health.envelopes import commitment_of, commitment_statement, seal, wrap_key
from health.records_wire import FetchRequest, sign_fetch_request
from health.vault import PendingBlob
from node.app import BlockResult
from node.chain.actions import TxResult
from node.codec import TX_CODEC, tx_hash
from node.errors import NetworkError, RejectReason
from node.ports import PeerId
from node.runtime.extension import CommitNotice, StateReader
from node.runtime.network import RequestHandler
from tests.health.helpers import CHAIN, Party
from tests.health.test_consent import GLUCOSE, World, make_world

T = TypeVar("T")

PEERS = {
    "a": "12D3KooWNodeA" + "z" * 40,
    "b": "12D3KooWNodeB" + "z" * 40,
    "c": "12D3KooWNodeC" + "z" * 40,
}
"""Peer ids (base58 text, as ``identity.announce_node`` wants) of the fake nodes."""


class FakeClock:
    """Milliseconds: the chain's last block time plus ``offset_ms`` (set by the test)."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.offset_ms = 0

    def __call__(self) -> int:
        return self.now_ms + self.offset_ms


class CountingRng:
    """Deterministic bytes: SHA-256 of a counter."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, size: int) -> bytes:
        self.count += 1
        return sha256(b"rng-%d" % self.count)[:size]


class FakeState:
    """Committed state as a dict, with the reads ``NodeServices.query`` offers."""

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.entries.get(key)

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        found = sorted((k, v) for k, v in self.entries.items() if k.startswith(prefix))
        return found[:limit]


@dataclass
class FakeNetwork:
    """Routes requests to the handler a node registered; a node in ``down`` neither
    answers nor sends."""

    handlers: dict[PeerId, dict[str, RequestHandler]] = field(default_factory=dict)
    down: set[PeerId] = field(default_factory=set)
    log: list[tuple[PeerId, PeerId, str]] = field(default_factory=list)

    async def request(self, sender: PeerId, peer: PeerId, protocol: str, data: bytes) -> bytes:
        self.log.append((sender, peer, protocol))
        if sender in self.down or peer in self.down:
            raise NetworkError(f"{peer} is unreachable")
        handler = self.handlers.get(peer, {}).get(protocol)
        if handler is None:
            raise NetworkError(f"{peer} does not speak {protocol}")
        return await handler(sender, data)


@dataclass
class _Subscriber:
    send: trio.MemorySendChannel[CommitNotice]
    gap: bool = False


class FakeServices:
    """One node's ``NodeServices`` over the cluster's state, network and mempool."""

    def __init__(
        self,
        *,
        local_peer: PeerId,
        state: FakeState,
        network: FakeNetwork,
        mempool: list[bytes],
        nonce_of: Callable[[bytes], int],
    ) -> None:
        self._peer = local_peer
        self.state = state
        self.network = network
        self.mempool = mempool
        self.nonce_of = nonce_of
        self.submitted: list[bytes] = []
        self.reject: str | None = None
        self.queries = 0
        self._subscribers: list[_Subscriber] = []

    @property
    def chain_id(self) -> str:
        return CHAIN

    @property
    def local_peer(self) -> PeerId:
        return self._peer

    def connected_peers(self) -> tuple[PeerId, ...]:
        others = set(self.network.handlers) - self.network.down - {self._peer}
        return tuple(sorted(others))

    def register_handler(self, protocol: str, handler: RequestHandler) -> None:
        self.network.handlers.setdefault(self._peer, {})[protocol] = handler

    async def request(self, peer: PeerId, protocol: str, data: bytes, timeout_ms: int) -> bytes:
        assert timeout_ms >= 1
        return await self.network.request(self._peer, peer, protocol, data)

    async def query(self, read: Callable[[StateReader], T]) -> T:
        self.queries += 1
        await trio.lowlevel.checkpoint()
        return read(self.state)

    async def submit_tx(self, raw: bytes) -> TxResult:
        TX_CODEC.decode(raw)
        if self.reject is not None:
            return TxResult(tx_hash(raw), False, RejectReason.APP_REJECTED, self.reject)
        self.submitted.append(raw)
        self.mempool.append(raw)
        return TxResult(tx_hash(raw), True, None, "")

    async def next_nonce(self, sender: bytes) -> int:
        return self.nonce_of(sender)

    def commits(self, max_buffered: int) -> trio.MemoryReceiveChannel[CommitNotice]:
        send, receive = trio.open_memory_channel[CommitNotice](max_buffered)
        self._subscribers.append(_Subscriber(send))
        return receive

    def publish(self, notice: CommitNotice) -> None:
        """Deliver ``notice`` to every subscriber (one that is full misses it and gets the
        next one marked ``gap=True``)."""
        for subscriber in self._subscribers:
            delivered = replace(notice, gap=True) if subscriber.gap else notice
            try:
                subscriber.send.send_nowait(delivered)
                subscriber.gap = False
            except trio.WouldBlock:
                subscriber.gap = True
            except trio.BrokenResourceError:
                pass


class Cluster:
    """A health chain, its committed state, fake nodes and the parties of the tests."""

    def __init__(self, params: dict[str, int] | None = None) -> None:
        self.world: World = make_world(params)
        self.chain = self.world.chain
        self.state = FakeState()
        self.network = FakeNetwork()
        self.mempool: list[bytes] = []
        self.clock = FakeClock(self.chain.time_ms)
        self.rng = CountingRng()
        self.nodes: dict[str, FakeServices] = {}
        self.chain.ok(self.hospital, "identity.announce_node", announce_node_payload(PEERS["a"]))
        self.chain.ok(
            self.other_hospital, "identity.announce_node", announce_node_payload(PEERS["b"])
        )
        self._refresh()

    # parties
    @property
    def hospital(self) -> Party:
        return self.world.hospital

    @property
    def other_hospital(self) -> Party:
        return self.world.other_hospital

    @property
    def patient(self) -> Party:
        return self.world.patient

    @property
    def doctor(self) -> Party:
        return self.world.doctor

    @property
    def outsider(self) -> Party:
        return self.world.outsider

    def node(self, name: str) -> FakeServices:
        """The fake node ``name`` (``a``, ``b``, ``c``), made on first use."""
        if name not in self.nodes:
            self.nodes[name] = FakeServices(
                local_peer=PEERS[name],
                state=self.state,
                network=self.network,
                mempool=self.mempool,
                nonce_of=self.nonce_of,
            )
        return self.nodes[name]

    def nonce_of(self, sender: bytes) -> int:
        """The committed next nonce of ``sender`` plus its transactions waiting in the
        mempool."""
        waiting = sum(1 for raw in self.mempool if TX_CODEC.decode(raw).sender == sender)
        return self.chain.app.next_nonce(sender) + waiting

    def commit(self, *txs: bytes, time_ms: int | None = None) -> tuple[BlockResult, CommitNotice]:
        """One block with the mempool's transactions, then ``txs``; every node is told."""
        block_txs = [*self.mempool, *txs]
        self.mempool.clear()
        result = self.chain.run(*block_txs, time_ms=time_ms)
        for raw in block_txs:
            sender = TX_CODEC.decode(raw).sender
            self.chain.factory.set_nonce(sender, self.chain.app.next_nonce(sender))
        self._refresh()
        events = [*result.block_events]
        for receipt in result.receipts:
            if receipt.ok:
                events += receipt.events
        notice = CommitNotice(result.height, self.chain.time_ms, tuple(events))
        for services in self.nodes.values():
            services.publish(notice)
        return result, notice

    def ok(self, sender: Party, kind: str, payload: bytes) -> CommitNotice:
        """One transaction of ``sender`` that must succeed, in its own block."""
        result, notice = self.commit(self.chain.tx(sender, kind, payload))
        receipt = result.receipts[-1]
        assert receipt.ok, f"{kind}: {receipt.code.name} {receipt.log}"
        return notice

    def _refresh(self) -> None:
        self.state.entries = dict(self.chain.app.state_entries())
        self.clock.now_ms = self.chain.time_ms

    # records
    def upload(
        self,
        name: str,
        *,
        author: Party | None = None,
        readers: Sequence[Party] = (),
        content: bytes | None = None,
        resource_type: str = "Observation",
        code: str = GLUCOSE,
    ) -> Upload:
        """A sealed record of the patient (``author``: the patient by default) with its
        data key wrapped for the patient and ``readers``."""
        author = author or self.patient
        record_id = sha256(f"record/{name}".encode())
        data_key = sha256(f"data-key/{name}".encode())
        content = content if content is not None else f'{{"record": "{name}"}}'.encode()
        ciphertext = seal(
            content,
            record_id=record_id,
            owner=self.patient.id,
            key_epoch=0,
            data_key=data_key,
            nonce=sha256(f"nonce/{name}".encode())[:24],
        )
        data_time_ms = self.chain.time_ms - 1_000
        statement = commitment_statement(
            chain_id=CHAIN,
            record_id=record_id,
            owner=self.patient.id,
            resource_type=resource_type,
            code=code,
            commitment=commitment_of(ciphertext),
            key_epoch=0,
            data_time_ms=data_time_ms,
        )
        keys = {
            party.id: wrap_key(data_key, record_id, bytes(party.encryption.public_key))
            for party in (self.patient, *readers)
        }
        blob = PendingBlob(
            record_id=record_id,
            owner=self.patient.id,
            author=author.id,
            resource_type=resource_type,
            code=code,
            key_epoch=0,
            data_time_ms=data_time_ms,
            ciphertext=ciphertext,
            wrapped_keys=keys,
            author_signature=author.signer.sign(statement),
        )
        return Upload(blob, data_key, content, author)

    def commit_tx(self, upload: Upload, custodians: Sequence[bytes] | None = None) -> bytes:
        """The author's ``records.commit`` of ``upload`` (custodians: both hospitals)."""
        blob = upload.blob
        payload = commit_payload(
            blob.record_id,
            blob.owner,
            resource_type=blob.resource_type,
            code=blob.code,
            ciphertext_sha256=sha256(blob.ciphertext),
            size_bytes=len(blob.ciphertext),
            custodians=tuple(custodians or (self.hospital.id, self.other_hospital.id)),
            key_epoch=blob.key_epoch,
            data_time_ms=blob.data_time_ms,
        )
        return self.chain.tx(upload.author, "records.commit", payload)

    def fetch_request(
        self,
        reader: Party,
        record: bytes,
        custodian: Party | bytes,
        *,
        time_ms: int | None = None,
        nonce: bytes | None = None,
        signer: Any = None,
    ) -> FetchRequest:
        """A fetch request of ``reader`` for ``record`` from ``custodian``, signed by the
        reader's key (or ``signer``), stamped with the cluster's clock."""
        custodian_id = custodian if isinstance(custodian, bytes) else custodian.id
        return sign_fetch_request(
            signer or reader.signer,
            chain_id=CHAIN,
            requester=reader.id,
            record=record,
            custodian=custodian_id,
            nonce=nonce or self.rng(16),
            time_ms=self.clock() if time_ms is None else time_ms,
        )


@dataclass(frozen=True)
class Upload:
    """A sealed record ready for upload, and what a test needs to check it."""

    blob: PendingBlob
    data_key: bytes
    content: bytes
    author: Party

    @property
    def record_id(self) -> bytes:
        return self.blob.record_id
