"""The run configurations the netsim tests sweep, shared by the default and slow suites.

``safety_config(n, seed)``: ``n`` validators, ``f = (n-1)//3`` of them Byzantine with role
sets rotated by the seed (so every role meets every size), a swarm-style choice of fault
kinds drawn from the seed (each kind on with probability 1/2) in a short window, three
heights. Runs keep going after a violation so that safety is checked over the whole run.
"""

from __future__ import annotations

import random

from netsim.config import DEFAULT_ROLE_MIX, SimConfig, parse_role_mix
from netsim.faults import FaultKind, FaultOptions

ROLE_MIX = parse_role_mix(DEFAULT_ROLE_MIX)
SAFETY_SIZES = (4, 7, 10)


def safety_config(validators: int, seed: int, *, byzantine: int | None = None) -> SimConfig:
    """The sweep's run of ``validators`` validators for ``seed`` (f Byzantine by default)."""
    draw = random.Random(seed)
    kinds = tuple(kind for kind in FaultKind if draw.random() < 0.5)
    rotation = seed % len(ROLE_MIX)
    return SimConfig(
        seed=seed,
        validators=validators,
        nodes=validators,
        byzantine=(validators - 1) // 3 if byzantine is None else byzantine,
        byzantine_roles=ROLE_MIX[rotation:] + ROLE_MIX[:rotation],
        heights=3,
        topology="national",
        tx_rate=5.0,
        clients=4,
        faults=FaultOptions(
            kinds=kinds,
            window_start_ms=500,
            window_end_ms=6_000,
            mean_gap_ms=1_000,
            max_episode_ms=2_500,
        ),
        max_sim_time_ms=90_000,
        stop_on_violation=False,
    )
