"""Which rounds of a height the core tracks: the bound on per-height memory.

A message for round ``r`` of the current height is admitted if ``r`` is already tracked, or:

* ``current - PAST_ROUNDS_KEPT <= r <= current + 1`` (the rounds an honest node is in), or
* ``r > current + 1`` and its signer has opened fewer than MAX_FUTURE_ROUNDS_PER_VALIDATOR
  such rounds (the paper's round skip, L55, needs votes of higher rounds; the per-signer
  budget keeps one Byzantine validator from making the core track unboundedly many).

Older rounds are tracked only when *cited*: a kept proposal of the current or a later round
names ``r`` as its valid round. The paper's L28 ("upon a proposal with vr >= 0 and 2f+1
prevotes for (h, vr, id(v))") needs the polka of that round, and a node that was partitioned
for many rounds never saw it; its peers re-send it after the heal (``node.chain.catch_up``),
and the window must let it in. The caller names the cited rounds nearest citing round first
(:meth:`RoundWindow.cite`); at most MAX_CITED_ROUNDS of them are tracked. Only the proposer
of a round can cite, once per proposal it gets kept, so a Byzantine validator cannot open
old rounds at will.

When the current round advances, rounds below ``current - PAST_ROUNDS_KEPT`` are dropped
unless cited or *protected* by the caller (the locked round, the valid round and the latest
MAX_PROTECTED_QUORUM_ROUNDS rounds holding a precommit quorum, which the paper's L49 may
still decide), and future rounds that became ordinary give their opener its budget back. So
at most ``PAST_ROUNDS_KEPT + 2 + protected + MAX_CITED_ROUNDS +
MAX_FUTURE_ROUNDS_PER_VALIDATOR x validators`` rounds are tracked.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from consensus.limits import MAX_CITED_ROUNDS, MAX_FUTURE_ROUNDS_PER_VALIDATOR, PAST_ROUNDS_KEPT
from consensus.types import PublicKey


class RoundWindow:
    """Admission and pruning of rounds for one height (starts at round 0)."""

    __slots__ = ("_cited", "_current_round", "_future_opener", "_opened_by", "_tracked")

    def __init__(self) -> None:
        self._current_round = 0
        self._tracked: set[int] = set()
        self._future_opener: dict[int, PublicKey] = {}
        self._opened_by: dict[PublicKey, int] = {}
        self._cited: frozenset[int] = frozenset()

    def is_tracked(self, round_: int) -> bool:
        """True iff messages of ``round_`` are currently kept."""
        return round_ in self._tracked

    @property
    def cited(self) -> frozenset[int]:
        """The old rounds tracked because a proposal cites them (at most MAX_CITED_ROUNDS)."""
        return self._cited

    def admit(self, round_: int, signer: PublicKey) -> bool:
        """True (and track ``round_``) iff a message of ``signer`` for it may be kept."""
        if round_ in self._tracked:
            return True
        current = self._current_round
        if current - PAST_ROUNDS_KEPT <= round_ <= current + 1:
            self._tracked.add(round_)
            return True
        if round_ <= current:
            return False
        opened = self._opened_by.get(signer, 0)
        if opened >= MAX_FUTURE_ROUNDS_PER_VALIDATOR:
            return False
        self._opened_by[signer] = opened + 1
        self._future_opener[round_] = signer
        self._tracked.add(round_)
        return True

    def advance(
        self, new_round: int, protected: Collection[int], cited: Iterable[int] = ()
    ) -> list[int]:
        """Centre the window on ``new_round`` (>= current) with the valid rounds ``cited``
        by the kept proposals of ``new_round`` and later, nearest citing round first;
        returns the rounds it dropped."""
        assert new_round >= self._current_round, "rounds only move forward"
        self._current_round = new_round
        for round_ in [r for r in self._future_opener if r <= new_round + 1]:
            opener = self._future_opener.pop(round_)
            remaining = self._opened_by[opener] - 1
            if remaining:
                self._opened_by[opener] = remaining
            else:
                del self._opened_by[opener]
        oldest_kept = new_round - PAST_ROUNDS_KEPT
        self._cited = _first_old_rounds(cited, oldest_kept)
        self._tracked.update(self._cited)
        dropped = sorted(
            r
            for r in self._tracked
            if r < oldest_kept and r not in protected and r not in self._cited
        )
        self._tracked.difference_update(dropped)
        return dropped

    def cite(self, cited: Iterable[int], protected: Collection[int]) -> list[int]:
        """The cited rounds changed within the current round (a proposal arrived): track the
        first MAX_CITED_ROUNDS old ones; returns the old rounds no longer kept."""
        return self.advance(self._current_round, protected, cited)

    def __len__(self) -> int:
        return len(self._tracked)


def _first_old_rounds(rounds: Iterable[int], oldest_kept: int) -> frozenset[int]:
    """The first MAX_CITED_ROUNDS distinct rounds of ``rounds`` below ``oldest_kept``."""
    chosen: list[int] = []
    for round_ in rounds:
        if 0 <= round_ < oldest_kept and round_ not in chosen:
            chosen.append(round_)
            if len(chosen) == MAX_CITED_ROUNDS:
                break
    return frozenset(chosen)
