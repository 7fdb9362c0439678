"""Frames over an abstract byte stream, under trio.

``ByteStream`` is the little the adapters need from a stream (a libp2p stream, or a trio
memory stream in tests): read some bytes, write bytes, close our side, reset. Implementations
return ``b""`` at end of stream and raise ``StreamBrokenError`` when the stream or its
connection fails, so nothing library-specific leaks past them.
"""

from __future__ import annotations

from typing import Final, Protocol

import trio

from node.adapters.errors import MalformedFrameError
from node.adapters.framing import FrameDecoder, encode_frame

READ_CHUNK_BYTES: Final = 64 * 1024
RESET_TIMEOUT_S: Final = 1.0  # resetting a stream must not hold a cancelled task for long


class ByteStream(Protocol):
    """A bidirectional byte stream."""

    async def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes (at least one), or ``b""`` at end of stream."""
        ...

    async def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        ...

    async def close(self) -> None:
        """Finish our side gracefully (the peer reads end of stream after what we wrote)."""
        ...

    async def reset(self) -> None:
        """Abort the stream in both directions; never raises."""
        ...


class FrameReader:
    """Reads whole frames from a ``ByteStream`` (see ``node.adapters.framing``)."""

    def __init__(
        self, stream: ByteStream, max_frame_bytes: int, read_chunk_bytes: int = READ_CHUNK_BYTES
    ) -> None:
        self.stream = stream
        self.read_chunk_bytes = read_chunk_bytes
        self._decoder = FrameDecoder(max_frame_bytes)

    @property
    def started_frame(self) -> bool:
        """True when part of a frame has been read (a peer has begun to answer)."""
        return not self._decoder.at_boundary()

    async def read_frame(self) -> bytes | None:
        """The next payload, or ``None`` when the stream ends cleanly between frames.

        ``MalformedFrameError`` if it ends mid-frame or the prefix is bad,
        ``FrameTooLargeError`` above the limit; ``StreamBrokenError`` from the stream."""
        while True:
            frame = self._decoder.next_frame()
            if frame is not None:
                return frame
            chunk = await self.stream.read(self.read_chunk_bytes)
            if not chunk:
                if self._decoder.at_boundary():
                    return None
                raise MalformedFrameError("the stream ended in the middle of a frame")
            self._decoder.feed(chunk)


async def write_frame(stream: ByteStream, payload: bytes, max_frame_bytes: int) -> None:
    """Write ``payload`` as one frame (``FrameTooLargeError`` before writing if too large)."""
    await stream.write(encode_frame(payload, max_frame_bytes))


async def reset_quietly(stream: ByteStream) -> None:
    """Reset ``stream`` even from a cancelled task, giving up after ``RESET_TIMEOUT_S``."""
    with trio.CancelScope(shield=True), trio.move_on_after(RESET_TIMEOUT_S):
        await stream.reset()


async def close_quietly(stream: ByteStream) -> None:
    """Close ``stream`` gracefully if that works at once, else reset it."""
    try:
        with trio.move_on_after(RESET_TIMEOUT_S) as scope:
            await stream.close()
        if scope.cancelled_caught:
            await reset_quietly(stream)
    except Exception:  # the stream is going away in any case
        await reset_quietly(stream)
