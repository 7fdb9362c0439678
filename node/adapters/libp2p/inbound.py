"""What a ``Libp2pNetwork`` delivers: the node's per-topic validators, then one bounded queue.

Direct messages and gossip pass the same judge (``judge``: the topic's ``MessageValidator``,
its verdict counted, a rejection penalised) and wait in the same inbound queue for
``receive``, oldest first; a full queue drops and counts. ``arrivals`` counts what was ever
queued, so that the runtime waits for news (``wait_arrival``) instead of polling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import trio

from node.adapters.config import Libp2pNetworkConfig
from node.adapters.errors import TooManyTopicsError
from node.adapters.metrics import Drop, NetworkCounters
from node.adapters.peer_scoring import Offense
from node.adapters.queues import BoundedQueue
from node.ports import InboundMessage, MessageValidator, PeerId, Verdict

logger = logging.getLogger(__name__)

MAX_BROADCAST_TOPICS: Final = 1024  # topics with a validator, and topics broadcast on

Penalize = Callable[[PeerId, Offense, str], None]


class Inbound:
    """The validators and the inbound queue; ``penalize`` charges a peer for a rejection."""

    def __init__(
        self, config: Libp2pNetworkConfig, counters: NetworkCounters, penalize: Penalize
    ) -> None:
        self._counters = counters
        self._penalize = penalize
        self._validators: dict[str, MessageValidator] = {}
        self._queue: BoundedQueue[InboundMessage] = BoundedQueue(
            config.inbound_queue_messages, config.inbound_queue_bytes
        )
        self._arrivals = 0
        self._arrival_lot = trio.lowlevel.ParkingLot()

    @property
    def arrivals(self) -> int:
        """How many messages were ever queued for ``receive``."""
        return self._arrivals

    @property
    def queued(self) -> int:
        """How many messages wait for ``receive``."""
        return len(self._queue)

    def set_validator(self, topic: str, validator: MessageValidator | None) -> None:
        """Judge ``topic`` with ``validator`` (``None``: accept what is well-formed)."""
        if validator is None:
            self._validators.pop(topic, None)
        elif len(self._validators) >= MAX_BROADCAST_TOPICS and topic not in self._validators:
            raise TooManyTopicsError(f"at most {MAX_BROADCAST_TOPICS} validators")
        else:
            self._validators[topic] = validator

    def judge(self, sender: PeerId, topic: str, data: bytes) -> bool:
        """Run the node's validator for ``topic``; count and penalise; True to accept."""
        validator = self._validators.get(topic)
        if validator is None:
            return True
        try:
            verdict = validator(data)
        except Exception:
            logger.exception("the validator of %s raised", topic)
            self._counters.drop(Drop.VALIDATOR_ERROR)
            return False
        if verdict is Verdict.ACCEPT:
            return True
        if verdict is Verdict.IGNORE:
            self._counters.drop(Drop.IGNORED)
            return False
        self._counters.drop(Drop.INVALID)
        self._penalize(sender, Offense.INVALID_MESSAGE, f"rejected on {topic}")
        return False

    def deliver(self, message: InboundMessage) -> None:
        """Queue an accepted message for ``receive`` (dropped and counted when full)."""
        if not self._queue.push(message, len(message.data)):
            self._counters.drop(Drop.INBOUND_FULL)
            return
        self._counters.message_in(message.topic, len(message.data))
        self._arrivals += 1
        self._arrival_lot.unpark_all()

    def receive(self, max_messages: int) -> list[InboundMessage]:
        """Up to ``max_messages`` delivered messages, oldest first; ``[]`` when none."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        return self._queue.pop_many(max_messages)

    async def wait_arrival(self, after: int) -> None:
        """Return once ``arrivals`` exceeds ``after``."""
        while self._arrivals <= after:
            await self._arrival_lot.park()
