"""The transaction registry and the generic workload's clients, in virtual time."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import pytest

from netsim.engine import EventLoop
from netsim.errors import ConfigError
from netsim.regions import LatencyTable
from netsim.topology import Topology, build_topology
from netsim.workload import GenericWorkload, TxRegistry, tx_digest
from node.codec import TX_CODEC
from node.types import Transaction


@dataclass
class FakeContext:
    """A workload context whose nodes commit what they get after ``commit_after_us``
    (never, for nodes in ``down``)."""

    commit_after_us: int
    down: frozenset[int] = frozenset()
    loop: EventLoop = field(default_factory=EventLoop)
    topology: Topology = field(
        default_factory=lambda: build_topology(4, 8, LatencyTable(("paris",)), random.Random(0))
    )
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    chain_id: str = "netsim"
    sent: list[tuple[int, int, Transaction]] = field(default_factory=list)
    registry: TxRegistry = field(default_factory=lambda: TxRegistry(random.Random(0)))

    def now_us(self) -> int:
        return self.loop.now_us

    def later(self, delay_us: int, callback: Callable[[], None]) -> None:
        self.loop.after(delay_us, lambda _: callback())

    def submit(
        self,
        node: int,
        tx: bytes,
        on_commit: Callable[[], None],
        on_refused: Callable[[str], None] | None = None,
    ) -> bool:
        digest = tx_digest(tx)
        if digest not in self.registry:
            self.registry.created(digest, self.loop.now_us, on_commit)
        self.sent.append((self.loop.now_us, node, TX_CODEC.decode(tx)))
        if node in self.down:
            return False
        self.later(self.commit_after_us, lambda: self.registry.commit(digest, self.loop.now_us))
        return True


def test_the_registry_turns_commits_into_latencies_once() -> None:
    registry = TxRegistry(random.Random(0))
    done: list[str] = []
    registry.created(b"a" * 32, 1_000, lambda: done.append("a"))
    assert b"a" * 32 in registry and b"b" * 32 not in registry
    registry.commit(b"a" * 32, 5_000)
    registry.commit(b"a" * 32, 9_000)  # committed again (another node): counted once
    registry.commit(b"b" * 32, 9_000)  # unknown: ignored
    assert done == ["a"] and registry.committed == 1 and registry.pending == 0
    assert registry.latency_us.values == [4_000]


def test_clients_offer_the_configured_rate_when_commits_keep_up() -> None:
    ctx = FakeContext(commit_after_us=50_000)
    workload = GenericWorkload(clients=10, rate_tps=100.0)
    workload.start(ctx)
    ctx.loop.run(20_000_000)
    rate = len(ctx.sent) / 20
    assert 85 <= rate <= 115
    assert ctx.registry.committed == len(ctx.sent) - ctx.registry.pending


def test_each_client_has_one_transaction_in_flight_with_consecutive_nonces() -> None:
    ctx = FakeContext(commit_after_us=2_000_000)  # slower than the clients' intervals
    workload = GenericWorkload(clients=3, rate_tps=100.0)
    workload.start(ctx)
    ctx.loop.run(10_000_000)
    by_sender: dict[bytes, list[tuple[int, int]]] = {}
    for time_us, _, tx in ctx.sent:
        by_sender.setdefault(tx.sender, []).append((time_us, tx.nonce))
    assert len(by_sender) == 3
    for sends in by_sender.values():
        assert [nonce for _, nonce in sends] == list(range(len(sends)))
        gaps = [b - a for (a, _), (b, _) in pairwise(sends)]
        assert all(gap >= 2_000_000 for gap in gaps)  # the next waits for the commit
    assert len(ctx.sent) <= 3 * 5 + 3  # latency, not the offered rate, is the limit


def test_a_transaction_lost_with_its_node_is_sent_again_to_a_validator() -> None:
    ctx = FakeContext(commit_after_us=10_000, down=frozenset(range(8)) - {0})
    workload = GenericWorkload(clients=4, rate_tps=2.0, resubmit_ms=1_000)
    workload.start(ctx)
    ctx.loop.run(30_000_000)
    assert workload.resubmitted > 0 and ctx.registry.committed > 0
    attempts: dict[bytes, list[int]] = {}
    for _, node, tx in ctx.sent:
        attempts.setdefault(tx_digest(TX_CODEC.encode(tx)), []).append(node)
    retried = [nodes for nodes in attempts.values() if len(nodes) > 1]
    assert retried
    assert all(node < 4 for nodes in retried for node in nodes[1:])  # retries go to validators


@pytest.mark.parametrize(
    "options",
    [{"clients": 0}, {"rate_tps": -1.0}, {"payload_bytes": 0}, {"resubmit_ms": 0}],
)
def test_bad_workload_options_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        GenericWorkload(**options)  # type: ignore[arg-type]


def test_genesis_declares_one_account_per_client() -> None:
    accounts = GenericWorkload(clients=5).genesis_accounts()
    assert len({account.public_key for account in accounts}) == 5
