"""``bighealth chaos`` against real node processes: a short campaign in the default suite
(a partition and a kill with a skewed-clock restart), the 50-kill form in the slow
one. Both must hold every invariant; the liveness bound is generous (a loaded 2-core
machine: 120 s from a heal to a new height on every node)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.cli.chaos.report import REQUIRED_KEYS

LIVENESS_BOUND_S = "120"
SHORT_SEED = 233
"""Its first two episodes: a two-two partition (no side has a quorum), then a custodian's
validator killed and restarted with a skewed clock."""
LONG_SEED = 20261203


def _campaign(tmp_path: Path, kills: int, seed: int) -> dict[str, Any]:
    out = tmp_path / "out.json"
    argv = ["chaos", "--kills", str(kills), "--seed", str(seed), "--json", str(out)]
    argv += ["--output", str(tmp_path / "net"), "--liveness-bound", LIVENESS_BOUND_S]
    status = main(argv)
    document: dict[str, Any] = json.loads(out.read_text())
    assert document["violations"] == [], document["violations"]
    assert status == 0
    assert set(REQUIRED_KEYS) <= set(document)
    assert document["kills"] >= kills
    assert document["records_acknowledged"] > 0
    assert document["votes_scanned"] > 0
    for key in ("blocks_lost", "double_signs", "records_lost", "plaintext_found_at_rest"):
        assert document[key] == 0, key
    return document


def test_a_short_campaign_holds_every_invariant(tmp_path: Path) -> None:
    document = _campaign(tmp_path, kills=1, seed=SHORT_SEED)
    assert document["seed"] == SHORT_SEED
    assert (document["skewed_restarts"], document["partitions"]) == (1, 1)
    assert len(document["faults"]) == document["episodes"]


@pytest.mark.slow
def test_a_fifty_kill_campaign_holds_every_invariant(tmp_path: Path) -> None:
    document = _campaign(tmp_path, kills=50, seed=LONG_SEED)
    assert document["pauses"] >= 5 and document["partitions"] >= 5
    assert document["one_way_losses"] >= 5 and document["skewed_restarts"] >= 5
