"""Length-prefixed framing: round trips in any chunking, limits enforced before buffering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.adapters.errors import FrameTooLargeError, MalformedFrameError
from node.adapters.framing import (
    HARD_MAX_FRAME_BYTES,
    MAX_VARINT_BYTES,
    FrameDecoder,
    decode_uvarint,
    encode_frame,
    encode_uvarint,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_uvarint_matches_the_multiformats_vectors(value: int, encoded: bytes) -> None:
    assert encode_uvarint(value) == encoded
    assert decode_uvarint(encoded) == (value, len(encoded))


@given(st.integers(min_value=0, max_value=(1 << 35) - 1))
def test_uvarint_round_trips(value: int) -> None:
    encoded = encode_uvarint(value)
    assert len(encoded) <= MAX_VARINT_BYTES
    assert decode_uvarint(encoded + b"tail") == (value, len(encoded))


def test_uvarint_refuses_non_minimal_and_overlong_encodings() -> None:
    with pytest.raises(MalformedFrameError, match="minimal"):
        decode_uvarint(b"\x80\x00")
    with pytest.raises(MalformedFrameError, match="longer"):
        decode_uvarint(b"\xff" * 6)
    assert decode_uvarint(b"\x80") is None  # incomplete, not wrong
    with pytest.raises(ValueError):
        encode_uvarint(-1)


@settings(max_examples=60)
@given(
    st.lists(st.binary(max_size=300), max_size=12),
    st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=8),
)
def test_frames_survive_any_chunking(payloads: list[bytes], chunk_sizes: list[int]) -> None:
    stream = b"".join(encode_frame(p, 300) for p in payloads)
    decoder = FrameDecoder(300)
    got: list[bytes] = []
    position = 0
    turn = 0
    while position < len(stream):
        size = chunk_sizes[turn % len(chunk_sizes)]
        decoder.feed(stream[position : position + size])
        position += size
        turn += 1
        while (frame := decoder.next_frame()) is not None:
            got.append(frame)
    assert got == payloads
    assert decoder.at_boundary()


def test_an_announced_oversize_frame_is_refused_before_its_body_arrives() -> None:
    decoder = FrameDecoder(100)
    decoder.feed(encode_uvarint(101))
    with pytest.raises(FrameTooLargeError, match="101 bytes"):
        decoder.next_frame()
    assert decoder.buffered_bytes <= MAX_VARINT_BYTES


def test_encode_refuses_oversize_payloads_and_limits_are_checked() -> None:
    with pytest.raises(FrameTooLargeError):
        encode_frame(b"x" * 11, 10)
    assert encode_frame(b"x" * 10, 10) == b"\x0a" + b"x" * 10
    with pytest.raises(ValueError):
        FrameDecoder(0)
    with pytest.raises(ValueError):
        FrameDecoder(HARD_MAX_FRAME_BYTES + 1)


def test_many_frames_in_one_chunk_then_a_partial_one() -> None:
    decoder = FrameDecoder(1024)
    frames = [bytes([i % 251]) * (i % 97) for i in range(3000)]
    stream = b"".join(encode_frame(f, 1024) for f in frames)
    tail = encode_frame(b"t" * 600, 1024)
    decoder.feed(stream + tail[:300])
    got = []
    while (frame := decoder.next_frame()) is not None:
        got.append(frame)
    assert got == frames
    assert decoder.buffered_bytes == 300 - 2  # the tail's body so far (its 2-byte prefix read)
    assert not decoder.at_boundary()
    decoder.feed(tail[300:])
    assert decoder.next_frame() == b"t" * 600
    assert decoder.at_boundary()
