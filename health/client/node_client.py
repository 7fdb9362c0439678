"""A blocking HTTP client of one node's API: the chain routes and the records routes.

Blocking on purpose, like ``node.api.client.ApiClient`` (whose errors it raises): the
command line, the tests and a meter simulator call it directly; trio code calls it through
``trio.to_thread.run_sync``. Each request opens one connection (``http.client``), with a
timeout on every socket operation (``timeout_s``) and a bound on the response read
(``max_response_bytes``); nothing it receives is trusted: documents are checked for the
fields used, and a missing or mistyped field is an ``ApiError`` naming it.

The transport is a parameter (``HttpTransport``): ``HttpClientTransport`` talks to real
nodes; tests may answer in process.

Routes (``node/api/routes.py``, ``health/api.py``):

- ``POST /tx``, ``GET /accounts/<hex>/nonce``, ``GET /tx/<hash>``,
  ``GET /state/<module>/<path>``, ``GET /state/<module>?prefix=``, ``GET /events``,
  ``GET /status``;
- ``PUT /records/<hex id>``, ``POST /records/keys``, ``POST /records/fetch``,
  ``GET /records/<hex id>``: JSON bodies, bytes as base64 (ciphertexts, wrapped keys) and
  hex (ids, keys, signatures); an error is ``{"error", "reason"}`` (``NodeResponseError``).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import quote, urlencode, urlsplit

from node.api.client import ApiError, ApiResponseError, ApiUnreachableError
from node.types import Event, EventAttribute, ResultCode, TxReceipt

DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
"""A record's blob (1 MiB + 64) in base64 and JSON fits many times over."""
MAX_EVENTS_LIMIT: Final = 1_000
MAX_WAIT_MS: Final = 30_000
JSON_TYPE: Final = "application/json"


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What a transport got back: the status and the body."""

    status: int
    body: bytes


class HttpTransport(Protocol):
    """Sends one HTTP request (``url`` absolute) and returns the reply; raises
    ``ApiUnreachableError`` when nothing answers, ``ApiError`` for a reply larger than
    ``max_response_bytes``."""

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        max_response_bytes: int,
    ) -> HttpReply: ...


class HttpClientTransport:
    """``http.client``, one connection per request (see the module docstring)."""

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        max_response_bytes: int,
    ) -> HttpReply:
        parts = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = connection_class(parts.netloc, timeout=timeout_s)
        try:
            connection.request(method, target, body=body, headers=dict(headers))
            response = connection.getresponse()
            data = response.read(max_response_bytes + 1)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            raise ApiUnreachableError(
                f"no node answers at {parts.scheme}://{parts.netloc} ({exc}): is it running?"
            ) from exc
        finally:
            connection.close()
        if len(data) > max_response_bytes:
            raise ApiError(f"{url} answered more than {max_response_bytes} bytes")
        return HttpReply(status, data)


class NodeResponseError(ApiResponseError):
    """An error status from the node; ``reason`` is the records routes' reason (``""``
    when the body gave none)."""

    def __init__(self, status: int, message: str, document: dict[str, Any] | None) -> None:
        super().__init__(status, message, document)
        reason = None if document is None else document.get("reason")
        self.reason = reason if isinstance(reason, str) else ""


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The node's verdict on ``POST /tx``: accepted into its mempool, or why not
    (``reason``: a ``node.errors.RejectReason`` value)."""

    accepted: bool
    tx_hash: bytes
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class CommittedReceipt:
    """``GET /tx/<hash>``: where a transaction committed, and its receipt."""

    height: int
    index: int
    time_ms: int
    receipt: TxReceipt


@dataclass(frozen=True, slots=True)
class StateValue:
    """``GET /state/<module>/<path>``: the stored bytes (None when absent), the module's
    rendering of them and the height read."""

    height: int
    value: bytes | None
    rendered: Any


@dataclass(frozen=True, slots=True)
class FetchedRecord:
    """``POST /records/fetch``: a record's ciphertext and its data key wrapped for the
    requester, as served by ``custodian``."""

    record: bytes
    ciphertext: bytes
    wrapped_key: bytes
    custodian: bytes


@dataclass(frozen=True, slots=True)
class RecordUpload:
    """The body of ``PUT /records/<id>``: a sealed record, its wrapped keys and the
    commitment fields with the author's statement signature."""

    record: bytes
    owner: bytes
    author: bytes
    resource_type: str
    code: str
    key_epoch: int
    data_time_ms: int
    ciphertext: bytes
    wrapped_keys: Mapping[bytes, bytes]
    author_signature: bytes


class NodeClient:
    """The API of the node at ``base_url`` (``http://host:port``, maybe with a path)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: HttpTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"a node API URL is http(s)://host:port[/path], not {base_url!r}")
        if timeout_s <= 0 or max_response_bytes < 1:
            raise ValueError("timeout_s must be > 0 and max_response_bytes >= 1")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.transport: HttpTransport = transport or HttpClientTransport()

    def __repr__(self) -> str:
        return f"NodeClient({self.base_url!r})"

    # -- chain routes -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``GET /status``."""
        return self._json("GET", "/status")

    def submit_tx(self, raw: bytes) -> SubmitResult:
        """``POST /tx`` with the canonical bytes; the node's verdict (a refusal is returned,
        not raised: it is an answer)."""
        reply = self._send("POST", "/tx", raw, "application/octet-stream")
        document = _document(reply, self.base_url)
        if "accepted" not in document:
            raise _error_of(reply.status, document, self.base_url)
        return SubmitResult(
            accepted=document["accepted"] is True,
            tx_hash=_hex(document, "tx_hash", 32),
            reason=str(document.get("reason", "")),
            message=str(document.get("message", "")),
        )

    def next_nonce(self, public_key: bytes) -> int:
        """``GET /accounts/<hex>/nonce``: the nonce a new transaction of this key carries."""
        return _int(self._json("GET", f"/accounts/{public_key.hex()}/nonce"), "next_nonce")

    def tx_receipt(self, tx_hash: bytes) -> CommittedReceipt | None:
        """``GET /tx/<hash>``: the committed receipt, or None while not committed here."""
        reply = self._send("GET", f"/tx/{tx_hash.hex()}")
        if reply.status == 404:
            return None
        return receipt_of(self._checked(reply))

    def state(self, module: str, path: str, height: int | None = None) -> StateValue:
        """``GET /state/<module>/<path>[?height=]`` (the value may be absent: ``value``
        None). A module or path the node refuses is a ``NodeResponseError`` (400/404)."""
        query = "" if height is None else f"?height={height}"
        document = self._json("GET", f"/state/{quote(module, safe='')}/{quote(path)}{query}")
        value_hex = document.get("value_hex")
        if value_hex is not None and not isinstance(value_hex, str):
            raise ApiError(f"{self.base_url}: value_hex is not text")
        return StateValue(
            height=_int(document, "height"),
            value=None if value_hex is None else _unhex(value_hex, "value_hex"),
            rendered=document.get("value"),
        )

    def entries(self, module: str, prefix: str | None = None, limit: int = 100) -> dict[str, Any]:
        """``GET /state/<module>?prefix=&limit=``: ``{"entries": [{"key", "value",
        "value_hex"}], "truncated", "height", ...}``."""
        query: dict[str, str | int] = {"limit": limit}
        if prefix is not None:
            query["prefix"] = prefix
        return self._json("GET", f"/state/{quote(module, safe='')}?{urlencode(query)}")

    def events(
        self, after: int | str = 0, *, kind: str = "", limit: int = 100, wait_ms: int = 0
    ) -> dict[str, Any]:
        """``GET /events``: ``{"events": [...], "next_after", "height"}``; with ``wait_ms``
        the node holds the request until a block commits (keep ``wait_ms`` below
        ``timeout_s``)."""
        if not 1 <= limit <= MAX_EVENTS_LIMIT or not 0 <= wait_ms <= MAX_WAIT_MS:
            raise ValueError(f"limit is 1..{MAX_EVENTS_LIMIT}, wait_ms 0..{MAX_WAIT_MS}")
        if wait_ms / 1000 >= self.timeout_s:
            raise ValueError("wait_ms must stay below the client's timeout")
        query = urlencode({"after": str(after), "kind": kind, "limit": limit, "wait_ms": wait_ms})
        document = self._json("GET", f"/events?{query}")
        if not isinstance(document.get("events"), list):
            raise ApiError(f"{self.base_url}: an events page without a list of events")
        return document

    # -- records routes ---------------------------------------------------------------------

    def put_record(self, upload: RecordUpload) -> dict[str, Any]:
        """``PUT /records/<id>``: hand a custodian a sealed record (202 pending)."""
        body = {
            "owner": upload.owner.hex(),
            "author": upload.author.hex(),
            "resource_type": upload.resource_type,
            "code": upload.code,
            "key_epoch": upload.key_epoch,
            "data_time_ms": upload.data_time_ms,
            "ciphertext": _b64(upload.ciphertext),
            "wrapped_keys": wrapped_keys_document(upload.wrapped_keys),
            "author_signature": upload.author_signature.hex(),
        }
        return self._json("PUT", f"/records/{upload.record.hex()}", body)

    def post_record_keys(
        self, record: bytes, wrapped_keys: Mapping[bytes, bytes], signature: bytes
    ) -> int:
        """``POST /records/keys``: add keys wrapped for new readers (``signature``: the
        owner's over ``records_wire.keys_statement``); how many keys the custodian holds."""
        body = {
            "record": record.hex(),
            "wrapped_keys": wrapped_keys_document(wrapped_keys),
            "signature": signature.hex(),
        }
        return _int(self._json("POST", "/records/keys", body), "keys")

    def fetch_record(self, request: bytes) -> FetchedRecord:
        """``POST /records/fetch`` with an encoded, signed ``FetchRequest``."""
        document = self._json("POST", "/records/fetch", {"request": _b64(request)})
        return FetchedRecord(
            record=_hex(document, "record", 32),
            ciphertext=_b64_field(document, "ciphertext"),
            wrapped_key=_b64_field(document, "wrapped_key"),
            custodian=_hex(document, "custodian", 32),
        )

    def record_commitment(self, record: bytes) -> dict[str, Any] | None:
        """``GET /records/<id>``: the on-chain commitment and ``held_here``; None if the
        node knows no such record."""
        reply = self._send("GET", f"/records/{record.hex()}")
        if reply.status == 404:
            return None
        return self._checked(reply)

    # -- plumbing ---------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        return self._checked(self._send(method, path, data, JSON_TYPE if data else None))

    def _send(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> HttpReply:
        headers = {"accept": JSON_TYPE}
        if content_type is not None:
            headers["content-type"] = content_type
        return self.transport.request(
            method,
            self.base_url + path,
            body,
            headers,
            timeout_s=self.timeout_s,
            max_response_bytes=self.max_response_bytes,
        )

    def _checked(self, reply: HttpReply) -> dict[str, Any]:
        document = _document(reply, self.base_url)
        if reply.status >= 400:
            raise _error_of(reply.status, document, self.base_url)
        return document


# -- documents -------------------------------------------------------------------------------


def receipt_of(document: dict[str, Any]) -> CommittedReceipt:
    """A ``GET /tx/<hash>`` document as a typed receipt (``ApiError`` if malformed)."""
    code_name = document.get("code")
    try:
        code = ResultCode[str(code_name).upper()]
    except KeyError:
        raise ApiError(f"unknown result code {code_name!r}") from None
    events_doc = document.get("events")
    if not isinstance(events_doc, list):
        raise ApiError("a receipt without a list of events")
    events = tuple(_event_of(item) for item in events_doc)
    receipt = TxReceipt(
        tx_hash=_hex(document, "tx_hash", 32),
        code=code,
        log=str(document.get("log", "")),
        gas_used=_int(document, "gas_used"),
        events=events,
    )
    return CommittedReceipt(
        _int(document, "height"), _int(document, "index"), _int(document, "time_ms"), receipt
    )


def _event_of(item: object) -> Event:
    if not isinstance(item, dict) or not isinstance(item.get("attributes"), dict):
        raise ApiError("an event is {kind, attributes}")
    attributes = tuple(
        EventAttribute(str(key), str(value)) for key, value in sorted(item["attributes"].items())
    )
    return Event(str(item.get("kind", "")), attributes)


def wrapped_keys_document(wrapped_keys: Mapping[bytes, bytes]) -> dict[str, str]:
    """``{hex recipient: base64 wrapped key}``, recipients sorted."""
    return {recipient.hex(): _b64(wrapped_keys[recipient]) for recipient in sorted(wrapped_keys)}


def _document(reply: HttpReply, where: str) -> dict[str, Any]:
    try:
        document = json.loads(reply.body)
    except ValueError:
        if reply.status >= 400:
            text = reply.body[:200].decode("utf-8", "replace")
            raise NodeResponseError(reply.status, text or "no body", None) from None
        raise ApiError(f"{where} answered with something other than JSON") from None
    if not isinstance(document, dict):
        raise ApiError(f"{where} answered with a JSON {type(document).__name__}")
    return document


def _error_of(status: int, document: dict[str, Any], where: str) -> NodeResponseError:
    message = document.get("error") or document.get("message") or f"HTTP {status} from {where}"
    return NodeResponseError(status, str(message), document)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64_field(document: dict[str, Any], name: str) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        raise ApiError(f"the answer has no {name}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(f"the answer's {name} is not base64") from None


def _hex(document: dict[str, Any], name: str, size: int) -> bytes:
    value = document.get(name)
    data = _unhex(value, name) if isinstance(value, str) else b""
    if len(data) != size:
        raise ApiError(f"the answer's {name} is not {size} bytes of hex")
    return data


def _unhex(value: str, name: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ApiError(f"the answer's {name} is not hex") from None


def _int(document: dict[str, Any], name: str) -> int:
    value = document.get(name)
    if type(value) is not int:
        raise ApiError(f"the answer's {name} is not an integer")
    return value
