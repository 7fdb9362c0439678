"""The live run's load: clients sending ``kv.set`` to validators at a steady rate, one sender
thread per validator (``Senders``)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from crypto_core.signatures import Ed25519KeyPair
from netsim.live.figures import Submitted
from node.api.client import ApiClient, ApiError
from node.app.kv import set_payload
from node.codec import TX_CODEC, sign_transaction, tx_hash
from node.types import UnsignedTransaction

MAX_TX_PER_TICK: Final = 200
"""Transactions sent in one pass of the loop at most (a slow API cannot make a backlog
grow without bound: what is not sent by then is dropped from the schedule)."""
MAX_TICK_S: Final = 0.1
"""Time one pass of the loop spends sending at most, so the chain is still watched while the
sender is behind (each transaction is one HTTP request to a busy node)."""
MAX_TRACKED_TXS: Final = 100_000
"""Submitted transactions whose send time is kept for the commit latency, at most."""
KEY_BYTES: Final = 8
SEND_WAIT_S: Final = 0.005
"""A sender's pause between passes (it sends what is due, then waits this long)."""


@dataclass
class LiveWorkload:
    """Clients sending ``kv.set`` to ``validators`` (by name, in turn) at ``rate`` per
    second; ``clock_s`` stamps each transaction as it is sent (``time.monotonic``) and
    bounds the time of one ``tick`` to ``max_tick_s``."""

    chain_id: str
    keys: list[Ed25519KeyPair]
    validators: Mapping[str, ApiClient]
    rate: float
    payload_bytes: int
    rng: random.Random
    clock_s: Callable[[], float] = time.monotonic
    max_tick_s: float = MAX_TICK_S
    nonces: dict[bytes, int] = field(default_factory=dict)
    submitted: dict[bytes, Submitted] = field(default_factory=dict)
    """Accepted transactions by hash: the validator and the moment they were sent."""
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    """Refused by the node (its verdict)."""
    unanswered: int = 0
    """No verdict: the node did not answer in time, or not at all."""
    _next_s: float = 0.0

    def tick(self, now_s: float) -> None:
        """Send what the rate allows by ``now_s``."""
        if self.rate <= 0:
            return
        if not self._next_s:
            self._next_s = now_s
        ends_s = self.clock_s() + self.max_tick_s
        for _ in range(MAX_TX_PER_TICK):
            if self._next_s > now_s:
                return
            self._send_one()
            self._next_s += 1.0 / self.rate
            if self.clock_s() >= ends_s:
                break
        self._next_s = max(self._next_s, now_s)  # behind: drop the backlog, keep the rate

    def _send_one(self) -> None:
        key = self.keys[self.sent % len(self.keys)]
        names = list(self.validators)
        name = names[self.sent % len(names)]
        target = self.validators[name]
        self.sent += 1
        try:
            nonce = self.nonces.get(key.public_key)
            if nonce is None:
                known = target.get(f"/accounts/{key.public_key.hex()}/nonce")
                nonce = int(known["next_nonce"])
            raw = self._transaction(key, nonce)
            sent_s = self.clock_s()  # this transaction's own time, not the loop's
            verdict = target.submit_tx(raw)
        except ApiError:  # unanswered: whether it was taken is unknown, ask the nonce again
            self.unanswered += 1
            self.nonces.pop(key.public_key, None)
            return
        if verdict.get("accepted"):
            self.accepted += 1
            self.nonces[key.public_key] = nonce + 1
            if len(self.submitted) < MAX_TRACKED_TXS:
                self.submitted[tx_hash(raw)] = Submitted(name, sent_s)
        else:
            self.rejected += 1
            self.nonces.pop(key.public_key, None)  # ask the node again next time

    def _transaction(self, key: Ed25519KeyPair, nonce: int) -> bytes:
        payload = set_payload(self.rng.randbytes(KEY_BYTES), self.rng.randbytes(self.payload_bytes))
        unsigned = UnsignedTransaction(
            chain_id=self.chain_id, sender=key.public_key, nonce=nonce, kind="kv.set",
            payload=payload, priority=0,
        )  # fmt: skip
        return TX_CODEC.encode(sign_transaction(unsigned, key))


class Senders:
    """The load of a live run: one ``LiveWorkload`` per validator in its own thread, each
    with its share of the client keys (a key always goes to the same validator, so its
    nonces arrive in order) and of the rate. One thread per validator keeps one slow answer
    from holding up the others, and the watching apart from the sending."""

    def __init__(self, workloads: Sequence[LiveWorkload]) -> None:
        self.workloads = list(workloads)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(w,), name="live-sender", daemon=True)
            for w in self.workloads
        ]

    @classmethod
    def split(
        cls,
        chain_id: str,
        keys: Sequence[Ed25519KeyPair],
        validators: Mapping[str, ApiClient],
        *,
        rate: float,
        payload_bytes: int,
        seed: int,
    ) -> Senders:
        """Keys dealt to the validators in turn (as many senders as validators that get a
        key), the rate shared by the keys each holds."""
        names = list(validators)[: len(keys)]
        return cls(
            [
                LiveWorkload(
                    chain_id=chain_id,
                    keys=list(keys[index :: len(names)]),
                    validators={name: validators[name]},
                    rate=rate * len(keys[index :: len(names)]) / len(keys),
                    payload_bytes=payload_bytes,
                    rng=random.Random(f"{seed}/{name}"),
                )
                for index, name in enumerate(names)
            ]
        )

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop sending; wait up to ``timeout_s`` for each thread's request in flight."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout_s)

    def _run(self, workload: LiveWorkload) -> None:
        while not self._stop.is_set():
            workload.tick(time.monotonic())
            self._stop.wait(SEND_WAIT_S)

    @property
    def sent(self) -> int:
        return sum(w.sent for w in self.workloads)

    @property
    def accepted(self) -> int:
        return sum(w.accepted for w in self.workloads)

    @property
    def rejected(self) -> int:
        return sum(w.rejected for w in self.workloads)

    @property
    def unanswered(self) -> int:
        return sum(w.unanswered for w in self.workloads)

    @property
    def submitted(self) -> dict[bytes, Submitted]:
        """Every sender's accepted transactions (read once the senders stopped)."""
        merged: dict[bytes, Submitted] = {}
        for workload in self.workloads:
            merged.update(workload.submitted)
        return merged
