"""The node's HTTP API: routes from requests to a ``NodeGateway``.

    GET  /health                 200 {"status": "ok", ...} while the core answers, else 503
    GET  /status                 the node's status (``node.api.views.status_document``)
    GET  /metrics                Prometheus text exposition
    GET  /blocks/latest          the last committed block (404 before the first)
    GET  /blocks/<height>        a committed block (404 if not committed here)
    GET  /accounts/<hex>/nonce   {"public_key", "next_nonce"}: what a new tx must carry
    POST /tx                     a transaction: the raw canonical bytes
                                 (application/octet-stream) or {"tx": "<hex>"} (JSON)

``POST /tx`` answers 202 ``{"accepted": true, "tx_hash"}`` once the transaction is in the
mempool (committing it is the chain's business), or ``{"accepted": false, "reason",
"message"}`` with 400 (not a transaction), 422 (refused: signature, nonce, application
check) or 503 (mempool full: retry later).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from prometheus_client import CONTENT_TYPE_LATEST

from node.api.gateway import GatewayBusyError, NodeGateway
from node.api.http import Request, Response, json_error
from node.api.views import block_document, status_document
from node.chain.actions import TxResult
from node.errors import RejectReason
from node.types import PUBLIC_KEY_BYTES

HEALTH_TIMEOUT_S: Final = 2.0
"""``/health`` reports unhealthy if the core does not answer within this time."""
BLOCK_PATH: Final = re.compile(r"/blocks/(latest|[0-9]{1,20})")
NONCE_PATH: Final = re.compile(r"/accounts/([0-9a-fA-F]{64})/nonce")
_BAD_REQUEST_REASONS: Final = frozenset({RejectReason.MALFORMED, RejectReason.OVERSIZE})

Route = Callable[[Request, "re.Match[str] | None"], Awaitable[Response]]


def json_response(status: int, document: object) -> Response:
    """``document`` as a JSON response."""
    return Response(status, json.dumps(document).encode())


class NodeApi:
    """The request handler of the node's API server."""

    def __init__(self, gateway: NodeGateway) -> None:
        self.gateway = gateway
        self._exact: dict[str, dict[str, Route]] = {
            "/health": {"GET": self._health},
            "/status": {"GET": self._status},
            "/metrics": {"GET": self._metrics},
            "/tx": {"POST": self._submit},
        }
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = [
            (BLOCK_PATH, {"GET": self._block}),
            (NONCE_PATH, {"GET": self._nonce}),
        ]

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
        committed = await self.gateway.committed_block(None if which == "latest" else int(which))
        if committed is None:
            return json_error(404, f"no committed block at {which}")
        return json_response(200, block_document(committed))

    async def _nonce(self, request: Request, match: re.Match[str] | None) -> Response:
        assert match is not None
        sender = bytes.fromhex(match.group(1))
        assert len(sender) == PUBLIC_KEY_BYTES
        nonce = await self.gateway.next_nonce(sender)
        return json_response(200, {"public_key": sender.hex(), "next_nonce": nonce})

    async def _submit(self, request: Request, match: re.Match[str] | None) -> Response:
        raw = _tx_bytes(request)
        if isinstance(raw, Response):
            return raw
        return _tx_response(await self.gateway.submit_tx(raw))


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
