"""``bighealth demo``: the story on real node processes (slow), and its parts — the
narration, the event watch, the network it makes — without running a chain."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from health.client import KDF_MIN
from health.demo.narrator import CheckFailed, Narrator, Step, check
from health.demo.watch import EventWatch, WaitTimeout
from node.cli import main
from node.cli.demo import make_network
from node.home.layout import load_config
from tests.cli.test_cli_node import ROOT

STEPS = 15
DEMO_TIMEOUT_S = 600


# -- the whole story on real processes --------------------------------------------------------


def _demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "node", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _node_pids(directory: Path) -> list[int]:
    """Processes still running a node of ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"run" in command and any(str(directory).encode() in part for part in command):
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_the_demo_tells_the_whole_story_and_stops_its_nodes(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    started = time.monotonic()
    demo = _demo("--exit", "--output", str(directory))
    output, _ = demo.communicate(timeout=DEMO_TIMEOUT_S)
    print(f"bighealth demo --exit: {time.monotonic() - started:.0f} s\n{output}")
    assert demo.returncode == 0, output
    lines = output.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert len(steps) == STEPS and all(" ok " in line for line in steps), output
    assert f"every step held ({STEPS}/{STEPS})" in output
    dashboards = [line for line in lines if "/dashboard/" in line]
    assert len(dashboards) == 7
    assert "refused (forbidden)" in output and "care.escalated" in output
    assert _node_pids(directory) == []
    manifest = json.loads((directory / "testnet.json").read_text())
    for node in manifest["nodes"]:
        log = (directory / node["home"] / "node.log").read_text()
        assert '"stopped"' in log  # a graceful stop, not a kill
    keystores = {p.name for p in (directory / "validator-1" / "keystores").iterdir()}
    assert keystores == {"hospital-1.keystore", "dr-endo.keystore"}


@pytest.mark.slow
def test_sigterm_during_the_story_stops_every_node(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    demo = _demo("--output", str(directory))
    assert demo.stdout is not None
    for line in demo.stdout:
        if line.startswith("[ 1/"):
            break
    demo.send_signal(signal.SIGTERM)
    rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 1, rest
    assert "interrupted" in rest
    assert _node_pids(directory) == []


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--speed", "0"]) == 2
    assert "speed" in capsys.readouterr().err
    assert main(["demo", "--readings", "0"]) == 2


# -- the narration ----------------------------------------------------------------------------


def test_the_story_stops_at_the_first_failing_step() -> None:
    out = io.StringIO()
    ran: list[str] = []

    def fails() -> str:
        ran.append("second")
        check(1 + 1 == 3, "arithmetic broke")
        return "never"

    def after() -> str:
        ran.append("third")
        return "never"

    outcome = Narrator(out, monotonic=iter([0.0, 1.5, 2.0, 2.25]).__next__).tell(
        [Step("first", lambda: "it held"), Step("second", fails), Step("third", after)]
    )
    assert ran == ["second"]
    assert not outcome.ok and outcome.held == 1 and outcome.failed_step == 2
    assert "arithmetic broke" in outcome.failure
    assert out.getvalue().splitlines() == [
        "[1/3] ok   first: it held (1.5 s)",
        "[2/3] FAIL second: CheckFailed: arithmetic broke (0.2 s)",
    ]


def test_every_step_held() -> None:
    out = io.StringIO()
    outcome = Narrator(out).tell([Step("only", lambda: "done  \n in two lines")])
    assert outcome.ok and outcome.total == 1
    assert "only: done in two lines" in out.getvalue()


def test_an_unexpected_error_is_not_a_failed_check() -> None:
    def broken() -> str:
        raise KeyError("a bug")

    with pytest.raises(KeyError):  # a bug in the demo shows its traceback
        Narrator(io.StringIO()).tell([Step("bug", broken)])
    with pytest.raises(CheckFailed):
        check(False, "no")


# -- the event watch --------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


class _FeedNode:
    """``events`` and ``status`` of a node whose heights each hold one event."""

    def __init__(self, clock: _Clock, events: list[dict[str, Any]]) -> None:
        self.clock = clock
        self.events_by_height = events
        self.asked: list[object] = []

    def status(self) -> dict[str, Any]:
        return {"height": 2}

    def events(
        self, after: int | str = 0, *, kind: str = "", limit: int = 100, wait_ms: int = 0
    ) -> dict[str, Any]:
        self.asked.append(after)
        height = int(after)
        self.clock.now += wait_ms / 1000 if height >= len(self.events_by_height) else 0.1
        page = self.events_by_height[height : height + 1]
        return {"events": page, "next_after": height + len(page), "height": height}


def _event(kind: str, **attributes: str) -> dict[str, Any]:
    return {"kind": kind, "attributes": attributes}


def test_the_watch_reads_from_the_tip_and_keeps_what_it_was_not_asked_for() -> None:
    clock = _Clock()
    node = _FeedNode(
        clock,
        [
            _event("care.dose_due", item="9"),  # committed before the watch began
            _event("care.dose_due", item="8"),
            _event("care.dose_due", item="0"),
            _event("care.dose_due", item="1"),
            _event("care.measurement_due", item="0"),
            _event("care.dose_due", item="2"),
        ],
    )
    watch = EventWatch(node, monotonic=clock.monotonic)  # type: ignore[arg-type]
    watch.skip_to_tip()
    doses = watch.wait_for("care.dose_due", 1, 10, lambda found: found["item"] != "0")
    assert [e["attributes"]["item"] for e in doses] == ["1"]
    measured = watch.wait_for("care.measurement_due", 1, 10)  # already read
    assert measured[0]["attributes"] == {"item": "0"}
    rest = watch.wait_for("care.dose_due", 2, 10)
    assert [e["attributes"]["item"] for e in rest] == ["0", "2"]
    assert node.asked[0] == 2


def test_the_watch_gives_up_at_its_deadline() -> None:
    clock = _Clock()
    watch = EventWatch(_FeedNode(clock, []), monotonic=clock.monotonic)  # type: ignore[arg-type]
    with pytest.raises(WaitTimeout, match=r"0 of 1 care\.escalated"):
        watch.wait_for("care.escalated", 1, 5)
    assert 5 <= clock.now <= 7


# -- the network ------------------------------------------------------------------------------


def test_the_demo_network(tmp_path: Path) -> None:
    network = make_network(tmp_path / "net", "pw", KDF_MIN)
    assert [node.party for node in network.nodes] == [
        *(f"hospital-{i}" for i in range(4)),
        "clinic-0",
        "patient-0",
        "patient-1",
    ]
    assert [node.name for node in network.hospitals()] == [f"validator-{i}" for i in range(4)]
    genesis = json.loads((tmp_path / "net" / "genesis.json").read_text())
    assert genesis["app_state"]["governance"]["params"] == {"reminder_grace_ms": 60_000}
    manifest = json.loads((tmp_path / "net" / "testnet.json").read_text())
    address = {node["name"]: node["p2p"] for node in manifest["nodes"]}
    clinic = load_config(tmp_path / "net" / "observer-0")
    assert set(clinic.p2p.bootstrap) == {
        *(address[f"validator-{i}"] for i in range(4)),
        address["observer-1"],
        address["observer-2"],
    }
    assert network.logins()["validator-1"] == ["hospital-1", "dr-endo"]
