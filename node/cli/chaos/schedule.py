"""The fault schedule of a campaign: a seeded, replayable stream of episodes.

An episode is one fault, held for a while, then healed. The stream comes in rounds of
``ROUND_KILLS + 3`` episodes, shuffled within each round: ``ROUND_KILLS`` kills (``kill -9``
and a restart; one of them restarts the node with a skewed clock), one pause
(SIGSTOP/SIGCONT), one partition (a side cut off both ways) and one one-way link loss (a
receiver drops what one sender sends it). ``episodes(seed, nodes)`` yields the same episodes
for the same seed and nodes, forever; a campaign takes what it needs. Only the nodes' names
come in: the schedule knows nothing of processes.

Every episode touches at most one validator's ability to vote, or splits the validators
two against two (no side has a quorum then): with 4 validators (f = 1) the chain must stay
safe throughout and live again after each heal.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import islice
from typing import Final

ROUND_KILLS: Final = 10
"""Kills in each round of the schedule (one of them with a skewed clock)."""
MAX_SKEW_MS: Final = 3_000
"""The largest clock skew of a restart, either way (well inside the genesis' default
``max_future_drift_ms`` of 10 s)."""
KILL_HOLD_S: Final = (0.0, 1.5)
PAUSE_HOLD_S: Final = (1.0, 4.0)
PARTITION_HOLD_S: Final = (2.0, 6.0)
ONE_WAY_HOLD_S: Final = (2.0, 5.0)


class FaultKind(Enum):
    """What an episode does."""

    KILL = "kill"
    SKEWED_RESTART = "skewed_restart"
    PAUSE = "pause"
    PARTITION = "partition"
    ONE_WAY = "one_way"


@dataclass(frozen=True, slots=True)
class Nodes:
    """The names of a campaign's nodes: validators, and observers (custodians among them)."""

    validators: tuple[str, ...]
    observers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.validators) < 1:
            raise ValueError("a campaign needs at least one validator")
        if len(set(self.all)) != len(self.all):
            raise ValueError("node names must be distinct")

    @property
    def all(self) -> tuple[str, ...]:
        """Every node, validators first."""
        return self.validators + self.observers


@dataclass(frozen=True, slots=True)
class Episode:
    """One fault: ``kind`` on ``target`` for ``hold_s`` seconds, then healed.

    - kill, skewed restart: ``target`` is killed (SIGKILL) and restarted ``hold_s`` later
      (with its clock ``skew_ms`` off for a skewed restart);
    - pause: ``target`` is stopped (SIGSTOP) for ``hold_s``, then continued;
    - partition: the nodes of ``side`` (``target`` among them) and all others drop each
      other's messages for ``hold_s``;
    - one-way: ``target`` drops every message from ``side[0]`` for ``hold_s``.
    """

    index: int
    kind: FaultKind
    target: str
    hold_s: float
    side: tuple[str, ...] = ()
    skew_ms: int = 0

    def describe(self) -> str:
        """One line for a log."""
        what = {
            FaultKind.KILL: f"kill -9 {self.target}",
            FaultKind.SKEWED_RESTART: f"kill -9 {self.target}, clock {self.skew_ms:+d} ms",
            FaultKind.PAUSE: f"pause {self.target}",
            FaultKind.PARTITION: f"partition {'+'.join(self.side)} from the rest",
            FaultKind.ONE_WAY: f"{'+'.join(self.side)} -> {self.target} lost",
        }[self.kind]
        return f"#{self.index} {what} for {self.hold_s:.1f} s"


def episodes(seed: int, nodes: Nodes) -> Iterator[Episode]:
    """The schedule of ``seed`` over ``nodes`` (see the module docstring), without end."""
    rng = random.Random(seed)
    index = 0
    while True:
        kinds = [FaultKind.KILL] * (ROUND_KILLS - 1) + [
            FaultKind.SKEWED_RESTART,
            FaultKind.PAUSE,
            FaultKind.PARTITION,
            FaultKind.ONE_WAY,
        ]
        rng.shuffle(kinds)
        for kind in kinds:
            yield _episode(rng, index, kind, nodes)
            index += 1


def plan(seed: int, nodes: Nodes, count: int) -> list[Episode]:
    """The first ``count`` episodes of ``seed``'s schedule."""
    return list(islice(episodes(seed, nodes), count))


def _episode(rng: random.Random, index: int, kind: FaultKind, nodes: Nodes) -> Episode:
    everyone = nodes.all
    if kind is FaultKind.KILL:
        return Episode(index, kind, rng.choice(everyone), _hold(rng, KILL_HOLD_S))
    if kind is FaultKind.SKEWED_RESTART:
        skew_ms = rng.choice((-1, 1)) * rng.randint(500, MAX_SKEW_MS)
        target = rng.choice(nodes.validators)
        return Episode(index, kind, target, _hold(rng, KILL_HOLD_S), skew_ms=skew_ms)
    if kind is FaultKind.PAUSE:
        return Episode(index, kind, rng.choice(everyone), _hold(rng, PAUSE_HOLD_S))
    if kind is FaultKind.PARTITION:
        side = _partition_side(rng, nodes)
        return Episode(index, kind, side[0], _hold(rng, PARTITION_HOLD_S), side=side)
    if len(everyone) < 2:
        raise ValueError("a one-way link loss needs two nodes")
    sender, receiver = rng.sample(everyone, 2)
    return Episode(index, kind, receiver, _hold(rng, ONE_WAY_HOLD_S), side=(sender,))


def _partition_side(rng: random.Random, nodes: Nodes) -> tuple[str, ...]:
    """One validator alone, or half of them (no quorum either side); each observer joins a
    side at random. Never every node."""
    validators = list(nodes.validators)
    size = 1 if len(validators) < 4 or rng.random() < 0.5 else len(validators) // 2
    side = rng.sample(validators, size)
    side += [name for name in nodes.observers if rng.random() < 0.5]
    if len(side) == len(nodes.all):
        side = side[:1]
    return tuple(sorted(side))


def _hold(rng: random.Random, bounds: tuple[float, float]) -> float:
    return round(rng.uniform(*bounds), 2)


def counts(schedule: Sequence[Episode]) -> dict[str, int]:
    """How many episodes of each kind (every kind named, zeros included)."""
    found = {kind.value: 0 for kind in FaultKind}
    for episode in schedule:
        found[episode.kind.value] += 1
    return found
