"""Typed errors of the client library: one base class, a ``reason`` where a program acts on it.

HTTP failures are ``node.api.client``'s errors (``ApiUnreachableError``: nothing answers;
``ApiResponseError``: an error status) so the command line handles client and node errors
alike; ``NodeResponseError`` adds the ``reason`` the records routes give.
"""

from __future__ import annotations

from node.errors import BigHealthError
from node.types import TxReceipt


class ClientError(BigHealthError):
    """Base of the client library's errors."""


class KeystoreError(ClientError):
    """A keystore could not be created, opened or saved. ``reason``: ``missing`` (no such
    file), ``exists`` (create over an existing file), ``malformed`` (not a keystore, or a
    damaged one), ``unsupported`` (a version or KDF this code does not read),
    ``wrong_passphrase`` (the contents do not authenticate: a wrong passphrase or a
    modified file), ``io`` (the file system refused), ``state`` (an operation the keystore's
    state does not allow, e.g. completing a rotation that was never started)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransactionRejected(ClientError):
    """The node refused a transaction at admission (``reason``: ``node.errors.RejectReason``
    value, e.g. ``app_rejected``, ``nonce_used``, ``mempool_full``)."""

    def __init__(self, kind: str, reason: str, message: str) -> None:
        super().__init__(f"{kind} refused by the node ({reason}): {message}")
        self.kind = kind
        self.reason = reason
        self.message = message


class TransactionFailed(ClientError):
    """A transaction committed but did not apply (its receipt's code and log)."""

    def __init__(self, kind: str, receipt: TxReceipt) -> None:
        super().__init__(f"{kind} failed: {receipt.code.name} {receipt.log}")
        self.kind = kind
        self.receipt = receipt


class ReceiptTimeout(ClientError):
    """No receipt for a transaction before the deadline (it may still commit later)."""

    def __init__(self, tx_hash: bytes, timeout_s: float) -> None:
        super().__init__(
            f"transaction {tx_hash.hex()} not committed within {timeout_s:g} s "
            "(it may still commit: ask GET /tx/<hash> later)"
        )
        self.tx_hash = tx_hash


class RecordError(ClientError):
    """A record flow failed. ``reason``: a custodian's (``forbidden``, ``erased``,
    ``key_pending``, ``not_found``... as ``RecordsError``) or the client's own:
    ``no_custodian`` (no custodian could take or give it), ``unknown_identity``,
    ``mismatch`` (what a custodian served does not match the commitment),
    ``undecryptable`` (no key of ours opens it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
