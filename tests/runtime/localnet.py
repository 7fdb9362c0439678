"""Real node processes on 127.0.0.1 for the multi-process tests.

``LocalNet.create`` makes a testnet directory (as ``bighealth testnet`` does) with short
timeouts; ``start`` runs ``python -m node run --home <home>`` as a child process (logs in
``<home>/node.log``); the API of each node is the window into it. Every wait is a poll of a
condition with a deadline (``wait_until``); failures show the tail of the nodes' logs.
Processes are stopped with SIGTERM (then SIGKILL past a deadline) when the net closes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from crypto_core.signatures import Ed25519KeyPair
from node.api.client import ApiClient, ApiError
from node.chain.config import NodeConfig
from node.cli.home_commands import node_params
from node.cli.node_commands import kv_set_transaction
from node.cli.testnet import TestnetSpec, create_testnet
from node.home import ACCOUNT_KEY, read_key_file
from node.home.config import parse_host_port
from node.home.manifest import ManifestNode, TestnetManifest
from node.runtime.system import SystemRng

ROOT: Final = Path(__file__).resolve().parents[2]
POLL_S: Final = 0.05
STOP_TIMEOUT_S: Final = 15.0
LOG_TAIL_LINES: Final = 15
FAST_CHAIN: Final = NodeConfig(commit_wait_ms=150, status_interval_ms=1_000)

PR_SET_PDEATHSIG: Final = 1

T = TypeVar("T")


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the test process dies (Linux), so no node
    outlives a crashed test run."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalNet:
    """Node processes of one testnet directory (see the module docstring)."""

    def __init__(self, directory: Path, manifest: TestnetManifest) -> None:
        self.directory = directory
        self.manifest = manifest
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.nonces: dict[bytes, int] = {}

    @classmethod
    def create(cls, directory: Path, validators: int, observers: int = 0) -> LocalNet:
        spec = TestnetSpec(
            validators=validators,
            observers=observers,
            clients=4,
            chain_id="localnet",
            genesis_time_ms=int(time.time() * 1000),
            params=node_params(timeout_propose_ms=1_000, timeout_prevote_ms=400,
                               timeout_precommit_ms=400),
            chain=FAST_CHAIN,
        )  # fmt: skip
        manifest = create_testnet(directory, spec, SystemRng())
        return cls(directory, manifest)

    # -- nodes ----------------------------------------------------------------------------

    def node(self, name: str) -> ManifestNode:
        return next(node for node in self.manifest.nodes if node.name == name)

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.manifest.nodes]

    def home(self, name: str) -> Path:
        return self.directory / self.node(name).home

    def start(self, name: str) -> subprocess.Popen[bytes]:
        home = self.home(name)
        log = (home / "node.log").open("ab")
        command = [sys.executable, "-m", "node", "run", "--home", str(home)]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            preexec_fn=die_with_parent,  # noqa: PLW1509 (prctl only)
        )
        log.close()
        self.processes[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig``; wait for the process to end; its exit status."""
        process = self.processes.pop(name)
        process.send_signal(sig)
        return process.wait(timeout=STOP_TIMEOUT_S)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every node, SIGKILL what is still running after the deadline."""
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {}
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        self.processes.clear()
        return codes

    # -- the API --------------------------------------------------------------------------

    def api(self, name: str) -> ApiClient:
        host, port = parse_host_port(self.node(name).api)
        return ApiClient(host, port, timeout_s=5.0)

    def status(self, name: str) -> dict[str, Any] | None:
        """The node's ``/status``, or None while it does not answer."""
        try:
            return self.api(name).get("/status")
        except ApiError:
            return None

    def height(self, name: str) -> int:
        status = self.status(name)
        return -1 if status is None else int(status["height"])

    def block_id(self, name: str, height: int) -> str:
        return str(self.api(name).get(f"/blocks/{height}")["block_id"])

    def wait_until(self, condition: Callable[[], T | None], timeout_s: float, what: str) -> T:
        """Poll ``condition`` until it returns a true value; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(POLL_S)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{self.logs()}")

    def wait_for_heights(self, names: list[str], height: int, timeout_s: float) -> None:
        self.wait_until(
            lambda: all(self.height(n) >= height for n in names),
            timeout_s,
            f"{names} to reach height {height}",
        )

    def logs(self) -> str:
        parts = []
        for name in self.names:
            path = self.home(name) / "node.log"
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                parts.append(f"--- {name} ---\n" + "\n".join(line[:300] for line in lines))
        return "\n".join(parts)

    # -- transactions ---------------------------------------------------------------------

    def client(self, index: int) -> Ed25519KeyPair:
        return read_key_file(self.directory / self.manifest.clients[index].key_file, ACCOUNT_KEY)

    def submit_kv(self, name: str, client: Ed25519KeyPair, key: bytes) -> dict[str, Any]:
        """Sign a kv.set with the client's next nonce and submit it to ``name``."""
        nonce = self.nonces.get(client.public_key, 0)
        raw = kv_set_transaction(self.manifest.chain_id, client, nonce, key, b"value")
        verdict = self.api(name).submit_tx(raw)
        if verdict.get("accepted"):
            self.nonces[client.public_key] = nonce + 1
        return verdict
