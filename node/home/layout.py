"""The node home directory: what it holds, creating it, and loading it with clear errors.

    HOME/
      config.toml     local settings (node.home.config)
      genesis.json    the chain's genesis (node.home.genesis_file), shared by every node
      validator_key   the consensus signing key, mode 0600 (validators only)
      node_key        the network identity, mode 0600 (created by the network adapter)
      data/           LevelDB: blocks, application state, the consensus log

The home is private to its operator (mode 0700). Files are written atomically (a temporary
file, synced, then renamed over), so a crash never leaves half a config or genesis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from crypto_core.signatures import Ed25519KeyPair
from node.chain.genesis import Genesis
from node.home.config import HomeConfig, format_config, parse_config
from node.home.errors import HomeError, HomeExistsError, HomeNotFoundError, KeyFileError
from node.home.genesis_file import MAX_GENESIS_FILE_BYTES, format_genesis, parse_genesis
from node.home.keys import VALIDATOR_KEY, fsync_directory, read_key_file, write_key_file

CONFIG_FILE: Final = "config.toml"
GENESIS_FILE: Final = "genesis.json"
VALIDATOR_KEY_FILE: Final = "validator_key"
NODE_KEY_FILE: Final = "node_key"
"""The network key's file name (``node.adapters.identity.NODE_KEY_FILENAME``)."""
DATA_DIR: Final = "data"
HOME_MODE: Final = 0o700
MAX_CONFIG_FILE_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class NodeHome:
    """Paths of one node home."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def genesis_path(self) -> Path:
        return self.path / GENESIS_FILE

    @property
    def validator_key_path(self) -> Path:
        return self.path / VALIDATOR_KEY_FILE

    @property
    def node_key_path(self) -> Path:
        return self.path / NODE_KEY_FILE

    @property
    def data_path(self) -> Path:
        return self.path / DATA_DIR


@dataclass(frozen=True, slots=True)
class LoadedHome:
    """A home read and checked: its config, genesis and (for a validator) signing key."""

    home: NodeHome
    config: HomeConfig
    genesis: Genesis
    validator_key: Ed25519KeyPair | None


def create_home(
    path: Path, config: HomeConfig, genesis: Genesis, validator_seed: bytes | None
) -> NodeHome:
    """Make a new home at ``path`` (which must not exist, or be an empty directory).

    ``validator_seed`` is required for a validator (``config.role``) and refused for an
    observer. ``HomeExistsError`` if ``path`` holds anything."""
    if (config.role == "validator") != (validator_seed is not None):
        raise ValueError("a validator home needs a validator seed, an observer home none")
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise HomeExistsError(f"{path} exists and is not an empty directory")
    path.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    os.chmod(path, HOME_MODE)
    home = NodeHome(path)
    write_text_atomic(home.config_path, format_config(config))
    write_text_atomic(home.genesis_path, format_genesis(genesis))
    if validator_seed is not None:
        write_key_file(home.validator_key_path, VALIDATOR_KEY, validator_seed)
    return home


def load_home(path: Path) -> LoadedHome:
    """Read and check the home at ``path``.

    ``HomeNotFoundError`` when it or a required file is missing (the message says how to
    create it), ``ConfigFileError``/``GenesisFileError``/``KeyFileError`` when damaged."""
    home = NodeHome(Path(path))
    if not home.path.is_dir():
        raise HomeNotFoundError(
            f"no node home at {home.path}: create one with `bighealth init --home {home.path}`"
        )
    if not home.config_path.is_file():
        raise HomeNotFoundError(f"{home.path} is not a node home: it has no {CONFIG_FILE}")
    config = parse_config(_read_text(home.config_path), str(home.config_path))
    if not home.genesis_path.is_file():
        raise HomeNotFoundError(
            f"{home.path} has no {GENESIS_FILE}: copy the chain's genesis file there"
        )
    genesis = parse_genesis(_read_text(home.genesis_path), str(home.genesis_path))
    key = None
    if config.role == "validator":
        key = read_key_file(home.validator_key_path, VALIDATOR_KEY)
    elif home.validator_key_path.exists():
        raise KeyFileError(
            f"{home.path} is configured as an observer but holds {VALIDATOR_KEY_FILE}: set "
            f'role = "validator" in {CONFIG_FILE}, or move the key away'
        )
    return LoadedHome(home, config, genesis, key)


def load_config(path: Path) -> HomeConfig:
    """Only the config of the home at ``path`` (what ``status`` needs to find the API)."""
    home = NodeHome(Path(path))
    if not home.config_path.is_file():
        raise HomeNotFoundError(f"no {CONFIG_FILE} in {home.path}: is it a node home?")
    return parse_config(_read_text(home.config_path), str(home.config_path))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: written to a temporary file, synced, renamed over."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    limit = MAX_GENESIS_FILE_BYTES if path.name == GENESIS_FILE else MAX_CONFIG_FILE_BYTES
    if size > limit:
        raise HomeError(f"{path} is {size} bytes, larger than the {limit}-byte limit")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise HomeError(f"{path} is not UTF-8 text: {exc}") from exc
