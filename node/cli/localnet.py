"""Node processes of a testnet directory on this host: start them, wait for their APIs,
stop them — what ``bighealth demo``, benchmarks and fault campaigns share.

``LocalNetwork(directory)`` reads the directory's ``testnet.json`` (``bighealth testnet``,
``node.cli.testnet.create_testnet``); ``start`` runs ``python -m node run --home <home>``
per node as a child process whose stdout and stderr go to ``<home>/node.log``; on Linux a
child gets SIGTERM when this process dies, so no node outlives a crashed parent.
``wait_answering`` polls each node's ``GET /health`` until it answers 200, failing with
``LocalNetError`` (and the tail of the node's log) when a node exits or the deadline
passes; ``wait_height`` likewise until each node committed a height (it found its peers
and follows the chain). ``stop_all`` (also on leaving the ``with`` block) sends SIGTERM —
a node's graceful stop — and SIGKILL to any node still running ``stop_timeout_s`` later.

``sigterm_as_interrupt`` makes SIGTERM raise ``KeyboardInterrupt`` in the main thread, so a
program stopped by SIGTERM or Ctrl-C leaves its ``with LocalNetwork`` block and stops its
nodes the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from node.api.client import ApiClient, ApiError
from node.errors import BigHealthError
from node.home.config import parse_host_port
from node.home.manifest import ManifestNode, TestnetManifest, read_manifest

LOG_FILE: Final = "node.log"
"""Each node's log, in its home."""
STOP_TIMEOUT_S: Final = 15.0
"""How long ``stop_all`` waits for SIGTERM to end the nodes before it kills them."""
POLL_INTERVAL_S: Final = 0.1
LOG_TAIL_LINES: Final = 15
LOG_LINE_CHARS: Final = 240
PROBE_TIMEOUT_S: Final = 2.0
_PR_SET_PDEATHSIG: Final = 1


class LocalNetError(BigHealthError):
    """A node of the local network exited, or did not answer in time."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def node_command(home: Path) -> list[str]:
    """The command that runs the node of ``home`` with this interpreter."""
    return [sys.executable, "-m", "node", "run", "--home", str(home)]


class LocalNetwork:
    """The nodes of one testnet directory as child processes (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        manifest: TestnetManifest | None = None,
        *,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        command: Callable[[Path], list[str]] = node_command,
    ) -> None:
        """``manifest``: the directory's, read from ``testnet.json`` when not given;
        ``command``: the command line of a node given its home."""
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory) if manifest is None else manifest
        self.stop_timeout_s = stop_timeout_s
        self._command = command
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> LocalNetwork:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop_all()

    # -- the nodes --------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Every node's name, in manifest order."""
        return [node.name for node in self.manifest.nodes]

    def node(self, name: str) -> ManifestNode:
        """The manifest entry of ``name`` (``KeyError`` if none)."""
        for node in self.manifest.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in {self.directory}")

    def home(self, name: str) -> Path:
        """The home directory of ``name``."""
        return self.directory / self.node(name).home

    def api_url(self, name: str) -> str:
        """``http://host:port`` of ``name``'s API."""
        return f"http://{self.node(name).api}"

    def start(self, names: Iterable[str] | None = None) -> None:
        """Start the nodes ``names`` (default: all) that are not running."""
        for name in self.names if names is None else list(names):
            running = self.processes.get(name)
            if running is not None and running.poll() is None:
                continue
            home = self.home(name)
            with (home / LOG_FILE).open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    self._command(home),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 (prctl only, no locks)
                )

    def check_alive(self) -> None:
        """``LocalNetError`` (with the tail of its log) if a started node has exited."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                raise LocalNetError(f"{name} exited with status {code}:\n{self.log_tail(name)}")

    def answers(self, name: str) -> bool:
        """True when ``name``'s ``GET /health`` answers 200 now."""
        host, port = parse_host_port(self.node(name).api)
        try:
            ApiClient(host, port, timeout_s=PROBE_TIMEOUT_S).get("/health")
        except ApiError:
            return False
        return True

    def wait_answering(
        self,
        timeout_s: float,
        names: Sequence[str] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float:
        """Seconds until every node of ``names`` (default: all started) answers
        ``/health``; ``LocalNetError`` when one exits or ``timeout_s`` passes first."""
        started = monotonic()
        waiting = list(self.processes if names is None else names)
        while waiting:
            self.check_alive()
            waiting = [name for name in waiting if not self.answers(name)]
            if not waiting:
                break
            if monotonic() - started > timeout_s:
                tails = "\n".join(f"{name}:\n{self.log_tail(name)}" for name in waiting)
                raise LocalNetError(f"{waiting} did not answer within {timeout_s:g} s\n{tails}")
            sleep(POLL_INTERVAL_S)
        return monotonic() - started

    def height(self, name: str) -> int:
        """The height ``name`` committed (its ``/status``), -1 while it does not answer."""
        host, port = parse_host_port(self.node(name).api)
        try:
            status = ApiClient(host, port, timeout_s=PROBE_TIMEOUT_S).get("/status")
        except ApiError:
            return -1
        height = status.get("height")
        return height if isinstance(height, int) else -1

    def wait_height(
        self,
        height: int,
        timeout_s: float,
        names: Sequence[str] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float:
        """Seconds until every node of ``names`` (default: all started) committed
        ``height`` — connected to the network and following it; ``LocalNetError`` when one
        exits or ``timeout_s`` passes first."""
        started = monotonic()
        waiting = list(self.processes if names is None else names)
        while waiting:
            self.check_alive()
            waiting = [name for name in waiting if self.height(name) < height]
            if not waiting:
                break
            if monotonic() - started > timeout_s:
                tails = "\n".join(f"{name}:\n{self.log_tail(name)}" for name in waiting)
                raise LocalNetError(
                    f"{waiting} did not reach height {height} within {timeout_s:g} s\n{tails}"
                )
            sleep(POLL_INTERVAL_S)
        return monotonic() - started

    def pids(self) -> dict[str, int]:
        """The process id of every started node still running, by name (for /proc samples)."""
        return {name: p.pid for name, p in self.processes.items() if p.poll() is None}

    def status(self, name: str) -> dict[str, Any] | None:
        """``name``'s ``GET /status`` document, ``None`` while it does not answer."""
        host, port = parse_host_port(self.node(name).api)
        try:
            return ApiClient(host, port, timeout_s=PROBE_TIMEOUT_S).get("/status")
        except ApiError:
            return None

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` to ``name`` and wait for it (SIGKILL after ``stop_timeout_s``);
        its exit status."""
        process = self.processes.pop(name)
        return _ended(process, sig, time.monotonic() + self.stop_timeout_s)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every running node, SIGKILL those still running after the deadline; the
        exit status of each."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        codes = {name: _ended(process, None, deadline) for name, process in self.processes.items()}
        self.processes.clear()
        return codes

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of ``name``'s log, indented and cut to width."""
        path = self.home(name) / LOG_FILE
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(f"  {line[:LOG_LINE_CHARS]}" for line in text[-lines:])


def _ended(process: subprocess.Popen[bytes], sig: int | None, deadline: float) -> int:
    if sig is not None and process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` (main thread only)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
