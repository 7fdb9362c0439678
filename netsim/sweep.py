"""Running the seeds of ``python -m netsim sweep``: in this process or on a Dask cluster.

A sweep runs one :class:`~netsim.simulation.Simulation` per seed and reports each seed's
outcome (a small dict, :func:`sweep_one`) as soon as it is known. Where the seeds run:

- ``workers=0``: one after another in this process, in seed order;
- ``scheduler=ADDRESS``: on an existing Dask (``dask.distributed``) cluster, e.g. one
  started with ``dask scheduler`` and ``dask worker ADDRESS`` on several machines, each
  with this package installed at the same version (a worker imports ``netsim`` to run a
  seed);
- otherwise: on a ``LocalCluster`` of ``workers`` single-threaded worker processes (by
  default as many as this machine has cores), started for the sweep and stopped after it.

On a cluster, outcomes arrive in finishing order (``distributed.as_completed``). At most
``in_flight_seeds`` seeds are submitted and not yet reported at any time, so a sweep of any
length holds a bounded number of futures on the scheduler; the next seed is submitted as
one finishes. A seed whose task fails on the cluster (its worker died, say) is reported
with status ``error`` and the exception, like any failed seed, with its replay command.

This is the only netsim module that imports ``dask`` or ``distributed`` (the import rules
say so), and only when a cluster is used: ``python -m netsim run`` never loads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from netsim.builders import builder_for
from netsim.config import SimConfig
from netsim.errors import ConfigError, LimitExceeded
from netsim.simulation import Simulation

if TYPE_CHECKING:
    from distributed import Client, Future

Outcome = dict[str, Any]
"""One seed's outcome: ``seed``, ``argv`` (the run's options), ``status`` (``passed``,
``failed``, ``limit`` or ``error``) and ``detail`` (one line)."""

RunOne = Callable[[SimConfig], Outcome]

SCHEDULER_CONNECT_TIMEOUT_S: Final = 30
"""How long to wait for a Dask scheduler given by address before giving up, in seconds."""

IN_FLIGHT_SEEDS_PER_THREAD: Final = 4
"""Seeds submitted per worker thread ahead of their results (keeps every worker busy)."""

MIN_IN_FLIGHT_SEEDS: Final = 16
"""Seeds submitted ahead even when the cluster reports few threads (workers may join)."""

MAX_IN_FLIGHT_SEEDS: Final = 4_096
"""Most seeds submitted and not yet reported, whatever the cluster's size."""


def sweep_one(config: SimConfig) -> Outcome:
    """Run one seed of a sweep (in this process or on a worker); a small picklable outcome."""
    try:
        result = Simulation(config, builder_for(config.node)).run()
    except LimitExceeded as exc:
        return _outcome(config, "limit", str(exc))
    if result.passed:
        detail = f"{result.heights_decided} heights, trace {result.trace_hash[:16]}"
        return _outcome(config, "passed", detail)
    first = result.violations[0].describe() if result.violations else ""
    return _outcome(config, "failed", first)


def _outcome(config: SimConfig, status: str, detail: str) -> Outcome:
    return {"seed": config.seed, "argv": config.argv(), "status": status, "detail": detail}


@dataclass(frozen=True, slots=True)
class SweepPlace:
    """Where a sweep's seeds run: ``scheduler`` (an address) or a local cluster of
    ``workers`` processes, or this process when ``workers`` is 0 and no scheduler."""

    workers: int
    scheduler: str | None = None

    @classmethod
    def from_options(cls, workers: int | None, scheduler: str | None) -> SweepPlace:
        """The place ``--workers`` / ``--scheduler`` name (ConfigError for a bad pair)."""
        if scheduler is not None:
            if workers is not None:
                raise ConfigError(
                    "--workers sizes a local cluster; with --scheduler the cluster's "
                    "own workers run the seeds"
                )
            if not scheduler.strip():
                raise ConfigError("--scheduler needs an address, e.g. tcp://10.0.0.5:8786")
            return cls(workers=0, scheduler=scheduler.strip())
        if workers is None:
            return cls(workers=machine_cores())
        if workers < 0:
            raise ConfigError(f"--workers must be >= 0 (0: in this process), got {workers}")
        return cls(workers=workers)

    def describe(self) -> str:
        """Words for the sweep's first line."""
        if self.scheduler is not None:
            return f"on the Dask cluster of scheduler {self.scheduler}"
        if self.workers == 0:
            return "in this process"
        return f"on a local Dask cluster of {self.workers} worker process(es)"


def machine_cores() -> int:
    """The cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has it
        return max(1, os.cpu_count() or 1)


def sweep_outcomes(
    configs: Sequence[SimConfig], place: SweepPlace, run_one: RunOne = sweep_one
) -> Iterator[tuple[SimConfig, Outcome]]:
    """Each seed's outcome as soon as it is known (seed order in this process, finishing
    order on a cluster). Raises ConfigError if the scheduler cannot be reached."""
    if place.scheduler is None and place.workers == 0:
        for config in configs:
            yield config, run_one(config)
        return
    with _client(place) as client:
        yield from _cluster_outcomes(configs, client, run_one)


@contextmanager
def _client(place: SweepPlace) -> Iterator[Client]:
    """A client of the scheduler at ``place.scheduler``, or of a local cluster started
    here; closed (and the local cluster stopped) on leaving."""
    # distributed is only partly typed: its untyped calls are marked as such
    from distributed import Client, LocalCluster  # noqa: PLC0415  (loaded only for clusters)

    if place.scheduler is not None:
        try:
            timeout = f"{SCHEDULER_CONNECT_TIMEOUT_S}s"
            client = Client(place.scheduler, timeout=timeout)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {place.scheduler}: {exc}"
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=place.workers,
            threads_per_worker=1,  # a simulation is pure Python: one seed per process
            processes=True,
            dashboard_address=None,
            # a failed task comes back through its future (an ``error`` outcome): what the
            # workers log below CRITICAL is noise, such as a heartbeat racing the shutdown
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def _cluster_outcomes(
    configs: Sequence[SimConfig], client: Client, run_one: RunOne
) -> Iterator[tuple[SimConfig, Outcome]]:
    from distributed import as_completed  # noqa: PLC0415  (loaded only for clusters)

    threads = sum(client.nthreads().values())  # type: ignore[no-untyped-call]
    in_flight = min(
        MAX_IN_FLIGHT_SEEDS, max(MIN_IN_FLIGHT_SEEDS, IN_FLIGHT_SEEDS_PER_THREAD * threads)
    )
    waiting = iter(configs)
    config_of: dict[Future[Outcome], SimConfig] = {}
    finished = as_completed()  # type: ignore[no-untyped-call]

    def submit_next() -> None:
        config = next(waiting, None)
        if config is not None:
            future = client.submit(run_one, config, pure=False)  # a fresh key per task
            config_of[future] = config
            finished.add(future)  # type: ignore[no-untyped-call]

    for _ in range(in_flight):
        submit_next()
    for future in finished:
        config = config_of.pop(future)
        yield config, _result(future, config)
        future.release()
        submit_next()


def _result(future: Future[Outcome], config: SimConfig) -> Outcome:
    """The outcome a finished future holds, or an ``error`` outcome if its task failed."""
    try:
        outcome = future.result()
    except Exception as exc:  # the task failed on the cluster: report it as the seed's
        return _outcome(config, "error", f"{type(exc).__name__}: {exc}")
    return outcome
