"""Typed errors of the node home: each names the file at fault and says what to do.

They are operator errors (a missing or damaged home, a bad genesis), never peer input; the
CLI prints their message and exits with status 1.
"""

from __future__ import annotations

from node.errors import BigHealthError


class HomeError(BigHealthError):
    """Base of every error about a node home directory and its files."""


class HomeNotFoundError(HomeError):
    """The home directory, or a file it must hold, does not exist."""


class HomeExistsError(HomeError):
    """``init`` was asked to create a home where one (or other files) already exists."""


class ConfigFileError(HomeError, ValueError):
    """``config.toml`` is not valid TOML or breaks the schema (unknown key, bad value)."""


class GenesisFileError(HomeError, ValueError):
    """The genesis file is not valid JSON or does not describe a valid genesis."""


class KeyFileError(HomeError):
    """A key file is malformed, of the wrong kind, or readable by other users."""


class InsecureKeyFileError(KeyFileError):
    """A key file other users can read (its mode must be 0600 or stricter)."""
