"""``config.toml``: one node's local settings, checked on load, written with comments.

The file has a root key ``moniker`` and the tables ``[p2p]`` (libp2p listen address,
bootstrap peers, peer limit), ``[api]`` (the HTTP API's address and limits), ``[log]``,
``[chain]`` (``node.chain.NodeConfig``: the chain core's local limits and intervals) and
``[mempool]`` (``node.mempool.MempoolLimits``). Chain-wide rules (timeouts, block size) are
not here: they are in the genesis, which every node of a chain shares.

Every key is optional (a missing key takes its default, so a file written by an older
version still loads); an unknown table or key, a value of the wrong type or out of range
raises ``ConfigFileError`` naming the file and the setting.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import textwrap
import tomllib
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from node.chain.config import NodeConfig
from node.chain.errors import InvalidConfigError
from node.home.errors import ConfigFileError
from node.home.toml import Entry, Table, TomlValue, dumps
from node.mempool import MempoolLimits

MONIKER_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
LISTEN_PATTERN: Final = re.compile(r"/(ip4|ip6|dns4|dns6|dns)/[^/\s]+/tcp/([0-9]{1,5})", re.ASCII)
PEER_PATTERN: Final = re.compile(
    r"/(ip4|ip6|dns4|dns6|dns)/[^/\s]+/tcp/[0-9]{1,5}/p2p/[1-9A-HJ-NP-Za-km-z]{10,128}", re.ASCII
)
HOST_PORT_PATTERN: Final = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})", re.ASCII)
MAX_PORT: Final = 65_535
MAX_BOOTSTRAP_PEERS: Final = 256
MAX_PEERS_LIMIT: Final = 1_000
MAX_API_CONNECTIONS: Final = 10_000
MAX_API_REQUEST_BYTES: Final = 16 * 1024 * 1024
MAX_API_TIMEOUT_MS: Final = 600_000
ROLES: Final = ("validator", "observer")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("json", "text")
DEFAULT_P2P_PORT: Final = 26_656
DEFAULT_API_PORT: Final = 26_657


@dataclass(frozen=True, slots=True)
class P2PConfig:
    """The libp2p side: where to listen, whom to keep connected, how many peers at most."""

    listen: str = f"/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}"
    bootstrap: tuple[str, ...] = ()
    max_peers: int = 50
    consensus_direct: bool = True
    """Also send consensus messages straight to every connected peer, besides gossip."""
    allow_libp2p_peers: bool = True
    """Keep peers that speak standard libp2p (identify, ping, gossipsub) but not this
    chain's handshake, e.g. a monitoring client in another language: they read and publish
    gossip (judged like any other) and take no part in direct messages or block sync."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The HTTP API (status, transactions, metrics) and its bounds."""

    listen: str = f"127.0.0.1:{DEFAULT_API_PORT}"
    max_connections: int = 64
    max_request_bytes: int = 1024 * 1024
    request_timeout_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """How the node logs (to stderr): a level and ``json`` lines or human ``text``."""

    level: str = "info"
    format: str = "json"


@dataclass(frozen=True, slots=True)
class HomeConfig:
    """Everything ``config.toml`` holds (see the module docstring)."""

    moniker: str = "node"
    role: str = "validator"
    """``validator`` (signs with ``validator_key``) or ``observer`` (follows, never signs)."""
    p2p: P2PConfig = field(default_factory=P2PConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    log: LogConfig = field(default_factory=LogConfig)
    chain: NodeConfig = field(default_factory=NodeConfig)

    def __post_init__(self) -> None:
        check_config(self)


def check_config(config: HomeConfig) -> None:
    """Raise ``ConfigFileError`` for any value out of its range."""
    if MONIKER_PATTERN.fullmatch(config.moniker) is None:
        raise ConfigFileError(f"moniker {config.moniker!r} must match {MONIKER_PATTERN.pattern}")
    if config.role not in ROLES:
        raise ConfigFileError(f"role must be one of {', '.join(ROLES)}, got {config.role!r}")
    listen_port(config.p2p.listen)
    if len(config.p2p.bootstrap) > MAX_BOOTSTRAP_PEERS:
        raise ConfigFileError(f"[p2p] bootstrap lists more than {MAX_BOOTSTRAP_PEERS} peers")
    for address in config.p2p.bootstrap:
        if PEER_PATTERN.fullmatch(address) is None:
            raise ConfigFileError(
                f"[p2p] bootstrap {address!r} is not a peer address like "
                "/ip4/10.0.0.7/tcp/26656/p2p/<peer id>"
            )
    _within("[p2p] max_peers", config.p2p.max_peers, 1, MAX_PEERS_LIMIT)
    parse_host_port(config.api.listen)
    _within("[api] max_connections", config.api.max_connections, 1, MAX_API_CONNECTIONS)
    _within("[api] max_request_bytes", config.api.max_request_bytes, 1024, MAX_API_REQUEST_BYTES)
    _within("[api] request_timeout_ms", config.api.request_timeout_ms, 1, MAX_API_TIMEOUT_MS)
    if config.log.level not in LOG_LEVELS:
        raise ConfigFileError(f"[log] level must be one of {', '.join(LOG_LEVELS)}")
    if config.log.format not in LOG_FORMATS:
        raise ConfigFileError(f"[log] format must be one of {', '.join(LOG_FORMATS)}")


def listen_port(multiaddr: str) -> int:
    """The TCP port of a listen multiaddr like ``/ip4/0.0.0.0/tcp/26656`` (0: any port)."""
    match = LISTEN_PATTERN.fullmatch(multiaddr)
    if match is None or int(match.group(2)) > MAX_PORT:
        raise ConfigFileError(
            f"[p2p] listen {multiaddr!r} is not a TCP multiaddr like /ip4/0.0.0.0/tcp/26656"
        )
    return int(match.group(2))


def parse_host_port(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` (``[v6]:port`` for IPv6); the port is 1..65535."""
    match = HOST_PORT_PATTERN.fullmatch(text)
    if match is None or not 1 <= int(match.group(2)) <= MAX_PORT:
        raise ConfigFileError(f"[api] listen {text!r} is not host:port like 127.0.0.1:26657")
    return match.group(1).strip("[]"), int(match.group(2))


def _within(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigFileError(f"{name} must be in {low}..{high}, got {value}")


# -- reading --------------------------------------------------------------------------------

_SECTIONS: Final = {"p2p": P2PConfig, "api": ApiConfig, "log": LogConfig}


def parse_config(text: str, where: str = "config.toml") -> HomeConfig:
    """The config in TOML ``text``; ``ConfigFileError`` (prefixed with ``where``) if invalid."""
    try:
        document = tomllib.loads(text)
        return _from_document(document)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{where}: not valid TOML: {exc}") from exc
    except ConfigFileError as exc:
        raise ConfigFileError(f"{where}: {exc}") from exc


def _from_document(document: dict[str, Any]) -> HomeConfig:
    known = {"moniker", "role", "chain", "mempool", *_SECTIONS}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ConfigFileError(f"unknown setting or table {unknown[0]!r}")
    config = HomeConfig()
    for key in ("moniker", "role"):
        if key in document:
            config = replace(config, **{key: _typed(key, document[key], str)})
    sections = {
        name: _section(name, document.get(name, {}), cls) for name, cls in _SECTIONS.items()
    }
    mempool = _section("mempool", document.get("mempool", {}), MempoolLimits)
    chain_table = document.get("chain", {})
    chain = _section("chain", {**_as_table("chain", chain_table), "mempool": mempool}, NodeConfig)
    return replace(config, **sections, chain=chain)


def _as_table(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigFileError(f"[{name}] must be a table")
    return value


def _section(name: str, table: object, cls: type[Any]) -> Any:
    values = _as_table(name, table)
    declared = {item.name: item for item in fields(cls)}
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        item = declared.get(key)
        if item is None:
            raise ConfigFileError(f"unknown setting [{name}] {key!r}")
        if key == "mempool" and cls is NodeConfig:
            parsed[key] = value
            continue
        expected = _expected_type(cls, key)
        parsed[key] = _typed(f"[{name}] {key}", value, expected)
    try:
        return cls(**parsed)
    except (InvalidConfigError, ValueError) as exc:
        raise ConfigFileError(f"[{name}]: {exc}") from exc


def _expected_type(cls: type[Any], key: str) -> type[Any]:
    default = getattr(cls(), key)
    return tuple if isinstance(default, tuple) else type(default)


def _typed(name: str, value: object, expected: type[Any]) -> Any:
    if expected is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigFileError(f"{name} must be an array of strings")
        return tuple(value)
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigFileError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigFileError(f"{name} must be a {expected.__name__}, got {value!r}")
    return value


# -- writing --------------------------------------------------------------------------------

_COMMENTS: Final = {
    "p2p": "The libp2p network. listen: this node's address (a multiaddr). bootstrap: peers\n"
    "kept connected (dialled at start, redialled with backoff), as\n"
    "/ip4/<address>/tcp/<port>/p2p/<peer id> (`bighealth keys show` prints a node's).\n"
    "consensus_direct: also send votes, proposals and blocks straight to every connected\n"
    "peer (gossip alone can leave a restarted peer unheard for a minute).\n"
    "allow_libp2p_peers: keep peers that speak standard libp2p but not our handshake\n"
    "(gossip only).",
    "api": "The HTTP API: GET /status, /health, /metrics, /blocks/<height>; POST /tx.\n"
    "Keep it on a loopback or private address: it accepts transactions from anyone who\n"
    "can reach it.",
    "log": "Logging to stderr. level: debug, info, warning or error; format: json or text.",
    "chain": "Local limits and intervals of the chain core (times in ms). They never change\n"
    "what the chain decides; chain-wide rules are in the genesis.",
    "mempool": "Bounds of the mempool (transactions and encoded bytes).",
}
HEADER: Final = (
    "Big Health DAO node configuration (written by `bighealth init`).\n"
    "Every key is optional; a missing key takes its default."
)


def format_config(config: HomeConfig) -> str:
    """The TOML text of ``config`` (``parse_config`` reads it back equal)."""
    root = Table(
        None,
        (
            Entry("moniker", config.moniker, "This node's name in logs."),
            Entry(
                "role",
                config.role,
                "validator: signs blocks with validator_key; observer: follows the chain.",
            ),
        ),
    )
    tables = [root]
    for name in ("p2p", "api", "log"):
        tables.append(_table(name, getattr(config, name)))
    tables.append(_table("chain", config.chain, skip=("mempool",)))
    tables.append(_table("mempool", config.chain.mempool))
    return dumps(tables, HEADER)


def _table(name: str, value: object, skip: tuple[str, ...] = ()) -> Table:
    docs = field_docs(type(value))
    entries = tuple(
        Entry(item.name, _toml_value(getattr(value, item.name)), docs.get(item.name, ""))
        for item in fields(value)  # type: ignore[arg-type]
        if item.name not in skip
    )
    return Table(name, entries, _COMMENTS.get(name, ""))


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of the dataclass ``cls`` (its source, parsed): what
    ``config.toml`` writes above each key, so the file explains itself."""
    cached = _FIELD_DOCS.get(cls)
    if cached is None:
        cached = _FIELD_DOCS[cls] = _parse_field_docs(cls)
    return cached


_FIELD_DOCS: dict[type, dict[str, str]] = {}


def _parse_field_docs(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):  # no source (a frozen build): no comments
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for item, following in itertools.pairwise(body):
        if (
            isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            text = " ".join(following.value.value.split()).replace("``", "`")
            docs[item.target.id] = "\n".join(textwrap.wrap(text, 96))
    return docs


def _toml_value(value: object) -> TomlValue:
    if isinstance(value, str | int | bool | tuple):
        return value
    raise TypeError(f"no TOML form for {type(value).__name__}")
