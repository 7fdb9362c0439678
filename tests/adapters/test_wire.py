"""Payload formats: direct messages, responses, the gossip envelope."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.adapters.errors import MalformedMessageError
from node.adapters.wire import (
    GOSSIP_HEADER_BYTES,
    MAX_REASON_BYTES,
    Response,
    ResponseStatus,
    decode_direct,
    decode_gossip,
    decode_response,
    encode_direct,
    encode_failure,
    encode_gossip,
    encode_ok,
)

topics = st.from_regex(r"[a-z0-9][a-z0-9/_.-]{0,63}", fullmatch=True)


@given(topics, st.binary(max_size=200))
def test_direct_messages_round_trip(topic: str, data: bytes) -> None:
    assert decode_direct(encode_direct(topic, data)) == (topic, data)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "empty"),
        (b"\x05ab", "shorter"),
        (b"\x02\xff\xfe", "ASCII"),
        (b"\x02A!", "invalid topic"),
        (b"\x00data", "invalid topic"),
    ],
)
def test_malformed_direct_messages_are_refused(payload: bytes, why: str) -> None:
    with pytest.raises(MalformedMessageError, match=why):
        decode_direct(payload)


def test_responses_round_trip_and_reasons_are_bounded_and_printable() -> None:
    assert decode_response(encode_ok(b"body")) == Response(ResponseStatus.OK, body=b"body")
    busy = decode_response(encode_failure(ResponseStatus.BUSY, "full"))
    assert busy == Response(ResponseStatus.BUSY, reason="full")
    long = decode_response(encode_failure(ResponseStatus.ERROR, "x" * 1000))
    assert long.reason == "x" * MAX_REASON_BYTES
    hostile = decode_response(bytes([ResponseStatus.ERROR]) + b"bad\x1b[2Jthing\n")
    assert hostile.reason == "bad?[2Jthing?"
    with pytest.raises(ValueError):
        encode_failure(ResponseStatus.OK, "not a failure")


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x07", bytes([ResponseStatus.ERROR]) + b"x" * (MAX_REASON_BYTES + 1)],
)
def test_malformed_responses_are_refused(payload: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        decode_response(payload)


@given(st.binary(min_size=8, max_size=8), st.integers(0, (1 << 64) - 1), st.binary(max_size=64))
def test_gossip_envelope_round_trips(epoch: bytes, sequence: int, data: bytes) -> None:
    envelope = decode_gossip(encode_gossip(epoch, sequence, data))
    assert (envelope.epoch, envelope.sequence, envelope.data) == (epoch, sequence, data)


def test_gossip_envelope_refuses_short_or_unknown_versions() -> None:
    with pytest.raises(MalformedMessageError, match="shorter"):
        decode_gossip(b"\x01" * (GOSSIP_HEADER_BYTES - 1))
    with pytest.raises(MalformedMessageError, match="version"):
        decode_gossip(b"\x02" + bytes(GOSSIP_HEADER_BYTES))
    with pytest.raises(ValueError):
        encode_gossip(b"short", 0, b"")
    with pytest.raises(ValueError):
        encode_gossip(bytes(8), 1 << 64, b"")
