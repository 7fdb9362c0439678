"""``ByteStream`` over trio's in-memory streams, for testing the stream code without libp2p."""

from __future__ import annotations

import trio
import trio.testing

from node.adapters.errors import StreamBrokenError


class MemoryByteStream:
    """One end of a ``trio.testing.memory_stream_pair`` as a ``ByteStream``."""

    def __init__(self, stream: trio.StapledStream) -> None:
        self.stream = stream
        self.was_reset = False

    async def read(self, max_bytes: int) -> bytes:
        try:
            return await self.stream.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamBrokenError(str(exc)) from exc

    async def write(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamBrokenError(str(exc)) from exc

    async def close(self) -> None:
        try:
            await self.stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamBrokenError(str(exc)) from exc

    async def reset(self) -> None:
        self.was_reset = True
        await self.stream.aclose()


def byte_stream_pair() -> tuple[MemoryByteStream, MemoryByteStream]:
    """Two connected ends."""
    left, right = trio.testing.memory_stream_pair()
    return MemoryByteStream(left), MemoryByteStream(right)
