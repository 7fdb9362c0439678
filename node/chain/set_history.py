"""The validator sets of past heights, kept to verify equivocation evidence.

Evidence of height ``h`` is verified against the set that ruled ``h``; a block at height ``H``
may carry evidence of heights ``H - evidence_max_age_heights`` .. ``H - 1``, so a node keeps the
sets of that window. Sets change rarely (only through governance updates), so the history holds
one entry per change: ``(first_height, members)``, the members and voting powers that ruled from
``first_height`` until the next entry. Proposer priorities are not kept: membership and power
are all evidence verification needs.

Persistence: ``vhist/<first_height>`` -> the members, written and pruned in each height's commit
batch. Bounds: entries that end before the window are dropped, and at most
``MAX_HISTORY_ENTRIES`` are kept (with governance changing the set more often than that within
the window, the oldest heights of the window become unverifiable: evidence of them is refused).
Every node commits the same heights in the same order, so every node keeps the same history
and judges the same evidence alike.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Final

from consensus.errors import InvalidValidatorSetError
from consensus.validator_set import ValidatorSet
from node.chain.errors import StorageMismatchError
from node.chain.store import height_bytes
from node.codec import MAX_VALIDATORS, VALIDATOR_CODEC, ArrayOf, Nested, StructCodec
from node.errors import DecodeError
from node.ports import Delete, Put, Storage, WriteOp
from node.types import Validator

HISTORY_PREFIX: Final = b"vhist/"
MAX_HISTORY_ENTRIES: Final = 256
"""Most membership changes kept within the evidence window."""


@dataclass(frozen=True, slots=True)
class StoredMembers:
    """The members (keys and voting powers) of a validator set, as stored."""

    validators: tuple[Validator, ...]


_MEMBERS_CODEC = StructCodec(
    StoredMembers,
    [("validators", ArrayOf(Nested(VALIDATOR_CODEC), MAX_VALIDATORS))],
    MAX_VALIDATORS * 64 + 64,
)


def _key(first_height: int) -> bytes:
    return HISTORY_PREFIX + height_bytes(first_height)


class ValidatorSetHistory:
    """Which members ruled each committed height of the evidence window (see module docs)."""

    __slots__ = ("_firsts", "_last_height", "_max_entries", "_sets", "_window_heights")

    def __init__(
        self,
        window_heights: int,
        *,
        last_height: int = 0,
        entries: tuple[tuple[int, ValidatorSet], ...] = (),
        max_entries: int = MAX_HISTORY_ENTRIES,
    ) -> None:
        """A history covering heights up to ``last_height`` (0: none yet) with ``entries``
        (``(first_height, set)``, ascending). Use ``load`` to read one from storage."""
        if window_heights < 1 or max_entries < 1:
            raise ValueError("the window and the entry limit must be >= 1")
        self._window_heights = window_heights
        self._max_entries = max_entries
        self._last_height = last_height
        self._firsts = [first for first, _ in entries]
        self._sets = [validator_set for _, validator_set in entries]

    @classmethod
    def load(cls, storage: Storage, last_height: int, window_heights: int) -> ValidatorSetHistory:
        """The history persisted in ``storage`` for committed heights up to ``last_height``
        (``StorageMismatchError`` if an entry is corrupt or lies beyond that height)."""
        entries: list[tuple[int, ValidatorSet]] = []
        for key, value in storage.iterate_prefix(HISTORY_PREFIX):
            first = int.from_bytes(key[len(HISTORY_PREFIX) :], "big")
            try:
                members = _MEMBERS_CODEC.decode(value).validators
                entries.append((first, ValidatorSet(members)))
            except (DecodeError, InvalidValidatorSetError) as exc:
                raise StorageMismatchError(f"corrupt validator history at {first}: {exc}") from exc
            if not 1 <= first <= last_height:
                raise StorageMismatchError(f"validator history at {first} after {last_height}")
        return cls(window_heights, last_height=last_height, entries=tuple(entries))

    def __len__(self) -> int:
        return len(self._firsts)

    @property
    def last_height(self) -> int:
        """The last height recorded (0 before the first commit)."""
        return self._last_height

    def set_at(self, height: int) -> ValidatorSet | None:
        """The members that ruled ``height``, a recorded height not older than the history
        keeps (the set is built with zero proposer priorities); None otherwise."""
        if not 1 <= height <= self._last_height:
            return None
        index = bisect_right(self._firsts, height) - 1
        return self._sets[index] if index >= 0 else None

    def record(self, height: int, validator_set: ValidatorSet) -> list[WriteOp]:
        """Note that ``validator_set`` ruled the committed ``height`` (heights in order);
        returns the writes that persist the change, if any, and prune what left the window
        that a block after ``height`` may reach back to."""
        if height != self._last_height + 1:
            raise ValueError(f"record heights in order: expected {self._last_height + 1}")
        self._last_height = height
        ops: list[WriteOp] = []
        if not self._sets or self._sets[-1].validators != validator_set.validators:
            members = ValidatorSet(validator_set.validators)  # priorities do not matter here
            self._firsts.append(height)
            self._sets.append(members)
            ops.append(Put(_key(height), _MEMBERS_CODEC.encode(StoredMembers(members.validators))))
        oldest_needed = height + 1 - self._window_heights
        while len(self._firsts) > self._max_entries or (
            len(self._firsts) > 1 and self._firsts[1] <= oldest_needed
        ):
            ops.append(Delete(_key(self._firsts.pop(0))))
            self._sets.pop(0)
        return ops
