"""Signing, submitting and waiting for transactions through one node.

``TxSender`` numbers a key's transactions itself once it has asked the node for the next
nonce, so several may be in flight; when the node says a nonce is used or skips one
(another client of the same key, a transaction dropped from the mempool), it asks again and
resubmits once. Waiting polls ``GET /tx/<hash>`` every ``poll_interval_s`` until the
deadline (``ReceiptTimeout``; the transaction may still commit). The signer is read at every
submission (a key rotation changes it; the numbering starts again for the new key).

Clock and sleep are parameters so tests drive time; callers in a trio program run these
blocking calls in a thread (``trio.to_thread.run_sync``); a lock keeps concurrent callers
from taking the same nonce.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from health.client.errors import ReceiptTimeout, TransactionFailed, TransactionRejected
from health.client.node_client import NodeClient
from node.codec import TX_CODEC, sign_transaction, tx_hash
from node.errors import RejectReason
from node.ports import Signer
from node.types import Event, TxReceipt, UnsignedTransaction

DEFAULT_RECEIPT_TIMEOUT_S: Final = 30.0
DEFAULT_POLL_INTERVAL_S: Final = 0.25
_RESYNC_REASONS: Final = frozenset({RejectReason.NONCE_USED.value, RejectReason.NONCE_GAP.value})
_STALE_NONCE_PREFIX: Final = "bad_nonce:"
"""How the node words an application check refusing a nonce already used (``node.core``:
``app_rejected`` with ``"<result code>: <log>"``)."""


class TxSender:
    """Submits transactions signed by ``signer()`` (see the module docstring)."""

    def __init__(
        self,
        node: NodeClient,
        signer: Callable[[], Signer],
        chain_id: str,
        *,
        receipt_timeout_s: float = DEFAULT_RECEIPT_TIMEOUT_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if receipt_timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError("receipt_timeout_s and poll_interval_s must be > 0")
        self.node = node
        self.chain_id = chain_id
        self.receipt_timeout_s = receipt_timeout_s
        self.poll_interval_s = poll_interval_s
        self._signer = signer
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sender: bytes | None = None
        self._next_nonce: int | None = None

    def build(self, kind: str, payload: bytes, *, nonce: int, priority: int = 0) -> bytes:
        """The canonical bytes of ``kind`` with ``payload``, signed by the current key."""
        signer = self._signer()
        unsigned = UnsignedTransaction(
            chain_id=self.chain_id,
            sender=signer.public_key,
            nonce=nonce,
            kind=kind,
            payload=payload,
            priority=priority,
        )
        return TX_CODEC.encode(sign_transaction(unsigned, signer))

    def submit(self, kind: str, payload: bytes, *, priority: int = 0) -> bytes:
        """Sign and submit; the transaction's hash once the node's mempool accepted it.
        ``TransactionRejected`` when the node refuses it (after one resubmission for a
        nonce the node disagrees with)."""
        with self._lock:
            for attempt in range(2):
                nonce = self._take_nonce()
                raw = self.build(kind, payload, nonce=nonce, priority=priority)
                result = self.node.submit_tx(raw)
                if result.accepted:
                    self._next_nonce = nonce + 1
                    return tx_hash(raw)
                self._next_nonce = None  # ask the node again next time
                if not _nonce_refused(result.reason, result.message) or attempt == 1:
                    raise TransactionRejected(kind, result.reason, result.message)
        raise AssertionError("unreachable")

    def wait(self, tx_hash_: bytes, timeout_s: float | None = None) -> TxReceipt:
        """The receipt of a submitted transaction once committed (``ReceiptTimeout`` when
        ``timeout_s``, default ``receipt_timeout_s``, runs out first)."""
        limit = self.receipt_timeout_s if timeout_s is None else timeout_s
        deadline = self._monotonic() + limit
        while True:
            committed = self.node.tx_receipt(tx_hash_)
            if committed is not None:
                return committed.receipt
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise ReceiptTimeout(tx_hash_, limit)
            self._sleep(min(self.poll_interval_s, remaining))

    def transact(
        self,
        kind: str,
        payload: bytes,
        *,
        priority: int = 0,
        check: bool = True,
        timeout_s: float | None = None,
    ) -> TxReceipt:
        """Submit and wait for the receipt; with ``check``, ``TransactionFailed`` unless it
        applied."""
        receipt = self.wait(self.submit(kind, payload, priority=priority), timeout_s)
        if check and not receipt.ok:
            raise TransactionFailed(kind, receipt)
        return receipt

    def _take_nonce(self) -> int:
        sender = self._signer().public_key
        if sender != self._sender:
            self._sender, self._next_nonce = sender, None
        if self._next_nonce is None:
            self._next_nonce = self.node.next_nonce(sender)
        return self._next_nonce


def _nonce_refused(reason: str, message: str) -> bool:
    """True when the node refused the transaction for its nonce alone."""
    if reason in _RESYNC_REASONS:
        return True
    return reason == RejectReason.APP_REJECTED.value and message.startswith(_STALE_NONCE_PREFIX)


def event_attribute(receipt: TxReceipt, kind: str, name: str) -> str | None:
    """The attribute ``name`` of the first event ``kind`` of a receipt, or None."""
    for event in receipt.events:
        if event.name == kind:
            return attribute_of(event, name)
    return None


def attribute_of(event: Event, name: str) -> str | None:
    """An event's attribute ``name``, or None."""
    for attribute in event.attributes:
        if attribute.key == name:
            return attribute.value
    return None
