"""Who plays the demo's story, on which node, with which keystore.

The network comes from ``bighealth testnet --health`` (``node.cli.health_net``): hospitals
run the validators, a clinic and the patients run observers, and each of them has a keystore
under the testnet's ``clients/``. The demo adds people: a GP at the clinic, an
endocrinologist at hospital 1, an emergency doctor at hospital 2, and the first patient's
CGM. Every party's keystore lives in the keystores directory of the node it uses
(``HOME/keystores/<name>.keystore``, the testnet's keystores copied there first), so the same
keys the story used unlock the node's dashboard afterwards.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from health.client import HealthClient, KdfParams, Keystore
from health.contracts.common import HealthRole

KEYSTORES_DIR: Final = "keystores"
"""A node home's directory of the keystores its dashboard may unlock."""
KEYSTORE_SUFFIX: Final = ".keystore"
TESTNET_KEYSTORES: Final = "clients"
"""Where ``bighealth testnet --health`` puts the parties' keystores."""
RECEIPT_TIMEOUT_S: Final = 60.0
REQUEST_TIMEOUT_S: Final = 30.0
"""A busy node may take a while to fetch a record from its custodian over the network."""


@dataclass(frozen=True, slots=True)
class Person:
    """A party the demo adds: its keystore name, the node it uses, its role, the kind on
    chain (specialty, device kind) and its public label."""

    name: str
    node: str
    role: HealthRole
    kind: str = ""
    label: str = ""


GP: Final = Person(
    "dr-gp", "observer-0", HealthRole.PRACTITIONER, "general_practice", "Dr Grace Okafor (GP)"
)
ENDOCRINOLOGIST: Final = Person(
    "dr-endo", "validator-1", HealthRole.PRACTITIONER, "endocrinology", "Dr Lars Berg"
)
ER_DOCTOR: Final = Person(
    "dr-er", "validator-2", HealthRole.PRACTITIONER, "emergency_medicine", "Dr Ana Ruiz"
)
CGM: Final = Person("cgm-0", "observer-1", HealthRole.DEVICE, "cgm")
PEOPLE: Final = (GP, ENDOCRINOLOGIST, ER_DOCTOR, CGM)


@dataclass(frozen=True, slots=True)
class DemoNode:
    """One node of the demo's network: its home name, the party that runs it (a
    ``clients/<party>.keystore`` of the testnet), its API URL, libp2p peer id and home."""

    name: str
    party: str
    api_url: str
    peer_id: str
    home: Path


@dataclass(frozen=True, slots=True)
class DemoNetwork:
    """The running network the story is told on."""

    chain_id: str
    directory: Path
    nodes: tuple[DemoNode, ...]
    passphrase: str
    kdf: KdfParams

    def node(self, name: str) -> DemoNode:
        """The node whose home is ``name`` (``KeyError`` if none)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in the demo network")

    def node_of_party(self, party: str) -> DemoNode:
        """The node run by the testnet party ``party`` (``KeyError`` if none)."""
        for node in self.nodes:
            if node.party == party:
                return node
        raise KeyError(f"no node of {party!r} in the demo network")

    def hospitals(self) -> list[DemoNode]:
        """The hospitals' nodes (the validators), in order."""
        return [node for node in self.nodes if node.party.startswith("hospital-")]

    def logins(self) -> dict[str, list[str]]:
        """Node name -> the keystores its dashboard holds once the story set them up."""
        names = {node.name: [node.party] for node in self.nodes}
        for person in PEOPLE:
            names[person.node].append(person.name)
        return names


class Cast:
    """Each party's keystore in its node's keystores directory and its ``HealthClient``
    (pointed at its own node, knowing every node's API as a custodian's)."""

    def __init__(self, network: DemoNetwork) -> None:
        """Open the keystore of every node's party (copied from the testnet's first)."""
        self.network = network
        self.clients: dict[str, HealthClient] = {}
        keystores = {node.party: _node_keystore(network, node) for node in network.nodes}
        self.directory: dict[bytes, str] = {
            keystores[node.party].identity_id: node.api_url for node in network.nodes
        }
        for node in network.nodes:
            self._add(node.party, node, keystores[node.party])

    def party(self, name: str) -> HealthClient:
        """The client of the party or person ``name`` (``KeyError`` if not cast yet)."""
        return self.clients[name]

    def person(self, person: Person) -> HealthClient:
        """The client of ``person``, with a new keystore the first time."""
        if person.name not in self.clients:
            node = self.network.node(person.node)
            path = _keystore_path(node.home, person.name)
            path.parent.mkdir(mode=0o700, exist_ok=True)
            keystore = Keystore.create(
                path,
                self.network.passphrase,
                name=person.name,
                role=person.role,
                kdf=self.network.kdf,
            )
            self._add(person.name, node, keystore)
        return self.clients[person.name]

    def custodian(self, party: str) -> tuple[bytes, str]:
        """``(identity id, API URL)`` of the node keeping ``party``'s records."""
        return self.clients[party].identity_id, self.network.node_of_party(party).api_url

    def _add(self, name: str, node: DemoNode, keystore: Keystore) -> None:
        self.clients[name] = HealthClient(
            node.api_url,
            keystore,
            self.network.chain_id,
            custodians=self.directory,
            timeout_s=REQUEST_TIMEOUT_S,
            receipt_timeout_s=RECEIPT_TIMEOUT_S,
        )


def _node_keystore(network: DemoNetwork, node: DemoNode) -> Keystore:
    """The keystore of ``node``'s party in the node's keystores directory."""
    path = _keystore_path(node.home, node.party)
    if not path.exists():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        source = network.directory / TESTNET_KEYSTORES / f"{node.party}{KEYSTORE_SUFFIX}"
        shutil.copy2(source, path)
    return Keystore.open(path, network.passphrase)


def _keystore_path(home: Path, name: str) -> Path:
    return home / KEYSTORES_DIR / f"{name}{KEYSTORE_SUFFIX}"
