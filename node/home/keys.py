"""Key files: a validator's consensus key, client account keys, the node's network key.

A key file is two lines of ASCII, easy to back up and to recognise::

    bighealth-validator-key/1 ed25519
    <64 hex digits: the 32-byte Ed25519 seed>

(``account`` for a client's account key, ``node`` for the network key: the libp2p peer id,
kept apart from the consensus key so that losing or rotating it never touches consensus).
Files are created atomically and exclusively (written to a private temporary file, synced,
then linked into place: a crash never leaves half a key, two processes creating one at once
end up with the same one, and a key is never overwritten), and refused on load if other
users may read them, as ssh refuses an unprotected key. The seed comes in from the caller.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from crypto_core.signatures import SEED_SIZE, Ed25519KeyPair
from node.home.errors import (
    HomeExistsError,
    HomeNotFoundError,
    InsecureKeyFileError,
    KeyFileError,
)

VALIDATOR_KEY: Final = "validator"
ACCOUNT_KEY: Final = "account"
NODE_KEY: Final = "node"
KEY_KINDS: Final = (VALIDATOR_KEY, ACCOUNT_KEY, NODE_KEY)
MAX_KEY_FILE_BYTES: Final = 1024
PRIVATE_FILE_MODE: Final = 0o600


def _header(kind: str) -> str:
    if kind not in KEY_KINDS:
        raise ValueError(f"unknown key kind {kind!r}")
    return f"bighealth-{kind}-key/1 ed25519"


def format_key_file(kind: str, seed: bytes) -> bytes:
    """The text of a ``kind`` key file holding ``seed``."""
    if len(seed) != SEED_SIZE:
        raise ValueError(f"an Ed25519 seed is {SEED_SIZE} bytes")
    return f"{_header(kind)}\n{seed.hex()}\n".encode("ascii")


def parse_key_file(content: bytes, kind: str, where: str = "key file") -> Ed25519KeyPair:
    """The key pair in the text of a ``kind`` key file (``KeyFileError`` otherwise)."""
    header = _header(kind)
    try:
        lines = content.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise KeyFileError(f"{where}: not a key file (not ASCII)") from None
    if len(lines) != 2 or lines[0] != header:
        raise KeyFileError(f"{where}: not a {kind} key file (expected the header {header!r})")
    try:
        seed = bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError(f"{where}: the key line is not hexadecimal") from None
    if len(seed) != SEED_SIZE:
        raise KeyFileError(f"{where}: the key is {len(seed)} bytes, expected {SEED_SIZE}")
    return Ed25519KeyPair.from_seed(seed)


def write_key_file(path: Path, kind: str, seed: bytes) -> Ed25519KeyPair:
    """Create ``path`` holding ``seed`` (mode 0600, synced, published atomically);
    ``HomeExistsError`` if the file exists. Returns the key pair."""
    content = format_key_file(kind, seed)
    if path.exists():
        raise HomeExistsError(f"{path} exists: refusing to overwrite a key")
    temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except OSError as exc:  # name the key's path, not the temporary file's
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # atomic, and never replaces an existing key
        except FileExistsError:
            raise HomeExistsError(f"{path} exists: refusing to overwrite a key") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    fsync_directory(path.parent)
    return Ed25519KeyPair.from_seed(seed)


def read_key_file(path: Path, kind: str) -> Ed25519KeyPair:
    """The key pair in an existing ``kind`` key file.

    ``HomeNotFoundError`` if missing; ``KeyFileError`` if malformed, not a regular file, or
    readable by group or others."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise HomeNotFoundError(f"no {kind} key at {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise InsecureKeyFileError(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; other users must not be able "
            f"to read a private key: chmod 600 {path}"
        )
    if info.st_size > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is {info.st_size} bytes, too large for a key file")
    return parse_key_file(path.read_bytes(), kind, str(path))


def fsync_directory(directory: Path) -> None:
    """Make a directory's entries (a file just created or renamed in it) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
