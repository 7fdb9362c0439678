"""Judging blocks and evidence against the chain's tip, for the other parts of the core.

``BlockJudge`` gives this node's verdict on a block of the next height
(``node.chain.validation.validate_block`` against ``tip()``) and records verdicts on proposed
blocks in ``node.chain.proposals.ProposedBlocks``, so a block is judged at most once per height
and its canonical encoding is never made again here. It reads the committed position from
``HeightState`` and never changes it.
"""

from __future__ import annotations

from consensus.evidence import DuplicateVoteEvidence
from node.app.application import Application
from node.chain.evidence import ChainEvidenceLookup, evidence_problem
from node.chain.genesis import Genesis
from node.chain.height import HeightState
from node.chain.proposals import ProposedBlocks, Verdict
from node.chain.schedule import ValidatorSchedule
from node.chain.validation import ChainTip, validate_block
from node.errors import InvalidBlockError
from node.mempool import Mempool
from node.types import Block

__all__ = ["BlockJudge"]


class BlockJudge:
    """Verdicts on the blocks (and the evidence) of the height after the last committed."""

    __slots__ = ("_app", "_blocks", "_genesis", "_lookup", "_mempool", "_schedule", "_state")

    def __init__(
        self,
        *,
        state: HeightState,
        genesis: Genesis,
        app: Application,
        schedule: ValidatorSchedule,
        lookup: ChainEvidenceLookup,
        blocks: ProposedBlocks,
        mempool: Mempool,
    ) -> None:
        self._state = state
        self._genesis = genesis
        self._app = app
        self._schedule = schedule
        self._lookup = lookup
        self._blocks = blocks
        self._mempool = mempool

    def tip(self) -> ChainTip:
        """What validating the block after the last committed one needs."""
        state = self._state
        validator_set = self._schedule.set_at(state.height + 1)
        assert validator_set is not None
        return ChainTip(
            chain_id=self._genesis.chain_id,
            genesis_time_ms=self._genesis.genesis_time_ms,
            params=self._genesis.params,
            height=state.height,
            last_header=state.last_header,
            app_state_root=self._app.state_root,
            validator_set=validator_set,
            previous_set=self._schedule.previous,
            evidence=self._lookup,
        )

    def judge(self, value_id: bytes) -> bool | None:
        """This node's verdict on a proposed block of the current height, validating it
        on first sight; None while the block is missing or no verdict may be given."""
        blocks = self._blocks
        known = blocks.verdict(value_id)
        if known is not None:
            return known.valid
        block = blocks.get(value_id)
        if block is None:
            blocks.await_block(value_id)
            return None
        if not blocks.can_judge():
            return None
        verdict = self.validate(block, blocks.encoded(value_id), now_ms=self._state.now_ms)
        blocks.record(value_id, verdict)
        return verdict.valid

    def validate(self, block: Block, data: bytes | None, *, now_ms: int | None) -> Verdict:
        """Judge ``block``; ``data`` is its canonical encoding (never made again here)."""
        size_bytes = None if data is None else len(data)
        try:
            hashes = validate_block(
                block, self.tip(), now_ms=now_ms, verified_txs=self._mempool, size_bytes=size_bytes
            )
        except InvalidBlockError:
            return Verdict(False, frozenset())
        return Verdict(True, hashes)

    def evidence_admissible(self, evidence: DuplicateVoteEvidence) -> bool:
        """True if the block of the next height may carry ``evidence``."""
        problem = evidence_problem(
            evidence,
            chain_id=self._genesis.chain_id,
            block_height=self._state.height + 1,
            max_age_heights=self._genesis.params.evidence_max_age_heights,
            lookup=self._lookup,
        )
        return problem is None
