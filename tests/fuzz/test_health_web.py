"""The health web API answers every request with a 2xx or 4xx, never a 5xx, beyond what its
OpenAPI document describes (the schemathesis run of ``tests/health/test_web_api.py`` covers
the documented operations): any method on its paths, ids and path suffixes of any shape,
query strings, bodies (JSON of any shape, garbage), with a patient's session, a forged
session or none — on a live in-process health node (``tests/health/web_node.py``); the
records routes of the node's API (``health/api.py``) too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.health.schema_run import _seed
from tests.health.web_node import LiveNode

DEFAULT_EXAMPLES: Final = 20
DEEP_EXAMPLES: Final = 1_500
TEMPLATES: Final = (
    "/health",
    "/health/actions/{}",
    "/health/dao",
    "/health/dao/proposals",
    "/health/identities/{}",
    "/health/identities/{}/children",
    "/health/institutions",
    "/health/me",
    "/health/network",
    "/health/patients/{}/adherence",
    "/health/patients/{}/audit",
    "/health/patients/{}/glucose-stats",
    "/health/patients/{}/grants",
    "/health/patients/{}/plan",
    "/health/patients/{}/readings",
    "/health/patients/{}/referrals",
    "/health/patients/{}/reminders",
    "/health/practitioners/{}/patients",
    "/health/practitioners/{}/referrals",
    "/health/session",
    "/openapi.json",
    "/records/keys",
    "/records/fetch",
    "/records/{}",
    "/dashboard/{}",
)
ACTIONS: Final = ("grant", "revoke", "upload", "reading", "vote", "propose", "x")
FIELDS: Final = (
    *("keystore", "passphrase", "grantee", "record", "owner", "author", "ciphertext"),
    *("wrapped_keys", "resource_type", "code", "key_epoch", "data_time_ms", "nonce"),
    *("author_signature", "requester", "custodian", "time_ms", "signature", "keys"),
)
"""Field names of the health API's and the records routes' bodies."""


class Web:
    """A live node with a patient's session."""

    def __init__(self, node: LiveNode) -> None:
        self.node = node
        self.token = _seed(node)
        self.session = requests.Session()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    tmp: Path = tmp_path_factory.mktemp("web-fuzz")
    with LiveNode(tmp) as node:
        yield Web(node)


_ID = st.one_of(
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.from_regex(r"\A[0-9a-f]{0,70}\Z"),
    st.text(st.characters(codec="ascii", exclude_characters="/?#"), max_size=20),
    st.sampled_from(ACTIONS),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_SUFFIX = st.sampled_from(["", "/", "/x", "//", "/%00", "/%ff"])
PATHS: Final = st.builds(
    lambda template, ident, suffix: template.replace("{}", ident) + suffix,
    st.sampled_from(TEMPLATES),
    _ID,
    _SUFFIX,
)


@st.composite
def web_requests(draw: st.DrawFn) -> dict[str, Any]:
    """The arguments of one ``requests`` call (without the URL's base)."""
    body = draw(
        st.one_of(
            st.none(),
            st.binary(max_size=120),
            _JSON.map(lambda value: json.dumps(value).encode()),
            st.dictionaries(
                st.sampled_from(["keystore", "passphrase", "grantee", "record"]), _JSON
            ).map(lambda value: json.dumps(value).encode()),
        )
    )
    auth = draw(st.sampled_from(["session", "forged", "none"]))
    return {
        "method": draw(
            st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
        ),
        "path": draw(PATHS),
        "params": draw(st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3)),
        "data": body,
        "content_type": draw(st.sampled_from(["application/json", "text/plain", ""])),
        "auth": auth,
    }


def _check(web: Web, request: dict[str, Any]) -> None:
    headers = {}
    if request["content_type"]:
        headers["content-type"] = request["content_type"]
    if request["auth"] == "session":
        headers["authorization"] = f"Bearer {web.token}"
    elif request["auth"] == "forged":
        headers["authorization"] = "Bearer " + "A" * 43
    reply = web.session.request(
        request["method"],
        web.node.url + request["path"],
        params=request["params"],
        data=request["data"],
        headers=headers,
        timeout=60,
    )
    assert reply.status_code < 500, (reply.status_code, reply.text[:300], request)


_SETTINGS: Final[dict[str, Any]] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=DEFAULT_EXAMPLES, **_SETTINGS)
@given(request=web_requests())
def test_the_health_api_answers_any_request_without_a_server_error(
    web: Web, request: dict[str, Any]
) -> None:
    _check(web, request)


@pytest.mark.slow
@settings(max_examples=DEEP_EXAMPLES, **_SETTINGS)
@given(request=web_requests())
def test_the_health_api_answers_any_request_without_a_server_error_deep(
    web: Web, request: dict[str, Any]
) -> None:
    _check(web, request)
