"""The load side of ``bighealth bench network``: processes that send pre-signed transactions.

A load process (``run_worker``, started with ``multiprocessing``'s spawn context) is given
its own accounts (seeds), signs every transaction it may send before the clock starts
(``kv.set`` with a value padded so the encoded transaction is ``tx_size_bytes``, nonces
continuing from ``first_nonces``), reports ready, and on "go" runs one thread per
connection: ``connections_per_node`` keep-alive HTTP connections to every node, each with
its share of the accounts (an account always goes to the same node, so its nonces arrive in
order). Every request is one batch holding at most one transaction per account, so a refused
transaction never leaves a later nonce of the same batch in a gap.

- closed loop (``rate_tx_per_s`` is ``None``): each connection sends its next batch as soon as
  the previous one is answered (one batch in flight per connection);
- open loop: each connection sends the transactions that fell due every ``TICK_S`` (its
  share of the rate), at most ``batch_max`` per request; what it could not send in time is
  sent late, never dropped, and the achieved rate is what is reported as offered.

A transaction refused for a passing reason (``mempool_full``, ``account_limit``) stays at its
account's head and is sent again; other refusals end the account's run (its later nonces
could only be refused). The submit time of each accepted transaction (``time.monotonic``,
which on Linux is CLOCK_MONOTONIC, the same clock in every process of the host) goes to the
worker's result file as 32-byte hash + 8-byte float records.

Submission: ``POST /txs`` (a msgpack array of raw transactions, the batch path) when the node
serves it, else ``POST /tx`` one transaction per request, decided once per connection.
"""

from __future__ import annotations

import http.client
import json
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack

from crypto_core.signatures import Ed25519KeyPair
from node.app.kv import MAX_KV_VALUE_BYTES, set_payload
from node.codec import TX_CODEC, sign_transaction, tx_hash
from node.errors import BigHealthError
from node.types import UnsignedTransaction

TICK_S: Final = 0.025
"""How often an open-loop connection sends what fell due."""
WINDOW_PAUSE_S: Final = 0.01
"""How long a closed-loop connection waits when the window is full."""
MAX_BATCH_TXS: Final = 1_024
MAX_BATCH_BYTES: Final = 240 * 1024
"""Request bodies stay below the API's default body limit (256 KiB)."""
HTTP_TIMEOUT_S: Final = 15.0
RECORD: Final = struct.Struct("!32sd")
"""One accepted transaction in a result file: its hash and submit time (monotonic s)."""
RETRY_REASONS: Final = frozenset({"mempool_full", "account_limit"})
RETRY_PAUSE_S: Final = 0.05
"""A connection whose request met a full mempool waits this long before the next one (the
node asks for 1 s; a shorter pause keeps the pool topped up without spinning on it)."""
KEY_PREFIX: Final = b"bench/"


@dataclass(frozen=True)
class Window:
    """The closed loop's bound, shared by the load processes (``multiprocessing`` values):
    ``accepted`` counts transactions sent and not refused (a request's transactions count
    from the moment it is sent), ``committed`` what the parent's block watcher saw
    committed; at most ``limit_txs`` in between (``--window``). Counting a request before
    its answer keeps the bound exact: counted at the answer, every connection's request in
    flight came on top of the limit. Keep it well below a node's mempool (20,000): without
    a bound the load filled each mempool with its own clients' transactions, peers refused
    each other's gossip, every proposal's transactions had to be fetched, and the chain
    stalled."""

    accepted: Any
    committed: Any
    limit_txs: int

    def reserve(self, most: int) -> int:
        """Count up to ``most`` transactions as in flight; how many fit (0: full)."""
        with self.accepted.get_lock():
            room = self.limit_txs - (int(self.accepted.value) - int(self.committed.value))
            granted = max(0, min(most, room))
            self.accepted.value += granted
        return granted

    def release(self, count: int) -> None:
        """Uncount ``count`` reserved transactions that were refused or not sent."""
        if count:
            with self.accepted.get_lock():
                self.accepted.value -= count


class LoadError(BigHealthError):
    """The load could not be prepared or sent (a bad size, a node that does not answer)."""


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What one load process does."""

    index: int
    chain_id: str
    api_addresses: tuple[str, ...]
    """``host:port`` of each node's API."""
    seeds: tuple[bytes, ...]
    first_nonces: tuple[int, ...]
    txs_per_account: int
    tx_size_bytes: int
    connections_per_node: int
    rate_tx_per_s: float | None
    """This process's share of the offered rate; ``None``: closed loop."""
    duration_s: float
    batch_max: int
    result_path: Path
    workload: str = "kv"
    patients: tuple[bytes, ...] = ()
    """Health workload: each account's (a device's) patient; kv: empty."""
    custodians: tuple[bytes, ...] = ()
    """Health workload: each account's patient's custodian."""


@dataclass(slots=True)
class WorkerReport:
    """What one load process did (sent back to the parent)."""

    index: int
    offered: int = 0
    """Distinct transactions sent (a transaction sent again counts once)."""
    sent: int = 0
    """Transactions in requests (each sending counts)."""
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    request_errors: int = 0
    batch_path: bool = True
    exhausted_accounts: int = 0
    next_nonces: list[int] = field(default_factory=list)
    sign_s: float = 0.0
    error: str = ""


def kv_value_bytes(chain_id: str, tx_size_bytes: int) -> int:
    """The ``kv.set`` value length that makes an encoded transaction ``tx_size_bytes`` long
    (at most: a few bytes less where msgpack's length prefixes change)."""
    key = Ed25519KeyPair.from_seed(bytes(32))
    for value_bytes in range(min(tx_size_bytes, MAX_KV_VALUE_BYTES), -1, -1):
        if len(_encoded(chain_id, key, 1_000, value_bytes)) <= tx_size_bytes:
            return value_bytes
    smallest = len(_encoded(chain_id, key, 1_000, 0))
    raise LoadError(f"--tx-size must be at least {smallest} bytes (an empty kv.set)")


def _encoded(chain_id: str, key: Ed25519KeyPair, nonce: int, value_bytes: int) -> bytes:
    payload = set_payload(KEY_PREFIX + nonce.to_bytes(4, "big"), bytes(value_bytes))
    unsigned = UnsignedTransaction(chain_id, key.public_key, nonce, "kv.set", payload, 0)
    return TX_CODEC.encode(sign_transaction(unsigned, key))


def presign(plan: WorkerPlan) -> list[deque[tuple[bytes, bytes]]]:
    """Every account's transactions, (raw, hash) in nonce order."""
    if plan.workload == "health":
        return _presign_readings(plan)
    value_bytes = kv_value_bytes(plan.chain_id, plan.tx_size_bytes)
    queues = []
    for seed, first in zip(plan.seeds, plan.first_nonces, strict=True):
        key = Ed25519KeyPair.from_seed(seed)
        queue: deque[tuple[bytes, bytes]] = deque()
        for nonce in range(first, first + plan.txs_per_account):
            raw = _encoded(plan.chain_id, key, nonce, value_bytes)
            queue.append((raw, tx_hash(raw)))
        queues.append(queue)
    return queues


def _presign_readings(plan: WorkerPlan) -> list[deque[tuple[bytes, bytes]]]:
    """The health workload's transactions: each device's glucose readings."""
    from node.cli.bench.health_load import KIND, reading_payload  # noqa: PLC0415

    queues = []
    accounts = zip(plan.seeds, plan.first_nonces, plan.patients, plan.custodians, strict=True)
    for seed, first, patient, custodian in accounts:
        key = Ed25519KeyPair.from_seed(seed)
        queue: deque[tuple[bytes, bytes]] = deque()
        for nonce in range(first, first + plan.txs_per_account):
            payload = reading_payload(key.public_key, nonce, patient, custodian)
            unsigned = UnsignedTransaction(plan.chain_id, key.public_key, nonce, KIND, payload, 0)
            raw = TX_CODEC.encode(sign_transaction(unsigned, key))
            queue.append((raw, tx_hash(raw)))
        queues.append(queue)
    return queues


class NodeConnection:
    """One keep-alive HTTP connection to a node's API that submits batches."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.connection = http.client.HTTPConnection(
            host.strip("[]"), int(port), timeout=HTTP_TIMEOUT_S
        )
        self.batch_path: bool | None = None

    def submit(self, raws: Sequence[bytes]) -> list[str | None]:
        """Send ``raws``; per transaction ``None`` when accepted, else the refusal's reason."""
        if self.batch_path is not False:
            answer = self._post("/txs", msgpack.packb(list(raws)), "application/msgpack")
            if answer is None:  # no batch path on this node: one transaction per request
                self.batch_path = False
            else:
                self.batch_path = True
                results = answer.get("results", [])
                if len(results) != len(raws):
                    raise LoadError(f"POST /txs answered {len(results)} results for {len(raws)}")
                return [None if r.get("accepted") else str(r.get("reason")) for r in results]
        verdicts: list[str | None] = []
        for raw in raws:
            single = self._post("/tx", raw, "application/octet-stream")
            if single is None:
                raise LoadError("POST /tx is not served")
            verdicts.append(None if single.get("accepted") else str(single.get("reason")))
        return verdicts

    def _post(self, path: str, body: bytes, content_type: str) -> dict[str, Any] | None:
        """The JSON answer (``None`` for a 404: no such route); one retry on a closed
        connection (the server ends a connection after a number of requests)."""
        for attempt in range(2):
            try:
                self.connection.request("POST", path, body, {"content-type": content_type})
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt:
                    raise
        if response.status == 404:
            return None
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise LoadError(f"POST {path} answered {response.status}: {data[:200]!r}") from exc
        if not isinstance(document, dict):
            raise LoadError(f"POST {path} answered {response.status}: {data[:200]!r}")
        return document

    def close(self) -> None:
        self.connection.close()


@dataclass(slots=True)
class _Lane:
    """One connection's accounts and counters (owned by one thread)."""

    address: str
    queues: list[deque[tuple[bytes, bytes]]]
    rate_tx_per_s: float | None
    batch_max: int
    offered: int = 0
    sent: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    request_errors: int = 0
    retrying: set[int] = field(default_factory=set)
    records: list[tuple[bytes, float]] = field(default_factory=list)
    dead: set[int] = field(default_factory=set)
    cursor: int = 0
    batch_path: bool = True
    window: Window | None = None

    def next_batch(self, most: int) -> list[int]:
        """Indexes of up to ``most`` accounts with a transaction to send, round robin."""
        chosen: list[int] = []
        size = 0
        count = len(self.queues)
        for step in range(count):
            index = (self.cursor + step) % count
            queue = self.queues[index]
            if index in self.dead or not queue:
                continue
            size += len(queue[0][0])
            if len(chosen) >= most or size > MAX_BATCH_BYTES:
                break
            chosen.append(index)
        if chosen:
            self.cursor = (chosen[-1] + 1) % count
        return chosen

    def run(self, start_s: float, end_s: float) -> None:
        connection = NodeConnection(self.address)
        try:
            while (now := time.monotonic()) < end_s:
                most = self.batch_max
                if self.rate_tx_per_s is not None:
                    due = int(self.rate_tx_per_s * (now - start_s)) - self.offered
                    if due <= 0:
                        time.sleep(min(TICK_S, end_s - now))
                        continue
                    most = min(most, due)
                elif self.window is not None:
                    most = self.window.reserve(most)
                    if most == 0:
                        time.sleep(WINDOW_PAUSE_S)
                        continue
                batch = self.next_batch(most)
                if self.window is not None:
                    self.window.release(most - len(batch))
                if not batch:
                    break  # every account is spent
                self._send(connection, batch)
        finally:
            self.batch_path = connection.batch_path is not False
            connection.close()

    def _send(self, connection: NodeConnection, batch: list[int]) -> None:
        raws = [self.queues[i][0][0] for i in batch]
        sent_at = time.monotonic()
        self.requests += 1
        try:
            verdicts = connection.submit(raws)
        except (OSError, http.client.HTTPException):
            self.request_errors += 1
            if self.window is not None:
                self.window.release(len(batch))
            time.sleep(RETRY_PAUSE_S)
            return
        self.sent += len(batch)
        self.offered += sum(1 for index in batch if index not in self.retrying)
        retry = False
        if self.window is not None:
            self.window.release(sum(1 for reason in verdicts if reason is not None))
        for index, reason in zip(batch, verdicts, strict=True):
            queue = self.queues[index]
            self.retrying.discard(index)
            if reason is None:
                self.accepted += 1
                self.records.append((queue.popleft()[1], sent_at))
                continue
            self.refused[reason] += 1
            if reason in RETRY_REASONS:
                retry = True
                self.retrying.add(index)
            else:
                self.dead.add(index)
        if retry:
            time.sleep(RETRY_PAUSE_S)


def _lanes(
    plan: WorkerPlan, queues: list[deque[tuple[bytes, bytes]]], window: Window | None
) -> list[_Lane]:
    addresses = [a for a in plan.api_addresses for _ in range(plan.connections_per_node)]
    rate = None if plan.rate_tx_per_s is None else plan.rate_tx_per_s / len(addresses)
    return [
        _Lane(address, queues[i :: len(addresses)], rate, plan.batch_max, window=window)
        for i, address in enumerate(addresses)
    ]


def run_worker(
    plan: WorkerPlan, ready: Any, go: Any, done: Any, window: Window | None = None
) -> None:
    """A load process: sign, say ready (``ready.put``), wait for the start time
    (``go.get()``: monotonic seconds), send until ``duration_s`` past it (a closed loop within
    ``window``), write the result file and put the ``WorkerReport`` on ``done``."""
    report = WorkerReport(plan.index)
    try:
        started = time.monotonic()
        queues = presign(plan)
        report.sign_s = time.monotonic() - started
        ready.put(plan.index)
        start_s = float(go.get())
        lanes = _lanes(plan, queues, window if plan.rate_tx_per_s is None else None)
        threads = [
            threading.Thread(
                target=lane.run, args=(start_s, start_s + plan.duration_s), daemon=True
            )
            for lane in lanes
        ]
        while time.monotonic() < start_s:
            time.sleep(min(0.01, max(0.0, start_s - time.monotonic())))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _summarize(report, plan, lanes, queues)
    except Exception as exc:  # reported to the parent, which fails the run with it
        report.error = f"{type(exc).__name__}: {exc}"
        ready.put(plan.index)
    done.put(report)


def _summarize(
    report: WorkerReport,
    plan: WorkerPlan,
    lanes: list[_Lane],
    queues: list[deque[tuple[bytes, bytes]]],
) -> None:
    with plan.result_path.open("wb") as out:
        for lane in lanes:
            report.offered += lane.offered
            report.sent += lane.sent
            report.accepted += lane.accepted
            report.refused.update(lane.refused)
            report.requests += lane.requests
            report.request_errors += lane.request_errors
            report.batch_path = report.batch_path and lane.batch_path
            report.exhausted_accounts += len(lane.dead)
            out.write(b"".join(RECORD.pack(h, t) for h, t in lane.records))
    report.next_nonces = [
        first + plan.txs_per_account - len(queue)
        for first, queue in zip(plan.first_nonces, queues, strict=True)
    ]


def read_records(path: Path) -> list[tuple[bytes, float]]:
    """The (hash, submit time) records of a worker's result file."""
    data = path.read_bytes()
    return [RECORD.unpack_from(data, offset) for offset in range(0, len(data), RECORD.size)]
