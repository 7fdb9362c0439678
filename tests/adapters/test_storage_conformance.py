"""The ``node.ports.Storage`` contract, checked on every implementation we ship.

``node.testing`` has no storage conformance check, so it lives here: the same tests run on
``MemoryStorage`` (the fake) and ``LevelDBStorage`` (production), so the fake cannot drift
from what LevelDB does.
"""

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
from node.testing import MemoryStorage

StoreFactory = Callable[[], AbstractContextManager[Storage]]


@contextmanager
def memory_store() -> Iterator[Storage]:
    yield MemoryStorage()


@contextmanager
def leveldb_store() -> Iterator[Storage]:
    with (
        tempfile.TemporaryDirectory() as directory,
        LevelDBStorage(Path(directory) / "db", "conformance") as store,
    ):
        yield store


FACTORIES: dict[str, StoreFactory] = {"memory": memory_store, "leveldb": leveldb_store}


@pytest.fixture(params=sorted(FACTORIES))
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    return FACTORIES[request.param]


def test_it_is_a_storage(make_store: StoreFactory) -> None:
    with make_store() as store:
        assert isinstance(store, Storage)


def test_get_put_delete(make_store: StoreFactory) -> None:
    with make_store() as store:
        assert store.get(b"k") is None
        store.put(b"k", b"v1")
        store.put(b"k", b"v2")
        assert store.get(b"k") == b"v2"
        store.put(b"empty", b"")
        assert store.get(b"empty") == b""
        store.delete(b"k")
        store.delete(b"never-there")
        assert store.get(b"k") is None


def test_batch_ops_apply_in_order(make_store: StoreFactory) -> None:
    with make_store() as store:
        store.write_batch([Put(b"a", b"1"), Delete(b"a"), Delete(b"b"), Put(b"b", b"2")])
        assert store.get(b"a") is None and store.get(b"b") == b"2"
        store.write_batch([], sync=True)
        store.sync()


def test_a_batch_with_a_bad_op_writes_nothing(
    make_store: StoreFactory,
) -> None:
    with make_store() as store:
        with pytest.raises(TypeError):
            store.write_batch([Put(b"a", b"1"), Put(b"b", "text")])  # type: ignore[arg-type]
        assert store.get(b"a") is None


def test_prefix_iteration_is_ordered_bounded_and_a_snapshot(
    make_store: StoreFactory,
) -> None:
    with make_store() as store:
        keys = [b"a", b"a\x00", b"a\xff", b"ab", b"b", b"\xff", b"\xff\xff", b"aa"]
        for key in keys:
            store.put(key, key.hex().encode())
        snapshot = store.iterate_prefix(b"a")
        store.put(b"a1", b"later")
        store.delete(b"ab")
        assert [k for k, _ in snapshot] == [b"a", b"a\x00", b"aa", b"ab", b"a\xff"]
        assert [k for k, _ in store.iterate_prefix(b"\xff")] == [b"\xff", b"\xff\xff"]
        assert list(store.iterate_prefix(b"zz")) == []
        assert [k for k, _ in store.iterate_prefix(b"")][:2] == [b"a", b"a\x00"]
        assert dict(store.iterate_prefix(b"a1")) == {b"a1": b"later"}


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
    make_store: StoreFactory, batches: list[list[WriteOp]], prefix: bytes
) -> None:
    model: dict[bytes, bytes] = {}
    with make_store() as store:
        for batch in batches:
            store.write_batch(batch)
            for op in batch:
                if isinstance(op, Put):
                    model[op.key] = op.value
                else:
                    model.pop(op.key, None)
        expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        assert list(store.iterate_prefix(prefix)) == expected
        assert all(store.get(k) == v for k, v in model.items())
