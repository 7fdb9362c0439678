"""Per-module genesis state: JSON-like values with one canonical msgpack encoding each.

A genesis document carries, for each module that wants one, the module's initial state
(``Genesis.app_state``: module name -> bytes). The bytes are the canonical msgpack of a
``JsonValue`` — a dict with ``str`` keys, a list, a ``str``, an ``int`` (within msgpack's
range: -2**63 .. 2**64 - 1), a ``bool`` or ``None``; never a float (module state is exact)
nor bytes (write them as hex text). Maps are written with their keys sorted, and every item
in msgpack's shortest form, so one value has exactly one encoding and the genesis hash
commits to the value, not to how a file happened to order it.

``encode_app_state(value)`` and ``decode_app_state(data)`` raise ``InvalidGenesisError``
(with the path of the offending item) for anything else: floats, bytes, non-``str`` keys,
nesting deeper than ``MAX_APP_STATE_DEPTH``, more than ``MAX_APP_STATE_BYTES``, and (when
decoding) bytes that are not the canonical encoding of such a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, cast

import msgpack

from node.app.module import JsonValue, check_module_name
from node.chain.errors import InvalidGenesisError
from node.codec import MIB

MAX_APP_STATE_DEPTH: Final = 16
"""Containers (maps, lists) nested at most this deep, the top one included."""
MAX_APP_STATE_BYTES: Final = 16 * MIB
"""Largest encoding of one module's genesis state (the whole genesis has the same limit)."""
MAX_APP_STATE_MODULES: Final = 64
"""Most modules a genesis document may give a state."""
_I64_MIN: Final = -(1 << 63)
_U64_MAX: Final = (1 << 64) - 1

AppStateEntries = tuple[tuple[str, bytes], ...]
"""``Genesis.app_state``: ``(module name, canonical bytes)`` pairs, names ascending."""


def encode_app_state(value: object, *, max_bytes: int = MAX_APP_STATE_BYTES) -> bytes:
    """The canonical encoding of the JSON-like ``value`` (see the module docstring);
    ``InvalidGenesisError`` if ``value`` is not one or encodes to over ``max_bytes``."""
    wire = _canonical(value, "app_state", 0)
    data = cast(bytes, msgpack.packb(wire, use_bin_type=True))
    if len(data) > max_bytes:
        raise InvalidGenesisError(f"app_state: {len(data)} bytes exceeds {max_bytes} bytes")
    return data


def decode_app_state(data: bytes, *, max_bytes: int = MAX_APP_STATE_BYTES) -> JsonValue:
    """The value ``data`` is the canonical encoding of (``InvalidGenesisError`` if it is
    not one, or is over ``max_bytes``)."""
    if type(data) is not bytes:
        raise InvalidGenesisError(f"app_state must be bytes, not {type(data).__name__}")
    if not data or len(data) > max_bytes:
        raise InvalidGenesisError(f"app_state: {len(data)} bytes, expected 1..{max_bytes}")
    try:
        value: object = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=len(data),
            max_bin_len=len(data),
            max_array_len=len(data),
            max_map_len=len(data),
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as exc:
        detail = str(exc) or type(exc).__name__
        raise InvalidGenesisError(f"app_state: not well-formed msgpack ({detail})") from exc
    if encode_app_state(value, max_bytes=max_bytes) != data:
        raise InvalidGenesisError("app_state: not the canonical encoding of its value")
    return cast(JsonValue, value)


def encode_app_states(
    states: Mapping[str, object], *, max_total_bytes: int = MAX_APP_STATE_BYTES
) -> AppStateEntries:
    """``Genesis.app_state`` for ``states`` (module name -> JSON-like value): names checked
    and sorted, values encoded; ``InvalidGenesisError`` for a bad name or value, or more
    than ``max_total_bytes`` in all."""
    if not isinstance(states, Mapping):
        raise InvalidGenesisError("app_state must map module names to values")
    entries: list[tuple[str, bytes]] = []
    for name in sorted(states, key=str):
        _check_name(name)
        try:
            entries.append((name, encode_app_state(states[name])))
        except InvalidGenesisError as exc:
            raise InvalidGenesisError(f"module {name}: {exc}") from exc
    result = tuple(entries)
    check_app_states(result, max_total_bytes=max_total_bytes)
    return result


def check_app_states(
    entries: object, *, max_total_bytes: int = MAX_APP_STATE_BYTES
) -> AppStateEntries:
    """``entries`` if it is a valid ``Genesis.app_state`` (a tuple of ``(name, canonical
    bytes)`` pairs, names valid, unique and ascending, at most ``MAX_APP_STATE_MODULES``
    of them, ``max_total_bytes`` in all); ``InvalidGenesisError`` otherwise."""
    if type(entries) is not tuple or len(entries) > MAX_APP_STATE_MODULES:
        raise InvalidGenesisError(
            f"app_state must be a tuple of at most {MAX_APP_STATE_MODULES} (name, bytes) pairs"
        )
    total_bytes = 0
    previous = ""
    for entry in entries:
        if type(entry) is not tuple or len(entry) != 2 or type(entry[1]) is not bytes:
            raise InvalidGenesisError("an app_state entry is a (module name, bytes) pair")
        name, data = entry
        _check_name(name)
        if previous and name <= previous:
            raise InvalidGenesisError("app_state module names must be unique and ascending")
        try:
            decode_app_state(data)
        except InvalidGenesisError as exc:
            raise InvalidGenesisError(f"module {name}: {exc}") from exc
        total_bytes += len(data)
        previous = name
    if total_bytes > max_total_bytes:
        raise InvalidGenesisError(f"app_state: {total_bytes} bytes exceeds {max_total_bytes}")
    return cast(AppStateEntries, entries)


def _check_name(name: object) -> None:
    try:
        check_module_name(cast(str, name))
    except ValueError as exc:
        raise InvalidGenesisError(f"app_state: {exc}") from exc


def _canonical(value: object, path: str, depth: int) -> object:
    """``value`` with every map rebuilt in sorted key order (checked on the way)."""
    if value is None or type(value) is bool:
        return value
    if type(value) is int:
        if not _I64_MIN <= value <= _U64_MAX:
            raise InvalidGenesisError(f"{path}: the integer {value} is outside msgpack's range")
        return value
    if type(value) is str:
        _require_utf8(value, path)
        return value
    if type(value) is list or type(value) is dict:
        if depth >= MAX_APP_STATE_DEPTH:
            raise InvalidGenesisError(f"{path}: nested over {MAX_APP_STATE_DEPTH} levels")
        if type(value) is list:
            return [_canonical(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        return _canonical_map(cast(dict[object, object], value), path, depth)
    kind = type(value).__name__
    raise InvalidGenesisError(f"{path}: a {kind} is not allowed (JSON values only, no floats)")


def _canonical_map(value: dict[object, object], path: str, depth: int) -> dict[str, object]:
    keys = list(value)
    if not all(type(key) is str for key in keys):
        bad = next(key for key in keys if type(key) is not str)
        raise InvalidGenesisError(f"{path}: map keys must be strings, not {type(bad).__name__}")
    text_keys = sorted(cast(list[str], keys))
    for key in text_keys:
        _require_utf8(key, f"{path} key")
    return {key: _canonical(value[key], f"{path}.{key}", depth + 1) for key in text_keys}


def _require_utf8(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidGenesisError(f"{path}: text that is not valid UTF-8") from exc
