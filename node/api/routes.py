"""The node's HTTP API: routes from requests to a ``NodeGateway``.

    GET  /health                 200 {"status": "ok", ...} while the core answers, else 503
    GET  /status                 the node's status (``node.api.views.status_document``)
    GET  /metrics                Prometheus text exposition
    GET  /blocks/latest          the last committed block (404 before the first)
    GET  /blocks/<height>        a committed block (404 if not committed here)
    GET  /accounts/<hex>/nonce   {"public_key", "next_nonce"}: what a new tx must carry
    POST /tx                     a transaction: the raw canonical bytes
                                 (application/octet-stream) or {"tx": "<hex>"} (JSON)
    POST /txs                    a batch: a msgpack array of 1..1024 transactions
                                 (application/msgpack), verified off the core's task;
                                 200 {"accepted": n, "results": [{"tx_hash", "accepted",
                                 "reason", "message"}, ...]} in batch order
    GET  /tx/<hash>              a committed transaction's receipt: {"tx_hash", "height",
                                 "index", "time_ms", "ok", "code", "log", "gas_used",
                                 "events"} (404 if not committed here)
    GET  /state/<module>/<path>  the key the module's ``query_key(path)`` names, at
         [?height=N]             ``height`` (default: latest): {"module", "path", "key",
                                 "height", "state_root", "value" (the module's rendering,
                                 null when absent), "value_hex", "proof"}
    GET  /state/<module>         the entries under the prefix ``query_key(path)`` names
         [?prefix=<path>]        (default: the whole module) at the latest height, rendered,
         [&limit=N]              no proofs: at most N (default 100, at most 1000), with
                                 "truncated" when there are more
    GET  /events?after=<cursor>  committed events after the cursor (default 0): block events
         [&kind=<prefix>]        and the events of successful transactions, each
         [&limit=N]              {"height", "index", "time_ms", "tx_hash" (null for block
         [&wait_ms=M]            events), "kind", "attributes"}, kinds starting with
                                 ``prefix``, at most N (default 100, at most 1000), and
                                 "next_after" to continue from (a height, or "h:i" when the
                                 page ended inside a height). With none to give and the tip
                                 reached, it waits until a block commits or M ms pass
                                 (default 0, at most 30000 and below the request timeout);
                                 at most ``max_long_polls`` requests wait at once (503).

``POST /tx`` answers 202 ``{"accepted": true, "tx_hash"}`` once the transaction is in the
mempool (committing it is the chain's business), or ``{"accepted": false, "reason",
"message"}`` with 400 (not a transaction), 422 (refused: signature, nonce, application
check) or 503 (mempool full: retry later).

Errors are ``{"error": message}``: 400 for a malformed request (a key or hash that is not
64 hex digits, a bad number, cursor, kind or path — the module's ``query_key`` refused it),
404 for what is not here (an unknown module, a height whose state is no longer kept, a
transaction not committed), 503 when the node cannot answer now.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import unquote

import msgpack
import trio
from prometheus_client import CONTENT_TYPE_LATEST

from node.api.gateway import GatewayBusyError, NodeGateway
from node.api.http import Request, Response, json_error
from node.api.views import (
    block_document,
    entries_document,
    events_document,
    state_document,
    status_document,
    tx_document,
)
from node.chain.actions import TxResult
from node.chain.errors import QueryError
from node.chain.event_feed import MAX_EVENTS_PER_PAGE, EventCursor, check_page_request
from node.chain.queries import MAX_ENTRIES_PER_PAGE, BadQueryError
from node.codec import MAX_TX_BYTES, MAX_TXS_PER_BATCH, U64_MAX
from node.errors import RejectReason
from node.types import DIGEST_BYTES, PUBLIC_KEY_BYTES

HEALTH_TIMEOUT_S: Final = 2.0
"""``/health`` reports unhealthy if the core does not answer within this time."""
DEFAULT_PAGE_LIMIT: Final = 100
"""Entries or events a page holds unless ``limit`` says otherwise."""
MAX_WAIT_MS: Final = 30_000
"""Longest ``wait_ms`` of ``GET /events``."""
MAX_LONG_POLLS: Final = 32
"""``GET /events`` requests waiting at once (the server serves 64 connections by default)."""
MAX_QUERY_PATH_CHARS: Final = 1_024
"""Longest ``<path>`` of ``/state/<module>/<path>`` (and ``prefix``)."""
BLOCK_PATH: Final = re.compile(r"/blocks/(latest|[0-9]{1,20})")
NONCE_PATH: Final = re.compile(r"/accounts/([^/]{1,200})/nonce")
TX_PATH: Final = re.compile(r"/tx/([^/]{1,200})")
STATE_PATH: Final = re.compile(r"/state/([^/]{1,64})(?:/(.+))?", re.DOTALL)
_BAD_REQUEST_REASONS: Final = frozenset({RejectReason.MALFORMED, RejectReason.OVERSIZE})


class BadRequestError(ValueError):
    """A request that cannot be served as asked (answered 400 with the message)."""


Route = Callable[[Request, "re.Match[str] | None"], Awaitable[Response]]


def json_response(status: int, document: object) -> Response:
    """``document`` as a JSON response."""
    return Response(status, json.dumps(document).encode())


class NodeApi:
    """The request handler of the node's API server."""

    def __init__(
        self,
        gateway: NodeGateway,
        *,
        max_wait_ms: int = MAX_WAIT_MS,
        max_long_polls: int = MAX_LONG_POLLS,
    ) -> None:
        """``max_wait_ms``: how long ``GET /events`` may wait, at most (keep it below the
        server's handler timeout); ``max_long_polls``: how many may wait at once."""
        if not 0 <= max_wait_ms <= MAX_WAIT_MS or max_long_polls < 0:
            raise ValueError(f"max_wait_ms must be in 0..{MAX_WAIT_MS}, max_long_polls >= 0")
        self.gateway = gateway
        self.max_wait_ms = max_wait_ms
        self.max_long_polls = max_long_polls
        self.long_polls = 0
        """``GET /events`` requests waiting now."""
        self._exact: dict[str, dict[str, Route]] = {
            "/health": {"GET": self._health},
            "/status": {"GET": self._status},
            "/metrics": {"GET": self._metrics},
            "/tx": {"POST": self._submit},
            "/txs": {"POST": self._submit_batch},
            "/events": {"GET": self._events},
        }
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = [
            (BLOCK_PATH, {"GET": self._block}),
            (NONCE_PATH, {"GET": self._nonce}),
            (TX_PATH, {"GET": self._tx}),
            (STATE_PATH, {"GET": self._state}),
        ]

    def add_route(self, method: str, path_pattern: str, handler: Route) -> None:
        """Serve ``method`` requests whose path fully matches ``path_pattern`` with
        ``handler`` (an extension's route: ``node.runtime.extension``). The node's own
        routes come first; ``ValueError`` for a method already served on that pattern."""
        compiled = re.compile(path_pattern)
        for pattern, routes in self._patterns:
            if pattern.pattern == compiled.pattern:
                if method in routes:
                    raise ValueError(f"{method} {path_pattern} is served twice")
                routes[method] = handler
                return
        self._patterns.append((compiled, {method: handler}))

    async def __call__(self, request: Request) -> Response:
        routes, match = self._routes_of(request.path)
        if routes is None:
            return json_error(404, f"no such resource: {request.path[:100]}")
        route = routes.get(request.method)
        if route is None:
            allowed = ", ".join(sorted(routes))
            response = json_error(405, f"use {allowed}")
            return Response(response.status, response.body, headers=(("allow", allowed),))
        try:
            return await route(request, match)
        except GatewayBusyError as exc:
            return json_error(503, str(exc))
        except (BadRequestError, BadQueryError) as exc:
            return json_error(400, str(exc))
        except QueryError as exc:  # an unknown module, a height not kept
            return json_error(404, str(exc))

    def _routes_of(self, path: str) -> tuple[dict[str, Route] | None, re.Match[str] | None]:
        routes = self._exact.get(path)
        if routes is not None:
            return routes, None
        for pattern, pattern_routes in self._patterns:
            match = pattern.fullmatch(path)
            if match is not None:
                return pattern_routes, match
        return None, None

    async def _health(self, request: Request, match: re.Match[str] | None) -> Response:
        with trio.move_on_after(HEALTH_TIMEOUT_S) as scope:
            snapshot = await self.gateway.snapshot()
        if scope.cancelled_caught:
            return json_error(503, f"the node's core did not answer within {HEALTH_TIMEOUT_S} s")
        document = {
            "status": "ok",
            "height": snapshot.status.height,
            "catching_up": snapshot.status.catching_up,
            "peers": len(snapshot.peers),
        }
        return json_response(200, document)

    async def _status(self, request: Request, match: re.Match[str] | None) -> Response:
        return json_response(200, status_document(await self.gateway.snapshot()))

    async def _metrics(self, request: Request, match: re.Match[str] | None) -> Response:
        return Response(200, await self.gateway.metrics(), content_type=CONTENT_TYPE_LATEST)

    async def _block(self, request: Request, match: re.Match[str] | None) -> Response:
        assert match is not None
        which = match.group(1)
        if which != "latest" and int(which) > U64_MAX:
            raise BadRequestError(f"a height is at most {U64_MAX}")
        committed = await self.gateway.committed_block(None if which == "latest" else int(which))
        if committed is None:
            return json_error(404, f"no committed block at {which}")
        return json_response(200, block_document(committed))

    async def _nonce(self, request: Request, match: re.Match[str] | None) -> Response:
        assert match is not None
        sender = _hex_bytes(match.group(1), PUBLIC_KEY_BYTES, "an account key")
        nonce = await self.gateway.next_nonce(sender)
        return json_response(200, {"public_key": sender.hex(), "next_nonce": nonce})

    async def _tx(self, request: Request, match: re.Match[str] | None) -> Response:
        assert match is not None
        hash_ = _hex_bytes(match.group(1), DIGEST_BYTES, "a transaction hash")
        committed = await self.gateway.committed_tx(hash_)
        if committed is None:
            return json_error(404, f"transaction {hash_.hex()} is not committed here")
        return json_response(200, tx_document(committed))

    async def _state(self, request: Request, match: re.Match[str] | None) -> Response:
        assert match is not None
        module, raw_path = match.group(1), match.group(2)
        if raw_path is None:
            prefix = request.query.get("prefix") or None
            limit = _int_param(request, "limit", DEFAULT_PAGE_LIMIT, 1, MAX_ENTRIES_PER_PAGE)
            path = None if prefix is None else _query_path(prefix)
            listing = await self.gateway.module_entries(module, path, limit)
            return json_response(200, entries_document(listing))
        height = _optional_int_param(request, "height", 0, U64_MAX)
        state = await self.gateway.module_state(
            module, _query_path(unquote_strict(raw_path)), height
        )
        return json_response(200, state_document(state))

    async def _events(self, request: Request, match: re.Match[str] | None) -> Response:
        try:
            after = EventCursor.parse(request.query.get("after", "0"))
        except ValueError as exc:
            raise BadRequestError(f"after: {exc}") from exc
        kind = request.query.get("kind", "")
        limit = _int_param(request, "limit", DEFAULT_PAGE_LIMIT, 1, MAX_EVENTS_PER_PAGE)
        wait_ms = min(_int_param(request, "wait_ms", 0, 0, MAX_WAIT_MS), self.max_wait_ms)
        try:
            check_page_request(kind, limit)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        page = await self.gateway.events(after, kind, limit)
        if page.events or not page.at_tip or wait_ms == 0:
            return json_response(200, events_document(page))
        if self.long_polls >= self.max_long_polls:
            busy = json_error(503, f"{self.max_long_polls} requests are waiting already")
            return Response(503, busy.body, headers=(("retry-after", "1"),))
        self.long_polls += 1
        try:
            with trio.move_on_after(wait_ms / 1000):
                await self.gateway.wait_for_height(page.tip_height + 1)
        finally:
            self.long_polls -= 1
        return json_response(200, events_document(await self.gateway.events(after, kind, limit)))

    async def _submit(self, request: Request, match: re.Match[str] | None) -> Response:
        raw = _tx_bytes(request)
        if isinstance(raw, Response):
            return raw
        return _tx_response(await self.gateway.submit_tx(raw))

    async def _submit_batch(self, request: Request, match: re.Match[str] | None) -> Response:
        raws = _batch_bytes(request)
        if isinstance(raws, Response):
            return raws
        results = await self.gateway.submit_txs(raws)
        return json_response(200, batch_document(results))


def batch_document(results: list[TxResult]) -> dict[str, Any]:
    """The answer to ``POST /txs``: how many were admitted, and each outcome in order."""
    return {
        "accepted": sum(1 for r in results if r.accepted),
        "results": [
            {
                "tx_hash": r.tx_hash.hex(),
                "accepted": r.accepted,
                "reason": None if r.reason is None else r.reason.value,
                "message": r.message,
            }
            for r in results
        ],
    }


def _batch_bytes(request: Request) -> list[bytes] | Response:
    """The transactions of a ``POST /txs`` body (a msgpack array of ``bin``), or the error."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/msgpack":
        return json_error(415, "send a msgpack array of transactions as application/msgpack")
    try:
        # Every length is capped by the body's own size; maps, ext and strings are refused.
        batch = msgpack.unpackb(
            request.body,
            use_list=True,
            max_bin_len=MAX_TX_BYTES,
            max_array_len=MAX_TXS_PER_BATCH,
            max_str_len=0,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, msgpack.exceptions.UnpackException):
        batch = None
    if type(batch) is not list or not all(type(raw) is bytes and raw for raw in batch):
        return json_error(
            400,
            f"expected a msgpack array of 1..{MAX_TXS_PER_BATCH} transactions "
            f"(non-empty bin of at most {MAX_TX_BYTES} bytes each)",
        )
    if not batch:
        return json_error(400, "the batch is empty")
    return batch


def _hex_bytes(text: str, length: int, what: str) -> bytes:
    """The ``length`` bytes ``text`` holds in hex (``BadRequestError`` otherwise)."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != length or len(text) != 2 * length:
        raise BadRequestError(f"{what} is {2 * length} hex digits, not {text[:80]!r}")
    return value


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` within ``low..high`` (``default`` if absent)."""
    value = _optional_int_param(request, name, low, high)
    return default if value is None else value


def _optional_int_param(request: Request, name: str, low: int, high: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 20 or not low <= int(text) <= high:
        raise BadRequestError(f"{name} must be an integer in {low}..{high}, not {text[:40]!r}")
    return int(text)


def unquote_strict(text: str) -> str:
    """``text`` with its %-escapes decoded (``BadRequestError`` if they are not UTF-8)."""
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequestError("the path is not %-escaped UTF-8") from exc


def _query_path(path: str) -> str:
    if len(path) > MAX_QUERY_PATH_CHARS:
        raise BadRequestError(f"a query path is at most {MAX_QUERY_PATH_CHARS} characters")
    return path


def _tx_bytes(request: Request) -> bytes | Response:
    """The transaction bytes of a ``POST /tx`` body, or the error response."""
    content_type = request.headers.get("content-type", "application/octet-stream")
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            document: Any = json.loads(request.body)
            raw = bytes.fromhex(document["tx"])
        except (ValueError, TypeError, KeyError):
            return json_error(400, 'expected a JSON object {"tx": "<hex of the transaction>"}')
    elif media == "application/octet-stream":
        raw = request.body
    else:
        return json_error(415, "send application/octet-stream or application/json")
    if not raw:
        return json_error(400, "the transaction is empty")
    return raw


def _tx_response(result: TxResult) -> Response:
    document: dict[str, Any] = {"accepted": result.accepted, "tx_hash": result.tx_hash.hex()}
    if result.accepted:
        return json_response(202, document)
    assert result.reason is not None
    document["reason"] = result.reason.value
    document["message"] = result.message
    if result.reason is RejectReason.MEMPOOL_FULL:
        response = json_response(503, document)
        return Response(503, response.body, headers=(("retry-after", "1"),))
    return json_response(400 if result.reason in _BAD_REQUEST_REASONS else 422, document)
