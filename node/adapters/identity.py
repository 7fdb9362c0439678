"""The node's network identity: an Ed25519 seed kept in ``<home>/node_key`` (mode 0600).

The network key is not the validator's signing key: it only names the node on the network
(its libp2p peer id), so it can be rotated without touching consensus. The file is two lines
of text, easy to back up and to recognise::

    bighealth-node-key/1 ed25519
    <64 hex digits: the 32-byte seed>

The file format, its atomic creation and the checks on loading are those of every key file
of a home (``node.home.keys``, kind ``node``): a crash never leaves half a key, two processes
starting at once end up with the same one, and a key other users may read is refused.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Final

from node.adapters.errors import KeyFileError
from node.home.errors import HomeExistsError, HomeNotFoundError
from node.home.keys import NODE_KEY, format_key_file, parse_key_file, read_key_file, write_key_file
from node.ports import Rng

NODE_KEY_FILENAME: Final = "node_key"
SEED_BYTES: Final = 32
_HOME_MODE: Final = 0o700


def node_key_path(home: Path) -> Path:
    """Where the key of the node whose home directory is ``home`` lives."""
    return Path(home) / NODE_KEY_FILENAME


def load_or_create_node_key(home: Path, rng: Rng | None = None) -> bytes:
    """The 32-byte seed in ``<home>/node_key``, created first if there is none.

    ``rng`` draws a new seed (a seeded one in tests); by default the OS's CSPRNG.
    ``KeyFileError`` for a malformed file, ``InsecureKeyFileError`` for loose permissions.
    """
    path = node_key_path(home)
    if not path.exists():
        path.parent.mkdir(mode=_HOME_MODE, parents=True, exist_ok=True)
        seed = rng.random_bytes(SEED_BYTES) if rng is not None else secrets.token_bytes(SEED_BYTES)
        with contextlib.suppress(HomeExistsError):  # another process got there first: use its
            write_key_file(path, NODE_KEY, seed)
    return load_node_key(path)


def load_node_key(path: Path) -> bytes:
    """The seed in an existing key file (see ``load_or_create_node_key`` for the errors)."""
    try:
        return read_key_file(path, NODE_KEY).seed
    except HomeNotFoundError:
        raise KeyFileError(f"no node key at {path}") from None


def parse_node_key(content: bytes, where: str = "node key") -> bytes:
    """The seed in the text of a key file."""
    return parse_key_file(content, NODE_KEY, where).seed


def format_node_key(seed: bytes) -> bytes:
    """The text of a key file holding ``seed``."""
    return format_key_file(NODE_KEY, seed)
