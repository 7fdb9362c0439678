"""Each committed height's results (block events, receipts) and the tx index: written in the
height's one synced batch, the same on every node, kept across restarts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from node.adapters.leveldb_store import LevelDBStorage
from node.app.kv import set_payload
from node.chain import store
from node.chain.store import (
    HEIGHT_KEY,
    BlockResults,
    TxLocation,
    height_bytes,
    read_results,
    read_tx_location,
    results_key,
    results_ops,
    txidx_key,
)
from node.codec import tx_hash
from node.core import NodeCore
from node.ports import Put, WriteOp
from node.testing import MemoryStorage, TxFactory
from node.testing.cluster import Cluster
from node.types import Event, EventAttribute, ResultCode, TxReceipt

HASH_A = bytes([1]) * 32
HASH_B = bytes([2]) * 32
EVENT = Event("kv.set", (EventAttribute("key", "6b"),))


class RecordingStorage(MemoryStorage):
    """A ``MemoryStorage`` that keeps every batch it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[WriteOp]] = []

    def write_batch(self, ops: Sequence[WriteOp], *, sync: bool = False) -> None:
        self.batches.append(list(ops))
        super().write_batch(ops, sync=sync)


def receipt(hash_: bytes, code: ResultCode = ResultCode.OK) -> TxReceipt:
    events = (EVENT,) if code is ResultCode.OK else ()
    return TxReceipt(hash_, code, "" if code is ResultCode.OK else "no", 10, events)


def committed_cluster() -> Cluster:
    cluster = Cluster(validators=4, seed=21, txs_per_second=40)
    cluster.run_until(height=6)
    return cluster


def test_every_committed_height_has_its_results_and_every_tx_its_location() -> None:
    cluster = committed_cluster()
    core = cluster.core("v0")
    txs_seen = 0
    for height in range(1, core.height + 1):
        results = core.block_results(height)
        block = core.committed_block(height)
        assert results is not None and block is not None
        assert results.height == height
        assert results.time_ms == block.block.header.time_ms
        assert [r.tx_hash for r in results.receipts] == [tx_hash(raw) for raw in block.block.txs]
        for index, raw in enumerate(block.block.txs):
            assert core.tx_location(tx_hash(raw)) == TxLocation(height, index)
        txs_seen += len(block.block.txs)
        others = {cluster.core(name).block_results(height) for name in cluster.names}
        assert others == {results}  # the same on every node
    assert txs_seen > 10
    assert any(r.ok and r.events for h in range(1, 7) for r in core.block_results(h).receipts)  # type: ignore[union-attr]
    assert core.block_results(core.height + 1) is None
    assert core.tx_location(bytes(32)) is None
    assert core.tx_location(b"short") is None


def test_results_are_written_in_the_batch_that_commits_their_height() -> None:
    cluster = Cluster(validators=1, seed=2, txs_per_second=20)
    storage = RecordingStorage()
    cluster.nodes["v0"].storage = storage
    cluster.crash("v0")
    cluster.restart("v0")
    cluster.run_until(height=4)
    committing = [batch for batch in storage.batches if any(op.key == HEIGHT_KEY for op in batch)]
    assert len(committing) >= 4
    for batch in committing[1:]:  # the first is the genesis
        height_op = next(op for op in batch if op.key == HEIGHT_KEY)
        assert isinstance(height_op, Put)
        height = int.from_bytes(height_op.value, "big")
        keys = {op.key for op in batch}
        assert results_key(height) in keys
        results = read_results(storage, height)
        assert results is not None
        assert {txidx_key(r.tx_hash) for r in results.receipts} <= keys


def test_results_survive_a_crash_and_restart_and_nothing_beyond_the_committed_height() -> None:
    cluster = committed_cluster()
    before = [cluster.core("v1").block_results(h) for h in range(1, 7)]
    cluster.arm_crash("v1", before_actions=True)
    while cluster.nodes["v1"].alive:
        cluster.step()
    storage = cluster.nodes["v1"].storage
    stored = store.read_meta(storage)
    assert stored is not None
    assert read_results(storage, stored.height) is not None
    assert read_results(storage, stored.height + 1) is None
    cluster.restart("v1")
    core = cluster.core("v1")
    assert [core.block_results(h) for h in range(1, 7)] == before
    cluster.run_until(height=stored.height + 2)
    assert cluster.core("v1").block_results(stored.height + 2) is not None


def test_a_failed_repeat_keeps_the_first_location_and_a_success_takes_over() -> None:
    storage = MemoryStorage()
    first = BlockResults(1, 100, (), (receipt(HASH_A, ResultCode.EXECUTION_FAILED),))
    storage.write_batch(results_ops(storage, first))
    assert read_tx_location(storage, HASH_A) == TxLocation(1, 0)
    again = BlockResults(
        2,
        200,
        (EVENT,),
        (
            receipt(HASH_B),
            receipt(HASH_A, ResultCode.BAD_NONCE),
            receipt(HASH_B, ResultCode.BAD_NONCE),
        ),
    )
    storage.write_batch(results_ops(storage, again))
    assert read_tx_location(storage, HASH_A) == TxLocation(1, 0)
    assert read_tx_location(storage, HASH_B) == TxLocation(2, 0)
    assert read_results(storage, 2) == again
    success = BlockResults(3, 300, (), (receipt(HASH_A),))
    storage.write_batch(results_ops(storage, success))
    assert read_tx_location(storage, HASH_A) == TxLocation(3, 0)


def test_results_beyond_the_codec_limits_are_not_kept_but_never_stop_a_commit() -> None:
    storage = MemoryStorage()
    too_many_events = TxReceipt(HASH_A, ResultCode.OK, "", 1, (EVENT,) * 33)
    ops = results_ops(storage, BlockResults(5, 1, (), (too_many_events,)))
    storage.write_batch(ops)
    assert storage.get(results_key(5)) is None
    assert read_tx_location(storage, HASH_A) == TxLocation(5, 0)


def test_the_layout_version_is_three() -> None:
    assert store.LAYOUT_VERSION == 3
    storage = MemoryStorage()
    storage.write_batch(store.genesis_ops(bytes(32), [], bytes(32)))
    assert storage.get(store.LAYOUT_KEY) == height_bytes(3)


def test_kv_events_reach_the_receipts() -> None:
    cluster = Cluster(validators=1, seed=1)
    txs = TxFactory(cluster.genesis.chain_id)
    raw = txs.encoded(cluster.client_keys[0], "kv.set", set_payload(b"k", b"v"))
    result = cluster.submit("v0", raw)
    assert result is not None and result.accepted
    cluster.run_until(height=3)
    location = cluster.core("v0").tx_location(tx_hash(raw))
    assert location is not None
    results = cluster.core("v0").block_results(location.height)
    assert results is not None
    found = results.receipts[location.index]
    assert found.ok and [e.name for e in found.events] == ["kv.set"]


def test_results_and_the_tx_index_are_read_back_from_leveldb_after_a_restart(
    tmp_path: Path,
) -> None:
    cluster = Cluster(validators=1, seed=3, txs_per_second=30)
    node = cluster.nodes["v0"]
    storage = LevelDBStorage(tmp_path / "data", cluster.genesis.chain_id)
    node.storage, node.core = storage, None  # type: ignore[assignment]  # a fresh disk
    node.epoch += 1
    cluster.restart("v0")
    cluster.run_until(height=4)
    core = cluster.core("v0")
    before = [core.block_results(h) for h in range(1, 5)]
    hashes = [r.tx_hash for results in before if results is not None for r in results.receipts]
    assert len(hashes) > 3
    storage.close()
    reopened = LevelDBStorage(tmp_path / "data", cluster.genesis.chain_id)
    try:
        restarted = NodeCore.open(reopened, None, cluster.genesis, cluster.config)
        assert [restarted.block_results(h) for h in range(1, 5)] == before
        assert all(restarted.tx_location(h) is not None for h in hashes)
        committed = restarted.queries.committed_tx(hashes[0])
        assert committed is not None and committed.receipt.tx_hash == hashes[0]
    finally:
        reopened.close()
