"""Defaults the runtime asked for: a block fits in one message of the network adapter, and
transactions are gossiped in fewer, larger batches."""

from __future__ import annotations

from node.adapters.config import DEFAULT_MAX_MESSAGE_BYTES, MAX_GOSSIP_MESSAGE_BYTES
from node.chain import ConsensusParams, NodeConfig, SetTimer, TimerKind, TxSubmitted
from node.chain.genesis import DEFAULT_MAX_BLOCK_BYTES
from node.codec import ENVELOPE_OVERHEAD_BYTES, KIB
from tests.core.helpers import Solo, kv_tx


def test_a_default_block_fits_in_one_message_of_the_network_adapter() -> None:
    assert ConsensusParams().max_block_bytes == DEFAULT_MAX_BLOCK_BYTES == 512 * KIB
    block_message_bytes = DEFAULT_MAX_BLOCK_BYTES + ENVELOPE_OVERHEAD_BYTES
    assert block_message_bytes <= DEFAULT_MAX_MESSAGE_BYTES <= MAX_GOSSIP_MESSAGE_BYTES


def test_transactions_are_gossiped_every_500_ms_by_default_and_that_is_configurable() -> None:
    def gossip_delay_ms(config: NodeConfig) -> int:
        solo = Solo(config=config)
        actions = solo.core.handle(TxSubmitted(kv_tx(0, 0), solo.now_ms))
        timers = [a for a in actions if isinstance(a, SetTimer)]
        assert [t.key.kind for t in timers] == [TimerKind.TX_GOSSIP]
        return timers[0].delay_ms

    assert gossip_delay_ms(NodeConfig()) == 500
    assert gossip_delay_ms(NodeConfig(tx_gossip_interval_ms=100)) == 100
