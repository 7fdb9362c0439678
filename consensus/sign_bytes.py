"""Canonical sign-bytes of votes and proposals: the exact bytes an Ed25519 key signs.

Layout (all integers big-endian; ``||`` is concatenation)::

    vote:     DOMAIN_TAG || 0x01 || len(chain) u8 || chain UTF-8 || height u64 || round u32
              || vote type u8 (1 prevote, 2 precommit)
              || 0x00                        (nil)
               | 0x01 || value id (32 bytes)  (a value)
    proposal: DOMAIN_TAG || 0x02 || len(chain) u8 || chain UTF-8 || height u64 || round u32
              || value id (32 bytes) || valid round i32 (-1 = none)

``DOMAIN_TAG`` (16 bytes) keeps these signatures from ever being valid for another protocol
that uses the same keys; the kind byte keeps a vote from being read as a proposal. The encoding
is injective: the kind byte fixes the layout, the chain id is length-prefixed, every other
field has a fixed width, and the nil marker says whether a value id follows;
:func:`parse_sign_bytes` inverts it (a remote signer can use it to enforce its own
double-sign protection). The signer and the validator itself are deliberately absent: the
signature binds the key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from consensus.errors import MalformedMessageError
from consensus.limits import VALUE_ID_BYTES
from consensus.types import Proposal, ValueId, Vote, VoteType
from consensus.validation import (
    check_chain_id,
    check_height,
    check_round,
    check_value_id,
)

DOMAIN_TAG = b"bighealth-bft-v1"
"""The 16-byte domain-separation tag that starts every consensus sign-bytes."""

_HEIGHT_ROUND = struct.Struct(">QI")
_VALID_ROUND = struct.Struct(">i")
_NIL_MARKER = 0x00
_VALUE_MARKER = 0x01


class MessageKind(IntEnum):
    """The byte after the domain tag."""

    VOTE = 0x01
    PROPOSAL = 0x02


@dataclass(frozen=True, slots=True)
class SignedFields:
    """What a sign-bytes string commits to (the result of :func:`parse_sign_bytes`).

    ``vote_type`` is None for a proposal; ``valid_round`` is None for a vote.
    """

    kind: MessageKind
    chain_id: str
    height: int
    round: int
    vote_type: VoteType | None
    value_id: ValueId | None
    valid_round: int | None


def vote_sign_bytes(
    chain_id: str, height: int, round_: int, vote_type: VoteType, value_id: ValueId | None
) -> bytes:
    """The sign-bytes of a vote (``value_id`` None = nil). Fields are range-checked."""
    check_round(round_)
    check_height(height)
    if not isinstance(vote_type, VoteType):
        raise MalformedMessageError(f"vote type must be a VoteType, got {vote_type!r}")
    head = _header(MessageKind.VOTE, chain_id, height, round_)
    if value_id is None:
        return head + bytes((vote_type, _NIL_MARKER))
    check_value_id(value_id)
    return head + bytes((vote_type, _VALUE_MARKER)) + value_id


def vote_sign_bytes_of(vote: Vote) -> bytes:
    """The sign-bytes of ``vote`` (its signature and validator are not part of them)."""
    return vote_sign_bytes(vote.chain_id, vote.height, vote.round, vote.vote_type, vote.value_id)


def proposal_sign_bytes(
    chain_id: str, height: int, round_: int, value_id: ValueId, valid_round: int
) -> bytes:
    """The sign-bytes of a proposal (``valid_round`` -1 = none, else below ``round_``)."""
    check_round(round_)
    check_height(height)
    check_value_id(value_id)
    if type(valid_round) is not int or not -1 <= valid_round < round_:
        raise MalformedMessageError(f"valid round must be in -1..{round_ - 1}, got {valid_round}")
    head = _header(MessageKind.PROPOSAL, chain_id, height, round_)
    return head + value_id + _VALID_ROUND.pack(valid_round)


def proposal_sign_bytes_of(proposal: Proposal) -> bytes:
    """The sign-bytes of ``proposal`` (its signature and proposer are not part of them)."""
    return proposal_sign_bytes(
        proposal.chain_id, proposal.height, proposal.round, proposal.value_id, proposal.valid_round
    )


def parse_sign_bytes(data: bytes) -> SignedFields:
    """Invert :func:`vote_sign_bytes` / :func:`proposal_sign_bytes`.

    Raises MalformedMessageError for anything those functions cannot have produced.
    """
    if type(data) is not bytes or not data.startswith(DOMAIN_TAG):
        raise MalformedMessageError("sign-bytes must start with the consensus domain tag")
    offset = len(DOMAIN_TAG)
    kind_byte, chain_size = _byte_at(data, offset), _byte_at(data, offset + 1)
    offset += 2
    chain_bytes = data[offset : offset + chain_size]
    offset += chain_size
    if len(chain_bytes) != chain_size or len(data) < offset + _HEIGHT_ROUND.size:
        raise MalformedMessageError("sign-bytes truncated")
    try:
        chain_id = chain_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessageError("chain id in sign-bytes is not UTF-8") from exc
    height, round_ = _HEIGHT_ROUND.unpack_from(data, offset)
    offset += _HEIGHT_ROUND.size
    rest = data[offset:]
    if kind_byte == MessageKind.VOTE:
        fields = _parse_vote_tail(chain_id, height, round_, rest)
        encoded = vote_sign_bytes(chain_id, height, round_, _vote_type(fields), fields.value_id)
    elif kind_byte == MessageKind.PROPOSAL:
        fields = _parse_proposal_tail(chain_id, height, round_, rest)
        assert fields.value_id is not None and fields.valid_round is not None
        encoded = proposal_sign_bytes(chain_id, height, round_, fields.value_id, fields.valid_round)
    else:
        raise MalformedMessageError(f"unknown message kind byte {kind_byte:#04x}")
    if encoded != data:  # catches every non-canonical form (e.g. an over-long chain id)
        raise MalformedMessageError("sign-bytes are not in canonical form")
    return fields


def _header(kind: MessageKind, chain_id: str, height: int, round_: int) -> bytes:
    check_chain_id(chain_id)
    chain_bytes = chain_id.encode("utf-8")
    prefix = DOMAIN_TAG + bytes((kind, len(chain_bytes)))
    return prefix + chain_bytes + _HEIGHT_ROUND.pack(height, round_)


def _byte_at(data: bytes, offset: int) -> int:
    if offset >= len(data):
        raise MalformedMessageError("sign-bytes truncated")
    return data[offset]


def _parse_vote_tail(chain_id: str, height: int, round_: int, rest: bytes) -> SignedFields:
    if len(rest) == 2 and rest[1] == _NIL_MARKER:
        value_id: ValueId | None = None
    elif len(rest) == 2 + VALUE_ID_BYTES and rest[1] == _VALUE_MARKER:
        value_id = rest[2:]
    else:
        raise MalformedMessageError("vote sign-bytes have a bad value field")
    try:
        vote_type = VoteType(rest[0])
    except ValueError as exc:
        raise MalformedMessageError(f"unknown vote type byte {rest[0]}") from exc
    return SignedFields(MessageKind.VOTE, chain_id, height, round_, vote_type, value_id, None)


def _parse_proposal_tail(chain_id: str, height: int, round_: int, rest: bytes) -> SignedFields:
    if len(rest) != VALUE_ID_BYTES + _VALID_ROUND.size:
        raise MalformedMessageError("proposal sign-bytes have a bad length")
    (valid_round,) = _VALID_ROUND.unpack_from(rest, VALUE_ID_BYTES)
    value_id = rest[:VALUE_ID_BYTES]
    return SignedFields(MessageKind.PROPOSAL, chain_id, height, round_, None, value_id, valid_round)


def _vote_type(fields: SignedFields) -> VoteType:
    assert fields.vote_type is not None
    return fields.vote_type
