"""``SimConfig``: every option of a run, checked, with the defaults the CLI shows.

A config plus its seed *is* the run: the same config gives the same trace hash. It is
immutable and converts to the exact command line that replays it (:meth:`SimConfig.argv`).
The health workload's options (``practitioners`` and ``patients`` per institution,
``devices`` per patient, ``reading_interval_ms``, ``miss_pct``) appear on that command line
only for health runs: the other workloads ignore them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from netsim.byzantine import ByzantineRole, parse_roles
from netsim.errors import ConfigError
from netsim.faults import FaultOptions
from netsim.limits import MAX_HEIGHTS, MAX_NODES, MAX_SIM_TIME_MS, MAX_VALIDATORS
from netsim.regions import TOPOLOGIES
from netsim.rng import check_seed
from netsim.workload import WORKLOADS

DEFAULT_ROLE_MIX: Final = "equivocate+double-vote,amnesia,silent,spam"
MAX_PRACTITIONERS: Final = 64
"""Health: most practitioners per institution."""
MAX_PATIENTS: Final = 1_000
"""Health: most patients per institution."""
MAX_DEVICES: Final = 4
"""Health: most devices per patient."""
"""Byzantine validators take these role sets in turn (``+`` joins roles of one node)."""


def parse_role_mix(text: str) -> tuple[tuple[ByzantineRole, ...], ...]:
    """``"equivocate+double-vote,silent"`` -> one role set per comma-separated item."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError("--byzantine-roles needs at least one role")
    return tuple(parse_roles(item.replace("+", ",")) for item in items)


def format_role_mix(mix: tuple[tuple[ByzantineRole, ...], ...]) -> str:
    """The inverse of :func:`parse_role_mix`."""
    return ",".join("+".join(role.value for role in roles) for roles in mix)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One run. ``nodes`` counts every node (validators included); ``byzantine`` validators
    take the role sets of ``byzantine_roles`` in turn."""

    seed: int = 0
    node: str = "core"
    validators: int = 4
    nodes: int = 4
    byzantine: int = 0
    byzantine_roles: tuple[tuple[ByzantineRole, ...], ...] = field(
        default_factory=lambda: parse_role_mix(DEFAULT_ROLE_MIX)
    )
    heights: int = 10
    faults: FaultOptions = field(default_factory=FaultOptions)
    swarm: bool = False
    topology: str = "global"
    workload: str = "generic"
    tx_rate: float = 20.0
    clients: int = 64
    payload_bytes: int = 64
    practitioners: int = 2
    """Health: practitioners each institution registers."""
    patients: int = 4
    """Health: patients each institution registers."""
    devices: int = 1
    """Health: devices each patient pairs (the first a CGM, the others glucose meters)."""
    reading_interval_ms: int = 300_000
    """Health: each device commits a reading this often (a CGM: every 5 minutes)."""
    miss_pct: int = 20
    """Health: the share of reminders a patient lets pass (they escalate), in percent."""
    liveness_bound_ms: int = 60_000
    max_sim_time_ms: int = 900_000
    stop_on_violation: bool = True
    shared_verification: bool = True

    def __post_init__(self) -> None:
        check = _Checker()
        check.seed(self.seed)
        check.within("validators", self.validators, 1, MAX_VALIDATORS)
        check.within("nodes", self.nodes, self.validators, MAX_NODES)
        check.within("byzantine", self.byzantine, 0, self.validators)
        check.within("heights", self.heights, 1, MAX_HEIGHTS)
        check.within("liveness_bound_ms", self.liveness_bound_ms, 1, MAX_SIM_TIME_MS)
        check.within("max_sim_time_ms", self.max_sim_time_ms, 1, MAX_SIM_TIME_MS)
        check.within("clients", self.clients, 1, 100_000)
        check.within("payload_bytes", self.payload_bytes, 1, 4_096)
        check.within("practitioners", self.practitioners, 1, MAX_PRACTITIONERS)
        check.within("patients", self.patients, 0, MAX_PATIENTS)
        check.within("devices", self.devices, 0, MAX_DEVICES)
        check.within("reading_interval_ms", self.reading_interval_ms, 1_000, MAX_SIM_TIME_MS)
        check.within("miss_pct", self.miss_pct, 0, 100)
        check.one_of("topology", self.topology, TOPOLOGIES)
        check.one_of("workload", self.workload, WORKLOADS)
        if not self.byzantine_roles or not all(self.byzantine_roles):
            raise ConfigError("byzantine_roles needs at least one non-empty role set")
        if not 0 <= self.tx_rate <= 100_000:
            raise ConfigError(f"tx_rate must be in 0..100000 per second, got {self.tx_rate}")

    @property
    def max_faulty_validators(self) -> int:
        """f = floor((n - 1) / 3): the Byzantine validators consensus is built to survive."""
        return (self.validators - 1) // 3

    def argv(self) -> list[str]:
        """The ``python -m netsim run`` arguments that reproduce this run exactly."""
        faults = self.faults
        args = [
            "--seed", str(self.seed),
            "--node", self.node,
            "--validators", str(self.validators),
            "--nodes", str(self.nodes),
            "--byzantine", str(self.byzantine),
            "--byzantine-roles", format_role_mix(self.byzantine_roles),
            "--heights", str(self.heights),
            "--topology", self.topology,
            "--workload", self.workload,
            "--tx-rate", repr(self.tx_rate),
            "--clients", str(self.clients),
            "--payload-bytes", str(self.payload_bytes),
            "--liveness-bound-ms", str(self.liveness_bound_ms),
            "--max-sim-time-ms", str(self.max_sim_time_ms),
        ]  # fmt: skip
        if self.workload == "health":
            args += [
                "--practitioners", str(self.practitioners),
                "--patients", str(self.patients),
                "--devices", str(self.devices),
                "--reading-interval-ms", str(self.reading_interval_ms),
                "--miss-pct", str(self.miss_pct),
            ]  # fmt: skip
        if self.swarm:
            args.append("--swarm")
        else:
            args += [
                "--faults", ",".join(kind.value for kind in faults.kinds) or "none",
                "--fault-window-ms", f"{faults.window_start_ms}:{faults.window_end_ms}",
                "--fault-gap-ms", str(faults.mean_gap_ms),
                "--fault-max-episode-ms", str(faults.max_episode_ms),
            ]  # fmt: skip
        if not self.stop_on_violation:
            args.append("--keep-going")
        if not self.shared_verification:
            args.append("--no-shared-verification")
        return args


class _Checker:
    def seed(self, value: int) -> None:
        try:
            check_seed(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def one_of(self, name: str, value: str, choices: Mapping[str, object]) -> None:
        if value not in choices:
            raise ConfigError(f"unknown {name} {value!r}; choose from {sorted(choices)}")

    def within(self, name: str, value: int, low: int, high: int) -> None:
        if type(value) is not int or not low <= value <= high:
            raise ConfigError(f"{name} must be an int in {low}..{high}, got {value!r}")
