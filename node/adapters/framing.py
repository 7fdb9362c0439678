"""Length-prefixed frames on a byte stream, sans-I/O.

A frame is ``uvarint(len(payload)) || payload``: the unsigned LEB128 varint of libp2p's
multiformats (``unsigned-varint``), minimal encoding only, so one payload has one framing.
``FrameDecoder`` turns bytes read from a stream, in chunks of any size, back into payloads;
it refuses a length above its limit as soon as the prefix is complete (before a single byte
of the body is buffered), so a peer cannot make us hold more than one frame's worth.
"""

from __future__ import annotations

from typing import Final

from node.adapters.errors import FrameTooLargeError, MalformedFrameError

MAX_VARINT_BYTES: Final = 5  # 5 x 7 bits: lengths below 2^35, far above any frame limit
HARD_MAX_FRAME_BYTES: Final = 64 * 1024 * 1024  # no configuration may allow more
_COMPACT_AFTER_BYTES: Final = 64 * 1024  # drop consumed bytes from the buffer past this


def encode_uvarint(value: int) -> bytes:
    """The minimal unsigned LEB128 encoding of ``value`` (``0 <= value < 2^35``)."""
    if value < 0 or value >= 1 << (7 * MAX_VARINT_BYTES):
        raise ValueError(f"uvarint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_uvarint(data: bytes | bytearray | memoryview, start: int = 0) -> tuple[int, int] | None:
    """``(value, end)`` of the varint at ``data[start:]``, or ``None`` if it is incomplete.

    ``MalformedFrameError`` for a varint longer than ``MAX_VARINT_BYTES`` or not minimal
    (a trailing ``0x00`` byte after a continuation)."""
    value = 0
    for index in range(MAX_VARINT_BYTES):
        position = start + index
        if position >= len(data):
            return None
        byte = data[position]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if byte == 0 and index > 0:
                raise MalformedFrameError("length prefix is not a minimal varint")
            return value, position + 1
    raise MalformedFrameError(f"length prefix longer than {MAX_VARINT_BYTES} bytes")


def check_frame_limit(max_frame_bytes: int) -> int:
    """``max_frame_bytes`` if it is a usable limit (1 .. ``HARD_MAX_FRAME_BYTES``)."""
    if not 1 <= max_frame_bytes <= HARD_MAX_FRAME_BYTES:
        raise ValueError(
            f"max_frame_bytes must be 1..{HARD_MAX_FRAME_BYTES}, got {max_frame_bytes}"
        )
    return max_frame_bytes


def encode_frame(payload: bytes, max_frame_bytes: int) -> bytes:
    """``payload`` with its length prefix; ``FrameTooLargeError`` above ``max_frame_bytes``."""
    if len(payload) > max_frame_bytes:
        raise FrameTooLargeError(
            f"a frame of {len(payload)} bytes exceeds the limit of {max_frame_bytes} bytes"
        )
    return encode_uvarint(len(payload)) + payload


class FrameDecoder:
    """Reassembles frames from stream chunks.

    Usage: ``feed(chunk)`` then ``next_frame()`` until it returns ``None``, then read more.
    Fed that way the buffer never holds more than one partial frame plus one chunk.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = check_frame_limit(max_frame_bytes)
        self._buffer = bytearray()
        self._start = 0  # bytes of _buffer already consumed
        self._body_bytes: int | None = None  # length of the frame being assembled

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        if self._start >= _COMPACT_AFTER_BYTES:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete payload, or ``None`` until more bytes are fed.

        ``FrameTooLargeError`` if a peer announces a frame above the limit and
        ``MalformedFrameError`` for a bad prefix; the stream cannot be resynchronised after
        either, so the caller drops it."""
        if self._body_bytes is None:
            header = decode_uvarint(self._buffer, self._start)
            if header is None:
                return None
            length, body_start = header
            if length > self.max_frame_bytes:
                raise FrameTooLargeError(
                    f"peer announced a frame of {length} bytes; the limit is "
                    f"{self.max_frame_bytes} bytes"
                )
            self._body_bytes = length
            self._start = body_start
        end = self._start + self._body_bytes
        if end > len(self._buffer):
            return None
        payload = bytes(self._buffer[self._start : end])
        self._start = end
        self._body_bytes = None
        if self._start == len(self._buffer):
            self._buffer.clear()
            self._start = 0
        return payload

    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (a clean place for the stream to end)."""
        return self._body_bytes is None and self.buffered_bytes == 0
