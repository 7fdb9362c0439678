"""The command line's answers on a first run's rough edges: paths that cannot be made, the
default home, addresses without a home, readable messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli.common import HOME_ENV, default_home
from tests.cli.test_cli_node import run_cli


def test_a_key_file_in_a_missing_directory_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "k.key"
    code, _, err = run_cli(capsys, "keys", "new", "--output", str(target))
    assert code == 1
    assert err.strip() == f"bighealth keys: No such file or directory: {target}"


def test_a_home_under_a_file_is_refused_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "init", "--home", str(blocker / "home"))
    assert code == 1 and "Traceback" not in err and str(blocker) in err


def test_the_home_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "env-home"))
    assert default_home() == tmp_path / "env-home"
    code, _, err = run_cli(capsys, "init", "--chain-id", "edge-chain")
    assert code == 0, err
    assert (tmp_path / "env-home" / "config.toml").is_file()
    monkeypatch.delenv(HOME_ENV)
    assert default_home() == Path.home() / ".bighealth"


def test_status_of_an_address_needs_no_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "no-such-home"))
    code, _, err = run_cli(capsys, "status", "--api", "127.0.0.1:9")
    assert code == 1
    assert "home" not in err and "127.0.0.1:9" in err


def test_a_bad_chain_id_is_explained_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "genesis", "create", "--chain-id", "bad id", "--validator", "ab" * 32,
        "--output", str(tmp_path / "g.json"),
    )  # fmt: skip
    assert code == 1
    assert "letters, digits" in err and "re.compile" not in err


def test_help_shows_defaults_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli(capsys, "init", "--help")
    text = capsys.readouterr().out
    assert "(default: 127.0.0.1:26657)" in text
    assert "(default: None)" not in text and "(see init)" not in text
