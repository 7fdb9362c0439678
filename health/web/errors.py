"""Typed refusals of the health API and their JSON form ``{"error": message, "reason": r}``.

Every refusal a route makes is a ``WebError`` with a reason; its HTTP status follows from the
reason (``STATUS_OF``), so a client can branch on ``reason`` without parsing the message:

| reason | status |
|---|---|
| ``malformed`` | 400 (a path id, query parameter or body the models refuse) |
| ``unauthorized`` | 401 (no session, or an expired or unknown token) |
| ``wrong_passphrase`` | 401 (the keystore did not open) |
| ``forbidden`` | 403 (the session's identity may not read or do this) |
| ``not_found`` | 404 |
| ``conflict`` | 409 (a transaction refused by the chain, a plan changed meanwhile) |
| ``too_large`` | 413 |
| ``unsupported_media_type`` | 415 |
| ``too_many_sessions``, ``rate_limited`` | 429 (with ``retry-after``) |
| ``busy`` | 503 (the node is starting, or cannot answer in time) |
"""

from __future__ import annotations

import json
from typing import Final

from node.api.http import Response
from node.errors import BigHealthError

STATUS_OF: Final = {
    "malformed": 400,
    "unauthorized": 401,
    "wrong_passphrase": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "too_many_sessions": 429,
    "rate_limited": 429,
    "busy": 503,
}
"""The HTTP status of each reason."""
MAX_MESSAGE_CHARS: Final = 300


class WebError(BigHealthError):
    """A refusal of the health API: ``reason`` (a key of ``STATUS_OF``) and a message for
    people; ``retry_after_s`` (429, 503) tells when to try again."""

    def __init__(self, reason: str, message: str, *, retry_after_s: int | None = None) -> None:
        if reason not in STATUS_OF:
            raise ValueError(f"unknown reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message[:MAX_MESSAGE_CHARS]
        self.retry_after_s = retry_after_s

    @property
    def status(self) -> int:
        """The HTTP status of the reason."""
        return STATUS_OF[self.reason]


def error_response(error: WebError) -> Response:
    """The JSON answer of a refusal (with ``retry-after`` when it says when)."""
    body = json.dumps({"error": error.message, "reason": error.reason}).encode()
    headers: tuple[tuple[str, str], ...] = ()
    if error.retry_after_s is not None:
        headers = (("retry-after", str(error.retry_after_s)),)
    if error.status == 401:
        headers = (*headers, ("www-authenticate", 'Bearer realm="bighealth"'))
    return Response(error.status, body, headers=headers)
