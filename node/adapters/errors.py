"""Typed errors of the I/O adapters (LevelDB storage, key files, the libp2p network).

They extend the families of ``node.errors`` so a shell that catches ``StorageError`` or
``NetworkError`` catches these too. As there, two kinds are kept apart: errors about what a
*peer* sent (``ProtocolViolationError`` and its subclasses: drop it, penalise the peer) and
errors about what *we* asked for or how the world is (a locked database, a configuration that
makes no sense). The errors of request/response (``RequestError`` and its kinds,
``RequestRejectedError``) are part of the runtime's network contract: ``node.errors``.
"""

from __future__ import annotations

from node.errors import MessageTooLargeError, NetworkError, StorageError
from node.home.errors import InsecureKeyFileError as HomeInsecureKeyFileError
from node.home.errors import KeyFileError as HomeKeyFileError

# -- storage --------------------------------------------------------------------------------


class StorageClosedError(StorageError):
    """The store was used after ``close()``."""


class MissingDatabaseError(StorageError):
    """No database where one was expected (and creating one was not allowed)."""


class OversizeEntryError(StorageError, ValueError):
    """A key, value or batch is larger than the store's explicit limit; nothing was written."""


class DatabaseLockedError(StorageError):
    """Another process (or another handle in this one) holds the database lock."""


class StorageCorruptedError(StorageError):
    """The database files are damaged (checksum mismatch, missing or garbled manifest)."""


class NotADatabaseError(StorageCorruptedError):
    """The directory exists and holds files, but not a LevelDB database."""


class ForeignDatabaseError(StorageError):
    """A readable database that is not ours: another chain id, or no format marker."""


class IncompatibleFormatError(ForeignDatabaseError):
    """The database was written in a storage format version this software does not read."""


# -- node identity --------------------------------------------------------------------------


# The node key is a key file of the home (``node.home.keys``): its errors are the home's.
KeyFileError = HomeKeyFileError
InsecureKeyFileError = HomeInsecureKeyFileError


# -- network configuration ------------------------------------------------------------------


class NetworkConfigError(NetworkError, ValueError):
    """A network setting is out of range or malformed (a bug in the operator's config)."""


class StreamBrokenError(NetworkError):
    """A stream was reset or its connection closed while we used it."""


class PeerBannedError(NetworkError):
    """We were asked to connect to a peer we banned (the ban lapses, or ``unban`` lifts it)."""


class TooManyTopicsError(NetworkError):
    """More distinct topics than the configured limit were subscribed or broadcast on."""


# -- what peers send ------------------------------------------------------------------------


class ProtocolViolationError(NetworkError):
    """A peer sent bytes that break our wire protocol; the peer is penalised."""


class MalformedFrameError(ProtocolViolationError):
    """A length prefix is not a minimal unsigned varint, or a stream ended mid-frame."""


class MalformedMessageError(ProtocolViolationError):
    """A frame's payload does not parse (bad topic, bad envelope, bad response status)."""


class FrameTooLargeError(MessageTooLargeError):
    """A frame is larger than the configured limit (ours to send, or a peer's to receive)."""


class HandshakeError(ProtocolViolationError):
    """The status exchange on connect failed: garbled, or from an incompatible peer."""


class ChainMismatchError(HandshakeError):
    """The peer belongs to another chain (its chain id differs from ours)."""
