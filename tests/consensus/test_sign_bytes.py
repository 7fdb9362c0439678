"""Canonical sign-bytes: a pinned layout, injectivity, and a parser that inverts them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    MalformedMessageError,
    VoteType,
    parse_sign_bytes,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from consensus.sign_bytes import DOMAIN_TAG, MessageKind, SignedFields

VALUE = bytes(range(32))


def test_vote_layout_is_pinned() -> None:
    data = vote_sign_bytes("bh", 0x0102, 3, VoteType.PRECOMMIT, VALUE)
    assert data == (
        b"bighealth-bft-v1"
        + b"\x01"  # vote
        + b"\x02bh"  # length-prefixed chain id
        + bytes.fromhex("0000000000000102")  # height u64
        + bytes.fromhex("00000003")  # round u32
        + b"\x02"  # precommit
        + b"\x01"  # a value follows
        + VALUE
    )
    nil = vote_sign_bytes("bh", 0x0102, 3, VoteType.PREVOTE, None)
    assert nil[-2:] == b"\x01\x00" and len(nil) == len(data) - 32


def test_proposal_layout_is_pinned() -> None:
    data = proposal_sign_bytes("bh", 7, 2, VALUE, -1)
    assert data == (
        DOMAIN_TAG
        + b"\x02\x02bh"
        + bytes.fromhex("0000000000000007")
        + bytes.fromhex("00000002")
        + VALUE
        + bytes.fromhex("ffffffff")  # valid round -1 as i32
    )


chain_ids = st.text(min_size=1, max_size=20).filter(lambda c: len(c.encode()) <= 64)
values = st.none() | st.binary(min_size=32, max_size=32)
votes = st.tuples(
    chain_ids,
    st.integers(1, 2**63 - 1),
    st.integers(0, 2**31 - 1),
    st.sampled_from(VoteType),
    values,
)


@settings(max_examples=200)
@given(votes, votes)
def test_different_votes_never_share_sign_bytes(a: tuple, b: tuple) -> None:  # type: ignore[type-arg]
    assert (vote_sign_bytes(*a) == vote_sign_bytes(*b)) == (a == b)


@settings(max_examples=200)
@given(votes)
def test_parse_inverts_vote_sign_bytes(fields: tuple) -> None:  # type: ignore[type-arg]
    chain_id, height, round_, vote_type, value = fields
    parsed = parse_sign_bytes(vote_sign_bytes(chain_id, height, round_, vote_type, value))
    assert parsed == SignedFields(
        MessageKind.VOTE, chain_id, height, round_, vote_type, value, None
    )


@settings(max_examples=200)
@given(chain_ids, st.integers(1, 2**63 - 1), st.integers(1, 2**31 - 1), st.data())
def test_parse_inverts_proposal_sign_bytes(
    chain_id: str, height: int, round_: int, data: st.DataObject
) -> None:
    valid_round = data.draw(st.integers(-1, round_ - 1))
    value = data.draw(st.binary(min_size=32, max_size=32))
    encoded = proposal_sign_bytes(chain_id, height, round_, value, valid_round)
    parsed = parse_sign_bytes(encoded)
    assert parsed == SignedFields(
        MessageKind.PROPOSAL, chain_id, height, round_, None, value, valid_round
    )
    vote_like = vote_sign_bytes(chain_id, height, round_, VoteType.PREVOTE, value)
    assert encoded != vote_like


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"other-protocol-x" + b"\x01",
        DOMAIN_TAG + b"\x03\x02bh" + bytes(12) + b"\x01\x00",  # unknown kind
        DOMAIN_TAG + b"\x01\x05bh",  # chain id truncated
        vote_sign_bytes("bh", 1, 0, VoteType.PREVOTE, None)[:-1],  # truncated
        vote_sign_bytes("bh", 1, 0, VoteType.PREVOTE, None) + b"\x00",  # trailing byte
        vote_sign_bytes("bh", 1, 0, VoteType.PREVOTE, None)[:-2] + b"\x03\x00",  # vote type
        vote_sign_bytes("bh", 1, 0, VoteType.PREVOTE, None)[:-1] + b"\x02",  # bad marker
        DOMAIN_TAG + b"\x01\x00" + bytes(12) + b"\x01\x00",  # empty chain id
        DOMAIN_TAG + b"\x01\x02bh" + bytes(12) + b"\x01\x00",  # height 0
        proposal_sign_bytes("bh", 1, 1, VALUE, -1)[:-4] + bytes.fromhex("00000001"),  # vr=r
        DOMAIN_TAG
        + b"\x01\x02\xff\xfe"
        + bytes.fromhex("0000000000000001")
        + bytes(4)
        + b"\x01\x00",
    ],
)
def test_parse_rejects_what_no_encoder_produces(data: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        parse_sign_bytes(data)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: vote_sign_bytes("", 1, 0, VoteType.PREVOTE, None), "chain id"),
        (lambda: vote_sign_bytes("bh", 0, 0, VoteType.PREVOTE, None), "height"),
        (lambda: vote_sign_bytes("bh", 1, -1, VoteType.PREVOTE, None), "round"),
        (lambda: vote_sign_bytes("bh", 1, 0, 1, None), "vote type"),  # type: ignore[arg-type]
        (lambda: vote_sign_bytes("bh", 1, 0, VoteType.PREVOTE, b"x"), "value id"),
        (lambda: proposal_sign_bytes("bh", 1, 0, VALUE, 0), "valid round"),
    ],
)
def test_encoders_refuse_out_of_range_fields(call: object, match: str) -> None:
    with pytest.raises(MalformedMessageError, match=match):
        call()  # type: ignore[operator]
