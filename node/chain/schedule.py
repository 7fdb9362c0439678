"""The validator sets the chain core needs, kept in a ``ValidatorSetSchedule`` and persisted.

The core needs the set of every height it may see messages for (the next
``update_delay_heights``, from ``consensus.ValidatorSetSchedule``), the set of the last
committed height (to verify the ``last_commit`` of the next block) and the members of the
committed heights evidence may be about (``node.chain.set_history``).

Persistence: one entry per height, ``vset/<height>`` -> the set with its proposer priorities,
for the last committed height and the ``update_delay_heights`` heights after it. Committing
height ``h`` writes the one new set (height ``h + delay``) and deletes the set of ``h - 1``,
in the height's commit batch. Restoring reads those sets back and hands them to
``ValidatorSetSchedule.restore`` as they were — updates decided but not yet in effect are
already in the later sets, so nothing is replayed. The history of past sets is persisted
in the same batches (``vhist/...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from consensus.errors import InvalidConfigError, InvalidValidatorSetError, UsageError
from consensus.validator_schedule import ValidatorSetSchedule
from consensus.validator_set import ValidatorSet, ValidatorUpdate
from node.app.validators import VALIDATOR_UPDATE_DELAY_HEIGHTS
from node.chain.errors import StorageMismatchError
from node.chain.genesis import DEFAULT_EVIDENCE_MAX_AGE_HEIGHTS
from node.chain.set_history import ValidatorSetHistory
from node.chain.store import height_bytes
from node.codec import MAX_VALIDATORS, VALIDATOR_CODEC, ArrayOf, Int, Nested, StructCodec
from node.errors import DecodeError
from node.ports import Delete, Put, Storage, WriteOp
from node.types import Validator

SET_PREFIX: Final = b"vset/"
"""``vset/<height u64 BE>``: the validator set of that height, priorities included."""
_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class StoredSet:
    """A validator set with its proposer priorities, as stored."""

    validators: tuple[Validator, ...]
    priorities: tuple[int, ...]


_SET_CODEC = StructCodec(
    StoredSet,
    [
        ("validators", ArrayOf(Nested(VALIDATOR_CODEC), MAX_VALIDATORS)),
        ("priorities", ArrayOf(Int(_I64_MIN, _I64_MAX), MAX_VALIDATORS)),
    ],
    MAX_VALIDATORS * 64 + 64,
)


def set_key(height: int) -> bytes:
    """The storage key of the validator set of ``height``."""
    return SET_PREFIX + height_bytes(height)


def _put_set(height: int, validator_set: ValidatorSet) -> Put:
    stored = StoredSet(validator_set.validators, validator_set.priorities)
    return Put(set_key(height), _SET_CODEC.encode(stored))


def _read_set(storage: Storage, height: int) -> ValidatorSet:
    raw = storage.get(set_key(height))
    if raw is None:
        raise StorageMismatchError(f"the store has no validator set for height {height}")
    try:
        stored = _SET_CODEC.decode(raw)
        return ValidatorSet(stored.validators, stored.priorities)
    except (DecodeError, InvalidValidatorSetError) as exc:
        raise StorageMismatchError(f"corrupt validator set of height {height}: {exc}") from exc


class ValidatorSchedule:
    """The sets of the next heights and of the last committed one; see the module docs."""

    __slots__ = ("_history", "_previous", "_schedule", "rejected_update_batches")

    def __init__(
        self,
        schedule: ValidatorSetSchedule,
        previous: ValidatorSet | None,
        history: ValidatorSetHistory | None = None,
    ) -> None:
        """Use ``at_genesis`` or ``restore``."""
        self._schedule = schedule
        self._previous = previous
        if history is None:
            history = ValidatorSetHistory(
                DEFAULT_EVIDENCE_MAX_AGE_HEIGHTS, last_height=schedule.last_committed_height
            )
        self._history = history
        self.rejected_update_batches = 0
        """Update batches ignored because they would have made an invalid set."""

    @classmethod
    def at_genesis(
        cls,
        genesis_set: ValidatorSet,
        evidence_max_age_heights: int = DEFAULT_EVIDENCE_MAX_AGE_HEIGHTS,
    ) -> tuple[ValidatorSchedule, list[WriteOp]]:
        """The schedule of a new chain and the writes that persist it; it keeps past sets
        for ``evidence_max_age_heights`` (``ConsensusParams``)."""
        schedule = ValidatorSetSchedule(genesis_set, 1, VALIDATOR_UPDATE_DELAY_HEIGHTS)
        ops: list[WriteOp] = [
            _put_set(height, validator_set)
            for height, validator_set in enumerate(schedule.upcoming, start=1)
        ]
        return cls(schedule, None, ValidatorSetHistory(evidence_max_age_heights)), ops

    @classmethod
    def restore(
        cls,
        storage: Storage,
        committed_height: int,
        evidence_max_age_heights: int = DEFAULT_EVIDENCE_MAX_AGE_HEIGHTS,
    ) -> ValidatorSchedule:
        """The schedule as it was after committing ``committed_height`` (the sets it knew,
        proposer priorities and pending updates included, and the history of past sets).
        Raises ``StorageMismatchError`` if a set is missing or corrupt."""
        delay = VALIDATOR_UPDATE_DELAY_HEIGHTS
        first = committed_height + 1
        upcoming = [_read_set(storage, height) for height in range(first, first + delay)]
        previous = _read_set(storage, committed_height) if committed_height >= 1 else None
        try:
            schedule = ValidatorSetSchedule.restore(committed_height, upcoming, delay)
        except InvalidConfigError as exc:
            raise StorageMismatchError(f"cannot restore the validator schedule: {exc}") from exc
        history = ValidatorSetHistory.load(storage, committed_height, evidence_max_age_heights)
        return cls(schedule, previous, history)

    @property
    def last_committed_height(self) -> int:
        """The last committed height."""
        return self._schedule.last_committed_height

    @property
    def previous(self) -> ValidatorSet | None:
        """The set of the last committed height (None at genesis)."""
        return self._previous

    def set_at(self, height: int) -> ValidatorSet | None:
        """The set of ``height`` if known (the next ``delay`` heights), else None."""
        try:
            return self._schedule.set_at(height)
        except UsageError:
            return None

    def members_at(self, height: int) -> ValidatorSet | None:
        """The members (without proposer priorities) that ruled the committed ``height``,
        within the evidence window; None if not kept."""
        return self._history.set_at(height)

    def commit(self, height: int, updates: Sequence[ValidatorUpdate]) -> list[WriteOp]:
        """Record the commit of ``height`` with its ``updates``; returns the writes that
        persist the new schedule (part of the height's commit batch)."""
        previous = self._schedule.set_at(height)
        try:
            self._schedule.commit(height, updates)
        except InvalidValidatorSetError:
            # Every node rejects the same batch the same way: the chain goes on unchanged.
            self.rejected_update_batches += 1
            self._schedule.commit(height, ())
        self._previous = previous
        ruled_height = height + VALIDATOR_UPDATE_DELAY_HEIGHTS
        ops: list[WriteOp] = [_put_set(ruled_height, self._schedule.set_at(ruled_height))]
        if height > 1:
            ops.append(Delete(set_key(height - 1)))
        return ops + self._history.record(height, previous)
