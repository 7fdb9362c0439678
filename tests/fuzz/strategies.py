"""Structure-aware fuzz inputs: hypothesis strategies derived from a ``StructCodec``'s own
schema (valid wire values), and mutations of valid encodings (byte flips, truncation,
extension, splices; msgpack items swapped for other types, boundary integers, extra or
missing array items, non-canonical re-encodings).

Sizes are kept small on purpose (a few items per array, short byte strings): the decoders'
limits are checked by their own tests; here the point is many shapes, quickly.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgpack
from hypothesis import strategies as st

from node.codec.schema import (
    ArrayOf,
    Bool,
    Bytes,
    EnumOf,
    Int,
    Kind,
    Maybe,
    Nested,
    StructCodec,
    Text,
)

MAX_FUZZ_BYTES: Final = 48
"""The longest byte string a generated field holds (longer exact lengths are kept)."""
MAX_FUZZ_ITEMS: Final = 3
"""The most items a generated array holds."""
BOUNDARY_INTS: Final = (
    -(1 << 63) - 1,
    -(1 << 63),
    -129,
    -33,
    -1,
    0,
    1,
    127,
    128,
    255,
    256,
    65_535,
    65_536,
    (1 << 32) - 1,
    1 << 32,
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
)
"""Integers where msgpack's encodings and the schema's ranges change (the first, below
int64, cannot be packed: only a schema's own range admits it)."""
TYPE_BYTES: Final = (
    *(0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC7, 0xCA, 0xCB, 0xCC, 0xCF, 0xD0, 0xD3, 0xD9, 0xDC),
    *(0xDE, 0x80, 0x90, 0xA0, 0xE0),
)
"""One first byte of each msgpack type family: nil, the reserved 0xc1, bools, bin, ext,
floats, ints, str, array and map forms, fixmap, fixarray, fixstr, negative fixint."""


def _pack(value: object) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


_OTHER_ITEMS: Final = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(BOUNDARY_INTS[1:]),
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.text(max_size=12),
    st.lists(st.integers(-2, 300), max_size=3),
)
"""Items of any msgpack type, to put where a field is expected."""


def wire_values(kind: Kind, ids: tuple[bytes, ...] = ()) -> st.SearchStrategy[Any]:
    """Valid wire items of ``kind`` (what ``kind.from_wire`` accepts, up to the sizes);
    byte strings of the length of ``ids`` are often one of them (known identities, records:
    so a handler gets past "not found")."""
    if isinstance(kind, Nested):
        return codec_wire_values(kind.codec, ids)
    if isinstance(kind, Maybe):
        return st.none() | wire_values(kind.inner, ids)
    if isinstance(kind, ArrayOf):
        inner = wire_values(kind.inner, ids)
        return st.lists(inner, max_size=min(kind.max_items, MAX_FUZZ_ITEMS))
    if isinstance(kind, EnumOf):
        return st.sampled_from(sorted(kind.values))
    if isinstance(kind, Bool):
        return st.booleans()
    if isinstance(kind, Int):
        return st.integers(kind.low, kind.high) | st.sampled_from(
            [kind.low, kind.high, *(i for i in BOUNDARY_INTS if kind.low <= i <= kind.high)]
        )
    if isinstance(kind, Bytes):
        known = [i for i in ids if kind.min_len <= len(i) <= kind.max_len]
        if known and len(known) == len(ids):
            return st.sampled_from(known) | wire_values(kind)
        if kind.min_len > MAX_FUZZ_BYTES:
            return st.binary(min_size=kind.min_len, max_size=kind.min_len)
        return st.binary(min_size=kind.min_len, max_size=min(kind.max_len, MAX_FUZZ_BYTES))
    if isinstance(kind, Text):
        if kind.pattern is not None:
            return st.from_regex(kind.pattern, fullmatch=True).filter(
                lambda text: len(text) <= kind.max_chars
            )
        return st.text(max_size=min(kind.max_chars, MAX_FUZZ_BYTES))
    # A module's own kind (e.g. the genesis's (name, bytes) pairs): small msgpack items.
    return st.one_of(
        _OTHER_ITEMS, st.tuples(st.text(max_size=8), st.binary(min_size=1, max_size=8)).map(list)
    )


def codec_wire_values(
    codec: StructCodec[Any], ids: tuple[bytes, ...] = ()
) -> st.SearchStrategy[list[Any]]:
    """Valid wire arrays of ``codec`` (each field valid on its own; the type's own
    invariants across fields may still refuse them: that is part of what is fuzzed)."""
    return st.tuples(*(wire_values(kind, ids) for _, kind in codec.fields)).map(list)


def codec_encodings(codec: StructCodec[Any]) -> st.SearchStrategy[bytes]:
    """Canonical encodings of valid wire arrays of ``codec``."""
    return codec_wire_values(codec).map(_pack)


# -- mutations of decoded trees -------------------------------------------------------------


@st.composite
def mutated_tree(draw: st.DrawFn, value: Any) -> Any:
    """``value`` (a decoded msgpack tree) with one item replaced, added or removed."""
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        copy = list(value)
        action = draw(st.sampled_from(["descend", "replace", "drop", "append", "swap"]))
        if action == "descend":
            copy[index] = draw(mutated_tree(copy[index]))
        elif action == "replace":
            copy[index] = draw(_OTHER_ITEMS)
        elif action == "drop":
            del copy[index]
        elif action == "append":
            copy.append(draw(_OTHER_ITEMS))
        else:
            other = draw(st.integers(0, len(value) - 1))
            copy[index], copy[other] = copy[other], copy[index]
        return copy
    if isinstance(value, bytes) and value:
        return draw(st.sampled_from([value[:-1], value + b"\x00", value.decode("latin-1")]))
    if isinstance(value, str):
        return draw(st.sampled_from([value.encode(), value + "\u00e9", value.upper(), ""]))
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return draw(st.sampled_from([value - 1, value + 1, -value, float(value), str(value)]))
    return draw(_OTHER_ITEMS)


def _pack_noncanonical(value: Any) -> bytes:
    """A valid but non-canonical msgpack encoding of ``value`` (wider integer and length
    forms, str instead of bin), where one exists."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64:
        return b"\xcf" + struct.pack(">Q", value)
    if isinstance(value, bytes):
        return b"\xc6" + struct.pack(">I", len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        return b"\xdb" + struct.pack(">I", len(raw)) + raw
    if isinstance(value, list):
        return b"\xdd" + struct.pack(">I", len(value)) + b"".join(map(_pack_noncanonical, value))
    return _pack(value)


@st.composite
def mutated_encodings(draw: st.DrawFn, wire: st.SearchStrategy[Any]) -> bytes:
    """Encodings near a valid one: its tree mutated then packed, re-packed non-canonically
    or old-style (str for bin), or its bytes mutated."""
    value = draw(wire)
    how = draw(st.sampled_from(["tree", "noncanonical", "oldspec", "bytes", "bytes", "valid"]))
    if how == "tree":
        try:
            return _pack(draw(mutated_tree(value)))
        except (ValueError, OverflowError, TypeError, UnicodeEncodeError):
            return _pack(value)
    if how == "noncanonical":
        return _pack_noncanonical(value)
    if how == "oldspec":
        return bytes(msgpack.packb(value, use_bin_type=False))
    if how == "bytes":
        return draw(mutated_bytes(_pack(value)))
    return _pack(value)


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one to three byte-level edits: flip, set, truncate, extend, insert,
    delete, duplicate a slice, or a msgpack type byte swapped in."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(
            st.sampled_from(
                ["flip", "set", "truncate", "extend", "insert", "delete", "dup", "type"]
            )
        )
        at = draw(st.integers(0, len(out))) if out else 0
        if edit == "flip" and at < len(out):
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and at < len(out):
            out[at] = draw(st.integers(0, 255))
        elif edit == "truncate":
            del out[at:]
        elif edit == "extend":
            out += draw(st.binary(min_size=1, max_size=8))
        elif edit == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif edit == "delete":
            del out[at : at + draw(st.integers(1, 4))]
        elif edit == "dup":
            out[at:at] = out[at : at + draw(st.integers(1, 8))]
        elif edit == "type" and at < len(out):
            out[at] = draw(st.sampled_from(TYPE_BYTES))
    return bytes(out)


def fuzz_inputs(wire: st.SearchStrategy[Any] | None) -> st.SearchStrategy[bytes]:
    """Random bytes, and when the target has a schema, valid and mutated encodings."""
    random_bytes = st.binary(max_size=256)
    if wire is None:
        return random_bytes
    return st.one_of(random_bytes, wire.map(_pack), mutated_encodings(wire))
