"""``testnet.json``: what ``bighealth testnet`` made, for the tools that start and drive it.

    {
      "chain_id": "bighealth-testnet",
      "genesis_hash": "<hex>",
      "nodes": [
        {"name": "validator-0", "home": "validator-0", "role": "validator",
         "peer_id": "12D3KooW...", "p2p": "/ip4/127.0.0.1/tcp/40001/p2p/12D3KooW...",
         "api": "127.0.0.1:40002", "validator_public_key": "<hex>"},
        ...
      ],
      "clients": [{"key_file": "clients/client-0.key", "public_key": "<hex>"}, ...]
    }

Paths are relative to the directory holding the manifest, so a testnet can be moved.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from node.home.errors import HomeError, HomeNotFoundError

MANIFEST_FILE: Final = "testnet.json"
MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ManifestNode:
    """One node of a testnet."""

    name: str
    home: str
    role: str
    peer_id: str
    p2p: str
    api: str
    validator_public_key: str | None


@dataclass(frozen=True, slots=True)
class ManifestClient:
    """One client account (an institution in the genesis) and its key file."""

    key_file: str
    public_key: str


@dataclass(frozen=True, slots=True)
class TestnetManifest:
    """The manifest of one testnet directory."""

    chain_id: str
    genesis_hash: str
    nodes: tuple[ManifestNode, ...]
    clients: tuple[ManifestClient, ...]

    @property
    def validators(self) -> tuple[ManifestNode, ...]:
        return tuple(node for node in self.nodes if node.role == "validator")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def write_manifest(directory: Path, manifest: TestnetManifest) -> Path:
    """Write ``testnet.json`` into ``directory``; its path."""
    path = directory / MANIFEST_FILE
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path


def read_manifest(directory: Path) -> TestnetManifest:
    """The manifest in ``directory`` (``HomeNotFoundError`` if none, ``HomeError`` if bad)."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise HomeNotFoundError(f"no {MANIFEST_FILE} in {directory}: not a testnet directory")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise HomeError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
        return TestnetManifest(
            chain_id=str(document["chain_id"]),
            genesis_hash=str(document["genesis_hash"]),
            nodes=tuple(ManifestNode(**node) for node in document["nodes"]),
            clients=tuple(ManifestClient(**client) for client in document["clients"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise HomeError(f"{path} is not a testnet manifest: {exc}") from exc
