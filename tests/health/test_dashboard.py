"""The dashboard's static files (``health.web.dashboard``): served only from the index read
at start, with their content types, cache and security headers, ETag revalidation (304 over
the real HTTP server), bounds on what is read, and the vendored chart library matching the
checksums its vendoring script recorded."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import cast

import h11
import pytest
import trio
import trio.testing

from health.web.dashboard import (
    CONTENT_SECURITY_POLICY,
    IMMUTABLE,
    NO_CACHE,
    STATIC_DIR,
    DashboardError,
    DashboardLimits,
    StaticSite,
    dashboard_routes,
)
from node.api.gateway import NodeGateway
from node.api.http import HttpLimits, HttpServer, Request, Response
from node.api.routes import NodeApi
from node.runtime.extension import ExtensionRoute

VENDOR = STATIC_DIR / "vendor" / "uplot-1.6.32"


def get(path: str, headers: dict[str, str] | None = None) -> Request:
    return Request("GET", path, {}, headers or {}, b"")


async def call(routes: list[ExtensionRoute], request: Request) -> Response:
    """Dispatch as the node's API does: the first route whose pattern fully matches."""
    for route in routes:
        match = re.fullmatch(route.path_pattern, request.path)
        if match is not None and route.method == request.method:
            return await route.handler(request, match)
    raise AssertionError(f"no route for {request.path}")


def headers_of(response: Response) -> dict[str, str]:
    return dict(response.headers)


def site_in(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for name, body in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return tmp_path


async def test_the_index_and_modules_are_served_with_their_types_and_headers() -> None:
    routes = dashboard_routes()
    index = await call(routes, get("/dashboard/"))
    assert index.status == 200 and index.content_type == "text/html; charset=utf-8"
    assert b'<script type="module" src="js/app.js">' in index.body
    headers = headers_of(index)
    assert headers["cache-control"] == NO_CACHE
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["etag"] == '"' + hashlib.sha256(index.body).hexdigest()[:32] + '"'
    module = await call(routes, get("/dashboard/js/app.js"))
    assert module.status == 200 and module.content_type == "text/javascript; charset=utf-8"
    style = await call(routes, get("/dashboard/app.css"))
    assert style.status == 200 and style.content_type == "text/css; charset=utf-8"
    chart = await call(routes, get("/dashboard/vendor/uplot-1.6.32/uPlot.esm.js"))
    assert chart.status == 200 and headers_of(chart)["cache-control"] == IMMUTABLE
    redirect = await call(routes, get("/dashboard"))
    assert redirect.status == 308 and headers_of(redirect)["location"] == "/dashboard/"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/../pyproject.toml",
        "/dashboard/%2e%2e/dashboard.py",
        "/dashboard/js/../../dashboard.py",
        "/dashboard/.hidden",
        "/dashboard/js/.app.js",
        "/dashboard//etc/passwd",
        "/dashboard/js\\app.js",
        "/dashboard/vendor/uplot-1.6.32/LICENSE",  # not a served type
        "/dashboard/vendor/uplot-1.6.32/SHA256SUMS",
        "/dashboard/missing.js",
        "/dashboard/" + "a/" * 20 + "x.js",
        "/dashboard/" + "a" * 200 + ".js",
    ],
)
async def test_nothing_outside_the_index_is_served(path: str) -> None:
    response = await call(dashboard_routes(), get(path))
    assert response.status == 404
    assert headers_of(response)["x-content-type-options"] == "nosniff"


async def test_an_etag_the_client_holds_is_answered_304() -> None:
    routes = dashboard_routes()
    first = await call(routes, get("/dashboard/js/api.js"))
    etag = headers_of(first)["etag"]
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = await call(routes, get("/dashboard/js/api.js", {"if-none-match": header}))
        assert again.status == 304 and again.body == b"", header
        assert headers_of(again)["etag"] == etag
    stale = await call(routes, get("/dashboard/js/api.js", {"if-none-match": '"stale"'}))
    assert stale.status == 200 and stale.body == first.body


async def test_a_304_is_framed_correctly_by_the_real_server() -> None:
    api = NodeApi(cast(NodeGateway, None))  # only its routing: no gateway is reached
    for route in dashboard_routes():
        api.add_route(route.method, route.path_pattern, route.handler)
    server = HttpServer(api, HttpLimits())
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = h11.Connection(h11.CLIENT)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_connection, server_stream)
        first = await exchange(client_stream, connection, "/dashboard/app.css", "")
        connection.start_next_cycle()
        second = await exchange(client_stream, connection, "/dashboard/app.css", first[1]["etag"])
        await client_stream.aclose()
    assert first[0] == 200 and first[2].startswith(b"/*")
    assert second[0] == 304 and second[2] == b""


async def exchange(
    stream: trio.abc.Stream,
    connection: h11.Connection,
    target: str,
    etag: str,
) -> tuple[int, dict[str, str], bytes]:
    headers = [("host", "node")] + ([("if-none-match", etag)] if etag else [])
    data = connection.send(h11.Request(method="GET", target=target, headers=headers)) or b""
    data += connection.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)
    status, response_headers, body = 0, {}, b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            response_headers = {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, response_headers, body


def test_only_regular_files_of_served_types_at_safe_paths_are_read(tmp_path: Path) -> None:
    root = site_in(
        tmp_path / "site",
        {"index.html": b"<p>", "a.js": b"1", "notes.md": b"#", ".secret.js": b"x", "d/b.css": b""},
    )
    (root / "link.js").symlink_to(root / "a.js")
    site = StaticSite.load(root)
    assert sorted(site.files) == ["a.js", "d/b.css", "index.html"]
    assert site.get("") is site.files["index.html"]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (DashboardLimits(max_files=2), "more than 2 files"),
        (DashboardLimits(max_file_bytes=10), "a.js is 11 bytes"),
        (DashboardLimits(max_total_bytes=12), "exceeds 12 bytes"),
    ],
)
def test_a_site_over_a_bound_is_refused_at_start(
    tmp_path: Path, limits: DashboardLimits, message: str
) -> None:
    root = site_in(tmp_path, {"index.html": b"<p>", "a.js": b"x" * 11, "b.js": b"y"})
    with pytest.raises(DashboardError, match=message):
        StaticSite.load(root, limits)


def test_a_site_without_an_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DashboardError, match=r"no index\.html"):
        StaticSite.load(tmp_path)
    with pytest.raises(ValueError, match=">= 1"):
        DashboardLimits(max_files=0)


def test_the_vendored_chart_library_matches_its_recorded_checksums() -> None:
    sums = (VENDOR / "SHA256SUMS").read_text().splitlines()
    recorded = {name: digest for digest, name in (line.split("  ", 1) for line in sums)}
    assert sorted(recorded) == ["LICENSE", "uPlot.esm.js", "uPlot.min.css"]
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "MIT" in (VENDOR / "LICENSE").read_text()


def test_every_module_the_page_imports_is_in_the_site() -> None:
    """A relative import that names no served file would break the page in the browser."""
    site = StaticSite.load()
    imports = re.compile(r'(?:from|import)\s+"(\.{1,2}/[^"]+)"')
    for path, found in site.files.items():
        if not path.endswith(".js") or path.startswith("vendor/"):
            continue
        for target in imports.findall(found.body.decode()):
            resolved = (Path("/") / path).parent.joinpath(target).resolve().as_posix()[1:]
            assert resolved in site.files, f"{path} imports {target}: not served"
