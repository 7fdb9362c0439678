"""Transactions the shell verified in worker threads (``VerifiedTxsReceived``): admitted
like a raw batch, never verified twice, and the event's contract enforced."""

from __future__ import annotations

from dataclasses import replace

import pytest

import node.core as node_core
from node.chain import (
    MessageReceived,
    Offence,
    TxSubmitted,
    VerifiedTxsReceived,
)
from node.chain.messages import TOPIC_TXS
from node.codec import MAX_TXS_PER_BATCH, encode_message
from node.errors import RejectReason, TxRejected
from node.mempool import VerifiedTx, verify_transaction, verify_transactions
from node.testing import TxFactory
from node.types import TxBatch
from tests.core.helpers import CHAIN, CLIENTS, Solo, kv_tx, misbehaviours

SENDER = "peer-7"
OTHER_CHAIN_TX = TxFactory("other").encoded(CLIENTS[2], "kv.set", b"", nonce=0)


def verified_event(solo: Solo, raws: list[bytes]) -> VerifiedTxsReceived:
    """What a shell feeds after ``verify_transactions`` ran in a worker thread."""
    return VerifiedTxsReceived.from_results(SENDER, verify_transactions(raws, CHAIN), solo.now_ms)


def test_verified_transactions_enter_the_mempool_without_a_second_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    solo = Solo()
    event = verified_event(solo, [kv_tx(client, 0) for client in range(4)])

    def refuse(raw: bytes, chain_id: str) -> VerifiedTx:
        raise AssertionError("verified again in the core task")

    monkeypatch.setattr(node_core, "verify_transaction", refuse)
    actions = solo.core.handle(event)

    assert solo.core.mempool_size == 4
    assert actions == [] and solo.core.stats.misbehaviours == 0


def test_the_same_batch_raw_or_verified_fills_the_mempool_alike() -> None:
    raws = [kv_tx(0, 0), kv_tx(0, 1), kv_tx(1, 0), kv_tx(0, 0), kv_tx(2, 7)]
    raw_node, verified_node = Solo(), Solo()
    batch = encode_message(TxBatch(tuple(raws)))
    raw_node.core.handle(MessageReceived(SENDER, TOPIC_TXS, batch, raw_node.now_ms))
    verified_node.core.handle(verified_event(verified_node, raws))
    assert raw_node.core.mempool_size == verified_node.core.mempool_size == 3
    for client in CLIENTS[:3]:
        sender = client.public_key
        assert raw_node.core.next_nonce(sender) == verified_node.core.next_nonce(sender)


def test_a_refusal_only_a_dishonest_peer_causes_reports_the_peer_once() -> None:
    solo = Solo()
    genuine = kv_tx(1, 0)
    forged = genuine[:-1] + bytes([genuine[-1] ^ 1])  # the signature's last byte
    event = verified_event(solo, [kv_tx(0, 0), forged, OTHER_CHAIN_TX])
    assert [r.reason for r in event.rejected] == [
        RejectReason.BAD_SIGNATURE,
        RejectReason.WRONG_CHAIN,
    ]

    reports = misbehaviours(solo.core.handle(event))

    assert [(r.peer, r.offence) for r in reports] == [(SENDER, Offence.INVALID_SIGNATURE)]
    assert solo.core.mempool_size == 1


def test_transactions_the_application_refuses_are_nobodys_fault() -> None:
    solo = Solo()
    held = kv_tx(0, 0)
    solo.core.handle(TxSubmitted(held, solo.now_ms))
    event = verified_event(solo, [held, kv_tx(1, 3)])  # already held; a nonce gap
    assert misbehaviours(solo.core.handle(event)) == []
    assert solo.core.mempool_size == 1


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"verified": [None]}, TypeError),
        ({"verified": ("raw bytes",)}, TypeError),
        ({"rejected": (RejectReason.MALFORMED,)}, TypeError),
        ({"verified": (verify_transaction(OTHER_CHAIN_TX, "other"),)}, ValueError),
        (
            {"rejected": (TxRejected(RejectReason.MALFORMED, "x"),) * (MAX_TXS_PER_BATCH + 1)},
            ValueError,
        ),
    ],
    ids=["a_list", "not_verified", "not_a_refusal", "another_chain", "more_than_a_batch"],
)
def test_an_event_breaking_its_contract_is_a_shell_bug_and_changes_nothing(
    change: dict[str, object], error: type[Exception]
) -> None:
    solo = Solo()
    event = replace(verified_event(solo, [kv_tx(0, 0)]), **change)  # type: ignore[arg-type]
    with pytest.raises(error):
        solo.core.handle(event)
    assert solo.core.mempool_size == 0 and solo.core.stats.messages_received == 0
