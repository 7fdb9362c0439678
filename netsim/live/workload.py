"""The live run's load: clients sending ``kv.set`` to validators at a steady rate, in batches
(``POST /txs``), one sender thread per validator (``Senders``)."""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from crypto_core.signatures import Ed25519KeyPair
from netsim.live.figures import Submitted
from node.api.client import ApiClient, ApiError
from node.app.kv import set_payload
from node.codec import TX_CODEC, sign_transaction, tx_hash
from node.types import UnsignedTransaction

MAX_TX_PER_TICK: Final = 512
"""Transactions sent in one batch at most (below the node's 1,024 a ``POST /txs``): a slow
node cannot make a backlog grow without bound, what is not sent by then is dropped from the
schedule."""
MAX_TRACKED_TXS: Final = 100_000
"""Submitted transactions whose send time is kept for the commit latency, at most."""
KEY_BYTES: Final = 8
SEND_WAIT_S: Final = 0.005
"""A sender's pause between passes (it sends what is due, then waits this long)."""


class LiveClient(ApiClient):
    """``ApiClient`` and the batch path ``POST /txs``."""

    def submit_txs(self, raws: Sequence[bytes]) -> list[dict[str, Any]]:
        """``POST /txs`` with ``raws`` (1..``MAX_TXS_PER_BATCH``): the node's verdict on each,
        in order (``ApiError`` when it does not answer, or not with one verdict each)."""
        request = urllib.request.Request(
            self.base_url + "/txs",
            data=msgpack.packb(list(raws), use_bin_type=True),
            method="POST",
            headers={"content-type": "application/msgpack"},
        )
        results = self._call(request).get("results")
        if not isinstance(results, list) or len(results) != len(raws):
            raise ApiError(f"{self.base_url}/txs answered without one result a transaction")
        return [r if isinstance(r, dict) else {} for r in results]


@dataclass
class LiveWorkload:
    """Clients sending ``kv.set`` at ``rate`` per second in all: what is due at each
    ``tick`` goes in one ``POST /txs`` batch to one of ``validators`` (by name, in turn),
    stamped with the moment the batch was sent (``clock_s``, ``time.monotonic``)."""

    chain_id: str
    keys: list[Ed25519KeyPair]
    validators: Mapping[str, LiveClient]
    rate: float
    payload_bytes: int
    rng: random.Random
    clock_s: Callable[[], float] = time.monotonic
    nonces: dict[bytes, int] = field(default_factory=dict)
    submitted: dict[bytes, Submitted] = field(default_factory=dict)
    """Accepted transactions by hash: the validator and the moment they were sent."""
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    """Refused by the node (its verdict)."""
    refusals: dict[str, int] = field(default_factory=dict)
    """The refused ones by the node's reason (a handful of kinds)."""
    unanswered: int = 0
    """No verdict: the node did not answer in time, or not at all."""
    batches: int = 0
    _next_s: float = 0.0

    def tick(self, now_s: float) -> None:
        """Send what the rate makes due by ``now_s``, at most ``MAX_TX_PER_TICK`` (further
        behind, the backlog is dropped and the rate kept)."""
        if self.rate <= 0:
            return
        if not self._next_s:
            self._next_s = now_s
        due = 0
        while self._next_s <= now_s and due < MAX_TX_PER_TICK:
            due += 1
            self._next_s += 1.0 / self.rate
        self._next_s = max(self._next_s, now_s)
        if due:
            self._send_batch(due)

    def _send_batch(self, count: int) -> None:
        names = list(self.validators)
        name = names[self.batches % len(names)]
        target = self.validators[name]
        self.batches += 1
        senders = [self.keys[(self.sent + i) % len(self.keys)] for i in range(count)]
        self.sent += count
        try:
            raws = [self._transaction(key, self._next_nonce(key, target)) for key in senders]
            sent_s = self.clock_s()  # the batch's own time, not the loop's
            results = target.submit_txs(raws)
        except ApiError:  # unanswered: whether they were taken is unknown, ask the nonces again
            self.unanswered += count
            for key in senders:
                self.nonces.pop(key.public_key, None)
            return
        for key, raw, result in zip(senders, raws, results, strict=True):
            if result.get("accepted"):
                self.accepted += 1
                if len(self.submitted) < MAX_TRACKED_TXS:
                    self.submitted[tx_hash(raw)] = Submitted(name, sent_s)
            else:
                self.rejected += 1
                reason = str(result.get("reason"))[:40]
                self.refusals[reason] = self.refusals.get(reason, 0) + 1
                self.nonces.pop(key.public_key, None)  # ask the node again next time

    def _next_nonce(self, key: Ed25519KeyPair, target: ApiClient) -> int:
        """The key's next nonce: counted on from the last, else asked of ``target``."""
        nonce = self.nonces.get(key.public_key)
        if nonce is None:
            nonce = int(target.get(f"/accounts/{key.public_key.hex()}/nonce")["next_nonce"])
        self.nonces[key.public_key] = nonce + 1
        return nonce

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
        validators: Mapping[str, LiveClient],
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
    def refusals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for workload in self.workloads:
            for reason, count in workload.refusals.items():
                totals[reason] = totals.get(reason, 0) + count
        return totals

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
