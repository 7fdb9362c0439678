"""The mempool: verified transactions waiting for a block, bounded by count and bytes.

Admission is two steps so the expensive one can run anywhere:

1. ``verify_transaction(raw, chain_id)`` decodes, checks the chain id and the Ed25519
   signature. It is a pure function of its arguments, safe to run in worker threads (PyNaCl
   releases the GIL, so a shell can verify on every core; ``verify_transactions`` takes a
   batch, one call per worker); it returns a ``VerifiedTx``.
2. ``Mempool.add(verified, next_nonce)`` applies the pool's rules on one thread. (The
   application's ``check_tx`` is the caller's to run between the two; ``Mempool.admit`` does
   1 and 2 inline for single-threaded callers such as the simulator.)

Rules:
- Duplicates (same tx hash) are refused.
- Nonces: per account the pool holds a *contiguous* run starting at the account's next
  committed nonce (``next_nonce(sender)``); a nonce already committed or already pending is
  refused (``NONCE_USED``, no replacement), a nonce beyond the run's end is refused
  (``NONCE_GAP``). So every pending tx can be included once its predecessors are.
- Priority: ``tx.priority`` (0..65535, higher first); ties are broken by arrival order.
- Eviction when the pool is full (by count or bytes): the lowest-priority *last* pending tx of
  some other account goes first (the newest among equals), repeatedly, but only while the
  victim's priority is strictly lower than the newcomer's; otherwise the newcomer is refused
  (``MEMPOOL_FULL``) and nothing is evicted. Taking only an account's last tx never leaves a
  nonce gap.
- ``reap`` hands out transactions by priority across accounts, each account's in nonce order
  (an account's head gates the rest of its run: a high-priority tx waits for its sender's
  lower-priority predecessors).
- ``update`` runs after every committed block: it drops committed txs and those whose nonce
  is now used, drops runs that no longer start at the committed nonce, and re-checks the rest
  with the caller's ``recheck`` (e.g. the app's ``check_tx`` against the new state), dropping
  a failing tx together with its successors.

Deterministic: no clock, no randomness; the same calls give the same pool.

How a node core drives it with the application (``node.app.Application``)::

    verified = verify_transaction(raw, chain_id)        # or verify_transactions in a thread
    if app.check_tx(verified.tx).ok:
        mempool.add(verified, app.next_nonce)
    ...
    txs = [v.raw for v in mempool.reap(max_bytes, max_count)]      # when proposing
    ...
    result = app.finalize_block(block, preverified_tx_hashes=mempool)  # a hash in the pool
    mempool.update(block.txs, app.next_nonce,                          # was verified
                   recheck=lambda v: app.check_tx(v.tx).ok)
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from crypto_core.signatures import verify
from node.codec import (
    MAX_TX_BYTES,
    MIB,
    TX_CODEC,
    block_tx_bytes,
    tx_hash,
    tx_sign_bytes_of_encoding,
)
from node.errors import DecodeError, RejectReason, TxRejected
from node.types import Transaction

DEFAULT_MAX_TXS: Final = 20_000
DEFAULT_MAX_BYTES: Final = 64 * MIB
DEFAULT_MAX_TXS_PER_ACCOUNT: Final = 64

NonceLookup = Callable[[bytes], int]
"""The next nonce the committed state expects from an account (0 for an unknown one)."""

Recheck = Callable[["VerifiedTx"], bool]
"""After a block: is a pending transaction still acceptable against the new state?"""


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    """Bounds of one mempool (counts are transactions, bytes are encoded tx bytes)."""

    max_txs: int = DEFAULT_MAX_TXS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_txs_per_account: int = DEFAULT_MAX_TXS_PER_ACCOUNT

    def __post_init__(self) -> None:
        for name in ("max_txs", "max_bytes", "max_txs_per_account"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"MempoolLimits.{name} must be a positive int, got {value!r}")
        if self.max_bytes < MAX_TX_BYTES:
            raise ValueError(f"MempoolLimits.max_bytes must hold one tx ({MAX_TX_BYTES} bytes)")


@dataclass(frozen=True, slots=True)
class VerifiedTx:
    """A decoded transaction whose chain id and signature were checked, with its bytes."""

    tx: Transaction
    raw: bytes
    tx_hash: bytes

    @property
    def size_bytes(self) -> int:
        """Length of the canonical encoding."""
        return len(self.raw)


def verify_transaction(raw: bytes, chain_id: str, hash_: bytes | None = None) -> VerifiedTx:
    """Decode ``raw`` and check its chain id and signature (``TxRejected`` otherwise);
    ``hash_``: ``tx_hash(raw)`` if the caller computed it already.

    Pure and thread-safe; the signature check dominates its cost (~50 µs).
    """
    if len(raw) > MAX_TX_BYTES:
        raise TxRejected(RejectReason.OVERSIZE, f"{len(raw)} bytes > {MAX_TX_BYTES} bytes")
    try:
        tx = TX_CODEC.decode(raw)
    except DecodeError as exc:
        raise TxRejected(RejectReason.MALFORMED, str(exc)) from exc
    if tx.chain_id != chain_id:
        raise TxRejected(RejectReason.WRONG_CHAIN, f"chain {tx.chain_id!r}, not {chain_id!r}")
    # The signed bytes are sliced out of ``raw`` (canonical once decoded), not re-encoded.
    if not verify(tx.sender, tx_sign_bytes_of_encoding(raw), tx.signature):
        raise TxRejected(RejectReason.BAD_SIGNATURE, "signature does not verify")
    return VerifiedTx(tx=tx, raw=bytes(raw), tx_hash=tx_hash(raw) if hash_ is None else hash_)


def verify_transactions(
    raws: Sequence[bytes], chain_id: str, hashes: Sequence[bytes] | None = None
) -> list[VerifiedTx | TxRejected]:
    """``verify_transaction`` over a batch, each refusal returned in its place (not raised);
    ``hashes``: the transactions' ``tx_hash``, if the caller computed them already.

    The unit of work a shell hands to a worker thread: one call per thread amortises the
    hand-off, and the signature checks inside run without the GIL.
    """
    if hashes is not None and len(hashes) != len(raws):
        raise ValueError("one hash per transaction")
    results: list[VerifiedTx | TxRejected] = []
    for index, raw in enumerate(raws):
        try:
            hash_ = None if hashes is None else hashes[index]
            results.append(verify_transaction(raw, chain_id, hash_))
        except TxRejected as rejected:
            results.append(rejected)
    return results


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """A transaction was admitted; ``evicted`` are the hashes removed to make room."""

    tx_hash: bytes
    evicted: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """What ``update`` removed: included in the block, or no longer valid."""

    committed: tuple[bytes, ...]
    dropped: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    verified: VerifiedTx
    seq: int  # arrival order, the tie-breaker among equal priorities

    @property
    def sender(self) -> bytes:
        return self.verified.tx.sender

    @property
    def nonce(self) -> int:
        return self.verified.tx.nonce

    @property
    def priority(self) -> int:
        return self.verified.tx.priority

    @property
    def eviction_key(self) -> tuple[int, int, bytes]:
        # Ascending order = eviction order: lowest priority first, newest first among equals.
        return (self.priority, -self.seq, self.sender)


class Mempool:
    """Pending transactions of one chain; see the module docstring for the rules."""

    def __init__(self, chain_id: str, limits: MempoolLimits | None = None) -> None:
        self.chain_id = chain_id
        self.limits = limits or MempoolLimits()
        self._by_hash: dict[bytes, _Entry] = {}
        self._by_sender: dict[bytes, list[_Entry]] = {}  # a contiguous nonce run per account
        self._tails: list[tuple[int, int, bytes]] = []  # sorted eviction keys of last entries
        self._bytes = 0
        self._next_seq = 0

    # -- queries ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    @property
    def size_bytes(self) -> int:
        """Total encoded bytes of the pending transactions."""
        return self._bytes

    def get(self, tx_hash: bytes) -> VerifiedTx | None:
        """The pending transaction with this hash, or ``None``."""
        entry = self._by_hash.get(tx_hash)
        return entry.verified if entry else None

    def pending_of(self, sender: bytes) -> tuple[VerifiedTx, ...]:
        """The sender's pending transactions in nonce order."""
        return tuple(entry.verified for entry in self._by_sender.get(sender, ()))

    def next_nonce(self, sender: bytes, committed_next_nonce: int) -> int:
        """The nonce a new transaction of ``sender`` must carry to be admitted."""
        queue = self._by_sender.get(sender)
        return queue[-1].nonce + 1 if queue else committed_next_nonce

    # -- admission --------------------------------------------------------------------------

    def admit(self, raw: bytes, next_nonce: NonceLookup) -> AddOutcome:
        """``verify_transaction`` then ``add``, inline (``TxRejected`` on refusal)."""
        return self.add(verify_transaction(raw, self.chain_id), next_nonce)

    def add(self, verified: VerifiedTx, next_nonce: NonceLookup) -> AddOutcome:
        """Admit a verified transaction or raise ``TxRejected`` (and change nothing)."""
        tx = verified.tx
        if tx.chain_id != self.chain_id:
            raise TxRejected(RejectReason.WRONG_CHAIN, f"chain {tx.chain_id!r}")
        if verified.tx_hash in self._by_hash:
            raise TxRejected(RejectReason.DUPLICATE, f"{verified.tx_hash.hex()} is pending")
        self._check_nonce(tx, next_nonce(tx.sender))
        victims = self._plan_eviction(verified.size_bytes, tx.priority, tx.sender)
        if victims is None:
            raise TxRejected(
                RejectReason.MEMPOOL_FULL,
                f"{len(self)} txs / {self._bytes} bytes pending and nothing of lower priority"
                f" than {tx.priority} to evict",
            )
        for victim in victims:
            self._pop_last(victim.sender)
        self._append(_Entry(verified, self._next_seq))
        self._next_seq += 1
        # Cheap invariants (O(1)); check_invariants verifies the indexes in full.
        assert len(self._by_hash) <= self.limits.max_txs, "eviction left the pool over its count"
        assert 0 <= self._bytes <= self.limits.max_bytes, "eviction left the pool over its bytes"
        assert len(self._tails) == len(self._by_sender), "one tail per account run"
        return AddOutcome(verified.tx_hash, tuple(v.verified.tx_hash for v in victims))

    def _check_nonce(self, tx: Transaction, committed_next: int) -> None:
        queue = self._by_sender.get(tx.sender)
        expected = queue[-1].nonce + 1 if queue else committed_next
        if tx.nonce < committed_next:
            raise TxRejected(
                RejectReason.NONCE_USED,
                f"nonce {tx.nonce} is committed; the account's next nonce is {committed_next}",
            )
        if tx.nonce < expected:
            raise TxRejected(RejectReason.NONCE_USED, f"nonce {tx.nonce} is already pending")
        if tx.nonce > expected:
            raise TxRejected(
                RejectReason.NONCE_GAP, f"nonce {tx.nonce} leaves a gap; expected {expected}"
            )
        if queue and len(queue) >= self.limits.max_txs_per_account:
            raise TxRejected(
                RejectReason.ACCOUNT_LIMIT,
                f"the account has {len(queue)} pending txs (limit "
                f"{self.limits.max_txs_per_account})",
            )

    def _plan_eviction(self, size: int, priority: int, sender: bytes) -> list[_Entry] | None:
        """The entries to evict so a newcomer fits, or ``None`` if it cannot fit."""
        need_count = len(self) + 1 - self.limits.max_txs
        need_bytes = self._bytes + size - self.limits.max_bytes
        victims: list[_Entry] = []
        taken: dict[bytes, int] = {}  # per account: how many of its last entries are victims
        exposed: list[tuple[int, int, bytes]] = []  # tails exposed by a planned eviction
        index = 0
        while need_count > 0 or need_bytes > 0:
            while index < len(self._tails) and self._tails[index][2] == sender:
                index += 1  # never evict the newcomer's own account: it would open a gap
            tail = self._tails[index] if index < len(self._tails) else None
            if exposed and (tail is None or exposed[0] < tail):
                key = heapq.heappop(exposed)
            elif tail is not None:
                key = tail
                index += 1
            else:
                return None
            if key[0] >= priority:
                return None
            queue = self._by_sender[key[2]]
            depth = taken.get(key[2], 0)
            victim = queue[len(queue) - 1 - depth]
            victims.append(victim)
            taken[key[2]] = depth + 1
            need_count -= 1
            need_bytes -= victim.verified.size_bytes
            if depth + 1 < len(queue):
                heapq.heappush(exposed, queue[len(queue) - 2 - depth].eviction_key)
        return victims

    # -- block building ---------------------------------------------------------------------

    def reap(self, max_bytes: int, max_count: int) -> list[VerifiedTx]:
        """Up to ``max_count`` txs whose block-encoded size (``codec.block_tx_bytes``) totals
        at most ``max_bytes``: highest priority first across accounts (arrival order among
        equals), each account's in nonce order. The pool is not changed (``update`` is)."""
        heads = [(-q[0].priority, q[0].seq, 0, q) for q in self._by_sender.values()]
        heapq.heapify(heads)
        reaped: list[VerifiedTx] = []
        used_bytes = 0
        while heads and len(reaped) < max_count:
            _, _, position, queue = heapq.heappop(heads)
            entry = queue[position]
            cost = block_tx_bytes(entry.verified.size_bytes)
            if used_bytes + cost > max_bytes:
                continue  # this account's run stops here: its later nonces need this one
            reaped.append(entry.verified)
            used_bytes += cost
            if position + 1 < len(queue):
                successor = queue[position + 1]
                heapq.heappush(heads, (-successor.priority, successor.seq, position + 1, queue))
        return reaped

    def update(
        self,
        committed_txs: Iterable[bytes],
        next_nonce: NonceLookup,
        recheck: Recheck | None = None,
        *,
        senders: Iterable[bytes] | None = None,
    ) -> UpdateOutcome:
        """Re-validate the pool after a committed block (see the module docstring).

        ``senders``: the accounts of the block's transactions, if the caller knows them; then
        only their runs are revisited (the block moved no other account's nonce). Another
        account's transaction the block's state changes made invalid (rare: its account
        deactivated by someone else) then stays until it is proposed and fails in its block
        with a receipt — rechecking the whole pool after every block cost ~1 s of the core's
        time per block with 20,000 pending."""
        committed_hashes = {tx_hash(raw) for raw in committed_txs}
        committed: list[bytes] = []
        dropped: list[bytes] = []
        if senders is None:
            revisit = list(self._by_sender)  # insertion order: deterministic
        else:
            wanted = set(senders)
            revisit = [s for s in self._by_sender if s in wanted]
        for sender in revisit:
            queue = self._by_sender[sender]
            keep = self._surviving(queue, next_nonce(sender), committed_hashes, recheck)
            for entry in self._replace_run(sender, keep):
                hash_ = entry.verified.tx_hash
                (committed if hash_ in committed_hashes else dropped).append(hash_)
        return UpdateOutcome(tuple(committed), tuple(dropped))

    @staticmethod
    def _surviving(
        queue: list[_Entry],
        committed_next: int,
        committed_hashes: set[bytes],
        recheck: Recheck | None,
    ) -> list[_Entry]:
        run = [
            entry
            for entry in queue
            if entry.verified.tx_hash not in committed_hashes and entry.nonce >= committed_next
        ]
        if not run or run[0].nonce != committed_next:
            return []  # the run no longer starts at the account's nonce: nothing is includable
        if recheck is not None:
            for position, entry in enumerate(run):
                if not recheck(entry.verified):
                    return run[:position]
        return run

    # -- bookkeeping ------------------------------------------------------------------------

    def _append(self, entry: _Entry) -> None:
        queue = self._by_sender.setdefault(entry.sender, [])
        if queue:
            self._untrack_tail(queue[-1])
        queue.append(entry)
        insort(self._tails, entry.eviction_key)
        self._by_hash[entry.verified.tx_hash] = entry
        self._bytes += entry.verified.size_bytes

    def _pop_last(self, sender: bytes) -> None:
        queue = self._by_sender[sender]
        entry = queue.pop()
        self._untrack_tail(entry)
        self._forget(entry)
        assert self._bytes >= 0, "removed more bytes than were pending"
        if queue:
            insort(self._tails, queue[-1].eviction_key)
        else:
            del self._by_sender[sender]

    def _replace_run(self, sender: bytes, keep: list[_Entry]) -> list[_Entry]:
        """Keep only ``keep`` (a sub-run of the sender's run); returns the removed entries."""
        queue = self._by_sender[sender]
        if len(keep) == len(queue):
            return []
        self._untrack_tail(queue[-1])
        kept = {id(entry) for entry in keep}
        removed = [entry for entry in queue if id(entry) not in kept]
        for entry in removed:
            self._forget(entry)
        if keep:
            self._by_sender[sender] = keep
            insort(self._tails, keep[-1].eviction_key)
        else:
            del self._by_sender[sender]
        return removed

    def _untrack_tail(self, entry: _Entry) -> None:
        key = entry.eviction_key
        position = bisect_left(self._tails, key)
        assert self._tails[position] == key, "eviction index out of sync"
        del self._tails[position]

    def _forget(self, entry: _Entry) -> None:
        del self._by_hash[entry.verified.tx_hash]
        self._bytes -= entry.verified.size_bytes

    def check_invariants(self) -> None:
        """Assert the internal indexes agree (for tests and debugging; O(n))."""
        entries = [entry for queue in self._by_sender.values() for entry in queue]
        assert len(entries) == len(self._by_hash)
        assert self._bytes == sum(e.verified.size_bytes for e in entries)
        assert self._tails == sorted(q[-1].eviction_key for q in self._by_sender.values())
        for queue in self._by_sender.values():
            assert queue, "empty runs are removed"
            assert all(b.nonce == a.nonce + 1 for a, b in pairwise(queue))
        assert len(self) <= self.limits.max_txs
        assert self._bytes <= self.limits.max_bytes
