"""The ``node.ports.Storage`` contract (``node.testing.check_storage_conformance``), checked on
every implementation we ship: ``MemoryStorage`` (the fake) and ``LevelDBStorage``
(production), so the fake cannot drift from what LevelDB does."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.adapters.leveldb_store import LevelDBStorage
from node.ports import Delete, Put, Storage, WriteOp
from node.testing import (
    MemoryStorageHarness,
    StorageHarness,
    check_against_model,
    check_storage_conformance,
)

CHAIN = "conformance"


class LevelDBHarness:
    """New databases in a temporary directory; reopening closes and opens one again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.opened = 0

    def open(self) -> Storage:
        self.opened += 1
        return LevelDBStorage(self.directory / f"db-{self.opened}", CHAIN)

    def reopen(self, store: Storage) -> Storage:
        assert isinstance(store, LevelDBStorage)
        store.close()
        return LevelDBStorage(store.path, CHAIN, create_if_missing=False)

    def close(self, store: Storage) -> None:
        assert isinstance(store, LevelDBStorage)
        store.close()


@contextmanager
def memory_harness() -> Iterator[StorageHarness]:
    yield MemoryStorageHarness()


@contextmanager
def leveldb_harness() -> Iterator[StorageHarness]:
    with tempfile.TemporaryDirectory() as directory:
        yield LevelDBHarness(Path(directory))


HARNESSES: dict[str, Callable[[], AbstractContextManager[StorageHarness]]] = {
    "memory": memory_harness,
    "leveldb": leveldb_harness,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[StorageHarness]:
    with HARNESSES[request.param]() as made:
        yield made


def test_the_storage_conforms(harness: StorageHarness) -> None:
    passed = check_storage_conformance(harness, seed="adapters")
    assert len(passed) == 7 and "synced writes survive a restart" in passed


ops = st.lists(
    st.one_of(
        st.builds(Put, st.binary(max_size=4), st.binary(max_size=8)),
        st.builds(Delete, st.binary(max_size=4)),
    ),
    max_size=8,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ops, max_size=6), st.binary(max_size=2))
def test_any_history_matches_a_sorted_dict(
    harness: StorageHarness, batches: list[list[WriteOp]], prefix: bytes
) -> None:
    store = harness.open()
    try:
        check_against_model(store, batches, prefix)
    finally:
        harness.close(store)
