"""The libp2p network adapter: ``Libp2pNetwork``, the ``Network`` port on py-libp2p.

The only package that imports libp2p and multiaddr; importing it loads libp2p (~0.8 s,
~84 MB). Its modules, one job each (``network`` says what is set up, and why):

- ``network``: ``Libp2pNetwork``, the facade the node uses (the port, request/response, peer
  management, metrics), and ``open_libp2p_network``;
- ``host``: the py-libp2p host: identity, Noise and Yamux, running and stopping, streams;
- ``gossipsub``: the GossipSub router and its Pubsub, set up for a consensus network;
- ``gossip``: subscriptions, topic validation, publishing, each publisher's order;
- ``peers``: connections, the hello, persistent peers, scores and bans;
- ``direct``: direct messages and request/response over the node's own streams;
- ``inbound``: the node's per-topic validators and the inbound queue.

The sans-I/O parts they are built from (``framing``, ``wire``, ``handshake``, ``rpc``, ...)
and the settings (``node.adapters.config``) are modules of ``node.adapters``, importable
without libp2p.
"""

from node.adapters.libp2p.host import make_key_pair, peer_id_of
from node.adapters.libp2p.network import Libp2pNetwork, open_libp2p_network

__all__ = ["Libp2pNetwork", "make_key_pair", "open_libp2p_network", "peer_id_of"]
