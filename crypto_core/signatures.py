"""Ed25519 signatures and SHA-256, the only primitives the rest of the project signs with.

Contract: signing needs a 32-byte seed (the Ed25519 private key); verification never raises on
adversarial content — a wrong-length key or signature, or a forged one, is simply ``False``.
Arguments of the wrong Python type raise ``TypeError``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64
DIGEST_SIZE = 32


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data`` (32 bytes)."""
    _require_bytes("data", data)
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Ed25519KeyPair:
    """An Ed25519 key pair held as its 32-byte seed; the public key is derived once."""

    seed: bytes
    public_key: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519KeyPair:
        """Derive the key pair of a 32-byte seed; raises ValueError for another length."""
        _require_bytes("seed", seed)
        if len(seed) != SEED_SIZE:
            raise ValueError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")
        public_key = bytes(SigningKey(seed).verify_key)
        return cls(seed=bytes(seed), public_key=public_key)

    @classmethod
    def generate(cls) -> Ed25519KeyPair:
        """A fresh key pair from the operating system's randomness (for the shell only)."""
        return cls.from_seed(bytes(SigningKey.generate()))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of ``message``."""
        _require_bytes("message", message)
        return SigningKey(self.seed).sign(message).signature

    def __repr__(self) -> str:  # never print the seed
        return f"Ed25519KeyPair(public_key={self.public_key.hex()})"


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` under ``public_key``."""
    _require_bytes("public_key", public_key)
    _require_bytes("message", message)
    _require_bytes("signature", signature)
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


def _require_bytes(name: str, value: object) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
