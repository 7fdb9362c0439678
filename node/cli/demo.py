"""``bighealth demo``: a health network on this host, and the diabetes-care story told on it.

It makes a health testnet (``node.cli.health_net``: 4 hospitals running the validators, a
clinic and 2 patients running observers, every party's keystore under the passphrase) in a
temporary directory or ``--output DIR``, with the smallest ``reminder_grace_ms`` (a minute)
so reminders come due and escalate within minutes, and observers that dial each other
too; starts the 7 node processes (``node.cli.localnet``); prints each node's dashboard URL
and who can log in there; tells the story one line per step (``health.demo.story``), each
step checked (the client library's warnings in between, in parentheses); then keeps the
network running until Ctrl-C or SIGTERM, or stops at once with ``--exit``. The nodes are
stopped on every way out. A temporary directory is removed at the end unless the story
failed (its homes and logs are kept to look at); ``--output DIR`` is always kept.

Exit status: 0 when every step's check held, 1 otherwise (a step failed, a node exited, the
story was interrupted), 2 for bad options.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from node.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Subparsers
from node.cli.options import DEMO_READINGS, DEMO_SPEED, TESTNET_PASSPHRASE
from node.errors import BigHealthError

if TYPE_CHECKING:
    from health.client import KdfParams
    from health.demo import DemoNetwork, Outcome, StoryOptions
    from node.home.manifest import TestnetManifest

# The functions import what they use when they run: building the parser (``--help``) loads
# neither the health stack nor the node's (tests/cli/test_cli_startup.py).

HOSPITALS: Final = 4
CLINICS: Final = 1
PATIENTS: Final = 2
CHAIN_ID: Final = "bighealth-demo"
MIN_REMINDER_GRACE_MS: Final = 60_000
"""The smallest ``reminder_grace_ms`` governance allows: a missed dose escalates a minute
after it was due."""
DEMO_COMMIT_WAIT_MS: Final = 300
DEMO_TX_GOSSIP_INTERVAL_MS: Final = 100
"""A quiet local network: short pauses after commits, transactions gossiped at once."""
START_TIMEOUT_S: Final = 120.0
ALIVE_CHECK_S: Final = 1.0


def add_demo(sub: Subparsers) -> None:
    """``bighealth demo``."""
    parser = sub.add_parser(
        "demo", help="a health network on this host and the diabetes-care story told on it"
    )
    parser.add_argument("--exit", action="store_true", help="stop the network after the story")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="make the network in DIR (absent or empty) and keep it",
    )
    parser.add_argument(
        "--passphrase",
        metavar="TEXT",
        default=TESTNET_PASSPHRASE,
        help=f"of every keystore (default {TESTNET_PASSPHRASE!r}: a local demo only)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        metavar="X",
        default=DEMO_SPEED,
        help="the streamed CGM readings play this many times faster than real time "
        f"(default {DEMO_SPEED:g})",
    )
    parser.add_argument(
        "--readings",
        type=int,
        metavar="N",
        default=DEMO_READINGS,
        help=f"CGM readings streamed, 5 minutes apart (default {DEMO_READINGS})",
    )
    parser.set_defaults(handler=cmd_demo)


@dataclass
class _Run:
    """How far the demo got."""

    directory: Path
    outcome: Outcome | None = None


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo (see the module docstring); its exit status."""
    from health.demo import StoryOptions  # noqa: PLC0415
    from node.cli.localnet import sigterm_as_interrupt  # noqa: PLC0415

    try:
        options = StoryOptions(speed=args.speed, readings=args.readings)
    except ValueError as exc:
        print(f"bighealth demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="  (%(name)s) %(message)s")
    temporary = args.output is None
    directory = Path(tempfile.mkdtemp(prefix="bighealth-demo-")) if temporary else args.output
    run = _Run(directory)
    out = sys.stdout
    try:
        with sigterm_as_interrupt():
            _run(run, args, options, out)
    except KeyboardInterrupt:
        print("interrupted: stopping the network", file=out, flush=True)
    except BigHealthError as exc:  # a node exited or did not start, the directory is taken
        print(f"bighealth demo: {exc}", file=sys.stderr)
    ok = run.outcome is not None and run.outcome.ok
    if temporary and ok:
        shutil.rmtree(directory, ignore_errors=True)
    elif temporary:
        print(f"kept {directory} (homes and logs: <node>/node.log)", file=out)
    return EXIT_OK if ok else EXIT_ERROR


def _run(run: _Run, args: argparse.Namespace, options: StoryOptions, out: TextIO) -> None:
    """Make the network, start it, tell the story, keep it up unless ``--exit``; the nodes
    are stopped when this returns or raises."""
    from health.demo import Story  # noqa: PLC0415
    from node.cli.localnet import LocalNetwork  # noqa: PLC0415

    network = make_network(run.directory, args.passphrase)
    print(
        f"bighealth demo — a health network on 127.0.0.1: {HOSPITALS} hospitals (validators), "
        f"{CLINICS} clinic and {PATIENTS} patients (observers)\n"
        f"  network     {run.directory} (logs: <node>/node.log)",
        file=out,
        flush=True,
    )
    with LocalNetwork(run.directory) as nodes:
        nodes.start()
        answering = nodes.wait_answering(START_TIMEOUT_S)
        following = answering + nodes.wait_height(1, START_TIMEOUT_S)
        print(
            f"  nodes       {len(nodes.names)} answering after {answering:.1f} s, all following "
            f"the chain after {following:.1f} s",
            file=out,
        )
        print_dashboards(network, out)
        started = time.monotonic()
        run.outcome = Story(network, options).tell(out)
        print_outcome(run.outcome, time.monotonic() - started, out)
        if run.outcome.ok and not args.exit:
            print("  network     running until Ctrl-C (dashboards above)", file=out, flush=True)
            while True:
                nodes.check_alive()
                time.sleep(ALIVE_CHECK_S)
        print(f"  network     stopping {len(nodes.names)} nodes", file=out, flush=True)


def make_network(directory: Path, passphrase: str, kdf: KdfParams | None = None) -> DemoNetwork:
    """The demo's testnet in ``directory`` (absent or empty), as the story sees it; its
    keystores sealed with ``kdf`` (default: ``health.client.KDF_INTERACTIVE``)."""
    from health.client import KDF_INTERACTIVE  # noqa: PLC0415
    from health.demo import DemoNetwork, DemoNode  # noqa: PLC0415
    from node.chain.config import NodeConfig  # noqa: PLC0415
    from node.cli.health_net import HealthTestnet  # noqa: PLC0415
    from node.cli.home_commands import node_params  # noqa: PLC0415
    from node.cli.testnet import TestnetSpec, create_testnet  # noqa: PLC0415
    from node.runtime.system import SystemClock, SystemRng  # noqa: PLC0415

    kdf = KDF_INTERACTIVE if kdf is None else kdf
    spec = TestnetSpec(
        validators=HOSPITALS,
        observers=CLINICS + PATIENTS,
        chain_id=CHAIN_ID,
        genesis_time_ms=SystemClock().now_ms(),
        params=node_params(
            timeout_propose_ms=1_000, timeout_prevote_ms=500, timeout_precommit_ms=500
        ),
        chain=NodeConfig(
            commit_wait_ms=DEMO_COMMIT_WAIT_MS, tx_gossip_interval_ms=DEMO_TX_GOSSIP_INTERVAL_MS
        ),
    )
    app = HealthTestnet(
        SystemRng(),
        clinics=CLINICS,
        passphrase=passphrase,
        kdf=kdf,
        params={"reminder_grace_ms": MIN_REMINDER_GRACE_MS},
    )
    manifest = create_testnet(directory, spec, SystemRng(), app)
    _connect_observers(directory, manifest)
    nodes = tuple(
        DemoNode(
            name=node.name,
            party=app.parties[node.home].name,
            api_url=f"http://{node.api}",
            peer_id=node.peer_id,
            home=directory / node.home,
        )
        for node in manifest.nodes
    )
    return DemoNetwork(manifest.chain_id, directory, nodes, passphrase, kdf)


def _connect_observers(directory: Path, manifest: TestnetManifest) -> None:
    """Let every observer also dial the other observers (a testnet's observers know only
    the validators): a clinic's node fetches a record straight from the patient's node that
    keeps it, and repairs its own copy from there."""
    from node.home import format_config, write_text_atomic  # noqa: PLC0415
    from node.home.layout import load_config  # noqa: PLC0415

    observers = [node for node in manifest.nodes if node.role == "observer"]
    for node in observers:
        home = directory / node.home
        config = load_config(home)
        others = tuple(other.p2p for other in observers if other.name != node.name)
        p2p = replace(config.p2p, bootstrap=config.p2p.bootstrap + others)
        write_text_atomic(home / "config.toml", format_config(replace(config, p2p=p2p)))


def print_dashboards(network: DemoNetwork, out: TextIO) -> None:
    """Each node's dashboard URL and the keystores that log in there."""
    print(f"  dashboards  log in with a keystore name and {network.passphrase!r}:", file=out)
    logins = network.logins()
    for node in network.nodes:
        names = ", ".join(logins[node.name])
        print(f"    {node.name:<12} {node.api_url}/dashboard/  {names}", file=out)
    out.flush()


def print_outcome(outcome: Outcome, seconds: float, out: TextIO) -> None:
    """The story's verdict in one line."""
    took = f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    if outcome.ok:
        line = f"every step held ({outcome.total}/{outcome.total}) in {took}"
    else:
        line = f"FAILED at step {outcome.failed_step} of {outcome.total} after {took}"
    print(f"  story       {line}", file=out, flush=True)
