"""The application a chain core runs, and how a chain's modules are chosen.

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
    """An ``Application``, under the name factories written for ``NodeCore`` already return.

    ``Application`` itself now lists its committed entries (``state_entries``), which is all
    the chain core needs beyond the application contract; any ``Application`` will do.
    """


AppFactory = Callable[[Genesis], Application]
"""Builds a fresh (uninitialised) application for a genesis document."""


def default_application(genesis: Genesis) -> ChainApplication:
    """Accounts from the genesis, the key-value module and the genesis module."""
    accounts = AccountsModule(genesis.accounts)
    modules = [accounts, KvModule(), GenesisModule(genesis.hash())]
    return ChainApplication(AppConfig(genesis.chain_id), modules, authenticator=accounts)
