"""Chain progress that needs no new input: commit what is decided, apply synced blocks,
start the next height.

The core drains consensus effects first; when none is left it asks ``HeightProgress.advance``
for one step, until there is none. A step is, in this order of preference: committing a
pending decision whose block has arrived (``node.chain.commit``); with the next height's
block in the sync buffer, starting that height (if paused) or applying the block
(``node.chain.syncing``); starting the next height when it is due. Starting a height resets
its consensus log and held messages, hands consensus ``StartHeight`` with the height's
validator set, then the messages that waited for it (``node.chain.inbound``).
"""

from __future__ import annotations

from consensus import StartHeight
from node.chain.catch_up_sender import CatchUpSender
from node.chain.commit import Committer
from node.chain.feed import ConsensusFeed
from node.chain.height import HeightState
from node.chain.inbound import Inbound
from node.chain.proposals import ProposedBlocks
from node.chain.schedule import ValidatorSchedule
from node.chain.sync import BlockSync
from node.chain.syncing import Syncing
from node.chain.wal import ConsensusLog

__all__ = ["HeightProgress"]


class HeightProgress:
    """One step of progress at a time (see the module docstring)."""

    __slots__ = (
        "_blocks",
        "_catch_up",
        "_committer",
        "_feed",
        "_inbound",
        "_log",
        "_schedule",
        "_state",
        "_sync",
        "_syncing",
    )

    def __init__(
        self,
        *,
        state: HeightState,
        schedule: ValidatorSchedule,
        log: ConsensusLog,
        blocks: ProposedBlocks,
        sync: BlockSync,
        feed: ConsensusFeed,
        committer: Committer,
        syncing: Syncing,
        catch_up: CatchUpSender,
        inbound: Inbound,
    ) -> None:
        self._state = state
        self._schedule = schedule
        self._log = log
        self._blocks = blocks
        self._sync = sync
        self._feed = feed
        self._committer = committer
        self._syncing = syncing
        self._catch_up = catch_up
        self._inbound = inbound

    def advance(self) -> bool:
        """One step of progress that needs no new input; False if there is none."""
        state = self._state
        next_height = state.height + 1
        pending = state.pending_decide
        if pending is not None:
            block = self._blocks.get(pending.value_id)
            if block is not None:
                self._committer.commit(pending, block)
                return True
        if self._sync.has(next_height):
            if not state.active:
                self._start_height(next_height)
            else:
                self._syncing.apply_synced(self._sync.take(next_height))
            return True
        if state.start_due and not state.active:
            self._start_height(next_height)
            return True
        return False

    def _start_height(self, height: int) -> None:
        self._state.start_due = False
        validator_set = self._schedule.set_at(height)
        assert validator_set is not None, "the schedule knows the next height"
        self._log.reset(height)
        self._state.active = True
        self._catch_up.hold_height(height, validator_set)
        self._feed.feed(StartHeight(height, validator_set))
        self._inbound.release_future(height)
