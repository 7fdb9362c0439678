"""Network counters, and the plain snapshot a runtime exports (Prometheus, logs, dashboard).

Counting is cheap (a few dict increments per message); ``snapshot()`` copies everything into
frozen dataclasses (``node.ports.NetworkSnapshot``), so a reader never sees the counters move
under it. Per-topic counters are kept for at most ``MAX_TOPICS_TRACKED`` topics; traffic on
further topics is added to the ``OTHER_TOPICS`` row (a name no valid topic can have).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from node.ports import NetworkSnapshot, TopicStats

MAX_TOPICS_TRACKED: Final = 128
OTHER_TOPICS: Final = "(other)"


class Drop(Enum):
    """Why a message was not delivered or not sent."""

    INBOUND_FULL = "inbound_full"  # our inbound queue was full
    OUTBOUND_FULL = "outbound_full"  # a peer's (or the broadcast) outbound queue was full
    PEER_GONE = "peer_gone"  # the peer disconnected before its queue was written
    STREAM_FAILED = "stream_failed"  # writing the direct stream failed
    NOT_SUBSCRIBED = "not_subscribed"  # a broadcast on a topic we left
    INVALID = "invalid"  # the validator rejected it, or it did not parse
    IGNORED = "ignored"  # the validator said ignore
    BANNED = "banned"  # the sender is banned
    VALIDATOR_ERROR = "validator_error"  # the node's validator raised (a bug: never penalised)


@dataclass(slots=True)
class _TopicCounter:
    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0


@dataclass(slots=True)
class NetworkCounters:
    """The live counters (mutated by the network, read through ``snapshot``)."""

    topics: dict[str, _TopicCounter] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    direct_streams_opened: int = 0
    requests_sent: int = 0
    requests_failed: int = 0
    requests_served: int = 0
    handshakes_ok: int = 0
    handshakes_failed: int = 0
    dials_ok: int = 0
    dials_failed: int = 0
    bans: int = 0
    gossip_reordered: int = 0
    gossip_backoffs_cleared: int = 0

    def message_in(self, topic: str, size_bytes: int) -> None:
        """Count one delivered message."""
        row = self._row(topic)
        row.messages_in += 1
        row.bytes_in += size_bytes

    def message_out(self, topic: str, size_bytes: int) -> None:
        """Count one message handed to the transport."""
        row = self._row(topic)
        row.messages_out += 1
        row.bytes_out += size_bytes

    def drop(self, reason: Drop, count: int = 1) -> None:
        """Count ``count`` messages lost for ``reason``."""
        self.dropped[reason.value] += count

    def snapshot(
        self, *, peers_connected: int, peers_ready: int, peers_banned: int, inbound_queued: int
    ) -> NetworkSnapshot:
        """A frozen copy, with the gauges the network reads at the same moment."""
        return NetworkSnapshot(
            peers_connected=peers_connected,
            peers_ready=peers_ready,
            peers_banned=peers_banned,
            topics={
                name: TopicStats(r.messages_in, r.bytes_in, r.messages_out, r.bytes_out)
                for name, r in sorted(self.topics.items())
            },
            dropped={reason.value: self.dropped[reason.value] for reason in Drop},
            direct_streams_opened=self.direct_streams_opened,
            requests_sent=self.requests_sent,
            requests_failed=self.requests_failed,
            requests_served=self.requests_served,
            handshakes_ok=self.handshakes_ok,
            handshakes_failed=self.handshakes_failed,
            dials_ok=self.dials_ok,
            dials_failed=self.dials_failed,
            bans=self.bans,
            gossip_reordered=self.gossip_reordered,
            inbound_queued=inbound_queued,
            gossip_backoffs_cleared=self.gossip_backoffs_cleared,
        )

    def _row(self, topic: str) -> _TopicCounter:
        row = self.topics.get(topic)
        if row is None:
            if len(self.topics) >= MAX_TOPICS_TRACKED:
                topic = OTHER_TOPICS
            row = self.topics.setdefault(topic, _TopicCounter())
        return row
