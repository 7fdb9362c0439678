"""The health chain's parts of the command line: its testnet, and what a node runs with it.

``HealthTestnet`` (a ``TestnetApp``) makes ``bighealth testnet --health`` homes: each
validator is a hospital — a genesis institution and a governance member whose validator is
that node — and each observer is the node of a clinic or a patient (their identities are
admitted or registered on the running chain). Every node's home gets ``custodian_key``: the
signing key of the identity whose records the node keeps (its audit transactions are signed
with it). Every party gets a keystore under ``clients/`` (``<name>.keystore``, encrypted under
the testnet's passphrase) with the same signing key and its X25519 encryption key.

``health_extensions`` is the ``ExtensionsFactory`` of ``bighealth run``: for a node of a
health chain it opens the records vault (``HOME/vault``, its own LevelDB) and runs the
health extension (custody of records, ``/bighealth/records/1``, the records API) and the
health API (``health.web``: sessions over the keystores of ``HOME/keystores`` or
``--keystores DIR``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from nacl.public import PrivateKey

from crypto_core.signatures import SEED_SIZE, Ed25519KeyPair
from health.api import ApiLimits
from health.client.keystore import KDF_INTERACTIVE, KdfParams, Keystore
from health.contracts.common import HealthRole
from health.contracts.registry import is_health_genesis
from health.extension import HealthExtension
from health.vault import Vault
from health.web.api import HealthWeb, WebConfig
from node.adapters.leveldb_store import LevelDBStorage
from node.app.module import JsonValue
from node.chain.app_state import encode_app_states
from node.chain.genesis import Genesis
from node.cli.testnet import TestnetSpec
from node.home import ACCOUNT_KEY, LoadedHome, format_config, write_key_file, write_text_atomic
from node.home.config import parse_host_port
from node.home.keys import read_key_file
from node.home.layout import load_config
from node.home.manifest import ManifestClient
from node.ports import Rng
from node.runtime.extension import NodeExtension
from node.types import Validator

CUSTODIAN_KEY_FILE: Final = "custodian_key"
"""The signing key of the identity whose records a node keeps (in the node's home)."""
VAULT_DIR: Final = "vault"
"""The records vault's LevelDB, in the node's home."""
KEYSTORES_DIR: Final = "keystores"
"""The keystores the health API's sessions unlock, in the node's home (by default)."""
RECORD_UPLOAD_BYTES: Final = ApiLimits().max_put_body_bytes
"""The ``[api] max_request_bytes`` of a health node: a record upload fits."""
DEFAULT_TESTNET_PASSPHRASE: Final = "testnet"
"""The passphrase of a testnet's keystores unless one is given: for local networks only."""


@dataclass(frozen=True, slots=True)
class _Party:
    name: str
    role: HealthRole
    seed: bytes
    encryption_private_key: bytes

    @property
    def key(self) -> Ed25519KeyPair:
        return Ed25519KeyPair.from_seed(self.seed)

    @property
    def encryption_public_key(self) -> bytes:
        return bytes(PrivateKey(self.encryption_private_key).public_key)


@dataclass
class HealthTestnet:
    """The health chain's ``TestnetApp`` (see the module docstring): ``clinics`` of the
    observers are clinics, the others patients."""

    rng: Rng
    clinics: int = 1
    passphrase: str = DEFAULT_TESTNET_PASSPHRASE
    kdf: KdfParams = KDF_INTERACTIVE
    params: dict[str, int] = field(default_factory=dict)
    """Governance parameters of the genesis (``app_state["governance"]["params"]``)."""
    parties: dict[str, _Party] = field(default_factory=dict)
    """The party of each node, by home name."""

    def genesis(self, spec: TestnetSpec, validators: tuple[Validator, ...]) -> Genesis:
        """Hospitals for the validators; identities and governance members in app_state."""
        hospitals = [
            self._party(f"hospital-{i}", HealthRole.INSTITUTION) for i in range(len(validators))
        ]
        for index, hospital in enumerate(hospitals):
            self.parties[f"validator-{index}"] = hospital
        for index in range(spec.observers):
            role = HealthRole.INSTITUTION if index < self.clinics else HealthRole.PATIENT
            name = f"clinic-{index}" if index < self.clinics else f"patient-{index - self.clinics}"
            self.parties[f"observer-{index}"] = self._party(name, role)
        app_state = _app_state(hospitals, validators, self.params)
        return Genesis(
            spec.chain_id,
            spec.genesis_time_ms,
            validators,
            (),
            spec.params,
            app_state=encode_app_states(app_state),
        )

    def finish(self, output: Path, homes: list[tuple[str, str]]) -> tuple[ManifestClient, ...]:
        """Custodian keys in the homes, one keystore per party under ``clients/``."""
        directory = output / "clients"
        directory.mkdir(mode=0o700, exist_ok=True)
        clients = []
        for home, _role in homes:
            party = self.parties[home]
            write_key_file(output / home / CUSTODIAN_KEY_FILE, ACCOUNT_KEY, party.seed)
            _allow_record_uploads(output / home)
            relative = f"clients/{party.name}.keystore"
            Keystore.create(
                output / relative,
                self.passphrase,
                name=party.name,
                role=party.role,
                kdf=self.kdf,
                signing_seed=party.seed,
                encryption_private_key=party.encryption_private_key,
            )
            clients.append(ManifestClient(relative, party.key.public_key.hex()))
        return tuple(clients)

    def _party(self, name: str, role: HealthRole) -> _Party:
        return _Party(name, role, self.rng.random_bytes(SEED_SIZE), self.rng.random_bytes(32))


def _app_state(
    hospitals: Sequence[_Party], validators: tuple[Validator, ...], params: dict[str, int]
) -> dict[str, JsonValue]:
    identities: list[JsonValue] = [
        {
            "role": "institution",
            "kind": "hospital",
            "label": f"Hospital {index}",
            "signing_key": hospital.key.public_key.hex(),
            "encryption_key": hospital.encryption_public_key.hex(),
        }
        for index, hospital in enumerate(hospitals)
    ]
    members: list[JsonValue] = [
        {
            "institution": hospital.key.public_key.hex(),
            "validator_key": validator.public_key.hex(),
            "power": validator.voting_power,
            "weight": 1,
        }
        for hospital, validator in zip(hospitals, validators, strict=True)
    ]
    governance: dict[str, JsonValue] = {"members": members}
    if params:
        governance["params"] = dict(params)
    return {"identity": {"identities": identities}, "governance": governance}


def _allow_record_uploads(home: Path) -> None:
    """Raise ``[api] max_request_bytes`` of the home so a whole record (up to 1 MiB of
    content, base64 in a JSON body) can be uploaded to the node."""
    config = load_config(home)
    if config.api.max_request_bytes < RECORD_UPLOAD_BYTES:
        api = replace(config.api, max_request_bytes=RECORD_UPLOAD_BYTES)
        write_text_atomic(home / "config.toml", format_config(replace(config, api=api)))


def custodian_key(loaded: LoadedHome) -> Ed25519KeyPair | None:
    """The home's custodian key, if it has one."""
    path = loaded.home.path / CUSTODIAN_KEY_FILE
    return read_key_file(path, ACCOUNT_KEY) if path.exists() else None


def health_web(loaded: LoadedHome, keystores: Path | None = None) -> HealthWeb:
    """The health API of the node of ``loaded``: sessions over the keystores of
    ``keystores`` (default ``HOME/keystores``), its client reaching this node's own API on
    loopback, its waits bounded below the API's request timeout."""
    host, port = parse_host_port(loaded.config.api.listen)
    if host in ("0.0.0.0", "::"):  # listening everywhere: reach it on loopback
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    timeout_s = loaded.config.api.request_timeout_ms / 1000
    directory = keystores if keystores is not None else loaded.home.path / KEYSTORES_DIR
    config = WebConfig(
        keystores=directory.resolve(),
        node_url=f"http://{netloc}",
        request_timeout_s=max(1.0, timeout_s / 2),
        receipt_timeout_s=max(1.0, timeout_s - 3),
        read_budget_s=max(1.0, timeout_s / 2),
    )
    return HealthWeb(config)


@contextmanager
def health_extensions(
    loaded: LoadedHome, *, keystores: Path | None = None
) -> Iterator[Sequence[NodeExtension]]:
    """The extensions of a node of ``loaded``'s chain: for a health chain the records
    custody on the vault at ``HOME/vault`` (opened for the node's lifetime) and the health
    API (``health_web``); none else."""
    if not is_health_genesis(loaded.genesis):
        yield ()
        return
    storage = LevelDBStorage(loaded.home.path / VAULT_DIR, loaded.genesis.chain_id)
    try:
        vault = Vault(storage, compact_range=storage.compact_range)
        yield (HealthExtension(vault, custodian_key(loaded)), health_web(loaded, keystores))
    finally:
        storage.close()
