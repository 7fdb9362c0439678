"""Access attacks against the health application (``tests/health/access_attacks.py``): every
attack refused with its typed refusal and recorded as the design says (an audit entry on
chain, a counted refusal, or a refused receipt in the block), and no audit entry beyond
those."""

from __future__ import annotations

import json

import pytest

from tests.health.access_attacks import (
    AUDIT_ENTRY,
    COUNTED,
    RECEIPT,
    AttackReport,
    run_access_attacks,
)


@pytest.fixture(scope="module")
def report() -> AttackReport:
    return run_access_attacks()


def test_every_attack_is_refused_and_recorded(report: AttackReport) -> None:
    failures = [
        f"{o.name}: expected {o.expected}, got {o.refusal or 'served'}, audited {o.audited}"
        for o in report.failures()
    ]
    assert failures == []
    assert report.ok, report.summary()


def test_the_campaign_covers_every_kind_of_attack(report: AttackReport) -> None:
    names = [outcome.name for outcome in report.outcomes]
    assert len(names) == len(set(names)) == report.tried >= 30
    by_audit = {
        kind: [o.name for o in report.outcomes if o.audit == kind]
        for kind in (AUDIT_ENTRY, COUNTED, RECEIPT)
    }
    for needle, kind in (
        ("without consent", AUDIT_ENTRY),
        ("revoked", AUDIT_ENTRY),
        ("expired", AUDIT_ENTRY),
        ("emergency access closed", AUDIT_ENTRY),
        ("replayed", COUNTED),
        ("signature", COUNTED),
        ("someone else's identity", COUNTED),
        ("unpaired device", RECEIPT),
        ("governance vote", RECEIPT),
        ("governance proposal", RECEIPT),
        ("break-glass", RECEIPT),
        ("someone else's name", RECEIPT),
    ):
        assert any(needle in name for name in by_audit[kind]), (needle, kind)


def test_the_forgeries_left_no_audit_entry(report: AttackReport) -> None:
    entries = sum(outcome.audit == AUDIT_ENTRY for outcome in report.outcomes)
    assert report.refused_entries_on_chain == entries == 5


def test_the_report_counts_and_serialises(report: AttackReport) -> None:
    assert report.summary().startswith(
        f"attacks tried: {report.tried}, refused: {report.tried}, audited: {report.tried}"
    )
    document = json.loads(json.dumps(report.as_dict()))
    assert document["tried"] == report.tried == len(document["attacks"])
