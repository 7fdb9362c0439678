"""Mempool: admission checks, limits, eviction, nonce order, re-check after a block."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.codec import MAX_TX_BYTES, TX_CODEC, block_tx_bytes, encode, tx_hash
from node.errors import RejectReason, TxRejected
from node.mempool import (
    Mempool,
    MempoolLimits,
    VerifiedTx,
    verify_transaction,
    verify_transactions,
)
from node.testing import TxFactory, key_pair

CHAIN = "bh-test"
ALICE, BOB, CAROL = key_pair("alice"), key_pair("bob"), key_pair("carol")


def nonces(committed: dict[bytes, int] | None = None) -> Callable[[bytes], int]:
    table = committed or {}
    return lambda sender: table.get(sender, 0)


def verified(raw: bytes) -> VerifiedTx:
    return verify_transaction(raw, CHAIN)


def reason_of(action: Callable[[], object]) -> RejectReason:
    with pytest.raises(TxRejected) as caught:
        action()
    return caught.value.reason


@pytest.fixture
def txs() -> TxFactory:
    return TxFactory(CHAIN)


def small_pool(**limits: int) -> Mempool:
    defaults = {"max_txs": 1000, "max_bytes": MAX_TX_BYTES * 4, "max_txs_per_account": 64}
    return Mempool(CHAIN, MempoolLimits(**(defaults | limits)))


# -- verification ---------------------------------------------------------------------------


def test_a_bad_signature_never_enters(txs: TxFactory) -> None:
    pool = small_pool()
    tx = txs.make(ALICE, "kv.set", b"x")
    forged = encode(dataclasses.replace(tx, signature=bytes(64)))
    resigned_by_bob = encode(dataclasses.replace(tx, signature=BOB.sign(b"anything")))
    for raw in (forged, resigned_by_bob):
        assert reason_of(partial(pool.admit, raw, nonces())) is RejectReason.BAD_SIGNATURE
    assert len(pool) == 0 and pool.size_bytes == 0


@settings(max_examples=40)
@given(st.integers(0, 63), st.integers(1, 255))
def test_any_flipped_signature_bit_is_rejected(position: int, flip: int) -> None:
    tx = TxFactory(CHAIN).make(ALICE, "kv.set", b"x")
    signature = bytearray(tx.signature)
    signature[position] ^= flip
    raw = encode(dataclasses.replace(tx, signature=bytes(signature)))
    pool = small_pool()
    assert reason_of(lambda: pool.admit(raw, nonces())) is RejectReason.BAD_SIGNATURE
    assert len(pool) == 0


def test_verification_rejects_wrong_chain_malformed_and_oversize(txs: TxFactory) -> None:
    other_chain = TxFactory("other-chain").encoded(ALICE, "kv.set")
    assert reason_of(lambda: verified(other_chain)) is RejectReason.WRONG_CHAIN
    assert reason_of(lambda: verified(b"\x93\x01\x02")) is RejectReason.MALFORMED
    assert reason_of(lambda: verified(bytes(MAX_TX_BYTES + 1))) is RejectReason.OVERSIZE


def test_verified_tx_carries_hash_and_bytes(txs: TxFactory) -> None:
    raw = txs.encoded(ALICE, "kv.set", b"x")
    result = verified(raw)
    assert result.raw == raw and result.tx == TX_CODEC.decode(raw)
    assert result.size_bytes == len(raw)


# -- rules ----------------------------------------------------------------------------------


def test_duplicates_are_refused(txs: TxFactory) -> None:
    pool = small_pool()
    raw = txs.encoded(ALICE, "kv.set")
    pool.admit(raw, nonces())
    assert reason_of(lambda: pool.admit(raw, nonces())) is RejectReason.DUPLICATE
    assert len(pool) == 1


def test_nonces_must_continue_the_accounts_run(txs: TxFactory) -> None:
    pool = small_pool()
    committed = nonces({ALICE.public_key: 5})
    used = txs.encoded(ALICE, "kv.set", nonce=4)
    assert reason_of(lambda: pool.admit(used, committed)) is RejectReason.NONCE_USED
    gap = txs.encoded(ALICE, "kv.set", nonce=6)
    assert reason_of(lambda: pool.admit(gap, committed)) is RejectReason.NONCE_GAP
    pool.admit(txs.encoded(ALICE, "kv.set", nonce=5), committed)
    pool.admit(gap, committed)
    again = txs.encoded(ALICE, "kv.set", b"other", nonce=6)
    assert reason_of(lambda: pool.admit(again, committed)) is RejectReason.NONCE_USED
    assert pool.next_nonce(ALICE.public_key, 5) == 7
    assert [v.tx.nonce for v in pool.pending_of(ALICE.public_key)] == [5, 6]


def test_per_account_limit(txs: TxFactory) -> None:
    pool = small_pool(max_txs_per_account=3)
    for _ in range(3):
        pool.admit(txs.encoded(ALICE, "kv.set"), nonces())
    fourth = txs.encoded(ALICE, "kv.set")
    assert reason_of(lambda: pool.admit(fourth, nonces())) is RejectReason.ACCOUNT_LIMIT
    pool.admit(txs.encoded(BOB, "kv.set"), nonces())  # others are unaffected


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_txs"):
        MempoolLimits(max_txs=0)
    with pytest.raises(ValueError, match="max_bytes"):
        MempoolLimits(max_bytes=100)


# -- eviction -------------------------------------------------------------------------------


def test_full_pool_evicts_the_lowest_priority_tail(txs: TxFactory) -> None:
    pool = small_pool(max_txs=3)
    low_a0 = pool.admit(txs.encoded(ALICE, "kv.set", priority=1), nonces()).tx_hash
    low_a1 = pool.admit(txs.encoded(ALICE, "kv.set", priority=1), nonces()).tx_hash
    bob = pool.admit(txs.encoded(BOB, "kv.set", priority=5), nonces()).tx_hash
    outcome = pool.admit(txs.encoded(CAROL, "kv.set", priority=3), nonces())
    assert outcome.evicted == (low_a1,)  # Alice's last tx: no nonce gap left behind
    assert low_a0 in pool and bob in pool and outcome.tx_hash in pool
    pool.check_invariants()


def test_eviction_never_takes_the_newcomers_own_account(txs: TxFactory) -> None:
    pool = small_pool(max_txs=2)
    pool.admit(txs.encoded(ALICE, "kv.set", priority=1), nonces())
    pool.admit(txs.encoded(ALICE, "kv.set", priority=1), nonces())
    third = txs.encoded(ALICE, "kv.set", priority=9)
    assert reason_of(lambda: pool.admit(third, nonces())) is RejectReason.MEMPOOL_FULL
    assert len(pool) == 2


def test_equal_priority_does_not_evict_and_rejection_changes_nothing(txs: TxFactory) -> None:
    pool = small_pool(max_txs=2)
    pool.admit(txs.encoded(ALICE, "kv.set", priority=2), nonces())
    pool.admit(txs.encoded(BOB, "kv.set", priority=4), nonces())
    before = [pool.pending_of(k.public_key) for k in (ALICE, BOB)]
    late = txs.encoded(CAROL, "kv.set", priority=2)
    assert reason_of(lambda: pool.admit(late, nonces())) is RejectReason.MEMPOOL_FULL
    assert [pool.pending_of(k.public_key) for k in (ALICE, BOB)] == before


def test_among_equal_priorities_the_newest_tail_goes_first(txs: TxFactory) -> None:
    pool = small_pool(max_txs=2)
    older = pool.admit(txs.encoded(ALICE, "kv.set", priority=1), nonces()).tx_hash
    newer = pool.admit(txs.encoded(BOB, "kv.set", priority=1), nonces()).tx_hash
    outcome = pool.admit(txs.encoded(CAROL, "kv.set", priority=2), nonces())
    assert outcome.evicted == (newer,) and older in pool


def test_byte_limit_evicts_as_many_as_needed(txs: TxFactory) -> None:
    big = b"x" * 30_000
    pool = small_pool(max_bytes=MAX_TX_BYTES + 10_000)
    first = pool.admit(txs.encoded(ALICE, "kv.set", big, priority=1), nonces()).tx_hash
    second = pool.admit(txs.encoded(BOB, "kv.set", big, priority=2), nonces()).tx_hash
    outcome = pool.admit(txs.encoded(CAROL, "kv.set", b"y" * 60_000, priority=3), nonces())
    assert set(outcome.evicted) == {first, second}
    assert pool.size_bytes <= pool.limits.max_bytes
    pool.check_invariants()


def test_eviction_walks_down_one_accounts_run_from_its_tail(txs: TxFactory) -> None:
    pool = small_pool(max_txs=3)
    hashes = [
        pool.admit(txs.encoded(ALICE, "kv.set", priority=p), nonces()).tx_hash for p in (1, 1, 1)
    ]
    outcome = pool.admit(txs.encoded(BOB, "kv.set", b"y" * 10, priority=5), nonces())
    assert outcome.evicted == (hashes[2],)
    assert [v.tx.nonce for v in pool.pending_of(ALICE.public_key)] == [0, 1]


# -- reaping --------------------------------------------------------------------------------


def test_reap_orders_by_priority_across_accounts_and_by_nonce_within(txs: TxFactory) -> None:
    pool = small_pool()
    for priority in (1, 9):  # Alice: a low-priority head gates a high-priority successor
        pool.admit(txs.encoded(ALICE, "kv.set", priority=priority), nonces())
    pool.admit(txs.encoded(BOB, "kv.set", priority=5), nonces())
    pool.admit(txs.encoded(CAROL, "kv.set", priority=1), nonces())
    order = [(v.tx.sender, v.tx.nonce) for v in pool.reap(1 << 20, 100)]
    assert order == [
        (BOB.public_key, 0),
        (ALICE.public_key, 0),  # equal priority with Carol, but arrived first
        (ALICE.public_key, 1),
        (CAROL.public_key, 0),
    ]
    assert len(pool) == 4  # reaping does not remove


def test_reap_respects_count_and_bytes_without_breaking_nonce_order(txs: TxFactory) -> None:
    pool = small_pool()
    big = pool.admit(txs.encoded(ALICE, "kv.set", b"x" * 5000, priority=9), nonces())
    pool.admit(txs.encoded(ALICE, "kv.set", priority=9), nonces())
    bob_raws = [txs.encoded(BOB, "kv.set", priority=1) for _ in range(3)]
    small = [pool.admit(raw, nonces()) for raw in bob_raws]
    budget = sum(block_tx_bytes(len(raw)) for raw in bob_raws)
    reaped = pool.reap(budget, 100)
    assert [v.tx_hash for v in reaped] == [o.tx_hash for o in small]  # Alice's head did not fit
    assert big.tx_hash not in {v.tx_hash for v in reaped}
    assert len(pool.reap(1 << 20, 2)) == 2


# -- after a block --------------------------------------------------------------------------


def test_update_removes_committed_and_stale_and_rechecks(txs: TxFactory) -> None:
    pool = small_pool()
    alice = [txs.encoded(ALICE, "kv.set", bytes([i])) for i in range(3)]
    bob = [txs.encoded(BOB, "kv.set", bytes([i])) for i in range(3)]
    for raw in alice + bob:
        pool.admit(raw, nonces())
    committed = {ALICE.public_key: 2, BOB.public_key: 0}  # a block took Alice's first two
    bad_bob = verified(bob[1]).tx_hash
    outcome = pool.update(alice[:1], nonces(committed), lambda v: v.tx_hash != bad_bob)
    assert outcome.committed == (verified(alice[0]).tx_hash,)
    assert set(outcome.dropped) == {verified(alice[1]).tx_hash, bad_bob, verified(bob[2]).tx_hash}
    assert [v.tx.nonce for v in pool.pending_of(ALICE.public_key)] == [2]
    assert [v.tx.nonce for v in pool.pending_of(BOB.public_key)] == [0]  # no gap left
    pool.check_invariants()


def test_update_told_the_block_senders_revisits_only_theirs(txs: TxFactory) -> None:
    pool = small_pool()
    alice = [txs.encoded(ALICE, "kv.set", bytes([i])) for i in range(3)]
    bob = [txs.encoded(BOB, "kv.set", bytes([i])) for i in range(2)]
    for raw in alice + bob:
        pool.admit(raw, nonces())
    committed = {ALICE.public_key: 1, BOB.public_key: 0}

    def refuse_all(_: VerifiedTx) -> bool:
        return False

    outcome = pool.update(alice[:1], nonces(committed), refuse_all, senders=[ALICE.public_key])
    assert outcome.committed == (verified(alice[0]).tx_hash,)
    assert len(outcome.dropped) == 2  # Alice's run was rechecked (and refused)
    assert [v.tx.nonce for v in pool.pending_of(BOB.public_key)] == [0, 1]  # untouched
    pool.check_invariants()


def test_update_drops_a_run_that_no_longer_starts_at_the_committed_nonce(txs: TxFactory) -> None:
    pool = small_pool()
    for _ in range(2):
        pool.admit(txs.encoded(ALICE, "kv.set"), nonces())
    # The committed state moved *back*: cannot happen with honest callers, must stay sane.
    outcome = pool.update([], nonces({ALICE.public_key: 0}))
    assert outcome.dropped == () and len(pool) == 2
    pool_view = nonces({ALICE.public_key: 3})
    outcome = pool.update([], pool_view)
    assert len(outcome.dropped) == 2 and len(pool) == 0
    pool.check_invariants()


# -- random operations keep every invariant -------------------------------------------------

SENDERS = [key_pair(f"sender-{i}") for i in range(4)]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2000)),
        st.tuples(st.just("commit"), st.integers(0, 5), st.just(0), st.just(0)),
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_random_operations_keep_invariants_and_nonce_order(
    ops: list[tuple[str, int, int, int]],
) -> None:
    pool = small_pool(max_txs=6, max_bytes=MAX_TX_BYTES + 4000, max_txs_per_account=4)
    committed: dict[bytes, int] = {}
    factory = TxFactory(CHAIN)
    for op, a, b, c in ops:
        if op == "add":
            signer = SENDERS[a]
            nonce = pool.next_nonce(signer.public_key, committed.get(signer.public_key, 0))
            raw = factory.encoded(signer, "kv.set", b"p" * c, priority=b, nonce=nonce)
            try:
                pool.admit(raw, nonces(committed))
            except TxRejected as rejected:
                assert rejected.reason in (RejectReason.MEMPOOL_FULL, RejectReason.ACCOUNT_LIMIT)
        else:
            block = pool.reap(1 << 20, a)
            for item in block:
                committed[item.tx.sender] = item.tx.nonce + 1
            pool.update([item.raw for item in block], nonces(committed))
        pool.check_invariants()
        _assert_reap_is_nonce_ordered(pool, committed)


def _assert_reap_is_nonce_ordered(pool: Mempool, committed: dict[bytes, int]) -> None:
    expected = dict(committed)
    for item in pool.reap(1 << 20, 1000):
        assert item.tx.nonce == expected.get(item.tx.sender, 0)
        expected[item.tx.sender] = item.tx.nonce + 1


def test_batch_verification_returns_refusals_in_place(txs: TxFactory) -> None:
    good = txs.encoded(ALICE, "kv.set")
    forged = encode(dataclasses.replace(TX_CODEC.decode(good), signature=bytes(64)))
    results = verify_transactions([good, b"\xc1", forged], CHAIN)
    assert isinstance(results[0], VerifiedTx) and results[0].raw == good
    assert isinstance(results[1], TxRejected) and results[1].reason is RejectReason.MALFORMED
    assert isinstance(results[2], TxRejected) and results[2].reason is RejectReason.BAD_SIGNATURE


def test_batch_verification_takes_hashes_the_caller_computed(txs: TxFactory) -> None:
    good = txs.encoded(ALICE, "kv.set")
    (verified,) = verify_transactions([good], CHAIN, [tx_hash(good)])
    assert isinstance(verified, VerifiedTx) and verified.tx_hash == tx_hash(good)
    with pytest.raises(ValueError, match="one hash per transaction"):
        verify_transactions([good], CHAIN, [])
