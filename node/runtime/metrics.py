"""Prometheus metrics of one node, on a ``CollectorRegistry`` the node owns.

Chain gauges (height, round, peers, mempool) are refreshed from a status snapshot just
before each scrape; counters and histograms move as blocks commit; network traffic is read
from the network's own counters at scrape time (``NetworkCollector``), so the two never
disagree. Names follow Prometheus conventions: ``bighealth_`` prefix, base units (seconds,
bytes), ``_total`` on counters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.chain.actions import BlockCommitted, Offence
from node.chain.status import NodeStats, NodeStatus
from node.ports import NetworkSnapshot

LATENCY_BUCKETS_S: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)
"""Histogram buckets of commit latencies and block intervals, in seconds."""
MAX_TRACKED_TXS: Final = 10_000
"""Submitted transactions whose submission time is kept to measure commit latency; the
oldest are forgotten first (they just go unmeasured)."""


class NodeMetrics:
    """Every metric of one node (see the module docstring)."""

    def __init__(self, network_snapshot: Callable[[], NetworkSnapshot] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.info = Info("bighealth_node", "What this node runs and is", registry=r)
        self.height = Gauge("bighealth_height", "Last committed height", registry=r)
        self.consensus_height = Gauge(
            "bighealth_consensus_height", "Height consensus is deciding", registry=r
        )
        self.round = Gauge("bighealth_consensus_round", "Round of the current height", registry=r)
        self.peers = Gauge("bighealth_peers", "Connected peers past the handshake", registry=r)
        self.mempool_txs = Gauge("bighealth_mempool_txs", "Transactions in the mempool", registry=r)
        self.mempool_bytes = Gauge(
            "bighealth_mempool_bytes", "Encoded bytes in the mempool", registry=r
        )
        self.catching_up = Gauge(
            "bighealth_catching_up", "1 while a peer is known to be ahead", registry=r
        )
        self.is_validator = Gauge(
            "bighealth_is_validator", "1 if this node signs at the current height", registry=r
        )
        self._define_progress(r)
        if network_snapshot is not None:
            r.register(NetworkCollector(network_snapshot))
        self._submitted: OrderedDict[bytes, float] = OrderedDict()
        self._last_commit_s: float | None = None

    def _define_progress(self, r: CollectorRegistry) -> None:
        self.commit_latency = Histogram(
            "bighealth_commit_latency_seconds",
            "From a transaction's submission to this node to the commit of its block",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.block_interval = Histogram(
            "bighealth_block_interval_seconds",
            "Time between two consecutive commits on this node",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.blocks_committed = Counter(
            "bighealth_blocks_committed", "Blocks committed since start", registry=r
        )
        self.txs_committed = Counter(
            "bighealth_txs_committed", "Transactions committed since start", registry=r
        )
        self.misbehaviours = Counter(
            "bighealth_peer_misbehaviours", "Peer messages no honest peer sends", ["offence"],
            registry=r,
        )  # fmt: skip
        self.equivocations = Counter(
            "bighealth_equivocations", "Conflicting votes seen from one validator", registry=r
        )
        self.blocks_synced = Gauge(
            "bighealth_blocks_synced", "Blocks applied from block sync since start", registry=r
        )
        self.txs_rejected = Gauge(
            "bighealth_txs_rejected", "Submitted transactions refused since start", registry=r
        )

    def observe_status(self, status: NodeStatus, stats: NodeStats, peers: int) -> None:
        """Refresh the gauges from a core snapshot (before a scrape)."""
        self.height.set(status.height)
        self.consensus_height.set(status.consensus_height)
        self.round.set(status.round)
        self.peers.set(peers)
        self.mempool_txs.set(status.mempool_txs)
        self.mempool_bytes.set(status.mempool_bytes)
        self.catching_up.set(int(status.catching_up))
        self.is_validator.set(int(status.is_validator))
        self.blocks_synced.set(stats.blocks_synced)
        self.txs_rejected.set(stats.txs_rejected)

    def tx_submitted(self, tx_hash: bytes, now_s: float) -> None:
        """Remember when ``tx_hash`` was admitted (to time its commit)."""
        self._submitted[tx_hash] = now_s
        while len(self._submitted) > MAX_TRACKED_TXS:
            self._submitted.popitem(last=False)

    def block_committed(self, committed: BlockCommitted, now_s: float) -> float | None:
        """Count a commit and time it; the interval since the previous commit, if any."""
        self.blocks_committed.inc()
        self.txs_committed.inc(committed.num_txs)
        self.height.set(committed.height)
        for receipt in committed.receipts:
            submitted = self._submitted.pop(receipt.tx_hash, None)
            if submitted is not None:
                self.commit_latency.observe(max(0.0, now_s - submitted))
        interval = None if self._last_commit_s is None else now_s - self._last_commit_s
        if interval is not None:
            self.block_interval.observe(interval)
        self._last_commit_s = now_s
        return interval

    def misbehaved(self, offence: Offence) -> None:
        self.misbehaviours.labels(offence=offence.value).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class NetworkCollector(Collector):
    """Network counters read from the network's snapshot at scrape time."""

    def __init__(self, snapshot: Callable[[], NetworkSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        yield from _traffic(snap)
        dropped = CounterMetricFamily(
            "bighealth_p2p_dropped", "Messages not delivered or not sent", labels=["reason"]
        )
        for reason, count in snap.dropped.items():
            dropped.add_metric([reason], count)
        yield dropped
        for name, help_text, value in (
            ("bighealth_p2p_bans", "Peers banned", snap.bans),
            ("bighealth_p2p_handshakes_failed", "Handshakes failed", snap.handshakes_failed),
            ("bighealth_p2p_requests_sent", "Requests sent to peers", snap.requests_sent),
            ("bighealth_p2p_requests_failed", "Requests that failed", snap.requests_failed),
            ("bighealth_p2p_requests_served", "Peer requests answered", snap.requests_served),
        ):  # fmt: skip
            yield CounterMetricFamily(name, help_text, value=value)
        yield GaugeMetricFamily(
            "bighealth_p2p_peers_connected", "Open peer connections", value=snap.peers_connected
        )
        yield GaugeMetricFamily(
            "bighealth_p2p_peers_banned", "Bans in force", value=snap.peers_banned
        )


def _traffic(snap: NetworkSnapshot) -> Iterable[Metric]:
    families = {
        "messages_in": CounterMetricFamily(
            "bighealth_p2p_messages_in", "Messages delivered, by topic", labels=["topic"]
        ),
        "messages_out": CounterMetricFamily(
            "bighealth_p2p_messages_out", "Messages sent, by topic", labels=["topic"]
        ),
        "bytes_in": CounterMetricFamily(
            "bighealth_p2p_received_bytes", "Message bytes delivered, by topic", labels=["topic"]
        ),
        "bytes_out": CounterMetricFamily(
            "bighealth_p2p_sent_bytes", "Message bytes sent, by topic", labels=["topic"]
        ),
    }
    for topic, stats in snap.topics.items():
        for field_name, family in families.items():
            family.add_metric([topic], getattr(stats, field_name))
    return families.values()
