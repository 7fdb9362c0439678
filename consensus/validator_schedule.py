"""Which validator set rules each height, with application updates applied after a delay.

The application (DAO governance) returns validator updates when it finalizes a block. They
must not change the set of a height whose votes may already be in flight, so an update batch
decided at height ``h`` takes effect at height ``h + update_delay_heights`` (CometBFT uses 2:
the next height's set is already fixed when a block is finalized). Every node feeding the same
decided updates gets the same sets, priorities included.

Persisting a schedule: the sets it knows (``upcoming``, with their priorities) and its
``last_committed_height`` are its whole state, so a node stores them at each commit and
rebuilds the schedule with :meth:`ValidatorSetSchedule.restore` — updates still waiting to
take effect included, without replaying any chain history.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.errors import InvalidConfigError, UsageError
from consensus.limits import MAX_HEIGHT, MAX_UPDATE_DELAY_HEIGHTS
from consensus.validator_set import ValidatorSet, ValidatorUpdate

DEFAULT_UPDATE_DELAY_HEIGHTS = 2
"""Heights between deciding an update batch and the first height it rules."""


class ValidatorSetSchedule:
    """The sets of the next ``update_delay_heights`` heights; bounded by that delay."""

    __slots__ = ("_delay_heights", "_last_committed_height", "_sets")

    def __init__(
        self,
        genesis: ValidatorSet,
        first_height: int = 1,
        update_delay_heights: int = DEFAULT_UPDATE_DELAY_HEIGHTS,
    ) -> None:
        """Start at ``first_height`` with ``genesis``; updates wait ``update_delay_heights``.

        Raises InvalidConfigError unless 1 <= update_delay_heights <= MAX_UPDATE_DELAY_HEIGHTS
        and 1 <= first_height <= MAX_HEIGHT.
        """
        _check_delay(update_delay_heights)
        if type(first_height) is not int or not 1 <= first_height <= MAX_HEIGHT:
            raise InvalidConfigError(f"first_height must be in 1..{MAX_HEIGHT}")
        if not isinstance(genesis, ValidatorSet):
            raise InvalidConfigError(f"expected a ValidatorSet, got {type(genesis).__name__}")
        self._delay_heights = update_delay_heights
        self._last_committed_height = first_height - 1
        self._sets: dict[int, ValidatorSet] = {first_height: genesis}
        for height in range(first_height + 1, first_height + update_delay_heights):
            self._sets[height] = self._sets[height - 1].for_next_height()

    @classmethod
    def restore(
        cls,
        last_committed_height: int,
        upcoming: Sequence[ValidatorSet],
        update_delay_heights: int = DEFAULT_UPDATE_DELAY_HEIGHTS,
    ) -> ValidatorSetSchedule:
        """The schedule as it was after committing ``last_committed_height`` (0: none yet),
        from its :attr:`upcoming` sets — ``upcoming[i]`` rules height
        ``last_committed_height + 1 + i`` — exactly as they were, priorities included.

        Raises InvalidConfigError unless there are exactly ``update_delay_heights`` sets
        (``ValidatorSet`` objects) and every height they rule is in 1..MAX_HEIGHT.
        """
        _check_delay(update_delay_heights)
        if type(last_committed_height) is not int or not (
            0 <= last_committed_height <= MAX_HEIGHT - update_delay_heights
        ):
            raise InvalidConfigError(
                f"last_committed_height must be in 0..{MAX_HEIGHT - update_delay_heights}, "
                f"got {last_committed_height!r}"
            )
        sets = tuple(upcoming)
        if len(sets) != update_delay_heights:
            raise InvalidConfigError(
                f"a schedule with a delay of {update_delay_heights} heights knows "
                f"{update_delay_heights} sets, got {len(sets)}"
            )
        if not all(isinstance(item, ValidatorSet) for item in sets):
            raise InvalidConfigError("upcoming sets must be ValidatorSet objects")
        schedule = cls(sets[0], last_committed_height + 1, update_delay_heights)
        # The later sets are given, not derived: they carry the updates decided meanwhile.
        schedule._sets = {last_committed_height + 1 + i: item for i, item in enumerate(sets)}
        return schedule

    @property
    def last_committed_height(self) -> int:
        """The last height passed to :meth:`commit` (``first_height - 1`` before any)."""
        return self._last_committed_height

    @property
    def update_delay_heights(self) -> int:
        """Heights between deciding an update batch and the first height it rules."""
        return self._delay_heights

    @property
    def upcoming(self) -> tuple[ValidatorSet, ...]:
        """The sets of heights ``last_committed_height + 1`` onwards, in height order: with
        :attr:`last_committed_height`, everything :meth:`restore` needs."""
        return tuple(self._sets[height] for height in sorted(self._sets))

    def set_at(self, height: int) -> ValidatorSet:
        """The set ruling ``height``; known from the next uncommitted height to
        ``last_committed_height + update_delay_heights``. Raises UsageError otherwise."""
        found = self._sets.get(height)
        if found is None:
            known = sorted(self._sets)
            raise UsageError(f"no validator set known for height {height} (known: {known})")
        return found

    def commit(self, height: int, updates: Sequence[ValidatorUpdate] = ()) -> None:
        """Record that ``height`` was decided with ``updates``; heights must come in order.

        Raises UsageError for an out-of-order height and InvalidValidatorSetError (leaving the
        schedule unchanged) for updates that would produce an invalid set.
        """
        if height != self._last_committed_height + 1:
            raise UsageError(
                f"commit heights in order: expected {self._last_committed_height + 1}, got {height}"
            )
        ruled_height = height + self._delay_heights
        self._sets[ruled_height] = self._sets[ruled_height - 1].for_next_height(updates)
        del self._sets[height]
        self._last_committed_height = height


def _check_delay(update_delay_heights: object) -> None:
    if type(update_delay_heights) is not int or not (
        1 <= update_delay_heights <= MAX_UPDATE_DELAY_HEIGHTS
    ):
        raise InvalidConfigError(
            f"update_delay_heights must be in 1..{MAX_UPDATE_DELAY_HEIGHTS}, "
            f"got {update_delay_heights!r}"
        )
