"""Record envelopes: a health record encrypted once, its data key wrapped for each reader.

A record's content (a FHIR R4 JSON resource, as bytes) is encrypted with a fresh random
32-byte data key by XChaCha20-Poly1305 (IETF AEAD, 24-byte random nonce). The associated
data binds the ciphertext to its record id, owner and key epoch, so a custodian cannot
present one record's ciphertext as another's, nor an old epoch's as a new one's.

The data key is wrapped for the patient and for every current grantee with a sealed box
(X25519 + XSalsa20-Poly1305, an ephemeral sender key) to their published X25519 key; the
wrapped plaintext is ``data key ‖ record id``, so a reader also checks that the key it was
given is the key of the record it asked for.

The chain holds only the commitment: SHA-256 and size of the ciphertext (``commitment_of``).
The author signs a statement of the commitment (``commitment_statement``), so a custodian
can check a blob against the chain and its author before storing it.

Pure functions: the data key and the nonce come in as arguments (the client draws them
from the operating system's generator); only the sealed box draws its own ephemeral key
inside libsodium, as sealed boxes must. Errors are ``EnvelopeError`` with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

import msgpack
import nacl.bindings as sodium
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from crypto_core.signatures import sha256
from node.errors import BigHealthError

DATA_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 24
TAG_BYTES: Final = 16
RECORD_ID_BYTES: Final = 32
WRAPPED_KEY_BYTES: Final = 32 + 16 + DATA_KEY_BYTES + RECORD_ID_BYTES
"""A sealed box adds an ephemeral public key (32) and a MAC (16) to what it seals."""
MAX_PLAINTEXT_BYTES: Final = 1024 * 1024
"""Largest record content (the chain's ``max_record_bytes`` bounds the ciphertext too)."""
AAD_DOMAIN: Final = b"bighealth/record/v1"
COMMITMENT_DOMAIN: Final = b"bighealth/record-commitment/v1\x00"


class EnvelopeError(BigHealthError):
    """A record could not be sealed or opened; ``reason`` says why (for logs and audits):
    ``too_large``, ``bad_key``, ``not_for_this_record``, ``wrong_recipient``,
    ``tampered``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Commitment:
    """What the chain records of a ciphertext (``records.commit``)."""

    ciphertext_sha256: bytes
    size_bytes: int


def associated_data(record_id: bytes, owner: bytes, key_epoch: int) -> bytes:
    """The AEAD associated data of a record."""
    packed = msgpack.packb([AAD_DOMAIN, record_id, owner, key_epoch], use_bin_type=True)
    return cast(bytes, packed)


def seal(
    content: bytes,
    *,
    record_id: bytes,
    owner: bytes,
    key_epoch: int,
    data_key: bytes,
    nonce: bytes,
) -> bytes:
    """``nonce ‖ XChaCha20-Poly1305(content)``: the ciphertext custodians store."""
    if len(content) > MAX_PLAINTEXT_BYTES:
        raise EnvelopeError("too_large", f"a record holds at most {MAX_PLAINTEXT_BYTES} bytes")
    _check_sizes(record_id, data_key)
    if len(nonce) != NONCE_BYTES:
        raise EnvelopeError("bad_key", f"the nonce is {NONCE_BYTES} bytes")
    aad = associated_data(record_id, owner, key_epoch)
    body = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(content, aad, nonce, data_key)
    return nonce + bytes(body)


def open_sealed(
    ciphertext: bytes, *, record_id: bytes, owner: bytes, key_epoch: int, data_key: bytes
) -> bytes:
    """The content of ``ciphertext``; ``EnvelopeError("tampered")`` if the ciphertext, the
    record id, the owner, the epoch or the key is not the one it was sealed with."""
    _check_sizes(record_id, data_key)
    if len(ciphertext) < NONCE_BYTES + TAG_BYTES:
        raise EnvelopeError("tampered", "the ciphertext is too short")
    aad = associated_data(record_id, owner, key_epoch)
    nonce, body = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
    try:
        content = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(body, aad, nonce, data_key)
    except CryptoError as exc:
        raise EnvelopeError("tampered", "the record does not authenticate") from exc
    return bytes(content)


def wrap_key(data_key: bytes, record_id: bytes, recipient_public_key: bytes) -> bytes:
    """``data_key`` sealed for the holder of the X25519 key ``recipient_public_key``."""
    _check_sizes(record_id, data_key)
    try:
        box = SealedBox(PublicKey(recipient_public_key))
    except (CryptoError, TypeError, ValueError) as exc:
        raise EnvelopeError("bad_key", "not an X25519 public key") from exc
    return bytes(box.encrypt(data_key + record_id))


def unwrap_key(wrapped: bytes, record_id: bytes, private_key: bytes) -> bytes:
    """The data key of ``record_id`` from a key wrapped for ``private_key``'s holder."""
    try:
        plain = SealedBox(PrivateKey(private_key)).decrypt(wrapped)
    except (CryptoError, TypeError, ValueError) as exc:
        raise EnvelopeError("wrong_recipient", "the key was not wrapped for this key") from exc
    if len(plain) != DATA_KEY_BYTES + RECORD_ID_BYTES:
        raise EnvelopeError("tampered", "a wrapped key holds a data key and a record id")
    if plain[DATA_KEY_BYTES:] != record_id:
        raise EnvelopeError("not_for_this_record", "the wrapped key is another record's")
    return plain[:DATA_KEY_BYTES]


def rewrap_key(
    wrapped: bytes, record_id: bytes, private_key: bytes, recipient_public_key: bytes
) -> bytes:
    """A key wrapped for us, wrapped again for a new reader (a grant in practice)."""
    return wrap_key(unwrap_key(wrapped, record_id, private_key), record_id, recipient_public_key)


def commitment_of(ciphertext: bytes) -> Commitment:
    """The on-chain commitment of a ciphertext."""
    return Commitment(sha256(ciphertext), len(ciphertext))


def commitment_statement(
    *,
    chain_id: str,
    record_id: bytes,
    owner: bytes,
    resource_type: str,
    code: str,
    commitment: Commitment,
    key_epoch: int,
    data_time_ms: int,
) -> bytes:
    """What the author signs about a record it wrote (checked by custodians)."""
    packed = msgpack.packb(
        [
            chain_id,
            record_id,
            owner,
            resource_type,
            code,
            commitment.ciphertext_sha256,
            commitment.size_bytes,
            key_epoch,
            data_time_ms,
        ],
        use_bin_type=True,
    )
    return COMMITMENT_DOMAIN + cast(bytes, packed)


def _check_sizes(record_id: bytes, data_key: bytes) -> None:
    if len(record_id) != RECORD_ID_BYTES:
        raise EnvelopeError("bad_key", f"a record id is {RECORD_ID_BYTES} bytes")
    if len(data_key) != DATA_KEY_BYTES:
        raise EnvelopeError("bad_key", f"a data key is {DATA_KEY_BYTES} bytes")
