"""A client's batch verified by the shell (``VerifiedTxsSubmitted``): one ``TxResult`` per
transaction in batch order, never verified again in the core, gossiped like single
submissions, and the event's contract enforced before anything changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

import node.core as node_core
from node.chain import TxResult, TxSubmitted, VerifiedTxsSubmitted
from node.codec import MAX_TXS_PER_BATCH, tx_hash
from node.errors import RejectReason, TxRejected
from node.mempool import VerifiedTx, verify_transaction, verify_transactions
from node.testing import TxFactory
from tests.core.helpers import CHAIN, CLIENTS, Solo, kv_tx

OTHER_CHAIN_TX = TxFactory("other").encoded(CLIENTS[2], "kv.set", b"", nonce=0)


def submitted(solo: Solo, raws: list[bytes]) -> VerifiedTxsSubmitted:
    """What the runtime hands the core after ``verify_transactions`` ran in a thread."""
    results = tuple(verify_transactions(raws, CHAIN))
    return VerifiedTxsSubmitted(tuple(tx_hash(raw) for raw in raws), results, solo.now_ms)


def results_of(actions: Sequence[object]) -> list[TxResult]:
    return [action for action in actions if isinstance(action, TxResult)]


def test_a_batch_is_answered_in_order_and_never_verified_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    solo = Solo()
    raws = [kv_tx(0, 0), b"\x91\x00", kv_tx(1, 0), OTHER_CHAIN_TX, kv_tx(0, 1), kv_tx(0, 1)]
    event = submitted(solo, raws)

    def refuse(raw: bytes, chain_id: str) -> VerifiedTx:
        raise AssertionError("verified again in the core task")

    monkeypatch.setattr(node_core, "verify_transaction", refuse)
    results = results_of(solo.core.handle(event))

    assert [r.tx_hash for r in results] == [tx_hash(raw) for raw in raws]
    assert [r.accepted for r in results] == [True, False, True, False, True, False]
    assert results[1].reason is RejectReason.MALFORMED
    assert results[3].reason is RejectReason.WRONG_CHAIN
    assert results[5].reason is RejectReason.DUPLICATE
    assert solo.core.mempool_size == 3
    assert solo.core.stats.txs_admitted == 3 and solo.core.stats.txs_rejected == 3


def test_a_batch_admits_what_single_submissions_admit() -> None:
    raws = [kv_tx(client, nonce) for nonce in range(3) for client in range(3)] + [kv_tx(0, 9)]
    one_by_one, batched = Solo(), Solo()
    singles = [r for raw in raws for r in results_of(one_by_one.core.handle(TxSubmitted(raw, 0)))]
    together = results_of(batched.core.handle(submitted(batched, raws)))

    assert [(r.tx_hash, r.accepted, r.reason) for r in together] == [
        (r.tx_hash, r.accepted, r.reason) for r in singles
    ]
    assert batched.core.mempool_size == one_by_one.core.mempool_size == len(raws) - 1


@pytest.mark.parametrize(
    "breakage",
    [
        "list instead of tuple",
        "one hash short",
        "hash of another tx",
        "verified for another chain",
        "neither verified nor refused",
        "too many",
    ],
)
def test_an_event_breaking_its_contract_is_a_shell_bug_and_changes_nothing(
    breakage: str,
) -> None:
    solo = Solo()
    good = submitted(solo, [kv_tx(0, 0), kv_tx(1, 0)])
    foreign = verify_transaction(OTHER_CHAIN_TX, "other")
    broken: object = {
        "list instead of tuple": replace(good, results=list(good.results)),  # type: ignore[arg-type]
        "one hash short": replace(good, tx_hashes=good.tx_hashes[:1]),
        "hash of another tx": replace(good, tx_hashes=good.tx_hashes[::-1]),
        "verified for another chain": replace(
            good, tx_hashes=(foreign.tx_hash,), results=(foreign,)
        ),
        "neither verified nor refused": replace(
            good,
            tx_hashes=(b"\x00" * 32,),
            results=("tx",),  # type: ignore[arg-type]
        ),
        "too many": replace(
            good,
            tx_hashes=(good.tx_hashes[0],) * (MAX_TXS_PER_BATCH + 1),
            results=(TxRejected(RejectReason.MALFORMED, "x"),) * (MAX_TXS_PER_BATCH + 1),
        ),
    }[breakage]

    with pytest.raises((TypeError, ValueError)):
        solo.core.handle(broken)  # type: ignore[arg-type]
    assert solo.core.mempool_size == 0 and solo.core.stats.txs_admitted == 0
