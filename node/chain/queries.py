"""Read-only answers for clients: modules' state (with proofs), committed transactions and
the event feed, over a node's application and storage (``NodeCore.queries``).

- ``module_state(module, path, height)``: the key the module's ``query_key(path)`` names,
  its value at ``height`` (default: the last committed) with the Merkle proof against that
  height's state root, and the value as the module renders it;
- ``module_entries(module, path, limit)``: up to ``limit`` entries of the last committed
  height under the prefix ``query_key(path)`` names (the module's whole namespace when
  ``path`` is None), rendered, without proofs — read from the stored copy of the state
  (``app/`` in ``node.chain.store``), which is the state of the last committed height;
- ``committed_tx(tx_hash)``: the receipt of a committed transaction and where it is;
- ``events(after, kind_prefix, limit)``: a page of the event feed (``node.chain.event_feed``).

Errors: ``UnknownModuleError`` (no such module here), ``BadQueryError`` (a path the module
does not understand, a bad limit or kind), ``QueryError`` (a height not kept). Callers run
these where the node's core runs (its owner task): they read the application and storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from node.app.application import Application
from node.app.module import JsonValue, Module
from node.chain import store
from node.chain.errors import ChainError, QueryError
from node.chain.event_feed import EventCursor, EventPage, read_page
from node.chain.store import BlockResults
from node.codec import MAX_STATE_KEY_BYTES
from node.ports import Storage
from node.types import StateProof, TxReceipt

MAX_ENTRIES_PER_PAGE: Final = 1_000
"""Largest ``limit`` of ``module_entries``."""


class UnknownModuleError(QueryError):
    """The node runs no module of that name."""


class BadQueryError(ChainError, ValueError):
    """A query this node cannot answer as asked (a path the module does not understand)."""


@dataclass(frozen=True, slots=True)
class ModuleState:
    """One key of a module's state with its proof, and its value as the module renders it
    (None when absent)."""

    module: str
    path: str
    proof: StateProof
    rendered: JsonValue


@dataclass(frozen=True, slots=True)
class ModuleEntry:
    """One stored entry under a listed prefix."""

    key: bytes
    value: bytes
    rendered: JsonValue


@dataclass(frozen=True, slots=True)
class ModuleEntries:
    """The entries of a module under ``prefix`` at ``height`` (``truncated``: there are
    more after the last one)."""

    module: str
    path: str | None
    prefix: bytes
    height: int
    state_root: bytes
    entries: tuple[ModuleEntry, ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class CommittedTx:
    """A committed transaction's receipt, with its block's height and time and its position."""

    height: int
    index: int
    time_ms: int
    receipt: TxReceipt


class ChainQueries:
    """The read-only queries of one node (see the module docstring)."""

    def __init__(self, app: Application, storage: Storage) -> None:
        self._app = app
        self._storage = storage

    def module_state(self, module: str, path: str, height: int | None = None) -> ModuleState:
        """See the module docstring."""
        found = self._module(module)
        key = _query_key(found, path)
        try:
            proof = self._app.query(key, height)
        except KeyError as exc:
            raise QueryError(
                f"the state of height {height} is not kept here (the latest is "
                f"{self._app.height}; only the last {self._app.config.state_retention_heights} "
                "before it can be proven)"
            ) from exc
        rendered = None if proof.value is None else found.render(key, proof.value)
        return ModuleState(module, path, proof, rendered)

    def module_entries(self, module: str, path: str | None, limit: int) -> ModuleEntries:
        """See the module docstring."""
        if type(limit) is not int or not 1 <= limit <= MAX_ENTRIES_PER_PAGE:
            raise BadQueryError(f"limit must be in 1..{MAX_ENTRIES_PER_PAGE}")
        found = self._module(module)
        prefix = module.encode() + b"/" if path is None else _query_key(found, path)
        page = store.app_entries_page(self._storage, prefix, limit + 1)
        entries = tuple(ModuleEntry(k, v, found.render(k, v)) for k, v in page[:limit])
        return ModuleEntries(
            module=module,
            path=path,
            prefix=prefix,
            height=self._app.height,
            state_root=self._app.state_root,
            entries=entries,
            truncated=len(page) > limit,
        )

    def state(self) -> CommittedState:
        """A reader of the last committed state (for the node's extensions)."""
        return CommittedState(self._app, self._storage)

    def committed_tx(self, tx_hash: bytes) -> CommittedTx | None:
        """See the module docstring (None: not committed on this node's chain)."""
        location = store.read_tx_location(self._storage, tx_hash)
        if location is None:
            return None
        results = store.read_results(self._storage, location.height)
        if results is None or location.index >= len(results.receipts):
            return None
        receipt = results.receipts[location.index]
        return CommittedTx(location.height, location.index, results.time_ms, receipt)

    def events(self, after: EventCursor, kind_prefix: str = "", limit: int = 100) -> EventPage:
        """See the module docstring."""
        try:
            return read_page(
                self._sized_results, self._app.height, after=after, kind_prefix=kind_prefix,
                limit=limit,
            )  # fmt: skip
        except ValueError as exc:
            raise BadQueryError(str(exc)) from exc

    def _sized_results(self, height: int) -> tuple[BlockResults, int] | None:
        data = self._storage.get(store.results_key(height))
        return None if data is None else (store.decode_results(data, height), len(data))

    def _module(self, name: str) -> Module:
        try:
            return self._app.module(name)
        except KeyError:
            raise UnknownModuleError(f"this node runs no module {name[:40]!r}") from None


class CommittedState:
    """The last committed application state: ``get`` from the application, ``iterate``
    from the stored copy (the same height: both are written by one commit). Valid until the
    next event the core handles."""

    def __init__(self, app: Application, storage: Storage) -> None:
        self._app = app
        self._storage = storage

    def get(self, key: bytes) -> bytes | None:
        """The committed value of ``key``, or None."""
        return self._app.get(key)

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` (at most ``MAX_ENTRIES_PER_PAGE``) entries under ``prefix``, in
        key order."""
        if type(limit) is not int or not 1 <= limit <= MAX_ENTRIES_PER_PAGE:
            raise BadQueryError(f"limit must be in 1..{MAX_ENTRIES_PER_PAGE}")
        return store.app_entries_page(self._storage, prefix, limit)


def _query_key(module: Module, path: str) -> bytes:
    """The key ``module`` names by ``path`` (``BadQueryError`` if it names none)."""
    try:
        key = module.query_key(path)
    except ValueError as exc:
        raise BadQueryError(str(exc)) from exc
    if type(key) is not bytes:
        raise TypeError(f"{module.name}.query_key returned {type(key).__name__}, not bytes")
    if len(key) > MAX_STATE_KEY_BYTES:
        raise BadQueryError(f"the path names a key over {MAX_STATE_KEY_BYTES} bytes")
    return key
