"""The client library of the health chain: keystore, node API client, transactions, records.

- ``health.client.keystore``: a party's keys (and its records' data keys) in a file
  encrypted under a passphrase (Argon2id + SecretBox);
- ``health.client.node_client``: a blocking HTTP client of one node's API (chain and
  records routes);
- ``health.client.transactions``: signing, nonces, submission and waiting for receipts;
- ``health.client.actions``: every health transaction as a method;
- ``health.client.client``: ``HealthClient``, the record flows of docs/RECORDS.md.
"""

from health.client.client import GrantResult, HealthClient, ShareResult
from health.client.errors import (
    ClientError,
    KeystoreError,
    ReceiptTimeout,
    RecordError,
    TransactionFailed,
    TransactionRejected,
)
from health.client.keystore import KDF_INTERACTIVE, KDF_MIN, KDF_MODERATE, KdfParams, Keystore
from health.client.node_client import HttpClientTransport, HttpReply, NodeClient, NodeResponseError

__all__ = [
    "KDF_INTERACTIVE",
    "KDF_MIN",
    "KDF_MODERATE",
    "ClientError",
    "GrantResult",
    "HealthClient",
    "HttpClientTransport",
    "HttpReply",
    "KdfParams",
    "Keystore",
    "KeystoreError",
    "NodeClient",
    "NodeResponseError",
    "ReceiptTimeout",
    "RecordError",
    "ShareResult",
    "TransactionFailed",
    "TransactionRejected",
]
