"""The shipped fakes: they honour the port contracts, and the conformance check has teeth."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from node.errors import InvalidTopicError, MessageTooLargeError, StorageFullError, UnknownPeerError
from node.ports import (
    Clock,
    Delete,
    InboundMessage,
    Network,
    Put,
    Rng,
    Signer,
    Storage,
    WriteOp,
)
from node.testing import (
    ConformanceError,
    ManualClock,
    MemoryEndpoint,
    MemoryNetwork,
    MemoryNetworkHarness,
    MemoryStorage,
    MemoryStorageHarness,
    SeededRng,
    TxFactory,
    check_against_model,
    check_network_conformance,
    check_storage_conformance,
    key_pair,
    key_pairs,
    make_validators,
)

# -- every fake satisfies its port ----------------------------------------------------------


def test_fakes_implement_the_ports() -> None:
    hub = MemoryNetwork()
    assert isinstance(ManualClock(), Clock)
    assert isinstance(SeededRng(1), Rng)
    assert isinstance(MemoryStorage(), Storage)
    assert isinstance(hub.join("a"), Network)
    assert isinstance(key_pair("x"), Signer)


# -- network --------------------------------------------------------------------------------


async def test_memory_network_passes_the_conformance_check() -> None:
    passed = await check_network_conformance(MemoryNetworkHarness())
    assert "per-peer FIFO" in passed and len(passed) == 8


class _Broken(MemoryEndpoint):
    """Endpoints with one deliberate contract violation each."""

    flaw = ""

    def broadcast(self, topic: str, data: bytes) -> None:
        super().broadcast(topic, data)
        if self.flaw == "echo":
            self.accept(InboundMessage(self.local_peer, topic, bytes(data)))

    def send(self, peer: str, topic: str, data: bytes) -> None:
        if self.flaw == "no size limit" and len(data) > self.max_message_bytes:
            return
        if self.flaw == "silent unknown peer" and peer not in self.peers():
            return
        super().send(peer, topic, data)

    def receive(self, max_messages: int) -> list[InboundMessage]:
        got = super().receive(max_messages)
        return got[::-1] if self.flaw == "reorders bursts" and len(got) > 2 else got


class _BrokenHarness(MemoryNetworkHarness):
    def __init__(self, flaw: str) -> None:
        super().__init__()
        self.flaw = flaw

    async def open(self, peer_count: int) -> Sequence[Network]:
        endpoints = []
        for i in range(peer_count):
            endpoint = _Broken(self.hub, f"peer-{i}")
            endpoint.flaw = self.flaw
            self.hub._endpoints[endpoint.local_peer] = endpoint
            endpoints.append(endpoint)
        return endpoints


@pytest.mark.parametrize(
    ("flaw", "check"),
    [
        ("echo", "broadcast"),
        ("reorders bursts", "FIFO"),
        ("no size limit", "oversize send"),
        ("silent unknown peer", "unknown peer"),
    ],
)
async def test_conformance_check_catches_a_broken_network(flaw: str, check: str) -> None:
    with pytest.raises(ConformanceError, match=check):
        await check_network_conformance(_BrokenHarness(flaw))


# -- storage conformance ------------------------------------------------------------------------


def test_memory_storage_passes_the_storage_conformance_check() -> None:
    passed = check_storage_conformance(MemoryStorageHarness())
    assert len(passed) == 7 and "random histories match a sorted dict" in passed


class _BrokenStorage(MemoryStorage):
    """A store with one deliberate contract violation."""

    flaw = ""

    def write_batch(self, ops: Sequence[WriteOp], *, sync: bool = False) -> None:
        if self.flaw == "partial batches":
            for op in ops:
                super().write_batch([op], sync=sync)
            return
        if self.flaw == "last op lost" and len(ops) > 1:
            ops = ops[:-1]
        super().write_batch(ops, sync=sync)

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        entries = super().iterate_prefix(prefix)
        if self.flaw == "live iteration":
            return (item for item in [*entries] if self.get(item[0]) is not None)
        if self.flaw == "reverse order":
            return iter(list(entries)[::-1])
        return entries

    def sync(self) -> None:
        if self.flaw != "sync forgets":
            super().sync()


class _BrokenStorageHarness(MemoryStorageHarness):
    def __init__(self, flaw: str) -> None:
        self.flaw = flaw

    def open(self) -> Storage:
        store = _BrokenStorage()
        store.flaw = self.flaw
        return store


@pytest.mark.parametrize(
    ("flaw", "check"),
    [
        ("partial batches", "bad input"),
        ("last op lost", "batch order"),
        ("live iteration", "prefix iteration"),
        ("reverse order", "prefix iteration"),
        ("sync forgets", "durability"),
    ],
)
def test_conformance_check_catches_a_broken_storage(flaw: str, check: str) -> None:
    with pytest.raises(ConformanceError, match=check):
        check_storage_conformance(_BrokenStorageHarness(flaw))


def test_a_history_that_diverges_from_the_model_is_reported() -> None:
    store = _BrokenStorage()
    store.flaw = "last op lost"
    with pytest.raises(ConformanceError, match="model"):
        check_against_model(store, [[Put(b"a", b"1"), Put(b"b", b"2")]], b"")


def test_hub_delivers_in_send_order_and_drops_on_cut_links() -> None:
    hub = MemoryNetwork(auto_deliver=False)
    a, b, c = hub.join("a"), hub.join("b"), hub.join("c")
    for net in (b, c):
        net.subscribe("votes")
    a.broadcast("votes", b"1")
    hub.cut("a", "c")  # messages already in flight to c are lost too
    a.send("c", "direct", b"2")
    assert hub.in_flight == 3 and b.receive(10) == []
    assert hub.deliver() == 3
    assert [m.data for m in b.receive(10)] == [b"1"]
    assert c.receive(10) == [] and hub.stats.dropped_link_down == 2
    hub.heal()
    a.send("c", "direct", b"3")
    hub.deliver()
    assert [m.data for m in c.receive(10)] == [b"3"]


def test_partition_cuts_between_groups_only() -> None:
    hub = MemoryNetwork()
    nets = {name: hub.join(name) for name in "abcd"}
    hub.partition(("a", "b"), ("c", "d"))
    nets["a"].send("b", "x", b"same side")
    nets["a"].send("c", "x", b"other side")
    assert [m.data for m in nets["b"].receive(5)] == [b"same side"]
    assert nets["c"].receive(5) == []


def test_full_inbox_and_in_flight_queue_drop_and_count() -> None:
    hub = MemoryNetwork(max_inbox_messages=2, max_in_flight_messages=3, auto_deliver=False)
    a, b = hub.join("a"), hub.join("b")
    for i in range(4):
        a.send("b", "x", bytes([i]))
    assert hub.stats.dropped_in_flight_full == 1
    hub.deliver()
    assert hub.stats.dropped_inbox_full == 1
    assert [m.data for m in b.receive(10)] == [b"\x00", b"\x01"]


def test_endpoint_errors_are_typed() -> None:
    hub = MemoryNetwork(max_message_bytes=10)
    a = hub.join("a")
    hub.join("b")
    with pytest.raises(MessageTooLargeError):
        a.send("b", "x", bytes(11))
    with pytest.raises(UnknownPeerError):
        a.send("a", "x", b"")  # not to itself
    with pytest.raises(InvalidTopicError):
        a.subscribe("Bad Topic")
    with pytest.raises(ValueError, match="already joined"):
        hub.join("a")


# -- storage --------------------------------------------------------------------------------


def test_crash_loses_exactly_the_unsynced_writes() -> None:
    store = MemoryStorage()
    store.put(b"a", b"1")
    store.write_batch([Put(b"b", b"2"), Put(b"c", b"3")], sync=True)
    store.put(b"a", b"changed")
    store.delete(b"b")
    store.write_batch([Put(b"d", b"4"), Delete(b"c")])
    store.crash()
    assert [store.get(k) for k in (b"a", b"b", b"c", b"d")] == [b"1", b"2", b"3", None]
    assert store.stats.crashes == 1 and store.used_bytes == 6


def test_iterate_prefix_is_sorted_and_a_snapshot() -> None:
    store = MemoryStorage()
    for key in (b"v/2", b"w/1", b"v/10", b"v/1", b"u"):
        store.put(key, key)
    iterator = store.iterate_prefix(b"v/")
    store.put(b"v/3", b"late")
    assert [k for k, _ in iterator] == [b"v/1", b"v/10", b"v/2"]


def test_capacity_is_enforced_atomically() -> None:
    store = MemoryStorage(capacity_bytes=10)
    store.put(b"k", b"1234")
    with pytest.raises(StorageFullError):
        store.write_batch([Put(b"a", b"1"), Put(b"b", b"123456")])
    assert store.get(b"a") is None and store.used_bytes == 5
    store.put(b"k", b"123456789")  # replacing frees the old value first
    with pytest.raises(TypeError):
        store.put("text", b"x")  # type: ignore[arg-type]


# -- clock, rng, factories ------------------------------------------------------------------


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start_ms=100)
    assert clock.now_ms() == 100 and clock.advance(50) == 150
    clock.set_ms(20)
    assert clock.now_ms() == 20
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_seeded_rng_is_deterministic_uniform_enough_and_forks() -> None:
    first, second = SeededRng(b"seed"), SeededRng(b"seed")
    assert first.random_bytes(100) == second.random_bytes(100)
    assert SeededRng(5).random_bytes(8) != SeededRng("5").random_bytes(8)
    rolls = [first.randint(1, 6) for _ in range(6000)]
    assert set(rolls) == {1, 2, 3, 4, 5, 6}
    assert all(800 < rolls.count(face) < 1200 for face in range(1, 7))
    assert first.fork("net").random_bytes(8) != first.fork("disk").random_bytes(8)
    assert SeededRng(1).randint(7, 7) == 7
    with pytest.raises(ValueError):
        first.randint(2, 1)


def test_factories_are_deterministic() -> None:
    assert key_pair("alice") == key_pair("alice") != key_pair("bob")
    assert key_pairs(3)[2] == key_pair("key-2")
    fixture = make_validators(3, voting_power=(1, 2, 3))
    assert [v.voting_power for v in fixture.validators] == [1, 2, 3]
    assert fixture.key_of(fixture.validators[1].public_key) == fixture.keys[1]
    with pytest.raises(ValueError):
        make_validators(2, voting_power=(1,))
    factory = TxFactory("bh-test")
    alice = key_pair("alice")
    assert [factory.make(alice, "kv.set").nonce for _ in range(3)] == [0, 1, 2]
    factory.set_nonce(alice.public_key, 10)
    assert factory.make(alice, "kv.set").nonce == 10
