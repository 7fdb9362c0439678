"""A blocking client of a node's HTTP API, for the command line (``bighealth status``, ``tx``).

Errors are typed and say what to check: ``ApiUnreachableError`` when nothing answers at
the address (the node is not running, or listens elsewhere), ``ApiResponseError`` for an
error status, with the node's JSON error message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final

from node.errors import BigHealthError

DEFAULT_TIMEOUT_S: Final = 5.0
MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024


class ApiError(BigHealthError):
    """Base of the API client's errors."""


class ApiUnreachableError(ApiError):
    """No node answered at the API address."""


class ApiResponseError(ApiError):
    """The node answered with an error status; ``document`` is its JSON body, if any."""

    def __init__(self, status: int, message: str, document: dict[str, Any] | None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.document = document


class ApiClient:
    """Talks to the API at ``http://host:port``."""

    def __init__(self, host: str, port: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        shown_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown_host}:{port}"
        self.timeout_s = timeout_s

    def get(self, path: str) -> dict[str, Any]:
        """``GET path`` as JSON."""
        return self._call(urllib.request.Request(self.base_url + path, method="GET"))

    def get_text(self, path: str) -> str:
        """``GET path`` as text (``/metrics``)."""
        request = urllib.request.Request(self.base_url + path, method="GET")
        return self._open(request).decode("utf-8")

    def submit_tx(self, raw: bytes) -> dict[str, Any]:
        """``POST /tx`` with the raw transaction; the node's verdict (an error status with a
        JSON verdict is returned, not raised: a refusal is an answer)."""
        request = urllib.request.Request(
            self.base_url + "/tx",
            data=raw,
            method="POST",
            headers={"content-type": "application/octet-stream"},
        )
        try:
            return self._call(request)
        except ApiResponseError as exc:
            if exc.document is not None and "accepted" in exc.document:
                return exc.document
            raise

    def _call(self, request: urllib.request.Request) -> dict[str, Any]:
        body = self._open(request)
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ApiError(f"{self.base_url} answered with something other than JSON") from exc
        if not isinstance(document, dict):
            raise ApiError(f"{self.base_url} answered with a JSON {type(document).__name__}")
        return document

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data: bytes = response.read(MAX_RESPONSE_BYTES)
                return data
        except urllib.error.HTTPError as exc:
            raise _response_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiUnreachableError(
                f"no node answers at {self.base_url} ({reason}): is it running?"
            ) from exc


def _response_error(exc: urllib.error.HTTPError) -> ApiResponseError:
    body = exc.read(MAX_RESPONSE_BYTES)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return ApiResponseError(exc.code, body[:200].decode("utf-8", "replace"), None)
    message = str(document.get("error") or document.get("message") or exc.reason)
    return ApiResponseError(exc.code, message, document)
