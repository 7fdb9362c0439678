"""XEdDSA: Ed25519-verifiable signatures made with an X25519 (Montgomery) private key.

Why: an identity publishes an X25519 encryption key on chain, and the chain must refuse a
key its publisher does not hold (else anyone could publish a victim's key as their own and
receive data keys wrapped for it, or stop records being wrapped for the victim). An X25519
key cannot sign, so the proof of possession is an XEdDSA signature (Signal's
specification, "The XEdDSA and VXEdDSA Signature Schemes", rev. 1, 2016) by that key over
the registration statement, checked by the chain with a plain Ed25519 verification.

How: the Montgomery public key ``u`` maps to the Edwards point with ``y = (u - 1) / (u + 1)``
and sign bit 0. The signer computes its Edwards key pair from the Montgomery scalar,
negating the scalar when the point's sign bit is 1 so the public point always has sign bit
0; it then signs as Ed25519 does, with the nonce ``r = H1(a ‖ M ‖ Z) mod q``. ``Z`` is
derived from the key and message here (deterministic, as in RFC 8032) unless given: this
module is pure (no ambient randomness) and the statement it signs is public anyway.

Pure functions over PyNaCl (libsodium's Ed25519 arithmetic); no state, no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Final

import nacl.bindings as sodium
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
_P: Final = 2**255 - 19
_HASH1_PREFIX: Final = b"\xfe" + b"\xff" * 31
"""``2^256 - 2`` little-endian: XEdDSA's domain separation of the nonce hash (hash_1)."""


def _clamp(scalar: bytes) -> bytes:
    clamped = bytearray(scalar)
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    return bytes(clamped)


def _reduce(data: bytes) -> bytes:
    """``data`` (up to 64 bytes, little-endian) modulo the group order q."""
    return bytes(sodium.crypto_core_ed25519_scalar_reduce(data.ljust(64, b"\x00")))


def edwards_public_key(montgomery_public_key: bytes) -> bytes:
    """The Edwards point (sign bit 0) of an X25519 public key: what XEdDSA signatures by
    that key verify against. ``ValueError`` for a key of the wrong size or the point
    ``u = -1`` (no Edwards image)."""
    if type(montgomery_public_key) is not bytes or len(montgomery_public_key) != KEY_BYTES:
        raise ValueError(f"an X25519 public key is {KEY_BYTES} bytes")
    u = int.from_bytes(montgomery_public_key, "little") & ((1 << 255) - 1)
    if (u + 1) % _P == 0:
        raise ValueError("the X25519 key u = -1 has no Edwards form")
    y = (u - 1) * pow(u + 1, _P - 2, _P) % _P
    return y.to_bytes(KEY_BYTES, "little")


def _edwards_key_pair(montgomery_private_key: bytes) -> tuple[bytes, bytes]:
    """``(A, a)``: the Edwards public point with sign bit 0 and its scalar."""
    k = _clamp(montgomery_private_key)
    point = bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(k))
    scalar = _reduce(k)
    if point[31] & 0x80:
        scalar = bytes(sodium.crypto_core_ed25519_scalar_negate(scalar))
        point = point[:31] + bytes([point[31] & 0x7F])
    return point, scalar


def sign(montgomery_private_key: bytes, message: bytes, z: bytes | None = None) -> bytes:
    """An XEdDSA signature (``R ‖ s``, 64 bytes) of ``message`` by an X25519 private key.
    ``z``: 64 bytes of nonce entropy (default: derived from the key and the message)."""
    if type(montgomery_private_key) is not bytes or len(montgomery_private_key) != KEY_BYTES:
        raise ValueError(f"an X25519 private key is {KEY_BYTES} bytes")
    public, scalar = _edwards_key_pair(montgomery_private_key)
    if z is None:
        z = hashlib.sha512(b"bighealth/xeddsa-z/v1" + montgomery_private_key + message).digest()
    if len(z) != 64:
        raise ValueError("z is 64 bytes")
    r = _reduce(hashlib.sha512(_HASH1_PREFIX + scalar + message + z).digest())
    big_r = bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(r))
    h = _reduce(hashlib.sha512(big_r + public + message).digest())
    s = sodium.crypto_core_ed25519_scalar_add(r, sodium.crypto_core_ed25519_scalar_mul(h, scalar))
    return big_r + bytes(s)


def verify(montgomery_public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is an XEdDSA signature of ``message`` by the holder of the
    X25519 key. Never raises on hostile values of the right types."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        edwards = edwards_public_key(montgomery_public_key)
        VerifyKey(edwards).verify(message, signature)
    except (ValueError, BadSignatureError, TypeError):
        return False
    return True
