"""The chain core's parts on their own: genesis, config, log records, schedule, buffers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import (
    CommitCertificateReceived,
    Input,
    ProposalReceived,
    ProposeValue,
    SigningRecord,
    SigningStep,
    StartHeight,
    TimeoutElapsed,
    TimeoutKind,
    ValidatorUpdate,
    ValueValidity,
    VoteReceived,
)
from node.app.accounts import GenesisAccount, Role
from node.chain import ConsensusParams, Genesis, InvalidConfigError, InvalidGenesisError, NodeConfig
from node.chain.actions import Offence
from node.chain.errors import StorageMismatchError
from node.chain.future import FutureMessage, FutureMessages
from node.chain.gossip import TxGossip
from node.chain.messages import TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS, PeerFault, decode_inbound
from node.chain.proposals import OWN, ProposedBlocks, Verdict
from node.chain.schedule import ValidatorSchedule
from node.chain.set_history import ValidatorSetHistory
from node.chain.sync import BlockSync, SyncedBlock
from node.chain.validation import ChainTip, validate_block
from node.chain.wal import ConsensusLog, LoggedStart, decode_record, encode_record
from node.codec import encode_message
from node.core import NodeCore
from node.errors import InvalidBlockError
from node.testing import MemoryStorage, key_pair
from node.types import CommittedBlock, Status, TxBatch, Validator, VoteType
from tests.core.helpers import (
    CHAIN,
    GENESIS,
    GENESIS_MS,
    GENESIS_SET,
    VALIDATORS,
    certificate,
    first_block,
    key_of,
    kv_tx,
    make_genesis,
    set_at,
    signed_proposal,
    signed_vote,
)

# -- genesis and config ----------------------------------------------------------------------


def test_genesis_has_one_canonical_encoding_and_hash() -> None:
    assert Genesis.decode(GENESIS.encode()) == GENESIS
    assert GENESIS.hash() == Genesis.decode(GENESIS.encode()).hash()
    changed = [
        replace(GENESIS, genesis_time_ms=GENESIS.genesis_time_ms + 1),
        replace(GENESIS, chain_id="another"),
        replace(GENESIS, accounts=GENESIS.accounts[:-1]),
        replace(GENESIS, params=ConsensusParams(timeout_propose_ms=2_999)),
        replace(GENESIS, params=ConsensusParams(evidence_max_age_heights=7)),
    ]
    assert len({g.hash() for g in [GENESIS, *changed]}) == 6


@pytest.mark.parametrize(
    "build",
    [
        lambda: replace(GENESIS, validators=()),
        lambda: replace(GENESIS, chain_id="has space"),
        lambda: replace(GENESIS, genesis_time_ms=-1),
        lambda: replace(GENESIS, accounts=GENESIS.accounts * 2),
        lambda: replace(GENESIS, validators=(Validator(bytes(32), 0),)),
        lambda: make_genesis(max_block_bytes=10_000),
        lambda: make_genesis(max_block_txs=0),
        lambda: make_genesis(timeout_prevote_ms=0),
        lambda: make_genesis(max_future_drift_ms=0),
        lambda: make_genesis(evidence_max_age_heights=0),
        lambda: make_genesis(max_evidence_per_block=257),
        lambda: make_genesis(max_evidence_bytes=2_000),
        lambda: make_genesis(max_block_bytes=100_000, max_evidence_bytes=100_000),
    ],
    ids=[
        "no_validators",
        "bad_chain_id",
        "negative_time",
        "duplicate_accounts",
        "zero_power",
        "block_too_small",
        "no_txs",
        "zero_timeout",
        "zero_drift",
        "no_evidence_age",
        "too_much_evidence",
        "evidence_bytes_below_one_object",
        "evidence_bytes_fill_the_block",
    ],
)
def test_an_invalid_genesis_is_refused(build: object) -> None:
    with pytest.raises(InvalidGenesisError):
        build()  # type: ignore[operator]


def test_a_genesis_block_limit_must_hold_the_certificate_of_its_validators() -> None:
    validators = tuple(Validator(key_pair(f"many-{i}").public_key, 1) for i in range(600))
    with pytest.raises(InvalidGenesisError, match="certificate"):
        Genesis(CHAIN, 1, validators, (), ConsensusParams(max_block_bytes=100_000))
    Genesis(CHAIN, 1, validators, (), ConsensusParams(max_block_bytes=200_000))


@pytest.mark.parametrize(
    "changes",
    [
        {"max_cached_blocks": 0},
        {"sync_tick_ms": 0},
        {"status_interval_ms": 10**9},
        {"max_tx_batch_txs": 5_000},
        {"max_tx_batch_bytes": 600 * 1024},
        {"mempool": None},
    ],
)
def test_config_values_out_of_range_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidConfigError):
        NodeConfig(**changes)  # type: ignore[arg-type]


def test_config_allows_no_pause_after_a_commit() -> None:
    assert NodeConfig(commit_wait_ms=0).commit_wait_ms == 0


# -- consensus log records ---------------------------------------------------------------------


def _inputs() -> list[Input]:
    key = VALIDATORS.keys[0]
    block = first_block(bytes(32))
    value = bytes(range(32))
    return [
        VoteReceived(signed_vote(key, 3, 1, VoteType.PREVOTE, None)),
        VoteReceived(signed_vote(key, 3, 1, VoteType.PRECOMMIT, value)),
        ProposalReceived(signed_proposal(key, 3, 2, value), None),
        ProposalReceived(signed_proposal(key, 3, 2, value), False),
        ValueValidity(3, value, True),
        ProposeValue(3, 4, value),
        TimeoutElapsed(TimeoutKind.PRECOMMIT, 3, 9),
        CommitCertificateReceived(certificate(1, 0, block.header.tx_root)),
    ]


@pytest.mark.parametrize("event", _inputs(), ids=lambda e: type(e).__name__)
def test_log_records_round_trip(event: Input) -> None:
    assert decode_record(encode_record(event)) == event


def test_a_logged_start_keeps_only_its_height() -> None:
    assert decode_record(encode_record(StartHeight(5, GENESIS_SET))) == LoggedStart(5)


@pytest.mark.parametrize("data", [b"", b"\x92\x63\x90", b"\x92\x04\x90", b"\xc1"])
def test_corrupt_log_records_are_refused(data: bytes) -> None:
    with pytest.raises(StorageMismatchError):
        decode_record(data)


# -- validator schedule persistence --------------------------------------------------------------

POOL = [key_pair(f"schedule-{i}").public_key for i in range(3)] + [
    v.public_key for v in VALIDATORS.validators
]
batches = st.lists(
    st.lists(
        st.builds(ValidatorUpdate, st.sampled_from(POOL), st.integers(0, 30)),
        max_size=2,
        unique_by=lambda u: u.public_key,
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(updates=batches)
def test_a_restored_schedule_equals_the_live_one_after_every_height(
    updates: list[list[ValidatorUpdate]],
) -> None:
    storage = MemoryStorage()
    live, ops = ValidatorSchedule.at_genesis(GENESIS_SET)
    storage.write_batch(ops, sync=True)
    for height, batch in enumerate(updates, start=1):
        storage.write_batch(live.commit(height, batch), sync=True)
        restored = ValidatorSchedule.restore(storage, height)
        assert restored.previous == live.previous
        for ahead in (1, 2):
            assert restored.set_at(height + ahead) == live.set_at(height + ahead)
        assert restored.set_at(height) is None and restored.set_at(height + 3) is None
        stored_heights = [int.from_bytes(k[5:], "big") for k, _ in storage.iterate_prefix(b"vset/")]
        assert stored_heights == [height, height + 1, height + 2]  # bounded: no history kept


def test_restoring_goes_on_with_updates_decided_but_not_yet_in_effect() -> None:
    storage = MemoryStorage()
    live, ops = ValidatorSchedule.at_genesis(GENESIS_SET)
    storage.write_batch(ops, sync=True)
    joining = ValidatorUpdate(POOL[0], 7)
    storage.write_batch(live.commit(1, [joining]), sync=True)
    restored = ValidatorSchedule.restore(storage, 1)
    assert POOL[0] not in (restored.set_at(2) or ())
    assert (restored.set_at(3) or GENESIS_SET).power_of(POOL[0]) == 7
    for schedule in (live, restored):
        storage.write_batch(schedule.commit(2, []), sync=True)
    assert restored.set_at(4) == live.set_at(4) and restored.previous == live.previous


def test_a_missing_or_corrupt_stored_set_is_refused() -> None:
    storage = MemoryStorage()
    live, ops = ValidatorSchedule.at_genesis(GENESIS_SET)
    storage.write_batch(ops + live.commit(1, []), sync=True)
    storage.put(b"vset/" + (3).to_bytes(8, "big"), b"\x92\x90")
    with pytest.raises(StorageMismatchError, match="corrupt validator set of height 3"):
        ValidatorSchedule.restore(storage, 1)
    storage.delete(b"vset/" + (3).to_bytes(8, "big"))
    with pytest.raises(StorageMismatchError, match="no validator set for height 3"):
        ValidatorSchedule.restore(storage, 1)


def test_an_invalid_update_batch_is_ignored_alike_everywhere() -> None:
    live, _ = ValidatorSchedule.at_genesis(GENESIS_SET)
    remove_all = [ValidatorUpdate(v.public_key, 0) for v in VALIDATORS.validators]
    live.commit(1, remove_all)
    assert live.rejected_update_batches == 1
    assert {v.public_key for v in live.set_at(3) or ()} == {v.public_key for v in GENESIS_SET}


# -- validator set history (for evidence) -----------------------------------------------------

OTHER_SET = GENESIS_SET.for_next_height([ValidatorUpdate(POOL[0], 5)])


def test_the_history_keeps_one_entry_per_change_of_members() -> None:
    history = ValidatorSetHistory(window_heights=100)
    writes = [history.record(h, GENESIS_SET if h < 4 else OTHER_SET) for h in range(1, 7)]
    assert [len(ops) for ops in writes] == [1, 0, 0, 1, 0, 0]  # priorities alone change nothing
    assert history.set_at(3) is not None and POOL[0] not in history.set_at(3)  # type: ignore[operator]
    assert POOL[0] in (history.set_at(4) or ()) and POOL[0] in (history.set_at(6) or ())
    assert history.set_at(0) is None and history.set_at(7) is None  # only committed heights
    with pytest.raises(ValueError, match="in order"):
        history.record(8, GENESIS_SET)


def test_the_history_forgets_what_left_the_evidence_window() -> None:
    storage = MemoryStorage()
    history = ValidatorSetHistory(window_heights=3)
    for height in range(1, 10):
        changing = GENESIS_SET if height % 4 else OTHER_SET  # changes at 4 and back at 5, ...
        storage.write_batch(history.record(height, changing), sync=True)
    # A block at height 10 may carry evidence of heights 7..9: entries from 5 on are kept.
    assert history.set_at(7) == history.set_at(9) and history.set_at(6) is not None
    assert history.set_at(4) is None
    loaded = ValidatorSetHistory.load(storage, 9, window_heights=3)
    assert len(loaded) == len(history) == 3  # from 5 (covering 7), at 8 and at 9
    assert all(loaded.set_at(h) == history.set_at(h) for h in range(1, 11))


def test_the_history_is_capped_at_its_entry_limit() -> None:
    history = ValidatorSetHistory(window_heights=100, max_entries=2)
    for height in range(1, 5):
        history.record(height, GENESIS_SET if height % 2 else OTHER_SET)
    assert len(history) == 2
    assert history.set_at(2) is None and history.set_at(3) is not None


def test_a_corrupt_history_entry_is_refused() -> None:
    storage = MemoryStorage()
    storage.put(b"vhist/" + (3).to_bytes(8, "big"), b"\x91\x90")  # an empty member list
    with pytest.raises(StorageMismatchError, match="corrupt validator history at 3"):
        ValidatorSetHistory.load(storage, 5, window_heights=10)
    with pytest.raises(StorageMismatchError, match="at 3 after 2"):
        storage.put(
            b"vhist/" + (3).to_bytes(8, "big"), b"\x91\x91\x92\xc4\x20" + bytes(32) + b"\x01"
        )
        ValidatorSetHistory.load(storage, 2, window_heights=10)


def test_the_schedule_answers_for_the_members_of_committed_heights() -> None:
    storage = MemoryStorage()
    live, ops = ValidatorSchedule.at_genesis(GENESIS_SET, evidence_max_age_heights=5)
    storage.write_batch(ops, sync=True)
    for height in range(1, 5):
        storage.write_batch(
            live.commit(height, [ValidatorUpdate(POOL[1], 2)] * (height == 1)), sync=True
        )
    restored = ValidatorSchedule.restore(storage, 4, evidence_max_age_heights=5)
    for height in range(1, 5):
        assert restored.members_at(height) == live.members_at(height) is not None
    assert POOL[1] not in (live.members_at(2) or ()) and POOL[1] in (live.members_at(3) or ())
    assert live.members_at(5) is None


# -- proposed blocks ----------------------------------------------------------------------------


def _block(n: int) -> tuple[bytes, object]:
    block = first_block(bytes(32), time_ms=GENESIS.genesis_time_ms + 1 + n)
    return bytes([n]) * 32, block


def test_a_peer_over_its_share_loses_its_oldest_block() -> None:
    cache = ProposedBlocks(max_blocks=10, max_per_peer=2, max_bytes=10_000, max_verdicts=4)
    for n in range(3):
        block_id, block = _block(n)
        assert cache.add(block_id, block, bytes(100), "p")  # type: ignore[arg-type]
    assert cache.get(bytes([0]) * 32) is None and cache.get(bytes([2]) * 32) is not None
    assert len(cache) == 2 and cache.evicted == 1


def test_the_heaviest_peer_makes_room_and_own_blocks_stay() -> None:
    cache = ProposedBlocks(max_blocks=3, max_per_peer=3, max_bytes=10_000, max_verdicts=4)
    ids = [_block(n) for n in range(4)]
    cache.add(ids[0][0], ids[0][1], bytes(100), OWN)  # type: ignore[arg-type]
    cache.add(ids[1][0], ids[1][1], bytes(100), "heavy")  # type: ignore[arg-type]
    cache.add(ids[2][0], ids[2][1], bytes(100), "heavy")  # type: ignore[arg-type]
    assert cache.add(ids[3][0], ids[3][1], bytes(100), "light")  # type: ignore[arg-type]
    assert cache.get(ids[0][0]) is not None and cache.get(ids[1][0]) is None
    assert cache.size_bytes == 300
    assert not cache.add(b"x" * 32, ids[0][1], bytes(20_000), "p")  # type: ignore[arg-type]


def test_verdicts_are_kept_for_the_height_and_never_replaced() -> None:
    cache = ProposedBlocks(max_blocks=4, max_per_peer=4, max_bytes=10_000, max_verdicts=2)
    cache.await_block(b"a" * 32)
    assert cache.is_awaited(b"a" * 32)
    cache.record(b"a" * 32, Verdict(True, frozenset()))
    cache.record(b"b" * 32, Verdict(False, frozenset()))
    assert not cache.can_judge() and not cache.is_awaited(b"a" * 32)
    with pytest.raises(AssertionError):
        cache.record(b"a" * 32, Verdict(False, frozenset()))
    cache.drop_below(2)
    assert cache.can_judge() and cache.verdict(b"a" * 32) is None


# -- next-height messages, sync, gossip, topics --------------------------------------------------


def test_future_messages_are_bounded_per_peer_and_in_total() -> None:
    buffer = FutureMessages(max_total=3, max_per_peer=2)
    vote = signed_vote(VALIDATORS.keys[0], 2, 0, VoteType.PREVOTE, None)
    results = [buffer.add(FutureMessage(2, peer, vote)) for peer in ["a", "a", "a", "b", "c"]]
    assert results == [True, True, False, True, False] and buffer.dropped == 2
    buffer.add(FutureMessage(3, "b", vote))
    assert [m.sender for m in buffer.take(2)] == ["a", "a", "b"]
    assert len(buffer) == 0  # the later one was dropped at the limit


def _sync(**limits: int) -> BlockSync:
    settings_ = {
        "max_peers": 3,
        "max_pending_requests": 2,
        "max_blocks_per_request": 4,
        "max_buffered_blocks": 8,
        "max_buffer_bytes": 1_000,
    }
    settings_.update(limits)
    return BlockSync(**settings_)


def test_sync_spreads_missing_heights_over_idle_peers() -> None:
    sync = _sync()
    for peer, height in [("a", 10), ("b", 6), ("c", 2)]:
        sync.note_height(peer, height)
    planned = sync.plan(1)
    assert [(r.peer, r.from_height, r.max_blocks) for r in planned] == [("a", 1, 4), ("b", 5, 2)]
    assert sync.plan(1) == []  # both slots busy
    sync.request_finished("a")
    assert [(r.peer, r.from_height) for r in sync.plan(1)] == [("a", 1)]


def test_sync_asks_unknown_peers_only_for_a_missing_decided_block() -> None:
    sync = _sync()
    sync.note_height("behind", 0)
    assert sync.plan(1) == []
    assert [(r.peer, r.from_height, r.max_blocks) for r in sync.plan(1, ask_unknown=True)] == [
        ("behind", 1, 1)
    ]


def test_sync_forgets_the_lowest_idle_peer_and_bounds_its_buffer() -> None:
    sync = _sync()
    for peer, height in [("a", 5), ("b", 1), ("c", 9)]:
        sync.note_height(peer, height)
    assert sync.note_height("d", 7) and sync.peer_height("b") is None
    block = SyncedBlock(
        CommittedBlock(first_block(bytes(32)), certificate(1, 0, bytes(32))), 600, "a", b""
    )
    assert sync.add(1, block, next_height=1) and sync.add(1, block, next_height=1)
    assert not sync.add(2, block, next_height=1)  # bytes
    assert not sync.add(9, replace(block, size_bytes=1), next_height=1)  # window
    sync.drop_below(2)
    assert sync.buffered == 0


def test_gossip_batches_respect_both_limits_and_the_queue_drops_its_oldest() -> None:
    raws = [kv_tx(0, n) for n in range(5)]
    gossip = TxGossip(max_queue_txs=4, max_batch_txs=10, max_batch_bytes=2 * len(raws[0]) + 40)
    assert gossip.push(raws[0]) and not gossip.push(raws[1])
    for raw in raws[2:]:
        gossip.push(raw)
    assert gossip.dropped == 1
    batches = [
        decode_inbound(TOPIC_TXS, data, GENESIS.params.max_block_bytes) for data in gossip.drain()
    ]
    assert [b.txs for b in batches if isinstance(b, TxBatch)] == [tuple(raws[1:3]), tuple(raws[3:])]
    assert gossip.drain() == []


@pytest.mark.parametrize(
    ("topic", "message", "ok"),
    [
        (
            TOPIC_CONSENSUS,
            signed_vote(key_of(set_at(1).proposer(0)), 1, 0, VoteType.PREVOTE, None),
            True,
        ),
        (TOPIC_STATUS, Status(1, bytes(32)), True),
        (TOPIC_TXS, TxBatch(()), True),
        (TOPIC_STATUS, TxBatch(()), False),
        (TOPIC_TXS, Status(1, bytes(32)), False),
    ],
)
def test_each_topic_carries_only_its_kinds(topic: str, message: object, ok: bool) -> None:
    data = encode_message(message)  # type: ignore[arg-type]
    if ok:
        assert decode_inbound(topic, data, GENESIS.params.max_block_bytes) == message
    else:
        with pytest.raises(PeerFault) as fault:
            decode_inbound(topic, data, GENESIS.params.max_block_bytes)
        assert fault.value.offence is Offence.MALFORMED


def test_genesis_accounts_enter_the_genesis_state() -> None:
    extra = GenesisAccount(key_pair("extra").public_key, Role.OBSERVER)
    genesis = replace(GENESIS, accounts=(*GENESIS.accounts, extra))
    core = NodeCore.open(MemoryStorage(), None, genesis)
    assert core.get_state(b"accounts/a/" + extra.public_key) is not None
    assert core.get_state(b"genesis/hash") == genesis.hash()


def test_the_first_block_commits_to_the_genesis_document() -> None:
    a = NodeCore.open(MemoryStorage(), None, GENESIS)
    other = make_genesis(timeout_propose_ms=2_000)  # the same chain id, validators, accounts
    b = NodeCore.open(MemoryStorage(), None, other)
    assert a.app_state_root != b.app_state_root  # the genesis hash is in the genesis state
    block = first_block(a.app_state_root)
    for core, valid in ((b, False), (a, True)):
        tip = ChainTip(
            CHAIN, GENESIS_MS, GENESIS.params, 0, None, core.app_state_root, GENESIS_SET, None
        )
        if valid:
            validate_block(block, tip, now_ms=None, verified_txs=frozenset())
        else:
            with pytest.raises(InvalidBlockError, match="app_state_root"):
                validate_block(block, tip, now_ms=None, verified_txs=frozenset())


def test_a_log_past_its_limit_stops_growing_and_refuses_to_explain_signatures() -> None:
    storage = MemoryStorage()
    record = encode_record(ValueValidity(1, bytes(32), True))
    signing = SigningRecord(1, 0, SigningStep.PREVOTE, b"sign-bytes")
    log = ConsensusLog(storage, 1, max_bytes=3 * len(record))
    log.append(record)
    assert log.flush(signing) and log.durable_count == 1
    for _ in range(3):
        log.append(record)
    assert not log.flush(signing) and log.refused_flushes == 1
    assert log.durable_count == 1 and len(list(storage.iterate_prefix(b"wal/"))) == 1
    log.reset(2)
    log.append(record)
    assert log.flush(signing)
    disabled = ConsensusLog(storage, 1, max_bytes=1 << 20, enabled=False)
    disabled.append(record)
    assert not disabled.flush(signing)
