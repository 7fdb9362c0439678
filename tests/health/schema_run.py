"""A schemathesis run against a live in-process health node (``tests/health/web_node.py``):
every operation of ``/openapi.json``, ``examples`` generated requests in each mode (valid
and invalid inputs), each sent over HTTP and checked: no server error, a documented status,
a documented content type, a body matching its schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from health import fhir
from health.contracts.common import GLUCOSE_RESOURCE_TYPE, HealthRole
from tests.health.web_node import PASS, LiveNode

CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NO_SESSION: Final = frozenset({"/health/session"})
"""Paths sent without the session (ending it would end the run's session)."""


@dataclass
class Report:
    """What a run did: calls, statuses seen, failures (one line of context each)."""

    calls: int = 0
    statuses: set[int] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


def _seed(node: LiveNode) -> str:
    """A patient with a reading on the node; its session token."""
    hospital = node.client(node.keystore("hospital-0", HealthRole.INSTITUTION, node.hospital))
    patient = node.client(node.keystore("patient", HealthRole.PATIENT))
    hospital.register(*patient.keystore.admission_keys(), role=HealthRole.PATIENT)
    time_ms = node.chain.now_ms() - 60_000
    content = fhir.glucose_observation(
        observation_id="r1", patient_ref="Patient/p", mg_dl=120, time_ms=time_ms, device="cgm"
    )
    patient.upload_record(
        content,
        resource_type=GLUCOSE_RESOURCE_TYPE,
        code="http://loinc.org|99504-3",
        data_time_ms=time_ms,
        custodians=[(node.custodian_party.id, node.url)],
    )
    reply = requests.post(
        f"{node.url}/health/session", json={"keystore": "patient", "passphrase": PASS}, timeout=30
    )
    assert reply.status_code == 201, reply.text
    token: str = reply.json()["token"]
    return token


def run_schemathesis(tmp: Path, examples: int) -> Report:
    """Run every operation ``examples`` times per mode against a fresh live node."""
    report = Report()
    with LiveNode(tmp) as node:
        token = _seed(node)
        document = requests.get(f"{node.url}/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(document)
        session = requests.Session()
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                report.failures.append(f"the document has an invalid operation: {result.err()}")
                continue
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _run_operation(operation, mode, examples, node.url, token, session, report)
    return report


def _run_operation(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    url: str,
    token: str,
    session: requests.Session,
    report: Report,
) -> None:
    headers = {} if operation.path in NO_SESSION else {"authorization": f"Bearer {token}"}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(base_url=url, session=session, headers=headers, timeout=60)
        report.calls += 1
        report.statuses.add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # collected: one report for the run
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"
            report.failures.append(f"{where}\n{response.text[:300]}\n{exc}"[:1500])

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            report.failures.append(f"{operation.method} {operation.path}: nothing valid")
        # no parameter nor body to make invalid: nothing to send in negative mode
    except (Exception, BaseExceptionGroup) as exc:  # generation refused: a schema problem
        report.failures.append(f"{operation.method} {operation.path}: cannot generate: {exc}")
