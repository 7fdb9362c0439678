"""The vault on MemoryStorage and on the real LevelDB: pending -> stored, every limit and
error, erasure leaving nothing behind, expiry in order and bounded, durability of what was
acknowledged (a crash of the memory store, a reopened LevelDB)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crypto_core.signatures import sha256
from health.envelopes import WRAPPED_KEY_BYTES
from health.vault import (
    MIN_CIPHERTEXT_BYTES,
    PendingBlob,
    Totals,
    Usage,
    Vault,
    VaultError,
    VaultLimits,
)
from node.adapters.leveldb_store import LevelDBStorage
from node.ports import Storage
from node.testing import MemoryStorage

CHAIN = "bh-test"
NOW = 1_700_000_000_000
TTL = VaultLimits().pending_ttl_ms
OWNER = bytes([1]) * 32
OTHER_OWNER = bytes([2]) * 32
AUTHOR = bytes([3]) * 32
READER = bytes([4]) * 32


def rid(n: int) -> bytes:
    return sha256(b"record-%d" % n)


def wrapped(tag: int) -> bytes:
    return bytes([tag]) * WRAPPED_KEY_BYTES


def blob(n: int = 0, *, size: int = 100, owner: bytes = OWNER, **changes: object) -> PendingBlob:
    made = PendingBlob(
        record_id=rid(n),
        owner=owner,
        author=AUTHOR,
        resource_type="Observation",
        code="http://loinc.org|41653-7",
        key_epoch=0,
        data_time_ms=NOW - 5_000,
        ciphertext=bytes([n % 256]) * size,
        wrapped_keys={owner: wrapped(1)},
        author_signature=b"s" * 64,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def commit(vault: Vault, item: PendingBlob) -> bool:
    return vault.commitment_committed(
        item.record_id, item.owner, sha256(item.ciphertext), len(item.ciphertext)
    )


def reason_of(excinfo: pytest.ExceptionInfo[VaultError]) -> str:
    return excinfo.value.reason


@pytest.fixture(params=["memory", "leveldb"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    store = LevelDBStorage(tmp_path / "vault", CHAIN)
    yield store
    store.close()


@pytest.fixture
def vault(storage: Storage) -> Vault:
    return Vault(storage)


# -- pending, stored ---------------------------------------------------------------------------


def test_a_pending_blob_becomes_stored_when_its_commitment_matches(vault: Vault) -> None:
    item = blob(wrapped_keys={OWNER: wrapped(1), READER: wrapped(2)})
    vault.put_pending(item, NOW)
    assert not vault.has(item.record_id) and vault.get(item.record_id) is None
    assert vault.wrapped_key(item.record_id, READER) is None  # not served while pending
    assert vault.owner_of(item.record_id) == OWNER
    assert vault.pending_records(10) == [item.record_id]
    assert vault.totals() == Totals(1, 100, 0, 0)
    assert commit(vault, item)
    stored = vault.get(item.record_id)
    assert stored is not None
    assert (stored.ciphertext, stored.owner, stored.author) == (item.ciphertext, OWNER, AUTHOR)
    assert stored.wrapped_keys == {OWNER: wrapped(1), READER: wrapped(2)}
    assert stored.ciphertext_sha256 == sha256(item.ciphertext)
    assert vault.wrapped_key(item.record_id, READER) == wrapped(2)
    assert vault.wrapped_key(item.record_id, bytes(32)) is None
    assert vault.pending_records(10) == []
    assert vault.records_of(OWNER, 10) == [item.record_id]
    assert list(vault.stored_records()) == [item.record_id]
    assert vault.totals() == Totals(0, 0, 1, 100)
    assert vault.usage(OWNER) == Usage(1, 100)
    assert commit(vault, item)  # told twice: still stored
    assert vault.stats().committed == 1 and vault.stats().accepted == 1


@pytest.mark.parametrize(
    "change",
    [{"owner": OTHER_OWNER}, {"ciphertext_sha256": bytes(32)}, {"size_bytes": 99}],
)
def test_a_blob_that_does_not_match_its_commitment_is_dropped(
    vault: Vault, change: dict[str, object]
) -> None:
    item = blob()
    vault.put_pending(item, NOW)
    told: dict[str, object] = {
        "owner": OWNER,
        "ciphertext_sha256": sha256(item.ciphertext),
        "size_bytes": 100,
    }
    told.update(change)
    assert not vault.commitment_committed(item.record_id, **told)  # type: ignore[arg-type]
    assert vault.meta(item.record_id) is None and not vault.has(item.record_id)
    assert vault.totals() == Totals(0, 0, 0, 0) and vault.usage(OWNER) == Usage(0, 0)
    assert vault.stats().mismatched == 1


def test_a_commitment_of_a_record_not_held_changes_nothing(vault: Vault) -> None:
    assert not vault.commitment_committed(rid(9), OWNER, bytes(32), 1)
    assert vault.totals() == Totals(0, 0, 0, 0)


def test_an_upload_retried_replaces_the_pending_blob(vault: Vault) -> None:
    vault.put_pending(blob(size=100, wrapped_keys={OWNER: wrapped(1), READER: wrapped(2)}), NOW)
    again = blob(size=200, wrapped_keys={OWNER: wrapped(3)})
    vault.put_pending(again, NOW + 1_000)
    assert vault.totals() == Totals(1, 200, 0, 0) and vault.usage(OWNER) == Usage(1, 200)
    assert vault.pending_records(10) == [again.record_id]
    assert commit(vault, again)
    stored = vault.get(again.record_id)
    assert stored is not None and stored.wrapped_keys == {OWNER: wrapped(3)}
    assert vault.expire_pending(NOW + 10 * TTL) == 0  # the first upload's expiry went too


def test_an_upload_retried_for_another_owner_moves_the_usage(vault: Vault) -> None:
    vault.put_pending(blob(), NOW)
    vault.put_pending(blob(owner=OTHER_OWNER), NOW)
    assert vault.usage(OWNER) == Usage(0, 0) and vault.usage(OTHER_OWNER) == Usage(1, 100)
    assert vault.totals() == Totals(1, 100, 0, 0)


def test_an_upload_of_a_stored_record_is_idempotent_or_a_mismatch(vault: Vault) -> None:
    item = blob()
    vault.put_pending(item, NOW)
    assert commit(vault, item)
    vault.put_pending(item, NOW)  # the same bytes again: nothing changes
    assert vault.has(item.record_id) and vault.totals() == Totals(0, 0, 1, 100)
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(size=101), NOW)
    assert reason_of(caught) == "mismatch"
    assert vault.stats().refused == {"mismatch": 1}


# -- limits and malformed blobs ----------------------------------------------------------------


def test_the_ciphertext_size_is_bounded(vault: Vault) -> None:
    limit = VaultLimits().max_record_bytes
    vault.put_pending(blob(0, size=limit), NOW)
    vault.put_pending(blob(1, size=MIN_CIPHERTEXT_BYTES), NOW)
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(2, size=limit + 1), NOW)
    assert reason_of(caught) == "too_large"
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(3, size=MIN_CIPHERTEXT_BYTES - 1), NOW)
    assert reason_of(caught) == "malformed"
    assert vault.totals().pending == 2


def test_the_wrapped_keys_of_an_upload_are_bounded(storage: Storage) -> None:
    vault = Vault(storage, VaultLimits(max_wrapped_keys_per_record=2))
    two = {bytes([i]) * 32: wrapped(i) for i in range(2)}
    vault.put_pending(blob(0, wrapped_keys=two), NOW)
    three = {bytes([i]) * 32: wrapped(i) for i in range(3)}
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(1, wrapped_keys=three), NOW)
    assert reason_of(caught) == "too_large"


@pytest.mark.parametrize(
    "change",
    [
        {"record_id": bytes(31)},
        {"owner": b"x"},
        {"author": "not bytes"},
        {"resource_type": "observation"},
        {"resource_type": 5},
        {"code": ""},
        {"code": "has space"},
        {"key_epoch": -1},
        {"key_epoch": True},
        {"data_time_ms": 2**64},
        {"author_signature": b"s" * 63},
        {"ciphertext": "text"},
        {"wrapped_keys": [(OWNER, wrapped(1))]},
        {"wrapped_keys": {bytes(31): wrapped(1)}},
        {"wrapped_keys": {OWNER: b"short"}},
    ],
)
def test_a_malformed_upload_is_refused_and_stores_nothing(
    vault: Vault, change: dict[str, object]
) -> None:
    with pytest.raises(VaultError) as caught:
        vault.put_pending(replace(blob(), **change), NOW)  # type: ignore[arg-type]
    assert reason_of(caught) == "malformed"
    assert vault.totals() == Totals(0, 0, 0, 0)
    assert list(vault.storage.iterate_prefix(b"v/")) == []


def test_the_owner_quota_counts_records(storage: Storage) -> None:
    vault = Vault(storage, VaultLimits(max_records_per_owner=2))
    vault.put_pending(blob(0), NOW)
    vault.put_pending(blob(1), NOW)
    assert commit(vault, blob(1))
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(2), NOW)
    assert reason_of(caught) == "quota" and not caught.value.retry_later
    vault.put_pending(blob(0), NOW)  # replacing its own pending upload is not one more
    vault.put_pending(blob(3, owner=OTHER_OWNER), NOW)  # another owner has its own quota
    assert vault.erase(rid(1))
    vault.put_pending(blob(2), NOW)  # room again


def test_the_owner_quota_counts_bytes(storage: Storage) -> None:
    vault = Vault(storage, VaultLimits(max_bytes_per_owner=250))
    vault.put_pending(blob(0, size=100), NOW)
    vault.put_pending(blob(1, size=150), NOW)
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(2, size=MIN_CIPHERTEXT_BYTES), NOW)
    assert reason_of(caught) == "quota"
    vault.put_pending(blob(1, size=100), NOW)  # a smaller retry fits
    vault.put_pending(blob(2, size=50), NOW)
    assert vault.usage(OWNER) == Usage(3, 250)


def test_the_pending_uploads_are_bounded_in_number(storage: Storage) -> None:
    vault = Vault(storage, VaultLimits(max_pending=2))
    vault.put_pending(blob(0), NOW)
    vault.put_pending(blob(1, owner=OTHER_OWNER), NOW)
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(2), NOW)
    assert reason_of(caught) == "quota" and caught.value.retry_later
    vault.put_pending(blob(0), NOW)  # a retry replaces: still two
    assert commit(vault, blob(0))
    vault.put_pending(blob(2), NOW)  # a stored record no longer waits


def test_the_pending_uploads_are_bounded_in_bytes(storage: Storage) -> None:
    vault = Vault(storage, VaultLimits(max_pending_bytes=150))
    vault.put_pending(blob(0, size=100), NOW)
    with pytest.raises(VaultError) as caught:
        vault.put_pending(blob(1, size=51), NOW)
    assert reason_of(caught) == "quota" and caught.value.retry_later
    vault.put_pending(blob(1, size=50), NOW)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_record_bytes": 10},
        {"max_wrapped_keys_per_record": 0},
        {"max_wrapped_keys_per_record": 65},
        {"pending_ttl_ms": 0},
        {"max_pending": 0},
        {"max_bytes_per_owner": 0},
    ],
)
def test_limits_out_of_range_are_refused(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        VaultLimits(**limits)


# -- wrapped keys --------------------------------------------------------------------------


def test_wrapped_keys_are_added_to_a_stored_record(vault: Vault) -> None:
    item = blob()
    vault.put_pending(item, NOW)
    assert commit(vault, item)
    assert vault.add_wrapped_keys(item.record_id, {READER: wrapped(5)}) == 2
    assert vault.wrapped_key(item.record_id, READER) == wrapped(5)
    assert vault.add_wrapped_keys(item.record_id, {READER: wrapped(6), OWNER: wrapped(7)}) == 2
    stored = vault.get(item.record_id)
    assert stored is not None and stored.wrapped_keys == {READER: wrapped(6), OWNER: wrapped(7)}


def test_wrapped_keys_added_to_a_pending_record_stay_after_its_commitment(vault: Vault) -> None:
    item = blob()
    vault.put_pending(item, NOW)
    vault.add_wrapped_keys(item.record_id, {READER: wrapped(5)})
    assert commit(vault, item)
    assert vault.wrapped_key(item.record_id, READER) == wrapped(5)


def test_adding_wrapped_keys_is_checked(storage: Storage) -> None:
    vault = Vault(storage, VaultLimits(max_wrapped_keys_per_record=2))
    with pytest.raises(VaultError) as caught:
        vault.add_wrapped_keys(rid(0), {READER: wrapped(5)})
    assert reason_of(caught) == "not_found"
    vault.put_pending(blob(), NOW)  # holds the owner's key
    vault.add_wrapped_keys(rid(0), {READER: wrapped(5)})
    vault.add_wrapped_keys(rid(0), {READER: wrapped(6)})  # a replacement is not one more
    cases: list[tuple[dict[bytes, bytes], str]] = [
        ({bytes([9]) * 32: wrapped(1)}, "too_large"),
        ({bytes([i]) * 32: wrapped(i) for i in range(3)}, "too_large"),
        ({}, "malformed"),
        ({READER: b"short"}, "malformed"),
        ({b"short": wrapped(1)}, "malformed"),
    ]
    for keys, reason in cases:
        with pytest.raises(VaultError) as caught:
            vault.add_wrapped_keys(rid(0), keys)
        assert reason_of(caught) == reason
    assert vault._wrapped_keys(rid(0)) == {OWNER: wrapped(1), READER: wrapped(6)}


# -- erasure and expiry -------------------------------------------------------------------


def test_erasure_leaves_nothing_of_the_record_and_compacts_its_ranges(storage: Storage) -> None:
    ranges: list[tuple[bytes, bytes]] = []
    vault = Vault(storage, compact_range=lambda start, stop: ranges.append((start, stop)))
    item, kept = blob(0), blob(1)
    for each in (item, kept):
        vault.put_pending(each, NOW)
        assert commit(vault, each)
    vault.add_wrapped_keys(item.record_id, {READER: wrapped(5)})
    assert vault.erase(item.record_id)
    assert vault.get(item.record_id) is None and not vault.has(item.record_id)
    assert vault.wrapped_key(item.record_id, READER) is None
    left = [key for key, _ in storage.iterate_prefix(b"v/") if item.record_id in key]
    assert left == []
    assert vault.totals() == Totals(0, 0, 1, 100) and vault.usage(OWNER) == Usage(1, 100)
    assert vault.records_of(OWNER, 10) == [kept.record_id]
    assert vault.has(kept.record_id)
    covered = [b"v/m/" + item.record_id, b"v/c/" + item.record_id]
    covered.append(b"v/k/" + item.record_id + READER)
    for key in covered:
        assert any(start <= key < stop for start, stop in ranges)
    assert not any(start <= b"v/c/" + kept.record_id < stop for start, stop in ranges)
    assert not vault.erase(item.record_id)  # nothing left to erase
    assert vault.stats().erased == 1


def test_a_pending_record_is_erased_too_and_a_failing_compaction_is_only_logged(
    storage: Storage,
) -> None:
    def broken(start: bytes, stop: bytes) -> None:
        raise RuntimeError("compaction failed")

    vault = Vault(storage, compact_range=broken)
    vault.put_pending(blob(), NOW)
    assert vault.erase(rid(0))
    assert vault.meta(rid(0)) is None and vault.totals() == Totals(0, 0, 0, 0)
    assert vault.pending_records(10) == []


def test_pending_blobs_expire_in_order_and_in_bounded_steps(vault: Vault) -> None:
    for n in range(5):
        vault.put_pending(blob(n), NOW + n * 1_000)
    vault.put_pending(blob(9), NOW)
    assert commit(vault, blob(9))  # stored: never expires
    assert vault.pending_records(2) == [rid(0), rid(1)]
    assert vault.expire_pending(NOW + TTL - 1) == 0
    assert vault.expire_pending(NOW + TTL + 2_000, limit=2) == 2
    assert vault.pending_records(10) == [rid(2), rid(3), rid(4)]
    assert vault.expire_pending(NOW + TTL + 2_000) == 1
    assert vault.expire_pending(NOW + 100 * TTL) == 2
    assert vault.totals() == Totals(0, 0, 1, 100) and vault.usage(OWNER) == Usage(1, 100)
    assert vault.has(rid(9)) and vault.stats().expired == 5


# -- durability ----------------------------------------------------------------------------


def test_a_stored_record_survives_a_crash_and_a_pending_one_need_not() -> None:
    storage = MemoryStorage()
    vault = Vault(storage)
    vault.put_pending(blob(0), NOW)
    storage.crash()
    assert vault.meta(rid(0)) is None  # an unacknowledged upload may be lost
    vault.put_pending(blob(0), NOW)
    assert commit(vault, blob(0))
    vault.add_wrapped_keys(rid(0), {READER: wrapped(5)})
    storage.crash()
    assert vault.wrapped_key(rid(0), READER) == wrapped(5)
    assert vault.totals() == Totals(0, 0, 1, 100)
    assert vault.erase(rid(0))
    storage.crash()
    assert vault.get(rid(0)) is None and vault.totals() == Totals(0, 0, 0, 0)


def test_a_reopened_leveldb_vault_holds_what_it_stored(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    with LevelDBStorage(path, CHAIN) as storage:
        vault = Vault(storage)
        for n in range(3):
            vault.put_pending(blob(n), NOW)
        assert commit(vault, blob(0)) and commit(vault, blob(1))
        vault.add_wrapped_keys(rid(0), {READER: wrapped(5)})
        assert vault.erase(rid(1))
    with LevelDBStorage(path, CHAIN, create_if_missing=False) as storage:
        vault = Vault(storage)
        stored = vault.get(rid(0))
        assert stored is not None and stored.ciphertext == blob(0).ciphertext
        assert stored.wrapped_keys == {OWNER: wrapped(1), READER: wrapped(5)}
        assert vault.get(rid(1)) is None and vault.meta(rid(1)) is None
        assert vault.pending_records(10) == [rid(2)]
        assert vault.totals() == Totals(1, 100, 1, 100) and vault.usage(OWNER) == Usage(2, 200)
        assert vault.expire_pending(NOW + TTL) == 1
        assert commit(vault, blob(0))
