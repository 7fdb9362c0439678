"""The status exchange every connection starts with, sans-I/O.

Right after a connection is up, each side sends a ``Hello`` on ``/bighealth/status/1`` and
gets the other's back. It carries what makes two nodes compatible (the network protocol
version and the chain id) and an opaque, bounded ``status`` the node supplies (its latest
height, say). A peer of another chain is disconnected and banned; nothing else is exchanged
with a peer before its hello was accepted.

The encoding is the project's canonical msgpack (``node.codec.StructCodec``): every hello has
one encoding and every malformed one raises a ``node.errors.DecodeError``, which
``decode_hello`` turns into a ``HandshakeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from node.adapters.errors import ChainMismatchError, HandshakeError
from node.codec import CHAIN_ID_PATTERN, MAX_CHAIN_ID_CHARS, U32_MAX, Bytes, StructCodec, Text, UInt
from node.errors import DecodeError, EncodeError

NETWORK_PROTOCOL_VERSION: Final = 1
MAX_STATUS_BYTES: Final = 1024
MAX_AGENT_CHARS: Final = 64
MAX_HELLO_BYTES: Final = 2048


@dataclass(frozen=True, slots=True)
class Hello:
    """What a node tells a peer about itself when they connect."""

    version: int
    chain_id: str
    agent: str
    status: bytes


HELLO_CODEC: Final = StructCodec(
    Hello,
    [
        ("version", UInt(U32_MAX)),
        ("chain_id", Text(MAX_CHAIN_ID_CHARS, CHAIN_ID_PATTERN)),
        ("agent", Text(MAX_AGENT_CHARS)),
        ("status", Bytes(MAX_STATUS_BYTES)),
    ],
    MAX_HELLO_BYTES,
)


def encode_hello(hello: Hello) -> bytes:
    """The canonical encoding of our hello (``ValueError`` if a field is out of bounds)."""
    try:
        return HELLO_CODEC.encode(hello)
    except EncodeError as exc:
        raise ValueError(f"invalid hello: {exc}") from exc


def decode_hello(data: bytes) -> Hello:
    """A peer's hello; ``HandshakeError`` for anything but a canonical, in-bounds one."""
    try:
        return HELLO_CODEC.decode(data)
    except DecodeError as exc:
        raise HandshakeError(f"malformed hello: {exc}") from exc


def check_hello(local_chain_id: str, hello: Hello) -> None:
    """Accept ``hello`` or raise: ``ChainMismatchError`` for another chain,
    ``HandshakeError`` for another network protocol version."""
    if hello.chain_id != local_chain_id:
        raise ChainMismatchError(
            f"peer is on chain {hello.chain_id!r}, this node on {local_chain_id!r}"
        )
    if hello.version != NETWORK_PROTOCOL_VERSION:
        raise HandshakeError(
            f"peer speaks network protocol version {hello.version}, "
            f"this node version {NETWORK_PROTOCOL_VERSION}"
        )
