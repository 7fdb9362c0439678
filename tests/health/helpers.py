"""A health chain in memory: every health contract in one ``Application``, driven block by
block in block time, with named parties whose keys are derived from their names."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nacl.public import PrivateKey

from crypto_core.signatures import Ed25519KeyPair, sha256
from health.contracts.common import HealthRole
from health.contracts.identity import GenesisIdentity, IdentityModule, register_payload
from node.app import AppConfig, Application, BlockResult, KvModule, Module
from node.testing import TxFactory, key_pair
from node.types import Event, ResultCode, TxReceipt
from tests.node.helpers import GENESIS_TIME_MS, Chain

CHAIN = "bh-test"
"""The chain id (shared with tests.node.helpers' block builder)."""


@dataclass(frozen=True)
class Party:
    """Someone on the health chain: a signing key and an X25519 encryption key."""

    name: str
    signer: Ed25519KeyPair
    encryption: PrivateKey

    @property
    def id(self) -> bytes:
        """The identity id (the signing key registered first)."""
        return self.signer.public_key

    @property
    def encryption_private(self) -> bytes:
        """The X25519 private key's bytes."""
        return bytes(self.encryption)


def party(name: str) -> Party:
    """The party ``name`` (same name, same keys, in every test)."""
    return Party(name, key_pair(name), PrivateKey(sha256(f"x25519/{name}".encode())))


def _optional_modules(
    members: Sequence[tuple[Party, Ed25519KeyPair]], params: Mapping[str, int]
) -> list[Module]:
    """The contracts other than identity, those that exist yet (built in parallel)."""
    modules: list[Module] = []
    try:
        governance = importlib.import_module("health.contracts.governance")
        genesis = [
            governance.GenesisMember(inst.id, validator.public_key, 10, 1)
            for inst, validator in members
        ]
        modules.append(governance.GovernanceModule(genesis, dict(params)))
    except (ModuleNotFoundError, AttributeError):
        pass
    for name, cls in (
        ("consent", "ConsentModule"),
        ("records", "RecordsModule"),
        ("audit", "AuditModule"),
        ("care", "CareModule"),
        ("referral", "ReferralModule"),
    ):
        with contextlib.suppress(ModuleNotFoundError, AttributeError):
            modules.append(getattr(importlib.import_module(f"health.contracts.{name}"), cls)())
    return modules


@dataclass
class HealthChain:
    """Every health contract over one in-memory application (see the module docstring).

    ``members``: the genesis institutions (``hospital-0``..), governance members whose
    validators are ``validators[i]``."""

    institutions: int = 4
    params: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = [party(f"hospital-{i}") for i in range(self.institutions)]
        self.validators = [key_pair(f"validator-{i}") for i in range(self.institutions)]
        identity = IdentityModule(
            [
                GenesisIdentity(
                    HealthRole.INSTITUTION,
                    "hospital",
                    f"Hospital {i}",
                    member.id,
                    bytes(member.encryption.public_key),
                )
                for i, member in enumerate(self.members)
            ]
        )
        modules: list[Module] = [
            identity,
            *_optional_modules(list(zip(self.members, self.validators, strict=True)), self.params),
            KvModule(),
        ]
        self.app = Application(AppConfig(CHAIN), modules, authenticator=identity)
        self.app.init_chain(GENESIS_TIME_MS)
        self.chain = Chain(self.app)
        self.factory = TxFactory(CHAIN)

    @property
    def time_ms(self) -> int:
        """The time of the last block."""
        return self.chain.time_ms

    def tx(self, sender: Party, kind: str, payload: bytes = b"") -> bytes:
        """A transaction signed by ``sender``'s current key (nonces counted here)."""
        return self.factory.encoded(sender.signer, kind, payload)

    def run(self, *txs: bytes, time_ms: int | None = None) -> BlockResult:
        """One block with ``txs`` (1 s after the last unless ``time_ms``)."""
        return self.chain.run(list(txs), time_ms=time_ms)

    def advance(self, ms: int) -> BlockResult:
        """An empty block ``ms`` after the last (due work runs)."""
        return self.run(time_ms=self.time_ms + ms)

    def receipt(self, sender: Party, kind: str, payload: bytes = b"") -> TxReceipt:
        """The receipt of one transaction in its own block."""
        return self.run(self.tx(sender, kind, payload)).receipts[0]

    def ok(self, sender: Party, kind: str, payload: bytes = b"") -> TxReceipt:
        """Run one transaction; it must succeed."""
        receipt = self.receipt(sender, kind, payload)
        assert receipt.code is ResultCode.OK, f"{kind}: {receipt.code.name} {receipt.log}"
        return receipt

    def fails(self, sender: Party, kind: str, payload: bytes, code: ResultCode) -> TxReceipt:
        """Run one transaction; it must fail with ``code``."""
        receipt = self.receipt(sender, kind, payload)
        assert receipt.code is code, f"{kind}: {receipt.code.name} {receipt.log}"
        return receipt

    def register(
        self, registrar: Party, name: str, role: HealthRole, kind: str = "", label: str = ""
    ) -> Party:
        """Register (or pair) the party ``name`` by ``registrar``; returns it."""
        new = party(name)
        payload = register_payload(
            new.signer,
            new.encryption_private,
            chain_id=CHAIN,
            registrar=registrar.id,
            role=role,
            kind=kind,
            label=label,
        )
        self.ok(registrar, "identity.register", payload)
        return new

    def get(self, key: bytes) -> bytes | None:
        """A committed state value."""
        return self.app.get(key)

    @staticmethod
    def events(result: BlockResult | TxReceipt, prefix: str = "") -> list[Event]:
        """The events of a block (block events and every receipt's) or of one receipt."""
        if isinstance(result, TxReceipt):
            found = list(result.events)
        else:
            found = [*result.block_events, *(e for r in result.receipts for e in r.events)]
        return [event for event in found if event.name.startswith(prefix)]


def attributes(event: Event) -> dict[str, str]:
    """An event's attributes as a dict."""
    return {attribute.key: attribute.value for attribute in event.attributes}
