"""The hello exchanged on connect: canonical, bounded, and judged by chain id and version."""

from __future__ import annotations

import msgpack
import pytest

from node.adapters.errors import ChainMismatchError, HandshakeError
from node.adapters.handshake import (
    MAX_STATUS_BYTES,
    NETWORK_PROTOCOL_VERSION,
    Hello,
    check_hello,
    decode_hello,
    encode_hello,
)

HELLO = Hello(NETWORK_PROTOCOL_VERSION, "chain-a", "bighealth/test", b"\x01\x02")


def test_hello_round_trips() -> None:
    assert decode_hello(encode_hello(HELLO)) == HELLO


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # reserved msgpack byte
        msgpack.packb([1, "chain-a", "agent"]),  # a field missing
        msgpack.packb([1, "chain a!", "agent", b""]),  # chain id outside its pattern
        msgpack.packb([1, "chain-a", "agent", b"x" * (MAX_STATUS_BYTES + 1)]),
        msgpack.packb([1, "chain-a", "agent", b""]) + b"\x00",  # trailing bytes
    ],
)
def test_malformed_hellos_raise_handshake_errors(data: bytes) -> None:
    with pytest.raises(HandshakeError):
        decode_hello(data)


def test_a_hello_of_another_chain_or_version_is_refused() -> None:
    check_hello("chain-a", HELLO)
    with pytest.raises(ChainMismatchError, match="chain-b"):
        check_hello("chain-b", HELLO)
    future = Hello(NETWORK_PROTOCOL_VERSION + 1, "chain-a", "x", b"")
    with pytest.raises(HandshakeError, match="version"):
        check_hello("chain-a", future)


def test_our_own_hello_must_be_in_bounds() -> None:
    with pytest.raises(ValueError):
        encode_hello(Hello(1, "chain-a", "x", b"s" * (MAX_STATUS_BYTES + 1)))
