"""``bighealth chaos``: a fault campaign on a local health network, and its report.

    bighealth chaos [--validators 4] [--kills 50] [--duration S] [--seed N]
                    [--json FILE] [--output DIR] [--liveness-bound S]
    bighealth chaos report --json A.json [--json B.json ...]

The first runs a campaign (``node.cli.chaos.campaign``): one line per episode, then the
summary table (a first SIGTERM or Ctrl-C ends the schedule after the episode under way,
and the checks still run; a second one interrupts); ``--json FILE`` writes the result
document. The network is made in a temporary directory (removed when every invariant
held, kept otherwise) or in ``--output DIR`` (kept). Exit status: 0 when no invariant was
broken, 1 otherwise (or when the network could not start), 2 for bad options.

``report`` prints ``docs/RELIABILITY.md`` made from campaign documents (without the
fuzzing and attack figures, which ``python -m bench.reliability`` adds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from node.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Subparsers

MAX_KILLS: Final = 100_000
MAX_VALIDATORS: Final = 10


def add_chaos(sub: Subparsers) -> None:
    """``bighealth chaos``."""
    parser = sub.add_parser(
        "chaos", help="a fault campaign on a local health network (or `chaos report`)"
    )
    parser.add_argument(
        "action", nargs="?", choices=("run", "report"), default="run",
        help="run a campaign (default), or print the reliability report of --json files",
    )  # fmt: skip
    parser.add_argument("--validators", type=int, default=4, metavar="N", help="default 4")
    parser.add_argument("--kills", type=int, default=50, metavar="N", help="at least N kill -9")
    parser.add_argument(
        "--duration", type=float, default=0.0, metavar="S", help="and run at least S seconds"
    )
    parser.add_argument("--seed", type=int, metavar="N", help="of the fault schedule (replays it)")
    parser.add_argument(
        "--json", type=Path, action="append", metavar="FILE",
        help="run: write the result here; report: a campaign's result (repeatable)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, metavar="DIR", help="make the network in DIR")
    parser.add_argument(
        "--liveness-bound", type=float, default=60.0, metavar="S",
        help="a new height on every node within S seconds of each heal (default 60)",
    )  # fmt: skip
    parser.set_defaults(handler=cmd_chaos)


def cmd_chaos(args: argparse.Namespace) -> int:
    """Run a campaign or print the report (see the module docstring)."""
    if args.action == "report":
        return _report(args)
    if not 1 <= args.validators <= MAX_VALIDATORS or not 0 <= args.kills <= MAX_KILLS:
        print(
            f"bighealth chaos: --validators in 1..{MAX_VALIDATORS}, --kills in 0..{MAX_KILLS}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.duration < 0 or args.liveness_bound <= 0 or len(args.json or []) > 1:
        print("bighealth chaos: bad --duration, --liveness-bound or --json", file=sys.stderr)
        return EXIT_USAGE
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from node.cli.chaos.campaign import Campaign, CampaignOptions, make_chaos_testnet  # noqa: PLC0415
    from node.cli.chaos.report import table  # noqa: PLC0415
    from node.cli.localnet import sigterm_as_interrupt  # noqa: PLC0415
    from node.errors import BigHealthError  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, format="  (%(name)s) %(message)s")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    options = CampaignOptions(
        seed=seed,
        validators=args.validators,
        kills=args.kills,
        duration_s=args.duration,
        liveness_bound_s=args.liveness_bound,
    )
    temporary = args.output is None
    directory = Path(tempfile.mkdtemp(prefix="bighealth-chaos-")) if temporary else args.output
    print(f"bighealth chaos — seed {seed}, network in {directory}", flush=True)
    ok = False
    try:
        make_chaos_testnet(directory, args.validators)
        with sigterm_as_interrupt(), first_signal_stops() as stop:
            result = Campaign(directory, options, sys.stdout, should_stop=stop.is_set).run()
    except KeyboardInterrupt:
        print("interrupted: the nodes were stopped", file=sys.stderr)
        return EXIT_ERROR
    except BigHealthError as exc:
        print(f"bighealth chaos: {exc}", file=sys.stderr)
        print(f"kept {directory}", file=sys.stderr)
        return EXIT_ERROR
    document = result.document()
    print("\n".join(table(document)), flush=True)
    if args.json:
        args.json[0].write_text(json.dumps(document, indent=2) + "\n")
    ok = result.ok
    for violation in result.violations:
        print(f"  VIOLATION {violation}")
    if temporary and ok:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        print(f"kept {directory} (homes and logs: <node>/node.log)")
    return EXIT_OK if ok else EXIT_ERROR


@contextlib.contextmanager
def first_signal_stops() -> Iterator[threading.Event]:
    """The first SIGTERM or SIGINT sets the event (the campaign ends its schedule after the
    episode under way and still runs its checks); the next one interrupts."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def first(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        print("stopping after this episode (again to interrupt)", file=sys.stderr, flush=True)
        stop.set()

    for sig in previous:
        signal.signal(sig, first)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _report(args: argparse.Namespace) -> int:
    from node.cli.chaos.report import ReportError, render_reliability  # noqa: PLC0415

    if not args.json:
        print("bighealth chaos report: give --json FILE (one per campaign)", file=sys.stderr)
        return EXIT_USAGE
    try:
        documents = [json.loads(path.read_text()) for path in args.json]
        sys.stdout.write(render_reliability(documents))
    except (ValueError, ReportError) as exc:
        print(f"bighealth chaos report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
