"""Weighted validator sets: thresholds, proposer rotation, hashing and updates.

A :class:`ValidatorSet` is immutable. It holds the validators of one height in canonical order
(ascending public key) with their voting power and proposer priorities. Thresholds are
integers: a *quorum* is more than 2/3 of the total power (``quorum_power``), "f+1" is more than
1/3 (``f_plus_one_power``). The proposer of round ``r`` is the winner of the ``(r+1)``-th
weighted round-robin step from the set's priorities (see :mod:`consensus.proposer_priority`),
and the set of the next height is this one advanced by one step — so the proposer is a
deterministic function of (set history, height, round) on every node.

Changes take effect at a later height, chosen by the application: :meth:`for_next_height`
applies a batch of :class:`ValidatorUpdate` s (power 0 removes) while advancing the priorities;
:class:`consensus.validator_schedule.ValidatorSetSchedule` delays batches by a fixed number of
heights.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from consensus import proposer_priority
from consensus.errors import InvalidValidatorSetError
from consensus.limits import MAX_TOTAL_VOTING_POWER, MAX_VALIDATORS, PROPOSER_CACHE_ROUNDS
from consensus.types import PublicKey, Validator
from crypto_core import hash_leaf, merkle_root
from crypto_core.signatures import PUBLIC_KEY_SIZE

_POWER_BYTES = 8


@dataclass(frozen=True, slots=True)
class ValidatorUpdate:
    """A change decided by the application: set ``public_key``'s power (0 removes it)."""

    public_key: PublicKey
    voting_power: int


class ValidatorSet:
    """The validators of one height; immutable, hashable, cheap to share between cores."""

    __slots__ = (
        "_cursor_rounds",
        "_f_plus_one_power",
        "_hash",
        "_index",
        "_powers",
        "_priorities",
        "_proposer_cursor",
        "_proposers",
        "_quorum_power",
        "_total_power",
        "_validators",
    )

    def __init__(
        self, validators: Iterable[Validator], priorities: Iterable[int] | None = None
    ) -> None:
        """Build a set; ``priorities`` (default all 0) pair with ``validators`` in given order.

        Raises InvalidValidatorSetError if the set is empty or too large, a key is not 32
        bytes or repeats, a power is not a positive int, or the total exceeds the limit.
        """
        given = list(validators)
        given_priorities = [0] * len(given) if priorities is None else list(priorities)
        _check_members(given, given_priorities)
        pairs = sorted(zip(given, given_priorities, strict=True), key=lambda p: p[0].public_key)
        self._validators: tuple[Validator, ...] = tuple(v for v, _ in pairs)
        self._priorities: tuple[int, ...] = tuple(p for _, p in pairs)
        self._powers: tuple[int, ...] = tuple(v.voting_power for v in self._validators)
        self._index: dict[PublicKey, int] = {
            v.public_key: i for i, v in enumerate(self._validators)
        }
        self._total_power = sum(self._powers)
        self._quorum_power = self._total_power * 2 // 3 + 1
        self._f_plus_one_power = self._total_power // 3 + 1
        self._proposers: dict[int, int] = {}
        self._proposer_cursor: list[int] | None = None
        self._cursor_rounds = 0
        self._hash: bytes | None = None

    # --- membership --------------------------------------------------------------------------

    @property
    def validators(self) -> tuple[Validator, ...]:
        """The validators in canonical order (ascending public key)."""
        return self._validators

    @property
    def priorities(self) -> tuple[int, ...]:
        """Proposer priorities, paired with :attr:`validators` (persist them with the set)."""
        return self._priorities

    def __len__(self) -> int:
        return len(self._validators)

    def __iter__(self) -> Iterator[Validator]:
        return iter(self._validators)

    def __contains__(self, public_key: object) -> bool:
        return public_key in self._index

    def index_of(self, public_key: PublicKey) -> int | None:
        """Position of ``public_key`` in canonical order, or None if it is not a member."""
        return self._index.get(public_key)

    def power_of(self, public_key: PublicKey) -> int:
        """Voting power of ``public_key`` (0 if it is not a member)."""
        index = self._index.get(public_key)
        return 0 if index is None else self._powers[index]

    # --- thresholds ----------------------------------------------------------------------------

    @property
    def total_voting_power(self) -> int:
        """Sum of all voting powers."""
        return self._total_power

    @property
    def quorum_power(self) -> int:
        """Smallest power that is more than 2/3 of the total (a "2f+1" quorum)."""
        return self._quorum_power

    @property
    def f_plus_one_power(self) -> int:
        """Smallest power that is more than 1/3 of the total ("f+1": one honest at least)."""
        return self._f_plus_one_power

    def has_quorum(self, power: int) -> bool:
        """True iff ``power`` is more than 2/3 of the total."""
        return power >= self._quorum_power

    # --- proposer rotation ---------------------------------------------------------------------

    def proposer(self, round_: int) -> PublicKey:
        """Public key of the proposer of ``round_`` (>= 0) at this set's height.

        Rounds are usually asked in increasing order: a cursor walks the round-robin forward,
        so each new round costs O(validators), and the latest PROPOSER_CACHE_ROUNDS answers
        are remembered. A round behind the cursor and out of the cache costs
        O(validators x round).
        """
        if type(round_) is not int or round_ < 0:
            raise ValueError(f"round must be a non-negative int, got {round_!r}")
        return self._validators[self._proposer_index(round_)].public_key

    def _proposer_index(self, round_: int) -> int:
        cached = self._proposers.get(round_)
        if cached is not None:
            return cached
        if self._proposer_cursor is None or round_ < self._cursor_rounds:
            cursor = list(self._priorities)
            proposer_priority.normalize(cursor, self._total_power)
            if self._proposer_cursor is not None:  # behind the cursor: walk a scratch copy
                index = 0
                for _ in range(round_ + 1):
                    index = proposer_priority.step(cursor, self._powers, self._total_power)
                return index
            self._proposer_cursor = cursor
        cursor = self._proposer_cursor
        index = 0
        while self._cursor_rounds <= round_:
            index = proposer_priority.step(cursor, self._powers, self._total_power)
            self._proposers[self._cursor_rounds] = index
            self._cursor_rounds += 1
            if len(self._proposers) > PROPOSER_CACHE_ROUNDS:
                del self._proposers[next(iter(self._proposers))]  # the oldest round
        return index

    # --- derived sets --------------------------------------------------------------------------

    def advanced(self, steps: int = 1) -> ValidatorSet:
        """This set with its priorities ``steps`` round-robin steps further (same members)."""
        if type(steps) is not int or steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {steps!r}")
        priorities = list(self._priorities)
        proposer_priority.normalize(priorities, self._total_power)
        for _ in range(steps):
            proposer_priority.step(priorities, self._powers, self._total_power)
        return ValidatorSet(self._validators, priorities)

    def updated(self, updates: Sequence[ValidatorUpdate]) -> ValidatorSet:
        """This set with ``updates`` applied (priorities of staying members are kept).

        A joining validator starts at -1.125 x the new total power. Raises
        InvalidValidatorSetError for a repeated key, a negative or non-int power, removing a
        non-member, or a result that is empty or breaks a limit.
        """
        powers = _apply_updates(self._validators, updates)
        new_total = sum(powers.values())
        if not powers:
            raise InvalidValidatorSetError("updates would remove every validator")
        joining = proposer_priority.initial_priority_of_new_validator(new_total)
        old_priorities = dict(
            zip((v.public_key for v in self._validators), self._priorities, strict=True)
        )
        members = [Validator(key, power) for key, power in powers.items()]
        priorities = [old_priorities.get(v.public_key, joining) for v in members]
        if new_total <= MAX_TOTAL_VOTING_POWER:
            proposer_priority.normalize(priorities, new_total)
        return ValidatorSet(members, priorities)

    def for_next_height(self, updates: Sequence[ValidatorUpdate] = ()) -> ValidatorSet:
        """The set of the next height: ``updates`` applied, then one round-robin step."""
        return (self.updated(updates) if updates else self).advanced(1)

    # --- identity --------------------------------------------------------------------------

    def hash(self) -> bytes:
        """RFC 9162 Merkle root over ``public key || power (u64 big-endian)`` in canonical order.

        Priorities are not hashed: they are derived state, as in CometBFT's validators hash.
        """
        if self._hash is None:
            leaves = [
                hash_leaf(v.public_key + v.voting_power.to_bytes(_POWER_BYTES, "big"))
                for v in self._validators
            ]
            self._hash = bytes(merkle_root(leaves))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidatorSet):
            return NotImplemented
        return self._validators == other._validators and self._priorities == other._priorities

    def __hash__(self) -> int:
        return hash((self._validators, self._priorities))

    def __repr__(self) -> str:
        return f"ValidatorSet({len(self._validators)} validators, total power {self._total_power})"


def _check_members(validators: list[Validator], priorities: list[int]) -> None:
    if not validators:
        raise InvalidValidatorSetError("a validator set needs at least one validator")
    if len(validators) > MAX_VALIDATORS:
        raise InvalidValidatorSetError(f"a validator set holds at most {MAX_VALIDATORS}")
    if len(priorities) != len(validators):
        raise InvalidValidatorSetError("one priority per validator is required")
    seen: set[PublicKey] = set()
    total_power = 0
    for validator, priority in zip(validators, priorities, strict=True):
        if not isinstance(validator, Validator):
            raise InvalidValidatorSetError(f"expected a Validator, got {validator!r}")
        key, power = validator.public_key, validator.voting_power
        if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
            raise InvalidValidatorSetError(f"public keys are {PUBLIC_KEY_SIZE} bytes")
        if key in seen:
            raise InvalidValidatorSetError(f"validator {key.hex()} appears twice")
        if type(power) is not int or power <= 0:
            raise InvalidValidatorSetError(f"voting power must be a positive int, got {power!r}")
        if type(priority) is not int:
            raise InvalidValidatorSetError(f"priorities must be ints, got {priority!r}")
        seen.add(key)
        total_power += power
    if total_power > MAX_TOTAL_VOTING_POWER:
        raise InvalidValidatorSetError(
            f"total voting power {total_power} exceeds {MAX_TOTAL_VOTING_POWER}"
        )


def _apply_updates(
    validators: Sequence[Validator], updates: Sequence[ValidatorUpdate]
) -> dict[PublicKey, int]:
    powers = {v.public_key: v.voting_power for v in validators}
    seen: set[PublicKey] = set()
    for update in updates:
        if not isinstance(update, ValidatorUpdate):
            raise InvalidValidatorSetError(f"expected a ValidatorUpdate, got {update!r}")
        key, power = update.public_key, update.voting_power
        if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
            raise InvalidValidatorSetError(f"public keys are {PUBLIC_KEY_SIZE} bytes")
        if key in seen:
            raise InvalidValidatorSetError(f"validator {key.hex()} updated twice in one batch")
        if type(power) is not int or power < 0:
            raise InvalidValidatorSetError(f"voting power must be an int >= 0, got {power!r}")
        seen.add(key)
        if power == 0:
            if key not in powers:
                raise InvalidValidatorSetError(f"cannot remove non-member {key.hex()}")
            del powers[key]
        else:
            powers[key] = power
    return powers
