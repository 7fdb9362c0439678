"""``bighealth testnet``: a whole network's homes in one directory, ready to run on one host.

    DIR/
      testnet.json            the manifest (node addresses, API ports, client keys)
      genesis.json            the shared genesis (also in every home)
      validator-0/ ...        one home per validator (config.toml, keys, genesis)
      observer-0/ ...         one home per observer (no validator key)
      clients/client-0.key    client account keys, institutions in the genesis

Ports are chosen free on the host when the testnet is made (two per node: libp2p and the
API). Every validator keeps every other validator as a bootstrap peer; observers keep all
validators. Nothing here runs a node: ``bighealth run --home DIR/validator-0`` does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Protocol

from crypto_core.signatures import SEED_SIZE, Ed25519KeyPair
from node.adapters.identity import load_or_create_node_key
from node.app.accounts import GenesisAccount, Role
from node.chain.config import NodeConfig
from node.chain.genesis import ConsensusParams, Genesis
from node.home import (
    ACCOUNT_KEY,
    ApiConfig,
    HomeConfig,
    HomeExistsError,
    LogConfig,
    P2PConfig,
    create_home,
    format_config,
    format_genesis,
    write_key_file,
    write_text_atomic,
)
from node.home.manifest import ManifestClient, ManifestNode, TestnetManifest, write_manifest
from node.ports import Rng
from node.types import Validator

MAX_TESTNET_NODES: Final = 64
"""Most nodes one testnet directory holds (all on one host)."""
MAX_TESTNET_CLIENTS: Final = 10_000
DEFAULT_VOTING_POWER: Final = 10


@dataclass(frozen=True, slots=True)
class TestnetSpec:
    """What to make."""

    validators: int
    observers: int = 0
    clients: int = 8
    chain_id: str = "bighealth-testnet"
    host: str = "127.0.0.1"
    genesis_time_ms: int = 0
    params: ConsensusParams = field(default_factory=ConsensusParams)
    chain: NodeConfig = field(default_factory=NodeConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.validators <= MAX_TESTNET_NODES:
            raise ValueError(f"validators must be in 1..{MAX_TESTNET_NODES}")
        if not 0 <= self.observers <= MAX_TESTNET_NODES - self.validators:
            raise ValueError(f"at most {MAX_TESTNET_NODES} nodes in all")
        if not 0 <= self.clients <= MAX_TESTNET_CLIENTS:
            raise ValueError(f"clients must be in 0..{MAX_TESTNET_CLIENTS}")


class TestnetApp(Protocol):
    """What an application adds to a testnet (the health chain: identities, custodian keys
    and keystores); ``create_testnet`` without one makes a generic chain with client
    accounts."""

    def genesis(self, spec: TestnetSpec, validators: tuple[Validator, ...]) -> Genesis:
        """The genesis of the testnet, given its validators (in node order)."""
        ...

    def finish(self, output: Path, homes: list[tuple[str, str]]) -> tuple[ManifestClient, ...]:
        """Write what the homes ``[(name, role)]`` under ``output`` and the clients need;
        the clients to list in the manifest."""
        ...


@dataclass(slots=True)
class _Planned:
    name: str
    role: str
    config: HomeConfig
    validator_seed: bytes | None
    peer_id: str = ""


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct TCP ports free on ``host`` now (bound together, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probes = [socket.socket(family, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((host, 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def create_testnet(
    output: Path, spec: TestnetSpec, rng: Rng, app: TestnetApp | None = None
) -> TestnetManifest:
    """Make the testnet directory ``output`` (absent or empty); its manifest. With ``app``,
    the application writes the genesis and the clients (``spec.clients`` is not used)."""
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise HomeExistsError(f"{output} exists and is not an empty directory")
    output.mkdir(parents=True, exist_ok=True)
    planned = _plan(spec, rng)
    client_keys = (
        [Ed25519KeyPair.from_seed(rng.random_bytes(SEED_SIZE)) for _ in range(spec.clients)]
        if app is None
        else []
    )
    genesis = (
        _genesis(spec, planned, client_keys)
        if app is None
        else app.genesis(spec, _validators(planned))
    )
    for node in planned:  # pass 1: homes and network keys (peer ids are known only now)
        home = create_home(output / node.name, node.config, genesis, node.validator_seed)
        node.peer_id = _peer_id(load_or_create_node_key(home.path, rng))
    addresses = {node.name: f"{node.config.p2p.listen}/p2p/{node.peer_id}" for node in planned}
    validators = [node.name for node in planned if node.role == "validator"]
    for node in planned:  # pass 2: bootstrap peers
        peers = tuple(addresses[name] for name in validators if name != node.name)
        node.config = replace(node.config, p2p=replace(node.config.p2p, bootstrap=peers))
        write_text_atomic(output / node.name / "config.toml", format_config(node.config))
    if app is None:
        clients = _write_clients(output, client_keys)
    else:
        clients = app.finish(output, [(node.name, node.role) for node in planned])
    write_text_atomic(output / "genesis.json", format_genesis(genesis))
    manifest = _manifest(genesis, planned, addresses, clients)
    write_manifest(output, manifest)
    return manifest


def _plan(spec: TestnetSpec, rng: Rng) -> list[_Planned]:
    total = spec.validators + spec.observers
    ports = free_ports(spec.host, 2 * total)
    planned = []
    for index in range(total):
        is_validator = index < spec.validators
        name = f"validator-{index}" if is_validator else f"observer-{index - spec.validators}"
        p2p_port, api_port = ports[2 * index], ports[2 * index + 1]
        config = HomeConfig(
            moniker=name,
            role="validator" if is_validator else "observer",
            p2p=P2PConfig(listen=f"/ip{_ip_version(spec.host)}/{spec.host}/tcp/{p2p_port}"),
            api=ApiConfig(listen=f"{_bracketed(spec.host)}:{api_port}"),
            log=spec.log,
            chain=spec.chain,
        )
        seed = rng.random_bytes(SEED_SIZE) if is_validator else None
        planned.append(_Planned(name, config.role, config, seed))
    return planned


def _validators(planned: list[_Planned]) -> tuple[Validator, ...]:
    return tuple(
        Validator(Ed25519KeyPair.from_seed(node.validator_seed).public_key, DEFAULT_VOTING_POWER)
        for node in planned
        if node.validator_seed is not None
    )


def _genesis(spec: TestnetSpec, planned: list[_Planned], clients: list[Ed25519KeyPair]) -> Genesis:
    validators = _validators(planned)
    accounts = tuple(GenesisAccount(key.public_key, Role.INSTITUTION) for key in clients)
    return Genesis(spec.chain_id, spec.genesis_time_ms, validators, accounts, spec.params)


def _write_clients(output: Path, keys: list[Ed25519KeyPair]) -> tuple[ManifestClient, ...]:
    if not keys:
        return ()
    directory = output / "clients"
    directory.mkdir(mode=0o700)
    clients = []
    for index, key in enumerate(keys):
        relative = f"clients/client-{index}.key"
        write_key_file(output / relative, ACCOUNT_KEY, key.seed)
        clients.append(ManifestClient(relative, key.public_key.hex()))
    return tuple(clients)


def _manifest(
    genesis: Genesis,
    planned: list[_Planned],
    addresses: dict[str, str],
    clients: tuple[ManifestClient, ...],
) -> TestnetManifest:
    nodes = tuple(
        ManifestNode(
            name=node.name,
            home=node.name,
            role=node.role,
            peer_id=node.peer_id,
            p2p=addresses[node.name],
            api=node.config.api.listen,
            validator_public_key=None
            if node.validator_seed is None
            else Ed25519KeyPair.from_seed(node.validator_seed).public_key.hex(),
        )
        for node in planned
    )
    return TestnetManifest(genesis.chain_id, genesis.hash().hex(), nodes, clients)


def _peer_id(node_seed: bytes) -> str:
    # libp2p takes ~0.8 s to import: only the commands that need a peer id load it.
    from node.adapters.libp2p import peer_id_of  # noqa: PLC0415

    return peer_id_of(node_seed)


def _ip_version(host: str) -> int:
    return 6 if ":" in host else 4


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
