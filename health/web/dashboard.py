"""The dashboard's static files, served by every health node under ``/dashboard/``.

The files (``health/web/static/``: HTML, CSS, plain ES modules and the vendored chart
library) are read once, when the routes are made, into a ``StaticSite``: an index from URL
path to body, content type and ETag. A request is answered from that index only — a path is
never joined to a directory, so no request can name a file outside it — and the index is
bounded (``DashboardLimits``: files, bytes per file, bytes in all; a site over a bound is a
``DashboardError`` when the node starts, not a surprise later).

Routes (``ExtensionRoute`` s, GET only):

- ``/dashboard`` -> 308 to ``/dashboard/``;
- ``/dashboard/`` -> ``index.html``; ``/dashboard/<path>`` -> the file at ``<path>``, 404
  (JSON ``{"error"}``) for anything else: a path that is not ``SAFE_PATH`` (no ``..``, no
  hidden file, no backslash, bounded length) or not in the index.

Every answer carries ``Cache-Control`` (``no-cache`` — revalidate with the ETag, answered
``304`` when ``If-None-Match`` names it — except under a versioned vendor directory,
``vendor/<name>-<version>/``, which is immutable) and the security headers of
``SECURITY_HEADERS``: a Content-Security-Policy allowing only the node's own origin (the page
works offline and loads nothing from elsewhere), ``nosniff``, no framing, no referrer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from node.api.http import Request, Response, json_error
from node.errors import BigHealthError
from node.runtime.extension import ExtensionRoute

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
"""The dashboard's files, installed with the package."""
MOUNT: Final = "/dashboard"
INDEX_FILE: Final = "index.html"
CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
"""The types served; files of other types (a LICENSE, SHA256SUMS) are not served."""
SAFE_PATH: Final = re.compile(
    r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}/){0,8}[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", re.ASCII
)
"""A servable path: up to 9 segments, none starting with a dot (so no ``..``, no hidden
file), only letters, digits, ``_``, ``-`` and ``.``."""
VERSIONED_VENDOR: Final = re.compile(r"vendor/[a-z0-9_-]+-[0-9]+\.[0-9]+\.[0-9]+/", re.ASCII)
"""A vendored library's directory named with its exact version: its files never change."""
NO_CACHE: Final = "no-cache"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
)
MAX_IF_NONE_MATCH_CHARS: Final = 1_024


class DashboardError(BigHealthError):
    """The dashboard's files cannot be served (missing, or over a ``DashboardLimits``)."""


@dataclass(frozen=True, slots=True)
class DashboardLimits:
    """Bounds of the site read into memory."""

    max_files: int = 128
    max_file_bytes: int = 1024 * 1024
    max_total_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.max_files, self.max_file_bytes, self.max_total_bytes) < 1:
            raise ValueError("DashboardLimits bounds must be >= 1")


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One servable file: its bytes, type, strong ETag (quoted) and cache policy."""

    body: bytes
    content_type: str
    etag: str
    cache_control: str


class StaticSite:
    """The servable files of a directory, by URL path (see the module docstring)."""

    def __init__(self, files: Mapping[str, StaticFile]) -> None:
        self.files = dict(files)

    @classmethod
    def load(cls, root: Path = STATIC_DIR, limits: DashboardLimits | None = None) -> StaticSite:
        """Read the servable files under ``root`` (regular files of a ``CONTENT_TYPES``
        type at a ``SAFE_PATH``; symbolic links are not followed). ``DashboardError`` when
        ``root`` has no ``index.html`` or a bound is exceeded."""
        bounds = limits if limits is not None else DashboardLimits()
        if not (root / INDEX_FILE).is_file():
            raise DashboardError(f"the dashboard has no {INDEX_FILE} in {root}")
        files: dict[str, StaticFile] = {}
        total = 0
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).as_posix()
            content_type = CONTENT_TYPES.get(path.suffix.lower())
            if path.is_symlink() or not path.is_file() or content_type is None:
                continue
            if not SAFE_PATH.fullmatch(relative):
                continue
            if len(files) >= bounds.max_files:
                raise DashboardError(f"the dashboard holds more than {bounds.max_files} files")
            size = path.stat().st_size
            if size > bounds.max_file_bytes:
                raise DashboardError(
                    f"{relative} is {size} bytes, over the {bounds.max_file_bytes} a file may be"
                )
            total += size
            if total > bounds.max_total_bytes:
                raise DashboardError(f"the dashboard exceeds {bounds.max_total_bytes} bytes")
            files[relative] = static_file(relative, path.read_bytes(), content_type)
        return cls(files)

    def get(self, path: str) -> StaticFile | None:
        """The file served at ``path`` (relative to the mount; ``""`` is the index)."""
        relative = path or INDEX_FILE
        if not SAFE_PATH.fullmatch(relative):
            return None
        return self.files.get(relative)


def static_file(relative: str, body: bytes, content_type: str) -> StaticFile:
    """A ``StaticFile`` of ``body`` served at ``relative``."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    cache = IMMUTABLE if VERSIONED_VENDOR.match(relative) else NO_CACHE
    return StaticFile(body, content_type, etag, cache)


def serve(site: StaticSite, request: Request, path: str) -> Response:
    """The answer to a GET of ``/dashboard/<path>``: the file (200), ``304`` when the
    client's ``If-None-Match`` names its ETag, else 404."""
    found = site.get(path)
    if found is None:
        response = json_error(404, f"no such dashboard file: {path[:100]}")
        return Response(404, response.body, headers=SECURITY_HEADERS)
    headers = (("etag", found.etag), ("cache-control", found.cache_control), *SECURITY_HEADERS)
    if _matches(request.headers.get("if-none-match", ""), found.etag):
        return Response(304, b"", content_type=found.content_type, headers=headers)
    return Response(200, found.body, content_type=found.content_type, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or is ``*``)."""
    if not if_none_match or len(if_none_match) > MAX_IF_NONE_MATCH_CHARS:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def dashboard_routes(site: StaticSite | None = None) -> list[ExtensionRoute]:
    """The dashboard's routes, serving ``site`` (default: ``StaticSite.load()``, read
    now)."""
    files = site if site is not None else StaticSite.load()

    async def redirect(request: Request, match: Any) -> Response:
        return Response(308, b"", headers=(("location", MOUNT + "/"),))

    async def get_file(request: Request, match: Any) -> Response:
        return serve(files, request, match.group("path"))

    return [
        ExtensionRoute("GET", MOUNT, redirect),
        ExtensionRoute("GET", MOUNT + r"/(?P<path>.*)", get_file),
    ]
