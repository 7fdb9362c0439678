"""The ``bighealth`` command line.

    bighealth info                                   versions and the crypto backend (JSON)
    bighealth init --home HOME [...]                 a node home: keys, config.toml, genesis
    bighealth testnet --validators N --output DIR    a home per node and a shared genesis
    bighealth run --home HOME                        run the node (until SIGTERM / Ctrl-C)
    bighealth status --home HOME                     the running node's status (JSON)
    bighealth keys show --home HOME                  the node's public keys and address
    bighealth keys new --output FILE                 a client account key
    bighealth genesis create ... --output FILE       a genesis file from validator keys
    bighealth genesis show FILE                      a genesis file's chain id and hash
    bighealth tx submit --home HOME --hex HEX        submit an encoded transaction
    bighealth tx kv-set --home HOME --key-file ...   sign and submit a kv.set transaction
    bighealth meter simulate --keystore FILE ...     a simulated glucose meter or CGM
    bighealth demo [--exit] [--output DIR]           a health network and its story, told
    bighealth chaos [--kills N] [--json FILE]        a fault campaign on a local network
    bighealth bench network|gossip [...]             measure a live local network

Subcommands are registered in ``COMMANDS``: each adds its parser and handles its arguments.
Exit status: 0 on success, 2 for usage errors, 1 for operational errors (a missing or
damaged home, a port in use, a node that does not answer: one clear line on stderr), 3 when
a running node halted because its chain cannot safely go on.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable, Sequence

from node.cli import home_commands, node_commands
from node.cli.bench import add_bench
from node.cli.chaos.command import add_chaos
from node.cli.common import EXIT_ERROR, Subparsers, explain_defaults, package_version
from node.cli.demo import add_demo
from node.cli.meter_command import add_meter
from node.errors import BigHealthError

Handler = Callable[[argparse.Namespace], int]


def cmd_info(args: argparse.Namespace) -> int:
    """Print what this installation runs: versions and the crypto backend (JSON)."""
    import crypto_core  # noqa: PLC0415  (loaded by this command only: a fast --help)

    info = {
        "bighealth": package_version(),
        "python": platform.python_version(),
        "crypto_core": crypto_core.backend_details(),
    }
    print(json.dumps(info, indent=2 if args.pretty else None, sort_keys=True))
    return 0


def add_info(sub: Subparsers) -> None:
    parser = sub.add_parser("info", help="versions and the crypto backend in use (JSON)")
    parser.add_argument("--pretty", action="store_true", help="indent the JSON")
    parser.set_defaults(handler=cmd_info)


COMMANDS: list[Callable[[Subparsers], None]] = [
    add_info,
    home_commands.add_init,
    home_commands.add_testnet,
    node_commands.add_run,
    node_commands.add_status,
    home_commands.add_keys,
    home_commands.add_genesis,
    node_commands.add_tx,
    add_meter,
    add_demo,
    add_chaos,
    add_bench,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bighealth", description="Big Health DAO node and tools.")
    parser.add_argument("--version", action="version", version=f"bighealth {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    explain_defaults(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bighealth`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BigHealthError as exc:
        print(f"bighealth {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a path that cannot be made, read or written: say which
        where = f": {exc.filename}" if exc.filename else ""
        print(f"bighealth {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR


__all__ = ["COMMANDS", "build_parser", "main", "package_version"]
