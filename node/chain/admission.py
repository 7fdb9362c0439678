"""Transaction admission: clients' and peers' transactions into the mempool, and their gossip.

``Admission`` takes a transaction through, in order: ``verify`` (decode, chain id, Ed25519
signature: ``node.mempool.verify_transaction``, injected) unless the shell verified it
already, ``Application.check_tx`` against the last committed state, then the mempool's own
rules (``Mempool.add``). A client's transaction gets a ``TxResult`` and, once admitted, is
queued for gossip (a ``TX_GOSSIP`` timer is set when the queue was empty); the queue goes out
as ``Broadcast("txs", TxBatch)`` when the timer fires (``drain_gossip``). A peer's batch gets
no answer: the peer is reported for the first refusal an honest peer never causes, and
transactions already in the mempool are not verified again. ``recheck`` is the rule the
mempool re-applies to what stays after a commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from node.app.application import Application
from node.chain.actions import Offence, TxResult
from node.chain.config import NodeConfig
from node.chain.events import (
    TimerKey,
    TimerKind,
    TxSubmitted,
    VerifiedTxsReceived,
    VerifiedTxsSubmitted,
)
from node.chain.gossip import TxGossip
from node.chain.height import HeightState, Outbox
from node.chain.messages import TOPIC_TXS
from node.chain.status import NodeStats
from node.codec import MAX_TXS_PER_BATCH, tx_hash
from node.errors import RejectReason, TxRejected
from node.mempool import Mempool, VerifiedTx
from node.ports import PeerId
from node.types import TxBatch

__all__ = [
    "PEER_TX_FAULTS",
    "Admission",
    "Verify",
    "check_verified",
    "check_verified_submitted",
]

Verify = Callable[[bytes, str], VerifiedTx]
"""Decode and verify a raw transaction for a chain id; raises ``TxRejected``."""

PEER_TX_FAULTS: Final = {
    RejectReason.OVERSIZE: Offence.OVERSIZE,
    RejectReason.MALFORMED: Offence.MALFORMED,
    RejectReason.WRONG_CHAIN: Offence.WRONG_CHAIN,
    RejectReason.BAD_SIGNATURE: Offence.INVALID_SIGNATURE,
}
"""The refusals only a dishonest peer causes, and the offence each one is."""


class Admission:
    """The mempool's gate (see the module docstring)."""

    __slots__ = (
        "_app",
        "_chain_id",
        "_config",
        "_gossip",
        "_mempool",
        "_outbox",
        "_state",
        "_stats",
        "_verify",
    )

    def __init__(
        self,
        *,
        chain_id: str,
        config: NodeConfig,
        state: HeightState,
        app: Application,
        mempool: Mempool,
        gossip: TxGossip,
        outbox: Outbox,
        stats: NodeStats,
        verify: Verify,
    ) -> None:
        self._chain_id = chain_id
        self._config = config
        self._state = state
        self._app = app
        self._mempool = mempool
        self._gossip = gossip
        self._outbox = outbox
        self._stats = stats
        self._verify = verify

    def on_tx_submitted(self, event: TxSubmitted) -> None:
        """A client's transaction: admit it or say why not; gossip it once admitted."""
        raw = event.raw
        if type(raw) is not bytes:
            self._tx_result(b"", TxRejected(RejectReason.MALFORMED, "a transaction is bytes"))
            return
        hash_ = tx_hash(raw)
        try:
            verified = self._verify(raw, self._chain_id)
        except TxRejected as rejected:
            self._tx_result(hash_, rejected)
            return
        self._admit_client_tx(hash_, verified)

    def on_verified_submitted(self, event: VerifiedTxsSubmitted) -> None:
        """A client's batch the shell verified: one ``TxResult`` per transaction, in order
        (raises TypeError, ValueError: see ``check_verified_submitted``)."""
        check_verified_submitted(event, self._chain_id)
        for hash_, result in zip(event.tx_hashes, event.results, strict=True):
            if isinstance(result, TxRejected):
                self._tx_result(hash_, result)
            else:
                self._admit_client_tx(hash_, result)

    def on_tx_batch(self, sender: PeerId, batch: TxBatch) -> None:
        """A peer's gossiped batch, verified here."""
        # Lazily: a transaction repeated within the batch is found in the mempool, unverified.
        results = (
            self._verified_or_refusal(raw) for raw in batch.txs if tx_hash(raw) not in self._mempool
        )
        self._admit_from_peer(sender, results)

    def on_verified_txs(self, event: VerifiedTxsReceived) -> None:
        """A peer's batch the shell verified (raises TypeError, ValueError: see
        ``check_verified``)."""
        check_verified(event, self._chain_id)
        self._stats.messages_received += 1
        if self._state.started:
            self._admit_from_peer(event.sender, [*event.verified, *event.rejected])

    def drain_gossip(self) -> None:
        """Broadcast the transactions queued for gossip."""
        for data in self._gossip.drain():
            self._outbox.broadcast(TOPIC_TXS, data)

    def recheck(self, verified: VerifiedTx) -> bool:
        """True if a transaction left in the mempool after a commit may stay."""
        return self._app.check_tx(verified.tx).ok

    def _admit_client_tx(self, hash_: bytes, verified: VerifiedTx) -> None:
        """Admit a client's verified transaction, answer it, queue it for gossip."""
        try:
            self._admit(verified)
        except TxRejected as rejected:
            self._tx_result(hash_, rejected)
            return
        self._tx_result(hash_, None)
        if self._gossip.push(verified.raw):
            key = TimerKey(TimerKind.TX_GOSSIP)
            self._outbox.set_timer(key, self._config.tx_gossip_interval_ms)

    def _admit(self, verified: VerifiedTx) -> None:
        """check_tx, then the mempool's rules; raises TxRejected."""
        checked = self._app.check_tx(verified.tx)
        if not checked.ok:
            raise TxRejected(
                RejectReason.APP_REJECTED, f"{checked.code.name.lower()}: {checked.log}"
            )
        self._mempool.add(verified, self._app.next_nonce)

    def _admit_new(self, verified: VerifiedTx) -> TxRejected | None:
        """``_admit`` a transaction not in the mempool yet; the refusal, if any."""
        if verified.tx_hash in self._mempool:
            return None
        try:
            self._admit(verified)
        except TxRejected as rejected:
            return rejected
        return None

    def _tx_result(self, hash_: bytes, rejected: TxRejected | None) -> None:
        if rejected is None:
            self._stats.txs_admitted += 1
            self._outbox.add(TxResult(hash_, True, None, ""))
        else:
            self._stats.txs_rejected += 1
            self._outbox.add(TxResult(hash_, False, rejected.reason, rejected.message))

    def _admit_from_peer(self, sender: PeerId, results: Iterable[VerifiedTx | TxRejected]) -> None:
        """Admit a peer's verified transactions; report the peer for the first refusal an
        honest peer never causes (it relays only verified transactions). Transactions the
        application or the mempool refuse are nobody's fault (nonces move, mempools fill)."""
        fault: TxRejected | None = None
        for result in results:
            refusal = result if isinstance(result, TxRejected) else self._admit_new(result)
            if refusal is not None and refusal.reason in PEER_TX_FAULTS and fault is None:
                fault = refusal
        if fault is not None:
            self._outbox.misbehaved(sender, PEER_TX_FAULTS[fault.reason], f"tx batch: {fault}")

    def _verified_or_refusal(self, raw: bytes) -> VerifiedTx | TxRejected:
        try:
            return self._verify(raw, self._chain_id)
        except TxRejected as rejected:
            return rejected


def check_verified(event: VerifiedTxsReceived, chain_id: str) -> None:
    """Hold the shell to the contract of ``VerifiedTxsReceived`` (TypeError, ValueError)."""
    if type(event.verified) is not tuple or type(event.rejected) is not tuple:
        raise TypeError("VerifiedTxsReceived.verified and .rejected must be tuples")
    if len(event.verified) + len(event.rejected) > MAX_TXS_PER_BATCH:
        raise ValueError(f"more than {MAX_TXS_PER_BATCH} transactions: not one batch")
    for verified in event.verified:
        if not isinstance(verified, VerifiedTx):
            raise TypeError(f"not a VerifiedTx: {type(verified).__name__}")
        if verified.tx.chain_id != chain_id:
            raise ValueError(
                f"a transaction verified for chain {verified.tx.chain_id!r}, not {chain_id!r}"
            )
    for rejected in event.rejected:
        if not isinstance(rejected, TxRejected):
            raise TypeError(f"not a TxRejected: {type(rejected).__name__}")


def check_verified_submitted(event: VerifiedTxsSubmitted, chain_id: str) -> None:
    """Hold the shell to the contract of ``VerifiedTxsSubmitted`` (TypeError, ValueError)."""
    if type(event.tx_hashes) is not tuple or type(event.results) is not tuple:
        raise TypeError("VerifiedTxsSubmitted.tx_hashes and .results must be tuples")
    if len(event.tx_hashes) != len(event.results):
        raise ValueError("VerifiedTxsSubmitted: one hash per result")
    if len(event.results) > MAX_TXS_PER_BATCH:
        raise ValueError(f"more than {MAX_TXS_PER_BATCH} transactions: not one batch")
    for hash_, result in zip(event.tx_hashes, event.results, strict=True):
        if isinstance(result, VerifiedTx):
            if result.tx.chain_id != chain_id:
                raise ValueError(
                    f"a transaction verified for chain {result.tx.chain_id!r}, not {chain_id!r}"
                )
            if result.tx_hash != hash_:
                raise ValueError("VerifiedTxsSubmitted: a hash is not its transaction's")
        elif not isinstance(result, TxRejected):
            raise TypeError(f"neither a VerifiedTx nor a TxRejected: {type(result).__name__}")
