"""The module registry: what it builds, what it refuses, and a chain run with other modules
and genesis state (``Cluster(app_factory=..., app_state=...)``)."""

from __future__ import annotations

from typing import Any

import pytest

from node.app.accounts import GenesisAccount, Role
from node.app.application import Application
from node.app.errors import TxFailed
from node.app.module import ExecContext, Module
from node.chain import InvalidGenesisError, ModuleRegistry, default_application, default_registry
from node.chain.app_state import encode_app_states
from node.chain.genesis import GENESIS_HASH_KEY, Genesis
from node.testing import key_pair
from node.testing.cluster import Cluster
from node.types import ResultCode, Transaction
from tests.core.helpers import GENESIS


class NotesModule(Module):
    """Writes its genesis state (``{"notes": {name: text}}``) under ``notes/<name>``."""

    name = "notes"
    actions = frozenset({"add"})

    def __init__(self, state: Any) -> None:
        if state is not None and not isinstance(state, dict):
            raise ValueError("the notes state is an object")
        self.notes: dict[str, str] = {} if state is None else dict(state.get("notes", {}))

    def init_genesis(self, ctx: ExecContext) -> None:
        for name, text in sorted(self.notes.items()):
            ctx.view.set(b"notes/" + name.encode(), text.encode())

    def deliver_tx(self, ctx: ExecContext, tx: Transaction) -> None:
        raise TxFailed(ResultCode.UNKNOWN_KIND, "no")


def notes(genesis: Genesis) -> Module:
    return NotesModule(genesis.app_state_of("notes"))


def genesis_with(states: dict[str, Any]) -> Genesis:
    return Genesis(
        GENESIS.chain_id,
        GENESIS.genesis_time_ms,
        GENESIS.validators,
        GENESIS.accounts,
        GENESIS.params,
        encode_app_states(states),
    )


def test_the_default_registry_builds_the_default_chain() -> None:
    registry = default_registry()
    assert registry.names() == ("accounts", "kv", "genesis")
    assert registry.authenticator == "accounts"
    app = default_application(GENESIS)
    assert isinstance(app, Application)
    app.init_chain(GENESIS.genesis_time_ms)
    assert app.get(GENESIS_HASH_KEY) == GENESIS.hash()
    assert app.module("kv").name == "kv"
    assert app.state_root == registry.build(GENESIS).init_chain(GENESIS.genesis_time_ms)


def test_a_module_added_reads_its_genesis_state() -> None:
    registry = default_registry().with_module("notes", notes)
    assert registry.names() == ("accounts", "kv", "notes", "genesis")
    genesis = genesis_with({"notes": {"notes": {"hello": "world"}}})
    app = registry.build(genesis)
    app.init_chain(genesis.genesis_time_ms)
    assert app.get(b"notes/hello") == b"world"
    assert default_registry().names() == ("accounts", "kv", "genesis")  # unchanged


def test_a_genesis_state_for_a_module_not_run_is_refused() -> None:
    genesis = genesis_with({"care": {"plans": []}})
    with pytest.raises(InvalidGenesisError, match="app_state for care"):
        default_registry().build(genesis)
    with pytest.raises(InvalidGenesisError, match="app_state for genesis"):
        default_registry().build(genesis_with({"genesis": 1}))


def test_a_module_refusing_its_genesis_state_is_a_genesis_error() -> None:
    with pytest.raises(InvalidGenesisError, match="module notes: the notes state is an object"):
        default_registry().with_module("notes", notes).build(genesis_with({"notes": [1]}))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: default_registry().with_module("kv", notes), "registered twice"),
        (lambda: default_registry().with_module("genesis", notes), "added by build"),
        (lambda: default_registry().with_module("Notes", notes), "must match"),
        (lambda: default_registry().with_module("system", notes), "reserved"),
        (lambda: default_registry().with_authenticator("notes"), "not registered"),
        (lambda: ModuleRegistry((("kv", "not callable"),), "kv"), "pair"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_registry_is_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_factories_that_break_their_contract_are_bugs() -> None:
    with pytest.raises(TypeError, match="lacks authenticate"):
        default_registry().with_module("notes", notes).with_authenticator("notes").build(GENESIS)
    misnamed = default_registry().with_module("other", notes)
    with pytest.raises(TypeError, match="named 'notes'"):
        misnamed.build(GENESIS)
    not_a_module = default_registry().with_module("notes", lambda genesis: object())  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="not a Module"):
        not_a_module.build(GENESIS)


def test_a_cluster_runs_other_modules_with_genesis_state_and_accounts() -> None:
    institution = key_pair("only-institution")
    cluster = Cluster(
        validators=2,
        seed=5,
        app_factory=default_registry().with_module("notes", notes).build,
        app_state={"notes": {"notes": {"a": "b"}}},
        genesis_accounts=[GenesisAccount(institution.public_key, Role.INSTITUTION)],
    )
    cluster.run_until(height=2)
    assert cluster.violations == []
    core = cluster.core("v0")
    assert core.get_state(b"notes/a") == b"b"
    assert cluster.genesis.accounts == (GenesisAccount(institution.public_key, Role.INSTITUTION),)
    assert cluster.genesis.app_state_of("notes") == {"notes": {"a": "b"}}
    default = Cluster(validators=1, clients=3)
    assert len(default.genesis.accounts) == 3 and default.genesis.app_state == ()
