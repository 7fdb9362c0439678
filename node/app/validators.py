"""Validator-set updates requested by the application, and when they take effect.

``finalize_block`` of height H returns the updates its transactions requested (sorted by
public key, one per key, the last request winning; voting power 0 removes a validator).
They take effect for height ``H + VALIDATOR_UPDATE_DELAY_HEIGHTS``: height H+1 is already
being agreed on by the current set (its proposer may have proposed before H was executed),
so the earliest height every node can switch at, without a race, is H+2 — CometBFT's rule
too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from node.codec import MAX_VALIDATORS
from node.types import Validator

VALIDATOR_UPDATE_DELAY_HEIGHTS: Final = 2


def effective_height(decided_height: int) -> int:
    """The first height governed by updates returned for ``decided_height``."""
    return decided_height + VALIDATOR_UPDATE_DELAY_HEIGHTS


def apply_validator_updates(
    current: Sequence[Validator], updates: Sequence[Validator]
) -> tuple[Validator, ...]:
    """The set after ``updates`` (power 0 removes), sorted by public key.

    ``ValueError`` for the removal of a non-member, two updates of one key, an empty result
    or more than ``MAX_VALIDATORS`` members: a chain must always have validators.
    """
    members = {v.public_key: v for v in current}
    if len(members) != len(current):
        raise ValueError("the current set lists a validator twice")
    seen: set[bytes] = set()
    for update in updates:
        if update.public_key in seen:
            raise ValueError(f"two updates of validator {update.public_key.hex()}")
        seen.add(update.public_key)
        if update.voting_power == 0:
            if members.pop(update.public_key, None) is None:
                raise ValueError(f"removal of non-member {update.public_key.hex()}")
        elif update.voting_power < 0:
            raise ValueError(f"negative voting power for {update.public_key.hex()}")
        else:
            members[update.public_key] = update
    if not members:
        raise ValueError("the update would leave no validators")
    if len(members) > MAX_VALIDATORS:
        raise ValueError(f"more than {MAX_VALIDATORS} validators")
    return tuple(members[key] for key in sorted(members))
