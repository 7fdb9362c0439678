"""netsim: a deterministic, seed-replayable simulator of Big Health DAO networks.

It runs the real chain core (``node.core.NodeCore``) of many nodes — validators and
non-validators — in one process, in virtual time, through a simulated network with regional
latency, jitter, loss, duplication, reordering, bandwidth limits and partitions, on disks that
lose unsynced writes in a crash and clocks that drift, with Byzantine validators among them;
and it checks, on every decision, that the network stays safe (agreement, validity, identical
state roots, no honest double-sign) and live once faults heal. One master seed decides
everything, so any run — and any failure — replays exactly from its seed and options.

    python -m netsim run --validators 16 --nodes 200 --byzantine 5 --heights 100 \\
        --seed 42 --faults partition,crash --json out.json --plot out.png

Layers, bottom up:

- :mod:`~netsim.engine` (event heap, virtual time), :mod:`~netsim.rng` (streams from one
  seed), :mod:`~netsim.trace` (the trace hash), :mod:`~netsim.limits` (every bound);
- the simulated world: :mod:`~netsim.regions` and :mod:`~netsim.topology` (where nodes are),
  :mod:`~netsim.network` (``SimNetwork``), :mod:`~netsim.storage` (``SimStorage``),
  :mod:`~netsim.clock` (``SimClock``), :mod:`~netsim.host` (a node's machine: process state,
  timers, crash, pause);
- what runs on it: :mod:`~netsim.node_api` (the node contract), :mod:`~netsim.core_adapter`
  (``NodeCore`` behind the simulator's shell), :mod:`~netsim.byzantine` (lying wrappers),
  :mod:`~netsim.workload` (clients), :mod:`~netsim.senders` (one transaction in flight per
  client), :mod:`~netsim.health_workload` (the diabetes-care story, with its cast
  :mod:`~netsim.health_parties`, :mod:`~netsim.health_referral` and
  :mod:`~netsim.health_checks`);
- what happens to it and what is checked: :mod:`~netsim.faults` (fault plans),
  :mod:`~netsim.injector`, :mod:`~netsim.checkers`;
- a run and its outputs: :mod:`~netsim.simulation`, :mod:`~netsim.result`,
  :mod:`~netsim.report`, :mod:`~netsim.plots`, :mod:`~netsim.progress`, :mod:`~netsim.cli`.

``python -m netsim live`` (:mod:`~netsim.live`) runs real node processes instead.
"""

from netsim.config import SimConfig
from netsim.errors import ConfigError, LimitExceeded, NetsimError
from netsim.faults import FaultKind, FaultOptions
from netsim.result import RunResult
from netsim.simulation import NodeBuilder, RunSetup, Simulation

__all__ = [
    "ConfigError",
    "FaultKind",
    "FaultOptions",
    "LimitExceeded",
    "NetsimError",
    "NodeBuilder",
    "RunResult",
    "RunSetup",
    "SimConfig",
    "Simulation",
]
