"""The installed ``bighealth`` console script runs and reports the crypto backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from node import cli

SCRIPT = Path(sys.executable).parent / "bighealth"


def test_console_script_is_installed_and_reports_the_backend() -> None:
    out = subprocess.run([str(SCRIPT), "info"], check=True, capture_output=True, text=True)
    info = json.loads(out.stdout)
    assert info["bighealth"] == "0.1.0"
    assert info["crypto_core"]["backend"] == "cython"


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("bighealth ")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
