"""The canonical codec: round trips, and a typed error for every kind of bad input."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_core import EMPTY_ROOT
from crypto_core.signatures import sha256
from node import codec
from node.chain.store import RESULTS_CODEC, BlockResults
from node.codec import (
    BLOCK_CODEC,
    MAX_BLOCK_BYTES,
    MAX_TX_BYTES,
    RECEIPT_CODEC,
    TX_CODEC,
    VOTE_CODEC,
    Bytes,
    StructCodec,
    UInt,
    block_id,
    decode,
    decode_message,
    encode,
    encode_message,
)
from node.errors import (
    BigHealthError,
    DecodeError,
    EncodeError,
    MalformedError,
    NonCanonicalError,
    OversizeError,
    SchemaError,
)
from node.testing import TxFactory, key_pair
from node.types import (
    ZERO_HASH,
    Block,
    BlockHeader,
    CommitCertificate,
    CommittedBlock,
    DuplicateVoteEvidence,
    Event,
    EventAttribute,
    ResultCode,
    Status,
    Transaction,
    TxReceipt,
    UnsignedTransaction,
    Vote,
    VoteType,
)
from tests.node import strategies

CHAIN = "bh-test"


def pack(wire: object) -> bytes:
    return cast(bytes, msgpack.packb(wire, use_bin_type=True))


def a_tx() -> Transaction:
    return TxFactory(CHAIN).make(key_pair("alice"), "kv.set", b"payload", priority=7)


def tx_wire(**changes: object) -> list[object]:
    wire = TX_CODEC.to_wire(a_tx())
    names = [name for name, _ in TX_CODEC.fields]
    for name, value in changes.items():
        wire[names.index(name)] = value
    return wire


def a_vote() -> Vote:
    return Vote(CHAIN, 5, 1, VoteType.PREVOTE, None, bytes(32), bytes(64))


# -- round trips ----------------------------------------------------------------------------


@settings(max_examples=60)
@given(strategies.any_value)
def test_every_type_round_trips_and_reencodes_to_the_same_bytes(value: Any) -> None:
    data = encode(value)
    decoded = decode(type(value), data)
    assert decoded == value
    assert encode(decoded) == data


@settings(max_examples=40)
@given(strategies.messages)
def test_every_message_round_trips_through_the_envelope(message: Any) -> None:
    data = encode_message(message)
    assert decode_message(data) == message
    assert (
        pack([int(codec.message_kind(message)), codec.codec_for(type(message)).to_wire(message)])
        == data
    )


@settings(max_examples=40)
@given(strategies.blocks, strategies.certificates)
def test_block_bytes_travel_and_are_stored_without_encoding_the_block_again(
    block: Block, certificate: CommitCertificate
) -> None:
    block_bytes = BLOCK_CODEC.encode(block)
    message = codec.block_message(block_bytes)
    assert message == encode_message(block)
    assert codec.message_body(message) == block_bytes
    stored = codec.committed_block_bytes(block_bytes, certificate)
    assert stored == encode(CommittedBlock(block, certificate))
    assert codec.decode_committed_block(stored) == (CommittedBlock(block, certificate), block_bytes)


def test_message_body_needs_an_envelope() -> None:
    for data in (b"", b"\x92", b"\x92\x04", b"\x93\x04\x90", b"\x92\xcc\x80\x90"):
        with pytest.raises(ValueError, match="envelope"):
            codec.message_body(data)


def test_every_registered_type_has_a_strategy_and_a_full_schema() -> None:
    assert set(codec.registered_types()) == set(strategies.BY_TYPE)
    for cls in codec.registered_types():
        schema: StructCodec[Any] = codec.codec_for(cls)
        assert [name for name, _ in schema.fields] == [f.name for f in dataclasses.fields(cls)]


def test_a_schema_that_misses_a_field_is_refused_at_construction() -> None:
    with pytest.raises(TypeError, match="schema of Vote"):
        StructCodec(Vote, [("chain_id", UInt())], 100)


# -- bad input: every kind raises a typed DecodeError ---------------------------------------


def test_oversize_transaction_is_refused_before_parsing() -> None:
    data = pack(tx_wire(payload=bytes(MAX_TX_BYTES)))
    with pytest.raises(OversizeError, match="65536"):
        TX_CODEC.decode(data)


def test_oversize_block_is_refused() -> None:
    with pytest.raises(OversizeError):
        BLOCK_CODEC.decode(bytes(MAX_BLOCK_BYTES + 1))


def test_a_vote_sized_like_a_block_is_refused_by_the_envelope() -> None:
    body = VOTE_CODEC.to_wire(a_vote())
    body[0] = "x" * 2000  # a huge chain id: the vote limit applies, not the block limit
    with pytest.raises(OversizeError, match="Vote"):
        decode_message(pack([int(codec.MessageKind.VOTE), body]))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # the one reserved msgpack byte
        b"\x97",  # an array header promising 7 items, then nothing
        pack(tx_wire())[:-1],  # truncated
        b"\xc6\xff\xff\xff\xff" + b"x" * 10,  # bin32 claiming 4 GiB: refused, not allocated
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 billion items
        b"\x91" * 5000 + b"\xc0",  # nesting deeper than the parser's stack
    ],
)
def test_malformed_input_raises_malformed_error(data: bytes) -> None:
    with pytest.raises(MalformedError):
        TX_CODEC.decode(data)


def test_invalid_utf8_is_malformed() -> None:
    data = bytearray(pack(tx_wire(kind="kv.set")))
    position = data.index(b"kv.set")
    data[position] = 0xFF
    with pytest.raises(MalformedError):
        TX_CODEC.decode(bytes(data))


def non_minimal_uint64(value: int) -> bytes:
    return b"\xcf" + value.to_bytes(8, "big")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda good: good + b"\x00",  # trailing bytes
        lambda good: good.replace(b"\xa6kv.set", b"\xd9\x06kv.set"),  # str8 for a fixstr
        lambda good: good.replace(b"\xc4\x07payload", b"\xc5\x00\x07payload"),  # bin16 for 7 bytes
    ],
    ids=["trailing bytes", "long string header", "long bin header"],
)
def test_non_canonical_encodings_are_refused(mutate: Any) -> None:
    good = TX_CODEC.encode(a_tx())
    bad = mutate(good)
    assert bad != good
    with pytest.raises(NonCanonicalError):
        TX_CODEC.decode(bad)


def test_a_non_minimal_integer_is_refused() -> None:
    wire = tx_wire(nonce=0)
    good = pack(wire)
    bad = good.replace(pack(wire[:2])[1:] + b"\x00", pack(wire[:2])[1:] + non_minimal_uint64(0), 1)
    assert bad != good
    with pytest.raises(NonCanonicalError):
        TX_CODEC.decode(bad)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (tx_wire()[:-1], "missing fields"),
        ([*tx_wire(), b"extra"], "unknown fields"),
        (tx_wire(nonce="7"), "nonce"),
        (tx_wire(nonce=-1), "nonce"),
        (tx_wire(nonce=True), "nonce"),
        (tx_wire(nonce=1.0), "nonce"),
        (tx_wire(priority=70_000), "priority"),
        (tx_wire(sender=bytes(31)), "sender"),
        (tx_wire(sender="a" * 32), "sender"),
        (tx_wire(signature=None), "signature"),
        (tx_wire(chain_id="has space"), "chain_id"),
        (tx_wire(chain_id=""), "chain_id"),
        (tx_wire(kind="no-dot"), "kind"),
        (tx_wire(payload=[b"x"]), "payload"),
        ({"chain_id": CHAIN}, "maps"),
        (msgpack.ExtType(5, b"x"), "ext"),
        (7, "array"),
    ],
)
def test_schema_violations_raise_schema_error(wire: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        TX_CODEC.decode(pack(wire))


def test_unknown_enum_values_and_tags_raise_schema_error() -> None:
    body = VOTE_CODEC.to_wire(a_vote())
    body[3] = 3  # no such vote type
    with pytest.raises(SchemaError, match="vote_type"):
        VOTE_CODEC.decode(pack(body))
    with pytest.raises(SchemaError, match="unknown message tag"):
        decode_message(pack([99, []]))
    with pytest.raises(SchemaError, match="tag, body"):
        decode_message(pack([1]))


def test_nested_errors_name_the_path() -> None:
    header = dataclasses.replace(block_header(), proposer=bytes(32))
    wire: list[Any] = BLOCK_CODEC.to_wire(Block(header, (b"tx",)))
    wire[0][1] = -5  # header.height
    with pytest.raises(SchemaError, match=r"Block\.header\.height"):
        BLOCK_CODEC.decode(pack(wire))
    other: list[Any] = BLOCK_CODEC.to_wire(Block(header, (b"tx",)))
    other[1][0] = "not bytes"
    with pytest.raises(SchemaError, match=r"Block\.txs\[0\]"):
        BLOCK_CODEC.decode(pack(other))


def test_encode_errors_name_the_path() -> None:
    # The fast pass builds no paths: a failure is converted again to say where it is.
    bad_event = Event("kv.set", (EventAttribute("key", "\udc80"),))  # a lone surrogate
    receipt = TxReceipt(bytes(32), ResultCode.OK, "", 0, (bad_event,))
    results = BlockResults(1, 0, (), (receipt,))
    with pytest.raises(EncodeError, match=r"BlockResults\.receipts\[\]\.events\[\]\.attributes"):
        RESULTS_CODEC.encode(results)
    with pytest.raises(EncodeError, match=r"^TxReceipt\.gas_used"):
        RECEIPT_CODEC.encode(dataclasses.replace(receipt, events=(), gas_used=-1))


def test_evidence_that_proves_nothing_does_not_decode() -> None:
    nil = a_vote()
    value = dataclasses.replace(nil, value_id=b"\x01" * 32)
    wire = [VOTE_CODEC.to_wire(nil), VOTE_CODEC.to_wire(value)]
    assert decode(DuplicateVoteEvidence, pack(wire)) == DuplicateVoteEvidence(nil, value)
    with pytest.raises(SchemaError, match="canonical order"):
        decode(DuplicateVoteEvidence, pack(wire[::-1]))
    with pytest.raises(SchemaError, match="canonical order"):
        decode(DuplicateVoteEvidence, pack([wire[0], wire[0]]))
    other_round = dataclasses.replace(value, round=nil.round + 1)
    with pytest.raises(SchemaError, match="share validator and step"):
        decode(DuplicateVoteEvidence, pack([wire[0], VOTE_CODEC.to_wire(other_round)]))
    block: list[Any] = BLOCK_CODEC.to_wire(Block(block_header(), (), (evidence_of(nil),)))
    block[2][0] = block[2][0][::-1]
    with pytest.raises(SchemaError, match=r"Block\.evidence\[0\]"):
        BLOCK_CODEC.decode(pack(block))


def evidence_of(vote: Vote) -> DuplicateVoteEvidence:
    return DuplicateVoteEvidence.from_votes(vote, dataclasses.replace(vote, value_id=bytes(32)))


def test_the_evidence_root_commits_to_the_evidence_and_its_order() -> None:
    first = evidence_of(a_vote())
    second = evidence_of(dataclasses.replace(a_vote(), round=2))
    assert (
        codec.evidence_root(())
        == EMPTY_ROOT
        == BlockHeader.__dataclass_fields__["evidence_root"].default
    )
    roots = {
        codec.evidence_root(x) for x in [(first,), (second,), (first, second), (second, first)]
    }
    assert len(roots) == 4


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_decode_error(data: bytes) -> None:
    for cls in (Transaction, Vote, Block):
        try:
            value = decode(cls, data)
        except DecodeError:
            continue
        assert encode(value) == data  # anything accepted is canonical


@settings(max_examples=80)
@given(strategies.transactions, st.data())
def test_a_mutated_encoding_decodes_canonically_or_raises(
    tx: Transaction, data: st.DataObject
) -> None:
    good = bytearray(encode(tx))
    position = data.draw(st.integers(0, len(good) - 1))
    good[position] = data.draw(st.integers(0, 255))
    try:
        value = TX_CODEC.decode(bytes(good))
    except DecodeError:
        return
    assert encode(value) == bytes(good)


def test_decode_errors_belong_to_one_hierarchy() -> None:
    for error in (OversizeError, MalformedError, NonCanonicalError, SchemaError):
        assert issubclass(error, DecodeError)
        assert issubclass(error, BigHealthError)
        assert issubclass(error, ValueError)


def test_decode_refuses_non_bytes_input_with_type_error() -> None:
    with pytest.raises(TypeError):
        TX_CODEC.decode("text")  # type: ignore[arg-type]


# -- encoding invalid values is the caller's bug: EncodeError --------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        dataclasses.replace(a_tx(), nonce=-1),
        dataclasses.replace(a_tx(), nonce=1 << 64),
        dataclasses.replace(a_tx(), sender=b"short"),
        dataclasses.replace(a_tx(), kind="KV.SET"),
        dataclasses.replace(a_tx(), chain_id="bad\udcff"),
        dataclasses.replace(a_tx(), payload=bytes(MAX_TX_BYTES)),  # fits the field, not the tx
    ],
)
def test_encoding_an_invalid_value_raises_encode_error(bad: Transaction) -> None:
    with pytest.raises(EncodeError):
        encode(bad)


def test_encoding_a_type_without_schema_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match="no schema"):
        encode(object())
    with pytest.raises(EncodeError, match="not a network message"):
        encode_message(a_tx())  # type: ignore[arg-type]


def test_log_text_carries_unicode() -> None:
    attribute = EventAttribute("note", "Blutzucker 120 mg/dl — ✓")
    assert decode(EventAttribute, encode(attribute)) == attribute


# -- signing, hashing ---------------------------------------------------------------------


def test_tx_sign_bytes_are_domain_tagged_and_cover_every_field() -> None:
    tx = a_tx()
    sign_bytes = codec.tx_sign_bytes(tx)
    assert sign_bytes.startswith(codec.TX_SIGN_DOMAIN)
    assert codec.tx_sign_bytes(tx.unsigned) == sign_bytes
    assert codec.tx_signature_ok(tx)
    changes: list[dict[str, Any]] = [
        {"chain_id": "other-chain"},
        {"sender": key_pair("mallory").public_key},
        {"nonce": tx.nonce + 1},
        {"kind": "kv.delete"},
        {"payload": b"other"},
        {"priority": tx.priority + 1},
    ]
    for change in changes:
        assert not codec.tx_signature_ok(dataclasses.replace(tx, **change)), change


def test_sign_transaction_refuses_a_foreign_signer() -> None:
    unsigned = UnsignedTransaction(CHAIN, key_pair("alice").public_key, 0, "kv.set", b"", 0)
    with pytest.raises(ValueError, match="sender"):
        codec.sign_transaction(unsigned, key_pair("bob"))


def block_header(**changes: Any) -> BlockHeader:
    header = BlockHeader(
        chain_id=CHAIN,
        height=1,
        time_ms=1000,
        previous_block_id=ZERO_HASH,
        tx_root=EMPTY_ROOT,
        app_state_root=bytes(32),
        validator_set_hash=bytes(32),
        proposer=bytes(32),
        last_commit=None,
    )
    return dataclasses.replace(header, **changes)


def test_block_id_is_the_hash_of_the_header_and_covers_every_field() -> None:
    header = block_header()
    assert block_id(header) == sha256(encode(header))
    for field in dataclasses.fields(BlockHeader):
        if field.name in ("chain_id", "last_commit"):
            continue
        value = getattr(header, field.name)
        change: dict[str, Any] = {
            field.name: value + 1 if isinstance(value, int) else bytes([1]) + value[1:]
        }
        assert block_id(dataclasses.replace(header, **change)) != block_id(header)


def test_tx_root_of_no_transactions_is_the_empty_root() -> None:
    assert codec.tx_root([]) == EMPTY_ROOT
    assert codec.tx_root([b"a", b"b"]) != codec.tx_root([b"b", b"a"])


def test_bytes_kind_describes_exact_and_ranged_lengths() -> None:
    assert Bytes.exactly(32).description == "32 bytes"
    assert Bytes(10, 1).description == "1..10 bytes"


@settings(max_examples=60)
@given(strategies.transactions)
def test_the_signed_bytes_sliced_from_an_encoding_are_the_signed_bytes(tx: Transaction) -> None:
    assert codec.tx_sign_bytes_of_encoding(TX_CODEC.encode(tx)) == codec.tx_sign_bytes(tx)


def test_a_memo_codec_hands_back_the_value_it_decoded_and_stays_bounded() -> None:
    fields = [("height", UInt()), ("last_block_id", Bytes(32))]
    memo = StructCodec(Status, fields, 64, memo_entries=2)
    first = memo.decode(memo.encode(Status(1, ZERO_HASH)))
    assert memo.decode(memo.encode(Status(1, ZERO_HASH))) is first
    for height in range(2, 6):
        assert memo.decode(memo.encode(Status(height, ZERO_HASH))) == Status(height, ZERO_HASH)
    assert len(memo._memo) <= 2
    with pytest.raises(DecodeError):
        memo.decode(b"\x92\x01")
    written = Status(9, ZERO_HASH)
    assert memo.decode(memo.encode_remembered(written)) is written  # read back, not decoded


# -- the generated fast pass against the traced path -----------------------------------------

_WIRE_ITEMS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.binary(max_size=70)
    | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


def _outcome(convert: Any, raw: object) -> tuple[bool, object]:
    try:
        return True, convert(raw)
    except (SchemaError, EncodeError):
        return False, None


@pytest.mark.parametrize(
    ("codec_", "example"),
    [
        (TX_CODEC, a_tx),
        (VOTE_CODEC, a_vote),
        (RECEIPT_CODEC, lambda: TxReceipt(bytes(32), ResultCode.OK, "log", 7, ())),
        (codec.HEADER_CODEC, block_header),
    ],
    ids=["tx", "vote", "receipt", "header"],
)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_fast_pass_accepts_exactly_what_the_traced_path_accepts(
    codec_: StructCodec[Any], example: Any, data: st.DataObject
) -> None:
    value = example()
    wire = codec_.to_wire(value)
    field = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
    wire[field] = data.draw(_WIRE_ITEMS)
    fast = _outcome(codec_.value_fast, wire)
    traced = _outcome(lambda raw: codec_.from_wire(raw, codec_.name), wire)
    assert fast == traced
    mutated = dataclasses.replace(value, **{codec_.fields[field][0]: data.draw(_WIRE_ITEMS)})
    fast = _outcome(codec_.wire_fast, mutated)
    traced = _outcome(lambda v: codec_.to_wire(v, codec_.name), mutated)
    assert fast == traced


class _EvenLength(Bytes):
    """A kind narrowing ``accepts`` (as an application module's own kind may)."""

    def accepts(self, value: object) -> bool:
        return super().accepts(value) and len(cast(bytes, value)) % 2 == 0


@dataclasses.dataclass(frozen=True)
class _Pair:
    left: bytes
    right: int


def test_a_kind_narrowing_accepts_is_honoured_by_the_fast_pass() -> None:
    pair_codec = StructCodec(_Pair, [("left", _EvenLength(8)), ("right", UInt())], 64)
    assert pair_codec.decode(pair_codec.encode(_Pair(b"ab", 1))) == _Pair(b"ab", 1)
    with pytest.raises(EncodeError, match=r"_Pair\.left"):
        pair_codec.encode(_Pair(b"abc", 1))
    with pytest.raises(SchemaError, match=r"_Pair\.left"):
        pair_codec.decode(pack([b"abc", 1]))
