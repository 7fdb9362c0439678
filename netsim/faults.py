"""Fault plans: which faults strike when, drawn from the seed before the run starts.

A plan is a list of timed :class:`FaultAction` s inside a *fault window*; every fault it
starts it also ends inside the window (crashed nodes restart, paused ones resume, partitions
heal, loss stops), so from ``heal_ms`` on the network is healthy and liveness must return.
Drawing the whole plan up front makes it printable, storable in the JSON report and
identical in a replay.

Fault kinds (``--faults``):

- ``crash``: a node loses power (unsynced writes are lost) and restarts later, replaying its
  log; ``pause``: a node stops (SIGSTOP, GC, VM migration) and later resumes.
- ``partition``: validators split into 2 or 3 groups (non-validators follow at random),
  symmetric or one-way, then heal.
- ``loss`` / ``duplicate``: a share of all messages is dropped / delivered twice;
  ``reorder``: links stop being FIFO and some messages are held back.
- ``slow``: a few nodes' uplinks are throttled (a congested or metered link).
- ``drift``: clocks are far off and drift fast, and some nodes' clocks are stepped.

Episodes of one kind do not overlap; different kinds do. Only honest nodes are crashed or
paused: Byzantine behaviour is configured separately (:mod:`netsim.byzantine`).
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from netsim.errors import ConfigError
from netsim.limits import MAX_CLOCK_DRIFT_PPM, MAX_FAULT_EVENTS

MIN_EPISODE_MS: Final = 200
"""Shortest fault episode, in milliseconds."""


class FaultKind(StrEnum):
    """The fault families a plan may draw from (CLI names)."""

    CRASH = "crash"
    PAUSE = "pause"
    PARTITION = "partition"
    LOSS = "loss"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    SLOW = "slow"
    DRIFT = "drift"


class ActionKind(IntEnum):
    """What one fault action does."""

    CRASH = 1
    RESTART = 2
    PAUSE = 3
    RESUME = 4
    PARTITION = 5
    HEAL = 6
    SET_LOSS_PPM = 7
    SET_DUPLICATE_PPM = 8
    SET_REORDER = 9
    THROTTLE = 10
    UNTHROTTLE = 11
    CLOCK_STEP = 12


@dataclass(frozen=True, slots=True)
class FaultAction:
    """One timed action: ``nodes`` it applies to, ``groups`` of a partition, ``value`` (a
    rate in ppm, bytes/s, a clock step in ms or, for PARTITION, 1 for one-way)."""

    at_ms: int
    kind: ActionKind
    nodes: tuple[int, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    value: int = 0

    def describe(self) -> str:
        """One line: ``t=12.345s PARTITION one-way groups [0, 3] | [1, 2]``."""
        head = f"t={self.at_ms / 1000:.3f}s {self.kind.name}"
        if self.groups:
            style = "one-way" if self.value else "symmetric"
            shown = " | ".join(_short(group) for group in self.groups)
            return f"{head} {style} groups {shown}"
        nodes = f" nodes {list(self.nodes)}" if self.nodes else ""
        value = f" value {self.value}" if self.value else ""
        return head + nodes + value

    def digest(self) -> bytes:
        """SHA-256 of a deterministic encoding of the action (for the trace)."""
        items = [self.at_ms, int(self.kind), self.value, *self.nodes]
        for group in self.groups:
            items += [-1, *group]
        return hashlib.sha256(struct.pack(f">{len(items)}q", *items)).digest()


def _short(group: tuple[int, ...], shown: int = 8) -> str:
    return str(list(group[:shown])) + ("..." if len(group) > shown else "")


@dataclass(frozen=True, slots=True)
class ClockSetting:
    """A node's clock: offset from true time and drift."""

    offset_ms: int
    drift_ppm: int


@dataclass(frozen=True, slots=True)
class FaultOptions:
    """How faults are drawn: which kinds, inside which window, how often.

    ``mean_gap_ms`` is the mean pause between two episodes of one kind (smaller: more
    faults); ``max_episode_ms`` the longest episode.
    """

    kinds: tuple[FaultKind, ...] = ()
    window_start_ms: int = 2_000
    window_end_ms: int = 30_000
    mean_gap_ms: int = 4_000
    max_episode_ms: int = 8_000

    def __post_init__(self) -> None:
        if len(set(self.kinds)) != len(self.kinds):
            raise ConfigError("a fault kind is listed twice")
        if not 0 <= self.window_start_ms <= self.window_end_ms:
            raise ConfigError("the fault window must satisfy 0 <= start <= end")
        if self.mean_gap_ms < 1 or self.max_episode_ms < MIN_EPISODE_MS:
            raise ConfigError(f"mean_gap_ms >= 1 and max_episode_ms >= {MIN_EPISODE_MS} needed")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The drawn plan: actions in time order, clocks, and ``heal_ms``, the time of the last
    action (every episode has ended by then; with no action, the window's start)."""

    options: FaultOptions
    actions: tuple[FaultAction, ...]
    clocks: tuple[ClockSetting, ...]
    heal_ms: int


def parse_kinds(text: str) -> tuple[FaultKind, ...]:
    """``"partition,crash"`` -> kinds (ConfigError naming the valid ones for a bad name)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    valid = {kind.value: kind for kind in FaultKind}
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ConfigError(f"unknown fault kind(s) {unknown}; choose from {sorted(valid)}")
    return tuple(dict.fromkeys(valid[name] for name in names))


def plan_faults(
    options: FaultOptions,
    *,
    validators: int,
    nodes: int,
    honest: Sequence[bool],
    rng: random.Random,
) -> FaultPlan:
    """Draw a plan for ``nodes`` nodes (the first ``validators`` of them validators)."""
    actions: list[FaultAction] = []
    honest_nodes = [n for n in range(nodes) if honest[n]]
    drawer = _Drawer(options, rng)
    for kind in FaultKind:  # a fixed order: each kind draws in turn from the one stream
        if kind not in options.kinds:
            continue
        if kind is FaultKind.CRASH or kind is FaultKind.PAUSE:
            actions += drawer.node_episodes(kind, honest_nodes, validators)
        elif kind is FaultKind.PARTITION:
            actions += drawer.partitions(validators, nodes)
        elif kind is FaultKind.SLOW:
            actions += drawer.throttles(nodes)
        elif kind is FaultKind.DRIFT:
            actions += drawer.clock_steps(honest_nodes)
        else:
            actions += drawer.network_episodes(kind)
    if len(actions) > MAX_FAULT_EVENTS:
        raise ConfigError(f"the plan has {len(actions)} actions (limit {MAX_FAULT_EVENTS})")
    clocks = _clocks(nodes, FaultKind.DRIFT in options.kinds, rng)
    actions.sort(key=lambda action: action.at_ms)  # stable: equal times keep draw order
    heal_ms = actions[-1].at_ms if actions else options.window_start_ms
    return FaultPlan(options, tuple(actions), clocks, heal_ms)


NORMAL_MAX_OFFSET_MS: Final = 20
NORMAL_MAX_DRIFT_PPM: Final = 50
BAD_MAX_OFFSET_MS: Final = 2_000
BAD_MAX_DRIFT_PPM: Final = 2_000


def _clocks(nodes: int, bad: bool, rng: random.Random) -> tuple[ClockSetting, ...]:
    """NTP-synced clocks (±20 ms, ±50 ppm), or badly kept ones under the drift fault."""
    max_offset = BAD_MAX_OFFSET_MS if bad else NORMAL_MAX_OFFSET_MS
    max_drift = BAD_MAX_DRIFT_PPM if bad else NORMAL_MAX_DRIFT_PPM
    assert max_drift <= MAX_CLOCK_DRIFT_PPM
    return tuple(
        ClockSetting(rng.randint(-max_offset, max_offset), rng.randint(-max_drift, max_drift))
        for _ in range(nodes)
    )


class _Drawer:
    """Draws episodes inside the window of ``options``."""

    def __init__(self, options: FaultOptions, rng: random.Random) -> None:
        self._options = options
        self._rng = rng

    def _episodes(self) -> list[tuple[int, int]]:
        """Non-overlapping (start, end) pairs inside the window."""
        options, rng = self._options, self._rng
        episodes: list[tuple[int, int]] = []
        time_ms = options.window_start_ms
        while True:
            time_ms += 1 + int(rng.expovariate(1.0 / options.mean_gap_ms))
            if time_ms >= options.window_end_ms:
                return episodes
            length = rng.randint(MIN_EPISODE_MS, options.max_episode_ms)
            end_ms = min(time_ms + length, options.window_end_ms)
            episodes.append((time_ms, end_ms))
            time_ms = end_ms

    def node_episodes(
        self, kind: FaultKind, candidates: list[int], validators: int
    ) -> list[FaultAction]:
        """Crash/restart or pause/resume of one node per episode (validators 3 in 4)."""
        start, stop = (
            (ActionKind.CRASH, ActionKind.RESTART)
            if kind is FaultKind.CRASH
            else (ActionKind.PAUSE, ActionKind.RESUME)
        )
        honest_validators = [n for n in candidates if n < validators]
        others = [n for n in candidates if n >= validators]
        actions: list[FaultAction] = []
        for begin, end in self._episodes():
            pool = honest_validators if (not others or self._rng.random() < 0.75) else others
            if not pool:
                continue
            node = pool[self._rng.randrange(len(pool))]
            actions += [FaultAction(begin, start, (node,)), FaultAction(end, stop, (node,))]
        return actions

    def partitions(self, validators: int, nodes: int) -> list[FaultAction]:
        """Split validators into 2 or 3 groups (others join at random), then heal."""
        rng = self._rng
        actions: list[FaultAction] = []
        for begin, end in self._episodes():
            count = 2 if validators < 3 or rng.random() < 0.8 else 3
            order = list(range(validators))
            rng.shuffle(order)
            cuts = sorted(rng.sample(range(1, validators), count - 1)) if validators > 1 else []
            bounds = [0, *cuts, validators]
            groups = [sorted(order[bounds[i] : bounds[i + 1]]) for i in range(count)]
            groups = [g for g in groups if g]
            if len(groups) < 2:
                continue
            for node in range(validators, nodes):
                groups[rng.randrange(len(groups))].append(node)
            one_way = 1 if rng.random() < 0.3 else 0
            shaped = tuple(tuple(g) for g in groups)
            actions += [
                FaultAction(begin, ActionKind.PARTITION, groups=shaped, value=one_way),
                FaultAction(end, ActionKind.HEAL),
            ]
        return actions

    def network_episodes(self, kind: FaultKind) -> list[FaultAction]:
        """Loss (1-30 %), duplication (1-20 %) or reordering, switched on then off."""
        rng = self._rng
        action = {
            FaultKind.LOSS: ActionKind.SET_LOSS_PPM,
            FaultKind.DUPLICATE: ActionKind.SET_DUPLICATE_PPM,
            FaultKind.REORDER: ActionKind.SET_REORDER,
        }[kind]
        high = {FaultKind.LOSS: 300_000, FaultKind.DUPLICATE: 200_000, FaultKind.REORDER: 1}[kind]
        low = 1 if kind is FaultKind.REORDER else 10_000
        actions: list[FaultAction] = []
        for begin, end in self._episodes():
            actions += [
                FaultAction(begin, action, value=rng.randint(low, high)),
                FaultAction(end, action, value=0),
            ]
        return actions

    def throttles(self, nodes: int) -> list[FaultAction]:
        """A few nodes' uplinks slowed to 64 KB/s .. 1 MB/s, then restored."""
        rng = self._rng
        actions: list[FaultAction] = []
        for begin, end in self._episodes():
            chosen = tuple(sorted(rng.sample(range(nodes), min(nodes, rng.randint(1, 3)))))
            rate = rng.randint(64_000, 1_000_000)
            actions += [
                FaultAction(begin, ActionKind.THROTTLE, chosen, value=rate),
                FaultAction(end, ActionKind.UNTHROTTLE, chosen),
            ]
        return actions

    def clock_steps(self, candidates: list[int]) -> list[FaultAction]:
        """A node's clock jumps by 100 ms .. 3 s either way (an NTP step)."""
        rng = self._rng
        actions: list[FaultAction] = []
        for begin, _ in self._episodes():
            if candidates:
                node = candidates[rng.randrange(len(candidates))]
                step = rng.randint(100, 3_000) * (1 if rng.random() < 0.5 else -1)
                actions.append(FaultAction(begin, ActionKind.CLOCK_STEP, (node,), value=step))
        return actions


def swarm_options(rng: random.Random, window_start_ms: int = 2_000) -> FaultOptions:
    """Swarm testing: each fault kind is on with probability 1/2, with a random window,
    frequency and episode length (diverse configurations find more bugs than one rich one)."""
    kinds = tuple(kind for kind in FaultKind if rng.random() < 0.5)
    window_ms = rng.choice((10_000, 20_000, 40_000))
    return FaultOptions(
        kinds=kinds,
        window_start_ms=window_start_ms,
        window_end_ms=window_start_ms + window_ms,
        mean_gap_ms=rng.choice((1_000, 3_000, 8_000)),
        max_episode_ms=rng.choice((2_000, 5_000, 10_000)),
    )
