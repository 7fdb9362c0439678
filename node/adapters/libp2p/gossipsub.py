"""GossipSub set up for a consensus network: the router, and the Pubsub it runs under.

libp2p's defaults do not suit consensus (the pitfalls of ``docs/NETWORKING.md``, cited by
number): ``make_pubsub`` sets a 1 s heartbeat and D=6/4/12 with neither spam protection nor
adaptive gossip (pitfall 3), /meshsub/1.1.0 and 1.0.0 only (pitfall 4), strict signing
(pitfall 13), a prune back-off of a few heartbeats, no peer exchange, no pending queue,
subscription buffers raised before subscribing (pitfall 6), and message sequence numbers
that start at the clock in nanoseconds (``first_gossip_seqno``). ``ConsensusGossipSub``
drops what does not fit: the equivocation store (pitfall 5) and the replay of old messages
to late subscribers, and it can forget a peer's back-off.
"""

from __future__ import annotations

import time

from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub

from node.adapters.config import GossipParams


class ConsensusGossipSub(GossipSub):
    """GossipSub without the behaviours that do not fit a consensus network.

    - ``_check_equivocation`` keeps the payloads of ~1000 messages to compare (pitfall 5,
      hundreds of MB with large messages); equivocation is the consensus core's business.
    - ``send_recent_messages`` replays the message cache to a peer that (re)subscribes, and
      the pending queue holds messages for connected peers whose subscription is not known
      yet (warning on every publish once full): either way a peer would receive broadcasts
      made while it was not subscribed. Gossip is best effort; the core syncs what it missed.
    """

    def _check_equivocation(self, msg: rpc_pb2.Message) -> bool:
        return True

    async def send_recent_messages(self, peer_id: ID, topic: str) -> None:
        return None

    def _prune_pending_messages(self, peer_id: ID) -> None:
        self._pending_messages.pop(peer_id, None)

    def forget_backoff(self, peer_id: ID) -> int:
        """Drop ``peer_id``'s prune back-off (every topic) and GRAFT-flood records; how many.

        libp2p keeps a back-off across disconnects: a peer pruned (or that left a topic) and
        then restarted has its GRAFTs refused, each refusal extending the back-off and sent
        back as a PRUNE that makes the restarted peer back off too — it stays out of the
        mesh, unheard, for a back-off or more. Called only for members that disconnected or
        reconnected, never for a connected peer, nor a banned one."""
        cleared = 0
        for backed_off in self.back_off.values():
            if backed_off.pop(peer_id, None) is not None:
                cleared += 1
        cleared += len(self.graft_flood_tracking.pop(peer_id, {}))
        return cleared


def make_pubsub(host: IHost, gossip: GossipParams) -> tuple[ConsensusGossipSub, Pubsub]:
    """The GossipSub router of ``host`` and the Pubsub over it, set up as ``gossip`` says.

    Also raises libp2p's subscription buffer to ``gossip.subscription_channel_messages``:
    libp2p reads that module global when subscribing (its default, 32, drops bursts)."""
    router = ConsensusGossipSub(
        protocols=[TProtocol(p) for p in gossip.protocols],
        degree=gossip.degree,
        degree_low=gossip.degree_low,
        degree_high=gossip.degree_high,
        heartbeat_interval=gossip.heartbeat_interval_s,
        spam_protection_enabled=False,
        adaptive_gossip_enabled=False,
        # IP diversity means nothing in a permissioned network whose peers may share a
        # host; admission is the handshake's job.
        eclipse_protection_enabled=False,
        max_pending_messages_per_peer=0,
        do_px=False,
        prune_back_off=gossip.prune_backoff_s,
        unsubscribe_back_off=gossip.unsubscribe_backoff_s,
    )
    router.graft_flood_threshold = float(gossip.graft_flood_threshold_s)
    pubsub = Pubsub(
        host,
        router,
        strict_signing=gossip.strict_signing,
        seen_ttl=gossip.seen_ttl_s,
        validation_timeout=gossip.validation_timeout_s,
    )
    pubsub.counter = first_gossip_seqno()
    pubsub_module.SUBSCRIPTION_CHANNEL_SIZE = gossip.subscription_channel_messages
    return router, pubsub


def first_gossip_seqno() -> int:
    """Where libp2p's counter of our gossip messages starts: the wall clock in nanoseconds.

    Peers know a message by (publisher, sequence number) and drop one whose id they have
    seen within ``seen_ttl_s``. py-libp2p starts the counter at the clock in *seconds* and
    adds one per message, so a node that published more than once a second runs ahead of the
    clock; restarted, it would reuse ids its peers remember, and they would drop its messages
    as duplicates until the counter passed the old one (a 4-validator chain stalled ~48 s).
    Nanoseconds, as go-libp2p does, keep ids unique across restarts (up to 10^9 messages a
    second) and increasing for peers that check sequence numbers."""
    return time.time_ns()
