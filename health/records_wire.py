"""Wire messages of the record protocol ``/bighealth/records/1`` and what their signers sign.

Pure: no clock, no randomness (nonces and times come in as arguments), no I/O.

A request on the protocol is the msgpack array ``[kind, body]``:

- ``fetch``: ``body`` is ``FETCH_REQUEST_CODEC`` bytes. A reader (``requester``, an identity
  id) asks the custodian ``custodian`` (an identity id) for the ciphertext of ``record`` and
  the data key wrapped for the reader. Signed by the requester's current signing key over
  ``fetch_statement``.
- ``store``: ``body`` is ``STORE_REQUEST_CODEC`` bytes. A custodian of a record that lacks
  its blob (it was down when the record was uploaded) asks another custodian of the same
  record for the blob and every wrapped key (repair). Signed by the requesting custodian's
  current signing key over ``store_statement``.

An answer is ``[ok, body]``: ``[True, FETCH_RESPONSE_CODEC or STORE_RESPONSE_CODEC bytes]``
or ``[False, [reason, message]]`` with a ``RecordsError`` reason.

Wrapped keys added after the upload (a grant: the patient re-wraps the data key for the
grantee) are signed by the record's owner over ``keys_statement``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

import msgpack

from health.contracts.common import ID_BYTES
from health.envelopes import WRAPPED_KEY_BYTES
from node.codec import ArrayOf, Bytes, Nested, StructCodec, UInt
from node.errors import BigHealthError, DecodeError
from node.ports import Signer
from node.types import SIGNATURE_BYTES

PROTOCOL: Final = "/bighealth/records/1"
FETCH_DOMAIN: Final = b"bighealth/records-fetch/v1\x00"
STORE_DOMAIN: Final = b"bighealth/records-store/v1\x00"
KEYS_DOMAIN: Final = b"bighealth/records-keys/v1\x00"
NONCE_BYTES: Final = 16
MAX_WRAPPED_KEYS: Final = 64
"""Wrapped keys one record holds at most (the vault's default limit; the store answer's)."""
MAX_CIPHERTEXT_BYTES: Final = 16 * 1024 * 1024 + 64
"""The largest ciphertext a response may carry (the chain's ``max_record_bytes`` ceiling and
the envelope's overhead); a vault keeps its own, smaller limit."""
MAX_REQUEST_BYTES: Final = 1024
"""A request envelope is small: ids, a nonce, a time and a signature."""
MAX_ANSWER_BYTES: Final = MAX_CIPHERTEXT_BYTES + MAX_WRAPPED_KEYS * 256 + 1024
MAX_MESSAGE_CHARS: Final = 256
"""An error message in an answer is cut to this length."""

KIND_FETCH: Final = "fetch"
KIND_STORE: Final = "store"
KINDS: Final = frozenset({KIND_FETCH, KIND_STORE})

REASONS: Final = frozenset(
    {
        "malformed",
        "bad_signature",
        "stale",
        "replayed",
        "not_found",
        "erased",
        "forbidden",
        "key_pending",
        "not_custodian",
        "too_large",
        "quota",
        "mismatch",
        "busy",
    }
)
"""Why a record request was refused (the HTTP API maps each to a status)."""


class RecordsError(BigHealthError):
    """A record request refused: ``reason`` is one of ``REASONS``, ``message`` says what to
    check. ``retry_later``: the refusal is temporary (a full queue, a quota of pending
    uploads), the same request may succeed later."""

    def __init__(self, reason: str, message: str, *, retry_later: bool = False) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown records error reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_later = retry_later


# -- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """``requester`` asks ``custodian`` for ``record`` at ``time_ms`` (the requester's clock)
    with a fresh 16-byte ``nonce``; ``signature`` over ``fetch_statement``."""

    requester: bytes
    record: bytes
    custodian: bytes
    nonce: bytes
    time_ms: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """The ciphertext of the record and its data key wrapped for the requester."""

    ciphertext: bytes
    wrapped_key: bytes


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """The custodian ``requester`` asks the custodian ``custodian`` for the blob of
    ``record`` (repair); ``signature`` over ``store_statement``."""

    requester: bytes
    record: bytes
    custodian: bytes
    nonce: bytes
    time_ms: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A record's data key wrapped for ``recipient`` (an identity id)."""

    recipient: bytes
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class StoreResponse:
    """A record's blob as a custodian keeps it: the ciphertext, every wrapped key (sorted
    by recipient) and the author's signature of the commitment."""

    ciphertext: bytes
    wrapped_keys: tuple[WrappedKey, ...]
    author_signature: bytes


_ID = Bytes.exactly(ID_BYTES)
_NONCE = Bytes.exactly(NONCE_BYTES)
_SIGNATURE = Bytes.exactly(SIGNATURE_BYTES)
_CIPHERTEXT = Bytes(MAX_CIPHERTEXT_BYTES, 1)
_WRAPPED = Bytes.exactly(WRAPPED_KEY_BYTES)
_REQUEST_FIELDS: Final = [
    ("requester", _ID),
    ("record", _ID),
    ("custodian", _ID),
    ("nonce", _NONCE),
    ("time_ms", UInt()),
    ("signature", _SIGNATURE),
]
FETCH_REQUEST_CODEC: Final = StructCodec(FetchRequest, _REQUEST_FIELDS, 256)
STORE_REQUEST_CODEC: Final = StructCodec(StoreRequest, _REQUEST_FIELDS, 256)
FETCH_RESPONSE_CODEC: Final = StructCodec(
    FetchResponse, [("ciphertext", _CIPHERTEXT), ("wrapped_key", _WRAPPED)], MAX_ANSWER_BYTES
)
WRAPPED_KEY_CODEC: Final = StructCodec(WrappedKey, [("recipient", _ID), ("wrapped", _WRAPPED)], 256)
STORE_RESPONSE_CODEC: Final = StructCodec(
    StoreResponse,
    [
        ("ciphertext", _CIPHERTEXT),
        ("wrapped_keys", ArrayOf(Nested(WRAPPED_KEY_CODEC), MAX_WRAPPED_KEYS)),
        ("author_signature", _SIGNATURE),
    ],
    MAX_ANSWER_BYTES,
)


# -- statements and signing -----------------------------------------------------------------


def _pack(value: object) -> bytes:
    return cast(bytes, msgpack.packb(value, use_bin_type=True))


def fetch_statement(  # noqa: PLR0917 (the shared contract's positional signature)
    chain_id: str, requester: bytes, record: bytes, custodian: bytes, nonce: bytes, time_ms: int
) -> bytes:
    """What a reader signs to fetch ``record`` from ``custodian``:
    ``FETCH_DOMAIN ‖ msgpack([chain_id, requester, record, nonce, time_ms, custodian])``."""
    return FETCH_DOMAIN + _pack([chain_id, requester, record, nonce, time_ms, custodian])


def store_statement(  # noqa: PLR0917 (as fetch_statement)
    chain_id: str, requester: bytes, record: bytes, custodian: bytes, nonce: bytes, time_ms: int
) -> bytes:
    """What a custodian signs to ask another for a record's blob:
    ``STORE_DOMAIN ‖ msgpack([chain_id, requester, record, nonce, time_ms, custodian])``."""
    return STORE_DOMAIN + _pack([chain_id, requester, record, nonce, time_ms, custodian])


def keys_statement(chain_id: str, record: bytes, wrapped_keys: Mapping[bytes, bytes]) -> bytes:
    """What a record's owner signs to add wrapped keys:
    ``KEYS_DOMAIN ‖ msgpack([chain_id, record, [[recipient, wrapped]...]])``, the pairs
    sorted by recipient (so the statement does not depend on the mapping's order)."""
    pairs = [[recipient, wrapped_keys[recipient]] for recipient in sorted(wrapped_keys)]
    return KEYS_DOMAIN + _pack([chain_id, record, pairs])


def sign_fetch_request(
    signer: Signer,
    *,
    chain_id: str,
    requester: bytes,
    record: bytes,
    custodian: bytes,
    nonce: bytes,
    time_ms: int,
) -> FetchRequest:
    """A fetch request signed by ``signer`` (the requester's current signing key; the
    caller draws ``nonce`` — 16 random bytes — and reads ``time_ms`` from its clock)."""
    statement = fetch_statement(chain_id, requester, record, custodian, nonce, time_ms)
    request = FetchRequest(requester, record, custodian, nonce, time_ms, signer.sign(statement))
    FETCH_REQUEST_CODEC.encode(request)  # refuse (EncodeError) what no custodian would accept
    return request


def sign_store_request(
    signer: Signer,
    *,
    chain_id: str,
    requester: bytes,
    record: bytes,
    custodian: bytes,
    nonce: bytes,
    time_ms: int,
) -> StoreRequest:
    """A repair request signed by ``signer`` (the requesting custodian's current key)."""
    statement = store_statement(chain_id, requester, record, custodian, nonce, time_ms)
    request = StoreRequest(requester, record, custodian, nonce, time_ms, signer.sign(statement))
    STORE_REQUEST_CODEC.encode(request)
    return request


# -- envelopes ------------------------------------------------------------------------------


def encode_request(kind: str, body: bytes) -> bytes:
    """The request ``[kind, body]`` (``kind``: ``fetch`` or ``store``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}")
    return _pack([kind, body])


def decode_request(data: bytes) -> tuple[str, bytes]:
    """``(kind, body)`` of a request; ``RecordsError("malformed")`` for anything else (too
    long, not msgpack, another shape, an unknown kind)."""
    if len(data) > MAX_REQUEST_BYTES:
        raise RecordsError("malformed", f"a request is at most {MAX_REQUEST_BYTES} bytes")
    raw = _unpack(data, MAX_REQUEST_BYTES)
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or not isinstance(raw[0], str)
        or not isinstance(raw[1], bytes)
    ):
        raise RecordsError("malformed", "a request is [kind, body bytes]")
    if raw[0] not in KINDS:
        raise RecordsError("malformed", f"unknown request kind {raw[0][:32]!r}")
    return raw[0], raw[1]


def decode_fetch_request(body: bytes) -> FetchRequest:
    """A fetch request's body decoded; ``RecordsError("malformed")`` if it does not fit."""
    try:
        return FETCH_REQUEST_CODEC.decode(body)
    except DecodeError as exc:
        raise RecordsError("malformed", f"bad fetch request: {exc}") from exc


def decode_store_request(body: bytes) -> StoreRequest:
    """A store request's body decoded; ``RecordsError("malformed")`` if it does not fit."""
    try:
        return STORE_REQUEST_CODEC.decode(body)
    except DecodeError as exc:
        raise RecordsError("malformed", f"bad store request: {exc}") from exc


def encode_ok(body: bytes) -> bytes:
    """The answer ``[True, body]``."""
    return _pack([True, body])


def encode_refusal(error: RecordsError) -> bytes:
    """The answer ``[False, [reason, message]]`` (the message cut to
    ``MAX_MESSAGE_CHARS``)."""
    return _pack([False, [error.reason, error.message[:MAX_MESSAGE_CHARS]]])


def decode_answer(data: bytes) -> bytes:
    """The body of a successful answer; a refusal raises its ``RecordsError``; anything
    that is not an answer raises ``RecordsError("malformed")``."""
    if len(data) > MAX_ANSWER_BYTES:
        raise RecordsError("malformed", f"an answer is at most {MAX_ANSWER_BYTES} bytes")
    raw = _unpack(data, MAX_ANSWER_BYTES)
    if not isinstance(raw, list) or len(raw) != 2 or not isinstance(raw[0], bool):
        raise RecordsError("malformed", "an answer is [ok, body]")
    ok, body = raw
    if ok:
        if not isinstance(body, bytes):
            raise RecordsError("malformed", "a successful answer carries bytes")
        return body
    if (
        not isinstance(body, list)
        or len(body) != 2
        or not isinstance(body[0], str)
        or body[0] not in REASONS
        or not isinstance(body[1], str)
    ):
        raise RecordsError("malformed", "a refusal is [reason, message]")
    raise RecordsError(body[0], body[1][:MAX_MESSAGE_CHARS])


def decode_fetch_response(body: bytes) -> FetchResponse:
    """A fetch answer's body decoded (``RecordsError("malformed")`` otherwise)."""
    try:
        return FETCH_RESPONSE_CODEC.decode(body)
    except DecodeError as exc:
        raise RecordsError("malformed", f"bad fetch response: {exc}") from exc


def decode_store_response(body: bytes) -> StoreResponse:
    """A store answer's body decoded (``RecordsError("malformed")`` otherwise, also for
    wrapped keys not sorted by distinct recipients)."""
    try:
        response = STORE_RESPONSE_CODEC.decode(body)
    except DecodeError as exc:
        raise RecordsError("malformed", f"bad store response: {exc}") from exc
    recipients = [key.recipient for key in response.wrapped_keys]
    if any(a >= b for a, b in itertools.pairwise(recipients)):
        raise RecordsError("malformed", "wrapped keys are sorted by distinct recipients")
    return response


def _unpack(data: bytes, max_bytes: int) -> object:
    if type(data) is not bytes:
        raise RecordsError("malformed", "a message is bytes")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=16,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, msgpack.exceptions.UnpackException) as exc:
        raise RecordsError("malformed", f"not a msgpack message ({type(exc).__name__})") from exc
