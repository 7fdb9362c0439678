"""XEdDSA proofs of possession of X25519 keys."""

from __future__ import annotations

import nacl.bindings as sodium
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from health import xeddsa

KEYS = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(private=KEYS, message=st.binary(max_size=200))
def test_a_signature_verifies_with_the_x25519_public_key_only(
    private: bytes, message: bytes
) -> None:
    public = bytes(PrivateKey(private).public_key)
    signature = xeddsa.sign(private, message)
    assert xeddsa.verify(public, message, signature)
    assert not xeddsa.verify(public, message + b"!", signature)
    other = bytes(PrivateKey(bytes(b ^ 0x55 for b in private)).public_key)
    assert not xeddsa.verify(other, message, signature)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not xeddsa.verify(public, message, tampered)


@settings(max_examples=40, deadline=None)
@given(seed=KEYS)
def test_the_montgomery_to_edwards_map_inverts_libsodiums(seed: bytes) -> None:
    edwards = bytes(SigningKey(seed).verify_key)
    montgomery = sodium.crypto_sign_ed25519_pk_to_curve25519(edwards)
    # XEdDSA's Edwards image has sign bit 0: equal to the original up to that bit
    assert xeddsa.edwards_public_key(montgomery) == edwards[:31] + bytes([edwards[31] & 0x7F])


def test_explicit_nonce_entropy_gives_different_valid_signatures() -> None:
    private = bytes(range(32))
    public = bytes(PrivateKey(private).public_key)
    first = xeddsa.sign(private, b"m", z=bytes(64))
    second = xeddsa.sign(private, b"m", z=bytes([1]) * 64)
    assert first != second
    assert xeddsa.verify(public, b"m", first) and xeddsa.verify(public, b"m", second)
    assert xeddsa.sign(private, b"m") == xeddsa.sign(private, b"m")  # deterministic default


def test_hostile_values_are_refused_without_raising() -> None:
    private = bytes(range(32))
    public = bytes(PrivateKey(private).public_key)
    signature = xeddsa.sign(private, b"m")
    minus_one = ((2**255 - 19) - 1).to_bytes(32, "little")
    for key, sig in (
        (public, signature[:63]),
        (public[:31], signature),
        (minus_one, signature),
        (public, bytes(64)),
        (bytes(32), signature),
    ):
        assert not xeddsa.verify(key, b"m", sig)
