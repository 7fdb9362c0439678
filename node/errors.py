"""Typed errors of the node: one base class, and one family per way things go wrong.

Two kinds, as in h11: an error about *input from outside* (bytes from a peer or a client that
break the rules: ``DecodeError``, ``InvalidBlockError``, ``TxRejected``) is expected in normal
operation and means "drop it, maybe penalise the sender"; an error about *our own* misuse
(``EncodeError``: we tried to encode a value outside the schema) is a bug in the caller.
Every error here derives from ``BigHealthError`` so a shell can catch the whole family.
"""

from __future__ import annotations

from enum import StrEnum


class BigHealthError(Exception):
    """Base of every error the project raises on purpose."""


# -- codec ----------------------------------------------------------------------------------


class DecodeError(BigHealthError, ValueError):
    """Bytes from outside are not a valid canonical encoding of the expected type."""


class OversizeError(DecodeError):
    """The input (or a part of it) is larger than the explicit limit for its type."""


class MalformedError(DecodeError):
    """The input is not well-formed msgpack (truncated, reserved byte, bad UTF-8, ...)."""


class NonCanonicalError(DecodeError):
    """The input decodes, but is not the one canonical encoding (e.g. trailing bytes, a
    non-minimal integer or length prefix): accepting it would give one value two hashes."""


class SchemaError(DecodeError):
    """The decoded value does not fit the fixed schema: unknown or missing fields, a wrong
    type, a value out of range or a length that does not match."""


class EncodeError(BigHealthError, ValueError):
    """A value handed to the encoder does not fit its schema (a bug in the caller)."""


# -- chain rules ----------------------------------------------------------------------------


class InvalidBlockError(BigHealthError):
    """A block or header breaks a chain rule (height, time, hashes, size, commit)."""


class RejectReason(StrEnum):
    """Why a transaction was refused at admission (mempool or ``check_tx``)."""

    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    WRONG_CHAIN = "wrong_chain"
    BAD_SIGNATURE = "bad_signature"
    DUPLICATE = "duplicate"
    NONCE_USED = "nonce_used"
    NONCE_GAP = "nonce_gap"
    ACCOUNT_LIMIT = "account_limit"
    MEMPOOL_FULL = "mempool_full"
    APP_REJECTED = "app_rejected"


class TxRejected(BigHealthError):
    """A transaction was not admitted; ``reason`` says why in a machine-readable way."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


# -- ports ----------------------------------------------------------------------------------


class NetworkError(BigHealthError):
    """A network operation was refused."""


class MessageTooLargeError(NetworkError):
    """A message is larger than the network's ``max_message_bytes``; it was not sent."""


class UnknownPeerError(NetworkError):
    """A message was addressed to a peer this network does not know."""


class InvalidTopicError(NetworkError, ValueError):
    """A topic name is empty, too long or uses characters outside ``[a-z0-9/_.-]``."""


# Request/response (``RuntimeNetwork.request`` and its handlers).


class RequestError(NetworkError):
    """A request to a peer did not produce a response."""


class RequestTimeoutError(RequestError):
    """No response arrived within the request's timeout."""


class PeerUnreachableError(RequestError):
    """The peer is not connected (or the connection broke during the request)."""


class ProtocolNotSupportedError(RequestError):
    """The peer does not speak the requested protocol."""


class RemoteError(RequestError):
    """The peer's handler failed; the message is the peer's text (bounded, untrusted)."""


class PeerBusyError(RemoteError):
    """The peer refused the request because all its handler slots were taken."""


class RequestRejectedError(NetworkError):
    """Raised by a request handler to refuse a request; its message goes to the requester
    (any other exception in a handler is reported to the requester as an internal error)."""


class StorageError(BigHealthError):
    """A storage operation failed."""


class StorageFullError(StorageError):
    """A write would take the store over its configured capacity; nothing was written."""
