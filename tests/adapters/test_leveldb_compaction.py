"""Compaction of a key range: deleted values leave LevelDB's files."""

from __future__ import annotations

from pathlib import Path

from node.adapters.leveldb_store import LevelDBStorage
from node.ports import Delete, Put

SECRET = b"glucose 142 mg/dL at 07:30"


def _files_contain(path: Path, needle: bytes) -> bool:
    return any(needle in file.read_bytes() for file in path.iterdir() if file.is_file())


def test_a_compacted_range_no_longer_holds_deleted_values(tmp_path: Path) -> None:
    store = LevelDBStorage(tmp_path / "db", "compaction-chain")
    # incompressible padding around the secret keeps it visible in the raw files
    value = bytes(range(256)) * 8 + SECRET + bytes(range(256)) * 8
    store.write_batch([Put(b"v/blob/%d" % i, value) for i in range(200)], sync=True)
    store.compact_range(b"v/", b"v0")  # into sorted tables, as a long-running vault would be
    assert _files_contain(tmp_path / "db", SECRET)
    store.write_batch([Delete(b"v/blob/%d" % i) for i in range(200)], sync=True)
    store.compact_range(b"v/blob/", b"v/blob0")
    assert store.get(b"v/blob/7") is None
    assert not _files_contain(tmp_path / "db", SECRET)
    store.close()
