"""Commands that make and inspect homes, keys and genesis files: ``init``, ``testnet``,
``keys show``/``keys new``, ``genesis create``/``genesis show``. None of them needs a
running node."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from node.cli.common import EXIT_OK, Subparsers, add_home_argument, print_json
from node.cli.options import (
    API_LISTEN,
    LOG_LEVELS,
    P2P_LISTEN,
    TESTNET_COMMIT_WAIT_MS,
    TESTNET_PASSPHRASE,
)

if TYPE_CHECKING:
    from crypto_core.signatures import Ed25519KeyPair
    from node.app.accounts import GenesisAccount
    from node.chain.app_state import AppStateEntries
    from node.chain.genesis import ConsensusParams, Genesis
    from node.types import Validator

# The handlers import what they use when they run: building the parser (``--help``) loads
# none of the node's stack (tests/cli/test_cli_startup.py).

NODE_BLOCK_BYTES: Final = 2 * 1024 * 1024
"""``max_block_bytes`` of the genesis files ``init`` and ``testnet`` write. Blocks with
transactions travel compact (``node.chain.compact``: 34 bytes a transaction), so a block may
be larger than the libp2p network carries in one message; what bounds the compact form is
``max_block_txs`` (``node.runtime.launch.check_block_size``)."""
TX_GOSSIP_INTERVAL_MS: Final = 500
"""How often a node gossips the transactions its clients submitted, in the configs ``init``
and ``testnet`` write: py-libp2p spends ~3-6 ms of CPU per gossip message on every node,
so fewer, larger batches keep an 8-node network responsive under load (measured: 30 tx/s
on 8 nodes gave ~8 s blocks at 100 ms, ~1 s at 500 ms)."""
DEFAULT_BLOCK_TXS: Final = 5_000
"""``max_block_txs`` of the genesis ``testnet`` writes (the genesis default)."""
DEFAULT_CHAIN_ID: Final = "bighealth-local"
DEFAULT_VOTING_POWER: Final = 10
MONIKER_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


def node_params(**changes: int) -> ConsensusParams:
    """Consensus parameters for a new chain: the defaults, blocks of ``NODE_BLOCK_BYTES``,
    with ``changes``."""
    from node.chain.errors import InvalidGenesisError  # noqa: PLC0415
    from node.chain.genesis import ConsensusParams  # noqa: PLC0415
    from node.home import HomeError  # noqa: PLC0415

    try:
        return ConsensusParams(**{"max_block_bytes": NODE_BLOCK_BYTES, **changes})
    except InvalidGenesisError as exc:
        raise HomeError(f"invalid consensus parameter: {exc}") from exc


# -- init -----------------------------------------------------------------------------------


def add_init(sub: Subparsers) -> None:
    parser = sub.add_parser("init", help="create a node home: keys, config.toml and a genesis file")
    add_home_argument(parser, "the home to create")
    parser.add_argument("--moniker", help="the node's name in logs (default: the home's name)")
    parser.add_argument(
        "--observer", action="store_true", help="follow the chain without signing (no key)"
    )
    parser.add_argument(
        "--genesis",
        type=Path,
        help="the chain's genesis file (default: a new chain whose only validator is this node)",
    )
    parser.add_argument("--chain-id", default=DEFAULT_CHAIN_ID, help="chain id of a new chain")
    parser.add_argument("--listen", default=P2P_LISTEN, help="libp2p listen multiaddr")
    parser.add_argument("--api", default=API_LISTEN, help="HTTP API host:port")
    parser.add_argument(
        "--bootstrap", action="append", default=[], metavar="ADDR", help="a peer to keep (repeat)"
    )
    parser.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    """Create a home; print its keys and addresses (JSON)."""
    from crypto_core.signatures import SEED_SIZE, Ed25519KeyPair  # noqa: PLC0415
    from node.adapters.identity import load_or_create_node_key  # noqa: PLC0415
    from node.chain.config import NodeConfig  # noqa: PLC0415
    from node.home import ApiConfig, HomeConfig, HomeError, P2PConfig, create_home  # noqa: PLC0415
    from node.runtime.system import SystemRng  # noqa: PLC0415

    rng = SystemRng()
    seed = None if args.observer else rng.random_bytes(SEED_SIZE)
    if args.genesis is not None:
        genesis = _read_genesis(args.genesis)
    elif seed is None:
        raise HomeError("an observer follows an existing chain: pass its --genesis file")
    else:
        genesis = single_validator_genesis(args.chain_id, Ed25519KeyPair.from_seed(seed))
    moniker = args.moniker or MONIKER_UNSAFE.sub("-", Path(args.home).resolve().name)[:64]
    config = HomeConfig(
        moniker=moniker or "node",
        role="observer" if args.observer else "validator",
        p2p=P2PConfig(listen=args.listen, bootstrap=tuple(args.bootstrap)),
        api=ApiConfig(listen=args.api),
        chain=NodeConfig(tx_gossip_interval_ms=TX_GOSSIP_INTERVAL_MS),
    )
    home = create_home(args.home, config, genesis, seed)
    load_or_create_node_key(home.path, rng)
    summary = home_summary(home.path)
    key = summary["validator_public_key"]
    if key is not None and key not in {v.public_key.hex() for v in genesis.validators}:
        summary["note"] = (
            "this validator key is not in the genesis validator set: the node follows the "
            "chain without signing until the set includes it"
        )
    print_json(summary)
    return EXIT_OK


def single_validator_genesis(chain_id: str, key: Ed25519KeyPair) -> Genesis:
    """A new chain whose only validator is ``key``, starting now."""
    from node.chain.errors import InvalidGenesisError  # noqa: PLC0415
    from node.chain.genesis import Genesis  # noqa: PLC0415
    from node.home import HomeError  # noqa: PLC0415
    from node.runtime.system import SystemClock  # noqa: PLC0415
    from node.types import Validator  # noqa: PLC0415

    try:
        return Genesis(
            chain_id=chain_id,
            genesis_time_ms=SystemClock().now_ms(),
            validators=(Validator(key.public_key, DEFAULT_VOTING_POWER),),
            params=node_params(),
        )
    except InvalidGenesisError as exc:
        raise HomeError(str(exc)) from exc


def home_summary(path: Path) -> dict[str, Any]:
    """What others need to know of a node: keys, peer id and addresses (JSON-ready)."""
    from node.adapters.identity import load_node_key  # noqa: PLC0415
    from node.home import load_home  # noqa: PLC0415

    loaded = load_home(path)
    peer_id = _peer_id(load_node_key(loaded.home.node_key_path))
    key = loaded.validator_key
    listen = loaded.config.p2p.listen
    return {
        "home": str(loaded.home.path),
        "moniker": loaded.config.moniker,
        "role": loaded.config.role,
        "chain_id": loaded.genesis.chain_id,
        "genesis_hash": loaded.genesis.hash().hex(),
        "validator_public_key": None if key is None else key.public_key.hex(),
        "peer_id": peer_id,
        "p2p_listen": listen,
        "p2p_address": f"{listen}/p2p/{peer_id}",
        "api": loaded.config.api.listen,
    }


def _peer_id(node_seed: bytes) -> str:
    # libp2p takes ~0.8 s to import: only the commands that need a peer id load it.
    from node.adapters.libp2p import peer_id_of  # noqa: PLC0415

    return peer_id_of(node_seed)


def _read_genesis(path: Path) -> Genesis:
    from node.home import GenesisFileError, parse_genesis  # noqa: PLC0415

    try:
        return parse_genesis(path.read_bytes(), str(path))
    except OSError as exc:
        raise GenesisFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


# -- testnet --------------------------------------------------------------------------------


def add_testnet(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "testnet", help="homes for a whole network on this host, with a shared genesis"
    )
    parser.add_argument("--validators", type=int, required=True, help="how many validators")
    parser.add_argument("--output", type=Path, required=True, help="directory to create")
    parser.add_argument("--observers", type=int, default=0, help="non-validator nodes")
    parser.add_argument("--clients", type=int, default=8, help="client accounts (default 8)")
    parser.add_argument("--chain-id", default="bighealth-testnet")
    parser.add_argument("--host", default="127.0.0.1", help="address every node listens on")
    parser.add_argument(
        "--commit-wait-ms", type=int, default=TESTNET_COMMIT_WAIT_MS, help="pause after a commit"
    )
    parser.add_argument(
        "--max-block-bytes", type=int, default=NODE_BLOCK_BYTES, help="genesis block size limit"
    )
    parser.add_argument(
        "--max-block-txs", type=int, default=DEFAULT_BLOCK_TXS, help="genesis block tx limit"
    )
    parser.add_argument("--timeout-propose-ms", type=int, default=1_000)
    parser.add_argument("--timeout-prevote-ms", type=int, default=500)
    parser.add_argument("--timeout-precommit-ms", type=int, default=500)
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.add_argument(
        "--health",
        action="store_true",
        help="a health chain: validators are hospitals (genesis institutions and DAO members), "
        "observers are clinics and patients; keystores under DIR/clients",
    )
    parser.add_argument(
        "--clinics", type=int, default=1, help="with --health: observers that are clinics"
    )
    parser.add_argument(
        "--passphrase",
        default=TESTNET_PASSPHRASE,
        help=f"with --health: the keystores' passphrase (default {TESTNET_PASSPHRASE!r}: "
        "for local testnets only)",
    )
    parser.set_defaults(handler=cmd_testnet)


def cmd_testnet(args: argparse.Namespace) -> int:
    """Create the testnet directory; print its manifest (JSON)."""
    from node.chain.config import NodeConfig  # noqa: PLC0415
    from node.chain.errors import InvalidConfigError  # noqa: PLC0415
    from node.cli.health_net import HealthTestnet  # noqa: PLC0415
    from node.cli.testnet import TestnetSpec, create_testnet  # noqa: PLC0415
    from node.home import HomeError, LogConfig  # noqa: PLC0415
    from node.runtime.system import SystemClock, SystemRng  # noqa: PLC0415

    params = node_params(
        max_block_bytes=args.max_block_bytes,
        max_block_txs=args.max_block_txs,
        timeout_propose_ms=args.timeout_propose_ms,
        timeout_prevote_ms=args.timeout_prevote_ms,
        timeout_precommit_ms=args.timeout_precommit_ms,
    )
    try:
        chain = NodeConfig(
            commit_wait_ms=args.commit_wait_ms, tx_gossip_interval_ms=TX_GOSSIP_INTERVAL_MS
        )
        spec = TestnetSpec(
            validators=args.validators,
            observers=args.observers,
            clients=args.clients,
            chain_id=args.chain_id,
            host=args.host,
            genesis_time_ms=SystemClock().now_ms(),
            params=params,
            chain=chain,
            log=LogConfig(level=args.log_level, format=args.log_format),
        )
    except (ValueError, InvalidConfigError) as exc:
        raise HomeError(f"invalid testnet: {exc}") from exc
    rng = SystemRng()
    app = None
    if args.health:
        if not 0 <= args.clinics <= args.observers:
            raise HomeError("--clinics must be in 0..--observers")
        app = HealthTestnet(rng, clinics=args.clinics, passphrase=args.passphrase)
    manifest = create_testnet(args.output, spec, rng, app)
    print(manifest.to_json(), end="")
    return EXIT_OK


# -- keys -----------------------------------------------------------------------------------


def add_keys(sub: Subparsers) -> None:
    parser = sub.add_parser("keys", help="show a node's keys, or make a client account key")
    keys = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    show = keys.add_parser("show", help="a node's validator key, peer id and addresses (JSON)")
    add_home_argument(show)
    show.set_defaults(handler=cmd_keys_show)
    new = keys.add_parser("new", help="a new client account key file (mode 0600)")
    new.add_argument("--output", type=Path, required=True, help="the key file to create")
    new.set_defaults(handler=cmd_keys_new)


def cmd_keys_show(args: argparse.Namespace) -> int:
    print_json(home_summary(args.home))
    return EXIT_OK


def cmd_keys_new(args: argparse.Namespace) -> int:
    from crypto_core.signatures import SEED_SIZE  # noqa: PLC0415
    from node.home import ACCOUNT_KEY, write_key_file  # noqa: PLC0415
    from node.runtime.system import SystemRng  # noqa: PLC0415

    key = write_key_file(args.output, ACCOUNT_KEY, SystemRng().random_bytes(SEED_SIZE))
    print_json({"key_file": str(args.output), "public_key": key.public_key.hex()})
    return EXIT_OK


# -- genesis --------------------------------------------------------------------------------


def add_genesis(sub: Subparsers) -> None:
    parser = sub.add_parser("genesis", help="create or inspect a genesis file")
    genesis = parser.add_subparsers(dest="genesis_command", metavar="ACTION", required=True)
    create = genesis.add_parser("create", help="a genesis file from validator and account keys")
    create.add_argument("--chain-id", required=True)
    create.add_argument(
        "--validator", action="append", required=True, metavar="HEX[:POWER]",
        help="a validator's public key (`keys show`), voting power 10 by default (repeat)",
    )  # fmt: skip
    create.add_argument(
        "--account", action="append", default=[], metavar="HEX[:ROLE]",
        help="a genesis account, role institution by default (repeat)",
    )  # fmt: skip
    create.add_argument(
        "--app-state", type=Path, metavar="FILE.json",
        help='the modules\' genesis states: a JSON object {"<module>": <value>, ...}',
    )  # fmt: skip
    create.add_argument("--genesis-time-ms", type=int, help="start time (default: now)")
    create.add_argument("--output", type=Path, required=True, help="the file to create")
    create.set_defaults(handler=cmd_genesis_create)
    show = genesis.add_parser("show", help="a genesis file's chain id, hash and validators")
    show.add_argument("file", type=Path)
    show.set_defaults(handler=cmd_genesis_show)


def cmd_genesis_create(args: argparse.Namespace) -> int:
    from node.chain.errors import InvalidGenesisError  # noqa: PLC0415
    from node.chain.genesis import Genesis  # noqa: PLC0415
    from node.home import GenesisFileError, HomeError, format_genesis  # noqa: PLC0415
    from node.home.layout import write_text_atomic  # noqa: PLC0415
    from node.runtime.system import SystemClock  # noqa: PLC0415

    validators = tuple(_validator(text) for text in args.validator)
    accounts = tuple(_account(text) for text in args.account)
    time_ms = args.genesis_time_ms if args.genesis_time_ms is not None else SystemClock().now_ms()
    app_state = () if args.app_state is None else read_app_state(args.app_state)
    try:
        genesis = Genesis(args.chain_id, time_ms, validators, accounts, node_params(), app_state)
    except InvalidGenesisError as exc:
        raise GenesisFileError(str(exc)) from exc
    if args.output.exists():
        raise HomeError(f"{args.output} exists: refusing to overwrite a genesis file")
    write_text_atomic(args.output, format_genesis(genesis))
    print_json(genesis_summary(genesis, args.output))
    return EXIT_OK


def cmd_genesis_show(args: argparse.Namespace) -> int:
    print_json(genesis_summary(_read_genesis(args.file), args.file))
    return EXIT_OK


def genesis_summary(genesis: Genesis, path: Path) -> dict[str, Any]:
    return {
        "file": str(path),
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash().hex(),
        "genesis_time_ms": genesis.genesis_time_ms,
        "validators": [
            {"public_key": v.public_key.hex(), "voting_power": v.voting_power}
            for v in genesis.validators
        ],
        "accounts": len(genesis.accounts),
        "app_state_modules": list(genesis.app_state_modules()),
    }


def read_app_state(path: Path) -> AppStateEntries:
    """The module states in the JSON file ``path`` (``{"<module>": <value>, ...}``) as
    ``Genesis.app_state``; ``GenesisFileError`` if the file is unreadable or not such."""
    from node.home import GenesisFileError  # noqa: PLC0415
    from node.home.genesis_file import MAX_GENESIS_FILE_BYTES, app_state_of_document  # noqa: PLC0415

    try:
        if path.stat().st_size > MAX_GENESIS_FILE_BYTES:
            raise GenesisFileError(f"{path}: larger than {MAX_GENESIS_FILE_BYTES} bytes")
        text = path.read_bytes()
    except OSError as exc:
        raise GenesisFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GenesisFileError(f"{path}: not valid JSON: {exc}") from exc
    return app_state_of_document(document, str(path))


def _validator(text: str) -> Validator:
    from node.home import GenesisFileError  # noqa: PLC0415
    from node.home.genesis_file import public_key_of  # noqa: PLC0415
    from node.types import Validator  # noqa: PLC0415

    key_hex, _, power = text.partition(":")
    try:
        voting_power = int(power) if power else DEFAULT_VOTING_POWER
    except ValueError:
        raise GenesisFileError(f"--validator {text!r}: the power must be an integer") from None
    return Validator(public_key_of(f"--validator {text!r}", key_hex), voting_power)


def _account(text: str) -> GenesisAccount:
    from node.app.accounts import GenesisAccount, Role  # noqa: PLC0415
    from node.home import GenesisFileError  # noqa: PLC0415
    from node.home.genesis_file import public_key_of  # noqa: PLC0415

    key_hex, _, role = text.partition(":")
    roles = {r.name.lower(): r for r in Role}
    if role and role not in roles:
        raise GenesisFileError(f"--account {text!r}: the role is one of {', '.join(roles)}")
    key = public_key_of(f"--account {text!r}", key_hex)
    return GenesisAccount(key, roles[role] if role else Role.INSTITUTION)


__all__ = ["add_genesis", "add_init", "add_keys", "add_testnet"]
