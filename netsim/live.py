"""``python -m netsim live``: the same run, with real node processes on this machine.

    python -m netsim live --validators 4 --nodes 8 --heights 30 --tx-rate 20

Makes a testnet (``python -m node testnet``: a home per node, a shared genesis, free ports
on 127.0.0.1), starts one ``python -m node run`` process per node, drives the workload of
the simulator's ``generic`` kind — clients signing ``kv.set`` transactions with consecutive
nonces, sent to validators in turn at ``--tx-rate`` per second — through the nodes' HTTP
API, and watches every node's ``/status`` and ``/blocks``. It prints one line per height
once every validator committed it (with whether they agree), then the simulator's summary
(``netsim.report.summary_lines``): here "sim time" is wall-clock time.

The run ends when every validator committed ``--heights`` heights (status 0 if every node
agreed on every block, 1 otherwise), at ``--timeout-s`` (1), or on Ctrl-C (130). The node
processes are always stopped (SIGTERM, then SIGKILL past a deadline; on Linux they also die
with this process), and the testnet directory is removed unless ``--output`` or ``--keep``.

Unlike ``run``, a live run is not replayable: the seed only fixes the workload's keys and
values. This module talks to nodes over HTTP and never imports the node's shell.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from netsim.checkers import Violation
from netsim.config import SimConfig
from netsim.faults import FaultOptions
from netsim.report import summary_lines
from netsim.result import CDF_POINTS, HeightTiming, NodeLoad, RunResult
from netsim.samples import Samples
from node.app.kv import set_payload
from node.codec import TX_CODEC, sign_transaction, tx_hash
from node.home.keys import ACCOUNT_KEY, read_key_file
from node.home.manifest import ManifestNode, TestnetManifest, read_manifest
from node.types import UnsignedTransaction

MAX_LIVE_VALIDATORS: Final = 16
MAX_LIVE_NODES: Final = 32
"""Node processes one machine runs at most in a live run."""
MAX_LIVE_CLIENTS: Final = 256
MAX_LIVE_HEIGHTS: Final = 10_000
MAX_TX_PER_TICK: Final = 200
"""Transactions sent in one pass of the loop at most (a slow API cannot make a backlog
grow without bound: what is not sent by then is dropped from the schedule)."""
MAX_TRACKED_TXS: Final = 100_000
POLL_INTERVAL_S: Final = 0.1
HTTP_TIMEOUT_S: Final = 2.0
START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 15.0
KEY_BYTES: Final = 8
LOG_TAIL_LINES: Final = 12
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130
_PR_SET_PDEATHSIG: Final = 1


class LiveError(Exception):
    """The live run could not be set up or went wrong outside the nodes' control."""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """One live run (checked: ``LiveError`` for values out of range)."""

    validators: int = 4
    nodes: int = 4
    heights: int = 30
    tx_rate: float = 20.0
    clients: int = 8
    payload_bytes: int = 64
    seed: int = 0
    commit_wait_ms: int = 300
    timeout_s: float = 0.0
    """0: 60 s plus 3 s per height."""
    output: Path | None = None
    keep: bool = False
    json_path: Path | None = None

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.validators <= MAX_LIVE_VALIDATORS, f"validators 1..{MAX_LIVE_VALIDATORS}"),
            (
                self.validators <= self.nodes <= MAX_LIVE_NODES,
                f"nodes validators..{MAX_LIVE_NODES}",
            ),
            (1 <= self.heights <= MAX_LIVE_HEIGHTS, f"heights 1..{MAX_LIVE_HEIGHTS}"),
            (0 <= self.tx_rate <= 1_000, "tx-rate 0..1000 per second"),
            (1 <= self.clients <= MAX_LIVE_CLIENTS, f"clients 1..{MAX_LIVE_CLIENTS}"),
            (1 <= self.payload_bytes <= 4_096, "payload-bytes 1..4096"),
            (0 <= self.commit_wait_ms <= 60_000, "commit-wait-ms 0..60000"),
            (self.timeout_s >= 0, "timeout-s >= 0"),
        ]
        for ok, rule in checks:
            if not ok:
                raise LiveError(f"out of range: need {rule}")

    @property
    def deadline_s(self) -> float:
        return self.timeout_s or 60.0 + 3.0 * self.heights

    def sim_config(self) -> SimConfig:
        """The simulator's description of the same run (for its summary)."""
        return SimConfig(
            seed=self.seed,
            validators=self.validators,
            nodes=self.nodes,
            heights=self.heights,
            tx_rate=self.tx_rate,
            clients=self.clients,
            payload_bytes=self.payload_bytes,
        )


# -- talking to a node ----------------------------------------------------------------------------


class NodeClient:
    """A node's HTTP API; every call returns None when the node does not answer."""

    def __init__(self, address: str) -> None:
        self.base_url = f"http://{address}"

    def get(self, path: str) -> dict[str, Any] | None:
        return self._call(urllib.request.Request(self.base_url + path))

    def submit(self, raw: bytes) -> dict[str, Any] | None:
        request = urllib.request.Request(
            self.base_url + "/tx",
            data=raw,
            method="POST",
            headers={"content-type": "application/octet-stream"},
        )
        return self._call(request)

    def _call(self, request: urllib.request.Request) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            body = error.read()  # a refused transaction still carries its verdict
        except (urllib.error.URLError, OSError):
            return None
        try:
            document = json.loads(body)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None


# -- the processes --------------------------------------------------------------------------------


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class LiveNodes:
    """The testnet directory and one process per node."""

    def __init__(self, directory: Path, manifest: TestnetManifest) -> None:
        self.directory = directory
        self.manifest = manifest
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.clients = {node.name: NodeClient(node.api) for node in manifest.nodes}

    @classmethod
    def create(cls, directory: Path, options: LiveOptions) -> LiveNodes:
        command = [
            sys.executable, "-m", "node", "testnet",
            "--validators", str(options.validators),
            "--observers", str(options.nodes - options.validators),
            "--clients", str(options.clients),
            "--output", str(directory),
            "--chain-id", "netsim-live",
            "--commit-wait-ms", str(options.commit_wait_ms),
        ]  # fmt: skip
        made = subprocess.run(command, capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise LiveError(f"`{' '.join(command[1:])}` failed: {made.stderr.strip()}")
        return cls(directory, read_manifest(directory))

    def start_all(self) -> None:
        for node in self.manifest.nodes:
            home = self.directory / node.home
            with (home / "node.log").open("ab") as log:
                self.processes[node.name] = subprocess.Popen(
                    [sys.executable, "-m", "node", "run", "--home", str(home)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 (prctl only, no locks)
                )

    def wait_answering(self, timeout_s: float) -> float:
        """Seconds until every node answers ``/health`` (``LiveError`` at the deadline)."""
        started = time.monotonic()
        waiting = set(self.clients)
        while waiting:
            self._check_alive()
            waiting = {name for name in waiting if self.clients[name].get("/health") is None}
            if time.monotonic() - started > timeout_s:
                raise LiveError(f"{sorted(waiting)} did not answer within {timeout_s:.0f} s")
            if waiting:
                time.sleep(POLL_INTERVAL_S)
        return time.monotonic() - started

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise LiveError(
                    f"{name} exited with status {process.returncode}:\n{self.log_tail(name)}"
                )

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every node; SIGKILL those still running after ``STOP_TIMEOUT_S``."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        self.processes.clear()
        return codes

    def log_tail(self, name: str) -> str:
        node = next(n for n in self.manifest.nodes if n.name == name)
        path = self.directory / node.home / "node.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(f"  {line[:240]}" for line in lines[-LOG_TAIL_LINES:])


# -- the workload ---------------------------------------------------------------------------------


@dataclass
class LiveWorkload:
    """Clients sending ``kv.set`` to validators in turn at a steady rate."""

    chain_id: str
    keys: list[Any]
    validators: list[NodeClient]
    rate: float
    payload_bytes: int
    rng: random.Random
    nonces: dict[bytes, int] = field(default_factory=dict)
    submitted_at: dict[bytes, float] = field(default_factory=dict)
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    _next_s: float = 0.0

    def tick(self, now_s: float) -> None:
        """Send what the rate allows by ``now_s``."""
        if self.rate <= 0:
            return
        if not self._next_s:
            self._next_s = now_s
        for _ in range(MAX_TX_PER_TICK):
            if self._next_s > now_s:
                return
            self._send_one(now_s)
            self._next_s += 1.0 / self.rate
        self._next_s = max(self._next_s, now_s)  # behind: drop the backlog, keep the rate

    def _send_one(self, now_s: float) -> None:
        key = self.keys[self.sent % len(self.keys)]
        target = self.validators[self.sent % len(self.validators)]
        self.sent += 1
        nonce = self.nonces.get(key.public_key)
        if nonce is None:
            known = target.get(f"/accounts/{key.public_key.hex()}/nonce")
            nonce = 0 if known is None else int(known["next_nonce"])
        raw = self._transaction(key, nonce)
        verdict = target.submit(raw)
        if verdict is not None and verdict.get("accepted"):
            self.accepted += 1
            self.nonces[key.public_key] = nonce + 1
            if len(self.submitted_at) < MAX_TRACKED_TXS:
                self.submitted_at[tx_hash(raw)] = now_s
        else:
            self.rejected += 1
            self.nonces.pop(key.public_key, None)  # ask the node again next time

    def _transaction(self, key: Any, nonce: int) -> bytes:
        payload = set_payload(self.rng.randbytes(KEY_BYTES), self.rng.randbytes(self.payload_bytes))
        unsigned = UnsignedTransaction(
            chain_id=self.chain_id, sender=key.public_key, nonce=nonce, kind="kv.set",
            payload=payload, priority=0,
        )  # fmt: skip
        return TX_CODEC.encode(sign_transaction(unsigned, key))


# -- watching the chain ---------------------------------------------------------------------------


@dataclass
class ChainWatch:
    """What the nodes committed, when it was first and last seen, and whether they agree."""

    nodes: list[ManifestNode]
    clients: dict[str, NodeClient]
    started_s: float
    heights: dict[str, int] = field(default_factory=dict)
    ids: dict[int, dict[str, str]] = field(default_factory=dict)
    first_seen_s: dict[int, float] = field(default_factory=dict)
    last_seen_s: dict[int, float] = field(default_factory=dict)
    block_txs: dict[int, list[str]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    polls: int = 0
    reported: int = 0

    @property
    def validators(self) -> list[str]:
        return [node.name for node in self.nodes if node.role == "validator"]

    def poll(self, now_s: float) -> None:
        """Read every node's status and the ids of the blocks it newly committed."""
        self.polls += 1
        for node in self.nodes:
            status = self.clients[node.name].get("/status")
            if status is None:
                continue
            self.statuses[node.name] = status
            for height in range(self.heights.get(node.name, 0) + 1, int(status["height"]) + 1):
                if not self._record_block(node, height, now_s):
                    break

    def _record_block(self, node: ManifestNode, height: int, now_s: float) -> bool:
        block = self.clients[node.name].get(f"/blocks/{height}")
        if block is None:
            return False
        self.heights[node.name] = height
        at_height = self.ids.setdefault(height, {})
        at_height[node.name] = str(block["block_id"])
        self.first_seen_s.setdefault(height, now_s)
        self.last_seen_s[height] = now_s
        self.block_txs.setdefault(height, list(block["tx_hashes"]))
        if len(set(at_height.values())) > 1:
            index = [n.name for n in self.nodes].index(node.name)
            message = f"height {height}: {node.name} committed {at_height[node.name][:16]}"
            time_us = int((now_s - self.started_s) * 1e6)
            self.violations.append(Violation("agreement", time_us, index, message))
        return True

    def committed_by_all_validators(self) -> int:
        return min((self.heights.get(name, 0) for name in self.validators), default=0)

    def progress_lines(self) -> list[str]:
        """One line per height every validator has committed since the last call."""
        lines = []
        while self.reported < self.committed_by_all_validators():
            self.reported += 1
            lines.append(self._line(self.reported))
        return lines

    def _line(self, height: int) -> str:
        at_height = self.ids[height]
        validators = [at_height[name] for name in self.validators]
        agree = len(set(validators)) == 1
        others = [n.name for n in self.nodes if n.role != "validator"]
        seen = sum(o in at_height for o in others)
        others_text = f", {seen}/{len(others)} others" if others else ""
        interval = self.first_seen_s[height] - self.first_seen_s.get(height - 1, self.started_s)
        txs = len(self.block_txs[height])
        verdict = "agree" if agree else "DISAGREE"
        return (
            f"height {height:>5}  block {validators[0][:12]}…  txs {txs:>4}  "
            f"{len(validators)}/{len(validators)} validators {verdict}{others_text}  "
            f"+{interval:.2f} s"
        )


# -- the run --------------------------------------------------------------------------------------


class LiveRun:
    """Sets up, drives, watches and tears down one live run."""

    def __init__(self, options: LiveOptions, out: Any = sys.stdout) -> None:
        self.options = options
        self.out = out

    def run(self) -> int:
        """The exit status (see the module docstring)."""
        directory = self._directory()
        nodes: LiveNodes | None = None
        try:
            nodes = LiveNodes.create(directory / "testnet", self.options)
            self._print_header(nodes)
            nodes.start_all()
            waited = nodes.wait_answering(START_TIMEOUT_S)
            self._say(f"  all {len(nodes.processes)} nodes answering after {waited:.1f} s")
            return self._drive(nodes)
        except LiveError as error:
            self._say(f"FAILED: {error}")
            return EXIT_FAILED
        except KeyboardInterrupt:
            self._say("interrupted: stopping the nodes")
            return EXIT_INTERRUPTED
        finally:
            if nodes is not None and nodes.processes:
                nodes.stop_all()
            if self.options.output is None and not self.options.keep:
                shutil.rmtree(directory, ignore_errors=True)

    def _directory(self) -> Path:
        if self.options.output is not None:
            self.options.output.mkdir(parents=True, exist_ok=True)
            return self.options.output
        return Path(tempfile.mkdtemp(prefix="netsim-live-"))

    def _drive(self, nodes: LiveNodes) -> int:
        started = time.monotonic()
        watch = ChainWatch(list(nodes.manifest.nodes), nodes.clients, started)
        workload = self._workload(nodes)
        end_reason = "heights reached"
        try:
            end_reason = self._loop(nodes, watch, workload, started)
        except KeyboardInterrupt:
            end_reason = "interrupted"
        wall_s = time.monotonic() - started
        if end_reason.startswith("timeout"):
            reached = watch.committed_by_all_validators()
            message = f"the validators committed {reached} of {self.options.heights} heights"
            watch.violations.append(Violation("liveness", int(wall_s * 1e6), None, message))
        codes = nodes.stop_all()
        for name, code in codes.items():
            if code != 0 and end_reason != "interrupted":
                index = [n.name for n in nodes.manifest.nodes].index(name)
                message = f"{name} exited with status {code} on SIGTERM"
                watch.violations.append(Violation("shutdown", int(wall_s * 1e6), index, message))
        result = build_result(self.options, watch, workload, end_reason, wall_s)
        if self.options.json_path is not None:
            document = json.dumps(result.to_json(), indent=2, default=str)
            self.options.json_path.write_text(document + "\n")
        self._say("")
        for line in summary_lines(result):
            self._say(line)
        for violation in result.violations:
            self._say("  " + violation.describe())
        if end_reason == "interrupted":
            return EXIT_INTERRUPTED
        return EXIT_OK if result.passed and end_reason == "heights reached" else EXIT_FAILED

    def _loop(
        self, nodes: LiveNodes, watch: ChainWatch, workload: LiveWorkload, started: float
    ) -> str:
        next_poll = started
        while True:
            now = time.monotonic()
            workload.tick(now)
            if now >= next_poll:
                nodes._check_alive()
                watch.poll(now)
                for line in watch.progress_lines():
                    self._say(line)
                next_poll = now + POLL_INTERVAL_S
            if watch.committed_by_all_validators() >= self.options.heights:
                return "heights reached"
            if now - started > self.options.deadline_s:
                return f"timeout after {self.options.deadline_s:.0f} s"
            time.sleep(max(0.0, min(next_poll, now + POLL_INTERVAL_S) - time.monotonic()))

    def _workload(self, nodes: LiveNodes) -> LiveWorkload:
        keys = [
            read_key_file(nodes.directory / client.key_file, ACCOUNT_KEY)
            for client in nodes.manifest.clients
        ]
        validators = [nodes.clients[node.name] for node in nodes.manifest.validators]
        return LiveWorkload(
            chain_id=nodes.manifest.chain_id,
            keys=keys,
            validators=validators,
            rate=self.options.tx_rate,
            payload_bytes=self.options.payload_bytes,
            rng=random.Random(self.options.seed),
        )

    def _print_header(self, nodes: LiveNodes) -> None:
        o = self.options
        self._say(
            f"netsim live — seed {o.seed}: {o.validators} validators, "
            f"{o.nodes - o.validators} other nodes on 127.0.0.1, {o.heights} heights"
        )
        self._say(
            f"  workload         generic: {o.clients} clients, {o.tx_rate:g} tx/s, "
            f"{o.payload_bytes}-byte payloads"
        )
        self._say(f"  testnet          {nodes.directory} (logs: <node>/node.log)")
        if o.output is None and not o.keep:
            self._say("                   removed at the end (--keep or --output to keep it)")

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


# -- the summary ----------------------------------------------------------------------------------


def build_result(
    options: LiveOptions,
    watch: ChainWatch,
    workload: LiveWorkload,
    end_reason: str,
    wall_s: float,
) -> RunResult:
    """The simulator's ``RunResult`` of a live run (times are wall-clock)."""
    latencies = _latencies(watch, workload, options.seed)
    intervals = sorted(
        int((watch.first_seen_s[h] - watch.first_seen_s[h - 1]) * 1e6)
        for h in watch.first_seen_s
        if h - 1 in watch.first_seen_s
    )
    loads = _loads(watch)
    txs = sum(len(watch.block_txs[h]) for h in watch.block_txs)
    delivered = sum(load.messages_received for load in loads)
    stats = [status.get("stats", {}) for status in watch.statuses.values()]
    return RunResult(
        config=options.sim_config(),
        fault_options=FaultOptions(),
        fault_actions=(),
        fault_times_s=(),
        byzantine=(),
        end_reason=end_reason,
        sim_time_s=wall_s,
        wall_time_s=wall_s,
        events=watch.polls,
        trace_hash="(live run: no trace)",
        heights_decided=max(watch.heights.values(), default=0),
        lowest_honest_height=min((watch.heights.get(n.name, 0) for n in watch.nodes), default=0),
        txs_committed=txs,
        tx_per_sim_s=txs / wall_s if wall_s else 0.0,
        commit_latency_p50_ms=_ms(latencies.percentile(0.50)),
        commit_latency_p99_ms=_ms(latencies.percentile(0.99)),
        block_interval_p50_ms=_ms(_nearest_rank(intervals, 0.50)),
        block_interval_p99_ms=_ms(_nearest_rank(intervals, 0.99)),
        messages_sent=sum(load.messages_sent for load in loads),
        messages_delivered=delivered,
        bytes_sent=sum(load.bytes_sent for load in loads),
        dropped=_dropped(watch),
        wall_us_per_message=wall_s * 1e6 / max(1, delivered),
        accusations=sum(int(s.get("misbehaviours", 0)) for s in stats),
        rejected_inputs=workload.rejected,
        writes_lost_to_crashes=0,
        violation_count=len(watch.violations),
        violations=tuple(watch.violations),
        trace_tail=(),
        heights=_height_timings(watch),
        latency_cdf_ms=_cdf_ms(latencies),
        node_load=tuple(loads),
    )


def _height_timings(watch: ChainWatch) -> tuple[HeightTiming, ...]:
    start = watch.started_s
    return tuple(
        HeightTiming(h, watch.first_seen_s[h] - start, watch.last_seen_s[h] - start, len(ids))
        for h, ids in sorted(watch.ids.items())
        if h in watch.first_seen_s
    )


def _latencies(watch: ChainWatch, workload: LiveWorkload, seed: int) -> Samples:
    samples = Samples(random.Random(seed))
    for height, hashes in watch.block_txs.items():
        for hex_hash in hashes:
            submitted = workload.submitted_at.get(bytes.fromhex(hex_hash))
            if submitted is not None:
                samples.add(max(0, int((watch.first_seen_s[height] - submitted) * 1e6)))
    return samples


def _loads(watch: ChainWatch) -> list[NodeLoad]:
    loads = []
    for index, node in enumerate(watch.nodes):
        network = watch.statuses.get(node.name, {}).get("network", {})
        loads.append(
            NodeLoad(
                node=index,
                validator=node.role == "validator",
                honest=True,
                messages_sent=int(network.get("messages_out", 0)),
                bytes_sent=int(network.get("bytes_out", 0)),
                messages_received=int(network.get("messages_in", 0)),
                bytes_received=int(network.get("bytes_in", 0)),
            )
        )
    return loads


def _dropped(watch: ChainWatch) -> dict[str, int]:
    totals: dict[str, int] = {}
    for status in watch.statuses.values():
        for reason, count in status.get("network", {}).get("dropped", {}).items():
            totals[reason] = totals.get(reason, 0) + int(count)
    return totals


def _cdf_ms(samples: Samples) -> tuple[float, ...]:
    ordered = samples.sorted()
    step = max(1, len(ordered) // CDF_POINTS)
    return tuple(value / 1_000 for value in ordered[::step])


def _nearest_rank(ordered: list[int], fraction: float) -> int | None:
    if not ordered:
        return None
    rank = max(1, -(-int(fraction * 1_000_000) * len(ordered) // 1_000_000))
    return ordered[rank - 1]


def _ms(value_us: int | None) -> float | None:
    return None if value_us is None else value_us / 1_000


# -- the command line -----------------------------------------------------------------------------


def add_live_parser(commands: Any) -> None:
    """Add ``live`` to the ``python -m netsim`` subcommands."""
    live = commands.add_parser("live", help="run real node processes on this machine")
    add = live.add_argument
    add("--validators", type=int, default=4, help="validators (default 4)")
    add("--nodes", type=int, help="all nodes, validators included (default: --validators)")
    add("--heights", type=int, default=30, help="heights every validator must commit (30)")
    add("--tx-rate", type=float, default=20.0, help="transactions per second (default 20)")
    add("--clients", type=int, default=8, help="client accounts of the workload (default 8)")
    add("--payload-bytes", type=int, default=64, help="value size of a kv.set (default 64)")
    add("--seed", type=int, default=0, help="seed of the workload's keys and values")
    add("--commit-wait-ms", type=int, default=300, help="the nodes' pause after a commit")
    add("--timeout-s", type=float, default=0.0, help="give up after this long (0: by heights)")
    add("--output", type=Path, help="keep the testnet (homes, logs) in this directory")
    add("--keep", action="store_true", help="keep the temporary testnet directory")
    add("--json", metavar="PATH", help="write the full result as JSON")


def run_live(args: argparse.Namespace) -> int:
    """Run ``python -m netsim live`` with parsed ``args``."""
    try:
        options = LiveOptions(
            validators=args.validators,
            nodes=args.nodes if args.nodes is not None else args.validators,
            heights=args.heights,
            tx_rate=args.tx_rate,
            clients=args.clients,
            payload_bytes=args.payload_bytes,
            seed=args.seed,
            commit_wait_ms=args.commit_wait_ms,
            timeout_s=args.timeout_s,
            output=args.output,
            keep=args.keep,
            json_path=None if args.json is None else Path(args.json),
        )
    except LiveError as error:
        print(f"python -m netsim live: {error}", file=sys.stderr)
        return 2
    with _sigterm_as_interrupt():
        return LiveRun(options).run()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Any:
    """SIGTERM stops a live run as Ctrl-C does (the nodes are stopped, not orphaned)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
