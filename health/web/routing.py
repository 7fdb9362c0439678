"""Route specifications of the health API: one table drives both serving and documenting.

A ``RouteSpec`` names a method, an OpenAPI path template (``/health/patients/{id}/plan``),
the models of its query, body and answer, whether it needs a session, and the statuses it
may answer. ``extension_route`` turns it into the node's ``ExtensionRoute`` (a full-match
regex of the template, each ``{name}`` one path segment); ``health.web.openapi`` turns the
same table into the OpenAPI document.

What a served route does before its handler runs, in order:

1. a body larger than ``MAX_BODY_BYTES`` is ``too_large`` (413); a route with a body model
   takes ``application/json`` only (415 otherwise: a cross-site form cannot send it, which
   keeps cookie sessions from being ridden);
2. the query parameters (text) and the JSON body are validated by their models
   (``malformed``, 400, naming the first field refused);
3. a route that needs a session finds it from ``Authorization: Bearer <token>`` or the
   ``bighealth_session`` cookie (``unauthorized``, 401).

Handlers answer a ``Reply`` (a response model, a status, extra headers) or raise
``WebError``; a ``BigHealthError`` of the node is ``busy`` (503). Nothing else is caught: an
unexpected error is the server's 500, logged — a bug, never an answer to bad input.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from health.web.errors import WebError, error_response
from health.web.session import COOKIE_NAME
from node.api.http import Request, Response
from node.errors import BigHealthError
from node.runtime.extension import ExtensionRoute

MAX_BODY_BYTES: Final = 64 * 1024
"""The largest body of a health route (a care plan's content included)."""
PARAM: Final = re.compile(r"\{([a-z_]+)\}")
SEGMENT: Final = r"[^/]{1,200}"
JSON_MEDIA: Final = "application/json"


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, its path parameters, the validated query and body
    (model instances, or None without a model), the session token and the client."""

    request: Request
    params: Mapping[str, str]
    query: Any
    body: Any
    token: str | None
    client: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: a response model, its status, extra headers."""

    document: BaseModel
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route (see the module docstring). ``params`` gives each path parameter's JSON
    schema; ``errors`` the refusal statuses it may answer besides the common ones."""

    method: str
    path: str
    handler: Handler
    response: type[BaseModel]
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    session: bool = False
    status: int = 200
    errors: tuple[int, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""

    @property
    def pattern(self) -> str:
        """The full-match regex of the path template."""
        parts = PARAM.split(self.path)
        regex = ""
        for index, part in enumerate(parts):
            regex += re.escape(part) if index % 2 == 0 else f"(?P<{part}>{SEGMENT})"
        return regex

    @property
    def operation_id(self) -> str:
        """A stable id: the method and the path's words."""
        words = re.sub(r"[^A-Za-z0-9]+", "_", PARAM.sub(r"by_\1", self.path)).strip("_")
        return f"{self.method.lower()}_{words}"

    @property
    def statuses(self) -> tuple[int, ...]:
        """Every refusal status the route may answer, sorted."""
        common = {400, 503}
        if self.body is not None:
            common |= {413, 415}
        if self.session:
            common.add(401)
        if self.params:
            common.add(404)
        return tuple(sorted(common | set(self.errors)))


def extension_route(spec: RouteSpec) -> ExtensionRoute:
    """The node's route serving ``spec`` (see the module docstring)."""

    async def serve(request: Request, match: Any) -> Response:
        try:
            call = _call_of(spec, request, match)
            reply = await spec.handler(call)
        except WebError as exc:
            return error_response(exc)
        except BigHealthError as exc:
            return error_response(WebError("busy", f"the node cannot answer now: {exc}"))
        body = reply.document.model_dump_json(by_alias=True).encode()
        return Response(reply.status, body, headers=reply.headers)

    return ExtensionRoute(spec.method, spec.pattern, serve)


def _call_of(spec: RouteSpec, request: Request, match: Any) -> Call:
    params: dict[str, str] = match.groupdict() if match is not None else {}
    body = None
    if spec.body is not None:
        body = parse_body(spec.body, request)
    query = None
    if spec.query is not None:
        query = validated(spec.query, dict(request.query), "query")
    elif request.query:
        raise WebError("malformed", f"{spec.path} takes no query parameters")
    return Call(request, params, query, body, session_token(request), request.client)


def parse_body(model: type[BaseModel], request: Request) -> Any:
    """The JSON body of ``request`` validated by ``model`` (``WebError`` otherwise)."""
    if len(request.body) > MAX_BODY_BYTES:
        raise WebError("too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != JSON_MEDIA:
        raise WebError("unsupported_media_type", f"send {JSON_MEDIA}")
    try:
        return model.model_validate_json(request.body)
    except ValidationError as exc:
        raise WebError("malformed", validation_message(exc, "body")) from None


def validated(model: type[BaseModel], data: Mapping[str, Any], where: str) -> Any:
    """``data`` validated by ``model`` (``WebError("malformed")`` naming the field)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise WebError("malformed", validation_message(exc, where)) from None


def validation_message(exc: ValidationError, where: str) -> str:
    """The first refused field and why, in a line."""
    first = exc.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or where
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where} {location}: {message}"


def session_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer`` or of the session cookie, if any."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for part in request.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME and value:
            return value
    return None
