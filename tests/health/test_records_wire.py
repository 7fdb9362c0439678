"""The record protocol's messages: statements bind every field, codecs refuse what does not
fit, envelopes and answers round-trip and refuse garbage with a typed error."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from crypto_core.signatures import verify
from health.envelopes import WRAPPED_KEY_BYTES
from health.records_wire import (
    FETCH_REQUEST_CODEC,
    FETCH_RESPONSE_CODEC,
    KEYS_DOMAIN,
    MAX_MESSAGE_CHARS,
    MAX_REQUEST_BYTES,
    STORE_RESPONSE_CODEC,
    FetchRequest,
    FetchResponse,
    RecordsError,
    StoreResponse,
    WrappedKey,
    decode_answer,
    decode_fetch_request,
    decode_fetch_response,
    decode_request,
    decode_store_request,
    decode_store_response,
    encode_ok,
    encode_refusal,
    encode_request,
    fetch_statement,
    keys_statement,
    sign_fetch_request,
    sign_store_request,
    store_statement,
)
from node.errors import EncodeError
from node.testing import key_pair

CHAIN = "bh-test"
READER = key_pair("reader")
RECORD = bytes(range(32))
CUSTODIAN = bytes([7]) * 32
NONCE = bytes([1]) * 16


def signed(**changes: object) -> FetchRequest:
    fields: dict[str, object] = {
        "chain_id": CHAIN,
        "requester": READER.public_key,
        "record": RECORD,
        "custodian": CUSTODIAN,
        "nonce": NONCE,
        "time_ms": 1_700_000_000_000,
    }
    fields.update(changes)
    return sign_fetch_request(READER, **fields)  # type: ignore[arg-type]


def statement_of(request: FetchRequest, chain_id: str = CHAIN) -> bytes:
    return fetch_statement(
        chain_id,
        request.requester,
        request.record,
        request.custodian,
        request.nonce,
        request.time_ms,
    )


def test_a_signed_fetch_request_verifies_and_round_trips() -> None:
    request = signed()
    assert verify(READER.public_key, statement_of(request), request.signature)
    assert decode_fetch_request(FETCH_REQUEST_CODEC.encode(request)) == request
    assert statement_of(request).startswith(b"bighealth/records-fetch/v1\x00")


@pytest.mark.parametrize(
    "change",
    [
        {"record": bytes(32)},
        {"custodian": bytes(32)},
        {"nonce": bytes(16)},
        {"time_ms": 1_700_000_000_001},
        {"requester": key_pair("other").public_key},
    ],
)
def test_the_fetch_signature_binds_every_field(change: dict[str, object]) -> None:
    request = signed()
    forged = replace(request, **change)  # type: ignore[arg-type]
    assert not verify(READER.public_key, statement_of(forged), request.signature)


def test_the_fetch_signature_binds_the_chain() -> None:
    request = signed()
    assert not verify(READER.public_key, statement_of(request, "other-chain"), request.signature)


def test_fetch_and_store_statements_never_coincide() -> None:
    args = (CHAIN, READER.public_key, RECORD, CUSTODIAN, NONCE, 5)
    assert fetch_statement(*args) != store_statement(*args)
    store = sign_store_request(
        READER,
        chain_id=CHAIN,
        requester=READER.public_key,
        record=RECORD,
        custodian=CUSTODIAN,
        nonce=NONCE,
        time_ms=5,
    )
    assert verify(READER.public_key, store_statement(*args), store.signature)
    assert not verify(READER.public_key, fetch_statement(*args), store.signature)


@pytest.mark.parametrize("change", [{"record": bytes(31)}, {"nonce": bytes(15)}, {"time_ms": -1}])
def test_signing_refuses_fields_no_custodian_accepts(change: dict[str, object]) -> None:
    with pytest.raises(EncodeError):
        signed(**change)


def test_the_keys_statement_does_not_depend_on_the_mapping_order() -> None:
    a, b = bytes([2]) * 32, bytes([1]) * 32
    wrapped_a, wrapped_b = b"a" * WRAPPED_KEY_BYTES, b"b" * WRAPPED_KEY_BYTES
    one = keys_statement(CHAIN, RECORD, {a: wrapped_a, b: wrapped_b})
    two = keys_statement(CHAIN, RECORD, {b: wrapped_b, a: wrapped_a})
    assert one == two and one.startswith(KEYS_DOMAIN)
    body = msgpack.unpackb(one[len(KEYS_DOMAIN) :], raw=False)
    assert body == [CHAIN, RECORD, [[b, wrapped_b], [a, wrapped_a]]]
    assert keys_statement(CHAIN, RECORD, {a: wrapped_b, b: wrapped_a}) != one
    assert keys_statement("other", RECORD, {a: wrapped_a, b: wrapped_b}) != one


def test_requests_round_trip_and_garbage_is_malformed() -> None:
    body = FETCH_REQUEST_CODEC.encode(signed())
    assert decode_request(encode_request("fetch", body)) == ("fetch", body)
    assert decode_request(encode_request("store", b"x")) == ("store", b"x")
    with pytest.raises(ValueError):
        encode_request("delete", b"")
    garbage = [
        b"",
        b"\xc1",
        msgpack.packb(["fetch"]),
        msgpack.packb(["fetch", "text"]),
        msgpack.packb(["erase", b""]),
        msgpack.packb({"fetch": b""}),
        msgpack.packb([1, b""]),
        msgpack.packb(["fetch", b"x" * MAX_REQUEST_BYTES]),
        msgpack.packb(["fetch", b""]) + b"extra",
    ]
    for data in garbage:
        with pytest.raises(RecordsError) as caught:
            decode_request(data)
        assert caught.value.reason == "malformed"


def test_bodies_that_do_not_fit_are_malformed() -> None:
    for decode in (decode_fetch_request, decode_store_request):
        with pytest.raises(RecordsError) as caught:
            decode(b"\x93\x01\x02\x03")
        assert caught.value.reason == "malformed"
    with pytest.raises(RecordsError):
        decode_fetch_response(msgpack.packb([b"c" * 50, b"short"]))


def test_answers_carry_a_body_or_a_typed_refusal() -> None:
    response = FetchResponse(b"c" * 50, b"w" * WRAPPED_KEY_BYTES)
    body = FETCH_RESPONSE_CODEC.encode(response)
    assert decode_fetch_response(decode_answer(encode_ok(body))) == response
    refusal = encode_refusal(RecordsError("forbidden", "x" * 1000))
    with pytest.raises(RecordsError) as caught:
        decode_answer(refusal)
    assert caught.value.reason == "forbidden"
    assert len(caught.value.message) == MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    "answer",
    [
        [True, "text"],
        [False, ["no_such_reason", "m"]],
        [False, [["forbidden"], "m"]],
        [False, "forbidden"],
        [1, b""],
        [True],
    ],
)
def test_an_answer_that_is_not_one_is_malformed(answer: object) -> None:
    with pytest.raises(RecordsError) as caught:
        decode_answer(msgpack.packb(answer))
    assert caught.value.reason == "malformed"


def test_a_records_error_has_a_known_reason() -> None:
    with pytest.raises(ValueError):
        RecordsError("oops", "m")
    assert RecordsError("quota", "m", retry_later=True).retry_later


def test_store_responses_keep_their_keys_sorted_and_distinct() -> None:
    a, b = bytes([1]) * 32, bytes([2]) * 32
    key_a, key_b = WrappedKey(a, b"a" * WRAPPED_KEY_BYTES), WrappedKey(b, b"b" * WRAPPED_KEY_BYTES)
    good = StoreResponse(b"c" * 64, (key_a, key_b), b"s" * 64)
    assert decode_store_response(STORE_RESPONSE_CODEC.encode(good)) == good
    for keys in ((key_b, key_a), (key_a, key_a)):
        bad = STORE_RESPONSE_CODEC.encode(replace(good, wrapped_keys=keys))
        with pytest.raises(RecordsError) as caught:
            decode_store_response(bad)
        assert caught.value.reason == "malformed"
