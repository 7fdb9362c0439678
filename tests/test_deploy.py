"""The operator kit under deploy/: the systemd unit has the settings an operator relies on;
the Prometheus alert rules and the Grafana dashboard name only metrics a node exports (read
from ``NodeMetrics``' own registry, so a renamed metric breaks this test, not a dashboard in
production); with Debian's ``promtool``, the rules pass its checks and fire when they should;
with ``systemd-analyze``, the unit verifies."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.cli.common import EXIT_HALT
from node.runtime.metrics import NodeMetrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "bighealth.service"
ALERTS = DEPLOY / "prometheus" / "bighealth-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "bighealth-dashboard.json"
METRIC_NAME = re.compile(r"\bbighealth_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
    "summary": ("", "_sum", "_count", "_created"),
}
PROMETHEUS_VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "1h",
    "$job": ".*",
    "$instance": ".*",
}
"""Grafana's variables, replaced by what they stand for when a query is checked."""


def _empty_snapshot() -> object:
    """A network snapshot of the type ``NodeMetrics`` takes, every counter zero, found from
    ``NodeMetrics``' annotations (wherever the type lives)."""
    hint = typing.get_type_hints(NodeMetrics.__init__)["network_snapshot"]
    factory = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    snapshot_type = typing.get_args(factory)[-1]
    values: dict[str, Any] = {}
    for name, field_type in typing.get_type_hints(snapshot_type).items():
        origin = typing.get_origin(field_type) or field_type
        values[name] = origin()
    assert dataclasses.is_dataclass(snapshot_type) and isinstance(snapshot_type, type)
    snapshot: object = snapshot_type(**values)
    return snapshot


def exported_names() -> frozenset[str]:
    """Every series name a node's ``/metrics`` may carry: each family of ``NodeMetrics``'
    registry (network collector included) with its type's suffixes."""
    snapshot = _empty_snapshot()
    metrics = NodeMetrics(network_snapshot=typing.cast(Callable[[], Any], lambda: snapshot))
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in document["panels"] for target in panel.get("targets", [])]


def test_the_node_exports_what_the_readme_lists() -> None:
    names = exported_names()
    for name in (
        "bighealth_height",
        "bighealth_consensus_round",
        "bighealth_peers",
        "bighealth_mempool_txs",
        "bighealth_commit_latency_seconds_bucket",
        "bighealth_block_interval_seconds_bucket",
        "bighealth_p2p_messages_in_total",
        "bighealth_p2p_messages_out_total",
        "bighealth_p2p_dropped_total",
        "bighealth_p2p_bans_total",
    ):
        assert name in names


def test_alert_rules_name_only_exported_metrics() -> None:
    names = exported_names()
    text = ALERTS.read_text()
    used = set(METRIC_NAME.findall(text))
    assert used - names == set()
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules) >= 10
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert METRIC_NAME.search(rule["expr"]) or rule["expr"].startswith("up{"), rule["alert"]
    exprs = " ".join(rule["expr"] for rule in rules)
    for needed in (
        'up{job="bighealth"} == 0',
        "bighealth_height",
        "bighealth_consensus_round",
        "bighealth_peers",
        "bighealth_mempool_txs",
        "bighealth_commit_latency_seconds_bucket",
        "bighealth_p2p_bans_total",
    ):
        assert needed in exprs


def test_the_dashboard_names_only_exported_metrics_and_covers_them() -> None:
    names = exported_names()
    document = json.loads(DASHBOARD.read_text())
    used = set(METRIC_NAME.findall(DASHBOARD.read_text()))
    assert used - names == set()
    exprs = " ".join(dashboard_exprs())
    for needed in (
        "bighealth_height",
        "bighealth_consensus_round",
        "bighealth_peers",
        "bighealth_mempool_txs",
        "histogram_quantile(0.99, sum by (instance, le) (rate(bighealth_commit_latency_seconds",
        "bighealth_block_interval_seconds_bucket",
        "sum by (topic) (rate(bighealth_p2p_messages_in_total",
        "sum by (topic) (rate(bighealth_p2p_messages_out_total",
        "sum by (reason) (rate(bighealth_p2p_dropped_total",
        "bighealth_p2p_bans_total",
    ):
        assert needed in exprs
    panels = document["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:  # no two panels overlap on the 24-column grid
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, panel["title"]
        cells |= area
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    variables = {v["name"] for v in document["templating"]["list"]}
    assert variables == {"datasource", "job", "instance"}


# -- promtool (Debian's prometheus package) ----------------------------------------------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], check=False, capture_output=True, text=True, timeout=60
    )


@needs_promtool
def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    for variable, value in PROMETHEUS_VARIABLES.items():
        exprs = [expr.replace(variable, value) for expr in exprs]
    assert not any("$" in expr for expr in exprs)
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


NODE = {"job": "bighealth", "instance": "node-a:26657"}


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    every = NODE | labels
    return {
        "series": name + "{" + ",".join(f'{k}="{v}"' for k, v in every.items()) + "}",
        "values": values,
    }


def expect(alert: str, at: str, firing: bool, severity: str, **labels: str) -> dict[str, Any]:
    found = [{"exp_labels": {"severity": severity, **NODE, **labels}}] if firing else []
    return {"eval_time": at, "alertname": alert, "exp_alerts": found}


def latency_buckets(slow: bool) -> list[dict[str, str]]:
    """Commit latencies of 10 transactions a minute: all below 1 s, or all 5-10 s."""
    bounds = ("0.5", "1.0", "5.0", "10.0", "+Inf")
    return [
        series(
            "bighealth_commit_latency_seconds_bucket",
            "0+10x30" if (not slow or bound in ("10.0", "+Inf")) and bound != "0.5" else "0x30",
            le=bound,
        )
        for bound in bounds
    ]


ALERT_CASES: list[tuple[list[dict[str, str]], list[dict[str, Any]]]] = [
    (
        [series("up", "1 1 0 0 0 0 0")],
        [
            expect("BigHealthNodeDown", "2m", False, "critical"),
            expect("BigHealthNodeDown", "4m", True, "critical"),
        ],
    ),
    (
        [series("bighealth_height", "0+60x5 300x20")],  # grows, then stops at 5m
        [
            expect("BigHealthHeightStalled", "6m", False, "critical"),
            expect("BigHealthHeightStalled", "12m", True, "critical"),
        ],
    ),
    (
        [series("bighealth_consensus_round", "0 0 3 4 5 6 7 8")],
        [
            expect("BigHealthConsensusRoundsClimbing", "3m", False, "warning"),
            expect("BigHealthConsensusRoundsClimbing", "5m", True, "warning"),
        ],
    ),
    (
        [series("bighealth_peers", "3 3 1 1 1 1 1 1 1 1 0 0 0 0")],
        [
            expect("BigHealthFewPeers", "5m", False, "warning"),
            expect("BigHealthFewPeers", "8m", True, "warning"),
            expect("BigHealthIsolated", "9m", False, "critical"),
            expect("BigHealthIsolated", "13m", True, "critical"),
        ],
    ),
    (
        [series("bighealth_mempool_txs", "10 4600x10"), series("bighealth_mempool_bytes", "0x10")],
        [
            expect("BigHealthMempoolFull", "3m", False, "warning"),
            expect("BigHealthMempoolFull", "7m", True, "warning"),
        ],
    ),
    (
        latency_buckets(slow=True),
        [expect("BigHealthCommitLatencyHigh", "20m", True, "warning")],
    ),
    (
        latency_buckets(slow=False),
        [expect("BigHealthCommitLatencyHigh", "20m", False, "warning")],
    ),
    (
        [series("bighealth_p2p_bans_total", "0 0 1 1 1")],
        [
            expect("BigHealthPeersBanned", "1m", False, "warning"),
            expect("BigHealthPeersBanned", "3m", True, "warning"),
        ],
    ),
    (
        [series("bighealth_equivocations_total", "0 0 0 1 1")],
        [
            expect("BigHealthEquivocation", "2m", False, "critical"),
            expect("BigHealthEquivocation", "4m", True, "critical"),
        ],
    ),
    (
        [series("bighealth_peer_misbehaviours_total", "0 0 2 2", offence="bad_vote")],
        [expect("BigHealthPeerMisbehaviour", "3m", True, "warning", offence="bad_vote")],
    ),
]


def _without_annotations(tmp_path: Path) -> Path:
    """The rules without their annotations (``promtool test rules`` compares rendered
    annotations too; the alerts' logic is what these cases test)."""
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(document))
    return path


@needs_promtool
def test_the_alerts_fire_when_they_should_and_only_then(tmp_path: Path) -> None:
    tests = [
        {"interval": "1m", "input_series": inputs, "alert_rule_test": checks}
        for inputs, checks in ALERT_CASES
    ]
    healthy = [
        series("up", "1x30"),
        series("bighealth_height", "0+60x30"),
        series("bighealth_consensus_round", "0x30"),
        series("bighealth_peers", "3x30"),
        series("bighealth_mempool_txs", "5x30"),
        series("bighealth_mempool_bytes", "2000x30"),
        series("bighealth_catching_up", "0x30"),
        series("bighealth_p2p_bans_total", "0x30"),
        series("bighealth_equivocations_total", "0x30"),
        series("bighealth_p2p_dropped_total", "0x30", reason="peer_gone"),
        *latency_buckets(slow=False),
    ]
    quiet = [
        {"eval_time": "25m", "alertname": rule["alert"], "exp_alerts": []} for rule in alert_rules()
    ]
    tests.append({"interval": "1m", "input_series": healthy, "alert_rule_test": quiet})
    path = tmp_path / "alerts-test.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(_without_annotations(tmp_path))],
                "evaluation_interval": "1m",
                "tests": tests,
            }
        )
    )
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# -- the systemd unit --------------------------------------------------------------------------


def unit_settings() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (a key may repeat: systemd adds them up)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"a setting outside a section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_runs_the_node_as_its_own_user_and_restarts_it_safely() -> None:
    unit = unit_settings()
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["ExecStart"].endswith("bighealth run --home /var/lib/bighealth")
    assert service["User"] == "bighealth" and service["Group"] == "bighealth"
    assert service["Restart"] == "on-failure"
    assert str(EXIT_HALT) in service["RestartPreventExitStatus"].split()
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"]
    assert int(service["LimitNOFILE"]) >= 4096
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert "/var/lib/bighealth" in service["ReadWritePaths"].split()
    assert service["CapabilityBoundingSet"] == ""
    assert service["UMask"] == "0077"
    assert service["PrivateTmp"] == service["ProtectHome"] == "yes"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["After"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` with ExecStart pointing at an executable that exists here."""
    executable = Path(sys.executable).parent / "bighealth"
    program = executable if executable.exists() else Path(sys.executable)
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={program}", UNIT.read_text(), flags=re.M)
    path = tmp_path / "bighealth.service"
    path.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "bighealth.service" not in result.stderr, result.stderr


def test_the_readmes_point_at_the_kit() -> None:
    guide = (DEPLOY / "README.md").read_text()
    for path in (UNIT, ALERTS, DASHBOARD):
        assert str(path.relative_to(DEPLOY)) in guide
    assert "deploy/README.md" in (ROOT / "README.md").read_text()
