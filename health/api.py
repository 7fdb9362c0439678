"""The HTTP routes of records on a node (``ExtensionRoute`` s served beside the node's API).

JSON bodies; bytes as base64 (ciphertexts, wrapped keys, the encoded fetch request) and as
hex (ids, keys, signatures). Every body is validated before anything is read or written
(pydantic models in strict mode: types are not coerced, unknown fields are refused) and
every refusal is a typed JSON error ``{"error": message, "reason": reason}``:

| reason | status |
|---|---|
| ``malformed`` | 400 |
| ``forbidden``, ``bad_signature``, ``stale`` | 403 |
| ``not_found`` | 404 |
| ``replayed``, ``mismatch``, ``key_pending`` | 409 |
| ``erased`` | 410 |
| ``not_custodian`` | 421 (this node keeps no such record: ask a custodian's node) |
| ``too_large`` | 413 |
| ``quota`` | 507 (the owner's quota), 429 (uploads waiting: retry later) |
| ``busy`` | 503 |

Routes:

- ``PUT /records/<hex id>`` ``{"owner", "author", "resource_type", "code", "key_epoch",
  "data_time_ms", "ciphertext", "wrapped_keys": {hex recipient: base64}, "author_signature"}``
  -> 202 ``{"record", "status"}`` (``pending``, or ``stored`` when its commitment was
  committed already);
- ``POST /records/keys`` ``{"record", "wrapped_keys", "signature"}`` (the owner's over
  ``records_wire.keys_statement``) -> 200 ``{"record", "keys"}``: how many wrapped keys the
  record holds here now;
- ``POST /records/fetch`` ``{"request": base64 FETCH_REQUEST_CODEC bytes}`` (or a list of up
  to 8, one per custodian of the same record and requester, tried in order while a custodian
  is down) -> 200 ``{"record", "ciphertext", "wrapped_key", "custodian"}``;
- ``GET /records/<hex id>`` -> 200 the on-chain commitment (``records.render_record``) and
  ``"held_here"``.

The routes call a ``RecordsBackend`` (``health.extension.HealthExtension``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Protocol

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, WithJsonSchema

from health.contracts.common import CODE_PATTERN, FHIR_TYPE_PATTERN, ID_BYTES
from health.contracts.records import MAX_CUSTODIANS
from health.envelopes import WRAPPED_KEY_BYTES
from health.records_wire import (
    MAX_CIPHERTEXT_BYTES,
    MAX_WRAPPED_KEYS,
    FetchRequest,
    FetchResponse,
    RecordsError,
    decode_fetch_request,
)
from health.vault import PendingBlob, VaultLimits
from node.api.http import Request, Response
from node.app.module import JsonValue
from node.errors import BigHealthError, StorageFullError
from node.runtime.extension import ExtensionRoute
from node.types import SIGNATURE_BYTES

STATUS_OF: Final = {
    "malformed": 400,
    "bad_signature": 403,
    "forbidden": 403,
    "stale": 403,
    "not_found": 404,
    "replayed": 409,
    "mismatch": 409,
    "key_pending": 409,
    "erased": 410,
    "not_custodian": 421,
    "too_large": 413,
    "quota": 507,
    "busy": 503,
}
"""The HTTP status of each refusal (``quota`` with ``retry_later`` is 429)."""
HEX: Final = re.compile(r"[0-9a-fA-F]*", re.ASCII)
U64_MAX: Final = 2**64 - 1
MAX_SMALL_BODY_BYTES: Final = 64 * 1024
"""Bodies of the keys and fetch routes: ids, at most 64 wrapped keys, 8 requests."""
WRAPPED_KEY_B64_CHARS: Final = 4 * ((WRAPPED_KEY_BYTES + 2) // 3)
RECORD_PATH: Final = r"/records/(?P<record>(?!keys$|fetch$)[^/]+)"


def _b64_chars(size: int) -> int:
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """Bounds of the routes' bodies (the vault checks sizes again with its own limits)."""

    max_record_bytes: int = VaultLimits().max_record_bytes
    max_wrapped_keys: int = MAX_WRAPPED_KEYS

    @property
    def max_put_body_bytes(self) -> int:
        """The largest ``PUT /records/<id>`` body: the ciphertext in base64, the wrapped
        keys and the fields around them."""
        per_key = 2 * ID_BYTES + WRAPPED_KEY_B64_CHARS + 8
        return _b64_chars(self.max_record_bytes) + self.max_wrapped_keys * per_key + 4096


class RecordsBackend(Protocol):
    """What the routes need of the node (``HealthExtension`` implements it). Refusals are
    ``RecordsError`` s; ``BigHealthError`` s of the node (busy, stopping) answer 503."""

    async def upload(self, blob: PendingBlob) -> bool:
        """Keep a blob (True: stored at once, its commitment was committed already)."""
        ...

    async def add_keys(
        self, record: bytes, wrapped_keys: dict[bytes, bytes], signature: bytes
    ) -> int:
        """Add owner-signed wrapped keys; how many the record holds now."""
        ...

    async def fetch(self, requests: Sequence[FetchRequest]) -> tuple[bytes, FetchResponse]:
        """The first custodian's answer to one of ``requests`` (the custodian's id too)."""
        ...

    async def commitment(self, record: bytes) -> tuple[dict[str, JsonValue], bool] | None:
        """The rendered commitment and whether this node holds the blob; None if unknown."""
        ...


# -- field validators -----------------------------------------------------------------------


def _hex_bytes(size: int, what: str) -> Callable[[object], bytes]:
    def parse(value: object) -> bytes:
        if not isinstance(value, str) or len(value) != 2 * size or not HEX.fullmatch(value):
            raise ValueError(f"{what} is {size} bytes as {2 * size} hex digits")
        return bytes.fromhex(value)

    return parse


def _base64(max_bytes: int, what: str) -> Callable[[object], bytes]:
    def parse(value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError(f"{what} is base64 text")
        if len(value) > _b64_chars(max_bytes):
            raise ValueError(f"{what} is at most {max_bytes} bytes")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{what} is not base64") from None

    return parse


def _text(pattern: re.Pattern[str], max_chars: int, what: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if not isinstance(value, str) or len(value) > max_chars or not pattern.fullmatch(value):
            raise ValueError(f"{what} does not match {pattern.pattern}")
        return value

    return parse


def _u64(value: object) -> int:
    if type(value) is not int or not 0 <= value <= U64_MAX:
        raise ValueError("an integer in 0..2^64-1")
    return value


_recipient = _hex_bytes(ID_BYTES, "a recipient")
_wrapped = _base64(WRAPPED_KEY_BYTES, "a wrapped key")


def _wrapped_keys(value: object) -> dict[bytes, bytes]:
    if not isinstance(value, dict):
        raise ValueError("wrapped_keys maps hex recipients to base64 wrapped keys")
    if not 1 <= len(value) <= MAX_WRAPPED_KEYS:
        raise ValueError(f"1..{MAX_WRAPPED_KEYS} wrapped keys")
    keys = {_recipient(recipient): _wrapped(wrapped) for recipient, wrapped in value.items()}
    if any(len(wrapped) != WRAPPED_KEY_BYTES for wrapped in keys.values()):
        raise ValueError(f"a wrapped key is {WRAPPED_KEY_BYTES} bytes")
    return keys


def _fetch_requests(value: object) -> tuple[FetchRequest, ...]:
    items = value if isinstance(value, list) else [value]
    if not 1 <= len(items) <= MAX_CUSTODIANS:
        raise ValueError(f"1..{MAX_CUSTODIANS} requests")
    parse = _base64(256, "a request")
    requests: list[FetchRequest] = []
    for item in items:
        try:
            requests.append(decode_fetch_request(parse(item)))
        except RecordsError as exc:
            raise ValueError(exc.message) from None
    first = requests[0]
    if any((r.requester, r.record) != (first.requester, first.record) for r in requests):
        raise ValueError("the requests are of one requester for one record")
    return tuple(requests)


_B64: Final = {"type": "string", "contentEncoding": "base64"}
Id = Annotated[
    bytes,
    PlainValidator(_hex_bytes(ID_BYTES, "an id")),
    WithJsonSchema({"type": "string", "pattern": f"^[0-9a-fA-F]{{{2 * ID_BYTES}}}$"}),
]
Signature = Annotated[
    bytes,
    PlainValidator(_hex_bytes(SIGNATURE_BYTES, "a signature")),
    WithJsonSchema({"type": "string", "pattern": f"^[0-9a-fA-F]{{{2 * SIGNATURE_BYTES}}}$"}),
]
U64 = Annotated[
    int, PlainValidator(_u64), WithJsonSchema({"type": "integer", "minimum": 0, "maximum": U64_MAX})
]
WrappedKeys = Annotated[
    dict[bytes, bytes],
    PlainValidator(_wrapped_keys),
    WithJsonSchema(
        {
            "type": "object",
            "description": "hex recipient id -> base64 wrapped key",
            "additionalProperties": _B64,
            "minProperties": 1,
            "maxProperties": MAX_WRAPPED_KEYS,
        }
    ),
]
ResourceType = Annotated[
    str,
    PlainValidator(_text(FHIR_TYPE_PATTERN, 64, "resource_type")),
    WithJsonSchema({"type": "string", "pattern": f"^{FHIR_TYPE_PATTERN.pattern}$"}),
]
Code = Annotated[
    str,
    PlainValidator(_text(CODE_PATTERN, 64, "code")),
    WithJsonSchema({"type": "string", "pattern": f"^{CODE_PATTERN.pattern}$"}),
]
Ciphertext = Annotated[
    bytes,
    PlainValidator(_base64(MAX_CIPHERTEXT_BYTES, "the ciphertext")),
    WithJsonSchema(_B64),
]
FetchRequests = Annotated[
    tuple[FetchRequest, ...],
    PlainValidator(_fetch_requests),
    WithJsonSchema(
        {
            "description": "a base64 FETCH_REQUEST_CODEC request, or a list of up to 8",
            "anyOf": [_B64, {"type": "array", "items": _B64, "minItems": 1, "maxItems": 8}],
        }
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PutRecordBody(_Body):
    """``PUT /records/<id>``."""

    owner: Id
    author: Id
    resource_type: ResourceType
    code: Code
    key_epoch: U64
    data_time_ms: U64
    ciphertext: Ciphertext
    wrapped_keys: WrappedKeys
    author_signature: Signature


class AddKeysBody(_Body):
    """``POST /records/keys``."""

    record: Id
    wrapped_keys: WrappedKeys
    signature: Signature


class FetchBody(_Body):
    """``POST /records/fetch``."""

    request: FetchRequests


# -- responses ------------------------------------------------------------------------------


def json_response(status: int, document: dict[str, JsonValue]) -> Response:
    """A JSON response."""
    return Response(status, json.dumps(document, separators=(",", ":")).encode())


def error_response(error: RecordsError) -> Response:
    """The typed JSON error of a refusal."""
    status = STATUS_OF[error.reason]
    if error.reason == "quota" and error.retry_later:
        status = 429
    return json_response(status, {"error": error.message, "reason": error.reason})


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"[:300]


def _parse(model: type[_Body], body: bytes, max_bytes: int) -> Any:
    if len(body) > max_bytes:
        raise RecordsError("too_large", f"the body exceeds {max_bytes} bytes")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RecordsError("malformed", _validation_message(exc)) from None


def _record_of(match: Any) -> bytes:
    return _checked_id(match.group("record"))


def _checked_id(text: str) -> bytes:
    try:
        return _hex_bytes(ID_BYTES, "a record id")(text)
    except ValueError as exc:
        raise RecordsError("malformed", str(exc)) from None


# -- routes ---------------------------------------------------------------------------------


Handler = Callable[[Request, Any], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """``handler`` with its refusals (and the node's own errors) as typed JSON errors."""

    async def route(request: Request, match: Any) -> Response:
        try:
            return await handler(request, match)
        except RecordsError as exc:
            return error_response(exc)
        except StorageFullError:
            return error_response(RecordsError("quota", "the custodian's disk is full"))
        except BigHealthError as exc:
            return error_response(RecordsError("busy", f"the node cannot serve now: {exc}"))

    return route


def records_routes(
    backend: RecordsBackend, limits: ApiLimits | None = None
) -> list[ExtensionRoute]:
    """The records routes served by ``backend`` (the specific paths first: the node's API
    tries patterns in order)."""
    bounds = limits if limits is not None else ApiLimits()

    async def put_record(request: Request, match: Any) -> Response:
        record = _record_of(match)
        body: PutRecordBody = _parse(PutRecordBody, request.body, bounds.max_put_body_bytes)
        if len(body.ciphertext) > bounds.max_record_bytes:
            raise RecordsError(
                "too_large", f"a ciphertext is at most {bounds.max_record_bytes} bytes"
            )
        if len(body.wrapped_keys) > bounds.max_wrapped_keys:
            raise RecordsError("too_large", f"at most {bounds.max_wrapped_keys} wrapped keys")
        blob = PendingBlob(
            record_id=record,
            owner=body.owner,
            author=body.author,
            resource_type=body.resource_type,
            code=body.code,
            key_epoch=body.key_epoch,
            data_time_ms=body.data_time_ms,
            ciphertext=body.ciphertext,
            wrapped_keys=dict(body.wrapped_keys),
            author_signature=body.author_signature,
        )
        stored = await backend.upload(blob)
        status = "stored" if stored else "pending"
        return json_response(202, {"record": record.hex(), "status": status})

    async def add_keys(request: Request, match: Any) -> Response:
        body: AddKeysBody = _parse(AddKeysBody, request.body, MAX_SMALL_BODY_BYTES)
        held = await backend.add_keys(body.record, dict(body.wrapped_keys), body.signature)
        return json_response(200, {"record": body.record.hex(), "keys": held})

    async def fetch(request: Request, match: Any) -> Response:
        body: FetchBody = _parse(FetchBody, request.body, MAX_SMALL_BODY_BYTES)
        custodian, response = await backend.fetch(body.request)
        document: dict[str, JsonValue] = {
            "record": body.request[0].record.hex(),
            "ciphertext": base64.b64encode(response.ciphertext).decode("ascii"),
            "wrapped_key": base64.b64encode(response.wrapped_key).decode("ascii"),
            "custodian": custodian.hex(),
        }
        return json_response(200, document)

    async def get_record(request: Request, match: Any) -> Response:
        record = _record_of(match)
        found = await backend.commitment(record)
        if found is None:
            raise RecordsError("not_found", f"no record {record.hex()} is committed")
        rendered, held_here = found
        return json_response(200, {**rendered, "held_here": held_here})

    return [
        ExtensionRoute("POST", "/records/keys", _guarded(add_keys)),
        ExtensionRoute("POST", "/records/fetch", _guarded(fetch)),
        ExtensionRoute("PUT", RECORD_PATH, _guarded(put_record)),
        ExtensionRoute("GET", RECORD_PATH, _guarded(get_record)),
    ]
