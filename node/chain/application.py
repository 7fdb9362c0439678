"""The application a chain core runs, and how a chain's modules are chosen.

``AppFactory`` builds the (uninitialised) application for a genesis. A ``ModuleRegistry``
is the usual way to make one: an ordered list of ``(name, ModuleFactory)`` pairs, and the
name of the module that is the chain's ``Authenticator`` (who may send, and their nonces)::

    registry = default_registry().with_module("audit", lambda genesis: AuditModule())
    core = NodeCore.open(storage, signer, genesis, app_factory=registry.build)

``build(genesis)`` calls every factory with the genesis (a module reads its own genesis state
with ``genesis.app_state_of(name)``), always adds the ``GenesisModule`` (``NodeCore.open``
checks it is there), and refuses a genesis whose ``app_state`` names a module the registry
lacks (``InvalidGenesisError``): a state no module reads is a mistake in the document, not
something to ignore.

``default_registry()`` is the chain this repository ships: accounts (the authenticator) and
the key-value module; ``default_application`` builds it. The composition root (the command
line, ``node.cli.composition``) decides which registry a node runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from node.app.accounts import ACCOUNTS, AccountsModule
from node.app.application import AppConfig, Application
from node.app.kv import KV, KvModule
from node.app.module import Authenticator, Module, check_module_name
from node.chain.errors import InvalidGenesisError
from node.chain.genesis import GENESIS_MODULE, Genesis, GenesisModule

AppFactory = Callable[[Genesis], Application]
"""Builds a fresh (uninitialised) application for a genesis document."""
ModuleFactory = Callable[[Genesis], Module]
"""Builds one module for a genesis document (raises ``InvalidGenesisError`` or
``ValueError`` for a genesis state it cannot take)."""
MAX_REGISTERED_MODULES: Final = 64
"""Most modules one registry holds."""
_AUTHENTICATOR_METHODS: Final = ("authenticate", "next_nonce", "consume_nonce")


@dataclass(frozen=True, slots=True)
class ModuleRegistry:
    """The modules of a chain, in order, and which of them authenticates senders.

    Construction checks the names (valid, unreserved, unique, not ``"genesis"``, which
    ``build`` adds itself) and that ``authenticator`` is one of them (``ValueError``).
    """

    modules: tuple[tuple[str, ModuleFactory], ...]
    authenticator: str

    def __post_init__(self) -> None:
        if type(self.modules) is not tuple or len(self.modules) > MAX_REGISTERED_MODULES:
            raise ValueError(f"modules must be a tuple of at most {MAX_REGISTERED_MODULES} pairs")
        names: set[str] = set()
        for entry in self.modules:
            if type(entry) is not tuple or len(entry) != 2 or not callable(entry[1]):
                raise ValueError("a registry entry is a (name, module factory) pair")
            name = check_module_name(entry[0])
            if name == GENESIS_MODULE:
                raise ValueError(f"{GENESIS_MODULE!r} is added by build(): do not register it")
            if name in names:
                raise ValueError(f"module {name!r} is registered twice")
            names.add(name)
        if self.authenticator not in names:
            raise ValueError(f"the authenticator {self.authenticator!r} is not registered")

    def with_module(self, name: str, factory: ModuleFactory) -> ModuleRegistry:
        """This registry with ``factory`` added last under ``name`` (``ValueError`` if the
        name is taken or invalid)."""
        return ModuleRegistry((*self.modules, (name, factory)), self.authenticator)

    def with_authenticator(self, name: str) -> ModuleRegistry:
        """This registry with the registered module ``name`` as the authenticator."""
        return ModuleRegistry(self.modules, name)

    def names(self) -> tuple[str, ...]:
        """The names of the modules ``build`` makes, in order (``"genesis"`` last)."""
        return (*(name for name, _ in self.modules), GENESIS_MODULE)

    def build(self, genesis: Genesis) -> Application:
        """The application of ``genesis``: every registered module, then the genesis module
        (an ``AppFactory``). Raises ``InvalidGenesisError`` when the genesis' ``app_state``
        names a module not registered here or a module refuses its genesis state, and
        ``TypeError`` when a factory breaks its contract (not a ``Module``, another name,
        an authenticator without the ``Authenticator`` methods)."""
        registered = {name for name, _ in self.modules}
        unknown = [name for name in genesis.app_state_modules() if name not in registered]
        if unknown:
            raise InvalidGenesisError(
                f"the genesis has app_state for {', '.join(unknown)}, which this node does not "
                f"run (its modules: {', '.join(self.names())})"
            )
        modules = [_build_module(name, factory, genesis) for name, factory in self.modules]
        authenticator = next(m for m in modules if m.name == self.authenticator)
        modules.append(GenesisModule(genesis.hash()))
        return Application(
            AppConfig(genesis.chain_id), modules, authenticator=_as_authenticator(authenticator)
        )


def _build_module(name: str, factory: ModuleFactory, genesis: Genesis) -> Module:
    try:
        module = factory(genesis)
    except InvalidGenesisError:
        raise
    except ValueError as exc:
        raise InvalidGenesisError(f"module {name}: {exc}") from exc
    if not isinstance(module, Module):
        raise TypeError(f"the factory of {name!r} made a {type(module).__name__}, not a Module")
    if module.name != name:
        raise TypeError(f"the factory of {name!r} made a module named {module.name!r}")
    return module


def _as_authenticator(module: Module) -> Authenticator:
    missing = [m for m in _AUTHENTICATOR_METHODS if not callable(getattr(module, m, None))]
    if missing:
        raise TypeError(
            f"the authenticator {module.name!r} lacks {', '.join(missing)} (see "
            "node.app.module.Authenticator)"
        )
    return cast(Authenticator, module)


def _accounts(genesis: Genesis) -> Module:
    return AccountsModule(genesis.accounts)


def _kv(genesis: Genesis) -> Module:
    return KvModule()


def default_registry() -> ModuleRegistry:
    """Accounts from the genesis (the authenticator) and the key-value module."""
    return ModuleRegistry(((ACCOUNTS, _accounts), (KV, _kv)), authenticator=ACCOUNTS)


def default_application(genesis: Genesis) -> Application:
    """The application of ``default_registry()`` for ``genesis`` (an ``AppFactory``)."""
    return default_registry().build(genesis)
