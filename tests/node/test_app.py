"""The application framework: finalize_block, receipts, metering, due work, updates."""

from __future__ import annotations

import dataclasses

import pytest

from consensus import ValidatorSet, ValidatorSetSchedule, ValidatorUpdate
from node.app import (
    VALIDATOR_UPDATE_DELAY_HEIGHTS,
    AccountsModule,
    AppConfig,
    Application,
    KvModule,
    ModuleContractError,
    receipts_root,
    verify_state_proof,
)
from node.app.kv import delete_payload, entry_key, read_value, set_payload
from node.app.view import ExecutionLimits
from node.codec import RECEIPT_CODEC, encode, tx_hash
from node.errors import InvalidBlockError
from node.testing import TxFactory, key_pair, make_validators
from node.types import ResultCode
from tests.node.helpers import (
    BLOCK_INTERVAL_MS,
    CHAIN,
    INSTITUTION,
    Chain,
    TestModule,
    make_app,
    register_txs,
    registered,
)

ALICE = key_pair("alice")


@pytest.fixture
def chain() -> Chain:
    return Chain(make_app())


@pytest.fixture
def txs() -> TxFactory:
    return TxFactory(CHAIN)


def test_genesis_then_a_registered_patient_writes(chain: Chain, txs: TxFactory) -> None:
    assert chain.app.height == 0
    registered(chain, txs, "alice")
    result = chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"glucose-plan", b"v1"))])
    receipt = result.receipts[0]
    assert receipt.ok and receipt.gas_used > 0
    assert (
        receipt.events[0].name == "kv.set" and receipt.events[0].get("key") == b"glucose-plan".hex()
    )
    assert read_value(chain.app, ALICE.public_key, b"glucose-plan") == b"v1"
    assert result.state_root == chain.app.state_root and result.height == 2
    assert chain.app.next_nonce(ALICE.public_key) == 1


def test_unauthenticated_transactions_change_nothing(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    root = chain.app.state_root
    good = txs.make(ALICE, "kv.set", set_payload(b"k", b"v"))
    forged = encode(dataclasses.replace(good, signature=bytes(64)))
    stranger = TxFactory(CHAIN).encoded(key_pair("stranger"), "kv.set", set_payload(b"k", b"v"))
    wrong_nonce = txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v"), nonce=5)
    wrong_chain = TxFactory("other").encoded(ALICE, "kv.set", set_payload(b"k", b"v"))
    result = chain.run([forged, stranger, wrong_nonce, wrong_chain, b"\xc1garbage"])
    assert [r.code for r in result.receipts] == [
        ResultCode.BAD_SIGNATURE,
        ResultCode.UNKNOWN_SENDER,
        ResultCode.BAD_NONCE,
        ResultCode.WRONG_CHAIN,
        ResultCode.MALFORMED,
    ]
    assert all(r.gas_used == 0 and not r.code.consumed_nonce for r in result.receipts)
    assert result.state_root == root and result.state_changes == ()
    assert chain.app.next_nonce(ALICE.public_key) == 0


def test_preverified_hashes_skip_the_signature_check(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    good = txs.make(ALICE, "kv.set", set_payload(b"k", b"v"))
    forged = encode(dataclasses.replace(good, signature=bytes(64)))
    block = chain.next_block([forged])
    result = chain.app.finalize_block(block, preverified_tx_hashes={tx_hash(forged)})
    assert result.receipts[0].ok  # the caller vouched for it: only hashes it verified belong there


def test_a_failed_transaction_consumes_its_nonce_and_rolls_back(
    chain: Chain, txs: TxFactory
) -> None:
    registered(chain, txs, "alice")
    result = chain.run([txs.encoded(ALICE, "probe.fail_after_write")])
    receipt = result.receipts[0]
    assert receipt.code is ResultCode.CONFLICT and receipt.log.startswith("refused")
    assert receipt.events == () and result.validator_updates == ()
    assert chain.app.get(b"probe/partial") is None
    assert chain.app.next_nonce(ALICE.public_key) == 1


def test_out_of_gas_fails_the_transaction_at_its_limit(txs: TxFactory) -> None:
    chain = Chain(make_app(ExecutionLimits(max_gas_per_tx=50_000)))
    registered(chain, txs, "alice")
    result = chain.run(
        [txs.encoded(ALICE, "probe.burn"), txs.encoded(ALICE, "probe.write", b"after")]
    )
    burn, after = result.receipts
    assert burn.code is ResultCode.OUT_OF_GAS and burn.gas_used == 50_000
    assert chain.app.get(b"probe/burn") is None
    assert after.ok  # the block goes on


def test_writing_outside_the_namespace_is_a_module_bug(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    height, root = chain.app.height, chain.app.state_root
    with pytest.raises(ModuleContractError, match="outside the namespace"):
        chain.run([txs.encoded(ALICE, "probe.escape")])
    assert (chain.app.height, chain.app.state_root) == (height, root)


def test_unknown_kinds_fail_after_authentication(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    result = chain.run([txs.encoded(ALICE, "nope.nothing"), txs.encoded(ALICE, "kv.rename")])
    assert [r.code for r in result.receipts] == [ResultCode.UNKNOWN_KIND] * 2
    assert chain.app.next_nonce(ALICE.public_key) == 2


def test_invalid_payloads_fail_with_invalid_payload(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    result = chain.run([txs.encoded(ALICE, "kv.set", b"\x93not a payload")])
    assert result.receipts[0].code is ResultCode.INVALID_PAYLOAD


# -- due work -------------------------------------------------------------------------------


def test_expiry_runs_at_the_first_block_at_or_after_its_time(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    now = chain.time_ms
    expire_at = now + 3 * BLOCK_INTERVAL_MS
    chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v", expire_at))])
    assert chain.run([], time_ms=expire_at - 1).block_events == ()
    assert read_value(chain.app, ALICE.public_key, b"k") == b"v"
    events = chain.run([], time_ms=expire_at + 500).block_events
    assert [e.name for e in events] == ["kv.expired"]
    assert read_value(chain.app, ALICE.public_key, b"k") is None
    assert list(chain.app._state.iterate(b"_due/")) == []  # the queue is empty again


def test_replacing_or_deleting_a_value_cancels_its_expiry(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    soon = chain.time_ms + 2 * BLOCK_INTERVAL_MS
    chain.run(
        [
            txs.encoded(ALICE, "kv.set", set_payload(b"a", b"1", soon)),
            txs.encoded(ALICE, "kv.set", set_payload(b"b", b"1", soon)),
        ]
    )
    chain.run(
        [
            txs.encoded(ALICE, "kv.set", set_payload(b"a", b"2")),  # now without expiry
            txs.encoded(ALICE, "kv.delete", delete_payload(b"b")),
        ]
    )
    assert chain.run([], time_ms=soon + 1).block_events == ()
    assert read_value(chain.app, ALICE.public_key, b"a") == b"2"
    assert list(chain.app._state.iterate(b"_due/")) == []


def test_due_work_is_bounded_per_block_and_carries_over(txs: TxFactory) -> None:
    chain = Chain(make_app(ExecutionLimits(max_due_tasks_per_block=2)))
    registered(chain, txs, "alice")
    chain.run([txs.encoded(ALICE, "probe.tasks", bytes([5]) + (1).to_bytes(4, "big"))])
    ticks = [[e.get("n") for e in chain.run([]).block_events] for _ in range(4)]
    assert ticks == [["0", "1"], ["2", "3"], ["4"], []]  # time order, then creation order


def test_a_failing_due_task_is_removed_and_reported(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    chain.run([txs.encoded(ALICE, "probe.bad_task")])
    events = chain.run([]).block_events
    assert [e.name for e in events] == ["system.due_task_failed"]
    assert events[0].get("module") == "probe" and events[0].get("code") == "execution_failed"
    assert chain.app.get(b"probe/exploded") is None
    assert chain.run([]).block_events == ()


# -- validator updates ----------------------------------------------------------------------


def test_validator_updates_are_sorted_last_wins_and_feed_the_schedule(
    chain: Chain, txs: TxFactory
) -> None:
    registered(chain, txs, "alice")
    members = make_validators(2).validators
    schedule = ValidatorSetSchedule(ValidatorSet(members), first_height=chain.app.height + 1)
    low, high = bytes([1]) * 32, bytes([255]) * 32
    result = chain.run(
        [
            txs.encoded(ALICE, "probe.power", high + (7).to_bytes(8, "big")),
            txs.encoded(ALICE, "probe.power", low + (3).to_bytes(8, "big")),
            txs.encoded(ALICE, "probe.power", high + (9).to_bytes(8, "big")),
        ]
    )
    assert result.validator_updates == (ValidatorUpdate(low, 3), ValidatorUpdate(high, 9))
    effective = result.validator_updates_effective_height
    assert effective == result.height + VALIDATOR_UPDATE_DELAY_HEIGHTS
    schedule.commit(result.height, result.validator_updates)
    before = sum(v.voting_power for v in members)
    assert schedule.set_at(result.height + 1).total_voting_power == before
    assert schedule.set_at(effective).total_voting_power == before + 3 + 9


# -- blocks that do not follow ------------------------------------------------------------


def test_blocks_that_do_not_follow_the_last_one_are_refused(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    good = chain.next_block([])
    header = good.header
    bad_blocks = [
        dataclasses.replace(good, header=dataclasses.replace(header, height=header.height + 1)),
        dataclasses.replace(good, header=dataclasses.replace(header, time_ms=chain.time_ms)),
        dataclasses.replace(good, header=dataclasses.replace(header, app_state_root=bytes(32))),
        dataclasses.replace(good, header=dataclasses.replace(header, chain_id="other")),
        dataclasses.replace(good, txs=(b"smuggled",)),  # tx_root no longer matches
    ]
    root, height = chain.app.state_root, chain.app.height
    for block in bad_blocks:
        with pytest.raises(InvalidBlockError):
            chain.app.finalize_block(block)
        assert (chain.app.state_root, chain.app.height) == (root, height)
    chain.app.finalize_block(good)


# -- determinism, queries, restore ----------------------------------------------------------


def test_two_nodes_fed_the_same_blocks_agree_exactly() -> None:
    leader, follower = Chain(make_app()), make_app()
    factory = TxFactory(CHAIN)
    bob = key_pair("bob")
    feeds = [
        register_txs(factory, "alice", "bob"),
        [factory.encoded(ALICE, "kv.set", set_payload(bytes([i]), b"v" * i)) for i in range(1, 6)],
        [factory.encoded(bob, "probe.tasks", bytes([3]) + (1).to_bytes(4, "big"))],
        [factory.encoded(bob, "probe.power", bytes([7]) * 32 + (4).to_bytes(8, "big"))],
        [],
    ]
    for feed in feeds:
        block = leader.next_block(feed)
        expected = leader.app.finalize_block(block)
        leader.previous = block.header
        assert follower.finalize_block(block) == expected
        assert all(r.ok for r in expected.receipts)
    assert follower.state_root == leader.app.state_root


def test_query_proves_values_at_latest_and_older_heights(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    first = chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"k", b"old"))])
    second = chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"k", b"new"))])
    key = entry_key(ALICE.public_key, b"k")
    latest = chain.app.query(key)
    older = chain.app.query(key, first.height)
    assert verify_state_proof(latest, second.state_root) and b"new" in (latest.value or b"")
    assert verify_state_proof(older, first.state_root) and b"old" in (older.value or b"")
    assert not verify_state_proof(older, second.state_root)


def test_restore_from_state_changes_continues_identically(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v", chain.time_ms + 5_000))])
    entries = chain.app.state_entries()
    twin = make_app_uninitialised()
    twin.restore(
        height=chain.app.height, last_block_time_ms=chain.app.last_block_time_ms, entries=entries
    )
    assert twin.state_root == chain.app.state_root
    block = chain.next_block([], time_ms=chain.time_ms + 10_000)
    assert twin.finalize_block(block) == chain.app.finalize_block(block)


def test_state_entries_list_the_committed_state_as_a_snapshot(chain: Chain, txs: TxFactory) -> None:
    assert make_app_uninitialised().state_entries() == []
    registered(chain, txs, "alice")
    entries = chain.app.state_entries()
    keys = [key for key, _ in entries]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(chain.app.get(key) == value for key, value in entries)
    chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v"))])
    assert entry_key(ALICE.public_key, b"k") not in dict(entries)  # the earlier snapshot
    assert entry_key(ALICE.public_key, b"k") in dict(chain.app.state_entries())


def make_app_uninitialised() -> Application:
    accounts = AccountsModule()
    return Application(AppConfig(CHAIN), [accounts, KvModule(), TestModule()], accounts)


def test_receipts_round_trip_through_the_codec(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    result = chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v"))])
    for receipt in result.receipts:
        assert RECEIPT_CODEC.decode(RECEIPT_CODEC.encode(receipt)) == receipt
    assert receipts_root(result.receipts) != receipts_root(())


# -- check_tx -------------------------------------------------------------------------------


def test_check_tx_outcomes(chain: Chain, txs: TxFactory) -> None:
    registered(chain, txs, "alice")
    app = chain.app
    ok = txs.make(ALICE, "kv.set", set_payload(b"k", b"v"), nonce=0)
    assert app.check_tx(ok).ok
    future = txs.make(ALICE, "kv.set", set_payload(b"k", b"v"), nonce=3)
    assert app.check_tx(future).ok  # predecessors may be pending in the mempool
    chain.run([txs.encoded(ALICE, "kv.set", set_payload(b"k", b"v"), nonce=0)])
    cases = {
        ResultCode.BAD_NONCE: dataclasses.replace(ok, nonce=0),
        ResultCode.UNKNOWN_SENDER: TxFactory(CHAIN).make(key_pair("nobody"), "kv.set"),
        ResultCode.WRONG_CHAIN: TxFactory("other").make(ALICE, "kv.set"),
        ResultCode.UNKNOWN_KIND: txs.make(ALICE, "kv.frobnicate", nonce=1),
        ResultCode.INVALID_PAYLOAD: txs.make(ALICE, "kv.set", b"junk", nonce=1),
    }
    for code, tx in cases.items():
        assert app.check_tx(tx).code is code, code
    expired = txs.make(ALICE, "kv.set", set_payload(b"k", b"v", app.last_block_time_ms), nonce=1)
    assert app.check_tx(expired).code is ResultCode.INVALID_PAYLOAD


def test_module_registry_refuses_bad_names() -> None:
    accounts = AccountsModule()
    with pytest.raises(ValueError, match="two modules"):
        Application(AppConfig(CHAIN), [accounts, KvModule(), KvModule()], accounts)
    system = KvModule()
    system.name = "system"
    with pytest.raises(ValueError, match="reserved"):
        Application(AppConfig(CHAIN), [accounts, system], accounts)
    with pytest.raises(RuntimeError, match="init_chain"):
        Application(AppConfig(CHAIN), [accounts], accounts).check_tx(
            TxFactory(CHAIN).make(INSTITUTION, "kv.set")
        )
