"""The node's network identity: an Ed25519 seed kept in ``<home>/node_key`` (mode 0600).

The network key is not the validator's signing key: it only names the node on the network
(its libp2p peer id), so it can be rotated without touching consensus. The file is two lines
of text, easy to back up and to recognise::

    bighealth-node-key/1 ed25519
    <64 hex digits: the 32-byte seed>

It is created atomically (written to a private temporary file, flushed to disk, then linked
into place, so a crash never leaves half a key and two processes starting at once end up with
the same one) and refused if other users may read it, as ssh refuses an unprotected key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from node.adapters.errors import InsecureKeyFileError, KeyFileError
from node.ports import Rng

NODE_KEY_FILENAME: Final = "node_key"
SEED_BYTES: Final = 32
_HEADER: Final = "bighealth-node-key/1 ed25519"
_MAX_FILE_BYTES: Final = 1024
_PRIVATE_MODE: Final = 0o600
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
        _create_exclusively(path, seed, _temporary_name(rng))
    return load_node_key(path)


def load_node_key(path: Path) -> bytes:
    """The seed in an existing key file (see ``load_or_create_node_key`` for the errors)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise KeyFileError(f"no node key at {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise InsecureKeyFileError(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; other users must not be able "
            f"to read a private key: chmod 600 {path}"
        )
    if info.st_size > _MAX_FILE_BYTES:
        raise KeyFileError(f"{path} is {info.st_size} bytes, too large for a node key")
    return parse_node_key(path.read_bytes(), str(path))


def parse_node_key(content: bytes, where: str = "node key") -> bytes:
    """The seed in the text of a key file."""
    try:
        lines = content.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise KeyFileError(f"{where}: not a node key file (not ASCII)") from None
    if len(lines) != 2 or lines[0] != _HEADER:
        raise KeyFileError(f"{where}: not a node key file (expected the header {_HEADER!r})")
    try:
        seed = bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError(f"{where}: the key line is not hexadecimal") from None
    if len(seed) != SEED_BYTES:
        raise KeyFileError(f"{where}: the key is {len(seed)} bytes, expected {SEED_BYTES}")
    return seed


def format_node_key(seed: bytes) -> bytes:
    """The text of a key file holding ``seed``."""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a node key seed is {SEED_BYTES} bytes")
    return f"{_HEADER}\n{seed.hex()}\n".encode("ascii")


def _temporary_name(rng: Rng | None) -> str:
    token = rng.random_bytes(8).hex() if rng is not None else secrets.token_hex(8)
    return f".{NODE_KEY_FILENAME}.{os.getpid()}.{token}.tmp"


def _create_exclusively(path: Path, seed: bytes, temporary_name: str) -> None:
    temporary = path.parent / temporary_name
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(format_node_key(seed))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process got there first: use its
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
