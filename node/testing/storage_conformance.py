"""The conformance check every ``node.ports.Storage`` implementation must pass.

An implementation supplies a ``StorageHarness`` (open a new empty store, reopen one as after a
restart, close) and runs, in a test::

    def test_my_storage_conforms():
        check_storage_conformance(MyHarness())

The same check runs on the shipped fake (``MemoryStorage``, harness ``MemoryStorageHarness``)
and on production storage (LevelDB), so the fake cannot drift from what production does. It
covers the whole port contract: reads, writes and deletes; batches applied in order and
atomically, refused whole when an op is bad; prefix iteration in key order, bounded to the
prefix and a snapshot as of the call; the durability of synced writes across a restart; and
``histories`` random histories (from ``seed``) compared with a sorted dict.
``check_against_model`` is the last check on its own, for property tests that bring their own
histories. A violation raises ``ConformanceError`` naming the check and what was seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol

from node.ports import Delete, Put, Storage, WriteOp
from node.testing.conformance import ConformanceError
from node.testing.rng import SeededRng
from node.testing.storage import MemoryStorage

DEFAULT_HISTORIES: Final = 40
"""Random histories compared with the model, by default."""
MAX_HISTORY_BATCHES: Final = 6
MAX_BATCH_OPS: Final = 8
MAX_KEY_BYTES: Final = 3
MAX_VALUE_BYTES: Final = 8
# Few distinct key bytes, the extremes included, so keys collide and share prefixes.
KEY_ALPHABET: Final = b"\x00\x01a\xff"


class StorageHarness(Protocol):
    """What ``check_storage_conformance`` needs from an implementation's test setup."""

    def open(self) -> Storage:
        """A new, empty store."""
        ...

    def reopen(self, store: Storage) -> Storage:
        """``store`` after its process stopped and started again: a power cut for a store
        that can model one, a close for a real store; then the same store, opened again.
        Everything synced before must be there."""
        ...

    def close(self, store: Storage) -> None:
        """Release a store that ``open`` or ``reopen`` returned."""
        ...


class MemoryStorageHarness:
    """The harness of ``MemoryStorage``: reopening is a power cut (``crash``)."""

    def open(self) -> Storage:
        return MemoryStorage()

    def reopen(self, store: Storage) -> Storage:
        if not isinstance(store, MemoryStorage):
            raise TypeError(f"expected a MemoryStorage, got {type(store).__name__}")
        store.crash()
        return store

    def close(self, store: Storage) -> None:
        """Nothing to release."""


class _Session:
    """One check's store, reopened in place when the check asks."""

    def __init__(self, harness: StorageHarness) -> None:
        self.harness = harness
        self.store = harness.open()

    def reopen(self) -> Storage:
        self.store = self.harness.reopen(self.store)
        return self.store


def check_storage_conformance(
    harness: StorageHarness, *, seed: int | str = 0, histories: int = DEFAULT_HISTORIES
) -> list[str]:
    """Run every check, each on a new store from ``harness``; returns the names of the
    checks (all passed) or raises ``ConformanceError`` at the first violation."""
    rng = SeededRng(seed).fork("storage-conformance")
    checks: list[tuple[str, Callable[[_Session], None]]] = [
        ("the Storage protocol", _check_protocol),
        ("get, put and delete", _check_get_put_delete),
        ("batches apply in order", _check_batch_order),
        ("bad input is refused whole", _check_bad_input),
        ("prefix iteration: order, bounds, snapshot", _check_prefix_iteration),
        ("synced writes survive a restart", _check_durability),
        ("random histories match a sorted dict", lambda s: _check_histories(s, rng, histories)),
    ]
    for name, check in checks:
        session = _Session(harness)
        try:
            check(session)
        except ConformanceError:
            raise
        except Exception as exc:  # anything else escaping a check is a violation too
            raise ConformanceError(f"{name}: raised {type(exc).__name__}: {exc}") from exc
        finally:
            harness.close(session.store)
    return [name for name, _ in checks]


def check_against_model(
    store: Storage, history: Sequence[Sequence[WriteOp]], prefix: bytes
) -> None:
    """Apply ``history`` (batches) to ``store`` and compare it with a sorted dict fed the
    same batches: every key's value, and the entries under ``prefix`` in order."""
    model: dict[bytes, bytes] = {}
    for batch in history:
        store.write_batch(batch)
        for op in batch:
            if isinstance(op, Put):
                model[op.key] = op.value
            else:
                model.pop(op.key, None)
    expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
    found = list(store.iterate_prefix(prefix))
    _expect(found == expected, "model", f"iterate_prefix({prefix!r}) = {found}, want {expected}")
    for key, value in model.items():
        _expect(store.get(key) == value, "model", f"get({key!r}) != {value!r}")


# -- the checks -------------------------------------------------------------------------------


def _check_protocol(session: _Session) -> None:
    store = session.store
    _expect(isinstance(store, Storage), "protocol", f"{type(store).__name__} is not a Storage")
    _expect(list(store.iterate_prefix(b"")) == [], "protocol", "a new store is not empty")


def _check_get_put_delete(session: _Session) -> None:
    store, check = session.store, "get/put/delete"
    _expect(store.get(b"k") is None, check, "a missing key is not None")
    store.put(b"k", b"v1")
    store.put(b"k", b"v2")
    _expect(store.get(b"k") == b"v2", check, "a second put does not replace the first")
    store.put(b"empty", b"")
    _expect(store.get(b"empty") == b"", check, "an empty value is not kept as b''")
    store.delete(b"k")
    store.delete(b"never-there")  # deleting a missing key is no error
    _expect(store.get(b"k") is None, check, "a deleted key is still there")


def _check_batch_order(session: _Session) -> None:
    store, check = session.store, "batch order"
    store.write_batch([Put(b"a", b"1"), Delete(b"a"), Delete(b"b"), Put(b"b", b"2")])
    _expect(store.get(b"a") is None, check, "a Delete after a Put of one batch did not win")
    _expect(store.get(b"b") == b"2", check, "a Put after a Delete of one batch did not win")
    store.write_batch([], sync=True)
    store.sync()


def _check_bad_input(session: _Session) -> None:
    store, check = session.store, "bad input"
    bad_value: bytes = "text"  # type: ignore[assignment]
    _raises(TypeError, check, lambda: store.write_batch([Put(b"a", b"1"), Put(b"b", bad_value)]))
    _expect(store.get(b"a") is None, check, "a refused batch wrote its first op")
    not_an_op: WriteOp = ("put", b"c", b"3")  # type: ignore[assignment]
    _raises(TypeError, check, lambda: store.write_batch([Put(b"c", b"3"), not_an_op]))
    _expect(store.get(b"c") is None, check, "a batch with a foreign op wrote something")
    text_key: bytes = "key"  # type: ignore[assignment]
    _raises(TypeError, check, lambda: store.get(text_key))
    _raises(TypeError, check, lambda: store.put(text_key, b"v"))
    _raises(TypeError, check, lambda: store.iterate_prefix(text_key))


def _check_prefix_iteration(session: _Session) -> None:
    store, check = session.store, "prefix iteration"
    for key in [b"a", b"a\x00", b"a\xff", b"ab", b"b", b"\xff", b"\xff\xff", b"aa"]:
        store.put(key, key.hex().encode())
    snapshot = store.iterate_prefix(b"a")
    store.put(b"a1", b"later")
    store.delete(b"ab")
    seen = [key for key, _ in snapshot]
    want = [b"a", b"a\x00", b"aa", b"ab", b"a\xff"]
    _expect(seen == want, check, f"iterate_prefix(b'a') as of the call = {seen}, want {want}")
    top = [key for key, _ in store.iterate_prefix(b"\xff")]
    _expect(top == [b"\xff", b"\xff\xff"], check, f"iterate_prefix(b'\\xff') = {top}")
    _expect(list(store.iterate_prefix(b"zz")) == [], check, "entries under a missing prefix")
    everything = [key for key, _ in store.iterate_prefix(b"")]
    _expect(everything == sorted(everything), check, "iterate_prefix(b'') is not in key order")
    _expect(len(everything) == 8, check, f"iterate_prefix(b'') holds {len(everything)} keys")
    later = dict(store.iterate_prefix(b"a1"))
    _expect(later == {b"a1": b"later"}, check, f"a write after a snapshot is not seen: {later}")


def _check_durability(session: _Session) -> None:
    check = "durability"
    store = session.store
    store.write_batch([Put(b"synced/1", b"1"), Put(b"synced/2", b"2")], sync=True)
    store.put(b"later", b"x")
    store.sync()
    store.write_batch([Put(b"pair/1", b"1"), Put(b"pair/2", b"2")])  # never synced
    store = session.reopen()
    for key in (b"synced/1", b"synced/2", b"later"):
        _expect(store.get(key) is not None, check, f"{key!r} was synced, then lost")
    pair = [store.get(b"pair/1"), store.get(b"pair/2")]
    _expect(pair in ([None, None], [b"1", b"2"]), check, f"half a batch survived: {pair}")
    store.put(b"after", b"restart")
    _expect(store.get(b"after") == b"restart", check, "a reopened store does not take writes")


def _check_histories(session: _Session, rng: SeededRng, histories: int) -> None:
    store = session.store
    for index in range(histories):
        prefix = f"h{index}/".encode()
        history = [
            [_random_op(rng, prefix) for _ in range(rng.randint(0, MAX_BATCH_OPS))]
            for _ in range(rng.randint(0, MAX_HISTORY_BATCHES))
        ]
        check_against_model(store, history, prefix + _random_key(rng)[:1])


def _random_key(rng: SeededRng) -> bytes:
    length = rng.randint(0, MAX_KEY_BYTES)
    return bytes(KEY_ALPHABET[rng.randint(0, len(KEY_ALPHABET) - 1)] for _ in range(length))


def _random_op(rng: SeededRng, prefix: bytes) -> WriteOp:
    key = prefix + _random_key(rng)
    if rng.randint(0, 2) == 0:
        return Delete(key)
    return Put(key, rng.random_bytes(rng.randint(0, MAX_VALUE_BYTES)))


def _expect(condition: bool, check: str, detail: str) -> None:
    if not condition:
        raise ConformanceError(f"{check}: {detail}")


def _raises(error: type[Exception], check: str, action: Callable[[], object]) -> None:
    try:
        action()
    except error:
        return
    except Exception as exc:  # the wrong type of error is a violation too
        raise ConformanceError(
            f"{check}: raised {type(exc).__name__}, not {error.__name__}"
        ) from exc
    raise ConformanceError(f"{check}: no {error.__name__} raised")
