"""LevelDBStorage on a real LevelDB in tmp_path: markers, typed open errors, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import plyvel
import pytest

from node.adapters.errors import (
    DatabaseLockedError,
    ForeignDatabaseError,
    IncompatibleFormatError,
    MissingDatabaseError,
    NotADatabaseError,
    OversizeEntryError,
    StorageClosedError,
    StorageCorruptedError,
)
from node.adapters.leveldb_store import (
    CHAIN_ID_KEY,
    FORMAT_KEY,
    MAX_KEY_BYTES,
    LevelDBStorage,
)
from node.ports import Delete, Put, Storage
from tests.adapters.leveldb_crash_child import batch_ops

ROOT = Path(__file__).resolve().parents[2]
CHAIN = "chain-a"
KEYS_PER_BATCH = 200
CRASH_ROUNDS = 3
BATCHES_BEFORE_KILL = 5


def test_a_new_database_is_marked_and_the_markers_stay_out_of_sight(tmp_path: Path) -> None:
    with LevelDBStorage(tmp_path / "db", CHAIN) as store:
        assert isinstance(store, Storage)
        store.put(b"k", b"v")
        assert list(store.iterate_prefix(b"")) == [(b"k", b"v")]
        assert store.get(FORMAT_KEY) is None  # the node's key space does not see the markers
    raw = plyvel.DB(str(tmp_path / "db"))
    try:
        assert raw.get(FORMAT_KEY) == b"bighealth-leveldb/1"
        assert raw.get(CHAIN_ID_KEY) == CHAIN.encode()
    finally:
        raw.close()


def test_data_survives_a_reopen(tmp_path: Path) -> None:
    with LevelDBStorage(tmp_path / "db", CHAIN) as store:
        store.write_batch([Put(b"a", b"1"), Put(b"b", b"2"), Delete(b"a")], sync=True)
        assert store.stats.batches == 1 and store.stats.syncs == 1 and store.stats.writes == 3
    with LevelDBStorage(tmp_path / "db", CHAIN, create_if_missing=False) as store:
        assert store.get(b"a") is None and store.get(b"b") == b"2"


def test_a_database_of_another_chain_is_refused(tmp_path: Path) -> None:
    LevelDBStorage(tmp_path / "db", CHAIN).close()
    with pytest.raises(ForeignDatabaseError, match="belongs to chain 'chain-a'"):
        LevelDBStorage(tmp_path / "db", "chain-b")


def test_a_second_open_in_this_process_gets_the_lock_error(tmp_path: Path) -> None:
    with LevelDBStorage(tmp_path / "db", CHAIN), pytest.raises(DatabaseLockedError):
        LevelDBStorage(tmp_path / "db", CHAIN)


def test_an_open_while_another_process_holds_the_lock_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.adapters.leveldb_crash_child",
            str(tmp_path / "db"),
            CHAIN,
            "1",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(DatabaseLockedError, match="in use"):
            LevelDBStorage(tmp_path / "db", CHAIN)
    finally:
        holder.kill()
        holder.wait()
    LevelDBStorage(tmp_path / "db", CHAIN).close()  # the lock died with its holder


def test_directories_that_are_not_our_database_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "notes.txt").write_text("not a database")
    with pytest.raises(NotADatabaseError, match=r"notes\.txt"):
        LevelDBStorage(garbage, CHAIN)
    assert sorted(p.name for p in garbage.iterdir()) == ["notes.txt"]  # nothing created there
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADatabaseError, match="not a directory"):
        LevelDBStorage(tmp_path / "file", CHAIN)
    with pytest.raises(MissingDatabaseError):
        LevelDBStorage(tmp_path / "absent", CHAIN, create_if_missing=False)


def test_a_foreign_leveldb_and_a_future_format_are_refused(tmp_path: Path) -> None:
    raw = plyvel.DB(str(tmp_path / "foreign"), create_if_missing=True)
    raw.put(b"somebody", b"else's data")
    raw.close()
    with pytest.raises(ForeignDatabaseError, match="not written by us"):
        LevelDBStorage(tmp_path / "foreign", CHAIN)
    LevelDBStorage(tmp_path / "future", CHAIN).close()
    raw = plyvel.DB(str(tmp_path / "future"))
    raw.put(FORMAT_KEY, b"bighealth-leveldb/2")
    raw.close()
    with pytest.raises(IncompatibleFormatError, match="format 2"):
        LevelDBStorage(tmp_path / "future", CHAIN)


def test_damaged_files_give_the_corruption_error(tmp_path: Path) -> None:
    with LevelDBStorage(tmp_path / "db", CHAIN) as store:
        store.put(b"k", b"v" * 1000)
    manifest = next((tmp_path / "db").glob("MANIFEST-*"))
    damaged = bytearray(manifest.read_bytes())
    damaged[10:30] = b"\xff" * 20
    manifest.write_bytes(bytes(damaged))
    with pytest.raises(StorageCorruptedError, match="checksum"):
        LevelDBStorage(tmp_path / "db", CHAIN)
    (tmp_path / "db" / "CURRENT").write_text("MANIFEST-999999\n")
    with pytest.raises(StorageCorruptedError, match="non-existent"):
        LevelDBStorage(tmp_path / "db", CHAIN)


def test_use_after_close_and_bad_arguments_raise_typed_errors(tmp_path: Path) -> None:
    store = LevelDBStorage(tmp_path / "db", CHAIN)
    store.put(b"a", b"1")
    entries = store.iterate_prefix(b"")
    with pytest.raises(TypeError):
        store.put("a", b"1")  # type: ignore[arg-type]
    with pytest.raises(OversizeEntryError):
        store.put(b"k" * (MAX_KEY_BYTES + 1), b"")
    with pytest.raises(TypeError):
        store.write_batch([Put(b"ok", b"1"), "not an op"])  # type: ignore[list-item]
    assert store.get(b"ok") is None  # the batch was refused whole
    store.close()
    store.close()  # idempotent
    assert store.closed
    actions: list[Callable[[], object]] = [
        lambda: store.get(b"a"),
        lambda: store.put(b"a", b"2"),
        store.sync,
    ]
    for action in actions:
        with pytest.raises(StorageClosedError):
            action()
    with pytest.raises(StorageClosedError):
        list(entries)


def test_synced_batches_are_all_or_nothing_after_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "db"
    for _ in range(CRASH_ROUNDS):
        acknowledged = _run_child_until_killed(path)
        with LevelDBStorage(path, CHAIN) as store:
            batches = _batches_present(store)
            # Every acknowledged batch is there; at most one more (being written when killed).
            assert set(range(acknowledged + 1)) <= batches
            assert batches == set(range(len(batches)))
            for n in batches:
                keys = [k for k, _ in store.iterate_prefix(b"batch/%08d/" % n)]
                assert len(keys) == KEYS_PER_BATCH, f"batch {n} is torn"
            assert store.get(b"last") == b"%d" % max(batches)
            for op in batch_ops(max(batches), KEYS_PER_BATCH)[:3]:
                assert store.get(op.key) == op.value
            store.write_batch([Delete(k) for k, _ in store.iterate_prefix(b"batch/")], sync=True)


def _run_child_until_killed(path: Path) -> int:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.adapters.leveldb_crash_child",
            str(path),
            CHAIN,
            str(KEYS_PER_BATCH),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "open\n"
        acknowledged = -1
        while acknowledged < BATCHES_BEFORE_KILL:
            acknowledged = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)  # while it writes batch acknowledged + 1
    finally:
        child.kill()
        child.wait()
    return acknowledged


def _batches_present(store: LevelDBStorage) -> set[int]:
    return {int(key.split(b"/")[1]) for key, _ in store.iterate_prefix(b"batch/")}
