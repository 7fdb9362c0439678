"""Deterministic keys, validator sets and signed transactions for tests and simulations.

Every key comes from a seed derived from a label (``SHA-256("<namespace>/<label>")``), so a
test or a simulation run names its actors and gets the same keys on every machine. These
keys are public knowledge: never use them outside tests and simulations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto_core.signatures import Ed25519KeyPair, sha256
from node.codec import TX_CODEC, sign_transaction
from node.ports import Signer
from node.types import Transaction, UnsignedTransaction, Validator

DEFAULT_NAMESPACE = "bighealth/test-key"
DEFAULT_VOTING_POWER = 10


def key_pair(label: str | int, *, namespace: str = DEFAULT_NAMESPACE) -> Ed25519KeyPair:
    """The key pair of ``label`` in ``namespace`` (same label, same key, everywhere)."""
    return Ed25519KeyPair.from_seed(sha256(f"{namespace}/{label}".encode()))


def key_pairs(
    count: int, *, prefix: str = "key", namespace: str = DEFAULT_NAMESPACE
) -> tuple[Ed25519KeyPair, ...]:
    """``count`` key pairs labelled ``<prefix>-0`` .. ``<prefix>-<count-1>``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return tuple(key_pair(f"{prefix}-{i}", namespace=namespace) for i in range(count))


@dataclass(frozen=True, slots=True)
class ValidatorFixture:
    """A validator set and the keys of its members (same order)."""

    keys: tuple[Ed25519KeyPair, ...]
    validators: tuple[Validator, ...]

    def key_of(self, public_key: bytes) -> Ed25519KeyPair:
        """The key pair of a member (``KeyError`` for a non-member)."""
        for key in self.keys:
            if key.public_key == public_key:
                return key
        raise KeyError(public_key.hex())


def make_validators(
    count: int,
    *,
    voting_power: int | tuple[int, ...] = DEFAULT_VOTING_POWER,
    prefix: str = "validator",
) -> ValidatorFixture:
    """``count`` validators with deterministic keys; ``voting_power`` is one power for all or
    one per validator."""
    powers = (voting_power,) * count if isinstance(voting_power, int) else voting_power
    if len(powers) != count or any(p <= 0 for p in powers):
        raise ValueError("need one positive voting power per validator")
    keys = key_pairs(count, prefix=prefix)
    validators = tuple(
        Validator(public_key=k.public_key, voting_power=p)
        for k, p in zip(keys, powers, strict=True)
    )
    return ValidatorFixture(keys=keys, validators=validators)


@dataclass
class TxFactory:
    """Signs transactions for one chain, numbering each sender's nonces from 0 (or from what
    ``set_nonce`` says) so a test can write ``factory.encoded(alice, "kv.set", payload)``."""

    chain_id: str
    _next_nonce: dict[bytes, int] = field(default_factory=dict)

    def make(
        self,
        signer: Signer,
        kind: str,
        payload: bytes = b"",
        *,
        priority: int = 0,
        nonce: int | None = None,
    ) -> Transaction:
        """A signed transaction; without ``nonce``, the sender's next one (then advanced)."""
        sender = signer.public_key
        if nonce is None:
            nonce = self._next_nonce.get(sender, 0)
            self._next_nonce[sender] = nonce + 1
        unsigned = UnsignedTransaction(
            chain_id=self.chain_id,
            sender=sender,
            nonce=nonce,
            kind=kind,
            payload=payload,
            priority=priority,
        )
        return sign_transaction(unsigned, signer)

    def encoded(
        self,
        signer: Signer,
        kind: str,
        payload: bytes = b"",
        *,
        priority: int = 0,
        nonce: int | None = None,
    ) -> bytes:
        """Like ``make``, as canonical bytes."""
        return TX_CODEC.encode(self.make(signer, kind, payload, priority=priority, nonce=nonce))

    def set_nonce(self, sender: bytes, next_nonce: int) -> None:
        """Continue numbering ``sender``'s transactions at ``next_nonce``."""
        self._next_nonce[sender] = next_nonce
