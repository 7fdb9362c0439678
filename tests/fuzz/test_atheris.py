"""The atheris runner (``tests/fuzz/atheris_main.py``) works where atheris is installed (the
``fuzz`` extra): a short coverage-guided run of one target finds no crash. Slow (the
instrumented imports alone take seconds); skipped without atheris."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import all_targets

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["codec.message", "chain.wal_record", "records.request"])
def test_a_short_atheris_run_finds_no_crash(target: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tests.fuzz.atheris_main", target, "-runs=5000"]
    run = subprocess.run(
        [*command, str(tmp_path)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Done 5000 runs" in run.stderr


@pytest.mark.slow
def test_the_runner_lists_every_target() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_main", "--list"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == list(all_targets())
