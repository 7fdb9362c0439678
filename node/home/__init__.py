"""A node's home directory: layout, ``config.toml``, the genesis file and key files.

- ``layout``: ``NodeHome`` (paths), ``create_home``, ``load_home`` (typed errors that say
  what to do), atomic writes;
- ``config``: ``HomeConfig`` and its TOML form; ``toml``: the small TOML writer;
- ``genesis_file``: the genesis in JSON; ``keys``: validator and account key files (0600);
- ``errors``: ``HomeError`` and its kinds.

Nothing here draws randomness or reads a clock: keys are made from seeds the caller passes.
"""

from node.home.config import (
    ApiConfig,
    HomeConfig,
    LogConfig,
    P2PConfig,
    format_config,
    listen_port,
    parse_config,
    parse_host_port,
)
from node.home.errors import (
    ConfigFileError,
    GenesisFileError,
    HomeError,
    HomeExistsError,
    HomeNotFoundError,
    InsecureKeyFileError,
    KeyFileError,
)
from node.home.genesis_file import format_genesis, parse_genesis
from node.home.keys import ACCOUNT_KEY, VALIDATOR_KEY, read_key_file, write_key_file
from node.home.layout import (
    LoadedHome,
    NodeHome,
    create_home,
    load_config,
    load_home,
    write_text_atomic,
)

__all__ = [
    "ACCOUNT_KEY",
    "VALIDATOR_KEY",
    "ApiConfig",
    "ConfigFileError",
    "GenesisFileError",
    "HomeConfig",
    "HomeError",
    "HomeExistsError",
    "HomeNotFoundError",
    "InsecureKeyFileError",
    "KeyFileError",
    "LoadedHome",
    "LogConfig",
    "NodeHome",
    "P2PConfig",
    "create_home",
    "format_config",
    "format_genesis",
    "listen_port",
    "load_config",
    "load_home",
    "parse_config",
    "parse_genesis",
    "parse_host_port",
    "read_key_file",
    "write_key_file",
    "write_text_atomic",
]
