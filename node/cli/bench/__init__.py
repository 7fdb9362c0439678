"""``bighealth bench``: measuring instruments for a live network on this host.

    bighealth bench network [--validators 4] [--duration 60] [--tx-size 300] [--rate max|N]
                            [--sweep] [--smoke] [--json FILE] [--plot FILE] [--keep DIR]
    bighealth bench gossip  [--nodes 4,16] [--sizes 256KiB,2MiB] [--json FILE] [--smoke]

``network`` (``node.cli.bench.network``) runs real node processes under load from separate
load processes and reports committed tx/s, finality, block intervals, CPU, memory, bytes on
the wire and the machine's ceilings; ``gossip`` (``node.cli.bench.gossip``) times a payload
reaching every one of N libp2p nodes. docs/BENCHMARKS.md describes both and every figure.
The modules load only when their command runs (libp2p, multiprocessing, matplotlib).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
from pathlib import Path

from node.cli.common import Subparsers
from node.cli.options import BENCH_TX_GOSSIP_MS, BENCH_WINDOW_TXS, TESTNET_COMMIT_WAIT_MS


def _rate(text: str) -> float | None:
    if text == "max":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected max or a rate in tx/s, not {text!r}") from None
    if not rate > 0:
        raise argparse.ArgumentTypeError("a rate must be > 0 tx/s")
    return rate


def cmd_bench_network(args: argparse.Namespace) -> int:
    """Run the network benchmark; print the table; write the JSON and plot if asked."""
    from node.cli.bench import report  # noqa: PLC0415 (heavy: multiprocessing, testnet)
    from node.cli.bench.facts import load_average  # noqa: PLC0415
    from node.cli.bench.network import SMOKE, NetworkBenchOptions, run_network_bench  # noqa: PLC0415

    options = NetworkBenchOptions(
        validators=args.validators,
        duration_s=args.duration,
        tx_size_bytes=args.tx_size,
        rate_tx_per_s=args.rate,
        sweep=args.sweep,
        accounts=args.accounts,
        load_processes=args.load_processes,
        connections_per_node=args.connections,
        batch_max=args.batch,
        window_txs=args.window,
        commit_wait_ms=args.commit_wait_ms,
        tx_gossip_ms=args.tx_gossip_ms,
        smoke=args.smoke,
        workload=args.workload,
    )
    if args.smoke:
        options = dataclasses.replace(options, **SMOKE)  # type: ignore[arg-type]
    load_before = load_average()
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-net-"))
            directory = Path(scratch) / "testnet"
        else:
            directory = args.keep
        ceilings, phases = run_network_bench(options, directory, sys.stderr)
    document = report.bench_document(options, ceilings, phases, load_before)
    print(report.render_table(document))
    if args.json is not None:
        report.write_document(args.json, document)
    if args.plot is not None:
        report.plot(document, phases, args.plot)
    return 0


def add_bench_network(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "network",
        help="a live local network under load: committed tx/s, finality, ceilings",
        description="Run a local network of real node processes, load it from separate "
        "processes with pre-signed kv.set transactions and measure it from the load side "
        "(docs/BENCHMARKS.md).",
    )
    parser.add_argument("--validators", type=int, default=4, metavar="N", help="validator nodes")
    parser.add_argument(
        "--duration", type=float, default=60.0, metavar="S", help="seconds of load per phase"
    )
    parser.add_argument(
        "--tx-size", type=int, default=300, metavar="BYTES", help="encoded size of each transaction"
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        default=None,
        metavar="max|N",
        help="offered tx/s (open loop), or max: closed loop (default)",
    )
    parser.add_argument(
        "--workload",
        choices=["kv", "health"],
        default="kv",
        help="what the transactions do: kv.set, or health: devices committing glucose "
        "readings (records.commit)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="several offered rates, then max: the saturation curve"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run: 2 validators, a few seconds at a low rate"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG plot")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="make the testnet in DIR (an empty or absent directory) and keep it",
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=2_048,
        metavar="N",
        help="client accounts sending (the mempool holds 64 pending per account)",
    )
    parser.add_argument("--load-processes", type=int, default=2, metavar="N", help="load processes")
    parser.add_argument(
        "--connections",
        type=int,
        default=2,
        metavar="N",
        help="keep-alive connections per node per load process",
    )
    parser.add_argument(
        "--batch", type=int, default=256, metavar="N", help="most transactions per request"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=BENCH_WINDOW_TXS,
        metavar="N",
        help="with --rate max: transactions sent and not yet committed at most "
        "(the closed loop's bound; finality is about N / the committed rate)",
    )
    parser.add_argument(
        "--commit-wait-ms",
        type=int,
        default=TESTNET_COMMIT_WAIT_MS,
        metavar="MS",
        help="the nodes' pause after a commit ([chain] commit_wait_ms)",
    )
    parser.add_argument(
        "--tx-gossip-ms",
        type=int,
        default=BENCH_TX_GOSSIP_MS,
        metavar="MS",
        help="how often the nodes flush their clients' transactions to peers "
        "([chain] tx_gossip_interval_ms)",
    )
    parser.set_defaults(handler=cmd_bench_network)


def cmd_bench_gossip(args: argparse.Namespace) -> int:
    """Run the gossip benchmark; print the table; write the JSON if asked."""
    from node.cli.bench import gossip  # noqa: PLC0415 (imports libp2p)

    return gossip.main_command(args)


def add_bench_gossip(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "gossip",
        help="time for a block-sized payload to reach every one of N libp2p nodes",
        description="Start N processes each running the node's libp2p network, broadcast "
        "payloads of each size from one of them and time their arrival at all "
        "(docs/BENCHMARKS.md).",
    )
    parser.add_argument("--nodes", default="4,16", metavar="N,N", help="network sizes")
    parser.add_argument(
        "--sizes", default="256KiB,2MiB", metavar="SIZE,SIZE", help="payload sizes (B, KiB, MiB)"
    )
    parser.add_argument("--rounds", type=int, default=10, metavar="N", help="broadcasts per size")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run: 3 nodes, small payloads, 2 rounds"
    )
    parser.set_defaults(handler=cmd_bench_gossip)


def add_bench(sub: Subparsers) -> None:
    """Register ``bighealth bench`` and its commands."""
    parser = sub.add_parser("bench", help="measure a live local network (network, gossip)")
    commands = parser.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    add_bench_network(commands)
    add_bench_gossip(commands)


__all__ = ["add_bench"]
