"""When the validator-set updates an application returns take effect.

``finalize_block`` of height H returns the updates its transactions and due work requested, as
``consensus.ValidatorUpdate`` s sorted by public key, one per key (the last request in the
block wins; voting power 0 removes a validator). They rule height
``H + VALIDATOR_UPDATE_DELAY_HEIGHTS``: height H+1 is already being agreed on by the current
set (its votes may be in flight before H is executed), so H+2 is the earliest height every node
can switch at without a race — CometBFT's rule too.

The node core hands them on unchanged: ``ValidatorSetSchedule.commit(H, result.
validator_updates)`` (``consensus.validator_schedule``, built with this same delay) applies
them, proposer priorities included.
"""

from __future__ import annotations

from typing import Final

from consensus.validator_schedule import DEFAULT_UPDATE_DELAY_HEIGHTS

VALIDATOR_UPDATE_DELAY_HEIGHTS: Final = DEFAULT_UPDATE_DELAY_HEIGHTS


def effective_height(decided_height: int) -> int:
    """The first height ruled by the updates returned for ``decided_height``."""
    return decided_height + VALIDATOR_UPDATE_DELAY_HEIGHTS
