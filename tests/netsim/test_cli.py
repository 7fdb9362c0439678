"""``python -m netsim``: options first, a summary last, JSON and plots, exit statuses, the
replay command of a failure, swarm mode and sweeps."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from netsim import cli, sweep
from netsim.config import SimConfig
from netsim.errors import ConfigError, LimitExceeded
from netsim.simulation import Simulation
from netsim.sweep import SweepPlace, sweep_outcomes

SMALL = ["--validators", "4", "--heights", "3", "--topology", "national", "--no-progress"]
BREAKS = ["--byzantine", "2", "--byzantine-roles", "equivocate+double-vote"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_run_prints_options_first_and_a_summary_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_png = tmp_path / "out.json", tmp_path / "out.png"
    argv = ["run", "--seed", "42", *SMALL, "--nodes", "6", "--faults", "partition,crash"]
    status, out, _ = run_cli([*argv, "--json", str(out_json), "--plot", str(out_png)], capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "netsim run — seed 42"
    assert any("faults           partition,crash" in line for line in lines[:10])
    for label in ("heights decided", "tx/s of sim time", "commit latency   p50", "per validator",
                  "per other node", "wall time", "trace hash"):  # fmt: skip
        assert label in out
    report = json.loads(out_json.read_text())
    assert report["passed"] is True
    assert report["trace_hash"] in out
    assert report["config"]["argv"][:2] == ["--seed", "42"]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_run_exits_1_and_prints_a_command_that_replays_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run_cli(["run", "--seed", "3", *SMALL, *BREAKS], capsys)
    assert status == 1
    assert "FAILED" in out and "[agreement]" in out and "last events before the end" in out
    command = out.split("replay with:\n", 1)[1].strip().splitlines()[0]
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "netsim", "run"]
    trace = next(line for line in out.splitlines() if line.startswith("trace hash"))
    status, replayed, _ = run_cli([*words[3:], "--no-progress"], capsys)
    assert status == 1
    assert trace in replayed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--byzantine", "9"], "byzantine must be an int in 0..4"),
        (["--faults", "meteor"], "unknown fault kind"),
        (["--topology", "moon"], "unknown topology"),
        (["--byzantine-roles", "liar"], "byzantine roles must be some of"),
        (["--fault-window-ms", "5"], "START:END"),
        (["--node", "nothing"], "unknown node code"),
    ],
)
def test_bad_options_exit_2_with_a_reason(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", *SMALL, *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_swarm_draws_faults_from_the_seed_and_replays_with_swarm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run_cli(["run", "--seed", "5", *SMALL, "--swarm"], capsys)
    assert "(drawn by --swarm)" in out
    assert status in (0, 1)
    config = cli.parse_run_config(["--seed", "5", *SMALL[:-1], "--swarm"])
    assert "--swarm" in config.argv() and "--faults" not in config.argv()


def test_without_a_seed_one_is_drawn_and_printed(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(["run", *SMALL], capsys)
    assert status == 0
    seed = int(out.splitlines()[0].rsplit(" ", 1)[1])
    assert 0 <= seed < 2**32


def test_a_run_that_hits_a_simulator_limit_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def runaway(self: Simulation) -> None:
        raise LimitExceeded("more than 4000000 events pending")

    monkeypatch.setattr(Simulation, "run", runaway)
    status, out, _ = run_cli(["run", "--seed", "1", *SMALL], capsys)
    assert status == 3
    assert "ABORTED: more than 4000000 events pending" in out and "replay with" in out


def test_the_progress_bar_goes_to_stderr_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(["run", "--seed", "1", *SMALL[:-1], "--progress"], capsys)
    assert status == 0
    assert "height" in err and "events" in err and err.endswith("\n")


def test_a_sweep_lists_failing_seeds_and_records_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "regressions.json"
    argv = ["sweep", "--seeds", "2", "--start-seed", "7", "--workers", "0", *SMALL[:-1], *BREAKS]
    status, out, _ = run_cli([*argv, "--record", str(record)], capsys)
    assert status == 1
    assert "seed 7: failed" in out and "seed 8: failed" in out and "2 of 2 seed(s) failed" in out
    entries = json.loads(record.read_text())
    assert [shlex.split(e["args"])[:2] for e in entries] == [["--seed", "7"], ["--seed", "8"]]
    assert all(e["status"] == "open" and "[agreement]" in e["found"] for e in entries)
    run_cli([*argv, "--record", str(record)], capsys)
    assert len(json.loads(record.read_text())) == 2  # recorded once


def test_a_clean_sweep_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(["sweep", "--seeds", "2", "--workers", "0", *SMALL[:-1]], capsys)
    assert status == 0
    assert out.splitlines()[0] == "netsim sweep — seeds 0..1, in this process"
    assert "0 of 2 seed(s) failed" in out


def test_a_sweep_reports_each_seed_as_it_finishes() -> None:
    ran: list[int] = []

    def fake_one(config: SimConfig) -> dict[str, object]:
        ran.append(config.seed)
        return {"seed": config.seed, "argv": [], "status": "passed", "detail": ""}

    configs = [replace(SimConfig(), seed=seed) for seed in (1, 2, 3)]
    outcomes = sweep_outcomes(configs, SweepPlace(workers=0), run_one=fake_one)
    first_config, _ = next(outcomes)
    assert first_config.seed == 1 and ran == [1]  # the second seed has not run yet
    assert [config.seed for config, _ in outcomes] == [2, 3]


def test_a_sweep_on_a_local_dask_cluster_prints_what_the_same_sweep_prints_in_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["sweep", "--seeds", "3", "--start-seed", "5", *SMALL[:-1]]
    status, in_process, _ = run_cli([*argv, "--workers", "0"], capsys)
    assert status == 0
    status, on_cluster, _ = run_cli([*argv, "--workers", "1"], capsys)
    assert status == 0
    first, *seeds = on_cluster.splitlines()
    assert first == "netsim sweep — seeds 5..7, on a local Dask cluster of 1 worker process(es)"
    assert sorted(seeds) == sorted(in_process.splitlines()[1:])  # same traces, any order
    assert sum(line.startswith("seed ") for line in seeds) == 3


def test_sweep_places_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert SweepPlace.from_options(None, None).workers >= 1  # one per core by default
    assert SweepPlace.from_options(3, None) == SweepPlace(workers=3)
    assert SweepPlace.from_options(None, " tcp://h:8786 ").scheduler == "tcp://h:8786"
    for workers, scheduler in ((-1, None), (2, "tcp://h:8786"), (None, " ")):
        with pytest.raises(ConfigError):
            SweepPlace.from_options(workers, scheduler)
    status, _, err = run_cli(["sweep", "--seeds", "1", "--workers", "-1", *SMALL[:-1]], capsys)
    assert status == 2 and "--workers must be >= 0" in err


def test_a_sweep_names_a_scheduler_it_cannot_reach(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sweep, "SCHEDULER_CONNECT_TIMEOUT_S", 1)
    argv = ["sweep", "--seeds", "1", "--scheduler", "tcp://127.0.0.1:9", *SMALL[:-1]]
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err


def test_a_seed_whose_task_fails_on_the_cluster_is_reported_as_an_error() -> None:
    class Failed:
        def result(self) -> object:
            raise RuntimeError("worker lost")

    config = replace(SimConfig(), seed=4)
    outcome = sweep._result(Failed(), config)  # type: ignore[arg-type]
    assert outcome["status"] == "error" and outcome["detail"] == "RuntimeError: worker lost"
    assert outcome["seed"] == 4
