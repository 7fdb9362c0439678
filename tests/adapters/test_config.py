"""Network settings check themselves; validators built from decoders judge form only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.adapters.config import (
    FLOOD_MARGIN_S,
    MAX_GOSSIP_MESSAGE_BYTES,
    GossipParams,
    Libp2pNetworkConfig,
    decoding_validator,
)
from node.adapters.errors import NetworkConfigError
from node.codec import decode_message, encode_message
from node.ports import Verdict
from node.types import BlockRequest


def make(**overrides: Any) -> Libp2pNetworkConfig:
    settings: dict[str, Any] = {"chain_id": "chain-a", "home": Path("/nonexistent"), **overrides}
    return Libp2pNetworkConfig(**settings)


def test_defaults_follow_the_measured_libp2p_limits() -> None:
    config = make()
    assert config.max_message_bytes < MAX_GOSSIP_MESSAGE_BYTES < 1_024_000
    gossip = config.gossip
    assert (gossip.degree, gossip.degree_low, gossip.degree_high) == (6, 4, 12)
    assert gossip.heartbeat_interval_s == 1
    assert gossip.protocols == ("/meshsub/1.1.0", "/meshsub/1.0.0")
    assert gossip.strict_signing
    # A pruned peer is back within a few heartbeats, not libp2p's 60 s, and a GRAFT at the
    # end of a back-off is not taken for a flood.
    assert gossip.heartbeat_interval_s <= gossip.prune_backoff_s <= 5 * gossip.heartbeat_interval_s
    assert gossip.graft_flood_threshold_s <= gossip.prune_backoff_s - FLOOD_MARGIN_S


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"chain_id": "bad chain"}, "chain id"),
        ({"agent": ""}, "agent"),
        ({"max_message_bytes": MAX_GOSSIP_MESSAGE_BYTES + 1}, "max_message_bytes"),
        ({"max_frame_bytes": 10}, "max_frame_bytes"),
        ({"max_peers": 0}, "max_peers"),
        ({"handshake_timeout_ms": 0}, "handshake_timeout_ms"),
        ({"peer_queue_bytes": 1024}, "peer_queue_bytes"),
        ({"gossip": GossipParams(degree=3, degree_low=4)}, "degree"),
        ({"gossip": GossipParams(protocols=("/meshsub/1.2.0",))}, "protocols"),
        ({"gossip": GossipParams(subscription_channel_messages=0)}, "subscription"),
        ({"gossip": GossipParams(heartbeat_interval_s=2, prune_backoff_s=1)}, "prune_backoff"),
        ({"gossip": GossipParams(unsubscribe_backoff_s=0)}, "unsubscribe_backoff"),
        ({"gossip": GossipParams(prune_backoff_s=5, graft_flood_threshold_s=4)}, "graft_flood"),
        ({"gossip": GossipParams(graft_flood_threshold_s=0)}, "graft_flood"),
    ],
)
def test_bad_settings_name_themselves(overrides: dict[str, Any], setting: str) -> None:
    with pytest.raises(NetworkConfigError, match=setting):
        make(**overrides)


def test_a_decoding_validator_rejects_garbage_and_oversize_accepts_the_rest() -> None:
    validate = decoding_validator(decode_message, max_bytes=64)
    good = encode_message(BlockRequest(height=7))
    assert validate(good) is Verdict.ACCEPT
    assert validate(b"\xc1garbage") is Verdict.REJECT
    assert validate(good + bytes(64)) is Verdict.REJECT
