"""The node API answers every request with a 2xx, 3xx or 4xx, never a 5xx: arbitrary
methods, paths (near every route, and anything), query strings, headers and bodies, over the
real routes (``node.api.routes.NodeApi``) on a real health chain (every contract, a
one-validator cluster in virtual time), both through the handler directly and as raw bytes
over a real socket to the HTTP server (``node.api.http``), malformed HTTP included.

(The health web API has its schemathesis run, ``tests/health/test_web_api.py``, whose checks
include ``not_a_server_error``.)"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.adapters.metrics import NetworkCounters
from node.api.gateway import NodeSnapshot
from node.api.http import HttpLimits, Request, Response, serve_http
from node.api.routes import NodeApi
from node.codec import TX_CODEC
from tests.fuzz.strategies import codec_encodings, mutated_bytes
from tests.health.fake_node import ChainGateway, ClientChain

DEFAULT_EXAMPLES: Final = 60
DEEP_EXAMPLES: Final = 3_000
MODULES: Final = (
    "identity",
    "consent",
    "records",
    "audit",
    "governance",
    "care",
    "referral",
    "kv",
    "nope",
)
METHODS: Final = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "X")
QUERY_NAMES: Final = ("after", "kind", "limit", "wait_ms", "height", "prefix", "x")


class FuzzGateway(ChainGateway):
    """The health chain's gateway, with the snapshot ``/status`` and ``/health`` read."""

    async def snapshot(self) -> NodeSnapshot:
        core = self.chain.core
        return NodeSnapshot(
            moniker="fuzz",
            version="0",
            peer_id="12D3KooWFuzz",
            validator_key=None,
            listen_addrs=(),
            peers=(),
            status=core.status(),
            stats=core.stats,
            network=NetworkCounters().snapshot(
                peers_connected=0, peers_ready=0, peers_banned=0, inbound_queued=0
            ),
            uptime_s=1.0,
        )

    async def metrics(self) -> bytes:
        return b"bighealth_height 1.0\n"


@pytest.fixture(scope="module")
def api() -> NodeApi:
    chain = ClientChain()
    chain.cluster.run_until(height=2)
    return NodeApi(FuzzGateway(chain), max_wait_ms=50)


# -- requests ------------------------------------------------------------------------------

_TEXT = st.text(max_size=30)
_HEX = st.binary(max_size=40).map(bytes.hex) | st.from_regex(r"\A[0-9a-fA-F]{0,70}\Z")
_NUMBER = st.integers(-5, 2**70).map(str) | _TEXT
_ESCAPED = st.binary(max_size=20).map(lambda raw: "".join(f"%{b:02x}" for b in raw))
_SEGMENT = st.one_of(_TEXT, _HEX, _NUMBER, _ESCAPED, st.sampled_from(MODULES))


def _join(*parts: str) -> str:
    return "/".join(parts)


PATHS: Final = st.one_of(
    st.sampled_from(["/health", "/status", "/metrics", "/tx", "/events", "/", "", "//"]),
    _NUMBER.map(lambda n: f"/blocks/{n}"),
    st.just("/blocks/latest"),
    _HEX.map(lambda h: f"/accounts/{h}/nonce"),
    _HEX.map(lambda h: f"/tx/{h}"),
    st.sampled_from(MODULES).map(lambda m: f"/state/{m}"),
    st.tuples(st.sampled_from(MODULES), st.lists(_SEGMENT, min_size=1, max_size=4)).map(
        lambda mp: f"/state/{mp[0]}/{_join(*mp[1])}"
    ),
    st.lists(_SEGMENT, max_size=4).map(lambda parts: "/" + _join(*parts)),
)
QUERIES: Final = st.dictionaries(
    st.sampled_from(QUERY_NAMES) | _TEXT,
    st.one_of(_NUMBER, _TEXT, _HEX, st.from_regex(r"\A[0-9]{1,20}:[0-9]{1,6}\Z")),
    max_size=4,
)
CONTENT_TYPES: Final = st.sampled_from(
    ["application/json", "application/octet-stream", "text/plain", "", "application/json; x"]
)
_TX = codec_encodings(TX_CODEC)
BODIES: Final = st.one_of(
    st.binary(max_size=200),
    _TX,
    _TX.flatmap(mutated_bytes),
    _TX.map(lambda raw: json.dumps({"tx": raw.hex()}).encode()),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=6,
    ).map(lambda value: json.dumps({"tx": value}).encode()),
)
REQUESTS: Final = st.builds(
    Request,
    method=st.sampled_from(METHODS),
    path=PATHS,
    query=QUERIES,
    headers=CONTENT_TYPES.map(lambda ct: {"content-type": ct} if ct else {}),
    body=BODIES,
)


def _answer(api: NodeApi, request: Request) -> Response:
    return trio.run(api, request)


def _check_handler(api: NodeApi, request: Request) -> None:
    response = _answer(api, request)
    assert 200 <= response.status < 500, (response.status, response.body[:200], request)
    if response.content_type == "application/json":
        json.loads(response.body)


_SETTINGS: Final[dict[str, Any]] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=DEFAULT_EXAMPLES, **_SETTINGS)
@given(request=REQUESTS)
def test_the_routes_answer_any_request_without_a_server_error(
    api: NodeApi, request: Request
) -> None:
    _check_handler(api, request)


@pytest.mark.slow
@settings(max_examples=DEEP_EXAMPLES, **_SETTINGS)
@given(request=REQUESTS)
def test_the_routes_answer_any_request_without_a_server_error_deep(
    api: NodeApi, request: Request
) -> None:
    _check_handler(api, request)


# -- raw HTTP over a socket ----------------------------------------------------------------

_TOKEN = st.from_regex(r"\A[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}\Z")
_HEADER = st.one_of(
    st.tuples(_TOKEN, st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)),
    st.tuples(
        st.sampled_from(["content-length", "transfer-encoding", "content-type", "host"]),
        st.sampled_from(["0", "5", "-1", "99999999999", "chunked", "gzip", "x", "a b"]),
    ),
)


def _raw_request(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + body


_WELL_FORMED = st.builds(
    lambda request, extra: _raw_request(
        request.method,
        request.path or "/",
        [("host", "x"), ("content-length", str(len(request.body))), *extra],
        request.body,
    ),
    REQUESTS,
    st.lists(_HEADER, max_size=3),
)
RAW_INPUTS: Final = st.one_of(
    _WELL_FORMED,
    _WELL_FORMED.flatmap(mutated_bytes),
    st.builds(
        _raw_request,
        _TOKEN,
        _TEXT.map(lambda t: "/" + t),
        st.lists(_HEADER, max_size=4),
        st.binary(max_size=40),
    ),
    st.binary(max_size=200),
)


async def _exchange(api: NodeApi, data: bytes) -> bytes:
    """Send ``data`` to a fresh server over a socket, close our side, read all it says."""
    limits = HttpLimits(max_body_bytes=1024, max_header_bytes=1024)
    received = bytearray()
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_http, "127.0.0.1", 0, api, limits)
        stream = await trio.open_tcp_stream(host, port)
        with trio.fail_after(30):  # a hang is a failure, not a wait
            try:
                await stream.send_all(data)
                await stream.send_eof()
                while chunk := await stream.receive_some(65_536):
                    received += chunk
            except trio.BrokenResourceError:
                pass  # the server answered and closed before reading everything
        await stream.aclose()
        nursery.cancel_scope.cancel()
    return bytes(received)


def _statuses(answer: bytes) -> list[int]:
    """The status codes of the responses in ``answer``."""
    return [int(line[9:12]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def _check_raw(api: NodeApi, data: bytes) -> None:
    statuses = _statuses(trio.run(_exchange, api, data))
    assert all(status < 500 for status in statuses), (statuses, data[:300])


@settings(max_examples=DEFAULT_EXAMPLES // 2, **_SETTINGS)
@given(data=RAW_INPUTS)
def test_the_server_answers_any_bytes_without_a_server_error(api: NodeApi, data: bytes) -> None:
    _check_raw(api, data)


@pytest.mark.slow
@settings(max_examples=DEEP_EXAMPLES // 3, **_SETTINGS)
@given(data=RAW_INPUTS)
def test_the_server_answers_any_bytes_without_a_server_error_deep(
    api: NodeApi, data: bytes
) -> None:
    _check_raw(api, data)


def test_a_valid_request_over_the_socket_is_served(api: NodeApi) -> None:
    """The raw path works at all: a plain GET is answered 200."""
    data = _raw_request("GET", "/status", [("host", "x")], b"")
    assert _statuses(trio.run(_exchange, api, data)) == [200]


async def test_a_head_request_is_answered_and_the_server_keeps_serving(api: NodeApi) -> None:
    """Found by the fuzzer: h11 sends no body after a HEAD, so sending the handler's body
    raised out of the connection task and stopped the whole server."""
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_http, "127.0.0.1", 0, api)
        answers = []
        for method in ("HEAD", "GET"):
            stream = await trio.open_tcp_stream(host, port)
            await stream.send_all(_raw_request(method, "/health", [("host", "x")], b""))
            await stream.send_eof()
            answer = b""
            while chunk := await stream.receive_some(65_536):
                answer += chunk
            answers.append(answer)
            await stream.aclose()
        nursery.cancel_scope.cancel()
    head, get = answers
    assert _statuses(head) == [405] and head.endswith(b"\r\n\r\n")
    assert _statuses(get) == [200]
