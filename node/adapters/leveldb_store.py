"""``LevelDBStorage``: the ``node.ports.Storage`` port on LevelDB (through plyvel).

The only module that imports plyvel. Layout inside the database:

- ``m/format`` -> ``bighealth-leveldb/<version>`` and ``m/chain_id`` -> the chain id: the
  markers, written (synced) when the database is created and checked on every open, so a
  database of another chain, another program or a future format is refused with a typed error
  instead of being read as ours and damaged;
- ``d`` + key -> value: the node's data. The prefix keeps the markers out of every key the
  node can write or iterate.

Durability follows the port: a write is visible at once and survives a crash once ``sync()``
returned or if it was written with ``write_batch(..., sync=True)``. A batch is one LevelDB
``WriteBatch``: all of it or none of it is there after a crash. ``sync()`` writes an empty
synced batch, which is how LevelDB forces its log to disk.

Opening maps LevelDB's failures to typed errors: ``DatabaseLockedError`` (another handle holds
the lock), ``StorageCorruptedError`` (bad checksums, a missing manifest), ``NotADatabaseError``
(a directory of something else), ``ForeignDatabaseError``/``IncompatibleFormatError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import plyvel

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
from node.errors import StorageError, StorageFullError
from node.ports import Delete, Put, WriteOp

FORMAT_VERSION: Final = 1
FORMAT_NAME: Final = b"bighealth-leveldb"
FORMAT_KEY: Final = b"m/format"
CHAIN_ID_KEY: Final = b"m/chain_id"
DATA_PREFIX: Final = b"d"

MAX_KEY_BYTES: Final = 4 * 1024
MAX_VALUE_BYTES: Final = 64 * 1024 * 1024
MAX_BATCH_OPS: Final = 100_000
MAX_BATCH_BYTES: Final = 256 * 1024 * 1024
MAX_CHAIN_ID_BYTES: Final = 256


@dataclass(frozen=True, slots=True)
class LevelDBOptions:
    """Tuning of the LevelDB instance (defaults suit a node with a few GiB of state)."""

    write_buffer_bytes: int = 16 * 1024 * 1024
    block_cache_bytes: int = 64 * 1024 * 1024
    block_bytes: int = 16 * 1024
    max_open_files: int = 512
    bloom_filter_bits: int = 10  # ~1% false positives for keys that are not there
    compression: str | None = "snappy"
    paranoid_checks: bool = True  # report corruption as early as LevelDB can see it


@dataclass(slots=True)
class LevelDBStats:
    """Counters for metrics: ops written, batches committed, syncs forced."""

    writes: int = 0
    batches: int = 0
    syncs: int = 0


class LevelDBStorage:
    """A sorted byte-key store in one LevelDB directory, bound to one chain id.

    ``LevelDBStorage(path, chain_id)`` opens (creating a new database if ``path`` is missing
    or an empty directory and ``create_if_missing``); use it as a context manager or call
    ``close()``. Not thread-safe beyond what LevelDB itself guarantees; one owner at a time.
    """

    def __init__(
        self,
        path: str | Path,
        chain_id: str,
        *,
        create_if_missing: bool = True,
        options: LevelDBOptions | None = None,
    ) -> None:
        self.path = Path(path)
        self.chain_id = chain_id
        self.options = options or LevelDBOptions()
        self.stats = LevelDBStats()
        raw_chain_id = chain_id.encode("utf-8")
        if not chain_id or len(raw_chain_id) > MAX_CHAIN_ID_BYTES:
            raise ValueError(f"chain_id must be 1..{MAX_CHAIN_ID_BYTES} bytes")
        is_new = _check_directory(self.path, create_if_missing)
        self._db: Any = _open(self.path, self.options)
        try:
            _check_markers(self._db, self.path, raw_chain_id, is_new)
        except BaseException:
            self._db.close()
            raise
        self._data: Any = self._db.prefixed_db(DATA_PREFIX)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return bool(self._db.closed)

    def close(self) -> None:
        """Close the database (idempotent); unsynced writes stay in the OS's hands."""
        if not self._db.closed:
            self._db.close()

    def __enter__(self) -> LevelDBStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the Storage port -----------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or ``None``."""
        _check_key(key)
        with _mapped_errors(self):
            value: bytes | None = self._data.get(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        """Write one value (durable after the next ``sync()``)."""
        self.write_batch([Put(key, value)])

    def delete(self, key: bytes) -> None:
        """Remove one key if present (durable after the next ``sync()``)."""
        self.write_batch([Delete(key)])

    def write_batch(self, ops: Sequence[WriteOp], *, sync: bool = False) -> None:
        """Apply ``ops`` in order as one atomic LevelDB batch; with ``sync`` they are on disk
        when this returns. Invalid ops raise before anything is written."""
        checked = _check_batch(ops)
        with _mapped_errors(self), self._data.write_batch(transaction=True, sync=sync) as batch:
            for op in checked:
                if isinstance(op, Put):
                    batch.put(op.key, op.value)
                else:
                    batch.delete(op.key)
        self.stats.writes += len(checked)
        self.stats.batches += 1
        if sync:
            self.stats.syncs += 1

    def iterate_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries under ``prefix`` in ascending key order, as of this call (the LevelDB
        iterator, and so its snapshot, is made here, not at the first ``next``)."""
        _check_key(prefix, name="prefix")
        with _mapped_errors(self):
            iterator = self._data.iterator(prefix=prefix) if prefix else self._data.iterator()
        return self._entries(iterator)

    def sync(self) -> None:
        """Force every write so far to disk (an empty synced batch flushes LevelDB's log)."""
        with _mapped_errors(self):
            self._db.write_batch(sync=True).write()
        self.stats.syncs += 1

    def compact_range(self, start: bytes, stop: bytes) -> None:
        """Compact the stored keys in ``[start, stop)``: LevelDB keeps deleted values in its
        older files until a compaction rewrites them, so a store that must forget (erased
        records) compacts what it deleted. For ranges the caller has emptied: the key
        ``start`` itself is deleted on the way."""
        begin, end = DATA_PREFIX + start, DATA_PREFIX + stop
        with _mapped_errors(self):
            self._db.compact_range(start=begin, stop=end)
            # CompactRange never rewrites the deepest level's files it touches: a young store
            # flushes a value and its deletion into one such file, which keeps both. One more
            # deletion in the range, compacted, makes that file an input of a compaction.
            self._db.delete(begin, sync=True)
            self._db.compact_range(start=begin, stop=end)

    def _entries(self, iterator: Any) -> Iterator[tuple[bytes, bytes]]:
        try:
            while True:
                with _mapped_errors(self):
                    entry = next(iterator, None)
                if entry is None:
                    return
                yield entry
        finally:
            if not self._db.closed:
                iterator.close()


# -- opening --------------------------------------------------------------------------------


def _check_directory(path: Path, create_if_missing: bool) -> bool:
    """True when ``path`` holds no database yet (a new one may be made there)."""
    if path.exists() and not path.is_dir():
        raise NotADatabaseError(f"{path} is not a directory")
    entries = sorted(p.name for p in path.iterdir()) if path.exists() else []
    if not entries:
        if not create_if_missing:
            raise MissingDatabaseError(f"no database at {path}")
        return True
    if "CURRENT" not in entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise NotADatabaseError(f"{path} holds files but no LevelDB database ({shown})")
    return False


def _open(path: Path, options: LevelDBOptions) -> Any:
    try:
        return plyvel.DB(
            str(path),
            create_if_missing=True,
            paranoid_checks=options.paranoid_checks,
            write_buffer_size=options.write_buffer_bytes,
            lru_cache_size=options.block_cache_bytes,
            block_size=options.block_bytes,
            max_open_files=options.max_open_files,
            bloom_filter_bits=options.bloom_filter_bits,
            compression=options.compression,
        )
    except plyvel.CorruptionError as exc:
        raise StorageCorruptedError(f"{path}: {_text(exc)}") from exc
    except plyvel.IOError as exc:
        text = _text(exc)
        if "lock" in text.lower():
            raise DatabaseLockedError(
                f"{path} is in use by another process or handle ({text})"
            ) from exc
        raise StorageError(f"{path}: {text}") from exc
    except plyvel.Error as exc:
        raise StorageCorruptedError(f"{path}: {_text(exc)}") from exc


def _check_markers(db: Any, path: Path, chain_id: bytes, is_new: bool) -> None:
    format_marker = db.get(FORMAT_KEY)
    chain_marker = db.get(CHAIN_ID_KEY)
    if format_marker is None and chain_marker is None:
        if not is_new and _has_any_key(db):
            raise ForeignDatabaseError(f"{path} holds a LevelDB database not written by us")
        # New, or created but emptied before its markers were synced: claim it now.
        with db.write_batch(transaction=True, sync=True) as batch:
            batch.put(FORMAT_KEY, FORMAT_NAME + b"/" + str(FORMAT_VERSION).encode())
            batch.put(CHAIN_ID_KEY, chain_id)
        return
    if format_marker is None or chain_marker is None:
        raise ForeignDatabaseError(f"{path} lacks one of its format and chain id markers")
    _check_format(path, format_marker)
    if chain_marker != chain_id:
        raise ForeignDatabaseError(
            f"{path} belongs to chain {chain_marker.decode('utf-8', 'replace')!r}, "
            f"not {chain_id.decode()!r}"
        )


def _check_format(path: Path, marker: bytes) -> None:
    name, _, version = marker.partition(b"/")
    if name != FORMAT_NAME or not version.isdigit():
        raise ForeignDatabaseError(f"{path} has an unknown format marker {marker[:64]!r}")
    if int(version) != FORMAT_VERSION:
        raise IncompatibleFormatError(
            f"{path} is in storage format {int(version)}; this software reads format "
            f"{FORMAT_VERSION}"
        )


def _has_any_key(db: Any) -> bool:
    with db.iterator(include_value=False) as keys:
        return next(keys, None) is not None


# -- checks and error mapping ---------------------------------------------------------------


def _check_key(key: object, name: str = "key") -> bytes:
    if type(key) is not bytes:
        raise TypeError(f"{name} must be bytes, not {type(key).__name__}")
    if len(key) > MAX_KEY_BYTES:
        raise OversizeEntryError(f"a {name} of {len(key)} bytes exceeds {MAX_KEY_BYTES} bytes")
    return key


def _check_batch(ops: Sequence[WriteOp]) -> list[WriteOp]:
    if len(ops) > MAX_BATCH_OPS:
        raise OversizeEntryError(f"a batch of {len(ops)} ops exceeds {MAX_BATCH_OPS} ops")
    total = 0
    for op in ops:
        if isinstance(op, Put):
            _check_key(op.key)
            if type(op.value) is not bytes:
                raise TypeError(f"value must be bytes, not {type(op.value).__name__}")
            if len(op.value) > MAX_VALUE_BYTES:
                raise OversizeEntryError(
                    f"a value of {len(op.value)} bytes exceeds {MAX_VALUE_BYTES} bytes"
                )
            total += len(op.key) + len(op.value)
        elif isinstance(op, Delete):
            total += len(_check_key(op.key))
        else:
            raise TypeError(f"a write batch holds Put and Delete ops, not {type(op).__name__}")
    if total > MAX_BATCH_BYTES:
        raise OversizeEntryError(f"a batch of {total} bytes exceeds {MAX_BATCH_BYTES} bytes")
    return list(ops)


class _mapped_errors:  # a context manager named as the statement it makes
    """Turn plyvel's errors (and use after close) into the ``StorageError`` family."""

    __slots__ = ("_store",)

    def __init__(self, store: LevelDBStorage) -> None:
        self._store = store

    def __enter__(self) -> None:
        if self._store.closed:
            raise StorageClosedError(f"{self._store.path} is closed")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, StorageError):
            return
        path = self._store.path
        if isinstance(exc, plyvel.CorruptionError):
            raise StorageCorruptedError(f"{path}: {_text(exc)}") from exc
        if isinstance(exc, plyvel.IOError):
            text = _text(exc)
            if "no space" in text.lower():
                raise StorageFullError(f"{path}: the disk is full ({text})") from exc
            raise StorageError(f"{path}: {text}") from exc
        if isinstance(exc, plyvel.Error):
            raise StorageError(f"{path}: {_text(exc)}") from exc
        if isinstance(exc, RuntimeError) and self._store.closed:
            raise StorageClosedError(f"{path} was closed during the operation") from exc


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
