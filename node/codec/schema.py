"""The schema toolkit: field kinds and ``StructCodec``, the canonical msgpack encoding of one
dataclass as a fixed array (see ``node.codec``). Public, so application modules give their
transaction payloads the same guarantees as the chain's own types."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any, Generic, TypeVar, cast

import msgpack

from node.codec.compiled import Binder, compile_from_wire, compile_to_wire
from node.codec.limits import U64_MAX
from node.errors import (
    EncodeError,
    MalformedError,
    NonCanonicalError,
    OversizeError,
    SchemaError,
)

T = TypeVar("T")

# -- field kinds ----------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Kind:
    """How one field is checked and put on the wire; subclasses override ``accepts`` or the
    two conversions. ``to_wire`` raises ``EncodeError``, ``from_wire`` ``SchemaError``."""

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "accepts" in cls.__dict__:
            # A subclass that narrows ``accepts`` (``class Hash(Bytes)``) converts through
            # it unless it writes its own conversions: a parent's inline check (Int, Bytes)
            # would accept more than it does.
            for name in ("to_wire", "from_wire", "wire_source", "value_source"):
                if name not in cls.__dict__:
                    setattr(cls, name, getattr(Kind, name))

    def accepts(self, value: object) -> bool:
        """True when ``value`` is a valid Python value of this kind."""
        raise NotImplementedError

    def to_wire(self, value: object, path: str | None) -> object:
        """The msgpack-ready form of a valid ``value``. ``path`` names the value in the error
        message; ``None`` is the fast pass of a ``StructCodec``, which repeats a failed
        conversion with paths to say where it failed."""
        if not self.accepts(value):
            raise EncodeError(f"{path}: expected {self.description}, got {_show(value)}")
        return value

    def from_wire(self, raw: object, path: str | None) -> object:
        """The Python value of a decoded wire item (``path`` as in ``to_wire``)."""
        if not self.accepts(raw):
            raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")
        return raw

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        """Python source of the check (``None``: none) and the wire value of the variable
        ``var`` (``node.codec.compiled``); by default a call of ``to_wire``. A kind that
        writes its check inline must accept no more than ``to_wire`` does."""
        return None, f"{bind(self.to_wire)}({var}, None)"

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        """``wire_source`` for ``from_wire``."""
        return None, f"{bind(self.from_wire)}({var}, None)"


class Int(Kind):
    """An ``int`` (never a ``bool``) within ``[low, high]``."""

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        super().__init__(f"an integer in [{low}, {high}]")
        self.low = low
        self.high = high

    def accepts(self, value: object) -> bool:
        return type(value) is int and self.low <= value <= self.high

    # The conversions check inline: integers are most of a message's fields.
    def to_wire(self, value: object, path: str | None) -> object:
        if type(value) is int and self.low <= value <= self.high:
            return value
        raise EncodeError(f"{path}: expected {self.description}, got {_show(value)}")

    def from_wire(self, raw: object, path: str | None) -> object:
        if type(raw) is int and self.low <= raw <= self.high:
            return raw
        raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return f"(type({var}) is int and {self.low} <= {var} <= {self.high})", var

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return self.wire_source(var, bind)


class UInt(Int):
    """An unsigned integer, ``0..high`` (u64 by default)."""

    __slots__ = ()

    def __init__(self, high: int = U64_MAX) -> None:
        super().__init__(0, high)


class Bool(Kind):
    """``True`` or ``False``."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("a bool")

    def accepts(self, value: object) -> bool:
        return type(value) is bool

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return f"type({var}) is bool", var

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return self.wire_source(var, bind)


class Bytes(Kind):
    """``bytes`` whose length is within ``[min_len, max_len]``."""

    __slots__ = ("max_len", "min_len")

    def __init__(self, max_len: int, min_len: int = 0) -> None:
        shape = f"{max_len}" if min_len == max_len else f"{min_len}..{max_len}"
        super().__init__(f"{shape} bytes")
        self.min_len = min_len
        self.max_len = max_len

    @classmethod
    def exactly(cls, length: int) -> Bytes:
        """Bytes of exactly ``length`` (a hash, a key, a signature)."""
        return cls(length, length)

    def accepts(self, value: object) -> bool:
        return type(value) is bytes and self.min_len <= len(value) <= self.max_len

    def to_wire(self, value: object, path: str | None) -> object:
        if type(value) is bytes and self.min_len <= len(value) <= self.max_len:
            return value
        raise EncodeError(f"{path}: expected {self.description}, got {_show(value)}")

    def from_wire(self, raw: object, path: str | None) -> object:
        if type(raw) is bytes and self.min_len <= len(raw) <= self.max_len:
            return raw
        raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return f"(type({var}) is bytes and {self.min_len} <= len({var}) <= {self.max_len})", var

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return self.wire_source(var, bind)


class Text(Kind):
    """A ``str`` of at most ``max_chars`` characters, optionally matching ``pattern``."""

    __slots__ = ("_matched", "max_chars", "pattern")

    def __init__(self, max_chars: int, pattern: re.Pattern[str] | None = None) -> None:
        rule = f" matching {pattern.pattern!r}" if pattern else ""
        super().__init__(f"text of at most {max_chars} characters{rule}")
        self.max_chars = max_chars
        self.pattern = pattern
        # Patterned texts (chain ids, kinds, event names, attribute keys) repeat endlessly:
        # each distinct one is matched once (at most _MAX_MATCHED_TEXTS kept).
        self._matched: set[str] = set()

    def accepts(self, value: object) -> bool:
        if type(value) is not str or len(value) > self.max_chars:
            return False
        if self.pattern is None:
            return value.isascii() or _is_utf8_encodable(value)
        if value in self._matched:
            return True
        if self.pattern.fullmatch(value) is None:
            return False
        if len(self._matched) < _MAX_MATCHED_TEXTS:
            self._matched.add(value)
        return True

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        if self.pattern is not None:
            return f"{bind(self.accepts)}({var})", var
        encodable = bind(_is_utf8_encodable)
        check = f"type({var}) is str and len({var}) <= {self.max_chars}"
        return f"({check} and ({var}.isascii() or {encodable}({var})))", var

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return self.wire_source(var, bind)


_MAX_MATCHED_TEXTS = 4_096


def _is_utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: msgpack could not pack it
        return False
    return True


E = TypeVar("E", bound=IntEnum)


class EnumOf(Kind, Generic[E]):
    """A member of an ``IntEnum``, carried as its int value."""

    __slots__ = ("enum_cls", "values")

    def __init__(self, enum_cls: type[E]) -> None:
        super().__init__(f"a {enum_cls.__name__} value")
        self.enum_cls = enum_cls
        self.values = frozenset(int(member) for member in enum_cls)

    def accepts(self, value: object) -> bool:
        return isinstance(value, self.enum_cls)

    def to_wire(self, value: object, path: str | None) -> object:
        return int(cast(int, super().to_wire(value, path)))

    def from_wire(self, raw: object, path: str | None) -> object:
        if type(raw) is not int or raw not in self.values:
            raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")
        return self.enum_cls(raw)

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return f"isinstance({var}, {bind(self.enum_cls)})", f"int({var})"

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        members = bind({int(member): member for member in self.enum_cls})
        return f"(type({var}) is int and {var} in {members})", f"{members}[{var}]"


class Maybe(Kind):
    """``None`` or a value of the inner kind."""

    __slots__ = ("inner",)

    def __init__(self, inner: Kind) -> None:
        super().__init__(f"nil or {inner.description}")
        self.inner = inner

    def accepts(self, value: object) -> bool:
        return value is None or self.inner.accepts(value)

    def to_wire(self, value: object, path: str | None) -> object:
        return None if value is None else self.inner.to_wire(value, path)

    def from_wire(self, raw: object, path: str | None) -> object:
        return None if raw is None else self.inner.from_wire(raw, path)


class ArrayOf(Kind):
    """A tuple of at most ``max_items`` values of the inner kind (a msgpack array)."""

    __slots__ = ("inner", "max_items")

    def __init__(self, inner: Kind, max_items: int) -> None:
        super().__init__(f"an array of at most {max_items} items of {inner.description}")
        self.inner = inner
        self.max_items = max_items

    def accepts(self, value: object) -> bool:
        return isinstance(value, tuple) and len(value) <= self.max_items

    def to_wire(self, value: object, path: str | None) -> object:
        if not self.accepts(value):
            raise EncodeError(f"{path}: expected {self.description}, got {_show(value)}")
        inner = self.inner
        items = cast(tuple[Any], value)
        if isinstance(inner, Bytes) and all(inner.accepts(item) for item in items):
            return list(items)  # a block's transactions: no per-item work
        to_wire = inner.to_wire
        if path is None:
            return [to_wire(item, None) for item in items]
        item_path = f"{path}[]"
        return [to_wire(item, item_path) for item in items]

    def from_wire(self, raw: object, path: str | None) -> object:
        if type(raw) is not list or len(raw) > self.max_items:
            raise SchemaError(f"{path}: expected {self.description}, got {_show(raw)}")
        inner = self.inner
        # The hot path of blocks (a list of tx encodings): one pass, no per-item work.
        if isinstance(inner, Bytes) and all(inner.accepts(item) for item in raw):
            return tuple(raw)
        from_wire = inner.from_wire
        if path is None:
            return tuple([from_wire(item, None) for item in raw])
        return tuple([from_wire(item, f"{path}[{i}]") for i, item in enumerate(raw)])

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        if not isinstance(self.inner, Nested):
            return super().wire_source(var, bind)
        item = bind(self.inner.codec.wire_fast)
        check = f"(type({var}) is tuple and len({var}) <= {self.max_items})"
        return check, f"[{item}(x) for x in {var}]"

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        if not isinstance(self.inner, Nested):
            return super().value_source(var, bind)
        item = bind(self.inner.codec.value_fast)
        check = f"(type({var}) is list and len({var}) <= {self.max_items})"
        return check, f"tuple([{item}(x) for x in {var}])"


class Nested(Kind):
    """A dataclass encoded by its own ``StructCodec``."""

    __slots__ = ("codec",)

    def __init__(self, codec: StructCodec[Any]) -> None:
        super().__init__(f"a {codec.name}")
        self.codec = codec

    def accepts(self, value: object) -> bool:
        return type(value) is self.codec.cls

    def to_wire(self, value: object, path: str | None) -> object:
        return self.codec.to_wire(value, path)

    def from_wire(self, raw: object, path: str | None) -> object:
        return self.codec.from_wire(raw, path)

    def wire_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return None, f"{bind(self.codec.wire_fast)}({var})"

    def value_source(self, var: str, bind: Binder) -> tuple[str | None, str]:
        return None, f"{bind(self.codec.value_fast)}({var})"


# -- struct codec ---------------------------------------------------------------------------


class StructCodec(Generic[T]):
    """The schema of one dataclass: its fields, in declaration order, each with a ``Kind``,
    and ``max_bytes``, the largest canonical encoding accepted or produced.

    Construction fails (``TypeError``) unless the schema names exactly the dataclass's fields
    in their declared order: a field added to a type must be added here too, or encoding would
    silently drop it. ``invariant_errors`` are the exceptions the type's own constructor
    raises for fields that fit their kinds but not each other (e.g. two votes of evidence in
    the wrong order); decoding turns them into ``SchemaError``.

    ``memo_entries`` > 0 keeps that many decoded values by their bytes (the oldest goes
    first): for records read far more often than written (an account is read several times
    for each of its transactions). Only for types whose values are immutable, since one
    value is handed to every caller decoding the same bytes.
    """

    __slots__ = (
        "_memo",
        "_memo_entries",
        "cls",
        "field_count",
        "fields",
        "invariant_errors",
        "max_bytes",
        "name",
        "value_fast",
        "wire_fast",
    )

    def __init__(
        self,
        cls: type[T],
        fields: Sequence[tuple[str, Kind]],
        max_bytes: int,
        *,
        invariant_errors: tuple[type[Exception], ...] = (),
        memo_entries: int = 0,
    ) -> None:
        declared = tuple(f.name for f in dataclasses.fields(cast(Any, cls)))
        named = tuple(name for name, _ in fields)
        if declared != named:
            raise TypeError(f"schema of {cls.__name__} names {named}, the type has {declared}")
        self.cls = cls
        self.name = cls.__name__
        self.fields = tuple(fields)
        self.field_count = len(self.fields)
        self.max_bytes = max_bytes
        self.invariant_errors = invariant_errors
        self._memo_entries = memo_entries
        # An OrderedDict: dropping a plain dict's first key scans past the keys deleted
        # before it (6 us an insert at 16,384 entries, against 0.3 us).
        self._memo: OrderedDict[bytes, T] = OrderedDict()
        # The fast pass: generated functions with every field's check inline; they raise
        # without a message, and the traced path (``_fields_*``) then names the place.
        self.wire_fast = compile_to_wire(cls, self.fields, EncodeError)
        """``value -> wire array`` without error paths (``EncodeError`` with no message)."""
        self.value_fast: Callable[[object], T] = compile_from_wire(
            cls, self.fields, SchemaError, invariant_errors
        )
        """``wire array -> value`` without error paths (``SchemaError`` with no message)."""

    def to_wire(self, value: object, path: str | None = None) -> list[object]:
        """The msgpack-ready array of a ``value`` of this type (``EncodeError`` if invalid).

        Without ``path`` (a top-level or fast-pass call) the fields convert without naming
        their places; only a failure converts again with paths (``<type>.<field>[]...``), so
        the error says where while a success never builds a path."""
        if path is not None:
            return self._fields_to_wire(value, path)
        try:
            return self.wire_fast(value)
        except EncodeError:
            return self._fields_to_wire(value, self.name)  # raises, naming the place

    def _fields_to_wire(self, value: object, path: str) -> list[object]:
        if type(value) is not self.cls:
            raise EncodeError(f"{path}: expected a {self.name}, got {_show(value)}")
        return [kind.to_wire(getattr(value, name), f"{path}.{name}") for name, kind in self.fields]

    def from_wire(self, raw: object, path: str | None = None) -> T:
        """The value of a decoded wire array (``SchemaError`` if it does not fit); ``path``
        as in ``to_wire``: a failed fast pass decodes again to name the place."""
        if path is not None:
            return self._fields_from_wire(raw, path)
        try:
            return self.value_fast(raw)
        except SchemaError:
            return self._fields_from_wire(raw, self.name)  # raises, naming the place

    def _fields_from_wire(self, raw: object, path: str) -> T:
        if type(raw) is not list:
            raise SchemaError(f"{path}: expected an array of {self.field_count} fields")
        if len(raw) != self.field_count:
            which = "missing" if len(raw) < self.field_count else "unknown"
            raise SchemaError(
                f"{path}: {len(raw)} fields, expected {self.field_count} ({which} fields)"
            )
        values = [
            kind.from_wire(item, f"{path}.{name}")
            for (name, kind), item in zip(self.fields, raw, strict=True)
        ]
        try:
            return self.cls(*values)
        except self.invariant_errors as exc:
            raise SchemaError(f"{path}: {exc}") from exc

    def encode(self, value: T) -> bytes:
        """The canonical encoding of ``value`` (``EncodeError`` if invalid or too large)."""
        data = _pack(self.to_wire(value))
        if len(data) > self.max_bytes:
            raise EncodeError(f"{self.name}: {len(data)} bytes exceeds {self.max_bytes} bytes")
        return data

    def encode_remembered(self, value: T) -> bytes:
        """``encode``, and on a memo codec keep ``value`` as the decoding of the result (a
        record written now is read back soon: an account's nonce, at its next transaction)."""
        data = self.encode(value)
        if self._memo_entries:
            self._remember(data, value)
        return data

    def decode(self, data: bytes) -> T:
        """The value of a canonical encoding; any other input raises a ``DecodeError``."""
        data = _as_bytes(data)
        if self._memo_entries:
            known = self._memo.get(data)
            if known is not None:
                return known
        raw = _unpack(data, self.max_bytes, self.name)
        value = self.from_wire(raw)
        _require_canonical(raw, data, self.name)
        if self._memo_entries:
            self._remember(data, value)
        return value

    def _remember(self, data: bytes, value: T) -> None:
        memo = self._memo
        if len(memo) >= self._memo_entries:
            with contextlib.suppress(KeyError):  # emptied by another thread meanwhile
                memo.popitem(last=False)
        memo[data] = value


def _as_bytes(data: object) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"can only decode bytes, not {type(data).__name__}")


def _pack(wire: object) -> bytes:
    return cast(bytes, msgpack.packb(wire, use_bin_type=True))


def _unpack(data: bytes, max_bytes: int, what: str) -> object:
    if len(data) > max_bytes:
        raise OversizeError(f"{what}: {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if not data:
        raise MalformedError(f"{what}: empty input")
    try:
        # Length prefixes are capped at the input size, so a hostile 4 GiB prefix is refused
        # before anything is allocated; maps and ext types belong to no schema.
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.exceptions.ExtraData as exc:
        raise NonCanonicalError(f"{what}: trailing bytes after the value") from exc
    except (ValueError, msgpack.exceptions.UnpackException) as exc:
        if "max_map_len" in str(exc) or "max_ext_len" in str(exc):
            raise SchemaError(f"{what}: maps and ext types are not part of any schema") from exc
        detail = str(exc) or type(exc).__name__
        raise MalformedError(f"{what}: not well-formed msgpack ({detail})") from exc


def _require_canonical(raw: object, data: bytes, what: str) -> None:
    if _pack(raw) != data:
        raise NonCanonicalError(f"{what}: not the canonical (shortest) msgpack encoding")
