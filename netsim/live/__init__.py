"""``python -m netsim live``: the simulator's run, with real node processes on this machine.

    python -m netsim live --validators 4 --nodes 8 --heights 30 --tx-rate 20

Makes a testnet (``python -m node testnet``: a home per node, a shared genesis, free ports
on 127.0.0.1), starts one ``python -m node run`` process per node (``node.cli.localnet``'s
``LocalNetwork``), drives the workload of the simulator's ``generic`` kind — clients signing
``kv.set`` transactions with consecutive nonces at ``--tx-rate`` per second in all, each
client's sent to one validator, a sender thread per validator — through the nodes' HTTP API
(``node.api.client``), and watches every node's ``/status`` and ``/blocks``. It prints one
line per height once every validator committed it (with whether they agree), then the
simulator's summary (``netsim.report``), its timing lines replaced by what a live run
measures (``netsim.live.figures``):

- commit latency: per transaction, from the moment this process sent it to the moment this
  process learned that the validator it was sent to committed the block that holds it (a
  long poll of that validator's ``GET /events`` returns as soon as it commits a block);
- block interval: the difference between consecutive blocks' header times (the proposer's
  clock when it proposed the block).

The run ends when every validator committed ``--heights`` heights (status 0 if every node
agreed on every block, 1 otherwise), at ``--timeout-s`` (1), or on Ctrl-C (130). The node
processes are always stopped (SIGTERM, then SIGKILL past a deadline; on Linux they also die
with this process), and the testnet directory is removed unless ``--output`` or ``--keep``.

Unlike ``run``, a live run is not replayable: the seed only fixes the workload's keys and
values. This package is a shell beside the simulator, not part of it: it runs processes,
reads clocks and talks HTTP (docs/ARCHITECTURE.md, "Import rules"); the rest of ``netsim``
never imports it, except ``netsim.cli`` to wire the ``live`` command.

Modules: ``options`` (``LiveOptions``, the command's arguments), ``workload`` (the
transaction sender), ``watch`` (the chain as the nodes report it, and the commit clocks),
``figures`` (latencies, intervals, the ``RunResult`` and its summary; no I/O), ``run`` (the
run itself).
"""

from __future__ import annotations

from netsim.live.options import LiveError, LiveOptions, add_live_parser
from netsim.live.run import LiveRun, run_live

__all__ = ["LiveError", "LiveOptions", "LiveRun", "add_live_parser", "run_live"]
