"""The event feed: the events of committed heights, in order, read page by page.

A height's feed is its block events (evidence records, due work), then the events of each
successful transaction in block order; an event's ``index`` is its position in that list,
so ``(height, index)`` names one event on every node. A client reads pages after an
``EventCursor`` and continues from the page's ``next_after``:

- ``EventCursor(h)`` (text ``"h"``): everything up to and including height ``h`` was read;
- ``EventCursor(h, i)`` (text ``"h:i"``): height ``h`` was read up to and including index
  ``i`` (a page ended inside a height with more matching events than its limit).

``kind_prefix`` keeps the events whose kind starts with it (``"care."``,
``"consent.granted"``; empty: all). A page holds at most ``limit`` events and is read from
at most ``max_heights`` heights and about ``max_scan_bytes`` of stored results (at least one
height), so a filter that matches rarely cannot make one request read the whole chain: the
page then ends early, empty perhaps, with ``next_after`` past what was read. Heights whose
results were not kept (``node.chain.store.results_ops``) are passed over.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from node.chain.store import BlockResults
from node.types import Event

MAX_EVENTS_PER_PAGE: Final = 1_000
"""Largest ``limit`` of a page."""
MAX_SCAN_HEIGHTS: Final = 1_000
"""Heights one page reads at most."""
MAX_SCAN_BYTES: Final = 1024 * 1024
"""Stored results one page decodes, about (it always reads at least one height)."""
MAX_CURSOR_CHARS: Final = 41
"""Longest cursor text (two u64 in decimal and a colon)."""
KIND_PREFIX_PATTERN: Final = re.compile(r"[a-z0-9_.]{0,65}", re.ASCII)
"""What a kind prefix may hold (event kinds are ``<module>.<name>``, lower case)."""
_CURSOR_PATTERN: Final = re.compile(r"([0-9]{1,20})(?::([0-9]{1,20}))?", re.ASCII)


@dataclass(frozen=True, slots=True)
class EventCursor:
    """Where a reader of the feed is (see the module docstring)."""

    height: int
    index: int | None = None

    @classmethod
    def parse(cls, text: str) -> EventCursor:
        """The cursor ``"h"`` or ``"h:i"`` (``ValueError`` for anything else)."""
        match = _CURSOR_PATTERN.fullmatch(text) if len(text) <= MAX_CURSOR_CHARS else None
        if match is None:
            raise ValueError(f"a cursor is <height> or <height>:<index>, not {text[:50]!r}")
        index = None if match.group(2) is None else int(match.group(2))
        return cls(int(match.group(1)), index)

    def __str__(self) -> str:
        return str(self.height) if self.index is None else f"{self.height}:{self.index}"


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event of the feed: where it is, when, and which transaction emitted it (None
    for a block event)."""

    height: int
    index: int
    time_ms: int
    tx_hash: bytes | None
    event: Event


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page of the feed; ``tip_height`` is the committed height when it was read, and
    ``at_tip`` tells that every committed event after the cursor was looked at."""

    events: tuple[FeedEvent, ...]
    next_after: EventCursor
    tip_height: int

    @property
    def at_tip(self) -> bool:
        """True when the page read up to the tip (nothing more to read until a commit)."""
        return self.next_after.index is None and self.next_after.height >= self.tip_height


def check_page_request(kind_prefix: str, limit: int) -> None:
    """``ValueError`` unless ``kind_prefix`` and ``limit`` are a valid page request."""
    if not isinstance(kind_prefix, str) or KIND_PREFIX_PATTERN.fullmatch(kind_prefix) is None:
        raise ValueError(f"kind must match {KIND_PREFIX_PATTERN.pattern}")
    if type(limit) is not int or not 1 <= limit <= MAX_EVENTS_PER_PAGE:
        raise ValueError(f"limit must be in 1..{MAX_EVENTS_PER_PAGE}")


def feed_of(results: BlockResults) -> Iterator[FeedEvent]:
    """Every event of one height's results, in feed order."""
    index = 0
    for event in results.block_events:
        yield FeedEvent(results.height, index, results.time_ms, None, event)
        index += 1
    for receipt in results.receipts:
        if not receipt.ok:
            continue
        for event in receipt.events:
            yield FeedEvent(results.height, index, results.time_ms, receipt.tx_hash, event)
            index += 1


def read_page(
    read_results: Callable[[int], tuple[BlockResults, int] | None],
    tip_height: int,
    *,
    after: EventCursor,
    kind_prefix: str = "",
    limit: int = 100,
    max_heights: int = MAX_SCAN_HEIGHTS,
    max_scan_bytes: int = MAX_SCAN_BYTES,
) -> EventPage:
    """The page of events after ``after`` (see the module docstring). ``read_results(h)``
    gives the results of height ``h`` and their stored size in bytes, or None if not kept.
    ``ValueError`` for a bad ``kind_prefix`` or ``limit``."""
    check_page_request(kind_prefix, limit)
    found: list[FeedEvent] = []
    height, first_index = (
        (after.height + 1, 0) if after.index is None else (after.height, after.index + 1)
    )
    cursor = after
    scanned_heights = scanned_bytes = 0
    while height <= tip_height and scanned_heights < max_heights and scanned_bytes < max_scan_bytes:
        read = read_results(height)
        scanned_heights += 1
        if read is not None:
            results, size_bytes = read
            scanned_bytes += size_bytes
            for item in feed_of(results):
                if item.index < first_index or not item.event.name.startswith(kind_prefix):
                    continue
                if len(found) == limit:
                    return EventPage(tuple(found), _before(item), tip_height)
                found.append(item)
        cursor = EventCursor(height)
        height, first_index = height + 1, 0
    return EventPage(tuple(found), cursor, tip_height)


def _before(item: FeedEvent) -> EventCursor:
    """The cursor just before ``item`` (so that the next page starts with it)."""
    if item.index == 0:
        return EventCursor(item.height - 1)
    return EventCursor(item.height, item.index - 1)
