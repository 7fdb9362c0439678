"""What the health story expects of the chain, checked from the events it committed.

:class:`ReminderLedger` follows every reminder through the ``care`` events of the decided
heights — ``care.dose_due`` / ``care.measurement_due`` open one, ``care.acknowledged``
closes it, ``care.escalated`` marks it missed — and at the end of a run reports what broke
the rules of docs/HEALTH.md (care):

- a reminder acknowledged or escalated that never came due;
- a reminder both acknowledged and escalated, or closed twice;
- a reminder still open although the chain's block time passed its due time plus the grace
  (``reminder_grace_ms``) plus a slack: its escalation task must have run by then. Due work
  runs in the first block at or after its time, but at most ``max_due_tasks_per_block``
  tasks a block: when many reminders share a minute, the last ones run a few blocks late,
  which the slack allows for.

The ledger is bounded (``MAX_REMINDERS_TRACKED``); past the bound it stops following new
reminders and says so, and checks only what it followed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import Enum
from typing import Final

from node.types import Event

MAX_REMINDERS_TRACKED: Final = 200_000
MAX_PROBLEMS: Final = 20
"""Problems reported at most (the first ones; the rest are counted)."""

DUE_EVENTS: Final = frozenset({"care.dose_due", "care.measurement_due"})
ACKNOWLEDGED: Final = "care.acknowledged"
ESCALATED: Final = "care.escalated"

ReminderKey = tuple[str, int, int]
"""(patient id in hex, item, due time in ms)."""


class ReminderState(Enum):
    """Where a reminder stands in the events seen so far."""

    OPEN = "open"
    DONE = "done"
    MISSED = "missed"


class ReminderLedger:
    """Every reminder the chain opened, and how it ended (see the module docstring)."""

    def __init__(self) -> None:
        self.states: dict[ReminderKey, ReminderState] = {}
        self.counts: Counter[str] = Counter()
        self.overflowed = False
        self._problems: list[str] = []
        self._problem_count = 0

    def observe(self, events: Iterable[Event]) -> None:
        """Follow the care events of one height, in order."""
        for event in events:
            if event.name in DUE_EVENTS:
                self._opened(event)
            elif event.name == ACKNOWLEDGED:
                self._closed(event, ReminderState.DONE)
            elif event.name == ESCALATED:
                self._closed(event, ReminderState.MISSED)

    def _opened(self, event: Event) -> None:
        key = reminder_key(event)
        if key is None:
            self._problem(f"{event.name} without patient, item and due_ms")
            return
        if key in self.states:
            self._problem(f"reminder {_describe(key)} came due twice")
            return
        if len(self.states) >= MAX_REMINDERS_TRACKED:
            self.overflowed = True
            return
        self.states[key] = ReminderState.OPEN
        self.counts["due"] += 1

    def _closed(self, event: Event, state: ReminderState) -> None:
        key = reminder_key(event)
        if key is None:
            self._problem(f"{event.name} without patient, item and due_ms")
            return
        current = self.states.get(key)
        if current is None:
            if not self.overflowed:
                self._problem(f"{event.name} of reminder {_describe(key)}, which never came due")
            return
        if current is not ReminderState.OPEN:
            self._problem(f"{event.name} of reminder {_describe(key)}, already {current.value}")
            return
        self.states[key] = state
        self.counts[state.value] += 1

    def check(self, block_time_ms: int, grace_ms: int, slack_ms: int = 0) -> list[str]:
        """The problems seen, and the reminders still open although the block time
        ``block_time_ms`` of the last height seen is at least their due time plus
        ``grace_ms`` plus ``slack_ms``."""
        problems = list(self._problems)
        count = self._problem_count
        for key, state in self.states.items():
            if state is ReminderState.OPEN and key[2] + grace_ms + slack_ms <= block_time_ms:
                count += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append(
                        f"reminder {_describe(key)} is neither acknowledged nor escalated at "
                        f"block time {block_time_ms} (due + grace = {key[2] + grace_ms})"
                    )
        if count > len(problems):
            problems.append(f"... {count - len(problems)} more reminder problems")
        return problems

    def _problem(self, text: str) -> None:
        self._problem_count += 1
        if len(self._problems) < MAX_PROBLEMS:
            self._problems.append(text)


def reminder_key(event: Event) -> ReminderKey | None:
    """The reminder a care event names, or None if its attributes do not say."""
    patient, item, due_ms = event.get("patient"), event.get("item"), event.get("due_ms")
    if patient is None or item is None or due_ms is None:
        return None
    if not (item.isdigit() and due_ms.isdigit()):
        return None
    return (patient, int(item), int(due_ms))


def _describe(key: ReminderKey) -> str:
    return f"{key[0][:12]}.. item {key[1]} due {key[2]}"
