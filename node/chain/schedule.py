"""The validator sets the chain core needs, kept in a ``ValidatorSetSchedule`` and persisted.

The core needs the set of every height it may see messages for (the next
``update_delay_heights``, from ``consensus.ValidatorSetSchedule``) and the set of the last
committed height (to verify the ``last_commit`` of the next block).

Persistence without replaying the chain: a *checkpoint* ``(first_height, set)`` is written
whenever the last ``delay - 1`` committed heights carried no validator updates — then
``ValidatorSetSchedule(set, first_height)`` rebuilds exactly the schedule there (its derived
sets need no updates). Updates decided since the checkpoint are stored per height
(``vupd/<height>``) and re-committed on restore; they are deleted as soon as a new checkpoint
is written. With the delay of 2 one height without updates suffices, so the list holds the
updates of an unbroken run of governance changes — none, almost always.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from consensus.errors import InvalidValidatorSetError, UsageError
from consensus.validator_schedule import ValidatorSetSchedule
from consensus.validator_set import ValidatorSet, ValidatorUpdate
from node.app.validators import VALIDATOR_UPDATE_DELAY_HEIGHTS
from node.chain.errors import StorageMismatchError
from node.chain.store import height_bytes
from node.codec import (
    MAX_VALIDATORS,
    VALIDATOR_CODEC,
    ArrayOf,
    Bytes,
    Int,
    Nested,
    StructCodec,
    UInt,
)
from node.errors import DecodeError
from node.ports import Delete, Put, Storage, WriteOp
from node.types import PUBLIC_KEY_BYTES, Validator

PREVIOUS_SET_KEY: Final = b"vset/previous"
CHECKPOINT_KEY: Final = b"vset/checkpoint"
UPDATES_PREFIX: Final = b"vupd/"
_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class StoredSet:
    """A validator set with its proposer priorities, as stored."""

    validators: tuple[Validator, ...]
    priorities: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The schedule restarts at ``first_height`` with ``validator_set``."""

    first_height: int
    validator_set: StoredSet


@dataclass(frozen=True, slots=True)
class StoredUpdates:
    """The validator updates decided at one height."""

    updates: tuple[ValidatorUpdate, ...]


_SET_CODEC = StructCodec(
    StoredSet,
    [
        ("validators", ArrayOf(Nested(VALIDATOR_CODEC), MAX_VALIDATORS)),
        ("priorities", ArrayOf(Int(_I64_MIN, _I64_MAX), MAX_VALIDATORS)),
    ],
    MAX_VALIDATORS * 64 + 64,
)
_CHECKPOINT_CODEC = StructCodec(
    Checkpoint,
    [("first_height", UInt()), ("validator_set", Nested(_SET_CODEC))],
    _SET_CODEC.max_bytes + 64,
)
_UPDATE_CODEC = StructCodec(
    ValidatorUpdate,
    [("public_key", Bytes.exactly(PUBLIC_KEY_BYTES)), ("voting_power", UInt())],
    64,
)
_UPDATES_CODEC = StructCodec(
    StoredUpdates,
    [("updates", ArrayOf(Nested(_UPDATE_CODEC), MAX_VALIDATORS))],
    MAX_VALIDATORS * 64 + 64,
)


def _stored(validator_set: ValidatorSet) -> StoredSet:
    return StoredSet(validator_set.validators, validator_set.priorities)


def _loaded(stored: StoredSet) -> ValidatorSet:
    try:
        return ValidatorSet(stored.validators, stored.priorities)
    except InvalidValidatorSetError as exc:
        raise StorageMismatchError(f"corrupt stored validator set: {exc}") from exc


class ValidatorSchedule:
    """The sets of the next heights and of the last committed one; see the module docs."""

    __slots__ = (
        "_checkpoint_height",
        "_previous",
        "_schedule",
        "_update_heights",
        "rejected_update_batches",
    )

    def __init__(
        self,
        schedule: ValidatorSetSchedule,
        previous: ValidatorSet | None,
        checkpoint_height: int,
        update_heights: Sequence[int] = (),
    ) -> None:
        self._schedule = schedule
        self._previous = previous
        self._checkpoint_height = checkpoint_height
        self._update_heights = list(update_heights)
        self.rejected_update_batches = 0
        """Update batches ignored because they would have made an invalid set."""

    @classmethod
    def at_genesis(cls, genesis_set: ValidatorSet) -> tuple[ValidatorSchedule, list[WriteOp]]:
        """The schedule of a new chain and the writes that persist it."""
        schedule = ValidatorSetSchedule(genesis_set, 1, VALIDATOR_UPDATE_DELAY_HEIGHTS)
        checkpoint = Checkpoint(1, _stored(genesis_set))
        return cls(schedule, None, 1), [Put(CHECKPOINT_KEY, _CHECKPOINT_CODEC.encode(checkpoint))]

    @classmethod
    def restore(cls, storage: Storage, committed_height: int) -> ValidatorSchedule:
        """The schedule as it was after committing ``committed_height``."""
        try:
            raw = storage.get(CHECKPOINT_KEY)
            if raw is None:
                raise StorageMismatchError("the store has no validator schedule")
            checkpoint = _CHECKPOINT_CODEC.decode(raw)
            previous_raw = storage.get(PREVIOUS_SET_KEY)
            previous = None if previous_raw is None else _loaded(_SET_CODEC.decode(previous_raw))
            updates = {
                int.from_bytes(key[len(UPDATES_PREFIX) :], "big"): _UPDATES_CODEC.decode(value)
                for key, value in storage.iterate_prefix(UPDATES_PREFIX)
            }
        except DecodeError as exc:
            raise StorageMismatchError(f"corrupt validator schedule: {exc}") from exc
        first = checkpoint.first_height
        if not 1 <= first <= committed_height + 1:
            raise StorageMismatchError(f"schedule checkpoint {first} after {committed_height}")
        schedule = ValidatorSetSchedule(
            _loaded(checkpoint.validator_set), first, VALIDATOR_UPDATE_DELAY_HEIGHTS
        )
        restored = cls(schedule, previous, first, sorted(updates))
        for height in range(first, committed_height + 1):
            found = updates.get(height)
            restored._commit_updates(height, found.updates if found else ())
        return restored

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

    def commit(self, height: int, updates: Sequence[ValidatorUpdate]) -> list[WriteOp]:
        """Record the commit of ``height`` with its ``updates``; returns the writes that
        persist the new schedule (part of the height's commit batch)."""
        previous = self._schedule.set_at(height)
        self._commit_updates(height, updates)
        self._previous = previous
        ops: list[WriteOp] = [Put(PREVIOUS_SET_KEY, _SET_CODEC.encode(_stored(previous)))]
        if updates:
            self._update_heights.append(height)
            encoded = _UPDATES_CODEC.encode(StoredUpdates(tuple(updates)))
            ops.append(Put(UPDATES_PREFIX + height_bytes(height), encoded))
        horizon = height - VALIDATOR_UPDATE_DELAY_HEIGHTS + 2
        if all(updated < horizon for updated in self._update_heights):
            next_set = self._schedule.set_at(height + 1)
            checkpoint = Checkpoint(height + 1, _stored(next_set))
            ops.append(Put(CHECKPOINT_KEY, _CHECKPOINT_CODEC.encode(checkpoint)))
            ops += [Delete(UPDATES_PREFIX + height_bytes(h)) for h in self._update_heights]
            self._update_heights.clear()
            self._checkpoint_height = height + 1
        return ops

    def _commit_updates(self, height: int, updates: Sequence[ValidatorUpdate]) -> None:
        try:
            self._schedule.commit(height, updates)
        except InvalidValidatorSetError:
            # Every node rejects the same batch the same way: the chain goes on unchanged.
            self.rejected_update_batches += 1
            self._schedule.commit(height, ())
