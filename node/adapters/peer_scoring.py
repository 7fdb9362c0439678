"""Our own peer scoring and ban list, sans-I/O (gossipsub's scoring only mutes a peer).

Each offense adds penalty points to the peer; points drain at a steady rate (one point per
``forgive_ms_per_point``), and a peer whose points reach ``ban_threshold_points`` is banned
for ``ban_duration_ms``. So an occasional bad message from a peer with a bug is forgiven,
and a stream of them gets it banned. Some offenses (another chain) ban at once.

``StreamGate`` judges a peer's inbound streams: a token bucket of new streams
(``new_stream_burst``, refilled at ``new_streams_per_s``) and a cap on those open at once
(``max_open_inbound_streams``); each stream past either costs ``STREAM_FLOOD`` points, so a
peer opening streams without end is banned within a few (py-libp2p's yamux accepts every
stream a peer opens, and its swarm starts a task for each).

Time is an input (``now_ms``, any monotonic millisecond clock); every table is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from node.ports import PeerId

DEFAULT_MAX_TRACKED_PEERS: Final = 1024
DEFAULT_MAX_BANNED_PEERS: Final = 4096


class Offense(Enum):
    """What a peer did wrong (see ``points`` for what each costs)."""

    INVALID_MESSAGE = "invalid_message"  # the node's validator rejected what the peer sent
    MALFORMED_MESSAGE = "malformed_message"  # a payload or envelope that does not parse
    MALFORMED_FRAME = "malformed_frame"  # a bad length prefix or an oversize frame
    BAD_HANDSHAKE = "bad_handshake"  # a garbled hello
    STREAM_FLOOD = "stream_flood"  # inbound streams past the rate or the open-stream cap
    WRONG_CHAIN = "wrong_chain"  # banned at once

    @property
    def points(self) -> int:
        """Penalty points of one offense (``WRONG_CHAIN`` bans without counting)."""
        return _OFFENSE_POINTS[self]


_OFFENSE_POINTS: Final = {
    Offense.INVALID_MESSAGE: 1,
    Offense.MALFORMED_MESSAGE: 3,
    Offense.MALFORMED_FRAME: 5,
    Offense.BAD_HANDSHAKE: 5,
    Offense.STREAM_FLOOD: 2,
    Offense.WRONG_CHAIN: 0,
}


@dataclass(frozen=True, slots=True)
class ScoringPolicy:
    """When a peer is banned and for how long."""

    ban_threshold_points: int = 10
    forgive_ms_per_point: int = 6_000
    ban_duration_ms: int = 10 * 60 * 1000
    max_tracked_peers: int = DEFAULT_MAX_TRACKED_PEERS
    max_banned_peers: int = DEFAULT_MAX_BANNED_PEERS
    new_stream_burst: int = 64
    """Inbound streams a peer may open at once after a quiet spell (a node opens a handful
    per connection: hello, direct, gossip, identify, request pools)."""
    new_streams_per_s: int = 8
    """The sustained rate of new inbound streams a peer may open."""
    max_open_inbound_streams: int = 64
    """Inbound streams of one peer open at once (every protocol, ours and libp2p's)."""

    def __post_init__(self) -> None:
        for name in (
            "ban_threshold_points",
            "forgive_ms_per_point",
            "ban_duration_ms",
            "max_tracked_peers",
            "max_banned_peers",
            "new_stream_burst",
            "new_streams_per_s",
            "max_open_inbound_streams",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(slots=True)
class _Penalty:
    # Points are kept in "point-milliseconds" (points x forgive_ms_per_point) so that the
    # drain is one subtraction of elapsed milliseconds, in integers.
    point_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class Ban:
    """One banned peer: until when, and why."""

    peer: PeerId
    until_ms: int
    reason: str


class Scoreboard:
    """Penalty points per peer and the bans they led to."""

    def __init__(self, policy: ScoringPolicy | None = None) -> None:
        self.policy = policy or ScoringPolicy()
        self._penalties: dict[PeerId, _Penalty] = {}
        self._bans: dict[PeerId, Ban] = {}

    def points(self, peer: PeerId, now_ms: int) -> float:
        """The peer's current penalty points (after forgiveness up to ``now_ms``)."""
        penalty = self._penalties.get(peer)
        if penalty is None:
            return 0.0
        return self._drained(penalty, now_ms) / self.policy.forgive_ms_per_point

    def penalize(self, peer: PeerId, offense: Offense, now_ms: int, detail: str = "") -> bool:
        """Charge ``offense`` to ``peer``; True when this banned it (it was not banned yet)."""
        if self.is_banned(peer, now_ms):
            return False
        reason = f"{offense.value}: {detail}" if detail else offense.value
        if offense is Offense.WRONG_CHAIN:
            self.ban(peer, now_ms, reason)
            return True
        penalty = self._penalties.get(peer)
        if penalty is None:
            self._make_room_for_penalty(now_ms)
            penalty = self._penalties[peer] = _Penalty(0, now_ms)
        penalty.point_ms = self._drained(penalty, now_ms)
        penalty.updated_ms = now_ms
        penalty.point_ms += offense.points * self.policy.forgive_ms_per_point
        threshold = self.policy.ban_threshold_points * self.policy.forgive_ms_per_point
        if penalty.point_ms < threshold:
            return False
        self.ban(peer, now_ms, reason)
        return True

    def ban(self, peer: PeerId, now_ms: int, reason: str, duration_ms: int | None = None) -> Ban:
        """Ban ``peer`` from ``now_ms`` for ``duration_ms`` (the policy's by default)."""
        duration = self.policy.ban_duration_ms if duration_ms is None else duration_ms
        if peer not in self._bans and len(self._bans) >= self.policy.max_banned_peers:
            # Full: the ban closest to its end gives way (it would lapse soonest anyway).
            soonest = min(self._bans.values(), key=lambda b: b.until_ms)
            del self._bans[soonest.peer]
        ban = Ban(peer, now_ms + duration, reason)
        self._bans[peer] = ban
        self._penalties.pop(peer, None)  # a ban starts the peer over once it lapses
        return ban

    def unban(self, peer: PeerId) -> bool:
        """Lift a ban early; True if there was one."""
        return self._bans.pop(peer, None) is not None

    def is_banned(self, peer: PeerId, now_ms: int) -> bool:
        """True while ``peer`` is banned."""
        ban = self._bans.get(peer)
        return ban is not None and now_ms < ban.until_ms

    def ban_of(self, peer: PeerId) -> Ban | None:
        """The peer's ban record (possibly lapsed but not yet expired), if any."""
        return self._bans.get(peer)

    def expire(self, now_ms: int) -> list[PeerId]:
        """Drop lapsed bans; the peers whose ban ended, sorted."""
        ended = sorted(p for p, b in self._bans.items() if now_ms >= b.until_ms)
        for peer in ended:
            del self._bans[peer]
        return ended

    def bans(self, now_ms: int) -> tuple[Ban, ...]:
        """Bans in force at ``now_ms``, by peer."""
        return tuple(sorted((b for b in self._bans.values() if now_ms < b.until_ms), key=_peer))

    def next_expiry_ms(self) -> int | None:
        """When the earliest ban lapses, or ``None`` with no bans."""
        return min((b.until_ms for b in self._bans.values()), default=None)

    def _drained(self, penalty: _Penalty, now_ms: int) -> int:
        return max(0, penalty.point_ms - max(0, now_ms - penalty.updated_ms))

    def _make_room_for_penalty(self, now_ms: int) -> None:
        if len(self._penalties) < self.policy.max_tracked_peers:
            return
        # Full: forget the peer with the fewest points (forgiven the soonest anyway).
        lightest = min(self._penalties, key=lambda p: self._drained(self._penalties[p], now_ms))
        del self._penalties[lightest]


@dataclass(slots=True)
class _Bucket:
    milli_streams: int  # new streams still allowed, in thousandths (integer refill)
    updated_ms: int


class StreamGate:
    """Whether a peer may open one more inbound stream (see the module docstring)."""

    def __init__(self, policy: ScoringPolicy | None = None) -> None:
        self.policy = policy or ScoringPolicy()
        self._buckets: dict[PeerId, _Bucket] = {}

    def admit(self, peer: PeerId, now_ms: int, open_streams: int) -> str | None:
        """Take a new stream of ``peer``, which now has ``open_streams`` inbound streams
        open (this one included): ``None`` to accept it, else why it is refused (a
        refused stream uses none of the peer's allowance)."""
        cap = self.policy.max_open_inbound_streams
        if open_streams > cap:
            return f"{open_streams} inbound streams open (at most {cap})"
        full = self.policy.new_stream_burst * 1000
        bucket = self._buckets.get(peer)
        if bucket is None:
            self._make_room(now_ms)
            bucket = self._buckets[peer] = _Bucket(full, now_ms)
        elapsed_ms = max(0, now_ms - bucket.updated_ms)
        bucket.milli_streams = min(
            full, bucket.milli_streams + elapsed_ms * self.policy.new_streams_per_s
        )
        bucket.updated_ms = now_ms
        if bucket.milli_streams < 1000:
            return (
                f"more than {self.policy.new_stream_burst} new streams, "
                f"{self.policy.new_streams_per_s}/s"
            )
        bucket.milli_streams -= 1000
        return None

    def tracked(self) -> int:
        """How many peers' buckets are kept."""
        return len(self._buckets)

    def _make_room(self, now_ms: int) -> None:
        if len(self._buckets) < self.policy.max_tracked_peers:
            return
        # Full: forget the peer that opened streams least recently (its bucket is the
        # fullest, so forgetting it gives it nothing).
        stalest = min(self._buckets, key=lambda p: self._buckets[p].updated_ms)
        del self._buckets[stalest]


def _peer(ban: Ban) -> PeerId:
    return ban.peer
