"""What every ``bighealth`` subcommand shares: exit codes, the version, JSON output."""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from pathlib import Path
from typing import Final, TypeAlias

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_HALT: Final = 3
EXIT_INTERRUPTED: Final = 130


def package_version() -> str:
    """The installed version of the ``bighealth`` distribution."""
    try:
        return metadata.version("bighealth")
    except metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "0+unknown"


def print_json(document: object, pretty: bool = True) -> None:
    """``document`` on stdout as JSON (sorted keys, indented unless ``pretty`` is off)."""
    print(json.dumps(document, indent=2 if pretty else None, sort_keys=True))


def add_home_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, required=True, help="the node's home directory (see `init`)"
    )
