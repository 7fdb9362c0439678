"""What every ``bighealth`` subcommand shares: exit codes, the version, JSON output."""

from __future__ import annotations

import argparse
import json
import os
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


HOME_ENV: Final = "BIGHEALTH_HOME"
"""The environment variable naming the default home (as CometBFT's ``CMTHOME``)."""


def default_home() -> Path:
    """``$BIGHEALTH_HOME``, else ``~/.bighealth``."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured) if configured else Path.home() / ".bighealth"


def add_home_argument(
    parser: argparse.ArgumentParser, help_text: str = "the node's home directory"
) -> None:
    """``--home``, defaulting to ``default_home()``."""
    parser.add_argument(
        "--home",
        type=Path,
        default=default_home(),
        help=f"{help_text} (default: ${HOME_ENV}, else ~/.bighealth; now %(default)s)",
    )


class _DefaultsFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help when it has a meaningful default its help
    does not already state."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, [], argparse.SUPPRESS):
            return text
        if action.option_strings:
            return f"{text} (default: %(default)s)"
        return text


def explain_defaults(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` and every subcommand below it show option defaults in ``--help``."""
    parser.formatter_class = _DefaultsFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                explain_defaults(sub)
