"""The node's HTTP API (trio + h11): status, transactions, blocks, metrics, health.

- ``http``: the server (``serve_http``), with bounded connections, sizes and times;
- ``routes``: ``NodeApi``, the routes (documented there), over a ``gateway.NodeGateway``;
- ``views``: the JSON documents; ``client``: a blocking client for the command line.
"""
