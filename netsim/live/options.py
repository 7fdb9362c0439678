"""The options of a live run (``LiveOptions``) and the ``live`` command's arguments."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from netsim.config import SimConfig

MAX_LIVE_VALIDATORS: Final = 16
MAX_LIVE_NODES: Final = 32
"""Node processes one machine runs at most in a live run."""
MAX_LIVE_CLIENTS: Final = 256
MAX_LIVE_HEIGHTS: Final = 10_000
MAX_TX_RATE: Final = 1_000
"""Transactions per second offered at most. The senders (a thread per validator, a
``POST /txs`` batch per pass) sent 930 a second of 1,000 offered on a 2-core machine running
4 nodes too, where the nodes committed about 95 a second: a higher rate would not be sent,
only dropped from the schedule (the summary shows how many were sent of those offered)."""


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
            (0 <= self.tx_rate <= MAX_TX_RATE, f"tx-rate 0..{MAX_TX_RATE} per second"),
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


def add_live_parser(commands: Any) -> None:
    """Add ``live`` to the ``python -m netsim`` subcommands."""
    live = commands.add_parser("live", help="run real node processes on this machine")
    add = live.add_argument
    add("--validators", type=int, default=4, help="validators (default 4)")
    add("--nodes", type=int, help="all nodes, validators included (default: --validators)")
    add("--heights", type=int, default=30, help="heights every validator must commit (30)")
    add(
        "--tx-rate",
        type=float,
        default=20.0,
        help=f"transactions per second offered (default 20, at most {MAX_TX_RATE})",
    )
    add("--clients", type=int, default=8, help="client accounts of the workload (default 8)")
    add("--payload-bytes", type=int, default=64, help="value size of a kv.set (default 64)")
    add("--seed", type=int, default=0, help="seed of the workload's keys and values")
    add("--commit-wait-ms", type=int, default=300, help="the nodes' pause after a commit")
    add("--timeout-s", type=float, default=0.0, help="give up after this long (0: by heights)")
    add("--output", type=Path, help="keep the testnet (homes, logs) in this directory")
    add("--keep", action="store_true", help="keep the temporary testnet directory")
    add("--json", metavar="PATH", help="write the full result as JSON")


def options_of(args: argparse.Namespace) -> LiveOptions:
    """The options ``args`` of ``live`` ask for (``LiveError`` if out of range)."""
    return LiveOptions(
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
