"""Which validator set rules each height, with application updates applied after a delay.

The application (DAO governance) returns validator updates when it finalizes a block. They
must not change the set of a height whose votes may already be in flight, so an update batch
decided at height ``h`` takes effect at height ``h + update_delay_heights`` (CometBFT uses 2:
the next height's set is already fixed when a block is finalized). Every node feeding the same
decided updates gets the same sets, priorities included.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.errors import InvalidConfigError, UsageError
from consensus.limits import MAX_HEIGHT, MAX_UPDATE_DELAY_HEIGHTS
from consensus.validator_set import ValidatorSet, ValidatorUpdate

DEFAULT_UPDATE_DELAY_HEIGHTS = 2
"""Heights between deciding an update batch and the first height it rules."""


class ValidatorSetSchedule:
    """The sets of the next ``update_delay_heights + 1`` heights; bounded by that delay."""

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
        if type(update_delay_heights) is not int or not (
            1 <= update_delay_heights <= MAX_UPDATE_DELAY_HEIGHTS
        ):
            raise InvalidConfigError(
                f"update_delay_heights must be in 1..{MAX_UPDATE_DELAY_HEIGHTS}, "
                f"got {update_delay_heights!r}"
            )
        if type(first_height) is not int or not 1 <= first_height <= MAX_HEIGHT:
            raise InvalidConfigError(f"first_height must be in 1..{MAX_HEIGHT}")
        self._delay_heights = update_delay_heights
        self._last_committed_height = first_height - 1
        self._sets: dict[int, ValidatorSet] = {first_height: genesis}
        for height in range(first_height + 1, first_height + update_delay_heights):
            self._sets[height] = self._sets[height - 1].for_next_height()

    @property
    def last_committed_height(self) -> int:
        """The last height passed to :meth:`commit` (``first_height - 1`` before any)."""
        return self._last_committed_height

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
