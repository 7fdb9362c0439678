"""The node commands of ``bighealth``: init, testnet, keys, genesis, and the clear errors of
run, status and tx when something is missing, damaged or taken."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node import cli
from node.home import load_home, parse_genesis, read_key_file
from node.home.config import listen_port, parse_host_port
from node.home.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """``bighealth argv`` in this process: (exit status, stdout as JSON or text, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, out, err


def run_process(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m node argv`` in a child process (for ``run``, which owns the process)."""
    return subprocess.run(
        [sys.executable, "-m", "node", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_init_makes_a_home_with_keys_config_and_a_one_validator_genesis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "hospital-a"
    code, summary, _ = run_cli(
        capsys, "init", "--home", str(home), "--chain-id", "care-net", "--api", "127.0.0.1:9100"
    )
    assert code == 0
    loaded = load_home(home)
    assert loaded.config.moniker == "hospital-a"
    assert loaded.validator_key is not None
    assert summary["validator_public_key"] == loaded.validator_key.public_key.hex()
    assert [v.public_key for v in loaded.genesis.validators] == [loaded.validator_key.public_key]
    assert summary["chain_id"] == "care-net"
    assert summary["p2p_address"].endswith("/p2p/" + summary["peer_id"])
    assert (home / "node_key").stat().st_mode & 0o777 == 0o600
    code, shown, _ = run_cli(capsys, "keys", "show", "--home", str(home))
    assert code == 0 and shown == summary
    code, _, err = run_cli(capsys, "init", "--home", str(home))
    assert code == 1 and "exists" in err


def test_an_observer_joins_an_existing_chain_from_its_genesis_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "init", "--home", str(tmp_path / "o"), "--observer")
    assert code == 1 and "--genesis" in err
    run_cli(capsys, "init", "--home", str(tmp_path / "v"))
    genesis = tmp_path / "v" / "genesis.json"
    code, summary, _ = run_cli(
        capsys, "init", "--home", str(tmp_path / "o"), "--observer", "--genesis", str(genesis)
    )
    assert code == 0
    assert summary["role"] == "observer" and summary["validator_public_key"] is None
    assert summary["genesis_hash"] == parse_genesis(genesis.read_text()).hash().hex()


def test_testnet_makes_a_home_per_node_sharing_one_genesis_on_free_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "net"
    code, manifest, _ = run_cli(
        capsys, "testnet", "--validators", "3", "--observers", "1", "--output", str(out)
    )
    assert code == 0
    assert manifest == json.loads((out / "testnet.json").read_text())
    assert read_manifest(out).chain_id == manifest["chain_id"]
    homes = [load_home(out / node["home"]) for node in manifest["nodes"]]
    assert [h.config.role for h in homes] == ["validator"] * 3 + ["observer"]
    assert len({h.genesis.hash() for h in homes}) == 1
    assert homes[0].genesis.hash().hex() == manifest["genesis_hash"]
    ports = [listen_port(h.config.p2p.listen) for h in homes]
    ports += [parse_host_port(h.config.api.listen)[1] for h in homes]
    assert len(set(ports)) == len(ports) == 8
    validators = [n for n in manifest["nodes"] if n["role"] == "validator"]
    for home, node in zip(homes, manifest["nodes"], strict=True):
        expected = {v["p2p"] for v in validators} - {node["p2p"]}
        assert set(home.config.p2p.bootstrap) == expected
    accounts = {a.public_key for a in homes[0].genesis.accounts}
    for client in manifest["clients"]:
        assert read_key_file(out / client["key_file"], "account").public_key in accounts
    code, _, err = run_cli(capsys, "testnet", "--validators", "1", "--output", str(out))
    assert code == 1 and "not an empty directory" in err


def test_genesis_create_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, key, _ = run_cli(capsys, "keys", "new", "--output", str(tmp_path / "client.key"))
    assert (tmp_path / "client.key").stat().st_mode & 0o777 == 0o600
    validator = "11" * 32
    out = tmp_path / "genesis.json"
    code, created, _ = run_cli(
        capsys, "genesis", "create", "--chain-id", "c1", "--validator", f"{validator}:7",
        "--account", f"{key['public_key']}:patient", "--genesis-time-ms", "5", "--output", str(out),
    )  # fmt: skip
    assert code == 0
    assert created["validators"] == [{"public_key": validator, "voting_power": 7}]
    code, shown, _ = run_cli(capsys, "genesis", "show", str(out))
    assert shown == created
    code, _, err = run_cli(
        capsys, "genesis", "create", "--chain-id", "c1", "--validator", "xyz", "--output",
        str(tmp_path / "g2.json"),
    )  # fmt: skip
    assert code == 1 and "not hexadecimal" in err


def test_commands_on_a_missing_home_or_a_stopped_node_fail_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "status", "--home", str(tmp_path / "nowhere"))
    assert code == 1 and "no config.toml" in err
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    run_cli(capsys, "init", "--home", str(tmp_path / "h"), "--api", f"127.0.0.1:{free}")
    code, _, err = run_cli(capsys, "status", "--home", str(tmp_path / "h"))
    assert code == 1 and "no node answers" in err and "is it running?" in err
    code, _, err = run_cli(capsys, "tx", "submit", "--home", str(tmp_path / "h"), "--hex", "zz")
    assert code == 1 and "not hexadecimal" in err


def test_run_refuses_a_missing_home(tmp_path: Path) -> None:
    result = run_process("run", "--home", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "no node home" in result.stderr and "bighealth init" in result.stderr


def test_run_refuses_a_damaged_config_or_genesis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "h"
    run_cli(capsys, "init", "--home", str(home))
    config = (home / "config.toml").read_text()
    (home / "config.toml").write_text(config.replace("max_peers = 50", "max_peers = many"))
    result = run_process("run", "--home", str(home))
    assert result.returncode == 1 and "config.toml: not valid TOML" in result.stderr
    (home / "config.toml").write_text(config)
    document = json.loads((home / "genesis.json").read_text())
    document["params"]["max_block_bytes"] = 4 * 1024 * 1024  # compact: 34 bytes a tx
    document["params"]["max_block_txs"] = 20_000
    (home / "genesis.json").write_text(json.dumps(document))
    result = run_process("run", "--home", str(home))
    assert result.returncode == 1
    assert "libp2p network carries at most" in result.stderr


def test_run_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run_cli(capsys, "init", "--home", str(tmp_path / "h"), "--api", f"127.0.0.1:{port}")
        result = run_process("run", "--home", str(tmp_path / "h"))
    assert result.returncode == 1
    assert f"the API address (config.toml [api] listen) 127.0.0.1:{port}" in result.stderr
    assert "is not available" in result.stderr
