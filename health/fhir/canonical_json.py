"""The JSON of records: ``dumps`` (canonical bytes, what gets encrypted) and ``loads``
(bounded parsing: size, depth, duplicate keys, no NaN or infinities)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from health.envelopes import MAX_PLAINTEXT_BYTES
from health.fhir.base import FhirError, Json

MAX_JSON_BYTES: Final = MAX_PLAINTEXT_BYTES
"""Largest JSON text ``dumps`` writes or ``loads`` reads (a record's largest content)."""
MAX_JSON_DEPTH: Final = 32
"""Deepest nesting of objects and arrays accepted (FHIR resources nest about ten deep)."""


def dumps(resource: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of ``resource`` (what gets encrypted): UTF-8, keys sorted,
    no whitespace, no NaN or infinities, string keys only, at most ``MAX_JSON_DEPTH`` deep
    and ``MAX_JSON_BYTES`` long. Equal values give equal bytes; ``loads`` reads them
    back. ``FhirError`` if the value cannot be such JSON."""
    if not isinstance(resource, Mapping):
        raise FhirError(f"a resource is a JSON object, got {type(resource).__name__}")
    _check_tree(resource)
    try:
        text = json.dumps(
            resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        data = text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise FhirError(f"not representable as JSON: {exc}") from exc
    if len(data) > MAX_JSON_BYTES:
        raise FhirError(f"a resource is at most {MAX_JSON_BYTES} bytes of JSON, got {len(data)}")
    return data


def loads(data: bytes | str) -> Json:
    """The JSON object in ``data`` (UTF-8 bytes, or text). ``FhirError`` if it is larger
    than ``MAX_JSON_BYTES``, not UTF-8, not JSON, not an object, deeper than
    ``MAX_JSON_DEPTH``, or has a duplicate key, a NaN or an infinity."""
    if isinstance(data, str):
        if len(data) > MAX_JSON_BYTES:
            raise FhirError(f"a JSON text is at most {MAX_JSON_BYTES} bytes")
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FhirError("the text is not valid Unicode") from exc
    if not isinstance(data, bytes | bytearray):
        raise FhirError(f"JSON comes as bytes or text, got {type(data).__name__}")
    if len(data) > MAX_JSON_BYTES:
        raise FhirError(f"a JSON text is at most {MAX_JSON_BYTES} bytes, got {len(data)}")
    try:
        value = json.loads(
            bytes(data).decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
        )
    except FhirError:
        raise
    except RecursionError as exc:
        raise FhirError(f"JSON nests deeper than {MAX_JSON_DEPTH}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise FhirError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise FhirError(f"a resource is a JSON object, got {type(value).__name__}")
    _check_tree(value)
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> Json:
    result: Json = {}
    for key, value in pairs:
        if key in result:
            raise FhirError(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise FhirError(f"{name} is not a JSON number")


def _check_tree(value: Any) -> None:
    """``FhirError`` if ``value`` nests objects and arrays deeper than ``MAX_JSON_DEPTH``
    or has an object key that is not a string (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: list[Any]
        if isinstance(node, Mapping):
            if not all(isinstance(key, str) for key in node):
                raise FhirError("JSON object keys are strings")
            children = list(node.values())
        elif isinstance(node, list | tuple):
            children = list(node)
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise FhirError(f"JSON nests deeper than {MAX_JSON_DEPTH}")
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, Mapping | list | tuple)
        )
