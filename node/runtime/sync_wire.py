"""The block-sync protocol (``/bighealth/sync/1``): one request frame, one response frame.

A node that fell behind asks a peer for committed blocks (``NodeCore``'s ``RequestBlocks``)::

    request:  SyncRequest(from_height, max_blocks)          canonical msgpack, <= 32 bytes
    response: SyncResponse(blocks)                          encoded ``CommittedBlock`` s

The responder answers from its core's ``blocks_for_sync`` within the response frame, so a
response never exceeds ``max_response_bytes``; the requester hands the blocks, still
encoded, to its core, which verifies each against its own validator schedule before use —
nothing a peer sends here is trusted. A request out of range decodes to an error, and the
responder rejects it (the peer gets a typed remote error; honest nodes never send one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from node.codec import KIB, MAX_MESSAGE_BYTES, ArrayOf, Bytes, StructCodec, UInt

SYNC_PROTOCOL: Final = "/bighealth/sync/1"
"""The protocol id the runtime serves and asks blocks by height on."""
DEFAULT_MAX_RESPONSE_BYTES: Final = MAX_MESSAGE_BYTES + 1 * KIB - 1
"""The largest response sent or accepted by default: the body of one response frame of the
network as configured by default (``MAX_MESSAGE_BYTES`` + 1 KiB, less the status byte the
transport puts before every response)."""
MAX_SYNC_BLOCKS: Final = 256
"""Most blocks one request may ask for and one response may carry."""
ARRAY_OVERHEAD_BYTES: Final = 5
"""What msgpack adds around one block (bin header) or the array (array header), at most."""


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """Blocks ``from_height`` (>= 1) on, at most ``max_blocks`` (1..MAX_SYNC_BLOCKS)."""

    from_height: int
    max_blocks: int


@dataclass(frozen=True, slots=True)
class SyncResponse:
    """Encoded ``CommittedBlock`` s, consecutive from the height asked for (may be empty)."""

    blocks: tuple[bytes, ...]


SYNC_REQUEST_CODEC: Final = StructCodec(
    SyncRequest, [("from_height", UInt()), ("max_blocks", UInt(MAX_SYNC_BLOCKS))], 32
)


def response_codec(max_response_bytes: int) -> StructCodec[SyncResponse]:
    """The response codec bounded by the frame the transport carries."""
    return StructCodec(
        SyncResponse,
        [("blocks", ArrayOf(Bytes(MAX_MESSAGE_BYTES), MAX_SYNC_BLOCKS))],
        max_response_bytes,
    )


def block_budget_bytes(max_response_bytes: int, max_blocks: int) -> int:
    """Bytes of block encodings that fit a response of ``max_response_bytes``."""
    return max(0, max_response_bytes - ARRAY_OVERHEAD_BYTES * (max_blocks + 1))
