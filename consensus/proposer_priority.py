"""Weighted round-robin proposer selection with CometBFT-style priorities (pure arithmetic).

Every validator has an integer priority. One *step* adds each validator's voting power to its
priority, picks the highest priority as the proposer (ties: lowest index, i.e. lowest public
key, in the set's canonical order) and subtracts the total power from the winner. Over many
steps each validator proposes in proportion to its power, and the sequence depends only on the
powers and the starting priorities, so every node computes the same proposer.

Before a run of steps the priorities are *normalized*: if their spread exceeds
``PRIORITY_WINDOW_FACTOR * total power`` they are divided down (truncating towards zero), then
they are centred on their average (floor division). That keeps them bounded however often the
set changes.
"""

from __future__ import annotations

from collections.abc import Sequence

PRIORITY_WINDOW_FACTOR = 2
"""Largest allowed spread of priorities, in multiples of the total voting power."""


def normalize(priorities: list[int], total_power: int) -> None:
    """Rescale ``priorities`` into the window and centre them on their average, in place."""
    window = PRIORITY_WINDOW_FACTOR * total_power
    spread = max(priorities) - min(priorities)
    if spread > window:
        ratio = -(-spread // window)  # ceiling division: the smallest ratio that fits
        for index, priority in enumerate(priorities):
            priorities[index] = _divide_towards_zero(priority, ratio)
    average = sum(priorities) // len(priorities)
    for index in range(len(priorities)):
        priorities[index] -= average


def step(priorities: list[int], powers: Sequence[int], total_power: int) -> int:
    """One round-robin step on ``priorities`` (in place); returns the proposer's index."""
    best_index = 0
    best_priority = priorities[0] + powers[0]
    priorities[0] = best_priority
    for index in range(1, len(priorities)):
        priority = priorities[index] + powers[index]
        priorities[index] = priority
        if priority > best_priority:  # strict: the lowest index wins ties
            best_index, best_priority = index, priority
    priorities[best_index] -= total_power
    return best_index


def initial_priority_of_new_validator(total_power: int) -> int:
    """A joining validator starts at -1.125 x total power, so it cannot propose at once."""
    return -(total_power + (total_power >> 3))


def _divide_towards_zero(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient
