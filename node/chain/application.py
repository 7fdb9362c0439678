"""The application a chain core runs, and how a chain's modules are chosen.

``ChainApplication`` is ``node.app.Application`` plus one read: every committed state entry
(``state_entries``), which the core needs once, to persist the genesis state; later blocks
report their own changes (``BlockResult.state_changes``).

``AppFactory`` builds the application for a genesis; ``default_application`` is the chain
this repository ships: accounts (the authenticator), the key-value module and the genesis
module. Every factory must include ``GenesisModule`` (``NodeCore.open`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable

from node.app.accounts import AccountsModule
from node.app.application import AppConfig, Application
from node.app.kv import KvModule
from node.chain.genesis import Genesis, GenesisModule


class ChainApplication(Application):
    """An ``Application`` whose committed entries can be listed (for persisting genesis)."""

    def state_entries(self) -> list[tuple[bytes, bytes]]:
        """Every committed ``(key, value)`` of the latest height, in key order."""
        return list(self._state.iterate(b""))


AppFactory = Callable[[Genesis], ChainApplication]
"""Builds a fresh (uninitialised) application for a genesis document."""


def default_application(genesis: Genesis) -> ChainApplication:
    """Accounts from the genesis, the key-value module and the genesis module."""
    accounts = AccountsModule(genesis.accounts)
    modules = [accounts, KvModule(), GenesisModule(genesis.hash())]
    return ChainApplication(AppConfig(genesis.chain_id), modules, authenticator=accounts)
