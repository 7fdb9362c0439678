"""Clients that keep one transaction in flight each: nonces, resends, refusals, receipts.

A :class:`Sender` is one signing key (a health identity, an account) and its home node. Its
work is a bounded queue of :class:`Intent` s: what to send (the kind, and a payload built
only when it is sent, so it says what the client knows then) and what to do with the
receipt. A :class:`SenderPool` sends each sender's intents one at a time, in nonce order:

- it signs the next intent with the sender's next nonce and hands it to the home node;
- the receipt comes with the decided height (:meth:`SenderPool.on_block`): a committed
  transaction used its nonce whatever its outcome (``ResultCode.consumed_nonce``), the
  intent's ``on_done`` hears the receipt, and the next intent goes;
- not committed after ``resubmit_us``: sent again, to a validator drawn at random; after
  ``max_attempts`` sends it is abandoned and the next intent reuses its nonce;
- refused by the node's application (``app_rejected``, answered at once as a real node's API
  does): sent again ``REFUSAL_RETRY_US`` later to a validator drawn at random (the home node
  may lag behind the commit the intent followed: it does not know the sender yet, or the
  grant); refused by the application ``MAX_APP_REFUSALS`` times, it is dropped and the next
  intent reuses its nonce. Other refusals are sent again as soon, without counting against
  the intent: ``nonce_gap`` and ``unknown_sender`` come from a node that has not seen the
  sender's last commit or its registration (a sender sends only once registered), a full
  mempool empties;
- a dropped transaction may still commit (an earlier send sat in some mempool): its nonce is
  taken then, its ``on_done`` still runs, and the transaction in flight that carried the
  same nonce is signed again with the next one.

What happened is counted (``committed/<kind>``, ``failed/<kind> <CODE>``, ``refused/<kind>
<reason>``, ``abandoned/<kind>``, ``client/...``) for the workload's report. Deterministic:
no clock, and the only randomness is the rng given.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

from crypto_core.signatures import Ed25519KeyPair
from netsim.workload import CommittedBlock, WorkloadContext, tx_digest
from node.testing.factories import TxFactory
from node.types import TxReceipt

MAX_QUEUE: Final = 256
"""Intents one sender may have waiting; more are dropped (counted)."""
MAX_DROPPED_TRACKED: Final = 100_000
"""Dropped transactions remembered for a late commit (the oldest are forgotten first)."""
REFUSAL_RETRY_US: Final = 2_000_000
"""How soon a transaction the application refused is tried once more, at a validator."""
MAX_APP_REFUSALS: Final = 3
"""Application refusals after which an intent is dropped."""


@dataclass(slots=True)
class Intent:
    """One transaction a sender means to send.

    ``build`` makes the payload when the intent is sent; ``on_done`` hears the receipt once
    it commits (OK or not); ``on_dropped`` hears why it was given up (refused, abandoned,
    no longer wanted, queue full); ``wanted``, asked just before sending, may skip it.
    """

    kind: str
    build: Callable[[], bytes]
    on_done: Callable[[TxReceipt], None] | None = None
    on_dropped: Callable[[str], None] | None = None
    wanted: Callable[[], bool] | None = None


@dataclass(slots=True)
class _Flight:
    intent: Intent
    tx: bytes
    digest: bytes
    nonce: int
    attempt: int = 0
    refusals: int = 0


class Sender:
    """One signing key, its home node, its next nonce and its queue of intents."""

    __slots__ = ("current", "home", "key", "next_nonce", "queue")

    def __init__(self, key: Ed25519KeyPair, home: int = 0) -> None:
        self.key = key
        self.home = home
        self.next_nonce = 0
        self.queue: deque[Intent] = deque()
        self.current: _Flight | None = None

    @property
    def id(self) -> bytes:
        """The public key the sender signs with."""
        return self.key.public_key

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing queued."""
        return self.current is None and not self.queue


class SenderPool:
    """Sends the intents of many senders (see the module docstring)."""

    def __init__(
        self,
        ctx: WorkloadContext,
        counts: Counter[str],
        *,
        resubmit_us: int,
        max_attempts: int,
    ) -> None:
        self._ctx = ctx
        self._rng: random.Random = ctx.rng
        self._factory = TxFactory(ctx.chain_id)
        self._counts = counts
        self._resubmit_us = resubmit_us
        self._max_attempts = max_attempts
        self._in_flight: dict[bytes, tuple[Sender, _Flight]] = {}
        self._dropped: dict[bytes, tuple[Sender, _Flight]] = {}

    def send(self, sender: Sender, intent: Intent) -> None:
        """Queue ``intent``; it goes at once if ``sender`` is idle."""
        if len(sender.queue) >= MAX_QUEUE:
            self._counts[f"dropped/{intent.kind} queue full"] += 1
            if intent.on_dropped is not None:
                intent.on_dropped("queue full")
            return
        sender.queue.append(intent)
        if sender.current is None:
            self._next(sender)

    def on_block(self, block: CommittedBlock) -> None:
        """Resolve the senders' transactions committed in ``block`` (call it outside node
        code: ``on_done`` callbacks send the next transactions)."""
        for receipt in block.receipts:
            entry = self._in_flight.pop(receipt.tx_hash, None)
            late = entry is None
            if entry is None:
                entry = self._dropped.pop(receipt.tx_hash, None)
            if entry is None:
                continue
            sender, flight = entry
            self._count_receipt(flight.intent.kind, receipt)
            if receipt.code.consumed_nonce:
                sender.next_nonce = max(sender.next_nonce, flight.nonce + 1)
            if late:
                self._counts["client/late commits"] += 1
                self._resign_if_stale(sender)
            else:
                sender.current = None
            if flight.intent.on_done is not None:
                flight.intent.on_done(receipt)
            if sender.current is None:
                self._next(sender)

    def _count_receipt(self, kind: str, receipt: TxReceipt) -> None:
        self._counts[f"committed/{kind}"] += 1
        if not receipt.ok:
            self._counts[f"failed/{kind} {receipt.code.name}"] += 1

    def _next(self, sender: Sender) -> None:
        """Send the next wanted intent of ``sender`` (which has nothing in flight)."""
        while sender.queue:
            intent = sender.queue.popleft()
            if intent.wanted is not None and not intent.wanted():
                self._counts[f"dropped/{intent.kind} unwanted"] += 1
                if intent.on_dropped is not None:
                    intent.on_dropped("no longer wanted")
                continue
            self._fly(sender, intent)
            return

    def _fly(self, sender: Sender, intent: Intent) -> None:
        """Sign ``intent`` with the sender's next nonce and send it home."""
        nonce = sender.next_nonce
        tx = self._factory.encoded(sender.key, intent.kind, intent.build(), nonce=nonce)
        flight = _Flight(intent, tx, tx_digest(tx), nonce)
        sender.current = flight
        self._in_flight[flight.digest] = (sender, flight)
        self._submit(sender, flight, sender.home)

    def _submit(self, sender: Sender, flight: _Flight, node: int) -> None:
        self._counts["client/sent"] += 1
        self._ctx.submit(node, flight.tx, _nothing, partial(self._refused, sender, flight))
        self._ctx.later(self._resubmit_us, partial(self._timeout, sender, flight, flight.attempt))

    def _timeout(self, sender: Sender, flight: _Flight, attempt: int) -> None:
        """Not committed in time: send again, or abandon after ``max_attempts`` sends."""
        if sender.current is not flight or flight.attempt != attempt:
            return
        if flight.attempt + 1 >= self._max_attempts:
            self._counts[f"abandoned/{flight.intent.kind}"] += 1
            self._drop(sender, flight, "abandoned")
            return
        flight.attempt += 1
        self._counts["client/resent"] += 1
        self._submit(sender, flight, self._rng.randrange(self._ctx.topology.validators))

    def _refused(self, sender: Sender, flight: _Flight, reason: str) -> None:
        parts = reason.split(": ", 2)
        tag = " ".join(parts[:2]) if parts[0] == "app_rejected" else parts[0]
        self._counts[f"refused/{flight.intent.kind} {tag}"] += 1
        if sender.current is not flight or parts[0] == "duplicate":
            return  # a duplicate is known to that node already: it is on its way
        if parts[0] == "app_rejected" and parts[1] != "unknown_sender":
            flight.refusals += 1
            if flight.refusals >= MAX_APP_REFUSALS:
                self._counts[f"dropped/{flight.intent.kind} refused"] += 1
                self._drop(sender, flight, reason)
                return
        # The next timeout of this attempt, sooner: sent again, to a validator.
        self._ctx.later(REFUSAL_RETRY_US, partial(self._timeout, sender, flight, flight.attempt))

    def _drop(self, sender: Sender, flight: _Flight, why: str) -> None:
        """Give up ``flight`` (it may still commit: remembered, bounded) and go on."""
        sender.current = None
        self._in_flight.pop(flight.digest, None)
        self._dropped[flight.digest] = (sender, flight)
        if len(self._dropped) > MAX_DROPPED_TRACKED:
            del self._dropped[next(iter(self._dropped))]
        if flight.intent.on_dropped is not None:
            flight.intent.on_dropped(why)
        if sender.current is None:
            self._next(sender)

    def _resign_if_stale(self, sender: Sender) -> None:
        """A late commit took the nonce of the transaction in flight: sign it again."""
        flight = sender.current
        if flight is None or flight.nonce >= sender.next_nonce:
            return
        self._counts["client/re-signed"] += 1
        sender.current = None
        self._in_flight.pop(flight.digest, None)
        self._fly(sender, flight.intent)


def _nothing() -> None:
    """Commits are resolved from the blocks' receipts (``SenderPool.on_block``)."""
