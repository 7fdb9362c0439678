"""Telling a story one line per step, each with a check.

A step is a title and an action that returns what happened (one line of detail) or raises:
``CheckFailed`` when what it checks does not hold, any ``BigHealthError`` (a refused
transaction, an unreachable node, a record a custodian would not give) or ``WaitTimeout``
when it failed on the way. The first failing step ends the story: the ones after it depend
on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

from health.demo.watch import WaitTimeout
from node.errors import BigHealthError

MAX_DETAIL_CHARS: Final = 400


class CheckFailed(Exception):
    """A step's check did not hold."""


def check(condition: bool, message: str) -> None:
    """``CheckFailed(message)`` unless ``condition``."""
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True, slots=True)
class Step:
    """A titled action returning its one line of detail."""

    title: str
    action: Callable[[], str]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a story went: steps that held, the step that failed (its number and why)."""

    held: int
    total: int
    failed_step: int | None = None
    failure: str = ""

    @property
    def ok(self) -> bool:
        """Every step held."""
        return self.failed_step is None and self.held == self.total


class Narrator:
    """Runs steps in order, printing one line each to ``out``."""

    def __init__(self, out: TextIO, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self._monotonic = monotonic

    def tell(self, steps: Sequence[Step]) -> Outcome:
        """Run ``steps`` until one fails; the outcome."""
        total = len(steps)
        for number, step in enumerate(steps, start=1):
            started = self._monotonic()
            position = f"[{number:>{len(str(total))}}/{total}]"
            try:
                detail = step.action()
            except (CheckFailed, WaitTimeout, BigHealthError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                self._line(f"{position} FAIL", step.title, reason, started)
                return Outcome(number - 1, total, number, reason)
            self._line(f"{position} ok  ", step.title, detail, started)
        return Outcome(total, total)

    def _line(self, head: str, title: str, detail: str, started: float) -> None:
        seconds = self._monotonic() - started
        text = " ".join(detail.split())[:MAX_DETAIL_CHARS]
        print(f"{head} {title}: {text} ({seconds:.1f} s)", file=self.out, flush=True)
