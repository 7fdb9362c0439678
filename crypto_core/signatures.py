"""Ed25519 signatures and SHA-256, the only primitives the rest of the project signs with.

Contract: signing needs a 32-byte seed (the Ed25519 private key); verification never raises on
adversarial content — a wrong-length key or signature, or a forged one, is simply ``False``.
Arguments of the wrong Python type raise ``TypeError``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64
DIGEST_SIZE = 32
# Answers a VerificationMemo keeps by default (~20 MB of keys, messages and signatures).
DEFAULT_MEMO_ENTRIES = 100_000


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
        return SigningKey(self.seed).sign(bytes(message)).signature

    def __repr__(self) -> str:  # never print the seed
        return f"Ed25519KeyPair(public_key={self.public_key.hex()})"


Verify = Callable[[bytes, bytes, bytes], bool]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` under ``public_key``.

    Inside ``shared_verification()`` the answer may come from the process's memo.
    """
    _require_bytes("public_key", public_key)
    _require_bytes("message", message)
    _require_bytes("signature", signature)
    memo = _shared_memo
    if memo is not None:
        return memo(public_key, message, signature)
    return _verify_checked(public_key, message, signature)


def _verify_checked(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """``verify`` on arguments already known to be bytes-like."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        VerifyKey(bytes(public_key)).verify(bytes(message), bytes(signature))
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


def _require_bytes(name: str, value: object) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


class VerificationMemo:
    """A bounded memo of verification answers in front of ``verify_fn`` (oldest forgotten
    first: a signature is checked by many nodes within moments, rarely later).

    Verification is a pure function of (public key, message, signature), so remembering its
    answer changes nothing but the time taken. Only ``bytes`` arguments are remembered.
    """

    __slots__ = ("_answers", "_capacity", "_verify", "hits", "misses")

    def __init__(self, verify_fn: Verify, capacity: int = DEFAULT_MEMO_ENTRIES) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._verify = verify_fn
        self._capacity = capacity
        # An OrderedDict: dropping a plain dict's first key scans past every key deleted
        # before it, an insert then costs microseconds per thousand entries.
        self._answers: OrderedDict[tuple[bytes, bytes, bytes], bool] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __call__(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """``verify_fn(public_key, message, signature)``, remembered."""
        if not (type(public_key) is bytes and type(message) is bytes and type(signature) is bytes):
            return self._verify(public_key, message, signature)
        key = (public_key, message, signature)
        answer = self._answers.get(key)
        if answer is not None:
            self.hits += 1
            return answer
        self.misses += 1
        answer = self._verify(public_key, message, signature)
        answers = self._answers
        if len(answers) >= self._capacity:
            answers.popitem(last=False)  # the oldest
        answers[key] = answer
        return answer


_shared_memo: VerificationMemo | None = None


@contextmanager
def shared_verification(capacity: int = DEFAULT_MEMO_ENTRIES) -> Iterator[VerificationMemo]:
    """Within the block, every ``verify`` call of this process goes through one memo.

    For simulators that run many nodes in one process, where the same vote is verified by
    every simulated node; a real node has no use for it. Not reentrant (RuntimeError).
    """
    global _shared_memo  # noqa: PLW0603  (the one process-wide switch, scoped by the block)
    if _shared_memo is not None:
        raise RuntimeError("signature verification is already shared in this process")
    memo = VerificationMemo(_verify_checked, capacity)
    _shared_memo = memo
    try:
        yield memo
    finally:
        _shared_memo = None
