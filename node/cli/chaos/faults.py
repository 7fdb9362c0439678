"""Faults on the node processes of a local network: ``kill -9``, pauses, the fault gate.

``FaultyNetwork`` runs a testnet directory's nodes with ``LocalNetwork``, every node with
``bighealth run --fault-gate`` (and ``--clock-skew-ms`` once a skewed restart gave it one)
under ``BIGHEALTH_ALLOW_FAULTS=1`` (set for the nodes alone, through ``env``). It kills a
node with SIGKILL and starts it again, stops and continues one with SIGSTOP/SIGCONT, and
cuts links by writing the nodes' ``HOME/chaos-gate.json`` (``node.runtime.fault_gate``):
a partition gates both sides against each other, a one-way loss gates one receiver
against one sender. ``heal_links`` opens every gate. Every action is counted in
``injected`` by kind.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Final

from node.cli.localnet import LocalNetwork
from node.home import write_text_atomic
from node.home.manifest import read_manifest
from node.runtime.fault_gate import ALLOW_FAULTS_ENV, GATE_FILE, GateRules, gate_text

STOP_TIMEOUT_S: Final = 10.0


class FaultyNetwork:
    """A ``LocalNetwork`` whose nodes can be faulted (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.skew_ms: dict[str, int] = {}
        self.injected: Counter[str] = Counter()
        self.paused: set[str] = set()
        self.net = LocalNetwork(
            directory,
            read_manifest(directory),
            stop_timeout_s=STOP_TIMEOUT_S,
            command=self._command,
        )
        self._peer_ids = {node.name: node.peer_id for node in self.net.manifest.nodes}

    def _command(self, home: Path) -> list[str]:
        name = next(n.name for n in self.net.manifest.nodes if self.directory / n.home == home)
        # env(1) execs the node in place: the child's pid is the node's (signals reach it).
        command = ["env", f"{ALLOW_FAULTS_ENV}=1", sys.executable, "-m", "node", "run"]
        command += ["--home", str(home), "--fault-gate"]
        skew_ms = self.skew_ms.get(name, 0)
        return [*command, "--clock-skew-ms", str(skew_ms)] if skew_ms else command

    @property
    def names(self) -> list[str]:
        """Every node, in manifest order."""
        return self.net.names

    def start_all(self) -> None:
        """Start every node, every gate open."""
        self.heal_links()
        self.net.start()

    # -- processes ------------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and reap it (it is not restarted here)."""
        self.paused.discard(name)
        self.net.stop(name, signal.SIGKILL)
        self.injected["kill"] += 1

    def restart(self, name: str, skew_ms: int | None = None) -> None:
        """Start ``name`` again; ``skew_ms``: its clock's new skew (None: as before)."""
        if skew_ms is not None:
            self.skew_ms[name] = skew_ms
            self.injected["skewed_restart"] += 1
        self.net.start([name])

    def pause(self, name: str) -> None:
        """SIGSTOP ``name``."""
        self.net.processes[name].send_signal(signal.SIGSTOP)
        self.paused.add(name)
        self.injected["pause"] += 1

    def resume(self, name: str) -> None:
        """SIGCONT ``name`` (if it is paused)."""
        if name in self.paused:
            self.net.processes[name].send_signal(signal.SIGCONT)
            self.paused.discard(name)

    def resume_all(self) -> None:
        """SIGCONT every paused node."""
        for name in list(self.paused):
            self.resume(name)

    def running(self) -> list[str]:
        """The nodes whose process runs (paused ones included)."""
        return [n for n, p in self.net.processes.items() if p.poll() is None]

    # -- links ----------------------------------------------------------------------------------

    def partition(self, side: tuple[str, ...]) -> None:
        """The nodes of ``side`` and all others drop each other's messages."""
        rest = [name for name in self.names if name not in side]
        for name in self.names:
            others = rest if name in side else list(side)
            peers = frozenset(self._peer_ids[other] for other in others)
            self._write_gate(name, GateRules(drop_from=peers, drop_to=peers))
        self.injected["partition"] += 1

    def drop_one_way(self, sender: str, receiver: str) -> None:
        """``receiver`` drops every message from ``sender`` (the reverse way stays up)."""
        self._write_gate(receiver, GateRules(drop_from=frozenset({self._peer_ids[sender]})))
        self.injected["one_way"] += 1

    def heal_links(self) -> None:
        """Open every node's gate."""
        for name in self.names:
            self._write_gate(name, GateRules())

    def _write_gate(self, name: str, rules: GateRules) -> None:
        write_text_atomic(self.net.home(name) / GATE_FILE, gate_text(rules))

    # -- the end --------------------------------------------------------------------------------

    def stop_all(self) -> dict[str, int]:
        """Continue paused nodes, then stop every node gracefully (SIGTERM)."""
        self.resume_all()
        return self.net.stop_all()
