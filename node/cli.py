"""The ``bighealth`` command line.

Subcommands are registered in ``COMMANDS``: each adds its parser and handles its arguments, so
node operation commands (init, testnet, run, status, keys, tx) plug in beside ``info``.
Exit status: 0 on success, 2 for usage errors, 1 for operational errors (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

import crypto_core

Handler = Callable[[argparse.Namespace], int]


def package_version() -> str:
    """The installed version of the ``bighealth`` distribution."""
    try:
        return metadata.version("bighealth")
    except metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "0+unknown"


def cmd_info(args: argparse.Namespace) -> int:
    """Print what this installation runs: versions and the crypto backend (JSON)."""
    info = {
        "bighealth": package_version(),
        "python": platform.python_version(),
        "crypto_core": crypto_core.backend_details(),
    }
    print(json.dumps(info, indent=2 if args.pretty else None, sort_keys=True))
    return 0


def add_info(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("info", help="versions and the crypto backend in use (JSON)")
    parser.add_argument("--pretty", action="store_true", help="indent the JSON")
    parser.set_defaults(handler=cmd_info)


COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    add_info,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bighealth", description="Big Health DAO node and tools.")
    parser.add_argument("--version", action="version", version=f"bighealth {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bighealth`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
