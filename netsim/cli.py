"""``python -m netsim``: run one seed, or sweep many.

    python -m netsim run --validators 16 --nodes 200 --byzantine 5 --heights 100 \\
        --seed 42 --faults partition,crash --json out.json --plot out.png
    python -m netsim sweep --seeds 1000 --swarm --byzantine 1 --workers 2
    python -m netsim sweep --seeds 1000 --swarm --byzantine 1 --scheduler tcp://10.0.0.5:8786
    python -m netsim run --workload health --validators 4 --nodes 8 --byzantine 1 \\
        --heights 30 --seed 1 --faults partition,crash

``--workload health`` runs the diabetes-care story on the health chain's modules (institutions
one per validator, practitioners, patients whose devices upload readings, grants, care plans
with reminders, referrals, governance votes; see :mod:`netsim.health_workload`); its counts
join the summary.

``run`` prints the seed and every option first, shows a progress bar on a terminal, and ends
with a summary (heights, sim-time tx/s, commit latency p50/p99, messages and bytes per node,
the workload's counts, wall time, trace hash). A failing run prints the violations, the
events that led to them and the exact command that replays it. ``sweep`` runs consecutive
seeds on a Dask cluster (a local one by default, see :mod:`netsim.sweep`), prints each
seed's outcome as it finishes and lists the failing ones (``--record`` appends them to a
regression file the test suite replays).

Exit status: 0 every checker held; 1 a checker failed; 2 bad options; 3 a run hit a hard
limit of the simulator (the model ran away).
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, TextIO

from netsim.builders import NODE_BUILDERS, builder_for
from netsim.config import DEFAULT_ROLE_MIX, SimConfig, parse_role_mix
from netsim.errors import ConfigError, LimitExceeded
from netsim.faults import FaultOptions, parse_kinds
from netsim.live import add_live_parser, run_live
from netsim.progress import ProgressBar
from netsim.regions import TOPOLOGIES
from netsim.report import failure_lines, header_lines, replay_command, summary_lines
from netsim.result import RunResult
from netsim.rng import MAX_SEED
from netsim.simulation import Simulation
from netsim.sweep import SweepPlace, sweep_outcomes
from netsim.workload import WORKLOADS

EXIT_OK: Final = 0
EXIT_VIOLATION: Final = 1
EXIT_USAGE: Final = 2
EXIT_LIMIT: Final = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "live":  # real node processes: see netsim.live
        return run_live(args)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))  # exits with status 2
    if args.command == "sweep":
        return _sweep(config, args)
    return _run(config, args)


def parse_run_config(argv: Sequence[str]) -> SimConfig:
    """The configuration ``python -m netsim run <argv>`` would run (ConfigError if bad;
    argparse exits on unknown options). Replay lists store runs as such arguments."""
    return config_from_args(_parser().parse_args(["run", *argv]))


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The run configuration the options describe (ConfigError for a bad one)."""
    start_ms, end_ms = _window(args.fault_window_ms)
    kinds = () if args.faults.strip() in ("", "none") else parse_kinds(args.faults)
    faults = FaultOptions(
        kinds=kinds,
        window_start_ms=start_ms,
        window_end_ms=end_ms,
        mean_gap_ms=args.fault_gap_ms,
        max_episode_ms=args.fault_max_episode_ms,
    )
    if args.node not in NODE_BUILDERS:
        raise ConfigError(f"unknown node code {args.node!r}; choose from {sorted(NODE_BUILDERS)}")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    return SimConfig(
        seed=seed,
        node=args.node,
        validators=args.validators,
        nodes=args.nodes if args.nodes is not None else args.validators,
        byzantine=args.byzantine,
        byzantine_roles=parse_role_mix(args.byzantine_roles),
        heights=args.heights,
        faults=faults,
        swarm=args.swarm,
        topology=args.topology,
        workload=args.workload,
        tx_rate=args.tx_rate,
        clients=args.clients,
        payload_bytes=args.payload_bytes,
        practitioners=args.practitioners,
        patients=args.patients,
        devices=args.devices,
        reading_interval_ms=args.reading_interval_ms,
        miss_pct=args.miss_pct,
        liveness_bound_ms=args.liveness_bound_ms,
        max_sim_time_ms=args.max_sim_time_ms,
        stop_on_violation=not args.keep_going,
        shared_verification=args.shared_verification,
    )


def _window(text: str) -> tuple[int, int]:
    try:
        start, _, end = text.partition(":")
        return int(start), int(end)
    except ValueError:
        raise ConfigError(f"--fault-window-ms is START:END in ms, got {text!r}") from None


# --- run -----------------------------------------------------------------------------------------


def _run(config: SimConfig, args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    bar = ProgressBar(sys.stderr) if show_progress else None
    simulation = Simulation(config, builder_for(config.node), on_progress=bar)
    for line in header_lines(config, simulation.fault_options, simulation.byzantine):
        print(line, file=out)
    out.flush()
    try:
        result = simulation.run()
    except LimitExceeded as exc:
        print(f"ABORTED: {exc}", file=out)
        print("replay with:\n  " + replay_command(config), file=out)
        return EXIT_LIMIT
    finally:
        if bar is not None:
            bar.close()
    print(file=out)
    for line in summary_lines(result):
        print(line, file=out)
    _write_outputs(result, args)
    if not result.passed:
        print(file=out)
        for line in failure_lines(result):
            print(line, file=out)
        return EXIT_VIOLATION
    return EXIT_OK


def _write_outputs(result: RunResult, args: argparse.Namespace) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    if args.plot:
        from netsim.plots import write_plots  # noqa: PLC0415  (matplotlib loads only if asked)

        write_plots(result, Path(args.plot))


# --- sweep ---------------------------------------------------------------------------------------


def _sweep(base: SimConfig, args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    try:
        place = SweepPlace.from_options(args.workers, args.scheduler)
    except ConfigError as exc:
        print(f"python -m netsim sweep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    seeds = range(args.start_seed, args.start_seed + args.seeds)
    configs = [replace(base, seed=seed) for seed in seeds]
    print(f"netsim sweep — seeds {seeds.start}..{seeds.stop - 1}, {place.describe()}", file=out)
    failures: list[dict[str, Any]] = []
    try:
        for config, outcome in sweep_outcomes(configs, place):
            status = outcome["status"]
            print(f"seed {config.seed}: {status} {outcome['detail']}", file=out, flush=True)
            if status != "passed":
                failures.append(outcome)
                print("  replay: " + replay_command(config), file=out, flush=True)
    except ConfigError as exc:  # the scheduler cannot be reached
        print(f"python -m netsim sweep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{len(failures)} of {len(configs)} seed(s) failed", file=out)
    recorded = [f for f in failures if f["status"] != "error"]  # an error may be the cluster's
    if args.record and recorded:
        _record(Path(args.record), recorded)
    return EXIT_OK if not failures else EXIT_VIOLATION


def _record(path: Path, failures: list[dict[str, Any]]) -> None:
    """Append failing runs to the regression list at ``path`` (a JSON array of entries
    ``{"args": "<run options>", "found": "<first violation>", "status": "open", "note": ""}``;
    ``tests/netsim/regressions.json`` is the one the test suite replays)."""
    existing: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    known = {entry["args"] for entry in existing}
    for failure in failures:
        args = shlex.join(failure["argv"])
        if args not in known:
            entry = {"args": args, "found": failure["detail"], "status": "open", "note": ""}
            existing.append(entry)
    path.write_text(json.dumps(existing, indent=2) + "\n")


# --- options -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m netsim",
        description="Deterministic, seed-replayable network simulator of Big Health DAO nodes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one seed")
    _run_options(run)
    run.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    run.add_argument("--plot", metavar="PATH", help="write the plots as a PNG")
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    sweep = commands.add_parser("sweep", help="run many consecutive seeds")
    _run_options(sweep)
    sweep.add_argument("--seeds", type=int, default=100, help="how many seeds (default 100)")
    sweep.add_argument("--start-seed", type=int, default=0, help="first seed (default 0)")
    sweep.add_argument(
        "--workers",
        "--jobs",
        dest="workers",
        type=int,
        metavar="N",
        help="worker processes of the local Dask cluster the seeds run on (default: one per "
        "core of this machine; 0: one after another in this process)",
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the seeds on the Dask cluster of this scheduler (e.g. tcp://10.0.0.5:8786) "
        "instead of a local one; its workers need this package installed",
    )
    sweep.add_argument("--record", metavar="PATH", help="append failing runs to this JSON list")
    add_live_parser(commands)
    return parser


def _run_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--seed", type=int, help=f"master seed, 0..{MAX_SEED} (default: drawn and printed)")
    add("--node", default="core", help=f"node code: {', '.join(sorted(NODE_BUILDERS))}")
    add("--validators", type=int, default=4, help="validators (default 4)")
    add("--nodes", type=int, help="all nodes, validators included (default: --validators)")
    add("--byzantine", type=int, default=0, help="Byzantine validators (default 0)")
    add(
        "--byzantine-roles",
        default=DEFAULT_ROLE_MIX,
        help="role sets Byzantine validators take in turn; ',' between nodes, '+' within one "
        f"(default {DEFAULT_ROLE_MIX})",
    )
    add("--heights", type=int, default=10, help="heights to decide (default 10)")
    add("--faults", default="none", help="comma-separated fault kinds, or none (default)")
    add("--fault-window-ms", default="2000:30000", help="START:END of faults (default 2000:30000)")
    add("--fault-gap-ms", type=int, default=4_000, help="mean gap between episodes of a kind")
    add("--fault-max-episode-ms", type=int, default=8_000, help="longest fault episode")
    add("--swarm", action="store_true", help="draw the fault options from the seed")
    add("--topology", default="global", help=f"one of {', '.join(sorted(TOPOLOGIES))}")
    add(
        "--workload",
        default="generic",
        help=f"one of {', '.join(sorted(WORKLOADS))} (default generic: kv.set clients; health: "
        "the diabetes-care story on the health chain's modules)",
    )
    add("--tx-rate", type=float, default=20.0, help="generic: transactions per second of sim time")
    add("--clients", type=int, default=64, help="generic: client accounts (default 64)")
    add("--payload-bytes", type=int, default=64, help="generic: payload size of a transaction")
    add("--practitioners", type=int, default=2, help="health: practitioners per institution (2)")
    add("--patients", type=int, default=4, help="health: patients per institution (default 4)")
    add("--devices", type=int, default=1, help="health: devices per patient (default 1, a CGM)")
    add(
        "--reading-interval-ms",
        type=int,
        default=300_000,
        help="health: a device commits a reading this often (default 300000: a CGM)",
    )
    add("--miss-pct", type=int, default=20, help="health: %% of reminders patients miss (20)")
    add(
        "--liveness-bound-ms",
        type=int,
        default=60_000,
        help="max gap between heights after healing",
    )
    add("--max-sim-time-ms", type=int, default=900_000, help="virtual time limit of the run")
    add("--keep-going", action="store_true", help="do not stop at the first violation")
    add(
        "--shared-verification",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="answer a signature check once for all simulated nodes (same trace, less time)",
    )
