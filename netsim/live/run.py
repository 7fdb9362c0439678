"""One live run: make the testnet, start its nodes, load and watch them, stop them, sum up."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final, TextIO

from netsim.checkers import Violation
from netsim.live.figures import build_result, commit_latencies_s, live_summary_lines
from netsim.live.options import LiveError, LiveOptions, options_of
from netsim.live.watch import LONG_POLL_MS, ChainWatch, CommitClock
from netsim.live.workload import LiveClient, Senders
from node.cli.localnet import LocalNetError, LocalNetwork, sigterm_as_interrupt
from node.home import ACCOUNT_KEY, parse_host_port, read_key_file
from node.home.manifest import ManifestNode

POLL_INTERVAL_S: Final = 0.1
HTTP_TIMEOUT_S: Final = 2.0
START_TIMEOUT_S: Final = 60.0
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def api_client(node: ManifestNode, timeout_s: float = HTTP_TIMEOUT_S) -> LiveClient:
    """A client of ``node``'s HTTP API."""
    host, port = parse_host_port(node.api)
    return LiveClient(host, port, timeout_s)


def make_testnet(directory: Path, options: LiveOptions) -> None:
    """The testnet of ``options`` in ``directory`` (``python -m node testnet``)."""
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


class LiveRun:
    """Sets up, drives, watches and tears down one live run."""

    def __init__(self, options: LiveOptions, out: TextIO = sys.stdout) -> None:
        self.options = options
        self.out = out

    def run(self) -> int:
        """The exit status (see the package docstring)."""
        directory = self._directory()
        try:
            make_testnet(directory / "testnet", self.options)
            with LocalNetwork(directory / "testnet") as nodes:
                self._print_header(nodes)
                nodes.start()
                waited = nodes.wait_answering(START_TIMEOUT_S)
                self._say(f"  all {len(nodes.processes)} nodes answering after {waited:.1f} s")
                return self._drive(nodes)
        except (LiveError, LocalNetError) as error:
            self._say(f"FAILED: {error}")
            return EXIT_FAILED
        except KeyboardInterrupt:
            self._say("interrupted: stopping the nodes")
            return EXIT_INTERRUPTED
        finally:
            if self.options.output is None and not self.options.keep:
                shutil.rmtree(directory, ignore_errors=True)

    def _directory(self) -> Path:
        if self.options.output is not None:
            self.options.output.mkdir(parents=True, exist_ok=True)
            return self.options.output
        return Path(tempfile.mkdtemp(prefix="netsim-live-"))

    def _drive(self, nodes: LocalNetwork) -> int:
        """Load and watch the started ``nodes`` until the run ends; stop them; sum up."""
        clocks = {
            node.name: CommitClock(api_client(node, LONG_POLL_MS / 1000 + HTTP_TIMEOUT_S))
            for node in nodes.manifest.validators
        }
        for clock in clocks.values():
            clock.start()
        started = time.monotonic()
        clients = {node.name: api_client(node) for node in nodes.manifest.nodes}
        watch = ChainWatch(list(nodes.manifest.nodes), clients, started)
        senders = self._senders(nodes)
        senders.start()
        try:
            end_reason = self._loop(nodes, watch, started)
        except KeyboardInterrupt:
            end_reason = "interrupted"
        finally:  # also when a node exited: no thread outlives the run
            senders.stop(timeout_s=HTTP_TIMEOUT_S)
            for clock in clocks.values():
                clock.stop()
        wall_s = time.monotonic() - started
        committed_s = {name: dict(clock.seen_s) for name, clock in clocks.items()}
        self._judge_end(nodes, watch, end_reason, wall_s)
        for clock in clocks.values():
            clock.stop(timeout_s=HTTP_TIMEOUT_S)  # their long polls end with the nodes
        result = build_result(
            self.options, watch, senders, committed_s, end_reason=end_reason, wall_s=wall_s
        )
        if self.options.json_path is not None:
            document = json.dumps(result.to_json(), indent=2, default=str)
            self.options.json_path.write_text(document + "\n")
        measured = len(commit_latencies_s(senders.submitted, watch.block_txs, committed_s))
        self._say("")
        for line in live_summary_lines(result, senders, measured):
            self._say(line)
        for violation in result.violations:
            self._say("  " + violation.describe())
        if end_reason == "interrupted":
            return EXIT_INTERRUPTED
        return EXIT_OK if result.passed and end_reason == "heights reached" else EXIT_FAILED

    def _judge_end(
        self, nodes: LocalNetwork, watch: ChainWatch, end_reason: str, wall_s: float
    ) -> None:
        """Stop the nodes; a timeout, and a node that did not stop cleanly on SIGTERM, are
        violations."""
        if end_reason.startswith("timeout"):
            reached = watch.committed_by_all_validators()
            message = f"the validators committed {reached} of {self.options.heights} heights"
            watch.violations.append(Violation("liveness", int(wall_s * 1e6), None, message))
        for name, code in nodes.stop_all().items():
            if code != 0 and end_reason != "interrupted":
                index = nodes.names.index(name)
                message = f"{name} exited with status {code} on SIGTERM"
                watch.violations.append(Violation("shutdown", int(wall_s * 1e6), index, message))

    def _loop(self, nodes: LocalNetwork, watch: ChainWatch, started: float) -> str:
        """Watch the chain (the senders send in their threads) until the end; why it ended."""
        while True:
            now = time.monotonic()
            nodes.check_alive()
            watch.poll(now)
            for line in watch.progress_lines():
                self._say(line)
            if watch.committed_by_all_validators() >= self.options.heights:
                return "heights reached"
            if now - started > self.options.deadline_s:
                return f"timeout after {self.options.deadline_s:.0f} s"
            time.sleep(max(0.0, now + POLL_INTERVAL_S - time.monotonic()))

    def _senders(self, nodes: LocalNetwork) -> Senders:
        """The load's senders, with clients of their own (one per thread)."""
        keys = [
            read_key_file(nodes.directory / client.key_file, ACCOUNT_KEY)
            for client in nodes.manifest.clients
        ]
        return Senders.split(
            chain_id=nodes.manifest.chain_id,
            keys=keys,
            validators={node.name: api_client(node) for node in nodes.manifest.validators},
            rate=self.options.tx_rate,
            payload_bytes=self.options.payload_bytes,
            seed=self.options.seed,
        )

    def _print_header(self, nodes: LocalNetwork) -> None:
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


def run_live(args: argparse.Namespace) -> int:
    """Run ``python -m netsim live`` with parsed ``args``."""
    try:
        options = options_of(args)
    except LiveError as error:
        print(f"python -m netsim live: {error}", file=sys.stderr)
        return EXIT_USAGE
    with sigterm_as_interrupt():
        return LiveRun(options).run()
