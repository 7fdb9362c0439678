"""The Byzantine scenario on real node processes (``node.cli.byzantine_check``): four
validators of a health testnet, one running ``--byzantine`` with every kind. The honest three
keep committing and agree, the equivocation evidence lands in a block, the DAO penalizes the
validator, and every honest node banned and disconnected it.

``slow`` (about 30 s on 2 cores); the default suite runs the same story on four runtimes in
one process (``tests/runtime/test_byzantine.py``)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from node.cli.byzantine_check import ALL_KINDS, run_byzantine_check


@pytest.mark.slow
def test_three_honest_validators_outlast_a_byzantine_one(tmp_path: Path) -> None:
    out = io.StringIO()
    report = run_byzantine_check(tmp_path / "net", ALL_KINDS, timeout_s=120.0, out=out)
    assert report.violations == [], out.getvalue()
    assert report.equivocation_height is not None
    assert report.evidence_committed_height is not None
    assert report.penalized is True
    assert report.chains_agree
    assert min(report.honest_heights.values()) >= report.evidence_committed_height + 3
    assert (
        sorted(report.banned_by)
        == sorted(report.disconnected_from)
        == [
            "validator-0",
            "validator-1",
            "validator-2",
        ]
    )
