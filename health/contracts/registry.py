"""The modules of a health chain, in order, with ``identity`` as the authenticator.

``health_registry()`` is what the composition root (``node.cli.composition``) and the
simulator's health workload build applications from. Genesis state: ``app_state["identity"]``
lists the first identities (the member institutions, at least), ``app_state["governance"]``
the members with their validator keys and any parameters set from the start; every
governance member must be a genesis institution. The key-value module rides along so the
node's generic tools (``bighealth tx kv-set``, the generic workload) work on a health chain
too: any acting identity may write its own keys.

A health chain has no ``accounts`` module: a genesis that lists ``accounts`` is refused (the
health chain's senders are identities, with their keys and proofs).
"""

from __future__ import annotations

from typing import Final

from health.contracts.audit import AuditModule
from health.contracts.care import CareModule
from health.contracts.common import HealthRole
from health.contracts.consent import ConsentModule
from health.contracts.governance import GovernanceModule
from health.contracts.identity import IDENTITY, IdentityModule
from health.contracts.records import RecordsModule
from health.contracts.referral import ReferralModule
from node.app.kv import KV, KvModule
from node.app.module import Module
from node.chain.application import ModuleFactory, ModuleRegistry
from node.chain.genesis import Genesis

HEALTH_MODULES: Final = (
    "identity",
    "governance",
    "consent",
    "records",
    "audit",
    "care",
    "referral",
    "kv",
)
"""The module names of a health chain, in execution order."""


def _identity(genesis: Genesis) -> Module:
    if genesis.accounts:
        raise ValueError(
            "a health chain has no accounts module: list the first identities in "
            'app_state["identity"] instead of genesis accounts'
        )
    return IdentityModule.from_app_state(genesis.app_state_of(IDENTITY))


def _governance(genesis: Genesis) -> Module:
    module = GovernanceModule.from_app_state(genesis.app_state_of("governance"))
    institutions = {
        identity.signing_key
        for identity in IdentityModule.from_app_state(
            genesis.app_state_of(IDENTITY)
        ).genesis_identities
        if identity.role is HealthRole.INSTITUTION
    }
    for member in module.genesis_members:
        if member.institution not in institutions:
            raise ValueError(
                f"governance member {member.institution.hex()} is not a genesis institution"
            )
    _check_validators_are_members(genesis, module)
    return module


def _check_validators_are_members(genesis: Genesis, module: GovernanceModule) -> None:
    """Governance changes validator power member by member, so the genesis validators must
    be exactly the members' validator keys with power, at that power (when any member is
    listed: a chain without governance members keeps its validators as they are)."""
    if not module.genesis_members:
        return
    by_members = {m.validator_key: m.power for m in module.genesis_members if m.power > 0}
    by_genesis = {v.public_key: v.voting_power for v in genesis.validators}
    if by_members != by_genesis:
        raise ValueError(
            "the genesis validators must be the governance members' validator keys at their "
            "power (a member's power is its validator's voting power)"
        )


def _stateless(module: type[Module]) -> ModuleFactory:
    def build(genesis: Genesis) -> Module:
        return module()

    return build


def health_registry() -> ModuleRegistry:
    """Identity (the authenticator), governance, consent, records, audit, care, referral
    and the key-value module."""
    return ModuleRegistry(
        (
            (IDENTITY, _identity),
            ("governance", _governance),
            ("consent", _stateless(ConsentModule)),
            ("records", _stateless(RecordsModule)),
            ("audit", _stateless(AuditModule)),
            ("care", _stateless(CareModule)),
            ("referral", _stateless(ReferralModule)),
            (KV, _stateless(KvModule)),
        ),
        authenticator=IDENTITY,
    )


def is_health_genesis(genesis: Genesis) -> bool:
    """True when ``genesis`` is a health chain's (it names the first identities)."""
    return genesis.app_state_of(IDENTITY) is not None
