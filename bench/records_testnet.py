"""The records benchmark's shared pieces: its sizes and figure rows, and the health testnet
of real node processes (``bighealth testnet --health``, each node ``bighealth run``) with
the clients of its parties."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from health import fhir
from health.client import KDF_MIN, HealthClient, Keystore, NodeClient
from health.contracts.common import HealthRole
from node.api.client import ApiError

ROOT: Final = Path(__file__).resolve().parent.parent
PASSPHRASE: Final = "bench-records"
CGM_CODE: Final = fhir.record_code("cgm")
POLL_S: Final = 0.02
START_TIMEOUT_S: Final = 60.0
WAIT_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 15.0
LOG_TAIL_LINES: Final = 20
PR_SET_PDEATHSIG: Final = 1

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How much each part does."""

    single_uploads: int
    uploads: int
    upload_threads: int
    upload_window: int
    fetches: int
    rewraps: int
    seals: int
    commit_wait_ms: int | None
    """The nodes' pause after a commit; None: the testnet's default (500 ms)."""


FULL = Sizes(
    single_uploads=20,
    uploads=1_500,
    upload_threads=4,
    upload_window=56,
    fetches=400,
    rewraps=1_000,
    seals=2_000,
    commit_wait_ms=None,
)
SMOKE = Sizes(
    single_uploads=1,
    uploads=6,
    upload_threads=2,
    upload_window=4,
    fetches=3,
    rewraps=20,
    seals=20,
    commit_wait_ms=100,
)


@dataclass
class Row:
    """One figure."""

    case: str
    what: str
    value: float
    unit: str


# -- node processes -------------------------------------------------------------------------


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the benchmark dies (Linux), so no node outlives
    it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Testnet:
    """A ``bighealth testnet --health`` directory and its running node processes."""

    directory: Path
    manifest: dict[str, Any]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def chain_id(self) -> str:
        return str(self.manifest["chain_id"])

    def node(self, index: int) -> dict[str, Any]:
        node: dict[str, Any] = self.manifest["nodes"][index]
        return node

    def url(self, index: int) -> str:
        return f"http://{self.node(index)['api']}"

    def log_path(self, index: int) -> Path:
        return self.directory / str(self.node(index)["home"]) / "node.log"

    def hospital(self, index: int) -> HealthClient:
        """The client of hospital ``index`` (its keystore from the testnet) on its node."""
        keystore = Keystore.open(
            self.directory / "clients" / f"hospital-{index}.keystore", PASSPHRASE
        )
        return client(self.url(index), keystore, self.chain_id)

    def start(self) -> None:
        for index, node in enumerate(self.manifest["nodes"]):
            home = self.directory / str(node["home"])
            with self.log_path(index).open("ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "node", "run", "--home", str(home)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                        preexec_fn=die_with_parent,  # noqa: PLW1509 (prctl only)
                    )
                )

    def wait_committing(self) -> None:
        """Until every node has committed a block (with two validators: both are up and
        connected)."""
        nodes = [NodeClient(self.url(i), timeout_s=5.0) for i in range(len(self.processes))]
        self.wait_until(lambda: all(chain_height(node) >= 1 for node in nodes), "the first block")

    def wait_until(self, condition: Callable[[], T], what: str) -> T:
        """Poll ``condition`` until it is true; fail (with the logs) when a node stopped or
        after ``START_TIMEOUT_S``."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a node stopped ({process.returncode})\n{self.logs()}")
            result = condition()
            if result:
                return result
            time.sleep(POLL_S)
        raise RuntimeError(f"timed out waiting for {what}\n{self.logs()}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def logs(self) -> str:
        parts = []
        for index in range(len(self.manifest["nodes"])):
            path = self.log_path(index)
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                parts.append(f"--- node {index} ---\n" + "\n".join(line[:300] for line in lines))
        return "\n".join(parts)


@contextmanager
def health_testnet(directory: Path, validators: int, sizes: Sizes) -> Iterator[Testnet]:
    """A health testnet of ``validators`` hospitals, every node running and committing."""
    command = [
        sys.executable,
        "-m",
        "node",
        "testnet",
        "--validators",
        str(validators),
        "--observers",
        "0",
        "--clinics",
        "0",
        "--health",
        "--passphrase",
        PASSPHRASE,
        "--output",
        str(directory),
    ]
    if sizes.commit_wait_ms is not None:
        command += ["--commit-wait-ms", str(sizes.commit_wait_ms)]
    made = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if made.returncode != 0:
        raise RuntimeError(f"bighealth testnet failed: {made.stderr.strip()}")
    net = Testnet(directory, json.loads(made.stdout))
    try:
        net.start()
        net.wait_committing()
        yield net
    finally:
        net.stop()


def chain_height(node: NodeClient) -> int:
    """The node's committed height (-1 while its API does not answer)."""
    try:
        return int(node.status()["height"])
    except ApiError:
        return -1


def client(url: str, keystore: Keystore, chain_id: str) -> HealthClient:
    """A client of the node at ``url`` polling receipts every ``POLL_S``."""
    return HealthClient(
        url, keystore, chain_id, poll_interval_s=POLL_S, receipt_timeout_s=WAIT_TIMEOUT_S
    )


def new_party(
    directory: Path, name: str, role: HealthRole, url: str, chain_id: str
) -> HealthClient:
    """A new party's client (a fresh keystore, cheap KDF: a benchmark's)."""
    keystore = Keystore.create(
        directory / f"{name}.keystore", PASSPHRASE, name=name, role=role, kdf=KDF_MIN
    )
    return client(url, keystore, chain_id)


def reading(index: int, time_ms: int) -> dict[str, Any]:
    """A CGM reading as a FHIR Observation."""
    return fhir.glucose_observation(
        observation_id=f"cgm-{index}",
        patient_ref="Patient/bench",
        mg_dl=70 + index % 180,
        time_ms=time_ms,
        device="cgm",
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def run_threads(targets: Sequence[Callable[[], None]]) -> list[str]:
    """Run each target in a thread of its own to the end; the errors they raised."""
    errors: list[str] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
