"""Put each publisher's gossip back in the order it was published, sans-I/O.

py-libp2p validates incoming gossip in concurrent tasks and trio runs a batch of ready tasks
in a random order, so two messages of one publisher can reach us swapped; relays through
different mesh peers can swap them too. The ``Network`` port promises per-sender FIFO, so
the adapter numbers what it publishes (per topic, within an *epoch* drawn at start-up) and
this buffer releases messages in that order.

A gap (a message that has not arrived) is waited for at most ``window_ms``; then the buffer
skips it, since gossip may lose messages and the core recovers them by request/response. A
message that arrives after its turn ("late") is released at once rather than dropped:
order is best effort, delivery is not sacrificed to it. A stream's first message, unless it
is sequence 0, waits one window for any earlier ones still in flight.

Time is an input (``now_ms``, any monotonic millisecond clock); streams and held messages are
bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

T = TypeVar("T")
StreamKey = tuple[str, str]  # (publisher, topic)

DEFAULT_MAX_STREAMS: Final = 1024
DEFAULT_MAX_HELD_PER_STREAM: Final = 256


@dataclass(slots=True)
class ResequencerStats:
    """What the buffer had to do besides passing messages straight through."""

    held: int = 0  # messages that waited for an earlier one
    late: int = 0  # messages released out of order because their turn had passed
    gaps_skipped: int = 0  # times the window ran out and missing messages were given up
    overflows: int = 0  # times a stream held too many messages and was flushed
    streams_evicted: int = 0  # streams forgotten to stay within max_streams


@dataclass(slots=True)
class _Stream(Generic[T]):
    epoch: bytes
    next_sequence: int
    held: dict[int, T] = field(default_factory=dict)


class Resequencer(Generic[T]):
    """Per-(publisher, topic) reorder buffer with a bounded wait for gaps."""

    def __init__(
        self,
        window_ms: int,
        *,
        max_streams: int = DEFAULT_MAX_STREAMS,
        max_held_per_stream: int = DEFAULT_MAX_HELD_PER_STREAM,
    ) -> None:
        if window_ms < 0 or max_streams < 1 or max_held_per_stream < 1:
            raise ValueError("window_ms >= 0, max_streams >= 1, max_held_per_stream >= 1")
        self.window_ms = window_ms
        self.max_streams = max_streams
        self.max_held_per_stream = max_held_per_stream
        self.stats = ResequencerStats()
        self._streams: dict[StreamKey, _Stream[T]] = {}  # least recently used first
        self._deadlines: dict[StreamKey, int] = {}  # streams waiting on a gap

    @property
    def held_count(self) -> int:
        """Messages held back, over all streams."""
        return sum(len(s.held) for s in self._streams.values())

    def push(
        self, publisher: str, topic: str, epoch: bytes, sequence: int, item: T, *, now_ms: int
    ) -> list[T]:
        """Take one message; return those now ready, in order (possibly none)."""
        key = (publisher, topic)
        released: list[T] = []
        stream = self._streams.pop(key, None)
        if stream is not None and stream.epoch != epoch:  # the publisher restarted
            released += self._flush(key, stream)
            stream = None
        if stream is None:
            released += self._make_room()
            stream = _Stream(epoch, 0)
        self._streams[key] = stream  # (re)inserted last: most recently used
        if sequence < stream.next_sequence:
            self.stats.late += 1
            released.append(item)
            return released
        stream.held[sequence] = item
        released += self._release_in_order(stream)
        if stream.held:
            self.stats.held += 1
            if len(stream.held) > self.max_held_per_stream:
                self.stats.overflows += 1
                released += self._flush(key, stream)
            elif released or key not in self._deadlines:
                self._deadlines[key] = now_ms + self.window_ms
        else:
            self._deadlines.pop(key, None)
        return released

    def expire(self, now_ms: int) -> list[T]:
        """Give up on gaps whose window has passed; the messages that releases, in order."""
        released: list[T] = []
        for key in [k for k, deadline in self._deadlines.items() if deadline <= now_ms]:
            self.stats.gaps_skipped += 1
            released += self._flush(key, self._streams[key])
        return released

    def next_deadline_ms(self) -> int | None:
        """When the earliest gap's window ends, or ``None`` when nothing is held."""
        return min(self._deadlines.values(), default=None)

    def _release_in_order(self, stream: _Stream[T]) -> list[T]:
        released: list[T] = []
        while stream.next_sequence in stream.held:
            released.append(stream.held.pop(stream.next_sequence))
            stream.next_sequence += 1
        return released

    def _flush(self, key: StreamKey, stream: _Stream[T]) -> list[T]:
        """Release everything held, skipping the gaps."""
        released = [stream.held[s] for s in sorted(stream.held)]
        if stream.held:
            stream.next_sequence = max(stream.held) + 1
            stream.held.clear()
        self._deadlines.pop(key, None)
        return released

    def _make_room(self) -> list[T]:
        if len(self._streams) < self.max_streams:
            return []
        oldest = next(iter(self._streams))
        self.stats.streams_evicted += 1
        released = self._flush(oldest, self._streams[oldest])
        del self._streams[oldest]
        return released
