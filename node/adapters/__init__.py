"""The node's I/O adapters: the ports of ``node.ports`` on real storage and a real network.

- ``leveldb_store.LevelDBStorage``: ``Storage`` on LevelDB (the only module importing plyvel).
- ``libp2p.Libp2pNetwork``: ``Network`` on py-libp2p, plus request/response, peer management
  and metrics (``libp2p`` is the only package importing libp2p and multiaddr: host, peers,
  direct streams, gossip, and the ``Libp2pNetwork`` facade).
- Sans-I/O parts they are built from, each testable alone: ``framing`` (length-prefixed
  frames), ``wire`` (payload formats), ``handshake`` (the hello exchanged on connect),
  ``resequencer`` (per-publisher gossip order), ``peer_scoring`` (penalties and bans),
  ``peers`` (the peer table), ``backoff`` (reconnect delays), ``queues``, ``metrics``; and
  ``identity`` (the node key file), ``streams``/``rpc`` (frames and request/response over
  any byte stream, under trio), ``config`` (settings, protocol ids,
  ``decoding_validator``), ``errors``.

Import the two adapters from their own modules: importing this package (or its sans-I/O
parts) does not load libp2p (0.8 s, ~84 MB) or plyvel.
"""
