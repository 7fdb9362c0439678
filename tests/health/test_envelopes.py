"""Record envelopes: round trips, tampering, wrong keys, re-wrapping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from health.envelopes import (
    DATA_KEY_BYTES,
    NONCE_BYTES,
    WRAPPED_KEY_BYTES,
    EnvelopeError,
    commitment_of,
    commitment_statement,
    open_sealed,
    rewrap_key,
    seal,
    unwrap_key,
    wrap_key,
)

RECORD = bytes(range(32))
OWNER = bytes([7]) * 32
KEY = bytes([1]) * DATA_KEY_BYTES
NONCE = bytes([2]) * NONCE_BYTES
PATIENT = PrivateKey(bytes([3]) * 32)
DOCTOR = PrivateKey(bytes([4]) * 32)
STRANGER = PrivateKey(bytes([5]) * 32)
CONTENT = b'{"resourceType":"Observation","valueQuantity":{"value":142}}'


def _sealed() -> bytes:
    return seal(CONTENT, record_id=RECORD, owner=OWNER, key_epoch=0, data_key=KEY, nonce=NONCE)


@settings(max_examples=50, deadline=None)
@given(
    content=st.binary(max_size=2048),
    epoch=st.integers(0, 2**32),
    key=st.binary(min_size=32, max_size=32),
)
def test_a_record_opens_with_its_key_and_binding(content: bytes, epoch: int, key: bytes) -> None:
    sealed = seal(
        content, record_id=RECORD, owner=OWNER, key_epoch=epoch, data_key=key, nonce=NONCE
    )
    opened = open_sealed(sealed, record_id=RECORD, owner=OWNER, key_epoch=epoch, data_key=key)
    assert opened == content
    assert commitment_of(sealed).size_bytes == len(content) + 40


@pytest.mark.parametrize(
    ("record_id", "owner", "epoch", "key"),
    [
        (bytes(32), OWNER, 0, KEY),  # another record's id
        (RECORD, bytes(32), 0, KEY),  # another owner
        (RECORD, OWNER, 1, KEY),  # another key epoch
        (RECORD, OWNER, 0, bytes(32)),  # another data key
    ],
)
def test_the_binding_and_the_key_are_checked(
    record_id: bytes, owner: bytes, epoch: int, key: bytes
) -> None:
    with pytest.raises(EnvelopeError) as failure:
        open_sealed(_sealed(), record_id=record_id, owner=owner, key_epoch=epoch, data_key=key)
    assert failure.value.reason == "tampered"


def test_any_flipped_bit_is_detected() -> None:
    sealed = _sealed()
    for index in (0, NONCE_BYTES, len(sealed) // 2, len(sealed) - 1):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x10
        with pytest.raises(EnvelopeError, match="authenticate"):
            open_sealed(bytes(tampered), record_id=RECORD, owner=OWNER, key_epoch=0, data_key=KEY)
    with pytest.raises(EnvelopeError):
        open_sealed(sealed[:30], record_id=RECORD, owner=OWNER, key_epoch=0, data_key=KEY)


def test_wrapped_keys_open_only_for_their_recipient_and_record() -> None:
    wrapped = wrap_key(KEY, RECORD, bytes(PATIENT.public_key))
    assert len(wrapped) == WRAPPED_KEY_BYTES
    assert unwrap_key(wrapped, RECORD, bytes(PATIENT)) == KEY
    with pytest.raises(EnvelopeError) as failure:
        unwrap_key(wrapped, RECORD, bytes(STRANGER))
    assert failure.value.reason == "wrong_recipient"
    with pytest.raises(EnvelopeError) as failure:
        unwrap_key(wrapped, bytes(32), bytes(PATIENT))
    assert failure.value.reason == "not_for_this_record"


def test_a_patient_rewraps_a_key_for_a_new_grantee() -> None:
    wrapped = wrap_key(KEY, RECORD, bytes(PATIENT.public_key))
    for_doctor = rewrap_key(wrapped, RECORD, bytes(PATIENT), bytes(DOCTOR.public_key))
    data_key = unwrap_key(for_doctor, RECORD, bytes(DOCTOR))
    assert (
        open_sealed(_sealed(), record_id=RECORD, owner=OWNER, key_epoch=0, data_key=data_key)
        == CONTENT
    )
    with pytest.raises(EnvelopeError):
        rewrap_key(wrapped, RECORD, bytes(STRANGER), bytes(DOCTOR.public_key))


def test_bad_sizes_are_typed_errors() -> None:
    with pytest.raises(EnvelopeError, match="data key"):
        seal(b"x", record_id=RECORD, owner=OWNER, key_epoch=0, data_key=b"short", nonce=NONCE)
    with pytest.raises(EnvelopeError, match="nonce"):
        seal(b"x", record_id=RECORD, owner=OWNER, key_epoch=0, data_key=KEY, nonce=b"n")
    with pytest.raises(EnvelopeError, match="record id"):
        wrap_key(KEY, b"id", bytes(PATIENT.public_key))
    with pytest.raises(EnvelopeError, match="X25519"):
        wrap_key(KEY, RECORD, b"not a key")
    with pytest.raises(EnvelopeError) as failure:
        seal(
            bytes(2 * 1024 * 1024),
            record_id=RECORD,
            owner=OWNER,
            key_epoch=0,
            data_key=KEY,
            nonce=NONCE,
        )
    assert failure.value.reason == "too_large"


def test_the_commitment_statement_binds_every_field() -> None:
    commitment = commitment_of(_sealed())
    base = {
        "chain_id": "c",
        "record_id": RECORD,
        "owner": OWNER,
        "resource_type": "Observation",
        "code": "http://loinc.org|41653-7",
        "commitment": commitment,
        "key_epoch": 0,
        "data_time_ms": 5,
    }
    statement = commitment_statement(**base)  # type: ignore[arg-type]
    for field, other in (("chain_id", "d"), ("code", "x"), ("data_time_ms", 6), ("key_epoch", 1)):
        assert commitment_statement(**{**base, field: other}) != statement  # type: ignore[arg-type]
