"""Who is where, who is a validator, and which validator serves each non-validator.

Nodes ``0 .. validators-1`` are validators (hospitals' and institutions' nodes); the others are
non-validators (patients' nodes and devices). Validators are spread evenly over the
topology's cities, non-validators at random. Each non-validator is served by a few
*upstream* validators — the nearest ones, its own city's first — which announce it decided
heights and serve it blocks: non-validators never see votes, which keeps a network of a
thousand of them cheap to simulate, as it is cheap to run. With ``b`` Byzantine validators a
run gives each non-validator ``b + 1`` upstreams, so at least one is honest (an eclipse, where
every peer of a node lies, is outside what consensus can fix).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from netsim.errors import ConfigError
from netsim.limits import MAX_NODES, MAX_VALIDATORS
from netsim.regions import LatencyTable, LinkClass

VALIDATOR_UPLINK_BYTES_PER_S: Final = 12_500_000
"""Uplink of a validator (an institution's data centre): 100 Mbit/s."""

NON_VALIDATOR_UPLINK_BYTES_PER_S: Final = 1_250_000
"""Uplink of a non-validator (a home or mobile connection): 10 Mbit/s."""


@dataclass(frozen=True, slots=True)
class Topology:
    """Placement and roles of the nodes of one run (immutable)."""

    validators: int
    nodes: int
    table: LatencyTable
    city_of: tuple[int, ...]
    upstreams: tuple[tuple[int, ...], ...]
    downstream: tuple[tuple[int, ...], ...]
    uplink_bytes_per_s: tuple[int, ...]

    def is_validator(self, node: int) -> bool:
        """True for nodes ``0 .. validators-1``."""
        return node < self.validators

    def base_latency_us(self, src: int, dst: int) -> int:
        """One-way latency from ``src`` to ``dst`` without jitter, in microseconds."""
        return self.table.latency_us[self.city_of[src]][self.city_of[dst]]

    def link_class(self, src: int, dst: int) -> LinkClass:
        """How far apart ``src`` and ``dst`` are."""
        return self.table.classes[self.city_of[src]][self.city_of[dst]]

    def validator_ids(self) -> range:
        """The validators' node ids."""
        return range(self.validators)


def build_topology(
    validators: int,
    nodes: int,
    table: LatencyTable,
    rng: random.Random,
    upstreams_per_node: int = 1,
) -> Topology:
    """Place ``nodes`` nodes, the first ``validators`` of them validators, over ``table``;
    each non-validator gets ``upstreams_per_node`` (capped at ``validators``) upstreams.

    Raises ConfigError unless 1 <= validators <= min(nodes, MAX_VALIDATORS),
    nodes <= MAX_NODES and upstreams_per_node >= 1.
    """
    if not 1 <= validators <= MAX_VALIDATORS:
        raise ConfigError(f"validators must be in 1..{MAX_VALIDATORS}, got {validators}")
    if not validators <= nodes <= MAX_NODES:
        raise ConfigError(f"nodes must be in {validators}..{MAX_NODES}, got {nodes}")
    if upstreams_per_node < 1:
        raise ConfigError("each non-validator needs at least one upstream validator")
    city_count = len(table.cities)
    order = list(range(city_count))
    rng.shuffle(order)
    city_of = [order[i % city_count] for i in range(validators)]
    city_of += [rng.randrange(city_count) for _ in range(nodes - validators)]
    count = min(upstreams_per_node, validators)
    upstreams: list[tuple[int, ...]] = [()] * validators
    upstreams += [
        _nearest_validators(city_of, validators, city, table, rng, count=count)
        for city in city_of[validators:]
    ]
    downstream: list[list[int]] = [[] for _ in range(validators)]
    for node in range(validators, nodes):
        for validator in upstreams[node]:
            downstream[validator].append(node)
    uplinks = [VALIDATOR_UPLINK_BYTES_PER_S] * validators
    uplinks += [NON_VALIDATOR_UPLINK_BYTES_PER_S] * (nodes - validators)
    return Topology(
        validators=validators,
        nodes=nodes,
        table=table,
        city_of=tuple(city_of),
        upstreams=tuple(upstreams),
        downstream=tuple(tuple(d) for d in downstream),
        uplink_bytes_per_s=tuple(uplinks),
    )


def _nearest_validators(
    city_of: list[int],
    validators: int,
    city: int,
    table: LatencyTable,
    rng: random.Random,
    *,
    count: int,
) -> tuple[int, ...]:
    """The ``count`` validators of lowest base latency from ``city`` (ties at random)."""
    latency = table.latency_us[city]
    ranked = sorted(range(validators), key=lambda v: (latency[city_of[v]], rng.random()))
    return tuple(ranked[:count])
