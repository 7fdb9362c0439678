"""Ed25519 helpers: sign/verify round trips, hostile values are False, wrong types raise, and
the shared verification memo answers like the real check."""

from __future__ import annotations

import pytest

from crypto_core import signatures
from crypto_core.signatures import Ed25519KeyPair, sha256, shared_verification, verify

KEY = Ed25519KeyPair.from_seed(bytes(range(32)))


def test_round_trip_and_rfc8032_public_key() -> None:
    # RFC 8032 §7.1 TEST 1: the public key of the all-0x9d... seed.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    pair = Ed25519KeyPair.from_seed(seed)
    assert pair.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert pair.sign(b"").hex().startswith("e5564300c360ac729086e2cc806e828a")
    assert verify(pair.public_key, b"", pair.sign(b""))


@pytest.mark.parametrize(
    ("public_key", "message", "signature"),
    [
        (KEY.public_key, b"other", KEY.sign(b"msg")),
        (KEY.public_key[:31], b"msg", KEY.sign(b"msg")),
        (KEY.public_key, b"msg", KEY.sign(b"msg")[:63]),
        (bytes(32), b"msg", KEY.sign(b"msg")),
        (b"\xff" * 32, b"msg", b"\xff" * 64),
    ],
)
def test_hostile_values_are_false(public_key: bytes, message: bytes, signature: bytes) -> None:
    assert verify(public_key, message, signature) is False


def test_wrong_types_and_seed_lengths_raise() -> None:
    with pytest.raises(TypeError, match="message must be bytes"):
        verify(KEY.public_key, "msg", KEY.sign(b"msg"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        Ed25519KeyPair.from_seed(b"short")
    with pytest.raises(TypeError):
        sha256("text")  # type: ignore[arg-type]


def test_repr_never_shows_the_seed() -> None:
    assert KEY.seed.hex() not in repr(KEY)


def test_shared_memo_answers_like_the_real_check_and_is_bounded() -> None:
    good = KEY.sign(b"a")
    with shared_verification(capacity=2) as memo:
        assert verify(KEY.public_key, b"a", good) and verify(KEY.public_key, b"a", good)
        assert not verify(KEY.public_key, b"b", good) and not verify(KEY.public_key, b"b", good)
        assert (memo.misses, memo.hits) == (2, 2)
        verify(KEY.public_key, b"c", good)  # a third answer pushes the oldest out
        assert verify(KEY.public_key, b"a", good)
        assert memo.misses == 4
        assert verify(bytearray(KEY.public_key), b"a", good)  # type: ignore[arg-type]
    assert signatures._shared_memo is None
